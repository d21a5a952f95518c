"""Every OGC collection by id: those read from the store and those of the analyses."""

from __future__ import annotations

from api.ogc.analyses import ANALYSES
from api.ogc.collections import STORE, Collection

COLLECTIONS: dict[str, Collection] = {c.id: c for c in (*STORE, *ANALYSES)}
