/* service_loop.c — the gpux-matcher process: endpoints, threads, journal,
 * snapshots, recovery.
 *
 * Threads and why:
 *   nng callbacks   receive requests on many REP contexts (command and feed
 *                   endpoints) and push them onto the inbound queue; after a
 *                   reply is sent they post the next receive.
 *   engine thread   the only thread touching the service/engine: takes every
 *                   queued request (up to batch_max), decodes, applies or
 *                   answers, and hands the batch (journal records + replies
 *                   + market data) to the journal thread. It goes on with
 *                   the next batch while the previous one is being synced.
 *   journal thread  writes the records of every batch handed over, makes
 *                   them durable in one step (group commit: one flush for
 *                   every command of every context in those batches), then
 *                   — only then — passes them to the sender, and starts the
 *                   next commit at once (no timer).
 *   sender thread   sends the durable batches' replies and publishes their
 *                   market data, while the next commit is being made
 *                   durable. Replies to queries wait in the same batch, so
 *                   nobody sees a state that could be lost.
 *   snapshot thread writes snapshots handed over by the engine thread once
 *                   the journal is durable past them, then prunes.
 * The main thread waits for SIGTERM/SIGINT, then shuts down in order and
 * writes a final snapshot.
 *
 * A journal write error is fatal: the process stops without replying, and
 * the next start recovers from the journal (nothing unacknowledged is
 * promised, nothing acknowledged is lost). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>

#include "gpux_assert.h"
#include "matcher/journal.h"
#include "matcher/service.h"
#include "matcher/service_pub.h"
#include "matcher/snapshot.h"

#define N_BATCHES 16
#define FEED_CONTEXTS 4
#define PUB_SENDBUF_MSGS 8192
/* nng counts the REQ/REP header (request id plus the hops of any
 * devices between, 4 bytes each, at most 8 hops) against the receive limit,
 * so the largest CMD message needs room for it too. */
#define SP_HEADER_MAX_BYTES 36
#define MAX_REQUEST_BYTES (sizeof(wire_hdr) + WIRE_MAX_BATCH_CMDS * sizeof(wire_cmd) + SP_HEADER_MAX_BYTES)

/* ---- logging ---------------------------------------------------------------- */

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    char msg[1600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s.%03ldZ gpux-matcher: %s\n", when, ts.tv_nsec / 1000000, msg);
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- commit figures ---------------------------------------------------------- */

/* A fixed histogram for the shutdown log: where a group commit's time goes
 * (write, fdatasync, sending the replies) and how many records it held.
 * Buckets are exact below 1024 and then 1/32 of a power of two wide
 * (~3 %), so percentiles are good to a few percent without allocating. */
#define HIST_BUCKETS (1024 + 32 * 32)
typedef struct stat_hist {
    uint64_t n, max;
    uint32_t b[HIST_BUCKETS];
} stat_hist;

static uint32_t hist_bucket(uint64_t v)
{
    if (v < 1024)
        return (uint32_t)v;
    uint32_t lg = 63u - (uint32_t)__builtin_clzll(v); /* >= 10 */
    if (lg > 41)
        return HIST_BUCKETS - 1;
    return 1024 + (lg - 10) * 32 + (uint32_t)((v >> (lg - 5)) & 31);
}

static uint64_t hist_bucket_low(uint32_t i)
{
    if (i < 1024)
        return i;
    uint32_t lg = (i - 1024) / 32 + 10, sub = (i - 1024) % 32;
    return (1ull << lg) + ((uint64_t)sub << (lg - 5));
}

static void hist_add(stat_hist *h, uint64_t v)
{
    h->b[hist_bucket(v)]++;
    h->n++;
    if (v > h->max)
        h->max = v;
}

/* The value below which a fraction per_mille/1000 of the samples lie. */
static uint64_t hist_pct(const stat_hist *h, uint32_t per_mille)
{
    uint64_t want = (h->n * per_mille + 999) / 1000, seen = 0;
    for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= want && seen > 0)
            return hist_bucket_low(i);
    }
    return h->max;
}

/* ---- state ------------------------------------------------------------------ */

typedef struct loop loop;

enum { CTX_RECV = 1, CTX_QUEUED, CTX_SEND };

typedef struct req_ctx {
    loop *L;
    nng_ctx ctx;
    nng_aio *aio;
    nng_msg *msg;
    bool feed; /* on the feed endpoint */
    int state;
    uint64_t recv_ns; /* when the request arrived (residence figures) */
} req_ctx;

typedef struct batch {
    journal_record *recs;
    uint32_t n_recs;
    req_ctx **ctxs;
    uint32_t n_ctxs;
    service_pubs pubs; /* market data, built by the engine thread */
    uint64_t last_seq;
    uint64_t submit_ns; /* handed to the journal thread */
    uint64_t synced_ns; /* durable */
} batch;

typedef struct snap_job {
    uint64_t seq;
    uint64_t hash;
    uint64_t ledger_seq;
    uint8_t *engine;
    size_t engine_len;
    uint8_t *svc;
    size_t svc_len;
} snap_job;

struct loop {
    const service_opts *o;
    service *svc;
    journal *jr;

    nng_socket cmd_sock, feed_sock, pub_sock;
    req_ctx *ctxs;
    uint32_t n_ctxs;

    /* inbound queue: one slot per context, so it can never overflow */
    pthread_mutex_t in_mu;
    pthread_cond_t in_cv;
    req_ctx **inq;
    uint32_t in_head, in_count;
    bool stop_engine;

    /* batches, a ring of N_BATCHES: the engine fills [b_head], the journal
     * thread makes [b_synced, b_head) durable, the sender thread answers
     * [b_tail, b_synced) and frees the slots. b_tail <= b_synced <= b_head.
     * One mutex; each thread waits on its own condition. */
    pthread_mutex_t b_mu;
    pthread_cond_t b_cv_engine, b_cv_journal, b_cv_sender;
    batch batches[N_BATCHES];
    uint64_t b_head, b_synced, b_tail;
    bool stop_journal, stop_sender;

