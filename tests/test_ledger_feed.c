/* test_ledger_feed.c — gpux-ledger following the real gpux-matcher's event
 * feed (nng, include/gpux_wire.h) into a real PostgreSQL, with both
 * processes killed along the way.
 *
 * Proves: commands sent to a running matcher end up settled exactly once
 * (trade count equal to the TRADE events the matcher replied with, every
 * `check` invariant holding, ledger position = the matcher's seq); the
 * ledger records account names asked from the matcher; it survives a SIGKILL of the matcher (it waits, then resumes from the
 * restarted matcher's journal) and its own SIGKILL (it resumes from the
 * stored position); `check --cmd` finds it equal to the live matcher;
 * SIGTERM stops it with exit 0; a feed that no longer holds the events
 * the ledger needs stops it (exit 1) instead of being skipped. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "gpux_wire.h"
#include "ledger/ledger.h"

#define START_HOUR 491000

static const char *root, *bin;
static char dir[256], pg_url[700], sql_dir[512];
static char cmd_addr[300], feed_addr[300], pub_addr[300];
static pid_t matcher_pid, ledger_pid;
static const char *matcher_data = "matcher", *feed_events = "65536";
static nng_socket cmd_sock;
static uint64_t last_seq, trades_seen;
static uint64_t rng = 12345;

static uint64_t rnd(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static pid_t spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(log, "a", stderr);
        (void)f;
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static int open_cmd_sock(void)
{
    if (nng_req0_open(&cmd_sock) != 0) return -1;
    nng_socket_set_ms(cmd_sock, NNG_OPT_RECVTIMEO, 2000);
    nng_socket_set_ms(cmd_sock, NNG_OPT_SENDTIMEO, 2000);
    nng_socket_set_ms(cmd_sock, NNG_OPT_RECONNMAXT, 200);
    return nng_dial(cmd_sock, cmd_addr, NULL, NNG_FLAG_NONBLOCK) == 0 ? 0 : -1;
}

/* A fresh command socket for a (re)started matcher (its dialer retries
 * until the matcher listens). Why: nng 1.5's REQ leaked a request sent
 * while its pipe to a SIGKILLed matcher was still being torn down
 * (LeakSanitizer, san build, about one run in several); a new socket never
 * has such a pipe. */
static void reopen_cmd_sock(void)
{
    nng_close(cmd_sock);
    assert_int_equal(open_cmd_sock(), 0);
}

static void start_matcher(void)
{
    char exe[512], data[300], log[300];
    snprintf(exe, sizeof exe, "%s/gpux-matcher", bin);
    snprintf(data, sizeof data, "%s/%s", dir, matcher_data);
    snprintf(log, sizeof log, "%s/matcher.log", dir);
    char catalog[512];
    snprintf(catalog, sizeof catalog, "%s/matcher/catalog.default", root);
    char *argv[] = {exe, "--data", data, "--cmd", cmd_addr, "--pub", pub_addr, "--feed", feed_addr,
                    "--catalog", catalog, "--clock", "sim", "--max-accounts", "200",
                    "--max-orders", "20000", "--max-orders-per-market", "20000",
                    "--max-segments", "100000", "--history-orders", "1024", "--fills", "4096",
                    "--max-keys", "64", "--feed-events", (char *)feed_events, "--snapshot-every", "0",
                    "--snapshot-secs", "0", NULL};
    matcher_pid = spawn(argv, log);
    assert_true(matcher_pid > 0);
    reopen_cmd_sock();
}

static void start_ledger(void)
{
    char exe[512], log[300], catalog[512];
    snprintf(exe, sizeof exe, "%s/gpux-ledger", bin);
    snprintf(log, sizeof log, "%s/ledger.log", dir);
    snprintf(catalog, sizeof catalog, "%s/matcher/catalog.default", root);
    char *argv[] = {exe, "run", "--db", pg_url, "--sql-dir", sql_dir, "--feed", feed_addr,
                    "--cmd", cmd_addr,
                    "--catalog", catalog, "--batch", "300", "--poll-ms", "10",
                    "--log-every-ms", "-1", NULL};
    ledger_pid = spawn(argv, log);
    assert_true(ledger_pid > 0);
}

