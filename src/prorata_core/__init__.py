"""Prorata's billing engine: framework-free, exact, and pure.

Nothing here reads a clock, touches a database or imports Django: instants, prices and balances are
arguments, and every function returns new values. See DESIGN.md §3 for the money rules it implements.
"""
