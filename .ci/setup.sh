#!/usr/bin/env bash
# Prepare a Debian 12 machine to test or demo geo_monitor: Debian packages, a running
# PostgreSQL 15 + PostGIS 3 on 127.0.0.1:5432, the virtualenv in .venv and the reference data.
#
# Sourced by .ci/run and .ci/demo (it can also be run on its own: bash .ci/setup.sh).
# Works as root (CI: no stdin, CI=true) or as a normal user with sudo. Idempotent, and quick
# when everything is already in place: nothing is installed, started or changed twice.

# Debian packages the project needs.
GEO_MONITOR_APT_PACKAGES=(
    postgresql-15
    postgresql-15-postgis-3
    postgresql-client-15
    python3
    python3-venv
    ca-certificates
)
# ---- Extra Debian packages: add the ones later work needs here (e.g. chromium for the -----
# ---- browser tests of the maps). They are installed with the list above when missing. ------
GEO_MONITOR_EXTRA_APT_PACKAGES=(
    chromium  # the browser tests of the maps (driven by Playwright, no browser download)
    gdal-bin  # ogrinfo / ogr2ogr: the tests open /ogc and the exports as a GIS client does
)

_gm_log() { printf '[setup] %s\n' "$*" >&2; }

# Run a command as root: directly when we are root, through sudo otherwise.
_gm_as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        _gm_log "error: '$*' needs root; run as root or install and configure sudo"
        return 1
    fi
}

_gm_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'
}

_gm_apt_packages() {
    local missing=() pkg
    for pkg in "${GEO_MONITOR_APT_PACKAGES[@]}" "${GEO_MONITOR_EXTRA_APT_PACKAGES[@]}"; do
        _gm_installed "$pkg" || missing+=("$pkg")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    _gm_log "installing Debian packages: ${missing[*]}"
    _gm_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    _gm_as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
}

_gm_pg_ready() {
    pg_isready -q -h 127.0.0.1 -p 5432 -t 2
}

_gm_postgres() {
    _gm_pg_ready && return 0
    if ! pg_lsclusters -h 2>/dev/null | grep -qE '^15[[:space:]]+main[[:space:]]'; then
        _gm_log "creating the PostgreSQL 15 cluster 'main'"
        _gm_as_root pg_createcluster 15 main
    fi
    _gm_log "starting PostgreSQL 15"
    _gm_as_root pg_ctlcluster --skip-systemctl-redirect 15 main start \
        || _gm_as_root service postgresql start \
        || true
    local waited=0
    until _gm_pg_ready; do
        if ((waited >= 30)); then
            _gm_log "error: PostgreSQL is not accepting connections on 127.0.0.1:5432 after 30 s;" \
                "see /var/log/postgresql/postgresql-15-main.log"
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
}

# The tests and the demo connect as postgres to 127.0.0.1 without a password (trust auth).
# A fresh Debian cluster asks for a password there, so on a machine where nobody chose
# another server (GEO_MONITOR_TEST_SERVER_URL / GEO_MONITOR_DATABASE_URL unset) we allow it.
_gm_postgres_access() {
    [[ -n "${GEO_MONITOR_TEST_SERVER_URL:-}${GEO_MONITOR_DATABASE_URL:-}" ]] && return 0
    PGCONNECT_TIMEOUT=5 psql -w -X -q -At -h 127.0.0.1 -p 5432 -U postgres -d postgres \
        -c 'SELECT 1' >/dev/null 2>&1 && return 0
    local hba=/etc/postgresql/15/main/pg_hba.conf marker='# geo_monitor .ci/setup.sh'
    if ! _gm_as_root grep -qF "$marker" "$hba"; then
        _gm_log "allowing passwordless local TCP access for user postgres in $hba"
        _gm_as_root sed -i "1i $marker: local tests and demo\\
host all postgres 127.0.0.1/32 trust\\
host all postgres ::1/128 trust" "$hba"
        _gm_as_root pg_ctlcluster --skip-systemctl-redirect 15 main reload \
            || _gm_as_root service postgresql reload
    fi
    PGCONNECT_TIMEOUT=5 psql -w -X -q -At -h 127.0.0.1 -p 5432 -U postgres -d postgres \
        -c 'SELECT 1' >/dev/null || {
        _gm_log "error: cannot connect as postgres to 127.0.0.1:5432; check $hba"
        return 1
    }
}

