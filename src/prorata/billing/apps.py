from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "prorata.billing"
    label = "billing"