    /* snapshots */
    pthread_mutex_t s_mu;
    pthread_cond_t s_cv;
    snap_job job;
    bool job_pending;
    bool stop_snap;
    _Atomic int subscribers; /* pipes on the PUB socket */
    _Atomic int stopping;    /* callbacks must not post new operations */
    _Atomic uint64_t durable_seq;
    _Atomic uint64_t snapshot_seq;
    _Atomic uint64_t prune_upto;
    uint64_t last_snap_cmd_seq;
    double last_snap_time;

    uint8_t *scratch; /* SERVICE_REPLY_MAX, engine thread */
    uint8_t *pub_build; /* SERVICE_PUBS_BUILD_BYTES, engine thread: every
                           batch builds its market data here */
    wire_cmd *cmds;   /* WIRE_MAX_BATCH_CMDS, engine thread */
    uint32_t rec_cap; /* journal records per batch */
    uint64_t n_bad, n_cmds, n_queries, pub_dropped;
    uint64_t n_commits, commit_recs, commit_ns; /* journal thread */
    stat_hist h_write_us, h_sync_us, h_recs; /* journal thread */
    stat_hist h_send_us;  /* sender thread: one round of replies */
    stat_hist h_resid_us; /* sender thread: request arrival to reply sent */
    stat_hist h_pick_us;  /* engine thread: request arrival to taken */
    stat_hist h_jwait_us; /* journal thread: batch handed over to written */
    stat_hist h_swait_us; /* sender thread: batch durable to sending */
};

/* ---- nng callbacks -------------------------------------------------------- */

static void ctx_cb(void *arg)
{
    req_ctx *c = arg;
    loop *L = c->L;
    int rv = nng_aio_result(c->aio);
    if (c->state == CTX_RECV) {
        if (rv != 0) {
            if (rv != NNG_ECLOSED && rv != NNG_ECANCELED && !atomic_load(&L->stopping))
                nng_ctx_recv(c->ctx, c->aio);
            return;
        }
        c->msg = nng_aio_get_msg(c->aio);
        c->state = CTX_QUEUED;
        c->recv_ns = mono_ns();
        pthread_mutex_lock(&L->in_mu);
        GPUX_ASSERT(L->in_count < L->n_ctxs);
        L->inq[(L->in_head + L->in_count) % L->n_ctxs] = c;
        L->in_count++;
        pthread_cond_signal(&L->in_cv);
        pthread_mutex_unlock(&L->in_mu);
        return;
    }
    GPUX_ASSERT(c->state == CTX_SEND);
    if (rv != 0) {
        nng_msg_free(nng_aio_get_msg(c->aio));
        nng_aio_set_msg(c->aio, NULL);
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
            return;
    }
    c->state = CTX_RECV;
    if (atomic_load(&L->stopping))
        return;
    nng_ctx_recv(c->ctx, c->aio);
}

/* ---- engine thread ---------------------------------------------------------- */

static void set_reply(loop *L, req_ctx *c, size_t len)
{
    nng_msg_clear(c->msg);
    if (nng_msg_append(c->msg, L->scratch, len) != 0) {
        /* out of memory for a big reply: say so in a small one */
        size_t n = service_reply_error(L->scratch, SERVICE_REPLY_MAX,
                                       WIRE_ST_UNAVAILABLE, "reply too large for memory");
        nng_msg_clear(c->msg);
        GPUX_ASSERT(nng_msg_append(c->msg, L->scratch, n) == 0);
    }
}

/* Applies one command (live) and queues its journal record. */
static void run_command(loop *L, batch *b, const wire_cmd *c, bool internal,
                        service_result *res)
{
    wire_cmd stamped;
    service_submit(L->svc, c, wall_us(), internal, res, &stamped);
    if (res->seq == 0)
        return;
    GPUX_ASSERT(b->n_recs < L->rec_cap);
    journal_record_encode(&b->recs[b->n_recs++], res->seq, &stamped);
    if (atomic_load(&L->subscribers) > 0) /* market data to nobody: skip it */
        service_pubs_command(&b->pubs, L->svc, res);
    L->n_cmds++;
}

/* A CMD message with several commands: applied in order, one RESULT item
 * each (events go to the feed and PUB only). */
static size_t handle_batch(loop *L, batch *b, const uint8_t *body, size_t len)
{
    char err[160];
    uint32_t n;
    if (wire_decode_cmds(body, len, L->cmds, WIRE_MAX_BATCH_CMDS, &n, err, sizeof err) < 0)
        return service_reply_error(L->scratch, SERVICE_REPLY_MAX, WIRE_ST_BAD_MESSAGE, err);
    wire_reply r;
    memset(&r, 0, sizeof r);
    size_t out = wire_reply_begin(L->scratch, SERVICE_REPLY_MAX, &r);
    for (uint32_t i = 0; i < n; i++) {
        service_result res;
        service_prefetch(L->svc, &L->cmds[i + 1], n - i - 1);
        run_command(L, b, &L->cmds[i], false, &res);
        wire_result w = {.status = res.status, .reason = res.reason,
                         .account = res.account, .seq = res.seq,
                         .order_id = res.order_id};
        out = wire_append_item(L->scratch, SERVICE_REPLY_MAX, out, WIRE_ITEM_RESULT, &w);
        GPUX_ASSERT(out > 0);
    }
    r.seq = service_seq(L->svc);
    memcpy(L->scratch + sizeof(wire_hdr), &r, sizeof r);
    return out;
}

