from django.urls import path

from prorata.catalog import views

app_name = "catalog"
urlpatterns = [path("", views.plans, name="plans")]
