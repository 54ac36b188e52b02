/* test_ledger_settle.c — the settlement core against a real PostgreSQL
 * (scripts/pgtmp.sh starts a throwaway cluster in a temp dir), fed with
 * event streams produced by the real matcher engine.
 *
 * Proves: a seeded engine stream settles to a ledger whose checks all hold
 * and whose trade count, fees and cash totals equal the engine's; batches
 * of any size give the same ledger; redelivery is verified and skipped; a
 * redelivered seq with other content is a conflict that writes nothing; a
 * bad event or a broken constraint rolls the whole batch back; migrations
 * are idempotent and an edited one is refused; a 001 database is upgraded
 * by 002 intact (and refused when its leases differ from its trades); the
 * set-based reference triggers refuse unknown accounts, markets and trades;
 * the command-digest batch rows refuse overlaps and malformed arrays;
 * `check` catches tampering; the event-file format round-trips. */
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
        "DELETE FROM ledger_transfers WHERE kind = 'buyer_fee' AND trade_id = 1",
        "DELETE FROM ledger_matcher_balances WHERE account_id = 2",
        "UPDATE ledger_position SET last_seq = (SELECT seq FROM ledger_trades WHERE trade_id = 2) - 1",
        "DELETE FROM ledger_transfers WHERE trade_id = 3; DELETE FROM ledger_trades WHERE trade_id = 3",
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

/* A database of the first schema (001 only: a row per lease and per
 * command digest, as the settler of 001 wrote them) is brought up to date
 * by 002 with every trade, transfer, balance and digest intact; one whose
 * stored lease differs from its trade is refused and left as it was. */
