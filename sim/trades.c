/* trades.c — rebuilds a report from a day file and its trades file.
 *
 * `gpux-sim replay --trades-out` writes one line per trade, tagged with the
 * day-file line of the command that made it; a replay through the stack
 * can write the same format. The two files are merged by that line, so
 * every trade lands right after its command, as it happened (a replace
 * that lowers a bid after it filled is then refused, as the exchange
 * did). Reading is outside input: each line is parsed with jansson,
 * unknown fields are refused, refs and names must be the day file's, and
 * the report's own consistency checks (sim_report_trade) must pass. The
 * first bad line stops the load with its line number. Format: docs/sim.md. */
#include "sim/sim.h"

#include "matcher/matcher.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

static const char *str_field(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v)
               ? json_string_value(v) : NULL;
}

static bool int_field(json_t *o, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return false;
    *out = json_integer_value(v);
    return true;
}

static bool money_field(json_t *o, const char *key, int64_t *out)
{
    const char *s = str_field(o, key);
    return s && sim_parse_micros(s, INT64_MAX / 2, out) == 0;
}

static bool hour_field(json_t *o, const char *key, int64_t *out)
{
    const char *s = str_field(o, key);
    return s && sim_parse_hour(s, out) == 0;
}

/* Fills *t from one parsed line; NULL or the name of the bad field. */
static const char *decode_trade(json_t *o, const sim_dayfile *d, sim_trade *t)
{
    static const char *const keys[] = {"line", "trade_id", "t", "gpu", "region", "buy_ref",
        "sell_ref", "buyer", "provider", "qty", "price", "start", "end", "buyer_fee",
        "provider_fee", NULL};
    const char *key, *gpu, *region;
    json_t *v;
    int64_t qty, x;
    json_object_foreach(o, key, v) {
        const char *const *k = keys;
        while (*k && strcmp(*k, key) != 0)
            k++;
        if (!*k)
            return "unknown field";
    }
    memset(t, 0, sizeof(*t));
    if (!str_field(o, "trade_id"))
        return "field 'trade_id' missing or invalid";
    if (!int_field(o, "t", 0, (int64_t)SIM_MAX_HOURS * 3600, &t->t_s))
        return "field 't' missing or invalid";
    gpu = str_field(o, "gpu");
    region = str_field(o, "region");
    int m = gpu && region ? sim_market_find(gpu, region) : -1;
    if (m < 0)
        return "field 'gpu/region' missing or invalid";
    t->market = (uint32_t)m;
    const char *names[4] = {str_field(o, "buy_ref"), str_field(o, "sell_ref"),
                            str_field(o, "buyer"), str_field(o, "provider")};
    int64_t idx[4] = {names[0] ? sim_dayfile_find_order(d, names[0]) : -1,
                      names[1] ? sim_dayfile_find_order(d, names[1]) : -1,
                      names[2] ? sim_dayfile_find_account(d, names[2]) : -1,
                      names[3] ? sim_dayfile_find_account(d, names[3]) : -1};
    static const char *const what[4] = {
        "field 'buy_ref' missing or not an order of the day",
        "field 'sell_ref' missing or not an order of the day",
        "field 'buyer' missing or not an account of the day",
        "field 'provider' missing or not an account of the day"};
    for (int i = 0; i < 4; i++)
        if (idx[i] < 0)
            return what[i];
    t->buy_order_idx = (uint32_t)idx[0];
    t->sell_order_idx = (uint32_t)idx[1];
    t->buyer_idx = (uint32_t)idx[2];
    t->provider_idx = (uint32_t)idx[3];
    if (!int_field(o, "qty", 1, MATCHER_MAX_QTY, &qty))
        return "field 'qty' missing or invalid";
    t->qty = (int32_t)qty;
    if (!money_field(o, "price", &t->price_micros) || t->price_micros == 0 ||
        t->price_micros > MATCHER_MAX_PRICE_MICROS)
        return "field 'price' missing or invalid";
    if (!hour_field(o, "start", &t->start_hour) || !hour_field(o, "end", &t->end_hour))
        return "field 'start/end' missing or invalid";
    if (!money_field(o, "buyer_fee", &x))
        return "field 'buyer_fee' missing or invalid";
    t->buyer_fee_micros = x;
    if (!money_field(o, "provider_fee", &x))
        return "field 'provider_fee' missing or invalid";
    t->provider_fee_micros = x;
    return NULL;
}

/* ---- merging a day file and its trades file --------------------------- */

