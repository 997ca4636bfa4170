from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "prorata.billing"
    label = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from prorata.billing.receipts import register_attachment_renderers

        register_attachment_renderers()
