from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "prorata.web"
    label = "web"
