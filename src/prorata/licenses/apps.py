from django.apps import AppConfig


class LicensesConfig(AppConfig):
    name = "prorata.licenses"
    label = "licenses"

    def ready(self) -> None:
        from prorata.licenses import emails

        emails.register()