static void handle_request(loop *L, batch *b, req_ctx *c)
{
    char err[160];
    const uint8_t *body = nng_msg_body(c->msg);
    size_t len = nng_msg_len(c->msg);
    wire_hdr h;
    size_t out;
    if (wire_decode_hdr(body, len, &h, err, sizeof err) < 0) {
        out = service_reply_error(L->scratch, SERVICE_REPLY_MAX, WIRE_ST_BAD_MESSAGE, err);
    } else if (h.kind == WIRE_KIND_CMD && !c->feed && h.count > 1) {
        out = handle_batch(L, b, body, len);
    } else if (h.kind == WIRE_KIND_CMD && !c->feed) {
        wire_cmd cmd;
        if (wire_decode_cmd(body, len, &cmd, err, sizeof err) < 0) {
            out = service_reply_error(L->scratch, SERVICE_REPLY_MAX, WIRE_ST_BAD_MESSAGE, err);
        } else {
            service_result res;
            run_command(L, b, &cmd, false, &res);
            out = service_reply_cmd(L->svc, &res, L->scratch, SERVICE_REPLY_MAX);
        }
    } else if (h.kind == WIRE_KIND_QUERY) {
        wire_query q;
        if (wire_decode_query(body, len, &q, err, sizeof err) < 0) {
            out = service_reply_error(L->scratch, SERVICE_REPLY_MAX, WIRE_ST_BAD_MESSAGE, err);
        } else if (c->feed && q.type != WIRE_Q_FEED && q.type != WIRE_Q_STATUS) {
            out = service_reply_error(L->scratch, SERVICE_REPLY_MAX, WIRE_ST_BAD_MESSAGE,
                                      "the feed endpoint answers FEED and STATUS only");
        } else {
            out = service_query(L->svc, &q, L->scratch, SERVICE_REPLY_MAX);
            L->n_queries++;
        }
    } else {
        snprintf(err, sizeof err, "message kind %u not accepted on this endpoint", h.kind);
        out = service_reply_error(L->scratch, SERVICE_REPLY_MAX, WIRE_ST_BAD_MESSAGE, err);
    }
    if (out > 0 && ((wire_reply *)(L->scratch + sizeof(wire_hdr)))->status == WIRE_ST_BAD_MESSAGE) {
        L->n_bad++;
        /* rate-limit: log the first 20, then every 1000th */
        if (L->n_bad <= 20 || L->n_bad % 1000 == 0)
            logf_("bad message #%" PRIu64 " (%zu bytes) on the %s endpoint: %s",
                  L->n_bad, len, c->feed ? "feed" : "command",
                  ((wire_reply *)(L->scratch + sizeof(wire_hdr)))->detail);
    }
    set_reply(L, c, out);
    b->ctxs[b->n_ctxs++] = c;
}

static batch *batch_acquire(loop *L)
{
    pthread_mutex_lock(&L->b_mu);
    while (L->b_head - L->b_tail == N_BATCHES)
        pthread_cond_wait(&L->b_cv_engine, &L->b_mu);
    batch *b = &L->batches[L->b_head % N_BATCHES];
    pthread_mutex_unlock(&L->b_mu);
    b->n_recs = b->n_ctxs = 0;
    service_pubs_reset(&b->pubs);
    return b;
}

static void batch_submit(loop *L, batch *b)
{
    service_pubs_end_batch(&b->pubs);
    b->last_seq = service_seq(L->svc);
    b->submit_ns = mono_ns();
    pthread_mutex_lock(&L->b_mu);
    L->b_head++;
    pthread_cond_signal(&L->b_cv_journal);
    pthread_mutex_unlock(&L->b_mu);
}

static void maybe_snapshot(loop *L, bool force);

static void *engine_main(void *arg)
{
    loop *L = arg;
    req_ctx **take = calloc(L->n_ctxs, sizeof *take);
    GPUX_ASSERT(take != NULL);
    for (;;) {
        uint32_t n = 0;
        pthread_mutex_lock(&L->in_mu);
        if (L->in_count == 0 && !L->stop_engine) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 1; /* wake up for the wall clock and snapshots */
            pthread_cond_timedwait(&L->in_cv, &L->in_mu, &until);
        }
        while (L->in_count > 0 && n < L->o->batch_max) {
            take[n++] = L->inq[L->in_head];
            L->in_head = (L->in_head + 1) % L->n_ctxs;
            L->in_count--;
        }
        bool stop = L->stop_engine && L->in_count == 0;
        pthread_mutex_unlock(&L->in_mu);
        uint64_t now = n > 0 ? mono_ns() : 0;
        for (uint32_t i = 0; i < n; i++)
            hist_add(&L->h_pick_us, (now - take[i]->recv_ns) / 1000);

        service_set_snapshot_seq(L->svc, atomic_load(&L->snapshot_seq));
        wire_cmd tick;
        bool due = service_clock_due(L->svc, wall_us(), &tick);
        if (n > 0 || due) {
            batch *b = batch_acquire(L);
            if (due) {
                service_result res;
                run_command(L, b, &tick, true, &res);
                if (res.seq)
                    logf_("clock advanced to hour %" PRId64 " (seq %" PRIu64 ")",
                          tick.clock_hour, res.seq);
            }
            for (uint32_t i = 0; i < n; i++) {
                /* a request may carry a whole batch of commands: start a
                 * new group commit when this one could overflow */
                if (b->n_recs + WIRE_MAX_BATCH_CMDS + 1 > L->rec_cap) {
                    batch_submit(L, b);
                    b = batch_acquire(L);
                }
                handle_request(L, b, take[i]);
            }
            batch_submit(L, b);
        }
        if (stop)
            break;
        maybe_snapshot(L, false);
    }
    free(take);
    return NULL;
}

/* ---- journal thread ----------------------------------------------------------- */

/* Sends a committed batch's replies and market data. */
static void release_batch(loop *L, batch *b)
{
    /* the one rule of the service: no reply before its commands are on
     * disk (the journal thread moved durable_seq past them) */
    GPUX_ASSERT(b->last_seq <= atomic_load(&L->durable_seq));
    uint64_t now = b->n_ctxs > 0 ? mono_ns() : 0;
    for (uint32_t i = 0; i < b->n_ctxs; i++) {
        req_ctx *c = b->ctxs[i];
        hist_add(&L->h_resid_us, (now - c->recv_ns) / 1000);
        c->state = CTX_SEND;
        nng_aio_set_msg(c->aio, c->msg);
        c->msg = NULL;
        nng_ctx_send(c->ctx, c->aio);
    }
    for (uint32_t i = 0; i < b->pubs.n; i++)
        if (nng_sendmsg(L->pub_sock, b->pubs.msgs[i], NNG_FLAG_NONBLOCK) != 0)
            nng_msg_free(b->pubs.msgs[i]);
    b->pubs.n = 0;
}

/* Group commit: every batch the engine has handed over since the last
 * commit is written, one durable step covers them all (journal_sync: one
 * direct write, or one fdatasync), then they go to the sender thread and
 * the next commit starts at once, with no timer: sending replies (~10-30
 * us of nng work each) overlaps the next commit instead of delaying it. */
