#!/bin/sh
# bench_sim_day.sh — the `sim_day` benchmark of operations.md: one market
# day replayed end to end through a real stack, ledger settled and checked.
#
#   sh bench/bench_sim_day.sh [FILTER]     (bench/run.sh calls it so)
#
# A fresh stack (`gpux up --clock sim` on a temp data dir: PostgreSQL,
# ledger, matcher, gateway), a generated baseline day, replayed straight
# into the matcher over nng in batch messages of up to 1024 commands, one
# message in flight (the day's exact order); then it waits until
# the ledger has settled every matcher event (LAG=0, confirmed by the live
# comparison of `gpux ledger check`, whose full check must pass), and
# checks that the ledger holds exactly the report's trades. Prints one
# result line on stdout:
#
#   bench sim_day events=N seconds=S events_per_s=E replay_seconds=R
#         settle_seconds=X load_seconds=L trades=T
#
# seconds = first command sent to ledger settled = replay_seconds +
# settle_seconds. Not counted: generation, stack start-up, and reading the
# day file (the replay runs with --preload: it reads and checks the whole
# day into memory first, which takes load_seconds, like a load generator
# that prepares its requests before it fires them); events = lines of the day
# after its header. Progress goes to stderr, and at the end the CPU seconds
# each process used from replay start to settled (matcher, ledger,
# PostgreSQL, gateway, the replay itself): what limited the run, and the
# replay's own line (messages, why batches were cut, time its lanes waited
# for answers). The stack is always torn down.
#
# Environment:
#   GPUX_SIM_DAY_EVENTS   size of the day (default 1000000; e.g. 50000 for a
#                         quick run)
#   GPUX_SIM_DAY_LANES    batch messages in flight (default 1)
#   GPUX_SIM_DAY_SETTLE_S longest wait for the ledger (default 3600 s)
#   GPUX_BIN              binaries (default build/rel/bin of this tree)
# Exit status: 0 (also when FILTER does not name this bench: nothing is
# printed then), 1 when a step fails (reason on stderr).
case "sim_day" in *"${1:-}"*) ;; *) exit 0 ;; esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${GPUX_BIN:-$ROOT/build/rel/bin}
GPUX_ROOT=${GPUX_ROOT:-$ROOT}
export GPUX_ROOT
EVENTS=${GPUX_SIM_DAY_EVENTS:-1000000}
LANES=${GPUX_SIM_DAY_LANES:-1}
SETTLE_S=${GPUX_SIM_DAY_SETTLE_S:-3600}
for v in "$EVENTS" "$LANES" "$SETTLE_S"; do
    case "$v" in ''|*[!0-9]*) echo "bench_sim_day: GPUX_SIM_DAY_* must be positive integers (got '$v')" >&2; exit 1 ;; esac
done
D=$(mktemp -d /tmp/gpux-bench-simday-XXXXXX) || exit 1
replay_pid=

