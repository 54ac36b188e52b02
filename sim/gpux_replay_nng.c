/* gpux_replay_nng.c — replays a day file straight into a running
 * gpux-matcher over nng (the wire format of include/gpux_wire.h), as fast
 * as the matcher acknowledges, and builds the day's report from the
 * answers and the matcher's feed.
 *
 * Batches. The day's commands go in CMD messages of up to `batch`
 * commands (WIRE_MAX_BATCH_CMDS), in file order; the matcher applies a
 * message's commands in order, journals them with one fsync and answers
 * with one result per command (status, reason, order/account id, seq).
 * Orders carry their day-file ref as client_order_id, and a cancel or
 * replace of an order placed in the same batch names it by that ref (the
 * matcher resolves it and journals the id), so such commands share a
 * batch with their order. A batch is cut early only where a command needs
 * an id the matcher has not given yet: a deposit or order of an account
 * created in it. A CLOCK line is sent first in a new batch, once every
 * command before it is acknowledged.
 *
 * Lanes. At most `lanes` messages are in flight (each lane a thread with
 * its own REQ context). With one lane (the default) a batch is sent only
 * when the one before it is acknowledged: the matcher applies the day in
 * exactly its file order, and the report equals the in-process replay's
 * (but for the codes in the rejects table, docs/sim.md).
 * With more lanes, batches that do not depend on each other may overtake
 * one another like independent clients; a batch waits for every batch it
 * depends on (the id rules above, and ACCOUNT, DEPOSIT and CLOCK, which
 * no later command may overtake).
 *
 * Trades. Batch answers carry no events; a reader thread follows the
 * matcher's feed as an observer (it does not move the ledger's position)
 * and records the day's trades. It reads only up to the "safe" seq: below
 * the lowest seq any unanswered batch can get, so every order id a trade
 * names is already mapped. The trade's time is its command's stamp: the
 * replay stamps each command with its line's time (kept by the matcher's
 * --clock sim inside the current hour), so t comes back exactly.
 *
 * Backpressure. The feed is a ring (gpux-matcher --feed-events); a feed
 * consumer that falls behind the ring stops (FEED_GAP). The reader asks
 * the matcher's STATUS for the ledger's position (every LEDGER_SLACK_SEQS/2
 * commands sent, or every STATUS_EVERY_MS while the sender waits); while
 * the ledger is more than LEDGER_SLACK_SEQS commands behind and in the
 * older half of what the ring holds, no new batch is sent. The replay
 * never runs more than READER_LAG_SEQS commands ahead of its own reader
 * either.
 *
 * Locking: one mutex guards the maps, the report, the counters and the
 * lane/batch state; the network calls run outside it. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>

#include "gpux_assert.h"
#include "gpux_wire.h"
#include "sim/gpux_replay_core.h"

#define REPLY_TIMEOUT_MS 60000      /* a matcher that does not answer in this is down */
#define MAX_IN_FLIGHT_CMDS 65536u   /* lanes x batch is capped to this */
#define READER_LAG_SEQS 4096u       /* sent commands the feed reader may lag behind */
#define STATUS_EVERY_MS 50          /* at most this often the reader asks for the ledger's position */
#define LEDGER_SLACK_SEQS 8192u     /* the ledger may always be this far behind */
#define LEDGER_STALL_MS 60000       /* a ledger that does not move while we wait is stuck */
#define FEED_PAGE_EVENTS WIRE_MAX_FEED_EVENTS
#define FEED_PAGES_MAX 100000000u   /* bound of the reader's loop */

typedef struct batch {
    uint64_t no;       /* 1, 2, ... in file order */
    uint64_t dep;      /* may be sent once every batch <= dep is answered */
    bool barrier;      /* the next batch depends on this one */
    bool in_flight;    /* handed to a lane, not answered yet */
    uint32_t n;
    sim_cmd *cmds;     /* [batch cap] */
} batch;

typedef struct replay replay;

typedef struct lane {
    replay *rp;
    pthread_t thread;
    nng_ctx ctx;
    nng_aio *aio;
    batch *b;              /* the batch being sent, NULL when idle */
    uint64_t floor_seq;    /* highest seq answered before b was sent */
    wire_cmd *w;           /* [batch cap] the wire commands of b */
    uint32_t *idx;         /* [batch cap] w[i] is b->cmds[idx[i]] */
    uint8_t *buf;          /* the encoded message */
    size_t buf_cap;
    bool stop;
} lane;

struct replay {
    const sim_day_header *hdr;
    sim_report *report;
    nng_socket sock;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sim_replay_maps maps;
    sim_replay_stats stats;
    uint64_t *order_batch;    /* order_idx -> batch that placed it (0 = none) */
    uint64_t *account_batch;  /* account_idx -> batch that created it */
    lane *lanes;
    int n_lanes;
    uint32_t batch_cap;
    batch *pool;              /* n_lanes + 1 batches: in flight, or being filled */
    uint64_t sent_no;         /* batches handed to lanes */
    uint64_t max_seq;         /* highest seq seen in an answer (or at start) */
    uint64_t start_seq;
    /* the feed reader */
    pthread_t reader;
    bool reader_started;
    nng_ctx rctx;
    nng_aio *raio;
    uint64_t through_seq;     /* every event with seq <= this is recorded */
    uint64_t cur_seq;         /* feed cursor: last event read */
    uint32_t cur_index;
    bool done_sending;
    /* the ledger's position, from STATUS */
    wire_status_item st;
    long st_at_ms;
    bool ledger_waiting;      /* the sender waits for the ledger: poll STATUS */
    uint64_t stall_ledger_seq;
    long stall_since_ms;
    char err[256];
    bool failed;
};

