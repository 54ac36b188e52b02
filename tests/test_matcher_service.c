/* test_matcher_service.c — bin/gpux-matcher as a real process over real
 * nng sockets (unique ipc:// paths in a mktemp dir per test):
 *   - commands, queries, feed and market data end to end; malformed and
 *     truncated messages get BAD_MESSAGE and the process keeps serving;
 *     SIGTERM = clean exit with a snapshot; restart recovers the same state;
 *   - fault test: client threads stream thousands of commands, the matcher
 *     is SIGKILLed at a random point (several seeds); after restart every
 *     acknowledged command is there, every order the service knows has its
 *     events in the feed (nothing half-applied), and the state hash equals
 *     an offline journal-only replay (gpux-matcher --verify);
 *   - torn journal tail after SIGKILL is cut back on start; a corrupt
 *     record with good ones after it stops the start, --repair-journal
 *     recovers.
 * Waiting for the process uses generous liveness bounds, never speed. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>

#include "gpux_wire.h"

#define LIVENESS_MS 60000 /* a reply must come within this, or the test fails */

static int scale(void)
{
    const char *f = getenv("GPUX_FLAVOUR");
    return f && strcmp(f, "san") == 0 ? 10 : 1;
}

/* ---- the process ------------------------------------------------------------ */

typedef struct mproc {
    char dir[256];
    char data[300];
    char cmd[320], feed[320], pub[320];
    char log[300];
    pid_t pid;
} mproc;

/* Every process and dir a test makes is registered, so a failing
 * assertion (which leaves the test function early) still leaves nothing
 * running or behind: the per-test teardown kills and removes them. */
static mproc *live[4];

static void mproc_register(mproc *m)
{
    for (size_t i = 0; i < 4; i++)
        if (!live[i]) {
            live[i] = m;
            return;
        }
    fail_msg("too many live matcher fixtures");
}

static int cleanup_live(void **state)
{
    (void)state;
    for (size_t i = 0; i < 4; i++) {
        mproc *m = live[i];
        if (!m)
            continue;
        if (m->pid > 0) {
            kill(m->pid, SIGKILL);
            waitpid(m->pid, NULL, 0);
            m->pid = 0;
        }
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", m->dir);
        if (getenv("GPUX_TEST_KEEP_DIRS")) /* for a post-mortem by hand */
            fprintf(stderr, "# kept %s\n", m->dir);
        else if (m->dir[0] && system(cmd) != 0)
            fprintf(stderr, "cleanup of %s failed\n", m->dir);
        live[i] = NULL;
    }
    return 0;
}

static void mproc_init(mproc *m)
{
    memset(m, 0, sizeof *m);
    snprintf(m->dir, sizeof m->dir, "/tmp/gpux-msvc-XXXXXX");
    assert_non_null(mkdtemp(m->dir));
    snprintf(m->data, sizeof m->data, "%s/data", m->dir);
    snprintf(m->cmd, sizeof m->cmd, "ipc://%s/cmd.ipc", m->dir);
    snprintf(m->feed, sizeof m->feed, "ipc://%s/feed.ipc", m->dir);
    snprintf(m->pub, sizeof m->pub, "ipc://%s/pub.ipc", m->dir);
    snprintf(m->log, sizeof m->log, "%s/matcher.log", m->dir);
    mproc_register(m);
    char cat[300];
    snprintf(cat, sizeof cat, "%s/catalog", m->dir);
    FILE *f = fopen(cat, "w");
    assert_non_null(f);
    fputs("region us-east\nregion eu-west\ngpu H100\ngpu A100\n", f);
    fclose(f);
}

static void mproc_cleanup(mproc *m)
{
    (void)m;
    cleanup_live(NULL);
}

static const char *matcher_bin(void)
{
    static char path[512];
    const char *bin = getenv("GPUX_BIN");
    snprintf(path, sizeof path, "%s/gpux-matcher", bin ? bin : "build/rel/bin");
    return path;
}

