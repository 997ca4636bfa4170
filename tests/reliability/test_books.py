"""The books cannot be rewritten (issue 18, plan T16's deletion part and T25): as the application's
database role, every statement that would rewrite an issued document, the ledger or the audit log is
refused by the database, through raw SQL and through the ORM, and the product's own flows still
work under that role.

On PostgreSQL the tests run as ``prorata_app_test``, granted by ``prorata grant_app_role`` exactly
what production's application role gets (:func:`tests.reliability.books.as_app_role`); on SQLite
(no roles) the triggers alone are tried, and the statements only PostgreSQL has are skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.db.models import F, ProtectedError

from prorata.accounts.models import AppendOnlyError, AuditEntry
from prorata.accounts.services import audit_record
from prorata.billing.models import (
    Document,
    DocumentKind,
    DocumentLine,
    DocumentStatus,
    ImmutableRecord,
    LedgerEntry,
    Refund,
)
from prorata.cli import OWNER_COMMANDS
from prorata.common import books
from prorata.common.management.commands.grant_app_role import grant_app_role
from prorata_core.periods import utc
from tests.app.subscriptions.support import buy, card, customer
from tests.reliability.books import APP_ROLE, as_app_role
from tests.reliability.invariants import check_all
from tests.reliability.world import history

ROOT = Path(__file__).resolve().parents[2]
PG = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL roles")


@dataclass
class Books:
    invoice: Document
    line: DocumentLine
    entry: LedgerEntry
    audit: AuditEntry


@pytest.fixture
def issued(clock, demo_catalog) -> Books:
    clock.set(utc(2026, 1, 1))
    account, user = customer("Acme Corp", "US", "alice@acme.example", currency="USD")
    invoice = buy(account, user, "lite", "monthly", 5, card_token=card()).invoice
    assert invoice.number and invoice.status == DocumentStatus.PAID
    return Books(invoice=invoice, line=invoice.lines.first(),
                 entry=LedgerEntry.objects.filter(account=account).first(),
                 audit=audit_record(actor=user, action="test.books", account=account))


def _snapshot(b: Books) -> tuple:
    """Everything the refused statements aimed at, as stored."""
    invoice = Document.objects.values().get(pk=b.invoice.pk)
    lines = list(DocumentLine.objects.filter(document=b.invoice).values().order_by("pk"))
    ledger = list(LedgerEntry.objects.values().order_by("pk"))
    audit = list(AuditEntry.objects.values().order_by("pk"))
    return invoice, lines, ledger, audit


# --- raw SQL, as the application's role -----------------------------------------------------------

RAW: dict[str, str] = {
    "update issued invoice total":
        "UPDATE billing_document SET subtotal = subtotal + 100, total = total + 100, "
        "amount_due = amount_due + 100 WHERE id = {invoice}",
    "update issued invoice number": "UPDATE billing_document SET number = 'X-1' WHERE id = {invoice}",
    "update issued invoice snapshot":
        "UPDATE billing_document SET snapshot = '{{}}' WHERE id = {invoice}",
    "delete issued invoice": "DELETE FROM billing_document WHERE id = {invoice}",
    "update issued line": "UPDATE billing_documentline SET amount = amount + 1 WHERE id = {line}",
    "delete issued line": "DELETE FROM billing_documentline WHERE id = {line}",
    "update ledger row": "UPDATE billing_ledgerentry SET amount = 0 WHERE id = {entry}",
    "delete ledger row": "DELETE FROM billing_ledgerentry WHERE id = {entry}",
    "update audit row": "UPDATE accounts_auditentry SET action = 'rewritten' WHERE id = {audit}",
    "delete audit row": "DELETE FROM accounts_auditentry WHERE id = {audit}",
}
#: What only PostgreSQL has: the role must not own, truncate or switch triggers off.
RAW_PG: dict[str, str] = {
    "truncate ledger": "TRUNCATE billing_ledgerentry CASCADE",
    "truncate documents": "TRUNCATE billing_document CASCADE",
    "truncate audit": "TRUNCATE accounts_auditentry",
    "disable document trigger":
        "ALTER TABLE billing_document DISABLE TRIGGER billing_document_issued_immutable",
    "disable all ledger triggers": "ALTER TABLE billing_ledgerentry DISABLE TRIGGER ALL",
    "disable audit trigger":
        "ALTER TABLE accounts_auditentry DISABLE TRIGGER accounts_auditentry_append_only",
    "drop document trigger": "DROP TRIGGER billing_document_issued_immutable ON billing_document",
    "drop the trigger function": "DROP FUNCTION prorata_ledger_append_only() CASCADE",
    "replace the trigger function":
        "CREATE OR REPLACE FUNCTION prorata_ledger_append_only() RETURNS trigger AS "
        "$$ BEGIN RETURN NEW; END; $$ LANGUAGE plpgsql",
    "triggers off for the session": "SET session_replication_role = replica",
    "become the owner": "SET ROLE postgres",
    "a new table": "CREATE TABLE billing_shadow (id int)",
}


@pytest.mark.parametrize("name", [*RAW, *RAW_PG])
def test_each_rewriting_statement_is_refused_as_the_application(issued, name):
    if name in RAW_PG and connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    statement = {**RAW, **RAW_PG}[name].format(
        invoice=issued.invoice.pk, line=issued.line.pk, entry=issued.entry.pk,
        audit=issued.audit.pk)
    before = _snapshot(issued)
    with as_app_role():
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")  # still connected, still the application's role
    assert _snapshot(issued) == before


# --- the ORM, as the application's role -----------------------------------------------------------

def _orm_update_total(b: Books) -> None:
    Document.objects.filter(pk=b.invoice.pk).update(
        subtotal=F("subtotal") + 100, total=F("total") + 100, amount_due=F("amount_due") + 100)


def _orm_update_issued_at(b: Books) -> None:
    Document.objects.filter(pk=b.invoice.pk).update(issued_at=utc(2025, 1, 1))


def _orm_delete_invoice(b: Books) -> None:
    Document.objects.filter(pk=b.invoice.pk).delete()


def _orm_save_invoice(b: Books) -> None:
    b.invoice.total += 100
    b.invoice.subtotal += 100
    b.invoice.save()


def _orm_line_update(b: Books) -> None:
    DocumentLine.objects.filter(pk=b.line.pk).update(amount=F("amount") + 1)


def _orm_line_delete(b: Books) -> None:
    DocumentLine.objects.filter(pk=b.line.pk).delete()


def _orm_ledger_update(b: Books) -> None:
    LedgerEntry.objects.filter(pk=b.entry.pk).update(amount=0)


def _orm_ledger_delete(b: Books) -> None:
    LedgerEntry.objects.filter(pk=b.entry.pk).delete()


def _orm_ledger_save(b: Books) -> None:
    b.entry.amount = 0
    b.entry.save()


def _orm_audit_update(b: Books) -> None:
    AuditEntry.objects.filter(pk=b.audit.pk).update(action="rewritten")


def _orm_audit_delete(b: Books) -> None:
    AuditEntry.objects.filter(pk=b.audit.pk).delete()


ORM: list[Callable[[Books], None]] = [
    _orm_update_total, _orm_update_issued_at, _orm_delete_invoice, _orm_save_invoice,
    _orm_line_update, _orm_line_delete, _orm_ledger_update, _orm_ledger_delete, _orm_ledger_save,
    _orm_audit_update, _orm_audit_delete,
]


@pytest.mark.parametrize("attempt", ORM, ids=lambda f: f.__name__[5:])
def test_each_rewrite_through_the_orm_is_refused_as_the_application(issued, attempt):
    """Refused by the database (a queryset's update and delete go past the models) or, where the
    model refuses first, by the model; nothing changes either way."""
    before = _snapshot(issued)
    with as_app_role():
        with pytest.raises((DatabaseError, ImmutableRecord, AppendOnlyError, ProtectedError)), \
                transaction.atomic():
            attempt(issued)
    assert _snapshot(issued) == before


def test_what_may_still_change_does(issued):
    """The guards are not a blanket refusal: an issued invoice's payment state moves (a refund
    reopens nothing, but dunning voids and transfers pay), a draft changes and is deleted, new
    ledger and audit rows are appended."""
    invoice = issued.invoice
    with as_app_role():
        Document.objects.filter(pk=invoice.pk).update(
            status=DocumentStatus.OPEN, amount_paid=0, amount_due=invoice.total, paid_at=None)
        Document.objects.filter(pk=invoice.pk).update(
            status=DocumentStatus.PAID, amount_paid=invoice.total, amount_due=0,
            paid_at=invoice.paid_at)
        fields = {f.attname: getattr(invoice, f.attname) for f in Document._meta.concrete_fields
                  if not f.primary_key}
        draft = Document.objects.create(**{**fields, "number": None, "sequence": None})
        DocumentLine.objects.create(**{
            **{f.attname: getattr(issued.line, f.attname)
               for f in DocumentLine._meta.concrete_fields if not f.primary_key},
            "document_id": draft.pk})
        Document.objects.filter(pk=draft.pk).update(subtotal=F("subtotal") + 1,
                                                    total=F("total") + 1,
                                                    amount_due=F("amount_due") + 1)
        DocumentLine.objects.filter(document=draft).update(amount=F("amount") + 1)
        DocumentLine.objects.filter(document=draft).delete()
        Document.objects.filter(pk=draft.pk).delete()
        audit_record(actor=None, action="test.books.again")
    assert not Document.objects.filter(pk=draft.pk).exists()
    assert Document.objects.get(pk=invoice.pk).status == DocumentStatus.PAID


def test_the_product_flows_work_as_the_application(clock, demo_catalog):
    """Purchases with a card, a change with its credit line, the billing run's renewal and its
    charge, dunning to expiry (a void invoice and its credit note), account credit, a staff credit
    and a staff refund, every e-mail delivered: all as the application's role, and the books sound."""
    with as_app_role():
        world = history(clock)
        assert check_all() == []
    kinds = set(Document.objects.values_list("kind", "status"))
    assert {(DocumentKind.INVOICE, DocumentStatus.PAID), (DocumentKind.INVOICE, DocumentStatus.VOID),
            (DocumentKind.CREDIT_NOTE, DocumentStatus.PAID)} <= kinds
    assert Refund.objects.filter(account=world.initech, status="succeeded").exists()


