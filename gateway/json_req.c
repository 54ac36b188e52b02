/* json_req.c — strict decoding of request bodies into engine commands.
 *
 * Every body is parsed by jansson (duplicate keys rejected), then checked
 * field by field: unknown fields are rejected, each field must have exactly
 * its JSON type, money is a decimal string parsed exactly (a JSON number
 * where a price belongs is bad_price: never read through a double), times
 * are whole UTC hours. Decoding has no side effects: a body either yields a
 * complete command or an error naming the field. The engine still applies
 * the market rules (lot, tick, window vs clock); this file only makes sure
 * what reaches it is well-formed. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gateway/gateway.h"
#include "gpux_assert.h"

#define MAX_FIELDS 16

/* ---- jansson's memory while a body is parsed --------------------------------
 *
 * Parsing one order body makes jansson call malloc and free some 40 times
 * (the object, its hash table and a rehash, each key twice, each value
 * and its text, the lexer's buffer), every request. The tree never
 * outlives the decode function that parsed it (each one drops it before
 * returning, and the loop thread parses one body at a time), so while
 * json_loadb runs its memory comes from a static arena reset at the next
 * parse, and freeing arena memory does nothing. Anything else jansson
 * allocates (reply trees, a body whose tree does not fit the arena) goes
 * to malloc and free as before: jansson_free tells the two apart by
 * address. The parser and every check are jansson's and ours exactly as
 * before; only where the bytes live changes. Not thread-safe: bodies are
 * decoded on the loop thread only (and in single-threaded tests). Off
 * under AddressSanitizer (parse_in_arena says why). */
#define ARENA_BYTES (64u * 1024u)
#define ARENA_ALIGN 16u

static _Alignas(ARENA_ALIGN) unsigned char arena[ARENA_BYTES];
static size_t arena_used;
static bool arena_on;

static void *jansson_malloc(size_t n)
{
    size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (arena_on && need >= n && need <= ARENA_BYTES - arena_used) {
        void *p = arena + arena_used;
        arena_used += need;
        return p;
    }
    return malloc(n);
}

static void jansson_free(void *p)
{
    const unsigned char *b = p;
    if (b >= arena && b < arena + ARENA_BYTES)
        return; /* reclaimed all at once at the next parse */
    free(p);
}

static json_t *parse_in_arena(const char *body, size_t len, json_error_t *jerr)
{
#if defined(__SANITIZE_ADDRESS__)
    /* Under AddressSanitizer jansson keeps malloc: ASan then sees every
     * node of the tree, so a decode that used the tree after dropping it
     * fails the san tests instead of reading stale arena bytes. (The rel
     * tests run the arena: glibc aborts on an arena address given to
     * free.) */
    return json_loadb(body, len, JSON_REJECT_DUPLICATES, jerr);
#endif
    static bool installed;
    if (!installed) {
        json_set_alloc_funcs(jansson_malloc, jansson_free);
        installed = true;
    }
    GPUX_ASSERT(!arena_on);
    arena_used = 0; /* the previous body's tree was dropped before its decode returned */
    arena_on = true;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, jerr);
    arena_on = false;
    return root;
}

