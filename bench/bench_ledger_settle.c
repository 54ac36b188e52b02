/* bench_ledger_settle.c — how fast the ledger settles trades durably.
 *
 *   ledger_settle  trades_per_s, lag_ms_max (+ trades, batch_events,
 *                  events_per_s, batches)
 *
 * Method: a throwaway PostgreSQL (scripts/pgtmp.sh: fsync=on,
 * synchronous_commit=on) in a temp dir; a seeded event stream from the real
 * engine (ledger_gen_run) built in memory first (untimed); then the stream
 * is settled through ledger_settle in batches of whole commands, exactly as
 * the running ledger does (one transaction per batch, position included).
 *   trades_per_s = trades / total settle time
 *   lag_ms_max   = the longest batch, from handing it to the settler to its
 *                  durable commit: with the stream arriving at the settle
 *                  rate, the longest any event waits to be settled.
 *   server_cpu_us_per_trade = CPU time PostgreSQL spent (all its processes)
 *                  per trade: on a shared, busy machine the wall-clock rate
 *                  says as much about the neighbours as about the ledger;
 *                  this figure does not.
 *   client_cpu_us_per_trade = CPU time this process spent per trade while
 *                  settling (validation, digests, COPY encoding, libpq):
 *                  the part of the wall time the server waits for.
 *   wal_bytes_per_trade = WAL PostgreSQL wrote per trade (what a commit
 *                  must make durable).
 * Afterwards `ledger check` must pass and the trade count must equal the
 * engine's, or the program fails (the figure would describe a wrong run).
 * Environment: GPUX_BENCH_LEDGER_TRADES (default 200000),
 * GPUX_BENCH_LEDGER_BATCH (events per batch, default 65536); for profiling,
 * GPUX_BENCH_LEDGER_PGOPTS (extra `postgres -c` settings) and
 * GPUX_BENCH_LEDGER_KEEP=1 (stop the cluster but keep its directory and log). */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <stdbool.h>

#include "ledger/ledger.h"

typedef struct stream {
    ledger_rec *recs;
    uint32_t n, cap;
} stream;

static int keep(void *ctx, const ledger_rec *recs, uint32_t n)
{
    stream *s = ctx;
    if (s->n + n > s->cap) {
        s->cap = (s->n + n) * 2;
        s->recs = realloc(s->recs, sizeof *s->recs * s->cap);
        if (!s->recs) return -2;
    }
    memcpy(s->recs + s->n, recs, sizeof *recs * n);
    s->n += n;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long env_num(const char *name, long dflt, long lo, long hi)
{
    const char *v = getenv(name);
    if (!v) return dflt;
    long n = strtol(v, NULL, 10);
    return n < lo ? lo : n > hi ? hi : n;
}

static int start_pg(const char *root, char *dir, size_t dirlen, char *url, size_t urllen)
{
    snprintf(dir, dirlen, "/tmp/gpux-bench-ledger-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    /* GPUX_BENCH_LEDGER_PGOPTS adds server settings for profiling (e.g.
     * "-c log_min_duration_statement=0"); it must not contain quotes. */
    const char *extra = getenv("GPUX_BENCH_LEDGER_PGOPTS");
    if (!extra || strchr(extra, '\'')) extra = "";
    char cmd[1536];
    snprintf(cmd, sizeof cmd,
             "PGTMP_OPTS='-c shared_buffers=256MB -c max_wal_size=4GB -c checkpoint_timeout=30min %s'"
             " sh %s/scripts/pgtmp.sh start %s", extra, root, dir);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char line[700];
    url[0] = '\0';
    while (fgets(line, sizeof line, p))
        if (!strncmp(line, "DATABASE_URL=", 13)) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(url, urllen, "%s", line + 13);
        }
    return pclose(p) == 0 && url[0] ? 0 : -1;
}

