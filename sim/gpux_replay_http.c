/* gpux_replay_http.c — replays a day file through the gateway's HTTP API,
 * the way real providers and buyers reach the exchange: the admin key
 * creates the day's accounts (each gets its own API key) and funds them,
 * then every order, cancel and replace is an authenticated request with
 * that account's key.
 *
 * One libevent loop, LANES keep-alive connections with one request in
 * flight each; an order's cancel and replaces use the order's lane, in
 * file order, so they are sent after its id is known. Account and deposit
 * lines are barriers (funds exist before orders). The API has no clock,
 * so a CLOCK line is a barrier too: every lane drains, then the clock
 * moves by a command straight to the matcher (--clock sim).
 * After the day, the trades for the report are read exactly, fees
 * included, from the matcher's sequenced feed as an observer (which does
 * not move the ledger's position), from the matcher's seq at the start of
 * the day on (earlier days' events are not read again). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "gpux_assert.h"
#include "sim/gpux_cli.h"
#include "sim/gpux_replay_core.h"

#define LANE_QUEUE 64
#define HTTP_TIMEOUT_S 30
#define KEY_LEN 80

typedef struct hreplay hreplay;

typedef struct hlane {
    hreplay *rp;
    struct evhttp_connection *conn;
    sim_cmd q[LANE_QUEUE];
    uint32_t head, count;
    sim_cmd cur;
    bool busy;
} hlane;

struct hreplay {
    struct event_base *base;
    sim_dayfile *day;
    const sim_day_header *hdr;
    const sim_replay_http_config *cfg;
    sim_report *report;
    sim_replay_maps maps;
    char (*keys)[KEY_LEN];      /* account_idx -> its API key */
    hlane *lanes;
    int n_lanes;
    sim_cmd pending;
    bool have_pending, eof, failed;
    char err[256];
    nng_socket sock;
    nng_ctx ctx;
    nng_aio *aio;
    sim_replay_stats stats;
    uint64_t start_seq;         /* the matcher's seq before the day: its trades come after */
    uint64_t lines;
    long t0, last_progress;
};

static long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void fail(hreplay *rp, const char *msg)
{
    if (!rp->failed)
        snprintf(rp->err, sizeof rp->err, "%s", msg);
    rp->failed = true;
    event_base_loopexit(rp->base, NULL);
}

static void pump(hreplay *rp);

/* ---- requests ---- */

static const char *tif_name(uint8_t tif)
{
    static const char *const names[] = {"gtc", "ioc", "fok", "post_only"};
    return tif < 4 ? names[tif] : "gtc";
}

static json_t *order_body(const sim_cmd *c)
{
    char price[SIM_MONEY_LEN], start[SIM_HOUR_LEN], end[SIM_HOUR_LEN], exp[SIM_HOUR_LEN];
    int gi = c->market / SIM_N_REGIONS, ri = c->market % SIM_N_REGIONS;
    json_t *b = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s}", "side", c->side == SIM_BUY ? "buy" : "sell",
                          "gpu", sim_gpu(gi)->gpu, "region", sim_region(ri), "start", sim_fmt_hour(c->start_hour, start),
                          "end", sim_fmt_hour(c->end_hour, end), "qty", c->qty, "price",
                          sim_fmt_micros(c->price_micros, price), "tif", tif_name(c->tif), "client_order_id", c->ref);
    if (c->min_qty)
        json_object_set_new(b, "min_qty", json_integer(c->min_qty));
    if (c->min_hours)
        json_object_set_new(b, "min_hours", json_integer(c->min_hours));
    if (c->single_provider)
        json_object_set_new(b, "single_provider", json_true());
    if (c->expire_at_hour)
        json_object_set_new(b, "expire_at", json_string(sim_fmt_hour(c->expire_at_hour, exp)));
    return b;
}

static json_t *account_body(const sim_cmd *c)
{
    json_t *roles = json_array();
    if (c->roles & SIM_ROLE_BUYER)
        json_array_append_new(roles, json_string("buyer"));
    if (c->roles & SIM_ROLE_PROVIDER)
        json_array_append_new(roles, json_string("provider"));
    return json_pack("{s:s, s:o}", "name", c->account, "roles", roles);
}

