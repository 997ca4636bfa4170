from django.contrib import admin
from django.urls import include, path

from prorata.api.v1 import api as api_v1
from prorata.web import health

# The busiest prefixes first: a request's path is matched against the patterns in this order.
urlpatterns = [
    path("api/v1/", api_v1.urls),
    path("billing/", include("prorata.web.urls_billing")),
    path("", include("prorata.licenses.urls")),
    path("", include("prorata.webinars.urls")),
    path("console/", admin.site.urls),
    path("", include("prorata.catalog.urls")),
    path("", include("prorata.accounts.urls")),
    path("profile/tokens/", include("prorata.api.urls")),
    # The built-in sandbox gateway's own pages, as a provider's host (prorata.payments.sandbox).
    path("sandbox-gateway/", include("prorata.payments.sandbox_urls")),
    # The Stripe gateway's card-form script and webhook endpoint (prorata.payments.stripe_views).
    path("payments/stripe/", include("prorata.payments.stripe_urls")),
    # For load balancers, systemd and Prometheus (prorata.web.health).
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics_view, name="metrics"),
]