static long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void fail_locked(replay *rp, const char *msg)
{
    if (!rp->failed)
        snprintf(rp->err, sizeof rp->err, "%s", msg);
    rp->failed = true;
    pthread_cond_broadcast(&rp->cv);
}

/* Waits on the condition at most ms (the reader's status poll and the
 * ledger wait need to wake up on time). Called with the mutex held. */
static void wait_ms(replay *rp, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&rp->cv, &rp->mu, &ts);
}

/* ---- batch bookkeeping (mutex held) ---- */

/* The highest batch number b such that every batch <= b is answered. */
static uint64_t answered_through(const replay *rp)
{
    uint64_t lo = rp->sent_no;
    for (int i = 0; i < rp->n_lanes; i++)
        if (rp->lanes[i].b && rp->lanes[i].b->no - 1 < lo)
            lo = rp->lanes[i].b->no - 1;
    return lo;
}

/* Below the lowest seq an unanswered batch can get: every command of ours
 * with a seq <= this is recorded. */
static uint64_t safe_seq(const replay *rp)
{
    uint64_t s = rp->max_seq;
    for (int i = 0; i < rp->n_lanes; i++)
        if (rp->lanes[i].b && rp->lanes[i].floor_seq < s)
            s = rp->lanes[i].floor_seq;
    return s;
}

static lane *idle_lane(replay *rp)
{
    for (int i = 0; i < rp->n_lanes; i++)
        if (!rp->lanes[i].b)
            return &rp->lanes[i];
    return NULL;
}

/* Whether the ledger (a feed consumer that moves the matcher's record of
 * its position) may be more than LEDGER_SLACK_SEQS commands behind what we
 * have sent, and in the older half of what the feed ring holds. The last
 * STATUS may be old: the lag counts from our own highest seq. (A caught-up
 * ledger reports seq - 1; the slack also keeps a fresh stack, whose ring
 * spans a few commands, from throttling.) */
static bool ledger_behind(const replay *rp)
{
    const wire_status_item *s = &rp->st;
    uint64_t head = rp->max_seq > s->seq ? rp->max_seq : s->seq;
    if (s->ledger_seq == 0 || s->ledger_seq >= head || head - s->ledger_seq <= LEDGER_SLACK_SEQS)
        return false;
    return (head - s->ledger_seq) * 2 > head - s->feed_first_seq;
}

/* Whether the reader should ask for STATUS now. STATUS is not free (the
 * matcher hashes its whole state for it, O(resting orders) on its engine
 * thread), so it is asked only while the sender waits for the ledger, or
 * once we have sent half the slack since the last answer. */
static bool status_due(const replay *rp)
{
    if (mono_ms() - rp->st_at_ms < STATUS_EVERY_MS)
        return false;
    return rp->ledger_waiting || rp->max_seq >= rp->st.seq + LEDGER_SLACK_SEQS / 2;
}

/* ---- one command on the wire ---- */

/* The wire command for a day-file command of batch batch_no; false when
 * it cannot be sent (a cancel/replace of an order the matcher never
 * accepted). Orders carry their ref as client_order_id, so a cancel or
 * replace of an order placed in the same batch names it by ref (the
 * matcher resolves it); an earlier order is named by the id it got. */
static bool to_wire(const replay *rp, const sim_cmd *c, uint64_t batch_no, wire_cmd *w)
{
    memset(w, 0, sizeof *w);
    /* the line's time: the matcher keeps it when it lies in the current
     * clock hour (--clock sim), so trades come back with their line's t */
    if (c->op != SIM_OP_CLOCK)
        w->ts_us = (rp->hdr->start_hour * 3600 + c->t_s) * 1000000;
    switch (c->op) {
    case SIM_OP_CLOCK:
        w->type = MATCHER_CMD_ADVANCE_CLOCK;
        w->clock_hour = c->hour;
        return true;
    case SIM_OP_ACCOUNT:
        w->type = MATCHER_CMD_CREATE_ACCOUNT;
        w->roles = c->roles;
        snprintf(w->name, sizeof w->name, "%s", c->account);
        return true;
    case SIM_OP_DEPOSIT:
        w->type = MATCHER_CMD_DEPOSIT;
        w->account = rp->maps.account_ids[c->account_idx];
        w->amount_micros = c->amount_micros;
        return w->account != 0;
    case SIM_OP_ORDER:
        w->type = MATCHER_CMD_NEW_ORDER;
        w->account = rp->maps.account_ids[c->account_idx];
        w->market = (uint32_t)c->market;
        w->side = c->side;
        w->tif = c->tif;
        w->single_provider = c->single_provider;
        w->qty = c->qty;
        w->min_qty = c->min_qty;
        w->min_hours = c->min_hours;
        w->price_micros = c->price_micros;
        w->start_hour = c->start_hour;
        w->end_hour = c->end_hour;
        w->expire_at_hour = c->expire_at_hour;
        snprintf(w->client_order_id, sizeof w->client_order_id, "%s", c->ref);
        return w->account != 0;
    case SIM_OP_CANCEL:
    case SIM_OP_REPLACE:
        w->type = c->op == SIM_OP_CANCEL ? MATCHER_CMD_CANCEL : MATCHER_CMD_REPLACE;
        w->account = rp->maps.account_ids[c->account_idx];
        if (c->op == SIM_OP_REPLACE) {
            w->price_micros = c->price_micros;
            w->qty = c->qty;
        }
        if (c->order_idx >= rp->maps.n_orders)
            return false;
        if (rp->order_batch[c->order_idx] == batch_no) {
            snprintf(w->client_order_id, sizeof w->client_order_id, "%s", c->ref);
            return w->account != 0;
        }
        w->order_id = rp->maps.order_ids[c->order_idx];
        return w->order_id != 0 && w->account != 0;
    default:
        return false;
    }
}

