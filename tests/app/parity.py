"""Helpers of the parity tests: a hand-written query and its ORM reference give equal instances."""

from __future__ import annotations

from typing import Any

from django.db.models import Model


def values_of(instance: Model | None) -> tuple[Any, ...] | None:
    """The instance's class, every loaded concrete field's value (by attribute name) and which
    fields are deferred: two instances with equal values are interchangeable for their callers."""
    if instance is None:
        return None
    deferred = instance.get_deferred_fields()
    return (type(instance), instance._state.db, tuple(
        (field.attname, getattr(instance, field.attname))
        for field in instance._meta.concrete_fields if field.attname not in deferred
    ), frozenset(deferred))
