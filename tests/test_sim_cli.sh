#!/bin/sh
# test_sim_cli.sh — gpux-sim as a user runs it: real processes, real files.
#
# Proves: --help and usage errors; generate is byte-identical for the same
# seed and differs for another; check accepts a generated day and names
# the line of a corrupted one; replay writes a trades file and an SVG that
# python's XML parser accepts as a well-formed SVG document with the
# expected parts; report rebuilt from the day + trades file gives the same
# trade figures as the replay; SIGTERM in the middle of a big generate
# exits 143 and leaves neither the output nor its temp file behind; the
# `gpux` CLI exits 64 (usage) for a malformed gateway URL and 69 only when
# a well-formed one does not answer.
BIN=${GPUX_BIN:-build/rel/bin}
SIM="$BIN/gpux-sim"
export GPUX_CATALOG="${GPUX_ROOT:-.}/matcher/catalog.default"
T=$(mktemp -d /tmp/gpux-test-sim-cli-XXXXXX)
trap 'rm -rf "$T"' EXIT
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
check() { if eval "$2"; then ok "$1"; else nok "$1"; fi; }

# --- help and usage -----------------------------------------------------
"$SIM" --help >"$T/help" 2>&1; rc=$?
check "--help exits 0 and lists the commands" '[ $rc -eq 0 ] && grep -q "generate --scenario" "$T/help" && grep -q "GPUX_CATALOG" "$T/help"'
"$SIM" >/dev/null 2>&1; rc=$?
check "no command is a usage error (exit 2)" '[ $rc -eq 2 ]'
"$SIM" generate --scenario moon-landing --seed 1 >/dev/null 2>"$T/err"; rc=$?
check "unknown scenario: exit 2 with the valid names" '[ $rc -eq 2 ] && grep -q "peak-crunch" "$T/err"'
"$SIM" generate --scenario baseline --seed x1 >/dev/null 2>"$T/err"; rc=$?
check "bad seed: exit 2 naming --seed" '[ $rc -eq 2 ] && grep -q -- "--seed" "$T/err"'
"$SIM" generate --scenario baseline --seed 1 --events 2000 --out /nonexistent/d.jsonl 2>"$T/err"; rc=$?
check "unwritable --out: exit 1 with the reason" '[ $rc -eq 1 ] && grep -q "cannot create" "$T/err"'

# --- determinism --------------------------------------------------------
"$SIM" generate --scenario peak-crunch --seed 5 --events 2000 --out "$T/a.jsonl" 2>/dev/null
"$SIM" generate --scenario peak-crunch --seed 5 --events 2000 --out "$T/b.jsonl" 2>/dev/null
"$SIM" generate --scenario peak-crunch --seed 6 --events 2000 --out "$T/c.jsonl" 2>/dev/null
"$SIM" generate --scenario peak-crunch --seed 5 --events 2000 >"$T/stdout.jsonl" 2>/dev/null
check "same scenario and seed: byte-identical files" 'cmp -s "$T/a.jsonl" "$T/b.jsonl" && cmp -s "$T/a.jsonl" "$T/stdout.jsonl"'
check "another seed: a different file" '[ -s "$T/c.jsonl" ] && ! cmp -s "$T/a.jsonl" "$T/c.jsonl"'
check "no temp files left after success" '[ -z "$(ls "$T" | grep tmp)" ]'

# --- check --------------------------------------------------------------
"$SIM" check --day "$T/a.jsonl" >"$T/out" 2>"$T/err"; rc=$?
check "check accepts a generated day" '[ $rc -eq 0 ] && grep -q "scenario peak-crunch seed 5" "$T/out"'
awk 'NR == 40 { sub(/"t":[0-9]+/, "\"t\":\"soon\"") } { print }' "$T/a.jsonl" >"$T/bad.jsonl"
"$SIM" check --day "$T/bad.jsonl" >/dev/null 2>"$T/err"; rc=$?
check "check names the corrupted line" '[ $rc -eq 1 ] && grep -q "bad.jsonl: line 40: field .t. must be an integer" "$T/err"'
head -n 100 "$T/a.jsonl" >"$T/short.jsonl"
"$SIM" check --day "$T/short.jsonl" >/dev/null 2>"$T/err"; rc=$?
check "check catches a truncated day" '[ $rc -eq 1 ] && grep -q "truncated" "$T/err"'

# --- replay, plot, report -----------------------------------------------
"$SIM" replay --day "$T/a.jsonl" --trades-out "$T/trades.jsonl" --plot "$T/day.svg" >"$T/replay.txt" 2>"$T/err"; rc=$?
check "replay runs the day through the engine" '[ $rc -eq 0 ] && grep -q "all markets" "$T/replay.txt" && grep -q "replayed" "$T/err"'
check "replay wrote one trades line per trade" '[ "$(wc -l <"$T/trades.jsonl")" -eq "$(sed -n "s/.* \([0-9]*\) trades,.*/\1/p" "$T/err")" ] && [ -s "$T/trades.jsonl" ]'
python3 - "$T/day.svg" >"$T/svgcheck" 2>&1 <<'EOF'
import sys, xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == ns + "svg", root.tag
paths = root.findall(ns + "path")
bars = [r for r in root.findall(ns + "rect") if r.find(ns + "title") is not None]
texts = [t.text or "" for t in root.iter(ns + "text")]
assert len(paths) >= 3, "price lines: %d" % len(paths)
assert len(bars) == 24, "volume bars: %d" % len(bars)
assert any("H100" in t for t in texts) and any("VWAP" in t for t in texts)
for p in paths:
    d = p.get("d").split()
    assert d[0].startswith("M"), d[:2]
