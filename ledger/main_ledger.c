/* main_ledger.c — bin/gpux-ledger: settles the matcher's events into the
 * PostgreSQL ledger exactly once; also migrates, checks, reports status and
 * writes seeded event streams for tests.
 *
 * Exit status: 0 done / stopped by SIGTERM; 1 usage or configuration;
 * 2 PostgreSQL or the matcher unavailable past the retry limit; 3 conflict
 * (a settled seq redelivered with other content); 4 invalid input;
 * 5 `check` found a broken invariant. */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gpux_assert.h"
#include "ledger/ledger.h"
#include "ledger/runner.h"

#define EXIT_USAGE 1
#define EXIT_UNAVAILABLE 2
#define EXIT_CONFLICT 3
#define EXIT_INVALID 4
#define EXIT_CHECK_FAILED 5

static const char usage[] =
    "usage: gpux-ledger [COMMAND] [OPTIONS]\n"
    "\n"
    "Settles the matcher's sequenced events into a double-entry PostgreSQL\n"
    "ledger, exactly once (docs/ledger.md).\n"
    "\n"
    "commands:\n"
    "  run        (default) migrate, then follow the matcher's event feed and\n"
    "             settle it; with --events, settle an event file instead and\n"
    "             exit at its end\n"
    "  migrate    apply the sql/NNN_*.sql migrations not yet applied, exit\n"
    "  check      verify the ledger invariants, print each; exit 0 only if all hold\n"
    "  status     print LEDGER_SEQ=, MATCHER_SEQ=, LAG= (events behind the matcher)\n"
    "  gen        write a seeded event stream from the real engine (tests, bench)\n"
    "\n"
    "options:\n"
    "  --db URL          PostgreSQL URL (env GPUX_DATABASE_URL, then DATABASE_URL)\n"
    "  --sql-dir DIR     migrations (env GPUX_SQL_DIR; default: sql/ of the source\n"
    "                    tree found from $GPUX_ROOT or the binary's location)\n"
    "  --feed ADDR       matcher event feed, nng REQ (env GPUX_MATCHER_FEED,\n"
    "                    default ipc:///tmp/gpux/matcher-feed.ipc)\n"
    "  --cmd ADDR        matcher command endpoint, asked for account names (env\n"
    "                    GPUX_MATCHER_CMD, default ipc:///tmp/gpux/matcher-cmd.ipc);\n"
    "                    check --cmd ADDR also compares with the live matcher\n"
    "  --catalog FILE    market catalog, to name markets in reports (env\n"
    "                    GPUX_CATALOG; default matcher/catalog.default of the tree)\n"
    "  --events FILE     run: settle this event file ('-' = stdin) instead of the feed\n"
    "  --batch N         records (events) per batch, 1..65536 (default 16384)\n"
    "  --retry-s N       give up after N s without PostgreSQL/matcher (default 600)\n"
    "  --poll-ms N       feed poll interval when idle (default 20)\n"
    "  --log-every-ms N  progress line interval (default 5000; -1 = never)\n"
    "  gen: --seed N --trades N [--accounts N] [--markets N] [--out FILE]\n"
    "  -h, --help        this text\n"
    "\n"
    "exit status: 0 ok/stopped by SIGTERM, 1 usage/config, 2 unavailable,\n"
    "3 conflict, 4 invalid input, 5 check failed\n";

typedef struct options {
    const char *cmd;
    const char *db_url;
    const char *sql_dir;
    const char *feed;
    const char *cmd_addr;
    bool cmd_explicit;          /* --cmd given: check compares with the live matcher */
    const char *catalog;
    const char *events;
    const char *out;
    uint32_t batch;
    int64_t retry_ms;
    int64_t poll_ms;
    int64_t log_every_ms;
    uint64_t seed, trades;
    uint32_t accounts, markets;
} options;

static char sql_dir_buf[PATH_MAX], catalog_buf[PATH_MAX];

static void on_signal(int sig)
{
    (void)sig;
    ledger_stop_requested = 1;
}

