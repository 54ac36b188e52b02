/* sim.h — the market-day simulator: generator, day-file reader, in-process
 * replay, report and plot.
 *
 * The simulator makes whole market days out of thin air (a seeded PRNG and
 * a scenario), writes them as a day file (JSON Lines, docs/sim.md), reads
 * them back strictly, replays them through an in-process engine
 * (matcher/matcher.h) and reports what the day did: VWAP, traded
 * GPU-hours, fill rate, unfilled demand, provider utilisation, fees, and an
 * SVG plot. Replay through the running stack (gateway or nng) reuses the
 * reader and the report.
 *
 * Money is int64 micro-dollars everywhere; there is no floating point in
 * this module. Hours are whole UTC hours since the Unix epoch.
 *
 * Threading: nothing here is shared; every object belongs to one thread.
 * Errors: functions that read outside input return -1 and write a one-line
 * reason into err (never NULL, errlen > 0). */
#ifndef GPUX_SIM_H
#define GPUX_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- fixed limits ------------------------------------------------------ */

#define SIM_DAYFILE_VERSION 1
#define SIM_NAME_LEN 32          /* account names and order refs incl. NUL */
#define SIM_KIND_LEN 16          /* participant kind incl. NUL */
#define SIM_ID_LEN 16            /* gpu / region ids incl. NUL */
#define SIM_MAX_LINE 2048        /* bytes per day-file line incl. newline */
#define SIM_MAX_HOURS 168        /* a "day" is at most a week of hours */
#define SIM_MAX_ACCOUNTS 65536   /* accounts one day may create */
#define SIM_MAX_ORDERS 50000000u /* orders one day may place */
#define SIM_MAX_EVENTS 100000000ull /* lines one day may have */
#define SIM_N_GPUS 6
#define SIM_N_REGIONS 6
#define SIM_N_MARKETS (SIM_N_GPUS * SIM_N_REGIONS)
#define SIM_LOT 8                /* GPUs per node (catalog.default) */
#define SIM_TICK_MICROS 100      /* $0.0001 (catalog.default) */

/* ---- units: decimal money and RFC 3339 hours (units.c) ----------------- */

/* Parses a non-negative dollar amount written as a decimal string ("2.35",
 * "1000000", "0.000001") into micro-dollars: digits, optionally '.' and 1
 * to 6 digits; no sign, exponent, spaces or leading '.'. Returns 0, or -1
 * when malformed or above max_micros. */
int sim_parse_micros(const char *s, int64_t max_micros, int64_t *out);

/* Writes micros (may be negative) as a decimal dollar string with at least
 * 2 and at most 6 decimals, trailing zeros trimmed ("2.35", "0.000001",
 * "-1.50"). buf needs SIM_MONEY_LEN bytes. Returns buf. */
#define SIM_MONEY_LEN 48
char *sim_fmt_micros(int64_t micros, char *buf);
/* Same for a 128-bit amount (sums of notionals). */
char *sim_fmt_micros128(__int128 micros, char *buf);

/* Parses an RFC 3339 UTC time on a whole hour, exactly
 * "YYYY-MM-DDTHH:00:00Z" (year 1970..9999), into hours since the epoch.
 * Returns 0, or -1 when malformed or not a real date. */
int sim_parse_hour(const char *s, int64_t *hour);

/* Writes hour as "YYYY-MM-DDTHH:00:00Z". buf needs SIM_HOUR_LEN bytes. */
#define SIM_HOUR_LEN 24
char *sim_fmt_hour(int64_t hour, char *buf);

/* ---- catalog: the GPU types and regions the simulator knows (catalog.c) */

typedef struct sim_gpu_def {
    const char *gpu;
    int64_t lo_micros;       /* realistic market band per GPU-hour */
    int64_t hi_micros;
} sim_gpu_def;

/* The GPU types and regions of matcher/catalog.default, in its order, so
 * sim market index m = gpu * SIM_N_REGIONS + region equals the matcher's
 * market id for the default catalog. Never NULL for a valid index. */
const sim_gpu_def *sim_gpu(int gpu_idx);
const char *sim_region(int region_idx);

/* Index of a GPU type / region / market by name, or -1 when unknown. */
int sim_gpu_find(const char *gpu);
int sim_region_find(const char *region);
int sim_market_find(const char *gpu, const char *region);

/* ---- PRNG (rng.c) ------------------------------------------------------ */

/* xoshiro256** seeded through splitmix64: the same seed gives the same
 * stream on every machine. State is the caller's; no globals. */
typedef struct sim_rng {
    uint64_t s[4];
} sim_rng;

