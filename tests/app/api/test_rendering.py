"""The API's orjson renderer writes the same JSON values as ninja's own renderer."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
from django.utils.translation import gettext_lazy
from ninja.renderers import JSONRenderer
from pydantic import BaseModel

from prorata.api.rendering import ApiRenderer


class Inner(BaseModel):
    at: datetime
    name: str


PAYLOADS = [
    {"code": "not_found", "message": "Pas trouvé — « ici »", "params": {}},
    {"at": datetime(2026, 3, 11, 10, 20, 30, 123456, tzinfo=UTC),
     "whole": datetime(2026, 3, 11, tzinfo=UTC),
     "paris": datetime(2026, 3, 11, 10, 0, 0, 5000, tzinfo=timezone(timedelta(hours=1))),
     "naive": datetime(2026, 3, 11, 10, 0), "day": date(2026, 3, 11), "noon": time(12, 0, 1, 250),
     "long": timedelta(days=2, seconds=5)},
    {"amount": Decimal("25.55"), "id": uuid.UUID(int=7), "label": gettext_lazy("Charge"),
     "model": Inner(at=datetime(2027, 1, 1, tzinfo=UTC), name="x"), "items": (1, 2, [3, None]),
     "flags": [True, False], "big": 2**62, "ratio": "31534211/31536000"},
    [{"nested": {"deeper": [datetime(2026, 1, 1, 0, 0, 0, 999, tzinfo=UTC)]}}],
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_the_same_json_values_as_ninja_s_renderer(payload):
    ours = ApiRenderer().render(None, payload, response_status=200)
    theirs = JSONRenderer().render(None, payload, response_status=200)
    assert json.loads(ours) == json.loads(theirs)


def test_what_orjson_cannot_write_goes_through_ninja_s_renderer():
    payload = {"huge": 2**70}
    assert json.loads(ApiRenderer().render(None, payload, response_status=200)) == payload
