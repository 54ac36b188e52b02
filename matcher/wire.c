/* wire.c — the codec for include/gpux_wire.h.
 *
 * The wire structs are little-endian extern structs without hidden
 * padding, so encoding is a memcpy of a zero-padded struct and decoding is
 * a bounds-checked memcpy followed by field-by-field validation. Every
 * decoder is written for hostile input: lengths are checked before any
 * read, every pad and unused field must be zero, every enum known, every
 * string NUL-terminated and NUL-padded. The fuzz target tests/fuzz_wire.c
 * drives all decoders. */
#include "gpux_wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gpux_assert.h"

/* ---- small helpers ------------------------------------------------------ */

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    GPUX_ASSERT(err != NULL && errlen > 0);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Every command is checked on the engine thread, ~100 string bytes each:
 * word-wide, not byte by byte (a byte loop was ~1,000 instructions per
 * command, measured with callgrind). */
static bool all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t acc = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, sizeof w);
        acc |= w;
    }
    for (; i < n; i++)
        acc |= b[i];
    return acc == 0;
}

/* A fixed string field: NUL-terminated within n, NUL-padded after, every
 * byte before the NUL in [lo, hi]. Returns its length or -1. */
static int check_str(const char *s, size_t n, uint8_t lo, uint8_t hi)
{
    size_t len = 0;
    while (len < n && s[len] != '\0') {
        uint8_t c = (uint8_t)s[len];
        if (c < lo || c > hi)
            return -1;
        len++;
    }
    if (len == n)
        return -1; /* no terminator */
    if (!all_zero(s + len, n - len))
        return -1;
    return (int)len;
}

size_t wire_item_size(uint16_t type)
{
    switch (type) {
    case WIRE_ITEM_EVENT: return sizeof(wire_event);
    case WIRE_ITEM_ORDER: return sizeof(wire_order);
    case WIRE_ITEM_FILL: return sizeof(wire_fill);
    case WIRE_ITEM_ACCOUNT: return sizeof(wire_account);
    case WIRE_ITEM_LEVEL: return sizeof(wire_level);
    case WIRE_ITEM_QUOTE: return sizeof(wire_quote);
    case WIRE_ITEM_KEY: return sizeof(wire_key);
    case WIRE_ITEM_STATUS: return sizeof(wire_status_item);
    case WIRE_ITEM_MARKET: return sizeof(wire_market);
    case WIRE_ITEM_RESULT: return sizeof(wire_result);
    default: return 0;
    }
}

static void put_hdr(uint8_t *buf, uint16_t kind, uint32_t body_len,
                    uint32_t count)
{
    wire_hdr h = {.magic = WIRE_MAGIC,
                  .version = WIRE_VERSION,
                  .kind = kind,
                  .body_len = body_len,
                  .count = count};
    memcpy(buf, &h, sizeof h);
}

/* ---- command validation ------------------------------------------------- */

/* Bit per field of wire_cmd a type may use (the rest must be zero). */
enum {
    F_SIDE = 1u << 0, F_TIF = 1u << 1, F_SINGLE = 1u << 2, F_MARKET = 1u << 3,
    F_ACCOUNT = 1u << 4, F_ROLES = 1u << 5, F_ORDER_ID = 1u << 6,
    F_PRICE = 1u << 7, F_AMOUNT = 1u << 8, F_QTY = 1u << 9,
    F_MIN_QTY = 1u << 10, F_MIN_HOURS = 1u << 11, F_START = 1u << 12,
    F_END = 1u << 13, F_EXPIRE = 1u << 14, F_CLOCK = 1u << 15,
    F_COID = 1u << 16, F_NAME = 1u << 17, F_KEY = 1u << 18,
};

static uint32_t cmd_fields(uint8_t type)
{
    switch (type) {
    case MATCHER_CMD_CREATE_ACCOUNT: return F_ROLES | F_NAME;
    case MATCHER_CMD_DEPOSIT:
    case MATCHER_CMD_WITHDRAW: return F_ACCOUNT | F_AMOUNT;
    case MATCHER_CMD_NEW_ORDER:
        return F_SIDE | F_TIF | F_SINGLE | F_MARKET | F_ACCOUNT | F_PRICE |
               F_QTY | F_MIN_QTY | F_MIN_HOURS | F_START | F_END | F_EXPIRE |
               F_COID;
    case MATCHER_CMD_CANCEL: return F_ACCOUNT | F_ORDER_ID | F_COID;
    case MATCHER_CMD_REPLACE: return F_ACCOUNT | F_ORDER_ID | F_COID | F_PRICE | F_QTY;
    case MATCHER_CMD_ADVANCE_CLOCK: return F_CLOCK;
    case WIRE_CMD_ADD_KEY: return F_ACCOUNT | F_KEY;
    default: return 0;
    }
}

