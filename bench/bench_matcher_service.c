/* bench_matcher_service.c — acknowledged commands per second through the
 * running gpux-matcher, over nng, each reply sent only once its commands
 * are durable in the journal (direct O_DSYNC write or fdatasync).
 *
 * Starts build/rel/bin/gpux-matcher (or $GPUX_BIN) on a fresh data dir
 * under $TMPDIR (the real disk); then CONTEXTS client contexts on one REQ
 * socket each run a closed loop: send a message of CMDS commands, wait for
 * its reply (which the matcher sends only after every command in it is
 * durable), send the next. Commands cancel the orders the context's
 * previous message placed, then place new resting orders (bids and offers
 * that never cross, so the book stays small): every command is accepted
 * and journaled. Latency = send to durable reply, counted once per command.
 *
 *   matcher_service         the headline: 8 contexts x 32 commands (256 in
 *                           flight), what the gateway sends when it
 *                           coalesces the orders of each event-loop turn
 *                           into one message; Little's law: in flight /
 *                           throughput = mean latency, so this shape can
 *                           meet p99 <= 2 ms (on a quiet machine) where
 *                           the bulk shape cannot.
 *   matcher_service_bulk    16 x 128 (2048 in flight): throughput first, as
 *                           the simulator's replay sends.
 *   matcher_service_single  256 x 1: one command per message (nng's cost per
 *                           message dominates).
 * GPUX_BENCH_SVC_SHAPE=C:K:N adds matcher_service_custom (C contexts x K
 * commands, N timed commands) for exploring the curve.
 *
 * Output: "bench NAME ops_per_s=… p50_ns=… p99_ns=… p999_ns=… contexts=…
 * cmds_per_msg=…" per run; progress on stderr. Not a test: asserts
 * nothing about speed; fails only if the matcher does not answer or
 * rejects a command (then the figures would describe something else). */
#define _GNU_SOURCE
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "gpux_assert.h"
#include "gpux_wire.h"

#define MAX_CONTEXTS 256
#define MAX_PER_MSG 256
#define WARMUP_CMDS 50000
#define MAX_TIMED 4000000
#define ACCOUNTS 32

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One client context: a closed loop of messages, each carrying per_msg
 * commands: cancels of the orders its previous message placed, then new
 * resting orders (so the book stays small and every command is accepted). */
typedef struct bctx {
    nng_ctx ctx;
    nng_aio *aio;
    int id;
    bool sending;
    uint64_t t0;
    uint32_t n;
    uint32_t n_open;
    uint64_t open[MAX_PER_MSG];
    uint32_t sent_cmds;
    uint32_t sent_new; /* the last sent_new commands were new orders */
} bctx;

static nng_socket sock;
static bctx ctxs[MAX_CONTEXTS];
static int n_contexts;
static uint32_t per_msg;
static _Atomic uint64_t issued, completed, errors;
static uint64_t *lat_ns;
static _Atomic uint64_t lat_n;
static uint64_t total_cmds;
static _Atomic int timing; /* 1 while the timed phase records latencies */

static wire_cmd new_order(bctx *c)
{
    wire_cmd w;
    memset(&w, 0, sizeof w);
    bool bid = (c->id + c->n) % 2 == 0;
    w.type = MATCHER_CMD_NEW_ORDER;
    w.account = (uint32_t)(c->id % ACCOUNTS) + 1;
    w.market = (uint32_t)(c->n % 4);
    w.side = bid ? MATCHER_BUY : MATCHER_SELL;
    w.qty = 8;
    /* bids at $1.00-$1.99, offers at $5.00-$5.99: never cross */
    w.price_micros = (bid ? 1000000 : 5000000) + 100 * (int64_t)(c->n % 10000);
    w.start_hour = 1000 + c->n % 24;
    w.end_hour = w.start_hour + 1 + c->n % 8;
    c->n++;
    return w;
}

