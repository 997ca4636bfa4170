"""The console's webhook pages: operators register endpoints (the signing secret shown once),
rotate secrets, browse deliveries and replay them. Every write goes through
:mod:`prorata.webhooks.services` (audited). Operators see deliveries without the events'
contents, which are customer data; superusers see them too."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from prorata.accounts.throttle import client_ip
from prorata.webhooks.models import EventType, WebhookDelivery, WebhookEndpoint
from prorata.webhooks.services import (
    ROTATION_OVERLAP,
    checked_event_types,
    checked_url,
    webhook_deliveries_replay,
    webhook_endpoint_create,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
)
from prorata_core.errors import ValidationError


class EndpointForm(forms.ModelForm):
    url = forms.CharField(label=_("URL"), max_length=2000,
                          widget=forms.URLInput(attrs={"size": 80}))
    event_types = forms.MultipleChoiceField(label=_("event types"), choices=EventType.choices,
                                            widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookEndpoint
        fields = ("url", "description", "event_types", "is_active")

    def clean_url(self) -> str:
        try:
            return checked_url(self.cleaned_data["url"])
        except ValidationError as error:
            raise forms.ValidationError(str(error)) from None

    def clean_event_types(self) -> list[str]:
        try:
            return checked_event_types(self.cleaned_data["event_types"])
        except ValidationError as error:
            raise forms.ValidationError(str(error)) from None


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    list_display = ("url", "description", "is_active", "failing", "types", "created_at")
    list_filter = ("is_active",)
    readonly_fields = ("signing", "failing_since", "created_at", "created_by")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return ["url", "description", "event_types"]
        return ["url", "description", "event_types", "is_active", "signing", "failing_since",
                "created_at", "created_by"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return self.readonly_fields if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deactivate instead: its deliveries stay browsable

    @admin.display(description=_("failing"))
    def failing(self, obj: WebhookEndpoint) -> str:
        if obj.failing_since is None:
            return "—"
        return format_html('<strong style="color:#ba2121">failing since {} UTC</strong>',
                           obj.failing_since.strftime("%Y-%m-%d %H:%M"))

    @admin.display(description=_("event types"))
    def types(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.event_types)

    @admin.display(description=_("signing secret"))
    def signing(self, obj: WebhookEndpoint) -> str:
        overlap = (f" (the previous one also signs until "
                   f"{obj.previous_secret_until:%Y-%m-%d %H:%M} UTC)"
                   if obj.previous_secret and obj.previous_secret_until else "")
        return format_html('whsec_…{}{} — <a href="{}">Rotate the signing secret</a>',
                           obj.secret[-4:], overlap,
                           reverse("admin:webhooks_webhookendpoint_rotate", args=[obj.pk]))

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None
                        ) -> HttpResponse:
        failing = WebhookEndpoint.objects.filter(failing_since__isnull=False,
                                                 is_active=True).count()
        if failing:
            messages.warning(request, ngettext(
                "%(count)d endpoint is failing: a delivery to it was given up after three days "
                "of failures.",
                "%(count)d endpoints are failing: deliveries to them were given up after three "
                "days of failures.", failing) % {"count": failing})
        return super().changelist_view(request, extra_context)

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any,
                   change: bool) -> None:
        data = form.cleaned_data
        if change:
            saved = webhook_endpoint_update(
                actor=request.user, endpoint_id=obj.pk, url=data["url"],  # type: ignore[arg-type]
                event_types=data["event_types"], description=data.get("description", ""),
                is_active=data.get("is_active", True), ip=client_ip(request))
        else:
            made = webhook_endpoint_create(
                actor=request.user, url=data["url"],  # type: ignore[arg-type]
                event_types=data["event_types"], description=data.get("description", ""),
                ip=client_ip(request))
            saved = made.endpoint
            request._webhook_secret = made.secret  # type: ignore[attr-defined]
        obj.pk, obj.secret, obj.created_at = saved.pk, saved.secret, saved.created_at

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # no relations to save; the service saved the endpoint

    def response_add(self, request: HttpRequest, obj: WebhookEndpoint,
                     post_url_continue: str | None = None) -> HttpResponse:
        return self._secret_page(request, obj, request._webhook_secret,  # type: ignore[attr-defined]
                                 title="Endpoint registered")

    def get_urls(self) -> list[Any]:
        return [path("<path:object_id>/rotate/", self.admin_site.admin_view(self.rotate_view),
                     name="webhooks_webhookendpoint_rotate"), *super().get_urls()]

    def rotate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        endpoint = get_object_or_404(WebhookEndpoint, pk=object_id if object_id.isdigit() else 0)
        hours = request.POST.get("overlap_hours", str(int(ROTATION_OVERLAP.total_seconds() // 3600)))
        error = ""
        if request.method == "POST":
            try:
                overlap = timedelta(hours=int(hours.strip()))
                rotated = webhook_endpoint_rotate_secret(
                    actor=request.user, endpoint_id=endpoint.pk,  # type: ignore[arg-type]
                    overlap=overlap, ip=client_ip(request))
            except (ValueError, OverflowError):
                error = "Enter the overlap as a whole number of hours, 0 to 168."
            except ValidationError as refused:
                error = str(refused)
            else:
                return self._secret_page(request, rotated.endpoint, rotated.secret,
                                         title="Secret rotated")
        return render(request, "admin/webhooks/secret.html", {
            **self.admin_site.each_context(request), "endpoint": endpoint, "secret": "",
            "overlap_hours": hours, "error": error, "title": "Rotate the signing secret"})

    def _secret_page(self, request: HttpRequest, endpoint: WebhookEndpoint, secret: str, *,
                     title: str) -> HttpResponse:
        response = render(request, "admin/webhooks/secret.html", {
            **self.admin_site.each_context(request), "endpoint": endpoint, "secret": secret,
            "title": title})
        response["Cache-Control"] = "no-store"  # a secret: never from a cache
        return response


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at", "endpoint", "event_type", "event_ref", "status",
                    "attempts", "last_status_code", "next_attempt_at", "delivered_at")
    list_filter = ("status", "endpoint", "event__type")
    list_select_related = ("endpoint", "event")
    search_fields = ("event__event_id",)
    actions = ("replay",)
    _fields = ("endpoint", "event_type", "event_ref", "status", "attempts", "created_at",
               "last_attempt_at", "last_status_code", "last_error", "next_attempt_at",
               "delivered_at")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*self._fields, *(("body",) if request.user.is_superuser else ())]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return self.get_fields(request, obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookDelivery]:
        # The event's data (customer data) is read only where it is shown.
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.defer("event__data")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra = {**(extra_context or {}), "show_save": False, "show_save_and_continue": False,
                 "show_save_and_add_another": False, "show_delete": False}
        return super().change_view(request, object_id, form_url, extra)

    @admin.display(description=_("event type"))
    def event_type(self, obj: WebhookDelivery) -> str:
        return obj.event.type

    @admin.display(description=_("event id"))
    def event_ref(self, obj: WebhookDelivery) -> str:
        return obj.event.event_id

    @admin.display(description=_("body"))
    def body(self, obj: WebhookDelivery) -> str:
        from prorata.webhooks.delivery import event_body

        event = obj.event
        return format_html("<pre>{}</pre>", event_body(
            event_id=event.event_id, type=event.type, created_at=event.created_at,
            api_version=event.api_version, data=event.data).decode())

    @admin.action(description=_("Replay: send again at the next run"), permissions=["change"])
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        count = webhook_deliveries_replay(
            actor=request.user, ids=list(queryset.values_list("pk", flat=True)),  # type: ignore[arg-type]
            ip=client_ip(request))
        self.message_user(request, ngettext(
            "%(count)d delivery will be sent again by the next run (same event id).",
            "%(count)d deliveries will be sent again by the next run (same event ids).", count)
            % {"count": count}, messages.SUCCESS)