print("svg ok")
EOF
check "the SVG is well-formed XML with price lines, 24 bars and labels" 'grep -q "svg ok" "$T/svgcheck"'
"$SIM" report --day "$T/a.jsonl" --trades "$T/trades.jsonl" --plot "$T/day2.svg" >"$T/report.txt" 2>"$T/err"; rc=$?
# the trade columns (trades, GPU-hours, VWAP, low, high, fees) must agree
cols() { grep "^$1" "$2" | awk '{ print $(NF-9), $(NF-8), $(NF-7), $(NF-6), $(NF-5), $NF }'; }
check "report from the trades file matches the replay" '[ $rc -eq 0 ] && [ -n "$(cols "all markets" "$T/replay.txt")" ] && [ "$(cols "all markets" "$T/replay.txt")" = "$(cols "all markets" "$T/report.txt")" ] && [ "$(cols H100/us-east "$T/replay.txt")" = "$(cols H100/us-east "$T/report.txt")" ]'
check "report plot is byte-identical to the replay plot" 'cmp -s "$T/day.svg" "$T/day2.svg"'
head -n 3 "$T/trades.jsonl" >"$T/t3.jsonl"; echo '{"trade_id":"1","t":1}' >>"$T/t3.jsonl"
"$SIM" report --day "$T/a.jsonl" --trades "$T/t3.jsonl" >/dev/null 2>"$T/err"; rc=$?
check "report names a bad trades line" '[ $rc -eq 1 ] && grep -q "t3.jsonl: line 4:" "$T/err"'

# --- other shapes of day: 48 hours, one market, and a day with no trades ---
svgcheck() { # FILE BARS MIN_PATHS
python3 - "$1" "$2" "$3" <<'EOF'
import sys, xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == ns + "svg", root.tag
bars = [r for r in root.findall(ns + "rect") if r.find(ns + "title") is not None]
assert len(bars) == int(sys.argv[2]), "bars %d" % len(bars)
assert len(root.findall(ns + "path")) >= int(sys.argv[3])
print("svg ok")
EOF
}
"$SIM" generate --scenario hyperscaler-surplus --seed 9 --events 800 --hours 48 --markets H100/apac --start 2027-01-01T06:00:00Z --out "$T/h48.jsonl" 2>/dev/null
"$SIM" replay --day "$T/h48.jsonl" --plot "$T/h48.svg" --trades-out "$T/h48.trades" >"$T/h48.txt" 2>/dev/null; rc=$?
check "a 48-hour one-market day replays and plots 48 bars" '[ $rc -eq 0 ] && [ "$(grep -c "^[A-Z0-9]*/" "$T/h48.txt")" -eq 1 ] && grep -q "^H100/apac" "$T/h48.txt" && svgcheck "$T/h48.svg" 48 1 | grep -q "svg ok"'
: >"$T/none.trades"
"$SIM" report --day "$T/h48.jsonl" --trades "$T/none.trades" --plot "$T/none.svg" >"$T/none.txt" 2>/dev/null; rc=$?
check "a day without trades still reports and plots" '[ $rc -eq 0 ] && grep -q "^all markets  *0 " "$T/none.txt" && svgcheck "$T/none.svg" 48 0 | grep -q "svg ok"'

# --- bench lines --------------------------------------------------------
"$SIM" bench --events 2000 >"$T/bench.txt" 2>"$T/err"; rc=$?
check "bench prints two make-bench result lines" '[ $rc -eq 0 ] && [ "$(grep -Ec "^bench sim_(generate|inproc)( [a-z0-9_]+=-?[0-9]+(\.[0-9]+)?)+$" "$T/bench.txt")" -eq 2 ] && [ "$(wc -l <"$T/bench.txt")" -eq 2 ]'

# --- gpux: a malformed gateway URL is a usage error ---------------------
# (64, as `gpux --help` says; 69 is for a gateway that does not answer)
GPUX="$BIN/gpux"
bad_url_rcs=
for u in "not a url" "localhost:8080" "https://127.0.0.1:8443" "http://:80" "http://127.0.0.1:99999"; do
    GPUX_URL="$u" "$GPUX" markets >/dev/null 2>"$T/err"; rc=$?
    grep -q "bad gateway URL" "$T/err" || rc="$rc(no reason)"
    bad_url_rcs="$bad_url_rcs $rc"
done
check "gpux: a malformed GPUX_URL exits 64 with the reason (got:$bad_url_rcs)" '[ "$bad_url_rcs" = " 64 64 64 64 64" ]'
GPUX_URL=http://127.0.0.1:1 "$GPUX" markets --url "no url" >/dev/null 2>"$T/err"; rc=$?
check "gpux: a malformed --url exits 64 (and wins over GPUX_URL)" '[ $rc -eq 64 ] && grep -q "bad gateway URL .no url." "$T/err"'
GPUX_URL=http://127.0.0.1:1 "$GPUX" markets >/dev/null 2>"$T/err"; rc=$?
check "gpux: a well-formed URL where no gateway answers exits 69" '[ $rc -eq 69 ] && grep -q "no answer" "$T/err"'

# --- SIGTERM ------------------------------------------------------------
"$SIM" generate --scenario baseline --seed 1 --events 40000000 --out "$T/big.jsonl" 2>"$T/big.err" &
pid=$!
tries=0
while [ ! -e "$T/big.jsonl.tmp.$pid" ] && [ $tries -lt 600 ]; do sleep 0.05; tries=$((tries + 1)); done
kill -TERM $pid
wait $pid; rc=$?
check "SIGTERM stops generate with 143 and a reason" '[ $rc -eq 143 ] && grep -q "stopped by signal" "$T/big.err"'
check "SIGTERM leaves no partial output" '[ ! -e "$T/big.jsonl" ] && [ ! -e "$T/big.jsonl.tmp.$pid" ]'

echo "1..$n"
[ $fails -eq 0 ]
