from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "prorata.subscriptions"
    label = "subscriptions"
