/* service_query.c — answers queries from memory and builds reply messages.
 *
 * Queries never change state and are never journaled. Each list is bounded
 * by the query's limit (<= WIRE_MAX_QUERY_LIMIT, feed <= WIRE_MAX_FEED_EVENTS)
 * and walks at most its table, so a reply always fits SERVICE_REPLY_MAX. */
#include <stdio.h>
#include <string.h>

#include "gpux_assert.h"
#include "matcher/service_internal.h"

/* A reply under construction. */
typedef struct rb {
    uint8_t *buf;
    size_t cap;
    size_t len;
} rb;

static void rb_begin(rb *b, uint8_t *buf, size_t cap, const wire_reply *r)
{
    b->buf = buf;
    b->cap = cap;
    b->len = wire_reply_begin(buf, cap, r);
    GPUX_ASSERT(b->len > 0);
}

static bool rb_add(rb *b, uint16_t type, const void *item)
{
    size_t n = wire_append_item(b->buf, b->cap, b->len, type, item);
    if (n == 0)
        return false;
    b->len = n;
    return true;
}

/* Patches the reply struct already written (flags, status after items). */
static void rb_patch(rb *b, const wire_reply *r)
{
    memcpy(b->buf + sizeof(wire_hdr), r, sizeof *r);
}

size_t service_reply_error(uint8_t *buf, size_t cap, uint16_t status,
                           const char *detail)
{
    wire_reply r;
    memset(&r, 0, sizeof r);
    r.status = status;
    size_t n = strlen(detail);
    if (n > WIRE_DETAIL_LEN - 1)
        n = WIRE_DETAIL_LEN - 1;
    for (size_t i = 0; i < n; i++) /* keep the detail printable */
        r.detail[i] = (detail[i] >= 0x20 && detail[i] <= 0x7e) ? detail[i] : '?';
    size_t len = wire_reply_begin(buf, cap, &r);
    GPUX_ASSERT(len > 0);
    return len;
}

/* ---- orders ------------------------------------------------------------- */

/* The order as the API shows it: the record, overlaid with live engine
 * data while it rests. */
static void order_view(const service *s, uint32_t rec, wire_order *out)
{
    *out = s->orders[rec].o;
    matcher_order_view v;
    if (out->status <= WIRE_ORDER_PARTIALLY_FILLED &&
        matcher_order_get(s->eng, out->order_id, &v) == 0) {
        out->price_micros = v.info.price_micros;
        out->qty = v.info.qty;
        out->hold_micros = v.info.hold_micros;
        out->remaining_qty = v.remaining_qty;
        if (out->side == MATCHER_BUY)
            out->filled_qty = v.filled_qty;
    }
}

static bool add_order(const service *s, rb *b, uint32_t rec, bool with_fills)
{
    wire_order o;
    order_view(s, rec, &o);
    if (!rb_add(b, WIRE_ITEM_ORDER, &o))
        return false;
    if (!with_fills)
        return true;
    const svc_order *r = &s->orders[rec];
    uint32_t n = r->o.n_fills < WIRE_ORDER_MAX_FILLS ? r->o.n_fills : WIRE_ORDER_MAX_FILLS;
    for (uint32_t i = 0; i < n; i++) {
        const svc_fill *f = &s->fills[r->fill_ids[i] % s->n_fills];
        if (f->f.trade_id == r->fill_ids[i] && !rb_add(b, WIRE_ITEM_FILL, &f->f))
            return false;
    }
    return true;
}

static void q_order(const service *s, const wire_query *q, rb *b, wire_reply *r)
{
    uint32_t rec = q->type == WIRE_Q_ORDER
                       ? svc_id_find(s, q->order_id)
                       : svc_coid_find(s, q->account, q->client_order_id);
    if (rec == SVC_NONE) {
        r->status = WIRE_ST_NOT_FOUND;
        return;
    }
    r->order_id = s->orders[rec].o.order_id;
    r->account = s->orders[rec].o.account;
    GPUX_ASSERT(add_order(s, b, rec, true));
}