typedef struct trades_in {
    FILE *fp;
    const char *path;
    long line;
    json_t *next;            /* the next trade line, parsed, not decoded */
    uint64_t day_line;       /* the day-file line that made it */
    char buf[SIM_MAX_LINE + 2];
} trades_in;

/* Reads and parses the next line into in->next (NULL at the end). Names
 * are resolved later, once the day file has defined them. 0 or -1. */
static int trades_next(trades_in *in, char *err, size_t errlen)
{
    int64_t day_line;
    const char *bad = NULL;
    json_decref(in->next);
    in->next = NULL;
    if (!fgets(in->buf, sizeof(in->buf), in->fp)) {
        if (ferror(in->fp)) {
            snprintf(err, errlen, "%s: read error", in->path);
            return -1;
        }
        return 0;
    }
    in->line++;
    size_t len = strlen(in->buf);
    if (len == 0 || in->buf[len - 1] != '\n') {
        bad = "line too long or without newline";
    } else {
        json_error_t je;
        in->next = json_loadb(in->buf, len - 1, JSON_REJECT_DUPLICATES, &je);
        if (!in->next || !json_is_object(in->next))
            bad = "not a JSON object";
        else if (!int_field(in->next, "line", 2, (int64_t)SIM_MAX_EVENTS + 1, &day_line))
            bad = "field 'line' missing or invalid";
        else
            in->day_line = (uint64_t)day_line;
    }
    if (bad) {
        snprintf(err, errlen, "%s: line %ld: %s", in->path, in->line, bad);
        return -1;
    }
    return 0;
}

/* Feeds the report one day-file command as if the exchange accepted it. */
static void day_command(sim_report *r, const sim_cmd *c)
{
    if (c->op == SIM_OP_ACCOUNT)
        sim_report_account(r, c->account_idx, c->account, c->kind);
    else if (c->op == SIM_OP_ORDER)
        sim_report_order(r, c);
    else if (c->op == SIM_OP_REPLACE)
        sim_report_replace(r, c->order_idx, c->qty); /* refused once filled */
}

/* Applies every trade made by day line `line`. 0 or -1. */
static int trades_of_line(trades_in *in, sim_report *r, const sim_dayfile *d,
                          uint64_t line, long *n, char *err, size_t errlen)
{
    sim_trade t;
    while (in->next && in->day_line <= line) {
        const char *bad = in->day_line < line ? "trades out of day-file line order"
                                              : decode_trade(in->next, d, &t);
        if (!bad && sim_report_trade(r, &t) != 0)
            bad = "trade inconsistent with the day's orders";
        if (bad) {
            snprintf(err, errlen, "%s: line %ld: %s", in->path, in->line, bad);
            return -1;
        }
        (*n)++;
        if (trades_next(in, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static int merge(sim_dayfile *d, trades_in *in, sim_report *r, long *n, char *err,
                 size_t errlen)
{
    sim_cmd c;
    int rc;
    if (trades_next(in, err, errlen) != 0)
        return -1;
    while ((rc = sim_dayfile_next(d, &c, err, errlen)) == 1) {
        day_command(r, &c);
        if (trades_of_line(in, r, d, sim_dayfile_line(d), n, err, errlen) != 0)
            return -1;
    }
    if (rc == 0 && in->next) {
        snprintf(err, errlen, "%s: line %ld: trade names day line %llu, after the "
                 "day's end", in->path, in->line, (unsigned long long)in->day_line);
        return -1;
    }
    return rc;
}

int sim_report_from_files(const char *day_path, const char *trades_path,
                          sim_report **out, long *n_trades, char *err, size_t errlen)
{
    trades_in in = {.path = trades_path};
    sim_report *r = NULL;
    int rc = -1;
    *out = NULL;
    *n_trades = 0;
    sim_dayfile *d = sim_dayfile_open(day_path, err, errlen);
    if (!d)
        return -1;
    const sim_day_header *h = sim_dayfile_header(d);
    in.fp = fopen(trades_path, "r");
    if (!in.fp)
        snprintf(err, errlen, "%s: cannot open: %s", trades_path, strerror(errno));
    else if (!(r = sim_report_create(h->hours, h->orders, h->accounts)))
        snprintf(err, errlen, "out of memory for the report");
    else
        rc = merge(d, &in, r, n_trades, err, errlen);
    json_decref(in.next);
    if (in.fp)
        fclose(in.fp);
    sim_dayfile_close(d);
    if (rc != 0) {
        sim_report_destroy(r);
        return -1;
    }
    *out = r;
    return 0;
}
