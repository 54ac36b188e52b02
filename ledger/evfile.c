/* evfile.c — the ledger's text event format: one matcher event per line.
 *
 * Why: the settler must be testable as a real process (SIGKILL it, restart
 * it, redeliver) without the matcher running, and a person must be able to
 * read and hand-edit a stream (e.g. to make a conflicting duplicate). The
 * format is documented in docs/ledger.md:
 *   M <market> <gpu> <region> <lot> <tick_micros>
 *   E <seq> <idx> <TYPE> <cmd_type> <ts_us> <fields of TYPE...>
 * Every field read is range-checked; a bad line is an error naming it. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "gpux_assert.h"
#include "ledger/ledger.h"

#define LINE_MAX_BYTES 1024
#define TOKENS_MAX 24

typedef struct type_def {
    const char *name;
    int n_fields; /* fields after ts_us */
} type_def;

static const type_def types[] = {
    [MATCHER_EV_REJECTED] = {"REJECTED", 2},
    [MATCHER_EV_ACCOUNT] = {"ACCOUNT", 3},
    [MATCHER_EV_DEPOSIT] = {"DEPOSIT", 2},
    [MATCHER_EV_WITHDRAWAL] = {"WITHDRAWAL", 2},
    [MATCHER_EV_BALANCE] = {"BALANCE", 3},
    [MATCHER_EV_ACCEPTED] = {"ACCEPTED", 14},
    [MATCHER_EV_REPLACED] = {"REPLACED", 14},
    [MATCHER_EV_TRADE] = {"TRADE", 15},
    [MATCHER_EV_LEASE] = {"LEASE", 15},
    [MATCHER_EV_DONE] = {"DONE", 6},
    [MATCHER_EV_CLOCK] = {"CLOCK", 1},
};

/* ---- writing -------------------------------------------------------------- */

static void write_name(FILE *f, const char *s)
{
    if (!s[0]) {
        fputc('-', f);
        return;
    }
    if (!strcmp(s, "-")) { /* a name that is one dash: not "no name" */
        fputs("%2D", f);
        return;
    }
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c == '%' || c >= 0x7f)
            fprintf(f, "%%%02X", c);
        else
            fputc(c, f);
    }
}

void ledger_evfile_write_market(FILE *f, uint32_t id, const matcher_market_def *m)
{
    fprintf(f, "M %u %s %s %d %" PRId64 "\n", id, m->gpu, m->region, m->lot, m->tick_micros);
}

void ledger_evfile_write(FILE *f, const ledger_rec *r)
{
    const matcher_event *e = &r->ev;
    GPUX_ASSERT(e->type >= 1 && e->type < GPUX_ARRAY_LEN(types));
    fprintf(f, "E %" PRIu64 " %u %s %u %" PRId64, r->seq, r->idx, types[e->type].name,
            e->cmd_type, e->ts_us);
    switch (e->type) {
    case MATCHER_EV_REJECTED:
        fprintf(f, " %u %" PRIu64, e->u.rejected.reason, e->u.rejected.order_id);
        break;
    case MATCHER_EV_ACCOUNT:
        fprintf(f, " %u %u ", e->u.account.account, e->u.account.roles);
        write_name(f, r->name);
        break;
    case MATCHER_EV_DEPOSIT:
    case MATCHER_EV_WITHDRAWAL:
        fprintf(f, " %u %" PRId64, e->u.transfer.account, e->u.transfer.amount_micros);
        break;
    case MATCHER_EV_BALANCE:
        fprintf(f, " %u %" PRId64 " %" PRId64, e->u.balance.account,
                e->u.balance.balance_micros, e->u.balance.held_micros);
        break;
    case MATCHER_EV_ACCEPTED:
    case MATCHER_EV_REPLACED: {
        const matcher_order_info *o = &e->u.order;
        fprintf(f, " %" PRIu64 " %u %u %u %u %u %d %d %d %" PRId64 " %" PRId64 " %" PRId64
                   " %" PRId64 " %" PRId64,
                o->order_id, o->account, o->market, o->side, o->tif, o->single_provider, o->qty,
                o->min_qty, o->min_hours, o->price_micros, o->start_hour, o->end_hour,
                o->expire_at_hour, o->hold_micros);
        break;
    }
    case MATCHER_EV_TRADE:
    case MATCHER_EV_LEASE: {
        const matcher_fill_info *x = &e->u.fill;
        fprintf(f, " %" PRIu64 " %" PRIu64 " %" PRIu64 " %u %u %u %u %" PRId64 " %d %" PRId64
                   " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64,
                x->trade_id, x->buy_order_id, x->sell_order_id, x->buyer, x->provider, x->market,
                x->taker_side, x->price_micros, x->qty, x->start_hour, x->end_hour,
                x->notional_micros, x->buyer_fee_micros, x->provider_fee_micros, x->saving_micros);
        break;
    }
    case MATCHER_EV_DONE:
        fprintf(f, " %" PRIu64 " %u %u %u %u %d", e->u.done.order_id, e->u.done.account,
                e->u.done.market, e->u.done.side, e->u.done.reason, e->u.done.remaining_qty);
        break;
    case MATCHER_EV_CLOCK:
        fprintf(f, " %" PRId64, e->u.clock.hour);
        break;
    default:
        GPUX_ASSERT(0);
    }
    fputc('\n', f);
}

