/* engine.c — engine lifecycle, command dispatch, accounts, money, clock.
 *
 * matcher_apply() is the only way state changes. Each handler validates
 * the whole command first and rejects with one REJECTED event before
 * touching anything, so a rejected command changes nothing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "matcher/engine_internal.h"
#include "matcher/order_entry.h"

/* ---- money ---- */

int64_t eng_fee(int64_t notional_micros, int32_t bps)
{
    GPUX_ASSERT(notional_micros >= 0 && bps >= 0 && bps <= MATCHER_MAX_FEE_BPS);
    /* floor(n x bps / 10000) without 128-bit division (a libgcc call on
     * the order path): with n = 10000 q + r it is q x bps + floor(r x bps
     * / 10000), and both products fit 64 bits for n < 2^63, bps <= 1000. */
    int64_t q = notional_micros / 10000, r = notional_micros % 10000;
    return q * bps + (r * bps) / 10000;
}

int64_t eng_hold(const matcher_engine *e, int64_t price_micros, int32_t qty, int32_t hours)
{
    int32_t bps = e->cfg.maker_fee_bps > e->cfg.taker_fee_bps ? e->cfg.maker_fee_bps : e->cfg.taker_fee_bps;
    int64_t notional = price_micros * qty * hours;
    return notional + eng_fee(notional, bps);
}

/* ---- config and lifecycle ---- */

void matcher_config_default(matcher_config *cfg)
{
    *cfg = (matcher_config){
        .max_accounts = 100000,
        .max_orders = 1000000,
        .max_orders_per_market = 200000,
        .max_segments = 4000000,
        .maker_fee_bps = 0,
        .taker_fee_bps = 10,
    };
}

static bool config_ok(const matcher_config *c)
{
    return c->max_accounts >= 1 && c->max_accounts <= (1u << 24) && c->max_orders >= 1 &&
           c->max_orders <= (1u << 26) && c->max_orders_per_market >= 1 &&
           c->max_orders_per_market <= c->max_orders &&
           c->max_segments >= 2u * MATCHER_MAX_FILLS_PER_COMMAND + 2 && c->max_segments <= (1u << 28) &&
           c->maker_fee_bps >= 0 && c->maker_fee_bps <= MATCHER_MAX_FEE_BPS &&
           c->taker_fee_bps >= 0 && c->taker_fee_bps <= MATCHER_MAX_FEE_BPS;
}

static uint32_t pow2_at_least(uint64_t n)
{
    uint64_t p = 1;
    while (p < n)
        p <<= 1;
    return (uint32_t)p;
}

/* ---- tables ----
 *
 * Why the engine's tables are mapped here rather than calloc'd: the book of
 * a GPU market is hundreds of MB touched at random (1M resting orders, their
 * id and level maps, masks), so most order-path accesses miss the TLB on
 * 4 KiB pages. Large tables are mapped 2 MiB-aligned and advised as huge
 * pages (MADV_HUGEPAGE: Debian's default THP mode is "madvise", so nothing
 * happens without it). matcher_gpu went ~360k -> ~500-590k ops/s and its
 * p99 ~38 -> ~25 us with huge pages (docs/benchmarks.md, fifth session).
 * Untouched memory stays unmapped as with calloc, but the first touch of a
 * 2 MiB range makes all of it resident: an empty gpux-matcher with the
 * default limits went 245 -> 273 MB, a sparse hash map fills in sooner
 * (docs/benchmarks.md, "Memory per resting order"). The advice is a hint:
 * where THP is off the tables work the same, on 4 KiB pages.
 *
 * Each table starts with a header holding the mapping's length (0: a small
 * table from calloc), so table_free needs only the pointer. */
#define TABLE_HEADER_BYTES 64u
#define TABLE_HUGE_BYTES ((size_t)2 << 20)
#if defined(__SANITIZE_ADDRESS__)
/* Under AddressSanitizer every table comes from calloc: ASan guards the
 * ends of heap blocks, not of our own mappings, and an index one past a
 * table's end is exactly the bug the san tests are there to catch. */
#define TABLE_MAP_MIN_BYTES SIZE_MAX
#else
#define TABLE_MAP_MIN_BYTES ((size_t)1 << 20) /* smaller tables: calloc */
#endif

