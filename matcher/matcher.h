/* matcher.h — the deterministic order-book engine for GPU capacity.
 *
 * A pure state machine: commands in, events out. No I/O, no wall clock,
 * no random numbers, no pointer-order dependence: the same sequence of
 * commands always gives the same events, ids and state hash. The matcher
 * service journals commands and replays them through this API.
 *
 * Threading: an engine is single-threaded. Nothing here locks; the caller
 * owns the engine and calls it from one thread at a time.
 *
 * Memory: every table is allocated by matcher_create() from the limits in
 * matcher_config; applying commands allocates nothing.
 *
 * The rules implemented here are ../shared/spec/market.md plus the
 * decisions recorded in docs/market-rules.md (event order, rounding,
 * expiry, taker rule, limits). */
#ifndef GPUX_MATCHER_H
#define GPUX_MATCHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- units and fixed limits ------------------------------------------ */

#define MATCHER_MICROS_PER_USD 1000000LL
#define MATCHER_MAX_PRICE_MICROS (1000LL * MATCHER_MICROS_PER_USD) /* $1000/GPU-h */
#define MATCHER_MAX_WINDOW_HOURS 8760     /* one year */
#define MATCHER_MAX_AHEAD_HOURS 17520     /* start at most 2 years ahead */
#define MATCHER_MAX_QTY 100000            /* GPUs per order */
#define MATCHER_MAX_AMOUNT_MICROS (1000000000LL * MATCHER_MICROS_PER_USD) /* $1e9 per deposit */
#define MATCHER_MAX_BALANCE_MICROS (100000000000LL * MATCHER_MICROS_PER_USD) /* $1e11 */
#define MATCHER_MAX_FEE_BPS 1000          /* 10% */
#define MATCHER_MAX_MARKETS 1024
#define MATCHER_MAX_FILLS_PER_COMMAND 4096 /* fills one command may create */
#define MATCHER_NAME_LEN 16               /* gpu / region id incl. NUL */
#define MATCHER_FEE_ACCOUNT 0u            /* the exchange's fee account */
/* Largest hour an order can reference relative to the clock: every resting
 * order expires within this many hours of the current clock. */
#define MATCHER_HORIZON_HOURS (MATCHER_MAX_AHEAD_HOURS + MATCHER_MAX_WINDOW_HOURS)
/* The clock never passes this hour, so every hour an order names fits in
 * 32 bits (about 245,000 years after 1970). */
#define MATCHER_MAX_CLOCK_HOUR (2147483647LL - MATCHER_HORIZON_HOURS - 1)

/* ---- catalog ----------------------------------------------------------- */

typedef struct matcher_market_def {
    char gpu[MATCHER_NAME_LEN];
    char region[MATCHER_NAME_LEN];
    int32_t lot;             /* GPUs per node; quantities are multiples */
    int64_t tick_micros;     /* price step per GPU-hour */
} matcher_market_def;

typedef struct matcher_catalog {
    uint32_t n_markets;
    matcher_market_def markets[MATCHER_MAX_MARKETS];
} matcher_catalog;

/* Parses catalog text (format in docs/catalog.md) into *cat, replacing its
 * contents. Returns 0, or -1 with a one-line reason in err (never NULL,
 * errlen > 0) naming the line. On error *cat is left empty. */
int matcher_catalog_parse(matcher_catalog *cat, const char *text, size_t len,
                          char *err, size_t errlen);

/* Reads and parses the catalog file at path. Same contract as parse; an
 * unreadable file is an error with the OS reason. */
int matcher_catalog_load(matcher_catalog *cat, const char *path, char *err,
                         size_t errlen);

/* Appends one market. Returns its market id (index), or -1 if the catalog
 * is full, a name is empty, too long or has a character outside
 * [A-Za-z0-9._-], lot is outside 1..100000, tick is outside 1..$1000, or
 * the pair already exists. */
