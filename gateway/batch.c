/* batch.c — coalesces the commands that requests hand over during one
 * event-loop turn (new orders, cancels, replaces) into one batched CMD
 * message to the matcher, and fans the per-command results back out to
 * their requests.
 *
 * Why: every matcher message costs a context switch or two on both sides
 * and a slot in the matcher's queue; with one message per order the
 * gateway spent most of its time in nng and the kernel, not in HTTP. A
 * batch costs one message however many orders it carries, and the
 * matcher journals it in one group commit.
 *
 * When: the first command of a turn opens a batch and activates flush_ev,
 * an event with no timer; libevent runs it after the callbacks already
 * active in this turn (the other requests read in the same turn), so a
 * lone request waits for nothing. A batch that reaches GW_BATCH_MAX_CMDS
 * is sent at once. A batch of one command is sent as a plain command
 * (its reply carries the events: one round trip, as before batching).
 *
 * Results: a batched reply has one RESULT per command (status, reason,
 * seq, order id) and no events. Cancels, replaces and rejections need
 * nothing more. An accepted new order is rendered from its own events
 * (status after matching, fills). The matcher publishes them anyway, right
 * after the same group commit, on the market-data socket the gateway
 * already subscribes to: one message per matcher batch with every event
 * of its commands (gw_pub_split_runs finds each command's run). So an
 * order whose reply has come takes its run from the next messages; a run
 * that comes before its reply (while batches are in flight) is copied
 * into a ring, found by seq. No second round trip. Market data is best
 * effort (nng drops for a slow subscriber), so an order whose events have
 * not come within PUB_WAIT_MS, or whose seq market data has passed, is
 * fetched with one FEED query for the whole batch (observer: it does not
 * move the ledger's position; the batch's seqs are one run, the matcher
 * applies a batch without interleaving). An order whose events still did
 * not come (feed gap, truncated page, failure) is handed over with no
 * reader: its handler fetches the order. The commands were accepted: that
 * is never a 503.
 *
 * Bounds: GW_BATCH_POOL batches in flight, GW_BATCH_MAX_CMDS commands
 * each, all allocated at start. With the pool empty a command goes out on
 * its own (the plain path, bounded by the matcher client's contexts). */
#include <stdlib.h>
#include <string.h>

#include "gateway/server.h"
#include "gpux_assert.h"

#define GW_BATCH_MAX_CMDS 256
#define GW_BATCH_POOL 64
/* New orders' events kept for replies that come after their market data:
 * PUB_CACHE_SLOTS entries by seq, their items in a PUB_RING_BYTES ring
 * (~10k orders of 4-5 events: more than GW_BATCH_POOL x GW_BATCH_MAX_CMDS
 * orders in flight). */
#define PUB_CACHE_SLOTS 16384
#define PUB_RING_BYTES (8u * 1024u * 1024u)
#define PUB_CACHE_RUN_BYTES (64u * 1024u) /* ~340 events; larger: the feed */
/* How long an accepted order waits for its market data before the feed is
 * asked (the message normally follows the reply within a millisecond). */
#define PUB_WAIT_MS 20
/* Feed events asked for per accepted order (an order's ACCEPTED, DONE,
 * BALANCE, a few TRADE/LEASE pairs); an order with more comes by query. */
#define EVENTS_PER_ORDER 24

typedef struct gw_batch gw_batch;
struct gw_batch {
    gw_batcher *bt;
    uint32_t n;
    wire_cmd cmds[GW_BATCH_MAX_CMDS];
    gw_call *calls[GW_BATCH_MAX_CMDS];  /* NULL once answered */
    wire_reply reps[GW_BATCH_MAX_CMDS]; /* each command's result */
    uint32_t feed_limit;                /* events asked for by the FEED query */
    uint32_t waiting;                   /* orders waiting for market data */
    uint64_t last_wait_seq;             /* the highest seq among them */
    struct event *timer;                /* PUB_WAIT_MS, then the feed */
    gw_batch *next_free;                /* free list, or the wait list */
};