static int kill_wait(pid_t pid, int sig)
{
    kill(pid, sig);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

/* Sends one command, retrying while the matcher (re)starts. Returns the
 * reply status; counts TRADE events and remembers the seq. */
static int send_cmd(const wire_cmd *c)
{
    uint8_t buf[sizeof(wire_hdr) + sizeof(wire_cmd)];
    size_t len = wire_encode_cmd(buf, sizeof buf, c);
    assert_true(len > 0);
    for (int attempt = 0; attempt < 600; attempt++) {
        void *rbuf = NULL;
        size_t rlen = 0;
        int rv = nng_send(cmd_sock, buf, len, 0);
        if (rv == 0) rv = nng_recv(cmd_sock, &rbuf, &rlen, NNG_FLAG_ALLOC);
        if (rv != 0) {
            sleep_ms(50);
            continue;
        }
        wire_reply rep;
        wire_reader rd;
        char err[256];
        assert_int_equal(wire_decode_reply(rbuf, rlen, &rep, &rd, err, sizeof err), 0);
        if (rep.status == WIRE_ST_OK) {
            uint16_t type;
            wire_item item;
            while (wire_reader_next(&rd, &type, &item, err, sizeof err) == 1)
                if (type == WIRE_ITEM_EVENT && item.event.type == MATCHER_EV_TRADE) trades_seen++;
            assert_false(rep.flags & WIRE_REPLY_TRUNCATED);
            last_seq = rep.seq;
        }
        nng_free(rbuf, rlen);
        return rep.status;
    }
    fail_msg("matcher did not answer");
    return -1;
}

static void create_accounts(uint32_t n)
{
    wire_cmd c;
    memset(&c, 0, sizeof c);
    c.type = MATCHER_CMD_ADVANCE_CLOCK;
    c.clock_hour = START_HOUR;
    assert_int_equal(send_cmd(&c), WIRE_ST_OK);
    for (uint32_t a = 1; a <= n; a++) {
        memset(&c, 0, sizeof c);
        c.type = MATCHER_CMD_CREATE_ACCOUNT;
        c.roles = MATCHER_ROLE_BUYER | MATCHER_ROLE_PROVIDER;
        snprintf(c.name, sizeof c.name, "feed-user-%u", a);
        assert_int_equal(send_cmd(&c), WIRE_ST_OK);
        memset(&c, 0, sizeof c);
        c.type = MATCHER_CMD_DEPOSIT;
        c.account = a;
        c.amount_micros = 1000000LL * MATCHER_MICROS_PER_USD;
        assert_int_equal(send_cmd(&c), WIRE_ST_OK);
    }
}

/* Orders that cross often: offers and ioc/gtc bids around $2 on 2 markets. */
static void send_orders(uint32_t n, uint32_t accounts)
{
    for (uint32_t i = 0; i < n; i++) {
        wire_cmd c;
        memset(&c, 0, sizeof c);
        bool sell = rnd() % 2;
        c.type = MATCHER_CMD_NEW_ORDER;
        c.side = sell ? MATCHER_SELL : MATCHER_BUY;
        c.market = (uint32_t)(rnd() % 2);
        c.account = 1 + (uint32_t)(rnd() % accounts);
        c.qty = 8 * (int32_t)(1 + rnd() % 3);
        c.start_hour = START_HOUR + (int64_t)(rnd() % 4);
        if (sell) {
            c.end_hour = c.start_hour + 24;
            c.qty *= 2;
            c.price_micros = 2000000 + 100 * (int64_t)(rnd() % 10);
        } else {
            c.end_hour = c.start_hour + 1 + (int64_t)(rnd() % 8);
            c.price_micros = 2000500 + 100 * (int64_t)(rnd() % 10);
            c.min_qty = 8;
            c.tif = rnd() % 2 ? MATCHER_IOC : MATCHER_GTC;
        }
        int st = send_cmd(&c);
        assert_true(st == WIRE_ST_OK || st == WIRE_ST_REJECTED);
    }
}

static ledger_db *db_connect(void)
{
    char err[512];
    for (int i = 0; i < 100; i++) {
        ledger_db *db = ledger_db_connect(pg_url, err, sizeof err);
        if (db) return db;
        sleep_ms(100);
    }
    fail_msg("connect: %s", err);
    return NULL;
}

/* Why a wait failed, for a run nobody can repeat (CI): is the ledger
 * alive, and the end of both logs ("# " lines are not TAP results). */
static void explain_stall(const char *phase)
{
    int status = 0;
    pid_t done = ledger_pid > 0 ? waitpid(ledger_pid, &status, WNOHANG) : -1;
    fprintf(stderr, "# %s: ledger %s (status %d)\n", phase, done == 0 ? "running" : "gone", status);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "tail -n 40 %s/ledger.log %s/matcher.log | sed 's/^/# /' >&2", dir, dir);
    if (system(cmd) != 0) fprintf(stderr, "# no logs\n");
}

