#!/usr/bin/env bash
# PostgreSQL's write rate as the store grows: end-to-end `backfill` runs of
# one or more builds into a durable local server (`.ci/postgres` on port
# 55433, fsync on, default settings otherwise), each into a new database,
# against the simulator with 500,000 callers and 100,000 calls a day (one day
# for the small size, ten for the large one). The builds run interleaved, so
# that their figures come from the same window of a shared machine.
#   bench/pg-scale.sh target/release/oifde-sync                   # 100k, 1M, 100k
#   bench/pg-scale.sh old/oifde-sync target/release/oifde-sync    # each size for each build in turn
#   SIZES=10000,100000 bench/pg-scale.sh BIN                      # other sizes (a day holds 100,000)
# Prints, a run: records/s, the database's bytes a record, and the WAL the
# server wrote a record (bytes, and full-page images) from pg_stat_wal.
set -euo pipefail
[ $# -ge 1 ] || { sed -n 2,12p "$0"; exit 2; }
cd "$(dirname "$0")/.."
SIZES="${SIZES:-100000,1000000,100000}"
WORK="$(mktemp -d)"
ADMIN="$(OIFDE_PG_DURABLE=1 OIFDE_TEST_PG_PORT=55433 .ci/postgres)"
sql() { PGOPTIONS="-c client_min_messages=warning" psql "$ADMIN" -qAtF' ' "$@"; }
SIMS=()
trap 'kill "${SIMS[@]}" 2>/dev/null; rm -rf "$WORK"' EXIT

# One simulator a size, from the first build: its span is on its second line.
declare -A URL FROM TO
PORT=38140
for n in ${SIZES//,/ }; do
  [ -n "${URL[$n]:-}" ] && continue
  days=$(( (n + 99999) / 100000 ))
  "$1" simulate --listen "127.0.0.1:$PORT" --records "$n" --users 500000 --days "$days" --lenient \
    > "$WORK/sim-$n.out" 2>&1 &
  SIMS+=($!)
  until [ "$(wc -l < "$WORK/sim-$n.out")" -ge 2 ]; do sleep 1; done
  span=$(sed -n 2p "$WORK/sim-$n.out" | sed 's/.* records from //; s/ UTC.*//')
  URL[$n]="http://127.0.0.1:$PORT"
  FROM[$n]="${span% to *}"
  TO[$n]=$(date -u -d "${span#* to } UTC - 1 second" "+%Y-%m-%d %H:%M:%S")
  PORT=$((PORT + 1))
done

printf '%-40s %10s %10s %10s %12s %10s\n' build records records/s "bytes/rec" "WAL B/rec" "FPI/rec"
run=0
for n in ${SIZES//,/ }; do
  for bin in "$@"; do
    run=$((run + 1))
    db="oifde_scale_$run"
    sql -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    cat > "$WORK/c.toml" <<T
[api]
base_url = "${URL[$n]}"
tenant_id = "tenant001"
app_secret = "demo-secret"
max_requests_per_second = 100000

[sync]
start = "${FROM[$n]}"

[store]
url = "${ADMIN/\/postgres\?//$db?}"

[log]
level = "warn"
T
    chmod 600 "$WORK/c.toml"
    sql -c "SELECT pg_stat_reset_shared('wal')" >/dev/null
    start=$(date +%s.%N)
    "$bin" --config "$WORK/c.toml" backfill --from "${FROM[$n]}" --to "${TO[$n]}" > "$WORK/out.txt" 2>&1 \
      || { cat "$WORK/out.txt"; exit 1; }
    end=$(date +%s.%N)
    read -r wal fpi size < <(sql -c "SELECT wal_bytes, wal_fpi, pg_database_size('$db') FROM pg_stat_wal")
    printf '%-40s %10d %10.0f %10.0f %12.0f %10.2f\n' "$bin" "$n" "$(echo "$n / ($end - $start)" | bc -l)" \
      "$(echo "$size / $n" | bc -l)" "$(echo "$wal / $n" | bc -l)" "$(echo "$fpi / $n" | bc -l)"
    # The next run starts clean: no autovacuum of this database beside it,
    # none of its dirty pages left to write.
    sql -c "DROP DATABASE $db" -c "CHECKPOINT"
  done
done
