/* test_matcher_diff.c — the engine against the reference model.
 *
 * Why: the engine is fast and clever (segments, indexes, sweeps); the
 * model (tests/support/refmodel.c) is slow and plain. Both read the same
 * rules (docs/market-rules.md). Feeding them the same seeded command
 * streams (tests/support/gen.c) and comparing every event field by field,
 * then the whole visible state and the money invariants after every
 * command, catches a rule the engine gets wrong the moment it matters.
 * On a difference the test prints the seed, the command index, the
 * command and both events, and fails. docs/testing.md has the details.
 *
 * Volume: GPUX_FLAVOUR=rel runs >= 1,000,000 commands; san about 10x
 * fewer. No timing is asserted. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "matcher/matcher.h"
#include "tests/support/gen.h"
#include "tests/support/refmodel.h"

/* Events one command can emit: a fill is at most 7 events. */
#define DIFF_MAX_EVENTS (MATCHER_MAX_FILLS_PER_COMMAND * 8 + 64)
#define DIFF_MAX_BOOK 70000

typedef struct ev_log {
    matcher_event *ev;
    uint32_t n;
    bool overflow;
} ev_log;

typedef struct diff_run {
    uint64_t seed;
    uint64_t index; /* command index within the stream */
    matcher_catalog cat;
    matcher_config cfg;
    matcher_engine *e;
    refmodel *m;
    ev_log le, lm;
    uint64_t *ids_e, *ids_m; /* book walk scratch */
    uint32_t n_ids_e;
    gen_stats *stats;
    bool light; /* events only: skip the per-command state checks */
    char err[512];
} diff_run;

static bool is_san(void)
{
    const char *f = getenv("GPUX_FLAVOUR");
    return f && strcmp(f, "san") == 0;
}

/* GPUX_DIFF_SEEDS / GPUX_DIFF_CMDS override the volume (for debugging a
 * single seed: GPUX_DIFF_FIRST_SEED=n GPUX_DIFF_SEEDS=1). */
static uint32_t env_u32(const char *name, uint32_t dflt)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    unsigned long x = strtoul(v, &end, 0);
    return (*end == 0 && x > 0 && x < 100000000UL) ? (uint32_t)x : dflt;
}

static void log_event(void *ctx, const matcher_event *ev)
{
    ev_log *l = ctx;
    if (l->n == DIFF_MAX_EVENTS) {
        l->overflow = true;
        return;
    }
    l->ev[l->n++] = *ev;
}

/* ---- printing ------------------------------------------------------------ */

static void describe_event(const matcher_event *ev, char *buf, size_t len)
{
    int k = snprintf(buf, len, "type=%u cmd=%u ts=%" PRId64 " ", ev->type, ev->cmd_type, ev->ts_us);
    if (k < 0 || (size_t)k >= len)
        return;
    buf += k;
    len -= (size_t)k;
    switch (ev->type) {
    case MATCHER_EV_REJECTED:
        snprintf(buf, len, "REJECTED %s order=%" PRIu64, gen_reason_name(ev->u.rejected.reason),
                 ev->u.rejected.order_id);
        break;
    case MATCHER_EV_ACCOUNT:
        snprintf(buf, len, "ACCOUNT %u roles=%u", ev->u.account.account, ev->u.account.roles);
        break;
    case MATCHER_EV_DEPOSIT:
    case MATCHER_EV_WITHDRAWAL:
        snprintf(buf, len, "TRANSFER account=%u amount=%" PRId64, ev->u.transfer.account,
                 ev->u.transfer.amount_micros);
        break;
    case MATCHER_EV_BALANCE:
        snprintf(buf, len, "BALANCE account=%u balance=%" PRId64 " held=%" PRId64,
                 ev->u.balance.account, ev->u.balance.balance_micros, ev->u.balance.held_micros);
        break;
    case MATCHER_EV_ACCEPTED:
    case MATCHER_EV_REPLACED: {
        const matcher_order_info *o = &ev->u.order;
        snprintf(buf, len,
                 "%s order=%" PRIu64 " account=%u market=%u side=%u tif=%u sp=%u qty=%d "
                 "min_qty=%d min_hours=%d price=%" PRId64 " window=[%" PRId64 ",%" PRId64
                 ") expire_at=%" PRId64 " hold=%" PRId64,
                 ev->type == MATCHER_EV_ACCEPTED ? "ACCEPTED" : "REPLACED", o->order_id,
                 o->account, o->market, o->side, o->tif, o->single_provider, o->qty, o->min_qty,
                 o->min_hours, o->price_micros, o->start_hour, o->end_hour, o->expire_at_hour,
                 o->hold_micros);
        break;
    }
    case MATCHER_EV_TRADE:
    case MATCHER_EV_LEASE: {
        const matcher_fill_info *f = &ev->u.fill;
        snprintf(buf, len,
                 "%s trade=%" PRIu64 " buy=%" PRIu64 " sell=%" PRIu64 " buyer=%u provider=%u "
                 "market=%u taker=%u price=%" PRId64 " qty=%d window=[%" PRId64 ",%" PRId64
                 ") notional=%" PRId64 " fees=%" PRId64 "/%" PRId64 " saving=%" PRId64,
                 ev->type == MATCHER_EV_TRADE ? "TRADE" : "LEASE", f->trade_id, f->buy_order_id,
                 f->sell_order_id, f->buyer, f->provider, f->market, f->taker_side,
                 f->price_micros, f->qty, f->start_hour, f->end_hour, f->notional_micros,
                 f->buyer_fee_micros, f->provider_fee_micros, f->saving_micros);
        break;
    }
    case MATCHER_EV_DONE:
        snprintf(buf, len, "DONE order=%" PRIu64 " account=%u market=%u side=%u reason=%u remaining=%d",
                 ev->u.done.order_id, ev->u.done.account, ev->u.done.market, ev->u.done.side,
                 ev->u.done.reason, ev->u.done.remaining_qty);
        break;
    case MATCHER_EV_CLOCK:
        snprintf(buf, len, "CLOCK hour=%" PRId64, ev->u.clock.hour);
        break;
    default: snprintf(buf, len, "UNKNOWN"); break;
    }
}