static void *journal_main(void *arg)
{
    loop *L = arg;
    char err[256];
    for (;;) {
        pthread_mutex_lock(&L->b_mu);
        while (L->b_synced == L->b_head && !L->stop_journal)
            pthread_cond_wait(&L->b_cv_journal, &L->b_mu);
        uint64_t first = L->b_synced, end = L->b_head;
        pthread_mutex_unlock(&L->b_mu);
        if (first == end)
            break;

        uint64_t t0 = mono_ns();
        uint64_t recs = 0, last_seq = 0;
        for (uint64_t k = first; k < end; k++) {
            batch *b = &L->batches[k % N_BATCHES];
            if (journal_write(L->jr, b->recs, b->n_recs, err, sizeof err) < 0)
                goto fatal;
            recs += b->n_recs;
            if (b->n_recs > 0)
                last_seq = b->last_seq;
        }
        uint64_t t1 = mono_ns();
        if (journal_sync(L->jr, err, sizeof err) < 0)
            goto fatal;
        uint64_t t2 = mono_ns();
        hist_add(&L->h_jwait_us, (t0 - L->batches[first % N_BATCHES].submit_ns) / 1000);
        for (uint64_t k = first; k < end; k++)
            L->batches[k % N_BATCHES].synced_ns = t2;
        if (recs > 0) {
            L->n_commits++;
            L->commit_recs += recs;
            L->commit_ns += t2 - t0;
            hist_add(&L->h_write_us, (t1 - t0) / 1000);
            hist_add(&L->h_sync_us, (t2 - t1) / 1000);
            hist_add(&L->h_recs, recs);
            /* wakes the snapshot thread even when no snapshot waits
             * (then it finds nothing and sleeps again): waking it only
             * with a job pending measured 16-50 % slower on the dev VM
             * (docs/matcher-service.md, Performance, third session) */
            pthread_mutex_lock(&L->s_mu);
            atomic_store(&L->durable_seq, last_seq);
            pthread_cond_broadcast(&L->s_cv);
            pthread_mutex_unlock(&L->s_mu);
        }
        pthread_mutex_lock(&L->b_mu);
        L->b_synced = end;
        pthread_cond_signal(&L->b_cv_sender);
        pthread_mutex_unlock(&L->b_mu);
        uint64_t upto = atomic_exchange(&L->prune_upto, 0);
        if (upto > 0) {
            int n = journal_prune(L->jr, upto, err, sizeof err);
            if (n < 0)
                logf_("journal prune: %s", err);
            else if (n > 0)
                logf_("journal: deleted %d segment(s) up to seq %" PRIu64, n, upto);
        }
    }
    return NULL;
fatal:
    logf_("FATAL: %s — stopping without acknowledging; restart recovers "
          "from the journal", err);
    _exit(3);
}

/* Answers durable batches in order and frees their slots for the engine.
 * Stops when asked and everything durable is answered. */
static void *sender_main(void *arg)
{
    loop *L = arg;
    for (;;) {
        pthread_mutex_lock(&L->b_mu);
        while (L->b_tail == L->b_synced && !L->stop_sender)
            pthread_cond_wait(&L->b_cv_sender, &L->b_mu);
        uint64_t first = L->b_tail, end = L->b_synced;
        pthread_mutex_unlock(&L->b_mu);
        if (first == end)
            break;
        uint64_t t0 = mono_ns();
        hist_add(&L->h_swait_us, (t0 - L->batches[first % N_BATCHES].synced_ns) / 1000);
        for (uint64_t k = first; k < end; k++)
            release_batch(L, &L->batches[k % N_BATCHES]);
        hist_add(&L->h_send_us, (mono_ns() - t0) / 1000);
        pthread_mutex_lock(&L->b_mu);
        L->b_tail = end;
        pthread_cond_signal(&L->b_cv_engine);
        pthread_mutex_unlock(&L->b_mu);
    }
    return NULL;
}

/* ---- snapshots -------------------------------------------------------------------- */

/* Keeps: the newest snapshot at or before the ledger's position (the start
 * point that still lets the feed serve the ledger), every later one up to
 * the two newest. Deletes the rest and returns the seq up to which journal
 * segments may go (0 = none). */
static uint64_t retention(const char *dir, uint64_t ledger_seq)
{
    uint64_t seqs[SNAPSHOT_MAX];
    char err[256];
    int n = snapshot_list(dir, seqs, SNAPSHOT_MAX, err, sizeof err);
    if (n <= 0)
        return 0;
    int base = -1;
    for (int i = 0; i < n; i++)
        if (seqs[i] <= ledger_seq)
            base = i;
    /* no snapshot at or before the ledger: it needs the whole journal,
     * which is kept; snapshots beyond the newest two serve no start */
    for (int i = 0; i < n; i++) {
        bool keep = i == base || i >= n - 2;
        if (!keep && snapshot_remove(dir, seqs[i]) == 0)
            logf_("snapshot %" PRIu64 " deleted (superseded)", seqs[i]);
    }
    return base < 0 ? 0 : seqs[base];
}

static int write_job(loop *L, snap_job *j)
{
    char err[256];
    snapshot_header h = {.seq = j->seq, .state_hash = j->hash,
                         .ledger_seq = j->ledger_seq,
                         .engine_bytes = j->engine_len,
                         .service_bytes = j->svc_len};
    double t0 = mono_s();
    int rc = snapshot_write(L->o->data_dir, &h, j->engine, j->svc, err, sizeof err);
    if (rc < 0) {
        logf_("snapshot at seq %" PRIu64 " failed: %s (the journal still has "
              "everything)", j->seq, err);
    } else {
        logf_("snapshot at seq %" PRIu64 " written (%.1f MB, %.2f s, state hash %016" PRIx64 ")",
              j->seq, (double)(j->engine_len + j->svc_len) / 1e6, mono_s() - t0, j->hash);
        atomic_store(&L->snapshot_seq, j->seq);
        uint64_t upto = retention(L->o->data_dir, j->ledger_seq);
        if (upto > 0)
            atomic_store(&L->prune_upto, upto);
    }
    free(j->engine);
    free(j->svc);
    j->engine = j->svc = NULL;
    return rc;
}

