/* persist.c — the engine's state as bytes: matcher_save / matcher_load.
 *
 * Format (all integers little-endian, fixed width):
 *   "GPUXENG1" u32 version | limits and fees | catalog digest |
 *   clock, counters, totals | accounts | resting orders in priority order,
 *   each with its canonical capacity (offers) | u64 checksum of all before.
 * Loading rebuilds every index from this content and then runs the full
 * invariant check, so a buffer that decodes but describes an impossible
 * state is refused like a corrupt one. */
#define _GNU_SOURCE /* qsort_r */
#include <stdlib.h>
#include <string.h>

#include "matcher/engine_internal.h"

#define SNAP_MAGIC "GPUXENG1"
#define SNAP_VERSION 1u

typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} wbuf;

static void w_bytes(wbuf *w, const void *src, size_t n)
{
    if (w->oom)
        return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 4096;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *p = realloc(w->p, cap);
        if (!p) {
            w->oom = true;
            return;
        }
        w->p = p;
        w->cap = cap;
    }
    memcpy(w->p + w->len, src, n);
    w->len += n;
}

static void w_u64(wbuf *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    w_bytes(w, b, 8);
}
static void w_u32(wbuf *w, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    w_bytes(w, b, 4);
}

typedef struct rbuf {
    const uint8_t *p;
    size_t len, off;
    bool bad;
} rbuf;

static uint64_t r_u64(rbuf *r)
{
    if (r->bad || r->len - r->off < 8) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)r->p[r->off + i] << (8 * i);
    r->off += 8;
    return v;
}
static uint32_t r_u32(rbuf *r)
{
    if (r->bad || r->len - r->off < 4) {
        r->bad = true;
        return 0;
    }
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)r->p[r->off + i] << (8 * i);
    r->off += 4;
    return v;
}

