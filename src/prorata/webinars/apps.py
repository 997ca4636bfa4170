from django.apps import AppConfig


class WebinarsConfig(AppConfig):
    name = "prorata.webinars"
    label = "webinars"