static void *snap_main(void *arg)
{
    loop *L = arg;
    pthread_mutex_lock(&L->s_mu);
    for (;;) {
        while (!L->job_pending && !L->stop_snap)
            pthread_cond_wait(&L->s_cv, &L->s_mu);
        if (!L->job_pending)
            break;
        /* never write a snapshot ahead of the durable journal */
        while (atomic_load(&L->durable_seq) < L->job.seq && !L->stop_snap)
            pthread_cond_wait(&L->s_cv, &L->s_mu);
        if (atomic_load(&L->durable_seq) < L->job.seq)
            break; /* shutting down; the final snapshot covers it */
        snap_job j = L->job;
        pthread_mutex_unlock(&L->s_mu);
        write_job(L, &j);
        pthread_mutex_lock(&L->s_mu);
        L->job_pending = false;
        pthread_cond_broadcast(&L->s_cv);
    }
    if (L->job_pending) {
        free(L->job.engine);
        free(L->job.svc);
        L->job_pending = false;
    }
    pthread_mutex_unlock(&L->s_mu);
    return NULL;
}

static int take_snapshot(const service *s, snap_job *j)
{
    memset(j, 0, sizeof *j);
    j->seq = service_seq(s);
    j->hash = matcher_state_hash(service_engine(s));
    j->ledger_seq = service_ledger_seq(s);
    if (matcher_save(service_engine(s), &j->engine, &j->engine_len) < 0)
        return -1;
    if (service_save(s, &j->svc, &j->svc_len) < 0) {
        free(j->engine);
        return -1;
    }
    return 0;
}

static void maybe_snapshot(loop *L, bool force)
{
    uint64_t seq = service_seq(L->svc);
    if (seq == 0 || seq == L->last_snap_cmd_seq)
        return;
    bool due = force ||
               (L->o->snapshot_every && seq - L->last_snap_cmd_seq >= L->o->snapshot_every) ||
               (L->o->snapshot_secs && mono_s() - L->last_snap_time >= L->o->snapshot_secs);
    if (!due)
        return;
    pthread_mutex_lock(&L->s_mu);
    bool busy = L->job_pending;
    pthread_mutex_unlock(&L->s_mu);
    if (busy)
        return;
    snap_job j;
    if (take_snapshot(L->svc, &j) < 0) {
        logf_("snapshot at seq %" PRIu64 ": out of memory, skipped", seq);
        return;
    }
    L->last_snap_cmd_seq = seq;
    L->last_snap_time = mono_s();
    pthread_mutex_lock(&L->s_mu);
    L->job = j;
    L->job_pending = true;
    pthread_cond_broadcast(&L->s_cv);
    pthread_mutex_unlock(&L->s_mu);
}

/* ---- recovery ------------------------------------------------------------------- */

typedef struct replay_ctx {
    service *svc;
    uint64_t *snap_seqs;
    int n_snaps;
    int next_snap;   /* next snapshot to compare against */
    const char *dir;
    bool compare_service; /* verify: compare service bytes too */
    uint64_t count;
    char err[256];
} replay_ctx;

/* Compares the state after `seq` with the snapshot taken at seq. */
static int compare_snapshot(replay_ctx *r, uint64_t seq)
{
    snapshot_header h;
    char err[256];
    if (snapshot_read_header(r->dir, seq, &h, err, sizeof err) < 0) {
        logf_("snapshot %" PRIu64 " unreadable, not compared: %s", seq, err);
        return 0;
    }
    uint64_t hash = matcher_state_hash(service_engine(r->svc));
    if (hash != h.state_hash) {
        snprintf(r->err, sizeof r->err, "replay diverges from snapshot %" PRIu64
                 ": state hash %016" PRIx64 ", snapshot says %016" PRIx64,
                 seq, hash, h.state_hash);
        return -1;
    }
    if (r->compare_service) {
        snapshot_data d;
        if (snapshot_read(r->dir, seq, &d, err, sizeof err) < 0) {
            logf_("snapshot %" PRIu64 " unreadable: %s", seq, err);
            return 0;
        }
        uint8_t *buf;
        size_t len;
        GPUX_ASSERT(service_save(r->svc, &buf, &len) == 0);
        bool same = len == d.hdr.service_bytes && memcmp(buf, d.service, len) == 0;
        free(buf);
        snapshot_free(&d);
        if (!same) {
            snprintf(r->err, sizeof r->err, "service state after replay differs "
                     "from snapshot %" PRIu64, seq);
            return -1;
        }
    }
    logf_("replay matches snapshot %" PRIu64 " (state hash %016" PRIx64 ")", seq, hash);
    return 0;
}

static int replay_visit(void *arg, uint64_t seq, const wire_cmd *c)
{
    replay_ctx *r = arg;
    if (service_replay(r->svc, seq, c, r->err, sizeof r->err) < 0)
        return -1;
    r->count++;
    while (r->next_snap < r->n_snaps && r->snap_seqs[r->next_snap] < seq)
        r->next_snap++;
    if (r->next_snap < r->n_snaps && r->snap_seqs[r->next_snap] == seq) {
        r->next_snap++;
        if (compare_snapshot(r, seq) < 0)
            return -1;
    }
    return 0;
}

static int load_catalog(const service_opts *o, matcher_catalog *cat)
{
    char err[256];
    const char *path = o->catalog_path ? o->catalog_path : "matcher/catalog.default";
    if (matcher_catalog_load(cat, path, err, sizeof err) < 0) {
        logf_("catalog %s: %s", path, err);
        return -1;
    }
    return 0;
}

/* Loads the snapshot at seq; NULL (logged) when it is bad. */
static service *load_snapshot(const service_opts *o, const matcher_catalog *cat,
                              uint64_t seq, uint64_t *ledger_seq)
{
    snapshot_data d;
    char err[256];
    if (snapshot_read(o->data_dir, seq, &d, err, sizeof err) < 0) {
        logf_("snapshot %" PRIu64 " skipped: %s", seq, err);
        return NULL;
    }
    service *s = service_load(cat, &o->cfg, d.engine, d.hdr.engine_bytes,
                              d.service, d.hdr.service_bytes, err, sizeof err);
    uint64_t want = d.hdr.state_hash;
    *ledger_seq = d.hdr.ledger_seq;
    snapshot_free(&d);
    if (!s) {
        logf_("snapshot %" PRIu64 " skipped: %s", seq, err);
        return NULL;
    }
    uint64_t got = matcher_state_hash(service_engine(s));
    if (got != want || service_seq(s) != seq) {
        logf_("snapshot %" PRIu64 " skipped: loaded state hash %016" PRIx64
              " but the snapshot says %016" PRIx64, seq, got, want);
        service_destroy(s);
        return NULL;
    }
    logf_("snapshot %" PRIu64 " loaded (state hash %016" PRIx64 ")", seq, got);
    return s;
}

