"""The session store reads Django's database sessions with its own query: same answers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DjangoSessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from prorata.accounts.sessions import SessionStore

pytestmark = pytest.mark.django_db


def test_it_is_the_configured_engine() -> None:
    assert settings.SESSION_ENGINE == "prorata.accounts.sessions"


def test_a_session_saved_by_django_s_store_reads_back_the_same() -> None:
    django_store = DjangoSessionStore()
    django_store["answer"] = 42
    django_store.save()
    store = SessionStore(django_store.session_key)
    assert store["answer"] == 42
    assert store.session_key == django_store.session_key


def test_an_expired_or_unknown_session_is_empty_and_its_key_forgotten() -> None:
    store = SessionStore()
    store["answer"] = 42
    store.save()
    Session.objects.filter(pk=store.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1))
    expired = SessionStore(store.session_key)
    assert expired.load() == {} and expired.session_key is None
    unknown = SessionStore("x" * 32)
    assert unknown.load() == {} and unknown.session_key is None
