"""Console security: the sign-in is throttled like the customer's, each role sees only what it
may (advisors their accounts, operators the catalog), and catalog changes are audited."""

from __future__ import annotations

import pytest
from django.test import Client

from prorata.accounts.models import AuditEntry, SignInFailure
from prorata.accounts.services import audit_record
from prorata.accounts.throttle import MAX_PER_ADDRESS
from prorata.catalog.models import Plan, Price
from prorata.support.models import SupportRequest
from prorata.support.services import support_request_create
from tests.app.console_auth import console_login
from tests.app.subscriptions.support import customer, staff

pytestmark = pytest.mark.django_db


def sign_in(client: Client, email: str, password: str):
    return client.post("/console/login/?next=/console/",
                       {"username": email, "password": password})


def test_the_console_sign_in_locks_after_five_failures_and_audits_the_lockout(clock):
    agent = staff("support@prorata.example", "support_agent")
    agent.set_password("right-password-1")
    agent.save()
    client = Client()
    for attempt in range(MAX_PER_ADDRESS + 2):
        response = sign_in(client, agent.email, "wrong")
        assert response.status_code == 200, attempt
    assert "Too many failed sign-ins for this address" in response.content.decode()
    # Refused attempts are not counted: five failures, then the lockout.
    assert SignInFailure.objects.filter(email=agent.email).count() == MAX_PER_ADDRESS
    lockout = AuditEntry.objects.get(action="auth.lockout")
    assert lockout.after["email"] == agent.email and lockout.object_id == str(agent.pk)
    response = sign_in(client, agent.email, "right-password-1")
    assert response.status_code == 200
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session
    clock.advance(__import__("datetime").timedelta(minutes=16))
    response = sign_in(client, agent.email, "right-password-1")
    assert response.status_code == 302
    assert SignInFailure.objects.filter(email=agent.email).count() == 0


def test_a_customer_password_is_a_counted_failure_in_the_console(clock):
    _account, alice = customer("Acme", "US", "alice@acme.example")
    response = sign_in(Client(), alice.email, "pw")
    assert response.status_code == 200
    assert SignInFailure.objects.filter(email=alice.email).count() == 1


@pytest.fixture
def world(clock):
    advisor = staff("advisor@prorata.example", "corporate_advisor")
    other_advisor = staff("other-advisor@prorata.example", "corporate_advisor")
    globex, gina = customer("Globex", "DE", "gina@globex.example", corporate_advisor=advisor)
    initech, ivan = customer("Initech", "DE", "ivan@initech.example",
                             corporate_advisor=other_advisor)
    bistro, bea = customer("Bistro", "FR", "bea@bistro.example")
    requests = {
        name: support_request_create(account=account, user=user, kind="billing_question",
                                     message=f"A question from {name}")
        for name, account, user in (("globex", globex, gina), ("initech", initech, ivan),
                                    ("bistro", bistro, bea))
    }
    return {"advisor": advisor, "other_advisor": other_advisor, "requests": requests,
            "accounts": {"globex": globex, "initech": initech, "bistro": bistro},
            "people": {"globex": gina, "initech": ivan, "bistro": bea},
            "agent": staff("support@prorata.example", "support_agent"),
            "operator": staff("ops@prorata.example", "operator")}


def as_staff(user) -> Client:
    client = Client()
    console_login(client, user)
    return client


def test_an_advisor_sees_and_answers_only_the_requests_of_the_accounts_they_advise(world):
    client = as_staff(world["advisor"])
    listing = client.get("/console/support/supportrequest/").content.decode()
    assert "Globex" in listing
    assert "Bistro" not in listing and "Initech" not in listing
    bistro = world["requests"]["bistro"]
    url = f"/console/support/supportrequest/{bistro.pk}/change/"
    assert client.get(url).status_code == 302  # "does not exist" for them: back to the index
    client.post(url, {"status": "closed", "answer": "Closed by the wrong advisor"})
    bistro.refresh_from_db()
    assert bistro.status == "open"
    assert not AuditEntry.objects.filter(action="support_request.answer").exists()


def test_a_support_agent_sees_every_request(world):
    listing = as_staff(world["agent"]).get("/console/support/supportrequest/").content.decode()
    assert all(name in listing for name in ("Globex", "Bistro", "Initech"))


def test_an_operator_sees_no_support_request_and_no_account(world):
    client = as_staff(world["operator"])
    assert client.get("/console/support/supportrequest/").status_code == 403
    assert client.get("/console/accounts/account/").status_code == 403


