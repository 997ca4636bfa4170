"""Console pages whose changes are audited (catalog, settings)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.http import HttpRequest


def _audited_fields(obj: Any) -> dict[str, Any]:
    # JSON-safe values (dates, decimals as strings), as the audit row stores them.
    values = {field.attname: getattr(obj, field.attname) for field in obj._meta.concrete_fields}
    loaded: dict[str, Any] = json.loads(json.dumps(values, cls=DjangoJSONEncoder))
    return loaded


class AuditedAdmin(admin.ModelAdmin):
    """A console page whose every add, change and delete (its inlines' too) writes an audit row
    ``<app>.<model>.create|change|delete`` with before and after, the actor and the IP, in the
    admin's own transaction: catalog and setting changes are audited like service calls, not only
    in Django's admin history."""

    #: The audit action's prefix; by default ``<app>.<model>``.
    audit_label: str = ""

    def _audit(self, request: HttpRequest, obj: Any, verb: str,
               before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        from prorata.accounts.services import audit_record
        from prorata.accounts.throttle import client_ip

        if before == after:
            return
        audit_record(
            actor=request.user,  # type: ignore[arg-type]
            action=f"{self.audit_label or obj._meta.label_lower}.{verb}", obj=obj,
            before=before, after=after, ip=client_ip(request),
        )

    def _stored(self, obj: Any) -> dict[str, Any] | None:
        if obj.pk is None:
            return None
        stored = type(obj)._default_manager.filter(pk=obj.pk).first()
        return _audited_fields(stored) if stored is not None else None

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        before = self._stored(obj) if change else None
        super().save_model(request, obj, form, change)
        self._audit(request, obj, "change" if before is not None else "create", before,
                    _audited_fields(obj))

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        before, pk = _audited_fields(obj), obj.pk
        super().delete_model(request, obj)
        obj.pk = pk  # the audit row names what was deleted
        self._audit(request, obj, "delete", before, None)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            self.delete_model(request, obj)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        # Keyed by instance: a deleted row's instance has lost its pk by the time it is audited.
        befores = {id(f.instance): (f.instance.pk, self._stored(f.instance))
                   for f in formset.initial_forms if f.instance.pk is not None}
        super().save_formset(request, form, formset, change)
        for obj in formset.new_objects:
            self._audit(request, obj, "create", None, _audited_fields(obj))
        for obj, _changed in formset.changed_objects:
            self._audit(request, obj, "change", befores.get(id(obj), (None, None))[1],
                        _audited_fields(obj))
        for obj in formset.deleted_objects:
            pk, before = befores.get(id(obj), (None, None))
            obj.pk = pk
            self._audit(request, obj, "delete", before, None)
