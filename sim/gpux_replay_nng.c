/* gpux_replay_nng.c — replays a day file straight into a running
 * gpux-matcher over nng (the wire format of include/gpux_wire.h), as fast
 * as the matcher acknowledges, and builds the day's report from the
 * replies.
 *
 * Concurrency: LANES worker threads, each with its own REQ context, so
 * many commands are in flight and the matcher's group commit batches their
 * fsyncs. An order and its later cancels and replaces always go to the
 * same lane, in file order, so a cancel follows its order and sees its id.
 * CLOCK, ACCOUNT and DEPOSIT lines are barriers (every lane drains first),
 * so accounts exist and are funded before their orders, and the clock
 * moves only between hours' commands. Within an hour, orders of different
 * lanes race like independent clients do. The
 * report is shared by the lanes under one mutex (it is only touched once
 * per reply).
 *
 * Because lanes race, a reply can carry a trade against a resting order
 * whose own reply (and so its id) has not been recorded yet. Such trades
 * are held back and recorded once every reply is in; only what is still
 * unknown then is foreign (an order from before this day). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>

#include "gpux_assert.h"
#include "gpux_wire.h"
#include "sim/gpux_replay_core.h"

#define LANE_QUEUE 256          /* commands queued per lane */
#define REPLY_TIMEOUT_MS 30000  /* a matcher that does not answer in this is down */
#define PENDING_TRADES 4096     /* trades held back until their orders' ids are known */

typedef struct lane lane;

typedef struct replay {
    const sim_dayfile *day;
    sim_report *report;
    nng_socket sock;
    pthread_mutex_t mu;         /* report, maps, counters, lane state */
    pthread_cond_t cv;
    sim_replay_maps maps;
    sim_replay_stats stats;
    wire_event *pending;        /* trades held back (see the header comment) */
    int64_t *pending_t_s;
    uint32_t n_pending;
    char err[256];
    bool failed;
    lane *lanes;
    int n_lanes;
} replay;

struct lane {
    replay *rp;
    pthread_t thread;
    nng_ctx ctx;
    nng_aio *aio;
    sim_cmd q[LANE_QUEUE];
    uint32_t head, count;
    bool busy, stop;
};

static void fail_locked(replay *rp, const char *msg)
{
    if (!rp->failed)
        snprintf(rp->err, sizeof rp->err, "%s", msg);
    rp->failed = true;
    pthread_cond_broadcast(&rp->cv);
}

/* ---- one command ---- */

/* The wire command for a day-file command; false when it cannot be sent
 * (a cancel/replace of an order the matcher never accepted). */
static bool to_wire(replay *rp, const sim_cmd *c, wire_cmd *w)
{
    memset(w, 0, sizeof *w);
    w->ts_us = 0;
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
        return true;
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
        return true;
    case SIM_OP_CANCEL:
    case SIM_OP_REPLACE:
        w->type = c->op == SIM_OP_CANCEL ? MATCHER_CMD_CANCEL : MATCHER_CMD_REPLACE;
        w->account = rp->maps.account_ids[c->account_idx];
        w->order_id = rp->maps.order_ids[c->order_idx];
        if (c->op == SIM_OP_REPLACE) {
            w->price_micros = c->price_micros;
            w->qty = c->qty;
        }
        return w->order_id != 0;
    default:
        return false;
    }
}

/* Records a trade into the report, or holds it back while one of its
 * orders is not known yet (room permitting; a full buffer records it as
 * foreign, as before). Called with the mutex held. */
static void record_trade(replay *rp, int64_t t_s, const wire_event *ev)
{
    int rc = sim_replay_record_trade(&rp->maps, rp->report, t_s, ev, &rp->stats);
    if (rc < 0)
        fail_locked(rp, "the matcher reported a trade the report finds impossible");
    if (rc == 1 && rp->n_pending < PENDING_TRADES) {
        rp->stats.foreign_trades--; /* not yet: decided in record_pending */
        rp->pending[rp->n_pending] = *ev;
        rp->pending_t_s[rp->n_pending] = t_s;
        rp->n_pending++;
    }
}

/* Records the held-back trades once every reply is in. */
static void record_pending(replay *rp)
{
    pthread_mutex_lock(&rp->mu);
    for (uint32_t i = 0; i < rp->n_pending && !rp->failed; i++)
        if (sim_replay_record_trade(&rp->maps, rp->report, rp->pending_t_s[i], &rp->pending[i], &rp->stats) < 0)
            fail_locked(rp, "the matcher reported a trade the report finds impossible");
    rp->n_pending = 0;
    pthread_mutex_unlock(&rp->mu);
}

