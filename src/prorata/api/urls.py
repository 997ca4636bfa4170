"""The tokens pages, under ``/profile/tokens/`` (the API itself is :mod:`prorata.api.v1`)."""

from django.urls import path

from prorata.api import views

app_name = "api_tokens"
urlpatterns = [
    path("", views.tokens, name="list"),
    path("<int:token_id>/revoke/", views.token_revoke, name="revoke"),
]
