from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "prorata.notifications"
    label = "notifications"