_Static_assert(TABLE_HEADER_BYTES >= sizeof(size_t) && TABLE_HEADER_BYTES % 64 == 0,
               "table data must stay cache-line aligned");

static void *table_map(size_t bytes)
{
    size_t len = (bytes + TABLE_HUGE_BYTES - 1) & ~(TABLE_HUGE_BYTES - 1);
    size_t span = len + TABLE_HUGE_BYTES; /* room to align the start */
    uint8_t *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    uintptr_t start = ((uintptr_t)raw + TABLE_HUGE_BYTES - 1) & ~(uintptr_t)(TABLE_HUGE_BYTES - 1);
    size_t head = start - (uintptr_t)raw;
    if (head)
        munmap(raw, head);
    if (span - head > len)
        munmap((uint8_t *)start + len, span - head - len);
    (void)madvise((void *)start, len, MADV_HUGEPAGE); /* a hint only */
    *(size_t *)start = len;
    return (uint8_t *)start + TABLE_HEADER_BYTES;
}

/* A zeroed table of n elements of size bytes on small pages whatever
 * its size (calloc), or NULL (too large, no memory). Free with
 * table_free. */
static void *table_alloc_small(size_t n, size_t size)
{
    if (size && n > (SIZE_MAX - TABLE_HUGE_BYTES * 2) / size)
        return NULL;
    uint8_t *p = calloc(1, n * size + TABLE_HEADER_BYTES); /* malloc's alignment (16) keeps size_t's */
    return p ? p + TABLE_HEADER_BYTES : NULL;
}

/* As table_alloc_small, but a table of TABLE_MAP_MIN_BYTES or more is
 * mapped on huge pages (see above). */
static void *table_alloc(size_t n, size_t size)
{
    if (size && n > (SIZE_MAX - TABLE_HUGE_BYTES * 2) / size)
        return NULL;
    size_t bytes = n * size + TABLE_HEADER_BYTES;
    return bytes >= TABLE_MAP_MIN_BYTES ? table_map(bytes) : table_alloc_small(n, size);
}

static void table_free(void *data)
{
    if (!data)
        return;
    uint8_t *start = (uint8_t *)data - TABLE_HEADER_BYTES;
    size_t len = *(size_t *)start;
    if (len)
        munmap(start, len);
    else
        free(start);
}

void matcher_destroy(matcher_engine *e)
{
    if (!e)
        return;
    if (e->books) {
        for (uint32_t m = 0; m < e->cat.n_markets; m++)
            for (int s = 0; s < 2; s++) {
                table_free(e->books[m].side[s].keys_base);
                table_free(e->books[m].side[s].lvl_base);
            }
    }
    table_free(e->books);
    table_free(e->accounts);
    table_free(e->orders_raw);
    table_free(e->idmap.slots);
    table_free(e->levels);
    table_free(e->lvmap.slots);
    table_free(e->chunks);
    table_free(e->omask);
    table_free(e->lvmask);
    table_free(e->bucket_head);
    table_free(e->bucket_tail);
    table_free(e->plan);
    table_free(e->sp_rem);
    table_free(e->sp_avail);
    table_free(e->sp_steps);
    table_free(e->sp_epoch);
    free(e);
}

