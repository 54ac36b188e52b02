/* ledger.h — the ledger module: exactly-once settlement of the matcher's
 * sequenced events into a double-entry PostgreSQL ledger.
 *
 * Layers (one file per concept):
 *   db.c      the only libpq user: connect, migrate, run one batch
 *             transaction, small queries for check/status.
 *   settle.c  transport-independent core: validates a batch of
 *             (seq, idx, matcher_event) records, hashes each command's
 *             events, builds the rows and per-account deltas, hands the
 *             plan to db.c.
 *   check.c   the invariants `gpux-ledger check` verifies.
 *   evfile.c  the text event-file format (test/replay mode, see
 *             docs/ledger.md).
 *   gen.c     a seeded synthetic event stream (tests, bench, demo).
 *
 * Threading: nothing here locks. A ledger_db and a ledger_settler belong to
 * one thread. Errors: functions return a ledger_status and write a one-line
 * reason into the caller's err buffer (never NULL, errlen > 0). */
#ifndef GPUX_LEDGER_H
#define GPUX_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "matcher/matcher.h"

#define LEDGER_MAX_BATCH_RECS 65536   /* records (events) in one batch (--batch) */
/* A single command may carry more events than a batch (a clock advance
 * expiring many bids, a sweep with thousands of fills); the feed then
 * grows its batch to hold that command whole, up to this many records. */
#define LEDGER_MAX_COMMAND_RECS (1u << 21)
#define LEDGER_DEFAULT_BATCH_RECS 16384
#define LEDGER_NAME_LEN 65            /* account name incl. NUL */
#define LEDGER_EXTERNAL_ACCOUNT (-1)  /* the outside world in double entry */

typedef enum ledger_status {
    LEDGER_OK = 0,
    LEDGER_ERR_DB = 1,       /* transient: connection/server trouble, retry */
    LEDGER_ERR_CONFLICT = 2, /* a settled seq arrived with other content */
    LEDGER_ERR_INVALID = 3,  /* the input breaks a rule or a constraint */
    LEDGER_ERR_FATAL = 4,    /* anything else: configuration, schema, bug */
} ledger_status;

/* Name of a status for logs ("ok", "db", "conflict", ...). Never NULL. */
const char *ledger_status_name(ledger_status st);

/* One event of one command, as the feed delivers it: the command's journal
 * sequence, the event's index inside the command, the event itself and,
 * for ACCOUNT events only, the account's name ("" when unknown). */
typedef struct ledger_rec {
    uint64_t seq;
    uint32_t idx;
    uint32_t pad;
    matcher_event ev;
    char name[LEDGER_NAME_LEN];
} ledger_rec;

/* ---- database (db.c) ---------------------------------------------------- */

typedef struct ledger_db ledger_db;

/* Connects to url (a libpq URL or conninfo). Returns NULL with the server's
 * reason in err when the server cannot be reached. The session uses
 * synchronous_commit=on and plan_cache_mode=force_custom_plan. Owned by the
 * caller: free with ledger_db_close (NULL is fine). */
ledger_db *ledger_db_connect(const char *url, char *err, size_t errlen);
void ledger_db_close(ledger_db *db);

/* True when the connection is still usable. */
bool ledger_db_ok(const ledger_db *db);

/* Applies the migrations sql/NNN_*.sql found in sql_dir that are not yet
 * recorded in ledger_migrations, in number order, each in its own
 * transaction with its record. An applied migration whose file changed is
 * an error (LEDGER_ERR_FATAL). *applied (may be NULL) gets the count. */
ledger_status ledger_db_migrate(ledger_db *db, const char *sql_dir,
                                int *applied, char *err, size_t errlen);

/* Reads the consumer position (every seq <= *last_seq is settled) and the
 * matcher sequence last seen (for lag). */
ledger_status ledger_db_position(ledger_db *db, uint64_t *last_seq,
                                 uint64_t *matcher_seq, char *err,
                                 size_t errlen);

/* Inserts or checks the catalog markets: a market id already present with
 * other names is LEDGER_ERR_INVALID (the catalog may grow, never change). */
ledger_status ledger_db_sync_markets(ledger_db *db, const matcher_catalog *cat,
                                     char *err, size_t errlen);

/* Runs sql (no parameters) and, when it returns rows, gives the first
 * column of the first row as int64 in *out (may be NULL). For check and
 * status; not for the hot path. */
ledger_status ledger_db_query_i64(ledger_db *db, const char *sql,
                                  int64_t *out, char *err, size_t errlen);

/* Runs sql and writes each row (columns separated by spaces) to f, at most
 * max_rows rows; *n_rows gets the number of rows the query returned. */
ledger_status ledger_db_query_print(ledger_db *db, const char *sql, FILE *f,
                                    int max_rows, long *n_rows, char *err,
                                    size_t errlen);

/* ---- settlement (settle.c) ---------------------------------------------- */

typedef struct ledger_settler ledger_settler;

/* Allocates the batch buffers for batches of up to max_recs records
 * (<= LEDGER_MAX_COMMAND_RECS). NULL when memory cannot be had. */
ledger_settler *ledger_settler_create(uint32_t max_recs);
void ledger_settler_destroy(ledger_settler *s);

typedef struct ledger_batch_result {
    uint64_t last_seq;      /* position after the batch */
    uint32_t new_commands;  /* commands settled by this batch */
    uint32_t dup_commands;  /* redelivered commands verified and skipped */
    uint32_t trades;        /* trades settled by this batch */
    uint32_t transfers;
} ledger_batch_result;