/* Reads one reply and records what it says. Called with the mutex held. */
static void record_reply(replay *rp, const sim_cmd *c, const uint8_t *buf, size_t len)
{
    wire_reply r;
    wire_reader rd;
    char err[160];
    if (wire_decode_reply(buf, len, &r, &rd, err, sizeof err) != 0) {
        fail_locked(rp, err);
        return;
    }
    rp->stats.commands++;
    if (r.status == WIRE_ST_REJECTED || r.status == WIRE_ST_CONFLICT) {
        /* CONFLICT: a cancel/replace of an order the service knows closed
         * (the API's 409) — a rejection like any other. */
        rp->stats.rejected++;
        sim_report_reject(rp->report, c->op,
                          r.status == WIRE_ST_CONFLICT ? "conflict" : matcher_reason_code((matcher_reason)r.reason));
        return;
    }
    if (r.status != WIRE_ST_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "matcher answered %s to a %d command: %s", wire_status_name(r.status), c->op,
                 r.detail);
        fail_locked(rp, msg);
        return;
    }
    if (c->op == SIM_OP_ACCOUNT) {
        sim_replay_maps_account(&rp->maps, c->account_idx, r.account);
        sim_report_account(rp->report, c->account_idx, c->account, c->kind);
    } else if (c->op == SIM_OP_ORDER) {
        sim_replay_maps_order(&rp->maps, c->order_idx, r.order_id);
        sim_report_order(rp->report, c);
    } else if (c->op == SIM_OP_REPLACE) {
        sim_report_replace(rp->report, c->order_idx, c->qty);
    }
    uint16_t type;
    wire_item it;
    int n;
    while ((n = wire_reader_next(&rd, &type, &it, err, sizeof err)) == 1) {
        rp->stats.events++;
        if (type == WIRE_ITEM_EVENT && it.event.type == MATCHER_EV_TRADE)
            record_trade(rp, c->t_s, &it.event);
    }
    if (n < 0)
        fail_locked(rp, err);
}

/* Sends one command on the lane's context and waits for its reply. */
static void send_one(replay *rp, lane *l, const sim_cmd *c)
{
    wire_cmd w;
    pthread_mutex_lock(&rp->mu);
    bool ok = to_wire(rp, c, &w);
    if (!ok) {
        rp->stats.skipped++; /* its order was rejected: nothing to cancel/replace */
        pthread_mutex_unlock(&rp->mu);
        return;
    }
    pthread_mutex_unlock(&rp->mu);
    uint8_t buf[sizeof(wire_hdr) + sizeof(wire_cmd)];
    size_t len = wire_encode_cmd(buf, sizeof buf, &w);
    nng_msg *msg = NULL;
    int rv = sim_replay_call(l->ctx, l->aio, buf, len, &msg);
    pthread_mutex_lock(&rp->mu);
    if (rv != 0) {
        char m[160];
        snprintf(m, sizeof m, "matcher did not answer: %s", nng_strerror(rv));
        fail_locked(rp, m);
    } else {
        record_reply(rp, c, nng_msg_body(msg), nng_msg_len(msg));
        nng_msg_free(msg);
    }
    pthread_mutex_unlock(&rp->mu);
}

/* ---- lanes ---- */

static void *lane_main(void *arg)
{
    lane *l = arg;
    replay *rp = l->rp;
    pthread_mutex_lock(&rp->mu);
    for (;;) {
        while (l->count == 0 && !l->stop && !rp->failed)
            pthread_cond_wait(&rp->cv, &rp->mu);
        if (l->count == 0 || rp->failed)
            break;
        sim_cmd c = l->q[l->head];
        l->busy = true;
        pthread_mutex_unlock(&rp->mu);
        send_one(rp, l, &c);
        pthread_mutex_lock(&rp->mu);
        l->head = (l->head + 1) % LANE_QUEUE;
        l->count--;
        l->busy = false;
        pthread_cond_broadcast(&rp->cv);
    }
    pthread_mutex_unlock(&rp->mu);
    return NULL;
}

static void lane_push(replay *rp, lane *l, const sim_cmd *c)
{
    pthread_mutex_lock(&rp->mu);
    while (l->count == LANE_QUEUE && !rp->failed)
        pthread_cond_wait(&rp->cv, &rp->mu);
    if (!rp->failed) {
        l->q[(l->head + l->count) % LANE_QUEUE] = *c;
        l->count++;
        pthread_cond_broadcast(&rp->cv);
    }
    pthread_mutex_unlock(&rp->mu);
}

static void drain_all(replay *rp)
{
    pthread_mutex_lock(&rp->mu);
    for (;;) {
        bool idle = true;
        for (int i = 0; i < rp->n_lanes; i++)
            idle = idle && rp->lanes[i].count == 0 && !rp->lanes[i].busy;
        if (idle || rp->failed)
            break;
        pthread_cond_wait(&rp->cv, &rp->mu);
    }
    pthread_mutex_unlock(&rp->mu);
}

