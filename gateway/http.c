/* http.c — the libevent HTTP(S) server: listeners, limits, routing,
 * authentication, rate limiting and the reply helpers every handler uses.
 *
 * Both listeners (plain and TLS) share one request callback. A request
 * gets a gw_call from a pool sized at start (no allocation per request
 * beyond libevent's own); the call lives until its reply is sent, which
 * may be after one or more asynchronous matcher round trips. libevent
 * keeps a request whose client went away until we reply (it detaches it
 * from the dead connection), so a late matcher reply is always safe. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>

#include "gateway/server.h"
#include "gpux_assert.h"

#define MAX_PATH_SEGMENTS 8

int64_t gw_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

/* ---- call pool ------------------------------------------------------------ */

static gw_call *call_get(gw_server *s, struct evhttp_request *req, int64_t t0)
{
    gw_call *c = s->free_calls;
    if (!c)
        return NULL;
    s->free_calls = c->next_free;
    s->calls_in_use++;
    memset(c, 0, sizeof *c);
    c->srv = s;
    c->req = req;
    c->t0_us = t0;
    c->route = GW_ROUTE_OTHER;
    return c;
}

static void call_put(gw_call *c)
{
    gw_server *s = c->srv;
    if (c->params_parsed)
        evhttp_clear_headers(&c->params);
    if (c->acc)
        json_decref(c->acc);
    memset(c->key, 0, sizeof c->key); /* the key is shown once, then forgotten */
    c->acc = NULL;
    c->req = NULL;
    c->next_free = s->free_calls;
    s->free_calls = c;
    GPUX_ASSERT(s->calls_in_use > 0);
    s->calls_in_use--;
}

/* ---- replies -------------------------------------------------------------- */

/* Replies up to this size leave a TLS connection as one record. */
#define TLS_ONE_RECORD_BYTES 16384

/* evhttp queues a reply as two buffer chunks (its headers, then our body),
 * and libevent's OpenSSL bufferevent writes each chunk with its own
 * SSL_write: two TLS records and two write syscalls per reply. Joined
 * (a copy of at most 16 KB, before the write event runs), it is one of
 * each. Plain HTTP sends both chunks in one writev anyway. */
static void tls_one_record(struct evhttp_connection *evcon)
{
    struct evbuffer *out = bufferevent_get_output(evhttp_connection_get_bufferevent(evcon));
    size_t n = evbuffer_get_length(out);
    if (n > 0 && n <= TLS_ONE_RECORD_BYTES)
        evbuffer_pullup(out, -1);
}

/* Replies up to this size are written at once (a loopback or LAN socket
 * buffer takes them whole); larger ones, or a socket that would block,
 * are left to libevent's write event. */
#define WRITE_NOW_BYTES 65536

/* evhttp queues a reply and enables the connection's write event; the
 * bytes leave when epoll next reports the socket writable, and evhttp
 * disables the event again after the write: two epoll_ctl per reply, one
 * loop turn later. The socket is almost always writable, so write now:
 * when the output is then empty, telling the bufferevent (its write
 * callback, evhttp's "reply sent": next request, or close) leaves the
 * write interest added and removed within this turn, which libevent's
 * changelist turns into no epoll_ctl at all. A failed or partial write
 * leaves the rest to libevent exactly as before (it sees the same error
 * and tells evhttp). Plain HTTP only: under TLS the bytes go through
 * OpenSSL's bufferevent. */
static void write_now(struct evhttp_connection *evcon)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    struct evbuffer *out = bufferevent_get_output(bev);
    evutil_socket_t fd = bufferevent_getfd(bev);
    size_t n = evbuffer_get_length(out);
    if (fd < 0 || n == 0 || n > WRITE_NOW_BYTES)
        return;
    if (evbuffer_write(out, fd) < 0 || evbuffer_get_length(out) > 0)
        return;
    bufferevent_trigger(bev, EV_WRITE, 0); /* evcon may be freed from here on */
}

static void finish(gw_call *c, int status, const char *body, size_t len,
                   const char *content_type)
{
    struct evhttp_request *req = c->req;
    GPUX_ASSERT(req);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", content_type);
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    evbuffer_add(out, body, len);
    /* NULL when the client has gone: evhttp_send_reply then only frees req */
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    evhttp_send_reply(req, status, reason_phrase(status), NULL);
    if (evcon && c->tls)
        tls_one_record(evcon);
    else if (evcon)
        write_now(evcon); /* req may be freed from here on */
    int64_t dt = gw_now_us() - c->t0_us;
    gw_metrics_request(&c->srv->metrics, c->route, status, dt > 0 ? (uint64_t)dt : 0);
    call_put(c);
}

