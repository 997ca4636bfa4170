"""The French catalogs of the apps of issue 13 are complete and their .mo match their .po."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

SRC = Path(__file__).resolve().parents[3] / "src" / "prorata"
APPS = [path.parent for path in sorted(SRC.glob("*/locale/fr/LC_MESSAGES/django.po"))
        if path.parts[-5] in {"licenses", "webinars"}]


def strings(message) -> tuple[str, ...]:
    return (message.string,) if isinstance(message.string, str) else tuple(message.string)


def test_the_apps_have_catalogs():
    assert {path.parts[-4] for path in APPS} == {"licenses", "webinars"}


@pytest.mark.parametrize("folder", APPS, ids=lambda p: p.parts[-4])
def test_every_message_is_translated_and_compiled(folder):
    with open(folder / "django.po", "rb") as handle:
        source = read_po(handle)
    with open(folder / "django.mo", "rb") as handle:
        compiled = read_mo(handle)
    untranslated = [m.id for m in source if m.id and (not all(strings(m)) or m.fuzzy)]
    assert untranslated == [], "translate these, then run msgfmt -o django.mo django.po"
    key = lambda m: m.id if isinstance(m.id, str) else tuple(m.id)  # noqa: E731
    assert {key(m): strings(m) for m in compiled if m.id} == {
        key(m): strings(m) for m in source if m.id}, "django.mo is stale: run msgfmt"