/* The field is nonzero but the type does not use it. */
#define UNUSED_SET(bit, nonzero) (!(allowed & (bit)) && (nonzero))

static int check_cmd(const wire_cmd *c, char *err, size_t errlen)
{
    uint32_t allowed = cmd_fields(c->type);
    if (allowed == 0)
        return fail(err, errlen, "unknown command type %u", c->type);
    struct { uint32_t bit; bool nonzero; const char *name; } f[] = {
        {F_SIDE, c->side != 0, "side"},
        {F_TIF, c->tif != 0, "tif"},
        {F_SINGLE, c->single_provider != 0, "single_provider"},
        {F_MARKET, c->market != 0, "market"},
        {F_ACCOUNT, c->account != 0, "account"},
        {F_ROLES, c->roles != 0, "roles"},
        {F_ORDER_ID, c->order_id != 0, "order_id"},
        {F_PRICE, c->price_micros != 0, "price_micros"},
        {F_AMOUNT, c->amount_micros != 0, "amount_micros"},
        {F_QTY, c->qty != 0, "qty"},
        {F_MIN_QTY, c->min_qty != 0, "min_qty"},
        {F_MIN_HOURS, c->min_hours != 0, "min_hours"},
        {F_START, c->start_hour != 0, "start_hour"},
        {F_END, c->end_hour != 0, "end_hour"},
        {F_EXPIRE, c->expire_at_hour != 0, "expire_at_hour"},
        {F_CLOCK, c->clock_hour != 0, "clock_hour"},
        {F_COID, !all_zero(c->client_order_id, WIRE_CLIENT_ID_LEN), "client_order_id"},
        {F_NAME, !all_zero(c->name, WIRE_NAME_LEN), "name"},
        {F_KEY, !all_zero(c->key_hash, WIRE_KEY_HASH_LEN), "key_hash"},
    };
    for (size_t i = 0; i < GPUX_ARRAY_LEN(f); i++)
        if (UNUSED_SET(f[i].bit, f[i].nonzero))
            return fail(err, errlen, "command type %u must not set %s",
                        c->type, f[i].name);
    if (c->reserved != 0)
        return fail(err, errlen, "reserved field must be zero");
    if (c->ts_us < 0)
        return fail(err, errlen, "ts_us must not be negative");
    int n = check_str(c->client_order_id, WIRE_CLIENT_ID_LEN, 0x21, 0x7e);
    if (n < 0)
        return fail(err, errlen,
                    "client_order_id must be 1..39 printable ASCII bytes without spaces");
    if ((c->type == MATCHER_CMD_CANCEL || c->type == MATCHER_CMD_REPLACE) &&
        (c->order_id != 0) == (n > 0))
        return fail(err, errlen, "a cancel or replace names its order by exactly "
                    "one of order_id and client_order_id");
    n = check_str(c->name, WIRE_NAME_LEN, 0x20, 0x7e);
    if (n < 0 || (c->type == MATCHER_CMD_CREATE_ACCOUNT &&
                  (n == 0 || c->name[0] == ' ' || c->name[n - 1] == ' ')))
        return fail(err, errlen,
                    "name must be 1..31 printable ASCII bytes, no leading or trailing space");
    if (c->type == WIRE_CMD_ADD_KEY && all_zero(c->key_hash, WIRE_KEY_HASH_LEN))
        return fail(err, errlen, "key_hash must be a SHA-256, not all zero");
    return 0;
}