/* ---- setup ---- */

static int replay_init(replay *rp, const sim_day_header *h, const sim_replay_config *cfg, char *err, size_t errlen)
{
    memset(rp, 0, sizeof *rp);
    rp->n_lanes = cfg->lanes > 0 && cfg->lanes <= 256 ? cfg->lanes : 32;
    rp->lanes = calloc((size_t)rp->n_lanes, sizeof(lane));
    rp->pending = calloc(PENDING_TRADES, sizeof(wire_event));
    rp->pending_t_s = calloc(PENDING_TRADES, sizeof(int64_t));
    if (sim_replay_maps_init(&rp->maps, h) != 0 || !rp->lanes || !rp->pending || !rp->pending_t_s) {
        snprintf(err, errlen, "out of memory for a day of %u orders", h->orders);
        return -1;
    }
    pthread_mutex_init(&rp->mu, NULL);
    pthread_cond_init(&rp->cv, NULL);
    int rv = sim_replay_dial(&rp->sock, cfg->matcher_url);
    if (rv != 0) {
        snprintf(err, errlen, "cannot reach the matcher at %s: %s", cfg->matcher_url, nng_strerror(rv));
        return -1;
    }
    return 0;
}

static void replay_free(replay *rp)
{
    nng_close(rp->sock);
    sim_replay_maps_free(&rp->maps);
    free(rp->lanes);
    free(rp->pending);
    free(rp->pending_t_s);
}

static long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void progress(const replay *rp, const sim_day_header *h, uint64_t done, long t0, bool final)
{
    long ms = mono_ms() - t0;
    uint64_t rate = ms > 0 ? done * 1000 / (uint64_t)ms : 0;
    int pct = h->events ? (int)(done * 100 / h->events) : 100;
    fprintf(stderr, "\rreplay [%-40.*s] %3d%% %llu/%llu lines, %llu trades, %llu/s%s", pct * 40 / 100,
            "########################################", pct, (unsigned long long)done,
            (unsigned long long)h->events, (unsigned long long)rp->stats.trades, (unsigned long long)rate,
            final ? "\n" : "");
}

static int run_lines(replay *rp, sim_dayfile *d, const sim_replay_config *cfg, char *err, size_t errlen)
{
    const sim_day_header *h = sim_dayfile_header(d);
    sim_cmd c;
    int n;
    uint64_t done = 0;
    long t0 = mono_ms(), last = t0;
    while ((n = sim_dayfile_next(d, &c, err, errlen)) == 1) {
        if (c.op == SIM_OP_CLOCK || c.op == SIM_OP_ACCOUNT || c.op == SIM_OP_DEPOSIT) {
            drain_all(rp); /* every earlier command is acknowledged first */
            if (rp->failed)
                break; /* lanes may still be in flight: never share their aio */
            send_one(rp, &rp->lanes[0], &c); /* lane 0 is idle here */
        } else {
            lane_push(rp, &rp->lanes[c.order_idx % (uint32_t)rp->n_lanes], &c);
        }
        if (rp->failed)
            break;
        done++;
        if (cfg->progress && mono_ms() - last > 200) {
            last = mono_ms();
            progress(rp, h, done, t0, false);
        }
    }
    drain_all(rp);
    record_pending(rp);
    if (cfg->progress)
        progress(rp, h, done, t0, true);
    rp->stats.seconds_ms = mono_ms() - t0;
    return n < 0 ? -1 : 0;
}

int sim_replay_nng(const char *day_path, const sim_replay_config *cfg, sim_report **out_report,
                   sim_replay_stats *stats, char *err, size_t errlen)
{
    *out_report = NULL;
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
    for (; rc == 0 && started < rp.n_lanes; started++) {
        lane *l = &rp.lanes[started];
        l->rp = &rp;
        if (nng_ctx_open(&l->ctx, rp.sock) != 0 || nng_aio_alloc(&l->aio, NULL, NULL) != 0 ||
            (nng_aio_set_timeout(l->aio, REPLY_TIMEOUT_MS), pthread_create(&l->thread, NULL, lane_main, l) != 0)) {
            snprintf(err, errlen, "cannot start replay lane %d", started);
            rc = -1;
            break;
        }
    }
    if (rc == 0)
        rc = run_lines(&rp, d, cfg, err, errlen);
    pthread_mutex_lock(&rp.mu);
    for (int i = 0; i < started; i++)
        rp.lanes[i].stop = true;
    pthread_cond_broadcast(&rp.cv);
    pthread_mutex_unlock(&rp.mu);
    for (int i = 0; i < started; i++) {
        pthread_join(rp.lanes[i].thread, NULL);
        nng_aio_free(rp.lanes[i].aio);
    }
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
