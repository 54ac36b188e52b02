/* generate.c — makes a market day (a day file) from a scenario and a seed.
 *
 * The day is a cast of participants (neoclouds of several sizes and price
 * habits, hyperscalers releasing spare fleet, AI labs with big all-or-none
 * bids, startups with small short bids, a reseller) acting hour by hour on
 * the hour grid. Each hour gets a number of actions per kind from integer
 * rates (scenario and hour dependent); the actions get random times inside
 * the hour and are written in time order, each preceded by nothing but the
 * clock advance that opens its hour.
 *
 * Determinism: everything comes from one sim_rng seeded from (scenario,
 * seed); all arithmetic is integer (prices in micros, shaped by basis
 * points), so the same config gives byte-identical output everywhere.
 * The generator runs twice: a counting pass (nothing written) so the
 * header can carry the line, account and order counts that let readers
 * allocate up front, then the writing pass, which replays the same
 * stream. Scenario design and the file format: docs/sim.md. */
#include "sim/sim.h"

#include "gpux_assert.h"

#include <stdlib.h>
#include <string.h>

/* ---- participants ----------------------------------------------------- */

typedef enum agent_kind {
    K_NEOCLOUD, K_HYPERSCALER, K_LAB, K_STARTUP, K_RESELLER, K_COUNT
} agent_kind;

static const char *const kind_names[K_COUNT] = {
    "neocloud", "hyperscaler", "lab", "startup", "reseller",
};

#define RING_LEN 32 /* recent orders an agent may cancel or replace */
#define MAX_AGENTS 512

typedef struct open_ref {
    uint32_t order_no;       /* 1-based: ref "o<order_no>" */
    int32_t market;
    int32_t qty;
    uint8_t side;
    int64_t price_micros;
} open_ref;

typedef struct agent {
    agent_kind kind;
    int32_t size;            /* 1 small .. 3 large */
    int32_t habit_bps;       /* price habit against the reference */
    uint32_t gpu_pref;       /* bit g: trades GPU type g */
    uint32_t region_pref;    /* bit r: in region r */
    char name[SIM_NAME_LEN];
    uint32_t ring_n;
    uint32_t ring_head;
    open_ref ring[RING_LEN];
} agent;

/* ---- actions ---------------------------------------------------------- */

typedef enum action {
    A_NEO_OFFER, A_NEO_REPRICE, A_NEO_CANCEL, A_HYP_OFFER, A_LAB_BID,
    A_LAB_REPRICE, A_START_BID, A_START_CANCEL, A_RES_BID, A_RES_OFFER,
    A_DEPOSIT, A_HYP_BLOCK, A_COUNT
} action;

/* Share of a plain hour's events per action, per mille (sums to 1000). */
static const int32_t base_weight_pm[A_COUNT] = {
    [A_NEO_OFFER] = 190, [A_NEO_REPRICE] = 70, [A_NEO_CANCEL] = 20,
    [A_HYP_OFFER] = 30, [A_LAB_BID] = 90, [A_LAB_REPRICE] = 30,
    [A_START_BID] = 420, [A_START_CANCEL] = 60, [A_RES_BID] = 40,
    [A_RES_OFFER] = 40, [A_DEPOSIT] = 10, [A_HYP_BLOCK] = 0, /* bursts only */
};

/* Demand by hour of day (UTC), per mille: quiet night, busy afternoon. */
static const int32_t diurnal_pm[24] = {
    700, 650, 600, 600, 650, 750, 850, 950, 1000, 1050, 1100, 1150,
    1200, 1250, 1300, 1300, 1300, 1250, 1200, 1100, 1000, 900, 800, 750,
};

/* Region price adjustment, basis points (cheap Nordic power, dear APAC). */
static const int32_t region_bps[SIM_N_REGIONS] = {0, -200, 100, 300, -300, 500};

typedef struct slot {
    uint32_t offset_s;       /* seconds into the hour */
    uint32_t seq;            /* tie-break: generation order */
    uint8_t action;
} slot;

typedef struct gen {
    const sim_gen_config *cfg;
    FILE *out;               /* NULL in the counting pass */
    sim_rng rng;
    agent *agents;
    uint32_t n_agents;
    uint32_t first[K_COUNT]; /* agents of a kind are contiguous */
    uint32_t count[K_COUNT];
    int32_t allowed[SIM_N_MARKETS];
    uint32_t n_allowed;
    slot *slots;
    uint32_t max_slots;
    int64_t now_hour;        /* clock hour */
    int64_t t_s;             /* time of the action being written */
    int32_t day_hour;        /* 0-based hour of the day */
    uint64_t lines;
    uint32_t accounts;
    uint32_t orders;
    bool write_error;
} gen;

static void emit(gen *g, const char *line)
{
    g->lines++;
    if (g->out && fputs(line, g->out) == EOF)
        g->write_error = true;
}