/* Builds the service from data_dir: picks a start snapshot, replays the
 * journal after it, comparing every later snapshot. verify: start from the
 * beginning of the journal when it is all there, compare service bytes. */
static service *recover(const service_opts *o, journal *jr, bool verify,
                        uint64_t *latest_snap)
{
    matcher_catalog cat;
    if (load_catalog(o, &cat) < 0)
        return NULL;
    uint64_t *seqs = calloc(SNAPSHOT_MAX, sizeof *seqs);
    GPUX_ASSERT(seqs != NULL);
    char err[256];
    int n = snapshot_list(o->data_dir, seqs, SNAPSHOT_MAX, err, sizeof err);
    if (n < 0) {
        logf_("%s", err);
        free(seqs);
        return NULL;
    }
    *latest_snap = n > 0 ? seqs[n - 1] : 0;
    uint64_t ledger_seq = 0;
    snapshot_header h;
    for (int i = n - 1; i >= 0; i--)
        if (snapshot_read_header(o->data_dir, seqs[i], &h, err, sizeof err) == 0) {
            ledger_seq = h.ledger_seq;
            break;
        }
    uint64_t jfirst = journal_first_seq(jr), jlast = journal_last_seq(jr);
    /* whole: starts at seq 1, or is empty and there is no snapshot either */
    bool journal_whole = jfirst == 1 || (jfirst == 0 && n == 0);
    service *s = NULL;
    uint64_t base = 0, lseq = 0;
    /* Start points, best first: the newest snapshot at or before the
     * ledger's position (so the feed can serve it again); when the journal
     * no longer starts at 1, any other snapshot, newest first. With the
     * whole journal and no such snapshot: from the beginning. verify: from
     * the beginning whenever the journal is whole. */
    int cand[SNAPSHOT_MAX], k = 0;
    if (!(verify && journal_whole)) {
        for (int i = n - 1; i >= 0; i--)
            if (seqs[i] <= ledger_seq)
                cand[k++] = i;
        if (!journal_whole)
            for (int i = n - 1; i >= 0; i--)
                if (seqs[i] > ledger_seq)
                    cand[k++] = i;
    }
    for (int c = 0; c < k && !s; c++) {
        uint64_t q = seqs[cand[c]];
        if ((jfirst > 1 && q + 1 < jfirst) || (jlast > 0 && q > jlast)) {
            logf_("snapshot %" PRIu64 " does not join the journal (seq %" PRIu64
                  "..%" PRIu64 "), skipped", q, jfirst, jlast);
            continue;
        }
        s = load_snapshot(o, &cat, q, &lseq);
        if (s)
            base = q;
    }
    if (!s) {
        if (!journal_whole) {
            logf_("no usable snapshot and the journal starts at seq %" PRIu64
                  ": cannot rebuild the state", jfirst);
            free(seqs);
            return NULL;
        }
        s = service_create(&cat, &o->cfg, err, sizeof err);
        if (!s) {
            logf_("%s", err);
            free(seqs);
            return NULL;
        }
    }
    service_set_ledger_seq(s, ledger_seq > lseq ? ledger_seq : lseq);
    replay_ctx r = {.svc = s, .snap_seqs = seqs, .n_snaps = n, .dir = o->data_dir,
                    .compare_service = verify};
    double t0 = mono_s();
    int rc = journal_replay(jr, base, replay_visit, &r, r.err, sizeof r.err);
    free(seqs);
    if (rc != 0) {
        logf_("recovery failed: %s", r.err);
        service_destroy(s);
        return NULL;
    }
    service_set_ledger_seq(s, ledger_seq);
    logf_("recovered seq %" PRIu64 " (snapshot %" PRIu64 " + %" PRIu64
          " journaled commands replayed in %.2f s), state hash %016" PRIx64,
          service_seq(s), base, r.count, mono_s() - t0,
          matcher_state_hash(service_engine(s)));
    return s;
}

static journal *open_journal(const service_opts *o)
{
    char err[512];
    journal_report rep;
    journal *jr;
    if (mkdir(o->data_dir, 0750) < 0 && errno != EEXIST) {
        logf_("cannot create data dir %s: %s", o->data_dir, strerror(errno));
        return NULL;
    }
    if (journal_open(&jr, o->data_dir, o->segment_bytes, o->repair_journal,
                     &rep, err, sizeof err) < 0) {
        logf_("journal: %s", err);
        return NULL;
    }
    if (o->journal_buffered && journal_set_buffered(jr, err, sizeof err) < 0) {
        logf_("journal: %s", err);
        journal_close(jr);
        return NULL;
    }
    if (rep.cut_bytes > 0)
        logf_("journal: %s in %s at offset %" PRIu64 ": cut %" PRIu64
              " bytes back to the last whole record (seq %" PRIu64 ")%s",
              rep.cut_reason, rep.cut_file, rep.cut_offset, rep.cut_bytes,
              rep.last_seq, rep.dropped_records ? " — repair dropped later records" : "");
    if (rep.dropped_records)
        logf_("journal: repair dropped %" PRIu64 " good records after the corruption",
              rep.dropped_records);
    logf_("journal: %u segment(s), seq %" PRIu64 "..%" PRIu64 "; %s", rep.segments,
          rep.first_seq, rep.last_seq,
          journal_is_direct(jr) ? "direct writes (O_DIRECT|O_DSYNC), one per group commit"
                                : "buffered writes + fdatasync per group commit");
    return jr;
}

int service_verify(const service_opts *o)
{
    journal *jr = open_journal(o);
    if (!jr)
        return 1;
    uint64_t latest;
    service *s = recover(o, jr, true, &latest);
    journal_close(jr);
    if (!s)
        return 1;
    char err[256];
    int rc = 0;
    if (matcher_check(service_engine(s), err, sizeof err) < 0) {
        logf_("engine invariant broken after replay: %s", err);
        rc = 1;
    } else {
        printf("verify ok seq=%" PRIu64 " state_hash=%016" PRIx64 "\n",
               service_seq(s), matcher_state_hash(service_engine(s)));
    }
    service_destroy(s);
    return rc;
}