static int check_query(const wire_query *q, char *err, size_t errlen)
{
    if (q->type < WIRE_Q_STATUS || q->type >= WIRE_Q_COUNT_)
        return fail(err, errlen, "unknown query type %u", q->type);
    unsigned allowed = q->type == WIRE_Q_FEED ? WIRE_QF_OBSERVER : q->type == WIRE_Q_STATUS ? WIRE_QF_STATE_HASH : 0u;
    if (q->flags & ~allowed)
        return fail(err, errlen, "flags must be 0 (or observer on a feed query, state hash on a status query)");
    bool want_limit = false, want_account = false, want_market = false;
    bool want_order = false, want_after = false, want_index = false;
    bool want_window = false, want_qty = false, want_coid = false;
    switch (q->type) {
    case WIRE_Q_STATUS: break;
    case WIRE_Q_MARKETS: want_after = want_limit = true; break;
    case WIRE_Q_ORDER: want_order = true; break;
    case WIRE_Q_ORDER_BY_CLIENT_ID: want_account = want_coid = true; break;
    case WIRE_Q_OPEN_ORDERS: want_account = want_after = want_limit = true; break;
    case WIRE_Q_ACCOUNT: want_account = true; break;
    case WIRE_Q_ACCOUNTS: want_after = want_limit = true; break;
    case WIRE_Q_BOOK: want_market = want_limit = want_window = true; break;
    case WIRE_Q_QUOTE: want_market = want_window = want_qty = true; break;
    case WIRE_Q_TRADES: want_market = want_limit = true; break;
    case WIRE_Q_LEASES: want_account = want_after = want_limit = true; break;
    case WIRE_Q_KEYS: want_after = want_limit = true; break;
    case WIRE_Q_FEED: want_after = want_index = want_limit = true; break;
    default: GPUX_ASSERT(0);
    }
    if ((!want_account && q->account) || (!want_market && q->market) ||
        (!want_order && q->order_id) || (!want_after && q->after) ||
        (!want_index && q->after_index) || (!want_qty && q->qty) ||
        (!want_window && (q->start_hour || q->end_hour)) ||
        (!want_limit && q->limit) || (q->type != WIRE_Q_QUOTE && q->side) ||
        (!want_coid && !all_zero(q->client_order_id, WIRE_CLIENT_ID_LEN)))
        return fail(err, errlen, "query type %u sets a field it does not use",
                    q->type);
    uint32_t max = q->type == WIRE_Q_FEED ? WIRE_MAX_FEED_EVENTS
                                          : WIRE_MAX_QUERY_LIMIT;
    if (want_limit && (q->limit == 0 || q->limit > max))
        return fail(err, errlen, "limit must be 1..%u", max);
    if (q->type == WIRE_Q_QUOTE) {
        if (q->side != MATCHER_BUY && q->side != MATCHER_SELL)
            return fail(err, errlen, "quote side must be buy (1) or sell (2)");
        if (q->qty <= 0 || q->qty > MATCHER_MAX_QTY)
            return fail(err, errlen, "quote qty must be 1..%d", MATCHER_MAX_QTY);
    }
    if (want_window) {
        bool none = q->start_hour == 0 && q->end_hour == 0;
        bool quote = q->type == WIRE_Q_QUOTE;
        if ((quote || !none) &&
            (q->start_hour < 0 || q->end_hour <= q->start_hour ||
             q->end_hour - q->start_hour > MATCHER_MAX_WINDOW_HOURS))
            return fail(err, errlen,
                        "window must have 0 <= start < end, at most %d hours",
                        MATCHER_MAX_WINDOW_HOURS);
    }
    int n = check_str(q->client_order_id, WIRE_CLIENT_ID_LEN, 0x21, 0x7e);
    if (n < 0 || (want_coid && n == 0))
        return fail(err, errlen,
                    "client_order_id must be 1..39 printable ASCII bytes without spaces");
    return 0;
}

/* ---- item validation ---------------------------------------------------- */

static bool event_type_ok(uint16_t t)
{
    return t >= MATCHER_EV_REJECTED && t <= MATCHER_EV_CLOCK;
}

static bool cmd_type_ok(uint16_t t)
{
    return cmd_fields((uint8_t)t) != 0 && t < 256;
}

static int check_event(const wire_event *e, char *err, size_t errlen)
{
    if (!event_type_ok(e->type))
        return fail(err, errlen, "unknown event type %u", e->type);
    if (!cmd_type_ok(e->cmd_type))
        return fail(err, errlen, "unknown event cmd_type %u", e->cmd_type);
    if (!all_zero(e->pad, sizeof e->pad))
        return fail(err, errlen, "event pad must be zero");
    if (e->ts_us < 0)
        return fail(err, errlen, "event ts_us must not be negative");
    if (e->type == MATCHER_EV_REJECTED && e->reason >= MATCHER_REASON_COUNT)
        return fail(err, errlen, "unknown reject reason %u", e->reason);
    if (e->type == MATCHER_EV_DONE &&
        (e->reason < MATCHER_DONE_FILLED || e->reason > MATCHER_DONE_UNFILLED))
        return fail(err, errlen, "unknown done reason %u", e->reason);
    return 0;
}