/* Prints a failure with its context; returns -1 for the caller to return. */
static int diff_fail(diff_run *r, const matcher_cmd *c, const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    gen_describe(c, cmd, sizeof cmd);
    fprintf(stderr, "# DIFF seed=%" PRIu64 " command #%" PRIu64 ": ", r->seed, r->index);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n#   command: %s\n", cmd);
    return -1;
}

/* ---- event comparison ---------------------------------------------------- */

static bool same_order_info(const matcher_order_info *a, const matcher_order_info *b)
{
    return a->order_id == b->order_id && a->account == b->account && a->market == b->market &&
           a->side == b->side && a->tif == b->tif && a->single_provider == b->single_provider &&
           a->qty == b->qty && a->min_qty == b->min_qty && a->min_hours == b->min_hours &&
           a->price_micros == b->price_micros && a->start_hour == b->start_hour &&
           a->end_hour == b->end_hour && a->expire_at_hour == b->expire_at_hour &&
           a->hold_micros == b->hold_micros;
}

static bool same_fill(const matcher_fill_info *a, const matcher_fill_info *b)
{
    return a->trade_id == b->trade_id && a->buy_order_id == b->buy_order_id &&
           a->sell_order_id == b->sell_order_id && a->buyer == b->buyer &&
           a->provider == b->provider && a->market == b->market &&
           a->taker_side == b->taker_side && a->price_micros == b->price_micros &&
           a->qty == b->qty && a->start_hour == b->start_hour && a->end_hour == b->end_hour &&
           a->notional_micros == b->notional_micros &&
           a->buyer_fee_micros == b->buyer_fee_micros &&
           a->provider_fee_micros == b->provider_fee_micros &&
           a->saving_micros == b->saving_micros;
}

/* Field by field for the fields the event type defines. */
static bool same_event(const matcher_event *a, const matcher_event *b)
{
    if (a->type != b->type || a->cmd_type != b->cmd_type || a->ts_us != b->ts_us)
        return false;
    switch (a->type) {
    case MATCHER_EV_REJECTED:
        return a->u.rejected.reason == b->u.rejected.reason &&
               a->u.rejected.order_id == b->u.rejected.order_id;
    case MATCHER_EV_ACCOUNT:
        return a->u.account.account == b->u.account.account &&
               a->u.account.roles == b->u.account.roles;
    case MATCHER_EV_DEPOSIT:
    case MATCHER_EV_WITHDRAWAL:
        return a->u.transfer.account == b->u.transfer.account &&
               a->u.transfer.amount_micros == b->u.transfer.amount_micros;
    case MATCHER_EV_BALANCE:
        return a->u.balance.account == b->u.balance.account &&
               a->u.balance.balance_micros == b->u.balance.balance_micros &&
               a->u.balance.held_micros == b->u.balance.held_micros;
    case MATCHER_EV_ACCEPTED:
    case MATCHER_EV_REPLACED: return same_order_info(&a->u.order, &b->u.order);
    case MATCHER_EV_TRADE:
    case MATCHER_EV_LEASE: return same_fill(&a->u.fill, &b->u.fill);
    case MATCHER_EV_DONE:
        return a->u.done.order_id == b->u.done.order_id && a->u.done.account == b->u.done.account &&
               a->u.done.market == b->u.done.market && a->u.done.side == b->u.done.side &&
               a->u.done.reason == b->u.done.reason &&
               a->u.done.remaining_qty == b->u.done.remaining_qty;
    case MATCHER_EV_CLOCK: return a->u.clock.hour == b->u.clock.hour;
    default: return false;
    }
}

static int compare_events(diff_run *r, const matcher_cmd *c, matcher_reason re, matcher_reason rm)
{
    char a[768], b[768];
    if (r->le.overflow || r->lm.overflow)
        return diff_fail(r, c, "more than %d events from one command", DIFF_MAX_EVENTS);
    uint32_t n = r->le.n < r->lm.n ? r->le.n : r->lm.n;
    for (uint32_t i = 0; i < n; i++) {
        if (same_event(&r->le.ev[i], &r->lm.ev[i]))
            continue;
        describe_event(&r->le.ev[i], a, sizeof a);
        describe_event(&r->lm.ev[i], b, sizeof b);
        return diff_fail(r, c, "event %u differs\n#   engine: %s\n#   model:  %s", i, a, b);
    }
    if (r->le.n != r->lm.n) {
        const matcher_event *extra = r->le.n > r->lm.n ? &r->le.ev[n] : &r->lm.ev[n];
        describe_event(extra, a, sizeof a);
        return diff_fail(r, c, "engine emitted %u events, model %u; first extra (%s): %s",
                         r->le.n, r->lm.n, r->le.n > r->lm.n ? "engine" : "model", a);
    }
    if (re != rm)
        return diff_fail(r, c, "engine returned %s, model %s", gen_reason_name((uint16_t)re),
                         gen_reason_name((uint16_t)rm));
    for (uint32_t i = 0; i < r->le.n; i++)
        if (memcmp(&r->le.ev[i], &r->lm.ev[i], sizeof(matcher_event)) != 0) {
            describe_event(&r->le.ev[i], a, sizeof a);
            return diff_fail(r, c, "event %u: same fields but padding/unused bytes differ "
                                   "(events must be zeroed): %s", i, a);
        }
    return 0;
}

/* ---- invariants and state comparison ------------------------------------ */

static int64_t formula_hold(const matcher_config *cfg, const matcher_order_view *o)
{
    if (o->info.side != MATCHER_BUY)
        return 0;
    int64_t n = o->info.price_micros * (int64_t)o->remaining_qty *
                (o->info.end_hour - o->info.start_hour);
    int32_t bps = cfg->maker_fee_bps > cfg->taker_fee_bps ? cfg->maker_fee_bps : cfg->taker_fee_bps;
    return n + (int64_t)((__int128)n * bps / 10000);
}

