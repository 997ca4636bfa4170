from django.urls import path

from prorata.catalog import views

app_name = "catalog"
urlpatterns = [
    path("", views.home, name="plans"),
    path("plans/", views.plans, name="plans_all"),
]
