"""The billing center (DESIGN §6, the seed's steps 1–6): My account → Modify subscription → Cart /
Checkout → Place order → confirmation; View all transactions, receipts (PDF) and payment methods
(the Support pages are :mod:`prorata.support.views`).

Thin edges (STYLE rule 7): each view's first call is :func:`account_for` (404 for another account,
403 without the role), then it parses its input, calls one service or selector, and renders.
Business errors are shown with :func:`prorata.web.errors.error_message`, in the reader's language.
Every page works without JavaScript; htmx only refreshes the order summary as the form changes.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from prorata.accounts.models import Account, BillingMode, User
from prorata.accounts.permissions import Action, account_for, accounts_of, can
from prorata.billing.history import document_history
from prorata.billing.models import LedgerKind, PaymentStatus
from prorata.billing.receipts import document_pdf
from prorata.billing.renewals import (
    renewal_authenticating,
    renewal_needs_authentication,
    renewal_pay_now,
    renewal_payable,
    renewal_payment_confirm,
    voided_by,
)
from prorata.billing.selectors import (
    credit_balance,
    document_for_account,
)
from prorata.common.formatting import format_date, format_money
from prorata.licenses.services import license_release_choose
from prorata.payments.errors import AuthenticationFailed, CardNotForCorporate, CardTokenInvalid
from prorata.payments.gateway import get_gateway
from prorata.payments.services import (
    default_payment_method,
    payment_method_add,
    payment_method_remove,
    payment_method_set_default,
    payment_methods_for,
)
from prorata.subscriptions.errors import CancelReasonTooLong, PaymentFailed, QuoteChanged
from prorata.subscriptions.models import Order, OrderStatus, Subscription, SubscriptionStatus
from prorata.subscriptions.selectors import (
    CheckoutItem,
    CheckoutQuote,
    Quote,
    account_tax,
    cart_count,
    cart_items,
    checkout_quote,
    current_configuration,
    current_term,
    order_quote,
    quote_catalog,
    state_of,
    subscription_expired_on,
    subscriptions_for_account,
)
from prorata.subscriptions.services import (
    cart_add,
    cart_remove,
    checkout_place,
    order_payment_confirm,
    subscription_cancel_renewal,
    subscription_resume_renewal,
)
from prorata.web.errors import error_message
from prorata.web.views_transactions import history_rows
from prorata_core.catalog import Catalog, Plan
from prorata_core.errors import (
    DowngradeNeedsSupport,
    InvalidVatNumber,
    ProrataError,
)
from prorata_core.money import Money
from prorata_core.orders import OrderKind, OrderLine, price_order
from prorata_core.tax import EU_COUNTRIES

CYCLE_LABELS = {"monthly": _("Monthly"), "quarterly": _("Quarterly"), "annual": _("Annual")}
KIND_LABELS = {
    LedgerKind.INVOICE: _("Charge"),
    LedgerKind.CREDIT_NOTE: _("Credit"),
    LedgerKind.PAYMENT: _("Payment"),
    LedgerKind.REFUND: _("Refund"),
}


def cycle_label(code: str) -> str:
    label = CYCLE_LABELS.get(code)
    return str(label) if label is not None else code.replace("_", " ").capitalize()


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _contact(account: Account) -> dict[str, str] | None:
    """Who a corporate account turns to (S3, S14): its advisor, else Corporate Billing."""
    if account.billing_mode != BillingMode.CORPORATE:
        return None
    advisor = account.advisor
    if advisor is None:
        return {"name": gettext("Corporate Billing"), "email": ""}
    return {"name": advisor.get_full_name() or advisor.email, "email": advisor.email}


def _frame(user: User, account: Account) -> dict[str, Any]:
    """What the billing center's sub-navigation needs on every page of an account."""
    manage = can(user, Action.MANAGE_BILLING, account)
    return {"manage": manage, "billing": can(user, Action.VIEW_BILLING, account),
            "cart_count": cart_count(account=account) if manage else 0}


# --- /billing/ ------------------------------------------------------------------------------------

@login_required
def billing_index(request: HttpRequest) -> HttpResponse:
    """The user's accounts; straight to the only one."""
    accounts = list(accounts_of(_user(request)))
    if len(accounts) == 1:
        return redirect("billing:account", account_id=accounts[0].pk)
    return render(request, "web/billing/index.html", {"accounts": accounts})


