/* test_ledger_settle.c — the settlement core against a real PostgreSQL
 * (scripts/pgtmp.sh starts a throwaway cluster in a temp dir), fed with
 * event streams produced by the real matcher engine.
 *
 * Proves: a seeded engine stream settles to a ledger whose checks all hold
 * and whose trade count, fees and cash totals equal the engine's; batches
 * of any size give the same ledger; redelivery is verified and skipped; a
 * redelivered seq with other content is a conflict that writes nothing; a
 * bad event or a broken constraint (also an unknown account only the
 * server can see) rolls the whole batch back; migrations are
 * idempotent and an edited one is refused; 001 and 002 databases are
 * upgraded intact, legs presented exactly as stored (and refused when
 * their leases or transfers differ from their trades); the set-based
 * reference triggers refuse unknown accounts and markets, and a transfer
 * leg cannot be written on its own; trade ids stay unique without a
 * b-tree; redeliveries verify against either digest algorithm; the
 * command-digest batch rows refuse overlaps and malformed arrays; `check`
 * catches tampering (also of the legs view); the event-file format
 * round-trips. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger/ledger.h"

static char pg_dir[256];
static char base_url[600];
static char sql_dir[512];
static const char *root;
static int db_counter;

/* ---- fixtures ---------------------------------------------------------------- */

static int pg_start(void **state)
{
    (void)state;
    root = getenv("GPUX_ROOT");
    if (!root) root = ".";
    snprintf(sql_dir, sizeof sql_dir, "%s/sql", root);
    snprintf(pg_dir, sizeof pg_dir, "/tmp/gpux-test-ledger-XXXXXX");
    if (!mkdtemp(pg_dir)) return -1;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "sh %s/scripts/pgtmp.sh start %s", root, pg_dir);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char line[600];
    while (fgets(line, sizeof line, p))
        if (!strncmp(line, "DATABASE_URL=", 13)) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(base_url, sizeof base_url, "%s", line + 13);
        }
    int rc = pclose(p);
    return rc == 0 && base_url[0] ? 0 : -1;
}