int matcher_catalog_add(matcher_catalog *cat, const char *gpu,
                        const char *region, int32_t lot, int64_t tick_micros);

/* Market id of (gpu, region), or -1 when unknown. Exact, case-sensitive. */
int matcher_catalog_find(const matcher_catalog *cat, const char *gpu,
                         const char *region);

/* ---- configuration ----------------------------------------------------- */

typedef struct matcher_config {
    uint32_t max_accounts;          /* fee account included */
    uint32_t max_orders;            /* resting orders, all markets */
    uint32_t max_orders_per_market; /* resting orders in one market */
    uint32_t max_segments;          /* offer capacity breakpoints, all offers
                                       (64 B of address space each, resident
                                       as used: capacity.c, "Chunks") */
    int32_t maker_fee_bps;          /* 0..MATCHER_MAX_FEE_BPS */
    int32_t taker_fee_bps;          /* 0..MATCHER_MAX_FEE_BPS */
} matcher_config;

/* Fills *cfg with the defaults: 100k accounts, 1M orders, 200k per market,
 * 4M segments, maker 0 bps, taker 10 bps. */
void matcher_config_default(matcher_config *cfg);

/* ---- commands ---------------------------------------------------------- */

typedef enum matcher_cmd_type {
    MATCHER_CMD_CREATE_ACCOUNT = 1,
    MATCHER_CMD_DEPOSIT = 2,
    MATCHER_CMD_WITHDRAW = 3,
    MATCHER_CMD_NEW_ORDER = 4,
    MATCHER_CMD_CANCEL = 5,
    MATCHER_CMD_REPLACE = 6,
    MATCHER_CMD_ADVANCE_CLOCK = 7,
} matcher_cmd_type;

typedef enum matcher_side { MATCHER_BUY = 1, MATCHER_SELL = 2 } matcher_side;

typedef enum matcher_tif {
    MATCHER_GTC = 0,
    MATCHER_IOC = 1,
    MATCHER_FOK = 2,       /* bids only: offers are rejected bad_tif */
    MATCHER_POST_ONLY = 3,
} matcher_tif;

enum matcher_role {
    MATCHER_ROLE_BUYER = 1,
    MATCHER_ROLE_PROVIDER = 2,
    MATCHER_ROLE_ADMIN = 4,
};

/* One command. Fields not used by a command type must be zero (the engine
 * ignores them; the wire decoder enforces zero). Hours are whole UTC hours
 * since the Unix epoch. */
typedef struct matcher_cmd {
    uint8_t type;            /* matcher_cmd_type */
    uint8_t side;            /* NEW_ORDER */
    uint8_t tif;             /* NEW_ORDER */
    uint8_t single_provider; /* NEW_ORDER, bids only: 0 or 1 */
    uint32_t market;         /* NEW_ORDER */
    uint32_t account;        /* all but ADVANCE_CLOCK / CREATE_ACCOUNT */
    uint32_t roles;          /* CREATE_ACCOUNT: matcher_role bits */
    int64_t ts_us;           /* command time, µs since epoch; stamped into events */
    uint64_t order_id;       /* CANCEL, REPLACE */
    int64_t price_micros;    /* NEW_ORDER; REPLACE (0 = unchanged) */
    int64_t amount_micros;   /* DEPOSIT, WITHDRAW */
    int32_t qty;             /* NEW_ORDER; REPLACE (0 = unchanged) */
    int32_t min_qty;         /* NEW_ORDER: 0 = none (bids: all-or-none) */
    int32_t min_hours;       /* NEW_ORDER, offers only: 0 = none */
    int32_t reserved;
    int64_t start_hour;      /* NEW_ORDER */
    int64_t end_hour;        /* NEW_ORDER */
    int64_t expire_at_hour;  /* NEW_ORDER: 0 = none */
    int64_t clock_hour;      /* ADVANCE_CLOCK */
} matcher_cmd;

/* ---- results ----------------------------------------------------------- */

