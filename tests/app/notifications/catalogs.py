"""Test translation catalogs: a few French msgids compiled into a temporary locale folder placed first
in ``LOCALE_PATHS`` (the project's own French catalog is compiled by its translators)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo


def install_french(tmp_path: Path, settings, messages: dict[str, str]) -> None:
    catalog = Catalog(locale="fr", domain="django")
    for msgid, msgstr in messages.items():
        catalog.add(msgid, msgstr)
    folder = tmp_path / "fr" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with (folder / "django.mo").open("wb") as handle:
        write_mo(handle, catalog)
    # Changing the setting clears Django's translation caches (and restoring it does again).
    settings.LOCALE_PATHS = [tmp_path, *settings.LOCALE_PATHS]