def test_an_advisor_reads_the_audit_rows_of_their_accounts_and_their_own_only(world):
    audit_record(actor=None, action="auth.lockout", after={"email": "bea@bistro.example"},
                 ip="203.0.113.9")
    page = as_staff(world["advisor"]).get("/console/accounts/auditentry/").content.decode()
    assert "Globex" in page
    assert "Bistro" not in page and "Initech" not in page and "203.0.113.9" not in page


def test_an_operator_reads_only_the_catalog_and_setting_audit_rows(world, demo_catalog):
    operator = world["operator"]
    client = as_staff(operator)
    plan = Plan.objects.get(code="lite")
    client.post(f"/console/catalog/plan/{plan.pk}/change/", plan_form(plan, name="Lite 2"))
    page = client.get("/console/accounts/auditentry/").content.decode()
    assert "catalog.plan.change" in page
    assert "support_request.create" not in page and "Globex" not in page


def test_people_are_filtered_by_role(world):
    advisor_page = as_staff(world["advisor"]).get("/console/accounts/user/").content.decode()
    assert "gina@globex.example" in advisor_page
    assert "bea@bistro.example" not in advisor_page
    assert "ivan@initech.example" not in advisor_page
    assert "support@prorata.example" not in advisor_page
    agent_page = as_staff(world["agent"]).get("/console/accounts/user/").content.decode()
    assert "bea@bistro.example" in agent_page and "gina@globex.example" in agent_page
    assert "advisor@prorata.example" not in agent_page  # other staff are not theirs to browse
    bistro_bea = world["people"]["bistro"]
    response = as_staff(world["advisor"]).get(f"/console/accounts/user/{bistro_bea.pk}/change/")
    assert response.status_code == 302


def plan_form(plan: Plan, **changes) -> dict[str, str]:
    prices = list(Price.objects.filter(plan=plan).order_by("pk"))
    data = {
        "product": str(plan.product_id), "code": plan.code, "name": plan.name,
        "rank": str(plan.rank), "participant_limit": str(plan.participant_limit),
        "features": __import__("json").dumps(plan.features), "trial_days": "" if plan.trial_days is None else str(plan.trial_days),
        "min_licenses": str(plan.min_licenses), "max_licenses": str(plan.max_licenses),
        "prices-TOTAL_FORMS": str(len(prices)), "prices-INITIAL_FORMS": str(len(prices)),
        "prices-MIN_NUM_FORMS": "0", "prices-MAX_NUM_FORMS": "1000",
    }
    if plan.self_service:
        data["self_service"] = "on"
    if plan.active:
        data["active"] = "on"
    for index, price in enumerate(prices):
        data.update({f"prices-{index}-id": str(price.pk), f"prices-{index}-plan": str(plan.pk),
                     f"prices-{index}-cycle": str(price.cycle_id),
                     f"prices-{index}-currency": price.currency,
                     f"prices-{index}-amount": price.money.as_decimal_string()})
    data.update(changes)
    return data


def test_catalog_changes_are_audited_with_before_and_after_and_ip(clock, demo_catalog):
    operator = staff("ops@prorata.example", "operator")
    client = as_staff(operator)
    plan = Plan.objects.get(code="lite")
    data = plan_form(plan, name="Lite plus")
    eur_monthly = next(k for k, v in data.items() if v == "EUR" and k.endswith("-currency")
                       and Price.objects.get(pk=data[k.replace("currency", "id")]).cycle.code
                       == "monthly")
    data[eur_monthly.replace("currency", "amount")] = "56.00"
    response = client.post(f"/console/catalog/plan/{plan.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    change = AuditEntry.objects.get(action="catalog.plan.change")
    assert (change.before["name"], change.after["name"]) == ("Lite", "Lite plus")
    assert (change.actor, change.ip) == (operator, "127.0.0.1")
    price = AuditEntry.objects.get(action="catalog.price.change")
    assert (price.before["unit_amount"], price.after["unit_amount"]) == (5500, 5600)
    # Unchanged prices leave no row.
    assert AuditEntry.objects.filter(action__startswith="catalog.").count() == 2


def test_a_support_agent_cannot_change_the_catalog(clock, demo_catalog):
    client = as_staff(staff("support@prorata.example", "support_agent"))
    plan = Plan.objects.get(code="lite")
    response = client.post(f"/console/catalog/plan/{plan.pk}/change/",
                           plan_form(plan, name="Lite by support"))
    assert response.status_code == 403
    plan.refresh_from_db()
    assert plan.name == "Lite"
    assert not AuditEntry.objects.filter(action__startswith="catalog.").exists()
    assert SupportRequest.objects.count() == 0