/* Runs gpux-matcher with the common flags plus extra (NULL-terminated). */
static pid_t mproc_spawn(mproc *m, const char *const *extra)
{
    char cat[300];
    snprintf(cat, sizeof cat, "%s/catalog", m->dir);
    const char *argv[64];
    int n = 0;
    const char *common[] = {
        matcher_bin(), "--data", m->data, "--cmd", m->cmd, "--feed", m->feed,
        "--pub", m->pub, "--catalog", cat, "--clock", "sim",
        "--max-accounts", "64", "--max-orders", "20000",
        "--max-orders-per-market", "20000", "--max-segments", "100000",
        "--history-orders", "30000", "--fills", "16384",
        "--feed-events", "1048576", "--contexts", "32",
        "--snapshot-secs", "0", NULL};
    for (int i = 0; common[i]; i++)
        argv[n++] = common[i];
    for (int i = 0; extra && extra[i]; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(m->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    m->pid = pid;
    return pid;
}

static int mproc_wait(mproc *m)
{
    int st;
    assert_int_equal(waitpid(m->pid, &st, 0), m->pid);
    m->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static bool log_has(const mproc *m, const char *needle)
{
    FILE *f = fopen(m->log, "r");
    if (!f)
        return false;
    char line[2048];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static void print_log(const mproc *m)
{
    FILE *f = fopen(m->log, "r");
    char line[2048];
    while (f && fgets(line, sizeof line, f))
        printf("# log: %s", line);
    if (f)
        fclose(f);
}

/* ---- client -------------------------------------------------------------------- */

/* libnng 1.5 once hung inside nng_close on a client socket whose dialer
 * was reconnecting to the matcher this test had just SIGKILLed (every
 * thread using the socket had already returned). The test must not hang
 * on a library bug: such sockets are closed on a detached thread, and the
 * threads that used them end by their own receive timeout. */
static void *closer_main(void *arg)
{
    nng_socket *s = arg;
    nng_close(*s);
    free(s);
    return NULL;
}

static void close_detached(nng_socket s)
{
    nng_socket *p = malloc(sizeof *p);
    pthread_t t;
    if (!p)
        return;
    *p = s;
    if (pthread_create(&t, NULL, closer_main, p) == 0)
        pthread_detach(t);
    else
        free(p);
}

static nng_socket client_open(const char *addr)
{
    nng_socket s;
    assert_int_equal(nng_req0_open(&s), 0);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, LIVENESS_MS);
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, LIVENESS_MS);
    /* never resend a command on our own: a resend is a second command */
    nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, WIRE_MAX_MSG_BYTES);
    assert_int_equal(nng_dial(s, addr, NULL, NNG_FLAG_NONBLOCK), 0);
    return s;
}

/* a reply's items as read back: enough for a full batch's results */
#define REPLY_ITEMS (WIRE_MAX_BATCH_CMDS + 16)

typedef struct reply {
    wire_reply r;
    size_t n;
    uint16_t types[REPLY_ITEMS];
    wire_item items[REPLY_ITEMS];
} reply;

/* Sends raw bytes, returns 0 and the decoded reply, or the nng error. */
static int roundtrip_raw(nng_socket s, const void *msg, size_t len, reply *out)
{
    int rv = nng_send(s, (void *)msg, len, 0);
    if (rv != 0)
        return rv;
    void *buf;
    size_t blen;
    rv = nng_recv(s, &buf, &blen, NNG_FLAG_ALLOC);
    if (rv != 0)
        return rv;
    wire_reader rd;
    char err[160];
    if (wire_decode_reply(buf, blen, &out->r, &rd, err, sizeof err) != 0)
        fail_msg("reply does not decode: %s", err);
    out->n = 0;
    int k;
    while ((k = wire_reader_next(&rd, &out->types[out->n], &out->items[out->n], err,
                                 sizeof err)) == 1)
        if (out->n < REPLY_ITEMS - 1)
            out->n++;
    if (k < 0)
        fail_msg("reply item does not decode: %s", err);
    nng_free(buf, blen);
    return 0;
}

static int send_cmd(nng_socket s, const wire_cmd *c, reply *out)
{
    uint8_t buf[512];
    size_t n = wire_encode_cmd(buf, sizeof buf, c);
    return roundtrip_raw(s, buf, n, out);
}

static int send_query(nng_socket s, const wire_query *q, reply *out)
{
    uint8_t buf[512];
    size_t n = wire_encode_query(buf, sizeof buf, q);
    return roundtrip_raw(s, buf, n, out);
}

static wire_status_item status_of(nng_socket s)
{
    wire_query q;
    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_STATUS;
    q.flags = WIRE_QF_STATE_HASH;
    static reply r;
    assert_int_equal(send_query(s, &q, &r), 0);
    assert_int_equal(r.r.status, WIRE_ST_OK);
    assert_int_equal(r.n, 1);
    return r.items[0].status;
}

static wire_cmd mk_account(const char *name, uint32_t roles)
{
    wire_cmd c;
    memset(&c, 0, sizeof c);
    c.type = MATCHER_CMD_CREATE_ACCOUNT;
    c.roles = roles;
    snprintf(c.name, sizeof c.name, "%s", name);
    return c;
}

static wire_cmd mk_deposit(uint32_t acct, int64_t amount)
{
    wire_cmd c;
    memset(&c, 0, sizeof c);
    c.type = MATCHER_CMD_DEPOSIT;
    c.account = acct;
    c.amount_micros = amount;
    return c;
}

static wire_cmd mk_order(uint32_t acct, uint8_t side, int32_t qty, int64_t price,
                         int64_t start, int64_t end, const char *coid)
{
    wire_cmd c;
    memset(&c, 0, sizeof c);
    c.type = MATCHER_CMD_NEW_ORDER;
    c.account = acct;
    c.side = side;
    c.qty = qty;
    c.price_micros = price;
    c.start_hour = start;
    c.end_hour = end;
    if (coid)
        snprintf(c.client_order_id, sizeof c.client_order_id, "%s", coid);
    return c;
}

static void must_ok(nng_socket s, wire_cmd c)
{
    static reply r;
    assert_int_equal(send_cmd(s, &c, &r), 0);
    if (r.r.status != WIRE_ST_OK)
        fail_msg("command type %u: status %s reason %u: %s", c.type,
                 wire_status_name(r.r.status), r.r.reason, r.r.detail);
}

/* Offline journal-only replay: returns the state hash it prints. */
static uint64_t verify_offline(mproc *m, uint64_t *seq)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' --data '%s' --catalog '%s/catalog' --clock sim "
             "--max-accounts 64 --max-orders 20000 --max-orders-per-market 20000 "
             "--max-segments 100000 --history-orders 30000 --fills 16384 "
             "--feed-events 1048576 --verify 2>>'%s'",
             matcher_bin(), m->data, m->dir, m->log);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[256] = "";
    unsigned long long s = 0, h = 0;
    int got = 0;
    while (fgets(line, sizeof line, p))
        if (sscanf(line, "verify ok seq=%llu state_hash=%llx", &s, &h) == 2)
            got = 1;
    int rc = pclose(p);
    if (!got || rc != 0) {
        print_log(m);
        fail_msg("gpux-matcher --verify failed (rc %d)", rc);
    }
    *seq = s;
    return h;
}

/* ---- end to end ------------------------------------------------------------- */

