/* check.c — the invariants `gpux-ledger check` verifies, as SQL.
 *
 * Why SQL: the checks must hold for what is in the database, whoever wrote
 * it, so they recompute everything from the rows (never from the settler's
 * memory). They run in one REPEATABLE READ snapshot so a settler running at
 * the same time cannot make them see half a batch. Each check counts the
 * offending rows; on failure the first few are printed. */
#include <inttypes.h>
#include <string.h>

#include "gpux_assert.h"
#include "ledger/ledger.h"

#define SHOW_ROWS 5

typedef struct check_def {
    const char *what;    /* the sentence printed */
    const char *count;   /* SELECT count of violations (must be 0) */
    const char *sample;  /* SELECT a few offending rows */
} check_def;

#define BALANCE_FROM_TRANSFERS                                                          \
    "SELECT a.account_id, a.balance_micros, COALESCE(t.s, 0) AS from_transfers"         \
    " FROM ledger_accounts a LEFT JOIN (SELECT acct, sum(d) AS s FROM ("                \
    "   SELECT credit_account_id AS acct, amount_micros AS d FROM ledger_transfers"     \
    "   UNION ALL SELECT debit_account_id, -amount_micros FROM ledger_transfers) x"     \
    "   GROUP BY acct) t ON t.acct = a.account_id"                                      \
    " WHERE a.balance_micros <> COALESCE(t.s, 0)"

#define TRADE_LEGS                                                                      \
    "SELECT COALESCE(t.trade_id, x.trade_id) AS trade_id, x.nt, x.tn, t.notional_micros," \
    " x.bf, t.buyer_fee_micros, x.pf, t.provider_fee_micros"                            \
    " FROM ledger_trades t FULL JOIN (SELECT trade_id,"                                 \
    "   count(*) FILTER (WHERE kind = 'trade') AS nt,"                                  \
    "   max(debit_account_id) FILTER (WHERE kind = 'trade') AS tb,"                     \
    "   max(credit_account_id) FILTER (WHERE kind = 'trade') AS tp,"                    \
    "   sum(amount_micros) FILTER (WHERE kind = 'trade') AS tn,"                        \
    "   count(*) FILTER (WHERE kind = 'buyer_fee') AS nbf,"                             \
    "   max(debit_account_id) FILTER (WHERE kind = 'buyer_fee') AS bfd,"                \
    "   COALESCE(sum(amount_micros) FILTER (WHERE kind = 'buyer_fee'), 0) AS bf,"       \
    "   count(*) FILTER (WHERE kind = 'provider_fee') AS npf,"                          \
    "   max(debit_account_id) FILTER (WHERE kind = 'provider_fee') AS pfd,"             \
    "   COALESCE(sum(amount_micros) FILTER (WHERE kind = 'provider_fee'), 0) AS pf"     \
    "   FROM ledger_transfers WHERE trade_id IS NOT NULL GROUP BY trade_id) x"          \
    "   ON x.trade_id = t.trade_id"                                                     \
    " WHERE t.trade_id IS NULL OR x.trade_id IS NULL OR x.nt <> 1"                      \
    "   OR x.tb <> t.buyer_id OR x.tp <> t.provider_id OR x.tn <> t.notional_micros"    \
    "   OR x.nbf <> (t.buyer_fee_micros > 0)::int OR x.bf <> t.buyer_fee_micros"        \
    "   OR (x.nbf = 1 AND x.bfd <> t.buyer_id)"                                         \
    "   OR x.npf <> (t.provider_fee_micros > 0)::int OR x.pf <> t.provider_fee_micros"  \
    "   OR (x.npf = 1 AND x.pfd <> t.provider_id)"

#define TRADES_SETTLED                                                                  \
    "SELECT t.trade_id, t.seq FROM ledger_trades t"                                     \
    " LEFT JOIN ledger_commands c ON c.seq = t.seq"                                     \
    " WHERE c.seq IS NULL OR t.seq > (SELECT last_seq FROM ledger_position)"

#define LEDGER_VS_MATCHER                                                               \
    "SELECT a.account_id, a.balance_micros AS ledger, m.balance_micros AS matcher, m.seq" \
    " FROM ledger_accounts a LEFT JOIN ledger_matcher_balances m USING (account_id)"   \
    " WHERE a.account_id >= 0 AND a.balance_micros <> COALESCE(m.balance_micros, 0)"