/* Records one command's outcome. Mutex held. */
static void record_result(replay *rp, const sim_cmd *c, uint16_t status, uint16_t reason, uint64_t seq,
                          uint64_t order_id, uint32_t account)
{
    if ((c->op == SIM_OP_CANCEL || c->op == SIM_OP_REPLACE) && status == WIRE_ST_REJECTED &&
        reason == MATCHER_REJ_UNKNOWN_ORDER && c->order_idx < rp->maps.n_orders &&
        rp->maps.order_ids[c->order_idx] == 0) {
        /* named by ref in its order's batch, and that order was rejected:
         * what to_wire skips when the order's answer came first */
        rp->stats.skipped++;
        return;
    }
    rp->stats.commands++;
    if (status == WIRE_ST_REJECTED || status == WIRE_ST_CONFLICT) {
        /* CONFLICT: a cancel/replace of an order the service knows closed
         * (the API's 409), or a duplicate account name */
        rp->stats.rejected++;
        sim_report_reject(rp->report, c->op,
                          status == WIRE_ST_CONFLICT ? "conflict" : matcher_reason_code((matcher_reason)reason));
        return;
    }
    if (status != WIRE_ST_OK) {
        char msg[160];
        snprintf(msg, sizeof msg, "matcher answered %s to the command of op %d at t=%lld", wire_status_name(status),
                 c->op, (long long)c->t_s);
        fail_locked(rp, msg);
        return;
    }
    if (seq > rp->max_seq)
        rp->max_seq = seq;
    if (c->op == SIM_OP_ACCOUNT) {
        sim_replay_maps_account(&rp->maps, c->account_idx, account);
        sim_report_account(rp->report, c->account_idx, c->account, c->kind);
    } else if (c->op == SIM_OP_ORDER) {
        sim_replay_maps_order(&rp->maps, c->order_idx, order_id);
        sim_report_order(rp->report, c);
    } else if (c->op == SIM_OP_REPLACE) {
        sim_report_replace(rp->report, c->order_idx, c->qty);
    }
}

/* Reads the answer to the lane's message (n wire commands) and records
 * each command's outcome. A message of one command is answered with a
 * plain reply (its events are in the feed too); a batch with one
 * WIRE_ITEM_RESULT per command. Mutex held. */
static void record_answer(replay *rp, lane *l, uint32_t n, const uint8_t *buf, size_t len)
{
    wire_reply r;
    wire_reader rd;
    char err[160];
    if (wire_decode_reply(buf, len, &r, &rd, err, sizeof err) != 0) {
        fail_locked(rp, err);
        return;
    }
    if (n == 1) {
        record_result(rp, &l->b->cmds[l->idx[0]], r.status, r.reason, r.seq, r.order_id, r.account);
        return;
    }
    if (r.status != WIRE_ST_OK || rd.left != n) {
        char msg[200];
        snprintf(msg, sizeof msg, "matcher answered a batch of %u commands with %s (%u results): %s", n,
                 wire_status_name(r.status), rd.left, r.detail);
        fail_locked(rp, msg);
        return;
    }
    uint16_t type;
    wire_item it;
    for (uint32_t i = 0; i < n && !rp->failed; i++) {
        if (wire_reader_next(&rd, &type, &it, err, sizeof err) != 1 || type != WIRE_ITEM_RESULT) {
            fail_locked(rp, "a batch answer without its per-command results");
            return;
        }
        record_result(rp, &l->b->cmds[l->idx[i]], it.result.status, it.result.reason, it.result.seq,
                      it.result.order_id, it.result.account);
    }
}