static void test_end_to_end(void **state)
{
    (void)state;
    static mproc m; /* static: the teardown reaches it after a failed assertion */
    mproc_init(&m);
    mproc_spawn(&m, NULL);
    nng_socket c = client_open(m.cmd);
    nng_socket f = client_open(m.feed);
    nng_socket sub;
    assert_int_equal(nng_sub0_open(&sub), 0);
    assert_int_equal(nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, WIRE_PUB_TOPIC,
                                    sizeof WIRE_PUB_TOPIC - 1), 0);
    nng_socket_set_ms(sub, NNG_OPT_RECVTIMEO, 2000);
    assert_int_equal(nng_dial(sub, m.pub, NULL, NNG_FLAG_NONBLOCK), 0);

    wire_status_item st = status_of(c);
    assert_int_equal(st.seq, 0);
    assert_int_equal(st.clock_sim, 1);
    wire_cmd clk;
    memset(&clk, 0, sizeof clk);
    clk.type = MATCHER_CMD_ADVANCE_CLOCK;
    clk.clock_hour = 1000;
    must_ok(c, clk);
    must_ok(c, mk_account("buyer", MATCHER_ROLE_BUYER));
    must_ok(c, mk_account("seller", MATCHER_ROLE_PROVIDER));
    must_ok(c, mk_deposit(1, 1000000000000LL));

    /* market data: wait until the subscription carries account 1's events
     * (PUB/SUB joins asynchronously; each try is a new deposit). Every
     * message has the one topic and decodes. */
    static reply r;
    bool got_pub = false;
    for (int tries = 0; tries < 30 && !got_pub; tries++) {
        must_ok(c, mk_deposit(1, 1));
        void *buf;
        size_t len;
        while (!got_pub && nng_recv(sub, &buf, &len, NNG_FLAG_ALLOC) == 0) {
            size_t off = wire_pub_split(buf, len);
            wire_reader rd;
            char err[160];
            assert_int_equal(off, sizeof WIRE_PUB_TOPIC);
            assert_string_equal(buf, WIRE_PUB_TOPIC);
            assert_int_equal(wire_decode_pub((uint8_t *)buf + off, len - off, &rd, err, sizeof err), 0);
            wire_item it;
            uint16_t type;
            while (wire_reader_next(&rd, &type, &it, err, sizeof err) == 1)
                got_pub |= type == WIRE_ITEM_EVENT && it.event.type == MATCHER_EV_DEPOSIT &&
                           it.event.account == 1;
            nng_free(buf, len);
        }
    }
    assert_true(got_pub);

    wire_cmd offer = mk_order(2, MATCHER_SELL, 16, 2000000, 1000, 1010, "ask-1");
    must_ok(c, offer);
    wire_cmd bid = mk_order(1, MATCHER_BUY, 8, 2100000, 1002, 1004, "bid-1");
    assert_int_equal(send_cmd(c, &bid, &r), 0);
    assert_int_equal(r.r.status, WIRE_ST_OK);
    uint64_t bid_id = r.r.order_id;
    size_t trades = 0;
    for (size_t i = 0; i < r.n; i++)
        trades += r.types[i] == WIRE_ITEM_EVENT && r.items[i].event.type == MATCHER_EV_TRADE;
    assert_int_equal(trades, 1);
    /* the same client_order_id again: the first order, not a new one */
    assert_int_equal(send_cmd(c, &bid, &r), 0);
    assert_int_equal(r.r.status, WIRE_ST_DUPLICATE);
    assert_int_equal(r.r.order_id, bid_id);
    assert_int_equal(r.types[0], WIRE_ITEM_ORDER);
    assert_int_equal(r.items[0].order.status, WIRE_ORDER_FILLED);

    /* the trade went out as market data */
    bool got_trade = false;
    void *buf;
    size_t len;
    while (!got_trade && nng_recv(sub, &buf, &len, NNG_FLAG_ALLOC) == 0) {
        size_t off = wire_pub_split(buf, len);
        wire_reader rd;
        char err[160];
        if (off == sizeof WIRE_PUB_TOPIC &&
            wire_decode_pub((uint8_t *)buf + off, len - off, &rd, err, sizeof err) == 0) {
            wire_item it;
            uint16_t type;
            while (wire_reader_next(&rd, &type, &it, err, sizeof err) == 1)
                got_trade |= it.event.type == MATCHER_EV_TRADE && it.event.market == 0;
        }
        nng_free(buf, len);
    }
    assert_true(got_trade);

    /* queries */
    wire_query q;
    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_BOOK;
    q.limit = 10;
    assert_int_equal(send_query(c, &q, &r), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.items[0].level.side, MATCHER_SELL);
    assert_int_equal(r.items[0].level.qty, 16); /* other hours untouched */
    q.start_hour = 1002;
    q.end_hour = 1004;
    assert_int_equal(send_query(c, &q, &r), 0);
    assert_int_equal(r.items[0].level.qty, 8);
    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_ACCOUNT;
    q.account = 1;
    assert_int_equal(send_query(c, &q, &r), 0);
    assert_string_equal(r.items[0].account.name, "buyer");
    assert_true(r.items[0].account.balance_micros < 1000000000000LL);
    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_MARKETS;
    q.limit = 100;
    assert_int_equal(send_query(c, &q, &r), 0);
    assert_int_equal(r.n, 4);
    assert_string_equal(r.items[0].market.gpu, "H100");
    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_ORDER_BY_CLIENT_ID;
    q.account = 2;
    strcpy(q.client_order_id, "ask-1");
    assert_int_equal(send_query(c, &q, &r), 0);
    assert_int_equal(r.r.status, WIRE_ST_OK);
    assert_int_equal(r.items[0].order.status, WIRE_ORDER_PARTIALLY_FILLED);
    /* the feed endpoint: every event, then only FEED/STATUS there */
    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_FEED;
    q.limit = 1000;
    assert_int_equal(send_query(f, &q, &r), 0);
    assert_int_equal(r.r.status, WIRE_ST_OK);
    assert_int_equal(r.items[0].event.seq, 1);
    assert_int_equal(r.items[r.n - 1].event.seq, r.r.seq);
    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_ACCOUNTS;
    q.limit = 5;
    assert_int_equal(send_query(f, &q, &r), 0);
    assert_int_equal(r.r.status, WIRE_ST_BAD_MESSAGE);
    /* wall clock commands are refused only in wall mode: here sim works */
    clk.clock_hour = 999;
    assert_int_equal(send_cmd(c, &clk, &r), 0);
    assert_int_equal(r.r.status, WIRE_ST_REJECTED);
    assert_int_equal(r.r.reason, MATCHER_REJ_BAD_CLOCK);

    /* a batch: results in order, rejected ones with their reason */
    {
        wire_cmd b3[3] = {mk_deposit(2, 100), mk_deposit(2, 200), mk_deposit(1, 0)};
        b3[2].type = MATCHER_CMD_WITHDRAW;
        b3[2].amount_micros = 1000000000000000LL; /* more than it has */
        uint8_t raw3[1024];
        size_t n3 = wire_encode_cmds(raw3, sizeof raw3, b3, 3);
        uint64_t before = status_of(c).seq;
        assert_int_equal(roundtrip_raw(c, raw3, n3, &r), 0);
        assert_int_equal(r.r.status, WIRE_ST_OK);
        assert_int_equal(r.n, 3);
        assert_int_equal(r.types[0], WIRE_ITEM_RESULT);
        assert_int_equal(r.items[0].result.seq, before + 1);
        assert_int_equal(r.items[1].result.seq, before + 2);
        assert_int_equal(r.items[2].result.status, WIRE_ST_REJECTED);
        assert_int_equal(r.items[2].result.reason, MATCHER_REJ_INSUFFICIENT_FUNDS);
        assert_int_equal(r.items[2].result.seq, 0);
        assert_int_equal(r.r.seq, before + 2);
    }

    /* the largest batch the wire allows is received and answered whole */
    {
        static wire_cmd full[WIRE_MAX_BATCH_CMDS];
        for (uint32_t i = 0; i < WIRE_MAX_BATCH_CMDS; i++)
            full[i] = mk_deposit(2, 1 + i);
        static uint8_t rawf[sizeof(wire_hdr) + WIRE_MAX_BATCH_CMDS * sizeof(wire_cmd)];
        size_t nf = wire_encode_cmds(rawf, sizeof rawf, full, WIRE_MAX_BATCH_CMDS);
        assert_int_equal(nf, sizeof rawf);
        uint64_t before = status_of(c).seq;
        assert_int_equal(roundtrip_raw(c, rawf, nf, &r), 0);
        assert_int_equal(r.r.status, WIRE_ST_OK);
        assert_int_equal(r.n, WIRE_MAX_BATCH_CMDS);
        assert_int_equal(r.items[WIRE_MAX_BATCH_CMDS - 1].result.seq, before + WIRE_MAX_BATCH_CMDS);
    }

    /* market data is coalesced: a batch of commands (a trade among them)
     * comes as one PUB message with each command's events once, in
     * (seq, index) order, byte for byte the feed's events */
    {
        wire_cmd b4[4] = {mk_order(2, MATCHER_SELL, 8, 2000000, 1005, 1007, "ask-2"),
                          mk_order(1, MATCHER_BUY, 8, 2100000, 1005, 1007, "bid-2"),
                          mk_deposit(2, 300), mk_deposit(1, 0)};
        b4[3].type = MATCHER_CMD_WITHDRAW;
        b4[3].amount_micros = 1000000000000000LL; /* rejected: no events */
        static uint8_t raw4[4096];
        size_t n4 = wire_encode_cmds(raw4, sizeof raw4, b4, 4);
        uint64_t before = status_of(c).seq;
        assert_int_equal(roundtrip_raw(c, raw4, n4, &r), 0);
        assert_int_equal(r.r.status, WIRE_ST_OK);
        for (int i = 0; i < 2; i++)
            if (r.items[i].result.status != WIRE_ST_OK)
                fail_msg("batched order %d: status %s reason %u", i,
                         wire_status_name(r.items[i].result.status), r.items[i].result.reason);
        assert_int_equal(r.items[2].result.seq, before + 3);
        assert_int_equal(r.items[3].result.status, WIRE_ST_REJECTED);
        wire_query fq;
        memset(&fq, 0, sizeof fq);
        fq.type = WIRE_Q_FEED;
        fq.after = before;
        fq.after_index = UINT32_MAX;
        fq.limit = 1000;
        static reply feed;
        assert_int_equal(send_query(f, &fq, &feed), 0);
        assert_int_equal(feed.r.status, WIRE_ST_OK);
        size_t trades4 = 0;
        for (size_t i = 0; i < feed.n; i++)
            trades4 += feed.items[i].event.type == MATCHER_EV_TRADE;
        assert_true(trades4 >= 1);
        assert_int_equal(feed.items[feed.n - 1].event.seq, before + 3);
        bool found = false;
        void *pbuf;
        size_t plen;
        while (!found && nng_recv(sub, &pbuf, &plen, NNG_FLAG_ALLOC) == 0) {
            size_t off = wire_pub_split(pbuf, plen);
            wire_reader rd;
            char err[160];
            assert_int_equal(wire_decode_pub((uint8_t *)pbuf + off, plen - off, &rd, err,
                                             sizeof err), 0);
            size_t k = 0;
            wire_item it;
            uint16_t type;
            while (wire_reader_next(&rd, &type, &it, err, sizeof err) == 1) {
                if (it.event.seq <= before)
                    continue; /* an earlier command's message */
                found = true;
                assert_true(k < feed.n);
                assert_memory_equal(&it.event, &feed.items[k].event, sizeof(wire_event));
                k++;
            }
            if (found)
                assert_int_equal(k, feed.n); /* all of them, in one message */
            nng_free(pbuf, plen);
        }
        assert_true(found);
    }

    /* malformed input: garbage, truncated, wrong version, unused field */
    uint64_t seq_before = status_of(c).seq;
    uint8_t raw[512];
    memset(raw, 0xab, sizeof raw);
    assert_int_equal(roundtrip_raw(c, raw, 100, &r), 0);
    assert_int_equal(r.r.status, WIRE_ST_BAD_MESSAGE);
    size_t n = wire_encode_cmd(raw, sizeof raw, &offer);
    assert_int_equal(roundtrip_raw(c, raw, n - 1, &r), 0);
    assert_int_equal(r.r.status, WIRE_ST_BAD_MESSAGE);
    raw[4] = 9; /* version */
    assert_int_equal(roundtrip_raw(c, raw, n, &r), 0);
    assert_int_equal(r.r.status, WIRE_ST_BAD_MESSAGE);
    assert_non_null(strstr(r.r.detail, "version"));
    wire_cmd badc = mk_deposit(1, 5);
    badc.qty = 8;
    wire_hdr h = {WIRE_MAGIC, WIRE_VERSION, WIRE_KIND_CMD, sizeof badc, 1};
    memcpy(raw, &h, sizeof h);
    memcpy(raw + sizeof h, &badc, sizeof badc);
    assert_int_equal(roundtrip_raw(c, raw, sizeof h + sizeof badc, &r), 0);
    assert_int_equal(r.r.status, WIRE_ST_BAD_MESSAGE);
    assert_int_equal(status_of(c).seq, seq_before); /* nothing accepted */
    assert_true(log_has(&m, "bad message"));

    /* SIGTERM: clean exit with a snapshot; restart: same state */
    st = status_of(c);
    nng_close(c);
    nng_close(f);
    nng_close(sub);
    kill(m.pid, SIGTERM);
    int rc = mproc_wait(&m);
    if (rc != 0) {
        print_log(&m);
        fail_msg("gpux-matcher exit status %d after SIGTERM", rc);
    }
    assert_true(log_has(&m, "snapshot at seq"));
    mproc_spawn(&m, NULL);
    c = client_open(m.cmd);
    wire_status_item st2 = status_of(c);
    assert_int_equal(st2.seq, st.seq);
    assert_int_equal(st2.state_hash, st.state_hash);
    assert_int_equal(st2.snapshot_seq, st.seq);
    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_ORDER;
    q.order_id = bid_id;
    assert_int_equal(send_query(c, &q, &r), 0);
    assert_int_equal(r.items[0].order.status, WIRE_ORDER_FILLED);
    assert_string_equal(r.items[0].order.client_order_id, "bid-1");
    nng_close(c);
    kill(m.pid, SIGTERM);
    assert_int_equal(mproc_wait(&m), 0);
    uint64_t vseq;
    assert_int_equal(verify_offline(&m, &vseq), st.state_hash);
    assert_int_equal(vseq, st.seq);
    mproc_cleanup(&m);
}

