/* dayfile.c — the strict day-file reader.
 *
 * A day file is outside input (it may be hand-edited, truncated, or come
 * from another version), so every line is parsed with jansson and checked
 * field by field before anything uses it: one JSON object per line, no
 * unknown or duplicate fields, right types, ranges of market.md, times
 * non-decreasing inside the day, names defined before use. The first bad
 * line stops the reader with a message that names the file and the line.
 *
 * Rules that depend on the engine's state (lot and tick of a market, a
 * window before the clock, funds) are left to the engine: such a line is a
 * valid command the exchange rejects, and the replay counts it.
 *
 * Names (accounts, order refs) are resolved into dense indexes through
 * open-addressing tables sized from the header's counts at open time, so
 * reading allocates nothing per line. Format: docs/sim.md. */
#include "sim/sim.h"

#include "gpux_assert.h"
#include "matcher/matcher.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- name tables ------------------------------------------------------ */

typedef struct name_table {
    char (*names)[SIM_NAME_LEN]; /* by dense index */
    uint32_t *slots;             /* index + 1, 0 = empty */
    uint32_t n;
    uint32_t cap;                /* names capacity */
    uint32_t mask;               /* slots - 1 (power of two) */
} name_table;

static int table_init(name_table *t, uint32_t cap)
{
    uint32_t slots = 16;
    while (slots < 2 * (uint64_t)cap + 2)
        slots *= 2;
    memset(t, 0, sizeof(*t));
    t->names = calloc(cap ? cap : 1, SIM_NAME_LEN);
    t->slots = calloc(slots, sizeof(uint32_t));
    t->cap = cap;
    t->mask = slots - 1;
    return t->names && t->slots ? 0 : -1;
}

static void table_free(name_table *t)
{
    free(t->names);
    free(t->slots);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

/* Index of name, or -1. *slot gets the slot where it is or would go. */
static int64_t table_find(const name_table *t, const char *name, uint32_t *slot)
{
    uint32_t i = (uint32_t)fnv1a(name) & t->mask;
    for (uint32_t probes = 0; probes <= t->mask; probes++) {
        uint32_t v = t->slots[i];
        if (v == 0) {
            *slot = i;
            return -1;
        }
        if (strcmp(t->names[v - 1], name) == 0) {
            *slot = i;
            return v - 1;
        }
        i = (i + 1) & t->mask;
    }
    GPUX_ASSERT(0); /* the table is never more than half full */
    return -1;
}

static uint32_t table_add(name_table *t, const char *name, uint32_t slot)
{
    GPUX_ASSERT(t->n < t->cap && t->slots[slot] == 0);
    strcpy(t->names[t->n], name);
    t->slots[slot] = t->n + 1;
    return t->n++;
}

/* ---- reader ----------------------------------------------------------- */

struct sim_dayfile {
    FILE *fp;
    char name[128];
    sim_day_header hdr;
    uint64_t line;
    int64_t last_t;
    int64_t clock_hour;
    bool failed;
    name_table accounts;
    name_table orders;
    char buf[SIM_MAX_LINE + 2];
};

static int fail(sim_dayfile *d, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(sim_dayfile *d, char *err, size_t errlen, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "%s: line %llu: %s", d->name,
             (unsigned long long)d->line, msg);
    d->failed = true;
    return -1;
}

/* Reads one line into d->buf without its newline. 1, 0 at EOF, -1. */
static int read_line(sim_dayfile *d, size_t *len, char *err, size_t errlen)
{
    if (!fgets(d->buf, sizeof(d->buf), d->fp)) {
        if (ferror(d->fp))
            return fail(d, err, errlen, "read error: %s", strerror(errno));
        return 0;
    }
    d->line++;
    size_t n = strlen(d->buf); /* a NUL byte cuts the line: no newline */
    if (n > SIM_MAX_LINE)
        return fail(d, err, errlen, "line longer than %d bytes", SIM_MAX_LINE);
    if (n == 0 || d->buf[n - 1] != '\n')
        return fail(d, err, errlen, "no newline at the end of the line (truncated "
                    "file or NUL byte?)");
    d->buf[--n] = '\0';
    *len = n;
    return 1;
}

static json_t *parse_object(sim_dayfile *d, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *o = json_loadb(d->buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        fail(d, err, errlen, "bad JSON at column %d: %s", je.column, je.text);
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        fail(d, err, errlen, "not a JSON object");
        return NULL;
    }
    return o;
}

/* Every key of o must be in the NULL-terminated list. */
static int check_keys(sim_dayfile *d, json_t *o, const char *const *allowed,
                      char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, key) == 0;
        if (!ok)
            return fail(d, err, errlen, "unknown field '%.40s'", key);
    }
    return 0;
}

