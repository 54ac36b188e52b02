#!/bin/sh
# test_matcher_fuzz.sh — builds the wire decoder fuzz target (make
# fuzz-build rule for build/fuzz/fuzz_wire, clang libFuzzer + ASan + UBSan) and runs it for a bounded time
# from a seed corpus of valid messages. Fails on any crash, leak, sanitizer
# report or build error. The fuzz binary is the same for both flavours, so
# it runs under rel (20 s) and only re-checks the seeds under san.
# Longer runs: make fuzz FUZZ_SECONDS=600.
root=${GPUX_ROOT:-$(pwd)}
cd "$root" || exit 1
secs=20
[ "${GPUX_FLAVOUR:-rel}" = san ] && secs=0
if ! make -s build/fuzz/fuzz_wire >/tmp/gpux-fuzz-build.$$ 2>&1; then
    cat /tmp/gpux-fuzz-build.$$; rm -f /tmp/gpux-fuzz-build.$$
    echo "not ok 1 - fuzz_wire builds"
    exit 1
fi
rm -f /tmp/gpux-fuzz-build.$$
echo "ok 1 - fuzz_wire builds"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"
# seeds: valid messages written by the test program's encoder
"$root/build/fuzz/fuzz_wire" -runs=0 "$work/corpus" >/dev/null 2>&1
if [ -d build/fuzz/corpus/fuzz_wire ]; then cp build/fuzz/corpus/fuzz_wire/* "$work/corpus/" 2>/dev/null; fi
printf 'GPUX\001\000\001\000\310\000\000\000\001\000\000\000' >"$work/corpus/hdr"
if [ "$secs" -gt 0 ]; then
    args="-max_total_time=$secs"
else
    args="-runs=2000"
fi
if "$root/build/fuzz/fuzz_wire" $args -rss_limit_mb=1024 -max_len=4096 \
        -artifact_prefix="$work/" "$work/corpus" >"$work/log" 2>&1; then
    echo "ok 2 - fuzz_wire ran $(grep -o 'Done [0-9]* runs' "$work/log" | head -1) without a finding"
else
    tail -40 "$work/log"
    echo "not ok 2 - fuzz_wire found a crash (artifact in the log above)"
    exit 1
fi