/* ---- scenario shaping ------------------------------------------------- */

static bool is_peak(int32_t day_hour)
{
    return day_hour >= SIM_PEAK_START_HOUR && day_hour < SIM_PEAK_END_HOUR;
}

/* Rate factor (per mille) of action a in hour h for the scenario. */
static int64_t action_factor_pm(const gen *g, action a, int32_t h)
{
    int32_t hod = (int32_t)((g->cfg->start_hour + h) % 24);
    bool demand = a == A_LAB_BID || a == A_LAB_REPRICE || a == A_START_BID ||
                  a == A_START_CANCEL || a == A_RES_BID;
    int64_t f = demand ? diurnal_pm[hod] : 1000;

    switch (g->cfg->scenario) {
    case SIM_SCEN_SURPLUS:
        if (a == A_HYP_OFFER)
            f = h < SIM_SURPLUS_RELEASE_HOUR ? 200 : 4000;
        break;
    case SIM_SCEN_CRUNCH:
        if (is_peak(h) && (a == A_LAB_BID || a == A_START_BID))
            f = f * (a == A_LAB_BID ? 3500 : 2500) / 1000;
        break;
    default:
        break;
    }
    return f;
}

/* Extra hyperscaler blocks released at once in hyperscaler-surplus. */
static uint32_t release_burst(const gen *g, int32_t h)
{
    if (g->cfg->scenario != SIM_SCEN_SURPLUS || h != SIM_SURPLUS_RELEASE_HOUR)
        return 0;
    uint64_t per_hour = g->cfg->events / (uint64_t)g->cfg->hours;
    return (uint32_t)(per_hour / 20 + 8);
}

/* Market-wide price pressure in basis points for GPU type gi in hour h. */
static int32_t pressure_bps(const gen *g, int gi, int32_t h)
{
    int32_t hod = (int32_t)((g->cfg->start_hour + h) % 24);
    int32_t p = (hod >= 12 && hod < 20) ? 200 : 0;
    const char *gpu = sim_gpu(gi)->gpu;
    bool fleet = strcmp(gpu, "H100") == 0 || strcmp(gpu, "H200") == 0 ||
                 strcmp(gpu, "A100") == 0;

    switch (g->cfg->scenario) {
    case SIM_SCEN_SURPLUS:
        if (fleet && h < SIM_SURPLUS_RELEASE_HOUR)
            p += 300;  /* tight before the release */
        else if (fleet)
            p -= h < SIM_SURPLUS_RELEASE_HOUR + 2 ? 700 : 1300;
        break;
    case SIM_SCEN_CRUNCH:
        if (is_peak(h))
            p += 1600;
        else if (h >= SIM_PEAK_START_HOUR - 2 && h < SIM_PEAK_START_HOUR)
            p += 400;
        else if (h >= SIM_PEAK_END_HOUR && h < SIM_PEAK_END_HOUR + 3)
            p += 700;
        break;
    default:
        break;
    }
    return p;
}

/* A price for market m: reference (band middle, region, pressure) moved by
 * adj_bps and a +/-noise_bps draw, clamped near the band, on the tick. */
static int64_t draw_price(gen *g, int32_t m, int32_t adj_bps, int32_t noise_bps)
{
    int gi = m / SIM_N_REGIONS, ri = m % SIM_N_REGIONS;
    const sim_gpu_def *d = sim_gpu(gi);
    int64_t mid = (d->lo_micros + d->hi_micros) / 2;
    int64_t bps = 10000 + region_bps[ri] + pressure_bps(g, gi, g->day_hour) +
                  adj_bps + sim_rng_range(&g->rng, -noise_bps, noise_bps);
    int64_t p = mid * bps / 10000;
    int64_t lo = d->lo_micros * 7 / 10, hi = d->hi_micros * 3 / 2;
    p = p < lo ? lo : p > hi ? hi : p;
    p = (p + SIM_TICK_MICROS / 2) / SIM_TICK_MICROS * SIM_TICK_MICROS;
    GPUX_ASSERT(p > 0 && p % SIM_TICK_MICROS == 0);
    return p;
}

static int32_t draw_qty(gen *g, int32_t lo, int32_t hi)
{
    return (int32_t)sim_rng_range(&g->rng, lo / SIM_LOT, hi / SIM_LOT) * SIM_LOT;
}

/* A market the agent trades, inside the allowed set. */
static int32_t pick_market(gen *g, const agent *a)
{
    for (int tries = 0; tries < 8; tries++) {
        int gi = (int)sim_rng_below(&g->rng, SIM_N_GPUS);
        int ri = (int)sim_rng_below(&g->rng, SIM_N_REGIONS);
        if (!(a->gpu_pref >> gi & 1) || !(a->region_pref >> ri & 1))
            continue;
        int32_t m = gi * SIM_N_REGIONS + ri;
        for (uint32_t i = 0; i < g->n_allowed; i++)
            if (g->allowed[i] == m)
                return m;
    }
    return g->allowed[sim_rng_below(&g->rng, g->n_allowed)];
}