# --- My account (S10, S15, S16) -------------------------------------------------------------------

@dataclass
class ProductCard:
    """One product of the account as its card shows it."""

    product_code: str
    product_name: str
    subscription: Subscription | None
    plan_name: str = ""
    participant_limit: int | None = None
    cycle: str = ""
    next_payment: Money | None = None
    next_payment_total: Money | None = None
    subscribe_now: bool = False
    options: bool = False
    #: When an expired subscription ended: its expiry's moment, never after its paid period.
    expired_on: datetime | None = None


def _next_payment(account: Account, subscription: Subscription, catalog: Catalog,
                  credit: Money) -> tuple[Money, Money] | None:
    """The renewal at the period's end priced by the engine: (total, amount due after credit)."""
    if not subscription.auto_renew or subscription.status != SubscriptionStatus.ACTIVE:
        return None
    state = state_of(subscription)
    try:
        order = price_order(
            kind=OrderKind.RENEWAL, at=subscription.period_end,
            target=current_configuration(catalog, state),
            tax=account_tax(account, subscription.period_end),
            credit_balance=credit if credit.currency == subscription.currency
            else Money(0, subscription.currency),
            current=current_term(catalog, state),
        )
    except (ProrataError, KeyError):
        return None
    return order.totals.total, order.totals.amount_due


@login_required
def account_page(request: HttpRequest, account_id: int) -> HttpResponse:
    account = account_for(_user(request), account_id, Action.VIEW_ACCOUNT)
    user = _user(request)
    billing = can(user, Action.VIEW_BILLING, account)
    manage = can(user, Action.MANAGE_BILLING, account)
    corporate = account.billing_mode == BillingMode.CORPORATE
    catalog = quote_catalog()
    credit = credit_balance(account) if billing else None
    subscriptions = {s.product.code: s for s in subscriptions_for_account(account=account)}
    cards = []
    for code, product in sorted(catalog.products.items()):
        subscription = subscriptions.get(code)
        card = ProductCard(code, product.name, subscription)
        if subscription is not None:
            plan = catalog.plans.get(subscription.plan.code)
            card.plan_name = subscription.plan.name
            card.participant_limit = plan.participant_limit if plan else None
            card.cycle = cycle_label(subscription.cycle.code)
            if billing and credit is not None:
                priced = _next_payment(account, subscription, catalog, credit)
                if priced is not None:
                    card.next_payment_total, card.next_payment = priced
        status = subscription.status if subscription is not None else None
        if subscription is not None and status == SubscriptionStatus.EXPIRED:
            card.expired_on = subscription_expired_on(subscription)
        if not corporate and manage:
            card.subscribe_now = status in (None, SubscriptionStatus.TRIALING,
                                            SubscriptionStatus.EXPIRED)
            card.options = status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)
        cards.append(card)
    activity = (document_history(account=account, limit=5).rows if billing else [])
    return render(request, "web/billing/account.html", {
        "account": account, "cards": cards, "billing": billing, "manage": manage,
        "contact": _contact(account), "credit": credit, "activity": history_rows(activity, account.pk),
        "cart_count": cart_count(account=account) if manage else 0,
    })


@login_required
@require_http_methods(["GET", "POST"])
def renewal_toggle(request: HttpRequest, account_id: int, product_code: str,
                   resume: bool) -> HttpResponse:
    """Cancel renewal / Resume renewal (S2), from the card's Options menu. Cancelling asks first
    (GET: a confirmation page with an optional reason, kept for staff); resuming is a POST."""
    account = account_for(_user(request), account_id, Action.MANAGE_BILLING)
    if request.method == "GET":
        if resume:
            return redirect("billing:account", account_id=account.pk)
        subscription = Subscription.objects.select_related("product", "plan").filter(
            account=account, product__code=product_code).first()
        if subscription is None:
            raise Http404("No such subscription")
        return render(request, "web/billing/cancel_renewal.html", {
            "account": account, "subscription": subscription, **_frame(_user(request), account)})
    try:
        if resume:
            subscription = subscription_resume_renewal(
                account=account, user=_user(request), product_code=product_code)
            messages.success(request, gettext(
                "Your subscription renews again automatically. A confirmation e-mail is on its "
                "way."))
        else:
            subscription = subscription_cancel_renewal(
                account=account, user=_user(request), product_code=product_code,
                reason=request.POST.get("reason", ""))
            messages.success(request, gettext(
                "Renewal cancelled: your subscription stays active until %(date)s, then it "
                "expires. A confirmation e-mail is on its way."
            ) % {"date": format_date(subscription.period_end, get_language() or "en")})
    except CancelReasonTooLong as error:
        subscription = Subscription.objects.select_related("product", "plan").filter(
            account=account, product__code=product_code).first()
        return render(request, "web/billing/cancel_renewal.html", {
            "account": account, "subscription": subscription,
            "reason": request.POST.get("reason", ""), "error": error_message(error),
            **_frame(_user(request), account)}, status=422)
    except ProrataError as error:
        messages.error(request, error_message(error))
    return redirect("billing:account", account_id=account.pk)


