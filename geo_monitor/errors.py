"""Error hierarchy: every error a user can cause says what went wrong and what to do.

Subclasses also inherit a builtin so callers may catch ``ValueError`` or ``LookupError``.
"""


class GeoMonitorError(Exception):
    """Base class of every error geo_monitor raises on purpose."""


class ConfigurationError(GeoMonitorError, RuntimeError):
    """The installation is incomplete or mis-configured (database, reference data)."""


class DatabaseUnavailableError(ConfigurationError):
    """The database cannot be reached."""


class ReferenceDataError(ConfigurationError):
    """Reference layers are missing, unreadable or not loaded."""


class InputFileError(GeoMonitorError, ValueError):
    """A whole input file is unusable (malformed, wrong encoding, missing columns)."""


class InvalidArgumentError(GeoMonitorError, ValueError):
    """An argument is outside what the function accepts; ``parameter`` names it when known."""

    def __init__(self, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


class AccessDeniedError(GeoMonitorError, PermissionError):
    """The caller's role may not see or do this; ``parameter`` names the refused one when known."""

    def __init__(self, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


class NotFoundError(GeoMonitorError, LookupError):
    """A requested object does not exist (or is not visible to the caller)."""


class PrivacyBudgetError(GeoMonitorError, PermissionError):
    """A release would spend more privacy loss than the month's or the year's budget allows."""


class DisclosureError(GeoMonitorError, RuntimeError):
    """Suppression could not protect every suppressed count: the release is refused."""


class ZoneConflictError(GeoMonitorError, RuntimeError):
    """An edit was based on an outdated version of the zone, or the zone is archived.

    ``etag`` is the entity tag of the zone's current version, to edit from.
    """

    def __init__(self, message: str, current_version: int, etag: str | None = None) -> None:
        super().__init__(message)
        self.current_version, self.etag = current_version, etag


class MapAssetsError(ConfigurationError):
    """The local copies of Leaflet are missing or an asset has no local copy."""


class PlanFileError(InputFileError):
    """A plan file has bad rows: nothing was loaded; ``problems`` names each row and its reason."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        problems = list(problems or [])
        super().__init__("\n".join([message, *(f"  - {p}" for p in problems)]))
        self.problems = problems