static agent *pick_agent(gen *g, agent_kind k)
{
    GPUX_ASSERT(g->count[k] > 0);
    return &g->agents[g->first[k] + sim_rng_below(&g->rng, g->count[k])];
}

/* ---- writing lines ---------------------------------------------------- */

static void emit_clock(gen *g, int64_t hour)
{
    char line[SIM_MAX_LINE], hb[SIM_HOUR_LEN];
    snprintf(line, sizeof(line), "{\"t\":%lld,\"op\":\"clock\",\"hour\":\"%s\"}\n",
             (long long)g->t_s, sim_fmt_hour(hour, hb));
    g->now_hour = hour;
    emit(g, line);
}

static void emit_deposit(gen *g, const agent *a, int64_t amount_micros)
{
    char line[SIM_MAX_LINE], mb[SIM_MONEY_LEN];
    snprintf(line, sizeof(line),
             "{\"t\":%lld,\"op\":\"deposit\",\"account\":\"%s\",\"amount\":\"%s\"}\n",
             (long long)g->t_s, a->name, sim_fmt_micros(amount_micros, mb));
    emit(g, line);
}

typedef struct order_spec {
    uint8_t side;
    uint8_t tif;
    bool single_provider;
    int32_t market;
    int32_t qty;
    int32_t min_qty;
    int32_t min_hours;
    int64_t price_micros;
    int64_t start_hour;
    int64_t end_hour;
    int64_t expire_at_hour;
} order_spec;

static const char *const tif_names[4] = {"gtc", "ioc", "fok", "post_only"};

static void remember(agent *a, uint32_t order_no, const order_spec *o)
{
    open_ref *r = &a->ring[a->ring_head];
    *r = (open_ref){order_no, o->market, o->qty, o->side, o->price_micros};
    a->ring_head = (a->ring_head + 1) % RING_LEN;
    if (a->ring_n < RING_LEN)
        a->ring_n++;
}

static void emit_order(gen *g, agent *a, const order_spec *o)
{
    char line[SIM_MAX_LINE], pb[SIM_MONEY_LEN], sb[SIM_HOUR_LEN],
        eb[SIM_HOUR_LEN], xb[SIM_HOUR_LEN];
    int m = o->market;
    uint32_t order_no = ++g->orders;
    int n = snprintf(line, sizeof(line),
        "{\"t\":%lld,\"op\":\"order\",\"account\":\"%s\",\"ref\":\"o%u\","
        "\"side\":\"%s\",\"gpu\":\"%s\",\"region\":\"%s\",\"start\":\"%s\","
        "\"end\":\"%s\",\"qty\":%d,\"price\":\"%s\",\"tif\":\"%s\"",
        (long long)g->t_s, a->name, order_no,
        o->side == SIM_BUY ? "buy" : "sell", sim_gpu(m / SIM_N_REGIONS)->gpu,
        sim_region(m % SIM_N_REGIONS), sim_fmt_hour(o->start_hour, sb),
        sim_fmt_hour(o->end_hour, eb), o->qty, sim_fmt_micros(o->price_micros, pb),
        tif_names[o->tif]);
    if (o->min_qty > 0)
        n += snprintf(line + n, sizeof(line) - (size_t)n, ",\"min_qty\":%d", o->min_qty);
    if (o->min_hours > 0)
        n += snprintf(line + n, sizeof(line) - (size_t)n, ",\"min_hours\":%d", o->min_hours);
    if (o->single_provider)
        n += snprintf(line + n, sizeof(line) - (size_t)n, ",\"single_provider\":true");
    if (o->expire_at_hour > 0)
        n += snprintf(line + n, sizeof(line) - (size_t)n, ",\"expire_at\":\"%s\"",
                      sim_fmt_hour(o->expire_at_hour, xb));
    GPUX_ASSERT(n > 0 && (size_t)n + 3 < sizeof(line));
    memcpy(line + n, "}\n", 3);
    emit(g, line);
    if (o->tif == SIM_GTC)
        remember(a, order_no, o);
}

/* Takes a random remembered order of a out of its ring (0 when none). */
static bool take_ref(gen *g, agent *a, open_ref *out)
{
    if (a->ring_n == 0)
        return false;
    uint32_t i = (uint32_t)sim_rng_below(&g->rng, a->ring_n);
    uint32_t oldest = (a->ring_head + RING_LEN - a->ring_n) % RING_LEN;
    uint32_t pos = (oldest + i) % RING_LEN;
    *out = a->ring[pos];
    /* close the gap: move the oldest into pos, drop the oldest */
    a->ring[pos] = a->ring[oldest];
    a->ring_n--;
    return true;
}