static int check_item(uint16_t type, const wire_item *it, char *err,
                      size_t errlen)
{
    switch (type) {
    case WIRE_ITEM_EVENT: return check_event(&it->event, err, errlen);
    case WIRE_ITEM_ORDER: {
        const wire_order *o = &it->order;
        if (o->status < WIRE_ORDER_OPEN || o->status > WIRE_ORDER_UNFILLED)
            return fail(err, errlen, "unknown order status %u", o->status);
        if (o->side != MATCHER_BUY && o->side != MATCHER_SELL)
            return fail(err, errlen, "order side must be 1 or 2");
        if (o->pad != 0)
            return fail(err, errlen, "order pad must be zero");
        if (check_str(o->client_order_id, WIRE_CLIENT_ID_LEN, 0x21, 0x7e) < 0)
            return fail(err, errlen, "order client_order_id malformed");
        return 0;
    }
    case WIRE_ITEM_FILL:
        if (!all_zero(it->fill.pad, sizeof it->fill.pad) || it->fill.pad2)
            return fail(err, errlen, "fill pad must be zero");
        if (it->fill.taker_side != MATCHER_BUY && it->fill.taker_side != MATCHER_SELL)
            return fail(err, errlen, "fill taker_side must be 1 or 2");
        return 0;
    case WIRE_ITEM_ACCOUNT:
        if (it->account.pad != 0)
            return fail(err, errlen, "account pad must be zero");
        if (check_str(it->account.name, WIRE_NAME_LEN, 0x20, 0x7e) < 0)
            return fail(err, errlen, "account name malformed");
        return 0;
    case WIRE_ITEM_LEVEL:
        if (!all_zero(it->level.pad, sizeof it->level.pad))
            return fail(err, errlen, "level pad must be zero");
        if (it->level.side != MATCHER_BUY && it->level.side != MATCHER_SELL)
            return fail(err, errlen, "level side must be 1 or 2");
        return 0;
    case WIRE_ITEM_QUOTE:
        if (it->quote.fillable_qty < 0)
            return fail(err, errlen, "quote fillable_qty negative");
        return 0;
    case WIRE_ITEM_KEY: return 0;
    case WIRE_ITEM_STATUS:
        if (!all_zero(it->status.pad, sizeof it->status.pad) ||
            it->status.clock_sim > 1)
            return fail(err, errlen, "status pad must be zero");
        return 0;
    case WIRE_ITEM_MARKET:
        if (check_str(it->market.gpu, MATCHER_NAME_LEN, 0x21, 0x7e) <= 0 ||
            check_str(it->market.region, MATCHER_NAME_LEN, 0x21, 0x7e) <= 0)
            return fail(err, errlen, "market names malformed");
        return 0;
    case WIRE_ITEM_RESULT:
        if (it->result.status >= WIRE_ST_COUNT_ || it->result.reason >= MATCHER_REASON_COUNT)
            return fail(err, errlen, "result status/reason out of range");
        return 0;
    default: return fail(err, errlen, "unknown item type %u", type);
    }
}

/* ---- encoders ----------------------------------------------------------- */

size_t wire_encode_cmd(uint8_t *buf, size_t cap, const wire_cmd *c)
{
    char err[128];
    GPUX_ASSERT(check_cmd(c, err, sizeof err) == 0);
    size_t n = sizeof(wire_hdr) + sizeof(wire_cmd);
    if (cap < n)
        return 0;
    put_hdr(buf, WIRE_KIND_CMD, sizeof(wire_cmd), 1);
    memcpy(buf + sizeof(wire_hdr), c, sizeof *c);
    return n;
}

size_t wire_encode_cmds(uint8_t *buf, size_t cap, const wire_cmd *c, uint32_t n)
{
    char err[128];
    GPUX_ASSERT(n >= 1 && n <= WIRE_MAX_BATCH_CMDS);
    size_t need = sizeof(wire_hdr) + (size_t)n * sizeof(wire_cmd);
    if (cap < need)
        return 0;
    for (uint32_t i = 0; i < n; i++)
        GPUX_ASSERT(check_cmd(&c[i], err, sizeof err) == 0);
    put_hdr(buf, WIRE_KIND_CMD, (uint32_t)(need - sizeof(wire_hdr)), n);
    memcpy(buf + sizeof(wire_hdr), c, (size_t)n * sizeof(wire_cmd));
    return need;
}