/* ---- reading ---------------------------------------------------------------- */

typedef struct tokens {
    char *t[TOKENS_MAX];
    int n;
    int next;
    bool bad;
    const char *bad_field;
} tokens;

static void split(char *line, tokens *tk)
{
    memset(tk, 0, sizeof *tk);
    for (char *save = NULL, *p = strtok_r(line, " \t\r\n", &save); p;
         p = strtok_r(NULL, " \t\r\n", &save)) {
        if (tk->n == TOKENS_MAX) {
            tk->bad = true;
            tk->bad_field = "too many fields";
            return;
        }
        tk->t[tk->n++] = p;
    }
}

/* Next token as a signed integer in [lo, hi]; marks tk bad otherwise. */
static int64_t num(tokens *tk, int64_t lo, int64_t hi, const char *what)
{
    if (tk->bad) return 0;
    if (tk->next >= tk->n) {
        tk->bad = true;
        tk->bad_field = what;
        return 0;
    }
    const char *s = tk->t[tk->next++];
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        tk->bad = true;
        tk->bad_field = what;
        return 0;
    }
    return v;
}

static uint64_t unum(tokens *tk, const char *what)
{
    return (uint64_t)num(tk, 0, INT64_MAX, what);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static void name_field(tokens *tk, char out[LEDGER_NAME_LEN])
{
    out[0] = '\0';
    if (tk->bad) return;
    if (tk->next >= tk->n) {
        tk->bad = true;
        tk->bad_field = "name";
        return;
    }
    const char *s = tk->t[tk->next++];
    if (!strcmp(s, "-")) return;
    size_t n = 0;
    for (; *s; s++) {
        int c = (unsigned char)*s;
        if (c == '%') {
            int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);
            if (lo < 0) { tk->bad = true; tk->bad_field = "name (%XX escape)"; return; }
            c = hi * 16 + lo;
            s += 2;
        }
        if (n + 1 >= LEDGER_NAME_LEN || c == 0) { tk->bad = true; tk->bad_field = "name"; return; }
        out[n++] = (char)c;
    }
    out[n] = '\0';
}

static void fill_fields(tokens *tk, matcher_fill_info *x)
{
    x->trade_id = unum(tk, "trade_id");
    x->buy_order_id = unum(tk, "buy_order_id");
    x->sell_order_id = unum(tk, "sell_order_id");
    x->buyer = (uint32_t)num(tk, 0, UINT32_MAX, "buyer");
    x->provider = (uint32_t)num(tk, 0, UINT32_MAX, "provider");
    x->market = (uint32_t)num(tk, 0, UINT32_MAX, "market");
    x->taker_side = (uint8_t)num(tk, 0, 255, "taker_side");
    x->price_micros = num(tk, INT64_MIN, INT64_MAX, "price");
    x->qty = (int32_t)num(tk, INT32_MIN, INT32_MAX, "qty");
    x->start_hour = num(tk, INT64_MIN, INT64_MAX, "start_hour");
    x->end_hour = num(tk, INT64_MIN, INT64_MAX, "end_hour");
    x->notional_micros = num(tk, INT64_MIN, INT64_MAX, "notional");
    x->buyer_fee_micros = num(tk, INT64_MIN, INT64_MAX, "buyer_fee");
    x->provider_fee_micros = num(tk, INT64_MIN, INT64_MAX, "provider_fee");
    x->saving_micros = num(tk, INT64_MIN, INT64_MAX, "saving");
}

