"""The sandbox gateway's URLs, mounted at ``/sandbox-gateway/`` (its own prefix, as a host)."""

from django.urls import path

from prorata.payments import sandbox_views

app_name = "sandbox_gateway"

urlpatterns = [
    path("v1/gateway.js", sandbox_views.gateway_js, name="script"),
    path("v1/card-form", sandbox_views.card_form, name="card_form"),
    path("v1/tokens", sandbox_views.tokens, name="tokens"),
    path("v1/challenge/<str:secret>", sandbox_views.challenge, name="challenge"),
]