typedef struct run_entry {
    uint64_t seq;      /* 0 = empty */
    uint64_t ring_off; /* where its items start, in bytes ever written */
    uint64_t order_id; /* of its ACCEPTED event */
    uint32_t account;
    uint32_t len;      /* bytes of its items */
    uint32_t count;    /* its events */
} run_entry;

struct gw_batcher {
    gw_server *srv;
    struct event *flush_ev;
    gw_batch *pool;
    gw_batch *free_list;
    gw_batch *open;  /* collecting this turn, or NULL */
    gw_batch *waiting; /* replied, some orders waiting for market data */
    uint64_t pub_seq;  /* highest seq seen in market data */
    uint32_t in_flight; /* batches sent, reply not come yet */
    run_entry *cache;  /* [PUB_CACHE_SLOTS], direct-mapped by seq */
    uint8_t *ring;     /* [PUB_RING_BYTES]: the cached runs' items */
    uint64_t ring_head; /* bytes ever written to the ring */
    bool have_pub;     /* a market-data socket is configured */
    uint8_t *buf;    /* encoding scratch (gw_mc_send copies) */
    size_t cap;
};

static gw_batch *batch_get(gw_batcher *bt)
{
    gw_batch *b = bt->free_list;
    if (!b)
        return NULL;
    bt->free_list = b->next_free;
    b->n = 0;
    return b;
}

static void batch_put(gw_batch *b)
{
    gw_batcher *bt = b->bt;
    b->next_free = bt->free_list;
    bt->free_list = b;
}

/* Hands command i its outcome: rd is its events, or NULL. */
static void deliver(gw_batch *b, uint32_t i, const wire_reply *rep, wire_reader *rd)
{
    gw_call *c = b->calls[i];
    GPUX_ASSERT(c && c->step);
    b->calls[i] = NULL;
    gw_step_fn step = c->step;
    c->step = NULL;
    step(c, 0, rep, rd);
}

static void fail_all(gw_batch *b, gw_err e, const char *message)
{
    for (uint32_t i = 0; i < b->n; i++)
        if (b->calls[i]) {
            gw_call *c = b->calls[i];
            b->calls[i] = NULL;
            if (e == GW_ERR_UNAVAILABLE && !message)
                gw_reply_unavailable(c);
            else
                gw_reply_error(c, e, message);
        }
    batch_put(b);
}

/* ---- the feed: events of the batch's accepted orders ----------------------- */

static bool wants_events(const gw_batch *b, uint32_t i)
{
    return b->calls[i] && b->cmds[i].type == MATCHER_CMD_NEW_ORDER &&
           b->reps[i].status == WIRE_ST_OK && b->reps[i].seq > 0;
}

/* Every order still waiting gets no reader: its handler fetches it. */
static void deliver_rest_without_events(gw_batch *b)
{
    for (uint32_t i = 0; i < b->n; i++)
        if (b->calls[i]) {
            b->bt->srv->metrics.order_events_none += wants_events(b, i);
            deliver(b, i, &b->reps[i], NULL);
        }
    batch_put(b);
}

typedef struct ev_span {
    size_t start, end; /* byte offsets in the feed reply */
    uint32_t count;
} ev_span;

/* Walks the feed page once, noting where each waiting order's events lie
 * (the page is in seq order, so are the batch's commands). Returns the
 * highest seq seen, or 0 when the page is unreadable. */
static uint64_t find_spans(gw_batch *b, wire_reader *rd, ev_span *spans)
{
    uint32_t j = 0;
    uint64_t seen = 0;
    for (uint32_t guard = 0; guard <= WIRE_MAX_FEED_EVENTS; guard++) {
        size_t off = rd->off;
        uint16_t type;
        wire_item it;
        char err[128];
        int r = wire_reader_next(rd, &type, &it, err, sizeof err);
        if (r == 0)
            return seen;
        if (r < 0 || type != WIRE_ITEM_EVENT || it.event.seq < seen)
            return 0;
        seen = it.event.seq;
        while (j < b->n && (!wants_events(b, j) || b->reps[j].seq < seen))
            j++;
        if (j < b->n && b->reps[j].seq == seen) {
            if (spans[j].count == 0)
                spans[j].start = off;
            spans[j].end = rd->off;
            spans[j].count++;
        }
    }
    return 0;
}

