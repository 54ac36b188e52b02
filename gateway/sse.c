/* sse.c — GET /v1/stream: Server-Sent Events from the matcher's market data.
 *
 * The gateway subscribes once to the matcher's PUB socket (one message
 * per matcher batch, every event once) and fans each command's events out
 * to the connected streams: `trade` and `book` events to everyone,
 * `order` events only to streams opened with that account's key. Within a
 * command they go out grouped as the matcher once published them, one
 * topic after the other (the market's book and trade events, then each
 * account's order events, in the order the events first name them), so
 * streams see the same sequence as when every topic was its own message.
 * Streams are a fixed table (GW_MAX_SSE_CLIENTS); a stream whose client
 * reads too slowly (output over SSE_MAX_BUFFERED) is closed rather than
 * buffering without bound. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>

#include "gateway/server.h"
#include "gpux_assert.h"

#define SSE_MAX_BUFFERED (1024 * 1024)
#define SSE_TOPICS_PER_CMD 16 /* topics grouped at once, as the matcher did */

typedef enum { TOPIC_MARKET, TOPIC_ACCOUNT, TOPIC_CLOCK } topic_kind;
typedef struct sse_topic {
    topic_kind kind;
    uint32_t id; /* market or account */
} sse_topic;

static void sse_drop(gw_sse_client *cl)
{
    cl->in_use = false;
    cl->req = NULL;
    cl->srv->n_sse--;
}

static void sse_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    gw_sse_client *cl = arg;
    if (!cl->in_use)
        return;
    struct evhttp_request *req = cl->req;
    sse_drop(cl);
    /* A client that went away leaves the unfinished request detached from
     * its connection (libevent waits for us to finish it): ending it now
     * frees it. A request still attached is freed with the connection. */
    if (evhttp_request_get_connection(req) == NULL)
        evhttp_send_reply_end(req);
}

static void sse_end(gw_sse_client *cl)
{
    struct evhttp_request *req = cl->req;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon)
        evhttp_connection_set_closecb(evcon, NULL, NULL);
    sse_drop(cl);
    evhttp_send_reply_end(req);
}

void gw_sse_start(gw_call *c, const gw_key_entry *key)
{
    gw_server *s = c->srv;
    if (!s->sse) {
        s->sse = calloc(GW_MAX_SSE_CLIENTS, sizeof *s->sse);
        if (!s->sse) {
            gw_reply_error(c, GW_ERR_UNAVAILABLE, "out of memory for streams");
            return;
        }
    }
    gw_sse_client *cl = NULL;
    for (uint32_t i = 0; i < GW_MAX_SSE_CLIENTS && !cl; i++)
        if (!s->sse[i].in_use)
            cl = &s->sse[i];
    if (!cl) {
        gw_reply_error(c, GW_ERR_UNAVAILABLE, "too many open streams; retry later");
        return;
    }
    struct evhttp_request *req = c->req;
    cl->req = req;
    cl->srv = s;
    cl->in_use = true;
    cl->has_account = key != NULL;
    cl->account = key ? key->account : 0;
    s->n_sse++;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "text/event-stream");
    evhttp_add_header(h, "Cache-Control", "no-cache");
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon) {
        evhttp_connection_set_closecb(evcon, sse_closed, cl);
        evhttp_connection_set_timeout(evcon, -1); /* streams are idle by design */
    }
    evhttp_send_reply_start(req, 200, "OK");
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, ": gpux stream%s\nretry: 1000\n\n",
                        key ? " (with order events for this key's account)" : "");
    evhttp_send_reply_chunk(req, b);
    evbuffer_free(b);
    gw_call_release(c, 200);
}

static void sse_send(gw_sse_client *cl, const char *event, const char *data)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(cl->req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    if (!bev || evbuffer_get_length(bufferevent_get_output(bev)) > SSE_MAX_BUFFERED) {
        gw_log("closing a stream that does not keep up");
        sse_end(cl);
        return;
    }
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "event: %s\ndata: %s\n\n", event, data);
    evhttp_send_reply_chunk(cl->req, b);
    evbuffer_free(b);
}

static void broadcast(gw_server *s, const char *event, json_t *data, bool only_account,
                      uint32_t account)
{
    char *text = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    if (!text)
        return;
    for (uint32_t i = 0; s->sse && i < GW_MAX_SSE_CLIENTS; i++) {
        gw_sse_client *cl = &s->sse[i];
        if (!cl->in_use)
            continue;
        if (only_account && (!cl->has_account || cl->account != account))
            continue;
        sse_send(cl, event, text);
    }
    free(text);
}

static void set_market(gw_server *s, json_t *o, uint32_t market)
{
    bool known = s->cat && market < s->cat->n_markets;
    json_object_set_new(o, "gpu", known ? json_string(s->cat->markets[market].gpu) : json_null());
    json_object_set_new(o, "region",
                        known ? json_string(s->cat->markets[market].region) : json_null());
}