/* Method, path, body and key of a day-file command; false when it cannot
 * be sent (a cancel/replace of an order that was never accepted). */
static bool build(hreplay *rp, const sim_cmd *c, enum evhttp_cmd_type *method, char *path, size_t n, json_t **body,
                  const char **key)
{
    char amount[SIM_MONEY_LEN];
    *body = NULL;
    *key = rp->keys[c->account_idx];
    switch (c->op) {
    case SIM_OP_ACCOUNT:
        *method = EVHTTP_REQ_POST;
        snprintf(path, n, "/v1/admin/accounts");
        *body = account_body(c);
        *key = rp->cfg->admin_key;
        return true;
    case SIM_OP_DEPOSIT:
        *method = EVHTTP_REQ_POST;
        snprintf(path, n, "/v1/admin/deposits");
        *body = json_pack("{s:I, s:s}", "account_id", (json_int_t)rp->maps.account_ids[c->account_idx], "amount",
                          sim_fmt_micros(c->amount_micros, amount));
        *key = rp->cfg->admin_key;
        return true;
    case SIM_OP_ORDER:
        *method = EVHTTP_REQ_POST;
        snprintf(path, n, "/v1/orders");
        *body = order_body(c);
        return true;
    case SIM_OP_CANCEL:
    case SIM_OP_REPLACE:
        if (rp->maps.order_ids[c->order_idx] == 0)
            return false;
        snprintf(path, n, "/v1/orders/%llu", (unsigned long long)rp->maps.order_ids[c->order_idx]);
        *method = c->op == SIM_OP_CANCEL ? EVHTTP_REQ_DELETE : EVHTTP_REQ_PATCH;
        if (c->op == SIM_OP_REPLACE) {
            *body = json_object();
            if (c->price_micros)
                json_object_set_new(*body, "price", json_string(sim_fmt_micros(c->price_micros, amount)));
            if (c->qty)
                json_object_set_new(*body, "qty", json_integer(c->qty));
        }
        return true;
    default:
        return false;
    }
}

/* ---- responses ---- */

static uint64_t id_field(json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    if (json_is_integer(v))
        return (uint64_t)json_integer_value(v);
    if (json_is_string(v))
        return strtoull(json_string_value(v), NULL, 10);
    return 0;
}

static void record_ok(hreplay *rp, const sim_cmd *c, json_t *j)
{
    if (c->op == SIM_OP_ACCOUNT) {
        const char *k = json_string_value(json_object_get(j, "api_key"));
        uint64_t id = id_field(j, "account_id");
        if (!k || strlen(k) >= KEY_LEN || id == 0) {
            fail(rp, "the gateway's account answer has no account_id/api_key");
            return;
        }
        snprintf(rp->keys[c->account_idx], KEY_LEN, "%s", k);
        sim_replay_maps_account(&rp->maps, c->account_idx, (uint32_t)id);
        sim_report_account(rp->report, c->account_idx, c->account, c->kind);
    } else if (c->op == SIM_OP_ORDER) {
        sim_replay_maps_order(&rp->maps, c->order_idx, id_field(j, "order_id"));
        sim_report_order(rp->report, c);
    } else if (c->op == SIM_OP_REPLACE) {
        sim_report_replace(rp->report, c->order_idx, c->qty);
    }
}

static void on_response(struct evhttp_request *req, void *arg)
{
    hlane *l = arg;
    hreplay *rp = l->rp;
    int status = req ? evhttp_request_get_response_code(req) : 0;
    json_t *j = NULL;
    if (req) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t n = evbuffer_get_length(in);
        char *text = (char *)evbuffer_pullup(in, (ssize_t)n);
        j = text ? json_loadb(text, n, 0, NULL) : NULL;
    }
    rp->stats.commands++;
    if (status == 200 || status == 201) {
        record_ok(rp, &l->cur, j);
    } else if (status >= 400 && status < 500 && status != 401 && status != 403) {
        const char *code = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
        rp->stats.rejected++;
        sim_report_reject(rp->report, l->cur.op, code ? code : "unknown");
    } else {
        char msg[200];
        snprintf(msg, sizeof msg, "the gateway answered %d to %s (line op %d)", status,
                 status == 0 ? "a request (no answer)" : "a request", l->cur.op);
        fail(rp, msg);
    }
    json_decref(j);
    l->busy = false;
    pump(rp);
}