void sim_rng_seed(sim_rng *r, uint64_t seed);
uint64_t sim_rng_next(sim_rng *r);
/* Uniform in [0, n); n > 0. */
uint64_t sim_rng_below(sim_rng *r, uint64_t n);
/* Uniform in [lo, hi]; lo <= hi. */
int64_t sim_rng_range(sim_rng *r, int64_t lo, int64_t hi);
/* True with probability permille / 1000. */
bool sim_rng_chance(sim_rng *r, uint32_t permille);

/* ---- commands of a day file -------------------------------------------- */

typedef enum sim_op {
    SIM_OP_CLOCK = 1,   /* advance the market clock to hour */
    SIM_OP_ACCOUNT = 2, /* create account `account` with roles and kind */
    SIM_OP_DEPOSIT = 3, /* deposit amount into account */
    SIM_OP_ORDER = 4,   /* new order named `ref` */
    SIM_OP_CANCEL = 5,  /* cancel the order named `ref` */
    SIM_OP_REPLACE = 6, /* replace price and/or qty of the order `ref` */
} sim_op;

typedef enum sim_side { SIM_BUY = 1, SIM_SELL = 2 } sim_side;
/* Same values as matcher_tif. */
typedef enum sim_tif { SIM_GTC = 0, SIM_IOC = 1, SIM_FOK = 2, SIM_POST_ONLY = 3 } sim_tif;
/* Same bits as matcher_role. */
enum { SIM_ROLE_BUYER = 1, SIM_ROLE_PROVIDER = 2, SIM_ROLE_ADMIN = 4 };

/* One decoded day-file line. Fields a command does not use are zero.
 * The reader resolves names into dense indexes: account_idx is the
 * account's creation index (0, 1, ... in the day), order_idx the order's
 * placement index (0, 1, ...), so consumers need no string maps. */
typedef struct sim_cmd {
    uint8_t op;              /* sim_op */
    uint8_t side;            /* ORDER */
    uint8_t tif;             /* ORDER */
    uint8_t single_provider; /* ORDER (bids) */
    uint32_t roles;          /* ACCOUNT */
    int64_t t_s;             /* seconds since the day's start */
    int64_t hour;            /* CLOCK */
    uint32_t account_idx;    /* all but CLOCK */
    uint32_t order_idx;      /* ORDER, CANCEL, REPLACE */
    int32_t market;          /* ORDER: sim market index */
    int32_t qty;             /* ORDER; REPLACE (0 = unchanged) */
    int32_t min_qty;         /* ORDER */
    int32_t min_hours;       /* ORDER (offers) */
    int64_t price_micros;    /* ORDER; REPLACE (0 = unchanged) */
    int64_t amount_micros;   /* DEPOSIT */
    int64_t start_hour;      /* ORDER */
    int64_t end_hour;        /* ORDER */
    int64_t expire_at_hour;  /* ORDER, 0 = none */
    char account[SIM_NAME_LEN];
    char kind[SIM_KIND_LEN]; /* ACCOUNT: neocloud, hyperscaler, lab, ... */
    char ref[SIM_NAME_LEN];  /* ORDER, CANCEL, REPLACE */
} sim_cmd;

/* The first line of a day file. */
typedef struct sim_day_header {
    int32_t version;
    char scenario[SIM_NAME_LEN];
    uint64_t seed;
    int64_t start_hour;      /* hour of the day's first clock command */
    int32_t hours;           /* the day lasts [start, start + hours) */
    uint64_t events;         /* lines after the header */
    uint32_t accounts;       /* ACCOUNT lines */
    uint32_t orders;         /* ORDER lines */
} sim_day_header;

/* ---- generator (generate.c) ------------------------------------------- */

typedef enum sim_scenario {
    SIM_SCEN_BASELINE = 0,
    SIM_SCEN_SURPLUS = 1, /* hyperscaler-surplus */
    SIM_SCEN_CRUNCH = 2,  /* peak-crunch */
    SIM_SCEN_COUNT
} sim_scenario;

/* The hour of the day (0-based) at which hyperscaler-surplus releases its
 * fleet, and the peak hours [start, end) of peak-crunch. */
#define SIM_SURPLUS_RELEASE_HOUR 12
#define SIM_PEAK_START_HOUR 14
#define SIM_PEAK_END_HOUR 20

/* Scenario by its name ("baseline", "hyperscaler-surplus", "peak-crunch"),
 * or -1. */
int sim_scenario_find(const char *name);
const char *sim_scenario_name(sim_scenario s);

typedef struct sim_gen_config {
    sim_scenario scenario;
    uint64_t seed;
    uint64_t events;         /* approximate number of lines wanted */
    int64_t start_hour;      /* first hour of the day */
    int32_t hours;           /* 1..SIM_MAX_HOURS */
    uint64_t market_mask;    /* bit m = sim market m traded; 0 = all */
} sim_gen_config;

