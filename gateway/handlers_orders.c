/* handlers_orders.c — POST/GET/DELETE/PATCH /v1/orders.
 *
 * Create sends one NEW_ORDER (batched with the other commands of the loop
 * turn, batch.c) and renders the order straight from the command's events
 * (as text: no JSON tree on the hot path). A repeated client_order_id
 * comes back from the matcher as DUPLICATE with the first order: 200
 * instead of 201. Get/cancel/replace show the order only to its
 * owner: another account's order is 404, exactly like one that does not
 * exist, so ids leak nothing. */
#include <string.h>

#include "gateway/server.h"
#include "gpux_assert.h"

#define LIST_PAGE WIRE_MAX_QUERY_LIMIT
#define LIST_MAX_PAGES 100 /* 100k open orders per account, listed */

/* Reads an ORDER item then its FILL items. Returns 0, or -1 (bad reply). */
static int read_order(gw_call *c, wire_reader *rd, wire_order *o, json_t *fills)
{
    uint16_t type;
    wire_item it;
    char err[128];
    if (wire_reader_next(rd, &type, &it, err, sizeof err) != 1 || type != WIRE_ITEM_ORDER)
        return -1;
    *o = it.order;
    for (uint32_t i = 0; i <= WIRE_ORDER_MAX_FILLS; i++) {
        int r = wire_reader_next(rd, &type, &it, err, sizeof err);
        if (r == 0)
            return 0;
        if (r < 0 || type != WIRE_ITEM_FILL)
            return -1;
        json_array_append_new(fills, gw_render_fill(&it.fill));
    }
    (void)c;
    return -1;
}

static void reply_order(gw_call *c, int status, wire_reader *rd, bool own_only)
{
    wire_order o;
    json_t *fills = json_array();
    if (read_order(c, rd, &o, fills) != 0) {
        json_decref(fills);
        gw_reply_error(c, GW_ERR_INTERNAL, "unreadable order from the matcher");
        return;
    }
    if (own_only && o.account != c->account) {
        json_decref(fills);
        gw_reply_error(c, GW_ERR_NOT_FOUND, "no such order");
        return;
    }
    gw_reply_json(c, status, gw_render_order(c->srv, &o, fills));
}

/* ---- create ---------------------------------------------------------------- */

static void order_from_accepted(wire_order *o, const wire_event *ev)
{
    o->order_id = ev->order_id;
    o->account = ev->account;
    o->market = ev->market;
    o->side = ev->side;
    o->tif = ev->tif;
    o->single_provider = ev->single_provider;
    o->status = WIRE_ORDER_OPEN;
    o->qty = ev->qty;
    o->min_qty = ev->min_qty;
    o->min_hours = ev->min_hours;
    o->price_micros = ev->price_micros;
    o->start_hour = ev->start_hour;
    o->end_hour = ev->end_hour;
    o->expire_at_hour = ev->expire_at_hour;
}

static uint8_t status_of_done(uint16_t reason)
{
    switch (reason) {
    case MATCHER_DONE_FILLED: return WIRE_ORDER_FILLED;
    case MATCHER_DONE_CANCELLED: return WIRE_ORDER_CANCELLED;
    case MATCHER_DONE_EXPIRED: return WIRE_ORDER_EXPIRED;
    default: return WIRE_ORDER_UNFILLED;
    }
}

#define TEXT_FILLS_MAX 64 /* fills rendered without jansson; more: the tree */
#define TEXT_REPLY_BYTES (1024 + TEXT_FILLS_MAX * 160)

/* Folds the events of an accepted NEW_ORDER into the order and its fills:
 * into fills_json when given, else into fills[] (up to TEXT_FILLS_MAX;
 * *n_fills counts them all, so a caller sees an overflow). */
static int fold_events(wire_reader *rd, uint64_t id, wire_order *o, json_t *fills_json,
                       wire_fill *fills, uint32_t *n_fills)
{
    uint16_t type;
    wire_item it;
    char err[128];
    uint8_t done = 0;
    for (uint32_t n = 0; n <= WIRE_MAX_REPLY_EVENTS; n++) {
        int r = wire_reader_next(rd, &type, &it, err, sizeof err);
        if (r == 0)
            break;
        if (r < 0 || type != WIRE_ITEM_EVENT)
            return -1;
        const wire_event *ev = &it.event;
        if (ev->type == MATCHER_EV_ACCEPTED && ev->order_id == id) {
            order_from_accepted(o, ev);
        } else if (ev->type == MATCHER_EV_TRADE &&
                   (ev->buy_order_id == id || ev->sell_order_id == id)) {
            wire_fill f = {.trade_id = ev->trade_id, .price_micros = ev->price_micros,
                           .qty = ev->qty, .start_hour = ev->start_hour,
                           .end_hour = ev->end_hour};
            if (fills_json)
                json_array_append_new(fills_json, gw_render_fill(&f));
            else if (*n_fills < TEXT_FILLS_MAX)
                fills[*n_fills] = f;
            if (!fills_json)
                (*n_fills)++;
            o->filled_qty += ev->qty; /* trades are counted from market data */
        } else if (ev->type == MATCHER_EV_DONE && ev->order_id == id) {
            done = status_of_done(ev->reason);
        }
    }
    if (o->order_id != id)
        return -1;
    if (done)
        o->status = done;
    else if (o->filled_qty > 0)
        o->status = WIRE_ORDER_PARTIALLY_FILLED;
    return 0;
}