/* Waits (bounded: the ledger gives up on a socket after ~15 s) until the
 * ledger's log holds `text`. */
static void wait_ledger_log(const char *text)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "grep -q '%s' %s/ledger.log", text, dir);
    for (int i = 0; i < 400; i++) { /* up to ~40 s */
        if (system(cmd) == 0) return;
        sleep_ms(100);
    }
    explain_stall(text);
    fail_msg("the ledger never logged '%s'", text);
}

/* Waits (bounded) until the ledger settled through last_seq, then checks. */
static void assert_settled(const char *phase)
{
    ledger_db *db = db_connect();
    char err[512];
    uint64_t pos = 0, mseq = 0;
    for (int i = 0; i < 1200; i++) { /* up to ~2 min on a loaded box */
        ledger_status st = ledger_db_position(db, &pos, &mseq, err, sizeof err);
        if (st == LEDGER_OK && pos >= last_seq) break;
        sleep_ms(100);
    }
    if (pos != last_seq) {
        fprintf(stderr, "# %s: ledger at seq %" PRIu64 ", matcher replied seq %" PRIu64 "\n", phase, pos, last_seq);
        explain_stall(phase);
    }
    assert_int_equal(pos, last_seq);
    FILE *devnull = fopen("/dev/null", "w");
    ledger_status st = ledger_check(db, devnull, err, sizeof err);
    fclose(devnull);
    if (st != LEDGER_OK) {
        ledger_check(db, stderr, err, sizeof err);
        fail_msg("check: %s", err);
    }
    int64_t trades = -1;
    assert_int_equal(ledger_db_query_i64(db, "SELECT count(*) FROM gpux_trades", &trades, err, sizeof err), LEDGER_OK);
    assert_int_equal(trades, trades_seen);
    /* names come from the matcher's command endpoint */
    int64_t named = -1;
    assert_int_equal(ledger_db_query_i64(db, "SELECT count(*) FROM gpux_balances WHERE name LIKE 'feed-user-%'",
                                         &named, err, sizeof err), LEDGER_OK);
    assert_int_equal(named, 12);
    ledger_db_close(db);
}

static int setup(void **state)
{
    (void)state;
    root = getenv("GPUX_ROOT");
    if (!root) root = ".";
    bin = getenv("GPUX_BIN");
    if (!bin) bin = "build/rel/bin";
    snprintf(sql_dir, sizeof sql_dir, "%s/sql", root);
    snprintf(dir, sizeof dir, "/tmp/gpux-test-ledger-feed-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    chmod(dir, 0755);
    snprintf(cmd_addr, sizeof cmd_addr, "ipc://%s/cmd.ipc", dir);
    snprintf(feed_addr, sizeof feed_addr, "ipc://%s/feed.ipc", dir);
    snprintf(pub_addr, sizeof pub_addr, "ipc://%s/pub.ipc", dir);
    char cmd[1024], line[700];
    snprintf(cmd, sizeof cmd, "sh %s/scripts/pgtmp.sh start %s/pg", root, dir);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    while (fgets(line, sizeof line, p))
        if (!strncmp(line, "DATABASE_URL=", 13)) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(pg_url, sizeof pg_url, "%s", line + 13);
        }
    if (pclose(p) != 0 || !pg_url[0]) return -1;
    return open_cmd_sock();
}