static bool alloc_tables(matcher_engine *e)
{
    const matcher_config *c = &e->cfg;
    uint32_t map_size = pow2_at_least((uint64_t)c->max_orders * 2);
    e->accounts = table_alloc(c->max_accounts, sizeof(account));
    /* aligned by hand (a small table comes from calloc, 16-aligned) so
     * each order's hot half is exactly one cache line */
    e->orders_raw = table_alloc((size_t)c->max_orders + 2, sizeof(order));
    e->orders = e->orders_raw ? (order *)(((uintptr_t)e->orders_raw + 63) & ~(uintptr_t)63) : NULL;
    e->idmap = (slot_map){.slots = table_alloc(map_size, sizeof(map_slot)), .mask = map_size - 1};
    e->levels = table_alloc((size_t)c->max_orders + 1, sizeof(level));
    e->lvmap = (slot_map){.slots = table_alloc(map_size, sizeof(map_slot)), .mask = map_size - 1};
    e->chunks = table_alloc((size_t)c->max_segments + 1, sizeof(cap_chunk));
    e->omask = table_alloc((size_t)c->max_orders + 1, sizeof(hmask));
    e->lvmask = table_alloc((size_t)c->max_orders + 1, sizeof(hmask));
    e->books = table_alloc(e->cat.n_markets ? e->cat.n_markets : 1, sizeof(market_book));
    e->bucket_head = table_alloc(EXPIRY_RING, sizeof(uint32_t));
    e->bucket_tail = table_alloc(EXPIRY_RING, sizeof(uint32_t));
    e->plan = table_alloc(MATCHER_MAX_FILLS_PER_COMMAND, sizeof(plan_step));
    e->sp_rem = table_alloc(c->max_accounts, sizeof(int32_t));
    e->sp_avail = table_alloc(c->max_accounts, sizeof(int64_t));
    e->sp_steps = table_alloc(c->max_accounts, sizeof(uint32_t));
    e->sp_epoch = table_alloc(c->max_accounts, sizeof(uint32_t));
    if (!e->accounts || !e->orders || !e->idmap.slots || !e->levels || !e->chunks ||
        !e->lvmap.slots || !e->omask || !e->lvmask ||
        !e->books || !e->bucket_head || !e->bucket_tail || !e->plan || !e->sp_rem || !e->sp_avail || !e->sp_steps ||
        !e->sp_epoch)
        return false;
    for (uint32_t m = 0; m < e->cat.n_markets; m++)
        for (int s = 0; s < 2; s++) {
            book_side *bs = &e->books[m].side[s];
            bs->cap_levels = c->max_orders_per_market + 1;
            /* room for cap_levels on either side of the start (book.c,
             * side_insert); small pages: a side uses a sliver of its
             * span, and a huge page per array would make 2 MiB of each
             * resident */
            bs->keys_base = table_alloc_small((size_t)bs->cap_levels * 2, sizeof(int32_t));
            bs->lvl_base = table_alloc_small((size_t)bs->cap_levels * 2, sizeof(uint32_t));
            if (!bs->keys_base || !bs->lvl_base)
                return false;
            bs->front = bs->cap_levels;
            bs->keys = bs->keys_base + bs->front;
            bs->lvl = bs->lvl_base + bs->front;
        }
    for (uint32_t m = 0; m < e->cat.n_markets; m++)
        e->books[m].plan_epoch = 1;
    return true;
}

/* Free lists start empty and slots are handed out from a high-water mark
 * once they are: the same order of slots as lists linking every slot at
 * start (freed slots first, newest first, then the untouched ones in
 * order), without writing every slot of the order, level and segment
 * tables at start. That wrote ~250 MB at the default limits (the whole
 * tables, huge pages: docs/benchmarks.md "Memory per resting order"). */
static void link_free_lists(matcher_engine *e)
{
    e->order_free = e->level_free = e->chunk_free = NIL;
    e->orders_hw = e->levels_hw = e->chunks_hw = 0;
    e->n_segs_free = e->cfg.max_segments;
}

matcher_engine *matcher_create(const matcher_catalog *cat, const matcher_config *cfg)
{
    if (!cat || !cfg || !config_ok(cfg) || cat->n_markets > MATCHER_MAX_MARKETS)
        return NULL;
    matcher_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->cat = *cat;
    e->cfg = *cfg;
    if (!alloc_tables(e)) {
        matcher_destroy(e);
        return NULL;
    }
    link_free_lists(e);
    e->next_order_id = 1;
    e->next_trade_id = 1;
    e->next_priority = 1;
    e->n_accounts = 1; /* the fee account, id 0, no roles */
    return e;
}

/* ---- events ---- */

static void emit(matcher_engine *e, const matcher_event *ev)
{
    if (e->emit)
        e->emit(e->emit_ctx, ev);
}

void eng_emit_balance(matcher_engine *e, uint32_t account_id)
{
    matcher_event ev;
    eng_event_init(e, &ev, MATCHER_EV_BALANCE);
    ev.u.balance.account = account_id;
    ev.u.balance.balance_micros = e->accounts[account_id].balance_micros;
    ev.u.balance.held_micros = e->accounts[account_id].held_micros;
    emit(e, &ev);
}

