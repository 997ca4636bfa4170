from django.apps import AppConfig


class SupportConfig(AppConfig):
    name = "prorata.support"
    label = "support"