/* Sends the lane's batch and records the answer. */
static void send_batch(replay *rp, lane *l)
{
    uint32_t n = 0;
    pthread_mutex_lock(&rp->mu);
    for (uint32_t i = 0; i < l->b->n; i++) {
        if (to_wire(rp, &l->b->cmds[i], l->b->no, &l->w[n])) {
            /* a cancel/replace that names its order by ref */
            if (l->w[n].type != MATCHER_CMD_NEW_ORDER && l->w[n].client_order_id[0])
                rp->stats.by_ref++;
            l->idx[n++] = i;
        }
        else
            rp->stats.skipped++; /* its order (or account) was rejected: nothing to do */
    }
    if (n > 0)
        rp->stats.messages++;
    pthread_mutex_unlock(&rp->mu);
    if (n == 0)
        return;
    size_t len = wire_encode_cmds(l->buf, l->buf_cap, l->w, n);
    GPUX_ASSERT(len > 0);
    nng_msg *msg = NULL;
    long t0 = mono_ms();
    int rv = sim_replay_call(l->ctx, l->aio, l->buf, len, &msg);
    long t1 = mono_ms();
    pthread_mutex_lock(&rp->mu);
    rp->stats.answer_wait_ms += t1 - t0;
    if (rv != 0) {
        char m[160];
        snprintf(m, sizeof m, "the matcher did not answer a batch of %u commands: %s", n, nng_strerror(rv));
        fail_locked(rp, m);
    } else {
        record_answer(rp, l, n, nng_msg_body(msg), nng_msg_len(msg));
        nng_msg_free(msg);
    }
    pthread_mutex_unlock(&rp->mu);
}

static void *lane_main(void *arg)
{
    lane *l = arg;
    replay *rp = l->rp;
    pthread_mutex_lock(&rp->mu);
    for (;;) {
        while (!l->b && !l->stop)
            pthread_cond_wait(&rp->cv, &rp->mu);
        if (!l->b)
            break;
        if (!rp->failed) {
            pthread_mutex_unlock(&rp->mu);
            send_batch(rp, l);
            pthread_mutex_lock(&rp->mu);
        }
        l->b->in_flight = false;
        l->b = NULL;
        pthread_cond_broadcast(&rp->cv);
    }
    pthread_mutex_unlock(&rp->mu);
    return NULL;
}

/* ---- the feed reader ---- */

/* Records the trades of one feed page up to the safe seq. Returns the
 * events read; *more when the page was full. Mutex held. */
static uint32_t record_page(replay *rp, wire_reader *rd, uint64_t safe, bool *more)
{
    uint16_t type;
    wire_item it;
    char err[160];
    int n;
    uint32_t got = 0;
    bool past = false;
    int64_t day0_us = rp->hdr->start_hour * 3600 * 1000000, day_s = (int64_t)rp->hdr->hours * 3600;
    while ((n = wire_reader_next(rd, &type, &it, err, sizeof err)) == 1) {
        if (type != WIRE_ITEM_EVENT) {
            fail_locked(rp, "the matcher's feed answered with an item that is not an event");
            return got;
        }
        if (it.event.seq > safe) {
            past = true; /* its command's answer is not recorded yet: next time */
            break;
        }
        got++;
        rp->stats.events++;
        rp->cur_seq = it.event.seq;
        rp->cur_index = it.event.index;
        if (it.event.type != MATCHER_EV_TRADE)
            continue;
        int64_t t_s = (it.event.ts_us - day0_us) / 1000000;
        t_s = t_s < 0 ? 0 : t_s >= day_s ? day_s - 1 : t_s;
        if (sim_replay_record_trade(&rp->maps, rp->report, t_s, &it.event, &rp->stats) < 0) {
            snprintf(err, sizeof err, "the matcher reported trade %llu that the report finds impossible",
                     (unsigned long long)it.event.trade_id);
            fail_locked(rp, err);
            return got;
        }
    }
    if (n < 0)
        fail_locked(rp, err);
    *more = !past && rd->left == 0 && got == FEED_PAGE_EVENTS;
    /* a full page may end inside a command: only the commands before its
     * last one are surely complete */
    rp->through_seq = *more ? (rp->cur_seq > 0 ? rp->cur_seq - 1 : 0) : safe;
    return got;
}

/* One feed page after the cursor. Returns false (failed set) on error. */
static bool read_page(replay *rp, uint64_t safe, bool *more)
{
    wire_query q = {.type = WIRE_Q_FEED, .flags = WIRE_QF_OBSERVER, .limit = FEED_PAGE_EVENTS};
    pthread_mutex_lock(&rp->mu);
    q.after = rp->cur_seq;
    q.after_index = rp->cur_index;
    pthread_mutex_unlock(&rp->mu);
    uint8_t buf[sizeof(wire_hdr) + sizeof(wire_query)];
    size_t len = wire_encode_query(buf, sizeof buf, &q);
    nng_msg *msg = NULL;
    int rv = sim_replay_call(rp->rctx, rp->raio, buf, len, &msg);
    wire_reply r;
    wire_reader rd;
    char err[200];
    pthread_mutex_lock(&rp->mu);
    if (rv != 0) {
        snprintf(err, sizeof err, "reading the matcher's feed: %s", nng_strerror(rv));
        fail_locked(rp, err);
    } else if (wire_decode_reply(nng_msg_body(msg), nng_msg_len(msg), &r, &rd, err, sizeof err) != 0) {
        fail_locked(rp, err);
    } else if (r.status != WIRE_ST_OK) {
        snprintf(err, sizeof err, "reading the matcher's feed: %s %s", wire_status_name(r.status), r.detail);
        fail_locked(rp, err);
    } else {
        record_page(rp, &rd, safe, more);
    }
    bool ok = !rp->failed;
    pthread_cond_broadcast(&rp->cv);
    pthread_mutex_unlock(&rp->mu);
    if (msg)
        nng_msg_free(msg);
    return ok;
}