static void query_order(gw_call *c, uint64_t order_id);

/* An accepted order whose events were not at hand (batch.c): shown as the
 * matcher remembers it now, still 201. */
static void created_fetched(gw_call *c, int rc, const wire_reply *rep, wire_reader *rd)
{
    (void)rc;
    if (!gw_answered_ok(c, rep))
        return;
    reply_order(c, 201, rd, true);
}

static void order_created(gw_call *c, int rc, const wire_reply *rep, wire_reader *rd)
{
    (void)rc;
    gw_metrics *m = &c->srv->metrics;
    if (rep->status == WIRE_ST_DUPLICATE) {
        if (rd)
            reply_order(c, 200, rd, true);
        else
            query_order(c, rep->order_id); /* a batch result names the first order */
        return;
    }
    if (rep->status != WIRE_ST_OK) {
        m->orders_rejected++;
        gw_reply_wire_error(c, rep);
        return;
    }
    m->orders_accepted++;
    if (!rd) {
        wire_query q = {.type = WIRE_Q_ORDER, .order_id = rep->order_id};
        gw_call_query(c, &q, created_fetched);
        return;
    }
    /* The common case, rendered as text; an order with very many fills
     * takes the JSON tree (the reader is re-read from a copy). */
    static wire_fill fills[TEXT_FILLS_MAX]; /* loop thread only */
    static char text[TEXT_REPLY_BYTES];
    wire_reader again = *rd;
    wire_order o;
    memset(&o, 0, sizeof o);
    uint32_t n_fills = 0;
    if (fold_events(rd, rep->order_id, &o, NULL, fills, &n_fills) != 0) {
        gw_reply_error(c, GW_ERR_INTERNAL, "unreadable events from the matcher");
        return;
    }
    memcpy(o.client_order_id, c->client_order_id, sizeof o.client_order_id);
    int n = n_fills <= TEXT_FILLS_MAX
                ? gw_render_order_text(c->srv, &o, fills, n_fills, text, sizeof text)
                : -1;
    if (n > 0) {
        gw_reply_raw(c, 201, text, (size_t)n);
        return;
    }
    json_t *fills_json = json_array();
    memset(&o, 0, sizeof o);
    if (fold_events(&again, rep->order_id, &o, fills_json, NULL, NULL) != 0) {
        json_decref(fills_json);
        gw_reply_error(c, GW_ERR_INTERNAL, "unreadable events from the matcher");
        return;
    }
    memcpy(o.client_order_id, c->client_order_id, sizeof o.client_order_id);
    gw_reply_json(c, 201, gw_render_order(c->srv, &o, fills_json));
}

void gw_h_order_create(gw_call *c)
{
    size_t len;
    const char *body = gw_body(c, &len);
    if (!body)
        return;
    gw_order_req r;
    gw_req_error e;
    if (gw_decode_order(body, len, c->srv->cat, &r, &e) != 0) {
        c->srv->metrics.orders_rejected++;
        gw_reply_error(c, e.err, e.message);
        return;
    }
    uint32_t need = r.cmd.side == MATCHER_BUY ? MATCHER_ROLE_BUYER : MATCHER_ROLE_PROVIDER;
    if (!(c->roles & need)) {
        c->srv->metrics.orders_rejected++;
        gw_reply_error(c, GW_ERR_FORBIDDEN, r.cmd.side == MATCHER_BUY
                                                ? "buying needs the buyer role"
                                                : "selling needs the provider role");
        return;
    }
    const matcher_cmd *m = &r.cmd;
    wire_cmd w = {.type = MATCHER_CMD_NEW_ORDER, .side = m->side, .tif = m->tif,
                  .single_provider = m->single_provider, .market = m->market,
                  .account = c->account, .price_micros = m->price_micros, .qty = m->qty,
                  .min_qty = m->min_qty, .min_hours = m->min_hours,
                  .start_hour = m->start_hour, .end_hour = m->end_hour,
                  .expire_at_hour = m->expire_at_hour};
    _Static_assert(sizeof r.client_order_id <= sizeof w.client_order_id, "client id fits");
    memcpy(w.client_order_id, r.client_order_id, sizeof r.client_order_id);
    _Static_assert(sizeof c->client_order_id >= sizeof r.client_order_id, "scratch fits");
    memcpy(c->client_order_id, r.client_order_id, sizeof r.client_order_id);
    gw_call_cmd_batched(c, &w, order_created);
}

/* ---- get / list ---------------------------------------------------------------- */