static void emit_cancel(gen *g, agent *a)
{
    open_ref r;
    if (!take_ref(g, a, &r))
        return;
    char line[SIM_MAX_LINE];
    snprintf(line, sizeof(line),
             "{\"t\":%lld,\"op\":\"cancel\",\"account\":\"%s\",\"ref\":\"o%u\"}\n",
             (long long)g->t_s, a->name, r.order_no);
    emit(g, line);
}

/* Moves a remembered order's price by move_bps (and sometimes lowers its
 * qty, which keeps priority); the order stays remembered. */
static void emit_replace(gen *g, agent *a, int32_t move_lo_bps, int32_t move_hi_bps)
{
    open_ref r;
    if (!take_ref(g, a, &r))
        return;
    char line[SIM_MAX_LINE], pb[SIM_MONEY_LEN];
    int64_t bps = 10000 + sim_rng_range(&g->rng, move_lo_bps, move_hi_bps);
    int64_t p = r.price_micros * bps / 10000;
    p = (p + SIM_TICK_MICROS / 2) / SIM_TICK_MICROS * SIM_TICK_MICROS;
    if (p <= 0 || p > 1000 * 1000000LL)
        p = r.price_micros;
    int n = snprintf(line, sizeof(line),
                     "{\"t\":%lld,\"op\":\"replace\",\"account\":\"%s\",\"ref\":\"o%u\"",
                     (long long)g->t_s, a->name, r.order_no);
    if (r.qty > SIM_LOT && sim_rng_chance(&g->rng, 200)) {
        r.qty -= SIM_LOT * (int32_t)sim_rng_range(&g->rng, 1, (r.qty - 1) / SIM_LOT);
        n += snprintf(line + n, sizeof(line) - (size_t)n, ",\"qty\":%d", r.qty);
    } else {
        if (p == r.price_micros)
            p += SIM_TICK_MICROS;
        r.price_micros = p;
        n += snprintf(line + n, sizeof(line) - (size_t)n, ",\"price\":\"%s\"",
                      sim_fmt_micros(p, pb));
    }
    GPUX_ASSERT(n > 0 && (size_t)n + 3 < sizeof(line));
    memcpy(line + n, "}\n", 3);
    emit(g, line);
    order_spec o = {.market = r.market, .qty = r.qty, .side = r.side,
                    .price_micros = r.price_micros};
    remember(a, r.order_no, &o);
}

/* ---- actions ---------------------------------------------------------- */

static void act_neo_offer(gen *g)
{
    agent *a = pick_agent(g, K_NEOCLOUD);
    static const int32_t qlo[4] = {0, 16, 64, 128}, qhi[4] = {0, 64, 192, 512};
    order_spec o = {.side = SIM_SELL, .tif = SIM_GTC};
    o.market = pick_market(g, a);
    o.qty = draw_qty(g, qlo[a->size], qhi[a->size]);
    o.start_hour = g->now_hour + sim_rng_range(&g->rng, 1, 3);
    o.end_hour = o.start_hour + sim_rng_range(&g->rng, 12, 72);
    o.price_micros = draw_price(g, o.market, 300 + a->habit_bps, 300);
    if (sim_rng_chance(&g->rng, 300))
        o.min_hours = (int32_t)sim_rng_range(&g->rng, 2, 6);
    if (sim_rng_chance(&g->rng, 150))
        o.min_qty = SIM_LOT * (int32_t)sim_rng_range(&g->rng, 1, 2);
    if (sim_rng_chance(&g->rng, 50))
        o.tif = SIM_POST_ONLY;
    emit_order(g, a, &o);
}

static void act_hyp_offer(gen *g, bool surplus_block)
{
    agent *a = pick_agent(g, K_HYPERSCALER);
    order_spec o = {.side = SIM_SELL, .tif = SIM_GTC};
    o.market = pick_market(g, a);
    o.qty = surplus_block ? draw_qty(g, 512, 2048) : draw_qty(g, 256, 1024);
    o.start_hour = g->now_hour + sim_rng_range(&g->rng, 1, 2);
    o.end_hour = o.start_hour + sim_rng_range(&g->rng, 24, 96);
    /* spare fleet is priced to sell, well under list, near the market */
    o.price_micros = draw_price(g, o.market, surplus_block ? -900 : -200, 250);
    if (sim_rng_chance(&g->rng, 400))
        o.min_qty = 2 * SIM_LOT;
    emit_order(g, a, &o);
}