typedef struct walk_ctx {
    diff_run *r;
    uint32_t n;
    int64_t *held; /* per account, from bids */
    bool have_prev;
    matcher_order_view prev;
    int bad; /* 0 ok, 1 unsorted, 2 overflow, 3 side/market wrong */
    uint32_t market;
    uint8_t side;
} walk_ctx;

static bool walk_fn(void *ctx, const matcher_order_view *o)
{
    walk_ctx *w = ctx;
    if (w->n == DIFF_MAX_BOOK) {
        w->bad = 2;
        return false;
    }
    if (o->info.market != w->market || o->info.side != w->side) {
        w->bad = 3;
        return false;
    }
    if (w->have_prev) {
        int64_t p0 = w->prev.info.price_micros, p1 = o->info.price_micros;
        bool better = w->side == MATCHER_BUY ? p0 > p1 : p0 < p1;
        if (!(better || (p0 == p1 && w->prev.priority < o->priority))) {
            w->bad = 1;
            return false;
        }
    }
    w->prev = *o;
    w->have_prev = true;
    w->r->ids_e[w->n++] = o->info.order_id;
    if (w->held && o->info.account < w->r->cfg.max_accounts)
        w->held[o->info.account] += formula_hold(&w->r->cfg, o);
    return true;
}

static int check_engine_invariants(diff_run *r, const matcher_cmd *c, int64_t *held)
{
    if (matcher_check(r->e, r->err, sizeof r->err) != 0)
        return diff_fail(r, c, "matcher_check: %s", r->err);
    uint32_t n_acc = matcher_account_count(r->e);
    memset(held, 0, sizeof(int64_t) * r->cfg.max_accounts);
    for (uint32_t mk = 0; mk < r->cat.n_markets; mk++)
        for (uint8_t side = MATCHER_BUY; side <= MATCHER_SELL; side++) {
            walk_ctx w = {.r = r, .held = held, .market = mk, .side = side};
            matcher_book_walk(r->e, mk, side, walk_fn, &w);
            if (w.bad)
                return diff_fail(r, c, "book walk market %u side %u: %s", mk, side,
                                 w.bad == 1 ? "not in priority order"
                                 : w.bad == 2 ? "too long" : "wrong market/side");
            uint32_t n_m = refmodel_book(r->m, mk, side, r->ids_m, DIFF_MAX_BOOK);
            if (n_m != w.n)
                return diff_fail(r, c, "market %u side %u: engine book has %u orders, model %u",
                                 mk, side, w.n, n_m);
            for (uint32_t i = 0; i < w.n; i++)
                if (r->ids_e[i] != r->ids_m[i])
                    return diff_fail(r, c, "market %u side %u position %u: engine order %" PRIu64
                                     ", model order %" PRIu64, mk, side, i, r->ids_e[i], r->ids_m[i]);
        }
    int64_t dep, wd, sum = 0;
    matcher_totals(r->e, &dep, &wd);
    for (uint32_t a = 0; a < n_acc; a++) {
        matcher_account_view v;
        if (matcher_account_get(r->e, a, &v) != 0)
            return diff_fail(r, c, "engine account %u missing", a);
        if (v.balance_micros < 0 || v.held_micros < 0 || v.held_micros > v.balance_micros)
            return diff_fail(r, c, "account %u balance %" PRId64 " held %" PRId64, a,
                             v.balance_micros, v.held_micros);
        if (v.held_micros != held[a])
            return diff_fail(r, c, "account %u held %" PRId64 " but its open bids hold %" PRId64,
                             a, v.held_micros, held[a]);
        sum += v.balance_micros;
    }
    if (sum != dep - wd)
        return diff_fail(r, c, "money not conserved: balances %" PRId64 " != deposited %" PRId64
                         " - withdrawn %" PRId64, sum, dep, wd);
    return 0;
}

static bool same_view(const matcher_order_view *a, const matcher_order_view *b)
{
    return same_order_info(&a->info, &b->info) && a->filled_qty == b->filled_qty &&
           a->remaining_qty == b->remaining_qty && a->provider_lock == b->provider_lock;
}