/* ---- typed fields (each returns 0, 1 = absent and optional, -1) ------- */

static int field_int(sim_dayfile *d, json_t *o, const char *key, bool required,
                     int64_t lo, int64_t hi, int64_t *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        if (required)
            return fail(d, err, errlen, "missing field '%s'", key);
        return 1;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return fail(d, err, errlen, "field '%s' must be an integer %lld..%lld", key,
                    (long long)lo, (long long)hi);
    *out = json_integer_value(v);
    return 0;
}

static bool name_chars_ok(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

/* A string of 1..cap-1 bytes; names=true also limits the characters. */
static int field_str(sim_dayfile *d, json_t *o, const char *key, bool required,
                     bool name, char *out, size_t cap, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        if (required)
            return fail(d, err, errlen, "missing field '%s'", key);
        return 1;
    }
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    size_t n = s ? json_string_length(v) : 0;
    if (!s || n == 0 || n >= cap || strlen(s) != n || (name && !name_chars_ok(s)))
        return fail(d, err, errlen, "field '%s' must be a string of 1..%zu %s", key,
                    cap - 1, name ? "characters A-Z a-z 0-9 . _ -" : "bytes");
    memcpy(out, s, n + 1);
    return 0;
}

static int field_money(sim_dayfile *d, json_t *o, const char *key, bool required,
                       int64_t max_micros, int64_t *out, char *err, size_t errlen)
{
    char s[SIM_MONEY_LEN];
    int rc = field_str(d, o, key, required, false, s, sizeof(s), err, errlen);
    if (rc != 0)
        return rc;
    if (sim_parse_micros(s, max_micros, out) != 0 || *out <= 0) {
        char mb[SIM_MONEY_LEN];
        return fail(d, err, errlen, "field '%s' must be a decimal dollar string "
                    "like \"2.35\", > 0 and at most %s", key,
                    sim_fmt_micros(max_micros, mb));
    }
    return 0;
}

static int field_hour(sim_dayfile *d, json_t *o, const char *key, bool required,
                      int64_t *out, char *err, size_t errlen)
{
    char s[SIM_HOUR_LEN];
    json_t *v = json_object_get(o, key);
    if (v && json_is_null(v) && !required)
        return 1;
    int rc = field_str(d, o, key, required, false, s, sizeof(s), err, errlen);
    if (rc != 0)
        return rc;
    if (sim_parse_hour(s, out) != 0)
        return fail(d, err, errlen, "field '%s' must be an RFC 3339 UTC whole hour "
                    "like \"2026-12-01T00:00:00Z\"", key);
    return 0;
}