static void act_lab_bid(gen *g)
{
    agent *a = pick_agent(g, K_LAB);
    bool peak = g->cfg->scenario == SIM_SCEN_CRUNCH && is_peak(g->day_hour);
    order_spec o = {.side = SIM_BUY, .tif = SIM_GTC};
    o.market = pick_market(g, a);
    o.qty = draw_qty(g, 64, peak ? 768 : 512);
    /* peak demand wants capacity now; planned training runs book ahead */
    o.start_hour = g->now_hour + (peak ? sim_rng_range(&g->rng, 1, 3)
                                       : sim_rng_range(&g->rng, 2, 8));
    o.end_hour = o.start_hour + sim_rng_range(&g->rng, 8, 24);
    o.price_micros = draw_price(g, o.market, a->habit_bps, 300);
    o.single_provider = sim_rng_chance(&g->rng, 500);
    if (sim_rng_chance(&g->rng, 100))
        o.tif = SIM_FOK;
    emit_order(g, a, &o);
}

static void act_start_bid(gen *g)
{
    agent *a = pick_agent(g, K_STARTUP);
    order_spec o = {.side = SIM_BUY, .tif = SIM_GTC};
    o.market = pick_market(g, a);
    o.qty = draw_qty(g, 8, 32);
    o.start_hour = g->now_hour + sim_rng_range(&g->rng, 1, 3);
    o.end_hour = o.start_hour + sim_rng_range(&g->rng, 1, 6);
    o.price_micros = draw_price(g, o.market, a->habit_bps, 400);
    if (sim_rng_chance(&g->rng, 400))
        o.min_qty = SIM_LOT;
    if (sim_rng_chance(&g->rng, 150))
        o.tif = SIM_IOC;
    else if (o.start_hour > g->now_hour + 1 && sim_rng_chance(&g->rng, 100))
        o.expire_at_hour = g->now_hour + 1;
    emit_order(g, a, &o);
}

static void act_res_bid(gen *g)
{
    agent *a = pick_agent(g, K_RESELLER);
    order_spec o = {.side = SIM_BUY, .tif = SIM_GTC, .min_qty = SIM_LOT};
    o.market = pick_market(g, a);
    o.qty = draw_qty(g, 32, 128);
    o.start_hour = g->now_hour + sim_rng_range(&g->rng, 2, 4);
    o.end_hour = o.start_hour + sim_rng_range(&g->rng, 12, 24);
    o.price_micros = draw_price(g, o.market, a->habit_bps - 300, 300);
    emit_order(g, a, &o);
}

static void act_res_offer(gen *g)
{
    agent *a = pick_agent(g, K_RESELLER);
    order_spec o = {.side = SIM_SELL, .tif = SIM_GTC};
    o.market = pick_market(g, a);
    o.qty = draw_qty(g, 16, 64);
    o.start_hour = g->now_hour + sim_rng_range(&g->rng, 2, 6);
    o.end_hour = o.start_hour + sim_rng_range(&g->rng, 4, 12);
    o.price_micros = draw_price(g, o.market, a->habit_bps + 500, 300);
    emit_order(g, a, &o);
}

static void act_deposit(gen *g)
{
    agent *a = pick_agent(g, sim_rng_chance(&g->rng, 500) ? K_LAB : K_STARTUP);
    emit_deposit(g, a, sim_rng_range(&g->rng, 1, 50) * 100000 * 1000000LL);
}

static void run_action(gen *g, action a)
{
    switch (a) {
    case A_NEO_OFFER: act_neo_offer(g); break;
    case A_NEO_REPRICE: emit_replace(g, pick_agent(g, K_NEOCLOUD), -250, 50); break;
    case A_NEO_CANCEL: emit_cancel(g, pick_agent(g, K_NEOCLOUD)); break;
    case A_HYP_OFFER: act_hyp_offer(g, false); break;
    case A_LAB_BID: act_lab_bid(g); break;
    case A_LAB_REPRICE: emit_replace(g, pick_agent(g, K_LAB), 50, 400); break;
    case A_START_BID: act_start_bid(g); break;
    case A_START_CANCEL: emit_cancel(g, pick_agent(g, K_STARTUP)); break;
    case A_RES_BID: act_res_bid(g); break;
    case A_RES_OFFER: act_res_offer(g); break;
    case A_DEPOSIT: act_deposit(g); break;
    case A_HYP_BLOCK: act_hyp_offer(g, true); break;
    default: GPUX_ASSERT(0);
    }
}

/* ---- the cast --------------------------------------------------------- */

/* k distinct random bits out of n. */
static uint32_t pick_bits(gen *g, int n, int k)
{
    uint32_t bits = 0;
    for (int placed = 0, guard = 0; placed < k && guard < 64; guard++) {
        uint32_t b = 1u << sim_rng_below(&g->rng, (uint64_t)n);
        if (!(bits & b)) {
            bits |= b;
            placed++;
        }
    }
    return bits;
}

static uint32_t gpu_bits(const char *const *names, int n)
{
    uint32_t bits = 0;
    for (int i = 0; i < n; i++)
        bits |= 1u << sim_gpu_find(names[i]);
    return bits;
}