# --- Modify subscription (S4, S13, S17, S18) ----------------------------------------------------

def _int(value: Any, default: int) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def _sellable_plans(catalog: Catalog, product_code: str, currency: str) -> list[Plan]:
    """The plans a customer may choose online: priced in the account's currency, not trials."""
    return [plan for plan in catalog.plans_of(product_code)
            if not plan.is_trial and plan.self_service
            and any((plan.code, cycle, currency) in catalog.prices for cycle in catalog.cycles)]


@dataclass
class SummaryLine:
    kind: str
    label: str
    detail: str
    start: datetime
    end: datetime
    amount: Money
    tax: Money


def _line(line: OrderLine, catalog: Catalog) -> SummaryLine:
    plan = catalog.plans.get(line.plan_code)
    name = plan.name if plan else line.plan_code
    detail = gettext("%(plan)s, %(count)s × %(rate)s, %(cycle)s") % {
        "plan": name, "count": line.quantity, "cycle": cycle_label(line.cycle_code).lower(),
        "rate": _money(line.unit_amount),
    }
    if line.kind.value == "credit":
        label = gettext("Credit for unused time")
    else:
        label = gettext("New billing period")
    return SummaryLine(line.kind.value, label, detail, line.period.start, line.period.end,
                       line.amount, line.tax)


def _money(value: Money) -> str:
    return format_money(value, get_language() or "en")


def _quote_context(quote: Quote, catalog: Catalog) -> dict[str, Any]:
    order = quote.order
    return {
        "quote": quote, "lines": [_line(line, catalog) for line in order.lines],
        "totals": order.totals, "period": order.period, "tax": order.tax,
    }


@dataclass
class Choice:
    plan: str
    cycle: str
    quantity: int


def _choice(request: HttpRequest, source: Any, subscription: Subscription | None,
            plans: list[Plan], cycles: list[str], in_cart: CheckoutItem | None = None) -> Choice:
    """What the form shows: the submitted values, else the choice waiting in the cart for this
    product (Modify order comes back to it), else the current subscription, else the first plan."""
    if in_cart is not None:
        default_plan, default_cycle = in_cart.plan_code, in_cart.cycle_code
        default_quantity = in_cart.quantity
        plan = source.get("plan") or default_plan
        cycle = source.get("cycle") or default_cycle
        return Choice(plan, cycle, _int(source.get("quantity"), default_quantity))
    default_plan = (subscription.plan.code if subscription is not None
                    and subscription.status != SubscriptionStatus.TRIALING else
                    (plans[0].code if plans else ""))
    default_cycle = subscription.cycle.code if subscription is not None else (
        cycles[0] if cycles else "")
    default_quantity = subscription.quantity if subscription is not None else 1
    plan = source.get("plan") or default_plan
    cycle = source.get("cycle") or default_cycle
    return Choice(plan, cycle, _int(source.get("quantity"), default_quantity))


@dataclass
class _Offer:
    """What Modify subscription offers for one product: the subscription (if any), the plans and
    billing periods sold in its currency."""

    subscription: Subscription | None
    currency: str
    plans: list[Plan]
    cycles: list[str]


def _offer(account: Account, catalog: Catalog, product_code: str) -> _Offer:
    subscription = Subscription.objects.select_related("plan", "cycle", "product").filter(
        account=account, product__code=product_code).first()
    currency = subscription.currency if subscription else (
        account.currency or ("EUR" if account.country in EU_COUNTRIES else "USD"))
    plans = _sellable_plans(catalog, product_code, currency)
    cycles = sorted({cycle for (plan, cycle, cur) in catalog.prices if cur == currency
                     and plan in {p.code for p in plans}},
                    key=lambda code: (catalog.cycles[code].months, code))
    return _Offer(subscription, currency, plans, cycles)