/* One line on where the group commits' time went (microseconds). */
static void log_commit_figures(const loop *L)
{
    const stat_hist *h[] = {&L->h_recs, &L->h_jwait_us, &L->h_write_us, &L->h_sync_us,
                            &L->h_swait_us, &L->h_send_us, &L->h_pick_us, &L->h_resid_us};
    const char *what[] = {"commands", "wait for the journal us", "write us",
                          "fdatasync us", "wait for the sender us", "replies us",
                          "per request: arrival to engine us", "arrival to reply us"};
    char line[1400];
    size_t n = 0;
    for (size_t i = 0; i < GPUX_ARRAY_LEN(h) && n < sizeof line; i++)
        n += (size_t)snprintf(line + n, sizeof line - n, "%s%s p50 %" PRIu64 " p99 %" PRIu64
                              " max %" PRIu64, i ? "; " : "", what[i], hist_pct(h[i], 500),
                              hist_pct(h[i], 990), h[i]->max);
    logf_("journal: per group commit: %s", line);
}

/* ---- start and stop ------------------------------------------------------------- */

static void pub_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void)p;
    loop *L = arg;
    if (ev == NNG_PIPE_EV_ADD_POST)
        atomic_fetch_add(&L->subscribers, 1);
    else if (ev == NNG_PIPE_EV_REM_POST)
        atomic_fetch_sub(&L->subscribers, 1);
}

static int open_endpoints(loop *L)
{
    const service_opts *o = L->o;
    int rv;
    if ((rv = nng_rep0_open(&L->cmd_sock)) != 0 || (rv = nng_rep0_open(&L->feed_sock)) != 0 ||
        (rv = nng_pub0_open(&L->pub_sock)) != 0) {
        logf_("nng socket: %s", nng_strerror(rv));
        return -1;
    }
    nng_pipe_notify(L->pub_sock, NNG_PIPE_EV_ADD_POST, pub_pipe_cb, L);
    nng_pipe_notify(L->pub_sock, NNG_PIPE_EV_REM_POST, pub_pipe_cb, L);
    nng_socket_set_size(L->cmd_sock, NNG_OPT_RECVMAXSZ, MAX_REQUEST_BYTES);
    nng_socket_set_size(L->feed_sock, NNG_OPT_RECVMAXSZ, MAX_REQUEST_BYTES);
    /* Each commit publishes a burst (2-3 messages per command); nng's
     * default queue of 16 per subscriber dropped about half of them under
     * load, and the gateway then fetches the feed instead. 8192 is nng's
     * largest. Market data may still drop (it is best effort); the feed
     * is the reliable path. */
    if ((rv = nng_socket_set_int(L->pub_sock, NNG_OPT_SENDBUF, PUB_SENDBUF_MSGS)) != 0)
        logf_("market data send buffer: %s (keeping nng's default)", nng_strerror(rv));
    struct { nng_socket s; const char *addr; const char *what; } eps[] = {
        {L->cmd_sock, o->cmd_addr, "command"},
        {L->feed_sock, o->feed_addr, "feed"},
        {L->pub_sock, o->pub_addr, "market data"},
    };
    for (size_t i = 0; i < GPUX_ARRAY_LEN(eps); i++)
        if ((rv = nng_listen(eps[i].s, eps[i].addr, NULL, 0)) != 0) {
            logf_("cannot listen on %s (%s endpoint): %s", eps[i].addr,
                  eps[i].what, nng_strerror(rv));
            return -1;
        }
    L->n_ctxs = o->contexts + FEED_CONTEXTS;
    L->ctxs = calloc(L->n_ctxs, sizeof *L->ctxs);
    L->inq = calloc(L->n_ctxs, sizeof *L->inq);
    if (!L->ctxs || !L->inq)
        return -1;
    for (uint32_t i = 0; i < L->n_ctxs; i++) {
        req_ctx *c = &L->ctxs[i];
        c->L = L;
        c->feed = i >= o->contexts;
        if ((rv = nng_aio_alloc(&c->aio, ctx_cb, c)) != 0 ||
            (rv = nng_ctx_open(&c->ctx, c->feed ? L->feed_sock : L->cmd_sock)) != 0) {
            logf_("nng context: %s", nng_strerror(rv));
            return -1;
        }
    }
    return 0;
}

static int alloc_batches(loop *L)
{
    L->rec_cap = L->o->batch_max + WIRE_MAX_BATCH_CMDS + 2;
    L->cmds = calloc(WIRE_MAX_BATCH_CMDS, sizeof *L->cmds);
    L->pub_build = malloc(SERVICE_PUBS_BUILD_BYTES);
    if (!L->cmds || !L->pub_build)
        return -1;
    for (int i = 0; i < N_BATCHES; i++) {
        batch *b = &L->batches[i];
        b->recs = calloc(L->rec_cap, sizeof *b->recs);
        b->ctxs = calloc(L->n_ctxs, sizeof *b->ctxs);
        if (!b->recs || !b->ctxs || service_pubs_init(&b->pubs, &L->pub_dropped, L->pub_build) != 0)
            return -1;
    }
    L->scratch = malloc(SERVICE_REPLY_MAX);
    return L->scratch ? 0 : -1;
}

static void free_loop(loop *L)
{
    for (uint32_t i = 0; L->ctxs && i < L->n_ctxs; i++) {
        if (L->ctxs[i].aio) {
            nng_aio_stop(L->ctxs[i].aio);
            nng_msg *m = nng_aio_get_msg(L->ctxs[i].aio);
            if (m && L->ctxs[i].state == CTX_SEND)
                nng_msg_free(m);
            nng_aio_free(L->ctxs[i].aio);
        }
        if (L->ctxs[i].msg)
            nng_msg_free(L->ctxs[i].msg);
    }
    for (int i = 0; i < N_BATCHES; i++) {
        free(L->batches[i].recs);
        free(L->batches[i].ctxs);
        service_pubs_free(&L->batches[i].pubs);
    }
    free(L->ctxs);
    free(L->inq);
    free(L->scratch);
    free(L->pub_build);
    free(L->cmds);
}

