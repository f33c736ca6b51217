#!/usr/bin/env bash
# Installs (when missing) and starts every server the test suite talks to, on
# loopback only, then prints the environment the tests read. Idempotent: a
# server that already answers is left alone.
#
#   eval "$(bash scripts/services.sh)"
#
# PostgreSQL and Redis come with this project's machines; ClickHouse 18.16 and
# VictoriaMetrics (the InfluxDB v2 write API) and InfluxDB 1.6 (the v1 write
# API, InfluxDB's own line-protocol parser) install from the OS packages;
# chdb-core (a modern ClickHouse engine, in-process) from PyPI.
set -euo pipefail
log() { echo "services: $*" >&2; }
STATE="${STRATA_SERVICES_DIR:-/tmp/strata-services}"
mkdir -p "$STATE"

wait_for() { # name, command, tries
  for _ in $(seq 1 "${3:-60}"); do
    if eval "$2" >/dev/null 2>&1; then log "$1 is up"; return 0; fi
    sleep 1
  done
  log "$1 did not come up"; return 1
}

# --- PostgreSQL ------------------------------------------------------------------
# A DATABASE_URL given by the caller (a password, another server) is used for
# every step below; otherwise the local server, postgres@127.0.0.1:5432.
PGURL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
pgq() { psql "$PGURL" -qtAc "$1"; }
if ! pg_isready -d "$PGURL" -q 2>/dev/null; then
  if ! command -v pg_ctlcluster >/dev/null; then
    apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
  fi
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start >&2 || true
  wait_for postgres "pg_isready -d '$PGURL'"
fi

# Logical decoding for change capture (`strata sync`), and replication
# connections from loopback for the streaming replica below. Changing
# wal_level takes a restart; done once, then the settings stay.
PGV="$(ls /etc/postgresql | head -n1)"
PGB="/usr/lib/postgresql/$PGV/bin"
HBA="/etc/postgresql/$PGV/main/pg_hba.conf"
if ! grep -q '^host replication all 127.0.0.1/32 trust' "$HBA" 2>/dev/null; then
  echo 'host replication all 127.0.0.1/32 trust' >> "$HBA"
  pgq "SELECT pg_reload_conf()" >/dev/null
fi
if [ "$(pgq 'SHOW wal_level')" != logical ] || [ "$(pgq 'SHOW max_replication_slots')" -lt 64 ]; then
  log "configuring PostgreSQL for logical decoding (restart)"
  psql "$PGURL" -q \
    -c "ALTER SYSTEM SET wal_level = logical" \
    -c "ALTER SYSTEM SET max_slot_wal_keep_size = '4GB'" \
    -c "ALTER SYSTEM SET max_replication_slots = 64" \
    -c "ALTER SYSTEM SET max_wal_senders = 64" >&2
  if pg_ctlcluster --skip-systemctl-redirect "$PGV" main restart >&2; then
    wait_for postgres "pg_isready -d '$PGURL'"
  else
    log "restart the PostgreSQL server at DATABASE_URL yourself: wal_level = logical takes a restart"
  fi
fi

# A real streaming replica of the local server on 127.0.0.1:5433 (hot
# standby, made with `pg_basebackup -R`), for replica routing and
# read-your-writes tests. Its data lives under $STATE.
REP="$STATE/pg-replica"
if ! pg_isready -h 127.0.0.1 -p 5433 -q 2>/dev/null; then
  if [ ! -f "$REP/data/standby.signal" ]; then
    rm -rf "$REP"; mkdir -p "$REP"; chown postgres "$REP"
    su postgres -c "$PGB/pg_basebackup -d '$PGURL' -D $REP/data -R -X stream" >&2
    printf "port = 5433\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nhot_standby = on\nhot_standby_feedback = on\n" \
      "$REP" > "$REP/data/postgresql.conf"
    printf 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n' > "$REP/data/pg_hba.conf"
    chown postgres "$REP/data/postgresql.conf" "$REP/data/pg_hba.conf"
  fi
  su postgres -c "$PGB/pg_ctl -D $REP/data -l $REP/log -w start" >&2
  wait_for postgres-replica "pg_isready -h 127.0.0.1 -p 5433"
fi
# A test may have paused replay and died before resuming it.
psql -h 127.0.0.1 -p 5433 -U postgres -qtAc "SELECT pg_wal_replay_resume()" >/dev/null 2>&1 || true