static void q_open_orders(const service *s, const wire_query *q, rb *b,
                          wire_reply *r)
{
    if (q->account >= matcher_account_count(s->eng)) {
        r->status = WIRE_ST_NOT_FOUND;
        return;
    }
    uint32_t n = 0;
    for (uint32_t rec = s->acct_head[q->account];
         rec != SVC_NONE && n < q->limit; rec = s->orders[rec].open_next) {
        if (s->orders[rec].o.order_id <= q->after)
            continue;
        GPUX_ASSERT(add_order(s, b, rec, false));
        n++;
    }
}

/* ---- accounts and keys ----------------------------------------------------- */

static bool account_item(const service *s, uint32_t a, wire_account *out)
{
    matcher_account_view v;
    if (matcher_account_get(s->eng, a, &v) < 0)
        return false;
    memset(out, 0, sizeof *out);
    out->account = a;
    out->roles = v.roles;
    out->balance_micros = v.balance_micros;
    out->held_micros = v.held_micros;
    out->open_orders = v.open_orders;
    memcpy(out->name, s->names[a], WIRE_NAME_LEN);
    return true;
}

static void q_accounts(const service *s, const wire_query *q, rb *b,
                       wire_reply *r)
{
    wire_account acc;
    if (q->type == WIRE_Q_ACCOUNT) {
        if (!account_item(s, q->account, &acc)) {
            r->status = WIRE_ST_NOT_FOUND;
            return;
        }
        r->account = q->account;
        GPUX_ASSERT(rb_add(b, WIRE_ITEM_ACCOUNT, &acc));
        return;
    }
    uint32_t end = matcher_account_count(s->eng);
    for (uint64_t a = q->after, n = 0; a < end && n < q->limit; a++, n++)
        if (account_item(s, (uint32_t)a, &acc))
            GPUX_ASSERT(rb_add(b, WIRE_ITEM_ACCOUNT, &acc));
}

static void q_keys(const service *s, const wire_query *q, rb *b)
{
    for (uint64_t i = q->after, n = 0; i < s->st.n_keys && n < q->limit; i++, n++) {
        wire_key k;
        memset(&k, 0, sizeof k);
        k.account = s->keys[i].account;
        memcpy(k.key_hash, s->keys[i].key_hash, WIRE_KEY_HASH_LEN);
        matcher_account_view v;
        if (matcher_account_get(s->eng, k.account, &v) == 0)
            k.roles = v.roles;
        GPUX_ASSERT(rb_add(b, WIRE_ITEM_KEY, &k));
    }
}

static void q_markets(const service *s, const wire_query *q, rb *b)
{
    const matcher_catalog *cat = matcher_catalog_of(s->eng);
    for (uint64_t m = q->after, n = 0; m < cat->n_markets && n < q->limit; m++, n++) {
        wire_market w;
        memset(&w, 0, sizeof w);
        memcpy(w.gpu, cat->markets[m].gpu, MATCHER_NAME_LEN);
        memcpy(w.region, cat->markets[m].region, MATCHER_NAME_LEN);
        w.market = (uint32_t)m;
        w.lot = cat->markets[m].lot;
        w.tick_micros = cat->markets[m].tick_micros;
        GPUX_ASSERT(rb_add(b, WIRE_ITEM_MARKET, &w));
    }
}

static void q_status(const service *s, const wire_query *q, rb *b)
{
    wire_status_item st;
    memset(&st, 0, sizeof st);
    st.seq = s->st.seq;
    if (q->flags & WIRE_QF_STATE_HASH)
        st.state_hash = matcher_state_hash(s->eng); /* O(live state): only on request */
    st.clock_hour = matcher_clock_hour(s->eng);
    st.next_order_id = matcher_next_order_id(s->eng);
    st.next_trade_id = matcher_next_trade_id(s->eng);
    st.accounts = matcher_account_count(s->eng);
    st.orders = matcher_order_count(s->eng);
    st.snapshot_seq = s->snapshot_seq;
    st.feed_first_seq = s->ev_next > service_events_first(s)
                            ? service_event_at(s, service_events_first(s))->seq
                            : s->st.seq + 1;
    st.ledger_seq = s->ledger_seq;
    st.clock_sim = s->cfg.clock_sim ? 1 : 0;
    GPUX_ASSERT(rb_add(b, WIRE_ITEM_STATUS, &st));
}

