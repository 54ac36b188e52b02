#!/bin/sh
# test_ledger_faults.sh — gpux-ledger as a real process against a real
# PostgreSQL (scripts/pgtmp.sh, temp dir, private port), fed with seeded
# event files from the real engine (`gpux-ledger gen`).
#
# Proves, each time with `gpux-ledger check` passing and the trade count
# equal to the engine's afterwards:
#   - SIGKILL mid-stream (3 seeds): the restart resumes from the stored
#     position, nothing lost, nothing settled twice;
#   - `pg_ctl stop -m immediate` mid-stream, then restart: the ledger
#     reconnects with backoff and finishes by itself;
#   - redelivery of an already-settled stream is verified and skipped;
#   - a conflicting duplicate (a settled seq with other content) stops the
#     ledger loudly (exit 3) and writes nothing;
#   - a malformed file stops it (exit 4) without damage;
#   - SIGTERM stops it cleanly between batches (exit 0), resumable;
#   - two ledgers on one database settle each command once.
# TAP output; GPUX_BIN / GPUX_ROOT / GPUX_FLAVOUR from tests/run.sh.
set -u
ROOT=${GPUX_ROOT:-$(pwd)}
BIN=${GPUX_BIN:-$ROOT/build/rel/bin}
L="$BIN/gpux-ledger"
T=$(mktemp -d /tmp/gpux-test-ledger-faults-XXXXXX)
chmod 755 "$T" # the cluster runs as nobody and must reach $T/pg
PG="$T/pg"
n=0
failed=0
pids=""

cleanup() {
    for p in $pids; do kill -9 "$p" 2>/dev/null; done
    sh "$ROOT/scripts/pgtmp.sh" destroy "$PG" >/dev/null 2>&1
    rm -rf "$T"
}
trap cleanup EXIT

ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
expect() { # expect NAME CONDITION...
    name=$1; shift
    if "$@"; then ok "$name"; else nok "$name"; fi
}

# scale: the san build is several times slower
if [ "${GPUX_FLAVOUR:-rel}" = san ]; then TRADES=500; else TRADES=1500; fi
BATCH=30

if ! env_out=$(sh "$ROOT/scripts/pgtmp.sh" start "$PG"); then
    echo "not ok 1 - start PostgreSQL with scripts/pgtmp.sh"
    exit 1
fi
BASE=$(echo "$env_out" | sed -n 's/^DATABASE_URL=//p')
export GPUX_SQL_DIR="$ROOT/sql"
unset GPUX_DATABASE_URL DATABASE_URL

newdb() { # newdb NAME -> prints its URL
    psql -q "$BASE" -c "CREATE DATABASE $1" >/dev/null || return 1
    echo "$BASE" | sed "s|/gpux?|/$1?|"
}
sql() { psql -qAt "$1" -c "$2"; }
seq_of() { "$L" status --db "$1" 2>/dev/null | sed -n 's/^LEDGER_SEQ=//p'; }
alive() { kill -0 "$1" 2>/dev/null; }

# wait_seq URL PID MIN: until the ledger settled past MIN while PID runs
wait_seq() {
    i=0
    while [ $i -lt 2400 ]; do
        s=$(seq_of "$1"); s=${s:-0}
        [ "$s" -ge "$3" ] && return 0
        alive "$2" || return 1
        sleep 0.05
        i=$((i + 1))
    done
    return 1
}

gen() { # gen SEED FILE
    "$L" gen --seed "$1" --trades "$TRADES" --accounts 40 --markets 4 --out "$2" 2>/dev/null
}
last_seq() { sed -n 's/^# commands=\([0-9]*\) .*/\1/p' "$1"; }
n_trades() { sed -n 's/^# commands=[0-9]* trades=\([0-9]*\) .*/\1/p' "$1"; }

check_ok() { "$L" check --db "$1" >"$T/check.out" 2>&1; }
settled_exactly() { # URL FILE
    check_ok "$1" &&
    [ "$(sql "$1" 'SELECT count(*) FROM gpux_trades')" = "$(n_trades "$2")" ] &&
    [ "$(seq_of "$1")" = "$(last_seq "$2")" ]
}

# ---- --help and usage -------------------------------------------------------
"$L" --help >"$T/help" 2>&1
expect "--help exits 0 and names the commands" grep -q "check" "$T/help"
"$L" run --bogus 1 >/dev/null 2>&1
expect "an unknown option exits 1" [ $? -eq 1 ]

