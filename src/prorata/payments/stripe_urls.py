"""The Stripe gateway's URLs, mounted at ``/payments/stripe/`` (prorata.payments.stripe_views)."""

from django.urls import path

from prorata.payments import stripe_views

app_name = "stripe_gateway"

urlpatterns = [
    path("v1/card.js", stripe_views.card_js, name="card_js"),
    path("v1/webhook", stripe_views.webhook, name="webhook"),
]