cleanup() {
    trap '' TERM INT # a second signal must not cut the tear-down short
    [ -n "$replay_pid" ] && kill -TERM "$replay_pid" 2>/dev/null && wait "$replay_pid"
    "$BIN/gpux" down --data "$D" >/dev/null 2>&1
    rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

say() { echo "bench_sim_day: $*" >&2; }
die() {
    say "FAILED: $*"
    for f in "$D"/log/*.log; do
        [ -f "$f" ] && { echo "--- last lines of $f" >&2; tail -n 15 "$f" >&2; }
    done
    exit 1
}
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
kv() { sed -n "s/^$1=//p" "$2" | head -n 1; }
# every component still running? (a ledger that exits never settles)
alive() { "$BIN/gpux" status --data "$D" >"$D/gpux.status" 2>&1; }
# CPU seconds of a process so far (utime + stime, and for PostgreSQL's
# postmaster its exited children too); 0 when it is gone
cpu_s() {
    awk -v hz="$(getconf CLK_TCK)" -v kids="${2:-0}" '{ sub(/^.*\) /, ""); t = $12 + $13; if (kids) t += $14 + $15; printf "%.2f", t / hz }' \
        "/proc/$1/stat" 2>/dev/null || echo 0
}
# PostgreSQL: the postmaster and every backend still running
pg_cpu_s() {
    total=$(cpu_s "$1" 1)
    for c in $(pgrep -P "$1" 2>/dev/null); do total=$(awk -v a="$total" -v b="$(cpu_s "$c")" 'BEGIN { printf "%.2f", a + b }'); done
    echo "$total"
}
# the busiest threads of a process: "comm=seconds ..." (the matcher's
# engine thread shows whether the engine itself is the limit)
threads_s() {
    for t in /proc/"$1"/task/*; do
        printf '%s %s\n' "$(cpu_s "$1/task/${t##*/}")" "$(tr ' ' _ <"$t/comm" 2>/dev/null)"
    done | sort -rn | head -n 4 | awk '{ printf "%s%s=%s", (NR > 1 ? " " : ""), $2, $1 }'
}
cpu_all() { # matcher ledger postgres gateway
    echo "$(cpu_s "$(kv MATCHER_PID "$D/pids")") $(cpu_s "$(kv LEDGER_PID "$D/pids")") $(pg_cpu_s "$(kv POSTGRES_PID "$D/pids")") $(cpu_s "$(kv GATEWAY_PID "$D/pids")")"
}

say "starting a stack in $D"
"$BIN/gpux" up --data "$D" --clock sim >"$D/stack.env" || die "gpux up"
CMD=$(kv MATCHER_CMD "$D/stack.env")
FEED=$(kv MATCHER_FEED "$D/stack.env")
DBURL=$(kv DATABASE_URL "$D/stack.env")

say "generating a baseline day of ~$EVENTS events"
"$BIN/gpux-sim" generate --scenario baseline --seed 1 --events "$EVENTS" --out "$D/day.jsonl" \
    || die "gpux-sim generate"
lines=$(head -n 1 "$D/day.jsonl" | sed -n 's/.*"events":\([0-9]*\).*/\1/p')
[ -n "$lines" ] || die "no event count in the day's header"

say "replaying $lines events over nng ($LANES batch messages in flight; the day is read into memory first)"
"$BIN/gpux" status --data "$D" >"$D/pids" 2>&1 || die "gpux status"
cpu0=$(cpu_all)
t0=$(now)
"$BIN/gpux-sim" replay --day "$D/day.jsonl" --matcher "$CMD" --lanes "$LANES" --preload \
    >"$D/report.txt" 2>"$D/replay.err" &
replay_pid=$!
# progress while it runs (the replay draws no bar without a terminal):
# the ledger's position follows the matcher closely. The clock starts when
# the day is in memory (t0 + the load time the replay prints): the load
# generator's JSON reading is not the stack's work (docs/benchmarks.md).
ticks=0
sim_cpu=0
sim_cpu0=0
loaded=
while kill -0 "$replay_pid" 2>/dev/null; do
    c=$(cpu_s "$replay_pid"); [ "$c" = 0 ] || sim_cpu=$c
    if [ -z "$loaded" ] && grep -q "day loaded into memory" "$D/replay.err"; then
        loaded=1 # the stack was idle while the replay read the day
        cpu0=$(cpu_all)
        sim_cpu0=$sim_cpu
    fi
    sleep 0.2
    ticks=$((ticks + 1))
    if [ $((ticks % 25)) -eq 0 ] && ! alive; then
        kill -TERM "$replay_pid" 2>/dev/null; wait "$replay_pid"; replay_pid=
        die "a component stopped during the replay: $(grep '_PID=$' "$D/gpux.status" | tr '\n' ' ')"
    fi
    if [ $((ticks % 75)) -eq 0 ]; then
        seq=$("$BIN/gpux-ledger" status --db "$DBURL" --feed "$FEED" 2>/dev/null | sed -n 's/^MATCHER_SEQ=//p')
        say "replaying: $((ticks / 5)) s, matcher seq ~${seq:-?} of ~$lines commands"
    fi
