/* plan.h — the rows one settlement batch writes (internal to ledger/).
 *
 * settle.c turns a batch of events into a plan: binary COPY data per table,
 * array literals for the per-account balance deltas and matcher balances,
 * and the list of redelivered commands to verify. db.c runs the plan in one
 * transaction. Keeping the plan as plain byte buffers keeps libpq inside
 * db.c and makes the hot path a handful of round trips per batch. */
#ifndef GPUX_LEDGER_PLAN_H
#define GPUX_LEDGER_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "ledger/ledger.h"

/* A growable text buffer with a hard ceiling: it grows during the first
 * batches and then stays allocated; passing the ceiling is a bug. */
typedef struct ledger_buf {
    char *p;
    size_t len;
    size_t cap;
    size_t limit;
} ledger_buf;

void ledger_buf_init(ledger_buf *b, size_t initial, size_t limit);
void ledger_buf_free(ledger_buf *b);
void ledger_buf_reset(ledger_buf *b);
/* Makes room for n more bytes plus the NUL (asserts the ceiling). */
void ledger_buf_reserve(ledger_buf *b, size_t n);
void ledger_buf_printf(ledger_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* COPY binary format (buf.c): the header once, then per row
 * ledger_buf_bin_row(n) and n fields of the table's exact column types,
 * then the trailer. */
void ledger_buf_bin_header(ledger_buf *b);
void ledger_buf_bin_trailer(ledger_buf *b);
void ledger_buf_bin_row(ledger_buf *b, int n_fields);
void ledger_buf_bin_i64(ledger_buf *b, int64_t v);  /* bigint */
void ledger_buf_bin_i32(ledger_buf *b, int64_t v);  /* integer (asserts range) */
void ledger_buf_bin_i16(ledger_buf *b, int64_t v);  /* smallint (asserts range) */
void ledger_buf_bin_text(ledger_buf *b, const char *s);
void ledger_buf_bin_null(ledger_buf *b);

enum ledger_table {
    LEDGER_T_ACCOUNTS,
    LEDGER_T_CASH,
    LEDGER_T_TRADES,
    LEDGER_T_COUNT
};

typedef struct ledger_plan {
    ledger_buf copy[LEDGER_T_COUNT];   /* binary COPY data per table */
    uint32_t rows[LEDGER_T_COUNT];
    uint32_t n_legs;   /* double-entry legs the rows hold (sql/003) */
    /* per-account balance deltas, array literals "{..}" */
    ledger_buf delta_ids, delta_micros;
    uint32_t n_deltas;
    /* last matcher BALANCE per account in the batch */
    ledger_buf mbal_ids, mbal_balance, mbal_held, mbal_seq;
    uint32_t n_mbal;
    /* new commands: seq, n_events, digest (one ledger_command_batches row) */
    ledger_buf cmd_seqs, cmd_counts, cmd_digests;
    uint32_t n_cmds;
    uint64_t first_cmd_seq;
    /* redelivered commands: seq, n_events, digest (LEDGER_DIGEST_MIX64 and
     * LEDGER_DIGEST_FNV1A: a stored batch row says which one it holds) */
    ledger_buf dup_seqs, dup_counts, dup_digests, dup_digests_v1;
    uint32_t n_dups;
    uint64_t last_seq;       /* position after the batch */
    uint64_t matcher_seq;    /* matcher head seen, 0 = unknown */
} ledger_plan;

/* The COPY statement for each table (column order of the plan's rows). */
extern const char *const ledger_copy_sql[LEDGER_T_COUNT];

/* Starts the batch transaction: BEGIN, lock and read the position. */
ledger_status ledger_db_begin(ledger_db *db, uint64_t *last_seq, char *err,
                              size_t errlen);

/* Verifies the redelivered commands of the plan against ledger_commands.
 * LEDGER_ERR_CONFLICT names the first seq whose content differs. */
ledger_status ledger_db_verify_dups(ledger_db *db, const ledger_plan *p,
                                    char *err, size_t errlen);

/* Writes the plan and the new position, then commits. */
ledger_status ledger_db_apply(ledger_db *db, const ledger_plan *p, char *err,
                              size_t errlen);

/* Rolls back an open batch transaction (errors ignored: the connection
 * may already be gone). */
void ledger_db_rollback(ledger_db *db);

#endif
