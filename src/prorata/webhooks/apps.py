from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Webhooks out (issue 17): operators' endpoints, events written with the business change,
    signed deliveries retried for three days."""

    name = "prorata.webhooks"
    label = "webhooks"
