"""Source adapters: map a foreign export onto the canonical record, dropping everything else.

Only what the canonical record may hold survives: for DansMaRue the address, the free-text
sub-type, the channel and the service in charge are dropped at the door.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterator

import numpy as np
import pandas as pd

from geo_monitor.errors import InputFileError
from geo_monitor.settings import Settings
from geo_monitor.store.readers import RECORD

ADAPTERS = ("dansmarue",)


def _normalise(name: str) -> str:
    """Return a column name in lower case ASCII with underscores ('ID DECLARATION' -> 'id_declaration')."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")


# Column names across the DansMaRue schemas (2020 export, 2022-2023 export, 2023-2024 API).
_DMR_ALIASES = {
    "type": ("type", "type_declaration"),
    "date": ("datedecl", "date_declaration"),
    "id": ("id_dmr", "numero", "numero_declaration", "id_declaration"),
}


def dansmarue_types(settings: Settings) -> dict[str, str]:
    """Return the DansMaRue ``type`` -> incident category mapping (data/dansmarue_types.csv)."""
    with open(settings.data_dir / "dansmarue_types.csv", encoding="utf-8", newline="") as handle:
        return {_normalise(row["type"]): row["category"] for row in csv.DictReader(handle)}


def _pick(frame: pd.DataFrame, field: str) -> pd.Series:
    for candidate in _DMR_ALIASES[field]:
        if candidate in frame:
            return frame[candidate].astype(object).where(frame[candidate].notna(), "").astype(str).str.strip()
    raise InputFileError(
        f"not a DansMaRue export: no {' or '.join(_DMR_ALIASES[field])} column "
        f"(columns found: {', '.join(c for c in frame.columns if not c.startswith('_'))})"
    )


def dansmarue(frame: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """Map one chunk of a DansMaRue export onto the canonical record."""
    original = frame
    frame = frame.rename(columns={c: _normalise(c) for c in frame.columns if not c.startswith("_")})
    kind_type = _pick(frame, "type")
    category = kind_type.map(lambda t: types.get(_normalise(t), ""))
    out = pd.DataFrame(index=frame.index)
    out["kind"] = "incident"
    # An unknown type stays visible in the reason instead of becoming another category.
    out["category"] = category.where(category != "", "dansmarue:" + kind_type)
    out["occurred_at"] = _pick(frame, "date")
    if "lon" in frame and "lat" in frame:
        out["lon"], out["lat"] = frame["lon"], frame["lat"]
    elif "geo_point_2d" in frame:  # older exports: "lat, lon" text
        parts = frame["geo_point_2d"].astype(str).str.extract(r"^\s*\[?\s*([-\d.]+)\s*,\s*([-\d.]+)")
        out["lat"], out["lon"] = parts[0], parts[1]
    else:
        out["lon"] = out["lat"] = np.nan
    out["external_id"] = _pick(frame, "id")
    for column in ("_geometry_error", RECORD):
        if column in frame:
            out[column] = frame[column]
    out.attrs = dict(original.attrs)
    return out


def adapt(name: str, chunks: Iterator[pd.DataFrame], settings: Settings) -> Iterator[pd.DataFrame]:
    """Apply the named adapter to every chunk."""
    if name not in ADAPTERS:
        raise InputFileError(f"unknown source format {name!r}; known: {', '.join(ADAPTERS)}")
    types = dansmarue_types(settings)
    for chunk in chunks:
        yield dansmarue(chunk, types)