/* ---- fault: SIGKILL under load ----------------------------------------------- */

#define STREAMERS 4
#define ACCOUNTS 8

typedef struct acked {
    uint64_t order_id;
    uint64_t seq;
    uint32_t idx;      /* client order index in its stream */
    uint8_t type;
    uint32_t account; /* the owner */
} acked;

typedef struct streamer {
    const mproc *m;
    int id;
    uint64_t rng;
    uint32_t n_cmds;
    nng_socket sock;
    acked *acks;
    uint32_t n_acks;
    uint32_t sent_orders; /* NEW_ORDERs sent (acked or not) */
    volatile int stopped;
} streamer;

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void coid_for(int stream, uint32_t idx, char out[WIRE_CLIENT_ID_LEN])
{
    snprintf(out, WIRE_CLIENT_ID_LEN, "s%d-%u", stream, idx);
}

static void *stream_main(void *arg)
{
    streamer *t = arg;
    static __thread reply r;
    for (uint32_t i = 0; i < t->n_cmds; i++) {
        uint64_t x = rnd(&t->rng);
        wire_cmd c;
        uint32_t acct = (uint32_t)(t->id * 2 + (x & 1)) % ACCOUNTS + 1;
        if (x % 10 < 7 || t->n_acks == 0) {
            char coid[WIRE_CLIENT_ID_LEN];
            coid_for(t->id, t->sent_orders, coid);
            int64_t start = 1000 + (int64_t)(x >> 8) % 20;
            uint8_t side = (x >> 4) % 2 ? MATCHER_BUY : MATCHER_SELL;
            c = mk_order(acct, side, 8 * (int32_t)(1 + (x >> 12) % 4),
                         1000000 + 100 * (int64_t)((x >> 20) % 50), start,
                         start + 1 + (int64_t)(x >> 28) % 8, coid);
            c.min_qty = side == MATCHER_BUY && (x >> 40) % 2 ? 8 : 0;
            if ((x >> 44) % 8 == 0)
                c.tif = MATCHER_IOC;
            t->sent_orders++;
        } else {
            /* cancel or replace one of our acknowledged orders */
            const acked *a = &t->acks[(x >> 8) % t->n_acks];
            memset(&c, 0, sizeof c);
            c.type = (x >> 4) % 2 ? MATCHER_CMD_CANCEL : MATCHER_CMD_REPLACE;
            c.order_id = a->order_id;
            c.account = a->account;
            if (c.type == MATCHER_CMD_REPLACE)
                c.price_micros = 1000000 + 100 * (int64_t)((x >> 20) % 50);
        }
        int rv = send_cmd(t->sock, &c, &r);
        if (rv != 0)
            break; /* the matcher died: this command is unacknowledged */
        if (r.r.status != WIRE_ST_OK)
            continue;
        acked *a = &t->acks[t->n_acks++];
        a->order_id = c.type == MATCHER_CMD_NEW_ORDER ? r.r.order_id : c.order_id;
        a->seq = r.r.seq;
        a->idx = c.type == MATCHER_CMD_NEW_ORDER ? t->sent_orders - 1 : UINT32_MAX;
        a->type = c.type;
        a->account = c.account;
    }
    t->stopped = 1;
    return NULL;
}

