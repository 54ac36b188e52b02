/* render.c — wire structs to API JSON (api.md shapes).
 *
 * Ids are strings, money is a decimal string (gw_money_format), times are
 * RFC 3339 whole hours. One place renders each shape so every endpoint
 * shows an order, a fill or an account the same way. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "gateway/server.h"
#include "gpux_assert.h"

json_t *gw_json_money(int64_t micros)
{
    char b[GW_MONEY_STR_LEN];
    return json_string(gw_money_format(micros, b));
}

json_t *gw_json_hour(int64_t hour)
{
    char b[GW_TIME_STR_LEN];
    if (hour < 0 || hour >= GW_HOUR_MAX)
        return json_null();
    return json_string(gw_hour_format(hour, b));
}

json_t *gw_json_id(uint64_t id)
{
    char b[24];
    gw_u64_format(id, b);
    return json_string(b);
}

json_t *gw_json_roles(uint32_t roles)
{
    json_t *a = json_array();
    if (roles & MATCHER_ROLE_BUYER)
        json_array_append_new(a, json_string("buyer"));
    if (roles & MATCHER_ROLE_PROVIDER)
        json_array_append_new(a, json_string("provider"));
    if (roles & MATCHER_ROLE_ADMIN)
        json_array_append_new(a, json_string("admin"));
    return a;
}

static const char *tif_name(uint8_t tif)
{
    static const char *const names[] = {"gtc", "ioc", "fok", "post_only"};
    return tif < GPUX_ARRAY_LEN(names) ? names[tif] : "gtc";
}

static void set_market(json_t *o, const gw_server *s, uint32_t market)
{
    if (s->cat && market < s->cat->n_markets) {
        json_object_set_new(o, "gpu", json_string(s->cat->markets[market].gpu));
        json_object_set_new(o, "region", json_string(s->cat->markets[market].region));
    } else {
        json_object_set_new(o, "gpu", json_null());
        json_object_set_new(o, "region", json_null());
    }
}

json_t *gw_render_order(const gw_server *s, const wire_order *w, json_t *fills)
{
    json_t *o = json_object();
    json_object_set_new(o, "order_id", gw_json_id(w->order_id));
    json_object_set_new(o, "client_order_id",
                        w->client_order_id[0] ? json_string(w->client_order_id) : json_null());
    json_object_set_new(o, "status", json_string(wire_order_status_name(w->status)));
    json_object_set_new(o, "side", json_string(w->side == MATCHER_BUY ? "buy" : "sell"));
    set_market(o, s, w->market);
    json_object_set_new(o, "start", gw_json_hour(w->start_hour));
    json_object_set_new(o, "end", gw_json_hour(w->end_hour));
    json_object_set_new(o, "qty", json_integer(w->qty));
    json_object_set_new(o, "filled_qty", json_integer(w->filled_qty));
    json_object_set_new(o, "price", gw_json_money(w->price_micros));
    json_object_set_new(o, "tif", json_string(tif_name(w->tif)));
    json_object_set_new(o, "min_qty", json_integer(w->min_qty));
    if (w->side == MATCHER_SELL)
        json_object_set_new(o, "min_hours", json_integer(w->min_hours));
    else
        json_object_set_new(o, "single_provider", json_boolean(w->single_provider));
    json_object_set_new(o, "expire_at",
                        w->expire_at_hour ? gw_json_hour(w->expire_at_hour) : json_null());
    json_object_set_new(o, "fills", fills ? fills : json_array());
    return o;
}

json_t *gw_render_fill(const wire_fill *f)
{
    json_t *o = json_object();
    json_object_set_new(o, "trade_id", gw_json_id(f->trade_id));
    json_object_set_new(o, "price", gw_json_money(f->price_micros));
    json_object_set_new(o, "qty", json_integer(f->qty));
    json_object_set_new(o, "start", gw_json_hour(f->start_hour));
    json_object_set_new(o, "end", gw_json_hour(f->end_hour));
    return o;
}

json_t *gw_render_account(const wire_account *a)
{
    json_t *o = json_object();
    json_object_set_new(o, "account_id", gw_json_id(a->account));
    json_object_set_new(o, "name", json_string(a->name));
    json_object_set_new(o, "roles", gw_json_roles(a->roles));
    json_object_set_new(o, "balance", gw_json_money(a->balance_micros));
    json_object_set_new(o, "held", gw_json_money(a->held_micros));
    json_object_set_new(o, "available", gw_json_money(a->balance_micros - a->held_micros));
    return o;
}

json_t *gw_render_market(const matcher_market_def *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "gpu", json_string(m->gpu));
    json_object_set_new(o, "region", json_string(m->region));
    json_object_set_new(o, "lot", json_integer(m->lot));
    json_object_set_new(o, "tick", gw_json_money(m->tick_micros));
    return o;
}

/* ---- the order as text, without building a JSON tree ------------------------ */
/* POST /v1/orders answers every order with this shape: writing it straight
 * into a buffer saves the tree of small allocations jansson builds and
 * frees per reply. It writes exactly what json_dumps(gw_render_order(),
 * JSON_COMPACT) writes (tests/test_gateway_units.c compares the two). */

