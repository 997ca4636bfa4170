"""Sign-in at Django's conventional /accounts/login/, the profile at /profile/, the language switch."""

from django.urls import path

from prorata.accounts import views
from prorata.web import views_signup

app_name = "accounts"
urlpatterns = [
    path("accounts/login/", views.SignInView.as_view(), name="sign_in"),
    path("accounts/logout/", views.SignOutView.as_view(), name="sign_out"),
    path("accounts/password_reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("accounts/password_reset/done/", views.PasswordResetDoneView.as_view(),
         name="password_reset_done"),
    path("accounts/reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(),
         name="password_reset_confirm"),
    path("accounts/reset/done/", views.PasswordResetCompleteView.as_view(),
         name="password_reset_complete"),
    path("accounts/email/confirm/<str:token>/", views.email_confirm, name="email_confirm"),
    path("accounts/signup/", views_signup.signup, name="signup"),
    path("accounts/signup/confirm/<uidb64>/<token>/", views_signup.signup_confirm,
         name="signup_confirm"),
    path("profile/", views.profile, name="profile"),
    path("profile/password/", views.profile_password, name="profile_password"),
    path("profile/email/", views.profile_email, name="profile_email"),
    path("profile/language/", views.profile_language, name="profile_language"),
    path("i18n/setlang/", views.set_language, name="set_language"),
]