static void stop_pg(const char *root, const char *dir)
{
    if (getenv("GPUX_BENCH_LEDGER_KEEP")) { /* profiling: keep the cluster's log */
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "sh %s/scripts/pgtmp.sh stop %s", root, dir);
        if (system(cmd) != 0) fprintf(stderr, "bench_ledger_settle: could not stop %s\n", dir);
        fprintf(stderr, "bench_ledger_settle: kept %s\n", dir);
        return;
    }
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "sh %s/scripts/pgtmp.sh destroy %s", root, dir);
    if (system(cmd) != 0) fprintf(stderr, "bench_ledger_settle: could not remove %s\n", dir);
}

/* utime + stime of one process (and of its reaped children when kids). */
static long long proc_ticks(long pid, bool kids)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* fields after the command name */
    if (!p) return 0;
    long long v[20] = {0};
    int i = 0;
    for (char *tok = strtok(p + 2, " "); tok && i < 20; tok = strtok(NULL, " ")) v[i++] = atoll(tok);
    /* after ")": state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14) */
    return v[11] + v[12] + (kids ? v[13] + v[14] : 0);
}

/* CPU ticks of the whole cluster: the postmaster with its reaped children
 * plus every live child. */
static long long cluster_ticks(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/pgdata/postmaster.pid", dir);
    FILE *f = fopen(path, "r");
    long pm = 0;
    if (!f || fscanf(f, "%ld", &pm) != 1) pm = 0;
    if (f) fclose(f);
    if (pm <= 0) return 0;
    long long t = proc_ticks(pm, true);
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        long pid = atol(de->d_name);
        if (pid <= 0) continue;
        char sp[64], buf[512];
        snprintf(sp, sizeof sp, "/proc/%ld/stat", pid);
        FILE *s = fopen(sp, "r");
        if (!s) continue;
        size_t n = fread(buf, 1, sizeof buf - 1, s);
        fclose(s);
        buf[n] = '\0';
        char *p = strrchr(buf, ')');
        long ppid = 0;
        if (p && sscanf(p + 2, "%*c %ld", &ppid) == 1 && ppid == pm) t += proc_ticks(pid, false);
    }
    if (d) closedir(d);
    return t;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