static int field_bool(sim_dayfile *d, json_t *o, const char *key, bool *out,
                      char *err, size_t errlen)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 1;
    if (!json_is_boolean(v))
        return fail(d, err, errlen, "field '%s' must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

static int lookup(sim_dayfile *d, name_table *t, const char *name, const char *what,
                  uint32_t *idx, char *err, size_t errlen)
{
    uint32_t slot;
    int64_t i = table_find(t, name, &slot);
    if (i < 0)
        return fail(d, err, errlen, "unknown %s '%s' (not defined on an earlier line)",
                    what, name);
    *idx = (uint32_t)i;
    return 0;
}

static int field_account(sim_dayfile *d, json_t *o, sim_cmd *c, char *err,
                         size_t errlen)
{
    if (field_str(d, o, "account", true, true, c->account, sizeof(c->account),
                  err, errlen) != 0)
        return -1;
    return lookup(d, &d->accounts, c->account, "account", &c->account_idx, err, errlen);
}

/* ---- commands --------------------------------------------------------- */

static int parse_clock(sim_dayfile *d, json_t *o, sim_cmd *c, char *err, size_t errlen)
{
    static const char *const keys[] = {"t", "op", "hour", NULL};
    if (check_keys(d, o, keys, err, errlen) || field_hour(d, o, "hour", true, &c->hour, err, errlen))
        return -1;
    if (c->hour < d->clock_hour || c->hour > d->hdr.start_hour + d->hdr.hours ||
        c->hour < d->hdr.start_hour)
        return fail(d, err, errlen, "clock hour must not go back and must stay "
                    "inside the day [start, start + hours]");
    d->clock_hour = c->hour;
    return 0;
}

static int parse_roles(sim_dayfile *d, json_t *o, uint32_t *roles, char *err,
                       size_t errlen)
{
    static const char *const names[3] = {"buyer", "provider", "admin"};
    json_t *a = json_object_get(o, "roles"), *v;
    size_t i;
    if (!a)
        return fail(d, err, errlen, "missing field 'roles'");
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > 3)
        return fail(d, err, errlen, "field 'roles' must be a list of 1 to 3 roles");
    *roles = 0;
    json_array_foreach(a, i, v) {
        int r = -1;
        for (int k = 0; k < 3 && json_is_string(v); k++)
            if (strcmp(json_string_value(v), names[k]) == 0)
                r = k;
        if (r < 0 || (*roles & (1u << r)))
            return fail(d, err, errlen, "field 'roles' must hold distinct "
                        "\"buyer\", \"provider\", \"admin\"");
        *roles |= 1u << r;
    }
    return 0;
}

static int parse_account(sim_dayfile *d, json_t *o, sim_cmd *c, char *err, size_t errlen)
{
    static const char *const keys[] = {"t", "op", "account", "kind", "roles", NULL};
    uint32_t slot;
    if (check_keys(d, o, keys, err, errlen) ||
        field_str(d, o, "account", true, true, c->account, sizeof(c->account), err, errlen) ||
        field_str(d, o, "kind", true, true, c->kind, sizeof(c->kind), err, errlen) ||
        parse_roles(d, o, &c->roles, err, errlen))
        return -1;
    if (table_find(&d->accounts, c->account, &slot) >= 0)
        return fail(d, err, errlen, "account '%s' created twice", c->account);
    if (d->accounts.n >= d->accounts.cap)
        return fail(d, err, errlen, "more accounts than the header's %u", d->hdr.accounts);
    c->account_idx = table_add(&d->accounts, c->account, slot);
    return 0;
}

static int parse_deposit(sim_dayfile *d, json_t *o, sim_cmd *c, char *err, size_t errlen)
{
    static const char *const keys[] = {"t", "op", "account", "amount", NULL};
    if (check_keys(d, o, keys, err, errlen) || field_account(d, o, c, err, errlen) ||
        field_money(d, o, "amount", true, MATCHER_MAX_AMOUNT_MICROS, &c->amount_micros,
                    err, errlen))
        return -1;
    return 0;
}

static int parse_tif(sim_dayfile *d, json_t *o, uint8_t *tif, char *err, size_t errlen)
{
    static const char *const names[4] = {"gtc", "ioc", "fok", "post_only"};
    char s[SIM_KIND_LEN];
    int rc = field_str(d, o, "tif", false, true, s, sizeof(s), err, errlen);
    *tif = SIM_GTC;
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    for (uint8_t i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *tif = i;
            return 0;
        }
    return fail(d, err, errlen, "field 'tif' must be gtc, ioc, fok or post_only");
}

static int parse_market(sim_dayfile *d, json_t *o, sim_cmd *c, char *err, size_t errlen)
{
    char gpu[SIM_ID_LEN], region[SIM_ID_LEN], side[8];
    if (field_str(d, o, "side", true, true, side, sizeof(side), err, errlen) ||
        field_str(d, o, "gpu", true, true, gpu, sizeof(gpu), err, errlen) ||
        field_str(d, o, "region", true, true, region, sizeof(region), err, errlen))
        return -1;
    if (strcmp(side, "buy") != 0 && strcmp(side, "sell") != 0)
        return fail(d, err, errlen, "field 'side' must be \"buy\" or \"sell\"");
    c->side = side[0] == 'b' ? SIM_BUY : SIM_SELL;
    c->market = sim_market_find(gpu, region);
    if (c->market < 0)
        return fail(d, err, errlen, "unknown market %s/%s", gpu, region);
    return 0;
}