static int compare_state(diff_run *r, const matcher_cmd *c)
{
    if (matcher_clock_hour(r->e) != refmodel_clock_hour(r->m))
        return diff_fail(r, c, "clock %" PRId64 " vs model %" PRId64, matcher_clock_hour(r->e),
                         refmodel_clock_hour(r->m));
    if (matcher_next_order_id(r->e) != refmodel_next_order_id(r->m) ||
        matcher_next_trade_id(r->e) != refmodel_next_trade_id(r->m))
        return diff_fail(r, c, "next ids engine %" PRIu64 "/%" PRIu64 " model %" PRIu64 "/%" PRIu64,
                         matcher_next_order_id(r->e), matcher_next_trade_id(r->e),
                         refmodel_next_order_id(r->m), refmodel_next_trade_id(r->m));
    int64_t de, we, dm, wm;
    matcher_totals(r->e, &de, &we);
    refmodel_totals(r->m, &dm, &wm);
    if (de != dm || we != wm)
        return diff_fail(r, c, "totals differ");
    uint32_t n_acc = refmodel_account_count(r->m);
    if (matcher_account_count(r->e) != n_acc)
        return diff_fail(r, c, "account count %u vs model %u", matcher_account_count(r->e), n_acc);
    int64_t model_sum = 0;
    for (uint32_t a = 0; a < n_acc; a++) {
        matcher_account_view ve, vm;
        refmodel_account_get(r->m, a, &vm);
        matcher_account_get(r->e, a, &ve);
        model_sum += vm.balance_micros;
        if (vm.balance_micros < 0 || vm.held_micros > vm.balance_micros)
            return diff_fail(r, c, "model account %u balance %" PRId64 " held %" PRId64, a,
                             vm.balance_micros, vm.held_micros);
        if (ve.balance_micros != vm.balance_micros || ve.held_micros != vm.held_micros ||
            ve.open_orders != vm.open_orders || (a != MATCHER_FEE_ACCOUNT && ve.roles != vm.roles))
            return diff_fail(r, c, "account %u: engine balance %" PRId64 " held %" PRId64
                             " open %u roles %u; model %" PRId64 " %" PRId64 " %u %u", a,
                             ve.balance_micros, ve.held_micros, ve.open_orders, ve.roles,
                             vm.balance_micros, vm.held_micros, vm.open_orders, vm.roles);
    }
    if (model_sum != dm - wm)
        return diff_fail(r, c, "model money not conserved");
    uint32_t n_ord = refmodel_order_count(r->m);
    if (matcher_order_count(r->e) != n_ord)
        return diff_fail(r, c, "order count %u vs model %u", matcher_order_count(r->e), n_ord);
    int64_t now = refmodel_clock_hour(r->m);
    for (uint32_t i = 0; i < n_ord; i++) {
        matcher_order_view vm, ve;
        refmodel_order_at(r->m, i, &vm);
        if (matcher_order_get(r->e, vm.info.order_id, &ve) != 0)
            return diff_fail(r, c, "order %" PRIu64 " rests in the model, not in the engine",
                             vm.info.order_id);
        if (!same_view(&ve, &vm))
            return diff_fail(r, c, "order %" PRIu64 ": engine filled %d remaining %d lock %u hold %"
                             PRId64 " qty %d price %" PRId64 "; model %d %d %u %" PRId64 " %d %" PRId64,
                             vm.info.order_id, ve.filled_qty, ve.remaining_qty, ve.provider_lock,
                             ve.info.hold_micros, ve.info.qty, ve.info.price_micros, vm.filled_qty,
                             vm.remaining_qty, vm.provider_lock, vm.info.hold_micros, vm.info.qty,
                             vm.info.price_micros);
        if (vm.info.side != MATCHER_SELL)
            continue;
        int64_t from = vm.info.start_hour > now ? vm.info.start_hour : now;
        int32_t least = INT32_MAX;
        for (int64_t h = from - 1; h <= vm.info.end_hour; h++) {
            int32_t ce = matcher_offer_capacity(r->e, vm.info.order_id, h);
            int32_t cm = refmodel_offer_capacity(r->m, vm.info.order_id, h);
            if (ce != cm || ce < 0)
                return diff_fail(r, c, "offer %" PRIu64 " hour %" PRId64 ": engine capacity %d, model %d",
                                 vm.info.order_id, h, ce, cm);
            if (h >= from && h < vm.info.end_hour && cm < least)
                least = cm;
        }
        /* the minimum over all open hours, and over a window reaching
         * outside them (0 by contract) */
        int32_t ae = matcher_offer_avail(r->e, vm.info.order_id, from, vm.info.end_hour);
        int32_t ao = matcher_offer_avail(r->e, vm.info.order_id, from, vm.info.end_hour + 1);
        if (from < vm.info.end_hour && (ae != least || ao != 0))
            return diff_fail(r, c, "offer %" PRIu64 ": engine avail over open hours %d (model %d), "
                             "past its end %d (want 0)", vm.info.order_id, ae, least, ao);
    }
    return 0;
}

/* ---- one command ----------------------------------------------------------- */

static int64_t *g_held; /* per-account scratch, sized max_accounts */

/* The state checks of one command (invariants, then engine vs model). */
static int diff_check_state(diff_run *r, const matcher_cmd *c)
{
    if (check_engine_invariants(r, c, g_held) != 0)
        return -1;
    return compare_state(r, c);
}

static int diff_step(diff_run *r, const matcher_cmd *c, gen *g)
{
    uint64_t hash_before = r->light ? 0 : matcher_state_hash(r->e);
    r->le.n = r->lm.n = 0;
    r->le.overflow = r->lm.overflow = false;
    matcher_reason re = matcher_apply(r->e, c, log_event, &r->le);
    matcher_reason rm = refmodel_apply(r->m, c, log_event, &r->lm);
    for (uint32_t i = 0; i < r->le.n; i++) {
        if (g)
            gen_observe(g, &r->le.ev[i]);
        if (r->stats)
            gen_stats_event(r->stats, &r->le.ev[i]);
    }
    if (r->stats)
        gen_stats_command(r->stats);
    if (compare_events(r, c, re, rm) != 0)
        return -1;
    if (r->light)
        return 0;
    if (re != MATCHER_OK && matcher_state_hash(r->e) != hash_before)
        return diff_fail(r, c, "rejected command changed the engine's state hash");
    return diff_check_state(r, c);
}

static void diff_open(diff_run *r, uint64_t seed, const matcher_catalog *cat,
                      const matcher_config *cfg, gen_stats *stats)
{
    memset(r, 0, sizeof *r);
    r->seed = seed;
    r->cat = *cat;
    r->cfg = *cfg;
    r->e = matcher_create(cat, cfg);
    r->m = refmodel_create(cat, cfg);
    assert_non_null(r->e);
    assert_non_null(r->m);
    r->le.ev = malloc(DIFF_MAX_EVENTS * sizeof(matcher_event));
    r->lm.ev = malloc(DIFF_MAX_EVENTS * sizeof(matcher_event));
    r->ids_e = malloc(DIFF_MAX_BOOK * sizeof(uint64_t));
    r->ids_m = malloc(DIFF_MAX_BOOK * sizeof(uint64_t));
    g_held = calloc(cfg->max_accounts, sizeof(int64_t));
    assert_true(r->le.ev && r->lm.ev && r->ids_e && r->ids_m && g_held);
    r->stats = stats;
}

static void diff_close(diff_run *r)
{
    matcher_destroy(r->e);
    refmodel_destroy(r->m);
    free(r->le.ev);
    free(r->lm.ev);
    free(r->ids_e);
    free(r->ids_m);
    free(g_held);
    g_held = NULL;
}