static void lane_kick(hreplay *rp, hlane *l)
{
    while (!l->busy && l->count > 0 && !rp->failed) {
        l->cur = l->q[l->head];
        l->head = (l->head + 1) % LANE_QUEUE;
        l->count--;
        enum evhttp_cmd_type method;
        char path[96];
        json_t *body;
        const char *key;
        if (!build(rp, &l->cur, &method, path, sizeof path, &body, &key)) {
            rp->stats.skipped++;
            continue;
        }
        struct evhttp_request *req = evhttp_request_new(on_response, l);
        char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        gpux_http_prepare(req, "127.0.0.1", key, text);
        free(text);
        json_decref(body);
        l->busy = true;
        if (evhttp_make_request(l->conn, req, method, path) != 0)
            fail(rp, "cannot send a request to the gateway");
    }
}

/* ---- the clock, over nng ---- */

static void advance_clock(hreplay *rp, int64_t hour)
{
    wire_cmd w = {.type = MATCHER_CMD_ADVANCE_CLOCK, .clock_hour = hour};
    uint8_t buf[sizeof(wire_hdr) + sizeof(wire_cmd)];
    size_t len = wire_encode_cmd(buf, sizeof buf, &w);
    nng_msg *msg = NULL;
    int rv = sim_replay_call(rp->ctx, rp->aio, buf, len, &msg);
    wire_reply r;
    wire_reader rd;
    char err[160];
    if (rv != 0 || wire_decode_reply(nng_msg_body(msg), nng_msg_len(msg), &r, &rd, err, sizeof err) != 0 ||
        r.status != WIRE_ST_OK) {
        char m[256];
        snprintf(m, sizeof m, "the matcher refused to move the clock (%s): is it running with --clock sim?",
                 rv ? nng_strerror(rv) : msg ? r.detail : "?");
        fail(rp, m);
    }
    if (msg)
        nng_msg_free(msg);
}

/* ---- driving ---- */

static bool all_idle(const hreplay *rp)
{
    for (int i = 0; i < rp->n_lanes; i++)
        if (rp->lanes[i].busy || rp->lanes[i].count)
            return false;
    return true;
}

static void progress(hreplay *rp, bool final)
{
    long ms = mono_ms() - rp->t0;
    if (!rp->cfg->progress || (!final && mono_ms() - rp->last_progress < 200))
        return;
    rp->last_progress = mono_ms();
    int pct = rp->hdr->events ? (int)(rp->lines * 100 / rp->hdr->events) : 100;
    fprintf(stderr, "\rreplay via gateway [%-40.*s] %3d%% %llu/%llu lines, %llu/s%s", pct * 40 / 100,
            "########################################", pct, (unsigned long long)rp->lines,
            (unsigned long long)rp->hdr->events, ms > 0 ? (unsigned long long)(rp->lines * 1000 / (uint64_t)ms) : 0ull,
            final ? "\n" : "");
}

/* Moves day-file lines into lane queues until a barrier or a full lane
 * stops it, then sends whatever lanes can send. Called at start and after
 * every response, so a blocked barrier is retried as lanes drain. */