/* Asks the matcher where the ledger is; keeps the answer for the sender. */
static bool read_status(replay *rp)
{
    wire_status_item st;
    char err[200];
    int rc = sim_replay_status(rp->rctx, rp->raio, &st, err, sizeof err);
    pthread_mutex_lock(&rp->mu);
    if (rc != 0) {
        fail_locked(rp, err);
    } else {
        rp->st = st;
        rp->st_at_ms = mono_ms();
        if (st.ledger_seq != rp->stall_ledger_seq) {
            rp->stall_ledger_seq = st.ledger_seq;
            rp->stall_since_ms = rp->st_at_ms;
        }
        pthread_cond_broadcast(&rp->cv);
    }
    bool ok = !rp->failed;
    pthread_mutex_unlock(&rp->mu);
    return ok;
}

static void *reader_main(void *arg)
{
    replay *rp = arg;
    bool more = false;
    for (uint32_t pages = 0; pages < FEED_PAGES_MAX; pages++) {
        pthread_mutex_lock(&rp->mu);
        /* sleep until there is something safe to read or a status is due */
        while (!rp->failed && !more && safe_seq(rp) <= rp->through_seq && !rp->done_sending && !status_due(rp))
            wait_ms(rp, STATUS_EVERY_MS);
        uint64_t safe = safe_seq(rp);
        bool ask = status_due(rp);
        bool finished = rp->done_sending && !more && rp->through_seq >= safe;
        bool stop = rp->failed || finished;
        pthread_mutex_unlock(&rp->mu);
        if (stop)
            break;
        if (ask && !read_status(rp))
            break;
        if ((more || safe > rp->through_seq || rp->done_sending) && !read_page(rp, safe, &more))
            break;
    }
    pthread_mutex_lock(&rp->mu);
    if (!rp->failed && !(rp->done_sending && rp->through_seq >= safe_seq(rp)))
        fail_locked(rp, "the feed did not end");
    pthread_mutex_unlock(&rp->mu);
    return NULL;
}

/* ---- the sender (the calling thread) ---- */

/* Hands the filled batch to an idle lane once the batches it depends on
 * are answered and neither the ledger nor our own feed reader is too far
 * behind. Returns the (empty) batch to fill next. */
static batch *dispatch(replay *rp, batch *cur)
{
    pthread_mutex_lock(&rp->mu);
    lane *l = NULL;
    long wait_from = 0, t0 = mono_ms();
    for (;;) {
        if (rp->failed)
            break;
        l = idle_lane(rp);
        bool deps = answered_through(rp) >= cur->dep;
        bool reader = rp->max_seq - rp->through_seq <= READER_LAG_SEQS;
        bool ledger = !ledger_behind(rp);
        if (l && deps && reader && ledger)
            break;
        if (l && deps && reader) { /* only the ledger holds us back */
            long now = mono_ms();
            wait_from = wait_from ? wait_from : now;
            rp->ledger_waiting = true;
            long since = rp->stall_since_ms > wait_from ? rp->stall_since_ms : wait_from;
            if (now - since > LEDGER_STALL_MS) {
                char m[200];
                snprintf(m, sizeof m, "the ledger has not moved for %d s (at seq %llu of %llu); stopping so it "
                         "does not fall off the matcher's feed", LEDGER_STALL_MS / 1000,
                         (unsigned long long)rp->st.ledger_seq, (unsigned long long)rp->st.seq);
                fail_locked(rp, m);
                break;
            }
        }
        wait_ms(rp, 20);
    }
    rp->ledger_waiting = false;
    if (wait_from)
        rp->stats.ledger_wait_ms += mono_ms() - wait_from;
    rp->stats.matcher_wait_ms += (wait_from ? wait_from : mono_ms()) - t0;
    if (!rp->failed) {
        cur->in_flight = true;
        l->b = cur;
        l->floor_seq = rp->max_seq;
        rp->sent_no = cur->no;
        pthread_cond_broadcast(&rp->cv);
    }
    if (rp->failed) {
        cur->n = 0; /* nothing more is sent */
        pthread_mutex_unlock(&rp->mu);
        return cur;
    }
    /* at most n_lanes batches are in flight: one of the n_lanes + 1 is free */
    batch *next = NULL;
    for (int i = 0; i <= rp->n_lanes && !next; i++)
        if (!rp->pool[i].in_flight && &rp->pool[i] != cur)
            next = &rp->pool[i];
    GPUX_ASSERT(next != NULL);
    next->no = cur->no + 1;
    next->dep = cur->barrier ? cur->no : 0;
    next->barrier = false;
    next->n = 0;
    pthread_mutex_unlock(&rp->mu);
    return next;
}

