# Sourced by .ci/run and scripts/test.sh: makes sure PostgreSQL runs locally and exports
# WEIR_TEST_PG_URL for the store and end-to-end suites. Idempotent; quiet when all is there.
ensure_postgres() {
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ]; then
            echo "installing postgresql..." >&2
            (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >/dev/null 2>&1 || true
        fi
    fi
    local version
    version=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)
    if [ -z "$version" ]; then
        echo "warning: PostgreSQL is not installed; PostgreSQL tests will fail under CI=true" >&2
        return 0
    fi
    pg_ctlcluster "$version" main start >/dev/null 2>&1 || true
    for _ in $(seq 1 30); do
        pg_isready -q -h 127.0.0.1 -p 5432 && break
        sleep 0.5
    done
    if [ "$(id -u)" = 0 ]; then
        su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null 2>&1 || true
    fi
    export WEIR_TEST_PG_URL="${WEIR_TEST_PG_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}"
}
ensure_postgres