/* Defaults: baseline, seed 1, 30000 events, 2026-12-01T00Z, 24 hours,
 * every market. */
void sim_gen_config_default(sim_gen_config *cfg);

/* Parses a --markets list: comma-separated "GPU", "GPU/REGION" or
 * "*\/REGION" items into a market mask. Returns 0, or -1 with a reason. */
int sim_markets_parse(const char *list, uint64_t *mask, char *err,
                      size_t errlen);

/* Generates the day described by cfg and writes the day file to out.
 * Deterministic: the same cfg gives byte-identical output. Returns 0, or -1
 * with a reason (bad cfg, write error). *hdr (may be NULL) receives the
 * header written. Allocates its working tables at the start, frees them
 * before returning. */
int sim_generate(const sim_gen_config *cfg, FILE *out, sim_day_header *hdr,
                 char *err, size_t errlen);

/* ---- day-file reader (dayfile.c) --------------------------------------- */

typedef struct sim_dayfile sim_dayfile;

/* Opens a day file (path, or an open stream fp named name) and reads and
 * validates its header line. The path or name starts every message
 * ("day.jsonl: line 7: ..."). Returns NULL with a reason. The reader owns
 * fp from the call on, also on failure (sim_dayfile_close closes it), and
 * allocates its name tables from the header's counts (at most
 * SIM_MAX_ACCOUNTS / SIM_MAX_ORDERS). Single-threaded, like every
 * object here. */
sim_dayfile *sim_dayfile_open(const char *path, char *err, size_t errlen);
sim_dayfile *sim_dayfile_open_stream(FILE *fp, const char *name, char *err,
                                     size_t errlen);
const sim_day_header *sim_dayfile_header(const sim_dayfile *d);

/* Reads the next command. Every line is parsed strictly: one JSON object,
 * no unknown fields, every field of the right type and range, times
 * non-decreasing and inside the day, accounts created before use, order
 * refs unique and defined before a cancel/replace names them, counts not
 * beyond the header's. Returns 1 with *cmd filled, 0 at a clean end of
 * file (the line count must match the header), -1 with a reason naming
 * the line. After -1 the reader only returns -1. */
int sim_dayfile_next(sim_dayfile *d, sim_cmd *cmd, char *err, size_t errlen);

/* Line number of the last line read (1 = the header). */
uint64_t sim_dayfile_line(const sim_dayfile *d);

/* Name of account idx / ref of order idx as read so far, or NULL. */
const char *sim_dayfile_account_name(const sim_dayfile *d, uint32_t idx);
const char *sim_dayfile_order_ref(const sim_dayfile *d, uint32_t idx);

/* Index of an account name / order ref read so far, or -1. */
int64_t sim_dayfile_find_account(const sim_dayfile *d, const char *name);
int64_t sim_dayfile_find_order(const sim_dayfile *d, const char *ref);

/* Closes the file and frees the reader. NULL is fine. */
void sim_dayfile_close(sim_dayfile *d);

/* ---- report (report.c, plot.c, trades.c) ------------------------------- */

/* A fill as the report needs it. Orders and accounts are the day file's
 * dense indexes. */
typedef struct sim_trade {
    int64_t t_s;             /* seconds since the day's start */
    uint32_t market;         /* sim market index */
    uint32_t buyer_idx;
    uint32_t provider_idx;
    uint32_t buy_order_idx;
    uint32_t sell_order_idx;
    int32_t qty;
    int64_t price_micros;
    int64_t start_hour;
    int64_t end_hour;
    int64_t buyer_fee_micros;
    int64_t provider_fee_micros;
} sim_trade;

typedef struct sim_report sim_report;

/* Creates an empty report for a day of `hours` hours with room for
 * max_orders orders and max_accounts accounts (allocated here, nothing on
 * the add paths). NULL when out of range or out of memory. */
sim_report *sim_report_create(int32_t hours, uint32_t max_orders,
                              uint32_t max_accounts);
void sim_report_destroy(sim_report *r);

/* Records account idx's name and kind (for the provider table). Returns 0,
 * -1 when idx is out of range. */
int sim_report_account(sim_report *r, uint32_t idx, const char *name,
                       const char *kind);

/* Records an accepted order (cmd->op == SIM_OP_ORDER) placed at cmd->t_s.
 * Returns 0, -1 when its indexes or fields are out of range. */
int sim_report_order(sim_report *r, const sim_cmd *cmd);

/* An accepted replace: new qty (0 = unchanged) of order idx. 0 or -1. */
int sim_report_replace(sim_report *r, uint32_t order_idx, int32_t qty);

/* A rejected command of type op with the engine's reason code text (for
 * the rejects table; code is copied). */