static int parse_order_sizes(sim_dayfile *d, json_t *o, sim_cmd *c, char *err,
                             size_t errlen)
{
    int64_t qty = 0, min_qty = 0, min_hours = 0;
    bool sp = false;
    if (field_int(d, o, "qty", true, 1, MATCHER_MAX_QTY, &qty, err, errlen) < 0 ||
        field_int(d, o, "min_qty", false, 0, MATCHER_MAX_QTY, &min_qty, err, errlen) < 0 ||
        field_int(d, o, "min_hours", false, 0, MATCHER_MAX_WINDOW_HOURS, &min_hours,
                  err, errlen) < 0 ||
        field_bool(d, o, "single_provider", &sp, err, errlen) < 0 ||
        field_money(d, o, "price", true, MATCHER_MAX_PRICE_MICROS, &c->price_micros,
                    err, errlen) ||
        parse_tif(d, o, &c->tif, err, errlen))
        return -1;
    if (min_qty > qty)
        return fail(d, err, errlen, "min_qty %lld is larger than qty %lld",
                    (long long)min_qty, (long long)qty);
    c->qty = (int32_t)qty;
    c->min_qty = (int32_t)min_qty;
    c->min_hours = (int32_t)min_hours;
    c->single_provider = sp;
    return 0;
}

static int parse_order_window(sim_dayfile *d, json_t *o, sim_cmd *c, char *err,
                              size_t errlen)
{
    if (field_hour(d, o, "start", true, &c->start_hour, err, errlen) ||
        field_hour(d, o, "end", true, &c->end_hour, err, errlen) ||
        field_hour(d, o, "expire_at", false, &c->expire_at_hour, err, errlen) < 0)
        return -1;
    if (c->end_hour <= c->start_hour || c->end_hour - c->start_hour > MATCHER_MAX_WINDOW_HOURS)
        return fail(d, err, errlen, "window must have end > start and be at most "
                    "%d hours", MATCHER_MAX_WINDOW_HOURS);
    if (c->min_hours > c->end_hour - c->start_hour)
        return fail(d, err, errlen, "min_hours is longer than the window");
    return 0;
}

static int parse_order(sim_dayfile *d, json_t *o, sim_cmd *c, char *err, size_t errlen)
{
    static const char *const keys[] = {"t", "op", "account", "ref", "side", "gpu",
        "region", "start", "end", "qty", "price", "tif", "min_qty", "min_hours",
        "single_provider", "expire_at", NULL};
    uint32_t slot;
    if (check_keys(d, o, keys, err, errlen) || field_account(d, o, c, err, errlen) ||
        field_str(d, o, "ref", true, true, c->ref, sizeof(c->ref), err, errlen) ||
        parse_market(d, o, c, err, errlen) || parse_order_sizes(d, o, c, err, errlen) ||
        parse_order_window(d, o, c, err, errlen))
        return -1;
    if (table_find(&d->orders, c->ref, &slot) >= 0)
        return fail(d, err, errlen, "order ref '%s' used twice", c->ref);
    if (d->orders.n >= d->orders.cap)
        return fail(d, err, errlen, "more orders than the header's %u", d->hdr.orders);
    c->order_idx = table_add(&d->orders, c->ref, slot);
    return 0;
}

static int parse_cancel(sim_dayfile *d, json_t *o, sim_cmd *c, char *err, size_t errlen)
{
    static const char *const keys[] = {"t", "op", "account", "ref", NULL};
    if (check_keys(d, o, keys, err, errlen) || field_account(d, o, c, err, errlen) ||
        field_str(d, o, "ref", true, true, c->ref, sizeof(c->ref), err, errlen))
        return -1;
    return lookup(d, &d->orders, c->ref, "order ref", &c->order_idx, err, errlen);
}