def _modify_quote(account: Account, user: User, product_code: str, choice: Choice
                  ) -> tuple[Quote | None, str | None, bool]:
    """The live order summary of the choice, or the refusal's message (and whether it is a
    downgrade, which offers a support request instead)."""
    try:
        quote = order_quote(account=account, user=user, product_code=product_code,
                            plan_code=choice.plan, cycle_code=choice.cycle,
                            quantity=choice.quantity)
    except DowngradeNeedsSupport as refused:
        return None, error_message(refused), True
    except ProrataError as refused:
        return None, error_message(refused), False
    except KeyError:
        return None, gettext("This plan or billing period is not sold: choose another one."), False
    return quote, None, False


def _downgrade_message(product: Any, subscription: Subscription, choice: Choice,
                       catalog: Catalog) -> str:
    """The prefilled support request for a plan downgrade (S13)."""
    target = catalog.plans.get(choice.plan)
    return gettext(
        "Please downgrade my %(product)s subscription from %(current)s to %(target)s "
        "(%(count)s licenses, %(cycle)s billing)."
    ) % {"product": product.name, "current": subscription.plan.name,
         "target": target.name if target else choice.plan, "count": choice.quantity,
         "cycle": cycle_label(choice.cycle).lower()}


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def modify(request: HttpRequest, account_id: int, product_code: str) -> HttpResponse:
    """Plan, licenses and billing period with the live order summary; Checkout or Add to cart."""
    account = account_for(_user(request), account_id, Action.MANAGE_BILLING)
    user = _user(request)
    catalog = quote_catalog()
    product = catalog.products.get(product_code)
    if product is None:
        raise Http404("No such product")
    offer = _offer(account, catalog, product_code)
    subscription = offer.subscription
    source = request.POST if request.method == "POST" else request.GET
    in_cart = cart_items(account=account)
    others = [item for item in in_cart if item.product_code != product_code]
    mine = next((item for item in in_cart if item.product_code == product_code), None)
    choice = _choice(request, source, subscription, offer.plans, offer.cycles, mine)
    quote, error, downgrade = _modify_quote(account, user, product_code, choice)

    if request.method == "POST" and quote is not None:
        try:
            # Who loses a license if the count goes below the assignments (issue 13): recorded
            # now, applied only when the order is placed.
            license_release_choose(actor=user, account=account, product_code=product_code,
                                   quantity=choice.quantity,
                                   member_ids=request.POST.getlist("free_member"))
            cart_add(account=account, user=user, product_code=product_code,
                     plan_code=choice.plan, cycle_code=choice.cycle, quantity=choice.quantity)
        except ProrataError as refused:
            error = error_message(refused)
        else:
            if request.POST.get("action") == "add_to_cart":
                messages.success(request, gettext("Added to your cart."))
                return redirect("billing:cart", account_id=account.pk)
            return redirect("billing:checkout", account_id=account.pk)

    context = {
        "account": account, "product": product, "subscription": subscription,
        "plans": [{"plan": plan,
                   "price": catalog.prices.get((plan.code, choice.cycle, offer.currency)),
                   "current": subscription is not None and subscription.plan.code == plan.code
                   and subscription.status != SubscriptionStatus.TRIALING}
                  for plan in offer.plans],
        "cycles": [(code, cycle_label(code)) for code in offer.cycles],
        "choice": choice, "error": error, "downgrade": downgrade,
        "support_message": _downgrade_message(product, subscription, choice, catalog)
        if downgrade and subscription is not None else "",
        "add_to_cart": bool(others),
        "contact": _contact(account), "credit": credit_balance(account, offer.currency),
        "purchase": subscription is None or subscription.status in (
            SubscriptionStatus.TRIALING, SubscriptionStatus.EXPIRED),
        **(_quote_context(quote, catalog) if quote is not None else {}),
    }
    if request.headers.get("HX-Request") == "true":
        return render(request, "web/billing/_summary.html", context)
    return render(request, "web/billing/modify.html", context)


# --- the cart and the checkout (S18–S21) --------------------------------------------------------

