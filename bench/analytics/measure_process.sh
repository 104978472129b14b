#!/usr/bin/env bash
# Start-to-listening time and idle resident memory of the real binary on a copy of a cached
# analytics bench database (spec storage 9.4 budgets: listening <= 1 s, idle RSS <= 100 MB).
# Usage: measure_process.sh <cpa-manager-plus binary> <usage-N-7.sqlite> [idle seconds, default 20]
set -euo pipefail
bin=$1
src=$2
idle=${3:-20}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
cp "$src" "$work/usage.sqlite"
start=$(date +%s%N)
USAGE_DATA_DIR="$work" USAGE_DB_PATH="$work/usage.sqlite" HTTP_ADDR="127.0.0.1:0" \
  "$bin" >"$work/out.log" 2>&1 &
pid=$!
until grep -q "listening on" "$work/out.log"; do
  if ! kill -0 "$pid" 2>/dev/null; then cat "$work/out.log"; exit 1; fi
  sleep 0.005
done
end=$(date +%s%N)
echo "start_to_listening_ms $(( (end - start) / 1000000 ))"
sleep "$idle"
echo "idle_rss_kb_after_${idle}s $(awk '/VmRSS/ {print $2}' /proc/$pid/status)"
echo "peak_rss_kb $(awk '/VmHWM/ {print $2}' /proc/$pid/status)"
echo "cpu_ticks_utime_stime $(awk '{print $14, $15}' /proc/$pid/stat)"