static int teardown(void **state)
{
    (void)state;
    if (ledger_pid > 0) kill_wait(ledger_pid, SIGKILL);
    if (matcher_pid > 0) kill_wait(matcher_pid, SIGKILL);
    nng_close(cmd_sock);
    char cmd[1024];
    if (getenv("GPUX_KEEP_LOGS")) {
        snprintf(cmd, sizeof cmd, "cat %s/ledger.log %s/matcher.log >&2", dir, dir);
        if (system(cmd) != 0) fprintf(stderr, "no logs\n");
    }
    snprintf(cmd, sizeof cmd, "sh %s/scripts/pgtmp.sh destroy %s/pg; rm -rf %s", root, dir, dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_follow_matcher_through_crashes(void **state)
{
    (void)state;
    bool san = getenv("GPUX_FLAVOUR") && !strcmp(getenv("GPUX_FLAVOUR"), "san");
    uint32_t orders = san ? 60 : 300;
    start_matcher();
    start_ledger();
    create_accounts(12);
    send_orders(orders, 12);
    assert_true(trades_seen > 0);
    assert_settled("first run");

    /* the matcher dies; the ledger waits; the restarted matcher recovers
     * from its journal and the ledger resumes */
    kill_wait(matcher_pid, SIGKILL);
    start_matcher();
    send_orders(orders, 12);
    assert_settled("after the matcher's SIGKILL");

    /* the matcher stays down past the ledger's patience: it dials on a
     * fresh socket (ledger/feed.c, req_silent) and still resumes */
    kill_wait(matcher_pid, SIGKILL);
    wait_ledger_log("dialing on a fresh socket");
    start_matcher();
    send_orders(orders / 4, 12);
    assert_settled("after the matcher stayed down");

    /* the ledger dies mid-stream; commands keep coming; it resumes */
    kill_wait(ledger_pid, SIGKILL);
    send_orders(orders, 12);
    start_ledger();
    assert_settled("after the ledger's SIGKILL");

    /* `check --cmd` compares with the live matcher at the same seq */
    char cmd[2048], line[512];
    snprintf(cmd, sizeof cmd, "%s/gpux-ledger check --db '%s' --cmd '%s'", bin, pg_url, cmd_addr);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    bool live_ok = false;
    while (fgets(line, sizeof line, p)) {
        fprintf(stderr, "# %s", line); /* "# ": not TAP result lines */
        if (!strncmp(line, "ok   ledger = live matcher", 26)) live_ok = true;
    }
    assert_int_equal(pclose(p), 0);
    assert_true(live_ok);

    /* SIGTERM: clean stop, exit 0 */
    int status = kill_wait(ledger_pid, SIGTERM);
    ledger_pid = 0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* Events the matcher no longer holds are never skipped: the ledger stops
 * (exit 1) and says why. */
static void test_feed_gap_is_fatal(void **state)
{
    (void)state;
    if (ledger_pid > 0) kill_wait(ledger_pid, SIGKILL);
    if (matcher_pid > 0) kill_wait(matcher_pid, SIGKILL);
    ledger_pid = matcher_pid = 0;
    matcher_data = "matcher-gap";
    feed_events = "256"; /* a small ring: the early events drop out */
    start_matcher();
    create_accounts(4);
    send_orders(150, 4);

    char err[512], url[800], exe[512], log[300], catalog[512];
    ledger_db *admin = db_connect();
    assert_int_equal(ledger_db_query_i64(admin, "CREATE DATABASE gap", NULL, err, sizeof err), LEDGER_OK);
    ledger_db_close(admin);
    const char *q = strstr(pg_url, "/gpux?");
    assert_non_null(q);
    snprintf(url, sizeof url, "%.*s/gap%s", (int)(q - pg_url), pg_url, q + 5);
    snprintf(exe, sizeof exe, "%s/gpux-ledger", bin);
    snprintf(log, sizeof log, "%s/ledger-gap.log", dir);
    snprintf(catalog, sizeof catalog, "%s/matcher/catalog.default", root);
    char *argv[] = {exe, "run", "--db", url, "--sql-dir", sql_dir, "--feed", feed_addr,
                    "--cmd", cmd_addr, "--catalog", catalog, "--log-every-ms", "-1", NULL};
    pid_t pid = spawn(argv, log);
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 600 && done == 0; i++) { /* bounded: up to ~60 s */
        done = waitpid(pid, &status, WNOHANG);
        if (done == 0) sleep_ms(100);
    }
    if (done == 0) {
        kill_wait(pid, SIGKILL);
        fail_msg("the ledger kept running although the feed has a gap");
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "grep -q 'no longer holds the events' %s", log);
    assert_int_equal(system(cmd), 0);
    /* and it settled nothing */
    ledger_db *db = ledger_db_connect(url, err, sizeof err);
    assert_non_null(db);
    uint64_t pos = 1, mseq = 0;
    assert_int_equal(ledger_db_position(db, &pos, &mseq, err, sizeof err), LEDGER_OK);
    assert_int_equal(pos, 0);
    ledger_db_close(db);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_follow_matcher_through_crashes),
        cmocka_unit_test(test_feed_gap_is_fatal),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