static void add_agent(gen *g, agent_kind k, int32_t size, int32_t habit_bps,
                      uint32_t gpu_pref, uint32_t region_pref)
{
    GPUX_ASSERT(g->n_agents < MAX_AGENTS);
    agent *a = &g->agents[g->n_agents++];
    memset(a, 0, sizeof(*a));
    a->kind = k;
    a->size = size;
    a->habit_bps = habit_bps;
    a->gpu_pref = gpu_pref;
    a->region_pref = region_pref;
    g->count[k]++;
    snprintf(a->name, sizeof(a->name), "%s-%u", kind_names[k], g->count[k]);
}

static uint32_t startup_count(const sim_gen_config *cfg)
{
    uint64_t n = cfg->events / 1500;
    return (uint32_t)(n < 8 ? 8 : n > 400 ? 400 : n);
}

static void make_cast(gen *g)
{
    static const int32_t neo_size[6] = {3, 3, 2, 2, 1, 1};
    static const int32_t neo_habit[6] = {100, 700, 0, -500, 400, -300};
    static const char *const fleet1[] = {"H100", "H200", "A100"};
    static const char *const fleet2[] = {"H100", "B200", "A100"};
    static const char *const frontier[] = {"H100", "H200", "B200"};
    const uint32_t all_gpus = (1u << SIM_N_GPUS) - 1;
    const uint32_t all_regions = (1u << SIM_N_REGIONS) - 1;

    g->first[K_NEOCLOUD] = g->n_agents;
    for (int i = 0; i < 6; i++)
        add_agent(g, K_NEOCLOUD, neo_size[i], neo_habit[i],
                  pick_bits(g, SIM_N_GPUS, 3), pick_bits(g, SIM_N_REGIONS, 3));
    g->first[K_HYPERSCALER] = g->n_agents;
    add_agent(g, K_HYPERSCALER, 3, 0, gpu_bits(fleet1, 3), all_regions);
    add_agent(g, K_HYPERSCALER, 3, 0, gpu_bits(fleet2, 3), all_regions);
    g->first[K_LAB] = g->n_agents;
    for (int i = 0; i < 4; i++)
        add_agent(g, K_LAB, 3, (int32_t)sim_rng_range(&g->rng, 200, 500),
                  gpu_bits(frontier, 3) | (i == 3 ? 1u << sim_gpu_find("MI300X") : 0),
                  pick_bits(g, SIM_N_REGIONS, 3));
    g->first[K_STARTUP] = g->n_agents;
    uint32_t ns = startup_count(g->cfg);
    for (uint32_t i = 0; i < ns; i++)
        add_agent(g, K_STARTUP, 1, (int32_t)sim_rng_range(&g->rng, -600, 0),
                  pick_bits(g, SIM_N_GPUS, 3), pick_bits(g, SIM_N_REGIONS, 2));
    g->first[K_RESELLER] = g->n_agents;
    add_agent(g, K_RESELLER, 2, 0, all_gpus, all_regions);
}

static void emit_cast(gen *g)
{
    char line[SIM_MAX_LINE];
    for (uint32_t i = 0; i < g->n_agents; i++) {
        const agent *a = &g->agents[i];
        const char *roles = a->kind == K_NEOCLOUD || a->kind == K_HYPERSCALER
                                ? "\"provider\""
                                : a->kind == K_RESELLER ? "\"buyer\",\"provider\""
                                                        : "\"buyer\"";
        snprintf(line, sizeof(line),
                 "{\"t\":%lld,\"op\":\"account\",\"account\":\"%s\",\"kind\":\"%s\","
                 "\"roles\":[%s]}\n",
                 (long long)g->t_s, a->name, kind_names[a->kind], roles);
        emit(g, line);
        g->accounts++;
    }
    /* buyers get funds for their holds: labs and the reseller a lot */
    for (uint32_t i = 0; i < g->n_agents; i++) {
        const agent *a = &g->agents[i];
        if (a->kind == K_LAB)
            emit_deposit(g, a, 1000000000LL * 1000000);
        else if (a->kind == K_RESELLER)
            emit_deposit(g, a, 500000000LL * 1000000);
        else if (a->kind == K_STARTUP)
            emit_deposit(g, a, 20000000LL * 1000000);
    }
}

/* ---- the day ---------------------------------------------------------- */

/* Number of actions per kind in hour h; carry keeps the fractions so
 * small days still get their share. Returns the total. */
static uint32_t plan_hour(const gen *g, int32_t h, int64_t carry[A_COUNT],
                          uint32_t n[A_COUNT])
{
    int64_t base = (int64_t)(g->cfg->events / (uint64_t)g->cfg->hours);
    uint32_t total = 0;
    for (int a = 0; a < A_COUNT; a++) {
        carry[a] += base * base_weight_pm[a] * action_factor_pm(g, (action)a, h);
        n[a] = (uint32_t)(carry[a] / 1000000);
        carry[a] %= 1000000;
        total += n[a];
    }
    n[A_HYP_BLOCK] += release_burst(g, h);
    return total + release_burst(g, h);
}

