"""What a collection's features hold, as JSON Schema: the queryables (OGC API Features Part 3) and a feature schema.

GIS clients otherwise guess each field's type from the first page of features: a property
that is null there (a suppressed published value, a ratio without incidents) comes out as
text. GDAL (and QGIS through it) reads the GeoJSON feature schema a collection links to with
``rel="describedBy"`` and ``type="application/schema+json"``: the ``properties`` of its
``properties`` name each field's type. The types are declared with each collection
(``Collection.fields``); a property may be null (suppressed or undefined) whatever its type.
"""

from __future__ import annotations

from api.ogc.collections import Collection

JSON_SCHEMA = "https://json-schema.org/draft/2020-12/schema"
TYPES: dict[str, dict] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "date-time": {"type": "string", "format": "date-time"},
    "string[]": {"type": "array", "items": {"type": "string"}},
    "object[]": {"type": "array", "items": {"type": "object"}},
    "object": {"type": "object"},
}
GEOMETRY_FORMATS = {"Point": "geometry-point", "LineString": "geometry-linestring", "Polygon": "geometry-polygon",
                    "Geometry": "geometry-any"}


def properties(collection: Collection) -> dict[str, dict]:
    """Return the JSON Schema of each property of the collection's features, in order."""
    return {name: {"title": name, **TYPES[kind]} for name, kind in collection.fields.items()}


def geometry(collection: Collection) -> dict:
    """Return the schema of the features' geometry (GeoJSON, lon/lat)."""
    return {"title": "geometry", "$ref": f"https://geojson.org/schema/{collection.geometry}.json",
            "format": GEOMETRY_FORMATS.get(collection.geometry, "geometry-any"), "x-ogc-role": "primary-geometry"}


def queryables(collection: Collection, href: str) -> dict:
    """Return the collection's queryables: an object schema of its properties and its geometry."""
    return {"$schema": JSON_SCHEMA, "$id": href, "type": "object", "title": collection.title,
            "properties": {"geometry": geometry(collection), **properties(collection)},
            "additionalProperties": False}


def feature_schema(collection: Collection, href: str) -> dict:
    """Return the JSON Schema of one GeoJSON feature of the collection (what ``describedBy`` links to)."""
    return {
        "$schema": JSON_SCHEMA, "$id": href, "title": f"A feature of {collection.title}", "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"type": ["string", "integer"]},
            "geometry": geometry(collection),
            "properties": {"type": "object", "properties": properties(collection)},
        },
    }