/* Why a command was rejected. matcher_reason_code() gives the api.md code. */
typedef enum matcher_reason {
    MATCHER_OK = 0,
    MATCHER_REJ_BAD_QTY,            /* qty/min_qty <= 0, > max, not lot multiple */
    MATCHER_REJ_BAD_WINDOW,         /* end <= start, too long, too far ahead */
    MATCHER_REJ_WINDOW_IN_PAST,     /* start before the clock's hour */
    MATCHER_REJ_BAD_PRICE,          /* <= 0, > max, not tick multiple */
    MATCHER_REJ_UNKNOWN_MARKET,
    MATCHER_REJ_INSUFFICIENT_FUNDS, /* hold or withdrawal > available */
    MATCHER_REJ_WOULD_MATCH,        /* post_only would have traded */
    MATCHER_REJ_UNKNOWN_ACCOUNT,
    MATCHER_REJ_UNKNOWN_ORDER,      /* not resting (never existed or closed) */
    MATCHER_REJ_FORBIDDEN,          /* missing role, or not the order's owner */
    MATCHER_REJ_BAD_AMOUNT,         /* deposit/withdraw amount <= 0 or > max */
    MATCHER_REJ_BAD_TIF,            /* unknown tif, or fok on an offer */
    MATCHER_REJ_BAD_SIDE,
    MATCHER_REJ_BAD_MIN_HOURS,      /* < 0, > window, or set on a bid */
    MATCHER_REJ_BAD_FLAGS,          /* single_provider on an offer or not 0/1 */
    MATCHER_REJ_BAD_EXPIRY,         /* expire_at not after the clock's hour */
    MATCHER_REJ_BAD_CLOCK,          /* clock moved backwards */
    MATCHER_REJ_BAD_ROLES,          /* unknown role bits */
    MATCHER_REJ_BAD_COMMAND,        /* unknown command type */
    MATCHER_REJ_BALANCE_LIMIT,      /* deposit would pass MAX_BALANCE */
    MATCHER_REJ_BOOK_FULL,          /* an order/segment/market table is full */
    MATCHER_REJ_ACCOUNTS_FULL,
    MATCHER_REASON_COUNT
} matcher_reason;

/* Why an order left the book. */
typedef enum matcher_done_reason {
    MATCHER_DONE_FILLED = 1,
    MATCHER_DONE_CANCELLED = 2, /* by a cancel command */
    MATCHER_DONE_EXPIRED = 3,   /* clock reached its start/end/expire_at */
    MATCHER_DONE_UNFILLED = 4,  /* ioc/fok remainder after matching */
} matcher_done_reason;

typedef enum matcher_event_type {
    MATCHER_EV_REJECTED = 1,
    MATCHER_EV_ACCOUNT = 2,    /* account created */
    MATCHER_EV_DEPOSIT = 3,
    MATCHER_EV_WITHDRAWAL = 4,
    MATCHER_EV_BALANCE = 5,    /* an account's balance/held after a change */
    MATCHER_EV_ACCEPTED = 6,   /* order accepted (before any fill) */
    MATCHER_EV_REPLACED = 7,
    MATCHER_EV_TRADE = 8,      /* one fill between a bid and an offer */
    MATCHER_EV_LEASE = 9,      /* the lease that fill created */
    MATCHER_EV_DONE = 10,      /* order left the book */
    MATCHER_EV_CLOCK = 11,     /* clock advanced */
} matcher_event_type;

/* A trade and the lease it creates carry the same fields. */
typedef struct matcher_fill_info {
    uint64_t trade_id;          /* = lease id */
    uint64_t buy_order_id;
    uint64_t sell_order_id;
    uint32_t buyer;
    uint32_t provider;
    uint32_t market;
    uint8_t taker_side;         /* matcher_side of the taker */
    uint8_t pad[3];
    int64_t price_micros;       /* per GPU-hour: the earlier order's price */
    int32_t qty;
    int32_t pad2;
    int64_t start_hour;
    int64_t end_hour;
    int64_t notional_micros;    /* price x qty x hours */
    int64_t buyer_fee_micros;
    int64_t provider_fee_micros;
    int64_t saving_micros;      /* (bid limit - price) x qty x hours */
} matcher_fill_info;

