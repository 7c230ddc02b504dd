"""Routing by rustc error code: a table, never a regex over the message."""

from __future__ import annotations

import pytest

from learner.fix.router import ROUTES, known_codes, route_for_code
from learner.records import FALLBACK_ROUTE

REQUIRED_CODES = [
    "E0308",
    "E0277",
    "E0382",
    "E0599",
    "E0507",
    "E0596",
    "E0106",
    "E0502",
    "E0499",
    "E0369",
    "E0425",
    "E0433",
    "E0412",
    "E0061",
    "E0384",
    "E0597",
    "E0716",
    "E0515",
    "E0373",
    "E0505",
]


@pytest.mark.parametrize("code", REQUIRED_CODES)
def test_frequent_codes_have_a_named_route(code: str) -> None:
    assert not route_for_code(code).is_fallback


def test_route_table_covers_at_least_forty_codes() -> None:
    assert len(known_codes()) >= 40


def test_e0382_routes_to_moved_value_and_unknown_codes_fall_back() -> None:
    assert route_for_code("E0382").name == "moved-value"
    assert route_for_code("E0308").name == "mismatched-types"
    assert route_for_code("E9999").name == FALLBACK_ROUTE
    assert route_for_code(None).name == FALLBACK_ROUTE


def test_every_route_has_a_hint() -> None:
    assert all(route.hint for route in ROUTES.values())
