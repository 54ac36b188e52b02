/* gateway.h — the public header of the gateway module (bin/gpux-gateway).
 *
 * The gateway is the HTTP/HTTPS face of the exchange (../shared/spec/api.md)
 * in front of the matcher service. This header groups the small pieces it
 * is built from, each in its own file:
 *   money.c        exact decimal strings <-> int64 micro-dollars, RFC 3339
 *                  whole hours <-> hour numbers (no floating point)
 *   errors.c       api.md error codes, HTTP statuses, error bodies
 *   json_req.c     strict request decoding (unknown fields rejected)
 *   crypto.c       SHA-256 and CSPRNG bytes (the only OpenSSL user besides tls.c)
 *   auth.c         API keys: generation, hashing, the key table, roles
 *   ratelimit.c    per-key token buckets
 *   metrics.c      Prometheus counters and the latency histogram
 *
 * Threading: unless a contract says otherwise, everything here is used from
 * the gateway's single event-loop thread and does no locking.
 * Errors: functions return 0 / a status code; they never abort on bad
 * input (GPUX_ASSERT is for our own bugs only). */
#ifndef GPUX_GATEWAY_H
#define GPUX_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gpux_wire.h"
#include "matcher/matcher.h"

/* ---- logging (log.c) ----------------------------------------------------- */

/* Writes "<UTC time> gpux-gateway: <message>" as one line on stderr (no
 * trailing newline in fmt). Thread-safe (one stdio call per line). */
void gw_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- money and time (money.c) ------------------------------------------ */

/* Longest formatted money value incl. sign and NUL: "-9223372036854.775808". */
#define GW_MONEY_STR_LEN 24
/* "YYYY-MM-DDTHH:00:00Z" plus NUL. */
#define GW_TIME_STR_LEN 21
/* Hours are accepted for years 1970..9999. */
#define GW_HOUR_MAX 70389528LL /* 10000-01-01T00:00:00Z in hours */

/* Parses an unsigned decimal string of len bytes ("2.35", "1234.500000",
 * "7") exactly into micro-dollars: gpux_money_parse's grammar (1..12
 * digits, optionally '.' and 1..6 digits; no sign, exponent, spaces, or
 * more than 6 decimals). Returns 0 and sets *out_micros, or -1 (nothing
 * written); s NULL is -1. */
int gw_money_parse(const char *s, size_t len, int64_t *out_micros);

/* Formats micros as a decimal string with at least 2 and at most 6
 * decimals, trailing zeros trimmed ("2.35", "2.30", "0.000001", "-1.50").
 * buf must hold GW_MONEY_STR_LEN bytes. Returns buf. */
char *gw_money_format(int64_t micros, char *buf);

/* Writes v in decimal (no sign, no padding) and a NUL into buf, which
 * holds at least 21 bytes. Returns the digits written. */
size_t gw_u64_format(uint64_t v, char *buf);
/* The same for a signed value ('-' first when negative; 21 bytes). */
size_t gw_i64_format(int64_t v, char *buf);

/* Parses "YYYY-MM-DDTHH:00:00Z" (exactly that form, a whole UTC hour,
 * years 1970..9999) into hours since the Unix epoch. Returns 0 or -1. */
int gw_hour_parse(const char *s, size_t len, int64_t *out_hour);

/* Formats an hour number as "YYYY-MM-DDTHH:00:00Z" into buf
 * (GW_TIME_STR_LEN bytes). 0 <= hour < GW_HOUR_MAX. Returns buf. */
char *gw_hour_format(int64_t hour, char *buf);

/* Formats a µs timestamp as RFC 3339 UTC with seconds
 * ("2026-12-01T00:00:05Z"); buf holds GW_TIME_STR_LEN bytes. */
char *gw_time_format_us(int64_t ts_us, char *buf);

/* ---- errors (errors.c) -------------------------------------------------- */

typedef enum gw_err {
    GW_OK = 0,
    GW_ERR_BAD_JSON,
    GW_ERR_MISSING_FIELD,
    GW_ERR_BAD_FIELD,
    GW_ERR_BAD_WINDOW,
    GW_ERR_BAD_PRICE,
    GW_ERR_BAD_QTY,
    GW_ERR_UNKNOWN_MARKET,
    GW_ERR_UNAUTHENTICATED,
    GW_ERR_FORBIDDEN,
    GW_ERR_NOT_FOUND,
    GW_ERR_METHOD,          /* 405 method_not_allowed */
    GW_ERR_CONFLICT,
    GW_ERR_TOO_LARGE,
    GW_ERR_INSUFFICIENT_FUNDS,
    GW_ERR_WOULD_MATCH,
    GW_ERR_WINDOW_IN_PAST,
    GW_ERR_RATE_LIMITED,
    GW_ERR_UNAVAILABLE,
    GW_ERR_INTERNAL,
    GW_ERR_COUNT
} gw_err;

