from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The staff console (Django admin, DESIGN §7): sign-in throttling, role-filtered pages, the
    account overview and the staff's money actions."""

    name = "prorata.console"
    label = "console"

    def ready(self) -> None:
        from django.contrib import admin

        from prorata.console.signin import ConsoleSignInForm

        # The admin's own login view, with the customer sign-in's throttling (failures counted per
        # address and IP, the lockout audited).
        admin.site.login_form = ConsoleSignInForm