/* Settles the whole stream; fills the timing figures. */
static int settle_all(ledger_db *db, const stream *s, uint32_t batch, double *secs,
                      double *max_batch_s, uint32_t *batches)
{
    ledger_settler *st = ledger_settler_create(batch);
    if (!st) return -1;
    char err[512];
    double t0 = now_s();
    *max_batch_s = 0;
    *batches = 0;
    for (uint32_t first = 0; first < s->n;) {
        uint32_t end = first + batch < s->n ? first + batch : s->n;
        /* whole commands only: back off to the start of a split command */
        if (end < s->n)
            while (end > first && s->recs[end].seq == s->recs[end - 1].seq) end--;
        if (end == first) {
            fprintf(stderr, "bench_ledger_settle: a command is larger than the batch\n");
            ledger_settler_destroy(st);
            return -1;
        }
        ledger_batch_result res;
        double b0 = now_s();
        ledger_status rs = ledger_settle(st, db, s->recs + first, end - first,
                                         s->recs[s->n - 1].seq, &res, err, sizeof err);
        double b1 = now_s();
        if (rs != LEDGER_OK) {
            fprintf(stderr, "bench_ledger_settle: settle failed: %s\n", err);
            ledger_settler_destroy(st);
            return -1;
        }
        if (b1 - b0 > *max_batch_s) *max_batch_s = b1 - b0;
        (*batches)++;
        first = end;
    }
    *secs = now_s() - t0;
    ledger_settler_destroy(st);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strstr("ledger_settle", argv[1])) return 0;
    const char *root = getenv("GPUX_ROOT");
    if (!root) root = ".";
    long trades = env_num("GPUX_BENCH_LEDGER_TRADES", 200000, 1000, 10000000);
    uint32_t batch = (uint32_t)env_num("GPUX_BENCH_LEDGER_BATCH", 65536, 64, LEDGER_MAX_BATCH_RECS);

    stream s = {0};
    static matcher_catalog cat;
    ledger_gen_stats gs;
    char err[512];
    ledger_gen_params p = {.seed = 2026, .n_accounts = 1000, .n_trades = (uint64_t)trades,
                           .n_markets = 8};
    fprintf(stderr, "bench_ledger_settle: generating %ld trades with the engine...\n", trades);
    if (ledger_gen_run(&p, keep, &s, &cat, &gs, err, sizeof err) != 0) {
        fprintf(stderr, "bench_ledger_settle: generator: %s\n", err);
        return 1;
    }
    char dir[256], url[700];
    if (start_pg(root, dir, sizeof dir, url, sizeof url) != 0) {
        fprintf(stderr, "bench_ledger_settle: could not start PostgreSQL (scripts/pgtmp.sh)\n");
        return 1;
    }
    int rc = 1;
    char sql_dir[512];
    snprintf(sql_dir, sizeof sql_dir, "%s/sql", root);
    ledger_db *db = ledger_db_connect(url, err, sizeof err);
    if (db && ledger_db_migrate(db, sql_dir, NULL, err, sizeof err) == LEDGER_OK &&
        ledger_db_sync_markets(db, &cat, err, sizeof err) == LEDGER_OK) {
        fprintf(stderr, "bench_ledger_settle: settling %" PRIu64 " commands, %u events, %" PRIu64
                        " trades in batches of %u events...\n", gs.commands, s.n, gs.trades, batch);
        double secs = 0, max_batch = 0;
        uint32_t batches = 0;
        static const char *const wal_sql = "SELECT (pg_current_wal_lsn() - '0/0')::bigint";
        int64_t wal0 = 0, wal1 = 0;
        if (ledger_db_query_i64(db, wal_sql, &wal0, err, sizeof err) != LEDGER_OK)
            fprintf(stderr, "bench_ledger_settle: WAL position: %s\n", err);
        long long ticks0 = cluster_ticks(dir);
        double self0 = self_cpu_s();
        int settled = settle_all(db, &s, batch, &secs, &max_batch, &batches);
        double client_us = (self_cpu_s() - self0) * 1e6;
        double cpu_us = (double)(cluster_ticks(dir) - ticks0) * 1e6 / (double)sysconf(_SC_CLK_TCK);
        if (ledger_db_query_i64(db, wal_sql, &wal1, err, sizeof err) != LEDGER_OK) {
            fprintf(stderr, "bench_ledger_settle: WAL position: %s\n", err);
            wal1 = wal0; /* report 0 rather than a wrong figure */
        }
        if (settled == 0) {
            FILE *devnull = fopen("/dev/null", "w");
            int64_t count = -1;
            ledger_status cs = ledger_check(db, devnull ? devnull : stderr, err, sizeof err);
            if (devnull) fclose(devnull);
            if (cs == LEDGER_OK)
                ledger_db_query_i64(db, "SELECT count(*) FROM ledger_trades", &count, err, sizeof err);
            if (cs != LEDGER_OK || count != (int64_t)gs.trades) {
                fprintf(stderr, "bench_ledger_settle: ledger check failed after the run: %s\n", err);
            } else {
                printf("bench ledger_settle trades_per_s=%.0f lag_ms_max=%.1f trades=%" PRIu64
                       " events_per_s=%.0f batch_events=%u batches=%u server_cpu_us_per_trade=%.1f"
                       " client_cpu_us_per_trade=%.2f wal_bytes_per_trade=%.0f\n",
                       (double)gs.trades / secs, max_batch * 1000.0, gs.trades, (double)s.n / secs,
                       batch, batches, cpu_us / (double)gs.trades, client_us / (double)gs.trades,
                       (double)(wal1 - wal0) / (double)gs.trades);
                rc = 0;
            }
        }
    } else {
        fprintf(stderr, "bench_ledger_settle: database: %s\n", db ? err : "cannot connect");
    }
    ledger_db_close(db);
    stop_pg(root, dir);
    free(s.recs);
    return rc;
}
