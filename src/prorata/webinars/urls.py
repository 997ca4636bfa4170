"""The account's webinars (under ``/billing/<account>/``) and the public registration page."""

from django.urls import path

from prorata.webinars import views

app_name = "webinars"
urlpatterns = [
    path("billing/<int:account_id>/webinars/", views.webinars, name="list"),
    path("billing/<int:account_id>/webinars/new/", views.schedule, name="schedule"),
    path("billing/<int:account_id>/webinars/<int:webinar_id>/edit/", views.edit, name="edit"),
    path("billing/<int:account_id>/webinars/<int:webinar_id>/cancel/", views.cancel,
         name="cancel"),
    path("webinars/<str:public_id>/", views.register, name="register"),
]
