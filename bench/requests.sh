#!/usr/bin/env bash
# The request budget: queries per pass against the minimum; see benches/requests.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench requests -- "$@"
