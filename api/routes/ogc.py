"""OGC API Features (Part 1: Core and GeoJSON; Part 3: queryables; OpenAPI 3.1) at /ogc, the protocol QGIS and GDAL speak.

The public reads the published releases and the reference layers without a token; a token
adds the collections its role may read (hexagon counts, zones, hot spots, coverage), answered
by the same library calls as /hexagons, /zones, /hotspots and /coverage. Each collection
links its queryables and a feature schema, so clients type fields without guessing.
"""

from __future__ import annotations

import json
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request, Response

from api.cache import cached, data_version, request_version
from api.deps import ConnDep, PrincipalDep, SettingsDep, rate_limited
from api.errors import ApiError
from api.ogc import schema
from api.ogc.catalog import COLLECTIONS
from api.ogc.collections import Ask, Collection
from api.ogc.layers import Layer, LayerCache, parse_bbox, parse_datetime
from api.schemas import ERRORS, NOT_FOUND, RATE_LIMITED
from geo_monitor.errors import AccessDeniedError
from geo_monitor.privacy.tokens import Principal, audit

router = APIRouter(prefix="/ogc", tags=["ogc"])
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
]  # not oas30: the API definition is OpenAPI 3.1 (FastAPI's), which GDAL and QGIS read as well
JSON, GEOJSON, SCHEMA = "application/json", "application/geo+json", "application/schema+json"
QUERYABLES = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
COMMON = {"bbox", "bbox-crs", "crs", "datetime", "limit", "offset", "f"}
FORMATS = {"json", "geojson", JSON, GEOJSON}
LAYERS = LayerCache()
FEATURES = {200: {"content": {GEOJSON: {}}, "description": "GeoJSON with OGC links"}}
JSON_SCHEMA = {200: {"content": {SCHEMA: {}}, "description": "a JSON Schema"}}
CollectionId = Annotated[str, Path(max_length=40, description="A collection id of /ogc/collections")]
FeatureId = Annotated[str, Path(max_length=120, description="A feature id of the collection")]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


def _link(href: str, rel: str, media: str, title: str | None = None) -> dict:
    link = {"href": href, "rel": rel, "type": media}
    if title:
        link["title"] = title
    return link


def _json(content: dict, media: str = JSON) -> Response:
    return Response(json.dumps(content, default=str), media_type=media)


def _scope(principal: Principal, collection: Collection) -> str:
    return "public" if collection.public else f"{principal.role}:{principal.team}"


def _collection(cid: str, ask: Ask) -> Collection:
    collection = COLLECTIONS.get(cid)
    if collection is None:
        raise ApiError(404, f"no collection {cid[:40]!r}; the collections are listed at /ogc/collections")
    if collection.check is not None:
        collection.check(ask)
    return collection


def _readable(ask: Ask) -> list[Collection]:
    readable = []
    for collection in COLLECTIONS.values():
        try:
            if collection.check is not None:
                collection.check(ask)
        except (ApiError, AccessDeniedError):
            continue
        readable.append(collection)
    return readable


def _check_query(request: Request) -> None:
    """Refuse a parameter the API definition does not name (the ones of a collection are ignored by the others).

    GDAL appends the query of an ``OAPIF:URL?...`` connection to every request it makes,
    so the hexagon parameters must pass on /collections and on the other collections too.
    """
    known = COMMON | {name for c in COLLECTIONS.values() for name in c.parameters}
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        allowed = ", ".join(sorted(known))
        raise ApiError(400, f"unknown parameter {unknown[0][:40]!r}; this resource takes {allowed}", unknown[0][:40])
    for name in ("bbox-crs", "crs"):
        value = request.query_params.get(name)
        if value is not None and value not in (CRS84, "CRS84", "OGC:CRS84"):
            raise ApiError(400, f"{name} {value[:80]!r} is not served; only {CRS84} (lon/lat, WGS84)", name)
    if request.query_params.get("f", "json") not in FORMATS:
        raise ApiError(400, "f must be json or geojson (the only encodings served)", "f")


def _describe(collection: Collection, request: Request, extent: dict) -> dict:
    base = f"{_base(request)}/collections/{collection.id}"
    description = collection.description
    if collection.parameters:
        description += " Extra query parameters: " + "; ".join(f"{k}: {v}" for k, v in collection.parameters.items())
    return {
        "id": collection.id, "title": collection.title, "description": description, "itemType": "feature",
        "crs": [CRS84], "storageCrs": CRS84, "extent": extent,
        "links": [_link(base, "self", JSON, collection.title),
                  _link(f"{base}/items", "items", GEOJSON, "the features"),
                  # relation types compare case-insensitively (RFC 8288); GDAL 3.6 matches "describedBy" exactly
                  _link(f"{base}/schema", "describedBy", SCHEMA, "the JSON schema of a feature"),
                  _link(f"{base}/queryables", QUERYABLES, SCHEMA, "the properties and their types")],
    }


def _extent(ask: Ask) -> dict:
    bounds = ask.conn.execute("SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM study_area"
                              ).fetchone()
    box = [round(v, 6) for v in bounds] if bounds and bounds[0] is not None else [-180, -90, 180, 90]
    return {"spatial": {"bbox": [box], "crs": CRS84}}


