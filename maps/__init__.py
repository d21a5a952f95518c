"""Folium maps from library results: planner, coordination and public maps, offline-capable.

Builders return ``folium.Map``; :func:`render` turns one into a page whose scripts are all
local (inlined, or linked under a URL prefix serving :func:`asset_dir`).
"""

from maps.assets import (
    MapAssetsError,
    asset_dir,
    copy_assets,
    ensure_assets,
    install_assets,
    render,
)
from maps.build import build_all
from maps.coordination import build_coordination, coordination_map, uncovered_hotspots
from maps.elements import Basemap
from maps.hexlayer import StepCounts
from maps.layers import ReferenceLayers
from maps.planner import build_planner, planner_map
from maps.public import build_public, public_map

__all__ = [
    "Basemap",
    "MapAssetsError",
    "ReferenceLayers",
    "StepCounts",
    "asset_dir",
    "build_all",
    "build_coordination",
    "build_planner",
    "build_public",
    "coordination_map",
    "copy_assets",
    "ensure_assets",
    "install_assets",
    "planner_map",
    "public_map",
    "render",
    "uncovered_hotspots",
]
