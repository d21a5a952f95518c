"""HTTP hardening: body limits before parsing, security headers, the client's address behind proxies.

Both middlewares are plain ASGI so they run before FastAPI reads or parses anything.
"""

from __future__ import annotations

import ipaddress
import json

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from geo_monitor.errors import ConfigurationError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Answers anyone may keep in a shared cache: the published release, open reference data, the
# public map and its assets, the method page, health checks and the API's own documentation.
PUBLIC_PATHS = ("/public/", "/reference/", "/maps/public", "/maps/assets/", "/method", "/health", "/ready",
                "/docs", "/redoc", "/openapi.json")
TILES = "https://*.basemaps.cartocdn.com"  # the maps' optional basemap (maps/elements.py)
_COMMON = "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
CSP_API = f"default-src 'none'; {_COMMON}"
# Folium writes its map as inline script and style; every script file comes from /maps/assets.
CSP_MAPS = (f"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            f"img-src 'self' data: blob: {TILES}; connect-src 'self' {TILES}; font-src 'self' data:; {_COMMON}")
# /docs loads Swagger UI from the local copy under /maps/assets (no CDN); its page starts it inline.
CSP_DOCS = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            f"img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; {_COMMON}")


def trusted_networks(values: list[str]) -> list[Network]:
    """Parse the trusted proxies setting (addresses or networks), naming a bad entry."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ConfigurationError(f"GEO_MONITOR_API_TRUSTED_PROXIES: {value!r} is not an IP address or network")\
                from None
    return networks


def _trusted(address: str, networks: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(request: Request) -> str:
    """Return the client's address: X-Forwarded-For is believed only from a trusted proxy.

    Behind trusted proxies the client is the right-most address of the header that is not
    itself a trusted proxy (each proxy appends the address it saw; what the client wrote
    stands further left and is never believed).
    """
    peer = request.client.host if request.client else "unknown"
    networks: list[Network] = getattr(request.app.state, "trusted_proxies", [])
    if not networks or not _trusted(peer, networks):
        return peer
    hops = [hop.strip() for value in request.headers.getlist("x-forwarded-for") for hop in value.split(",")]
    for hop in reversed([h for h in hops if h]):
        if not _trusted(hop, networks):
            return hop
    return peer


def _is_public(path: str) -> bool:
    return any(path == p.rstrip("/") or path.startswith(p) for p in PUBLIC_PATHS)


class SecurityHeaders:
    """Add nosniff, Referrer-Policy, a Content-Security-Policy, framing refusal and Cache-Control.

    An answer to a request with credentials, or on a path that is not public, gets
    ``Cache-Control: no-store`` whatever the route set.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on and add the headers to its answer."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        credentials = any(name == b"authorization" for name, _ in scope["headers"])
        private = credentials or not _is_public(path)
        if path.startswith("/maps/"):
            policy = CSP_MAPS
        elif path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
            policy = CSP_DOCS
        else:
            policy = CSP_API

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if not (private and k.lower() == b"cache-control")]
                headers += [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                            (b"x-frame-options", b"DENY"), (b"content-security-policy", policy.encode()),
                            (b"cross-origin-opener-policy", b"same-origin")]
                if private:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Refuse a request body over ``limit`` bytes with 413 before anything parses it.

    The declared Content-Length is checked first; a body without one (chunked) is counted
    as it arrives and buffered only up to the limit. Paths in ``exempt`` keep their own
    limit (``POST /events`` streams much larger uploads).
    """

    def __init__(self, app: ASGIApp, limit: int, exempt: tuple[str, ...] = ("/events",)) -> None:
        self.app, self.limit, self.exempt = app, limit, exempt

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"error": {"message": f"the request body is larger than {self.limit:,} bytes"}}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the body up to the limit, then hand it to the app (or answer 413)."""
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH") or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