static int pg_stop(void **state)
{
    (void)state;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "sh %s/scripts/pgtmp.sh destroy %s", root, pg_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A fresh database per test, migrated from `dir`: connects and returns it. */
static ledger_db *fresh_db_from(const char *dir)
{
    char err[512], name[32], url[700];
    snprintf(name, sizeof name, "t%d", ++db_counter);
    ledger_db *admin = ledger_db_connect(base_url, err, sizeof err);
    assert_non_null(admin);
    char sql[64];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    assert_int_equal(ledger_db_query_i64(admin, sql, NULL, err, sizeof err), LEDGER_OK);
    ledger_db_close(admin);
    /* base_url is postgresql://gpux@127.0.0.1:PORT/gpux?host=... */
    const char *q = strstr(base_url, "/gpux?");
    assert_non_null(q);
    snprintf(url, sizeof url, "%.*s/%s%s", (int)(q - base_url), base_url, name, q + 5);
    ledger_db *db = ledger_db_connect(url, err, sizeof err);
    if (!db) fail_msg("connect %s: %s", url, err);
    int applied = 0;
    ledger_status st = ledger_db_migrate(db, dir, &applied, err, sizeof err);
    if (st != LEDGER_OK) fail_msg("migrate: %s", err);
    assert_true(applied >= 1);
    return db;
}

static ledger_db *fresh_db(void) { return fresh_db_from(sql_dir); }

static int64_t q64(ledger_db *db, const char *sql)
{
    char err[512];
    int64_t v = 0;
    ledger_status st = ledger_db_query_i64(db, sql, &v, err, sizeof err);
    if (st != LEDGER_OK) fail_msg("%s: %s", sql, err);
    return v;
}

/* ---- an engine stream in memory --------------------------------------------------- */

typedef struct stream {
    ledger_rec *recs;
    uint32_t n, cap;
    uint32_t *cmd_start; /* index of each command's first record */
    uint32_t n_cmds;
} stream;

static int keep_cmd(void *ctx, const ledger_rec *recs, uint32_t n)
{
    stream *s = ctx;
    if (s->n + n > s->cap) {
        s->cap = (s->n + n) * 2;
        s->recs = realloc(s->recs, sizeof *s->recs * s->cap);
        s->cmd_start = realloc(s->cmd_start, sizeof *s->cmd_start * s->cap);
        assert_non_null(s->recs);
        assert_non_null(s->cmd_start);
    }
    s->cmd_start[s->n_cmds++] = s->n;
    memcpy(s->recs + s->n, recs, sizeof *recs * n);
    s->n += n;
    return 0;
}

static matcher_catalog cat;

static void make_stream(stream *s, uint64_t seed, uint64_t trades, ledger_gen_stats *st)
{
    const char *fl = getenv("GPUX_FLAVOUR");
    if (fl && !strcmp(fl, "san") && trades >= 300) trades /= 3; /* the san build is slower */
    memset(s, 0, sizeof *s);
    ledger_gen_params p = {.seed = seed, .n_accounts = 30, .n_trades = trades, .n_markets = 4};
    char err[256];
    assert_int_equal(ledger_gen_run(&p, keep_cmd, s, &cat, st, err, sizeof err), 0);
    assert_true(st->trades >= trades);
    assert_int_equal(st->commands, s->n_cmds);
}

static void free_stream(stream *s)
{
    free(s->recs);
    free(s->cmd_start);
}

/* Settles commands [c0, c1) in batches of about `per` records. */
static void settle_range(ledger_settler *st, ledger_db *db, const stream *s, uint32_t c0,
                         uint32_t c1, uint32_t per)
{
    char err[512];
    uint32_t c = c0;
    while (c < c1) {
        uint32_t first = s->cmd_start[c], end = first;
        while (c < c1) {
            uint32_t next = c + 1 < s->n_cmds ? s->cmd_start[c + 1] : s->n;
            if (end > first && next - first > per) break;
            end = next;
            c++;
        }
        ledger_batch_result res;
        ledger_status rs = ledger_settle(st, db, s->recs + first, end - first, 0, &res, err, sizeof err);
        if (rs != LEDGER_OK) fail_msg("settle: %s (%s)", err, ledger_status_name(rs));
    }
}

static void assert_check_ok(ledger_db *db)
{
    char err[512];
    FILE *devnull = fopen("/dev/null", "w");
    ledger_status st = ledger_check(db, devnull, err, sizeof err);
    fclose(devnull);
    if (st != LEDGER_OK) {
        ledger_check(db, stderr, err, sizeof err);
        fail_msg("check: %s", err);
    }
}

static void sync_markets(ledger_db *db)
{
    char err[512];
    assert_int_equal(ledger_db_sync_markets(db, &cat, err, sizeof err), LEDGER_OK);
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_engine_stream_settles_exactly(void **state)
{
    (void)state;
    stream s;
    ledger_gen_stats gs;
    make_stream(&s, 42, 3000, &gs);
    ledger_db *db = fresh_db();
    sync_markets(db);
    ledger_settler *st = ledger_settler_create(4096);
    settle_range(st, db, &s, 0, s.n_cmds, 4096);
    assert_check_ok(db);
    assert_int_equal(q64(db, "SELECT count(*) FROM gpux_trades"), gs.trades);
    assert_int_equal(q64(db, "SELECT last_seq FROM ledger_position"), gs.commands);
    assert_int_equal(q64(db, "SELECT balance_micros FROM gpux_balances WHERE account_id = 0"),
                     gs.fee_balance_micros);
    assert_int_equal(q64(db, "SELECT COALESCE(sum(amount_micros), 0) FROM ledger_cash WHERE kind = 'deposit'"),
                     gs.deposited_micros);
    assert_int_equal(q64(db, "SELECT COALESCE(sum(amount_micros), 0) FROM ledger_cash WHERE kind = 'withdrawal'"),
                     gs.withdrawn_micros);
    assert_int_equal(q64(db, "SELECT sum(balance_micros) FROM gpux_balances"),
                     gs.deposited_micros - gs.withdrawn_micros);
    ledger_settler_destroy(st);
    ledger_db_close(db);
    free_stream(&s);
}

static void test_batch_size_does_not_matter(void **state)
{
    (void)state;
    stream s;
    ledger_gen_stats gs;
    make_stream(&s, 7, 800, &gs);
    static const uint32_t sizes[] = {1, 37, 4096};
    int64_t fingerprint[3];
    for (int i = 0; i < 3; i++) {
        ledger_db *db = fresh_db();
        sync_markets(db);
        ledger_settler *st = ledger_settler_create(4096);
        settle_range(st, db, &s, 0, s.n_cmds, sizes[i]);
        assert_check_ok(db);
        assert_int_equal(q64(db, "SELECT count(*) FROM ledger_trades"), gs.trades);
        /* same rows whatever the batching */
        fingerprint[i] = q64(db, "SELECT sum(hashtext(t::text)::bigint) FROM ledger_transfers t");
        assert_int_equal(q64(db, "SELECT count(*) FROM ledger_commands"), gs.commands);
        ledger_settler_destroy(st);
        ledger_db_close(db);
    }
    assert_int_equal(fingerprint[0], fingerprint[1]);
    assert_int_equal(fingerprint[0], fingerprint[2]);
    free_stream(&s);
}

static void test_redelivery_is_verified_and_skipped(void **state)
{
    (void)state;
    stream s;
    ledger_gen_stats gs;
    make_stream(&s, 3, 500, &gs);
    ledger_db *db = fresh_db();
    sync_markets(db);
    ledger_settler *st = ledger_settler_create(8192);
    uint32_t half = s.n_cmds / 2;
    settle_range(st, db, &s, 0, half, 500);
    int64_t transfers = q64(db, "SELECT count(*) FROM ledger_transfers");
    /* everything again from the start: the first half is redelivered */
    char err[512];
    ledger_batch_result res;
    uint32_t end = s.cmd_start[half];
    assert_int_equal(ledger_settle(st, db, s.recs, end, 0, &res, err, sizeof err), LEDGER_OK);
    assert_int_equal(res.dup_commands, half);
    assert_int_equal(res.new_commands, 0);
    assert_int_equal(q64(db, "SELECT count(*) FROM ledger_transfers"), transfers);
    /* a batch straddling the position: old part skipped, new part settled */
    settle_range(st, db, &s, half / 2, s.n_cmds, 3000);
    assert_int_equal(q64(db, "SELECT count(*) FROM ledger_trades"), gs.trades);
    assert_int_equal(q64(db, "SELECT last_seq FROM ledger_position"), gs.commands);
    assert_check_ok(db);
    ledger_settler_destroy(st);
    ledger_db_close(db);
    free_stream(&s);
}

/* Index of the first command (from c) holding an event of type t. */
static uint32_t find_cmd(const stream *s, uint32_t c, uint16_t t, uint32_t *rec)
{
    for (; c < s->n_cmds; c++) {
        uint32_t end = c + 1 < s->n_cmds ? s->cmd_start[c + 1] : s->n;
        for (uint32_t i = s->cmd_start[c]; i < end; i++)
            if (s->recs[i].ev.type == t) {
                *rec = i;
                return c;
            }
    }
    fail_msg("no event of type %u", t);
    return 0;
}

static void test_conflicting_duplicate_stops(void **state)
{
    (void)state;
    stream s;
    ledger_gen_stats gs;
    make_stream(&s, 5, 300, &gs);
    ledger_db *db = fresh_db();
    sync_markets(db);
    ledger_settler *st = ledger_settler_create(8192);
    settle_range(st, db, &s, 0, s.n_cmds, 2000);
    int64_t trades = q64(db, "SELECT count(*) FROM ledger_trades");
    int64_t commands = q64(db, "SELECT count(*) FROM ledger_commands");
    char err[512];
    ledger_batch_result res;
    /* a settled BALANCE with another held amount */
    uint32_t r = 0, c = find_cmd(&s, 10, MATCHER_EV_BALANCE, &r);
    uint32_t end = c + 1 < s.n_cmds ? s.cmd_start[c + 1] : s.n;
    ledger_rec *copy = malloc(sizeof *copy * (end - s.cmd_start[c]));
    memcpy(copy, s.recs + s.cmd_start[c], sizeof *copy * (end - s.cmd_start[c]));
    copy[r - s.cmd_start[c]].ev.u.balance.held_micros ^= 1;
    if (copy[r - s.cmd_start[c]].ev.u.balance.held_micros > copy[r - s.cmd_start[c]].ev.u.balance.balance_micros)
        copy[r - s.cmd_start[c]].ev.u.balance.held_micros = 0;
    assert_int_equal(ledger_settle(st, db, copy, end - s.cmd_start[c], 0, &res, err, sizeof err),
                     LEDGER_ERR_CONFLICT);
    assert_non_null(strstr(err, "CONFLICT"));
    /* the same for a command in a later batch (another digest row), sent
     * together with its redelivered, unchanged predecessors */
    c = find_cmd(&s, s.n_cmds - s.n_cmds / 4, MATCHER_EV_BALANCE, &r);
    end = c + 1 < s.n_cmds ? s.cmd_start[c + 1] : s.n;
    uint32_t from = s.cmd_start[c > 40 ? c - 40 : 0];
    ledger_rec *late = malloc(sizeof *late * (end - from));
    memcpy(late, s.recs + from, sizeof *late * (end - from));
    late[r - from].ev.u.balance.balance_micros += 1;
    assert_int_equal(ledger_settle(st, db, late, end - from, 0, &res, err, sizeof err),
                     LEDGER_ERR_CONFLICT);
    char want[64];
    snprintf(want, sizeof want, "seq %" PRIu64 " ", s.recs[r].seq);
    assert_non_null(strstr(err, want));
    free(late);
    /* a settled account with another name */
    c = find_cmd(&s, 0, MATCHER_EV_ACCOUNT, &r);
    ledger_rec acc = s.recs[r];
    snprintf(acc.name, sizeof acc.name, "mallory");
    assert_int_equal(ledger_settle(st, db, &acc, 1, 0, &res, err, sizeof err), LEDGER_ERR_CONFLICT);
    /* seq 0 is not a journal sequence */
    ledger_rec ghost = s.recs[r];
    ghost.seq = 0;
    assert_int_equal(ledger_settle(st, db, &ghost, 1, 0, &res, err, sizeof err), LEDGER_ERR_INVALID);
    /* nothing changed */
    assert_int_equal(q64(db, "SELECT count(*) FROM ledger_trades"), trades);
    assert_int_equal(q64(db, "SELECT count(*) FROM ledger_commands"), commands);
    assert_int_equal(q64(db, "SELECT last_seq FROM ledger_position"), gs.commands);
    assert_check_ok(db);
    free(copy);
    ledger_settler_destroy(st);
    ledger_db_close(db);
    free_stream(&s);
}

static void test_bad_batch_changes_nothing(void **state)
{
    (void)state;
    stream s;
    ledger_gen_stats gs;
    make_stream(&s, 9, 200, &gs);
    ledger_db *db = fresh_db();
    sync_markets(db);
    ledger_settler *st = ledger_settler_create(65536);
    uint32_t half = s.n_cmds / 2;
    settle_range(st, db, &s, 0, half, 1000);
    int64_t pos = q64(db, "SELECT last_seq FROM ledger_position");
    int64_t transfers = q64(db, "SELECT count(*) FROM ledger_transfers");
    char err[512];
    ledger_batch_result res;
    uint32_t first = s.cmd_start[half], n = s.n - first;
    ledger_rec *b = malloc(sizeof *b * n);
    /* 1. a trade whose notional is not price x qty x hours, at the end */
    memcpy(b, s.recs + first, sizeof *b * n);
    uint32_t r = 0;
    find_cmd(&s, s.n_cmds - 50, MATCHER_EV_TRADE, &r);
    b[r - first].ev.u.fill.notional_micros += 1;
    b[r - first + 1].ev.u.fill.notional_micros += 1; /* its LEASE too */
    assert_int_equal(ledger_settle(st, db, b, n, 0, &res, err, sizeof err), LEDGER_ERR_INVALID);
    assert_non_null(strstr(err, "notional"));
    /* 2. records out of order */
    memcpy(b, s.recs + first, sizeof *b * n);
    ledger_rec t = b[n - 1];
    b[n - 1] = b[n - 2];
    b[n - 2] = t;
    if (b[n - 1].seq != b[n - 2].seq || b[n - 1].idx != b[n - 2].idx)
        assert_int_equal(ledger_settle(st, db, b, n, 0, &res, err, sizeof err), LEDGER_ERR_INVALID);
    /* 3. a withdrawal the ledger cannot cover: the CHECK rolls back all */
    memcpy(b, s.recs + first, sizeof *b * n);
    ledger_rec w;
    memset(&w, 0, sizeof w);
    w.seq = s.recs[s.n - 1].seq + 1;
    w.ev.type = MATCHER_EV_WITHDRAWAL;
    w.ev.cmd_type = MATCHER_CMD_WITHDRAW;
    w.ev.u.transfer.account = 1;
    w.ev.u.transfer.amount_micros = MATCHER_MAX_AMOUNT_MICROS;
    ledger_rec *b2 = malloc(sizeof *b2 * (n + 1));
    memcpy(b2, b, sizeof *b * n);
    b2[n] = w;
    assert_int_equal(ledger_settle(st, db, b2, n + 1, 0, &res, err, sizeof err), LEDGER_ERR_INVALID);
    /* 4. the last trade names a buyer the ledger never saw: only the
     * server can tell (the trade trigger's reference check), after the
     * batch's rows were copied; all rolls back */
    memcpy(b, s.recs + first, sizeof *b * n);
    find_cmd(&s, s.n_cmds - 50, MATCHER_EV_TRADE, &r);
    b[r - first].ev.u.fill.buyer = 4000000;
    b[r - first + 1].ev.u.fill.buyer = 4000000;
    assert_int_equal(ledger_settle(st, db, b, n, 0, &res, err, sizeof err), LEDGER_ERR_INVALID);
    assert_non_null(strstr(err, "unknown"));
    /* nothing of any bad batch was kept */
    assert_int_equal(q64(db, "SELECT last_seq FROM ledger_position"), pos);
    assert_int_equal(q64(db, "SELECT count(*) FROM ledger_transfers"), transfers);
    assert_check_ok(db);
    /* and the good remainder still settles */
    assert_int_equal(ledger_settle(st, db, s.recs + first, n, 0, &res, err, sizeof err), LEDGER_OK);
    assert_int_equal(q64(db, "SELECT count(*) FROM ledger_trades"), gs.trades);
    assert_check_ok(db);
    free(b);
    free(b2);
    ledger_settler_destroy(st);
    ledger_db_close(db);
    free_stream(&s);
}

static void test_check_catches_tampering(void **state)
{
    (void)state;
    stream s;
    ledger_gen_stats gs;
    make_stream(&s, 11, 60, &gs);
    char err[512];
    FILE *devnull = fopen("/dev/null", "w");
    static const char *const tamper[] = {
        "UPDATE ledger_accounts SET balance_micros = balance_micros + 1 WHERE account_id = 1",
        /* a trade's fee leg changed (sql/003: the leg is the row's field) */
        "UPDATE ledger_trades SET buyer_fee_micros = buyer_fee_micros - 1 WHERE trade_id ="
        " (SELECT min(trade_id) FROM ledger_trades WHERE buyer_fee_micros > 0)",
        "DELETE FROM ledger_matcher_balances WHERE account_id = 2",
        "UPDATE ledger_position SET last_seq = (SELECT seq FROM ledger_trades WHERE trade_id = 2) - 1",
        "DELETE FROM ledger_trades WHERE trade_id = 3",
        /* a duplicate trade written around the id trigger (and a removed
         * one, so the count still equals the largest id) */
        "SET session_replication_role = replica;"
        " INSERT INTO ledger_trades SELECT * FROM ledger_trades WHERE trade_id = 1;"
        " DELETE FROM ledger_trades WHERE trade_id = 2; SET session_replication_role = origin",
        /* check recomputes from the rows, never trusting the legs view */
        "ALTER VIEW ledger_transfers RENAME TO legs_orig;"
        " CREATE VIEW ledger_transfers AS SELECT * FROM legs_orig WHERE kind <> 'provider_fee'",
    };
    for (size_t i = 0; i < sizeof tamper / sizeof tamper[0]; i++) {
        ledger_db *db = fresh_db();
        sync_markets(db);
        ledger_settler *st = ledger_settler_create(8192);
        settle_range(st, db, &s, 0, s.n_cmds, 8192);
        assert_check_ok(db);
        ledger_status ts = ledger_db_query_i64(db, tamper[i], NULL, err, sizeof err);
        if (ts != LEDGER_OK) fail_msg("tamper %zu: %s", i, err);
        assert_int_equal(ledger_check(db, devnull, err, sizeof err), LEDGER_ERR_INVALID);
        ledger_settler_destroy(st);
        ledger_db_close(db);
    }
    fclose(devnull);
    free_stream(&s);
}

static void test_migrations(void **state)
{
    (void)state;
    ledger_db *db = fresh_db();
    char err[512];
    int applied = -1;
    assert_int_equal(ledger_db_migrate(db, sql_dir, &applied, err, sizeof err), LEDGER_OK);
    assert_int_equal(applied, 0);
    /* an applied migration that changed is refused */
    char tmp[] = "/tmp/gpux-test-sql-XXXXXX", cmd[1024];
    assert_non_null(mkdtemp(tmp));
    snprintf(cmd, sizeof cmd, "cp %s/*.sql %s/ && echo '-- edited' >> %s/001_ledger_init.sql", sql_dir, tmp, tmp);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(ledger_db_migrate(db, tmp, &applied, err, sizeof err), LEDGER_ERR_FATAL);
    assert_non_null(strstr(err, "changed"));
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    assert_int_equal(system(cmd), 0);
    /* the views operators use exist with the columns operations.md names */
    assert_int_equal(q64(db, "SELECT count(*) FROM (SELECT account_id, name, balance_micros FROM gpux_balances) v"), 1);
    assert_int_equal(q64(db, "SELECT count(*) FROM (SELECT trade_id, seq, buyer_id, provider_id, gpu, region,"
                             " start_at, end_at, qty, price_micros, notional_micros, buyer_fee_micros,"
                             " provider_fee_micros FROM gpux_trades) v"), 0);
    ledger_db_close(db);
}

static void test_event_file_round_trip(void **state)
{
    (void)state;
    stream s;
    ledger_gen_stats gs;
    make_stream(&s, 13, 300, &gs);
    FILE *f = tmpfile();
    assert_non_null(f);
    for (uint32_t m = 0; m < cat.n_markets; m++) ledger_evfile_write_market(f, m, &cat.markets[m]);
    for (uint32_t i = 0; i < s.n; i++) {
        if (s.recs[i].ev.type == MATCHER_EV_ACCOUNT && s.recs[i].ev.u.account.account == 3)
            snprintf(s.recs[i].name, sizeof s.recs[i].name, "a b%%c\\d"); /* needs escaping */
        ledger_evfile_write(f, &s.recs[i]);
    }
    rewind(f);
    static matcher_catalog got_cat;
    memset(&got_cat, 0, sizeof got_cat);
    ledger_evreader rd = {.f = f};
    uint32_t max = 64, seen = 0;
    ledger_rec *buf = malloc(sizeof *buf * max);
    char err[256];
    long n;
    while ((n = ledger_evfile_read(&rd, buf, max, &got_cat, err, sizeof err)) > 0) {
        /* whole commands only */
        assert_true(seen + (uint32_t)n == s.n || buf[n - 1].seq != s.recs[seen + (uint32_t)n].seq);
        for (long i = 0; i < n; i++) {
            const ledger_rec *a = &buf[i], *b = &s.recs[seen + (uint32_t)i];
            assert_int_equal(a->seq, b->seq);
            assert_int_equal(ledger_digest(a, 1), ledger_digest(b, 1));
        }
        seen += (uint32_t)n;
    }
    if (n < 0) fail_msg("read: %s", err);
    assert_int_equal(seen, s.n);
    assert_int_equal(got_cat.n_markets, cat.n_markets);
    fclose(f);
    /* a bad line is an error naming it */
    f = tmpfile();
    fputs("M 0 H100 us-east 8 100\nE 1 0 CLOCK 7 0 5\nE 2 0 DEPOSIT 2 0 1 notanumber\n", f);
    rewind(f);
    memset(&rd, 0, sizeof rd);
    rd.f = f;
    assert_int_equal(ledger_evfile_read(&rd, buf, max, &got_cat, err, sizeof err), -1);
    assert_non_null(strstr(err, "line 3"));
    fclose(f);
    free(buf);
    free_stream(&s);
}

/* The rows of a small ledger as the settlers of 001 and 002 stored them:
 * seq 1, 2 accounts; 3 a deposit; 4 one command with two trades: trade 1
 * (2 GPUs x 3 h at 1000, fees 60 + 30: legs 0, 1, 2) and trade 2 (1 GPU x
 * 2 h at 500, no buyer fee, provider fee 10: legs 3, 4); 5 the matcher's
 * balances. The legs are numbered across the command's trades. */
#define OLD_ROWS_COMMON                                                                     \
    "INSERT INTO ledger_accounts (account_id, kind, roles, created_seq, balance_micros) VALUES" \
    " (1, 'user', 3, 1, 999992940), (2, 'user', 3, 2, 6960);"                               \
    "UPDATE ledger_accounts SET balance_micros = -1000000000 WHERE account_id = -1;"         \
    "UPDATE ledger_accounts SET balance_micros = 100 WHERE account_id = 0;"                  \
    "INSERT INTO ledger_cash VALUES (3, 'deposit', 1, 1000000000, 0);"                       \
    "INSERT INTO ledger_transfers VALUES (3, 0, 'deposit', -1, 1, 1000000000, NULL);"        \
    "INSERT INTO ledger_trades VALUES (1, 4, 10, 11, 1, 2, 0, 1, 1000, 2, 0, 3, 6000, 60, 30, 0, 0),"  \
    " (2, 4, 12, 13, 1, 2, 0, 1, 500, 1, 0, 2, 1000, 0, 10, 0, 0);"                          \
    "INSERT INTO ledger_transfers VALUES (4, 0, 'trade', 1, 2, 6000, 1),"                    \
    " (4, 1, 'buyer_fee', 1, 0, 60, 1), (4, 2, 'provider_fee', 2, 0, 30, 1),"               \
    " (4, 3, 'trade', 1, 2, 1000, 2), (4, 4, 'provider_fee', 2, 0, 10, 2);"                  \
    "INSERT INTO ledger_matcher_balances VALUES (0, 100, 0, 5), (1, 999992940, 0, 5), (2, 6960, 0, 5);" \
    "UPDATE ledger_position SET last_seq = 5, matcher_seq = 5;"

#define TRANSFERS_FINGERPRINT \
    "SELECT sum(hashtext(t::text)::bigint) FROM (SELECT * FROM ledger_transfers ORDER BY seq, leg) t"

/* A temp directory holding the given migration files of sql/. */
static void sql_subset(char *dir, const char *files)
{
    char cmd[1024];
    assert_non_null(mkdtemp(dir));
    snprintf(cmd, sizeof cmd, "cd %s && cp %s %s/", sql_dir, files, dir);
    assert_int_equal(system(cmd), 0);
}

static void rm_dir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* After the upgrade: every row intact, the legs presented exactly as they
 * were stored (same seq, leg, kind, accounts, amount), all checks hold. */
static void assert_upgraded(ledger_db *db, int64_t legs_before)
{
    assert_int_equal(q64(db, "SELECT count(*) FROM pg_views WHERE viewname = 'ledger_leases'"), 1);
    assert_int_equal(q64(db, "SELECT count(*) FROM pg_views WHERE viewname = 'ledger_transfers'"), 1);
    assert_int_equal(q64(db, "SELECT count(*) FROM gpux_leases WHERE qty = 2 AND price_micros = 1000"), 1);
    assert_int_equal(q64(db, "SELECT count(*) FROM ledger_commands"), 5);
    assert_int_equal(q64(db, "SELECT digest FROM ledger_commands WHERE seq = 4"), -14);
    assert_int_equal(q64(db, "SELECT n_events FROM ledger_commands WHERE seq = 5"), 4);
    assert_int_equal(q64(db, "SELECT count(*) FROM ledger_transfers"), 6);
    assert_int_equal(q64(db, TRANSFERS_FINGERPRINT), legs_before);
    assert_int_equal(q64(db, "SELECT sum(amount_micros) FROM gpux_fees"), 100);
    assert_check_ok(db);
}

/* 003 refused to fold stored transfers that differ from their rows: the
 * database stays at the given version with its transfers table and every
 * leg as it was. */
static void assert_legs_upgrade_refused(ledger_db *db, ledger_status ms, const char *err,
                                        int64_t version, int64_t legs_before)
{
    assert_int_not_equal(ms, LEDGER_OK);
    assert_non_null(strstr(err, "transfer differs"));
    assert_int_equal(q64(db, "SELECT max(version) FROM ledger_migrations"), version);
    assert_int_equal(q64(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'ledger_transfers'"), 1);
    assert_int_equal(q64(db, TRANSFERS_FINGERPRINT), legs_before);
}

/* A database of the first schema (001 only: a row per lease, per command
 * digest and per transfer, as the settler of 001 wrote them) is brought up
 * to date by 002 and 003 with every trade, leg, balance and digest intact;
 * one whose stored lease differs from its trade is refused by 002, one
 * whose stored transfer differs from its trade's legs by 003, each leaving
 * the database as it was. */
static void test_upgrade_from_001(void **state)
{
    (void)state;
    char only001[] = "/tmp/gpux-test-sql-XXXXXX", err[512];
    sql_subset(only001, "001_*.sql");
    static const char *const rows_001 = OLD_ROWS_COMMON
        "INSERT INTO ledger_leases VALUES (1, 1, 2, 0, 0, 3, 2, 1000), (2, 1, 2, 0, 0, 2, 1, 500);"
        "INSERT INTO ledger_commands VALUES (1, 1, 11), (2, 1, 12), (3, 2, 13), (4, 5, -14), (5, 4, 15);";
    for (int tamper = 0; tamper < 3; tamper++) {
        ledger_db *db = fresh_db_from(only001);
        sync_markets(db);
        assert_int_equal(q64(db, "SELECT count(*) FROM ledger_migrations"), 1);
        if (ledger_db_query_i64(db, rows_001, NULL, err, sizeof err) != LEDGER_OK)
            fail_msg("001 rows: %s", err);
        if (tamper == 1) q64(db, "WITH l AS (UPDATE ledger_leases SET qty = 3 WHERE lease_id = 1"
                                 " RETURNING 1) SELECT count(*) FROM l");
        if (tamper == 2) q64(db, "WITH l AS (UPDATE ledger_transfers SET amount_micros = 11"
                                 " WHERE seq = 4 AND leg = 4 RETURNING 1) SELECT count(*) FROM l");
        int64_t legs_before = q64(db, TRANSFERS_FINGERPRINT);
        int applied = -1;
        ledger_status ms = ledger_db_migrate(db, sql_dir, &applied, err, sizeof err);
        if (tamper == 1) {
            assert_int_not_equal(ms, LEDGER_OK);
            assert_non_null(strstr(err, "lease differs"));
            assert_int_equal(q64(db, "SELECT count(*) FROM ledger_migrations"), 1);
            assert_int_equal(q64(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'ledger_leases'"), 1);
            assert_int_equal(q64(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'ledger_commands'"), 1);
        } else if (tamper == 2) {
            assert_legs_upgrade_refused(db, ms, err, 2, legs_before);
        } else {
            if (ms != LEDGER_OK) fail_msg("upgrade: %s", err);
            assert_true(applied >= 2);
            assert_upgraded(db, legs_before);
        }
        ledger_db_close(db);
    }
    rm_dir(only001);
}

/* The same from a database of the second schema (001 + 002: leases and
 * command digests already folded, a stored row per transfer, as last
 * session's settler wrote it): 003 keeps every leg as it was, or refuses a
 * database whose stored legs differ from their rows (a missing fee leg, an
 * extra leg) and leaves it as it was. */
static void test_upgrade_from_002(void **state)
{
    (void)state;
    char upto002[] = "/tmp/gpux-test-sql-XXXXXX", err[512];
    sql_subset(upto002, "001_*.sql 002_*.sql");
    static const char *const rows_002 = OLD_ROWS_COMMON
        "INSERT INTO ledger_command_batches VALUES (1, 5, '{1,2,3,4,5}', '{1,1,2,5,4}',"
        " '{11,12,13,-14,15}');";
    static const char *const tampers[] = {
        NULL,
        "DELETE FROM ledger_transfers WHERE seq = 4 AND leg = 1",
        "INSERT INTO ledger_transfers VALUES (4, 5, 'buyer_fee', 1, 0, 1, 2)",
    };
    for (size_t i = 0; i < sizeof tampers / sizeof tampers[0]; i++) {
        ledger_db *db = fresh_db_from(upto002);
        sync_markets(db);
        assert_int_equal(q64(db, "SELECT count(*) FROM ledger_migrations"), 2);
        if (ledger_db_query_i64(db, rows_002, NULL, err, sizeof err) != LEDGER_OK)
            fail_msg("002 rows: %s", err);
        if (tampers[i] && ledger_db_query_i64(db, tampers[i], NULL, err, sizeof err) != LEDGER_OK)
            fail_msg("tamper %zu: %s", i, err);
        int64_t legs_before = q64(db, TRANSFERS_FINGERPRINT);
        int applied = -1;
        ledger_status ms = ledger_db_migrate(db, sql_dir, &applied, err, sizeof err);
        if (tampers[i]) {
            assert_legs_upgrade_refused(db, ms, err, 2, legs_before);
        } else {
            if (ms != LEDGER_OK) fail_msg("upgrade: %s", err);
            assert_true(applied >= 1);
            assert_upgraded(db, legs_before);
        }
        ledger_db_close(db);
    }
    rm_dir(upto002);
}

/* The command digests of 002 (one row per batch) keep a seq recorded at
 * most once and every digest whole: overlapping batches, unordered seqs,
 * mismatched or NULL entries are refused by the schema itself. */
static void test_command_batches_constraints(void **state)
{
    (void)state;
    ledger_db *db = fresh_db();
    char err[512];
    assert_int_equal(ledger_db_query_i64(db,
        "INSERT INTO ledger_command_batches VALUES (10, 30, '{10,20,30}', '{1,2,3}', '{7,8,9}')",
        NULL, err, sizeof err), LEDGER_OK);
    static const char *const bad[] = {
        "INSERT INTO ledger_command_batches VALUES (30, 40, '{30,40}', '{1,1}', '{1,2}')",   /* overlap */
        "INSERT INTO ledger_command_batches VALUES (5, 12, '{5,12}', '{1,1}', '{1,2}')",     /* overlap */
        "INSERT INTO ledger_command_batches VALUES (40, 50, '{40,45,45,50}', '{1,1,1,1}', '{1,2,3,4}')",
        "INSERT INTO ledger_command_batches VALUES (40, 50, '{40,47,46,50}', '{1,1,1,1}', '{1,2,3,4}')",
        "INSERT INTO ledger_command_batches VALUES (40, 50, '{40,50}', '{1}', '{1,2}')",
        "INSERT INTO ledger_command_batches VALUES (40, 50, '{40,50}', '{1,0}', '{1,2}')",
        "INSERT INTO ledger_command_batches VALUES (40, 50, '{40,50}', '{1,NULL}', '{1,2}')",
        "INSERT INTO ledger_command_batches VALUES (40, 50, '{40,50}', '{1,1}', '{1,NULL}')",
        "INSERT INTO ledger_command_batches VALUES (40, 50, '{40,NULL,50}', '{1,1,1}', '{1,2,3}')",
        "INSERT INTO ledger_command_batches VALUES (40, 51, '{40,50}', '{1,1}', '{1,2}')",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ledger_status rs = ledger_db_query_i64(db, bad[i], NULL, err, sizeof err);
        if (rs != LEDGER_ERR_INVALID) fail_msg("statement %zu was not refused (%s): %s", i,
                                               ledger_status_name(rs), err);
    }
    assert_int_equal(q64(db, "SELECT count(*) FROM ledger_commands"), 3);
    assert_int_equal(q64(db, "SELECT digest FROM ledger_commands WHERE seq = 20"), 8);
    ledger_db_close(db);
}

/* The set-based reference checks (sql/002) still refuse every row that
 * names an account or market that does not exist, alone or hidden among
 * good rows, and the statement changes nothing; a transfer leg cannot be
 * written on its own (sql/003: legs live in their trade or cash row). */
static void test_reference_checks(void **state)
{
    (void)state;
    stream s;
    ledger_gen_stats gs;
    make_stream(&s, 23, 100, &gs);
    ledger_db *db = fresh_db();
    sync_markets(db);
    ledger_settler *st = ledger_settler_create(8192);
    settle_range(st, db, &s, 0, s.n_cmds, 8192);
    int64_t transfers = q64(db, "SELECT count(*) FROM ledger_transfers");
    int64_t trades = q64(db, "SELECT count(*) FROM ledger_trades");
    static const char *const bad[] = {
        /* a trade with an unknown market, one with an unknown provider */
        "INSERT INTO ledger_trades SELECT 900000003, seq, buy_order_id, sell_order_id, buyer_id,"
        " provider_id, 1000, taker_side, price_micros, qty, start_hour, end_hour, notional_micros,"
        " buyer_fee_micros, provider_fee_micros, saving_micros, ts_us FROM ledger_trades WHERE trade_id = 1",
        "INSERT INTO ledger_trades SELECT 900000004, seq, buy_order_id, sell_order_id, buyer_id,"
        " 424244, market_id, taker_side, price_micros, qty, start_hour, end_hour, notional_micros,"
        " buyer_fee_micros, provider_fee_micros, saving_micros, ts_us FROM ledger_trades WHERE trade_id = 1",
        "INSERT INTO ledger_cash VALUES (900000005, 'deposit', 424245, 5, 0)",
        "INSERT INTO ledger_matcher_balances VALUES (424246, 0, 0, 1)",
    };
    char err[512];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ledger_status rs = ledger_db_query_i64(db, bad[i], NULL, err, sizeof err);
        if (rs != LEDGER_ERR_INVALID) fail_msg("statement %zu was not refused (%s): %s", i,
                                               ledger_status_name(rs), err);
        assert_non_null(strstr(err, "unknown"));
    }
    /* a leg cannot be written apart from its trade or cash row (sql/003) */
    ledger_status rs = ledger_db_query_i64(db,
        "INSERT INTO ledger_transfers VALUES (900000001, 0, 'deposit', -1, 1, 5, NULL)",
        NULL, err, sizeof err);
    assert_int_not_equal(rs, LEDGER_OK);
    assert_int_equal(q64(db, "SELECT count(*) FROM ledger_transfers"), transfers);
    assert_int_equal(q64(db, "SELECT count(*) FROM ledger_trades"), trades);
    assert_check_ok(db);
    ledger_settler_destroy(st);
    ledger_db_close(db);
    free_stream(&s);
}

/* Trade ids stay unique without a b-tree (sql/003: a high-water mark
 * raised by each statement): an id already settled, an id twice in one
 * statement, and renumbering are refused and change nothing; a fresh id
 * above the mark is accepted. */
static void test_trade_ids_unique(void **state)
{
    (void)state;
    stream s;
    ledger_gen_stats gs;
    make_stream(&s, 29, 100, &gs);
    ledger_db *db = fresh_db();
    sync_markets(db);
    ledger_settler *st = ledger_settler_create(8192);
    settle_range(st, db, &s, 0, s.n_cmds, 8192);
    int64_t trades = q64(db, "SELECT count(*) FROM ledger_trades");
    assert_int_equal(q64(db, "SELECT max_trade_id FROM ledger_trade_ids"), trades);
#define TRADE_COPY(id) "SELECT " id ", seq, buy_order_id, sell_order_id, buyer_id, provider_id," \
    " market_id, taker_side, price_micros, qty, start_hour, end_hour, notional_micros,"          \
    " buyer_fee_micros, provider_fee_micros, saving_micros, ts_us FROM ledger_trades"
    static const char *const bad[] = {
        /* trade 1 again, alone and after a new id in the same statement */
        "INSERT INTO ledger_trades " TRADE_COPY("trade_id") " WHERE trade_id = 1",
        "INSERT INTO ledger_trades " TRADE_COPY("trade_id + 1000000") " WHERE trade_id = 2"
        " UNION ALL " TRADE_COPY("trade_id") " WHERE trade_id = 1",
        /* the last settled trade again */
        "INSERT INTO ledger_trades " TRADE_COPY("trade_id") " WHERE trade_id = (SELECT max(trade_id) FROM ledger_trades)",
        /* one new id twice in one statement */
        "INSERT INTO ledger_trades " TRADE_COPY("1000000") " WHERE trade_id IN (1, 2)",
    };
    char err[512];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ledger_status rs = ledger_db_query_i64(db, bad[i], NULL, err, sizeof err);
        if (rs != LEDGER_ERR_INVALID) fail_msg("statement %zu was not refused (%s): %s", i,
                                               ledger_status_name(rs), err);
        assert_non_null(strstr(err, "trade id"));
    }
    /* renumbering could make two trades one id: refused */
    assert_int_not_equal(ledger_db_query_i64(db, "UPDATE ledger_trades SET trade_id = trade_id + 1"
                                                 " WHERE trade_id = 1", NULL, err, sizeof err), LEDGER_OK);
    assert_int_equal(q64(db, "SELECT count(*) FROM ledger_trades"), trades);
    assert_int_equal(q64(db, "SELECT max_trade_id FROM ledger_trade_ids"), trades);
    assert_check_ok(db);
    /* a fresh id above the mark goes in and raises it (rolled back after) */
    assert_true(trades < 5000);
    assert_int_equal(q64(db, "BEGIN; INSERT INTO ledger_trades " TRADE_COPY("trade_id + 5000")
                             " WHERE trade_id = 1; SELECT max_trade_id FROM ledger_trade_ids"), 5001);
    q64(db, "ROLLBACK; SELECT 1");
#undef TRADE_COPY
    assert_int_equal(q64(db, "SELECT max_trade_id FROM ledger_trade_ids"), trades);
    assert_int_equal(q64(db, "SELECT count(*) FROM ledger_trades"), trades);
    ledger_settler_destroy(st);
    ledger_db_close(db);
    free_stream(&s);
}

/* Command digests stored before sql/003 are FNV-1a (digest_alg 1), new ones
 * the faster MIX64 (2): a redelivery of a command settled under the old
 * algorithm is still verified against it (equal content is skipped,
 * changed content is a conflict), while the new commands of the same batch
 * are stored under the new one. */
static void test_redelivery_across_digest_algorithms(void **state)
{
    (void)state;
    stream s;
    ledger_gen_stats gs;
    make_stream(&s, 31, 300, &gs);
    ledger_db *db = fresh_db();
    sync_markets(db);
    ledger_settler *st = ledger_settler_create(65536);
    uint32_t half = s.n_cmds / 2;
    settle_range(st, db, &s, 0, half, 2000);
    /* turn the stored history into what the settler of 002 wrote: one row,
     * FNV-1a digests */
    size_t cap = (size_t)half * 80 + 256, len = 0;
    char *sql = malloc(cap);
    assert_non_null(sql);
    uint64_t first_seq = s.recs[0].seq, last_seq = s.recs[s.cmd_start[half - 1]].seq;
    len += (size_t)snprintf(sql + len, cap - len, "DELETE FROM ledger_command_batches;"
                            " INSERT INTO ledger_command_batches VALUES (%" PRIu64 ", %" PRIu64 ", '{",
                            first_seq, last_seq);
    for (int part = 0; part < 3; part++) {
        for (uint32_t c = 0; c < half; c++) {
            uint32_t a = s.cmd_start[c], n = s.cmd_start[c + 1] - a;
            int64_t v = part == 0 ? (int64_t)s.recs[a].seq : part == 1 ? (int64_t)n
                      : (int64_t)ledger_digest_alg(s.recs + a, n, LEDGER_DIGEST_FNV1A);
            len += (size_t)snprintf(sql + len, cap - len, "%s%" PRId64, c ? "," : "", v);
        }
        len += (size_t)snprintf(sql + len, cap - len, part < 2 ? "}', '{" : "}', 1)");
    }
    assert_true(len < cap);
    char err[512];
    if (ledger_db_query_i64(db, sql, NULL, err, sizeof err) != LEDGER_OK) fail_msg("rewrite: %s", err);
    free(sql);
    assert_int_equal(q64(db, "SELECT count(*) FROM ledger_commands WHERE digest_alg = 1"), half);
    /* a batch straddling the position: the old half verified by FNV-1a and
     * skipped, the rest settled and stored under MIX64 */
    uint32_t from = half / 2;
    ledger_batch_result res;
    assert_int_equal(ledger_settle(st, db, s.recs + s.cmd_start[from], s.n - s.cmd_start[from], 0,
                                   &res, err, sizeof err), LEDGER_OK);
    assert_int_equal(res.dup_commands, half - from);
    assert_int_equal(res.new_commands, s.n_cmds - half);
    assert_int_equal(q64(db, "SELECT count(*) FROM ledger_commands WHERE digest_alg = 2"), s.n_cmds - half);
    assert_int_equal(q64(db, "SELECT count(*) FROM ledger_trades"), gs.trades);
    assert_check_ok(db);
    /* an old command redelivered with other content: a conflict, whichever
     * algorithm holds it */
    for (uint32_t c = 1; c < s.n_cmds; c += s.n_cmds - 2) {
        uint32_t a = s.cmd_start[c], n = (c + 1 < s.n_cmds ? s.cmd_start[c + 1] : s.n) - a;
        ledger_rec *copy = malloc(sizeof *copy * n);
        memcpy(copy, s.recs + a, sizeof *copy * n);
        copy[0].ev.ts_us += 1;
        assert_int_equal(ledger_settle(st, db, copy, n, 0, &res, err, sizeof err), LEDGER_ERR_CONFLICT);
        free(copy);
    }
    assert_int_equal(q64(db, "SELECT count(*) FROM ledger_commands"), s.n_cmds);
    ledger_settler_destroy(st);
    ledger_db_close(db);
    free_stream(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_stream_settles_exactly),
        cmocka_unit_test(test_batch_size_does_not_matter),
        cmocka_unit_test(test_redelivery_is_verified_and_skipped),
        cmocka_unit_test(test_conflicting_duplicate_stops),
        cmocka_unit_test(test_bad_batch_changes_nothing),
        cmocka_unit_test(test_check_catches_tampering),
        cmocka_unit_test(test_migrations),
        cmocka_unit_test(test_upgrade_from_001),
        cmocka_unit_test(test_upgrade_from_002),
        cmocka_unit_test(test_command_batches_constraints),
        cmocka_unit_test(test_reference_checks),
        cmocka_unit_test(test_trade_ids_unique),
        cmocka_unit_test(test_redelivery_across_digest_algorithms),
        cmocka_unit_test(test_event_file_round_trip),
    };
    return cmocka_run_group_tests(tests, pg_start, pg_stop);
}