static int32_t order_remaining(const matcher_engine *e, const order *o)
{
    return o->side == MATCHER_BUY ? bid_remaining(o) : cap_max_open(e, o);
}

void eng_emit_done(matcher_engine *e, uint32_t slot, matcher_done_reason r)
{
    const order *o = &e->orders[slot];
    matcher_event ev;
    eng_event_init(e, &ev, MATCHER_EV_DONE);
    ev.u.done.order_id = o->id;
    ev.u.done.account = o->account;
    ev.u.done.market = o->market;
    ev.u.done.side = o->side;
    ev.u.done.reason = (uint8_t)r;
    ev.u.done.remaining_qty = order_remaining(e, o);
    emit(e, &ev);
}

/* Takes an order out of the engine: book, expiry wheel, hold, id map. */
void eng_order_end(matcher_engine *e, uint32_t slot, matcher_done_reason r)
{
    order *o = &e->orders[slot];
    if (o->level != NIL)
        book_remove(e, slot);
    if (o->in_bucket)
        bucket_remove(e, slot);
    eng_emit_done(e, slot, r);
    account *a = &e->accounts[o->account];
    if (o->side == MATCHER_BUY && o->hold_micros > 0) {
        a->held_micros -= o->hold_micros;
        o->hold_micros = 0;
        eng_emit_balance(e, o->account);
    }
    if (o->cap_head != NIL)
        cap_free_all(e, o);
    GPUX_ASSERT(a->open_orders > 0);
    a->open_orders--;
    book_idmap_del(e, o->id);
    book_order_free(e, slot);
}

matcher_reason eng_reject(matcher_engine *e, matcher_reason r)
{
    matcher_event ev;
    eng_event_init(e, &ev, MATCHER_EV_REJECTED);
    ev.u.rejected.reason = (uint16_t)r;
    if (e->cmd->type == MATCHER_CMD_CANCEL || e->cmd->type == MATCHER_CMD_REPLACE)
        ev.u.rejected.order_id = e->cmd->order_id;
    emit(e, &ev);
    return r;
}


/* ---- accounts and money commands ---- */

static matcher_reason cmd_create_account(matcher_engine *e, const matcher_cmd *c)
{
    const uint32_t all = MATCHER_ROLE_BUYER | MATCHER_ROLE_PROVIDER | MATCHER_ROLE_ADMIN;
    if (c->roles & ~all)
        return eng_reject(e, MATCHER_REJ_BAD_ROLES);
    if (e->n_accounts >= e->cfg.max_accounts)
        return eng_reject(e, MATCHER_REJ_ACCOUNTS_FULL);
    uint32_t id = e->n_accounts++;
    e->accounts[id] = (account){.roles = c->roles};
    matcher_event ev;
    eng_event_init(e, &ev, MATCHER_EV_ACCOUNT);
    ev.u.account.account = id;
    ev.u.account.roles = c->roles;
    emit(e, &ev);
    return MATCHER_OK;
}

static void emit_transfer(matcher_engine *e, uint16_t type, uint32_t account_id, int64_t amount)
{
    matcher_event ev;
    eng_event_init(e, &ev, type);
    ev.u.transfer.account = account_id;
    ev.u.transfer.amount_micros = amount;
    emit(e, &ev);
    eng_emit_balance(e, account_id);
}

static matcher_reason cmd_deposit(matcher_engine *e, const matcher_cmd *c)
{
    if (c->account >= e->n_accounts)
        return eng_reject(e, MATCHER_REJ_UNKNOWN_ACCOUNT);
    if (c->amount_micros <= 0 || c->amount_micros > MATCHER_MAX_AMOUNT_MICROS)
        return eng_reject(e, MATCHER_REJ_BAD_AMOUNT);
    account *a = &e->accounts[c->account];
    /* Per account, and for the exchange's running total of deposits
     * (which never shrinks: it must not overflow after ~$9.2e12). */
    if (a->balance_micros > MATCHER_MAX_BALANCE_MICROS - c->amount_micros ||
        e->deposited_micros > INT64_MAX - c->amount_micros)
        return eng_reject(e, MATCHER_REJ_BALANCE_LIMIT);
    a->balance_micros += c->amount_micros;
    e->deposited_micros += c->amount_micros;
    emit_transfer(e, MATCHER_EV_DEPOSIT, c->account, c->amount_micros);
    return MATCHER_OK;
}