static int die(int code, const char *fmt, const char *arg)
{
    fprintf(stderr, "gpux-ledger: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return code;
}

static int parse_num(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* Finds REL (e.g. "sql") in the source tree: $GPUX_ROOT, then next to the
 * binary (bin/ -> .., build/rel/bin/ -> ../../..), then the cwd. */
static const char *find_in_tree(const char *rel, char *buf, size_t len)
{
    struct stat sb;
    const char *root = getenv("GPUX_ROOT");
    if (root && *root) {
        snprintf(buf, len, "%s/%s", root, rel);
        if (stat(buf, &sb) == 0) return buf;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        const char *dir = dirname(exe);
        const char *ups[] = {"..", "../../.."};
        for (size_t i = 0; i < GPUX_ARRAY_LEN(ups); i++) {
            snprintf(buf, len, "%s/%s/%s", dir, ups[i], rel);
            if (stat(buf, &sb) == 0) return buf;
        }
    }
    snprintf(buf, len, "%s", rel);
    return stat(buf, &sb) == 0 ? buf : NULL;
}

static int parse_args(int argc, char **argv, options *o)
{
    *o = (options){.cmd = "run", .batch = LEDGER_DEFAULT_BATCH_RECS, .retry_ms = 600000,
                   .poll_ms = 20, .log_every_ms = 5000, .accounts = 50, .markets = 4};
    int i = 1;
    if (argc > 1 && argv[1][0] != '-') o->cmd = argv[i++];
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            exit(0);
        }
        if (i + 1 >= argc) return die(EXIT_USAGE, "%s: unknown option or missing value (see --help)", a);
        const char *v = argv[++i];
        int64_t n = 0;
        if (!strcmp(a, "--db")) o->db_url = v;
        else if (!strcmp(a, "--sql-dir")) o->sql_dir = v;
        else if (!strcmp(a, "--feed")) o->feed = v;
        else if (!strcmp(a, "--cmd")) {
            o->cmd_addr = v;
            o->cmd_explicit = true;
        }
        else if (!strcmp(a, "--catalog")) o->catalog = v;
        else if (!strcmp(a, "--events")) o->events = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--batch") && !parse_num(v, 1, LEDGER_MAX_BATCH_RECS, &n)) o->batch = (uint32_t)n;
        else if (!strcmp(a, "--retry-s") && !parse_num(v, 0, 86400, &n)) o->retry_ms = n * 1000;
        else if (!strcmp(a, "--poll-ms") && !parse_num(v, 1, 60000, &n)) o->poll_ms = n;
        else if (!strcmp(a, "--log-every-ms") && !parse_num(v, -1, 86400000, &n)) o->log_every_ms = n;
        else if (!strcmp(a, "--seed") && !parse_num(v, 0, INT64_MAX, &n)) o->seed = (uint64_t)n;
        else if (!strcmp(a, "--trades") && !parse_num(v, 0, 100000000, &n)) o->trades = (uint64_t)n;
        else if (!strcmp(a, "--accounts") && !parse_num(v, 2, 10000, &n)) o->accounts = (uint32_t)n;
        else if (!strcmp(a, "--markets") && !parse_num(v, 1, 36, &n)) o->markets = (uint32_t)n;
        else return die(EXIT_USAGE, "bad option or value: %s (see --help)", a);
    }
    if (!o->db_url) o->db_url = getenv("GPUX_DATABASE_URL");
    if (!o->db_url) o->db_url = getenv("DATABASE_URL");
    if (!o->sql_dir) o->sql_dir = getenv("GPUX_SQL_DIR");
    if (!o->sql_dir) o->sql_dir = find_in_tree("sql", sql_dir_buf, sizeof sql_dir_buf);
    if (!o->feed) o->feed = getenv("GPUX_MATCHER_FEED");
    if (!o->feed) o->feed = "ipc:///tmp/gpux/matcher-feed.ipc";
    if (!o->cmd_addr) o->cmd_addr = getenv("GPUX_MATCHER_CMD");
    if (!o->cmd_addr) o->cmd_addr = "ipc:///tmp/gpux/matcher-cmd.ipc";
    if (!o->catalog) o->catalog = getenv("GPUX_CATALOG");
    return 0;
}

/* ---- gen ---------------------------------------------------------------- */

static int write_cmd(void *ctx, const ledger_rec *recs, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) ledger_evfile_write(ctx, &recs[i]);
    return ferror((FILE *)ctx) ? -1 : 0;
}