/* ---- fills: trades per market, leases per account -------------------------- */

static const svc_fill *fill_get(const service *s, uint64_t trade_id)
{
    if (trade_id == 0)
        return NULL;
    const svc_fill *f = &s->fills[trade_id % s->n_fills];
    return f->f.trade_id == trade_id ? f : NULL;
}

static void q_trades(const service *s, const wire_query *q, rb *b, wire_reply *r)
{
    if (q->market >= matcher_catalog_of(s->eng)->n_markets) {
        r->status = WIRE_ST_NOT_FOUND;
        return;
    }
    const svc_fill *f = fill_get(s, s->market_last[q->market]);
    for (uint32_t n = 0; f && n < q->limit; n++) {
        GPUX_ASSERT(rb_add(b, WIRE_ITEM_FILL, &f->f));
        f = fill_get(s, f->prev_market);
    }
}

static void q_leases(const service *s, const wire_query *q, rb *b, wire_reply *r)
{
    uint32_t a = q->account;
    if (a >= matcher_account_count(s->eng)) {
        r->status = WIRE_ST_NOT_FOUND;
        return;
    }
    const svc_fill *f = fill_get(s, s->acct_last_fill[a]);
    for (uint32_t n = 0, steps = 0; f && n < q->limit && steps < s->n_fills; steps++) {
        if (q->after == 0 || f->f.trade_id < q->after) {
            GPUX_ASSERT(rb_add(b, WIRE_ITEM_FILL, &f->f));
            n++;
        }
        f = fill_get(s, f->f.buyer == a ? f->prev_buyer : f->prev_provider);
    }
}

/* ---- book and quote -------------------------------------------------------- */

typedef struct walk_ctx {
    const service *s;
    rb *b;
    const wire_query *q;
    uint8_t side;
    uint32_t n;
    /* quote */
    int32_t left, lot, hours;
    uint32_t fills;
    int64_t notional;
    int32_t filled;
} walk_ctx;

static bool book_cb(void *vctx, const matcher_order_view *o)
{
    walk_ctx *c = vctx;
    const wire_query *q = c->q;
    bool windowed = q->start_hour != 0 || q->end_hour != 0;
    wire_level l;
    memset(&l, 0, sizeof l);
    l.side = c->side;
    l.price_micros = o->info.price_micros;
    l.start_hour = o->info.start_hour;
    l.end_hour = o->info.end_hour;
    if (c->side == MATCHER_BUY) {
        /* a bid can trade that window when its own window lies inside it */
        if (windowed && (o->info.start_hour < q->start_hour ||
                         o->info.end_hour > q->end_hour))
            return true;
        l.qty = o->remaining_qty;
    } else {
        l.qty = windowed ? matcher_offer_avail(c->s->eng, o->info.order_id,
                                               q->start_hour, q->end_hour)
                         : o->remaining_qty;
        if (l.qty <= 0)
            return true;
    }
    GPUX_ASSERT(rb_add(c->b, WIRE_ITEM_LEVEL, &l));
    return ++c->n < q->limit;
}

static void q_book(const service *s, const wire_query *q, rb *b, wire_reply *r)
{
    if (q->market >= matcher_catalog_of(s->eng)->n_markets) {
        r->status = WIRE_ST_NOT_FOUND;
        return;
    }
    walk_ctx c = {.s = s, .b = b, .q = q, .side = MATCHER_BUY};
    matcher_book_walk(s->eng, q->market, MATCHER_BUY, book_cb, &c);
    c.side = MATCHER_SELL;
    c.n = 0;
    matcher_book_walk(s->eng, q->market, MATCHER_SELL, book_cb, &c);
}

/* Taker buys: offers best first, each one whole-window fill of at least a
 * lot (and the offer's min_qty / min_hours), like an ioc bid with
 * min_qty = lot. */
