"""The billing center's pages, under ``/billing/`` (DESIGN §6)."""

from django.urls import path

from prorata.support import views as support_views
from prorata.web import views_account, views_transactions
from prorata.web import views_billing as views

app_name = "billing"
urlpatterns = [
    path("", views.billing_index, name="index"),
    path("<int:account_id>/", views.account_page, name="account"),
    path("<int:account_id>/subscriptions/<slug:product_code>/modify/", views.modify,
         name="modify"),
    path("<int:account_id>/subscriptions/<slug:product_code>/cancel-renewal/",
         views.renewal_toggle, {"resume": False}, name="cancel_renewal"),
    path("<int:account_id>/subscriptions/<slug:product_code>/resume-renewal/",
         views.renewal_toggle, {"resume": True}, name="resume_renewal"),
    path("<int:account_id>/cart/", views.cart, name="cart"),
    path("<int:account_id>/checkout/", views.checkout, name="checkout"),
    path("<int:account_id>/orders/<int:order_id>/", views.order_page, name="order"),
    path("<int:account_id>/orders/<int:order_id>/authenticated/", views.order_return,
         name="order_return"),
    path("<int:account_id>/transactions/", views_transactions.transactions, name="transactions"),
    path("<int:account_id>/transactions.csv", views_transactions.transactions_csv,
         name="transactions_csv"),
    path("<int:account_id>/documents/<int:document_id>.pdf", views.document_download,
         name="document"),
    path("<int:account_id>/invoices/<int:document_id>/pay/", views.pay_invoice, name="pay"),
    path("<int:account_id>/invoices/<int:document_id>/pay/authenticated/", views.pay_return,
         name="pay_return"),
    path("<int:account_id>/payment-methods/", views.payment_methods, name="payment_methods"),
    path("<int:account_id>/payment-methods/<int:payment_method_id>/default/",
         views.payment_method_action, {"action": "default"}, name="payment_method_default"),
    path("<int:account_id>/payment-methods/<int:payment_method_id>/remove/",
         views.payment_method_action, {"action": "remove"}, name="payment_method_remove"),
    path("<int:account_id>/support/", support_views.support_index, name="support"),
    path("<int:account_id>/support/<int:request_id>/", support_views.support_thread,
         name="support_request"),
    path("<int:account_id>/details/", views_account.billing_details, name="details"),
]