@router.get("", responses={**ERRORS, **RATE_LIMITED}, summary="OGC API Features: landing page")
def landing(request: Request) -> Response:
    """Links to the API definition, the conformance classes and the collections."""
    rate_limited(request)
    _check_query(request)
    base = _base(request)
    root = str(request.base_url).rstrip("/")
    return _json({
        "title": "geo_monitor OGC API Features",
        "description": "Published monthly releases and reference layers for everyone; hexagon counts and "
                       "coordination zones with a bearer token (Authorization header).",
        "links": [
            _link(base, "self", JSON, "this document"),
            _link(f"{root}/openapi.json", "service-desc", "application/vnd.oai.openapi+json;version=3.1",
                  "the API definition"),
            _link(f"{root}/docs", "service-doc", "text/html", "the API documentation"),
            _link(f"{base}/conformance", "conformance", JSON, "conformance classes"),
            _link(f"{base}/collections", "data", JSON, "the collections"),
        ],
    })


@router.get("/conformance", responses={**ERRORS, **RATE_LIMITED}, summary="OGC API Features: conformance classes")
def conformance(request: Request) -> Response:
    """The conformance classes implemented: Core and GeoJSON."""
    rate_limited(request)
    _check_query(request)
    return _json({"conformsTo": CONFORMANCE})


@router.get("/collections", responses={**ERRORS, **RATE_LIMITED}, summary="OGC API Features: the collections")
def collections(request: Request, conn: ConnDep, principal: PrincipalDep, settings: SettingsDep) -> Response:
    """The collections the caller may read (more with a token)."""
    rate_limited(request)
    _check_query(request)
    ask = Ask(conn, principal, settings)
    extent = _extent(ask)
    return _json({
        "links": [_link(f"{_base(request)}/collections", "self", JSON, "the collections")],
        "collections": [_describe(c, request, extent) for c in _readable(ask)],
    })


@router.get("/collections/{collection_id}", responses={**ERRORS, **NOT_FOUND, **RATE_LIMITED},
            summary="OGC API Features: one collection")
def collection(request: Request, conn: ConnDep, principal: PrincipalDep, settings: SettingsDep,
               collection_id: CollectionId) -> Response:
    """A collection's description, extent and links."""
    rate_limited(request)
    _check_query(request)
    ask = Ask(conn, principal, settings)
    return _json(_describe(_collection(collection_id, ask), request, _extent(ask)))


@router.get("/collections/{collection_id}/queryables", response_class=Response,
            responses={**ERRORS, **NOT_FOUND, **RATE_LIMITED, **JSON_SCHEMA},
            summary="OGC API Features Part 3: the queryable properties of a collection (JSON Schema)")
def queryables(request: Request, conn: ConnDep, principal: PrincipalDep, settings: SettingsDep,
               collection_id: CollectionId) -> Response:
    """Each property of the collection's features with its JSON type, and the geometry."""
    return _schema_answer(request, Ask(conn, principal, settings), collection_id, "queryables", schema.queryables)


@router.get("/collections/{collection_id}/schema", response_class=Response,
            responses={**ERRORS, **NOT_FOUND, **RATE_LIMITED, **JSON_SCHEMA},
            summary="The JSON Schema of one feature of a collection (GeoJSON; GIS clients type fields by it)")
def feature_schema(request: Request, conn: ConnDep, principal: PrincipalDep, settings: SettingsDep,
                   collection_id: CollectionId) -> Response:
    """A GeoJSON Feature whose ``properties`` name each field's JSON type (linked as ``describedBy``)."""
    return _schema_answer(request, Ask(conn, principal, settings), collection_id, "schema", schema.feature_schema)


def _schema_answer(request: Request, ask: Ask, collection_id: str, name: str, build) -> Response:
    """Answer one of a collection's JSON Schemas (``build(collection, its own URL)``) to a caller who may read it."""
    rate_limited(request)
    _check_query(request)
    chosen = _collection(collection_id, ask)
    return _json(build(chosen, f"{_base(request)}/collections/{chosen.id}/{name}"), SCHEMA)


def collection_layer(ask: Ask, chosen: Collection) -> Layer:
    """Return a collection's features for a caller (built once per scope, data version and parameters)."""
    return LAYERS.get(_layer_key(ask, chosen), lambda: chosen.build(ask))


def _layer_key(ask: Ask, chosen: Collection) -> tuple:
    if ask.version is None:
        ask.version = data_version(ask.conn)
    extra = tuple(sorted((k, tuple(ask.extra[k])) for k in ask.extra))
    return chosen.id, _scope(ask.principal, chosen), ask.version, extra, ask.span