# --- Redis -------------------------------------------------------------------------
if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  command -v redis-server >/dev/null || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >&2; }
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >&2
  wait_for redis "redis-cli -h 127.0.0.1 ping"
fi

# A real three-master Redis Cluster on 127.0.0.1:7100-7102.
RC="$STATE/redis-cluster"
if ! redis-cli -p 7100 cluster info 2>/dev/null | grep -q 'cluster_state:ok'; then
  for p in 7100 7101 7102; do
    redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "${RC:?}/$p"; mkdir -p "$RC/$p"
    (cd "$RC/$p" && redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file nodes.conf --save "" --appendonly no --daemonize yes --logfile log >&2)
  done
  wait_for redis-cluster-nodes "redis-cli -p 7102 ping"
  redis-cli --cluster create 127.0.0.1:7100 127.0.0.1:7101 127.0.0.1:7102 \
    --cluster-replicas 0 --cluster-yes >&2
  wait_for redis-cluster "redis-cli -p 7100 cluster info | grep -q cluster_state:ok"
fi

# --- ClickHouse 18.16 and VictoriaMetrics from the OS packages ---------------------
need=()
command -v clickhouse-server >/dev/null || need+=(clickhouse-server clickhouse-client)
command -v victoria-metrics >/dev/null || need+=(victoria-metrics)
command -v influxd >/dev/null || need+=(influxdb)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >&2
fi

if ! curl -sf 'http://127.0.0.1:8123/?query=SELECT%201' >/dev/null 2>&1; then
  D="$STATE/clickhouse"; mkdir -p "$D"
  setsid clickhouse-server --config-file=/etc/clickhouse-server/config.xml -- \
    --path="$D/data/" --tmp_path="$D/tmp/" --user_files_path="$D/uf/" \
    --format_schema_path="$D/fs/" --logger.log="$D/log" --logger.errorlog="$D/err" \
    >"$D/out" 2>&1 < /dev/null &
  wait_for clickhouse "curl -sf 'http://127.0.0.1:8123/?query=SELECT%201'"
fi

if ! curl -sf http://127.0.0.1:8428/health >/dev/null 2>&1; then
  D="$STATE/victoria"; mkdir -p "$D"
  setsid victoria-metrics -storageDataPath="$D/data" -httpListenAddr=127.0.0.1:8428 \
    -retentionPeriod=100y >"$D/log" 2>&1 < /dev/null &
  wait_for victoria-metrics "curl -sf http://127.0.0.1:8428/health"
fi

# InfluxDB 1.6 (Debian's `influxdb`): the v1 `/write` API and InfluxDB's own
# line-protocol parser, the reference for how InfluxDB reads a line. On its own
# ports (8186 HTTP, 8188 RPC) with its data under $STATE, never the packaged
# service's.
if ! curl -sf http://127.0.0.1:8186/ping >/dev/null 2>&1; then
  D="$STATE/influxdb"; mkdir -p "$D"
  printf 'reporting-disabled = true\nbind-address = "127.0.0.1:8188"\n[meta]\n dir = "%s/meta"\n[data]\n dir = "%s/data"\n wal-dir = "%s/wal"\n[http]\n bind-address = "127.0.0.1:8186"\n' \
    "$D" "$D" "$D" > "$D/conf.toml"
  setsid influxd -config "$D/conf.toml" >"$D/log" 2>&1 < /dev/null &
  wait_for influxdb "curl -sf http://127.0.0.1:8186/ping"
fi

# --- chdb-core: a modern ClickHouse engine for DDL checks ---------------------------
if ! python3 -c 'import chdb' >/dev/null 2>&1; then
  log "installing chdb-core"
  python3 -m pip install -q chdb-core >&2
fi

cat <<ENV
export DATABASE_URL="\${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export REDIS_URL="\${REDIS_URL:-redis://127.0.0.1:6379}"
export CLICKHOUSE_URL="\${CLICKHOUSE_URL:-http://127.0.0.1:8123}"
export VICTORIA_URL="\${VICTORIA_URL:-http://127.0.0.1:8428}"
export INFLUX_V1_URL="\${INFLUX_V1_URL:-http://127.0.0.1:8186}"
export REPLICA_URL="\${REPLICA_URL:-postgres://postgres@127.0.0.1:5433/postgres}"
export REDIS_CLUSTER_URLS="\${REDIS_CLUSTER_URLS:-redis://127.0.0.1:7100,redis://127.0.0.1:7101,redis://127.0.0.1:7102}"
ENV