static void send_next(bctx *c)
{
    if (atomic_fetch_add(&issued, per_msg) >= total_cmds)
        return;
    static __thread wire_cmd cmds[MAX_PER_MSG];
    uint32_t k = 0;
    if (per_msg == 1) {
        c->sent_new = c->n_open == 0;
        if (c->n_open > 0) {
            memset(&cmds[0], 0, sizeof cmds[0]);
            cmds[0].type = MATCHER_CMD_CANCEL;
            cmds[0].account = (uint32_t)(c->id % ACCOUNTS) + 1;
            cmds[0].order_id = c->open[--c->n_open];
        } else {
            cmds[0] = new_order(c);
        }
        k = 1;
    } else {
        for (uint32_t i = 0; i < c->n_open; i++, k++) {
            memset(&cmds[k], 0, sizeof cmds[k]);
            cmds[k].type = MATCHER_CMD_CANCEL;
            cmds[k].account = (uint32_t)(c->id % ACCOUNTS) + 1;
            cmds[k].order_id = c->open[i];
        }
        c->n_open = 0;
        c->sent_new = per_msg - k;
        while (k < per_msg)
            cmds[k++] = new_order(c);
    }
    c->sent_cmds = k;
    static __thread uint8_t buf[sizeof(wire_hdr) + MAX_PER_MSG * sizeof(wire_cmd)];
    size_t len = wire_encode_cmds(buf, sizeof buf, cmds, k);
    nng_msg *m;
    if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, buf, len) != 0)
        abort();
    nng_aio_set_msg(c->aio, m);
    c->sending = true;
    c->t0 = now_ns();
    nng_ctx_send(c->ctx, c->aio);
}

/* Reads the reply: every command must be accepted; remembers the ids of
 * the orders it placed (they are cancelled by the next message). */
static bool collect(bctx *c, nng_msg *m)
{
    wire_reply r;
    wire_reader rd;
    char err[160];
    if (wire_decode_reply(nng_msg_body(m), nng_msg_len(m), &r, &rd, err, sizeof err) != 0)
        return false;
    if (per_msg == 1) {
        if (r.status != WIRE_ST_OK)
            return false;
        if (c->sent_new)
            c->open[c->n_open++] = r.order_id;
        return true;
    }
    wire_item it;
    uint16_t type;
    uint32_t i = 0;
    while (wire_reader_next(&rd, &type, &it, err, sizeof err) == 1) {
        if (type != WIRE_ITEM_RESULT || it.result.status != WIRE_ST_OK)
            return false;
        if (i >= c->sent_cmds - c->sent_new && c->n_open < MAX_PER_MSG)
            c->open[c->n_open++] = it.result.order_id;
        i++;
    }
    return i == c->sent_cmds;
}