@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def cart(request: HttpRequest, account_id: int) -> HttpResponse:
    account = account_for(_user(request), account_id, Action.MANAGE_BILLING)
    if request.method == "POST":
        cart_remove(account=account, user=_user(request),
                    product_code=request.POST.get("product", ""))
        messages.info(request, gettext("Removed from your cart."))
        return redirect("billing:cart", account_id=account.pk)
    context: dict[str, Any] = {"account": account, **_frame(_user(request), account)}
    if cart_items(account=account):
        try:
            context.update(_checkout_context(checkout_quote(account=account, user=_user(request))))
        except ProrataError as refused:
            context["error"] = error_message(refused)
    return render(request, "web/billing/cart.html", context)


def _checkout_context(quote: CheckoutQuote) -> dict[str, Any]:
    catalog = quote_catalog()
    return {
        "checkout": quote,
        "items": [{"quote": item, **_quote_context(item, catalog),
                   "rate": item.order.configuration.unit_amount,
                   "plan_name": item.order.configuration.plan.name,
                   "cycle": cycle_label(item.order.configuration.cycle.code)}
                  for item in quote.items],
        "totals": quote.totals, "tax": quote.tax,
        "expected": ",".join(quote.fingerprints),
    }


def _card(data: Any) -> tuple[str | None, dict[str, str]]:
    """The single-use token the gateway's card form put in the posted form, or a field error.
    The card itself never comes here: the form has no card fields (the gateway's frame has)."""
    token = (data.get("card_token") or "").strip()
    if not token:
        return None, {"number": gettext("Enter your card in the card form.")}
    return token[:200], {}


def _card_form() -> dict[str, Any]:
    """The gateway's card form for this page's language (its script, integrity hash, options)."""
    language = "fr" if (get_language() or "en").startswith("fr") else "en"
    form = get_gateway().card_form(locale=language)
    return {"card_form": form, "card_form_options": json.dumps(form.options)}


@dataclass
class _Attempt:
    """What posting the checkout form gave: the order page to go to, or what to show again."""

    redirect_to: HttpResponse | None = None
    errors: dict[str, str] | None = None
    alert: str | None = None


def _checkout_post(request: HttpRequest, account: Account, user: User, vat_number: str
                   ) -> _Attempt:
    """Place the order from the posted form (card or saved card, VAT number) and say where to go."""
    data = request.POST
    method = data.get("payment_method", "")
    card_token = None
    errors: dict[str, str] = {}
    if method == "new":
        card_token, errors = _card(data)
    if errors:
        return _Attempt(errors=errors)
    try:
        result = checkout_place(
            account=account, user=user,
            idempotency_key=data.get("idempotency_key", ""),
            expected=[f for f in data.get("expected", "").split(",") if f],
            payment_method_id=_int(method, 0) or None if method not in ("", "new") else None,
            card_token=card_token, vat_number=vat_number or None,
            site_url=request.build_absolute_uri("/"),
        )
    except (QuoteChanged, PaymentFailed) as refused:
        return _Attempt(errors={}, alert=error_message(refused))
    except InvalidVatNumber as invalid:
        return _Attempt(errors={"vat_number": error_message(invalid)})
    except CardTokenInvalid as rejected:
        return _Attempt(errors={"number": error_message(rejected)})
    except ProrataError as refused:
        return _Attempt(errors={}, alert=error_message(refused))
    if result.status == PaymentStatus.REQUIRES_ACTION and result.action_url:
        # The bank's authentication page (the gateway's), which sends the customer back to
        # order_return; the order waits meanwhile.
        return _Attempt(redirect_to=HttpResponseRedirect(result.action_url))
    if result.message:
        messages.warning(request, gettext(result.message))
    return _Attempt(redirect_to=redirect("billing:order", account_id=account.pk,
                                         order_id=result.order.pk))


