from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "prorata.accounts"
    label = "accounts"
    verbose_name = "Accounts and people"
