/* service.c — the service-level state machine around the engine.
 *
 * What lives here (and not in the engine): account names, API key hashes,
 * client_order_id -> order, the order history with fills (open orders plus
 * the most recent closed ones), the ring of recent fills (trades per market,
 * leases per account) and the ring of recent events (the feed). All of it is
 * derived from the journaled commands and their events, by the same code
 * live and on replay, in fixed-size tables allocated at creation:
 *
 *   orders[H]      order records; H = max_orders + 2 + history_orders, so an
 *                  open order always has a record; closed records are
 *                  reused oldest-first (closed FIFO)
 *   id_tab         open addressing order_id -> record (linear probing,
 *                  backward-shift deletion: deterministic, no tombstones)
 *   coid_tab       (account, client_order_id) -> record, same scheme
 *   acct_open      per-account list of open records, in id order
 *   fills[F]       fill ring indexed by trade_id % F, with per-market and
 *                  per-account back-chains (newest first)
 *   feed[R]        event ring, R a power of two
 * Tables are plain arrays so a snapshot is their bytes. */
#include "matcher/service.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpux_assert.h"
#include "gpux_err.h"
#include "matcher/service_internal.h"

#define US_PER_HOUR 3600000000LL

void service_config_default(service_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    matcher_config_default(&cfg->engine);
    cfg->history_orders = 65536;
    cfg->fills = 262144;
    cfg->max_keys = 65536;
    cfg->feed_events = 262144;
    cfg->clock_sim = false;
}


static uint32_t pow2_at_least(uint64_t n)
{
    uint64_t p = 16;
    while (p < n)
        p <<= 1;
    GPUX_ASSERT(p <= (1ull << 31));
    return (uint32_t)p;
}

/* ---- hashing ------------------------------------------------------------ */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

static uint64_t coid_hash(uint32_t account, const char *coid)
{
    uint64_t h = 1469598103934665603ULL ^ account;
    for (size_t i = 0; i < WIRE_CLIENT_ID_LEN && coid[i]; i++)
        h = (h ^ (uint8_t)coid[i]) * 1099511628211ULL;
    return mix(h);
}

/* ---- id table: order_id -> record --------------------------------------- */

static uint32_t id_home(const service *s, uint64_t id)
{
    return (uint32_t)(mix(id) & (s->id_cap - 1));
}

uint32_t svc_id_find(const service *s, uint64_t id)
{
    for (uint32_t i = id_home(s, id), n = 0; n < s->id_cap;
         i = (i + 1) & (s->id_cap - 1), n++) {
        if (s->id_tab[i] == SVC_NONE)
            return SVC_NONE;
        if (s->orders[s->id_tab[i]].o.order_id == id)
            return s->id_tab[i];
    }
    return SVC_NONE;
}

static void id_insert(service *s, uint32_t rec)
{
    uint64_t id = s->orders[rec].o.order_id;
    uint32_t i = id_home(s, id);
    while (s->id_tab[i] != SVC_NONE)
        i = (i + 1) & (s->id_cap - 1);
    s->id_tab[i] = rec;
}

/* Backward-shift deletion for linear probing (tables never fill: cap >= 2x
 * the records). key_home gives an entry's home slot. */
static void probe_delete(uint32_t *tab, uint32_t cap, uint32_t i,
                         uint32_t (*key_home)(const service *, uint32_t),
                         const service *s)
{
    uint32_t j = i;
    for (;;) {
        tab[i] = SVC_NONE;
        for (;;) {
            j = (j + 1) & (cap - 1);
            if (tab[j] == SVC_NONE)
                return;
            uint32_t k = key_home(s, tab[j]);
            /* move tab[j] to i unless its home lies cyclically in (i, j] */
            bool stay = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
            if (!stay)
                break;
        }
        tab[i] = tab[j];
        i = j;
    }
}

static uint32_t id_home_of_rec(const service *s, uint32_t rec)
{
    return id_home(s, s->orders[rec].o.order_id);
}

static void id_remove(service *s, uint32_t rec)
{
    uint64_t id = s->orders[rec].o.order_id;
    for (uint32_t i = id_home(s, id);; i = (i + 1) & (s->id_cap - 1)) {
        GPUX_ASSERT(s->id_tab[i] != SVC_NONE);
        if (s->id_tab[i] == rec) {
            probe_delete(s->id_tab, s->id_cap, i, id_home_of_rec, s);
            return;
        }
    }
}

/* ---- client_order_id table ---------------------------------------------- */

static uint32_t coid_home_of_rec(const service *s, uint32_t rec)
{
    const wire_order *o = &s->orders[rec].o;
    return (uint32_t)(coid_hash(o->account, o->client_order_id) & (s->coid_cap - 1));
}

