#!/usr/bin/env bash
# Builds every libFuzzer harness in the table below with clang (no CMake) and runs each for a
# bounded time. Exits non-zero if a harness fails to build or finds a crash, leak, UB report
# or invariant failure; reproducers land in $FUZZ_OUT/artifacts/.
#
#   tests/fuzz/run-fuzzers.sh                 # all harnesses, FUZZ_SECONDS (default 30) each
#   FUZZ_SECONDS=300 tests/fuzz/run-fuzzers.sh resp_parser_fuzz
#
# Needs clang++ and the libFuzzer runtime: on Debian 12, `apt-get install -y clang
# libclang-rt-14-dev` (libclang_rt.fuzzer*.a is in libclang-rt-14-dev; libfuzzer-14-dev is not
# needed). Harnesses may use only sources that depend on the C++ standard library and Boost
# headers.
set -euo pipefail

# One row per harness: name | sources (from the repository root) | corpus name. The seed corpus
# is tests/fuzz/corpus/<corpus>/; tests/fuzz/<corpus>.dict is used as dictionary if present.
HARNESSES=(
  "resp_parser_fuzz|tests/fuzz/resp_parser_fuzz.cc src/clients/resp/resp.cc|resp"
  "normalizer_fuzz|tests/fuzz/normalizer_fuzz.cc src/usage/normalize.cc src/usage/go_value.cc src/usage/redact.cc src/usage/response_metadata.cc src/usage/timestamp.cc src/base/json.cc|normalizer"
  "queue_array_fuzz|tests/fuzz/queue_array_fuzz.cc src/collector/queue_items.cc|queue_array"
)
# Libraries every harness may link (OpenSSL for the normaliser's SHA-256).
LDLIBS_FUZZ=(-lcrypto)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CXX_FUZZ="${CXX_FUZZ:-clang++}"
FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
FUZZ_OUT="${FUZZ_OUT:-$ROOT/build/fuzz}"
CXXFLAGS_FUZZ=(-std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
  -fno-omit-frame-pointer -I"$ROOT/src")

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

selected=("$@")
failed=()
mkdir -p "$FUZZ_OUT/artifacts"

for row in "${HARNESSES[@]}"; do
  IFS='|' read -r name sources corpus <<<"$row"
  if ((${#selected[@]} > 0)) && [[ " ${selected[*]} " != *" $name "* ]]; then
    continue
  fi

  echo "== build $name"
  src_paths=()
  for s in $sources; do src_paths+=("$ROOT/$s"); done
  if ! "$CXX_FUZZ" "${CXXFLAGS_FUZZ[@]}" "${src_paths[@]}" "${LDLIBS_FUZZ[@]}" -o "$FUZZ_OUT/$name"; then
    failed+=("$name (build)")
    continue
  fi

  # Fuzz into a scratch corpus seeded from the checked-in one, so runs never modify the seeds.
  work="$FUZZ_OUT/corpus/$name"
  mkdir -p "$work"
  args=("$work" "$ROOT/tests/fuzz/corpus/$corpus" -max_total_time="$FUZZ_SECONDS" -timeout=10
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$FUZZ_OUT/artifacts/$name-")
  dict="$ROOT/tests/fuzz/$corpus.dict"
  if [[ -f "$dict" ]]; then args+=(-dict="$dict"); fi

  echo "== run $name for ${FUZZ_SECONDS}s"
  if ! "$FUZZ_OUT/$name" "${args[@]}" >"$FUZZ_OUT/$name.log" 2>&1; then
    failed+=("$name")
    tail -n 60 "$FUZZ_OUT/$name.log"
  else
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$FUZZ_OUT/$name.log" || true
  fi
done

if ((${#failed[@]} > 0)); then
  echo "FAILED: ${failed[*]} (logs and artifacts in $FUZZ_OUT)" >&2
  exit 1
fi
echo "all fuzzers passed"