static int wait_for_signal(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int sig = 0;
    sigwait(&set, &sig);
    return sig;
}

int service_run(const service_opts *o)
{
    static loop Lmem; /* one per process; its size does not matter */
    loop *L = &Lmem;
    memset(L, 0, sizeof *L);
    L->o = o;
    pthread_mutex_init(&L->in_mu, NULL);
    pthread_cond_init(&L->in_cv, NULL);
    pthread_mutex_init(&L->b_mu, NULL);
    pthread_cond_init(&L->b_cv_engine, NULL);
    pthread_cond_init(&L->b_cv_journal, NULL);
    pthread_cond_init(&L->b_cv_sender, NULL);
    pthread_mutex_init(&L->s_mu, NULL);
    pthread_cond_init(&L->s_cv, NULL);

    L->jr = open_journal(o);
    if (!L->jr)
        return 1;
    uint64_t latest = 0;
    L->svc = recover(o, L->jr, false, &latest);
    if (!L->svc) {
        journal_close(L->jr);
        return 1;
    }
    char perr[256];
    if (journal_start_prealloc(L->jr, perr, sizeof perr) < 0)
        logf_("journal: %s (segments will grow by append)", perr);
    atomic_store(&L->durable_seq, service_seq(L->svc));
    atomic_store(&L->snapshot_seq, latest);
    L->last_snap_cmd_seq = latest == service_seq(L->svc) ? latest : 0;
    L->last_snap_time = mono_s();
    if (open_endpoints(L) < 0 || alloc_batches(L) < 0) {
        logf_("cannot start the endpoints (see above)");
        free_loop(L);
        service_destroy(L->svc);
        journal_close(L->jr);
        return 1;
    }
    pthread_t eng_t, jr_t, send_t, snap_t;
    pthread_create(&send_t, NULL, sender_main, L);
    pthread_create(&jr_t, NULL, journal_main, L);
    pthread_create(&snap_t, NULL, snap_main, L);
    pthread_create(&eng_t, NULL, engine_main, L);
    for (uint32_t i = 0; i < L->n_ctxs; i++) {
        L->ctxs[i].state = CTX_RECV;
        nng_ctx_recv(L->ctxs[i].ctx, L->ctxs[i].aio);
    }
    logf_("serving: commands %s, feed %s, market data %s; clock %s; seq %" PRIu64
          "; pid %d", o->cmd_addr, o->feed_addr, o->pub_addr,
          o->cfg.clock_sim ? "sim" : "wall", service_seq(L->svc), (int)getpid());

    int sig = wait_for_signal();
    logf_("%s received: stopping (no new requests, finishing the journal, "
          "final snapshot)", sig == SIGINT ? "SIGINT" : "SIGTERM");
    /* the engine finishes what it holds (later requests stay unanswered),
     * the journal thread syncs it and sends those replies while the
     * sockets are still open; only then the endpoints close (nng must not
     * see a send on a closed context); the final snapshot covers it all */
    pthread_mutex_lock(&L->in_mu);
    L->stop_engine = true;
    pthread_cond_broadcast(&L->in_cv);
    pthread_mutex_unlock(&L->in_mu);
    pthread_join(eng_t, NULL);
    pthread_mutex_lock(&L->b_mu);
    L->stop_journal = true;
    pthread_cond_signal(&L->b_cv_journal);
    pthread_mutex_unlock(&L->b_mu);
    pthread_join(jr_t, NULL);
    pthread_mutex_lock(&L->b_mu);
    L->stop_sender = true;
    pthread_cond_signal(&L->b_cv_sender);
    pthread_mutex_unlock(&L->b_mu);
    pthread_join(send_t, NULL);
    atomic_store(&L->stopping, 1);
    for (uint32_t i = 0; i < L->n_ctxs; i++)
        nng_aio_stop(L->ctxs[i].aio); /* cancels and waits for callbacks */
    nng_close(L->cmd_sock);
    nng_close(L->feed_sock);
    pthread_mutex_lock(&L->s_mu);
    while (L->job_pending && atomic_load(&L->durable_seq) >= L->job.seq)
        pthread_cond_wait(&L->s_cv, &L->s_mu);
    L->stop_snap = true;
    pthread_cond_broadcast(&L->s_cv);
    pthread_mutex_unlock(&L->s_mu);
    pthread_join(snap_t, NULL);
    nng_close(L->pub_sock);

    int rc = 0;
    if (service_seq(L->svc) > 0 && service_seq(L->svc) != atomic_load(&L->snapshot_seq)) {
        snap_job j;
        if (take_snapshot(L->svc, &j) < 0 || write_job(L, &j) < 0)
            rc = 1;
    }
    uint64_t upto = atomic_exchange(&L->prune_upto, 0);
    if (upto > 0) {
        char err[256];
        int n = journal_prune(L->jr, upto, err, sizeof err);
        if (n < 0)
            logf_("journal prune: %s", err);
        else if (n > 0)
            logf_("journal: deleted %d segment(s) up to seq %" PRIu64, n, upto);
    }
    if (L->n_commits > 0)
        logf_("journal: %" PRIu64 " group commits this run, %.1f commands and "
              "%.3f ms (write + fdatasync) per commit on average; %" PRIu64
              " market data messages dropped", L->n_commits,
              (double)L->commit_recs / (double)L->n_commits,
              (double)L->commit_ns / (double)L->n_commits / 1e6, L->pub_dropped);
    if (L->n_commits > 0)
        log_commit_figures(L);
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    getrusage(RUSAGE_SELF, &ru);
    logf_("stopped at seq %" PRIu64 " (%" PRIu64 " commands, %" PRIu64
          " queries, %" PRIu64 " bad messages this run; cpu user %.2f s, system "
          "%.2f s, %ld voluntary context switches), state hash %016" PRIx64,
          service_seq(L->svc), L->n_cmds, L->n_queries, L->n_bad,
          (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
          (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6, ru.ru_nvcsw,
          matcher_state_hash(service_engine(L->svc)));
    free_loop(L);
    service_destroy(L->svc);
    journal_close(L->jr);
    return rc;
}