typedef struct matcher_order_info {
    uint64_t order_id;
    uint32_t account;
    uint32_t market;
    uint8_t side;
    uint8_t tif;
    uint8_t single_provider;
    uint8_t pad;
    int32_t qty;
    int32_t min_qty;
    int32_t min_hours;
    int64_t price_micros;
    int64_t start_hour;
    int64_t end_hour;
    int64_t expire_at_hour;
    int64_t hold_micros;        /* bids: the hold after this event; offers 0 */
} matcher_order_info;

typedef struct matcher_event {
    uint16_t type;              /* matcher_event_type */
    uint16_t cmd_type;          /* the command that caused it */
    uint32_t pad;
    int64_t ts_us;              /* the command's timestamp */
    union {
        struct { uint16_t reason; uint64_t order_id; } rejected;
        struct { uint32_t account; uint32_t roles; } account;
        struct { uint32_t account; int64_t amount_micros; } transfer; /* DEPOSIT, WITHDRAWAL */
        struct { uint32_t account; int64_t balance_micros; int64_t held_micros; } balance;
        matcher_order_info order;                 /* ACCEPTED, REPLACED */
        matcher_fill_info fill;                   /* TRADE, LEASE */
        struct {
            uint64_t order_id; uint32_t account; uint32_t market;
            uint8_t side; uint8_t reason;         /* matcher_done_reason */
            int32_t remaining_qty;                /* bids: qty not filled */
        } done;
        struct { int64_t hour; } clock;
    } u;
} matcher_event;

/* Receives each event as it happens. The event is only valid during the
 * call (copy it to keep it). Must not call back into the engine. */
typedef void (*matcher_emit_fn)(void *ctx, const matcher_event *ev);

/* ---- engine ------------------------------------------------------------ */

typedef struct matcher_engine matcher_engine;

/* Creates an engine with the fee account (id 0) and the clock at hour 0.
 * Copies cat and cfg. Returns NULL if cfg is out of range (max_accounts
 * 1..2^24, max_orders 1..2^26, max_orders_per_market <= max_orders,
 * max_segments >= 2 x MATCHER_MAX_FILLS_PER_COMMAND + 2, fees 0..1000 bps)
 * or memory for the tables cannot be had. Owned by the caller: free with
 * matcher_destroy. */
matcher_engine *matcher_create(const matcher_catalog *cat,
                               const matcher_config *cfg);
void matcher_destroy(matcher_engine *e);

/* Applies one command. Emits its events in the order docs/market-rules.md
 * fixes (a rejected command emits exactly one MATCHER_EV_REJECTED and
 * changes nothing). emit may be NULL. Returns MATCHER_OK or the reason. */
matcher_reason matcher_apply(matcher_engine *e, const matcher_cmd *cmd,
                             matcher_emit_fn emit, void *ctx);

/* A hint before matcher_apply: ahead[0 .. n_ahead) are the commands that
 * will follow the one about to be applied (ahead[0] next), in order. Starts
 * loading from memory what the first five will read (matcher/prefetch.c:
 * a pipeline, one hop of each command's chain of look-ups per call), so
 * that in a large book their cache misses overlap the work in between.
 * Reads the engine, changes nothing, emits nothing; any command is safe
 * (invalid ones are skipped), and a wrong or stale hint only costs time:
 * results never depend on it. Same thread as matcher_apply. */
#define MATCHER_PREFETCH_AHEAD 5 /* commands it looks at; more are ignored */
void matcher_prefetch(const matcher_engine *e, const matcher_cmd *ahead, uint32_t n_ahead);

/* The api.md error code for a reason ("bad_qty", "not_found", ...) and a
 * sentence a person can act on. Never NULL. */