static int parse_replace(sim_dayfile *d, json_t *o, sim_cmd *c, char *err, size_t errlen)
{
    static const char *const keys[] = {"t", "op", "account", "ref", "price", "qty", NULL};
    int64_t qty = 0;
    int rp, rq;
    if (check_keys(d, o, keys, err, errlen) || field_account(d, o, c, err, errlen) ||
        field_str(d, o, "ref", true, true, c->ref, sizeof(c->ref), err, errlen) ||
        lookup(d, &d->orders, c->ref, "order ref", &c->order_idx, err, errlen))
        return -1;
    rp = field_money(d, o, "price", false, MATCHER_MAX_PRICE_MICROS, &c->price_micros,
                     err, errlen);
    if (rp < 0)
        return -1;
    rq = field_int(d, o, "qty", false, 1, MATCHER_MAX_QTY, &qty, err, errlen);
    if (rq < 0)
        return -1;
    if (rp == 1 && rq == 1)
        return fail(d, err, errlen, "replace needs 'price' and/or 'qty'");
    c->qty = (int32_t)qty;
    return 0;
}

typedef int (*op_parser)(sim_dayfile *, json_t *, sim_cmd *, char *, size_t);

static const struct {
    const char *name;
    sim_op op;
    op_parser parse;
} ops[] = {
    {"clock", SIM_OP_CLOCK, parse_clock},
    {"account", SIM_OP_ACCOUNT, parse_account},
    {"deposit", SIM_OP_DEPOSIT, parse_deposit},
    {"order", SIM_OP_ORDER, parse_order},
    {"cancel", SIM_OP_CANCEL, parse_cancel},
    {"replace", SIM_OP_REPLACE, parse_replace},
};

static int parse_command(sim_dayfile *d, json_t *o, sim_cmd *c, char *err, size_t errlen)
{
    char op[SIM_KIND_LEN];
    int64_t t;
    memset(c, 0, sizeof(*c));
    if (field_int(d, o, "t", true, 0, (int64_t)d->hdr.hours * 3600, &t, err, errlen) ||
        field_str(d, o, "op", true, true, op, sizeof(op), err, errlen))
        return -1;
    if (t < d->last_t)
        return fail(d, err, errlen, "time t=%lld goes back (previous line t=%lld)",
                    (long long)t, (long long)d->last_t);
    c->t_s = t;
    for (size_t i = 0; i < GPUX_ARRAY_LEN(ops); i++)
        if (strcmp(op, ops[i].name) == 0) {
            c->op = (uint8_t)ops[i].op;
            if (ops[i].parse(d, o, c, err, errlen) != 0)
                return -1;
            d->last_t = t;
            return 0;
        }
    return fail(d, err, errlen, "unknown op '%s' (clock, account, deposit, order, "
                "cancel, replace)", op);
}

/* ---- header and public ------------------------------------------------ */

static int parse_header(sim_dayfile *d, json_t *o, char *err, size_t errlen)
{
    static const char *const keys[] = {"gpux_day", "scenario", "seed", "start",
        "hours", "events", "accounts", "orders", NULL};
    sim_day_header *h = &d->hdr;
    int64_t version, seed, hours, events, accounts, orders;
    if (check_keys(d, o, keys, err, errlen) ||
        field_int(d, o, "gpux_day", true, 1, 1000, &version, err, errlen))
        return -1;
    if (version != SIM_DAYFILE_VERSION)
        return fail(d, err, errlen, "day file version %lld, this reader knows %d",
                    (long long)version, SIM_DAYFILE_VERSION);
    if (field_str(d, o, "scenario", true, true, h->scenario, sizeof(h->scenario), err, errlen) ||
        field_int(d, o, "seed", true, 0, INT64_MAX, &seed, err, errlen) ||
        field_hour(d, o, "start", true, &h->start_hour, err, errlen) ||
        field_int(d, o, "hours", true, 1, SIM_MAX_HOURS, &hours, err, errlen) ||
        field_int(d, o, "events", true, 1, (int64_t)SIM_MAX_EVENTS, &events, err, errlen) ||
        field_int(d, o, "accounts", true, 0, SIM_MAX_ACCOUNTS, &accounts, err, errlen) ||
        field_int(d, o, "orders", true, 0, SIM_MAX_ORDERS, &orders, err, errlen))
        return -1;
    if (h->start_hour > MATCHER_MAX_CLOCK_HOUR - hours)
        return fail(d, err, errlen, "start is too far in the future");
    h->version = (int32_t)version;
    h->seed = (uint64_t)seed;
    h->hours = (int32_t)hours;
    h->events = (uint64_t)events;
    h->accounts = (uint32_t)accounts;
    h->orders = (uint32_t)orders;
    return 0;
}