/* Runs one seeded stream; returns 0 or -1 at the first difference. */
static int diff_stream(uint64_t seed, uint32_t n_cmds, const matcher_config *cfg_in,
                       gen_stats *stats)
{
    matcher_catalog cat;
    matcher_config cfg;
    gen_catalog(seed, &cat);
    gen_config(seed, &cfg);
    if (cfg_in) {
        int32_t maker = cfg.maker_fee_bps, taker = cfg.taker_fee_bps;
        cfg = *cfg_in;
        cfg.maker_fee_bps = maker;
        cfg.taker_fee_bps = taker;
    }
    diff_run r;
    diff_open(&r, seed, &cat, &cfg, stats);
    gen *g = gen_create(seed, &cat);
    assert_non_null(g);
    int rc = 0;
    for (uint32_t i = 0; i < n_cmds && rc == 0; i++) {
        matcher_cmd c;
        gen_next(g, &c);
        r.index = i;
        rc = diff_step(&r, &c, g);
    }
    gen_destroy(g);
    diff_close(&r);
    return rc;
}

/* ---- tests ------------------------------------------------------------------- */

static void assert_coverage(const gen_stats *s, bool tiny)
{
    static const uint16_t must_events[] = {
        MATCHER_EV_REJECTED, MATCHER_EV_ACCOUNT, MATCHER_EV_DEPOSIT, MATCHER_EV_WITHDRAWAL,
        MATCHER_EV_BALANCE, MATCHER_EV_ACCEPTED, MATCHER_EV_REPLACED, MATCHER_EV_TRADE,
        MATCHER_EV_LEASE, MATCHER_EV_DONE, MATCHER_EV_CLOCK};
    for (size_t i = 0; i < sizeof must_events / sizeof must_events[0]; i++)
        assert_true(s->events[must_events[i]] > 0);
    for (int d = MATCHER_DONE_FILLED; d <= MATCHER_DONE_UNFILLED; d++)
        assert_true(s->done[d] > 0);
    assert_true(s->multi_fill_commands > 0);
    assert_true(s->taker_sell > 0);
    if (tiny) {
        assert_true(s->rejects[MATCHER_REJ_BOOK_FULL] > 0);
        assert_true(s->rejects[MATCHER_REJ_ACCOUNTS_FULL] > 0);
        return;
    }
    /* every reason a stream can reach without hitting a table limit */
    for (int rr = 1; rr < MATCHER_REASON_COUNT; rr++) {
        if (rr == MATCHER_REJ_BOOK_FULL || rr == MATCHER_REJ_ACCOUNTS_FULL)
            continue;
        if (s->rejects[rr] == 0)
            fprintf(stderr, "# no rejection with reason %s\n", gen_reason_name((uint16_t)rr));
        assert_true(s->rejects[rr] > 0);
    }
}

static void test_random_streams(void **state)
{
    (void)state;
    uint32_t seeds = env_u32("GPUX_DIFF_SEEDS", is_san() ? 5 : 50);
    uint32_t per_seed = env_u32("GPUX_DIFF_CMDS", 20000);
    uint32_t first = env_u32("GPUX_DIFF_FIRST_SEED", 0);
    gen_stats stats;
    memset(&stats, 0, sizeof stats);
    uint32_t failed = 0;
    for (uint32_t s = 0; s < seeds; s++) {
        uint64_t seed = 0x9d1f0000ULL + first + s;
        if (diff_stream(seed, per_seed, NULL, &stats) != 0)
            failed++;
    }
    gen_stats_print(stdout, "random streams", &stats);
    assert_int_equal(failed, 0);
    assert_true(stats.commands >= (uint64_t)seeds * per_seed);
    assert_coverage(&stats, false);
}

static void test_tiny_limits(void **state)
{
    (void)state;
    matcher_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_accounts = 8;
    cfg.max_orders = 50;
    cfg.max_orders_per_market = 20;
    cfg.max_segments = 1u << 20;
    gen_stats stats;
    memset(&stats, 0, sizeof stats);
    uint32_t seeds = is_san() ? 3 : 10;
    uint32_t failed = 0;
    for (uint32_t s = 0; s < seeds; s++)
        if (diff_stream(0x71e70000ULL + s, is_san() ? 3000 : 10000, &cfg, &stats) != 0)
            failed++;
    gen_stats_print(stdout, "tiny limits", &stats);
    assert_int_equal(failed, 0);
    assert_coverage(&stats, true);
}


/* ---- hand-written scenarios ----------------------------------------------- */

/* One scripted command with what must happen, on top of the model
 * comparison: the reason, the number of trades, and (when non-zero) the
 * sell order of the first trade. */
typedef struct scen_step {
    matcher_cmd c;
    matcher_reason want;
    int32_t trades;
    uint64_t first_sell;
} scen_step;

enum { S_B1 = 1, S_B2 = 2, S_P1 = 3, S_P2 = 4, S_X = 5 }; /* accounts */
#define USD(d, c) ((int64_t)(d) * MATCHER_MICROS_PER_USD + (int64_t)(c) * 10000)

static matcher_cmd o_sell(uint32_t acct, int32_t qty, int64_t price, int64_t s, int64_t e)
{
    return (matcher_cmd){.type = MATCHER_CMD_NEW_ORDER, .side = MATCHER_SELL, .account = acct,
                         .qty = qty, .price_micros = price, .start_hour = s, .end_hour = e};
}

static matcher_cmd o_buy(uint32_t acct, int32_t qty, int64_t price, int64_t s, int64_t e)
{
    return (matcher_cmd){.type = MATCHER_CMD_NEW_ORDER, .side = MATCHER_BUY, .account = acct,
                         .qty = qty, .price_micros = price, .start_hour = s, .end_hour = e};
}