static void cb(void *arg)
{
    bctx *c = arg;
    int rv = nng_aio_result(c->aio);
    if (rv != 0) {
        if (c->sending)
            nng_msg_free(nng_aio_get_msg(c->aio));
        atomic_fetch_add(&errors, 1);
        atomic_fetch_add(&completed, per_msg);
        return;
    }
    if (c->sending) {
        c->sending = false;
        nng_ctx_recv(c->ctx, c->aio);
        return;
    }
    uint64_t dt = now_ns() - c->t0;
    nng_msg *m = nng_aio_get_msg(c->aio);
    if (!collect(c, m)) {
        fprintf(stderr, "bench_matcher_service: a command was not accepted\n");
        atomic_fetch_add(&errors, 1);
    }
    nng_msg_free(m);
    if (atomic_load(&timing))
        for (uint32_t k = 0; k < c->sent_cmds; k++) {
            uint64_t i = atomic_fetch_add(&lat_n, 1);
            if (i < MAX_TIMED)
                lat_ns[i] = dt;
        }
    atomic_fetch_add(&completed, c->sent_cmds);
    send_next(c);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* One synchronous command (setup). */
static void sync_cmd(const wire_cmd *w)
{
    uint8_t buf[512];
    size_t len = wire_encode_cmd(buf, sizeof buf, w);
    if (nng_send(sock, buf, len, 0) != 0)
        abort();
    void *rb;
    size_t rl;
    if (nng_recv(sock, &rb, &rl, NNG_FLAG_ALLOC) != 0) {
        fprintf(stderr, "bench_matcher_service: the matcher does not answer\n");
        exit(1);
    }
    wire_reply r;
    wire_reader rd;
    char err[160];
    if (wire_decode_reply(rb, rl, &r, &rd, err, sizeof err) != 0 || r.status != WIRE_ST_OK) {
        fprintf(stderr, "bench_matcher_service: setup command refused: %s\n", r.detail);
        exit(1);
    }
    nng_free(rb, rl);
}

static void run_phase(uint64_t n)
{
    atomic_store(&issued, 0);
    atomic_store(&completed, 0);
    total_cmds = n;
    for (int i = 0; i < n_contexts; i++)
        send_next(&ctxs[i]);
    while (atomic_load(&completed) < n) {
        usleep(1000);
        if (atomic_load(&errors) > 0) {
            fprintf(stderr, "bench_matcher_service: errors during the run\n");
            exit(1);
        }
    }
}

/* Warm-up, then a timed run of n commands; prints one result line. */
static void measure(const char *name, int contexts, uint32_t msg_cmds, uint64_t n)
{
    n_contexts = contexts;
    per_msg = msg_cmds;
    for (int i = 0; i < contexts; i++)
        ctxs[i].n_open = 0; /* the previous phase's orders stay resting */
    fprintf(stderr, "bench_matcher_service: %s: %d contexts x %u commands per "
            "message, warm-up %d, timed %" PRIu64 "\n", name, contexts, msg_cmds,
            WARMUP_CMDS, n);
    atomic_store(&timing, 0);
    run_phase(WARMUP_CMDS);
    atomic_store(&lat_n, 0);
    atomic_store(&timing, 1);
    uint64_t t0 = now_ns();
    run_phase(n);
    uint64_t el = now_ns() - t0;
    atomic_store(&timing, 0);
    uint64_t k = atomic_load(&lat_n);
    if (k > MAX_TIMED)
        k = MAX_TIMED;
    qsort(lat_ns, k, sizeof *lat_ns, cmp_u64);
    double ops = (double)atomic_load(&completed) / ((double)el / 1e9);
    printf("bench %s ops_per_s=%.0f p50_ns=%" PRIu64 " p99_ns=%" PRIu64
           " p999_ns=%" PRIu64 " contexts=%d cmds_per_msg=%u\n", name, ops,
           lat_ns[k / 2], lat_ns[k * 99 / 100], lat_ns[k * 999 / 1000], contexts,
           msg_cmds);
    fflush(stdout);
}

typedef struct bench_run {
    const char *name;
    int contexts;
    uint32_t cmds;
    uint64_t n;
    bool want;
} bench_run;

static const char usage[] =
    "usage: bench_matcher_service [FILTER]\n"
    "  runs matcher_service (8 contexts x 32 commands), matcher_service_bulk\n"
    "  (16 x 128) and matcher_service_single (256 x 1) against a fresh\n"
    "  gpux-matcher ($GPUX_BIN or build/rel/bin) whose names contain FILTER;\n"
    "  GPUX_BENCH_SVC_SHAPE=C:K:N adds matcher_service_custom.\n";

int main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    const char *filter = argc > 1 ? argv[1] : "";
    bench_run runs[] = {
        {"matcher_service", 8, 32, 1000000, false},
        {"matcher_service_bulk", 16, 128, 2000000, false},
        {"matcher_service_single", 256, 1, 200000, false},
        {"matcher_service_custom", 0, 0, 0, false},
    };
    const char *shape = getenv("GPUX_BENCH_SVC_SHAPE");
    if (shape && *shape) {
        unsigned c, k;
        unsigned long long n;
        if (sscanf(shape, "%u:%u:%llu", &c, &k, &n) != 3 || c < 1 || c > MAX_CONTEXTS ||
            k < 1 || k > MAX_PER_MSG || n < 1 || n > MAX_TIMED) {
            fprintf(stderr, "bench_matcher_service: GPUX_BENCH_SVC_SHAPE must be "
                    "C:K:N with C 1..%d, K 1..%d, N 1..%d\n", MAX_CONTEXTS,
                    MAX_PER_MSG, MAX_TIMED);
            return 2;
        }
        runs[3].contexts = (int)c;
        runs[3].cmds = k;
        runs[3].n = n;
    }
    bool any = false;
    for (size_t i = 0; i < GPUX_ARRAY_LEN(runs); i++) {
        runs[i].want = runs[i].contexts > 0 && strstr(runs[i].name, filter) != NULL;
        any = any || runs[i].want;
    }
    if (!any)
        return 0;
    const char *bindir = getenv("GPUX_BIN");
    char bin[600], dir[300], data[400], cmd[500], cat[400];
    snprintf(bin, sizeof bin, "%s/gpux-matcher", bindir ? bindir : "build/rel/bin");
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/gpux-bench-svc-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return 1;
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(cmd, sizeof cmd, "ipc://%s/cmd.ipc", dir);
    snprintf(cat, sizeof cat, "%s/catalog", dir);
    FILE *f = fopen(cat, "w");
    fputs("region r1\nregion r2\ngpu G1\ngpu G2\n", f);
    fclose(f);
    char feed[500], pub[500];
    snprintf(feed, sizeof feed, "ipc://%s/feed.ipc", dir);
    snprintf(pub, sizeof pub, "ipc://%s/pub.ipc", dir);
    pid_t pid = fork();
    if (pid == 0) {
        execl(bin, bin, "--data", data, "--cmd", cmd, "--feed", feed, "--pub", pub,
              "--catalog", cat, "--clock", "sim", "--max-accounts", "64",
              "--max-orders", "100000", "--max-orders-per-market", "100000",
              "--max-segments", "200000", "--history-orders", "100000",
              "--fills", "1024", "--feed-events", "1048576", "--contexts", "512",
              "--snapshot-every", "0", "--snapshot-secs", "0", (char *)NULL);
        _exit(127);
    }
    nng_req0_open(&sock);
    nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 60000);
    nng_socket_set_ms(sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    nng_socket_set_size(sock, NNG_OPT_RECVMAXSZ, WIRE_MAX_MSG_BYTES);
    nng_dial(sock, cmd, NULL, NNG_FLAG_NONBLOCK);

    wire_cmd w;
    memset(&w, 0, sizeof w);
    w.type = MATCHER_CMD_ADVANCE_CLOCK;
    w.clock_hour = 900;
    sync_cmd(&w);
    for (int a = 1; a <= ACCOUNTS; a++) {
        memset(&w, 0, sizeof w);
        w.type = MATCHER_CMD_CREATE_ACCOUNT;
        w.roles = MATCHER_ROLE_BUYER | MATCHER_ROLE_PROVIDER;
        snprintf(w.name, sizeof w.name, "bench-%d", a);
        sync_cmd(&w);
        memset(&w, 0, sizeof w);
        w.type = MATCHER_CMD_DEPOSIT;
        w.account = (uint32_t)a;
        w.amount_micros = 1000000000LL * 1000000LL;
        sync_cmd(&w);
    }
    for (int i = 0; i < MAX_CONTEXTS; i++) {
        ctxs[i].id = i;
        if (nng_ctx_open(&ctxs[i].ctx, sock) != 0 || nng_aio_alloc(&ctxs[i].aio, cb, &ctxs[i]) != 0)
            return 1;
    }
    lat_ns = calloc(MAX_TIMED, sizeof *lat_ns);
    /* one matcher for every line, in order; each line starts with its own
     * untimed warm-up (WARMUP_CMDS), long enough for a fresh journal to be
     * on a preallocated segment; the lines run back to back, so the later
     * ones find the earlier ones' resting orders in the book (a small
     * book: every order is cancelled by its context's next message) */
    for (size_t i = 0; i < GPUX_ARRAY_LEN(runs); i++)
        if (runs[i].want)
            measure(runs[i].name, runs[i].contexts, runs[i].cmds, runs[i].n);
    for (int i = 0; i < MAX_CONTEXTS; i++)
        nng_aio_stop(ctxs[i].aio);
    nng_close(sock);
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    char rm[400];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    if (system(rm) != 0)
        return 1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