static uint64_t digest(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static uint64_t catalog_digest(const matcher_catalog *cat)
{
    wbuf w = {0};
    w_u32(&w, cat->n_markets);
    for (uint32_t m = 0; m < cat->n_markets; m++) {
        w_bytes(&w, cat->markets[m].gpu, MATCHER_NAME_LEN);
        w_bytes(&w, cat->markets[m].region, MATCHER_NAME_LEN);
        w_u32(&w, (uint32_t)cat->markets[m].lot);
        w_u64(&w, (uint64_t)cat->markets[m].tick_micros);
    }
    uint64_t d = w.oom ? 0 : digest(w.p, w.len);
    free(w.p);
    return d;
}

static void w_header(wbuf *w, const matcher_engine *e)
{
    w_bytes(w, SNAP_MAGIC, 8);
    w_u32(w, SNAP_VERSION);
    w_u32(w, e->cfg.max_accounts);
    w_u32(w, e->cfg.max_orders);
    w_u32(w, e->cfg.max_orders_per_market);
    w_u32(w, e->cfg.max_segments);
    w_u32(w, (uint32_t)e->cfg.maker_fee_bps);
    w_u32(w, (uint32_t)e->cfg.taker_fee_bps);
    w_u64(w, catalog_digest(&e->cat));
    w_u64(w, (uint64_t)e->now_hour);
    w_u64(w, e->next_order_id);
    w_u64(w, e->next_trade_id);
    w_u64(w, e->next_priority);
    w_u64(w, (uint64_t)e->deposited_micros);
    w_u64(w, (uint64_t)e->withdrawn_micros);
}

static void w_order(wbuf *w, const matcher_engine *e, const order *o)
{
    w_u64(w, o->id);
    w_u64(w, o->priority);
    w_u64(w, (uint64_t)o->price_micros);
    w_u64(w, (uint64_t)o->hold_micros);
    w_u64(w, (uint64_t)o->expire_at_hour);
    const uint32_t f[] = {o->account, o->market, (uint32_t)o->start_hour, (uint32_t)o->end_hour,
                          (uint32_t)o->expiry_hour, (uint32_t)o->qty, (uint32_t)o->filled_qty,
                          (uint32_t)o->min_qty, (uint32_t)o->min_hours, order_provider_lock(o),
                          o->side, o->tif, o->single_provider};
    for (size_t i = 0; i < GPUX_ARRAY_LEN(f); i++)
        w_u32(w, f[i]);
    if (o->side != MATCHER_SELL)
        return;
    uint32_t n = 0;
    for (cap_cursor k = cap_first(e, o); k.c != NIL; cap_next(&k))
        n++;
    w_u32(w, n);
    for (cap_cursor k = cap_first(e, o); k.c != NIL; cap_next(&k)) {
        /* Past breakpoints are kept as they are; capacity reads ignore them. */
        w_u32(w, (uint32_t)cap_start(&k));
        w_u32(w, (uint32_t)cap_qty(&k));
    }
}

static int by_priority(const void *a, const void *b, void *ctx)
{
    const matcher_engine *e = ctx;
    uint64_t pa = e->orders[*(const uint32_t *)a].priority, pb = e->orders[*(const uint32_t *)b].priority;
    return pa < pb ? -1 : pa > pb;
}

int matcher_save(const matcher_engine *e, uint8_t **buf, size_t *len)
{
    uint32_t *slots = malloc(((size_t)e->n_orders + 1) * sizeof(uint32_t));
    if (!slots)
        return -1;
    uint32_t n = 0;
    for (uint32_t s = 1; s <= e->cfg.max_orders; s++)
        if (e->orders[s].id != 0)
            slots[n++] = s;
    GPUX_ASSERT(n == e->n_orders);
    qsort_r(slots, n, sizeof(uint32_t), by_priority, (void *)e);
    wbuf w = {0};
    w_header(&w, e);
    w_u32(&w, e->n_accounts);
    for (uint32_t a = 0; a < e->n_accounts; a++) {
        w_u64(&w, (uint64_t)e->accounts[a].balance_micros);
        w_u64(&w, (uint64_t)e->accounts[a].held_micros);
        w_u32(&w, e->accounts[a].roles);
        w_u32(&w, e->accounts[a].open_orders);
    }
    w_u32(&w, n);
    for (uint32_t i = 0; i < n; i++)
        w_order(&w, e, &e->orders[slots[i]]);
    free(slots);
    if (!w.oom)
        w_u64(&w, digest(w.p, w.len));
    if (w.oom) {
        free(w.p);
        return -1;
    }
    *buf = w.p;
    *len = w.len;
    return 0;
}

/* ---- load ---- */

static bool r_header(rbuf *r, matcher_engine *e, char *err, size_t errlen)
{
    if (r->len < 12 || memcmp(r->p, SNAP_MAGIC, 8) != 0) {
        snprintf(err, errlen, "not an engine snapshot");
        return false;
    }
    r->off = 8;
    if (r_u32(r) != SNAP_VERSION) {
        snprintf(err, errlen, "snapshot version not supported");
        return false;
    }
    const matcher_config *c = &e->cfg;
    uint32_t lim[6];
    for (int i = 0; i < 6; i++)
        lim[i] = r_u32(r);
    if (lim[0] != c->max_accounts || lim[1] != c->max_orders || lim[2] != c->max_orders_per_market ||
        lim[3] != c->max_segments || (int32_t)lim[4] != c->maker_fee_bps || (int32_t)lim[5] != c->taker_fee_bps) {
        snprintf(err, errlen, "snapshot was made with other limits or fees");
        return false;
    }
    if (r_u64(r) != catalog_digest(&e->cat)) {
        snprintf(err, errlen, "snapshot was made with another catalog");
        return false;
    }
    e->now_hour = (int64_t)r_u64(r);
    e->next_order_id = r_u64(r);
    e->next_trade_id = r_u64(r);
    e->next_priority = r_u64(r);
    e->deposited_micros = (int64_t)r_u64(r);
    e->withdrawn_micros = (int64_t)r_u64(r);
    if (r->bad || e->now_hour < 0 || e->now_hour > MATCHER_MAX_CLOCK_HOUR || e->next_order_id == 0 ||
        e->next_trade_id == 0 || e->next_priority == 0) {
        snprintf(err, errlen, "snapshot header out of range");
        return false;
    }
    return true;
}

static bool r_accounts(rbuf *r, matcher_engine *e)
{
    uint32_t n = r_u32(r);
    if (r->bad || n < 1 || n > e->cfg.max_accounts)
        return false;
    e->n_accounts = n;
    for (uint32_t a = 0; a < n; a++) {
        e->accounts[a].balance_micros = (int64_t)r_u64(r);
        e->accounts[a].held_micros = (int64_t)r_u64(r);
        e->accounts[a].roles = r_u32(r);
        e->accounts[a].open_orders = r_u32(r);
    }
    return !r->bad;
}

static bool order_fields_ok(const matcher_engine *e, const order *o)
{
    return o->id != 0 && o->id < e->next_order_id && o->priority < e->next_priority &&
           o->account < e->n_accounts && o->market < e->cat.n_markets &&
           (o->side == MATCHER_BUY || o->side == MATCHER_SELL) && o->tif <= MATCHER_POST_ONLY &&
           o->single_provider <= 1 && o->start_hour < o->end_hour && o->qty > 0 && o->qty <= MATCHER_MAX_QTY &&
           o->price_micros > 0 && o->price_micros <= MATCHER_MAX_PRICE_MICROS &&
           o->expiry_hour >= e->now_hour && o->expiry_hour <= e->now_hour + MATCHER_HORIZON_HOURS &&
           book_find(e, o->id) == NIL;
}

static bool r_capacity(rbuf *r, matcher_engine *e, order *o)
{
    uint32_t n = r_u32(r);
    if (r->bad || n == 0 || n > (uint32_t)MATCHER_MAX_WINDOW_HOURS || n > e->n_segs_free)
        return false;
    uint32_t tail = NIL;
    int32_t prev_start = INT32_MIN, prev_qty = -1;
    for (uint32_t i = 0; i < n; i++) {
        int32_t start = (int32_t)r_u32(r);
        int32_t qty = (int32_t)r_u32(r);
        /* what check.c requires of a list: ascending inside the window,
         * 0..qty, canonical (capacity walks assume all of it) */
        if (r->bad || start <= prev_start || start < o->start_hour || start >= o->end_hour || qty < 0 ||
            qty > o->qty || qty == prev_qty)
            return false;
        tail = cap_append(e, o, tail, start, qty);
        prev_start = start;
        prev_qty = qty;
    }
    return true;
}

static bool r_order(rbuf *r, matcher_engine *e, uint32_t slot)
{
    order *o = &e->orders[slot];
    o->id = r_u64(r);
    o->priority = r_u64(r);
    o->price_micros = (int64_t)r_u64(r);
    o->hold_micros = (int64_t)r_u64(r);
    o->expire_at_hour = (int64_t)r_u64(r);
    o->account = r_u32(r);
    o->market = r_u32(r);
    o->start_hour = (int32_t)r_u32(r);
    o->end_hour = (int32_t)r_u32(r);
    o->expiry_hour = (int32_t)r_u32(r);
    o->qty = (int32_t)r_u32(r);
    o->filled_qty = (int32_t)r_u32(r);
    o->min_qty = (int32_t)r_u32(r);
    o->min_hours = (int32_t)r_u32(r);
    uint32_t lock = r_u32(r);
    uint32_t side = r_u32(r), tif = r_u32(r), sp = r_u32(r);
    if (r->bad || side > 255 || tif > 255 || sp > 255 || (side == MATCHER_SELL && lock != 0))
        return false;
    o->side = (uint8_t)side;
    o->tif = (uint8_t)tif;
    o->single_provider = (uint8_t)sp;
    if (!order_fields_ok(e, o))
        return false;
    if (e->books[o->market].n_orders >= e->cfg.max_orders_per_market)
        return false;
    if (o->side == MATCHER_SELL && !r_capacity(r, e, o))
        return false;
    if (o->side == MATCHER_BUY) {
        o->provider_lock = lock;
    } else {
        o->zero_until_hour = o->start_hour;
        cap_update_summary(e, o); /* derived, not stored */
    }
    book_idmap_put(e, o->id, slot);
    book_insert(e, slot);
    return true;
}

static int by_id(const void *a, const void *b, void *ctx)
{
    const matcher_engine *e = ctx;
    uint64_t ia = e->orders[*(const uint32_t *)a].id, ib = e->orders[*(const uint32_t *)b].id;
    return ia < ib ? -1 : ia > ib;
}

static bool r_orders(rbuf *r, matcher_engine *e)
{
    uint32_t n = r_u32(r);
    if (r->bad || n > e->cfg.max_orders)
        return false;
    uint32_t *slots = malloc(((size_t)n + 1) * sizeof(uint32_t));
    if (!slots)
        return false;
    uint64_t last_priority = 0;
    bool ok = true;
    for (uint32_t i = 0; ok && i < n; i++) {
        slots[i] = book_order_alloc(e);
        ok = r_order(r, e, slots[i]) && e->orders[slots[i]].priority > last_priority;
        last_priority = e->orders[slots[i]].priority;
        if (!ok)
            e->orders[slots[i]].id = 0; /* destroy() frees everything */
    }
    if (ok) {
        /* The expiry wheel holds each hour's orders in id order. */
        qsort_r(slots, n, sizeof(uint32_t), by_id, e);
        for (uint32_t i = 0; i < n; i++)
            bucket_insert(e, slots[i]);
    }
    free(slots);
    return ok;
}

static bool checksum_ok(const uint8_t *buf, size_t len)
{
    rbuf t = {.p = buf, .len = len, .off = len - 8};
    return r_u64(&t) == digest(buf, len - 8);
}

matcher_engine *matcher_load(const matcher_catalog *cat, const matcher_config *cfg, const uint8_t *buf, size_t len,
                             char *err, size_t errlen)
{
    matcher_engine *e = matcher_create(cat, cfg);
    if (!e) {
        snprintf(err, errlen, "cannot create engine (limits or memory)");
        return NULL;
    }
    if (!buf || len < 20 || !checksum_ok(buf, len)) {
        snprintf(err, errlen, "snapshot truncated or checksum mismatch");
        matcher_destroy(e);
        return NULL;
    }
    rbuf r = {.p = buf, .len = len - 8};
    if (!r_header(&r, e, err, errlen)) {
        matcher_destroy(e);
        return NULL;
    }
    if (!r_accounts(&r, e) || !r_orders(&r, e) || r.off != r.len) {
        snprintf(err, errlen, "snapshot body malformed");
        matcher_destroy(e);
        return NULL;
    }
    char why[256];
    if (matcher_check(e, why, sizeof why) != 0) {
        snprintf(err, errlen, "snapshot state inconsistent: %s", why);
        matcher_destroy(e);
        return NULL;
    }
    return e;
}