static matcher_cmd with_min(matcher_cmd c, int32_t min_qty) { c.min_qty = min_qty; return c; }
static matcher_cmd with_tif(matcher_cmd c, uint8_t tif) { c.tif = tif; return c; }
static matcher_cmd with_sp(matcher_cmd c) { c.single_provider = 1; return c; }
static matcher_cmd with_hours(matcher_cmd c, int32_t h) { c.min_hours = h; return c; }
static matcher_cmd with_expire(matcher_cmd c, int64_t x) { c.expire_at_hour = x; return c; }

static matcher_cmd c_cancel(uint32_t acct, uint64_t id)
{
    return (matcher_cmd){.type = MATCHER_CMD_CANCEL, .account = acct, .order_id = id};
}

static matcher_cmd c_replace(uint32_t acct, uint64_t id, int64_t price, int32_t qty)
{
    return (matcher_cmd){.type = MATCHER_CMD_REPLACE, .account = acct, .order_id = id,
                         .price_micros = price, .qty = qty};
}

static matcher_cmd c_clock(int64_t h)
{
    return (matcher_cmd){.type = MATCHER_CMD_ADVANCE_CLOCK, .clock_hour = h};
}

typedef struct trade_watch {
    int32_t trades;
    uint64_t first_sell;
} trade_watch;

/* Runs setup (5 accounts, funded) and the steps through engine and model.
 * Steps before light_until are compared on events only (for long setups);
 * the full state check runs after them and after every later step. */
static void run_scenario_ex(const char *name, int32_t lot, const scen_step *steps, size_t n,
                            size_t light_until)
{
    matcher_catalog cat;
    memset(&cat, 0, sizeof cat);
    cat.n_markets = 1;
    snprintf(cat.markets[0].gpu, sizeof cat.markets[0].gpu, "H100");
    snprintf(cat.markets[0].region, sizeof cat.markets[0].region, "us-east");
    cat.markets[0].lot = lot;
    cat.markets[0].tick_micros = 100;
    matcher_config cfg;
    gen_config(1, &cfg);
    cfg.max_orders = 8192;
    cfg.max_orders_per_market = 8192;
    cfg.maker_fee_bps = 0;
    cfg.taker_fee_bps = 10;
    diff_run r;
    diff_open(&r, 0, &cat, &cfg, NULL);
    static const uint32_t roles[] = {MATCHER_ROLE_BUYER, MATCHER_ROLE_BUYER, MATCHER_ROLE_PROVIDER,
                                     MATCHER_ROLE_PROVIDER,
                                     MATCHER_ROLE_BUYER | MATCHER_ROLE_PROVIDER};
    int64_t ts = 1;
    for (uint32_t a = 0; a < 5; a++) {
        matcher_cmd c = {.type = MATCHER_CMD_CREATE_ACCOUNT, .roles = roles[a], .ts_us = ts++};
        assert_int_equal(diff_step(&r, &c, NULL), 0);
        matcher_cmd d = {.type = MATCHER_CMD_DEPOSIT, .account = a + 1, .ts_us = ts++,
                         .amount_micros = USD(100000, 0)};
        if (a == S_B2 - 1)
            d.amount_micros = USD(20, 0); /* a poor buyer */
        assert_int_equal(diff_step(&r, &d, NULL), 0);
    }
    for (size_t i = 0; i < n; i++) {
        matcher_cmd c = steps[i].c;
        c.ts_us = ts++;
        r.index = i;
        r.light = i < light_until;
        if (i == light_until && i > 0 && diff_check_state(&r, &c) != 0) {
            fprintf(stderr, "# scenario %s: state after step %zu\n", name, i - 1);
            fail();
        }
        uint64_t next_trade = matcher_next_trade_id(r.e);
        if (diff_step(&r, &c, NULL) != 0) {
            fprintf(stderr, "# scenario %s step %zu\n", name, i);
            fail();
        }
        trade_watch w = {0, 0};
        for (uint32_t k = 0; k < r.le.n; k++)
            if (r.le.ev[k].type == MATCHER_EV_TRADE) {
                if (w.trades++ == 0)
                    w.first_sell = r.le.ev[k].u.fill.sell_order_id;
            }
        matcher_reason got = r.le.n && r.le.ev[0].type == MATCHER_EV_REJECTED
                                 ? (matcher_reason)r.le.ev[0].u.rejected.reason
                                 : MATCHER_OK;
        if (got != steps[i].want || w.trades != steps[i].trades ||
            (steps[i].first_sell && w.first_sell != steps[i].first_sell)) {
            fprintf(stderr, "# scenario %s step %zu: got %s, %d trades (first sell %" PRIu64
                    "), want %s, %d trades (first sell %" PRIu64 "); trade ids from %" PRIu64 "\n",
                    name, i, gen_reason_name((uint16_t)got), w.trades, w.first_sell,
                    gen_reason_name((uint16_t)steps[i].want), steps[i].trades,
                    steps[i].first_sell, next_trade);
            fail();
        }
    }
    diff_close(&r);
}

static void run_scenario(const char *name, const scen_step *steps, size_t n)
{
    run_scenario_ex(name, 8, steps, n, 0);
}

#define RUN_SCENARIO(name, ...)                                                \
    do {                                                                       \
        const scen_step steps_[] = {__VA_ARGS__};                              \
        run_scenario(name, steps_, sizeof steps_ / sizeof steps_[0]);          \
    } while (0)

