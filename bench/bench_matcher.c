/* bench_matcher.c — in-process benchmarks of the matching engine
 * (matcher/matcher.h), no I/O:
 *
 *   matcher_classic  the exchange-core mix on one market and one window:
 *                    9% gtc, 3% ioc, 6% cancel, 82% replace (price move),
 *                    ~1,000 resting orders over ~750 ticks, 1,000 accounts,
 *                    3M commands.
 *   matcher_gpu      200 markets, windows of 1 h to 8760 h, 20% of bids
 *                    all-or-none, offers with min_qty/min_hours, cancels,
 *                    replaces, clock advances, 1M resting orders at peak.
 *
 * Why three passes over one stream. A benchmark that generates commands
 * while it times them measures its generator; one that sends cancels for
 * orders that already traded measures rejections. So each bench:
 *   1. generate (untimed): a seeded PRNG builds every command against a
 *      shadow engine; the shadow's events tell the generator which orders
 *      rest (ids, sides, prices), so cancels and replaces hit live orders;
 *   2. throughput: a fresh engine replays the stream in a tight loop with
 *      no clock reads inside it: ops_per_s = commands / elapsed;
 *   3. latency: another fresh engine replays it with a CLOCK_MONOTONIC read
 *      before and after each matcher_apply, into a preallocated array.
 * The engine is deterministic, so both replays must end with the shadow's
 * state hash, trade count and event count; a mismatch fails the program
 * (the figures would describe some other run).
 *
 * Output: one "bench <name> <key>=<number> ..." line per bench on stdout
 * (../shared/spec/operations.md "Benchmarks"); progress goes to stderr.
 * Figures and method: docs/benchmarks.md. */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpux_assert.h"
#include "matcher/matcher.h"

/* ---- limits ------------------------------------------------------------ */

#define BENCH_MAX_COMMANDS (20u * 1000u * 1000u) /* any one stream */
#define BENCH_SIGNAL_EVERY 65536u   /* commands between SIGTERM checks */
#define BENCH_PROGRESS_EVERY 500000u
#define BENCH_TIMER_PROBES 200000u  /* clock_gettime pairs to size the overhead */
#define BENCH_TS_BASE_US 1790000000000000LL /* command timestamps start here */
#define BENCH_T0_HOUR 491000LL      /* the clock's hour when orders start (2026) */

_Static_assert(BENCH_SIGNAL_EVERY && !(BENCH_SIGNAL_EVERY & (BENCH_SIGNAL_EVERY - 1)),
               "BENCH_SIGNAL_EVERY must be a power of two");

static volatile sig_atomic_t bench_stop;

static void on_signal(int sig)
{
    (void)sig;
    bench_stop = 1;
}

/* ---- small helpers ----------------------------------------------------- */

static uint64_t cpu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Resident set size of this process in kB (from /proc/self/status), or 0
 * when it cannot be read (the figure is then reported as 0). */
static int64_t rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    int64_t kb = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtoll(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb > 0 ? kb : 0;
}

static void *xcalloc(size_t n, size_t size, const char *what)
{
    void *p = calloc(n, size);
    if (!p) {
        fprintf(stderr, "bench_matcher: out of memory for %s (%zu x %zu bytes)\n",
                what, n, size);
        exit(1);
    }
    return p;
}

/* splitmix64: tiny, fast, seeded, the same stream on every machine. */
typedef struct bench_rng {
    uint64_t s;
} bench_rng;