# Server settings for a store of millions of events, all applied by a reload (no restart, so
# a running cluster keeps its sessions). Bulk ingest dirties pages all over the events indexes
# (random external-id hashes, events arriving in any time order); with the defaults (1 GB of
# WAL, a checkpoint every 5 min) each checkpoint makes the next write of every such page log
# a full 8 kB image, so ingest slowed as the store grew. README "PostgreSQL settings" says what
# a dedicated server should use (shared_buffers needs a restart and is left to its owner).
GEO_MONITOR_PG_SETTINGS=(
    max_wal_size=4GB
    checkpoint_timeout=15min
    wal_compression=lz4
)

_gm_postgres_settings() {
    [[ -n "${GEO_MONITOR_TEST_SERVER_URL:-}${GEO_MONITOR_DATABASE_URL:-}" ]] && return 0  # not our server
    local item name value current changed=0
    for item in "${GEO_MONITOR_PG_SETTINGS[@]}"; do
        name=${item%%=*} value=${item#*=}
        current=$(psql -w -X -q -At -h 127.0.0.1 -p 5432 -U postgres -d postgres \
            -c "SELECT setting FROM pg_file_settings WHERE name = '$name' AND sourcefile LIKE '%postgresql.auto.conf' AND applied")
        [[ "$current" == "$value" ]] && continue
        _gm_log "PostgreSQL setting $name = $value (ALTER SYSTEM)"
        psql -w -X -q -At -h 127.0.0.1 -p 5432 -U postgres -d postgres -c "ALTER SYSTEM SET $name = '$value'"
        changed=1
    done
    if ((changed)); then
        psql -w -X -q -At -h 127.0.0.1 -p 5432 -U postgres -d postgres -c "SELECT pg_reload_conf()" >/dev/null
    fi
}

_gm_venv() {
    local repo=$1 hash
    if [[ ! -x "$repo/.venv/bin/python" ]]; then
        _gm_log "creating the virtualenv $repo/.venv"
        python3 -m venv "$repo/.venv"
    fi
    hash=$(sha256sum "$repo/pyproject.toml" | cut -d' ' -f1)
    if [[ "$(cat "$repo/.venv/.installed-hash" 2>/dev/null)" == "$hash" ]]; then
        return 0
    fi
    _gm_log "installing geo_monitor and its dependencies into .venv (pyproject.toml changed)"
    (cd "$repo" && .venv/bin/python -m pip install --progress-bar off -e ".[dev,bench]")
    printf '%s\n' "$hash" >"$repo/.venv/.installed-hash"
}

# Leaflet for the offline maps: npm pack, integrity-checked, into the cache (maps/assets.py).
_gm_map_assets() {
    command -v npm >/dev/null 2>&1 || _gm_as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends nodejs npm
    (cd "$1" && .venv/bin/python -m maps install-assets)
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    # Run directly (or by the sourced branch below): stop at the first error.
    set -euo pipefail
    _gm_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    _gm_apt_packages
    _gm_postgres
    _gm_postgres_access
    _gm_postgres_settings
    _gm_venv "$_gm_repo"
    _gm_map_assets "$_gm_repo"
else
    # Sourced: do the work in a child bash (so `set -e` holds whatever the caller's shell
    # options), then leave REPO_ROOT and GEO_MONITOR_REFERENCE_DIR in the caller's shell.
    bash "${BASH_SOURCE[0]}" || return 1
    REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    if [[ -z "${GEO_MONITOR_REFERENCE_DIR:-}" && -d "$REPO_ROOT/../shared/data" ]]; then
        GEO_MONITOR_REFERENCE_DIR=$(cd "$REPO_ROOT/../shared/data" && pwd)
        export GEO_MONITOR_REFERENCE_DIR
    fi
fi
