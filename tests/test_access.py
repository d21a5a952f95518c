"""The access policy on its own: what each role may ask, and slices built by hand held to the same rules."""

from __future__ import annotations

from datetime import date

import pytest

from geo_monitor.errors import AccessDeniedError, InvalidArgumentError
from geo_monitor.privacy import access
from geo_monitor.privacy.tokens import PUBLIC, Principal
from geo_monitor.settings import Settings

POLICE = Principal("police", "brigade", 1)
TEAM = Principal("outreach", "maraude", 2)
PLANNER = Principal("planner", "urbanism", 3)
MARCH = {"start": date(2008, 3, 1), "end": date(2008, 4, 1)}


def test_surfaces_per_role() -> None:
    assert access.allows(PLANNER, "coverage") and not access.allows(POLICE, "coverage")
    assert access.allows(POLICE, "hexagons") and not access.allows(PUBLIC, "hexagons")
    with pytest.raises(AccessDeniedError):
        access.check(TEAM, "exports")
    with pytest.raises(InvalidArgumentError):
        access.allows(PLANNER, "no-such-surface")


@pytest.mark.parametrize(("principal", "ask", "error", "parameter"), [
    (POLICE, {"resolution": 9, "kinds": ["outreach"]}, AccessDeniedError, "resolution"),
    (POLICE, {"resolution": 8, "kinds": ["outreach"], "categories": ["contact"]}, AccessDeniedError, "category"),
    (POLICE, {"resolution": 8, "kinds": ["outreach"], "start": date(2008, 3, 2)}, AccessDeniedError, "start"),
    (POLICE, {"resolution": 8, "kinds": ["outreach"], "end": date(2008, 3, 31)}, AccessDeniedError, "end"),
    (POLICE, {"resolution": 8, "kinds": ["outreach"], "end": date(2009, 4, 1)}, AccessDeniedError, "end"),
    (POLICE, {"resolution": 8, "kinds": ["outreach", "incident"]}, InvalidArgumentError, "kind"),
    (TEAM, {"resolution": 9, "kinds": ["gossip"]}, InvalidArgumentError, "kind"),
    (PLANNER, {"resolution": 9, "area": "arrondissement:75118", "bbox": "2.36,48.88,2.38,48.89"},
     InvalidArgumentError, "bbox"),
    (PUBLIC, {"resolution": 9}, AccessDeniedError, None),
])
def test_slice_for_refuses_naming_the_parameter(settings: Settings, principal, ask, error, parameter) -> None:
    with pytest.raises(error) as caught:
        access.slice_for(principal, settings, **{**MARCH, **ask})
    assert caught.value.parameter == parameter


def test_slice_for_applies_the_role() -> None:
    police = access.slice_for(POLICE, Settings(), **MARCH, resolution=8, kinds=["outreach"])
    assert (police.protection, police.suppress_under, police.kinds) == ("suppression", 11, ["outreach"])
    assert access.slice_for(POLICE, Settings(), **MARCH, resolution=11).kinds == ["incident", "works"]
    team = access.slice_for(TEAM, Settings(), **MARCH, resolution=11, kinds=["outreach"])
    assert team.team == "maraude" and team.protection is None
    assert access.slice_for(PLANNER, Settings(), **MARCH, resolution=11).kinds is None


@pytest.mark.parametrize(("principal", "chosen"), [
    (POLICE, access.Slice(**MARCH, resolution=8, kinds=None, categories=None, area=None)),
    (POLICE, access.Slice(**MARCH, resolution=8, kinds=["outreach"], categories=None, area=None)),
    (POLICE, access.Slice(**MARCH, resolution=10, kinds=["outreach"], categories=None, area=None,
                          protection="suppression")),
    (POLICE, access.Slice(date(2008, 3, 5), date(2008, 4, 1), 8, ["outreach"], None, None, protection="suppression")),
    (TEAM, access.Slice(**MARCH, resolution=8, kinds=["outreach"], categories=None, area=None, team="other")),
    (PUBLIC, access.Slice(**MARCH, resolution=8, kinds=["incident"], categories=None, area=None)),
])
def test_hand_built_slices_are_held_to_the_same_rules(conn, settings: Settings, principal, chosen) -> None:
    with pytest.raises(AccessDeniedError):
        access.hex_counts(conn, principal, chosen, settings)
