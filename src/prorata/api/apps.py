from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "prorata.api"
    label = "api"
    verbose_name = "API"  # the console's heading of the Operator API keys page
