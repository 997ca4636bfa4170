"""The database's own refusal to rewrite the books (issue 18): triggers on both backends.

What they refuse, whoever asks (the models refuse the same, but a queryset ``update()``, a raw
statement or another program goes past the models):

- an **issued** invoice or credit note (``number`` set) changes only its payment state
  (``DOCUMENT_PAYMENT_COLUMNS``, the model's ``Document.PAYMENT_FIELDS``), and is never deleted; a
  draft changes freely;
- the lines of an issued document are neither updated nor deleted;
- the ledger (``billing_ledgerentry``) and the audit log (``accounts_auditentry``) are
  append-only: no UPDATE, no DELETE.

On PostgreSQL the application also connects as a role that owns nothing (``grant_app_role``): it
cannot ``TRUNCATE`` (not granted), ``ALTER TABLE … DISABLE TRIGGER`` or drop a trigger (owner
only), so these triggers hold against it. On SQLite there are no roles: the triggers guard against
the application's own mistakes, not against someone holding the file.

Kept in one module because three places need the same text: the migration that creates the
triggers, the SQLite backend's flush (Django empties tables with ``DELETE`` between transactional
tests there: it drops the DELETE triggers first and creates them again after, as ``TRUNCATE``
passes PostgreSQL's row triggers), and the tests that check every trigger is in place.
"""

from __future__ import annotations

#: The columns of ``billing_document`` an issued document may still change: its payment state.
DOCUMENT_PAYMENT_COLUMNS: tuple[str, ...] = (
    "status", "amount_paid", "amount_due", "paid_at", "credit_applied",
)
#: Every other column of ``billing_document``: frozen once issued. SQLite's trigger names them one
#: by one (it cannot compare whole rows); a test fails when the model has a column in neither list.
DOCUMENT_FROZEN_COLUMNS: tuple[str, ...] = (
    "id", "kind", "series", "year", "sequence", "number", "account_id", "order_id",
    "refers_to_id", "issued_at", "due_at", "currency", "subtotal", "tax", "total", "tax_rule",
    "tax_mention", "snapshot",
)

ISSUED_UPDATE = "Issued documents are immutable: only their payment state may change."
ISSUED_DELETE = "Issued documents cannot be deleted: issue a credit note."
LINES_FROZEN = "The lines of an issued document cannot change."
LEDGER = "The ledger is append-only: entries cannot be changed or deleted."
AUDIT = "The audit log is append-only: entries cannot be changed or deleted."

# PostgreSQL: the whole row is compared with the payment columns put back, so a column added later
# is frozen by default (deny unless listed).
_PG_PAYMENT_RESET = "\n".join(f"    candidate.{c} := OLD.{c};" for c in DOCUMENT_PAYMENT_COLUMNS)
# Constants only, no input: S608 does not apply.
PG_FORWARD = f"""
CREATE OR REPLACE FUNCTION prorata_document_issued_immutable() RETURNS trigger AS $$
DECLARE
    candidate billing_document%ROWTYPE;
BEGIN
    IF OLD.number IS NULL THEN
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION '{ISSUED_DELETE} (%)', OLD.number USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    candidate := NEW;
{_PG_PAYMENT_RESET}
    IF candidate IS DISTINCT FROM OLD THEN
        RAISE EXCEPTION '{ISSUED_UPDATE} (%)', OLD.number USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER billing_document_issued_immutable
    BEFORE UPDATE OR DELETE ON billing_document
    FOR EACH ROW EXECUTE FUNCTION prorata_document_issued_immutable();

CREATE OR REPLACE FUNCTION prorata_document_lines_frozen() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM billing_document
               WHERE id = OLD.document_id AND number IS NOT NULL) THEN
        RAISE EXCEPTION '{LINES_FROZEN}' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER billing_documentline_frozen
    BEFORE UPDATE OR DELETE ON billing_documentline
    FOR EACH ROW EXECUTE FUNCTION prorata_document_lines_frozen();
"""  # noqa: S608
PG_BACKWARD = """
DROP TRIGGER IF EXISTS billing_document_issued_immutable ON billing_document;
DROP FUNCTION IF EXISTS prorata_document_issued_immutable();
DROP TRIGGER IF EXISTS billing_documentline_frozen ON billing_documentline;
DROP FUNCTION IF EXISTS prorata_document_lines_frozen();
"""
#: Every guard trigger on PostgreSQL, by table (the ledger's and the audit log's are older
#: migrations': billing 0003, accounts 0002).
PG_TRIGGERS: dict[str, str] = {
    "billing_document": "billing_document_issued_immutable",
    "billing_documentline": "billing_documentline_frozen",
    "billing_ledgerentry": "billing_ledgerentry_append_only",
    "accounts_auditentry": "accounts_auditentry_append_only",
}