static bool quote_buy_cb(void *vctx, const matcher_order_view *o)
{
    walk_ctx *c = vctx;
    const wire_query *q = c->q;
    if (c->hours < o->info.min_hours)
        return true;
    int32_t avail = matcher_offer_avail(c->s->eng, o->info.order_id,
                                        q->start_hour, q->end_hour);
    int32_t t = avail < c->left ? avail : c->left;
    t -= t % c->lot;
    int32_t need = o->info.min_qty > c->lot ? o->info.min_qty : c->lot;
    if (t < need)
        return true;
    c->notional += o->info.price_micros * t * c->hours;
    c->filled += t;
    c->left -= t;
    c->fills++;
    return c->left >= c->lot && c->fills < MATCHER_MAX_FILLS_PER_COMMAND;
}

/* Taker sells qty over [start, end): bids best first whose window lies
 * inside, each taking what its rules allow from the hours it covers. */
static bool quote_sell_cb(void *vctx, const matcher_order_view *o)
{
    walk_ctx *c = vctx;
    const wire_query *q = c->q;
    int64_t bs = o->info.start_hour, be = o->info.end_hour;
    if (bs < q->start_hour || be > q->end_hour)
        return true;
    int32_t *cap = ((service *)c->s)->quote_cap;
    int32_t avail = INT32_MAX;
    for (int64_t h = bs; h < be; h++)
        if (cap[h - q->start_hour] < avail)
            avail = cap[h - q->start_hour];
    int32_t want = o->remaining_qty;
    int32_t t = avail < want ? avail : want;
    bool aon = o->info.min_qty == 0 || o->info.tif == MATCHER_FOK;
    if (t <= 0 || (aon && t < want) || (!aon && t < o->info.min_qty))
        return true;
    for (int64_t h = bs; h < be; h++)
        cap[h - q->start_hour] -= t;
    c->notional += o->info.price_micros * t * (be - bs);
    c->filled += t;
    c->fills++;
    return c->fills < MATCHER_MAX_FILLS_PER_COMMAND;
}

static void q_quote(service *s, const wire_query *q, rb *b, wire_reply *r)
{
    const matcher_catalog *cat = matcher_catalog_of(s->eng);
    if (q->market >= cat->n_markets) {
        r->status = WIRE_ST_NOT_FOUND;
        return;
    }
    walk_ctx c = {.s = s, .b = b, .q = q, .left = q->qty,
                  .lot = cat->markets[q->market].lot,
                  .hours = (int32_t)(q->end_hour - q->start_hour)};
    int64_t gpu_hours = 0;
    if (q->side == MATCHER_BUY) {
        matcher_book_walk(s->eng, q->market, MATCHER_SELL, quote_buy_cb, &c);
        gpu_hours = (int64_t)c.filled * c.hours;
    } else {
        for (int32_t h = 0; h < c.hours; h++)
            s->quote_cap[h] = q->qty;
        matcher_book_walk(s->eng, q->market, MATCHER_BUY, quote_sell_cb, &c);
        for (int32_t h = 0; h < c.hours; h++)
            gpu_hours += q->qty - s->quote_cap[h];
    }
    wire_quote w = {.fillable_qty = c.filled, .n_fills = c.fills,
                    .notional_micros = c.notional,
                    .avg_price_micros = gpu_hours ? c.notional / gpu_hours : 0};
    GPUX_ASSERT(rb_add(b, WIRE_ITEM_QUOTE, &w));
}

/* ---- feed ---------------------------------------------------------------- */

static void set_gap_detail(char out[WIRE_DETAIL_LEN], uint64_t seq)
{
    memset(out, 0, WIRE_DETAIL_LEN);
    snprintf(out, WIRE_DETAIL_LEN, "feed holds only events after seq %llu",
             (unsigned long long)seq);
}

static bool key_after(uint64_t seq, uint32_t idx, uint64_t aseq, uint32_t aidx)
{
    return seq > aseq || (seq == aseq && idx > aidx);
}