static void progress(const replay *rp, uint64_t done, long t0, bool final)
{
    long ms = mono_ms() - t0;
    uint64_t rate = ms > 0 ? done * 1000 / (uint64_t)ms : 0;
    const sim_day_header *h = rp->hdr;
    int pct = h->events ? (int)(done * 100 / h->events) : 100;
    fprintf(stderr,
            "\rreplay [%-40.*s] %3d%% %llu/%llu lines, %llu trades, %llu/s, %llu msgs, waited: matcher %.1f s, "
            "ledger %.1f s; answers %.1f s; batch cuts: %llu dep, %llu clock, %llu full%s",
            pct * 40 / 100, "########################################", pct, (unsigned long long)done,
            (unsigned long long)h->events, (unsigned long long)rp->stats.trades, (unsigned long long)rate,
            (unsigned long long)rp->stats.messages, rp->stats.matcher_wait_ms / 1000.0,
            rp->stats.ledger_wait_ms / 1000.0, rp->stats.answer_wait_ms / 1000.0,
            (unsigned long long)rp->stats.cuts_dep, (unsigned long long)rp->stats.cuts_clock,
            (unsigned long long)rp->stats.cuts_full, final ? "\n" : "");
}

/* The batch that created a command's account (0 = none pending): it must
 * be answered before the command is sent, since only its answer gives the
 * account id. */
static uint64_t needs_account(const replay *rp, const sim_cmd *c)
{
    if (c->op != SIM_OP_CLOCK && c->op != SIM_OP_ACCOUNT && c->account_idx < rp->maps.n_accounts)
        return rp->account_batch[c->account_idx];
    return 0;
}

/* The batch that placed a cancel's or replace's order (0 = none). Its own
 * batch is no obstacle (the order is named by ref there, see to_wire); an
 * earlier one must be answered first (with more lanes it might still be
 * in flight and be overtaken). */
static uint64_t needs_order(const replay *rp, const sim_cmd *c)
{
    if ((c->op == SIM_OP_CANCEL || c->op == SIM_OP_REPLACE) && c->order_idx < rp->maps.n_orders)
        return rp->order_batch[c->order_idx];
    return 0;
}

/* Adds a command to the batch being filled, cutting it first where the
 * command needs an answer the batch would only bring (see the header).
 * Returns the batch being filled afterwards. */
static batch *add(replay *rp, batch *cur, const sim_cmd *c)
{
    uint64_t d = needs_account(rp, c), d_order = needs_order(rp, c);
    bool clock = c->op == SIM_OP_CLOCK;
    if (cur->n > 0 && (d == cur->no || clock || cur->n == rp->batch_cap)) {
        /* why the batch ends here (docs/sim.md, Performance) */
        if (d == cur->no)
            rp->stats.cuts_dep++;
        else if (clock)
            rp->stats.cuts_clock++;
        else
            rp->stats.cuts_full++;
        cur = dispatch(rp, cur);
    }
    if (rp->failed)
        return cur;
    if (d_order > d && d_order < cur->no)
        d = d_order;
    if (d > cur->dep && d < cur->no)
        cur->dep = d;
    if (clock || c->op == SIM_OP_ACCOUNT || c->op == SIM_OP_DEPOSIT) {
        /* nothing before it may be unanswered, nothing after may overtake */
        cur->dep = cur->no - 1;
        cur->barrier = true;
    }
    GPUX_ASSERT(cur->n < rp->batch_cap);
    cur->cmds[cur->n++] = *c;
    if (c->op == SIM_OP_ORDER && c->order_idx < rp->maps.n_orders)
        rp->order_batch[c->order_idx] = cur->no;
    if (c->op == SIM_OP_ACCOUNT && c->account_idx < rp->maps.n_accounts)
        rp->account_batch[c->account_idx] = cur->no;
    return cur;
}

/* Waits until every lane is idle (all answered) or the replay failed. */
static void drain(replay *rp)
{
    pthread_mutex_lock(&rp->mu);
    while (answered_through(rp) < rp->sent_no && !rp->failed)
        pthread_cond_wait(&rp->cv, &rp->mu);
    pthread_mutex_unlock(&rp->mu);
}

/* Where the day's commands come from: the file, line by line as they are
 * sent, or an array read whole before the first one is sent (preload). */
typedef struct source {
    sim_dayfile *d;
    sim_cmd *all; /* preloaded commands, or NULL */
    uint64_t n, next;
} source;

static int source_next(source *s, sim_cmd *c, char *err, size_t errlen)
{
    if (!s->all)
        return sim_dayfile_next(s->d, c, err, errlen);
    if (s->next == s->n)
        return 0;
    *c = s->all[s->next++];
    return 1;
}

/* Reads and checks every line (the reader's checks are the same either
 * way: a bad line fails the replay before anything is sent). */
static int source_preload(source *s, const sim_day_header *h, char *err, size_t errlen)
{
    if (h->events > SIM_REPLAY_PRELOAD_MAX_EVENTS) {
        snprintf(err, errlen, "a day of %llu events is too large to preload (at most %llu): replay it without "
                 "preloading", (unsigned long long)h->events, (unsigned long long)SIM_REPLAY_PRELOAD_MAX_EVENTS);
        return -1;
    }
    s->all = malloc((size_t)(h->events ? h->events : 1) * sizeof *s->all);
    if (!s->all) {
        snprintf(err, errlen, "out of memory to preload %llu events", (unsigned long long)h->events);
        return -1;
    }
    int n;
    sim_cmd c;
    s->n = 0;
    while ((n = sim_dayfile_next(s->d, &c, err, errlen)) == 1) {
        GPUX_ASSERT(s->n < h->events); /* the reader refuses a line beyond the header's count */
        s->all[s->n++] = c;
    }
    return n;
}

