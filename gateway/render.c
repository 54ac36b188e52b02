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
    snprintf(b, sizeof b, "%" PRIu64, id);
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