static void order_fields(tokens *tk, matcher_order_info *o)
{
    o->order_id = unum(tk, "order_id");
    o->account = (uint32_t)num(tk, 0, UINT32_MAX, "account");
    o->market = (uint32_t)num(tk, 0, UINT32_MAX, "market");
    o->side = (uint8_t)num(tk, 0, 255, "side");
    o->tif = (uint8_t)num(tk, 0, 255, "tif");
    o->single_provider = (uint8_t)num(tk, 0, 255, "single_provider");
    o->qty = (int32_t)num(tk, INT32_MIN, INT32_MAX, "qty");
    o->min_qty = (int32_t)num(tk, INT32_MIN, INT32_MAX, "min_qty");
    o->min_hours = (int32_t)num(tk, INT32_MIN, INT32_MAX, "min_hours");
    o->price_micros = num(tk, INT64_MIN, INT64_MAX, "price");
    o->start_hour = num(tk, INT64_MIN, INT64_MAX, "start_hour");
    o->end_hour = num(tk, INT64_MIN, INT64_MAX, "end_hour");
    o->expire_at_hour = num(tk, INT64_MIN, INT64_MAX, "expire_at");
    o->hold_micros = num(tk, INT64_MIN, INT64_MAX, "hold");
}

/* Parses an E line (tokens after "E") into *r. */
static void parse_event(tokens *tk, ledger_rec *r)
{
    memset(r, 0, sizeof *r);
    r->seq = unum(tk, "seq");
    r->idx = (uint32_t)num(tk, 0, UINT32_MAX, "idx");
    if (tk->bad) return;
    if (tk->next >= tk->n) { tk->bad = true; tk->bad_field = "type"; return; }
    const char *tname = tk->t[tk->next++];
    matcher_event *e = &r->ev;
    for (uint16_t t = 1; t < GPUX_ARRAY_LEN(types); t++)
        if (types[t].name && !strcmp(types[t].name, tname)) e->type = t;
    if (!e->type) { tk->bad = true; tk->bad_field = "type (unknown event type)"; return; }
    if (tk->n - tk->next != 2 + types[e->type].n_fields) {
        tk->bad = true;
        tk->bad_field = "field count for this type";
        return;
    }
    e->cmd_type = (uint16_t)num(tk, 0, UINT16_MAX, "cmd_type");
    e->ts_us = num(tk, INT64_MIN, INT64_MAX, "ts_us");
    switch (e->type) {
    case MATCHER_EV_REJECTED:
        e->u.rejected.reason = (uint16_t)num(tk, 0, UINT16_MAX, "reason");
        e->u.rejected.order_id = unum(tk, "order_id");
        break;
    case MATCHER_EV_ACCOUNT:
        e->u.account.account = (uint32_t)num(tk, 0, UINT32_MAX, "account");
        e->u.account.roles = (uint32_t)num(tk, 0, UINT32_MAX, "roles");
        name_field(tk, r->name);
        break;
    case MATCHER_EV_DEPOSIT:
    case MATCHER_EV_WITHDRAWAL:
        e->u.transfer.account = (uint32_t)num(tk, 0, UINT32_MAX, "account");
        e->u.transfer.amount_micros = num(tk, INT64_MIN, INT64_MAX, "amount");
        break;
    case MATCHER_EV_BALANCE:
        e->u.balance.account = (uint32_t)num(tk, 0, UINT32_MAX, "account");
        e->u.balance.balance_micros = num(tk, INT64_MIN, INT64_MAX, "balance");
        e->u.balance.held_micros = num(tk, INT64_MIN, INT64_MAX, "held");
        break;
    case MATCHER_EV_ACCEPTED:
    case MATCHER_EV_REPLACED: order_fields(tk, &e->u.order); break;
    case MATCHER_EV_TRADE:
    case MATCHER_EV_LEASE: fill_fields(tk, &e->u.fill); break;
    case MATCHER_EV_DONE:
        e->u.done.order_id = unum(tk, "order_id");
        e->u.done.account = (uint32_t)num(tk, 0, UINT32_MAX, "account");
        e->u.done.market = (uint32_t)num(tk, 0, UINT32_MAX, "market");
        e->u.done.side = (uint8_t)num(tk, 0, 255, "side");
        e->u.done.reason = (uint8_t)num(tk, 0, 255, "reason");
        e->u.done.remaining_qty = (int32_t)num(tk, INT32_MIN, INT32_MAX, "remaining_qty");
        break;
    case MATCHER_EV_CLOCK: e->u.clock.hour = num(tk, INT64_MIN, INT64_MAX, "hour"); break;
    default: GPUX_ASSERT(0);
    }
}

