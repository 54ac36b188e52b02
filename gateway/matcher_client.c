/* matcher_client.c — asynchronous requests to the matcher over nng, with
 * completions delivered on the gateway's libevent loop.
 *
 * Why: the event loop must never block on the matcher. Each in-flight
 * request owns one nng REQ context and one aio (allocated at open, so a
 * request allocates only its nng message). nng runs the aio callbacks on its
 * own threads; they only move the finished slot onto a mutex-protected
 * list and poke an eventfd, and the loop then calls the request's done
 * function. Every request carries a timeout: a matcher that is down or
 * stuck yields rc -1 (the handler answers 503 unavailable).
 *
 * REQ resends are disabled: a command must never be delivered twice
 * because a reply was slow, and requests in flight when the connection
 * drops are cancelled, not re-sent (on_pipe_removed). A timed-out or
 * cancelled command may still have been applied by the matcher; clients
 * use client_order_id to find out. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>

#include "gateway/server.h"
#include "gpux_assert.h"

#define PUB_QUEUE_MAX 4096     /* market-data messages waiting for the loop */
#define RECV_MAX_BYTES (16u * 1024u * 1024u)
#define SUB_RECVBUF_MSGS 8192  /* nng's largest receive queue */

typedef enum slot_state { SLOT_FREE, SLOT_SENDING, SLOT_RECEIVING, SLOT_DONE } slot_state;

typedef struct mc_slot {
    gw_mc *mc;
    nng_ctx ctx;
    nng_aio *aio;
    slot_state state;  /* written by nng threads under mc->mu once in flight */
    int rc;
    nng_msg *reply;
    gw_mc_done_fn fn;
    void *arg;
    struct mc_slot *next; /* free list (loop) or done list (under mu) */
} mc_slot;

typedef struct pub_item {
    nng_msg *msg;
    struct pub_item *next;
} pub_item;

struct gw_mc {
    struct event_base *base;
    nng_socket req;
    nng_socket sub;
    bool have_sub;
    nng_aio *sub_aio;
    int timeout_ms;
    uint32_t n_slots;
    mc_slot *slots;
    mc_slot *free_list;        /* loop thread only */
    pthread_mutex_t mu;
    mc_slot *done_head, *done_tail;
    nng_msg *pub_q[PUB_QUEUE_MAX]; /* ring, under mu */
    uint32_t pub_head, pub_len;
    uint64_t pub_dropped;
    bool closing;
    int efd;
    bool wake_pending;         /* under mu: the loop has been poked */
    struct event *wake;
    gw_mc_pub_fn pub_fn;
    void *pub_arg;
};

static void poke(gw_mc *mc)
{
    uint64_t one = 1;
    ssize_t n = write(mc->efd, &one, sizeof one);
    (void)n; /* EAGAIN means the counter is already non-zero: loop will wake */
}

/* Under mu, after queueing: whether this thread must poke the loop. Only
 * the first item after the loop last looked does (a syscall and a wake-up
 * per burst, not per message: market data comes several per order). */
static bool need_poke_locked(gw_mc *mc)
{
    bool first = !mc->wake_pending;
    mc->wake_pending = true;
    return first;
}

static void finish_slot(mc_slot *s, int rc, nng_msg *reply)
{
    gw_mc *mc = s->mc;
    pthread_mutex_lock(&mc->mu);
    s->rc = rc;
    s->reply = reply;
    s->state = SLOT_DONE;
    s->next = NULL;
    if (mc->done_tail)
        mc->done_tail->next = s;
    else
        mc->done_head = s;
    mc->done_tail = s;
    bool wake = need_poke_locked(mc);
    pthread_mutex_unlock(&mc->mu);
    if (wake)
        poke(mc);
}