uint32_t svc_coid_find(const service *s, uint32_t account, const char *coid)
{
    uint32_t i = (uint32_t)(coid_hash(account, coid) & (s->coid_cap - 1));
    for (uint32_t n = 0; n < s->coid_cap; i = (i + 1) & (s->coid_cap - 1), n++) {
        uint32_t rec = s->coid_tab[i];
        if (rec == SVC_NONE)
            return SVC_NONE;
        const wire_order *o = &s->orders[rec].o;
        if (o->account == account &&
            strncmp(o->client_order_id, coid, WIRE_CLIENT_ID_LEN) == 0)
            return rec;
    }
    return SVC_NONE;
}

static void coid_insert(service *s, uint32_t rec)
{
    uint32_t i = coid_home_of_rec(s, rec);
    while (s->coid_tab[i] != SVC_NONE)
        i = (i + 1) & (s->coid_cap - 1);
    s->coid_tab[i] = rec;
}

static void coid_remove(service *s, uint32_t rec)
{
    for (uint32_t i = coid_home_of_rec(s, rec);; i = (i + 1) & (s->coid_cap - 1)) {
        GPUX_ASSERT(s->coid_tab[i] != SVC_NONE);
        if (s->coid_tab[i] == rec) {
            probe_delete(s->coid_tab, s->coid_cap, i, coid_home_of_rec, s);
            return;
        }
    }
}

/* ---- order records ------------------------------------------------------- */

/* A record for a new order: a never-used one, else the oldest closed. */
static uint32_t rec_alloc(service *s)
{
    uint32_t rec;
    if (s->st.n_fresh < s->n_recs) {
        rec = s->st.n_fresh++;
    } else {
        GPUX_ASSERT(s->st.closed_count > 0); /* H > max open orders */
        rec = s->closed[s->st.closed_head];
        s->st.closed_head = (s->st.closed_head + 1) % s->n_recs;
        s->st.closed_count--;
        id_remove(s, rec);
        if (s->orders[rec].o.client_order_id[0])
            coid_remove(s, rec);
    }
    memset(&s->orders[rec], 0, sizeof s->orders[rec]);
    return rec;
}

static void open_link(service *s, uint32_t rec)
{
    svc_order *r = &s->orders[rec];
    uint32_t a = r->o.account;
    r->open_prev = s->acct_tail[a];
    r->open_next = SVC_NONE;
    if (s->acct_tail[a] != SVC_NONE)
        s->orders[s->acct_tail[a]].open_next = rec;
    else
        s->acct_head[a] = rec;
    s->acct_tail[a] = rec;
}

static void open_unlink(service *s, uint32_t rec)
{
    svc_order *r = &s->orders[rec];
    uint32_t a = r->o.account;
    if (r->open_prev != SVC_NONE)
        s->orders[r->open_prev].open_next = r->open_next;
    else
        s->acct_head[a] = r->open_next;
    if (r->open_next != SVC_NONE)
        s->orders[r->open_next].open_prev = r->open_prev;
    else
        s->acct_tail[a] = r->open_prev;
    r->open_prev = r->open_next = SVC_NONE;
}

/* ---- events -> service state ------------------------------------------- */

static void on_accepted(service *s, const wire_event *e)
{
    uint32_t rec = rec_alloc(s);
    svc_order *r = &s->orders[rec];
    r->o = (wire_order){
        .order_id = e->order_id, .account = e->account, .market = e->market,
        .side = e->side, .tif = e->tif, .single_provider = e->single_provider,
        .status = WIRE_ORDER_OPEN, .qty = e->qty, .min_qty = e->min_qty,
        .min_hours = e->min_hours, .price_micros = e->price_micros,
        .start_hour = e->start_hour, .end_hour = e->end_hour,
        .expire_at_hour = e->expire_at_hour, .hold_micros = e->held_micros,
        .created_ts_us = e->ts_us, .updated_ts_us = e->ts_us,
    };
    GPUX_ASSERT(s->cur != NULL);
    memcpy(r->o.client_order_id, s->cur->client_order_id, WIRE_CLIENT_ID_LEN);
    id_insert(s, rec);
    if (r->o.client_order_id[0])
        coid_insert(s, rec);
    open_link(s, rec);
}

static void on_replaced(service *s, const wire_event *e)
{
    uint32_t rec = svc_id_find(s, e->order_id);
    GPUX_ASSERT(rec != SVC_NONE);
    wire_order *o = &s->orders[rec].o;
    o->price_micros = e->price_micros;
    o->qty = e->qty;
    o->hold_micros = e->held_micros;
    o->updated_ts_us = e->ts_us;
}

