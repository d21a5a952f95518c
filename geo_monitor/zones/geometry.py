"""Zone polygons: read GeoJSON, repair or refuse invalid rings, clip to the study area, cover with H3.

Repair rule: an invalid polygon is repaired (GEOS ``make_valid``, "structure" method) when
the repair keeps the area the rings enclose as drawn (shoelace area, within
``REPAIR_TOLERANCE``): duplicate points, spikes, a ring touching itself, a small twist at a
corner. A bow-tie or a hole outside its shell changes that area a lot: nobody can tell what
was meant, so it is refused with GEOS's reason and where it happens. Parts of a
MultiPolygon are judged one by one, then merged (overlapping parts are unioned).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import psycopg
import shapely
import shapely.errors
import shapely.geometry

from geo_monitor import hexagons
from geo_monitor.errors import InvalidArgumentError, ReferenceDataError

MAX_VERTICES = 10_000
REPAIR_TOLERANCE = 0.01  # share of the drawn area a repair may change
MIN_AREA_M2 = 100.0  # smaller than a street corner: not a zone anyone patrols
ZONE_RESOLUTION = 10
ZONE_RESOLUTIONS = (9, 10, 11)  # covers stored per zone (zone_cells)
FINEST = 11  # events are stored at resolution-11 cell centres


@dataclass
class ZoneShape:
    """A zone polygon ready for the store, with what was done to it."""

    geometry: shapely.MultiPolygon
    drawn_area_m2: float
    area_m2: float
    clipped_share: float  # share of the drawn area outside the study area
    notes: list[str] = field(default_factory=list)


def read_geometry(value: dict | shapely.Geometry) -> shapely.Geometry:
    """Return the (2D) shapely geometry of a GeoJSON geometry or Feature, or a shapely geometry.

    Only Polygon and MultiPolygon in longitude/latitude (EPSG:4326) are accepted.
    """
    if isinstance(value, dict):
        if value.get("type") == "Feature":
            value = value.get("geometry") or {}
        if value.get("type") not in ("Polygon", "MultiPolygon"):
            kind = str(value.get("type"))[:40]
            raise InvalidArgumentError(f"a zone is a GeoJSON Polygon or MultiPolygon, got {kind!r}", "geometry")
        try:
            geometry = shapely.geometry.shape(value)
        except (AttributeError, ValueError, TypeError, KeyError, IndexError,
                shapely.errors.GeometryTypeError, shapely.errors.GEOSException) as exc:
            raise InvalidArgumentError(f"geometry is not readable GeoJSON: {str(exc)[:200]}", "geometry") from None
    elif isinstance(value, shapely.Geometry):
        geometry = value
    else:
        raise InvalidArgumentError("geometry must be a GeoJSON object", "geometry")
    if geometry.geom_type not in ("Polygon", "MultiPolygon"):
        raise InvalidArgumentError(f"a zone is a Polygon or MultiPolygon, got {geometry.geom_type}", "geometry")
    if geometry.is_empty:
        raise InvalidArgumentError("the zone's geometry is empty", "geometry")
    vertices = shapely.get_num_coordinates(geometry)
    if vertices > MAX_VERTICES:
        raise InvalidArgumentError(f"the zone has {vertices:,} vertices; at most {MAX_VERTICES:,} are accepted "
                                   "(simplify it in your GIS)", "geometry")
    coords = shapely.get_coordinates(geometry)
    if not np.isfinite(coords).all():
        raise InvalidArgumentError("the zone's coordinates must be finite numbers", "geometry")
    if (np.abs(coords[:, 0]) > 180).any() or (np.abs(coords[:, 1]) > 90).any():
        raise InvalidArgumentError("coordinates must be longitude, latitude in degrees (EPSG:4326); these look "
                                   "projected (Lambert-93?): reproject the polygon first", "geometry")
    return shapely.force_2d(geometry)


def repair(geometry: shapely.Geometry) -> tuple[shapely.MultiPolygon, list[str]]:
    """Return a valid MultiPolygon and notes on what was repaired; refuse an ambiguous repair."""
    notes = []
    parts = []
    for i, polygon in enumerate(shapely.get_parts(geometry)):
        where = f" (part {i + 1})" if geometry.geom_type == "MultiPolygon" else ""
        if polygon.is_valid:
            parts.append(polygon)
            continue
        reason = shapely.is_valid_reason(polygon)
        fixed = shapely.make_valid(polygon, method="structure", keep_collapsed=False)
        fixed = _polygonal(fixed)
        drawn = polygon.area  # shoelace: lobes turning the other way count negative
        if fixed.is_empty or abs(fixed.area - drawn) > REPAIR_TOLERANCE * max(fixed.area, drawn):
            raise InvalidArgumentError(
                f"invalid polygon{where}: {reason}. Repairing it would change its area by "
                f"{_change(drawn, fixed.area)} (a ring crossing itself, like a bow-tie, or a hole outside its "
                "shell): redraw it so that no edge crosses another", "geometry")
        notes.append(f"repaired{where}: {reason}")
        parts.extend(shapely.get_parts(fixed))
    merged = parts[0] if len(parts) == 1 else shapely.union_all(parts)
    if len(parts) > 1 and not shapely.MultiPolygon(parts).is_valid:
        notes.append("overlapping or touching parts were merged")
    return _polygonal(merged), notes


def _change(drawn: float, fixed: float) -> str:
    if drawn <= 0:
        return "more than the whole drawn area (its lobes cancel out)"
    return f"{abs(fixed - drawn) / drawn:.0%}"


def _polygonal(geometry: shapely.Geometry) -> shapely.MultiPolygon:
    """Return the polygons of a geometry as one MultiPolygon (lines and points dropped)."""
    polygons = [p for p in shapely.get_parts(geometry) if p.geom_type == "Polygon" and not p.is_empty]
    nested = [q for p in shapely.get_parts(geometry) if p.geom_type == "MultiPolygon" for q in p.geoms]
    return shapely.MultiPolygon(polygons + nested)


def clip(conn: psycopg.Connection, geometry: shapely.MultiPolygon, notes: list[str]) -> ZoneShape:
    """Clip a valid zone to the study area in PostGIS; refuse a zone (almost) outside it."""
    row = conn.execute(
        "WITH z AS (SELECT ST_GeomFromWKB(%s, 4326) AS g), "
        "c AS (SELECT ST_CollectionExtract(ST_Intersection(s.geom, z.g), 3) AS g, z.g AS drawn "
        "      FROM study_area s, z) "
        "SELECT ST_AsBinary(ST_Multi(g)), ST_Area(drawn::geography), coalesce(ST_Area(g::geography), 0) FROM c",
        (shapely.to_wkb(geometry),),
    ).fetchone()
    if row is None:
        raise ReferenceDataError("the study area is not loaded: run `geo-monitor reference load` first")
    clipped, drawn_m2, inside_m2 = shapely.from_wkb(row[0]), float(row[1]), float(row[2])
    if inside_m2 <= 0:
        raise InvalidArgumentError("the zone lies outside the study area", "geometry")
    if inside_m2 < MIN_AREA_M2:
        raise InvalidArgumentError(f"only {inside_m2:.0f} m² of the zone lies in the study area; a zone needs "
                                   f"at least {MIN_AREA_M2:.0f} m²", "geometry")
    share = max(0.0, 1.0 - inside_m2 / drawn_m2) if drawn_m2 > 0 else 0.0
    if share > 1e-6:
        notes.append(f"clipped to the study area: {share:.1%} of the drawn area lay outside")
    else:
        share = 0.0
    return ZoneShape(_polygonal(clipped), drawn_m2, inside_m2, share, notes)


def prepare_shape(conn: psycopg.Connection, value: dict | shapely.Geometry) -> ZoneShape:
    """Read, repair (or refuse) and clip a zone polygon."""
    geometry, notes = repair(read_geometry(value))
    return clip(conn, geometry, notes)


def zone_cover(geometry: shapely.Geometry, resolution: int) -> np.ndarray:
    """Return the sorted cells covering a zone at a resolution: every point of it lies in one.

    The ``overlap`` cover (every cell touching the polygon, not only cells whose centre is
    inside), plus the parents of the finest overlap cover: an event is counted in the parent
    of its resolution-11 cell, and H3 children do not nest exactly in their parent, so a
    parent can lie just outside the coarse cover. The study grid is built the same way.
    """
    cells = hexagons.polygon_to_cells(geometry, resolution, "overlap")
    if resolution < FINEST:
        fine = hexagons.polygon_to_cells(geometry, FINEST, "overlap")
        cells = np.union1d(cells, hexagons.cells_to_parents(fine, resolution))
    return cells


def check_zone_resolution(resolution: int) -> int:
    """Refuse a resolution at which zone covers are not stored."""
    if resolution not in ZONE_RESOLUTIONS:
        raise InvalidArgumentError(f"zone counts are served at resolutions {', '.join(map(str, ZONE_RESOLUTIONS))}, "
                                   f"got {resolution}", "resolution")
    return resolution