# ---- SIGKILL mid-stream, three seeds --------------------------------------------
# The events go through a pipe in three parts: through seq at + 50; then,
# once the ledger has settled past seq at, up to 50 commands before the
# end; the last part never. The kill comes once the ledger is settling the
# second part, so it lands mid-batch or between batches, never after the
# stream's end (with a file, a fast ledger could finish before the kill).
line_after() { # line_after FILE SEQ -> number of the first event line past SEQ
    awk -v s="$2" '$1 == "E" && $2 > s { print NR; exit }' "$1"
}
for seed in 1 2 3; do
    f="$T/ev.$seed"
    gen "$seed" "$f"
    url=$(newdb "kill$seed")
    total=$(last_seq "$f")
    at=$((total * (seed + 1) / 6))
    held=$(line_after "$f" $((at + 50)))
    held2=$(line_after "$f" $((total - 50)))
    rm -f "$T/go$seed" "$T/pipe$seed"
    mkfifo "$T/pipe$seed"
    ( head -n $((held - 1)) "$f"
      while [ ! -e "$T/go$seed" ]; do sleep 0.02; done
      sed -n "${held},$((held2 - 1))p" "$f"
      sleep 600 ) >"$T/pipe$seed" 2>/dev/null &
    writer=$!; pids="$pids $writer"
    "$L" run --db "$url" --events - --batch $BATCH --log-every-ms -1 <"$T/pipe$seed" 2>"$T/kill$seed.log" &
    pid=$!; pids="$pids $pid"
    if wait_seq "$url" "$pid" "$at" && touch "$T/go$seed" && wait_seq "$url" "$pid" $((at + 60)); then
        kill -9 "$pid"; wait "$pid" 2>/dev/null
        mid=$(seq_of "$url")
        expect "seed $seed: SIGKILL landed mid-stream (seq $mid of $total)" [ "$mid" -lt "$total" ]
        expect "seed $seed: the ledger is consistent right after the SIGKILL" check_ok "$url"
    else
        nok "seed $seed: ledger did not reach seq $at while running (log: $(tail -1 "$T/kill$seed.log"))"
        kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    fi
    pkill -P "$writer" 2>/dev/null; kill "$writer" 2>/dev/null; wait "$writer" 2>/dev/null
    "$L" run --db "$url" --events "$f" --batch $BATCH --log-every-ms -1 2>>"$T/kill$seed.log"
    expect "seed $seed: restart finishes (exit 0)" [ $? -eq 0 ]
    expect "seed $seed: after SIGKILL + restart: check passes, $(n_trades "$f") trades exactly" \
        settled_exactly "$url" "$f"
done

# ---- redelivery of a settled stream ------------------------------------------------
url=$(echo "$BASE" | sed "s|/gpux?|/kill1?|")
f="$T/ev.1"
before=$(sql "$url" 'SELECT count(*) FROM ledger_transfers')
"$L" run --db "$url" --events "$f" --batch 500 --log-every-ms -1 2>"$T/redeliver.log"
expect "redelivery of every settled command exits 0" [ $? -eq 0 ]
expect "redelivery: all $(last_seq "$f") commands verified and skipped" \
    grep -q "0 commands, 0 trades settled this run, $(last_seq "$f") redelivered commands verified" "$T/redeliver.log"
redelivery_ok() { [ "$(sql "$url" 'SELECT count(*) FROM ledger_transfers')" = "$before" ] && settled_exactly "$url" "$f"; }
expect "redelivery: no transfer added, check passes" redelivery_ok

# ---- conflicting duplicate ------------------------------------------------------------
# seq 3 is account 1's first deposit: change its amount (and the BALANCE after
# it, so the event is valid on its own): same seq, other content.
awk '$1 == "E" && $2 == 3 && $4 == "DEPOSIT" { $8 = $8 "0" }
     $1 == "E" && $2 == 3 && $4 == "BALANCE" { $8 = $8 "0" } { print }' "$f" >"$T/conflict"
expect "the conflicting file differs from the settled one" sh -c "! cmp -s '$f' '$T/conflict'"
"$L" run --db "$url" --events "$T/conflict" --batch 500 --log-every-ms -1 2>"$T/conflict.log"
rc=$?
expect "conflicting duplicate stops the ledger with exit 3 (got $rc)" [ $rc -eq 3 ]
expect "conflicting duplicate is logged loudly with its seq" grep -q "CONFLICT: seq 3 " "$T/conflict.log"
expect "after the conflict: nothing written, check passes, trade count exact" settled_exactly "$url" "$f"

# ---- malformed input ----------------------------------------------------------------------
url=$(newdb bad)
head -c 20000 "$f" | sed '$d' >"$T/bad"
echo "E 999999 0 DEPOSIT 2 0 1 12x" >>"$T/bad"
"$L" run --db "$url" --events "$T/bad" --batch 100 --log-every-ms -1 2>"$T/bad.log"
rc=$?
expect "a malformed event file stops the ledger with exit 4 (got $rc)" [ $rc -eq 4 ]
expect "the error names the bad line" grep -q "line $(wc -l <"$T/bad")" "$T/bad.log"
expect "after bad input: the ledger is consistent" check_ok "$url"