static int cmd_gen(const options *o)
{
    FILE *f = o->out ? fopen(o->out, "w") : stdout;
    if (!f) return die(EXIT_USAGE, "cannot write %s", o->out);
    ledger_gen_params p = {.seed = o->seed, .n_accounts = o->accounts, .n_trades = o->trades,
                           .n_markets = o->markets};
    static matcher_catalog cat;
    char err[256];
    ledger_gen_stats st;
    /* markets first: every trade line refers to one */
    ledger_gen_catalog(o->markets, &cat);
    for (uint32_t m = 0; m < cat.n_markets; m++) ledger_evfile_write_market(f, m, &cat.markets[m]);
    fprintf(f, "# gpux-ledger gen --seed %" PRIu64 " --trades %" PRIu64 " --accounts %u --markets %u\n",
            o->seed, o->trades, o->accounts, o->markets);
    int rc = ledger_gen_run(&p, write_cmd, f, &cat, &st, err, sizeof err);
    if (rc == 0)
        fprintf(f, "# commands=%" PRIu64 " trades=%" PRIu64 " deposited=%" PRId64
                   " withdrawn=%" PRId64 " fee_balance=%" PRId64 "\n",
                st.commands, st.trades, st.deposited_micros, st.withdrawn_micros,
                st.fee_balance_micros);
    if (o->out && fclose(f) != 0) rc = -1;
    if (rc != 0) return die(EXIT_USAGE, "gen failed: %s", rc == -1 ? err : "write error");
    fprintf(stderr, "gpux-ledger: gen wrote %" PRIu64 " commands, %" PRIu64 " trades\n",
            st.commands, st.trades);
    return 0;
}

/* ---- run ---------------------------------------------------------------- */

static int exit_for(ledger_status st)
{
    switch (st) {
    case LEDGER_OK: return 0;
    case LEDGER_ERR_DB: return EXIT_UNAVAILABLE;
    case LEDGER_ERR_CONFLICT: return EXIT_CONFLICT;
    case LEDGER_ERR_INVALID: return EXIT_INVALID;
    case LEDGER_ERR_FATAL: return EXIT_USAGE;
    }
    return EXIT_USAGE;
}

static ledger_status replay_file(ledger_runner *r, const char *path, matcher_catalog *cat,
                                 char *err, size_t errlen)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return LEDGER_ERR_FATAL;
    }
    ledger_rec *recs = malloc(sizeof *recs * r->max_recs);
    ledger_evreader rd = {.f = f};
    ledger_status st = recs ? LEDGER_OK : LEDGER_ERR_FATAL;
    if (!recs) snprintf(err, errlen, "out of memory");
    while (st == LEDGER_OK && !ledger_stop_requested) {
        long n = ledger_evfile_read(&rd, recs, r->max_recs, cat, err, errlen);
        if (n < 0 && ledger_stop_requested)
            break; /* SIGTERM interrupted the read: a clean stop, nothing half-settled */
        if (n < 0) st = LEDGER_ERR_INVALID;
        if (n <= 0) break;
        /* the file's last seq is what the "matcher" has: lag = behind it */
        st = ledger_runner_settle(r, recs, (uint32_t)n, recs[n - 1].seq, err, errlen);
    }
    free(recs);
    if (f != stdin) fclose(f);
    return st;
}