void sim_report_reject(sim_report *r, uint8_t op, const char *code);

/* Records one trade. Validated (indexes known, buy order a bid of the
 * same market, qty/price/window in range, window inside the bid's); 0 or
 * -1 with nothing recorded. */
int sim_report_trade(sim_report *r, const sim_trade *t);

typedef struct sim_market_stats {
    uint64_t trades;
    int64_t traded_gpu_hours;      /* sum of qty x hours */
    __int128 notional_micros;      /* sum of price x qty x hours */
    int64_t vwap_micros;           /* notional / GPU-hours, half up; -1 if none */
    int64_t demand_gpu_hours;      /* bids: qty x hours of accepted bids */
    int64_t filled_gpu_hours;      /* bids: filled qty x hours */
    int64_t unfilled_gpu_hours;    /* demand - filled */
    int64_t offered_gpu_hours;     /* offers: qty x hours */
    int32_t fill_rate_bps;         /* filled / demand in 1/100 %, -1 if none */
    int32_t utilisation_bps;       /* sold / offered in 1/100 %, -1 if none */
    __int128 fees_micros;          /* buyer + provider fees */
    int64_t low_micros;            /* lowest / highest trade price, -1 if none */
    int64_t high_micros;
} sim_market_stats;

/* Statistics of one sim market (0..SIM_N_MARKETS-1), or of all markets
 * together with market = -1. Returns 0, -1 for a bad index. */
int sim_report_market(const sim_report *r, int market, sim_market_stats *out);

/* VWAP of the trades of one GPU type (all regions; gpu_idx -1 = all types)
 * whose trade time falls in day hours [h0, h1), in micros (half up), or -1
 * when nothing traded there. *gpu_hours (may be NULL) gets the volume. */
int64_t sim_report_vwap(const sim_report *r, int gpu_idx, int32_t h0,
                        int32_t h1, int64_t *gpu_hours);

/* Unfilled bid GPU-hours of the bids placed in day hours [h0, h1), and
 * their demand (may be NULL). */
int64_t sim_report_unfilled(const sim_report *r, int32_t h0, int32_t h1,
                            int64_t *demand_gpu_hours);

/* Hours of the day the report covers; VWAP (or -1) and GPU-hours of one
 * GPU type's trades in one day hour (0 <= gpu_idx < SIM_N_GPUS,
 * 0 <= hour < hours). */
int32_t sim_report_hours(const sim_report *r);
int64_t sim_report_bucket(const sim_report *r, int gpu_idx, int32_t hour,
                          int64_t *gpu_hours);

/* Prints the report as readable tables. Returns 0, -1 on a write error. */
int sim_report_print(const sim_report *r, FILE *out);

/* Writes the day's plot as a standalone SVG document: VWAP per GPU type per
 * hour (lines) and traded GPU-hours per hour (bars), under title (escaped;
 * NULL = a default). 0, -1 on write error. */
int sim_report_plot_svg(const sim_report *r, const char *title, FILE *out);

/* Builds a report from a day file and its trades file (JSON Lines written
 * by sim_day_run or a stack replay, docs/sim.md), merged by the day-file
 * line each trade names. Every order of the day counts as accepted (the
 * files do not say which the exchange rejected); a replace counts unless
 * the report refuses it (a bid lowered below its fills). Returns 0 with
 * *out (caller destroys) and *n_trades, or -1 with a reason naming the
 * file and line. */
int sim_report_from_files(const char *day_path, const char *trades_path,
                          sim_report **out, long *n_trades, char *err,
                          size_t errlen);

/* ---- in-process replay (day.c) ----------------------------------------- */

typedef struct sim_day_result {
    uint64_t commands;       /* day-file commands applied */
    uint64_t rejected;       /* of which the engine rejected */
    uint64_t trades;
    uint64_t engine_events;  /* events the engine emitted */
    uint64_t state_hash;     /* matcher_state_hash at the end */
    int64_t fee_balance_micros; /* the fee account's balance at the end */
    bool money_conserved;    /* deposits - withdrawals == sum of balances */
} sim_day_result;

/* Replays the day file at path through a fresh in-process engine built
 * from the catalog file catalog_path (matcher/catalog.default) with the
 * default config, feeding every accepted order, replace, reject and trade
 * into a new report (*out_report, caller destroys). When trades_out is not
 * NULL, every trade is also written to it as a JSON line. Returns 0, or -1
 * with a reason (unreadable or malformed day file, a market missing from
 * the catalog, engine failure). */
int sim_day_run(const char *path, const char *catalog_path, FILE *trades_out,
                sim_report **out_report, sim_day_result *res, char *err,
                size_t errlen);

#endif