static int parse_market(tokens *tk, matcher_catalog *cat)
{
    if (tk->n != 6) { tk->bad = true; tk->bad_field = "market line needs 5 fields"; return -1; }
    tk->next = 1;
    int64_t id = num(tk, 0, MATCHER_MAX_MARKETS - 1, "market id");
    tk->next = 4;
    int64_t lot = num(tk, 1, INT32_MAX, "lot");
    int64_t tick = num(tk, 1, MATCHER_MAX_PRICE_MICROS, "tick");
    if (tk->bad || !cat) return tk->bad ? -1 : 0;
    if ((uint32_t)id < cat->n_markets) return 0; /* already known */
    if ((uint32_t)id != cat->n_markets ||
        matcher_catalog_add(cat, tk->t[2], tk->t[3], (int32_t)lot, tick) != (int)id) {
        tk->bad = true;
        tk->bad_field = "market (ids must be 0, 1, ... and pairs unique)";
        return -1;
    }
    return 0;
}

/* Reads the next record (E line), handling M lines and comments on the way.
 * Returns 1, 0 at end of file, -1 on a bad line. */
static int next_rec(ledger_evreader *r, ledger_rec *out, matcher_catalog *cat, char *err,
                    size_t errlen)
{
    char line[LINE_MAX_BYTES];
    for (;;) {
        if (!fgets(line, sizeof line, r->f)) {
            if (ferror(r->f)) {
                snprintf(err, errlen, "read error after line %lu: %s", r->line_no, strerror(errno));
                return -1;
            }
            return 0;
        }
        r->line_no++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            snprintf(err, errlen, "line %lu: longer than %d bytes", r->line_no, LINE_MAX_BYTES - 2);
            return -1;
        }
        tokens tk;
        split(line, &tk);
        if (tk.n == 0 || tk.t[0][0] == '#') continue;
        if (!tk.bad && !strcmp(tk.t[0], "M")) {
            if (parse_market(&tk, cat) == 0) continue;
        } else if (!tk.bad && !strcmp(tk.t[0], "E")) {
            tk.next = 1;
            parse_event(&tk, out);
            if (!tk.bad) return 1;
        } else if (!tk.bad) {
            tk.bad_field = "line kind (expected M or E)";
        }
        snprintf(err, errlen, "line %lu: bad %s", r->line_no, tk.bad_field ? tk.bad_field : "line");
        return -1;
    }
}

long ledger_evfile_read(ledger_evreader *r, ledger_rec *recs, uint32_t max_recs,
                        matcher_catalog *cat, char *err, size_t errlen)
{
    GPUX_ASSERT(r && r->f && recs && max_recs > 0);
    /* an unfinished command carried from the last call starts the buffer */
    GPUX_ASSERT(r->carry_n <= max_recs && r->carry_off + r->carry_n <= max_recs);
    if (r->carry_n) memmove(recs, recs + r->carry_off, sizeof *recs * r->carry_n);
    uint32_t n = r->carry_n;
    r->carry_n = r->carry_off = 0;
    uint32_t cmd_start = 0; /* first record of the last command in recs */
    while (n > 0 && cmd_start < n - 1 && recs[cmd_start].seq != recs[n - 1].seq) cmd_start++;
    for (;;) {
        ledger_rec rec;
        int got = 1;
        if (r->have_pending) {
            rec = r->pending;
            r->have_pending = false;
        } else {
            got = next_rec(r, &rec, cat, err, errlen);
        }
        if (got < 0) return -1;
        if (got == 0) return n; /* end of file: every command is complete */
        if (n > 0 && rec.seq != recs[n - 1].seq) cmd_start = n;
        if (n == max_recs) {
            if (cmd_start == 0) {
                snprintf(err, errlen, "line %lu: command %" PRIu64 " has more than %u events",
                         r->line_no, rec.seq, max_recs);
                return -1;
            }
            /* full: hand back the complete commands, carry the rest */
            r->pending = rec;
            r->have_pending = true;
            r->carry_off = cmd_start;
            r->carry_n = n - cmd_start;
            return cmd_start;
        }
        recs[n++] = rec;
    }
}
