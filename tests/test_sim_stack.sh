#!/bin/sh
# test_sim_stack.sh — the whole exchange as an operator runs it: `gpux up`
# on a throwaway data dir (real PostgreSQL, ledger, matcher, gateway), two
# simulated days replayed into it, the `gpux` client commands, and a
# restart. Issue 6's end-to-end checks.
#
# Proves:
#  - a day replayed through the gateway (HTTP) and a day replayed over nng
#    each leave in the ledger (SQL view gpux_trades) exactly the trades,
#    GPU-hours and fees the replay's report counts ("all markets" line),
#    once the ledger has caught up with the matcher; `gpux ledger check`
#    (which then also compares with the live matcher) passes;
#  - the nng replay (batch messages, one in flight) applies the day in its
#    exact file order: its report equals the in-process replay's of the
#    same day table for table (the rejects table counts the same commands;
#    the stack names a cancel of a closed order by the API's code);
#  - the client commands work against the live stack and their exit codes
#    follow `gpux --help`: 0 ok, 64 usage, 65 rejected (4xx), 69 gateway
#    unreachable; --json output parses; money moves as market.md says;
#  - `gpux down` then `gpux up` keeps accounts, balances, holds, resting
#    orders, API keys and the ledger; `gpux status` says 0 up, non-zero down.
#
# The two days use disjoint markets (and the second day renames its
# accounts), so the second day's trades cannot touch the first day's
# resting orders and each replay's report must equal its own ledger delta.
# Nothing here is timed: waits are bounded polls that fail with the logs.
# Prints TAP. Needs GPUX_BIN (the flavour's binaries), python3, psql.
set -u
BIN=${GPUX_BIN:-$(pwd)/build/rel/bin}
GPUX_ROOT=${GPUX_ROOT:-$(pwd)}
export GPUX_ROOT
FLAVOUR=${GPUX_FLAVOUR:-rel}
# ASan+UBSan binaries are several times slower: a smaller day there.
if [ "$FLAVOUR" = san ]; then EVENTS=700; else EVENTS=2000; fi
D=$(mktemp -d /tmp/gpux-simstack-XXXXXX)
T=$D/t # scratch files (inside D: one directory to remove)
mkdir -p "$T"
n=0
fails=0

