from django.apps import AppConfig


class LicensesConfig(AppConfig):
    name = "prorata.licenses"
    label = "licenses"

    def ready(self) -> None:
        from prorata.licenses import emails
        from prorata.licenses.errors import MESSAGES
        from prorata.web.errors import MESSAGES as PAGE_MESSAGES

        emails.register()
        # The billing pages (checkout, Modify subscription) show these refusals too.
        for code, message in MESSAGES.items():
            PAGE_MESSAGES.setdefault(code, message)