static void test_scenarios(void **state)
{
    (void)state;
    /* ids: orders are numbered 1, 2, ... in each scenario */
    RUN_SCENARIO("all-or-none bid from two offers, cheaper first",
        {o_sell(S_P1, 8, USD(1, 90), 10, 20), MATCHER_OK, 0, 0},
        {o_sell(S_P2, 8, USD(1, 95), 10, 20), MATCHER_OK, 0, 0},
        {o_buy(S_B1, 16, USD(2, 0), 12, 16), MATCHER_OK, 2, 1});
    RUN_SCENARIO("resting all-or-none bid completed by a new offer",
        {o_sell(S_P1, 8, USD(1, 90), 10, 20), MATCHER_OK, 0, 0},
        {o_buy(S_B1, 16, USD(2, 0), 12, 16), MATCHER_OK, 0, 0},
        {o_sell(S_P2, 8, USD(1, 95), 10, 20), MATCHER_OK, 2, 1});
    RUN_SCENARIO("min_qty bid fills in parts",
        {o_sell(S_P1, 8, USD(1, 90), 10, 20), MATCHER_OK, 0, 0},
        {with_min(o_buy(S_B1, 24, USD(2, 0), 12, 16), 8), MATCHER_OK, 1, 1},
        {o_sell(S_P2, 16, USD(1, 95), 10, 20), MATCHER_OK, 1, 3},
        {c_cancel(S_B1, 2), MATCHER_REJ_UNKNOWN_ORDER, 0, 0});
    RUN_SCENARIO("single provider: the first provider to cover it all wins",
        {o_sell(S_P1, 8, USD(1, 90), 10, 20), MATCHER_OK, 0, 0},
        {o_sell(S_P2, 16, USD(1, 95), 10, 20), MATCHER_OK, 0, 0},
        {o_sell(S_P1, 8, USD(1, 96), 10, 20), MATCHER_OK, 0, 0},
        {with_sp(o_buy(S_B1, 16, USD(2, 0), 12, 16)), MATCHER_OK, 1, 2});
    RUN_SCENARIO("single provider all-or-none: no provider covers it, no fill",
        {o_sell(S_P1, 8, USD(1, 90), 10, 20), MATCHER_OK, 0, 0},
        {o_sell(S_P2, 8, USD(1, 95), 10, 20), MATCHER_OK, 0, 0},
        {with_sp(o_buy(S_B1, 16, USD(2, 0), 12, 16)), MATCHER_OK, 0, 0},
        {o_sell(S_P2, 8, USD(1, 99), 10, 20), MATCHER_OK, 2, 2});
    RUN_SCENARIO("self-trade is skipped",
        {o_sell(S_X, 8, USD(1, 80), 10, 20), MATCHER_OK, 0, 0},
        {o_sell(S_P1, 8, USD(1, 90), 10, 20), MATCHER_OK, 0, 0},
        {o_buy(S_X, 8, USD(2, 0), 12, 16), MATCHER_OK, 1, 2},
        {o_buy(S_B1, 8, USD(2, 0), 12, 16), MATCHER_OK, 1, 1});
    RUN_SCENARIO("post_only",
        {o_sell(S_P1, 8, USD(1, 90), 10, 20), MATCHER_OK, 0, 0},
        {with_tif(o_buy(S_B1, 8, USD(2, 0), 12, 16), MATCHER_POST_ONLY), MATCHER_REJ_WOULD_MATCH, 0, 0},
        {with_tif(o_buy(S_B1, 8, USD(1, 85), 12, 16), MATCHER_POST_ONLY), MATCHER_OK, 0, 0},
        {with_tif(o_sell(S_P2, 8, USD(1, 85), 10, 20), MATCHER_POST_ONLY), MATCHER_REJ_WOULD_MATCH, 0, 0},
        {c_replace(S_B1, 2, USD(1, 95), 0), MATCHER_REJ_WOULD_MATCH, 0, 0});
    RUN_SCENARIO("fok and ioc",
        {o_sell(S_P1, 8, USD(1, 90), 10, 20), MATCHER_OK, 0, 0},
        {with_min(with_tif(o_buy(S_B1, 16, USD(2, 0), 12, 16), MATCHER_FOK), 8), MATCHER_OK, 0, 0},
        {with_min(with_tif(o_buy(S_B1, 16, USD(2, 0), 12, 16), MATCHER_IOC), 8), MATCHER_OK, 1, 1},
        {with_tif(o_sell(S_P1, 8, USD(1, 90), 10, 20), MATCHER_FOK), MATCHER_REJ_BAD_TIF, 0, 0});
    RUN_SCENARIO("replace: more qty loses priority, less qty keeps it",
        {o_sell(S_P1, 8, USD(1, 90), 10, 20), MATCHER_OK, 0, 0},
        {o_sell(S_P2, 8, USD(1, 90), 10, 20), MATCHER_OK, 0, 0},
        {o_sell(S_P2, 24, USD(1, 90), 10, 20), MATCHER_OK, 0, 0},
        {c_replace(S_P1, 1, 0, 16), MATCHER_OK, 0, 0},
        {c_replace(S_P2, 3, 0, 16), MATCHER_OK, 0, 0},
        {o_buy(S_B1, 8, USD(2, 0), 12, 16), MATCHER_OK, 1, 2},
        {o_buy(S_B1, 8, USD(2, 0), 12, 16), MATCHER_OK, 1, 3},
        {c_replace(S_P1, 1, USD(1, 90), 16), MATCHER_REJ_BAD_QTY, 0, 0},
        {c_replace(S_P2, 1, USD(1, 80), 0), MATCHER_REJ_FORBIDDEN, 0, 0});
    RUN_SCENARIO("offer min_hours and min_qty",
        {with_hours(o_sell(S_P1, 8, USD(1, 90), 10, 20), 4), MATCHER_OK, 0, 0},
        {o_buy(S_B1, 8, USD(2, 0), 12, 14), MATCHER_OK, 0, 0},
        {o_buy(S_B1, 8, USD(2, 0), 12, 16), MATCHER_OK, 1, 1},
        {with_min(o_sell(S_P2, 16, USD(1, 90), 10, 20), 16), MATCHER_OK, 0, 0},
        {with_tif(o_buy(S_B1, 8, USD(2, 0), 12, 16), MATCHER_IOC), MATCHER_OK, 0, 0});
    RUN_SCENARIO("clock: expiry, past windows, backwards",
        {o_sell(S_P1, 8, USD(1, 90), 10, 20), MATCHER_OK, 0, 0},
        {o_buy(S_B1, 8, USD(1, 0), 12, 14), MATCHER_OK, 0, 0},
        {with_expire(o_sell(S_P2, 8, USD(1, 95), 10, 20), 11), MATCHER_OK, 0, 0},
        {c_clock(12), MATCHER_OK, 0, 0},
        {c_cancel(S_B1, 2), MATCHER_REJ_UNKNOWN_ORDER, 0, 0},
        {c_cancel(S_P2, 3), MATCHER_REJ_UNKNOWN_ORDER, 0, 0},
        {o_buy(S_B1, 8, USD(2, 0), 11, 14), MATCHER_REJ_WINDOW_IN_PAST, 0, 0},
        {o_buy(S_B1, 8, USD(2, 0), 12, 14), MATCHER_OK, 1, 1},
        {c_clock(11), MATCHER_REJ_BAD_CLOCK, 0, 0},
        {c_clock(20), MATCHER_OK, 0, 0},
        {c_cancel(S_P1, 1), MATCHER_REJ_UNKNOWN_ORDER, 0, 0});
    RUN_SCENARIO("validation order",
        {o_buy(S_P1, 8, USD(2, 0), 12, 14), MATCHER_REJ_FORBIDDEN, 0, 0},
        {o_buy(99, 8, USD(2, 0), 12, 14), MATCHER_REJ_UNKNOWN_ACCOUNT, 0, 0},
        {o_buy(S_B1, 12, USD(2, 0), 12, 14), MATCHER_REJ_BAD_QTY, 0, 0},
        {o_buy(S_B1, 8, USD(2, 0) + 1, 12, 14), MATCHER_REJ_BAD_PRICE, 0, 0},
        {o_buy(S_B1, 8, USD(2, 0), 14, 14), MATCHER_REJ_BAD_WINDOW, 0, 0},
        {with_hours(o_buy(S_B1, 8, USD(2, 0), 12, 14), 1), MATCHER_REJ_BAD_MIN_HOURS, 0, 0},
        {with_sp(o_sell(S_P1, 8, USD(2, 0), 12, 14)), MATCHER_REJ_BAD_FLAGS, 0, 0},
        {with_expire(o_buy(S_B1, 8, USD(2, 0), 12, 14), -1), MATCHER_REJ_BAD_EXPIRY, 0, 0},
        {with_expire(o_buy(S_B1, 8, USD(2, 0), 12, 14), 1), MATCHER_OK, 0, 0},
        {o_buy(S_B2, 8, USD(2, 0), 12, 14), MATCHER_REJ_INSUFFICIENT_FUNDS, 0, 0},
        {o_buy(S_B2, 8, USD(0, 50), 12, 13), MATCHER_OK, 0, 0},
        {c_cancel(S_B1, 2), MATCHER_REJ_FORBIDDEN, 0, 0},
        {c_cancel(S_B2, 2), MATCHER_OK, 0, 0},
        {c_replace(S_B1, 1, 0, 0), MATCHER_REJ_BAD_QTY, 0, 0});
    /* two departures the diff test found in the first engine (fixed) */
    RUN_SCENARIO("an offer expired at its end reports 0 remaining",
        {o_sell(S_P1, 8, USD(1, 90), 10, 20), MATCHER_OK, 0, 0},
        {with_expire(o_sell(S_P2, 8, USD(1, 90), 10, 20), 15), MATCHER_OK, 0, 0},
        {c_clock(15), MATCHER_OK, 0, 0},
        {c_clock(20), MATCHER_OK, 0, 0});
    RUN_SCENARIO("single provider min_qty bid: the provider covering it all wins",
        {o_sell(S_P1, 8, USD(1, 90), 10, 20), MATCHER_OK, 0, 0},
        {o_sell(S_P2, 16, USD(1, 95), 10, 20), MATCHER_OK, 0, 0},
        {with_sp(with_min(o_buy(S_B1, 16, USD(2, 0), 12, 16), 8)), MATCHER_OK, 1, 2});
}