def _checkout_page(request: HttpRequest, account: Account, user: User, vat_number: str,
                   errors: dict[str, str], alert: str | None,
                   template: str = "web/billing/checkout.html") -> HttpResponse:
    """The checkout page for the cart as priced now (with the VAT number typed, when valid)."""
    data = request.POST if request.method == "POST" else None
    try:
        quote = checkout_quote(account=account, user=user,
                               vat_number=vat_number if "vat_number" not in errors and vat_number
                               else None)
    except InvalidVatNumber as invalid:
        errors["vat_number"] = error_message(invalid)
        quote = checkout_quote(account=account, user=user)
    except ProrataError as refused:
        messages.error(request, error_message(refused))
        return redirect("billing:cart", account_id=account.pk)
    context = _checkout_context(quote)
    single = quote.items[0].item.product_code if len(quote.items) == 1 else None
    default = default_payment_method(account=account)
    chosen = data.get("payment_method") if data is not None else None
    context.update({
        "account": account, "idempotency_key": uuid.uuid4().hex, "errors": errors,
        "alert": alert, "cards": payment_methods_for(account=account),
        "chosen": chosen or (str(default.pk) if default else "new"),
        "vat_number": vat_number, "eu": account.country in EU_COUNTRIES,
        **_card_form(),
        # Modify order goes back to the choice waiting in the cart (the modify page reads it).
        "modify_url": reverse("billing:modify", args=[account.pk, single]) if single
        else reverse("billing:cart", args=[account.pk]),
    })
    return render(request, template, context)


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def checkout(request: HttpRequest, account_id: int) -> HttpResponse:
    """The checkout page: billing period from today, licenses, rate, tax, credit applied, total
    due, Modify order; payment details and VAT number when money is due; Place order.

    The form carries an idempotency key made when the page was rendered and the fingerprints of
    the quotes shown: a double click, a reload or the back button places the order once.
    """
    account = account_for(_user(request), account_id, Action.MANAGE_BILLING)
    user = _user(request)
    if account.is_corporate:
        # Ordered by the advisor, invoiced on payment terms (S3, S14): no checkout, no card here.
        return redirect("billing:account", account_id=account.pk)
    if request.method == "POST":
        # The same form posted again (double click, reload, back button): its first answer.
        placed = Order.objects.filter(
            account=account, idempotency_key=request.POST.get("idempotency_key", "").strip(),
        ).exclude(status=OrderStatus.FAILED).first()
        if placed is not None:
            return redirect("billing:order", account_id=account.pk, order_id=placed.pk)
    if not cart_items(account=account):
        messages.info(request, gettext("Your cart is empty: choose a change first."))
        return redirect("billing:account", account_id=account.pk)
    if request.method == "POST":
        vat_number = request.POST.get("vat_number", "").strip()
        attempt = _checkout_post(request, account, user, vat_number)
        if attempt.redirect_to is not None:
            return attempt.redirect_to
        return _checkout_page(request, account, user, vat_number, attempt.errors or {},
                              attempt.alert)
    if request.headers.get("HX-Request") == "true" and "vat_number" in request.GET:
        # The VAT number typed on the page: the summary, the quotes' fingerprints and the total
        # are refreshed in place, so the card fields keep what was typed in them.
        return _checkout_page(request, account, user, request.GET["vat_number"].strip()[:40], {},
                              None, template="web/billing/_checkout_live.html")
    return _checkout_page(request, account, user, account.vat_number.strip(), {}, None)


@login_required
def order_page(request: HttpRequest, account_id: int, order_id: int) -> HttpResponse:
    """The confirmation page (S6, S12, S21): what changed, amount paid, next billing date,
    receipts."""
    account = account_for(_user(request), account_id, Action.VIEW_BILLING)
    order = Order.objects.filter(account=account, pk=order_id).first()
    if order is None:
        raise Http404("No such order")
    documents = list(order.documents.filter(number__isnull=False).order_by("id"))
    paid = sum(p.amount for p in order.payments.all() if p.status == "succeeded")
    items = []
    for item in order.summary.items:
        config, previous = item.configuration, item.previous
        items.append({
            "product": item.product_name, "plan": config.plan_name,
            "quantity": config.quantity, "cycle": cycle_label(config.cycle),
            "previous": None if previous is None else {
                "plan": previous.plan_name, "quantity": previous.quantity,
                "cycle": cycle_label(previous.cycle)},
            "start": item.period.start, "end": item.period.end,
            "next_billing_date": item.next_billing_date, "renews": item.renews,
        })
    return render(request, "web/billing/order.html", {
        "account": account, "order": order, "items": items, "documents": documents,
        "paid": Money(paid, order.currency),
        "credit_created": Money(order.credit_created, order.currency),
        "credit_applied": Money(order.credit_applied, order.currency),
        "total": Money(order.total, order.currency),
        "done": order.status in (OrderStatus.PAID, OrderStatus.INVOICED),
        "failed": order.status == OrderStatus.FAILED,
        "authenticate": next((p for p in order.payments.all()
                              if p.status == PaymentStatus.REQUIRES_ACTION and p.action_url
                              and order.status == OrderStatus.PLACED), None),
    })