static int cmp_slot(const void *pa, const void *pb)
{
    const slot *a = pa, *b = pb;
    if (a->offset_s != b->offset_s)
        return a->offset_s < b->offset_s ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void run_hour(gen *g, int32_t h, int64_t carry[A_COUNT])
{
    uint32_t n[A_COUNT], total = plan_hour(g, h, carry, n), k = 0;
    GPUX_ASSERT(total <= g->max_slots);
    g->day_hour = h;
    g->t_s = (int64_t)h * 3600;
    if (h > 0) /* hour 0's clock opens the file, before the cast */
        emit_clock(g, g->cfg->start_hour + h);
    for (int a = 0; a < A_COUNT; a++)
        for (uint32_t i = 0; i < n[a]; i++, k++)
            g->slots[k] = (slot){(uint32_t)sim_rng_below(&g->rng, 3600), k, (uint8_t)a};
    qsort(g->slots, total, sizeof(slot), cmp_slot);
    for (uint32_t i = 0; i < total; i++) {
        g->t_s = (int64_t)h * 3600 + g->slots[i].offset_s;
        run_action(g, (action)g->slots[i].action);
    }
}

static uint32_t max_hour_actions(const gen *g)
{
    int64_t carry[A_COUNT] = {0};
    uint32_t n[A_COUNT], most = 1;
    for (int32_t h = 0; h < g->cfg->hours; h++) {
        uint32_t t = plan_hour(g, h, carry, n);
        most = t > most ? t : most;
    }
    return most;
}

/* One full pass over the day; writes when g->out is set. */
static void run_day(gen *g)
{
    int64_t carry[A_COUNT] = {0};
    sim_rng_seed(&g->rng, g->cfg->seed * 0x9e3779b97f4a7c15ULL +
                              (uint64_t)g->cfg->scenario);
    g->n_agents = 0;
    memset(g->count, 0, sizeof(g->count));
    g->lines = 0;
    g->accounts = 0;
    g->orders = 0;
    g->t_s = 0;
    make_cast(g);
    emit_clock(g, g->cfg->start_hour);
    emit_cast(g);
    for (int32_t h = 0; h < g->cfg->hours; h++)
        run_hour(g, h, carry);
    g->t_s = (int64_t)g->cfg->hours * 3600;
    emit_clock(g, g->cfg->start_hour + g->cfg->hours);
}

/* ---- public ----------------------------------------------------------- */

static const char *const scenario_names[SIM_SCEN_COUNT] = {
    "baseline", "hyperscaler-surplus", "peak-crunch",
};

int sim_scenario_find(const char *name)
{
    for (int i = 0; i < SIM_SCEN_COUNT; i++)
        if (strcmp(scenario_names[i], name) == 0)
            return i;
    return -1;
}

const char *sim_scenario_name(sim_scenario s)
{
    return (unsigned)s < SIM_SCEN_COUNT ? scenario_names[s] : "unknown";
}

void sim_gen_config_default(sim_gen_config *cfg)
{
    int64_t h;
    memset(cfg, 0, sizeof(*cfg));
    cfg->scenario = SIM_SCEN_BASELINE;
    cfg->seed = 1;
    cfg->events = 30000;
    int parsed = sim_parse_hour("2026-12-01T00:00:00Z", &h);
    GPUX_ASSERT(parsed == 0);
    cfg->start_hour = h;
    cfg->hours = 24;
    cfg->market_mask = 0;
}

static int add_market_item(const char *item, uint64_t *mask, char *err,
                           size_t errlen)
{
    char gpu[SIM_ID_LEN] = "", region[SIM_ID_LEN] = "";
    const char *slash = strchr(item, '/');
    size_t glen = slash ? (size_t)(slash - item) : strlen(item);
    if (glen == 0 || glen >= sizeof(gpu) ||
        (slash && (strlen(slash + 1) == 0 || strlen(slash + 1) >= sizeof(region)))) {
        snprintf(err, errlen, "--markets: '%s' is not GPU, GPU/REGION or */REGION", item);
        return -1;
    }
    memcpy(gpu, item, glen);
    if (slash)
        strcpy(region, slash + 1);
    int gi = strcmp(gpu, "*") == 0 ? -1 : sim_gpu_find(gpu);
    int ri = slash ? sim_region_find(region) : -1;
    if ((gi < 0 && strcmp(gpu, "*") != 0) || (slash && ri < 0) || (gi < 0 && !slash)) {
        snprintf(err, errlen, "--markets: unknown market '%s' (GPUs H100 H200 B200 "
                 "A100 MI300X L40S, regions us-east us-central us-west eu-west "
                 "eu-north apac)", item);
        return -1;
    }
    for (int g = 0; g < SIM_N_GPUS; g++)
        for (int r = 0; r < SIM_N_REGIONS; r++)
            if ((gi < 0 || gi == g) && (ri < 0 || ri == r))
                *mask |= 1ull << (g * SIM_N_REGIONS + r);
    return 0;
}

int sim_markets_parse(const char *list, uint64_t *mask, char *err, size_t errlen)
{
    char item[64];
    const char *p = list;
    *mask = 0;
    for (int guard = 0; guard <= SIM_N_MARKETS; guard++) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 0 || n >= sizeof(item)) {
            snprintf(err, errlen, "--markets: empty or too long item in '%s'", list);
            return -1;
        }
        memcpy(item, p, n);
        item[n] = '\0';
        if (add_market_item(item, mask, err, errlen) != 0)
            return -1;
        if (!comma)
            return 0;
        p = comma + 1;
    }
    snprintf(err, errlen, "--markets: more than %d items", SIM_N_MARKETS);
    return -1;
}