static uint64_t rng_next(bench_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi] (the modulo bias is far below what matters here). */
static int64_t rng_range(bench_rng *r, int64_t lo, int64_t hi)
{
    GPUX_ASSERT(lo <= hi);
    return lo + (int64_t)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

static bool rng_pct(bench_rng *r, uint32_t pct)
{
    return rng_next(r) % 100u < pct;
}

/* Skewed towards lo: most values near lo, a tail up to hi (quadratic). */
static int64_t rng_skewed(bench_rng *r, int64_t lo, int64_t hi)
{
    uint64_t u = rng_next(r) % 1024u;
    return lo + (int64_t)((u * u * (uint64_t)(hi - lo)) >> 20);
}

/* ---- command kinds (for per-type latency) ----------------------------- */

typedef enum bench_kind {
    KIND_SETUP = 0, /* accounts, deposits, pre-fill: applied, never timed */
    KIND_GTC,
    KIND_IOC_BUY,   /* ioc bid priced through the mid */
    KIND_IOC_SELL,  /* ioc offer priced through the mid */
    KIND_AON,       /* all-or-none gtc bid (rests) */
    KIND_FOK,       /* all-or-none fok bid priced through the mid */
    KIND_CANCEL,
    KIND_REPLACE,
    KIND_CLOCK,
    KIND_COUNT
} bench_kind;

static const char *const kind_names[KIND_COUNT] = {
    [KIND_SETUP] = "setup",   [KIND_GTC] = "gtc",       [KIND_IOC_BUY] = "ioc_buy",
    [KIND_IOC_SELL] = "ioc_sell", [KIND_AON] = "aon",   [KIND_FOK] = "fok",
    [KIND_CANCEL] = "cancel", [KIND_REPLACE] = "replace",
    [KIND_CLOCK] = "clock",
};

/* ---- the command stream ------------------------------------------------ */

/* Setup commands first ([0, n_setup)), then the timed ones. */
typedef struct bench_stream {
    matcher_cmd *cmds;
    uint8_t *kinds;
    uint32_t n;
    uint32_t n_setup;
    uint32_t cap;
    uint32_t split;     /* timed index where phase 2 starts (= n when none) */
} bench_stream;

static void stream_init(bench_stream *s, uint32_t cap)
{
    GPUX_ASSERT(cap > 0 && cap <= BENCH_MAX_COMMANDS);
    memset(s, 0, sizeof *s);
    s->cmds = xcalloc(cap, sizeof *s->cmds, "command stream");
    s->kinds = xcalloc(cap, sizeof *s->kinds, "command kinds");
    s->cap = cap;
}

static void stream_free(bench_stream *s)
{
    free(s->cmds);
    free(s->kinds);
    memset(s, 0, sizeof *s);
}

/* ---- the generator's view of the book (fed by shadow-engine events) ---- */

typedef struct bench_order {
    uint64_t order_id;
    int64_t price_micros;
    int64_t start_hour;
    int64_t end_hour;
    uint32_t account;
    uint32_t market;
    int32_t qty;
    uint8_t side;
    uint8_t tif;
} bench_order;

/* Resting orders as a dense array (random pick in O(1)) plus an id index.
 * Order ids are consecutive from the engine's first id, at most one per
 * command, so the index is a flat array over [first_id, first_id + cap). */
typedef struct bench_book {
    bench_order *orders;
    uint32_t n;
    uint32_t cap;
    uint32_t peak;
    uint32_t *slot_of;          /* id - first_id -> slot + 1, 0 = not resting */
    uint64_t first_id;
    uint64_t n_ids;
    uint64_t events;
    uint64_t trades;
    uint64_t rejects;
    uint64_t reject_by[MATCHER_REASON_COUNT];
    bool broken;                /* an event contradicted the index */
} bench_book;

static void book_init(bench_book *b, uint32_t cap, uint64_t first_id, uint64_t n_ids)
{
    memset(b, 0, sizeof *b);
    b->orders = xcalloc(cap, sizeof *b->orders, "order index");
    b->slot_of = xcalloc(n_ids, sizeof *b->slot_of, "order id index");
    b->cap = cap;
    b->first_id = first_id;
    b->n_ids = n_ids;
}

static void book_free(bench_book *b)
{
    free(b->orders);
    free(b->slot_of);
    memset(b, 0, sizeof *b);
}

static uint32_t *book_slot_ref(bench_book *b, uint64_t id)
{
    if (id < b->first_id || id - b->first_id >= b->n_ids) {
        b->broken = true;
        return NULL;
    }
    return &b->slot_of[id - b->first_id];
}

static void book_put(bench_book *b, const matcher_order_info *o)
{
    uint32_t *ref = book_slot_ref(b, o->order_id);
    if (!ref || *ref != 0 || b->n == b->cap) {
        b->broken = true;
        return;
    }
    bench_order *x = &b->orders[b->n];
    x->order_id = o->order_id;
    x->price_micros = o->price_micros;
    x->start_hour = o->start_hour;
    x->end_hour = o->end_hour;
    x->account = o->account;
    x->market = o->market;
    x->qty = o->qty;
    x->side = o->side;
    x->tif = o->tif;
    *ref = ++b->n;
    if (b->n > b->peak)
        b->peak = b->n;
}

static void book_update(bench_book *b, const matcher_order_info *o)
{
    uint32_t *ref = book_slot_ref(b, o->order_id);
    if (!ref || *ref == 0) {
        b->broken = true;
        return;
    }
    bench_order *x = &b->orders[*ref - 1];
    x->price_micros = o->price_micros;
    x->qty = o->qty;
}

static void book_drop(bench_book *b, uint64_t id)
{
    uint32_t *ref = book_slot_ref(b, id);
    if (!ref || *ref == 0) {
        b->broken = true;
        return;
    }
    uint32_t slot = *ref - 1;
    *ref = 0;
    b->n--;
    if (slot != b->n) {
        b->orders[slot] = b->orders[b->n];
        b->slot_of[b->orders[slot].order_id - b->first_id] = slot + 1;
    }
}

static void book_emit(void *ctx, const matcher_event *ev)
{
    bench_book *b = ctx;
    b->events++;
    switch (ev->type) {
    case MATCHER_EV_ACCEPTED: book_put(b, &ev->u.order); break;
    case MATCHER_EV_REPLACED: book_update(b, &ev->u.order); break;
    case MATCHER_EV_DONE: book_drop(b, ev->u.done.order_id); break;
    case MATCHER_EV_TRADE: b->trades++; break;
    case MATCHER_EV_REJECTED:
        b->rejects++;
        if (ev->u.rejected.reason < MATCHER_REASON_COUNT)
            b->reject_by[ev->u.rejected.reason]++;
        break;
    default: break;
    }
}

static const bench_order *book_pick(const bench_book *b, bench_rng *r)
{
    GPUX_ASSERT(b->n > 0);
    return &b->orders[rng_next(r) % b->n];
}

/* ---- a bench: its engine set-up and its generator ---------------------- */

/* Produces command number i (setup or timed) into *cmd given the book as the
 * shadow engine left it. Returns its kind, or -1 when the stream is done. */
typedef int (*bench_next_fn)(void *gen, const bench_book *b, uint32_t i,
                             matcher_cmd *cmd);

typedef struct bench_spec {
    const char *name;
    matcher_catalog *cat;       /* filled by the bench */
    matcher_config cfg;
    uint32_t cap;               /* commands, setup included */
    uint32_t resting_cap;       /* generator's order index */
    bench_next_fn next;
    void *gen;
    /* set by the generator while it runs */
    uint32_t split_timed;       /* timed index where phase 2 begins, 0 = none */
    uint32_t tput_runs;         /* throughput passes; the best is reported */
} bench_spec;

typedef struct bench_expect {
    uint64_t hash;
    uint64_t trades;
    uint64_t events;            /* timed part only */
    uint64_t rejects;           /* timed part only */
    uint32_t resting_peak;
    uint32_t resting_end;
    uint32_t resting_at_split;
    uint32_t levels_end;        /* distinct (market, side, price) resting */
    int64_t span_ticks_end;     /* market 0: highest - lowest resting price */
} bench_expect;

static matcher_engine *engine_new(const bench_spec *sp)
{
    matcher_engine *e = matcher_create(sp->cat, &sp->cfg);
    if (!e) {
        fprintf(stderr,
                "%s: matcher_create refused the config (max_orders=%u "
                "per_market=%u segments=%u accounts=%u) or memory ran out\n",
                sp->name, sp->cfg.max_orders, sp->cfg.max_orders_per_market,
                sp->cfg.max_segments, sp->cfg.max_accounts);
        exit(1);
    }
    return e;
}

static void check_stop(const char *name)
{
    if (bench_stop) {
        fprintf(stderr, "%s: interrupted by a signal, no figures reported\n", name);
        exit(1);
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* How the resting book looks: its price levels, and market 0's price span
 * in ticks (the figure the classic mix is specified by). */
static void book_shape(const bench_book *b, const matcher_catalog *cat, bench_expect *x)
{
    if (b->n == 0)
        return;
    int64_t *keys = xcalloc(b->n, sizeof *keys, "level keys");
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (uint32_t i = 0; i < b->n; i++) {
        const bench_order *o = &b->orders[i];
        /* prices are < 2^30 micros: room for market and side above them */
        keys[i] = ((int64_t)o->market << 33) | ((int64_t)o->side << 31) | o->price_micros;
        if (o->market == 0) {
            lo = o->price_micros < lo ? o->price_micros : lo;
            hi = o->price_micros > hi ? o->price_micros : hi;
        }
    }
    qsort(keys, b->n, sizeof *keys, cmp_i64);
    x->levels_end = 1;
    for (uint32_t i = 1; i < b->n; i++)
        x->levels_end += keys[i] != keys[i - 1];
    if (hi >= lo)
        x->span_ticks_end = (hi - lo) / cat->markets[0].tick_micros;
    free(keys);
}

/* Pass 1, after the loop: what was generated, on stderr. */
static void generate_summary(const bench_spec *sp, const bench_stream *s,
                             const bench_book *b, const bench_expect *x, uint64_t ms)
{
    fprintf(stderr, "%s: generated %u setup + %u timed commands in %" PRIu64
            " ms: %u resting at peak, %u at end, %" PRIu64 " trades, %" PRIu64
            " rejected\n", sp->name, s->n_setup, s->n - s->n_setup, ms, b->peak,
            b->n, b->trades, x->rejects);
    for (int r = 1; r < MATCHER_REASON_COUNT; r++)
        if (b->reject_by[r])
            fprintf(stderr, "%s:   rejected %s: %" PRIu64 "\n", sp->name,
                    matcher_reason_code((matcher_reason)r), b->reject_by[r]);
}

/* Pass 1: build the stream against a shadow engine. */
static void generate(bench_spec *sp, bench_stream *s, bench_expect *x)
{
    stream_init(s, sp->cap);
    matcher_engine *e = engine_new(sp);
    bench_book b;
    book_init(&b, sp->resting_cap, matcher_next_order_id(e), (uint64_t)sp->cap + 1);
    uint64_t setup_events = 0, setup_rejects = 0;
    uint64_t t0 = now_ns();
    bool timed = false;
    for (uint32_t i = 0; i < s->cap; i++) {
        matcher_cmd *c = &s->cmds[i];
        memset(c, 0, sizeof *c);
        int kind = sp->next(sp->gen, &b, i, c);
        if (kind < 0)
            break;
        GPUX_ASSERT(kind < KIND_COUNT);
        if (kind != KIND_SETUP && !timed) {
            timed = true;
            s->n_setup = i;
            setup_events = b.events;
            setup_rejects = b.rejects;
        }
        GPUX_ASSERT(timed == (kind != KIND_SETUP)); /* setup strictly first */
        c->ts_us = BENCH_TS_BASE_US + (int64_t)i;
        s->kinds[i] = (uint8_t)kind;
        s->n = i + 1;
        if (sp->split_timed && timed && i - s->n_setup == sp->split_timed)
            x->resting_at_split = b.n;
        matcher_apply(e, c, book_emit, &b);
        if (b.broken) {
            fprintf(stderr, "%s: command %u: the engine's events do not match "
                    "its order ids (ACCEPTED/REPLACED/DONE out of step)\n",
                    sp->name, i);
            exit(1);
        }
        if ((i & (BENCH_SIGNAL_EVERY - 1)) == 0)
            check_stop(sp->name);
        if (i % BENCH_PROGRESS_EVERY == 0 && i)
            fprintf(stderr, "%s: generate %u commands, %u resting, %" PRIu64
                    " trades\n", sp->name, i, b.n, b.trades);
    }
    GPUX_ASSERT(timed && s->n > s->n_setup);
    s->split = sp->split_timed ? sp->split_timed : s->n - s->n_setup;
    if (b.n != matcher_order_count(e)) {
        fprintf(stderr, "%s: generator tracks %u resting orders, engine has %u\n",
                sp->name, b.n, matcher_order_count(e));
        exit(1);
    }
    x->hash = matcher_state_hash(e);
    x->trades = b.trades;
    x->events = b.events - setup_events;
    x->rejects = b.rejects - setup_rejects;
    x->resting_peak = b.peak;
    x->resting_end = b.n;
    if (!sp->split_timed)
        x->resting_at_split = b.n;
    generate_summary(sp, s, &b, x, (now_ns() - t0) / 1000000u);
    book_shape(&b, sp->cat, x);
    book_free(&b);
    matcher_destroy(e);
}

/* ---- replays ----------------------------------------------------------- */

typedef struct replay_count {
    uint64_t events;
    uint64_t trades;
    uint64_t rejects;
} replay_count;

/* The consumer a real service would have: it looks at every event. */
static void count_emit(void *ctx, const matcher_event *ev)
{
    replay_count *c = ctx;
    c->events++;
    c->trades += ev->type == MATCHER_EV_TRADE;
    c->rejects += ev->type == MATCHER_EV_REJECTED;
}

static void apply_setup(const bench_spec *sp, matcher_engine *e, const bench_stream *s,
                        replay_count *c)
{
    for (uint32_t i = 0; i < s->n_setup; i++)
        matcher_apply(e, &s->cmds[i], count_emit, c);
    check_stop(sp->name);
    *c = (replay_count){.trades = c->trades};
}

static void verify(const bench_spec *sp, const char *pass, matcher_engine *e,
                   const replay_count *c, const bench_expect *x)
{
    uint64_t h = matcher_state_hash(e);
    if (h != x->hash || c->trades != x->trades || c->events != x->events ||
        c->rejects != x->rejects) {
        fprintf(stderr, "%s: %s pass diverged from the generator: hash %016" PRIx64
                " vs %016" PRIx64 ", trades %" PRIu64 " vs %" PRIu64 ", events %"
                PRIu64 " vs %" PRIu64 ", rejects %" PRIu64 " vs %" PRIu64
                " (the engine is not deterministic)\n", sp->name, pass, h, x->hash,
                c->trades, x->trades, c->events, x->events, c->rejects, x->rejects);
        exit(1);
    }
}

typedef struct bench_tput {
    uint64_t ns_all;
    uint64_t ns_phase1;         /* timed commands before the split */
    uint64_t cpu_ns_all;        /* this thread's CPU time over the same loops */
    int64_t rss_before_kb;      /* before matcher_create */
    int64_t rss_empty_kb;       /* after create + setup */
    int64_t rss_split_kb;       /* at the split (the peak for matcher_gpu) */
    int64_t rss_end_kb;
} bench_tput;

static uint64_t replay_range(const bench_spec *sp, matcher_engine *e,
                             const bench_stream *s, uint32_t from, uint32_t to,
                             replay_count *c)
{
    uint64_t t0 = now_ns();
    for (uint32_t i = from; i < to; i++) {
        if (__builtin_expect((i & (BENCH_SIGNAL_EVERY - 1)) == 0, 0) && bench_stop)
            break;
        matcher_prefetch(e, &s->cmds[i + 1], to - i - 1);
        matcher_apply(e, &s->cmds[i], count_emit, c);
    }
    uint64_t ns = now_ns() - t0;
    check_stop(sp->name);
    return ns;
}

/* Pass 2: throughput, no clock reads per command. */
static void pass_throughput(const bench_spec *sp, const bench_stream *s,
                            const bench_expect *x, bench_tput *t)
{
    memset(t, 0, sizeof *t);
    t->rss_before_kb = rss_kb();
    matcher_engine *e = engine_new(sp);
    replay_count c = {0};
    apply_setup(sp, e, s, &c);
    t->rss_empty_kb = rss_kb();
    uint32_t mid = s->n_setup + s->split;
    uint64_t cpu0 = cpu_now_ns();
    t->ns_phase1 = replay_range(sp, e, s, s->n_setup, mid, &c);
    uint64_t cpu1 = cpu_now_ns();
    t->rss_split_kb = rss_kb();
    uint64_t cpu2 = cpu_now_ns();
    t->ns_all = t->ns_phase1 + replay_range(sp, e, s, mid, s->n, &c);
    t->cpu_ns_all = (cpu1 - cpu0) + (cpu_now_ns() - cpu2);
    t->rss_end_kb = rss_kb();
    verify(sp, "throughput", e, &c, x);
    matcher_destroy(e);
    uint32_t n = s->n - s->n_setup;
    fprintf(stderr, "%s: throughput pass: %u commands in %" PRIu64 " ms\n",
            sp->name, n, t->ns_all / 1000000u);
}

/* Pass 3: latency of each timed command into lat_ns[0 .. n_timed). */
static void pass_latency(const bench_spec *sp, const bench_stream *s,
                         const bench_expect *x, uint32_t *lat_ns)
{
    matcher_engine *e = engine_new(sp);
    replay_count c = {0};
    apply_setup(sp, e, s, &c);
    for (uint32_t i = s->n_setup; i < s->n; i++) {
        if (__builtin_expect((i & (BENCH_SIGNAL_EVERY - 1)) == 0, 0))
            check_stop(sp->name);
        uint64_t t0 = now_ns();
        matcher_prefetch(e, &s->cmds[i + 1], s->n - i - 1);
        matcher_apply(e, &s->cmds[i], count_emit, &c);
        uint64_t d = now_ns() - t0;
        lat_ns[i - s->n_setup] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
    }
    verify(sp, "latency", e, &c, x);
    matcher_destroy(e);
    fprintf(stderr, "%s: latency pass done\n", sp->name);
}

/* Smallest cost of one now_ns() pair, to read latencies against. */
static uint64_t timer_overhead_ns(void)
{
    uint64_t best = UINT64_MAX;
    for (uint32_t i = 0; i < BENCH_TIMER_PROBES; i++) {
        uint64_t a = now_ns();
        uint64_t b = now_ns();
        if (b - a < best)
            best = b - a;
    }
    return best;
}

/* ---- report ------------------------------------------------------------ */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n): q in parts per 10,000. */
static uint32_t pctl(const uint32_t *v, uint32_t n, uint32_t q)
{
    GPUX_ASSERT(n > 0 && q <= 10000);
    uint64_t rank = ((uint64_t)n * q + 9999) / 10000;
    return v[rank ? rank - 1 : 0];
}

/* The result line is built in one buffer and printed whole, so concurrent
 * stderr progress never splits it. */
typedef struct bench_line {
    char buf[4096];
    size_t len;
} bench_line;

static void line_add(bench_line *l, const char *key, const char *suffix, uint64_t v)
{
    int w = snprintf(l->buf + l->len, sizeof l->buf - l->len, " %s%s%s=%" PRIu64,
                     key, suffix ? "_" : "", suffix ? suffix : "", v);
    GPUX_ASSERT(w > 0 && (size_t)w < sizeof l->buf - l->len);
    l->len += (size_t)w;
}

static void line_pctls(bench_line *l, const uint32_t *sorted, uint32_t n,
                       const char *suffix)
{
    line_add(l, "p50_ns", suffix, pctl(sorted, n, 5000));
    line_add(l, "p99_ns", suffix, pctl(sorted, n, 9900));
    line_add(l, "p999_ns", suffix, pctl(sorted, n, 9990));
    line_add(l, "max_ns", suffix, sorted[n - 1]);
}

static uint64_t per_s(uint64_t n, uint64_t ns)
{
    return ns ? (uint64_t)((unsigned __int128)n * 1000000000u / ns) : 0;
}

static uint64_t kb_delta(int64_t a, int64_t b)
{
    return b > a ? (uint64_t)(b - a) : 0;
}

/* Sorts lat in place (per kind, then all) and adds the latency keys. */
static void report_latency(bench_line *l, const bench_stream *s, uint32_t *lat)
{
    uint32_t n = s->n - s->n_setup;
    uint32_t *tmp = xcalloc(n, sizeof *tmp, "latency scratch");
    uint64_t total_ns = 0;
    for (uint32_t i = 0; i < n; i++)
        total_ns += lat[i];
    for (int k = KIND_SETUP + 1; k < KIND_COUNT; k++) {
        uint32_t m = 0;
        uint64_t sum_ns = 0;
        for (uint32_t i = 0; i < n; i++)
            if (s->kinds[s->n_setup + i] == k) {
                tmp[m++] = lat[i];
                sum_ns += lat[i];
            }
        if (!m)
            continue;
        qsort(tmp, m, sizeof *tmp, cmp_u32);
        line_add(l, "n", kind_names[k], m);
        line_add(l, "mean_ns", kind_names[k], sum_ns / m);
        /* where the time goes: this kind's share of all timed nanoseconds */
        line_add(l, "time_pct", kind_names[k], total_ns ? sum_ns * 100u / total_ns : 0);
        line_pctls(l, tmp, m, kind_names[k]);
    }
    line_add(l, "mean_ns", NULL, total_ns / n);
    free(tmp);
    qsort(lat, n, sizeof *lat, cmp_u32);
    line_pctls(l, lat, n, NULL);
}

/* Runs the three passes and prints the bench line. extra() adds
 * bench-specific keys (phase throughput, memory per order). */
typedef void (*bench_extra_fn)(bench_line *l, const bench_spec *sp,
                               const bench_stream *s, const bench_expect *x,
                               const bench_tput *t);

static void run_bench(bench_spec *sp, bench_extra_fn extra)
{
    uint64_t t0 = now_ns();
    bench_stream s;
    bench_expect x;
    memset(&x, 0, sizeof x);
    generate(sp, &s, &x);
    /* best of tput_runs: other load on a shared machine only slows a run
     * down, so the fastest run is the closest to the engine's own speed */
    bench_tput t, worst;
    pass_throughput(sp, &s, &x, &t);
    worst = t;
    for (uint32_t r = 1; r < sp->tput_runs; r++) {
        bench_tput again;
        pass_throughput(sp, &s, &x, &again);
        if (again.ns_all < t.ns_all) {
            t.ns_all = again.ns_all;
            t.ns_phase1 = again.ns_phase1;
        }
        if (again.cpu_ns_all < t.cpu_ns_all)
            t.cpu_ns_all = again.cpu_ns_all;
        if (again.ns_all > worst.ns_all)
            worst = again;
    }
    uint32_t n = s.n - s.n_setup;
    uint32_t *lat = xcalloc(n, sizeof *lat, "latency array");
    pass_latency(sp, &s, &x, lat);

    bench_line l = {.len = 0};
    l.len = (size_t)snprintf(l.buf, sizeof l.buf, "bench %s", sp->name);
    line_add(&l, "ops_per_s", NULL, per_s(n, t.ns_all));
    line_add(&l, "ops_per_s_worst", NULL, per_s(n, worst.ns_all));
    /* commands per second of CPU time: immune to preemption by other load
     * (not to its cache pollution) */
    line_add(&l, "ops_per_cpu_s", NULL, per_s(n, t.cpu_ns_all));
    report_latency(&l, &s, lat);
    line_add(&l, "commands", NULL, n);
    line_add(&l, "trades", NULL, x.trades);
    line_add(&l, "rejected", NULL, x.rejects);
    line_add(&l, "events", NULL, x.events);
    line_add(&l, "resting_peak", NULL, x.resting_peak);
    line_add(&l, "resting_end", NULL, x.resting_end);
    line_add(&l, "timer_ns", NULL, timer_overhead_ns());
    if (extra)
        extra(&l, sp, &s, &x, &t);
    printf("%s\n", l.buf);
    fflush(stdout);
    fprintf(stderr, "%s: done in %" PRIu64 " s\n", sp->name, (now_ns() - t0) / 1000000000u);
    free(lat);
    stream_free(&s);
}

/* ---- shared generator pieces ------------------------------------------ */

static void cmd_account(matcher_cmd *c, uint32_t roles)
{
    c->type = MATCHER_CMD_CREATE_ACCOUNT;
    c->roles = roles;
}

static void cmd_deposit(matcher_cmd *c, uint32_t account, int64_t amount_micros)
{
    c->type = MATCHER_CMD_DEPOSIT;
    c->account = account;
    c->amount_micros = amount_micros;
}

static void cmd_clock(matcher_cmd *c, int64_t hour)
{
    c->type = MATCHER_CMD_ADVANCE_CLOCK;
    c->clock_hour = hour;
}

static void cmd_cancel(matcher_cmd *c, const bench_order *o)
{
    c->type = MATCHER_CMD_CANCEL;
    c->account = o->account;
    c->order_id = o->order_id;
}

/* Scales a count by pct percent, at least 1. */
static uint32_t scaled(uint32_t v, uint32_t pct)
{
    uint64_t r = (uint64_t)v * pct / 100u;
    return r ? (uint32_t)r : 1u;
}

/* ==== matcher_classic ==================================================== */

/* One market (lot 8, tick $0.0001), every order on one one-hour window,
 * prices around a mid that random-walks. ~1,000 orders rest over ~750
 * ticks: quiet orders sit 1..375 ticks from the mid on their own side;
 * ioc orders and a share of replaces go through the mid and trade. The
 * crossing share is steered by the book size to hold it near 1,000. */
#define CL_ACCOUNTS 1000u
#define CL_RESTING 1000u
#define CL_HALF_RANGE_TICKS 375
#define CL_TICK_MICROS 100
#define CL_LOT 8
#define CL_CENTER_TICKS 20000       /* $2.00 */
#define CL_MID_DRIFT_TICKS 100      /* the mid stays within this of center */
#define CL_COMMANDS 3000000u

typedef struct classic_gen {
    bench_rng rng;
    uint32_t n_accounts;
    uint32_t n_prefill;
    uint32_t n_timed;
    uint32_t resting_target;
    uint32_t setup_len;         /* accounts + deposits + clock */
    uint32_t timed_emitted;
    int64_t mid_ticks;
    int64_t start_hour;
} classic_gen;

static int64_t cl_price(int64_t ticks)
{
    return ticks * CL_TICK_MICROS;
}

static uint32_t cl_cross_pct(const classic_gen *g, const bench_book *b)
{
    if (b->n < g->resting_target)
        return 0;
    if (b->n > g->resting_target + g->resting_target / 20)
        return 20;
    return 4;
}

/* A new order; cross: priced through the mid (it will trade). */
static void cl_order(classic_gen *g, matcher_cmd *c, uint8_t tif, bool cross)
{
    uint8_t side = rng_pct(&g->rng, 50) ? MATCHER_BUY : MATCHER_SELL;
    int64_t d = cross ? -rng_range(&g->rng, 0, 8)
                      : rng_skewed(&g->rng, 1, CL_HALF_RANGE_TICKS);
    int64_t ticks = side == MATCHER_BUY ? g->mid_ticks - d : g->mid_ticks + d;
    c->type = MATCHER_CMD_NEW_ORDER;
    c->side = side;
    c->tif = tif;
    c->market = 0;
    c->account = 1 + (uint32_t)rng_range(&g->rng, 0, g->n_accounts - 1);
    c->price_micros = cl_price(ticks);
    c->qty = CL_LOT * (int32_t)rng_range(&g->rng, 1, 16);
    /* bids with min_qty = lot behave as ordinary limit orders */
    c->min_qty = side == MATCHER_BUY ? CL_LOT : 0;
    c->start_hour = g->start_hour;
    c->end_hour = g->start_hour + 1;
}

/* A price move of a resting order: a few ticks, or through the mid. */
static void cl_replace(classic_gen *g, matcher_cmd *c, const bench_order *o, bool cross)
{
    int64_t old_ticks = o->price_micros / CL_TICK_MICROS;
    int64_t ticks;
    if (cross) {
        int64_t d = rng_range(&g->rng, 0, 8);
        ticks = o->side == MATCHER_BUY ? g->mid_ticks + d : g->mid_ticks - d;
    } else {
        ticks = old_ticks + rng_range(&g->rng, -10, 10);
        int64_t lo = g->mid_ticks - CL_HALF_RANGE_TICKS;
        int64_t hi = g->mid_ticks + CL_HALF_RANGE_TICKS;
        if (o->side == MATCHER_BUY)
            hi = g->mid_ticks - 1;
        else
            lo = g->mid_ticks + 1;
        ticks = ticks < lo ? lo : ticks > hi ? hi : ticks;
    }
    if (ticks == old_ticks)
        ticks += o->side == MATCHER_BUY ? -1 : 1;
    c->type = MATCHER_CMD_REPLACE;
    c->account = o->account;
    c->order_id = o->order_id;
    c->price_micros = cl_price(ticks);
}

static int classic_next(void *gp, const bench_book *b, uint32_t i, matcher_cmd *c)
{
    classic_gen *g = gp;
    if (i < g->n_accounts) {
        cmd_account(c, MATCHER_ROLE_BUYER | MATCHER_ROLE_PROVIDER);
        return KIND_SETUP;
    }
    if (i < 2 * g->n_accounts) {
        cmd_deposit(c, 1 + i - g->n_accounts, 1000000 * MATCHER_MICROS_PER_USD);
        return KIND_SETUP;
    }
    if (i == 2 * g->n_accounts) {
        cmd_clock(c, BENCH_T0_HOUR);
        return KIND_SETUP;
    }
    if (i < g->setup_len + g->n_prefill) {
        cl_order(g, c, MATCHER_GTC, false);
        return KIND_SETUP;
    }
    if (g->timed_emitted == g->n_timed)
        return -1;
    g->timed_emitted++;
    if (rng_pct(&g->rng, 2)) { /* the mid random-walks, pulled to center */
        int64_t step = rng_range(&g->rng, -1, 1);
        if (g->mid_ticks - CL_CENTER_TICKS > CL_MID_DRIFT_TICKS / 2)
            step = -1;
        else if (CL_CENTER_TICKS - g->mid_ticks > CL_MID_DRIFT_TICKS / 2)
            step = 1;
        g->mid_ticks += step;
    }
    uint32_t cross = cl_cross_pct(g, b);
    uint32_t r = (uint32_t)(rng_next(&g->rng) % 100u);
    if (b->n == 0 && r >= 12)
        r = 0;                  /* nothing to cancel or move: place one */
    if (r < 9) {
        cl_order(g, c, MATCHER_GTC, rng_pct(&g->rng, cross));
        return KIND_GTC;
    }
    if (r < 12) {
        cl_order(g, c, MATCHER_IOC, true);
        return c->side == MATCHER_BUY ? KIND_IOC_BUY : KIND_IOC_SELL;
    }
    const bench_order *o = book_pick(b, &g->rng);
    if (r < 18) {
        cmd_cancel(c, o);
        return KIND_CANCEL;
    }
    cl_replace(g, c, o, rng_pct(&g->rng, cross));
    return KIND_REPLACE;
}

static void classic_extra(bench_line *l, const bench_spec *sp, const bench_stream *s,
                          const bench_expect *x, const bench_tput *t)
{
    (void)sp;
    (void)s;
    line_add(l, "levels_end", NULL, x->levels_end);
    line_add(l, "span_ticks_end", NULL, (uint64_t)x->span_ticks_end);
    line_add(l, "rss_mb", NULL, kb_delta(t->rss_before_kb, t->rss_end_kb) / 1024u);
}

static void bench_classic(uint32_t scale_pct, uint64_t seed)
{
    static matcher_catalog cat;
    memset(&cat, 0, sizeof cat);
    if (matcher_catalog_add(&cat, "H100", "us-east", CL_LOT, CL_TICK_MICROS) != 0) {
        fprintf(stderr, "matcher_classic: matcher_catalog_add failed\n");
        exit(1);
    }
    classic_gen g = {
        .rng = {seed},
        .n_accounts = CL_ACCOUNTS,
        .n_prefill = CL_RESTING,
        .n_timed = scaled(CL_COMMANDS, scale_pct),
        .resting_target = CL_RESTING,
        .setup_len = 2 * CL_ACCOUNTS + 1,
        .mid_ticks = CL_CENTER_TICKS,
        .start_hour = BENCH_T0_HOUR + 24,
    };
    bench_spec sp = {
        .name = "matcher_classic",
        .cat = &cat,
        .next = classic_next,
        .gen = &g,
        .tput_runs = 3,
    };
    matcher_config_default(&sp.cfg);
    /* tables sized for the book this bench keeps, not the defaults */
    sp.cfg.max_accounts = 2048;
    sp.cfg.max_orders = 16384;
    sp.cfg.max_orders_per_market = 16384;
    sp.cfg.max_segments = 65536;
    sp.cap = g.setup_len + g.n_prefill + g.n_timed;
    sp.resting_cap = sp.cfg.max_orders;
    fprintf(stderr, "matcher_classic: %u accounts, ~%u resting orders, %u commands\n",
            g.n_accounts, g.resting_target, g.n_timed);
    run_bench(&sp, classic_extra);
}

/* ==== matcher_gpu ======================================================== */

/* 20 GPU types x 10 regions. Popular markets (low type and region index)
 * get more flow. Each market has a fixed mid; resting offers sit above it
 * and bids below, so the book never crosses by itself and quiet orders
 * cost what inserting costs. The crossing flow (ioc offers/bids, fok
 * all-or-none bids) is priced through the mid and trades. Crossing orders
 * never rest: a resting bid priced over offers whose windows do not cover
 * it would be re-tried by every later offer (the rules make that correct
 * and costly), and a real book clears such orders quickly; here they
 * would pile up for the whole run. */
#define GPU_TYPES 20u
#define GPU_REGIONS 10u
#define GPU_MARKETS (GPU_TYPES * GPU_REGIONS)
#define GPU_PROVIDERS 2000u
#define GPU_BUYERS 18000u
#define GPU_RESTING 1000000u
#define GPU_DEPOSIT_MICROS (400000000LL * MATCHER_MICROS_PER_USD)
#define GPU_STEADY_COMMANDS 2000000u
#define GPU_CLOCK_HOURS 40u         /* clock advances over the steady phase */
#define GPU_TICK_MICROS 100
#define GPU_BAND_PCT 20             /* quiet orders within 20% of the mid */
#define GPU_CROSS_PCT 2             /* crossing orders up to 2% through it */

static const char *const gpu_types[GPU_TYPES] = {
    "H100", "H200", "A100", "B200", "L40S", "MI300X", "A100-40", "GH200",
    "L4", "A10G", "B100", "GB200", "MI325X", "H100-PCIe", "L40", "A10",
    "V100", "T4", "MI250X", "RTX6000",
};
/* $/GPU-hour x 10,000 (ticks of $0.0001) */
static const int32_t gpu_base_ticks[GPU_TYPES] = {
    24000, 34000, 14000, 52000, 9000, 30000, 11000, 36000,
    4500, 7500, 45000, 60000, 36000, 20000, 8000, 6000,
    3500, 3000, 16000, 9500,
};
static const char *const gpu_regions[GPU_REGIONS] = {
    "us-east", "us-west", "eu-west", "us-central", "eu-north",
    "apac", "eu-central", "ca-central", "ap-south", "me-central",
};

typedef struct gpu_gen {
    bench_rng rng;
    uint32_t n_timed_max;
    uint32_t resting_target;
    uint32_t steady;            /* steady-state commands to emit */
    uint32_t setup_len;
    uint32_t timed_emitted;
    uint32_t steady_emitted;    /* 0 while building */
    uint32_t clock_every;       /* steady commands per clock hour */
    bool building;
    int64_t now_hour;
    int64_t mid_ticks[GPU_MARKETS];
    int64_t band_ticks[GPU_MARKETS];
    int64_t cross_ticks[GPU_MARKETS];
    int32_t lot[GPU_MARKETS];
    uint32_t *split_timed;      /* where to record the end of the build */
} gpu_gen;

/* Busy markets first: type weight 20..1, region weight 10..1. */
static uint32_t gpu_pick_weighted(bench_rng *r, uint32_t n)
{
    uint64_t total = (uint64_t)n * (n + 1) / 2;
    uint64_t x = rng_next(r) % total;
    for (uint32_t k = 0; k < n; k++) {
        uint64_t w = n - k;
        if (x < w)
            return k;
        x -= w;
    }
    return n - 1;
}

static uint32_t gpu_pick_market(gpu_gen *g)
{
    uint32_t t = gpu_pick_weighted(&g->rng, GPU_TYPES);
    uint32_t r = gpu_pick_weighted(&g->rng, GPU_REGIONS);
    return t * GPU_REGIONS + r;
}

/* Offers are long: a day to a year, starting within a week. */
static void gpu_offer_window(gpu_gen *g, matcher_cmd *c)
{
    uint32_t r = (uint32_t)(rng_next(&g->rng) % 100u);
    int64_t hours = r < 10 ? 24 : r < 30 ? 168 : r < 70 ? 720 : r < 85 ? 2160 : 8760;
    c->start_hour = g->now_hour + rng_skewed(&g->rng, 0, 168);
    c->end_hour = c->start_hour + hours;
}

/* Bids are shorter and start later, inside typical offers: most run 1-24 h
 * within the next month; some a week, a month, a quarter, a year. */
static void gpu_bid_window(gpu_gen *g, matcher_cmd *c)
{
    uint32_t r = (uint32_t)(rng_next(&g->rng) % 100u);
    int64_t hours = r < 60 ? rng_range(&g->rng, 1, 24)
                  : r < 80 ? 168 : r < 93 ? 720 : r < 99 ? 2160 : 8760;
    int64_t lead = hours <= 24 ? rng_range(&g->rng, 1, 720) : rng_range(&g->rng, 1, 168);
    c->start_hour = g->now_hour + lead;
    c->end_hour = c->start_hour + hours;
}

static void gpu_offer(gpu_gen *g, matcher_cmd *c, uint32_t m, bool cross)
{
    int32_t lot = g->lot[m];
    int64_t hours;
    c->type = MATCHER_CMD_NEW_ORDER;
    c->side = MATCHER_SELL;
    c->tif = cross ? MATCHER_IOC : MATCHER_GTC;
    c->market = m;
    c->account = 1 + (uint32_t)rng_range(&g->rng, 0, GPU_PROVIDERS - 1);
    gpu_offer_window(g, c);
    hours = c->end_hour - c->start_hour;
    c->qty = lot * (int32_t)rng_range(&g->rng, 1, 64);
    uint32_t r = (uint32_t)(rng_next(&g->rng) % 100u);
    int32_t mq = r < 40 ? 0 : lot * (r < 70 ? 1 : r < 90 ? 2 : 4);
    c->min_qty = mq <= c->qty ? mq : c->qty;
    r = (uint32_t)(rng_next(&g->rng) % 100u);
    int64_t mh = r < 70 ? 0 : r < 90 ? 24 : 168;
    c->min_hours = (int32_t)(mh <= hours ? mh : hours);
    int64_t d = cross ? -rng_range(&g->rng, 0, g->cross_ticks[m])
                      : rng_skewed(&g->rng, 1, g->band_ticks[m]);
    c->price_micros = (g->mid_ticks[m] + d) * GPU_TICK_MICROS;
}

/* Returns the kind: AON bids (20%) want 16..96 lots, more than most single
 * offers hold; the others take partial fills of at least a lot or two. */
static int gpu_bid(gpu_gen *g, matcher_cmd *c, uint32_t m, bool cross)
{
    int32_t lot = g->lot[m];
    bool aon = rng_pct(&g->rng, 20);
    c->type = MATCHER_CMD_NEW_ORDER;
    c->side = MATCHER_BUY;
    c->market = m;
    c->account = 1 + GPU_PROVIDERS + (uint32_t)rng_range(&g->rng, 0, GPU_BUYERS - 1);
    gpu_bid_window(g, c);
    if (aon) {
        c->qty = lot * (int32_t)rng_range(&g->rng, 16, 96);
        c->min_qty = 0;
        c->tif = cross ? MATCHER_FOK : MATCHER_GTC;
    } else {
        c->qty = lot * (int32_t)rng_range(&g->rng, 1, 16);
        c->min_qty = lot * (rng_pct(&g->rng, 70) ? 1 : 2);
        if (c->min_qty > c->qty)
            c->min_qty = c->qty;
        c->tif = cross ? MATCHER_IOC : MATCHER_GTC;
    }
    c->single_provider = rng_pct(&g->rng, 5);
    if (!cross && rng_pct(&g->rng, 5))
        c->expire_at_hour = g->now_hour + rng_range(&g->rng, 1, 48);
    int64_t d = cross ? -rng_range(&g->rng, 0, g->cross_ticks[m])
                      : rng_skewed(&g->rng, 1, g->band_ticks[m]);
    c->price_micros = (g->mid_ticks[m] - d) * GPU_TICK_MICROS;
    if (aon)
        return cross ? KIND_FOK : KIND_AON;
    return cross ? KIND_IOC_BUY : KIND_GTC;
}

static int gpu_new(gpu_gen *g, matcher_cmd *c, uint32_t cross_pct)
{
    uint32_t m = gpu_pick_market(g);
    bool cross = rng_pct(&g->rng, cross_pct);
    if (rng_pct(&g->rng, 45)) {
        gpu_offer(g, c, m, cross);
        return cross ? KIND_IOC_SELL : KIND_GTC;
    }
    return gpu_bid(g, c, m, cross);
}

/* 80%: price move of up to 50 ticks on its own side of the mid; 20%: a
 * bigger quantity (never below what an offer has sold, never below a
 * bid's fills, so the replace is valid). */
static void gpu_replace(gpu_gen *g, matcher_cmd *c, const bench_order *o)
{
    c->type = MATCHER_CMD_REPLACE;
    c->account = o->account;
    c->order_id = o->order_id;
    int32_t lot = g->lot[o->market];
    int32_t more = lot * (int32_t)rng_range(&g->rng, 1, 4);
    if (rng_pct(&g->rng, 20) && o->qty + more <= MATCHER_MAX_QTY) {
        c->qty = o->qty + more;
        return;
    }
    int64_t mid = g->mid_ticks[o->market];
    int64_t old = o->price_micros / GPU_TICK_MICROS;
    int64_t t = old + rng_range(&g->rng, -50, 50);
    int64_t band = g->band_ticks[o->market];
    int64_t lo = o->side == MATCHER_BUY ? mid - band : mid + 1;
    int64_t hi = o->side == MATCHER_BUY ? mid - 1 : mid + band;
    t = t < lo ? lo : t > hi ? hi : t;
    if (t == old)
        t = t > lo ? t - 1 : t + 1;
    c->price_micros = t * GPU_TICK_MICROS;
}

static int gpu_next(void *gp, const bench_book *b, uint32_t i, matcher_cmd *c)
{
    gpu_gen *g = gp;
    const uint32_t n_acc = GPU_PROVIDERS + GPU_BUYERS;
    if (i < n_acc) {
        cmd_account(c, i < GPU_PROVIDERS ? MATCHER_ROLE_PROVIDER : MATCHER_ROLE_BUYER);
        return KIND_SETUP;
    }
    if (i < n_acc + GPU_BUYERS) {
        /* $400M each: 18,000 buyers stay under the engine's int64 total of
         * deposits ($9.2e12) */
        cmd_deposit(c, 1 + GPU_PROVIDERS + (i - n_acc), GPU_DEPOSIT_MICROS);
        return KIND_SETUP;
    }
    if (i == n_acc + GPU_BUYERS) {
        cmd_clock(c, g->now_hour);
        return KIND_SETUP;
    }
    if (g->timed_emitted == g->n_timed_max || g->steady_emitted == g->steady)
        return -1;
    if (g->building && b->n >= g->resting_target) {
        g->building = false;
        *g->split_timed = g->timed_emitted;
        fprintf(stderr, "matcher_gpu: build phase done at %u commands, %u resting\n",
                g->timed_emitted, b->n);
    }
    g->timed_emitted++;
    if (g->building) {      /* 80% new (2% crossing), 5% cancel, 15% replace */
        uint32_t r = (uint32_t)(rng_next(&g->rng) % 100u);
        if (r < 80 || b->n == 0)
            return gpu_new(g, c, 2);
        const bench_order *o = book_pick(b, &g->rng);
        if (r < 85) {
            cmd_cancel(c, o);
            return KIND_CANCEL;
        }
        gpu_replace(g, c, o);
        return KIND_REPLACE;
    }
    g->steady_emitted++;
    if (g->steady_emitted % g->clock_every == 0) {
        g->now_hour++;
        cmd_clock(c, g->now_hour);
        return KIND_CLOCK;
    }
    /* 40% new (10% of them crossing), 20% cancel, 40% replace; a new order
     * that would take the book past its target becomes a cancel */
    uint32_t r = (uint32_t)(rng_next(&g->rng) % 100u);
    if (r < 40 && b->n < g->resting_target)
        return gpu_new(g, c, 10);
    const bench_order *o = book_pick(b, &g->rng);
    if (r < 60) {
        cmd_cancel(c, o);
        return KIND_CANCEL;
    }
    gpu_replace(g, c, o);
    return KIND_REPLACE;
}

static void gpu_extra(bench_line *l, const bench_spec *sp, const bench_stream *s,
                      const bench_expect *x, const bench_tput *t)
{
    (void)sp;
    uint32_t n1 = s->split, n2 = s->n - s->n_setup - s->split;
    line_add(l, "ops_per_s_build", NULL, per_s(n1, t->ns_phase1));
    line_add(l, "ops_per_s_steady", NULL, per_s(n2, t->ns_all - t->ns_phase1));
    line_add(l, "resting_at_build_end", NULL, x->resting_at_split);
    line_add(l, "markets", NULL, GPU_MARKETS);
    line_add(l, "levels_end", NULL, x->levels_end);
    uint64_t grow_kb = kb_delta(t->rss_before_kb, t->rss_split_kb);
    line_add(l, "rss_mb", NULL, grow_kb / 1024u);
    line_add(l, "rss_empty_mb", NULL, kb_delta(t->rss_before_kb, t->rss_empty_kb) / 1024u);
    if (x->resting_at_split) {
        /* all engine memory at the peak, preallocated tables included */
        line_add(l, "bytes_per_order", NULL, grow_kb * 1024u / x->resting_at_split);
        /* only what the orders themselves touched after set-up */
        line_add(l, "bytes_per_order_marginal", NULL,
                 kb_delta(t->rss_empty_kb, t->rss_split_kb) * 1024u / x->resting_at_split);
    }
}

static void bench_gpu(uint32_t scale_pct, uint64_t seed)
{
    static matcher_catalog cat;
    memset(&cat, 0, sizeof cat);
    static gpu_gen g;
    memset(&g, 0, sizeof g);
    bench_spec sp = {.name = "matcher_gpu", .cat = &cat, .next = gpu_next, .gen = &g,
                     .tput_runs = 2};
    g.rng.s = seed;
    for (uint32_t t = 0; t < GPU_TYPES; t++) {
        for (uint32_t r = 0; r < GPU_REGIONS; r++) {
            int32_t lot = t % 4 == 3 ? 1 : 8;   /* some types rent by the GPU */
            int id = matcher_catalog_add(&cat, gpu_types[t], gpu_regions[r], lot,
                                         GPU_TICK_MICROS);
            if (id < 0) {
                fprintf(stderr, "matcher_gpu: matcher_catalog_add(%s, %s) failed\n",
                        gpu_types[t], gpu_regions[r]);
                exit(1);
            }
            g.lot[id] = lot;
            g.mid_ticks[id] = gpu_base_ticks[t] * (100 + (int64_t)r * 2) / 100;
            g.band_ticks[id] = g.mid_ticks[id] * GPU_BAND_PCT / 100;
            g.cross_ticks[id] = g.mid_ticks[id] * GPU_CROSS_PCT / 100;
        }
    }
    g.resting_target = scaled(GPU_RESTING, scale_pct);
    g.steady = scaled(GPU_STEADY_COMMANDS, scale_pct);
    g.clock_every = g.steady / GPU_CLOCK_HOURS ? g.steady / GPU_CLOCK_HOURS : 1;
    g.n_timed_max = 3 * g.resting_target + g.steady;
    g.setup_len = GPU_PROVIDERS + 2 * GPU_BUYERS + 1;
    g.building = true;
    g.now_hour = BENCH_T0_HOUR;
    g.split_timed = &sp.split_timed;
    matcher_config_default(&sp.cfg);
    sp.cfg.max_accounts = 32768;
    sp.cfg.max_orders = g.resting_target + g.resting_target / 16 + 4096;
    sp.cfg.max_orders_per_market = g.resting_target / 16 + 4096;
    sp.cfg.max_segments = 4 * sp.cfg.max_orders;
    sp.cap = g.setup_len + g.n_timed_max;
    sp.resting_cap = sp.cfg.max_orders;
    fprintf(stderr, "matcher_gpu: %u markets, %u accounts, build to %u resting, "
            "then %u steady commands\n", GPU_MARKETS, GPU_PROVIDERS + GPU_BUYERS,
            g.resting_target, g.steady);
    run_bench(&sp, gpu_extra);
}

/* ==== main =============================================================== */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_matcher [--scale PCT] [--seed N] [FILTER]\n"
            "Benchmarks the matching engine in-process (no I/O).\n"
            "  FILTER       run only benches whose name contains FILTER\n"
            "               (matcher_classic, matcher_gpu); default all\n"
            "  --scale PCT  scale command counts and book sizes, 1..100\n"
            "               (default 100: the sizes docs/benchmarks.md states)\n"
            "  --seed N     PRNG seed of the command streams (default 1)\n"
            "Prints 'bench <name> <key>=<number> ...' on stdout, progress on\n"
            "stderr. Exit 1 on a bad argument, a refused config, or a replay\n"
            "that diverges from the generated stream.\n");
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    const char *filter = NULL;
    uint64_t scale = 100, seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--scale")) {
            if (!parse_u64(i + 1 < argc ? argv[++i] : NULL, &scale) || scale < 1 ||
                scale > 100) {
                fprintf(stderr, "bench_matcher: --scale needs a percentage 1..100\n");
                return 1;
            }
        } else if (!strcmp(a, "--seed")) {
            if (!parse_u64(i + 1 < argc ? argv[++i] : NULL, &seed)) {
                fprintf(stderr, "bench_matcher: --seed needs a number\n");
                return 1;
            }
        } else if (a[0] == '-') {
            fprintf(stderr, "bench_matcher: unknown option %s (try --help)\n", a);
            return 1;
        } else if (filter) {
            fprintf(stderr, "bench_matcher: one FILTER only (got %s and %s)\n", filter, a);
            return 1;
        } else {
            filter = a;
        }
    }
    /* Every large table gets its own fresh mapping, so RSS counts only the
     * pages an engine actually touches. Without this glibc raises its mmap
     * threshold after the shadow engine frees its tables and serves the
     * next engine's calloc from reused heap it must zero, which makes
     * rss_empty_mb depend on what this program freed before. */
    if (mallopt(M_MMAP_THRESHOLD, 64 << 10) != 1)
        fprintf(stderr, "bench_matcher: mallopt failed; memory figures may include reused heap\n");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    bool ran = false;
    if (!filter || strstr("matcher_classic", filter)) {
        bench_classic((uint32_t)scale, seed);
        ran = true;
    }
    if (!filter || strstr("matcher_gpu", filter)) {
        bench_gpu((uint32_t)scale, seed);
        ran = true;
    }
    if (!ran)
        fprintf(stderr, "bench_matcher: no bench matches '%s'\n", filter);
    return 0;
}