done
wait "$replay_pid"
rc=$?
replay_pid=
t1=$(now)
cat "$D/replay.err" >&2
[ $rc -eq 0 ] || die "gpux-sim replay (exit $rc)"
load_s=$(sed -n 's/.*day loaded into memory: [0-9]* lines in \([0-9.]*\) s$/\1/p' "$D/replay.err")
[ -n "$load_s" ] || die "the replay did not say how long it read the day"
t0=$(awk -v a="$t0" -v b="$load_s" 'BEGIN { printf "%.9f", a + b }')
sim_cpu=$(secs "$sim_cpu0" "$sim_cpu")
say "replayed in $(secs "$t0" "$t1") s; waiting for the ledger"

# Settled = `gpux-ledger status` says LAG=0 and `gpux ledger check` finds
# the ledger and the live matcher at the same seq (LAG compares with the
# matcher seq the ledger saw last). The check is the final one too.
deadline=$(( $(date +%s) + SETTLE_S ))
last_say=0
while :; do
    "$BIN/gpux-ledger" status --db "$DBURL" --feed "$FEED" >"$D/status" 2>&1 || die "gpux-ledger status: $(cat "$D/status")"
    if [ "$(kv LAG "$D/status")" = 0 ]; then
        t2=$(now)
        cpu2=$(cpu_all)
        mthreads=$(threads_s "$(kv MATCHER_PID "$D/pids")")
        "$BIN/gpux" ledger check --data "$D" >"$D/check.out" 2>&1
        check_rc=$?
        if ! grep -q "^skip ledger = live matcher" "$D/check.out"; then
            [ $check_rc -eq 0 ] || { cat "$D/check.out" >&2; die "gpux ledger check"; }
            grep -q "ledger = live matcher at seq" "$D/check.out" || { cat "$D/check.out" >&2; die "no live comparison in the check"; }
            break
        fi
    fi
    alive || die "a component stopped: $(grep '_PID=$' "$D/gpux.status" | tr '\n' ' ')"
    [ "$(date +%s)" -lt "$deadline" ] || die "the ledger did not settle in $SETTLE_S s ($(tr '\n' ' ' <"$D/status"))"
    if [ $(( $(date +%s) - last_say )) -ge 10 ]; then
        last_say=$(date +%s)
        say "ledger: $(tr '\n' ' ' <"$D/status")"
    fi
    sleep 0.2
done
say "settled and checked: $(grep '^result' "$D/check.out")"

trades=$(awk '/^all markets/ { print $3 }' "$D/report.txt")
ledger_trades=$(psql "$DBURL" -X -A -t -c "SELECT count(*) FROM gpux_trades" 2>/dev/null)
[ -n "$trades" ] && [ "$trades" = "$ledger_trades" ] \
    || die "the report counts ${trades:-?} trades, the ledger ${ledger_trades:-?}"

set -- $cpu0 $cpu2
say "CPU seconds from replay start to settled: matcher $(secs "$1" "$5"), ledger $(secs "$2" "$6"), postgres $(secs "$3" "$7"), gateway $(secs "$4" "$8"), replay ~$sim_cpu (of $(secs "$t0" "$t2") s wall on $(nproc) cores); matcher's busiest threads since its start: $mthreads"
replay_s=$(secs "$t0" "$t1")
settle_s=$(secs "$t1" "$t2")
total_s=$(secs "$t0" "$t2")
rate=$(awk -v n="$lines" -v s="$total_s" 'BEGIN { printf "%d", (s > 0) ? n / s : 0 }')
echo "bench sim_day events=$lines seconds=$total_s events_per_s=$rate replay_seconds=$replay_s settle_seconds=$settle_s load_seconds=$load_s trades=$trades"