static void fill_order(service *s, uint64_t order_id, const wire_event *e)
{
    uint32_t rec = svc_id_find(s, order_id);
    GPUX_ASSERT(rec != SVC_NONE);
    svc_order *r = &s->orders[rec];
    if (r->o.n_fills < WIRE_ORDER_MAX_FILLS)
        r->fill_ids[r->o.n_fills] = e->trade_id;
    r->o.n_fills++;
    r->o.filled_qty += e->qty;
    r->o.status = WIRE_ORDER_PARTIALLY_FILLED;
    r->o.updated_ts_us = e->ts_us;
}

static void on_trade(service *s, const wire_event *e)
{
    svc_fill *f = &s->fills[e->trade_id % s->n_fills];
    *f = (svc_fill){
        .f = {.trade_id = e->trade_id, .buy_order_id = e->buy_order_id,
              .sell_order_id = e->sell_order_id, .buyer = e->account,
              .provider = e->provider, .market = e->market,
              .taker_side = e->taker_side, .price_micros = e->price_micros,
              .qty = e->qty, .start_hour = e->start_hour,
              .end_hour = e->end_hour, .notional_micros = e->notional_micros,
              .buyer_fee_micros = e->buyer_fee_micros,
              .provider_fee_micros = e->provider_fee_micros,
              .saving_micros = e->saving_micros, .ts_us = e->ts_us},
        .prev_market = s->market_last[e->market],
        .prev_buyer = s->acct_last_fill[e->account],
        .prev_provider = s->acct_last_fill[e->provider],
    };
    s->market_last[e->market] = e->trade_id;
    s->acct_last_fill[e->account] = e->trade_id;
    s->acct_last_fill[e->provider] = e->trade_id;
    fill_order(s, e->buy_order_id, e);
    fill_order(s, e->sell_order_id, e);
}

static void on_done(service *s, const wire_event *e)
{
    uint32_t rec = svc_id_find(s, e->order_id);
    GPUX_ASSERT(rec != SVC_NONE);
    svc_order *r = &s->orders[rec];
    static const uint8_t st[] = {
        [MATCHER_DONE_FILLED] = WIRE_ORDER_FILLED,
        [MATCHER_DONE_CANCELLED] = WIRE_ORDER_CANCELLED,
        [MATCHER_DONE_EXPIRED] = WIRE_ORDER_EXPIRED,
        [MATCHER_DONE_UNFILLED] = WIRE_ORDER_UNFILLED,
    };
    GPUX_ASSERT(e->reason >= MATCHER_DONE_FILLED && e->reason <= MATCHER_DONE_UNFILLED);
    r->o.status = st[e->reason];
    r->o.remaining_qty = 0;
    r->o.hold_micros = 0;
    r->o.updated_ts_us = e->ts_us;
    open_unlink(s, rec);
    GPUX_ASSERT(s->st.closed_count < s->n_recs);
    s->closed[(s->st.closed_head + s->st.closed_count) % s->n_recs] = rec;
    s->st.closed_count++;
}

/* Pushes an event into the feed ring (remembering what it overwrites). */
static void feed_push(service *s, const wire_event *e)
{
    uint64_t pos = s->ev_next;
    wire_event *slot = &s->feed[pos & (s->feed_cap - 1)];
    if (pos >= s->feed_cap) {
        s->dropped_seq = slot->seq;
        s->dropped_index = slot->index;
        s->dropped_any = true;
    }
    *slot = *e;
    s->ev_next = pos + 1;
}

static void emit_cb(void *ctx, const matcher_event *ev)
{
    service *s = ctx;
    if (ev->type == MATCHER_EV_REJECTED) {
        wire_event_from_engine(&s->rejected, ev, 0, 0);
        return;
    }
    wire_event e;
    wire_event_from_engine(&e, ev, s->st.seq + 1, s->cur_index++);
    switch (ev->type) {
    case MATCHER_EV_ACCOUNT:
        memcpy(s->names[e.account], s->cur->name, WIRE_NAME_LEN);
        break;
    case MATCHER_EV_ACCEPTED: on_accepted(s, &e); break;
    case MATCHER_EV_REPLACED: on_replaced(s, &e); break;
    case MATCHER_EV_TRADE: on_trade(s, &e); break;
    case MATCHER_EV_DONE: on_done(s, &e); break;
    default: break;
    }
    feed_push(s, &e);
}

/* ---- creation ------------------------------------------------------------ */

static bool regions_alloc(service *s)
{
    for (size_t i = 0; i < s->n_regions; i++) {
        *s->regions[i].ptr = calloc(1, s->regions[i].bytes);
        if (!*s->regions[i].ptr)
            return false;
    }
    return true;
}