static int fail(gw_req_error *err, gw_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(gw_req_error *err, gw_err e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    err->err = e;
    return -1;
}

/* Parses body into an object and rejects any key not in allowed. */
static json_t *load_object(const char *body, size_t len, const char *const *allowed,
                           gw_req_error *err)
{
    json_error_t jerr;
    json_t *root = parse_in_arena(body, len, &jerr);
    if (!root) {
        fail(err, GW_ERR_BAD_JSON, "body is not valid JSON: %s (line %d, column %d)",
             jerr.text, jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        fail(err, GW_ERR_BAD_JSON, "body must be a JSON object");
        return NULL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        bool known = false;
        for (int i = 0; allowed[i] && i < MAX_FIELDS; i++)
            if (strcmp(key, allowed[i]) == 0)
                known = true;
        if (!known) {
            char shown[48];
            snprintf(shown, sizeof shown, "%s", key);
            json_decref(root);
            fail(err, GW_ERR_BAD_FIELD, "unknown field '%s'", shown);
            return NULL;
        }
    }
    return root;
}

static int require(json_t *root, const char *const *required, gw_req_error *err)
{
    for (int i = 0; required[i] && i < MAX_FIELDS; i++)
        if (!json_object_get(root, required[i]))
            return fail(err, GW_ERR_MISSING_FIELD, "missing field '%s'", required[i]);
    return 0;
}

/* An integer field in [lo, hi]; absent leaves *out unchanged. */
static int get_int(json_t *root, const char *name, int64_t lo, int64_t hi,
                   int64_t *out, gw_err e, gw_req_error *err)
{
    json_t *v = json_object_get(root, name);
    if (!v)
        return 0;
    if (!json_is_integer(v))
        return fail(err, e, "%s must be an integer", name);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return fail(err, e, "%s must be between %lld and %lld", name, (long long)lo,
                    (long long)hi);
    *out = x;
    return 0;
}

/* A money field: a decimal string, exact. Absent leaves *out unchanged. */
static int get_money(json_t *root, const char *name, int64_t *out, gw_err e,
                     gw_req_error *err)
{
    json_t *v = json_object_get(root, name);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return fail(err, e, "%s must be a decimal string such as \"2.35\"", name);
    if (gw_money_parse(json_string_value(v), json_string_length(v), out) != 0)
        return fail(err, e,
                    "%s must be a decimal string with at most 6 decimals, e.g. \"2.35\"",
                    name);
    return 0;
}

static int get_hour(json_t *root, const char *name, int64_t *out, gw_err e,
                    gw_req_error *err)
{
    json_t *v = json_object_get(root, name);
    if (!v)
        return 0;
    if (!json_is_string(v) ||
        gw_hour_parse(json_string_value(v), json_string_length(v), out) != 0)
        return fail(err, e, "%s must be a whole UTC hour like \"2026-12-01T00:00:00Z\"",
                    name);
    return 0;
}

/* A string field of 1..max bytes in [lo_char, '~']; absent -> "" . */
static int get_text(json_t *root, const char *name, size_t max, char lo_char,
                    char *out, gw_req_error *err)
{
    json_t *v = json_object_get(root, name);
    out[0] = '\0';
    if (!v)
        return 0;
    if (!json_is_string(v))
        return fail(err, GW_ERR_BAD_FIELD, "%s must be a string", name);
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n == 0 || n > max)
        return fail(err, GW_ERR_BAD_FIELD, "%s must be 1 to %zu characters", name, max);
    for (size_t i = 0; i < n; i++)
        if (s[i] < lo_char || s[i] > '~')
            return fail(err, GW_ERR_BAD_FIELD, "%s must be printable ASCII", name);
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

int gw_market_find(const matcher_catalog *cat, const char *gpu, const char *region)
{
    for (uint32_t i = 0; i < cat->n_markets && i < MATCHER_MAX_MARKETS; i++)
        if (strcmp(cat->markets[i].gpu, gpu) == 0 &&
            strcmp(cat->markets[i].region, region) == 0)
            return (int)i;
    return -1;
}

static int decode_side_market(json_t *root, const matcher_catalog *cat,
                              matcher_cmd *cmd, gw_req_error *err)
{
    json_t *side = json_object_get(root, "side");
    const char *s = json_is_string(side) ? json_string_value(side) : "";
    if (strcmp(s, "buy") == 0)
        cmd->side = MATCHER_BUY;
    else if (strcmp(s, "sell") == 0)
        cmd->side = MATCHER_SELL;
    else
        return fail(err, GW_ERR_BAD_FIELD, "side must be \"buy\" or \"sell\"");
    json_t *gpu = json_object_get(root, "gpu");
    json_t *region = json_object_get(root, "region");
    if (!json_is_string(gpu))
        return fail(err, GW_ERR_BAD_FIELD, "gpu must be a string");
    if (!json_is_string(region))
        return fail(err, GW_ERR_BAD_FIELD, "region must be a string");
    int m = gw_market_find(cat, json_string_value(gpu), json_string_value(region));
    if (m < 0)
        return fail(err, GW_ERR_UNKNOWN_MARKET, "no market for gpu '%.15s' in region '%.15s'",
                    json_string_value(gpu), json_string_value(region));
    cmd->market = (uint32_t)m;
    return 0;
}

static int decode_tif(json_t *root, matcher_cmd *cmd, gw_req_error *err)
{
    static const char *const names[] = {"gtc", "ioc", "fok", "post_only"};
    json_t *v = json_object_get(root, "tif");
    cmd->tif = MATCHER_GTC;
    if (!v)
        return 0;
    for (unsigned i = 0; json_is_string(v) && i < GPUX_ARRAY_LEN(names); i++)
        if (strcmp(json_string_value(v), names[i]) == 0) {
            cmd->tif = (uint8_t)i;
            return 0;
        }
    return fail(err, GW_ERR_BAD_FIELD, "tif must be \"gtc\", \"ioc\", \"fok\" or \"post_only\"");
}

static int decode_flags(json_t *root, matcher_cmd *cmd, gw_req_error *err)
{
    json_t *sp = json_object_get(root, "single_provider");
    if (sp && !json_is_boolean(sp))
        return fail(err, GW_ERR_BAD_FIELD, "single_provider must be true or false");
    cmd->single_provider = sp && json_is_true(sp) ? 1 : 0;
    json_t *ex = json_object_get(root, "expire_at");
    cmd->expire_at_hour = 0;
    if (ex && !json_is_null(ex))
        return get_hour(root, "expire_at", &cmd->expire_at_hour, GW_ERR_BAD_FIELD, err);
    return 0;
}

int gw_decode_order(const char *body, size_t len, const matcher_catalog *cat,
                    gw_order_req *out, gw_req_error *err)
{
    static const char *const allowed[] = {
        "side", "gpu", "region", "start", "end", "qty", "price", "tif", "min_qty",
        "min_hours", "single_provider", "expire_at", "client_order_id", NULL};
    static const char *const required[] = {"side", "gpu", "region", "start",
                                           "end", "qty", "price", NULL};
    json_t *root = load_object(body, len, allowed, err);
    if (!root)
        return -1;
    memset(out, 0, sizeof *out);
    matcher_cmd *cmd = &out->cmd;
    cmd->type = MATCHER_CMD_NEW_ORDER;
    int64_t qty = 0, min_qty = 0, min_hours = 0;
    int rc = require(root, required, err);
    if (rc == 0)
        rc = decode_side_market(root, cat, cmd, err);
    if (rc == 0)
        rc = get_hour(root, "start", &cmd->start_hour, GW_ERR_BAD_WINDOW, err);
    if (rc == 0)
        rc = get_hour(root, "end", &cmd->end_hour, GW_ERR_BAD_WINDOW, err);
    if (rc == 0)
        rc = get_int(root, "qty", 1, MATCHER_MAX_QTY, &qty, GW_ERR_BAD_QTY, err);
    if (rc == 0)
        rc = get_int(root, "min_qty", 0, MATCHER_MAX_QTY, &min_qty, GW_ERR_BAD_QTY, err);
    if (rc == 0)
        rc = get_money(root, "price", &cmd->price_micros, GW_ERR_BAD_PRICE, err);
    if (rc == 0)
        rc = get_int(root, "min_hours", 0, MATCHER_MAX_WINDOW_HOURS, &min_hours,
                     GW_ERR_BAD_FIELD, err);
    if (rc == 0)
        rc = decode_tif(root, cmd, err);
    if (rc == 0)
        rc = decode_flags(root, cmd, err);
    if (rc == 0)
        rc = get_text(root, "client_order_id", GW_CLIENT_ID_MAX, '!',
                      out->client_order_id, err);
    json_decref(root);
    if (rc != 0)
        return -1;
    if (cmd->end_hour <= cmd->start_hour)
        return fail(err, GW_ERR_BAD_WINDOW, "end must be after start");
    cmd->qty = (int32_t)qty;
    cmd->min_qty = (int32_t)min_qty;
    cmd->min_hours = (int32_t)min_hours;
    return 0;
}

int gw_decode_replace(const char *body, size_t len, int64_t *price_micros,
                      int32_t *qty, gw_req_error *err)
{
    static const char *const allowed[] = {"price", "qty", NULL};
    json_t *root = load_object(body, len, allowed, err);
    if (!root)
        return -1;
    int64_t p = 0, q = 0;
    int rc = 0;
    if (!json_object_get(root, "price") && !json_object_get(root, "qty"))
        rc = fail(err, GW_ERR_MISSING_FIELD, "give price and/or qty to replace");
    if (rc == 0)
        rc = get_money(root, "price", &p, GW_ERR_BAD_PRICE, err);
    if (rc == 0 && json_object_get(root, "price") && p == 0)
        rc = fail(err, GW_ERR_BAD_PRICE, "price must be > 0");
    if (rc == 0)
        rc = get_int(root, "qty", 1, MATCHER_MAX_QTY, &q, GW_ERR_BAD_QTY, err);
    json_decref(root);
    if (rc != 0)
        return -1;
    *price_micros = p;
    *qty = (int32_t)q;
    return 0;
}

uint32_t gw_role_bit(const char *name)
{
    if (strcmp(name, "buyer") == 0)
        return MATCHER_ROLE_BUYER;
    if (strcmp(name, "provider") == 0)
        return MATCHER_ROLE_PROVIDER;
    if (strcmp(name, "admin") == 0)
        return MATCHER_ROLE_ADMIN;
    return 0;
}

static int decode_roles(json_t *root, uint32_t *roles_out, gw_req_error *err)
{
    json_t *roles = json_object_get(root, "roles");
    if (!json_is_array(roles) || json_array_size(roles) == 0 || json_array_size(roles) > 3)
        return fail(err, GW_ERR_BAD_FIELD,
                    "roles must be a non-empty list of \"buyer\", \"provider\", \"admin\"");
    uint32_t bits = 0;
    size_t i;
    json_t *r;
    json_array_foreach(roles, i, r) {
        uint32_t b = json_is_string(r) ? gw_role_bit(json_string_value(r)) : 0;
        if (b == 0 || (bits & b))
            return fail(err, GW_ERR_BAD_FIELD,
                        "roles must be distinct names among \"buyer\", \"provider\", \"admin\"");
        bits |= b;
    }
    *roles_out = bits;
    return 0;
}

int gw_decode_account(const char *body, size_t len, char *name_out,
                      uint32_t *roles_out, gw_req_error *err)
{
    static const char *const allowed[] = {"name", "roles", NULL};
    json_t *root = load_object(body, len, allowed, err);
    if (!root)
        return -1;
    int rc = require(root, allowed, err);
    if (rc == 0)
        rc = get_text(root, "name", GW_ACCOUNT_NAME_MAX, ' ', name_out, err);
    size_t n = rc == 0 ? strlen(name_out) : 0;
    if (rc == 0 && (name_out[0] == ' ' || name_out[n - 1] == ' '))
        rc = fail(err, GW_ERR_BAD_FIELD, "name must not start or end with a space");
    if (rc == 0)
        rc = decode_roles(root, roles_out, err);
    json_decref(root);
    return rc;
}

int gw_parse_id(const char *s, size_t len, uint64_t *out)
{
    if (!s || len == 0 || len > 20)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int decode_account_id(json_t *root, uint32_t *out, gw_req_error *err)
{
    json_t *v = json_object_get(root, "account_id");
    uint64_t id = UINT64_MAX;
    if (json_is_string(v)) {
        if (gw_parse_id(json_string_value(v), json_string_length(v), &id) != 0)
            id = UINT64_MAX;
    } else if (json_is_integer(v) && json_integer_value(v) >= 0) {
        id = (uint64_t)json_integer_value(v);
    }
    if (id > UINT32_MAX)
        return fail(err, GW_ERR_BAD_FIELD, "account_id must be an account id such as \"1\"");
    *out = (uint32_t)id;
    return 0;
}

int gw_decode_transfer(const char *body, size_t len, uint32_t *account_out,
                       int64_t *amount_micros_out, gw_req_error *err)
{
    static const char *const allowed[] = {"account_id", "amount", NULL};
    json_t *root = load_object(body, len, allowed, err);
    if (!root)
        return -1;
    int64_t amount = 0;
    int rc = require(root, allowed, err);
    if (rc == 0)
        rc = decode_account_id(root, account_out, err);
    if (rc == 0)
        rc = get_money(root, "amount", &amount, GW_ERR_BAD_FIELD, err);
    if (rc == 0 && (amount <= 0 || amount > MATCHER_MAX_AMOUNT_MICROS))
        rc = fail(err, GW_ERR_BAD_FIELD, "amount must be > 0 and at most 1000000000.00");
    json_decref(root);
    if (rc == 0)
        *amount_micros_out = amount;
    return rc;
}