void gw_reply_raw(gw_call *c, int status, const char *json, size_t len)
{
    finish(c, status, json, len, "application/json");
}

void gw_call_release(gw_call *c, int status)
{
    int64_t dt = gw_now_us() - c->t0_us;
    gw_metrics_request(&c->srv->metrics, c->route, status, dt > 0 ? (uint64_t)dt : 0);
    call_put(c);
}

void gw_reply_json(gw_call *c, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        gw_reply_error(c, GW_ERR_INTERNAL, "could not render the reply");
        return;
    }
    size_t n = strlen(text);
    finish(c, status, text, n, "application/json");
    free(text);
}

void gw_reply_error(gw_call *c, gw_err e, const char *message)
{
    char body[512];
    int n = gw_err_body(e, message, body, sizeof body);
    GPUX_ASSERT(n > 0);
    finish(c, gw_err_status(e), body, (size_t)n, "application/json");
}

void gw_reply_unavailable(gw_call *c)
{
    c->srv->metrics.matcher_up = false;
    gw_reply_error(c, GW_ERR_UNAVAILABLE,
                   "the matcher did not answer in time; nothing was accepted, retry later");
}

bool gw_answered_ok(gw_call *c, const wire_reply *rep)
{
    if (rep->status == WIRE_ST_OK)
        return true;
    gw_reply_wire_error(c, rep);
    return false;
}

bool gw_first_item(gw_call *c, wire_reader *rd, uint16_t want, const char *what, wire_item *it)
{
    uint16_t type;
    char err[128];
    if (wire_reader_next(rd, &type, it, err, sizeof err) == 1 && type == want)
        return true;
    char msg[96];
    snprintf(msg, sizeof msg, "unreadable %s from the matcher", what);
    gw_reply_error(c, GW_ERR_INTERNAL, msg);
    return false;
}

void gw_reply_wire_error(gw_call *c, const wire_reply *rep)
{
    char msg[128];
    switch (rep->status) {
    case WIRE_ST_REJECTED: {
        matcher_reason r = (matcher_reason)rep->reason;
        gw_reply_error(c, gw_err_from_reason(r), matcher_reason_message(r));
        return;
    }
    case WIRE_ST_NOT_FOUND:
        gw_reply_error(c, GW_ERR_NOT_FOUND, "no such order or account");
        return;
    case WIRE_ST_BAD_FIELD:
        snprintf(msg, sizeof msg, "%s", rep->detail[0] ? rep->detail : "a field is invalid");
        gw_reply_error(c, GW_ERR_BAD_FIELD, msg);
        return;
    case WIRE_ST_CONFLICT:
        snprintf(msg, sizeof msg, "%s", rep->detail[0] ? rep->detail : "conflict");
        gw_reply_error(c, GW_ERR_CONFLICT, msg);
        return;
    case WIRE_ST_FORBIDDEN:
        gw_reply_error(c, GW_ERR_FORBIDDEN, "the matcher does not allow this");
        return;
    case WIRE_ST_UNAVAILABLE:
        gw_reply_error(c, GW_ERR_UNAVAILABLE, "the matcher is not accepting commands; retry later");
        return;
    default:
        gw_log("matcher answered %s (%s)", wire_status_name(rep->status),
                rep->detail);
        gw_reply_error(c, GW_ERR_INTERNAL, "unexpected answer from the matcher");
    }
}

/* ---- matcher round trips ---------------------------------------------------- */

static void on_matcher_reply(void *arg, int rc, const uint8_t *msg, size_t len)
{
    gw_call *c = arg;
    if (rc != 0) {
        gw_reply_unavailable(c);
        return;
    }
    c->srv->metrics.matcher_up = true;
    wire_reply rep;
    wire_reader rd;
    char err[128];
    if (wire_decode_reply(msg, len, &rep, &rd, err, sizeof err) != 0) {
        gw_log("bad reply from the matcher: %s", err);
        gw_reply_error(c, GW_ERR_INTERNAL, "unreadable answer from the matcher");
        return;
    }
    gw_step_fn step = c->step;
    c->step = NULL;
    GPUX_ASSERT(step);
    step(c, 0, &rep, &rd);
}

