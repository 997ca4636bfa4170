"""Prorata's Django project: persistence, services, web pages, API and console around prorata_core."""