/* nng thread: one aio serves both stages of a request. */
static void slot_cb(void *arg)
{
    mc_slot *s = arg;
    int r = nng_aio_result(s->aio);
    if (s->state == SLOT_SENDING) {
        if (r != 0) {
            nng_msg_free(nng_aio_get_msg(s->aio));
            finish_slot(s, -1, NULL);
            return;
        }
        s->state = SLOT_RECEIVING;
        nng_ctx_recv(s->ctx, s->aio);
        return;
    }
    GPUX_ASSERT(s->state == SLOT_RECEIVING);
    finish_slot(s, r == 0 ? 0 : -1, r == 0 ? nng_aio_get_msg(s->aio) : NULL);
}

static void sub_cb(void *arg)
{
    gw_mc *mc = arg;
    if (nng_aio_result(mc->sub_aio) != 0)
        return; /* closed or stopped: do not re-arm */
    nng_msg *m = nng_aio_get_msg(mc->sub_aio);
    pthread_mutex_lock(&mc->mu);
    if (mc->pub_len < PUB_QUEUE_MAX) {
        mc->pub_q[(mc->pub_head + mc->pub_len) % PUB_QUEUE_MAX] = m;
        mc->pub_len++;
        m = NULL;
    } else {
        mc->pub_dropped++; /* the loop is behind: market data is best effort */
    }
    bool closing = mc->closing;
    bool wake = need_poke_locked(mc);
    pthread_mutex_unlock(&mc->mu);
    if (m)
        nng_msg_free(m);
    if (wake)
        poke(mc);
    if (!closing)
        nng_recv_aio(mc->sub, mc->sub_aio);
}

static void deliver_done(gw_mc *mc)
{
    pthread_mutex_lock(&mc->mu);
    mc_slot *s = mc->done_head;
    mc->done_head = mc->done_tail = NULL;
    pthread_mutex_unlock(&mc->mu);
    for (uint32_t guard = 0; s && guard <= mc->n_slots; guard++) {
        mc_slot *next = s->next;
        gw_mc_done_fn fn = s->fn;
        void *arg = s->arg;
        nng_msg *m = s->reply;
        int rc = s->rc;
        s->reply = NULL;
        s->state = SLOT_FREE;
        s->next = mc->free_list; /* free before fn: fn may send again */
        mc->free_list = s;
        if (m)
            fn(arg, rc, nng_msg_body(m), nng_msg_len(m));
        else
            fn(arg, -1, NULL, 0);
        if (m)
            nng_msg_free(m);
        s = next;
    }
}

static void deliver_pub(gw_mc *mc)
{
    for (uint32_t guard = 0; guard < PUB_QUEUE_MAX; guard++) {
        pthread_mutex_lock(&mc->mu);
        nng_msg *m = NULL;
        if (mc->pub_len > 0) {
            m = mc->pub_q[mc->pub_head];
            mc->pub_head = (mc->pub_head + 1) % PUB_QUEUE_MAX;
            mc->pub_len--;
        }
        pthread_mutex_unlock(&mc->mu);
        if (!m)
            return;
        if (mc->pub_fn)
            mc->pub_fn(mc->pub_arg, nng_msg_body(m), nng_msg_len(m));
        nng_msg_free(m);
    }
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof n);
    (void)r;
    gw_mc *mc = arg;
    /* From here on a new item pokes again; those queued so far are taken
     * by the deliveries below. */
    pthread_mutex_lock(&mc->mu);
    mc->wake_pending = false;
    pthread_mutex_unlock(&mc->mu);
    deliver_done(mc);
    deliver_pub(mc);
}

/* nng thread: the connection to the matcher is gone. REQ would re-send
 * every request in flight on it to the next matcher it reaches, and a
 * command the old one had journaled but not answered would be applied
 * twice. Cancel them instead: their clients get 503 (outcome unknown;
 * client_order_id tells). The aios are fixed at open, so reading them
 * needs no lock; cancelling a finished aio does nothing. */
static void on_pipe_removed(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void)p;
    (void)ev;
    gw_mc *mc = arg;
    for (uint32_t i = 0; i < mc->n_slots; i++)
        if (mc->slots[i].aio)
            nng_aio_cancel(mc->slots[i].aio);
}