static void pump(hreplay *rp)
{
    char err[256];
    while (!rp->failed && !rp->eof) {
        if (!rp->have_pending) {
            int n = sim_dayfile_next(rp->day, &rp->pending, err, sizeof err);
            if (n < 0) {
                fail(rp, err);
                return;
            }
            if (n == 0) {
                rp->eof = true;
                break;
            }
            rp->have_pending = true;
        }
        const sim_cmd *c = &rp->pending;
        /* CLOCK, ACCOUNT and DEPOSIT wait for every lane (the clock moves
         * between hours; funds exist before orders); an order's cancel and
         * replaces use the order's lane, so they follow it. */
        bool barrier = c->op == SIM_OP_CLOCK || c->op == SIM_OP_ACCOUNT || c->op == SIM_OP_DEPOSIT;
        if (barrier && !all_idle(rp))
            break;
        if (c->op == SIM_OP_CLOCK) {
            advance_clock(rp, c->hour);
        } else {
            hlane *l = &rp->lanes[(barrier ? 0 : c->order_idx) % (uint32_t)rp->n_lanes];
            if (l->count == LANE_QUEUE)
                break;
            l->q[(l->head + l->count) % LANE_QUEUE] = *c;
            l->count++;
            lane_kick(rp, l);
        }
        rp->have_pending = false;
        rp->lines++;
        progress(rp, false);
    }
    for (int i = 0; i < rp->n_lanes; i++)
        lane_kick(rp, &rp->lanes[i]);
    if ((rp->eof && all_idle(rp)) || rp->failed)
        event_base_loopexit(rp->base, NULL);
}

/* ---- trades from the feed ---- */

static int read_trades(hreplay *rp, char *err, size_t errlen)
{
    uint64_t after = rp->start_seq;
    uint32_t after_index = UINT32_MAX; /* every event after command start_seq */
    for (uint32_t page = 0; page < 1000000; page++) {
        wire_query q = {.type = WIRE_Q_FEED, .flags = WIRE_QF_OBSERVER, .after = after,
                        .after_index = after_index, .limit = WIRE_MAX_FEED_EVENTS};
        uint8_t buf[sizeof(wire_hdr) + sizeof(wire_query)];
        size_t len = wire_encode_query(buf, sizeof buf, &q);
        nng_msg *msg = NULL;
        int rv = sim_replay_call(rp->ctx, rp->aio, buf, len, &msg);
        wire_reply r;
        wire_reader rd;
        if (rv != 0 || wire_decode_reply(nng_msg_body(msg), nng_msg_len(msg), &r, &rd, err, errlen) != 0 ||
            r.status != WIRE_ST_OK) {
            if (rv)
                snprintf(err, errlen, "reading the matcher's feed: %s", nng_strerror(rv));
            else if (r.status != WIRE_ST_OK)
                snprintf(err, errlen, "reading the matcher's feed: %s %s", wire_status_name(r.status), r.detail);
            if (msg)
                nng_msg_free(msg);
            return -1;
        }
        uint16_t type;
        wire_item it;
        int n, got = 0;
        int64_t day0_s = rp->hdr->start_hour * 3600;
        while ((n = wire_reader_next(&rd, &type, &it, err, errlen)) == 1) {
            got++;
            after = it.event.seq;
            after_index = it.event.index;
            if (it.event.type != MATCHER_EV_TRADE)
                continue;
            int64_t t_s = it.event.ts_us / 1000000 - day0_s;
            if (t_s < 0)
                t_s = 0;
            if (t_s >= (int64_t)rp->hdr->hours * 3600)
                t_s = (int64_t)rp->hdr->hours * 3600 - 1;
            if (sim_replay_record_trade(&rp->maps, rp->report, t_s, &it.event, &rp->stats) < 0) {
                snprintf(err, errlen, "the matcher reported trade %llu that the report finds impossible",
                         (unsigned long long)it.event.trade_id);
                nng_msg_free(msg);
                return -1;
            }
        }
        nng_msg_free(msg);
        if (n < 0)
            return -1;
        if (got == 0)
            return 0;
    }
    snprintf(err, errlen, "feed did not end");
    return -1;
}

/* ---- setup ---- */

static int parse_gateway(const char *url, char *host, size_t n, int *port)
{
    struct evhttp_uri *u = evhttp_uri_parse(url);
    if (!u || !evhttp_uri_get_host(u) || !evhttp_uri_get_scheme(u) || strcmp(evhttp_uri_get_scheme(u), "http") != 0) {
        if (u)
            evhttp_uri_free(u);
        return -1;
    }
    snprintf(host, n, "%s", evhttp_uri_get_host(u));
    *port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 80;
    evhttp_uri_free(u);
    return 0;
}

