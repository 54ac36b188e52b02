#!/bin/sh
# test_bench_smoke.sh — the engine benchmarks still run: a 1% scale run of
# bench_matcher exits 0 (its replays must reproduce the generated stream's
# state hash, trades and events, so this is also a determinism check) and
# prints well-formed `bench NAME key=number ...` lines for both benches
# (operations.md). Speed is not looked at.
ROOT=${GPUX_ROOT:-$(pwd)}
FL=${GPUX_FLAVOUR:-rel}
B="$ROOT/build/$FL/bench/bench_matcher"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
n=0
t() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fi; }
"$B" --scale 1 >"$out" 2>/dev/null
rc=$?
t "bench_matcher --scale 1 exits 0 (got $rc)" "[ $rc -eq 0 ]"
for name in matcher_classic matcher_gpu; do
    t "$name line present with ops_per_s p50_ns p99_ns p999_ns" \
      "grep -Eq '^bench $name( [a-z0-9_]+=[0-9.]+)+$' '$out' && grep '^bench $name ' '$out' | grep -q ' ops_per_s=[0-9]' && grep '^bench $name ' '$out' | grep -q ' p50_ns=' && grep '^bench $name ' '$out' | grep -q ' p99_ns=' && grep '^bench $name ' '$out' | grep -q ' p999_ns='"
done
t "every stdout line is a bench line" "! grep -vEq '^bench [a-z0-9_]+( [a-z0-9_]+=[0-9.]+)+$' '$out'"