size_t wire_encode_query(uint8_t *buf, size_t cap, const wire_query *q)
{
    char err[128];
    GPUX_ASSERT(check_query(q, err, sizeof err) == 0);
    size_t n = sizeof(wire_hdr) + sizeof(wire_query);
    if (cap < n)
        return 0;
    put_hdr(buf, WIRE_KIND_QUERY, sizeof(wire_query), 1);
    memcpy(buf + sizeof(wire_hdr), q, sizeof *q);
    return n;
}

size_t wire_reply_begin(uint8_t *buf, size_t cap, const wire_reply *r)
{
    GPUX_ASSERT(r->status < WIRE_ST_COUNT_ && r->pad == 0);
    GPUX_ASSERT(check_str(r->detail, WIRE_DETAIL_LEN, 0x20, 0x7e) >= 0);
    if (cap < WIRE_REPLY_BASE_BYTES)
        return 0;
    put_hdr(buf, WIRE_KIND_REPLY, sizeof(wire_reply), 0);
    memcpy(buf + sizeof(wire_hdr), r, sizeof *r);
    return WIRE_REPLY_BASE_BYTES;
}

size_t wire_pub_begin(uint8_t *buf, size_t cap)
{
    if (cap < sizeof(wire_hdr))
        return 0;
    put_hdr(buf, WIRE_KIND_PUB, 0, 0);
    return sizeof(wire_hdr);
}

size_t wire_append_item(uint8_t *buf, size_t cap, size_t len, uint16_t type,
                        const void *item)
{
    size_t sz = wire_item_size(type);
    GPUX_ASSERT(sz > 0 && len >= sizeof(wire_hdr));
    wire_hdr h;
    memcpy(&h, buf, sizeof h);
    GPUX_ASSERT(h.magic == WIRE_MAGIC && h.body_len + sizeof h == len);
    size_t n = len + sizeof(wire_item_hdr) + sz;
    if (n > cap || n > WIRE_MAX_MSG_BYTES || h.count >= WIRE_MAX_ITEMS)
        return 0;
    wire_item_hdr ih = {.type = type, .size = (uint32_t)sz};
    memcpy(buf + len, &ih, sizeof ih);
    memcpy(buf + len + sizeof ih, item, sz);
    h.count++;
    h.body_len = (uint32_t)(n - sizeof h);
    memcpy(buf, &h, sizeof h);
    return n;
}

/* ---- decoders ----------------------------------------------------------- */

int wire_decode_hdr(const uint8_t *buf, size_t len, wire_hdr *out, char *err,
                    size_t errlen)
{
    if (buf == NULL || len < sizeof(wire_hdr))
        return fail(err, errlen, "message truncated: %zu bytes, header needs %zu",
                    len, sizeof(wire_hdr));
    if (len > WIRE_MAX_MSG_BYTES)
        return fail(err, errlen, "message too large: %zu bytes", len);
    memcpy(out, buf, sizeof *out);
    if (out->magic != WIRE_MAGIC)
        return fail(err, errlen, "bad magic 0x%08x", out->magic);
    if (out->version != WIRE_VERSION)
        return fail(err, errlen, "wire version %u, this build speaks %u",
                    out->version, WIRE_VERSION);
    if (out->kind < WIRE_KIND_CMD || out->kind > WIRE_KIND_PUB)
        return fail(err, errlen, "unknown message kind %u", out->kind);
    if ((size_t)out->body_len != len - sizeof(wire_hdr))
        return fail(err, errlen, "body_len %u but %zu bytes follow the header",
                    out->body_len, len - sizeof(wire_hdr));
    if (out->count > WIRE_MAX_ITEMS)
        return fail(err, errlen, "count %u over the limit", out->count);
    return 0;
}

int wire_decode_cmd(const uint8_t *buf, size_t len, wire_cmd *out, char *err,
                    size_t errlen)
{
    wire_hdr h;
    if (wire_decode_hdr(buf, len, &h, err, errlen) < 0)
        return -1;
    if (h.kind != WIRE_KIND_CMD || h.count != 1 ||
        h.body_len != sizeof(wire_cmd))
        return fail(err, errlen, "not a command message (kind %u, %u bytes)",
                    h.kind, h.body_len);
    memcpy(out, buf + sizeof h, sizeof *out);
    return check_cmd(out, err, errlen);
}