# ---- PostgreSQL crash (immediate stop) mid-stream, then restart -------------------------------
# The ledger reads the stream from a FIFO: after the first half it blocks
# reading, so it is certainly still running when PostgreSQL goes down, and
# the second half certainly arrives while it is down.
f="$T/ev.4"
gen 4 "$f"
url=$(newdb crash)
total=$(last_seq "$f")
lines=$(wc -l <"$f")
half=$((lines / 2))
half_seq=$(head -n "$half" "$f" | awk '$1 == "E" { s = $2 } END { print s }')
mkfifo "$T/fifo"
"$L" run --db "$url" --events "$T/fifo" --batch $BATCH --log-every-ms -1 --retry-s 120 2>"$T/crash.log" &
pid=$!; pids="$pids $pid"
exec 3>"$T/fifo"
head -n "$half" "$f" >&3
if wait_seq "$url" "$pid" $((half_seq - 40)); then
    sh "$ROOT/scripts/pgtmp.sh" stop "$PG" immediate
    expect "PostgreSQL stopped -m immediate while the ledger runs" alive "$pid"
    (tail -n +"$((half + 1))" "$f" >&3) &
    writer=$!
    exec 3>&-
    sleep 1
    sh "$ROOT/scripts/pgtmp.sh" start "$PG" >/dev/null
    wait "$writer"
    wait "$pid"
    rc=$?
    expect "the ledger rode out the crash and finished (exit $rc)" [ $rc -eq 0 ]
    expect "the ledger logged the outage and its recovery" grep -q "retrying" "$T/crash.log"
else
    exec 3>&-
    nok "ledger did not reach seq $((half_seq - 40)) before the crash ($(tail -1 "$T/crash.log"))"
fi
expect "after the PostgreSQL crash: check passes, $(n_trades "$f") trades exactly" settled_exactly "$url" "$f"

# ---- SIGTERM: clean stop between batches, then resume --------------------------------------
url=$(newdb term)
# Only the first half of the stream is written, through a FIFO kept open,
# so the ledger is certainly mid-stream (waiting for more) when SIGTERM
# comes: on a fast machine it could otherwise finish the file first.
rm -f "$T/fifo.term"
mkfifo "$T/fifo.term"
"$L" run --db "$url" --events "$T/fifo.term" --batch $BATCH --log-every-ms -1 2>"$T/term.log" &
pid=$!; pids="$pids $pid"
exec 4>"$T/fifo.term"
head -n "$half" "$f" >&4
if wait_seq "$url" "$pid" $((half_seq - 40)); then
    kill -TERM "$pid"
    wait "$pid"
    rc=$?
    exec 4>&-
    expect "SIGTERM stops the ledger with exit 0 (got $rc)" [ $rc -eq 0 ]
    expect "SIGTERM: it says where it stopped" grep -q "stopped at seq" "$T/term.log"
    term_ok() { [ "$(seq_of "$url")" -lt "$total" ] && check_ok "$url"; }
    expect "SIGTERM: stopped before the end, consistent" term_ok
else
    exec 4>&-
    nok "ledger did not reach seq $((half_seq - 40)) before SIGTERM"
fi
"$L" run --db "$url" --events "$f" --batch $BATCH --log-every-ms -1 2>>"$T/term.log"
expect "after SIGTERM + resume: check passes, trade count exact" settled_exactly "$url" "$f"

# ---- two ledgers on one database ----------------------------------------------------------
url=$(newdb twin)
"$L" migrate --db "$url" 2>/dev/null
"$L" run --db "$url" --events "$f" --batch 200 --log-every-ms -1 2>"$T/twin1.log" &
p1=$!
"$L" run --db "$url" --events "$f" --batch 300 --log-every-ms -1 2>"$T/twin2.log" &
p2=$!
pids="$pids $p1 $p2"
wait $p1; r1=$?
wait $p2; r2=$?
expect "two concurrent ledgers both finish (exit $r1, $r2)" [ $((r1 + r2)) -eq 0 ]
expect "two concurrent ledgers: every command settled once, check passes" settled_exactly "$url" "$f"

if [ -n "${GPUX_KEEP_LOGS:-}" ]; then cp -r "$T"/*.log "$GPUX_KEEP_LOGS"/ 2>/dev/null; fi
[ $failed -eq 0 ] && [ $n -gt 0 ]
