/* runner.c — the settler's outer loop: one batch at a time, with
 * reconnect-and-retry when PostgreSQL goes away.
 *
 * Why separate from the feed: the file replay mode and the matcher feed
 * share the same durability story. A batch that failed for a transient
 * reason (LEDGER_ERR_DB) is retried whole after reconnecting: whatever
 * part of it committed before the failure is now below the position and
 * is verified and skipped, so retrying can never settle twice. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpux_assert.h"
#include "ledger/ledger.h"
#include "ledger/runner.h"

volatile sig_atomic_t ledger_stop_requested = 0;

int64_t ledger_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ledger_sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL); /* a signal cuts it short: the caller re-checks */
}

void ledger_log(const char *level, const char *fmt, ...)
{
    char when[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(stderr, "%s gpux-ledger %s: ", when, level);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Connects (and migrates), retrying with backoff until deadline_ms. */
static ledger_status connect_retry(ledger_runner *r, int64_t deadline_ms, char *err,
                                   size_t errlen)
{
    int64_t backoff_ms = 100;
    for (uint32_t attempt = 1;; attempt++) {
        r->db = ledger_db_connect(r->db_url, err, errlen);
        if (r->db) {
            int applied = 0;
            ledger_status st = ledger_db_migrate(r->db, r->sql_dir, &applied, err, errlen);
            if (st == LEDGER_OK && r->cat && r->cat->n_markets) {
                st = ledger_db_sync_markets(r->db, r->cat, err, errlen);
                if (st == LEDGER_OK) r->markets_synced = r->cat->n_markets;
            }
            if (st == LEDGER_OK) {
                if (applied) ledger_log("info", "applied %d migration(s) from %s", applied, r->sql_dir);
                if (attempt > 1) ledger_log("info", "reconnected to PostgreSQL after %u attempts", attempt);
                return LEDGER_OK;
            }
            ledger_db_close(r->db);
            r->db = NULL;
            if (st != LEDGER_ERR_DB) return st;
        }
        if (ledger_stop_requested) return LEDGER_ERR_DB;
        if (ledger_now_ms() + backoff_ms > deadline_ms) return LEDGER_ERR_DB;
        if (attempt == 1 || attempt % 10 == 0)
            ledger_log("warn", "PostgreSQL unavailable (%s); retrying", err);
        ledger_sleep_ms(backoff_ms);
        backoff_ms = backoff_ms * 2 > 2000 ? 2000 : backoff_ms * 2;
    }
}

ledger_status ledger_runner_open(ledger_runner *r, char *err, size_t errlen)
{
    GPUX_ASSERT(r->db_url && r->sql_dir && r->max_recs > 0);
    r->settler = ledger_settler_create(r->max_recs);
    if (!r->settler) {
        snprintf(err, errlen, "cannot allocate a settler for %u records", r->max_recs);
        return LEDGER_ERR_FATAL;
    }
    ledger_status st = connect_retry(r, ledger_now_ms() + r->retry_limit_ms, err, errlen);
    if (st != LEDGER_OK) return st;
    return ledger_db_position(r->db, &r->position, &r->matcher_seq, err, errlen);
}

void ledger_runner_close(ledger_runner *r)
{
    ledger_db_close(r->db);
    r->db = NULL;
    ledger_settler_destroy(r->settler);
    r->settler = NULL;
}

static void progress(ledger_runner *r, const ledger_batch_result *res)
{
    r->total_trades += res->trades;
    r->total_commands += res->new_commands;
    r->total_dups += res->dup_commands;
    int64_t now = ledger_now_ms();
    if (r->log_every_ms >= 0 && now - r->last_log_ms >= r->log_every_ms) {
        uint64_t lag = r->matcher_seq > r->position ? r->matcher_seq - r->position : 0;
        ledger_log("info", "settled through seq %" PRIu64 ": %" PRIu64 " commands, %" PRIu64
                   " trades this run, %" PRIu64 " redelivered commands verified; lag %" PRIu64,
                   r->position, r->total_commands, r->total_trades, r->total_dups, lag);
        r->last_log_ms = now;
    }
}

ledger_status ledger_runner_settle(ledger_runner *r, const ledger_rec *recs, uint32_t n,
                                   uint64_t matcher_seq, char *err, size_t errlen)
{
    int64_t deadline = ledger_now_ms() + r->retry_limit_ms;
    if (matcher_seq > r->matcher_seq) r->matcher_seq = matcher_seq;
    for (uint32_t attempt = 0;; attempt++) {
        if (!r->db) {
            ledger_status st = connect_retry(r, deadline, err, errlen);
            if (st != LEDGER_OK) return st;
        }
        ledger_status st = LEDGER_OK;
        if (r->cat && r->cat->n_markets > r->markets_synced) {
            st = ledger_db_sync_markets(r->db, r->cat, err, errlen);
            if (st == LEDGER_OK) r->markets_synced = r->cat->n_markets;
        }
        ledger_batch_result res;
        if (st == LEDGER_OK) st = ledger_settle(r->settler, r->db, recs, n, r->matcher_seq, &res, err, errlen);
        if (st == LEDGER_OK) {
            if (res.last_seq > r->position) r->position = res.last_seq;
            progress(r, &res);
            return LEDGER_OK;
        }
        if (st != LEDGER_ERR_DB) return st;
        ledger_log("warn", "batch failed (%s); reconnecting and retrying it", err);
        ledger_db_close(r->db);
        r->db = NULL;
        if (ledger_stop_requested || ledger_now_ms() > deadline) return st;
        ledger_sleep_ms(attempt == 0 ? 50 : 200);
    }
}