/* Lists every table with its size: allocation, snapshot and load all walk
 * this list, so a new table cannot be forgotten by one of them. */
static void regions_define(service *s)
{
    const service_config *c = &s->cfg;
    size_t n = 0;
#define REGION(field, count)                                                   \
    do {                                                                       \
        s->regions[n].ptr = (void **)&s->field;                                \
        s->regions[n].bytes = (size_t)(count) * sizeof(*s->field);             \
        n++;                                                                   \
    } while (0)
    REGION(names, c->engine.max_accounts);
    REGION(keys, c->max_keys);
    REGION(orders, s->n_recs);
    REGION(id_tab, s->id_cap);
    REGION(coid_tab, s->coid_cap);
    REGION(closed, s->n_recs);
    REGION(acct_head, c->engine.max_accounts);
    REGION(acct_tail, c->engine.max_accounts);
    REGION(acct_last_fill, c->engine.max_accounts);
    REGION(fills, s->n_fills);
    REGION(market_last, MATCHER_MAX_MARKETS);
#undef REGION
    GPUX_ASSERT(n <= GPUX_ARRAY_LEN(s->regions));
    s->n_regions = n;
}

static service *alloc_service(const matcher_catalog *cat,
                              const service_config *cfg, char *err,
                              size_t errlen)
{
    if (cfg->fills < 16 || cfg->max_keys == 0 || cfg->feed_events < 16 ||
        (cfg->feed_events & (cfg->feed_events - 1)) != 0 ||
        cfg->engine.max_accounts == 0 || cfg->engine.max_orders == 0 ||
        (uint64_t)cfg->engine.max_orders + cfg->history_orders > (1u << 29)) {
        gpux_errf(err, errlen, "service limits out of range (fills >= 16, feed "
                          "events a power of two >= 16, keys > 0)");
        return NULL;
    }
    service *s = calloc(1, sizeof *s);
    if (!s) {
        gpux_errf(err, errlen, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->cat = *cat;
    s->n_recs = cfg->engine.max_orders + 2 + cfg->history_orders;
    s->id_cap = pow2_at_least(2ull * s->n_recs);
    s->coid_cap = s->id_cap;
    s->n_fills = cfg->fills;
    s->feed_cap = cfg->feed_events;
    regions_define(s);
    s->feed = calloc(s->feed_cap, sizeof *s->feed);
    if (!s->feed || !regions_alloc(s)) {
        service_destroy(s);
        gpux_errf(err, errlen, "out of memory for the service tables");
        return NULL;
    }
    return s;
}

service *service_create(const matcher_catalog *cat, const service_config *cfg,
                        char *err, size_t errlen)
{
    service *s = alloc_service(cat, cfg, err, errlen);
    if (!s)
        return NULL;
    s->eng = matcher_create(cat, &cfg->engine);
    if (!s->eng) {
        service_destroy(s);
        gpux_errf(err, errlen, "engine limits out of range or out of memory");
        return NULL;
    }
    memset(s->id_tab, 0xff, (size_t)s->id_cap * sizeof *s->id_tab);
    memset(s->coid_tab, 0xff, (size_t)s->coid_cap * sizeof *s->coid_tab);
    memset(s->acct_head, 0xff, cfg->engine.max_accounts * sizeof *s->acct_head);
    memset(s->acct_tail, 0xff, cfg->engine.max_accounts * sizeof *s->acct_tail);
    snprintf(s->names[MATCHER_FEE_ACCOUNT], WIRE_NAME_LEN, "exchange");
    return s;
}

void service_destroy(service *s)
{
    if (!s)
        return;
    if (s->eng)
        matcher_destroy(s->eng);
    for (size_t i = 0; i < s->n_regions; i++)
        free(*s->regions[i].ptr);
    free(s->feed);
    free(s);
}

const matcher_engine *service_engine(const service *s) { return s->eng; }
uint64_t service_seq(const service *s) { return s->st.seq; }
uint64_t service_ledger_seq(const service *s) { return s->ledger_seq; }
void service_set_ledger_seq(service *s, uint64_t seq)
{
    if (seq > s->ledger_seq && seq <= s->st.seq)
        s->ledger_seq = seq;
}

const wire_event *service_event_at(const service *s, uint64_t pos)
{
    GPUX_ASSERT(pos < s->ev_next && pos >= service_events_first(s));
    return &s->feed[pos & (s->feed_cap - 1)];
}
uint64_t service_events_next(const service *s) { return s->ev_next; }
uint64_t service_events_first(const service *s)
{
    return s->ev_next > s->feed_cap ? s->ev_next - s->feed_cap : 0;
}

void service_set_snapshot_seq(service *s, uint64_t seq) { s->snapshot_seq = seq; }

void service_feed_reset(service *s, uint64_t seq)
{
    s->ev_next = 0;
    s->dropped_any = seq > 0;
    s->dropped_seq = seq;
    s->dropped_index = UINT32_MAX;
}

/* ---- commands ------------------------------------------------------------ */

/* Copies a sentence into a detail field, cut to fit (the gateway shows
 * matcher_reason_message for engine reasons; details are for the rest). */
static void set_detail(char out[WIRE_DETAIL_LEN], const char *text)
{
    size_t n = strlen(text);
    if (n > WIRE_DETAIL_LEN - 1)
        n = WIRE_DETAIL_LEN - 1;
    memcpy(out, text, n);
    memset(out + n, 0, WIRE_DETAIL_LEN - n);
}

static void result_error(service_result *res, uint16_t status,
                         uint16_t reason, const char *detail)
{
    res->status = status;
    res->reason = reason;
    set_detail(res->detail, detail);
}

/* Service-level checks before the engine sees the command. Returns false
 * (res filled) when the command must not be applied. */
static bool precheck(service *s, const wire_cmd *c, bool internal,
                     service_result *res)
{
    switch (c->type) {
    case MATCHER_CMD_ADVANCE_CLOCK:
        if (!s->cfg.clock_sim && !internal) {
            result_error(res, WIRE_ST_FORBIDDEN, 0,
                         "wall clock mode: the clock advances by itself");
            return false;
        }
        return true;
    case MATCHER_CMD_CREATE_ACCOUNT:
        for (uint32_t a = 0; a < matcher_account_count(s->eng); a++)
            if (strncmp(s->names[a], c->name, WIRE_NAME_LEN) == 0) {
                result_error(res, WIRE_ST_CONFLICT, 0, "an account with this name exists");
                return false;
            }
        return true;
    case MATCHER_CMD_NEW_ORDER:
        if (c->client_order_id[0]) {
            uint32_t rec = svc_coid_find(s, c->account, c->client_order_id);
            if (rec != SVC_NONE) {
                result_error(res, WIRE_ST_DUPLICATE, 0, "client_order_id already used: the first order");
                res->order_id = s->orders[rec].o.order_id;
                return false;
            }
        }
        return true;
    case WIRE_CMD_ADD_KEY: {
        matcher_account_view v;
        if (matcher_account_get(s->eng, c->account, &v) < 0) {
            result_error(res, WIRE_ST_NOT_FOUND, MATCHER_REJ_UNKNOWN_ACCOUNT, "no such account");
            return false;
        }
        for (uint32_t i = 0; i < s->st.n_keys; i++)
            if (memcmp(s->keys[i].key_hash, c->key_hash, WIRE_KEY_HASH_LEN) == 0) {
                result_error(res, WIRE_ST_CONFLICT, 0, "this key hash is already registered");
                return false;
            }
        if (s->st.n_keys == s->cfg.max_keys) {
            result_error(res, WIRE_ST_UNAVAILABLE, 0, "the API key table is full");
            return false;
        }
        return true;
    }
    default: return true;
    }
}

/* A CANCEL or REPLACE that names its order by client_order_id gets the
 * order's id, and the name is cleared: the journal holds the id, so a
 * replay never depends on the name table. A name we do not know (never
 * used, its order rejected, or its record reused long after it closed)
 * leaves order id 0, which the engine rejects as it would an unknown id
 * (after its account checks, so the reasons are the id path's). */
static void resolve_coid(const service *s, wire_cmd *c)
{
    if ((c->type != MATCHER_CMD_CANCEL && c->type != MATCHER_CMD_REPLACE) ||
        c->client_order_id[0] == '\0')
        return;
    GPUX_ASSERT(c->order_id == 0); /* wire_decode allows one of the two */
    uint32_t rec = svc_coid_find(s, c->account, c->client_order_id);
    if (rec != SVC_NONE)
        c->order_id = s->orders[rec].o.order_id;
    memset(c->client_order_id, 0, WIRE_CLIENT_ID_LEN);
}

/* Applies an accepted-to-be command; returns the engine's reason. */
static matcher_reason apply(service *s, const wire_cmd *c)
{
    s->cur = c;
    s->cur_index = 0;
    matcher_reason r = MATCHER_OK;
    if (c->type == WIRE_CMD_ADD_KEY) {
        svc_key *k = &s->keys[s->st.n_keys++];
        k->account = c->account;
        memcpy(k->key_hash, c->key_hash, WIRE_KEY_HASH_LEN);
    } else {
        matcher_cmd mc;
        wire_cmd_to_engine(c, &mc);
        r = matcher_apply(s->eng, &mc, emit_cb, s);
    }
    s->cur = NULL;
    if (r == MATCHER_OK) {
        s->st.seq++;
        s->st.last_ts_us = c->ts_us;
    }
    return r;
}

static int64_t stamp(const service *s, const wire_cmd *c, int64_t now_us)
{
    int64_t ts;
    if (!s->cfg.clock_sim) {
        ts = now_us;
    } else if (c->type == MATCHER_CMD_ADVANCE_CLOCK) {
        ts = c->clock_hour > 0 && c->clock_hour < INT64_MAX / US_PER_HOUR
                 ? c->clock_hour * US_PER_HOUR : 0;
    } else {
        int64_t base = matcher_clock_hour(s->eng) * US_PER_HOUR;
        ts = c->ts_us >= base && c->ts_us < base + US_PER_HOUR ? c->ts_us : base;
    }
    /* time never runs backwards in the journal */
    return ts > s->st.last_ts_us ? ts : s->st.last_ts_us;
}

void service_prefetch(const service *s, const wire_cmd *ahead, uint32_t n_ahead)
{
    matcher_cmd mc[MATCHER_PREFETCH_AHEAD];
    uint32_t n = n_ahead < MATCHER_PREFETCH_AHEAD ? n_ahead : MATCHER_PREFETCH_AHEAD;
    for (uint32_t i = 0; i < n; i++)
        wire_cmd_to_engine(&ahead[i], &mc[i]);
    matcher_prefetch(s->eng, mc, n);
}

void service_submit(service *s, const wire_cmd *c, int64_t now_us,
                    bool internal, service_result *res, wire_cmd *stamped)
{
    memset(res, 0, sizeof *res);
    if (!precheck(s, c, internal, res))
        return;
    *stamped = *c;
    stamped->ts_us = stamp(s, c, now_us);
    resolve_coid(s, stamped);
    uint64_t pos = s->ev_next;
    matcher_reason r = apply(s, stamped);
    if (r != MATCHER_OK) {
        GPUX_ASSERT(s->ev_next == pos); /* a rejection changes nothing */
        res->status = WIRE_ST_REJECTED;
        res->reason = (uint16_t)r;
        res->rejected = s->rejected;
        if (c->type == MATCHER_CMD_CANCEL || c->type == MATCHER_CMD_REPLACE) {
            /* the engine only knows resting orders; we know closed ones */
            uint32_t rec = svc_id_find(s, stamped->order_id);
            if (r == MATCHER_REJ_UNKNOWN_ORDER && rec != SVC_NONE &&
                s->orders[rec].o.account == c->account) {
                res->status = WIRE_ST_CONFLICT;
                res->order_id = stamped->order_id;
            }
        }
        set_detail(res->detail, matcher_reason_message(r));
        return;
    }
    res->status = WIRE_ST_OK;
    res->seq = s->st.seq;
    res->ev_pos = pos;
    res->ev_count = s->ev_next - pos;
    if (c->type == MATCHER_CMD_NEW_ORDER && res->ev_count > 0)
        res->order_id = service_event_at(s, pos)->order_id;
    if (c->type == MATCHER_CMD_CREATE_ACCOUNT && res->ev_count > 0)
        res->account = service_event_at(s, pos)->account;
    if (c->type == MATCHER_CMD_REPLACE || c->type == MATCHER_CMD_CANCEL)
        res->order_id = stamped->order_id;
}

bool service_clock_due(const service *s, int64_t now_us, wire_cmd *out)
{
    if (s->cfg.clock_sim || now_us < 0)
        return false;
    int64_t hour = now_us / US_PER_HOUR;
    if (hour <= matcher_clock_hour(s->eng))
        return false;
    memset(out, 0, sizeof *out);
    out->type = MATCHER_CMD_ADVANCE_CLOCK;
    out->clock_hour = hour;
    return true;
}

int service_replay(service *s, uint64_t seq, const wire_cmd *c, char *err,
                   size_t errlen)
{
    if (seq != s->st.seq + 1)
        return gpux_errf(err, errlen, "replay of seq %llu after %llu",
                    (unsigned long long)seq, (unsigned long long)s->st.seq);
    service_result res;
    memset(&res, 0, sizeof res);
    if (!precheck(s, c, true, &res))
        return gpux_errf(err, errlen, "journaled command %llu fails the service "
                    "rules on replay: %s", (unsigned long long)seq, res.detail);
    matcher_reason r = apply(s, c);
    if (r != MATCHER_OK)
        return gpux_errf(err, errlen, "journaled command %llu (type %u) is rejected "
                    "on replay: %s", (unsigned long long)seq, c->type,
                    matcher_reason_code(r));
    return 0;
}

/* ---- snapshots of the service state -------------------------------------- */

#define SVC_BLOB_MAGIC 0x32435653u /* "SVC2" */

/* The service bytes of a snapshot hold only what is in use, in a
 * canonical order (so equal states give equal bytes): the first
 * n_accounts names and account lists, the keys, the order records ever
 * used, the closed FIFO oldest first, the fills still held (trade id
 * order), the per-market heads. The id and client_order_id indexes are
 * derived and rebuilt on load. */
typedef struct svc_blob_hdr {
    uint32_t magic;
    uint32_t n_accounts;
    uint64_t config_digest; /* limits the tables were sized with */
    uint64_t fill_lo;       /* first trade id whose fill is saved */
    uint64_t n_fills_saved;
    svc_scalars st;         /* closed_head normalised to 0 */
} svc_blob_hdr;

static uint64_t config_digest(const service *s)
{
    uint64_t h = 0;
    for (size_t i = 0; i < s->n_regions; i++)
        h = mix(h ^ s->regions[i].bytes) + i;
    return h;
}

/* A cursor over a byte buffer; puts/gets are bounds-checked. */
typedef struct blob {
    uint8_t *w;
    const uint8_t *r;
    size_t len, off;
    bool bad;
} blob;

static void put(blob *b, const void *p, size_t n)
{
    if (b->w)
        memcpy(b->w + b->off, p, n);
    b->off += n;
}

static void get(blob *b, void *p, size_t n)
{
    if (b->bad || n > b->len - b->off) {
        b->bad = true;
        return;
    }
    memcpy(p, b->r + b->off, n);
    b->off += n;
}

static void fills_window(const service *s, uint64_t *lo, uint64_t *count)
{
    uint64_t next = matcher_next_trade_id(s->eng); /* ids are 1.. next-1 */
    uint64_t first = next > s->n_fills ? next - s->n_fills : 1;
    *lo = first;
    *count = next > first ? next - first : 0;
}

/* Writes (w != NULL) or sizes the service bytes. */
static size_t save_into(const service *s, uint8_t *w)
{
    blob b = {.w = w};
    svc_blob_hdr h;
    memset(&h, 0, sizeof h);
    h.magic = SVC_BLOB_MAGIC;
    h.n_accounts = matcher_account_count(s->eng);
    h.config_digest = config_digest(s);
    fills_window(s, &h.fill_lo, &h.n_fills_saved);
    h.st = s->st;
    h.st.closed_head = 0;
    put(&b, &h, sizeof h);
    put(&b, s->names, (size_t)h.n_accounts * sizeof *s->names);
    put(&b, s->keys, (size_t)s->st.n_keys * sizeof *s->keys);
    put(&b, s->orders, (size_t)s->st.n_fresh * sizeof *s->orders);
    for (uint32_t i = 0; i < s->st.closed_count; i++)
        put(&b, &s->closed[(s->st.closed_head + i) % s->n_recs], sizeof *s->closed);
    put(&b, s->acct_head, (size_t)h.n_accounts * sizeof *s->acct_head);
    put(&b, s->acct_tail, (size_t)h.n_accounts * sizeof *s->acct_tail);
    put(&b, s->acct_last_fill, (size_t)h.n_accounts * sizeof *s->acct_last_fill);
    for (uint64_t t = h.fill_lo; t < h.fill_lo + h.n_fills_saved; t++)
        put(&b, &s->fills[t % s->n_fills], sizeof *s->fills);
    put(&b, s->market_last, MATCHER_MAX_MARKETS * sizeof *s->market_last);
    return b.off;
}

int service_save(const service *s, uint8_t **buf, size_t *len)
{
    size_t n = save_into(s, NULL);
    uint8_t *w = malloc(n);
    if (!w)
        return -1;
    GPUX_ASSERT(save_into(s, w) == n);
    *buf = w;
    *len = n;
    return 0;
}

/* Structural checks on loaded tables: every reference in range. The blob
 * is CRC-protected, so this guards against a build mismatch, not bit rot. */
static int check_loaded(const service *s, uint32_t n_accounts, char *err,
                        size_t errlen)
{
    if (s->st.n_fresh > s->n_recs || s->st.closed_count > s->n_recs ||
        s->st.n_keys > s->cfg.max_keys || n_accounts > s->cfg.engine.max_accounts)
        return gpux_errf(err, errlen, "service snapshot counters out of range");
    for (uint32_t i = 0; i < s->st.closed_count; i++)
        if (s->closed[i] >= s->st.n_fresh)
            return gpux_errf(err, errlen, "service snapshot closed list out of range");
    for (uint32_t r = 0; r < s->st.n_fresh; r++) {
        const svc_order *o = &s->orders[r];
        if ((o->open_prev != SVC_NONE && o->open_prev >= s->st.n_fresh) ||
            (o->open_next != SVC_NONE && o->open_next >= s->st.n_fresh) ||
            o->o.account >= n_accounts || o->o.market >= MATCHER_MAX_MARKETS)
            return gpux_errf(err, errlen, "service snapshot order record out of range");
    }
    for (uint32_t a = 0; a < n_accounts; a++)
        if ((s->acct_head[a] != SVC_NONE && s->acct_head[a] >= s->st.n_fresh) ||
            (s->acct_tail[a] != SVC_NONE && s->acct_tail[a] >= s->st.n_fresh))
            return gpux_errf(err, errlen, "service snapshot list out of range");
    return 0;
}

/* Reads the service bytes into a freshly allocated service. */
static int load_from(service *s, const uint8_t *svc, size_t svc_len, char *err,
                     size_t errlen)
{
    blob b = {.r = svc, .len = svc_len};
    svc_blob_hdr h;
    get(&b, &h, sizeof h);
    if (b.bad || h.magic != SVC_BLOB_MAGIC || h.config_digest != config_digest(s))
        return gpux_errf(err, errlen, "service snapshot made with other limits or another version");
    if (h.n_accounts > s->cfg.engine.max_accounts || h.st.n_fresh > s->n_recs ||
        h.st.closed_count > s->n_recs || h.st.n_keys > s->cfg.max_keys ||
        h.n_fills_saved > s->n_fills)
        return gpux_errf(err, errlen, "service snapshot counters out of range");
    s->st = h.st;
    get(&b, s->names, (size_t)h.n_accounts * sizeof *s->names);
    get(&b, s->keys, (size_t)h.st.n_keys * sizeof *s->keys);
    get(&b, s->orders, (size_t)h.st.n_fresh * sizeof *s->orders);
    get(&b, s->closed, (size_t)h.st.closed_count * sizeof *s->closed);
    get(&b, s->acct_head, (size_t)h.n_accounts * sizeof *s->acct_head);
    get(&b, s->acct_tail, (size_t)h.n_accounts * sizeof *s->acct_tail);
    get(&b, s->acct_last_fill, (size_t)h.n_accounts * sizeof *s->acct_last_fill);
    for (uint64_t t = h.fill_lo; t < h.fill_lo + h.n_fills_saved; t++)
        get(&b, &s->fills[t % s->n_fills], sizeof *s->fills);
    get(&b, s->market_last, MATCHER_MAX_MARKETS * sizeof *s->market_last);
    if (b.bad || b.off != svc_len)
        return gpux_errf(err, errlen, "service snapshot has %zu bytes, its header "
                    "describes %zu", svc_len, b.off);
    if (check_loaded(s, h.n_accounts, err, errlen) < 0)
        return -1;
    /* the derived indexes */
    for (uint32_t r = 0; r < s->st.n_fresh; r++) {
        if (svc_id_find(s, s->orders[r].o.order_id) != SVC_NONE)
            return gpux_errf(err, errlen, "service snapshot repeats order %llu",
                        (unsigned long long)s->orders[r].o.order_id);
        id_insert(s, r);
        if (s->orders[r].o.client_order_id[0])
            coid_insert(s, r);
    }
    return 0;
}

service *service_load(const matcher_catalog *cat, const service_config *cfg,
                      const uint8_t *engine, size_t engine_len,
                      const uint8_t *svc, size_t svc_len, char *err,
                      size_t errlen)
{
    service *s = alloc_service(cat, cfg, err, errlen);
    if (!s)
        return NULL;
    memset(s->id_tab, 0xff, (size_t)s->id_cap * sizeof *s->id_tab);
    memset(s->coid_tab, 0xff, (size_t)s->coid_cap * sizeof *s->coid_tab);
    memset(s->acct_head, 0xff, cfg->engine.max_accounts * sizeof *s->acct_head);
    memset(s->acct_tail, 0xff, cfg->engine.max_accounts * sizeof *s->acct_tail);
    char why[200];
    s->eng = matcher_load(cat, &cfg->engine, engine, engine_len, why, sizeof why);
    if (!s->eng) {
        gpux_errf(err, errlen, "engine snapshot: %s", why);
        service_destroy(s);
        return NULL;
    }
    if (load_from(s, svc, svc_len, err, errlen) < 0) {
        service_destroy(s);
        return NULL;
    }
    service_feed_reset(s, s->st.seq);
    return s;
}
