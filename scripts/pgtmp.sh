#!/bin/sh
# pgtmp.sh — a throwaway PostgreSQL 15 cluster in a directory of your choice,
# for tests, benchmarks and `gpux up`. Never touches the system service.
#
# Why: every test that needs a database starts its own (real server, no
# mock), on a private port and a private socket dir, so tests run in
# parallel with each other and with a system PostgreSQL.
#
# Usage:
#   pgtmp.sh start DIR   initialise DIR/pgdata on first use (database "gpux",
#                        superuser "gpux", trust auth, loopback + socket only),
#                        start the server and print KEY=value lines:
#                          DATABASE_URL=postgresql://gpux@127.0.0.1:PORT/gpux?host=DIR/sock
#                          PGHOST=DIR/sock  PGPORT=PORT  PGUSER=gpux
#                          PGDATABASE=gpux  POSTGRES_PID=PID
#                        A second start on a running cluster just prints them.
#                        The port is kept in DIR/port and reused on restart.
#   pgtmp.sh stop DIR [MODE]  pg_ctl stop -m MODE (fast by default;
#                        `immediate` simulates a crash). Exit 0 if stopped
#                        or not running.
#   pgtmp.sh url DIR     print the DATABASE_URL line only.
#   pgtmp.sh status DIR  exit 0 when the server answers, 1 otherwise.
#   pgtmp.sh destroy DIR stop (immediate) and remove DIR.
# Environment:
#   PGTMP_PORT=N         port for the first start (default: a free one)
#   PGTMP_BIN=dir        PostgreSQL server binaries (default
#                        /usr/lib/postgresql/15/bin)
#   PGTMP_OPTS="..."     extra `postgres -c` settings, e.g.
#                        "-c synchronous_commit=on -c shared_buffers=256MB"
# Settings: fsync=on and synchronous_commit=on (durable, as in production);
# listen on 127.0.0.1 only; max_connections=50.
# Running as root: PostgreSQL refuses root, so the cluster runs as `nobody`
# (DIR is chowned to it; its parent directories must be traversable by
# nobody, e.g. not inside a 0700 mktemp -d). The log is DIR/postgres.log.
set -e
PGBIN=${PGTMP_BIN:-/usr/lib/postgresql/15/bin}
cmd=$1
dir=$2
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,33p' "$0"; exit 2; }

die() { echo "pgtmp: $*" >&2; exit 1; }

as_pg() {
    if [ "$(id -u)" = 0 ]; then setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
    else "$@"; fi
}

free_port() {
    # a port nobody listens on, in 20000..39999, picked from the pid and time
    p=$(( ( $$ * 7 + $(date +%s%N | cut -c10-15 | sed 's/^0*//;s/^$/0/') ) % 20000 + 20000 ))
    n=0
    while ss -Hltn "sport = :$p" 2>/dev/null | grep -q . ; do
        p=$(( (p - 20000 + 7919) % 20000 + 20000 )); n=$((n + 1))
        [ $n -lt 200 ] || die "no free port found"
    done
    echo "$p"
}

print_env() {
    port=$(cat "$dir/port")
    pid=$(head -1 "$dir/pgdata/postmaster.pid" 2>/dev/null || true)
    echo "DATABASE_URL=postgresql://gpux@127.0.0.1:$port/gpux?host=$dir/sock"
    echo "PGHOST=$dir/sock"
    echo "PGPORT=$port"
    echo "PGUSER=gpux"
    echo "PGDATABASE=gpux"
    echo "POSTGRES_PID=$pid"
}

running() {
    [ -f "$dir/port" ] || return 1
    as_pg "$PGBIN/pg_ctl" -D "$dir/pgdata" status >/dev/null 2>&1
}

case "$cmd" in
start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if running; then print_env; exit 0; fi
    [ -x "$PGBIN/initdb" ] || die "no PostgreSQL server binaries in $PGBIN (install postgresql)"
    mkdir -p "$dir/sock"
    if [ "$(id -u)" = 0 ]; then
        chown nobody:nogroup "$dir" "$dir/sock"
        as_pg test -w "$dir" ||
            die "user nobody cannot reach $dir: make its parent directories traversable (chmod o+x)"
    fi
    if [ ! -f "$dir/pgdata/PG_VERSION" ]; then
        as_pg "$PGBIN/initdb" -D "$dir/pgdata" -U gpux --auth=trust -E UTF8 \
            --locale=C >"$dir/initdb.log" 2>&1 || die "initdb failed, see $dir/initdb.log"
    fi
    [ -f "$dir/port" ] || { [ -n "$PGTMP_PORT" ] && echo "$PGTMP_PORT" >"$dir/port" || free_port >"$dir/port"; }
    [ "$(id -u)" = 0 ] && chown nobody:nogroup "$dir/port"
    tries=0
    while :; do
        port=$(cat "$dir/port")
        opts="-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir/sock"
        opts="$opts -c fsync=on -c synchronous_commit=on -c max_connections=50 $PGTMP_OPTS"
        if as_pg "$PGBIN/pg_ctl" -D "$dir/pgdata" -l "$dir/postgres.log" -w -t 60 \
               -o "$opts" start >/dev/null 2>&1; then break; fi
        tries=$((tries + 1))
        # the port may have been taken between the check and the start
        [ $tries -lt 5 ] || die "server did not start, see $dir/postgres.log"
        free_port >"$dir/port"
    done
    if ! as_pg "$PGBIN/psql" -h "$dir/sock" -p "$port" -U gpux -d postgres -Atqc \
            "select 1 from pg_database where datname='gpux'" | grep -q 1; then
        as_pg "$PGBIN/createdb" -h "$dir/sock" -p "$port" -U gpux gpux || die "createdb failed"
    fi
    print_env
    ;;
stop)
    [ -d "$dir/pgdata" ] || exit 0
    mode=${3:-fast}
    if running; then
        as_pg "$PGBIN/pg_ctl" -D "$dir/pgdata" -m "$mode" -w -t 60 stop >/dev/null 2>&1 \
            || die "pg_ctl stop -m $mode failed"
    fi
    ;;
url)
    [ -f "$dir/port" ] || die "no cluster in $dir"
    print_env | head -1
    ;;
status)
    running
    ;;
destroy)
    if [ -d "$dir/pgdata" ] && running; then
        as_pg "$PGBIN/pg_ctl" -D "$dir/pgdata" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
*)
    die "unknown command '$cmd' (start, stop, url, status, destroy)"
    ;;
esac