int wire_decode_cmds(const uint8_t *buf, size_t len, wire_cmd *out,
                     uint32_t cap, uint32_t *n, char *err, size_t errlen)
{
    wire_hdr h;
    if (wire_decode_hdr(buf, len, &h, err, errlen) < 0)
        return -1;
    if (h.kind != WIRE_KIND_CMD || h.count == 0 || h.count > WIRE_MAX_BATCH_CMDS ||
        h.count > cap || (size_t)h.body_len != (size_t)h.count * sizeof(wire_cmd))
        return fail(err, errlen, "not a command batch (kind %u, count %u, %u bytes; "
                    "at most %u commands)", h.kind, h.count, h.body_len,
                    cap < WIRE_MAX_BATCH_CMDS ? cap : WIRE_MAX_BATCH_CMDS);
    for (uint32_t i = 0; i < h.count; i++) {
        memcpy(&out[i], buf + sizeof h + (size_t)i * sizeof(wire_cmd), sizeof(wire_cmd));
        char why[128];
        if (check_cmd(&out[i], why, sizeof why) < 0)
            return fail(err, errlen, "command %u of the batch: %s", i, why);
    }
    *n = h.count;
    return 0;
}

int wire_decode_query(const uint8_t *buf, size_t len, wire_query *out,
                      char *err, size_t errlen)
{
    wire_hdr h;
    if (wire_decode_hdr(buf, len, &h, err, errlen) < 0)
        return -1;
    if (h.kind != WIRE_KIND_QUERY || h.count != 1 ||
        h.body_len != sizeof(wire_query))
        return fail(err, errlen, "not a query message (kind %u, %u bytes)",
                    h.kind, h.body_len);
    memcpy(out, buf + sizeof h, sizeof *out);
    return check_query(out, err, errlen);
}

int wire_decode_reply(const uint8_t *buf, size_t len, wire_reply *out,
                      wire_reader *rd, char *err, size_t errlen)
{
    wire_hdr h;
    if (wire_decode_hdr(buf, len, &h, err, errlen) < 0)
        return -1;
    if (h.kind != WIRE_KIND_REPLY || h.body_len < sizeof(wire_reply))
        return fail(err, errlen, "not a reply message (kind %u, %u bytes)",
                    h.kind, h.body_len);
    memcpy(out, buf + sizeof h, sizeof *out);
    if (out->status >= WIRE_ST_COUNT_)
        return fail(err, errlen, "unknown reply status %u", out->status);
    if (out->reason >= MATCHER_REASON_COUNT)
        return fail(err, errlen, "unknown reply reason %u", out->reason);
    if (out->pad != 0 || (out->flags & ~WIRE_REPLY_TRUNCATED) != 0)
        return fail(err, errlen, "reply pad/flags must be zero");
    if (check_str(out->detail, WIRE_DETAIL_LEN, 0x20, 0x7e) < 0)
        return fail(err, errlen, "reply detail malformed");
    *rd = (wire_reader){.buf = buf, .len = len,
                        .off = WIRE_REPLY_BASE_BYTES, .left = h.count};
    return 0;
}

int wire_decode_pub(const uint8_t *buf, size_t len, wire_reader *rd,
                    char *err, size_t errlen)
{
    wire_hdr h;
    if (wire_decode_hdr(buf, len, &h, err, errlen) < 0)
        return -1;
    if (h.kind != WIRE_KIND_PUB)
        return fail(err, errlen, "not a pub message (kind %u)", h.kind);
    *rd = (wire_reader){.buf = buf, .len = len, .off = sizeof h,
                        .left = h.count};
    return 0;
}

int wire_reader_next(wire_reader *rd, uint16_t *type, wire_item *out,
                     char *err, size_t errlen)
{
    GPUX_ASSERT(rd->off <= rd->len);
    if (rd->left == 0) {
        if (rd->off != rd->len)
            return fail(err, errlen, "%zu stray bytes after the last item",
                        rd->len - rd->off);
        return 0;
    }
    wire_item_hdr ih;
    if (rd->len - rd->off < sizeof ih)
        return fail(err, errlen, "item header truncated");
    memcpy(&ih, rd->buf + rd->off, sizeof ih);
    size_t sz = wire_item_size(ih.type);
    if (sz == 0)
        return fail(err, errlen, "unknown item type %u", ih.type);
    if (ih.size != sz || ih.pad != 0)
        return fail(err, errlen, "item type %u has size %u, expected %zu",
                    ih.type, ih.size, sz);
    if (rd->len - rd->off - sizeof ih < sz)
        return fail(err, errlen, "item truncated");
    memset(out, 0, sizeof *out);
    memcpy(out, rd->buf + rd->off + sizeof ih, sz);
    if (check_item(ih.type, out, err, errlen) < 0)
        return -1;
    rd->off += sizeof ih + sz;
    rd->left--;
    *type = ih.type;
    return 1;
}