static void test_upgrade_from_001(void **state)
{
    (void)state;
    char only001[] = "/tmp/gpux-test-sql-XXXXXX", cmd[1024], err[512];
    assert_non_null(mkdtemp(only001));
    snprintf(cmd, sizeof cmd, "cp %s/001_ledger_init.sql %s/", sql_dir, only001);
    assert_int_equal(system(cmd), 0);
    /* seq 1, 2 accounts; 3 a deposit; 4 trade 1 (2 GPUs x 3 h at 1000,
     * fees 60 + 30); 5 the matcher's balances */
    static const char *const rows_001 =
        "INSERT INTO ledger_accounts (account_id, kind, roles, created_seq, balance_micros) VALUES"
        " (1, 'user', 3, 1, 999993940), (2, 'user', 3, 2, 5970);"
        "UPDATE ledger_accounts SET balance_micros = -1000000000 WHERE account_id = -1;"
        "UPDATE ledger_accounts SET balance_micros = 90 WHERE account_id = 0;"
        "INSERT INTO ledger_cash VALUES (3, 'deposit', 1, 1000000000, 0);"
        "INSERT INTO ledger_transfers VALUES (3, 0, 'deposit', -1, 1, 1000000000, NULL);"
        "INSERT INTO ledger_trades VALUES (1, 4, 10, 11, 1, 2, 0, 1, 1000, 2, 0, 3, 6000, 60, 30, 0, 0);"
        "INSERT INTO ledger_leases VALUES (1, 1, 2, 0, 0, 3, 2, 1000);"
        "INSERT INTO ledger_transfers VALUES (4, 0, 'trade', 1, 2, 6000, 1),"
        " (4, 1, 'buyer_fee', 1, 0, 60, 1), (4, 2, 'provider_fee', 2, 0, 30, 1);"
        "INSERT INTO ledger_matcher_balances VALUES (0, 90, 0, 5), (1, 999993940, 0, 5), (2, 5970, 0, 5);"
        "INSERT INTO ledger_commands VALUES (1, 1, 11), (2, 1, 12), (3, 2, 13), (4, 3, -14), (5, 4, 15);"
        "UPDATE ledger_position SET last_seq = 5, matcher_seq = 5";
    for (int tamper = 0; tamper < 2; tamper++) {
        ledger_db *db = fresh_db_from(only001);
        sync_markets(db);
        assert_int_equal(q64(db, "SELECT count(*) FROM ledger_migrations"), 1);
        if (ledger_db_query_i64(db, rows_001, NULL, err, sizeof err) != LEDGER_OK)
            fail_msg("001 rows: %s", err);
        if (tamper) q64(db, "WITH l AS (UPDATE ledger_leases SET qty = 3 WHERE lease_id = 1"
                            " RETURNING 1) SELECT count(*) FROM l");
        int applied = -1;
        ledger_status ms = ledger_db_migrate(db, sql_dir, &applied, err, sizeof err);
        if (tamper) {
            assert_int_not_equal(ms, LEDGER_OK);
            assert_non_null(strstr(err, "lease differs"));
            assert_int_equal(q64(db, "SELECT count(*) FROM ledger_migrations"), 1);
            assert_int_equal(q64(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'ledger_leases'"), 1);
            assert_int_equal(q64(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'ledger_commands'"), 1);
        } else {
            if (ms != LEDGER_OK) fail_msg("upgrade: %s", err);
            assert_true(applied >= 1);
            assert_int_equal(q64(db, "SELECT count(*) FROM pg_views WHERE viewname = 'ledger_leases'"), 1);
            assert_int_equal(q64(db, "SELECT count(*) FROM gpux_leases WHERE qty = 2 AND price_micros = 1000"), 1);
            assert_int_equal(q64(db, "SELECT count(*) FROM ledger_commands"), 5);
            assert_int_equal(q64(db, "SELECT digest FROM ledger_commands WHERE seq = 4"), -14);
            assert_int_equal(q64(db, "SELECT n_events FROM ledger_commands WHERE seq = 5"), 4);
            assert_int_equal(q64(db, "SELECT count(*) FROM ledger_transfers"), 4);
            assert_check_ok(db);
        }
        ledger_db_close(db);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", only001);
    assert_int_equal(system(cmd), 0);
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
 * names an account, market or trade that does not exist, alone or hidden
 * among good rows, and the statement changes nothing. */
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
        /* a good leg of an existing trade next to a leg of a trade that does not exist */
        "INSERT INTO ledger_transfers SELECT 900000000, 0, 'trade', buyer_id, provider_id, 1, trade_id"
        " FROM ledger_trades WHERE trade_id = 1 UNION ALL"
        " SELECT 900000000, 1, 'trade', buyer_id, provider_id, 1, 999999 FROM ledger_trades WHERE trade_id = 1",
        /* the same over a wide id range (the other plan of the check) */
        "INSERT INTO ledger_transfers SELECT 900000000, 0, 'trade', buyer_id, provider_id, 1, trade_id"
        " FROM ledger_trades WHERE trade_id = 1 UNION ALL"
        " SELECT 900000000, 1, 'trade', buyer_id, provider_id, 1, 5000000 FROM ledger_trades WHERE trade_id = 1",
        /* an unknown credit account */
        "INSERT INTO ledger_transfers VALUES (900000001, 0, 'deposit', -1, 424242, 5, NULL)",
        /* an unknown debit account among known ones */
        "INSERT INTO ledger_transfers VALUES (900000002, 0, 'deposit', -1, 1, 5, NULL),"
        " (900000002, 1, 'withdrawal', 424243, -1, 5, NULL)",
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
    assert_int_equal(q64(db, "SELECT count(*) FROM ledger_transfers"), transfers);
    assert_int_equal(q64(db, "SELECT count(*) FROM ledger_trades"), trades);
    assert_check_ok(db);
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
        cmocka_unit_test(test_command_batches_constraints),
        cmocka_unit_test(test_reference_checks),
        cmocka_unit_test(test_event_file_round_trip),
    };
    return cmocka_run_group_tests(tests, pg_start, pg_stop);
}
