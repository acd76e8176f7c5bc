#!/usr/bin/env bash
# Soak: the daemon, one pass a second, against a simulator at 20 % faults with
# a growing, changing tenant. SOAK_MINUTES (default 30) minutes; at the end
# the store must equal the tenant, with no panic and RSS bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
export SOAK_MINUTES="${SOAK_MINUTES:-30}"
exec cargo test --release --test it soak -- --ignored --nocapture