static int check_config(const sim_gen_config *cfg, char *err, size_t errlen)
{
    if ((unsigned)cfg->scenario >= SIM_SCEN_COUNT) {
        snprintf(err, errlen, "unknown scenario");
        return -1;
    }
    if (cfg->hours < 1 || cfg->hours > SIM_MAX_HOURS) {
        snprintf(err, errlen, "hours must be 1..%d", SIM_MAX_HOURS);
        return -1;
    }
    if (cfg->events < 100 || cfg->events > SIM_MAX_EVENTS / 2) {
        snprintf(err, errlen, "events must be 100..%llu",
                 (unsigned long long)(SIM_MAX_EVENTS / 2));
        return -1;
    }
    /* every hour written must print as a 4-digit-year RFC 3339 time; orders
     * reach at most 8 + 96 hours past the day's end */
    int64_t last;
    int parsed = sim_parse_hour("9999-12-31T23:00:00Z", &last);
    GPUX_ASSERT(parsed == 0);
    if (cfg->start_hour < 0 || cfg->start_hour > last - cfg->hours - 256) {
        snprintf(err, errlen, "start hour out of range (1970 .. 9999)");
        return -1;
    }
    if (cfg->market_mask >> SIM_N_MARKETS) {
        snprintf(err, errlen, "market mask names unknown markets");
        return -1;
    }
    return 0;
}

static void write_header(gen *g, sim_day_header *hdr)
{
    char hb[SIM_HOUR_LEN];
    memset(hdr, 0, sizeof(*hdr));
    hdr->version = SIM_DAYFILE_VERSION;
    snprintf(hdr->scenario, sizeof(hdr->scenario), "%s",
             sim_scenario_name(g->cfg->scenario));
    hdr->seed = g->cfg->seed;
    hdr->start_hour = g->cfg->start_hour;
    hdr->hours = g->cfg->hours;
    hdr->events = g->lines;
    hdr->accounts = g->accounts;
    hdr->orders = g->orders;
    if (fprintf(g->out, "{\"gpux_day\":%d,\"scenario\":\"%s\",\"seed\":%llu,"
                "\"start\":\"%s\",\"hours\":%d,\"events\":%llu,\"accounts\":%u,"
                "\"orders\":%u}\n", hdr->version, hdr->scenario,
                (unsigned long long)hdr->seed, sim_fmt_hour(hdr->start_hour, hb),
                hdr->hours, (unsigned long long)hdr->events, hdr->accounts,
                hdr->orders) < 0)
        g->write_error = true;
}

int sim_generate(const sim_gen_config *cfg, FILE *out, sim_day_header *hdr,
                 char *err, size_t errlen)
{
    sim_day_header local;
    gen g;
    if (check_config(cfg, err, errlen) != 0)
        return -1;
    memset(&g, 0, sizeof(g));
    g.cfg = cfg;
    for (int m = 0; m < SIM_N_MARKETS; m++)
        if (cfg->market_mask == 0 || (cfg->market_mask >> m & 1))
            g.allowed[g.n_allowed++] = m;
    g.max_slots = max_hour_actions(&g);
    g.agents = calloc(MAX_AGENTS, sizeof(agent));
    g.slots = calloc(g.max_slots, sizeof(slot));
    if (!g.agents || !g.slots) {
        free(g.agents);
        free(g.slots);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    run_day(&g); /* counting pass */
    g.out = out;
    write_header(&g, hdr ? hdr : &local);
    uint64_t counted = g.lines;
    run_day(&g); /* writing pass: the same stream */
    GPUX_ASSERT(g.lines == counted);
    free(g.agents);
    free(g.slots);
    if (g.write_error || fflush(out) != 0) {
        snprintf(err, errlen, "write failed");
        return -1;
    }
    return 0;
}
