#!/usr/bin/env bash
# Throughput and memory benchmark; see benches/throughput.rs.
#   bench/run.sh                              # 100k records
#   bench/run.sh --records 100000,1000000     # 100k and 1M (with PostgreSQL rows when it is installed)
#   bench/run.sh --store-only 5000000         # 5M records through the store alone, a rate each million
#   bench/run.sh --measures 100000,1000000    # the analyst measures on both stores, against the views before
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench throughput -- "$@"
