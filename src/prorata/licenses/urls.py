"""The Licenses and Members pages (under ``/billing/<account>/``) and the invitation link."""

from django.urls import path

from prorata.licenses import views

app_name = "licenses"
urlpatterns = [
    path("billing/<int:account_id>/licenses/", views.licenses, name="licenses"),
    path("billing/<int:account_id>/members/", views.members, name="members"),
    path("billing/<int:account_id>/members/<int:member_id>/roles/", views.member_roles,
         name="member_roles"),
    path("billing/<int:account_id>/members/<int:member_id>/remove/", views.member_remove_view,
         name="member_remove"),
    path("billing/<int:account_id>/invitations/<int:invitation_id>/revoke/",
         views.invitation_revoke_view, name="invitation_revoke"),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
]
