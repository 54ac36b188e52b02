#!/bin/sh
# demo.sh — `make demo`: a throwaway exchange on this machine, one simulated
# market day replayed through its HTTP gateway, the day's report and plot,
# the ledger check, then everything stopped and removed.
#   GPUX_DEMO_EVENTS=N   size of the day (default 20000 lines)
#   GPUX_DEMO_OUT=DIR    where day.jsonl and day.svg are kept (default build/demo)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/bin
EVENTS=${GPUX_DEMO_EVENTS:-20000}
OUT=${GPUX_DEMO_OUT:-$ROOT/build/demo}
DIR=$(mktemp -d /tmp/gpux-demo.XXXXXX)
mkdir -p "$OUT"
started=$(date +%s)

cleanup() {
    "$BIN/gpux" down --data "$DIR" >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n== %s\n' "$*"; }

step "1/6 starting a throwaway stack in $DIR (PostgreSQL, ledger, matcher, gateway)"
"$BIN/gpux" up --data "$DIR" --clock sim > "$DIR/stack.env"
grep -v '^ADMIN_KEY=' "$DIR/stack.env"
GATEWAY_URL=$(sed -n 's/^GATEWAY_URL=//p' "$DIR/stack.env")
ADMIN_KEY=$(sed -n 's/^ADMIN_KEY=//p' "$DIR/stack.env")
MATCHER_CMD=$(sed -n 's/^MATCHER_CMD=//p' "$DIR/stack.env")

step "2/6 generating the baseline market day ($EVENTS lines, seed 1)"
"$BIN/gpux-sim" generate --scenario baseline --seed 1 --events "$EVENTS" --out "$OUT/day.jsonl"

step "3/6 replaying it through the gateway at $GATEWAY_URL"
"$BIN/gpux-sim" replay --day "$OUT/day.jsonl" --gateway "$GATEWAY_URL" --key "$ADMIN_KEY" \
    --matcher "$MATCHER_CMD" --plot "$OUT/day.svg"

step "4/6 waiting for the ledger to settle every event"
i=0
while :; do
    lag=$("$BIN/gpux-ledger" status --db "$(sed -n 's/^DATABASE_URL=//p' "$DIR/stack.env")" \
          --feed "$(sed -n 's/^MATCHER_FEED=//p' "$DIR/stack.env")" 2>/dev/null | sed -n 's/^LAG=//p')
    [ "${lag:-1}" = 0 ] && break
    i=$((i + 1))
    [ $i -lt 600 ] || { echo "ledger still $lag events behind after 60 s"; exit 1; }
    sleep 0.1
done
echo "ledger caught up"

step "5/6 checking the ledger"
"$BIN/gpux" ledger check --data "$DIR"

step "6/6 stopping the stack"
"$BIN/gpux" down --data "$DIR"
echo "stopped"

printf '\ndemo done in %ss. The day: %s   its plot: %s\n' "$(( $(date +%s) - started ))" "$OUT/day.jsonl" "$OUT/day.svg"