/* ---- engine conversions ------------------------------------------------- */

void wire_cmd_to_engine(const wire_cmd *w, matcher_cmd *out)
{
    GPUX_ASSERT(w->type >= MATCHER_CMD_CREATE_ACCOUNT &&
                w->type <= MATCHER_CMD_ADVANCE_CLOCK);
    *out = (matcher_cmd){
        .type = w->type, .side = w->side, .tif = w->tif,
        .single_provider = w->single_provider, .market = w->market,
        .account = w->account, .roles = w->roles, .ts_us = w->ts_us,
        .order_id = w->order_id, .price_micros = w->price_micros,
        .amount_micros = w->amount_micros, .qty = w->qty,
        .min_qty = w->min_qty, .min_hours = w->min_hours,
        .start_hour = w->start_hour, .end_hour = w->end_hour,
        .expire_at_hour = w->expire_at_hour, .clock_hour = w->clock_hour,
    };
}

static void fill_to_wire(wire_event *o, const matcher_fill_info *f)
{
    o->trade_id = f->trade_id;
    o->buy_order_id = f->buy_order_id;
    o->sell_order_id = f->sell_order_id;
    o->account = f->buyer;
    o->provider = f->provider;
    o->market = f->market;
    o->taker_side = f->taker_side;
    o->price_micros = f->price_micros;
    o->qty = f->qty;
    o->start_hour = f->start_hour;
    o->end_hour = f->end_hour;
    o->notional_micros = f->notional_micros;
    o->buyer_fee_micros = f->buyer_fee_micros;
    o->provider_fee_micros = f->provider_fee_micros;
    o->saving_micros = f->saving_micros;
}

static void order_to_wire(wire_event *o, const matcher_order_info *i)
{
    o->order_id = i->order_id;
    o->account = i->account;
    o->market = i->market;
    o->side = i->side;
    o->tif = i->tif;
    o->single_provider = i->single_provider;
    o->qty = i->qty;
    o->min_qty = i->min_qty;
    o->min_hours = i->min_hours;
    o->price_micros = i->price_micros;
    o->start_hour = i->start_hour;
    o->end_hour = i->end_hour;
    o->expire_at_hour = i->expire_at_hour;
    o->held_micros = i->hold_micros;
}

void wire_event_from_engine(wire_event *o, const matcher_event *ev,
                            uint64_t seq, uint32_t index)
{
    memset(o, 0, sizeof *o);
    o->seq = seq;
    o->index = index;
    o->type = ev->type;
    o->cmd_type = ev->cmd_type;
    o->ts_us = ev->ts_us;
    switch (ev->type) {
    case MATCHER_EV_REJECTED:
        o->reason = ev->u.rejected.reason;
        o->order_id = ev->u.rejected.order_id;
        break;
    case MATCHER_EV_ACCOUNT:
        o->account = ev->u.account.account;
        o->roles = ev->u.account.roles;
        break;
    case MATCHER_EV_DEPOSIT:
    case MATCHER_EV_WITHDRAWAL:
        o->account = ev->u.transfer.account;
        o->amount_micros = ev->u.transfer.amount_micros;
        break;
    case MATCHER_EV_BALANCE:
        o->account = ev->u.balance.account;
        o->amount_micros = ev->u.balance.balance_micros;
        o->held_micros = ev->u.balance.held_micros;
        break;
    case MATCHER_EV_ACCEPTED:
    case MATCHER_EV_REPLACED: order_to_wire(o, &ev->u.order); break;
    case MATCHER_EV_TRADE:
    case MATCHER_EV_LEASE: fill_to_wire(o, &ev->u.fill); break;
    case MATCHER_EV_DONE:
        o->order_id = ev->u.done.order_id;
        o->account = ev->u.done.account;
        o->market = ev->u.done.market;
        o->side = ev->u.done.side;
        o->reason = ev->u.done.reason;
        o->remaining_qty = ev->u.done.remaining_qty;
        break;
    case MATCHER_EV_CLOCK: o->hour = ev->u.clock.hour; break;
    default: GPUX_ASSERT(0 && "engine emitted an unknown event type");
    }
}