@login_required
@never_cache
def order_return(request: HttpRequest, account_id: int, order_id: int) -> HttpResponse:
    """Where the gateway sends the customer back after authenticating an order's payment
    (3-D Secure): its outcome is asked of the gateway and the order settled once
    (:func:`~prorata.subscriptions.services.order_payment_confirm`; loading this page again
    changes nothing). Paid: the confirmation page. Refused: back to the checkout with the bank's
    message (nothing was applied: the cart is as it was). Not answered yet: the order's page,
    with the way back to the bank's page."""
    user = _user(request)
    account = account_for(user, account_id, Action.MANAGE_BILLING)
    order = Order.objects.filter(account=account, pk=order_id).first()
    if order is None:
        raise Http404("No such order")
    try:
        result = order_payment_confirm(account=account, order=order, actor=user)
    except PaymentFailed as refused:
        messages.error(request, error_message(refused))
        if cart_items(account=account):
            return redirect("billing:checkout", account_id=account.pk)
        return redirect("billing:order", account_id=account.pk, order_id=order.pk)
    if result.status == PaymentStatus.REQUIRES_ACTION:
        messages.warning(request, gettext(
            "Your bank has not confirmed the payment yet: nothing was charged. Authenticate it "
            "to complete your order."))
    return redirect("billing:order", account_id=account.pk, order_id=order.pk)


# --- View all transactions and receipts (S10, S12) -------------------------------------------------

@login_required
def document_download(request: HttpRequest, account_id: int, document_id: int) -> HttpResponse:
    """An invoice or credit note as PDF, in the reader's language (404 for another account's)."""
    account = account_for(_user(request), account_id, Action.VIEW_BILLING)
    document = document_for_account(account=account, document_id=document_id)
    if document is None:
        raise Http404("No such document")
    language = "fr" if (get_language() or "en").startswith("fr") else "en"
    filename, content = document_pdf(document=document, language=language)
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def pay_invoice(request: HttpRequest, account_id: int, document_id: int) -> HttpResponse:
    """Pay a past-due renewal's open invoice now with the default card: it ends ``past_due``."""
    user = _user(request)
    account = account_for(user, account_id, Action.MANAGE_BILLING)
    document = document_for_account(account=account, document_id=document_id)
    if document is None:
        raise Http404("No such document")
    if request.method == "POST" and account.is_corporate:
        # Paid by bank transfer, recorded by the advisor (S14): never charged to a card here.
        return redirect("billing:pay", account_id=account.pk, document_id=document.pk)
    if request.method == "POST":
        try:
            if request.POST.get("payment_method") == "new":
                # A new card (the gateway's token) becomes the default card, then pays.
                token, errors = _card(request.POST)
                if token is None:
                    messages.error(request, errors["number"])
                    return redirect("billing:pay", account_id=account.pk,
                                    document_id=document.pk)
                payment_method_add(account=account, token=token, actor=user, make_default=True)
            outcome = renewal_pay_now(account=account, user=user, invoice_id=document.pk,
                                      site_url=request.build_absolute_uri("/"))
        except ProrataError as refused:
            messages.error(request, error_message(refused))
            return redirect("billing:pay", account_id=account.pk, document_id=document.pk)
        if outcome.status == "requires_action":
            # The bank's authentication page (the gateway's), which sends the customer back to
            # pay_return; the attempt waits meanwhile.
            return HttpResponseRedirect(outcome.action_url)
        if outcome.status == "paid":
            messages.success(request, gettext("Thank you: invoice %(number)s is paid.")
                             % {"number": document.number})
        else:
            messages.warning(request, gettext(
                "We could not confirm the payment with your bank yet. Do not pay again: we will "
                "check it and let you know."))
        return redirect("billing:account", account_id=account.pk)
    if renewal_authenticating(account_id=account.pk, invoice=document) is not None:
        # An authentication the bank has ended meanwhile (failed, expired, or approved without
        # the customer coming back) is settled now, so that the page offers what is true.
        renewal_payment_confirm(account_id=account.pk, invoice_id=document.pk)
        document.refresh_from_db()
    payable = renewal_payable(account_id=account.pk, invoice=document)
    return render(request, "web/billing/pay.html", {
        "account": account, "document": document, "payable": payable,
        "authenticate": payable and renewal_needs_authentication(account_id=account.pk,
                                                                 invoice=document),
        "authenticating": renewal_authenticating(account_id=account.pk, invoice=document),
        "amount_due": Money(document.amount_due, document.currency),
        "card": default_payment_method(account=account),
        "voided_by": voided_by(document), "contact": _contact(account), "manage": True,
        "errors": {}, **_card_form(),
    })


