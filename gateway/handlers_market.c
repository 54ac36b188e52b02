/* handlers_market.c — public market data: markets, book, trades, and the
 * (authenticated) quote. Query-string values are validated like body
 * fields: bad ones are 400 with the api.md code, never guessed at. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/server.h"
#include "gpux_assert.h"

#define DEFAULT_DEPTH 10
#define DEFAULT_TRADES 50

/* The catalog is fixed for the gateway's life: render it once. */
void gw_h_markets(gw_call *c)
{
    gw_server *s = c->srv;
    if (!s->markets_json) {
        json_t *list = json_array();
        const matcher_catalog *cat = s->cat;
        for (uint32_t i = 0; i < cat->n_markets && i < MATCHER_MAX_MARKETS; i++)
            json_array_append_new(list, gw_render_market(&cat->markets[i]));
        json_t *body = json_object();
        json_object_set_new(body, "markets", list);
        s->markets_json = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        if (!s->markets_json) {
            gw_reply_error(c, GW_ERR_INTERNAL, "could not render the markets");
            return;
        }
        s->markets_len = strlen(s->markets_json);
    }
    gw_reply_raw(c, 200, s->markets_json, s->markets_len);
}

/* A query integer in [lo, hi], default def when absent. -1 (answered 400
 * bad_field naming it) when malformed. */
static int param_int(gw_call *c, const char *name, int64_t lo, int64_t hi, int64_t def,
                     gw_err e, int64_t *out)
{
    const char *v = gw_query_param(c, name);
    *out = def;
    if (!v)
        return 0;
    uint64_t x;
    if (gw_parse_id(v, strlen(v), &x) != 0 || (int64_t)x < lo || (int64_t)x > hi) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s must be an integer from %lld to %lld", name,
                 (long long)lo, (long long)hi);
        gw_reply_error(c, e, msg);
        return -1;
    }
    *out = (int64_t)x;
    return 0;
}

/* Optional start/end pair: both or neither. */
static int param_window(gw_call *c, bool required, int64_t *start, int64_t *end)
{
    const char *s = gw_query_param(c, "start"), *e = gw_query_param(c, "end");
    *start = *end = 0;
    if (!s && !e && !required)
        return 0;
    if (!s || !e) {
        gw_reply_error(c, required ? GW_ERR_MISSING_FIELD : GW_ERR_BAD_WINDOW,
                       "give both start and end");
        return -1;
    }
    if (gw_hour_parse(s, strlen(s), start) != 0 || gw_hour_parse(e, strlen(e), end) != 0) {
        gw_reply_error(c, GW_ERR_BAD_WINDOW,
                       "start and end must be whole UTC hours like 2026-12-01T00:00:00Z");
        return -1;
    }
    if (*end <= *start || *end - *start > MATCHER_MAX_WINDOW_HOURS) {
        gw_reply_error(c, GW_ERR_BAD_WINDOW, "end must be after start, at most 8760 hours later");
        return -1;
    }
    return 0;
}

static void book_got(gw_call *c, int rc, const wire_reply *rep, wire_reader *rd)
{
    (void)rc;
    if (!gw_answered_ok(c, rep))
        return;
    json_t *bids = json_array(), *asks = json_array();
    uint16_t type;
    wire_item it;
    char err[128];
    for (uint32_t n = 0; n <= 2 * WIRE_MAX_QUERY_LIMIT &&
                         wire_reader_next(rd, &type, &it, err, sizeof err) == 1; n++) {
        if (type != WIRE_ITEM_LEVEL)
            continue;
        json_t *l = json_object();
        json_object_set_new(l, "price", gw_json_money(it.level.price_micros));
        json_object_set_new(l, "qty", json_integer(it.level.qty));
        json_object_set_new(l, "start", gw_json_hour(it.level.start_hour));
        json_object_set_new(l, "end", gw_json_hour(it.level.end_hour));
        json_array_append_new(it.level.side == MATCHER_BUY ? bids : asks, l);
    }
    json_t *body = json_object();
    json_object_set_new(body, "bids", bids);
    json_object_set_new(body, "asks", asks);
    gw_reply_json(c, 200, body);
}