static json_t *trade_json(gw_server *s, const wire_event *ev)
{
    json_t *o = json_object();
    json_object_set_new(o, "trade_id", gw_json_id(ev->trade_id));
    set_market(s, o, ev->market);
    json_object_set_new(o, "price", gw_json_money(ev->price_micros));
    json_object_set_new(o, "qty", json_integer(ev->qty));
    json_object_set_new(o, "start", gw_json_hour(ev->start_hour));
    json_object_set_new(o, "end", gw_json_hour(ev->end_hour));
    char b[GW_TIME_STR_LEN];
    json_object_set_new(o, "time", json_string(gw_time_format_us(ev->ts_us, b)));
    return o;
}

static const char *change_name(uint16_t type)
{
    switch (type) {
    case MATCHER_EV_ACCEPTED: return "accepted";
    case MATCHER_EV_REPLACED: return "replaced";
    case MATCHER_EV_DONE: return "done";
    case MATCHER_EV_TRADE: return "fill";
    default: return NULL;
    }
}

static const char *done_name(uint16_t reason)
{
    switch (reason) {
    case MATCHER_DONE_FILLED: return "filled";
    case MATCHER_DONE_CANCELLED: return "cancelled";
    case MATCHER_DONE_EXPIRED: return "expired";
    default: return "cancelled"; /* ioc/fok remainder */
    }
}

/* Book change (anonymous) or order event (for the owner). */
static json_t *order_json(gw_server *s, const wire_event *ev, bool with_ids)
{
    json_t *o = json_object();
    json_object_set_new(o, "change", json_string(change_name(ev->type)));
    if (with_ids)
        json_object_set_new(o, "order_id", gw_json_id(ev->order_id));
    set_market(s, o, ev->market);
    json_object_set_new(o, "side", json_string(ev->side == MATCHER_BUY ? "buy" : "sell"));
    if (ev->type == MATCHER_EV_DONE) {
        json_object_set_new(o, "status", json_string(done_name(ev->reason)));
        return o;
    }
    json_object_set_new(o, "price", gw_json_money(ev->price_micros));
    json_object_set_new(o, "qty", json_integer(ev->qty));
    json_object_set_new(o, "start", gw_json_hour(ev->start_hour));
    json_object_set_new(o, "end", gw_json_hour(ev->end_hour));
    return o;
}

static json_t *fill_for_account(gw_server *s, const wire_event *ev, uint32_t account)
{
    json_t *o = trade_json(s, ev);
    bool buyer = ev->account == account;
    json_object_set_new(o, "change", json_string("fill"));
    json_object_set_new(o, "order_id", gw_json_id(buyer ? ev->buy_order_id : ev->sell_order_id));
    json_object_set_new(o, "side", json_string(buyer ? "buy" : "sell"));
    return o;
}

/* One event as the matcher used to publish it under one topic: book and
 * trade events under the market's, order events under each account's. */
static void on_event(gw_server *s, const wire_event *ev, const sse_topic *t)
{
    if (t->kind == TOPIC_MARKET) {
        if (ev->type == MATCHER_EV_TRADE)
            broadcast(s, "trade", trade_json(s, ev), false, 0);
        else if (change_name(ev->type))
            broadcast(s, "book", order_json(s, ev, false), false, 0);
        return;
    }
    if (t->kind != TOPIC_ACCOUNT)
        return;
    if (ev->type == MATCHER_EV_TRADE)
        broadcast(s, "order", fill_for_account(s, ev, t->id), true, t->id);
    else if (change_name(ev->type) && ev->account == t->id)
        broadcast(s, "order", order_json(s, ev, true), true, t->id);
}

/* The topics an event was published under when market data had one
 * message per command and topic (up to 3: market, account, provider). */
static int event_topics(const wire_event *e, sse_topic t[3])
{
    int n = 0;
    switch (e->type) {
    case MATCHER_EV_ACCEPTED:
    case MATCHER_EV_REPLACED:
    case MATCHER_EV_DONE:
        t[n++] = (sse_topic){TOPIC_MARKET, e->market};
        t[n++] = (sse_topic){TOPIC_ACCOUNT, e->account};
        break;
    case MATCHER_EV_TRADE:
        t[n++] = (sse_topic){TOPIC_MARKET, e->market};
        t[n++] = (sse_topic){TOPIC_ACCOUNT, e->account};
        t[n++] = (sse_topic){TOPIC_ACCOUNT, e->provider};
        break;
    case MATCHER_EV_LEASE:
        t[n++] = (sse_topic){TOPIC_ACCOUNT, e->account};
        t[n++] = (sse_topic){TOPIC_ACCOUNT, e->provider};
        break;
    case MATCHER_EV_BALANCE:
    case MATCHER_EV_DEPOSIT:
    case MATCHER_EV_WITHDRAWAL:
    case MATCHER_EV_ACCOUNT:
        t[n++] = (sse_topic){TOPIC_ACCOUNT, e->account};
        break;
    case MATCHER_EV_CLOCK:
        t[n++] = (sse_topic){TOPIC_CLOCK, 0};
        break;
    default: break;
    }
    return n;
}

