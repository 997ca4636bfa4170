from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "prorata.payments"
    label = "payments"

    def ready(self) -> None:
        from prorata.payments import checks  # noqa: F401  (registers the gateway's checks)