void gw_call_send(gw_call *c, const uint8_t *msg, size_t len, gw_step_fn step)
{
    c->step = step;
    if (gw_mc_send(c->srv->mc, msg, len, on_matcher_reply, c) != 0)
        gw_reply_error(c, GW_ERR_UNAVAILABLE, "the gateway is at its limit of requests in flight; retry");
}

void gw_call_query(gw_call *c, const wire_query *q, gw_step_fn step)
{
    uint8_t buf[sizeof(wire_hdr) + sizeof(wire_query)];
    size_t n = wire_encode_query(buf, sizeof buf, q);
    GPUX_ASSERT(n > 0);
    gw_call_send(c, buf, n, step);
}

void gw_call_cmd(gw_call *c, const wire_cmd *w, gw_step_fn step)
{
    uint8_t buf[sizeof(wire_hdr) + sizeof(wire_cmd)];
    size_t n = wire_encode_cmd(buf, sizeof buf, w);
    GPUX_ASSERT(n > 0);
    gw_call_send(c, buf, n, step);
}

/* ---- request helpers ------------------------------------------------------ */

const char *gw_body(gw_call *c, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(c->req);
    size_t n = evbuffer_get_length(in);
    if (n > GW_MAX_BODY_BYTES) {
        gw_reply_error(c, GW_ERR_TOO_LARGE, "request body is larger than 65536 bytes");
        return NULL;
    }
    *len = n;
    if (n == 0)
        return "";
    return (const char *)evbuffer_pullup(in, -1);
}

const char *gw_query_param(gw_call *c, const char *key)
{
    if (!c->params_parsed) {
        const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(c->req));
        c->params_parsed = true; /* the parser initialises the list, even on "" */
        if (evhttp_parse_query_str(q ? q : "", &c->params) != 0)
            evhttp_clear_headers(&c->params);
    }
    return evhttp_find_header(&c->params, key);
}

/* Authenticates c and checks need_role (0 = any role). Answers 401/403/429
 * itself and returns NULL on failure. */
static const gw_key_entry *authenticate(gw_call *c, uint32_t need_role)
{
    gw_server *s = c->srv;
    const char *authz = evhttp_find_header(evhttp_request_get_input_headers(c->req),
                                           "Authorization");
    const gw_key_entry *k = gw_keys_auth(&s->keys, authz);
    if (!k) {
        gw_reply_error(c, GW_ERR_UNAUTHENTICATED,
                       "send 'Authorization: Bearer <api key>' with a valid key");
        return NULL;
    }
    int retry = gw_ratelimit_take(&s->rl, k->account, gw_now_us() / 1000);
    if (retry > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", retry);
        evhttp_add_header(evhttp_request_get_output_headers(c->req), "Retry-After", v);
        gw_reply_error(c, GW_ERR_RATE_LIMITED, "too many requests for this key; retry after the time in Retry-After");
        return NULL;
    }
    if (need_role && !(k->roles & need_role)) {
        gw_reply_error(c, GW_ERR_FORBIDDEN, need_role == MATCHER_ROLE_ADMIN
                                                ? "this needs the admin role"
                                                : "this key's account lacks the role for that");
        return NULL;
    }
    c->account = k->account;
    c->roles = k->roles;
    return k;
}

/* ---- routing -------------------------------------------------------------- */

typedef struct path_parts {
    const char *seg[MAX_PATH_SEGMENTS];
    size_t len[MAX_PATH_SEGMENTS];
    int n;
} path_parts;

static int split_path(const char *path, path_parts *p)
{
    p->n = 0;
    if (!path || path[0] != '/')
        return -1;
    const char *s = path + 1;
    while (*s) {
        if (p->n == MAX_PATH_SEGMENTS)
            return -1;
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        p->seg[p->n] = s;
        p->len[p->n] = n;
        p->n++;
        if (!e)
            break;
        s = e + 1;
        if (!*s)
            return -1; /* trailing slash: no such resource */
    }
    return 0;
}

static bool seg_is(const path_parts *p, int i, const char *lit)
{
    return i < p->n && p->len[i] == strlen(lit) && memcmp(p->seg[i], lit, p->len[i]) == 0;
}

static void not_found(gw_call *c)
{
    gw_reply_error(c, GW_ERR_NOT_FOUND, "no such resource");
}