/* api.md code ("bad_json", ...) and HTTP status of an error. */
const char *gw_err_code(gw_err e);
int gw_err_status(gw_err e);

/* Maps an api.md code string (e.g. from matcher_reason_code) back to a
 * gw_err; unknown codes map to GW_ERR_INTERNAL. */
gw_err gw_err_from_code(const char *code);

/* The gw_err for an engine rejection reason. */
gw_err gw_err_from_reason(matcher_reason r);

/* Writes {"error":{"code":"...","message":"..."}} into buf (NUL-ended,
 * message JSON-escaped, truncated to fit). Returns the length written, or
 * -1 when cap is too small for even a truncated body (cap < 64). */
int gw_err_body(gw_err e, const char *message, char *buf, size_t cap);

/* ---- request decoding (json_req.c) -------------------------------------- */

#define GW_CLIENT_ID_MAX (WIRE_CLIENT_ID_LEN - 1) /* client_order_id bytes, no NUL */
#define GW_ACCOUNT_NAME_MAX (WIRE_NAME_LEN - 1) /* account name bytes, no NUL */

/* A decoding failure: which api.md error, and a message naming the field. */
typedef struct gw_req_error {
    gw_err err;
    char message[160];
} gw_req_error;

/* POST /v1/orders, decoded. cmd is a NEW_ORDER with every field set except
 * account and ts_us (the caller's). */
typedef struct gw_order_req {
    matcher_cmd cmd;
    char client_order_id[GW_CLIENT_ID_MAX + 1]; /* "" when absent */
} gw_order_req;

/* Decodes a POST /v1/orders body against the catalog. Returns 0 and fills
 * *out, or -1 and fills *err (nothing else happens). */
int gw_decode_order(const char *body, size_t len, const matcher_catalog *cat,
                    gw_order_req *out, gw_req_error *err);

/* PATCH /v1/orders/{id} body {"price"?, "qty"?}: at least one present.
 * Sets *price_micros / *qty to 0 when absent. */
int gw_decode_replace(const char *body, size_t len, int64_t *price_micros,
                      int32_t *qty, gw_req_error *err);

/* POST /v1/admin/accounts {"name", "roles": [...]}. name: 1..31 bytes of
 * printable ASCII; roles: a non-empty list of distinct known roles. */
int gw_decode_account(const char *body, size_t len, char *name_out,
                      uint32_t *roles_out, gw_req_error *err);

/* POST /v1/admin/deposits|withdrawals {"account_id", "amount"}.
 * account_id is a decimal string (or a JSON integer) of an id. */
int gw_decode_transfer(const char *body, size_t len, uint32_t *account_out,
                       int64_t *amount_micros_out, gw_req_error *err);

/* Parses an id path segment / query value: 1..20 decimal digits, no sign,
 * fits uint64. Returns 0 or -1. */
int gw_parse_id(const char *s, size_t len, uint64_t *out);

/* Roles: the bit for a role name, or 0 when unknown. */
uint32_t gw_role_bit(const char *name);

/* Finds a market by exact (gpu, region); -1 when unknown. */
int gw_market_find(const matcher_catalog *cat, const char *gpu,
                   const char *region);

/* ---- crypto (crypto.c) -------------------------------------------------- */

#define GW_SHA256_LEN 32

/* SHA-256 of len bytes into out. */
void gw_sha256(const void *data, size_t len, uint8_t out[GW_SHA256_LEN]);

/* Fills buf with len bytes from the OS CSPRNG. Returns 0, or -1 when the
 * generator failed (the caller must not issue a key then). */
int gw_random_bytes(uint8_t *buf, size_t len);

/* ---- API keys (auth.c) -------------------------------------------------- */

/* A key is "gpx_" followed by 64 lowercase hex digits (32 random bytes). */
#define GW_KEY_PREFIX "gpx_"
#define GW_KEY_LEN (4 + 64)

typedef struct gw_key_entry {
    uint8_t hash[GW_SHA256_LEN];
    uint32_t account;
    uint32_t roles;
    bool used;
} gw_key_entry;

/* The key table: open addressing on the hash, fixed capacity (allocated at
 * init). Holds hashes only; a key itself is never stored. */
typedef struct gw_keys {
    gw_key_entry *slots;
    uint32_t cap;      /* power of two */
    uint32_t count;
} gw_keys;

/* Allocates a table for at least max_keys keys. Returns 0 or -1 (ENOMEM). */
int gw_keys_init(gw_keys *t, uint32_t max_keys);
void gw_keys_free(gw_keys *t);