static void feed_done(void *arg, int rc, const uint8_t *msg, size_t len)
{
    gw_batch *b = arg;
    wire_reply rep;
    wire_reader rd;
    char err[128];
    if (rc != 0 || wire_decode_reply(msg, len, &rep, &rd, err, sizeof err) != 0 ||
        rep.status != WIRE_ST_OK) {
        deliver_rest_without_events(b);
        return;
    }
    static ev_span spans[GW_BATCH_MAX_CMDS]; /* loop thread only */
    memset(spans, 0, sizeof(ev_span) * b->n);
    /* A page shorter than asked for holds everything up to now; otherwise
     * an order is complete only when a later command's event follows it. */
    bool whole = rd.left < b->feed_limit;
    uint64_t seen = find_spans(b, &rd, spans);
    for (uint32_t i = 0; i < b->n; i++) {
        if (!wants_events(b, i))
            continue;
        bool complete = seen > 0 && spans[i].count > 0 && (whole || seen > b->reps[i].seq);
        if (!complete)
            continue;
        wire_reader sub = {.buf = msg, .len = spans[i].end, .off = spans[i].start,
                           .left = spans[i].count};
        b->bt->srv->metrics.order_events_feed++;
        deliver(b, i, &b->reps[i], &sub);
    }
    deliver_rest_without_events(b);
}

/* Asks for the events of the accepted orders; answers the rest now. */
static void fetch_events(gw_batch *b)
{
    gw_batcher *bt = b->bt;
    uint64_t first = 0, last = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        if (!b->calls[i])
            continue;
        if (wants_events(b, i)) {
            if (!first)
                first = b->reps[i].seq;
            last = b->reps[i].seq;
        } else {
            deliver(b, i, &b->reps[i], NULL);
        }
    }
    if (!first) {
        batch_put(b);
        return;
    }
    uint64_t span = last - first + 1;
    uint64_t limit = span * EVENTS_PER_ORDER + 64;
    if (limit > WIRE_MAX_FEED_EVENTS)
        limit = WIRE_MAX_FEED_EVENTS;
    b->feed_limit = (uint32_t)limit;
    wire_query q = {.type = WIRE_Q_FEED, .flags = WIRE_QF_OBSERVER, .after = first - 1,
                    .after_index = UINT32_MAX, .limit = (uint32_t)limit};
    uint8_t buf[sizeof(wire_hdr) + sizeof(wire_query)];
    size_t n = wire_encode_query(buf, sizeof buf, &q);
    GPUX_ASSERT(n > 0);
    if (gw_mc_send(bt->srv->mc, buf, n, feed_done, b) != 0)
        deliver_rest_without_events(b);
}

/* ---- market data: the orders' own events, without a round trip ------------ */

/* The events of a new order published before its batch's reply came:
 * kept in a byte ring (ring_head = bytes ever written; an entry is valid
 * while its bytes have not been written over), found by seq. */
static run_entry *cache_slot(gw_batcher *bt, uint64_t seq)
{
    return &bt->cache[seq % PUB_CACHE_SLOTS];
}

static bool entry_live(const gw_batcher *bt, const run_entry *e)
{
    return e->seq != 0 && bt->ring_head - e->ring_off <= PUB_RING_BYTES;
}

/* Copies a complete run into the ring; runs over PUB_CACHE_RUN_BYTES are
 * not kept (their orders ask the feed). */
static void cache_put(gw_batcher *bt, const uint8_t *msg, const gw_pub_run *run)
{
    size_t len = run->end - run->start;
    if (len > PUB_CACHE_RUN_BYTES)
        return;
    uint64_t at = bt->ring_head % PUB_RING_BYTES;
    if (at + len > PUB_RING_BYTES) /* keep every run contiguous */
        bt->ring_head += PUB_RING_BYTES - at;
    run_entry *e = cache_slot(bt, run->seq);
    *e = (run_entry){.seq = run->seq, .ring_off = bt->ring_head, .len = (uint32_t)len,
                     .count = run->count, .order_id = run->order_id,
                     .account = run->account};
    memcpy(bt->ring + bt->ring_head % PUB_RING_BYTES, msg + run->start, len);
    bt->ring_head += len;
}