static int run_lines(replay *rp, sim_dayfile *d, const sim_replay_config *cfg, char *err, size_t errlen)
{
    sim_cmd c;
    int n = 0;
    uint64_t done = 0;
    source src = {.d = d};
    if (cfg->preload) {
        long l0 = mono_ms();
        if (source_preload(&src, rp->hdr, err, errlen) != 0) {
            free(src.all);
            return -1;
        }
        rp->stats.load_ms = mono_ms() - l0;
        fprintf(stderr, "gpux-sim: replay: day loaded into memory: %llu lines in %.3f s\n",
                (unsigned long long)src.n, rp->stats.load_ms / 1000.0);
    }
    long t0 = mono_ms(), last = t0;
    batch *cur = &rp->pool[0];
    cur->no = 1;
    while (!rp->failed && (n = source_next(&src, &c, err, errlen)) == 1) {
        cur = add(rp, cur, &c);
        done++;
        if (cfg->progress && mono_ms() - last > 200) {
            last = mono_ms();
            progress(rp, done, t0, false);
        }
    }
    if (!rp->failed && n == 0 && cur->n > 0)
        dispatch(rp, cur);
    drain(rp);
    pthread_mutex_lock(&rp->mu);
    rp->done_sending = true;
    pthread_cond_broadcast(&rp->cv);
    pthread_mutex_unlock(&rp->mu);
    if (rp->reader_started) {
        pthread_join(rp->reader, NULL);
        rp->reader_started = false;
    }
    if (cfg->progress)
        progress(rp, done, t0, true);
    else /* where the time went, for a log or a bench (docs/sim.md) */
        fprintf(stderr, "gpux-sim: replay: %llu messages (batch cuts: %llu by a dependency, %llu by a clock "
                "line, %llu full; %llu cancels/replaces named by ref); the lanes waited %.1f s for answers, "
                "the day's reader %.1f s for them, %.1f s for the ledger\n", (unsigned long long)rp->stats.messages,
                (unsigned long long)rp->stats.cuts_dep, (unsigned long long)rp->stats.cuts_clock,
                (unsigned long long)rp->stats.cuts_full, (unsigned long long)rp->stats.by_ref,
                rp->stats.answer_wait_ms / 1000.0,
                rp->stats.matcher_wait_ms / 1000.0, rp->stats.ledger_wait_ms / 1000.0);
    rp->stats.seconds_ms = mono_ms() - t0;
    free(src.all);
    return rp->failed ? 0 : n < 0 ? -1 : 0; /* a failure's reason is in rp->err */
}

/* ---- setup ---- */

static int lane_init(replay *rp, lane *l)
{
    l->rp = rp;
    l->buf_cap = sizeof(wire_hdr) + (size_t)rp->batch_cap * sizeof(wire_cmd);
    l->w = calloc(rp->batch_cap, sizeof(wire_cmd));
    l->idx = calloc(rp->batch_cap, sizeof(uint32_t));
    l->buf = malloc(l->buf_cap);
    if (!l->w || !l->idx || !l->buf)
        return -1;
    if (nng_ctx_open(&l->ctx, rp->sock) != 0 || nng_aio_alloc(&l->aio, NULL, NULL) != 0)
        return -1;
    nng_aio_set_timeout(l->aio, REPLY_TIMEOUT_MS);
    return 0;
}