/* Generates a fresh key into key_out (GW_KEY_LEN + 1 bytes, NUL-ended) and
 * its hash into hash_out. Returns 0, or -1 when the CSPRNG failed. */
int gw_key_generate(char *key_out, uint8_t hash_out[GW_SHA256_LEN]);

/* Adds (hash -> account, roles). Returns 0, 1 when the hash was already
 * present (entry updated), or -1 when the table is full. */
int gw_keys_add(gw_keys *t, const uint8_t hash[GW_SHA256_LEN],
                uint32_t account, uint32_t roles);

/* Looks up an Authorization header value ("Bearer gpx_..."). Returns the
 * entry, or NULL when the header is missing, malformed, or the key is
 * unknown (all are 401 unauthenticated). */
const gw_key_entry *gw_keys_auth(const gw_keys *t, const char *authz);

/* Sets the roles of every key of an account (role changes are rare). */
void gw_keys_set_roles(gw_keys *t, uint32_t account, uint32_t roles);

/* ---- rate limiting (ratelimit.c) --------------------------------------- */

/* Token bucket per account: rate_per_s tokens per second, up to burst. */
typedef struct gw_bucket {
    int64_t tokens_milli;  /* thousandths of a token */
    int64_t last_ms;
} gw_bucket;

typedef struct gw_ratelimit {
    gw_bucket *buckets;    /* indexed by account id */
    uint32_t n_buckets;
    int64_t rate_per_s;    /* 0 = unlimited */
    int64_t burst;
} gw_ratelimit;

int gw_ratelimit_init(gw_ratelimit *rl, uint32_t max_accounts,
                      int64_t rate_per_s, int64_t burst);
void gw_ratelimit_free(gw_ratelimit *rl);

/* Takes one token for account at monotonic time now_ms. Returns 0 when
 * allowed, else the whole seconds (>= 1) to put in Retry-After. Accounts
 * past the table share the last bucket (a limit, not a failure). */
int gw_ratelimit_take(gw_ratelimit *rl, uint32_t account, int64_t now_ms);

/* ---- metrics (metrics.c) ------------------------------------------------ */

typedef enum gw_route {
    GW_ROUTE_HEALTHZ = 0,
    GW_ROUTE_METRICS,
    GW_ROUTE_MARKETS,
    GW_ROUTE_BOOK,
    GW_ROUTE_TRADES,
    GW_ROUTE_QUOTE,
    GW_ROUTE_STREAM,
    GW_ROUTE_ORDER_CREATE,
    GW_ROUTE_ORDER_GET,
    GW_ROUTE_ORDER_LIST,
    GW_ROUTE_ORDER_CANCEL,
    GW_ROUTE_ORDER_REPLACE,
    GW_ROUTE_ACCOUNT,
    GW_ROUTE_LEASES,
    GW_ROUTE_ADMIN_ACCOUNTS_CREATE,
    GW_ROUTE_ADMIN_ACCOUNTS_LIST,
    GW_ROUTE_ADMIN_DEPOSIT,
    GW_ROUTE_ADMIN_WITHDRAW,
    GW_ROUTE_OTHER,          /* unknown path */
    GW_ROUTE_COUNT
} gw_route;

#define GW_METRICS_STATUSES 14  /* distinct statuses tracked, see metrics.c */
#define GW_METRICS_BUCKETS 12   /* latency buckets incl. +Inf */

typedef struct gw_metrics {
    uint64_t requests[GW_ROUTE_COUNT][GW_METRICS_STATUSES];
    uint64_t latency_bucket[GW_METRICS_BUCKETS]; /* non-cumulative counts */
    uint64_t latency_count;
    uint64_t latency_sum_us;
    uint64_t orders_accepted;
    uint64_t orders_rejected;
    uint64_t trades;
    uint64_t cmd_batches;    /* batched command messages sent */
    uint64_t batched_cmds;   /* commands they carried */
    /* accepted batched orders, by where their events came from */
    uint64_t order_events_pub;   /* market data */
    uint64_t order_events_feed;  /* a FEED query */
    uint64_t order_events_none;  /* neither: an ORDER query */
    int64_t ledger_lag;      /* -1 = unknown */
    bool matcher_up;
    bool ledger_up;
} gw_metrics;

void gw_metrics_init(gw_metrics *m);
const char *gw_route_name(gw_route r);

/* Counts one request of route r answered with status after latency_us. */
void gw_metrics_request(gw_metrics *m, gw_route r, int status,
                        uint64_t latency_us);

/* Renders the Prometheus text exposition format (version 0.0.4) into buf.
 * Returns the length, or -1 when cap is too small. */
int gw_metrics_render(const gw_metrics *m, char *buf, size_t cap);

#endif