static int read_header(sim_dayfile *d, char *err, size_t errlen)
{
    size_t len;
    int rc = read_line(d, &len, err, errlen);
    if (rc == 0)
        return fail(d, err, errlen, "empty file (no header line)");
    if (rc < 0)
        return -1;
    json_t *o = parse_object(d, len, err, errlen);
    if (!o)
        return -1;
    rc = parse_header(d, o, err, errlen);
    json_decref(o);
    if (rc != 0)
        return -1;
    d->clock_hour = d->hdr.start_hour;
    if (table_init(&d->accounts, d->hdr.accounts) || table_init(&d->orders, d->hdr.orders))
        return fail(d, err, errlen, "out of memory for %u accounts and %u orders",
                    d->hdr.accounts, d->hdr.orders);
    return 0;
}

sim_dayfile *sim_dayfile_open_stream(FILE *fp, const char *name, char *err,
                                     size_t errlen)
{
    sim_dayfile *d = calloc(1, sizeof(*d));
    if (!d) {
        fclose(fp);
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    d->fp = fp;
    snprintf(d->name, sizeof(d->name), "%s", name);
    if (read_header(d, err, errlen) != 0) {
        sim_dayfile_close(d);
        return NULL;
    }
    return d;
}

sim_dayfile *sim_dayfile_open(const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    return sim_dayfile_open_stream(fp, path, err, errlen);
}

const sim_day_header *sim_dayfile_header(const sim_dayfile *d)
{
    return &d->hdr;
}

uint64_t sim_dayfile_line(const sim_dayfile *d)
{
    return d->line;
}

int sim_dayfile_next(sim_dayfile *d, sim_cmd *cmd, char *err, size_t errlen)
{
    size_t len;
    if (d->failed) {
        snprintf(err, errlen, "%s: reader stopped at line %llu after an error",
                 d->name, (unsigned long long)d->line);
        return -1;
    }
    int rc = read_line(d, &len, err, errlen);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        if (d->line - 1 != d->hdr.events)
            return fail(d, err, errlen, "file ends after %llu events, the header "
                        "says %llu (truncated?)", (unsigned long long)(d->line - 1),
                        (unsigned long long)d->hdr.events);
        return 0;
    }
    if (d->line - 1 > d->hdr.events)
        return fail(d, err, errlen, "more events than the header's %llu",
                    (unsigned long long)d->hdr.events);
    json_t *o = parse_object(d, len, err, errlen);
    if (!o)
        return -1;
    rc = parse_command(d, o, cmd, err, errlen);
    json_decref(o);
    return rc == 0 ? 1 : -1;
}

const char *sim_dayfile_account_name(const sim_dayfile *d, uint32_t idx)
{
    return idx < d->accounts.n ? d->accounts.names[idx] : NULL;
}

const char *sim_dayfile_order_ref(const sim_dayfile *d, uint32_t idx)
{
    return idx < d->orders.n ? d->orders.names[idx] : NULL;
}

int64_t sim_dayfile_find_account(const sim_dayfile *d, const char *name)
{
    uint32_t slot;
    return d->accounts.slots ? table_find(&d->accounts, name, &slot) : -1;
}

int64_t sim_dayfile_find_order(const sim_dayfile *d, const char *ref)
{
    uint32_t slot;
    return d->orders.slots ? table_find(&d->orders, ref, &slot) : -1;
}

void sim_dayfile_close(sim_dayfile *d)
{
    if (!d)
        return;
    if (d->fp)
        fclose(d->fp);
    table_free(&d->accounts);
    table_free(&d->orders);
    free(d);
}