static int replay_init(replay *rp, const sim_day_header *h, const sim_replay_config *cfg, char *err, size_t errlen)
{
    memset(rp, 0, sizeof *rp);
    rp->hdr = h;
    rp->n_lanes = cfg->lanes > 0 && cfg->lanes <= SIM_REPLAY_MAX_LANES ? cfg->lanes : 1;
    rp->batch_cap = cfg->batch > 0 && cfg->batch <= (int)WIRE_MAX_BATCH_CMDS ? (uint32_t)cfg->batch
                                                                              : WIRE_MAX_BATCH_CMDS;
    if ((uint64_t)rp->batch_cap * (uint64_t)rp->n_lanes > MAX_IN_FLIGHT_CMDS)
        rp->batch_cap = MAX_IN_FLIGHT_CMDS / (uint32_t)rp->n_lanes;
    pthread_mutex_init(&rp->mu, NULL);
    pthread_cond_init(&rp->cv, NULL);
    rp->lanes = calloc((size_t)rp->n_lanes, sizeof(lane));
    rp->pool = calloc((size_t)rp->n_lanes + 1, sizeof(batch));
    bool ok = rp->lanes && rp->pool && sim_replay_maps_init(&rp->maps, h) == 0;
    if (ok) {
        rp->order_batch = calloc(rp->maps.n_orders, sizeof(uint64_t));
        rp->account_batch = calloc(rp->maps.n_accounts, sizeof(uint64_t));
        ok = rp->order_batch && rp->account_batch;
    }
    for (int i = 0; ok && i <= rp->n_lanes; i++)
        ok = (rp->pool[i].cmds = calloc(rp->batch_cap, sizeof(sim_cmd))) != NULL;
    if (!ok) {
        snprintf(err, errlen, "out of memory for a day of %u orders", h->orders);
        return -1;
    }
    int rv = sim_replay_dial(&rp->sock, cfg->matcher_url);
    if (rv == 0)
        rv = nng_ctx_open(&rp->rctx, rp->sock);
    if (rv == 0)
        rv = nng_aio_alloc(&rp->raio, NULL, NULL);
    if (rv != 0) {
        snprintf(err, errlen, "cannot reach the matcher at %s: %s", cfg->matcher_url, nng_strerror(rv));
        return -1;
    }
    nng_aio_set_timeout(rp->raio, REPLY_TIMEOUT_MS);
    for (int i = 0; i < rp->n_lanes; i++)
        if (lane_init(rp, &rp->lanes[i]) != 0) {
            snprintf(err, errlen, "cannot set up replay lane %d", i);
            return -1;
        }
    /* where the feed stands now: the day's events come after it */
    wire_status_item st;
    char why[200];
    if (sim_replay_status(rp->rctx, rp->raio, &st, why, sizeof why) != 0) {
        snprintf(err, errlen, "cannot reach the matcher at %s: %s", cfg->matcher_url, why);
        return -1;
    }
    if (!st.clock_sim) {
        snprintf(err, errlen, "the matcher at %s runs on the wall clock: a day replay needs --clock sim",
                 cfg->matcher_url);
        return -1;
    }
    rp->st = st;
    rp->st_at_ms = rp->stall_since_ms = mono_ms();
    rp->stall_ledger_seq = st.ledger_seq;
    rp->start_seq = rp->max_seq = rp->through_seq = rp->cur_seq = st.seq;
    rp->cur_index = UINT32_MAX; /* everything after command start_seq */
    return 0;
}

static void replay_free(replay *rp)
{
    for (int i = 0; rp->lanes && i < rp->n_lanes; i++) {
        if (rp->lanes[i].aio)
            nng_aio_free(rp->lanes[i].aio);
        free(rp->lanes[i].w);
        free(rp->lanes[i].idx);
        free(rp->lanes[i].buf);
    }
    if (rp->raio)
        nng_aio_free(rp->raio);
    nng_close(rp->sock);
    for (int i = 0; rp->pool && i <= rp->n_lanes; i++)
        free(rp->pool[i].cmds);
    sim_replay_maps_free(&rp->maps);
    free(rp->order_batch);
    free(rp->account_batch);
    free(rp->lanes);
    free(rp->pool);
    pthread_mutex_destroy(&rp->mu);
    pthread_cond_destroy(&rp->cv);
}

static int start_threads(replay *rp, int *started, char *err, size_t errlen)
{
    for (; *started < rp->n_lanes; (*started)++)
        if (pthread_create(&rp->lanes[*started].thread, NULL, lane_main, &rp->lanes[*started]) != 0) {
            snprintf(err, errlen, "cannot start replay lane %d", *started);
            return -1;
        }
    if (pthread_create(&rp->reader, NULL, reader_main, rp) != 0) {
        snprintf(err, errlen, "cannot start the feed reader");
        return -1;
    }
    rp->reader_started = true;
    return 0;
}

static void stop_threads(replay *rp, int started)
{
    pthread_mutex_lock(&rp->mu);
    if (rp->reader_started && !rp->failed)
        fail_locked(rp, "replay stopped early"); /* only reached on a setup error */
    for (int i = 0; i < started; i++)
        rp->lanes[i].stop = true;
    pthread_cond_broadcast(&rp->cv);
    pthread_mutex_unlock(&rp->mu);
    if (rp->reader_started)
        pthread_join(rp->reader, NULL);
    rp->reader_started = false;
    for (int i = 0; i < started; i++)
        pthread_join(rp->lanes[i].thread, NULL);
}

int sim_replay_nng(const char *day_path, const sim_replay_config *cfg, sim_report **out_report,
                   sim_replay_stats *stats, char *err, size_t errlen)
{
    *out_report = NULL;
    memset(stats, 0, sizeof *stats);
    sim_dayfile *d = sim_dayfile_open(day_path, err, errlen);
    if (!d)
        return -1;
    const sim_day_header *h = sim_dayfile_header(d);
    replay rp;
    int rc = replay_init(&rp, h, cfg, err, errlen);
    rp.report = rc == 0 ? sim_report_create(h->hours, h->orders + 1, h->accounts + 1) : NULL;
    if (rc == 0 && !rp.report) {
        snprintf(err, errlen, "cannot create the report");
        rc = -1;
    }
    int started = 0;
    if (rc == 0)
        rc = start_threads(&rp, &started, err, errlen);
    if (rc == 0)
        rc = run_lines(&rp, d, cfg, err, errlen);
    stop_threads(&rp, started);
    if (rc == 0 && rp.failed) {
        snprintf(err, errlen, "%s", rp.err);
        rc = -1;
    }
    *stats = rp.stats;
    if (rc == 0)
        *out_report = rp.report;
    else
        sim_report_destroy(rp.report);
    replay_free(&rp);
    sim_dayfile_close(d);
    return rc;
}
