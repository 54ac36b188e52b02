/* fuzz_gateway_request.c — libFuzzer target for the gateway's request
 * decoding path: JSON bodies of every route, money strings, RFC 3339
 * hours and path ids, i.e. everything a client controls before a request
 * reaches the matcher.
 *
 * Input: byte 0 picks the decoder, the rest is the text (with the top bit
 * of byte 0 set, the text replaces one field's value in a valid order). Properties checked
 * (abort on violation): decoders never crash or leak (ASan), a successful
 * decode yields values inside the documented ranges, a failed decode
 * yields a known error code and a NUL-terminated message, money and hours
 * round-trip exactly through format/parse.
 *
 * `make fuzz` builds this with clang -fsanitize=fuzzer (the rule links the
 * matcher sources only, so the gateway sources are included here);
 * tests/test_gateway_fuzz.c drives the same entry point with generated
 * inputs inside `make test` (it defines GW_FUZZ_LINKED and links
 * libgpux_gateway instead). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef GW_FUZZ_LINKED
#include "gateway/errors.c"
#include "gateway/json_req.c"
#include "gateway/money.c"
#else
#include "gateway/gateway.h"
#include "gpux_assert.h"
#endif

static matcher_catalog *fuzz_catalog(void)
{
    static matcher_catalog cat;
    if (cat.n_markets == 0) {
        static const char *const gpus[] = {"H100", "A100", "B200"};
        static const char *const regions[] = {"us-east", "eu-west"};
        for (int g = 0; g < 3; g++)
            for (int r = 0; r < 2; r++) {
                matcher_market_def *m = &cat.markets[cat.n_markets++];
                strcpy(m->gpu, gpus[g]);
                strcpy(m->region, regions[r]);
                m->lot = 8;
                m->tick_micros = 100;
            }
    }
    return &cat;
}

static void check_error(const gw_req_error *e)
{
    GPUX_ASSERT(e->err > GW_OK && e->err < GW_ERR_COUNT);
    GPUX_ASSERT(gw_err_status(e->err) == 400);
    GPUX_ASSERT(memchr(e->message, '\0', sizeof e->message) != NULL);
    char body[512];
    GPUX_ASSERT(gw_err_body(e->err, e->message, body, sizeof body) > 0);
}

/* Returns 1 when the body decoded (and passed the checks), 0 when it was
 * rejected with a well-formed error. */
static int fuzz_order(const char *s, size_t n)
{
    gw_order_req r;
    gw_req_error e;
    if (gw_decode_order(s, n, fuzz_catalog(), &r, &e) != 0) {
        check_error(&e);
        return 0;
    }
    const matcher_cmd *c = &r.cmd;
    GPUX_ASSERT(c->type == MATCHER_CMD_NEW_ORDER);
    GPUX_ASSERT(c->side == MATCHER_BUY || c->side == MATCHER_SELL);
    GPUX_ASSERT(c->market < fuzz_catalog()->n_markets);
    GPUX_ASSERT(c->qty > 0 && c->qty <= MATCHER_MAX_QTY);
    GPUX_ASSERT(c->min_qty >= 0 && c->min_qty <= MATCHER_MAX_QTY);
    GPUX_ASSERT(c->price_micros >= 0);
    GPUX_ASSERT(c->end_hour > c->start_hour && c->start_hour >= 0);
    GPUX_ASSERT(c->tif <= MATCHER_POST_ONLY && c->single_provider <= 1);
    size_t idlen = strlen(r.client_order_id);
    GPUX_ASSERT(idlen <= GW_CLIENT_ID_MAX);
    for (size_t i = 0; i < idlen; i++)
        GPUX_ASSERT(r.client_order_id[i] >= 0x21 && r.client_order_id[i] <= 0x7e);
    return 1;
}

static void fuzz_others(uint8_t which, const char *s, size_t n)
{
    gw_req_error e;
    if (which == 1) {
        int64_t p;
        int32_t q;
        if (gw_decode_replace(s, n, &p, &q, &e) != 0)
            check_error(&e);
        else
            GPUX_ASSERT(p >= 0 && q >= 0 && (p > 0 || q > 0));
    } else if (which == 2) {
        char name[GW_ACCOUNT_NAME_MAX + 1];
        uint32_t roles;
        if (gw_decode_account(s, n, name, &roles, &e) != 0)
            check_error(&e);
        else
            GPUX_ASSERT(roles != 0 && (roles & ~7u) == 0 && strlen(name) > 0 &&
                        name[0] != ' ' && name[strlen(name) - 1] != ' ');
    } else {
        uint32_t acct;
        int64_t amt;
        if (gw_decode_transfer(s, n, &acct, &amt, &e) != 0)
            check_error(&e);
        else
            GPUX_ASSERT(amt > 0 && amt <= MATCHER_MAX_AMOUNT_MICROS);
    }
}

static void fuzz_scalars(const char *s, size_t n)
{
    int64_t v;
    if (gw_money_parse(s, n, &v) == 0) {
        char b[GW_MONEY_STR_LEN];
        int64_t back;
        GPUX_ASSERT(v >= 0);
        gw_money_format(v, b);
        GPUX_ASSERT(gw_money_parse(b, strlen(b), &back) == 0 && back == v);
    }
    if (gw_hour_parse(s, n, &v) == 0) {
        char b[GW_TIME_STR_LEN];
        GPUX_ASSERT(v >= 0 && v < GW_HOUR_MAX);
        GPUX_ASSERT(n == 20 && memcmp(gw_hour_format(v, b), s, 20) == 0);
    }
    uint64_t id;
    if (gw_parse_id(s, n, &id) == 0)
        GPUX_ASSERT(n > 0 && n <= 20);
}

/* Structure-aware mode: a valid order body with one field's value replaced
 * by the fuzz text (quoted or raw), so the per-field checks and the success
 * path are reached without the fuzzer having to invent JSON first. */
static int fuzz_templated(uint8_t sel, const char *s, size_t n)
{
    static const char *const fields[] = {"side", "gpu", "region", "start", "end", "qty",
                                         "price", "tif", "min_qty", "min_hours",
                                         "single_provider", "expire_at", "client_order_id"};
    static const char *const values[] = {"\"buy\"", "\"H100\"", "\"us-east\"",
                                         "\"2026-12-01T00:00:00Z\"", "\"2026-12-08T00:00:00Z\"",
                                         "64", "\"2.35\"", "\"gtc\"", "16", "0", "false", "null",
                                         "\"my-42\""};
    static char body[8192];
    unsigned pick = (sel >> 1) % 13;
    bool quote = sel & 1;
    size_t len = 0;
    body[len++] = '{';
    for (unsigned i = 0; i < 13 && n < 4096; i++) {
        int w = snprintf(body + len, sizeof body - len, "%s\"%s\":", i ? "," : "", fields[i]);
        len += (size_t)w;
        if (i == pick) {
            if (quote)
                body[len++] = '"';
            memcpy(body + len, s, n);
            len += n;
            if (quote)
                body[len++] = '"';
        } else {
            w = snprintf(body + len, sizeof body - len, "%s", values[i]);
            len += (size_t)w;
        }
    }
    body[len++] = '}';
    return fuzz_order(body, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 70000)
        return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    if (data[0] & 0x80) {
        fuzz_templated(data[0], s, n);
        return 0;
    }
    switch (data[0] % 5) {
    case 0: fuzz_order(s, n); break;
    case 1: fuzz_others(1, s, n); break;
    case 2: fuzz_others(2, s, n); break;
    case 3: fuzz_others(3, s, n); break;
    default: fuzz_scalars(s, n); break;
    }
    return 0;
}