static void bad_method(gw_call *c)
{
    gw_reply_error(c, GW_ERR_METHOD, "this method is not allowed on this path");
}

/* /v1/markets/{gpu}/{region}/(book|trades) */
static void route_market(gw_call *c, enum evhttp_cmd_type m, const path_parts *p)
{
    bool book = seg_is(p, 4, "book"), trades = seg_is(p, 4, "trades");
    if (p->n != 5 || (!book && !trades)) {
        not_found(c);
        return;
    }
    c->route = book ? GW_ROUTE_BOOK : GW_ROUTE_TRADES;
    if (m != EVHTTP_REQ_GET) {
        bad_method(c);
        return;
    }
    char gpu[MATCHER_NAME_LEN], region[MATCHER_NAME_LEN];
    int market = -1;
    if (p->len[2] < sizeof gpu && p->len[3] < sizeof region) {
        memcpy(gpu, p->seg[2], p->len[2]);
        gpu[p->len[2]] = '\0';
        memcpy(region, p->seg[3], p->len[3]);
        region[p->len[3]] = '\0';
        market = gw_market_find(c->srv->cat, gpu, region);
    }
    if (market < 0) {
        gw_reply_error(c, GW_ERR_UNKNOWN_MARKET, "no such market (gpu, region) in the catalog");
        return;
    }
    if (book)
        gw_h_book(c, (uint32_t)market);
    else
        gw_h_trades(c, (uint32_t)market);
}

static void route_orders(gw_call *c, enum evhttp_cmd_type m, const path_parts *p)
{
    if (p->n == 2) {
        c->route = m == EVHTTP_REQ_POST ? GW_ROUTE_ORDER_CREATE : GW_ROUTE_ORDER_LIST;
        if (m != EVHTTP_REQ_POST && m != EVHTTP_REQ_GET) {
            bad_method(c);
            return;
        }
        if (!authenticate(c, 0))
            return;
        if (m == EVHTTP_REQ_POST)
            gw_h_order_create(c);
        else
            gw_h_order_list(c);
        return;
    }
    if (p->n != 3) {
        not_found(c);
        return;
    }
    c->route = m == EVHTTP_REQ_DELETE  ? GW_ROUTE_ORDER_CANCEL
               : m == EVHTTP_REQ_PATCH ? GW_ROUTE_ORDER_REPLACE
                                       : GW_ROUTE_ORDER_GET;
    if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_DELETE && m != EVHTTP_REQ_PATCH) {
        bad_method(c);
        return;
    }
    if (!authenticate(c, 0))
        return;
    uint64_t id;
    if (gw_parse_id(p->seg[2], p->len[2], &id) != 0 || id == 0) {
        gw_reply_error(c, GW_ERR_NOT_FOUND, "no such order");
        return;
    }
    if (m == EVHTTP_REQ_GET)
        gw_h_order_get(c, id);
    else if (m == EVHTTP_REQ_DELETE)
        gw_h_order_cancel(c, id);
    else
        gw_h_order_replace(c, id);
}

static void route_admin(gw_call *c, enum evhttp_cmd_type m, const path_parts *p)
{
    bool accounts = seg_is(p, 2, "accounts"), dep = seg_is(p, 2, "deposits"),
         wd = seg_is(p, 2, "withdrawals");
    if (p->n != 3 || (!accounts && !dep && !wd)) {
        not_found(c);
        return;
    }
    c->route = accounts ? (m == EVHTTP_REQ_GET ? GW_ROUTE_ADMIN_ACCOUNTS_LIST
                                               : GW_ROUTE_ADMIN_ACCOUNTS_CREATE)
               : dep    ? GW_ROUTE_ADMIN_DEPOSIT
                        : GW_ROUTE_ADMIN_WITHDRAW;
    bool ok_method = m == EVHTTP_REQ_POST || (accounts && m == EVHTTP_REQ_GET);
    if (!ok_method) {
        bad_method(c);
        return;
    }
    if (!authenticate(c, MATCHER_ROLE_ADMIN))
        return;
    if (accounts && m == EVHTTP_REQ_GET)
        gw_h_admin_list(c);
    else if (accounts)
        gw_h_admin_create(c);
    else
        gw_h_admin_transfer(c, dep);
}

/* GET-only, authenticated single-segment routes under /v1. */
static void route_simple(gw_call *c, enum evhttp_cmd_type m, gw_route r,
                         bool auth, void (*h)(gw_call *))
{
    c->route = r;
    if (m != EVHTTP_REQ_GET) {
        bad_method(c);
        return;
    }
    if (auth && !authenticate(c, 0))
        return;
    h(c);
}