/* A ledger stand-in: follows the feed as fast as it can, so the matcher
 * knows a settled position and its snapshots become start points. */
typedef struct follower {
    nng_socket sock;
    volatile int stop;
    uint64_t seq;
    uint32_t index;
} follower;

static void *follow_main(void *arg)
{
    follower *fl = arg;
    static __thread reply r;
    while (!fl->stop) {
        wire_query q;
        memset(&q, 0, sizeof q);
        q.type = WIRE_Q_FEED;
        q.after = fl->seq;
        q.after_index = fl->index;
        q.limit = 1000;
        if (send_query(fl->sock, &q, &r) != 0 || r.r.status != WIRE_ST_OK)
            break;
        if (r.n > 0) {
            fl->seq = r.items[r.n - 1].event.seq;
            fl->index = r.items[r.n - 1].event.index;
        } else {
            usleep(1000);
        }
    }
    return NULL;
}

static void fault_seed(uint64_t seed)
{
    /* even seeds: a ledger follows, so the restart loads a snapshot;
     * odd seeds: no ledger, the restart replays the whole journal.
     * Seed 2 journals with buffered writes + fdatasync, the others with
     * direct writes (the default), so both ways are proven */
    bool with_ledger = seed % 2 == 0;
    static mproc m; /* static: the teardown reaches it after a failed assertion */
    mproc_init(&m);
    const char *extra[] = {"--snapshot-every", scale() == 1 ? "1000" : "200",
                           "--journal-io", seed == 2 ? "buffered" : "direct", NULL};
    mproc_spawn(&m, extra);
    nng_socket c = client_open(m.cmd);
    wire_cmd clk;
    memset(&clk, 0, sizeof clk);
    clk.type = MATCHER_CMD_ADVANCE_CLOCK;
    clk.clock_hour = 990;
    must_ok(c, clk);
    for (int a = 1; a <= ACCOUNTS; a++) {
        char name[32];
        snprintf(name, sizeof name, "trader-%d", a);
        must_ok(c, mk_account(name, MATCHER_ROLE_BUYER | MATCHER_ROLE_PROVIDER));
        must_ok(c, mk_deposit((uint32_t)a, 1000000000000000LL));
    }
    /* stream, and kill at a random moment */
    uint64_t rng = seed * 0x12345;
    uint32_t per = 4000 / (uint32_t)scale();
    streamer ts[STREAMERS];
    pthread_t th[STREAMERS];
    for (int i = 0; i < STREAMERS; i++) {
        ts[i] = (streamer){.m = &m, .id = i, .rng = seed * 100 + (uint64_t)i,
                           .n_cmds = per, .sock = client_open(m.cmd)};
        ts[i].acks = calloc(per, sizeof(acked));
        pthread_create(&th[i], NULL, stream_main, &ts[i]);
    }
    follower fl = {.sock = client_open(m.feed)};
    pthread_t fl_th;
    if (with_ledger)
        pthread_create(&fl_th, NULL, follow_main, &fl);
    /* wait until the stream is underway, then a random extra delay */
    uint64_t target = per * STREAMERS / 4 + rnd(&rng) % (uint64_t)(per * STREAMERS / 2);
    for (int spins = 0; spins < 600000; spins++) {
        uint64_t done = 0;
        int stopped = 0;
        for (int i = 0; i < STREAMERS; i++) {
            done += ts[i].n_acks;
            stopped += ts[i].stopped;
        }
        if (done >= target || stopped == STREAMERS)
            break;
        usleep(100);
    }
    usleep((useconds_t)(rnd(&rng) % 3000));
    kill(m.pid, SIGKILL);
    assert_int_equal(mproc_wait(&m), 128 + SIGKILL);
    for (int i = 0; i < STREAMERS; i++)
        close_detached(ts[i].sock); /* in-flight requests fail: unacknowledged */
    fl.stop = 1;
    close_detached(fl.sock);
    if (with_ledger)
        pthread_join(fl_th, NULL);
    for (int i = 0; i < STREAMERS; i++)
        pthread_join(th[i], NULL);
    close_detached(c); /* its dialer, too, was reconnecting to the killed matcher */
    uint64_t acked_max = 0, n_acked = 0, sent = 0;
    for (int i = 0; i < STREAMERS; i++) {
        n_acked += ts[i].n_acks;
        sent += ts[i].sent_orders;
        for (uint32_t k = 0; k < ts[i].n_acks; k++)
            if (ts[i].acks[k].seq > acked_max)
                acked_max = ts[i].acks[k].seq;
    }

    /* restart: everything acknowledged is there */
    mproc_spawn(&m, extra);
    c = client_open(m.cmd);
    wire_status_item st = status_of(c);
    printf("# seed %llu: killed after %llu acks (target %llu), max acked seq %llu, "
           "recovered seq %llu\n", (unsigned long long)seed,
           (unsigned long long)n_acked, (unsigned long long)target,
           (unsigned long long)acked_max, (unsigned long long)st.seq);
    assert_true(st.seq >= acked_max);
    if (seed == 2) /* it has answered, so it has logged how it journals */
        assert_true(log_has(&m, "buffered writes + fdatasync"));

    /* the whole feed the matcher holds (all of it, or from the snapshot
     * it started from): which orders were accepted at which seq */
    nng_socket f = client_open(m.feed);
    uint64_t feed_from = st.feed_first_seq;
    if (with_ledger) {
        char want[80];
        snprintf(want, sizeof want, "snapshot %llu loaded",
                 (unsigned long long)(feed_from - 1));
        assert_true(feed_from > 1);
        assert_true(log_has(&m, want));
    } else {
        assert_int_equal(feed_from, 1);
    }
    uint64_t max_order = st.next_order_id;
    uint64_t *accepted_seq = calloc(max_order + 1, sizeof *accepted_seq);
    static reply r;
    wire_query q;
    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_FEED;
    q.limit = 2000;
    q.after = feed_from - 1;
    q.after_index = UINT32_MAX;
    uint64_t last_seq = feed_from - 1, n_events = 0;
    for (;;) {
        assert_int_equal(send_query(f, &q, &r), 0);
        assert_int_equal(r.r.status, WIRE_ST_OK);
        if (r.n == 0)
            break;
        for (size_t i = 0; i < r.n; i++) {
            const wire_event *e = &r.items[i].event;
            /* contiguous: every accepted command has its events */
            assert_true(e->seq == last_seq || e->seq == last_seq + 1);
            last_seq = e->seq;
            if (e->type == MATCHER_EV_ACCEPTED && e->order_id <= max_order)
                accepted_seq[e->order_id] = e->seq;
            n_events++;
        }
        q.after = r.items[r.n - 1].event.seq;
        q.after_index = r.items[r.n - 1].event.index;
    }
    assert_int_equal(last_seq, st.seq);

    /* acknowledged: present with the same id, seq and (cancel) state */
    for (int i = 0; i < STREAMERS; i++)
        for (uint32_t k = 0; k < ts[i].n_acks; k++) {
            const acked *a = &ts[i].acks[k];
            if (a->type == MATCHER_CMD_NEW_ORDER) {
                memset(&q, 0, sizeof q);
                q.type = WIRE_Q_ORDER_BY_CLIENT_ID;
                q.account = a->account;
                coid_for(i, a->idx, q.client_order_id);
                assert_int_equal(send_query(c, &q, &r), 0);
                if (r.r.status != WIRE_ST_OK)
                    fail_msg("acknowledged order %s lost", q.client_order_id);
                assert_int_equal(r.items[0].order.order_id, a->order_id);
                if (a->seq >= feed_from)
                    assert_int_equal(accepted_seq[a->order_id], a->seq);
            } else if (a->type == MATCHER_CMD_CANCEL) {
                memset(&q, 0, sizeof q);
                q.type = WIRE_Q_ORDER;
                q.order_id = a->order_id;
                assert_int_equal(send_query(c, &q, &r), 0);
                assert_int_equal(r.r.status, WIRE_ST_OK);
                assert_int_equal(r.items[0].order.status, WIRE_ORDER_CANCELLED);
            }
        }
    /* unacknowledged orders: either wholly there (with their events) or
     * wholly absent */
    uint64_t unacked_present = 0;
    for (int i = 0; i < STREAMERS; i++)
        for (uint32_t idx = 0; idx < ts[i].sent_orders; idx++) {
            bool is_acked = false;
            for (uint32_t k = 0; k < ts[i].n_acks && !is_acked; k++)
                is_acked = ts[i].acks[k].idx == idx;
            if (is_acked)
                continue;
            memset(&q, 0, sizeof q);
            q.type = WIRE_Q_ORDER_BY_CLIENT_ID;
            coid_for(i, idx, q.client_order_id);
            bool found = false;
            for (uint32_t a = 1; a <= ACCOUNTS && !found; a++) {
                q.account = a;
                assert_int_equal(send_query(c, &q, &r), 0);
                if (r.r.status == WIRE_ST_OK) {
                    found = true;
                    uint64_t id = r.items[0].order.order_id;
                    assert_true(id <= max_order);
                    /* unacknowledged means recent: after any snapshot */
                    assert_true(accepted_seq[id] > 0);
                }
            }
            unacked_present += found;
        }
    printf("# seed %llu: %llu orders sent, %llu feed events checked, %llu "
           "unacknowledged orders made it to the journal\n",
           (unsigned long long)seed, (unsigned long long)sent,
           (unsigned long long)n_events, (unsigned long long)unacked_present);

    /* more commands after the crash continue the sequence */
    must_ok(c, mk_deposit(1, 5));
    st = status_of(c);
    nng_close(c);
    nng_close(f);
    /* stop once more with SIGKILL (no final snapshot), then offline replay
     * of the journal alone must give the live state's hash */
    kill(m.pid, SIGKILL);
    mproc_wait(&m);
    uint64_t vseq;
    uint64_t vhash = verify_offline(&m, &vseq);
    assert_int_equal(vseq, st.seq);
    assert_int_equal(vhash, st.state_hash);
    /* snapshots were written during the stream and checked by the replays */
    assert_true(log_has(&m, "replay matches snapshot"));
    for (int i = 0; i < STREAMERS; i++)
        free(ts[i].acks);
    free(accepted_seq);
    mproc_cleanup(&m);
}