static int hreplay_init(hreplay *rp, const sim_replay_http_config *cfg, char *err, size_t errlen)
{
    char host[256];
    int port;
    if (parse_gateway(cfg->gateway_url, host, sizeof host, &port) != 0) {
        snprintf(err, errlen, "bad gateway URL '%s' (want http://host:port)", cfg->gateway_url);
        return -1;
    }
    rp->n_lanes = cfg->lanes > 0 && cfg->lanes <= 256 ? cfg->lanes : 32;
    rp->lanes = calloc((size_t)rp->n_lanes, sizeof(hlane));
    rp->keys = calloc(rp->hdr->accounts + 1, KEY_LEN);
    rp->base = event_base_new();
    rp->report = sim_report_create(rp->hdr->hours, rp->hdr->orders + 1, rp->hdr->accounts + 1);
    if (!rp->lanes || !rp->keys || !rp->base || !rp->report || sim_replay_maps_init(&rp->maps, rp->hdr) != 0) {
        snprintf(err, errlen, "out of memory for a day of %u orders", rp->hdr->orders);
        return -1;
    }
    for (int i = 0; i < rp->n_lanes; i++) {
        rp->lanes[i].rp = rp;
        rp->lanes[i].conn = evhttp_connection_base_new(rp->base, NULL, host, (unsigned short)port);
        if (!rp->lanes[i].conn) {
            snprintf(err, errlen, "cannot open connections to %s", cfg->gateway_url);
            return -1;
        }
        evhttp_connection_set_timeout(rp->lanes[i].conn, HTTP_TIMEOUT_S);
    }
    int rv = sim_replay_dial(&rp->sock, cfg->matcher_url);
    if (rv == 0)
        rv = nng_ctx_open(&rp->ctx, rp->sock);
    if (rv == 0)
        rv = nng_aio_alloc(&rp->aio, NULL, NULL);
    if (rv != 0) {
        snprintf(err, errlen, "cannot reach the matcher at %s: %s", cfg->matcher_url, nng_strerror(rv));
        return -1;
    }
    nng_aio_set_timeout(rp->aio, HTTP_TIMEOUT_S * 1000);
    wire_status_item st;
    char why[200];
    if (sim_replay_status(rp->ctx, rp->aio, &st, why, sizeof why) != 0) {
        snprintf(err, errlen, "cannot reach the matcher at %s: %s", cfg->matcher_url, why);
        return -1;
    }
    rp->start_seq = st.seq;
    return 0;
}

static void hreplay_free(hreplay *rp)
{
    for (int i = 0; rp->lanes && i < rp->n_lanes; i++)
        if (rp->lanes[i].conn)
            evhttp_connection_free(rp->lanes[i].conn);
    if (rp->aio)
        nng_aio_free(rp->aio);
    nng_close(rp->sock);
    if (rp->base)
        event_base_free(rp->base);
    sim_replay_maps_free(&rp->maps);
    free(rp->lanes);
    free(rp->keys);
}

int sim_replay_http(const char *day_path, const sim_replay_http_config *cfg, sim_report **out_report,
                    sim_replay_stats *stats, char *err, size_t errlen)
{
    *out_report = NULL;
    hreplay rp = {.cfg = cfg};
    rp.day = sim_dayfile_open(day_path, err, errlen);
    if (!rp.day)
        return -1;
    rp.hdr = sim_dayfile_header(rp.day);
    int rc = hreplay_init(&rp, cfg, err, errlen);
    if (rc == 0) {
        rp.t0 = mono_ms();
        pump(&rp);
        if (!rp.eof || !all_idle(&rp))
            event_base_dispatch(rp.base);
        progress(&rp, true);
        rp.stats.seconds_ms = mono_ms() - rp.t0;
        if (rp.failed) {
            snprintf(err, errlen, "%s", rp.err);
            rc = -1;
        } else if (!rp.eof || !all_idle(&rp)) {
            snprintf(err, errlen, "replay stopped at line %llu with requests unanswered",
                     (unsigned long long)sim_dayfile_line(rp.day));
            rc = -1;
        }
    }
    if (rc == 0)
        rc = read_trades(&rp, err, errlen);
    *stats = rp.stats;
    if (rc == 0)
        *out_report = rp.report;
    else
        sim_report_destroy(rp.report);
    hreplay_free(&rp);
    sim_dayfile_close(rp.day);
    return rc;
}