static bool topic_eq(const sse_topic *a, const sse_topic *b)
{
    return a->kind == b->kind && a->id == b->id;
}

/* Streams the events [from, to) of one command, topic by topic in the
 * order the events first name them, each topic's events in order: what a
 * stream saw when every topic was its own message. */
static void emit_window(gw_server *s, const uint8_t *msg, const gw_pub_run *run, size_t from,
                        size_t to, const sse_topic *topics, uint32_t n_topics)
{
    for (uint32_t k = 0; k < n_topics; k++) {
        gw_pub_run part = *run;
        part.start = from;
        part.end = to;
        part.count = (uint32_t)((to - from) / (sizeof(wire_item_hdr) + sizeof(wire_event)));
        wire_reader rd;
        gw_pub_run_reader(msg, &part, &rd);
        uint16_t type;
        wire_item it;
        char err[128];
        for (uint32_t g = 0; g < part.count && wire_reader_next(&rd, &type, &it, err, sizeof err) == 1; g++) {
            sse_topic t[3];
            int nt = event_topics(&it.event, t);
            for (int x = 0; x < nt; x++)
                if (topic_eq(&t[x], &topics[k])) {
                    on_event(s, &it.event, &topics[k]);
                    break;
                }
        }
    }
}

/* One command's events to the streams. The matcher grouped a command's
 * events into at most SSE_TOPICS_PER_CMD topic messages at a time; a
 * command naming more topics is streamed in windows of events that name
 * at most that many. */
static void stream_command(gw_server *s, const uint8_t *msg, const gw_pub_run *run)
{
    sse_topic topics[SSE_TOPICS_PER_CMD];
    uint32_t n_topics = 0;
    wire_reader rd;
    gw_pub_run_reader(msg, run, &rd);
    size_t from = run->start;
    for (uint32_t g = 0; g < run->count; g++) {
        size_t at = rd.off;
        uint16_t type;
        wire_item it;
        char err[128];
        if (wire_reader_next(&rd, &type, &it, err, sizeof err) != 1)
            return; /* gw_pub_split_runs read it already */
        sse_topic t[3];
        int nt = event_topics(&it.event, t);
        uint32_t fresh = 0;
        for (int x = 0; x < nt; x++) {
            bool known = false;
            for (uint32_t k = 0; k < n_topics && !known; k++)
                known = topic_eq(&t[x], &topics[k]);
            fresh += !known;
        }
        if (n_topics + fresh > SSE_TOPICS_PER_CMD) {
            emit_window(s, msg, run, from, at, topics, n_topics);
            from = at;
            n_topics = 0;
        }
        for (int x = 0; x < nt; x++) {
            bool known = false;
            for (uint32_t k = 0; k < n_topics && !known; k++)
                known = topic_eq(&t[x], &topics[k]);
            if (!known)
                topics[n_topics++] = t[x];
        }
    }
    emit_window(s, msg, run, from, run->end, topics, n_topics);
}

void gw_sse_on_pub(void *arg, const uint8_t *msg, size_t len)
{
    gw_server *s = arg;
    static gw_pub_runs runs; /* loop thread only; 190 KB, not on the stack */
    size_t off = wire_pub_split(msg, len);
    if (off != sizeof WIRE_PUB_TOPIC || memcmp(msg, WIRE_PUB_TOPIC, off) != 0)
        return;
    if (gw_pub_split_runs(msg + off, len - off, &runs) != 0) {
        gw_log("bad market data message (%zu bytes)", len);
        return;
    }
    s->metrics.trades += runs.trades;
    /* the orders' own events, for their batched replies (batch.c) */
    gw_batcher_on_pub(s->batcher, msg + off, &runs);
    /* With no stream open nothing is rendered: every order's book events
     * come through here, and building their JSON for nobody was most of
     * the gateway's market-data cost. */
    if (!s->sse || s->n_sse == 0)
        return;
    for (uint32_t j = 0; j < runs.n; j++)
        stream_command(s, msg + off, &runs.runs[j]);
}

void gw_sse_tick(gw_server *s)
{
    for (uint32_t i = 0; s->sse && i < GW_MAX_SSE_CLIENTS; i++) {
        gw_sse_client *cl = &s->sse[i];
        if (!cl->in_use)
            continue;
        struct evbuffer *b = evbuffer_new();
        evbuffer_add_printf(b, ": keep-alive\n\n");
        evhttp_send_reply_chunk(cl->req, b);
        evbuffer_free(b);
    }
}

void gw_sse_close_all(gw_server *s)
{
    for (uint32_t i = 0; s->sse && i < GW_MAX_SSE_CLIENTS; i++)
        if (s->sse[i].in_use)
            sse_end(&s->sse[i]);
    free(s->sse);
    s->sse = NULL;
}