static void test_fault_sigkill(void **state)
{
    (void)state;
    int seeds = scale() == 1 ? 3 : 2;
    for (int s = 1; s <= seeds; s++)
        fault_seed((uint64_t)s);
}

/* ---- torn and corrupt journal at start ------------------------------------- */

static char *journal_file(const mproc *m, char *out, size_t n)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "ls '%s'/journal-*.log | tail -1", m->data);
    FILE *p = popen(cmd, "r");
    assert_non_null(fgets(out, (int)n, p));
    pclose(p);
    out[strcspn(out, "\n")] = 0;
    return out;
}

static void test_torn_and_corrupt_journal(void **state)
{
    (void)state;
    static mproc m; /* static: the teardown reaches it after a failed assertion */
    mproc_init(&m);
    mproc_spawn(&m, NULL);
    /* a fresh journal asks for a preallocated spare at once; once it is
     * on disk, a restart takes it up before serving, so every record below
     * lands in one (preallocated) segment and the offsets are known */
    char spare[400];
    snprintf(spare, sizeof spare, "%s/journal.spare", m.data);
    struct stat sst;
    for (int i = 0; i < 20000 && stat(spare, &sst) != 0; i++)
        usleep(1000);
    assert_int_equal(stat(spare, &sst), 0);
    kill(m.pid, SIGTERM);
    assert_int_equal(mproc_wait(&m), 0);
    mproc_spawn(&m, NULL);
    nng_socket c = client_open(m.cmd);
    must_ok(c, mk_account("a", MATCHER_ROLE_BUYER));
    for (int i = 0; i < 40; i++)
        must_ok(c, mk_deposit(1, 1000 + i));
    wire_status_item st = status_of(c);
    assert_int_equal(st.seq, 41);
    nng_close(c);
    kill(m.pid, SIGKILL); /* no final snapshot: the journal is all there is */
    mproc_wait(&m);

    /* torn: the last record half written (the segment may be a
     * preallocated one: find where the records end) */
    char path[512];
    journal_file(&m, path, sizeof path);
    int tfd = open(path, O_RDWR);
    assert_true(tfd >= 0);
    off_t end = 0;
    for (;; end += 224) {
        uint32_t magic = 0;
        if (pread(tfd, &magic, 4, end) != 4 || magic == 0)
            break;
    }
    assert_int_equal(end, 41 * 224);
    uint8_t zeros[184] = {0}; /* the header made it, the body did not */
    assert_int_equal(pwrite(tfd, zeros, sizeof zeros, end - 184), 184);
    close(tfd);
    mproc_spawn(&m, NULL);
    c = client_open(m.cmd);
    st = status_of(c);
    assert_int_equal(st.seq, 40);
    assert_true(log_has(&m, "torn tail"));
    must_ok(c, mk_deposit(1, 7)); /* seq 41 again, appended after the cut */
    assert_int_equal(status_of(c).seq, 41);
    nng_close(c);
    kill(m.pid, SIGKILL);
    mproc_wait(&m);

    /* corrupt in the middle (seq 11 of the first segment; seq 41 may be in
     * a second one, which the restart may have rolled to as soon as its
     * spare was ready): refuse to start, say why */
    int fd = open(path, O_RDWR);
    uint8_t b;
    off_t off = 10 * 224 + 50;
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0xff;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
    mproc_spawn(&m, NULL);
    assert_true(mproc_wait(&m) != 0);
    assert_true(log_has(&m, "Refusing to start"));
    /* the operator repairs: cut at the bad record */
    const char *repair[] = {"--repair-journal", NULL};
    mproc_spawn(&m, repair);
    c = client_open(m.cmd);
    assert_int_equal(status_of(c).seq, 10);
    nng_close(c);
    kill(m.pid, SIGTERM);
    assert_int_equal(mproc_wait(&m), 0);
    mproc_cleanup(&m);
}