/* A matcher started on a new data dir numbers its commands from 1 again:
 * a seq far below what market data has shown means the cache describes
 * another history. Forget it (never match an order with a stranger's
 * events, never take every order for lost). */
static void check_restart(gw_batcher *bt, uint64_t seq)
{
    if (seq + 2 * PUB_CACHE_SLOTS >= bt->pub_seq)
        return;
    memset(bt->cache, 0, (size_t)PUB_CACHE_SLOTS * sizeof *bt->cache);
    bt->pub_seq = 0;
}

/* The run is order i's: same command, and its ACCEPTED event names the
 * order and account the reply named. */
static bool run_is_order(const gw_batch *b, uint32_t i, uint64_t seq, uint64_t order_id,
                         uint32_t account)
{
    return wants_events(b, i) && b->reps[i].seq == seq && order_id != 0 &&
           b->reps[i].order_id == order_id && b->cmds[i].account == account;
}

static void deliver_cached(gw_batch *b, uint32_t i, const gw_batcher *bt, const run_entry *e)
{
    wire_reader rd = {.buf = bt->ring, .len = e->ring_off % PUB_RING_BYTES + e->len,
                      .off = e->ring_off % PUB_RING_BYTES, .left = e->count};
    deliver(b, i, &b->reps[i], &rd);
}

static void wait_list_remove(gw_batcher *bt, gw_batch *b)
{
    gw_batch **pp = &bt->waiting;
    for (uint32_t guard = 0; *pp && guard < GW_BATCH_POOL; guard++, pp = &(*pp)->next_free)
        if (*pp == b) {
            *pp = b->next_free;
            return;
        }
}

/* PUB_WAIT_MS passed: what is still waiting asks the feed. */
static void on_pub_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_batch *b = arg;
    wait_list_remove(b->bt, b);
    b->waiting = 0;
    fetch_events(b);
}

/* After the batch's reply: each accepted order takes its events from the
 * cache, or waits for them; everything else is answered now. */
static void await_events(gw_batch *b)
{
    gw_batcher *bt = b->bt;
    if (!bt->have_pub) {
        fetch_events(b);
        return;
    }
    b->waiting = 0;
    b->last_wait_seq = 0;
    for (uint32_t i = 0; i < b->n; i++)
        if (b->reps[i].seq > 0)
            check_restart(bt, b->reps[i].seq);
    for (uint32_t i = 0; i < b->n; i++) {
        if (!b->calls[i])
            continue;
        if (!wants_events(b, i)) {
            deliver(b, i, &b->reps[i], NULL);
            continue;
        }
        const run_entry *e = cache_slot(bt, b->reps[i].seq);
        if (entry_live(bt, e) && run_is_order(b, i, e->seq, e->order_id, e->account)) {
            bt->srv->metrics.order_events_pub++;
            deliver_cached(b, i, bt, e);
        } else {
            b->waiting++;
            b->last_wait_seq = b->reps[i].seq;
        }
    }
    if (b->waiting == 0) {
        batch_put(b);
        return;
    }
    if (bt->pub_seq > b->last_wait_seq) {
        /* market data has gone past them: their messages were dropped */
        fetch_events(b);
        return;
    }
    struct timeval tv = {0, PUB_WAIT_MS * 1000};
    if (evtimer_add(b->timer, &tv) != 0) {
        fetch_events(b);
        return;
    }
    b->next_free = bt->waiting;
    bt->waiting = b;
}

/* Hands the waiting orders of b whose runs are in this message their
 * events: the batch's seqs and the message's runs both ascend, so one
 * merge walk finds them. */
static void deliver_from_message(gw_batch *b, const uint8_t *msg, const gw_pub_runs *runs)
{
    uint32_t j = 0;
    for (uint32_t i = 0; i < b->n && b->waiting > 0; i++) {
        if (!wants_events(b, i))
            continue;
        uint64_t seq = b->reps[i].seq;
        while (j < runs->n && runs->runs[j].seq < seq)
            j++;
        if (j == runs->n)
            return;
        const gw_pub_run *r = &runs->runs[j];
        if (!r->complete || !run_is_order(b, i, r->seq, r->order_id, r->account))
            continue;
        wire_reader rd;
        gw_pub_run_reader(msg, r, &rd);
        b->waiting--;
        b->bt->srv->metrics.order_events_pub++;
        deliver(b, i, &b->reps[i], &rd);
    }
}