# --- the guards are all there ------------------------------------------------------------------

def test_every_guard_is_in_place(db):
    """A migration that rebuilds one of these tables on SQLite (any AlterField) drops its triggers:
    this fails until it creates them again (prorata.common.books.sqlite_create)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT c.relname, t.tgname, t.tgenabled FROM pg_trigger t "
                           "JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal")
            found = {(table, name) for table, name, enabled in cursor.fetchall() if enabled == "O"}
            assert set(books.PG_TRIGGERS.items()) <= found
        else:
            cursor.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'")
            found = set(cursor.fetchall())
            assert {(name, table) for name, table, _ in books.SQLITE_TRIGGERS} <= found


def test_the_trigger_knows_every_column_of_a_document():
    """SQLite's trigger names the frozen columns one by one: a column added to the model must be
    listed, frozen or payment state, or an issued document could change it there."""
    columns = {f.column for f in Document._meta.concrete_fields}
    assert set(books.DOCUMENT_FROZEN_COLUMNS) | set(books.DOCUMENT_PAYMENT_COLUMNS) == columns
    assert not set(books.DOCUMENT_FROZEN_COLUMNS) & set(books.DOCUMENT_PAYMENT_COLUMNS)
    assert set(books.DOCUMENT_PAYMENT_COLUMNS) == Document.PAYMENT_FIELDS


@pytest.mark.django_db(transaction=True)
def test_a_flush_passes_the_guards_and_puts_them_back(clock, demo_catalog):
    """Emptying the database (the owner's act: Django's flush between transactional tests) is not
    refused, and on SQLite, where it is a DELETE, the triggers are created again after it."""
    clock.set(utc(2026, 1, 1))
    account, user = customer("Acme Corp", "US", "alice@acme.example", currency="USD")
    buy(account, user, "lite", "monthly", 5, card_token=card())
    from django.core.management import call_command

    call_command("flush", interactive=False, verbosity=0)
    assert not LedgerEntry.objects.exists() and not Document.objects.exists()
    test_every_guard_is_in_place(None)


# --- the role itself ---------------------------------------------------------------------------

@PG
def test_the_application_role_owns_nothing_and_is_not_a_superuser(db):
    statements = grant_app_role(APP_ROLE)
    assert not any("TRUNCATE" in s and "GRANT" in s for s in statements)
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles "
                       "WHERE rolname = %s", [APP_ROLE])
        assert cursor.fetchone() == (False, False, False)
        cursor.execute("SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
                       "WHERE r.rolname = %s", [APP_ROLE])
        assert cursor.fetchone() == (0,)
        for table, allowed in (("billing_ledgerentry", "SELECT,INSERT"),
                               ("accounts_auditentry", "SELECT,INSERT"),
                               ("django_migrations", "SELECT"),
                               ("billing_document", "SELECT,INSERT,UPDATE,DELETE")):
            got = []
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES",
                              "TRIGGER"):
                cursor.execute("SELECT has_table_privilege(%s, %s, %s)",
                               [APP_ROLE, table, privilege])
                if cursor.fetchone()[0]:
                    got.append(privilege)
            assert ",".join(got) == allowed, table
    # Idempotent: a second run (after the next migration) grants the same.
    assert grant_app_role(APP_ROLE) == [s for s in statements if not s.startswith("CREATE ROLE")]


@PG
def test_grant_app_role_refuses_a_role_that_would_protect_nothing(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        owner = cursor.fetchone()[0]
    with pytest.raises(CommandError, match="owner"):
        grant_app_role(owner)  # the test database's owner: a superuser, the tables' owner
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {APP_ROLE}_owner")
        cursor.execute(f"CREATE TABLE prorata_owned_test (id int)")  # noqa: F541
        cursor.execute(f"ALTER TABLE prorata_owned_test OWNER TO {APP_ROLE}_owner")
    with pytest.raises(CommandError, match="owns prorata_owned_test"):
        grant_app_role(f"{APP_ROLE}_owner")


def test_migrations_connect_as_the_owner_and_everything_else_as_the_application(tmp_path):
    """The settings pick PRORATA_MIGRATE_DATABASE_URL only for the commands the ``prorata`` command
    runs as the owner; without it, DATABASE_URL does everything (SQLite, the demo)."""
    code = ("from django.conf import settings; d = settings.DATABASES['default']; "
            "print(d['USER'], settings.PRORATA_APP_DATABASE_USER)")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PRORATA_", "DJANGO_"))}
    base.update(DJANGO_SETTINGS_MODULE="prorata.settings.base", PRORATA_VAR_DIR=str(tmp_path),
                DATABASE_URL="postgres://app@127.0.0.1:5432/prorata")

    def users(**env: str) -> str:
        return subprocess.run(  # noqa: S603  (this interpreter, a fixed script)
            [sys.executable, "-c", f"import django; django.setup(); {code}"], cwd=ROOT,
            env={**base, **env}, capture_output=True, text=True, timeout=60, check=True,
        ).stdout.strip()

    owner = "postgres://owner@127.0.0.1:5432/prorata"
    assert users() == "app app"
    assert users(PRORATA_MIGRATE_DATABASE_URL=owner) == "app app"
    assert users(PRORATA_MIGRATE_DATABASE_URL=owner, PRORATA_AS_OWNER="1") == "owner app"
    assert users(PRORATA_AS_OWNER="1") == "app app"
    assert {"migrate", "grant_app_role", "flush"} <= OWNER_COMMANDS
    assert not {"serve", "worker", "runserver", "demo", "shell"} & OWNER_COMMANDS