static void q_feed(service *s, const wire_query *q, rb *b, wire_reply *r)
{
    if (s->dropped_any &&
        !key_after(q->after, q->after_index, s->dropped_seq, s->dropped_index) &&
        !(q->after == s->dropped_seq && q->after_index == s->dropped_index)) {
        r->status = WIRE_ST_FEED_GAP;
        set_gap_detail(r->detail, s->dropped_seq);
        return;
    }
    /* the consumer has fully processed every command before `after`, and
     * `after` itself when it asks past its last event */
    if (!(q->flags & WIRE_QF_OBSERVER))
        service_set_ledger_seq(s, q->after_index == UINT32_MAX ? q->after
                                  : (q->after ? q->after - 1 : 0));
    uint64_t lo = service_events_first(s), hi = s->ev_next;
    while (lo < hi) { /* first event after the cursor */
        uint64_t mid = lo + (hi - lo) / 2;
        const wire_event *e = service_event_at(s, mid);
        if (key_after(e->seq, e->index, q->after, q->after_index))
            hi = mid;
        else
            lo = mid + 1;
    }
    for (uint32_t n = 0; lo < s->ev_next && n < q->limit; lo++, n++)
        GPUX_ASSERT(rb_add(b, WIRE_ITEM_EVENT, service_event_at(s, lo)));
}

size_t service_query(service *s, const wire_query *q, uint8_t *buf, size_t cap)
{
    GPUX_ASSERT(cap >= SERVICE_REPLY_MAX);
    wire_reply r;
    memset(&r, 0, sizeof r);
    r.seq = s->st.seq;
    rb b;
    rb_begin(&b, buf, cap, &r);
    switch (q->type) {
    case WIRE_Q_STATUS: q_status(s, q, &b); break;
    case WIRE_Q_MARKETS: q_markets(s, q, &b); break;
    case WIRE_Q_ORDER:
    case WIRE_Q_ORDER_BY_CLIENT_ID: q_order(s, q, &b, &r); break;
    case WIRE_Q_OPEN_ORDERS: q_open_orders(s, q, &b, &r); break;
    case WIRE_Q_ACCOUNT:
    case WIRE_Q_ACCOUNTS: q_accounts(s, q, &b, &r); break;
    case WIRE_Q_BOOK: q_book(s, q, &b, &r); break;
    case WIRE_Q_QUOTE: q_quote(s, q, &b, &r); break;
    case WIRE_Q_TRADES: q_trades(s, q, &b, &r); break;
    case WIRE_Q_LEASES: q_leases(s, q, &b, &r); break;
    case WIRE_Q_KEYS: q_keys(s, q, &b); break;
    case WIRE_Q_FEED: q_feed(s, q, &b, &r); break;
    default: GPUX_ASSERT(0 && "query type validated by the decoder");
    }
    if (r.status != WIRE_ST_OK) /* errors carry no items */
        b.len = wire_reply_begin(buf, cap, &r);
    else
        rb_patch(&b, &r);
    return b.len;
}

/* ---- command replies -------------------------------------------------------- */

size_t service_reply_cmd(const service *s, const service_result *res,
                         uint8_t *buf, size_t cap)
{
    GPUX_ASSERT(cap >= SERVICE_REPLY_MAX);
    wire_reply r;
    memset(&r, 0, sizeof r);
    r.status = res->status;
    r.reason = res->reason;
    r.seq = res->seq;
    r.order_id = res->order_id;
    r.account = res->account;
    memcpy(r.detail, res->detail, WIRE_DETAIL_LEN);
    rb b;
    rb_begin(&b, buf, cap, &r);
    if (res->status == WIRE_ST_REJECTED) {
        GPUX_ASSERT(rb_add(&b, WIRE_ITEM_EVENT, &res->rejected));
    } else if (res->status == WIRE_ST_OK) {
        uint64_t first = service_events_first(s);
        uint64_t pos = res->ev_pos, end = res->ev_pos + res->ev_count;
        if (pos < first || res->ev_count > WIRE_MAX_REPLY_EVENTS) {
            r.flags |= WIRE_REPLY_TRUNCATED;
            if (pos < first)
                pos = first;
        }
        for (uint32_t n = 0; pos < end && n < WIRE_MAX_REPLY_EVENTS; pos++, n++)
            GPUX_ASSERT(rb_add(&b, WIRE_ITEM_EVENT, service_event_at(s, pos)));
        rb_patch(&b, &r);
    } else if ((res->status == WIRE_ST_DUPLICATE || res->status == WIRE_ST_CONFLICT) &&
               res->order_id != 0) {
        uint32_t rec = svc_id_find(s, res->order_id);
        if (rec != SVC_NONE)
            GPUX_ASSERT(add_order(s, &b, rec, true));
    }
    return b.len;
}
