from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "prorata.api"
    label = "api"