int wire_event_to_engine(const wire_event *w, matcher_event *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->type = w->type;
    ev->cmd_type = w->cmd_type;
    ev->ts_us = w->ts_us;
    switch (w->type) {
    case MATCHER_EV_REJECTED:
        ev->u.rejected.reason = w->reason;
        ev->u.rejected.order_id = w->order_id;
        return 0;
    case MATCHER_EV_ACCOUNT:
        ev->u.account.account = w->account;
        ev->u.account.roles = w->roles;
        return 0;
    case MATCHER_EV_DEPOSIT:
    case MATCHER_EV_WITHDRAWAL:
        ev->u.transfer.account = w->account;
        ev->u.transfer.amount_micros = w->amount_micros;
        return 0;
    case MATCHER_EV_BALANCE:
        ev->u.balance.account = w->account;
        ev->u.balance.balance_micros = w->amount_micros;
        ev->u.balance.held_micros = w->held_micros;
        return 0;
    case MATCHER_EV_ACCEPTED:
    case MATCHER_EV_REPLACED: {
        matcher_order_info *i = &ev->u.order;
        i->order_id = w->order_id;
        i->account = w->account;
        i->market = w->market;
        i->side = w->side;
        i->tif = w->tif;
        i->single_provider = w->single_provider;
        i->qty = w->qty;
        i->min_qty = w->min_qty;
        i->min_hours = w->min_hours;
        i->price_micros = w->price_micros;
        i->start_hour = w->start_hour;
        i->end_hour = w->end_hour;
        i->expire_at_hour = w->expire_at_hour;
        i->hold_micros = w->held_micros;
        return 0;
    }
    case MATCHER_EV_TRADE:
    case MATCHER_EV_LEASE: {
        matcher_fill_info *f = &ev->u.fill;
        f->trade_id = w->trade_id;
        f->buy_order_id = w->buy_order_id;
        f->sell_order_id = w->sell_order_id;
        f->buyer = w->account;
        f->provider = w->provider;
        f->market = w->market;
        f->taker_side = w->taker_side;
        f->price_micros = w->price_micros;
        f->qty = w->qty;
        f->start_hour = w->start_hour;
        f->end_hour = w->end_hour;
        f->notional_micros = w->notional_micros;
        f->buyer_fee_micros = w->buyer_fee_micros;
        f->provider_fee_micros = w->provider_fee_micros;
        f->saving_micros = w->saving_micros;
        return 0;
    }
    case MATCHER_EV_DONE:
        ev->u.done.order_id = w->order_id;
        ev->u.done.account = w->account;
        ev->u.done.market = w->market;
        ev->u.done.side = w->side;
        ev->u.done.reason = (uint8_t)w->reason;
        ev->u.done.remaining_qty = w->remaining_qty;
        return 0;
    case MATCHER_EV_CLOCK: ev->u.clock.hour = w->hour; return 0;
    default: return -1;
    }
}

/* ---- topics and names ---------------------------------------------------- */

size_t wire_pub_split(const uint8_t *buf, size_t len)
{
    size_t lim = len < WIRE_TOPIC_MAX ? len : WIRE_TOPIC_MAX;
    for (size_t i = 0; i < lim; i++)
        if (buf[i] == 0)
            return i + 1;
    return 0;
}

const char *wire_status_name(uint16_t status)
{
    static const char *const names[WIRE_ST_COUNT_] = {
        "ok", "rejected", "duplicate", "bad_message", "not_found",
        "bad_field", "unavailable", "forbidden", "conflict", "feed_gap"};
    return status < WIRE_ST_COUNT_ ? names[status] : "unknown";
}

const char *wire_order_status_name(uint8_t st)
{
    switch (st) {
    case WIRE_ORDER_OPEN: return "open";
    case WIRE_ORDER_PARTIALLY_FILLED: return "partially_filled";
    case WIRE_ORDER_FILLED: return "filled";
    case WIRE_ORDER_CANCELLED: return "cancelled";
    case WIRE_ORDER_EXPIRED: return "expired";
    case WIRE_ORDER_UNFILLED: return "cancelled";
    default: return "unknown";
    }
}