/* The fill budget: MATCHER_MAX_FILLS_PER_COMMAND fills at most per command.
 * 4,100 one-GPU offers of one provider; an all-or-none bid for 4,100 needs
 * 4,100 steps, so it fills nothing; a min_qty ioc bid gets exactly 4,096
 * fills and 4 GPUs unfilled; an incoming offer then completes a resting
 * all-or-none bid that needs just the remaining 4 offers plus itself. */
static void test_fill_budget(void **state)
{
    (void)state;
    const int32_t n_offers = MATCHER_MAX_FILLS_PER_COMMAND + 4;
    size_t n = (size_t)n_offers + 8, k = 0;
    scen_step *steps = calloc(n, sizeof *steps);
    assert_non_null(steps);
    for (int32_t i = 0; i < n_offers; i++)
        steps[k++] = (scen_step){o_sell(i % 2 ? S_P1 : S_P2, 1, USD(1, 0), 10, 11), MATCHER_OK, 0, 0};
    size_t light = k;
    uint64_t aon = (uint64_t)n_offers + 1;
    steps[k++] = (scen_step){o_buy(S_B1, n_offers, USD(2, 0), 10, 11), MATCHER_OK, 0, 0};
    steps[k++] = (scen_step){c_cancel(S_B1, aon), MATCHER_OK, 0, 0};
    steps[k++] = (scen_step){with_tif(with_min(o_buy(S_B1, n_offers, USD(2, 0), 10, 11), 1),
                                      MATCHER_IOC), MATCHER_OK, MATCHER_MAX_FILLS_PER_COMMAND, 1};
    steps[k++] = (scen_step){o_buy(S_B1, 5, USD(2, 0), 10, 11), MATCHER_OK, 0, 0};
    steps[k++] = (scen_step){o_sell(S_P1, 1, USD(1, 0), 10, 11), MATCHER_OK, 5, 0};
    run_scenario_ex("fill budget", 1, steps, k, light);
    free(steps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scenarios),
        cmocka_unit_test(test_fill_budget),
        cmocka_unit_test(test_tiny_limits),
        cmocka_unit_test(test_random_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
