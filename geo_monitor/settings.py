"""Settings read from the environment (prefix ``GEO_MONITOR_``) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]
DEV_ID_HASH_KEY = "development-only-key-change-me"


class Settings(BaseSettings):
    """Everything that changes between a laptop, CI and a city server."""

    model_config = SettingsConfigDict(env_prefix="GEO_MONITOR_", env_file=".env", extra="ignore")

    environment: str = Field("development", description="development, test or production")
    database_url: str = "postgresql://postgres@127.0.0.1:5432/geo_monitor"
    reference_dir: Path | None = Field(
        None, description="Folder holding the official reference files (see data/reference_manifest.json)"
    )
    cache_dir: Path = Path.home() / ".cache" / "geo_monitor"
    data_dir: Path = REPO_ROOT / "data"
    output_dir: Path = Field(Path("var"), description="Where the demo writes its sample, maps and exports")
    study_area: list[str] = ["75110", "75118", "75119", "75120"]
    resolutions: list[int] = [7, 8, 9, 10, 11]
    point_resolution: int = Field(
        11, description="Stored points are generalised to the centre of their cell at this resolution"
    )
    id_hash_key: str = Field(
        DEV_ID_HASH_KEY, description="Secret key of the keyed hash applied to external ids"
    )
    ingest_chunk_rows: int = 100_000
    future_tolerance_minutes: int = 60
    release_resolution: int = Field(9, description="The one H3 resolution of the public release")
    release_k: int = Field(11, description="Cells with fewer events are never shown as a number")
    release_epsilon: float = Field(1.0, description="Privacy loss spent by one monthly release (all its queries)")
    release_outreach_share: float = Field(0.2, description="Share of release_epsilon spent on outreach totals")
    release_contributions: int = Field(
        1, description="Assumed maximum events one person adds to one monthly release (the DP unit)"
    )
    release_display_delta: float = Field(
        1e-6, description="Chance that a cell with fewer than k events passes the noisy threshold"
    )
    privacy_budget_month: float = Field(1.0, description="Privacy loss allowed per calendar month of data")
    privacy_budget_year: float = Field(12.0, description="Privacy loss allowed per calendar year of data")
    api_max_upload_bytes: int = Field(50 * 1024 * 1024, description="Largest accepted POST /events body")
    api_max_json_bytes: int = Field(
        1024 * 1024, description="Largest accepted JSON body (zones, tokens, ...); POST /events has its own limit"
    )
    api_trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks of the reverse proxies whose X-Forwarded-For is believed (none: never)",
    )
    api_max_page: int = Field(20_000, description="Most features one response may hold (larger is refused)")
    api_pool_size: int = Field(10, description="Database connections kept by the API")
    api_threads: int = Field(
        4, ge=1, description="Worker threads per API process. Requests are CPU-bound on a few cores, so more "
                             "threads only take turns at the GIL: on 2 cores 4 threads answered 11 % more uncached "
                             "requests than anyio's default of 40 (bench/api.py); raise it when slow database "
                             "queries, not Python, hold the threads"
    )
    count_memory_mb: int = Field(
        1024, description="Memory per process for the rollups held to sum counts (store.rollup_memory); "
                          "0 asks PostgreSQL every time"
    )
    public_rate_per_minute: int = Field(120, description="Requests per minute per client on public endpoints")
    public_basemap: str = Field(
        "none", description="The public map's background: none (reference layers only: no third-party server "
                            "sees a visitor), carto (CARTO Positron tiles) or a tile URL template the city hosts, "
                            "https://.../{z}/{x}/{y}.png"
    )
    police_outreach_max_resolution: int = Field(
        8, description="Finest resolution at which police see outreach counts (suppressed under release_k)"
    )
    police_outreach_settle_days: int = Field(
        7, ge=0, description="Days after a month ends before police may see its (then fixed) outreach table"
    )
    extra_categories: dict[str, list[str]] = Field(
        default_factory=dict, description='Vocabulary extension, e.g. {"incident": ["noise"]}'
    )

    @field_validator("database_url")
    @classmethod
    def _database_url_parses(cls, value: str) -> str:
        from psycopg.conninfo import conninfo_to_dict

        try:
            conninfo_to_dict(value)
        except Exception as exc:  # psycopg.ProgrammingError: say which setting and what it should look like
            raise ValueError(f"not a PostgreSQL connection URL ({str(exc).strip()}); expected e.g. "
                             "postgresql://user@host:5432/geo_monitor") from None
        return value

    @field_validator("resolutions")
    @classmethod
    def _resolutions_in_range(cls, value: list[int]) -> list[int]:
        if not value or any(r < 7 or r > 11 for r in value):
            raise ValueError("resolutions must lie between 7 and 11 (the H3 columns of the events table)")
        return sorted(set(value))

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.point_resolution < max(self.resolutions):
            raise ValueError(
                "point_resolution must be at least the finest served resolution "
                f"({max(self.resolutions)}), got {self.point_resolution}"
            )
        if self.environment == "production" and self.id_hash_key == DEV_ID_HASH_KEY:
            raise ValueError("GEO_MONITOR_ID_HASH_KEY must be set to a secret in production")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (tests pass their own ``Settings`` instead)."""
    return Settings()
