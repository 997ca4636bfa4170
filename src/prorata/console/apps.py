from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ConsoleConfig(AppConfig):
    """The staff console (Django admin, DESIGN §7): sign-in throttling, role-filtered pages, the
    account overview and the staff's money actions."""

    name = "prorata.console"
    label = "console"


class ConsoleAdminConfig(admin_apps.AdminConfig):
    """Django's admin app with the console's site (second factor, throttled sign-in) as
    ``admin.site``, so that every app's ``admin.py`` registers on it."""

    default = False
    default_site = "prorata.console.site.ConsoleSite"
