"""The French catalog is complete, and the committed .mo is compiled from the committed .po."""

from __future__ import annotations

from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

LOCALE = Path(__file__).resolve().parents[3] / "src" / "prorata" / "locale" / "fr" / "LC_MESSAGES"


def catalog(name: str):
    with open(LOCALE / name, "rb") as handle:
        return (read_po if name.endswith(".po") else read_mo)(handle)


def strings(message) -> tuple[str, ...]:
    return (message.string,) if isinstance(message.string, str) else tuple(message.string)


def test_every_message_is_translated_and_none_is_fuzzy():
    untranslated = [
        message.id for message in catalog("django.po")
        if message.id and (not all(strings(message)) or message.fuzzy)
    ]
    assert untranslated == [], "translate these in django.po, then run compilemessages"


def test_the_compiled_catalog_matches_the_source():
    source = {m.id if isinstance(m.id, str) else tuple(m.id): strings(m) for m in catalog("django.po") if m.id}
    compiled = {m.id if isinstance(m.id, str) else tuple(m.id): strings(m) for m in catalog("django.mo") if m.id}
    assert compiled == source, "django.mo is stale: run `prorata compilemessages` in src/prorata"


def test_the_seeds_words_are_used():
    translations = {m.id: m.string for m in catalog("django.po") if isinstance(m.id, str)}
    assert translations["Sign in"] == "Se connecter"
    assert translations["Password"] == "Mot de passe"
    assert translations["Email"] == "E-mail"
    assert translations["order summary"] == "récapitulatif des commandes"


APP_CATALOGS = sorted(LOCALE.parents[2].glob("*/locale/fr/LC_MESSAGES/django.po"))


def test_every_apps_own_catalog_is_complete_and_compiled():
    """Apps keep the French of their newer pages in their own locale dir (Django reads each)."""
    assert APP_CATALOGS, "the web app's own catalog is missing"
    for po in APP_CATALOGS:
        with open(po, "rb") as handle:
            source = list(read_po(handle))
        with open(po.with_suffix(".mo"), "rb") as handle:
            compiled = {key(m): strings(m) for m in read_mo(handle) if m.id}
        untranslated = [m.id for m in source if m.id and (not all(strings(m)) or m.fuzzy)]
        assert untranslated == [], f"translate these in {po}"
        assert compiled == {key(m): strings(m) for m in source if m.id}, \
            f"{po.with_suffix('.mo')} is stale"


def key(message) -> tuple[object, ...]:
    """A message's identity: its context too (``From`` of a document and of a date range)."""
    context = message.context
    if isinstance(context, bytes):  # Babel reads a .mo's contexts as bytes
        context = context.decode()
    return (context, message.id if isinstance(message.id, str) else tuple(message.id))
