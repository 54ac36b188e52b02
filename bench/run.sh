#!/bin/sh
# run.sh — runs every benchmark program (build/rel/bench/bench_*) and
# every shell benchmark (bench/bench_*.sh, run with sh), the engine of
# `make bench` / `make bench BENCH=name`.
#
#   sh bench/run.sh [FILTER]
#
# Each program gets FILTER as its first argument and prints only the
# benches whose name contains it (no FILTER: all of them). Programs print
# result lines "bench <name> <key>=<number> ..." on stdout
# (../shared/spec/operations.md) and progress on stderr. This script
# passes result lines through to stdout unchanged and says on stderr
# which program runs and how long it took.
#
# Exit status: non-zero when a program fails (its exit status is non-zero),
# prints a malformed result line, or when FILTER matched no bench at all
# (a typo in BENCH= should not look like success).
# Environment: GPUX_BENCH_DIR overrides build/rel/bench.
dir=${GPUX_BENCH_DIR:-build/rel/bench}
filter=$1
tmp=$(mktemp "${TMPDIR:-/tmp}/gpux-bench.XXXXXX") || exit 1
trap 'rm -f "$tmp"' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

failed=0
lines=0
found=0
for prog in "$dir"/bench_* "$(dirname "$0")"/bench_*.sh; do
    case "$prog" in
        *.d|*.o) continue ;;
        *.sh) [ -f "$prog" ] || continue; runner=sh ;;
        *) [ -f "$prog" ] && [ -x "$prog" ] || continue; runner=env ;;
    esac
    found=$((found + 1))
    name=$(basename "$prog")
    echo "== $name ${filter:+(filter '$filter')}" >&2
    start=$(date +%s)
    if [ -n "$filter" ]; then
        "$runner" "$prog" "$filter" >"$tmp"
    else
        "$runner" "$prog" >"$tmp"
    fi
    rc=$?
    secs=$(( $(date +%s) - start ))
    # Result lines pass through; anything else on stdout is a defect of the
    # program (it breaks the machine-readable contract): shown on stderr.
    bad=$(grep -Evc '^bench [a-z0-9_]+( [a-z0-9_]+=-?[0-9]+(\.[0-9]+)?)+$' "$tmp")
    grep -E '^bench [a-z0-9_]+( [a-z0-9_]+=-?[0-9]+(\.[0-9]+)?)+$' "$tmp"
    n=$(grep -Ec '^bench ' "$tmp")
    lines=$((lines + n))
    if [ "$bad" -ne 0 ]; then
        echo "== $name: $bad malformed stdout line(s):" >&2
        grep -Ev '^bench [a-z0-9_]+( [a-z0-9_]+=-?[0-9]+(\.[0-9]+)?)+$' "$tmp" | head -5 | sed 's/^/   /' >&2
        failed=$((failed + 1))
    fi
    if [ "$rc" -ne 0 ]; then
        echo "== $name: FAILED (exit $rc) after ${secs}s" >&2
        failed=$((failed + 1))
    else
        echo "== $name: $n result line(s) in ${secs}s" >&2
    fi
done

if [ "$found" -eq 0 ]; then
    echo "bench/run.sh: no benchmark programs in $dir (build them: make bench)" >&2
    exit 1
fi
if [ "$lines" -eq 0 ] && [ "$failed" -eq 0 ]; then
    echo "bench/run.sh: no bench matched '${filter}'" >&2
    exit 1
fi
if [ "$failed" -ne 0 ]; then
    echo "bench/run.sh: $failed failure(s)" >&2
    exit 1
fi
exit 0