cleanup() {
    trap '' TERM INT # a second signal must not cut the tear-down short
    "$BIN/gpux" down --data "$D" >/dev/null 2>&1
    # If `gpux down` could not run (its binary relinked by a build beside
    # the test), stop what the stack started ourselves: a component whose
    # pid file names a live gpux process, and PostgreSQL by its data dir.
    for f in "$D"/run/*.pid; do
        [ -f "$f" ] || continue
        p=$(cat "$f")
        case "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" in
        *gpux-*) kill -KILL "$p" 2>/dev/null ;;
        esac
    done
    [ -f "$D/pg/pgdata/postmaster.pid" ] && pgkill "$D/pg/pgdata"
    rm -rf "$D"
}
# PostgreSQL's postmaster of a data dir, stopped at once (its pid file's
# first line, checked to be a postgres process of that dir)
pgkill() {
    p=$(head -n 1 "$1/postmaster.pid" 2>/dev/null)
    case "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" in
    *postgres*"$1"*) kill -QUIT "$p" 2>/dev/null ;;
    esac
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() {
    n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"
    [ -n "${2:-}" ] && [ -f "$2" ] && sed 's/^/#   /' "$2" | head -40
}
# check NAME CONDITION [FILE-TO-SHOW-ON-FAILURE]
check() { if eval "$2"; then ok "$1"; else nok "$1" "${3:-}"; fi; }
logs() { # the component logs, for a failure that needs them
    for f in "$D"/log/*.log "$D"/pg/postgres.log; do
        [ -f "$f" ] || continue
        echo "# --- last lines of $f"
        tail -n 25 "$f" | sed 's/^/#   /'
    done
}
bail() { nok "$1" "${2:-}"; logs; echo "1..$n"; exit 1; }
kv() { sed -n "s/^$1=//p" "$2" | head -n 1; }
# jget FILE PYEXPR: evaluates PYEXPR on the parsed JSON `j` of FILE
jget() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1" 2>/dev/null; }
isjson() { python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$1" 2>/dev/null; }

# --- up -----------------------------------------------------------------
"$BIN/gpux" up --data "$D" --clock sim >"$T/up.env" 2>"$T/up.err"; rc=$?
[ $rc -eq 0 ] || { cat "$T/up.err" | sed 's/^/# /'; bail "gpux up --clock sim starts the stack (exit $rc)"; }
missing=
for k in GATEWAY_URL GATEWAY_TLS_URL DATABASE_URL MATCHER_CMD MATCHER_FEED ADMIN_KEY; do
    [ -n "$(kv $k "$T/up.env")" ] || missing="$missing $k"
done
check "gpux up prints the KEY=value lines of operations.md" '[ -z "$missing" ]' "$T/up.env"
URL=$(kv GATEWAY_URL "$T/up.env")
DBURL=$(kv DATABASE_URL "$T/up.env")
CMD=$(kv MATCHER_CMD "$T/up.env")
FEED=$(kv MATCHER_FEED "$T/up.env")
ADMIN=$(kv ADMIN_KEY "$T/up.env")
"$BIN/gpux" status --data "$D" >"$T/status" 2>&1; rc=$?
check "gpux status: exit 0 and every pid set while up" '[ $rc -eq 0 ] && [ -n "$(kv MATCHER_PID "$T/status")" ] && [ -n "$(kv LEDGER_PID "$T/status")" ] && [ -n "$(kv GATEWAY_PID "$T/status")" ] && [ -n "$(kv POSTGRES_PID "$T/status")" ] && [ "$(kv GATEWAY_URL "$T/status")" = "$URL" ]' "$T/status"

# --- helpers on the live stack ----------------------------------------------
sql() { psql "$DBURL" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1" 2>>"$T/psql.err"; }
# ledger totals: trades|GPU-hours|fee micros (integers)
ledger_totals() {
    sql "SELECT count(*), coalesce(sum(qty * (extract(epoch FROM end_at - start_at)::bigint / 3600)), 0),
                coalesce(sum(buyer_fee_micros + provider_fee_micros), 0) FROM gpux_trades"
}
# report totals from the 'all markets' line: trades|GPU-hours|fee micros
report_totals() {
    awk '/^all markets/ { f = $NF; sub(/\./, "", f); sub(/^0+/, "", f); if (f == "") f = 0;
                          print $3 "|" $4 "|" f }' "$1"
}
# Waits (bounded) until the ledger has settled everything the matcher has:
# `gpux-ledger status` says LAG=0, then `gpux ledger check` confirms that
# the ledger and the live matcher are at the same seq (LAG alone compares
# with the matcher seq the ledger saw last, which may be stale). Leaves the
# check's output in $T/check.out and its exit status in $check_rc.
wait_settled() {
    tries=0
    check_rc=1
    while [ $tries -lt 300 ]; do
        tries=$((tries + 1))
        lag=$("$BIN/gpux-ledger" status --db "$DBURL" --feed "$FEED" 2>/dev/null | sed -n 's/^LAG=//p')
        if [ "$lag" = 0 ]; then
            "$BIN/gpux" ledger check --data "$D" >"$T/check.out" 2>&1
            check_rc=$?
            grep -q "ledger = live matcher at seq" "$T/check.out" && return 0
        fi
        sleep 0.2
    done
    return 1
}

# --- 1. a day through the gateway ------------------------------------------
"$BIN/gpux-sim" generate --scenario baseline --seed 11 --events "$EVENTS" --markets H100,H200,B200 \
    --out "$T/day1.jsonl" 2>"$T/gen1.err" || bail "generate day 1" "$T/gen1.err"
"$BIN/gpux-sim" replay --day "$T/day1.jsonl" --gateway "$URL" --key "$ADMIN" --matcher "$CMD" \
    >"$T/rep1.txt" 2>"$T/rep1.err"; rc=$?
check "day 1 replays through the gateway (exit 0, report printed)" '[ $rc -eq 0 ] && grep -q "^all markets" "$T/rep1.txt"' "$T/rep1.err"
if wait_settled; then ok "the ledger catches up with the matcher after day 1"; else nok "the ledger catches up with the matcher after day 1"; logs; fi
r1=$(report_totals "$T/rep1.txt")
l1=$(ledger_totals)
echo "# day 1: report trades|GPU-hours|fee micros = $r1, ledger = $l1"
check "day 1 (gateway): report totals = ledger totals (trades, GPU-hours, fees)" '[ -n "$r1" ] && [ "${r1%%|*}" -gt 0 ] && [ "$r1" = "$l1" ]' "$T/rep1.txt"
check "gpux ledger check passes after day 1 (also against the live matcher)" '[ $check_rc -eq 0 ] && grep -q "result: all hold" "$T/check.out"' "$T/check.out"

# --- 2. a day over nng (other markets, renamed accounts, later dates) --------
"$BIN/gpux-sim" generate --scenario peak-crunch --seed 12 --events "$EVENTS" --markets A100,MI300X,L40S \
    --start 2026-12-02T00:00:00Z 2>"$T/gen2.err" | sed 's/"account":"/"account":"d2-/g' >"$T/day2.jsonl"
"$BIN/gpux-sim" check --day "$T/day2.jsonl" >/dev/null 2>"$T/gen2.err" || bail "generate day 2" "$T/gen2.err"
"$BIN/gpux-sim" replay --day "$T/day2.jsonl" --matcher "$CMD" >"$T/rep2.txt" 2>"$T/rep2.err"; rc=$?
check "day 2 replays over nng in batch messages (exit 0, report printed)" '[ $rc -eq 0 ] && grep -q "^all markets" "$T/rep2.txt"' "$T/rep2.err"
# the same day through a fresh in-process engine: same trades, same figures
"$BIN/gpux-sim" replay --day "$T/day2.jsonl" >"$T/inproc2.txt" 2>"$T/inproc2.err"
sed '/^rejected/,$d' "$T/rep2.txt" >"$T/rep2.tables"
sed '/^rejected/,$d' "$T/inproc2.txt" >"$T/inproc2.tables"
rejects() { awk '/^rejected/ { f = 1; next } f && NF { s += $NF } END { print s + 0 }' "$1"; }
skipped=$(sed -n 's/.* rejected, \([0-9]*\) skipped.*/\1/p' "$T/rep2.err")
check "day 2 over nng = the in-process replay of day 2 (every table; rejected + skipped = rejected)" \
    'grep -q "^all markets" "$T/inproc2.tables" && cmp -s "$T/rep2.tables" "$T/inproc2.tables" && [ -n "$skipped" ] && [ $(( $(rejects "$T/rep2.txt") + skipped )) -eq "$(rejects "$T/inproc2.txt")" ]' "$T/inproc2.err"
[ -s "$T/rep2.tables" ] && ! cmp -s "$T/rep2.tables" "$T/inproc2.tables" && diff "$T/rep2.tables" "$T/inproc2.tables" | head -20 | sed 's/^/#   /'
if wait_settled; then ok "the ledger catches up with the matcher after day 2"; else nok "the ledger catches up with the matcher after day 2"; logs; fi
r2=$(report_totals "$T/rep2.txt")
l2=$(ledger_totals)
d2=$(echo "$l1 $l2" | awk -F'[| ]' '{ print $4 - $1 "|" $5 - $2 "|" $6 - $3 }')
echo "# day 2: report trades|GPU-hours|fee micros = $r2, ledger delta = $d2"
check "day 2 (nng): report totals = the ledger's delta (trades, GPU-hours, fees)" '[ -n "$r2" ] && [ "${r2%%|*}" -gt 0 ] && [ "$r2" = "$d2" ]' "$T/rep2.txt"
check "gpux ledger check passes after day 2" '[ $check_rc -eq 0 ] && grep -q "result: all hold" "$T/check.out"' "$T/check.out"

# --- 3. the client commands ----------------------------------------------
# The sim clock now stands at 2026-12-03T00; trade a day later.
export GPUX_URL="$URL"
W=2026-12-04T00:00:00Z
W2=2026-12-05T00:00:00Z
g() { "$BIN/gpux" "$@"; }
g admin account --name cli-provider --roles provider --key "$ADMIN" --json >"$T/prov.json" 2>"$T/err"; rc=$?
PROV=$(jget "$T/prov.json" 'j["account_id"]'); PKEY=$(jget "$T/prov.json" 'j["api_key"]')
check "admin account creates a provider and shows its key once (--json)" '[ $rc -eq 0 ] && [ -n "$PROV" ] && [ -n "$PKEY" ]' "$T/err"
g admin account --name cli-buyer --roles buyer --key "$ADMIN" --json >"$T/buyer.json" 2>"$T/err"
BUY=$(jget "$T/buyer.json" 'j["account_id"]'); BKEY=$(jget "$T/buyer.json" 'j["api_key"]')
g admin deposit --account "$BUY" --amount 10000 --key "$ADMIN" >"$T/dep.txt" 2>"$T/err"; rc=$?
check "admin deposit: exit 0, table shows the balance" '[ $rc -eq 0 ] && grep -q "10000" "$T/dep.txt"' "$T/err"
g admin withdraw --account "$BUY" --amount 100 --key "$ADMIN" --json >"$T/wd.json" 2>"$T/err"; rc=$?
check "admin withdraw: exit 0, balance 9900" '[ $rc -eq 0 ] && [ "$(jget "$T/wd.json" "float(j[\"balance\"])")" = 9900.0 ]' "$T/wd.json"
g admin withdraw --account "$BUY" --amount 100000 --key "$ADMIN" >"$T/out" 2>"$T/err"; rc=$?
check "admin withdraw above the balance: exit 65 (insufficient_funds)" '[ $rc -eq 65 ] && grep -q insufficient_funds "$T/err"' "$T/err"

g sell --gpu H100 --region us-east --start $W --hours 4 --qty 16 --price 2.50 --key "$PKEY" --json >"$T/sell.json" 2>"$T/err"; rc=$?
SELL=$(jget "$T/sell.json" 'j["order_id"]')
check "sell: an offer rests (exit 0, status open)" '[ $rc -eq 0 ] && [ "$(jget "$T/sell.json" "j[\"status\"]")" = open ]' "$T/err"
g quote --side buy --gpu H100 --region us-east --start $W --hours 4 --qty 8 --key "$BKEY" --json >"$T/quote.json" 2>"$T/err"; rc=$?
check "quote: 8 GPUs fillable at 2.50" '[ $rc -eq 0 ] && [ "$(jget "$T/quote.json" "j[\"fillable_qty\"]")" = 8 ] && [ "$(jget "$T/quote.json" "float(j[\"avg_price\"])")" = 2.5 ]' "$T/quote.json"
g book H100 us-east --key "$BKEY" --json >"$T/book.json" 2>"$T/err"; rc=$?
check "book: the offer is on the ask side" '[ $rc -eq 0 ] && [ "$(jget "$T/book.json" "[(float(a[\"price\"]), a[\"qty\"], a[\"start\"]) for a in j[\"asks\"] if a[\"start\"] == \"$W\"]")" = "[(2.5, 16, '"'$W'"')]" ]' "$T/book.json"
g book H100 us-east --key "$BKEY" >"$T/book.txt" 2>"$T/err"
check "book (table): bids and asks sections" 'grep -q "^bids" "$T/book.txt" && grep -q "^asks" "$T/book.txt" && grep -q "2.5" "$T/book.txt"' "$T/book.txt"
g buy --gpu H100 --region us-east --start $W --hours 4 --qty 8 --price 2.60 --key "$BKEY" --json >"$T/buy.json" 2>"$T/err"; rc=$?
TRADE=$(jget "$T/buy.json" 'j["fills"][0]["trade_id"]')
check "buy: fills at the resting offer's price (exit 0, filled, 2.50)" '[ $rc -eq 0 ] && [ "$(jget "$T/buy.json" "j[\"status\"]")" = filled ] && [ "$(jget "$T/buy.json" "float(j[\"fills\"][0][\"price\"])")" = 2.5 ]' "$T/buy.json"
g trades H100 us-east --key "$BKEY" --json >"$T/trades.json" 2>"$T/err"; rc=$?
check "trades: the new trade is listed first" '[ $rc -eq 0 ] && [ "$(jget "$T/trades.json" "j[\"trades\"][0][\"trade_id\"]")" = "$TRADE" ]' "$T/trades.json"
# 9900 - 2.50 x 8 GPUs x 4 h (80) - taker fee 10 bps (0.08) = 9819.92
g account --key "$BKEY" --json >"$T/acct.json" 2>"$T/err"; rc=$?
check "account: the buyer paid notional + taker fee (9819.92)" '[ $rc -eq 0 ] && [ "$(jget "$T/acct.json" "j[\"balance\"]")" = "$(jget "$T/acct.json" "j[\"available\"]")" ] && python3 -c "import json,sys,decimal; j=json.load(open(sys.argv[1])); sys.exit(decimal.Decimal(j[\"balance\"]) != decimal.Decimal(\"9819.92\"))" "$T/acct.json"' "$T/acct.json"
g leases --key "$BKEY" --json >"$T/leases.json" 2>"$T/err"; rc=$?
check "leases: the buyer holds one lease of 8 GPUs for the window" '[ $rc -eq 0 ] && [ "$(jget "$T/leases.json" "[(l[\"role\"], l[\"qty\"], l[\"start\"]) for l in j[\"leases\"]]")" = "[('"'buyer'"', 8, '"'$W'"')]" ]' "$T/leases.json"
g leases --key "$PKEY" >"$T/leases.txt" 2>"$T/err"; rc=$?
check "leases (table): the provider sees the same lease" '[ $rc -eq 0 ] && grep -q provider "$T/leases.txt" && grep -q "$W" "$T/leases.txt"' "$T/leases.txt"
g orders --key "$PKEY" --json >"$T/porders.json" 2>"$T/err"; rc=$?
check "orders: the offer is partially filled (8 of 16)" '[ $rc -eq 0 ] && [ "$(jget "$T/porders.json" "[(o[\"status\"], o[\"filled_qty\"]) for o in j[\"orders\"] if o[\"order_id\"] == \"$SELL\"]")" = "[('"'partially_filled'"', 8)]" ]' "$T/porders.json"
g replace "$SELL" --price 2.40 --key "$PKEY" --json >"$T/repl.json" 2>"$T/err"; rc=$?
g order "$SELL" --key "$PKEY" --json >"$T/order.json" 2>>"$T/err"
check "replace: the offer's price becomes 2.40" '[ $rc -eq 0 ] && [ "$(jget "$T/order.json" "float(j[\"price\"])")" = 2.4 ]' "$T/err"
g buy --gpu H100 --region us-east --start $W2 --hours 2 --qty 8 --price 2.00 --key "$BKEY" --json >"$T/bid.json" 2>"$T/err"; rc=$?
BID=$(jget "$T/bid.json" 'j["order_id"]')
g cancel "$BID" --key "$BKEY" --json >"$T/cancel.json" 2>"$T/err"; rc2=$?
check "cancel: a resting bid is cancelled" '[ $rc -eq 0 ] && [ $rc2 -eq 0 ] && [ "$(jget "$T/cancel.json" "j[\"status\"]")" = cancelled ]' "$T/cancel.json"
g cancel "$BID" --key "$BKEY" >"$T/out" 2>"$T/err"; rc=$?
check "cancel again: exit 65 (409 conflict)" '[ $rc -eq 65 ] && grep -q conflict "$T/err"' "$T/err"
g cancel "$SELL" --key "$BKEY" >"$T/out" 2>"$T/err"; rc=$?
check "cancel of another account's order: exit 65, the offer stays" '[ $rc -eq 65 ] && g order "$SELL" --key "$PKEY" --json >"$T/o.json" && [ "$(jget "$T/o.json" "j[\"status\"]")" = partially_filled ]' "$T/err"
# A bid that rests across the restart below (its hold must survive too).
g buy --gpu H100 --region us-east --start $W2 --hours 2 --qty 8 --price 2.10 --key "$BKEY" --json >"$T/bid2.json" 2>"$T/err"; rc=$?
check "a second bid rests (open, funds held)" '[ $rc -eq 0 ] && [ "$(jget "$T/bid2.json" "j[\"status\"]")" = open ] && g account --key "$BKEY" --json >"$T/a2.json" && [ "$(jget "$T/a2.json" "float(j[\"held\"]) > 0")" = True ]' "$T/err"
g buy --gpu H100 --region us-east --start $W2 --hours 100 --qty 800 --price 900 --key "$BKEY" >"$T/out" 2>"$T/err"; rc=$?
check "a bid beyond the buyer's funds: exit 65 (insufficient_funds)" '[ $rc -eq 65 ] && grep -q insufficient_funds "$T/err"' "$T/err"
g buy --gpu H100 --region us-east --start $W2 --hours 2 --qty 8 --price 2.10 --key "gpx_0000" >"$T/out" 2>"$T/err"; rc=$?
check "a wrong key: exit 65 (401)" '[ $rc -eq 65 ] && grep -q 401 "$T/err"' "$T/err"
g markets --json >"$T/markets.json" 2>"$T/err"; rc=$?
check "markets --json parses and lists H100/us-east" '[ $rc -eq 0 ] && [ "$(jget "$T/markets.json" "any(m[\"gpu\"] == \"H100\" and m[\"region\"] == \"us-east\" for m in j[\"markets\"])")" = True ]' "$T/markets.json"
g buy --gpu H100 --region us-east --qty 8 --key "$BKEY" >"$T/out" 2>"$T/err"; rc=$?
check "buy without --start/--price: usage error, exit 64" '[ $rc -eq 64 ]' "$T/err"
g frobnicate --key "$BKEY" >"$T/out" 2>"$T/err"; rc=$?
check "an unknown command: exit 64" '[ $rc -eq 64 ] && grep -q "unknown command" "$T/err"' "$T/err"
env -u GPUX_URL "$BIN/gpux" account --key "$BKEY" >"$T/out" 2>"$T/err"; rc=$?
check "no gateway URL: exit 64 with the reason" '[ $rc -eq 64 ] && grep -q GPUX_URL "$T/err"' "$T/err"
# a port nothing listens on: bind an ephemeral port, close it, use it
CLOSED=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
GPUX_URL=http://127.0.0.1:$CLOSED "$BIN/gpux" account --key "$BKEY" >"$T/out" 2>"$T/err"; rc=$?
check "GPUX_URL at a closed port: exit 69" '[ $rc -eq 69 ]' "$T/err"
all_json=0
for f in prov buyer wd sell quote book buy trades acct leases porders repl order bid cancel bid2 markets; do
    isjson "$T/$f.json" || { all_json=1; echo "# $f.json does not parse"; }
done
check "every --json output above parses as JSON" '[ $all_json -eq 0 ]'

# --- 4. down and up keep everything -----------------------------------------
wait_settled >/dev/null
snapshot() { # $1 = suffix: what must survive a restart
    g admin accounts --key "$ADMIN" --json >"$T/accounts.$1" 2>>"$T/err"
    g orders --key "$PKEY" --json >"$T/porders.$1" 2>>"$T/err"
    g orders --key "$BKEY" --json >"$T/borders.$1" 2>>"$T/err"
    g book H100 us-east --key "$BKEY" --json >"$T/book.$1" 2>>"$T/err"
    sql "SELECT count(*), coalesce(max(trade_id), 0) FROM gpux_trades" >"$T/ledger.$1"
    sql "SELECT account_id, balance_micros FROM gpux_balances ORDER BY account_id" >"$T/balances.$1"
}
snapshot before
check "before the restart: the snapshot has accounts, resting orders and trades" '[ "$(jget "$T/accounts.before" "len(j[\"accounts\"]) > 40")" = True ] && [ "$(jget "$T/borders.before" "sum(o[\"status\"] == \"open\" for o in j[\"orders\"])")" = 1 ] && [ -s "$T/ledger.before" ]' "$T/accounts.before"
"$BIN/gpux" down --data "$D" >"$T/down.out" 2>&1; rc=$?
check "gpux down: exit 0" '[ $rc -eq 0 ]' "$T/down.out"
"$BIN/gpux" status --data "$D" >"$T/status.down" 2>&1; rc=$?
check "gpux status after down: non-zero, no pids" '[ $rc -ne 0 ] && [ -z "$(kv MATCHER_PID "$T/status.down")$(kv GATEWAY_PID "$T/status.down")$(kv LEDGER_PID "$T/status.down")" ]' "$T/status.down"
g account --key "$BKEY" >"$T/out" 2>"$T/err"; rc=$?
check "the client against a stopped stack: exit 69" '[ $rc -eq 69 ]' "$T/err"
"$BIN/gpux" up --data "$D" --clock sim >"$T/up2.env" 2>"$T/up2.err"; rc=$?
[ $rc -eq 0 ] || { sed 's/^/# /' "$T/up2.err"; bail "gpux up again on the same data dir (exit $rc)"; }
check "gpux up again: same URLs and admin key" '[ "$(kv GATEWAY_URL "$T/up2.env")" = "$URL" ] && [ "$(kv ADMIN_KEY "$T/up2.env")" = "$ADMIN" ]' "$T/up2.env"
"$BIN/gpux" status --data "$D" >"$T/status2" 2>&1; rc=$?
check "gpux status after up: exit 0" '[ $rc -eq 0 ]' "$T/status2"
wait_settled >/dev/null
snapshot after
check "accounts, balances and holds are the same after the restart" 'cmp -s "$T/accounts.before" "$T/accounts.after"' "$T/accounts.after"
check "resting orders are the same after the restart (both accounts)" 'cmp -s "$T/porders.before" "$T/porders.after" && cmp -s "$T/borders.before" "$T/borders.after"' "$T/borders.after"
check "the order book is the same after the restart" 'cmp -s "$T/book.before" "$T/book.after"' "$T/book.after"
check "the ledger keeps its trades and balances" 'cmp -s "$T/ledger.before" "$T/ledger.after" && cmp -s "$T/balances.before" "$T/balances.after" && [ -s "$T/balances.after" ]' "$T/ledger.after"
g account --key "$PKEY" --json >"$T/pacct.json" 2>"$T/err"; rc=$?
check "an account's API key still works after the restart" '[ $rc -eq 0 ] && [ "$(jget "$T/pacct.json" "j[\"account_id\"]")" = "$PROV" ]' "$T/err"
# the restarted stack still trades: the buyer takes the rest of the offer
g buy --gpu H100 --region us-east --start $W --hours 4 --qty 8 --price 2.40 --key "$BKEY" --json >"$T/buy3.json" 2>"$T/err"; rc=$?
check "the restarted stack trades (the rest of the offer, at 2.40)" '[ $rc -eq 0 ] && [ "$(jget "$T/buy3.json" "j[\"status\"]")" = filled ] && [ "$(jget "$T/buy3.json" "float(j[\"fills\"][0][\"price\"])")" = 2.4 ]' "$T/buy3.json"
if wait_settled && [ $check_rc -eq 0 ]; then ok "gpux ledger check passes after the restart and a new trade"; else nok "gpux ledger check passes after the restart and a new trade" "$T/check.out"; logs; fi
check "the new trade is in the ledger" '[ "$(sql "SELECT count(*) FROM gpux_trades")" -eq $(( $(cut -d"|" -f1 "$T/ledger.before") + 1 )) ]'

[ $fails -eq 0 ] || logs
echo "1..$n"
[ $fails -eq 0 ]