def _changed(columns: tuple[str, ...]) -> str:
    return " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in columns)


_LINE_OF_ISSUED = ("EXISTS (SELECT 1 FROM billing_document "
                   "WHERE id = OLD.document_id AND number IS NOT NULL)")

#: SQLite: (name, table, the CREATE TRIGGER statement), one statement each (Python's sqlite3 runs
#: one at a time). The ledger's and the audit log's UPDATE triggers are the older migrations'.
SQLITE_TRIGGERS: tuple[tuple[str, str, str], ...] = tuple(
    (name, table, f"CREATE TRIGGER IF NOT EXISTS {name} BEFORE {event} ON {table} "
                  f"{'WHEN ' + when + ' ' if when else ''}"
                  f"BEGIN SELECT RAISE(ABORT, '{message}'); END;")
    for name, event, table, when, message in (
        ("billing_document_issued_no_update", "UPDATE", "billing_document",
         f"OLD.number IS NOT NULL AND ({_changed(DOCUMENT_FROZEN_COLUMNS)})", ISSUED_UPDATE),
        ("billing_document_issued_no_delete", "DELETE", "billing_document",
         "OLD.number IS NOT NULL", ISSUED_DELETE),
        ("billing_documentline_issued_no_update", "UPDATE", "billing_documentline",
         _LINE_OF_ISSUED, LINES_FROZEN),
        ("billing_documentline_issued_no_delete", "DELETE", "billing_documentline",
         _LINE_OF_ISSUED, LINES_FROZEN),
        ("billing_ledgerentry_no_update", "UPDATE", "billing_ledgerentry", "", LEDGER),
        ("billing_ledgerentry_no_delete", "DELETE", "billing_ledgerentry", "", LEDGER),
        ("accounts_auditentry_no_update", "UPDATE", "accounts_auditentry", "", AUDIT),
        ("accounts_auditentry_no_delete", "DELETE", "accounts_auditentry", "", AUDIT),
    )
)


def sqlite_flush_statements(tables: list[str], flush: list[str]) -> list[str]:
    """Django's ``flush`` statements for ``tables`` on SQLite, with the guard triggers of those
    tables dropped before the ``DELETE``\\ s and created again after: emptying the whole database
    (the test runner between transactional tests, ``prorata flush``) is the owner's act, like
    ``TRUNCATE`` on PostgreSQL, which row triggers do not see. Nothing else drops them."""
    guarded = [(name, create) for name, table, create in SQLITE_TRIGGERS if table in tables]
    if not guarded:
        return flush
    return ([f"DROP TRIGGER IF EXISTS {name}" for name, _ in guarded] + flush
            + [create for _, create in guarded])


def sqlite_create(schema_editor: object) -> None:
    """Create every SQLite guard that is missing (``IF NOT EXISTS``): a migration that rebuilds
    one of these tables on SQLite (any ``AlterField``) drops its triggers and must call this."""
    for _, _, create in SQLITE_TRIGGERS:
        schema_editor.execute(create)  # type: ignore[attr-defined]