static void order_got(gw_call *c, int rc, const wire_reply *rep, wire_reader *rd)
{
    (void)rc;
    if (rep->status == WIRE_ST_NOT_FOUND) {
        gw_reply_error(c, GW_ERR_NOT_FOUND, "no such order");
        return;
    }
    if (!gw_answered_ok(c, rep))
        return;
    reply_order(c, 200, rd, true);
}

static void query_order(gw_call *c, uint64_t order_id)
{
    wire_query q = {.type = WIRE_Q_ORDER, .order_id = order_id};
    gw_call_query(c, &q, order_got);
}

void gw_h_order_get(gw_call *c, uint64_t order_id)
{
    query_order(c, order_id);
}

static void list_page(gw_call *c, int rc, const wire_reply *rep, wire_reader *rd);

static void list_next(gw_call *c, uint64_t after)
{
    wire_query q = {.type = WIRE_Q_OPEN_ORDERS, .account = c->account, .after = after,
                    .limit = LIST_PAGE};
    gw_call_query(c, &q, list_page);
}

static void list_page(gw_call *c, int rc, const wire_reply *rep, wire_reader *rd)
{
    (void)rc;
    if (!gw_answered_ok(c, rep))
        return;
    uint16_t type;
    wire_item it;
    char err[128];
    uint32_t n = 0;
    uint64_t last = 0;
    int r;
    while (n <= LIST_PAGE && (r = wire_reader_next(rd, &type, &it, err, sizeof err)) == 1) {
        if (type != WIRE_ITEM_ORDER)
            continue;
        json_t *o = gw_render_order(c->srv, &it.order, NULL);
        json_object_del(o, "fills"); /* lists carry no fills: GET the order */
        json_array_append_new(c->acc, o);
        last = it.order.order_id;
        n++;
    }
    c->page_after++;
    if (n == LIST_PAGE && c->page_after < LIST_MAX_PAGES) {
        list_next(c, last);
        return;
    }
    json_t *body = json_object();
    json_object_set(body, "orders", c->acc);
    gw_reply_json(c, 200, body);
}

void gw_h_order_list(gw_call *c)
{
    const char *st = gw_query_param(c, "status");
    if (st && strcmp(st, "open") != 0) {
        gw_reply_error(c, GW_ERR_BAD_FIELD,
                       "status: only \"open\" can be listed; GET /v1/orders/{id} for one order");
        return;
    }
    c->acc = json_array();
    list_next(c, 0);
}

/* ---- cancel / replace ------------------------------------------------------------ */

/* Cancel/replace answered: show the order as it is now. */
static void changed(gw_call *c, int rc, const wire_reply *rep, wire_reader *rd)
{
    (void)rc;
    (void)rd;
    if (rep->status == WIRE_ST_REJECTED &&
        (rep->reason == MATCHER_REJ_FORBIDDEN || rep->reason == MATCHER_REJ_UNKNOWN_ORDER)) {
        gw_reply_error(c, GW_ERR_NOT_FOUND, "no such open order");
        return;
    }
    if (rep->status == WIRE_ST_CONFLICT) {
        gw_reply_error(c, GW_ERR_CONFLICT,
                       "the order is already filled, cancelled or expired");
        return;
    }
    if (!gw_answered_ok(c, rep))
        return;
    query_order(c, c->order_id);
}

/* Before changing an order, make sure it is the caller's: a conflict on
 * someone else's closed order must look like 404, not 409. */
static void owner_checked(gw_call *c, int rc, const wire_reply *rep, wire_reader *rd)
{
    (void)rc;
    if (rep->status == WIRE_ST_NOT_FOUND) {
        gw_reply_error(c, GW_ERR_NOT_FOUND, "no such order");
        return;
    }
    if (!gw_answered_ok(c, rep))
        return;
    wire_item it;
    if (!gw_first_item(c, rd, WIRE_ITEM_ORDER, "order", &it))
        return;
    if (it.order.account != c->account) {
        gw_reply_error(c, GW_ERR_NOT_FOUND, "no such order");
        return;
    }
    wire_cmd w = {.type = c->cancel ? MATCHER_CMD_CANCEL : MATCHER_CMD_REPLACE,
                  .account = c->account, .order_id = c->order_id};
    if (!c->cancel) {
        w.price_micros = c->new_price_micros;
        w.qty = c->new_qty;
    }
    gw_call_cmd_batched(c, &w, changed);
}

static void check_owner(gw_call *c)
{
    wire_query q = {.type = WIRE_Q_ORDER, .order_id = c->order_id};
    gw_call_query(c, &q, owner_checked);
}

void gw_h_order_cancel(gw_call *c, uint64_t order_id)
{
    c->order_id = order_id;
    c->cancel = true;
    check_owner(c);
}

void gw_h_order_replace(gw_call *c, uint64_t order_id)
{
    size_t len;
    const char *body = gw_body(c, &len);
    if (!body)
        return;
    int64_t price;
    int32_t qty;
    gw_req_error e;
    if (gw_decode_replace(body, len, &price, &qty, &e) != 0) {
        gw_reply_error(c, e.err, e.message);
        return;
    }
    c->order_id = order_id;
    c->new_price_micros = price;
    c->new_qty = qty;
    check_owner(c);
}