/* Market data comes in seq order (one pipe, sent in commit order); nng
 * drops messages for a subscriber that falls behind. So once a message
 * past a waiting order's seq has come, the order's own events are lost:
 * its batch asks the feed at once instead of waiting out PUB_WAIT_MS. */
void gw_batcher_on_pub(gw_batcher *bt, const uint8_t *msg, const gw_pub_runs *runs)
{
    if (!bt || runs->n == 0)
        return;
    check_restart(bt, runs->runs[0].seq);
    if (runs->last_seq > bt->pub_seq)
        bt->pub_seq = runs->last_seq;
    /* a reply still on its way finds its orders' events here */
    for (uint32_t j = 0; bt->in_flight > 0 && j < runs->n; j++)
        if (runs->runs[j].complete && runs->runs[j].cmd_type == MATCHER_CMD_NEW_ORDER)
            cache_put(bt, msg, &runs->runs[j]);
    gw_batch **pp = &bt->waiting;
    for (uint32_t guard = 0; *pp && guard < GW_BATCH_POOL; guard++) {
        gw_batch *b = *pp;
        deliver_from_message(b, msg, runs);
        if (b->waiting > 0 && bt->pub_seq <= b->last_wait_seq) {
            pp = &b->next_free;
            continue;
        }
        *pp = b->next_free;
        evtimer_del(b->timer);
        if (b->waiting == 0)
            batch_put(b);
        else
            fetch_events(b);
    }
}

/* ---- the batch's own reply ----------------------------------------------------- */

static int read_results(gw_batch *b, wire_reader *rd)
{
    if (rd->left != b->n)
        return -1;
    for (uint32_t i = 0; i < b->n; i++) {
        uint16_t type;
        wire_item it;
        char err[128];
        if (wire_reader_next(rd, &type, &it, err, sizeof err) != 1 || type != WIRE_ITEM_RESULT)
            return -1;
        const wire_result *r = &it.result;
        wire_reply *rep = &b->reps[i];
        memset(rep, 0, sizeof *rep);
        rep->status = r->status;
        rep->reason = r->reason;
        rep->seq = r->seq;
        rep->order_id = r->order_id;
        rep->account = r->account;
    }
    return 0;
}

static void batch_done(void *arg, int rc, const uint8_t *msg, size_t len)
{
    gw_batch *b = arg;
    gw_server *s = b->bt->srv;
    GPUX_ASSERT(b->bt->in_flight > 0);
    b->bt->in_flight--;
    if (rc != 0) {
        fail_all(b, GW_ERR_UNAVAILABLE, NULL); /* nothing was accepted, or unknown: 503 */
        return;
    }
    s->metrics.matcher_up = true;
    wire_reply rep;
    wire_reader rd;
    char err[128];
    if (wire_decode_reply(msg, len, &rep, &rd, err, sizeof err) != 0) {
        gw_log("bad reply from the matcher: %s", err);
        fail_all(b, GW_ERR_INTERNAL, "unreadable answer from the matcher");
        return;
    }
    if (rep.status != WIRE_ST_OK) {
        /* the message as a whole (e.g. the matcher is shutting down) */
        for (uint32_t i = 0; i < b->n; i++)
            deliver(b, i, &rep, NULL);
        batch_put(b);
        return;
    }
    if (read_results(b, &rd) != 0) {
        gw_log("batch reply from the matcher does not match its %u commands", b->n);
        fail_all(b, GW_ERR_INTERNAL, "unreadable answer from the matcher");
        return;
    }
    await_events(b);
}