static int open_req(gw_mc *mc, const char *cmd_addr, char *err, size_t errlen)
{
    int r = nng_req0_open(&mc->req);
    if (r == 0)
        r = nng_pipe_notify(mc->req, NNG_PIPE_EV_REM_POST, on_pipe_removed, mc);
    if (r == 0)
        r = nng_socket_set_ms(mc->req, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    if (r == 0)
        r = nng_socket_set_size(mc->req, NNG_OPT_RECVMAXSZ, RECV_MAX_BYTES);
    if (r == 0)
        r = nng_socket_set_ms(mc->req, NNG_OPT_RECONNMAXT, 1000);
    if (r == 0)
        r = nng_dial(mc->req, cmd_addr, NULL, NNG_FLAG_NONBLOCK);
    if (r != 0) {
        snprintf(err, errlen, "matcher command endpoint %s: %s", cmd_addr, nng_strerror(r));
        return -1;
    }
    for (uint32_t i = 0; i < mc->n_slots; i++) {
        mc_slot *s = &mc->slots[i];
        s->mc = mc;
        if ((r = nng_ctx_open(&s->ctx, mc->req)) != 0 ||
            (r = nng_aio_alloc(&s->aio, slot_cb, s)) != 0) {
            snprintf(err, errlen, "nng context: %s", nng_strerror(r));
            return -1;
        }
        nng_aio_set_timeout(s->aio, mc->timeout_ms);
        s->next = mc->free_list;
        mc->free_list = s;
    }
    return 0;
}

static int open_sub(gw_mc *mc, const char *pub_addr, char *err, size_t errlen)
{
    int r = nng_sub0_open(&mc->sub);
    if (r == 0)
        r = nng_socket_set(mc->sub, NNG_OPT_SUB_SUBSCRIBE, WIRE_PUB_TOPIC,
                           sizeof WIRE_PUB_TOPIC - 1);
    if (r == 0)
        r = nng_socket_set_size(mc->sub, NNG_OPT_RECVMAXSZ, RECV_MAX_BYTES);
    /* Orders take their own events from this feed (batch.c): a deep queue
     * so a burst of commits is not dropped while the loop is busy. */
    if (r == 0)
        r = nng_socket_set_int(mc->sub, NNG_OPT_RECVBUF, SUB_RECVBUF_MSGS);
    if (r == 0)
        r = nng_socket_set_ms(mc->sub, NNG_OPT_RECONNMAXT, 1000);
    if (r == 0)
        r = nng_dial(mc->sub, pub_addr, NULL, NNG_FLAG_NONBLOCK);
    if (r == 0)
        r = nng_aio_alloc(&mc->sub_aio, sub_cb, mc);
    if (r != 0) {
        snprintf(err, errlen, "matcher market-data endpoint %s: %s", pub_addr, nng_strerror(r));
        return -1;
    }
    mc->have_sub = true;
    nng_recv_aio(mc->sub, mc->sub_aio);
    return 0;
}

gw_mc *gw_mc_open(struct event_base *base, const char *cmd_addr, const char *pub_addr,
                  uint32_t max_inflight, int timeout_ms, gw_mc_pub_fn pub_fn,
                  void *pub_arg, char *err, size_t errlen)
{
    GPUX_ASSERT(max_inflight > 0 && max_inflight <= 65536 && timeout_ms > 0);
    gw_mc *mc = calloc(1, sizeof *mc);
    if (!mc) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    mc->base = base;
    mc->timeout_ms = timeout_ms;
    mc->n_slots = max_inflight;
    mc->pub_fn = pub_fn;
    mc->pub_arg = pub_arg;
    mc->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&mc->mu, NULL);
    mc->slots = calloc(max_inflight, sizeof *mc->slots);
    if (mc->efd < 0 || !mc->slots) {
        snprintf(err, errlen, "eventfd/slots: %s", strerror(errno));
        gw_mc_close(mc);
        return NULL;
    }
    mc->wake = event_new(base, mc->efd, EV_READ | EV_PERSIST, wake_cb, mc);
    if (!mc->wake || event_add(mc->wake, NULL) != 0 ||
        open_req(mc, cmd_addr, err, errlen) != 0 ||
        (pub_addr && open_sub(mc, pub_addr, err, errlen) != 0)) {
        if (!mc->wake)
            snprintf(err, errlen, "event_new failed");
        gw_mc_close(mc);
        return NULL;
    }
    return mc;
}

