from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "prorata.jobs"
    label = "jobs"
    verbose_name = "Billing run and other jobs"
