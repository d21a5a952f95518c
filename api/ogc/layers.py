"""Features held in columns (ids, geometries, properties, time spans), filtered and written as GeoJSON.

A layer is built once per (collection, caller scope, data version, parameters) and kept in a
small cache, so the pages a GIS client walks through with ``offset`` cost one build.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import shapely

from api.errors import ApiError

OPEN = (date.min, date.max)


@dataclass
class Layer:
    """The features of one collection for one caller: parallel arrays, one entry per feature."""

    ids: list[str | int]
    geometries: np.ndarray  # shapely geometries (EPSG:4326, lon/lat), None allowed
    properties: list[dict]
    starts: list[date | None] = field(default_factory=list)  # first day of each feature's time span
    ends: list[date | None] = field(default_factory=list)  # day after its last day (exclusive)
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        """Return the number of features."""
        return len(self.ids)

    def mask(self, bbox: shapely.Geometry | None, span: tuple[date, date] | None) -> np.ndarray:
        """Return which features meet the bbox and overlap the half-open span of days."""
        keep = np.ones(len(self), dtype=bool)
        if bbox is not None and len(self):
            keep &= shapely.intersects(self.geometries, bbox)
        if span is not None and self.starts:
            lo, hi = span
            keep &= np.array([(s is None or s < hi) and (e is None or e > lo)
                              for s, e in zip(self.starts, self.ends, strict=True)], dtype=bool)
        return keep

    def index(self, feature_id: str) -> int | None:
        """Return the position of a feature id (ids compare as text, as in a URL)."""
        for i, value in enumerate(self.ids):
            if str(value) == feature_id:
                return i
        return None

    def feature(self, i: int) -> str:
        """Return feature ``i`` as GeoJSON text."""
        geometry = self.geometries[i]
        text = "null" if geometry is None else shapely.to_geojson(geometry)
        return (f'{{"type":"Feature","id":{json.dumps(self.ids[i])},"geometry":{text},'
                f'"properties":{json.dumps(self.properties[i], default=str)}}}')

    def bounds(self) -> list[float] | None:
        """Return the features' bounding box (minlon, minlat, maxlon, maxlat), or None when empty."""
        present = [g for g in self.geometries if g is not None]
        if not present:
            return None
        return [round(float(v), 6) for v in shapely.total_bounds(np.array(present, dtype=object))]


def parse_bbox(text: str) -> shapely.Geometry:
    """Return the box of ``minlon,minlat,maxlon,maxlat`` (CRS84), refusing anything else."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) == 6:  # 3D box: the heights do not matter on a map of the ground
        values = [values[0], values[1], values[3], values[4]]
    if len(values) != 4 or not all(np.isfinite(values)):
        raise ApiError(400, "bbox must be 4 numbers: minlon,minlat,maxlon,maxlat (CRS84)", "bbox")
    minx, miny, maxx, maxy = values
    if minx > maxx or miny > maxy:
        raise ApiError(400, "bbox must have minlon <= maxlon and minlat <= maxlat", "bbox")
    return shapely.box(minx, miny, maxx, maxy)


def _day(text: str, end: bool) -> date:
    """Return the first day of a bound, or for an end the day after its last (a midnight end excludes its day)."""
    if text in ("", ".."):
        return date.max if end else date.min
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return date.fromordinal(day.toordinal() + 1) if end else day
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"datetime {text[:40]!r} is not an RFC 3339 date or date-time", "datetime") from None
    midnight = moment.time().replace(tzinfo=None) == datetime.min.time()
    return date.fromordinal(moment.date().toordinal() + 1) if end and not midnight else moment.date()


def parse_datetime(text: str) -> tuple[date, date]:
    """Return the half-open span of days of an OGC ``datetime`` (an instant or ``start/end``, ``..`` open)."""
    if "/" in text:
        first, _, last = text.partition("/")
        lo, hi = _day(first, False), _day(last, True)
        if first in ("", "..") and last in ("", ".."):
            raise ApiError(400, "datetime needs at least one end: start/.., ../end or start/end", "datetime")
    else:
        lo = _day(text, False)
        hi = date.fromordinal(lo.toordinal() + 1)  # an instant selects its day
    if hi <= lo:
        raise ApiError(400, f"datetime {text[:60]!r} ends before it starts", "datetime")
    return lo, hi


class LayerCache:
    """A bounded LRU of built layers (the pages of one query share one build)."""

    def __init__(self, size: int = 32) -> None:
        self._items: OrderedDict[Hashable, Layer] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def has(self, key: Hashable) -> bool:
        """Return whether a layer is built already."""
        with self._lock:
            return key in self._items

    def get(self, key: Hashable, build: Callable[[], Layer]) -> Layer:
        """Return the layer of a key, building it when absent."""
        with self._lock:
            layer = self._items.get(key)
            if layer is not None:
                self._items.move_to_end(key)
                return layer
        layer = build()
        with self._lock:
            self._items[key] = layer
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return layer