void gw_mc_close(gw_mc *mc)
{
    if (!mc)
        return;
    pthread_mutex_lock(&mc->mu);
    mc->closing = true;
    pthread_mutex_unlock(&mc->mu);
    if (mc->sub_aio)
        nng_aio_stop(mc->sub_aio);
    for (uint32_t i = 0; mc->slots && i < mc->n_slots; i++)
        if (mc->slots[i].aio)
            nng_aio_stop(mc->slots[i].aio); /* callbacks run: slots -> done */
    /* Close the REQ socket while the aios still exist: its pipe-removal
     * callback (on_pipe_removed) cancels them. */
    nng_close(mc->req);
    /* Tell every waiting request it failed, then release. */
    for (uint32_t i = 0; mc->slots && i < mc->n_slots; i++)
        if (mc->slots[i].state == SLOT_SENDING || mc->slots[i].state == SLOT_RECEIVING)
            finish_slot(&mc->slots[i], -1, NULL);
    deliver_done(mc);
    for (uint32_t i = 0; mc->slots && i < mc->n_slots; i++) {
        if (mc->slots[i].aio)
            nng_aio_free(mc->slots[i].aio);
        if (mc->slots[i].reply)
            nng_msg_free(mc->slots[i].reply);
    }
    if (mc->sub_aio)
        nng_aio_free(mc->sub_aio);
    while (mc->pub_len > 0) {
        nng_msg_free(mc->pub_q[mc->pub_head]);
        mc->pub_head = (mc->pub_head + 1) % PUB_QUEUE_MAX;
        mc->pub_len--;
    }
    if (mc->have_sub)
        nng_close(mc->sub);
    if (mc->wake)
        event_free(mc->wake);
    if (mc->efd >= 0)
        close(mc->efd);
    pthread_mutex_destroy(&mc->mu);
    free(mc->slots);
    free(mc);
}

int gw_mc_send(gw_mc *mc, const uint8_t *msg, size_t len, gw_mc_done_fn fn, void *arg)
{
    mc_slot *s = mc->free_list;
    if (!s || mc->closing)
        return -1;
    nng_msg *m;
    if (nng_msg_alloc(&m, 0) != 0)
        return -1;
    if (nng_msg_append(m, msg, len) != 0) {
        nng_msg_free(m);
        return -1;
    }
    mc->free_list = s->next;
    s->fn = fn;
    s->arg = arg;
    s->state = SLOT_SENDING;
    s->reply = NULL;
    nng_aio_set_msg(s->aio, m);
    nng_ctx_send(s->ctx, s->aio);
    return 0;
}

int gw_mc_call_blocking(const char *cmd_addr, const uint8_t *msg, size_t len,
                        int timeout_ms, uint8_t **out, size_t *out_len)
{
    nng_socket sock;
    if (nng_req0_open(&sock) != 0)
        return -1;
    int r = nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, timeout_ms);
    if (r == 0)
        r = nng_socket_set_ms(sock, NNG_OPT_SENDTIMEO, timeout_ms);
    if (r == 0)
        r = nng_socket_set_size(sock, NNG_OPT_RECVMAXSZ, RECV_MAX_BYTES);
    if (r == 0)
        r = nng_dial(sock, cmd_addr, NULL, 0);
    if (r == 0)
        r = nng_send(sock, (void *)msg, len, 0);
    void *buf = NULL;
    size_t n = 0;
    if (r == 0)
        r = nng_recv(sock, &buf, &n, NNG_FLAG_ALLOC);
    nng_close(sock);
    if (r != 0)
        return -1;
    *out = malloc(n ? n : 1);
    if (!*out) {
        nng_free(buf, n);
        return -1;
    }
    memcpy(*out, buf, n);
    nng_free(buf, n);
    *out_len = n;
    return 0;
}
