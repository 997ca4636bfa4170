from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "prorata.catalog"
    label = "catalog"