const char *matcher_reason_code(matcher_reason r);
const char *matcher_reason_message(matcher_reason r);

/* ---- queries (read-only, never change state) --------------------------- */

typedef struct matcher_account_view {
    uint32_t account;
    uint32_t roles;
    int64_t balance_micros;
    int64_t held_micros;        /* sum of open bid holds */
    uint32_t open_orders;
} matcher_account_view;

typedef struct matcher_order_view {
    matcher_order_info info;    /* as accepted, with price/qty after replaces */
    int32_t filled_qty;         /* bids: GPUs filled; offers: 0 */
    int32_t remaining_qty;      /* bids: qty - filled; offers: largest
                                   remaining capacity in any open hour */
    uint32_t provider_lock;     /* single_provider bids after a fill, else 0 */
    uint32_t pad;
    uint64_t priority;          /* time priority: smaller is earlier */
} matcher_order_view;

const matcher_catalog *matcher_catalog_of(const matcher_engine *e);
int64_t matcher_clock_hour(const matcher_engine *e);
uint32_t matcher_account_count(const matcher_engine *e);
uint32_t matcher_order_count(const matcher_engine *e);
uint64_t matcher_next_order_id(const matcher_engine *e);
uint64_t matcher_next_trade_id(const matcher_engine *e);

/* Returns 0 and fills *out, or -1 when the account does not exist. */
int matcher_account_get(const matcher_engine *e, uint32_t account,
                        matcher_account_view *out);

/* Returns 0 and fills *out, or -1 when the order is not resting. */
int matcher_order_get(const matcher_engine *e, uint64_t order_id,
                      matcher_order_view *out);

/* An offer's remaining capacity in one hour: 0 outside its window, for a
 * passed hour, or when order_id is not a resting offer. */
int32_t matcher_offer_capacity(const matcher_engine *e, uint64_t order_id,
                               int64_t hour);

/* Smallest remaining capacity of an offer over [start, end) (0 when the
 * window is not inside the offer's open hours). */
int32_t matcher_offer_avail(const matcher_engine *e, uint64_t order_id,
                            int64_t start_hour, int64_t end_hour);

/* Calls fn for each resting order of one market side in matching priority
 * order (best first) until fn returns false. fn must not modify e. */
typedef bool (*matcher_walk_fn)(void *ctx, const matcher_order_view *o);
void matcher_book_walk(const matcher_engine *e, uint32_t market, uint8_t side,
                       matcher_walk_fn fn, void *ctx);

/* Money that entered and left the exchange, for the conservation check
 * deposits - withdrawals == sum of balances. */
void matcher_totals(const matcher_engine *e, int64_t *deposited_micros,
                    int64_t *withdrawn_micros);

/* A 64-bit hash of the whole state (clock, counters, accounts, every
 * resting order with its priority and capacity). Equal states hash equal
 * whatever path led to them. */
uint64_t matcher_state_hash(const matcher_engine *e);

/* Checks every internal invariant (book sorted, holds, capacities, links,
 * indexes). Returns 0, or -1 with the first broken one in err. Slow:
 * for tests. */
int matcher_check(const matcher_engine *e, char *err, size_t errlen);

/* ---- snapshots --------------------------------------------------------- */

/* Serialises the whole state into a malloc'd buffer (*buf, *len; caller
 * frees). Returns 0, or -1 when memory cannot be had. */
int matcher_save(const matcher_engine *e, uint8_t **buf, size_t *len);

/* Builds an engine from a buffer made by matcher_save with the same
 * catalog and limits. Returns NULL (and a reason in err) when the buffer is
 * truncated, corrupt, from another version, or does not fit the limits.
 * The loaded engine hashes equal to the saved one. */
matcher_engine *matcher_load(const matcher_catalog *cat,
                             const matcher_config *cfg, const uint8_t *buf,
                             size_t len, char *err, size_t errlen);

#endif