static void route_stream(gw_call *c, enum evhttp_cmd_type m)
{
    c->route = GW_ROUTE_STREAM;
    if (m != EVHTTP_REQ_GET) {
        bad_method(c);
        return;
    }
    const gw_key_entry *k = NULL;
    if (evhttp_find_header(evhttp_request_get_input_headers(c->req), "Authorization")) {
        k = authenticate(c, 0);
        if (!k)
            return;
    }
    gw_sse_start(c, k);
}

static void route_v1(gw_call *c, enum evhttp_cmd_type m, const path_parts *p)
{
    if (seg_is(p, 1, "markets") && p->n == 2)
        route_simple(c, m, GW_ROUTE_MARKETS, false, gw_h_markets);
    else if (seg_is(p, 1, "markets"))
        route_market(c, m, p);
    else if (seg_is(p, 1, "orders"))
        route_orders(c, m, p);
    else if (seg_is(p, 1, "quote") && p->n == 2)
        route_simple(c, m, GW_ROUTE_QUOTE, true, gw_h_quote);
    else if (seg_is(p, 1, "account") && p->n == 2)
        route_simple(c, m, GW_ROUTE_ACCOUNT, true, gw_h_account);
    else if (seg_is(p, 1, "leases") && p->n == 2)
        route_simple(c, m, GW_ROUTE_LEASES, true, gw_h_leases);
    else if (seg_is(p, 1, "stream") && p->n == 2)
        route_stream(c, m);
    else if (seg_is(p, 1, "admin"))
        route_admin(c, m, p);
    else
        not_found(c);
}

static void h_metrics(gw_call *c)
{
    static char buf[64 * 1024]; /* loop thread only */
    int n = gw_metrics_render(&c->srv->metrics, buf, sizeof buf);
    if (n < 0) {
        gw_reply_error(c, GW_ERR_INTERNAL, "metrics do not fit");
        return;
    }
    finish(c, 200, buf, (size_t)n, "text/plain; version=0.0.4");
}

/* ---- connections waiting for an answer ---------------------------------------- */

/* Data from a client whose answer is still pending (a pipelined request,
 * or bytes after the body): stop reading, so it waits in the kernel as it
 * did before; evhttp reads it after the reply (evhttp_start_read_ runs the
 * input already buffered). Only EOF and errors matter meanwhile: they go
 * to evhttp's own event callback, which detaches the request (a late
 * reply then only frees it). */
static void on_early_data(struct bufferevent *bev, void *arg)
{
    (void)arg;
    bufferevent_disable(bev, EV_READ);
}

/* evhttp stops reading a connection once it has a request's body and
 * starts again (read and write) when the reply is queued. An answer that
 * comes in a later loop turn (a matcher round trip) then costs the
 * connection an EPOLL_CTL_DEL after the request and an EPOLL_CTL_ADD with
 * the reply, plus the MOD after the write. Enabling reading again in the
 * same turn, with the read callback above, leaves the connection in the
 * epoll set: libevent's changelist makes the disable + enable one no-op
 * EPOLL_CTL_MOD (it never drops an add that follows a delete), and with
 * write_now (above) that MOD is the request's only epoll_ctl. */
static void keep_reading(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    if (!bev)
        return;
    bufferevent_data_cb rcb, wcb;
    bufferevent_event_cb ecb;
    void *arg;
    bufferevent_getcb(bev, &rcb, &wcb, &ecb, &arg);
    bufferevent_setcb(bev, on_early_data, wcb, ecb, arg);
    bufferevent_enable(bev, EV_READ);
}

static void on_request(struct evhttp_request *req, gw_server *s, bool tls)
{
    int64_t t0 = gw_now_us();
    gw_call *c = call_get(s, req, t0);
    if (!c) {
        evhttp_send_error(req, 503, "Service Unavailable");
        return;
    }
    c->tls = tls;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    path_parts p;
    if (split_path(path, &p) != 0 || p.n == 0)
        not_found(c);
    else if (seg_is(&p, 0, "v1") && p.n >= 2)
        route_v1(c, m, &p);
    else if (seg_is(&p, 0, "healthz") && p.n == 1)
        route_simple(c, m, GW_ROUTE_HEALTHZ, false, gw_h_healthz);
    else if (seg_is(&p, 0, "metrics") && p.n == 1)
        route_simple(c, m, GW_ROUTE_METRICS, false, h_metrics);
    else
        not_found(c);
    /* still waiting for its answer (call_put clears req; streams release
     * their call at once) */
    if (c->req == req)
        keep_reading(req);
}

