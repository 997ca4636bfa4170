from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "prorata.common"
    label = "common"