void gw_h_book(gw_call *c, uint32_t market)
{
    int64_t depth, start, end;
    if (param_int(c, "depth", 1, WIRE_MAX_QUERY_LIMIT, DEFAULT_DEPTH, GW_ERR_BAD_FIELD, &depth) ||
        param_window(c, false, &start, &end))
        return;
    wire_query q = {.type = WIRE_Q_BOOK, .market = market, .limit = (uint32_t)depth,
                    .start_hour = start, .end_hour = end};
    gw_call_query(c, &q, book_got);
}

static void trades_got(gw_call *c, int rc, const wire_reply *rep, wire_reader *rd)
{
    (void)rc;
    if (!gw_answered_ok(c, rep))
        return;
    json_t *list = json_array();
    uint16_t type;
    wire_item it;
    char err[128];
    for (uint32_t n = 0; n <= WIRE_MAX_QUERY_LIMIT &&
                         wire_reader_next(rd, &type, &it, err, sizeof err) == 1; n++) {
        if (type != WIRE_ITEM_FILL)
            continue;
        json_t *t = gw_render_fill(&it.fill);
        char b[GW_TIME_STR_LEN];
        json_object_set_new(t, "time", json_string(gw_time_format_us(it.fill.ts_us, b)));
        json_array_append_new(list, t);
    }
    json_t *body = json_object();
    json_object_set_new(body, "trades", list);
    gw_reply_json(c, 200, body);
}

void gw_h_trades(gw_call *c, uint32_t market)
{
    int64_t limit;
    if (param_int(c, "limit", 1, WIRE_MAX_QUERY_LIMIT, DEFAULT_TRADES, GW_ERR_BAD_FIELD, &limit))
        return;
    wire_query q = {.type = WIRE_Q_TRADES, .market = market, .limit = (uint32_t)limit};
    gw_call_query(c, &q, trades_got);
}

static void quote_got(gw_call *c, int rc, const wire_reply *rep, wire_reader *rd)
{
    (void)rc;
    if (!gw_answered_ok(c, rep))
        return;
    wire_item it;
    if (!gw_first_item(c, rd, WIRE_ITEM_QUOTE, "quote", &it))
        return;
    json_t *body = json_object();
    json_object_set_new(body, "fillable_qty", json_integer(it.quote.fillable_qty));
    json_object_set_new(body, "avg_price", gw_json_money(it.quote.avg_price_micros));
    json_object_set_new(body, "notional", gw_json_money(it.quote.notional_micros));
    gw_reply_json(c, 200, body);
}

void gw_h_quote(gw_call *c)
{
    static const char *const required[] = {"side", "gpu", "region", "start", "end", "qty"};
    for (unsigned i = 0; i < GPUX_ARRAY_LEN(required); i++)
        if (!gw_query_param(c, required[i])) {
            char msg[64];
            snprintf(msg, sizeof msg, "missing query parameter '%s'", required[i]);
            gw_reply_error(c, GW_ERR_MISSING_FIELD, msg);
            return;
        }
    const char *side = gw_query_param(c, "side");
    uint8_t s = strcmp(side, "buy") == 0 ? MATCHER_BUY : strcmp(side, "sell") == 0 ? MATCHER_SELL : 0;
    if (!s) {
        gw_reply_error(c, GW_ERR_BAD_FIELD, "side must be buy or sell");
        return;
    }
    int m = gw_market_find(c->srv->cat, gw_query_param(c, "gpu"), gw_query_param(c, "region"));
    if (m < 0) {
        gw_reply_error(c, GW_ERR_UNKNOWN_MARKET, "no such market (gpu, region) in the catalog");
        return;
    }
    int64_t start, end, qty;
    if (param_window(c, true, &start, &end) ||
        param_int(c, "qty", 1, MATCHER_MAX_QTY, 0, GW_ERR_BAD_QTY, &qty))
        return;
    wire_query q = {.type = WIRE_Q_QUOTE, .side = s, .market = (uint32_t)m, .qty = (int32_t)qty,
                    .start_hour = start, .end_hour = end};
    gw_call_query(c, &q, quote_got);
}