static const check_def checks[] = {
    {"double entry: every account's balance = credits - debits of its transfers",
     "SELECT count(*) FROM (" BALANCE_FROM_TRANSFERS ") v", BALANCE_FROM_TRANSFERS},
    {"double entry: debits = credits overall (all balances, external included, sum to 0)",
     "SELECT (COALESCE(sum(balance_micros), 0) <> 0)::int FROM ledger_accounts",
     "SELECT sum(balance_micros) AS sum_of_all_balances FROM ledger_accounts"},
    {"conservation: sum of balances = deposits - withdrawals",
     "SELECT ((SELECT COALESCE(sum(balance_micros), 0) FROM ledger_accounts WHERE account_id >= 0)"
     " <> (SELECT COALESCE(sum(CASE kind WHEN 'deposit' THEN amount_micros ELSE -amount_micros END), 0)"
     " FROM ledger_cash))::int",
     "SELECT (SELECT sum(balance_micros) FROM ledger_accounts WHERE account_id >= 0) AS balances,"
     " (SELECT sum(amount_micros) FROM ledger_cash WHERE kind = 'deposit') AS deposits,"
     " (SELECT sum(amount_micros) FROM ledger_cash WHERE kind = 'withdrawal') AS withdrawals"},
    {"no negative balance",
     "SELECT count(*) FROM ledger_accounts WHERE account_id >= 0 AND balance_micros < 0",
     "SELECT account_id, balance_micros FROM ledger_accounts WHERE account_id >= 0 AND balance_micros < 0"},
    {"per trade: buyer pays notional + fee, provider gets notional - fee, fee account both fees",
     "SELECT count(*) FROM (" TRADE_LEGS ") v", TRADE_LEGS},
    {"every trade settled once: its command is recorded and within the position",
     "SELECT count(*) FROM (" TRADES_SETTLED ") v", TRADES_SETTLED},
    /* ids > 0 (CHECK), all distinct and as many as the largest: 1..N.
     * Distinctness is recomputed here, not taken from the schema: since
     * sql/003 a statement trigger, not a b-tree, keeps them unique. */
    {"every trade settled once: trade ids are 1..N, each once, without gaps",
     "SELECT abs(COALESCE(max(trade_id), 0) - count(*)) + count(*) - count(DISTINCT trade_id)"
     " FROM ledger_trades",
     "SELECT min(trade_id), max(trade_id), count(*), count(DISTINCT trade_id) AS distinct_ids"
     " FROM ledger_trades"},
    {"ledger = matcher at the same seq: each balance equals the matcher's last BALANCE",
     "SELECT count(*) FROM (" LEDGER_VS_MATCHER ") v", LEDGER_VS_MATCHER},
};

static ledger_status summary(ledger_db *db, FILE *out, char *err, size_t errlen)
{
    int64_t seq = 0, mseq = 0, trades = 0, accounts = 0, commands = 0;
    ledger_status st = ledger_db_query_i64(db, "SELECT last_seq FROM ledger_position", &seq, err, errlen);
    if (st == LEDGER_OK)
        st = ledger_db_query_i64(db, "SELECT matcher_seq FROM ledger_position", &mseq, err, errlen);
    if (st == LEDGER_OK)
        st = ledger_db_query_i64(db, "SELECT count(*) FROM ledger_trades", &trades, err, errlen);
    if (st == LEDGER_OK)
        st = ledger_db_query_i64(db, "SELECT count(*) FROM ledger_accounts WHERE account_id >= 0",
                                 &accounts, err, errlen);
    if (st == LEDGER_OK)
        st = ledger_db_query_i64(db, "SELECT count(*) FROM ledger_commands", &commands, err, errlen);
    if (st == LEDGER_OK)
        fprintf(out, "ledger: settled through seq %" PRId64 " (matcher seq seen %" PRId64
                     "): %" PRId64 " commands, %" PRId64 " trades, %" PRId64
                     " accounts (fee account included)\n",
                seq, mseq, commands, trades, accounts);
    return st;
}

ledger_status ledger_check(ledger_db *db, FILE *out, char *err, size_t errlen)
{
    GPUX_ASSERT(db && out);
    ledger_status st = ledger_db_query_i64(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                                           NULL, err, errlen);
    if (st == LEDGER_OK) st = summary(db, out, err, errlen);
    int failed = 0;
    for (size_t i = 0; st == LEDGER_OK && i < GPUX_ARRAY_LEN(checks); i++) {
        int64_t bad = 0;
        st = ledger_db_query_i64(db, checks[i].count, &bad, err, errlen);
        if (st != LEDGER_OK) break;
        fprintf(out, "%s %s\n", bad == 0 ? "ok  " : "FAIL", checks[i].what);
        if (bad != 0) {
            failed++;
            char sample[8192];
            snprintf(sample, sizeof sample, "%s LIMIT %d", checks[i].sample, SHOW_ROWS);
            st = ledger_db_query_print(db, sample, out, SHOW_ROWS, NULL, err, errlen);
        }
    }
    char scratch[256];
    ledger_db_query_i64(db, "ROLLBACK", NULL, scratch, sizeof scratch);
    if (st != LEDGER_OK) {
        fprintf(out, "check could not run: %s\n", err);
        return st;
    }
    fprintf(out, "result: %s (%zu checks, %d failed)\n", failed ? "FAILED" : "all hold",
            GPUX_ARRAY_LEN(checks), failed);
    if (failed) snprintf(err, errlen, "%d of %zu ledger checks failed", failed, GPUX_ARRAY_LEN(checks));
    return failed ? LEDGER_ERR_INVALID : LEDGER_OK;
}