static void send_batch(gw_batcher *bt, gw_batch *b)
{
    GPUX_ASSERT(b->n > 0 && b->n <= GW_BATCH_MAX_CMDS);
    gw_server *s = bt->srv;
    if (b->n == 1) {
        /* alone: the plain message, whose reply carries the events */
        gw_call *c = b->calls[0];
        wire_cmd w = b->cmds[0];
        gw_step_fn step = c->step;
        batch_put(b);
        gw_call_cmd(c, &w, step);
        return;
    }
    size_t len = wire_encode_cmds(bt->buf, bt->cap, b->cmds, b->n);
    GPUX_ASSERT(len > 0);
    s->metrics.cmd_batches++;
    s->metrics.batched_cmds += b->n;
    bt->in_flight++; /* before sending: market data may come before the reply */
    if (gw_mc_send(s->mc, bt->buf, len, batch_done, b) != 0) {
        bt->in_flight--;
        fail_all(b, GW_ERR_UNAVAILABLE,
                 "the gateway is at its limit of requests in flight; retry");
    }
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_batcher *bt = arg;
    gw_batch *b = bt->open;
    bt->open = NULL;
    if (b)
        send_batch(bt, b);
}

void gw_call_cmd_batched(gw_call *c, const wire_cmd *w, gw_step_fn step)
{
    gw_batcher *bt = c->srv->batcher;
    if (!bt->open) {
        bt->open = batch_get(bt);
        if (!bt->open) {
            gw_call_cmd(c, w, step); /* every batch in flight: go alone */
            return;
        }
        event_active(bt->flush_ev, EV_TIMEOUT, 0);
    }
    gw_batch *b = bt->open;
    c->step = step;
    b->cmds[b->n] = *w;
    b->calls[b->n] = c;
    b->n++;
    if (b->n == GW_BATCH_MAX_CMDS) {
        bt->open = NULL;
        send_batch(bt, b);
    }
}

gw_batcher *gw_batcher_open(gw_server *s, char *err, size_t errlen)
{
    gw_batcher *bt = calloc(1, sizeof *bt);
    if (!bt) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    bt->srv = s;
    bt->have_pub = s->cfg.matcher_pub != NULL;
    bt->cap = sizeof(wire_hdr) + GW_BATCH_MAX_CMDS * sizeof(wire_cmd);
    bt->buf = malloc(bt->cap);
    bt->pool = calloc(GW_BATCH_POOL, sizeof *bt->pool);
    bt->cache = calloc(PUB_CACHE_SLOTS, sizeof *bt->cache);
    bt->ring = malloc(PUB_RING_BYTES);
    bt->flush_ev = event_new(s->base, -1, 0, on_flush, bt);
    bool ok = bt->buf && bt->pool && bt->cache && bt->ring && bt->flush_ev;
    for (uint32_t i = 0; ok && i < GW_BATCH_POOL; i++) {
        bt->pool[i].bt = bt;
        bt->pool[i].timer = evtimer_new(s->base, on_pub_timeout, &bt->pool[i]);
        ok = bt->pool[i].timer != NULL;
        batch_put(&bt->pool[i]);
    }
    if (!ok) {
        snprintf(err, errlen, "out of memory");
        gw_batcher_close(bt);
        return NULL;
    }
    return bt;
}

void gw_batcher_close(gw_batcher *bt)
{
    if (!bt)
        return;
    if (bt->open) /* never sent: nothing was accepted */
        fail_all(bt->open, GW_ERR_UNAVAILABLE, "the gateway is stopping; nothing was accepted");
    bt->open = NULL;
    /* Accepted, but the matcher client is closed: the answer is unknown. */
    for (uint32_t guard = 0; bt->waiting && guard < GW_BATCH_POOL; guard++) {
        gw_batch *b = bt->waiting;
        bt->waiting = b->next_free;
        fail_all(b, GW_ERR_UNAVAILABLE, "the gateway is stopping; the order may have been "
                                        "accepted: look it up by client_order_id");
    }
    if (bt->flush_ev)
        event_free(bt->flush_ev);
    for (uint32_t i = 0; bt->pool && i < GW_BATCH_POOL; i++)
        if (bt->pool[i].timer)
            event_free(bt->pool[i].timer);
    free(bt->cache);
    free(bt->ring);
    free(bt->pool);
    free(bt->buf);
    free(bt);
}