typedef struct text_buf {
    char *buf;
    size_t cap, len;
    bool full;
} text_buf;

static void tput(text_buf *t, const char *s, size_t n)
{
    if (t->full || n > t->cap - t->len) {
        t->full = true;
        return;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
}

static void tputs(text_buf *t, const char *s)
{
    tput(t, s, strlen(s));
}

/* A JSON string with jansson's escapes ("\"", "\\", \b \f \n \r \t, other
 * control bytes as \u00XX; everything else as is). */
static void tstr(text_buf *t, const char *s)
{
    tput(t, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        /* a run of bytes that need no escape goes in one copy */
        size_t run = 0;
        while (p[run] >= 0x20 && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > 0) {
            tput(t, (const char *)p, run);
            p += run - 1;
            continue;
        }
        char esc[8];
        const char *e = NULL;
        switch (*p) {
        case '"': e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\b': e = "\\b"; break;
        case '\f': e = "\\f"; break;
        case '\n': e = "\\n"; break;
        case '\r': e = "\\r"; break;
        case '\t': e = "\\t"; break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04X", *p);
                e = esc;
            }
        }
        if (e)
            tputs(t, e);
        else
            tput(t, (const char *)p, 1);
    }
    tput(t, "\"", 1);
}

static void tkey(text_buf *t, const char *key)
{
    tstr(t, key);
    tput(t, ":", 1);
}

static void tint(text_buf *t, int64_t v)
{
    char b[24];
    tput(t, b, gw_i64_format(v, b));
}

static void tid(text_buf *t, uint64_t id)
{
    char b[24];
    size_t n = gw_u64_format(id, b);
    tput(t, "\"", 1); /* digits need no escaping */
    tput(t, b, n);
    tput(t, "\"", 1);
}

static void thour(text_buf *t, int64_t hour)
{
    char b[GW_TIME_STR_LEN];
    if (hour < 0 || hour >= GW_HOUR_MAX)
        tputs(t, "null");
    else
        tstr(t, gw_hour_format(hour, b));
}

static void tmoney(text_buf *t, int64_t micros)
{
    char b[GW_MONEY_STR_LEN];
    tstr(t, gw_money_format(micros, b));
}

static void tfill(text_buf *t, const wire_fill *f)
{
    tputs(t, "{\"trade_id\":");
    tid(t, f->trade_id);
    tputs(t, ",\"price\":");
    tmoney(t, f->price_micros);
    tputs(t, ",\"qty\":");
    tint(t, f->qty);
    tputs(t, ",\"start\":");
    thour(t, f->start_hour);
    tputs(t, ",\"end\":");
    thour(t, f->end_hour);
    tputs(t, "}");
}

int gw_render_order_text(const gw_server *s, const wire_order *w, const wire_fill *fills,
                         uint32_t n_fills, char *buf, size_t cap)
{
    text_buf t = {buf, cap, 0, false};
    tputs(&t, "{\"order_id\":");
    tid(&t, w->order_id);
    tputs(&t, ",\"client_order_id\":");
    if (w->client_order_id[0]) {
        char coid[WIRE_CLIENT_ID_LEN];
        memcpy(coid, w->client_order_id, sizeof coid);
        coid[sizeof coid - 1] = '\0';
        tstr(&t, coid);
    } else {
        tputs(&t, "null");
    }
    tputs(&t, ",\"status\":");
    tstr(&t, wire_order_status_name(w->status));
    tputs(&t, w->side == MATCHER_BUY ? ",\"side\":\"buy\"" : ",\"side\":\"sell\"");
    bool known = s->cat && w->market < s->cat->n_markets;
    tputs(&t, ",\"gpu\":");
    known ? tstr(&t, s->cat->markets[w->market].gpu) : tputs(&t, "null");
    tputs(&t, ",\"region\":");
    known ? tstr(&t, s->cat->markets[w->market].region) : tputs(&t, "null");
    tputs(&t, ",");
    tkey(&t, "start");
    thour(&t, w->start_hour);
    tputs(&t, ",\"end\":");
    thour(&t, w->end_hour);
    tputs(&t, ",\"qty\":");
    tint(&t, w->qty);
    tputs(&t, ",\"filled_qty\":");
    tint(&t, w->filled_qty);
    tputs(&t, ",\"price\":");
    tmoney(&t, w->price_micros);
    tputs(&t, ",\"tif\":");
    tstr(&t, tif_name(w->tif));
    tputs(&t, ",\"min_qty\":");
    tint(&t, w->min_qty);
    if (w->side == MATCHER_SELL) {
        tputs(&t, ",\"min_hours\":");
        tint(&t, w->min_hours);
    } else {
        tputs(&t, w->single_provider ? ",\"single_provider\":true"
                                     : ",\"single_provider\":false");
    }
    tputs(&t, ",\"expire_at\":");
    if (w->expire_at_hour)
        thour(&t, w->expire_at_hour);
    else
        tputs(&t, "null");
    tputs(&t, ",\"fills\":[");
    for (uint32_t i = 0; i < n_fills; i++) {
        if (i)
            tputs(&t, ",");
        tfill(&t, &fills[i]);
    }
    tputs(&t, "]}");
    return t.full ? -1 : (int)t.len;
}