@login_required
@never_cache
def pay_return(request: HttpRequest, account_id: int, document_id: int) -> HttpResponse:
    """Where the gateway sends the customer back after authenticating a Pay now payment
    (3-D Secure): its outcome is asked of the gateway and the attempt settled once
    (:func:`~prorata.billing.renewals.renewal_payment_confirm`; loading this page again changes
    nothing). Paid: My account, with the thanks. Refused or expired: the Pay now page with the
    bank's message (the dunning schedule is as it was). Not answered yet: the Pay now page, with
    the way back to the bank's page."""
    user = _user(request)
    account = account_for(user, account_id, Action.MANAGE_BILLING)
    document = document_for_account(account=account, document_id=document_id)
    if document is None:
        raise Http404("No such document")
    outcome = renewal_payment_confirm(account_id=account.pk, invoice_id=document.pk)
    document.refresh_from_db()
    if document.amount_due == 0 and outcome in ("paid", "settled_before"):
        messages.success(request, gettext("Thank you: invoice %(number)s is paid.")
                         % {"number": document.number})
        return redirect("billing:account", account_id=account.pk)
    if outcome == "requires_action":
        messages.warning(request, gettext(
            "Your bank has not confirmed the payment yet: nothing was charged. Authenticate it "
            "to pay."))
    else:  # refused now, or before (the job gave up on it, a webhook came first)
        last = document.payments.order_by("-id").first()
        if last is not None and last.status == PaymentStatus.FAILED:
            messages.error(request, gettext(last.message) if last.message
                           else error_message(AuthenticationFailed("Not authenticated.")))
    return redirect("billing:pay", account_id=account.pk, document_id=document.pk)


# --- payment methods (S20) -----------------------------------------------------------------------

@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def payment_methods(request: HttpRequest, account_id: int) -> HttpResponse:
    """The account's saved cards: list, add (POST), make default, remove."""
    account = account_for(_user(request), account_id, Action.MANAGE_BILLING)
    errors: dict[str, str] = {}
    if request.method == "POST":
        token, errors = _card(request.POST)
        if token is not None:
            try:
                method = payment_method_add(account=account, token=token, actor=_user(request),
                                            make_default=bool(request.POST.get("make_default")))
            except CardTokenInvalid as rejected:
                errors["number"] = error_message(rejected)
            except CardNotForCorporate as refused:
                errors["number"] = error_message(refused)
            else:
                messages.success(request, gettext("Card ending in %(last4)s added.")
                                 % {"last4": method.last4})
                return redirect("billing:payment_methods", account_id=account.pk)
    return render(request, "web/billing/payment_methods.html", {
        "account": account, "cards": payment_methods_for(account=account), "errors": errors,
        **_frame(_user(request), account), "contact": _contact(account), **_card_form(),
    }, status=422 if errors else 200)


@login_required
@require_POST
def payment_method_action(request: HttpRequest, account_id: int, payment_method_id: int,
                          action: str) -> HttpResponse:
    account = account_for(_user(request), account_id, Action.MANAGE_BILLING)
    try:
        if action == "default":
            payment_method_set_default(account=account, payment_method_id=payment_method_id,
                                       actor=_user(request))
            messages.success(request, gettext("Default card changed."))
        else:
            payment_method_remove(account=account, payment_method_id=payment_method_id,
                                  actor=_user(request))
            messages.success(request, gettext("Card removed."))
    except ProrataError as refused:
        if refused.http_status == 404:
            raise Http404("No such card") from None
        messages.error(request, error_message(refused))
    return HttpResponseRedirect(reverse("billing:payment_methods", args=[account.pk]))