def ask_collection(request: Request, conn, principal: Principal, settings, collection_id: str) -> tuple[Ask, Collection]:
    """Return the caller's request of a collection, checked (who may read it, which parameters)."""
    ask = Ask(conn, principal, settings)
    chosen = _collection(collection_id, ask)
    _check_query(request)
    ask.extra = {k: request.query_params.getlist(k) for k in chosen.parameters if k in request.query_params}
    if "datetime" in request.query_params:
        ask.span = parse_datetime(request.query_params["datetime"])
    if chosen.public and not LAYERS.has(_layer_key(ask, chosen)):
        rate_limited(request)  # what costs a build is limited; pages of a built layer are cheap (GDAL asks 10 a page)
    return ask, chosen


@router.get("/collections/{collection_id}/items", responses={**ERRORS, **NOT_FOUND, **RATE_LIMITED, **FEATURES},
            response_class=Response, summary="OGC API Features: the features of a collection (GeoJSON)")
def items(request: Request, conn: ConnDep, principal: PrincipalDep, settings: SettingsDep,
          collection_id: CollectionId,
          bbox: Annotated[str | None, Query(max_length=200, description="minlon,minlat,maxlon,maxlat (CRS84)")] = None,
          datetime: Annotated[str | None, Query(max_length=100, description="RFC 3339 instant or START/END "
                                                "(`..` open); features whose time overlaps it")] = None,
          limit: Annotated[int, Query(ge=1, description="Most features in the answer")] = 1000,
          offset: Annotated[int, Query(ge=0, le=10_000_000, description="Features to skip (next links)")] = 0,
          start: Annotated[str | None, Query(description="analyses: first day of the window")] = None,
          end: Annotated[str | None, Query(description="analyses: day after the last day (exclusive)")] = None,
          resolution: Annotated[str | None, Query(description="analyses: H3 resolution 7-11")] = None,
          kind: Annotated[list[str] | None, Query(description="hexagons, hotspots: incident, outreach, works")] = None,
          category: Annotated[list[str] | None, Query(description="hexagons, hotspots: category names")] = None,
          k: Annotated[str | None, Query(description="hotspots: neighbourhood in rings, 1-5")] = None) -> Response:
    """A page of features, with ``numberMatched``, ``numberReturned`` and a ``next`` link while more remain.

    The analyses (hexagons, hotspots, coverage) take their window and options as extra
    parameters; each collection's description names those it reads and their defaults.
    """
    if limit > settings.api_max_page:
        raise ApiError(400, f"limit {limit} is over the maximum of {settings.api_max_page}", "limit")
    ask, chosen = ask_collection(request, conn, principal, settings, collection_id)
    box = parse_bbox(bbox) if bbox is not None else None
    key = request.app.state.cache.key(request, _scope(principal, chosen), ask.version or request_version(request, conn))

    def build() -> bytes:
        layer = collection_layer(ask, chosen)
        matched = layer.mask(box, ask.span).nonzero()[0]
        page = matched[offset:offset + limit]
        base = f"{_base(request)}/collections/{chosen.id}"
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "offset"]
        links = [_link(f"{base}/items?{urlencode([*query, ('offset', offset)])}", "self", GEOJSON, "this page"),
                 _link(base, "collection", JSON, chosen.title)]
        if offset + limit < len(matched):
            links.append(_link(f"{base}/items?{urlencode([*query, ('offset', offset + limit)])}", "next", GEOJSON,
                               "next page"))
        if offset > 0:
            links.append(_link(f"{base}/items?{urlencode([*query, ('offset', max(0, offset - limit))])}", "prev",
                               GEOJSON, "previous page"))
        head = {"type": "FeatureCollection", "numberMatched": len(matched), "numberReturned": len(page),
                "links": links, **({"metadata": layer.meta} if layer.meta else {})}
        text = json.dumps(head, default=str)[:-1]
        return f'{text},"features":[{",".join(layer.feature(i) for i in page)}]}}'.encode()

    response = cached(request, key, build, GEOJSON, public=chosen.public)
    if not chosen.public:
        audit(conn, principal, f"ogc.{chosen.id}", {"query": str(request.query_params)[:500]}, response.status_code)
    return response


@router.get("/collections/{collection_id}/items/{feature_id}",
            responses={**ERRORS, **NOT_FOUND, **RATE_LIMITED, **FEATURES},
            response_class=Response, summary="OGC API Features: one feature (GeoJSON)")
def item(request: Request, conn: ConnDep, principal: PrincipalDep, settings: SettingsDep,
         collection_id: CollectionId, feature_id: FeatureId) -> Response:
    """One feature by its id (the hexagon collection takes its window parameters here too)."""
    ask, chosen = ask_collection(request, conn, principal, settings, collection_id)
    layer = collection_layer(ask, chosen)
    i = layer.index(feature_id)
    if i is None:
        raise ApiError(404, f"no feature {feature_id[:60]!r} in collection {chosen.id}")
    base = f"{_base(request)}/collections/{chosen.id}"
    links = [_link(f"{base}/items/{feature_id}", "self", GEOJSON, "this feature"),
             _link(base, "collection", JSON, chosen.title)]
    if not chosen.public:
        audit(conn, principal, f"ogc.{chosen.id}", {"feature": feature_id}, 200)
    return Response(f'{layer.feature(i)[:-1]},"links":{json.dumps(links)}}}'.encode(), media_type=GEOJSON)