/* ---- retention and a start from a snapshot ----------------------------------- */

static int count_files(const mproc *m, const char *prefix, unsigned long long *first)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep '^%s' | sort", m->data, prefix);
    FILE *p = popen(cmd, "r");
    char line[256];
    int n = 0;
    while (fgets(line, sizeof line, p)) {
        if (n == 0 && first)
            sscanf(line + strlen(prefix), "%llu", first);
        n++;
    }
    pclose(p);
    return n;
}

static void deposits(nng_socket c, int n)
{
    static reply r;
    wire_cmd b[100];
    for (int i = 0; i < 100; i++)
        b[i] = mk_deposit(1, 1 + i);
    static uint8_t raw[sizeof(wire_hdr) + 100 * sizeof(wire_cmd)];
    size_t len = wire_encode_cmds(raw, sizeof raw, b, 100);
    for (int k = 0; k < n / 100; k++) {
        assert_int_equal(roundtrip_raw(c, raw, len, &r), 0);
        assert_int_equal(r.r.status, WIRE_ST_OK);
        assert_int_equal(r.items[99].result.status, WIRE_ST_OK);
    }
}

static void test_retention_and_snapshot_start(void **state)
{
    (void)state;
    static mproc m; /* static: the teardown reaches it after a failed assertion */
    mproc_init(&m);
    const char *extra[] = {"--segment-mb", "1", "--snapshot-every", "3000", NULL};
    mproc_spawn(&m, extra);
    nng_socket c = client_open(m.cmd);
    nng_socket f = client_open(m.feed);
    must_ok(c, mk_account("a", MATCHER_ROLE_BUYER));
    deposits(c, 12000);
    /* a ledger settled everything up to 12500 (snapshots were taken at
     * about every 3000 commands: one lies at or before that position) */
    static reply r;
    wire_query q;
    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_FEED;
    q.after = 12500;
    q.after_index = UINT32_MAX;
    q.limit = 10;
    deposits(c, 1000);
    assert_int_equal(send_query(f, &q, &r), 0);
    assert_int_equal(r.r.status, WIRE_ST_OK);
    assert_int_equal(r.items[0].event.seq, 12501);
    deposits(c, 6000);
    wire_status_item st = status_of(c);
    assert_int_equal(st.ledger_seq, 12500);
    nng_close(c);
    nng_close(f);
    kill(m.pid, SIGTERM);
    assert_int_equal(mproc_wait(&m), 0);
    if (!log_has(&m, "segment(s) up to seq"))
        print_log(&m);
    /* journal segments before the ledger's snapshot are gone, and so are
     * superseded snapshots */
    unsigned long long jfirst = 0, sfirst = 0;
    assert_true(count_files(&m, "journal-", &jfirst) >= 1);
    assert_true(jfirst > 1);
    assert_true(count_files(&m, "snapshot-", &sfirst) <= 3);
    /* the oldest snapshot kept is the start point for the ledger's
     * position, and the journal still joins it */
    if (!(sfirst <= 12500 && jfirst <= sfirst + 1)) {
        print_log(&m);
        fail_msg("oldest snapshot kept is %llu", sfirst);
    }
    assert_true(log_has(&m, "segment(s) up to seq"));

    /* restart: from the snapshot at or before 12500, plus the journal */
    mproc_spawn(&m, extra);
    c = client_open(m.cmd);
    f = client_open(m.feed);
    wire_status_item st2 = status_of(c);
    assert_int_equal(st2.seq, st.seq);
    assert_int_equal(st2.state_hash, st.state_hash);
    char loaded[64];
    snprintf(loaded, sizeof loaded, "snapshot %llu loaded", sfirst);
    assert_true(log_has(&m, loaded));
    /* the ledger's position is still served; before the snapshot: a gap */
    assert_int_equal(send_query(f, &q, &r), 0);
    assert_int_equal(r.r.status, WIRE_ST_OK);
    assert_int_equal(r.items[0].event.seq, 12501);
    q.after = 5;
    assert_int_equal(send_query(f, &q, &r), 0);
    assert_int_equal(r.r.status, WIRE_ST_FEED_GAP);
    nng_close(c);
    nng_close(f);
    kill(m.pid, SIGKILL);
    mproc_wait(&m);
    /* offline replay from the oldest snapshot agrees */
    uint64_t vseq;
    assert_int_equal(verify_offline(&m, &vseq), st.state_hash);
    assert_int_equal(vseq, st.seq);
    mproc_cleanup(&m);
}