/* Settles recs[0..n) in one transaction with the new position.
 * Preconditions the caller guarantees (checked, LEDGER_ERR_INVALID if not):
 * records ordered by (seq, idx) strictly increasing, every command whole
 * (all its events in this batch), n <= max_recs.
 * Commands with seq <= the stored position are redelivered: their digest
 * must equal the stored one (else LEDGER_ERR_CONFLICT, nothing written).
 * matcher_seq (0 = unknown) is recorded for lag. On any error nothing of
 * the batch is kept (the transaction rolls back); LEDGER_ERR_DB means the
 * same batch may be retried after reconnecting. */
ledger_status ledger_settle(ledger_settler *s, ledger_db *db,
                            const ledger_rec *recs, uint32_t n,
                            uint64_t matcher_seq, ledger_batch_result *res,
                            char *err, size_t errlen);

/* The 64-bit digest of one command's events, over each event's meaningful
 * fields (so padding never matters), by one of two algorithms; each
 * ledger_command_batches row records which one its digests use
 * (digest_alg). FNV1A (FNV-1a over the fields' bytes) is what sql/001-002
 * stored and is still used to verify redeliveries of those commands;
 * MIX64 (one multiply-xorshift step per field, ~6x faster) is what the
 * settler stores since sql/003. Pure functions, any thread. */
enum { LEDGER_DIGEST_FNV1A = 1, LEDGER_DIGEST_MIX64 = 2 };
uint64_t ledger_digest_alg(const ledger_rec *recs, uint32_t n, int alg);
/* ledger_digest_alg(recs, n, LEDGER_DIGEST_MIX64): what new rows store. */
uint64_t ledger_digest(const ledger_rec *recs, uint32_t n);

/* ---- check (check.c) ---------------------------------------------------- */

/* Verifies the ledger invariants (docs/ledger.md lists them), printing one
 * line per check to out. Returns LEDGER_OK only when every check holds;
 * LEDGER_ERR_INVALID when one fails; LEDGER_ERR_DB when a query failed. */
ledger_status ledger_check(ledger_db *db, FILE *out, char *err, size_t errlen);

/* Compares every account's ledger balance with the running matcher's
 * (command endpoint cmd_addr, WIRE_Q_STATUS + WIRE_Q_ACCOUNTS), printing
 * one line to out: only when the matcher's seq equals the ledger's
 * position (else a "skip" line and LEDGER_OK). LEDGER_ERR_INVALID on a
 * difference; LEDGER_ERR_DB when the matcher or the database cannot be
 * asked (live.c). */
ledger_status ledger_check_live(ledger_db *db, const char *cmd_addr, FILE *out, char *err,
                                size_t errlen);

/* ---- event files (evfile.c) --------------------------------------------- */

/* Writes one record as a line of the text event format. */
void ledger_evfile_write(FILE *f, const ledger_rec *r);
/* Writes a market line ("M id gpu region lot tick"). */
void ledger_evfile_write_market(FILE *f, uint32_t id,
                                const matcher_market_def *m);

typedef struct ledger_evreader {
    FILE *f;
    unsigned long line_no;
    bool have_pending;          /* a record read ahead */
    ledger_rec pending;
    uint32_t carry_off, carry_n; /* unfinished command left in recs */
} ledger_evreader;

/* Reads whole commands from r into recs (at most max_recs records) until
 * the buffer is full or the file ends. Start with a zeroed reader and f
 * set; pass the same recs buffer on every call and leave its contents
 * alone between calls (an unfinished command is carried in it). Market
 * lines are added to *cat (may be NULL: then ignored). Returns the number
 * of records of complete commands (0 at end of file), or -1 with a reason
 * naming the line. A command larger than max_recs is an error. */
long ledger_evfile_read(ledger_evreader *r, ledger_rec *recs,
                        uint32_t max_recs, matcher_catalog *cat, char *err,
                        size_t errlen);

/* ---- seeded event stream from the real engine (gen.c) -------------------- */

typedef struct ledger_gen_params {
    uint64_t seed;
    uint32_t n_accounts;     /* users (buyer+provider roles), >= 2 */
    uint64_t n_trades;       /* stop once this many trades happened */
    uint32_t n_markets;      /* 1..36: the first markets of catalog.default */
} ledger_gen_params;

typedef struct ledger_gen_stats {
    uint64_t commands;       /* accepted commands (= last seq) */
    uint64_t rejected;       /* rejected commands (no seq, not emitted) */
    uint64_t trades;
    uint64_t events;
    int64_t deposited_micros;
    int64_t withdrawn_micros;
    int64_t fee_balance_micros; /* the fee account at the end */
} ledger_gen_stats;

/* Receives one accepted command's events (recs valid during the call).
 * A non-zero return stops the generator and is returned by ledger_gen_run. */
typedef int (*ledger_gen_fn)(void *ctx, const ledger_rec *recs, uint32_t n);

/* Drives a real matcher engine (matcher_create/matcher_apply) with a
 * command stream that depends only on the seed: accounts funded by
 * deposits, resting offers, partial-fill and all-or-none bids, withdrawals,
 * clock advances, until n_trades trades (it may overshoot by the fills of
 * the last command). Accepted commands get seq 1, 2, ... and are handed to
 * fn; rejected ones are counted and dropped (as the journal would).
 * *cat gets the catalog used. Returns 0, -1 on bad params or when the
 * engine cannot be created (reason in err), or fn's non-zero return. */
/* The catalog the generator uses: the first n_markets (1..36) markets of
 * matcher/catalog.default, same ids, lot 8, tick $0.0001. */
void ledger_gen_catalog(uint32_t n_markets, matcher_catalog *cat);

int ledger_gen_run(const ledger_gen_params *p, ledger_gen_fn fn, void *ctx,
                   matcher_catalog *cat, ledger_gen_stats *stats, char *err,
                   size_t errlen);

#endif
