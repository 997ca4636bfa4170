from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "prorata.payments"
    label = "payments"