static void test_help_and_bad_flags(void **state)
{
    (void)state;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "'%s' --help | grep -q 'GPUX_MATCHER_CMD'", matcher_bin());
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "'%s' --data /tmp/x --contexts 0 2>/dev/null", matcher_bin());
    assert_int_equal(WEXITSTATUS(system(cmd)), 2);
    snprintf(cmd, sizeof cmd, "'%s' --bogus 2>/dev/null", matcher_bin());
    assert_int_equal(WEXITSTATUS(system(cmd)), 2);
    snprintf(cmd, sizeof cmd, "'%s' --data /tmp/x --journal-io sometimes 2>&1 | "
             "grep -q 'journal-io must be direct or buffered'", matcher_bin());
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "'%s' --data /tmp/x --journal-io sometimes 2>/dev/null",
             matcher_bin());
    assert_int_equal(WEXITSTATUS(system(cmd)), 2);
    snprintf(cmd, sizeof cmd, "'%s' 2>/dev/null", matcher_bin());
    assert_int_equal(WEXITSTATUS(system(cmd)), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_bad_flags),
        cmocka_unit_test_teardown(test_end_to_end, cleanup_live),
        cmocka_unit_test_teardown(test_torn_and_corrupt_journal, cleanup_live),
        cmocka_unit_test_teardown(test_retention_and_snapshot_start, cleanup_live),
        cmocka_unit_test_teardown(test_fault_sigkill, cleanup_live),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