static void on_request_http(struct evhttp_request *req, void *arg)
{
    on_request(req, arg, false);
}

static void on_request_https(struct evhttp_request *req, void *arg)
{
    on_request(req, arg, true);
}

/* ---- start / stop ------------------------------------------------------------ */

static struct evhttp *listen_on(gw_server *s, const char *addr, int port, bool tls,
                                int *bound, struct evhttp_bound_socket **bs_out, char *err,
                                size_t errlen)
{
    struct evhttp *h = evhttp_new(s->base);
    if (!h) {
        snprintf(err, errlen, "evhttp_new failed");
        return NULL;
    }
    evhttp_set_gencb(h, tls ? on_request_https : on_request_http, s);
    evhttp_set_max_body_size(h, GW_HARD_BODY_BYTES);
    evhttp_set_max_headers_size(h, GW_MAX_HEADERS_BYTES);
    evhttp_set_timeout(h, s->cfg.idle_timeout_s);
    evhttp_set_allowed_methods(h, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE |
                                      EVHTTP_REQ_PATCH | EVHTTP_REQ_PUT | EVHTTP_REQ_HEAD);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(h, addr, (uint16_t)port);
    if (!bs) {
        snprintf(err, errlen, "cannot listen on %s:%d (in use or not allowed)", addr, port);
        evhttp_free(h);
        return NULL;
    }
    /* Replies leave in more than one write under TLS (a record for the
     * headers, one for the body) and streams write event by event: with
     * Nagle on, the second segment waits for the peer's delayed ACK
     * (~40 ms). Set on the listening socket, TCP_NODELAY is inherited by
     * every accepted connection (Linux): no setsockopt per request. */
    int one = 1;
    if (setsockopt(evhttp_bound_socket_get_fd(bs), IPPROTO_TCP, TCP_NODELAY, &one,
                   sizeof one) != 0) {
        snprintf(err, errlen, "TCP_NODELAY on %s:%d: %s", addr, port, strerror(errno));
        evhttp_free(h);
        return NULL;
    }
    *bs_out = bs;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    *bound = port;
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            *bound = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            *bound = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return h;
}

int gw_server_start(gw_server *s, struct event_base *base, const gw_config *cfg,
                    char *err, size_t errlen)
{
    s->cfg = *cfg;
    s->base = base;
    s->n_calls = cfg->max_inflight * 2;
    s->calls = calloc(s->n_calls, sizeof *s->calls);
    if (!s->calls) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < s->n_calls; i++) {
        s->calls[i].next_free = s->free_calls;
        s->free_calls = &s->calls[i];
    }
    if (!(s->batcher = gw_batcher_open(s, err, errlen)))
        return -1;
    if (cfg->http_port >= 0 && !(s->http = listen_on(s, cfg->http_addr, cfg->http_port, false,
                                                         &s->http_port_bound, &s->http_bs, err,
                                                         errlen)))
        return -1;
    if (cfg->https_port >= 0) {
        s->tls = gw_tls_open(cfg->tls_cert, cfg->tls_key, err, errlen);
        if (!s->tls)
            return -1;
        s->https = listen_on(s, cfg->http_addr, cfg->https_port, true, &s->https_port_bound,
                             &s->https_bs, err, errlen);
        if (!s->https)
            return -1;
        gw_tls_attach(s->tls, s->https);
    }
    return 0;
}

void gw_server_stop_accepting(gw_server *s)
{
    if (s->http && s->http_bs)
        evhttp_del_accept_socket(s->http, s->http_bs);
    if (s->https && s->https_bs)
        evhttp_del_accept_socket(s->https, s->https_bs);
    s->http_bs = s->https_bs = NULL;
}

void gw_server_stop(gw_server *s)
{
    gw_batcher_close(s->batcher);
    s->batcher = NULL;
    gw_sse_close_all(s);
    if (s->http)
        evhttp_free(s->http);
    if (s->https)
        evhttp_free(s->https);
    s->http = s->https = NULL;
    gw_tls_close(s->tls);
    s->tls = NULL;
}