static matcher_reason cmd_withdraw(matcher_engine *e, const matcher_cmd *c)
{
    if (c->account >= e->n_accounts)
        return eng_reject(e, MATCHER_REJ_UNKNOWN_ACCOUNT);
    if (c->amount_micros <= 0 || c->amount_micros > MATCHER_MAX_AMOUNT_MICROS)
        return eng_reject(e, MATCHER_REJ_BAD_AMOUNT);
    account *a = &e->accounts[c->account];
    if (c->amount_micros > a->balance_micros - a->held_micros)
        return eng_reject(e, MATCHER_REJ_INSUFFICIENT_FUNDS);
    a->balance_micros -= c->amount_micros;
    e->withdrawn_micros += c->amount_micros;
    emit_transfer(e, MATCHER_EV_WITHDRAWAL, c->account, c->amount_micros);
    return MATCHER_OK;
}

/* ---- clock ---- */

static void expire_bucket(matcher_engine *e, int64_t hour)
{
    uint32_t b = (uint32_t)(hour % EXPIRY_RING);
    while (e->bucket_head[b] != NIL) {
        uint32_t slot = e->bucket_head[b];
        GPUX_ASSERT(e->orders[slot].expiry_hour == hour);
        eng_order_end(e, slot, MATCHER_DONE_EXPIRED);
    }
}

static matcher_reason cmd_advance_clock(matcher_engine *e, const matcher_cmd *c)
{
    if (c->clock_hour < e->now_hour || c->clock_hour > MATCHER_MAX_CLOCK_HOUR)
        return eng_reject(e, MATCHER_REJ_BAD_CLOCK);
    int64_t from = e->now_hour;
    int64_t to = c->clock_hour;
    matcher_event ev;
    eng_event_init(e, &ev, MATCHER_EV_CLOCK);
    ev.u.clock.hour = to;
    emit(e, &ev);
    if (to == from)
        return MATCHER_OK;
    /* Every resting order expires in [from, from + horizon], one hour per
     * bucket; visit them in hour order. The clock moves first so an
     * expiring offer reports only the capacity still open afterwards. */
    e->now_hour = to;
    int64_t last = to < from + MATCHER_HORIZON_HOURS ? to : from + MATCHER_HORIZON_HOURS;
    for (int64_t h = from; h <= last; h++)
        expire_bucket(e, h);
    return MATCHER_OK;
}

/* ---- dispatch ---- */

matcher_reason matcher_apply(matcher_engine *e, const matcher_cmd *cmd, matcher_emit_fn fn, void *ctx)
{
    GPUX_ASSERT(e && cmd);
    e->emit = fn;
    e->emit_ctx = ctx;
    e->cmd = cmd;
    e->fills_left = MATCHER_MAX_FILLS_PER_COMMAND;
    e->incoming = NIL;
    matcher_reason r;
    switch (cmd->type) {
    case MATCHER_CMD_CREATE_ACCOUNT: r = cmd_create_account(e, cmd); break;
    case MATCHER_CMD_DEPOSIT: r = cmd_deposit(e, cmd); break;
    case MATCHER_CMD_WITHDRAW: r = cmd_withdraw(e, cmd); break;
    case MATCHER_CMD_NEW_ORDER: r = entry_new_order(e, cmd); break;
    case MATCHER_CMD_CANCEL: r = entry_cancel(e, cmd); break;
    case MATCHER_CMD_REPLACE: r = entry_replace(e, cmd); break;
    case MATCHER_CMD_ADVANCE_CLOCK: r = cmd_advance_clock(e, cmd); break;
    default: r = eng_reject(e, MATCHER_REJ_BAD_COMMAND); break;
    }
    e->emit = NULL;
    e->emit_ctx = NULL;
    e->cmd = NULL;
    e->incoming = NIL;
    return r;
}