static int cmd_run(const options *o, bool migrate_only)
{
    static matcher_catalog cat;
    char err[512];
    memset(&cat, 0, sizeof cat);
    const char *catalog = o->catalog;
    if (!catalog && !o->events) catalog = find_in_tree("matcher/catalog.default", catalog_buf, sizeof catalog_buf);
    if (catalog && matcher_catalog_load(&cat, catalog, err, sizeof err) != 0)
        return die(EXIT_USAGE, "catalog: %s", err);
    ledger_runner r = {.db_url = o->db_url, .sql_dir = o->sql_dir, .cat = &cat,
                       .max_recs = o->batch, .retry_limit_ms = o->retry_ms,
                       .log_every_ms = o->log_every_ms};
    ledger_status st = ledger_runner_open(&r, err, sizeof err);
    if (st == LEDGER_OK && !migrate_only) {
        ledger_log("info", "starting at seq %" PRIu64 " (%s%s, batch %u events, %u markets)",
                   r.position, o->events ? "event file " : "matcher feed ",
                   o->events ? o->events : o->feed, o->batch, cat.n_markets);
        st = o->events ? replay_file(&r, o->events, &cat, err, sizeof err)
                       : ledger_feed_follow(&r, o->feed, o->cmd_addr, o->poll_ms, err, sizeof err);
    }
    if (st == LEDGER_ERR_DB && ledger_stop_requested) {
        /* asked to stop while PostgreSQL was away: nothing half-done, the
         * unsettled batch is asked for again on the next start */
        ledger_log("info", "stopped at seq %" PRIu64 " while waiting for PostgreSQL (%s)",
                   r.position, err);
        st = LEDGER_OK;
    } else if (st == LEDGER_OK)
        ledger_log("info", "%s at seq %" PRIu64 ": %" PRIu64 " commands, %" PRIu64
                   " trades settled this run, %" PRIu64 " redelivered commands verified",
                   migrate_only ? "migrated" : ledger_stop_requested ? "stopped" : "done",
                   r.position, r.total_commands, r.total_trades, r.total_dups);
    else if (st == LEDGER_ERR_CONFLICT)
        ledger_log("FATAL", "%s -- the ledger stops here; nothing of this batch was written. "
                   "Find out why the matcher's history changed before restarting.", err);
    else
        ledger_log("error", "%s (%s)", err, ledger_status_name(st));
    ledger_runner_close(&r);
    return exit_for(st);
}

/* ---- check / status --------------------------------------------------------- */

static int cmd_check(const options *o)
{
    char err[512];
    ledger_db *db = ledger_db_connect(o->db_url, err, sizeof err);
    if (!db) return die(EXIT_UNAVAILABLE, "%s", err);
    ledger_status st = ledger_check(db, stdout, err, sizeof err);
    if ((st == LEDGER_OK || st == LEDGER_ERR_INVALID) && o->cmd_explicit) {
        char lerr[512];
        ledger_status ls = ledger_check_live(db, o->cmd_addr, stdout, lerr, sizeof lerr);
        if (ls == LEDGER_ERR_INVALID) st = ls;
        if (ls != LEDGER_OK && ls != LEDGER_ERR_INVALID && st == LEDGER_OK) {
            st = ls;
            snprintf(err, sizeof err, "live comparison: %.400s", lerr);
        }
    }
    ledger_db_close(db);
    if (st == LEDGER_ERR_INVALID) return EXIT_CHECK_FAILED;
    if (st != LEDGER_OK) return die(exit_for(st), "check: %s", err);
    return 0;
}

static int cmd_status(const options *o)
{
    char err[512];
    ledger_db *db = ledger_db_connect(o->db_url, err, sizeof err);
    if (!db) return die(EXIT_UNAVAILABLE, "%s", err);
    uint64_t seq = 0, mseq = 0;
    ledger_status st = ledger_db_position(db, &seq, &mseq, err, sizeof err);
    ledger_db_close(db);
    if (st != LEDGER_OK) return die(exit_for(st), "status: %s", err);
    printf("LEDGER_SEQ=%" PRIu64 "\nMATCHER_SEQ=%" PRIu64 "\nLAG=%" PRIu64 "\n", seq, mseq,
           mseq > seq ? mseq - seq : 0);
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: sleeps end early */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (!strcmp(o.cmd, "gen")) return cmd_gen(&o);
    if (strcmp(o.cmd, "run") && strcmp(o.cmd, "migrate") && strcmp(o.cmd, "check") &&
        strcmp(o.cmd, "status"))
        return die(EXIT_USAGE, "unknown command '%s' (run, migrate, check, status, gen; see --help)", o.cmd);
    if (!o.db_url || !*o.db_url)
        return die(EXIT_USAGE, "%s", "no database: pass --db URL or set GPUX_DATABASE_URL / DATABASE_URL");
    if (!strcmp(o.cmd, "check")) return cmd_check(&o);
    if (!strcmp(o.cmd, "status")) return cmd_status(&o);
    if (!o.sql_dir)
        return die(EXIT_USAGE, "%s", "cannot find the sql/ migrations: pass --sql-dir or set GPUX_SQL_DIR");
    return cmd_run(&o, !strcmp(o.cmd, "migrate"));
}
