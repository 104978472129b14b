#!/usr/bin/env bash
# `make demo`: starts the CPA simulator producing traffic and a Manager Server already bound to
# it (env-managed connection), so live data shows up at http://127.0.0.1:18317/management.html.
# Ctrl-C stops both. Data lives in build/demo/ (delete it to start fresh).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${DEMO_BIN:-$ROOT/build/release}"
DEMO="$ROOT/build/demo"
SIM_PORT="${SIM_PORT:-18318}"
RATE="${RATE:-20}"
KEY="demo-management-key"
mkdir -p "$DEMO"

"$BIN/cpa-sim" --listen "127.0.0.1:$SIM_PORT" --management-key "$KEY" --usage-enabled \
  --rate "$RATE" --retention-seconds 60 &
SIM_PID=$!
trap 'kill $SIM_PID 2>/dev/null || true' EXIT INT TERM
sleep 0.5

echo "demo: CPA simulator on 127.0.0.1:$SIM_PORT producing $RATE records/s"
echo "demo: Manager Server on http://127.0.0.1:18317/management.html (data in $DEMO)"
cp "$BIN/cpa-manager-plus" "$DEMO/cpa-manager-plus"
cd "$DEMO"
CPA_UPSTREAM_URL="http://127.0.0.1:$SIM_PORT" CPA_MANAGEMENT_KEY="$KEY" \
  CPA_MANAGER_ADMIN_KEY="${CPA_MANAGER_ADMIN_KEY:-demo-admin-key}" \
  HTTP_ADDR="${HTTP_ADDR:-127.0.0.1:18317}" ./cpa-manager-plus
