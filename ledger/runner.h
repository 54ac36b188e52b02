/* runner.h — the settler process's loop state, shared by the replay mode,
 * the feed client and main (internal to ledger/). */
#ifndef GPUX_LEDGER_RUNNER_H
#define GPUX_LEDGER_RUNNER_H

#include <signal.h>
#include <stdint.h>

#include "ledger/ledger.h"

/* Set by the SIGTERM/SIGINT handler; loops stop between batches. */
extern volatile sig_atomic_t ledger_stop_requested;

typedef struct ledger_runner {
    /* configuration (set before open) */
    const char *db_url;
    const char *sql_dir;
    const matcher_catalog *cat; /* markets to record (may be NULL) */
    uint32_t max_recs;          /* records per batch */
    int64_t retry_limit_ms;     /* give up after this long without the DB */
    int64_t log_every_ms;       /* progress line interval; < 0 = never */
    /* state */
    ledger_db *db;
    ledger_settler *settler;
    uint64_t position;          /* every seq <= position is settled */
    uint64_t matcher_seq;       /* highest matcher seq seen (lag) */
    uint32_t markets_synced;    /* cat->markets recorded in the DB */
    uint64_t total_commands, total_trades, total_dups;
    int64_t last_log_ms;
} ledger_runner;

/* Allocates the settler, connects (retrying up to retry_limit_ms),
 * migrates, records the catalog and reads the position. */
ledger_status ledger_runner_open(ledger_runner *r, char *err, size_t errlen);
void ledger_runner_close(ledger_runner *r);

/* Settles one batch, reconnecting and retrying it while PostgreSQL is
 * unavailable (up to retry_limit_ms). Returns the first non-transient
 * error as is (CONFLICT, INVALID, FATAL). */
ledger_status ledger_runner_settle(ledger_runner *r, const ledger_rec *recs, uint32_t n,
                                   uint64_t matcher_seq, char *err, size_t errlen);

/* Follows the matcher's event feed at addr until stopped (feed.c); asks
 * the command endpoint cmd_addr for the names of new accounts.
 * Returns LEDGER_OK on a requested stop, else the error that ended it. */
ledger_status ledger_feed_follow(ledger_runner *r, const char *addr, const char *cmd_addr,
                                 int64_t poll_ms, char *err, size_t errlen);

int64_t ledger_now_ms(void);
void ledger_sleep_ms(int64_t ms);
void ledger_log(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
