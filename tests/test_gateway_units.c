/* test_gateway_units.c — the gateway's pure pieces: exact money and time
 * parsing/formatting, strict request decoding, error bodies, API keys,
 * the rate limiter, the metrics text and the reading of market-data
 * messages into commands. No sockets here; the real-socket
 * tests are test_gateway_http / test_gateway_stack.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gateway/gateway.h"
#include "gateway/server.h"
#include "gpux_units.h"

/* ---- money ---- */

static int64_t money(const char *s)
{
    int64_t v = -777;
    if (gw_money_parse(s, strlen(s), &v) != 0)
        return -1;
    return v;
}

static void test_money_parse(void **state)
{
    (void)state;
    assert_int_equal(money("2.35"), 2350000);
    assert_int_equal(money("1234.500000"), 1234500000);
    assert_int_equal(money("7"), 7000000);
    assert_int_equal(money("0.000001"), 1);
    assert_int_equal(money("0"), 0);
    assert_int_equal(money("999999999999.999999"), 999999999999999999LL);
    const char *bad[] = {"", "1e3", "2.3500001", "-1", "+1", "1.", ".5", " 1", "1 ",
                         "1,5", "0x10", "1.2.3", "NaN", "inf", "1000000000000",
                         "2.35e0", "١"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = 42;
        assert_int_equal(gw_money_parse(bad[i], strlen(bad[i]), &v), -1);
        assert_int_equal(v, 42); /* nothing written on failure */
    }
    /* embedded NUL: length says more than the C string */
    int64_t v;
    assert_int_equal(gw_money_parse("1\0002", 3, &v), -1);
}

static void test_money_format(void **state)
{
    (void)state;
    char b[GW_MONEY_STR_LEN];
    assert_string_equal(gw_money_format(2350000, b), "2.35");
    assert_string_equal(gw_money_format(2300000, b), "2.30");
    assert_string_equal(gw_money_format(0, b), "0.00");
    assert_string_equal(gw_money_format(1, b), "0.000001");
    assert_string_equal(gw_money_format(-1500000, b), "-1.50");
    assert_string_equal(gw_money_format(1234500000, b), "1234.50");
    assert_string_equal(gw_money_format(INT64_MIN, b), "-9223372036854.775808");
    assert_string_equal(gw_money_format(INT64_MAX, b), "9223372036854.775807");
    /* round trip over a spread of values */
    for (int64_t x = 0; x < 3000000000LL; x += 9999991) {
        int64_t back;
        gw_money_format(x, b);
        assert_int_equal(gw_money_parse(b, strlen(b), &back), 0);
        assert_int_equal(back, x);
    }
}

/* The digit-by-digit formatters (money.c) write what printf would. */
static void test_number_formats(void **state)
{
    (void)state;
    char b[32], want[32];
    static const uint64_t u[] = {0, 1, 9, 10, 99, 100, 4294967295ULL, 4294967296ULL,
                                 10000000000000000000ULL, UINT64_MAX};
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
        snprintf(want, sizeof want, "%llu", (unsigned long long)u[i]);
        assert_int_equal(gw_u64_format(u[i], b), strlen(want));
        assert_string_equal(b, want);
    }
    static const int64_t v[] = {0, -1, 1, -10, 123456789, INT64_MIN, INT64_MAX, INT64_MIN + 1};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        snprintf(want, sizeof want, "%lld", (long long)v[i]);
        assert_int_equal(gw_i64_format(v[i], b), strlen(want));
        assert_string_equal(b, want);
    }
    /* hours (the shared formatter, matcher/units.c, digit by digit): the
     * bytes printf writes, across 1970..9999 */
    for (int64_t h = 0; h < GW_HOUR_MAX; h += h < 100000 ? 1 : 7919) {
        int64_t y, m, d;
        gpux_civil_from_days(h / 24, &y, &m, &d);
        snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:00:00Z", (int)y, (int)m, (int)d,
                 (int)(h % 24));
        assert_string_equal(gw_hour_format(h, b), want);
    }
    gw_hour_format(GW_HOUR_MAX - 1, b);
    assert_string_equal(b, "9999-12-31T23:00:00Z");
}

static void test_hours(void **state)
{
    (void)state;
    int64_t h = -1;
    char b[GW_TIME_STR_LEN];
    assert_int_equal(gw_hour_parse("1970-01-01T00:00:00Z", 20, &h), 0);
    assert_int_equal(h, 0);
    assert_int_equal(gw_hour_parse("2026-12-01T00:00:00Z", 20, &h), 0);
    assert_int_equal(h, 1796083200LL / 3600);
    assert_string_equal(gw_hour_format(h, b), "2026-12-01T00:00:00Z");
    assert_int_equal(gw_hour_parse("2024-02-29T23:00:00Z", 20, &h), 0);
    assert_string_equal(gw_hour_format(h, b), "2024-02-29T23:00:00Z");
    const char *bad[] = {"2026-12-01T00:30:00Z", "2026-12-01T00:00:01Z",
                         "2026-12-01T00:00:00", "2026-12-01T00:00:00+00:00",
                         "2026-13-01T00:00:00Z", "2025-02-29T00:00:00Z",
                         "2026-12-01T24:00:00Z", "2026-12-01 00:00:00Z",
                         "1969-12-31T23:00:00Z", "2026-12-01T00:00:00.0Z",
                         "2026-12-00T00:00:00Z", "2026-12-01t00:00:00z", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(gw_hour_parse(bad[i], strlen(bad[i]), &h), -1);
    /* every hour of a span round-trips */
    for (int64_t x = 0; x < GW_HOUR_MAX; x += 9973) {
        int64_t back;
        gw_hour_format(x, b);
        assert_int_equal(gw_hour_parse(b, 20, &back), 0);
        assert_int_equal(back, x);
    }
    assert_string_equal(gw_time_format_us(1796083205123456LL, b), "2026-12-01T00:00:05Z");
}

/* ---- request decoding ---- */

static matcher_catalog cat;

static int setup_catalog(void **state)
{
    (void)state;
    memset(&cat, 0, sizeof cat);
    cat.n_markets = 2;
    strcpy(cat.markets[0].gpu, "H100");
    strcpy(cat.markets[0].region, "us-east");
    cat.markets[0].lot = 8;
    cat.markets[0].tick_micros = 100;
    strcpy(cat.markets[1].gpu, "A100");
    strcpy(cat.markets[1].region, "eu-west");
    cat.markets[1].lot = 8;
    cat.markets[1].tick_micros = 100;
    return 0;
}

#define BASE "\"side\":\"buy\",\"gpu\":\"H100\",\"region\":\"us-east\"," \
             "\"start\":\"2026-12-01T00:00:00Z\",\"end\":\"2026-12-08T00:00:00Z\",\"qty\":64"

static gw_err order_err(const char *body, char *msg_out)
{
    gw_order_req r;
    gw_req_error e;
    memset(&e, 0, sizeof e);
    if (gw_decode_order(body, strlen(body), &cat, &r, &e) == 0)
        return GW_OK;
    if (msg_out)
        strcpy(msg_out, e.message);
    return e.err;
}

static void test_decode_order_ok(void **state)
{
    (void)state;
    const char *body = "{" BASE ",\"price\":\"2.35\",\"tif\":\"post_only\",\"min_qty\":16,"
                       "\"single_provider\":true,\"expire_at\":null,\"client_order_id\":\"my-42\"}";
    gw_order_req r;
    gw_req_error e;
    assert_int_equal(gw_decode_order(body, strlen(body), &cat, &r, &e), 0);
    assert_int_equal(r.cmd.type, MATCHER_CMD_NEW_ORDER);
    assert_int_equal(r.cmd.side, MATCHER_BUY);
    assert_int_equal(r.cmd.market, 0);
    assert_int_equal(r.cmd.qty, 64);
    assert_int_equal(r.cmd.min_qty, 16);
    assert_int_equal(r.cmd.price_micros, 2350000);
    assert_int_equal(r.cmd.tif, MATCHER_POST_ONLY);
    assert_int_equal(r.cmd.single_provider, 1);
    assert_int_equal(r.cmd.end_hour - r.cmd.start_hour, 168);
    assert_int_equal(r.cmd.expire_at_hour, 0);
    assert_string_equal(r.client_order_id, "my-42");
    const char *sell = "{\"side\":\"sell\",\"gpu\":\"A100\",\"region\":\"eu-west\","
                       "\"start\":\"2026-12-01T00:00:00Z\",\"end\":\"2026-12-02T00:00:00Z\","
                       "\"qty\":8,\"price\":\"1\",\"min_hours\":4,\"expire_at\":\"2026-11-30T00:00:00Z\"}";
    assert_int_equal(gw_decode_order(sell, strlen(sell), &cat, &r, &e), 0);
    assert_int_equal(r.cmd.side, MATCHER_SELL);
    assert_int_equal(r.cmd.market, 1);
    assert_int_equal(r.cmd.min_hours, 4);
    assert_int_equal(r.cmd.tif, MATCHER_GTC);
    assert_int_equal(r.cmd.end_hour - r.cmd.expire_at_hour, 48);
    assert_string_equal(r.client_order_id, "");
}

/* Bodies are parsed with jansson's memory in a 64 KiB arena
 * (gateway/json_req.c). A body whose tree does not fit takes malloc for
 * the rest and must still decode (or fail) exactly as before; the next
 * body reuses the arena; trees built outside decoding (replies) use
 * malloc and free as before. The rel flavour runs the arena (glibc
 * aborts if an arena address reaches free()); the san flavour parses
 * with malloc (json_req.c: so ASan sees every node) and checks the same
 * results. */
static void test_decode_order_arena(void **state)
{
    (void)state;
    enum { BIG = 100 * 1024 };
    char *big = malloc(BIG + 512);
    assert_non_null(big);
    int n = snprintf(big, 512, "{" BASE ",\"price\":\"2.35\",\"client_order_id\":\"");
    memset(big + n, 'a', BIG);
    strcpy(big + n + BIG, "\"}");
    gw_order_req r;
    gw_req_error e;
    memset(&e, 0, sizeof e);
    assert_int_equal(gw_decode_order(big, strlen(big), &cat, &r, &e), -1);
    assert_int_equal(e.err, GW_ERR_BAD_FIELD);
    assert_non_null(strstr(e.message, "client_order_id"));
    /* a big valid body (leading whitespace), then many small ones */
    memset(big, ' ', BIG);
    n = snprintf(big + BIG, 512, "{" BASE ",\"price\":\"2.35\",\"client_order_id\":\"w-1\"}");
    assert_int_equal(gw_decode_order(big, (size_t)BIG + (size_t)n, &cat, &r, &e), 0);
    assert_string_equal(r.client_order_id, "w-1");
    for (int i = 0; i < 1000; i++) { /* the arena is reset for every body */
        char body[256];
        int m = snprintf(body, sizeof body, "{" BASE ",\"price\":\"2.35\",\"client_order_id\":\"k%d\"}", i);
        assert_int_equal(gw_decode_order(body, (size_t)m, &cat, &r, &e), 0);
        assert_int_equal(r.cmd.price_micros, 2350000);
        assert_int_equal(atoi(r.client_order_id + 1), i);
    }
    /* a tree made outside decoding must survive the next decode */
    json_t *o = json_pack("{s:s, s:i}", "outside", "a decode", "n", 7);
    assert_non_null(o);
    assert_int_equal(gw_decode_order(big + BIG, (size_t)n, &cat, &r, &e), 0);
    assert_int_equal(json_integer_value(json_object_get(o, "n")), 7);
    json_decref(o);
    free(big);
}

static void test_decode_order_errors(void **state)
{
    (void)state;
    char msg[200];
    assert_int_equal(order_err("", NULL), GW_ERR_BAD_JSON);
    assert_int_equal(order_err("{", NULL), GW_ERR_BAD_JSON);
    assert_int_equal(order_err("[]", NULL), GW_ERR_BAD_JSON);
    assert_int_equal(order_err("{" BASE ",\"price\":\"1\",\"price\":\"2\"}", NULL), GW_ERR_BAD_JSON);
    assert_int_equal(order_err("{" BASE ",\"price\":\"1\",\"colour\":1}", msg), GW_ERR_BAD_FIELD);
    assert_non_null(strstr(msg, "colour"));
    assert_int_equal(order_err("{" BASE "}", msg), GW_ERR_MISSING_FIELD);
    assert_non_null(strstr(msg, "price"));
    /* a number where a price belongs: bad_price, never rounded */
    assert_int_equal(order_err("{" BASE ",\"price\":2.35}", NULL), GW_ERR_BAD_PRICE);
    assert_int_equal(order_err("{" BASE ",\"price\":2}", NULL), GW_ERR_BAD_PRICE);
    assert_int_equal(order_err("{" BASE ",\"price\":\"1e3\"}", NULL), GW_ERR_BAD_PRICE);
    assert_int_equal(order_err("{" BASE ",\"price\":\"2.3500001\"}", NULL), GW_ERR_BAD_PRICE);
    assert_int_equal(order_err("{" BASE ",\"price\":\"-2\"}", NULL), GW_ERR_BAD_PRICE);
    assert_int_equal(order_err("{" BASE ",\"price\":null}", NULL), GW_ERR_BAD_PRICE);
    const char *qtys[] = {"\"64\"", "64.0", "0", "-8", "100001", "true", "1e2"};
    for (size_t i = 0; i < sizeof qtys / sizeof qtys[0]; i++) {
        char body[400];
        snprintf(body, sizeof body,
                 "{\"side\":\"buy\",\"gpu\":\"H100\",\"region\":\"us-east\","
                 "\"start\":\"2026-12-01T00:00:00Z\",\"end\":\"2026-12-08T00:00:00Z\","
                 "\"qty\":%s,\"price\":\"1\"}", qtys[i]);
        assert_int_equal(order_err(body, NULL), GW_ERR_BAD_QTY);
    }
    assert_int_equal(order_err("{" BASE ",\"price\":\"1\",\"min_qty\":-1}", NULL), GW_ERR_BAD_QTY);
    assert_int_equal(order_err("{\"side\":\"hold\",\"gpu\":\"H100\",\"region\":\"us-east\","
                               "\"start\":\"2026-12-01T00:00:00Z\",\"end\":\"2026-12-08T00:00:00Z\","
                               "\"qty\":8,\"price\":\"1\"}", msg), GW_ERR_BAD_FIELD);
    assert_non_null(strstr(msg, "side"));
    assert_int_equal(order_err("{\"side\":\"buy\",\"gpu\":\"H999\",\"region\":\"us-east\","
                               "\"start\":\"2026-12-01T00:00:00Z\",\"end\":\"2026-12-08T00:00:00Z\","
                               "\"qty\":8,\"price\":\"1\"}", NULL), GW_ERR_UNKNOWN_MARKET);
    assert_int_equal(order_err("{\"side\":\"buy\",\"gpu\":\"H100\",\"region\":\"us-east\","
                               "\"start\":\"2026-12-01T00:30:00Z\",\"end\":\"2026-12-08T00:00:00Z\","
                               "\"qty\":8,\"price\":\"1\"}", msg), GW_ERR_BAD_WINDOW);
    assert_non_null(strstr(msg, "start"));
    assert_int_equal(order_err("{\"side\":\"buy\",\"gpu\":\"H100\",\"region\":\"us-east\","
                               "\"start\":\"2026-12-08T00:00:00Z\",\"end\":\"2026-12-01T00:00:00Z\","
                               "\"qty\":8,\"price\":\"1\"}", NULL), GW_ERR_BAD_WINDOW);
    assert_int_equal(order_err("{" BASE ",\"price\":\"1\",\"tif\":\"day\"}", NULL), GW_ERR_BAD_FIELD);
    assert_int_equal(order_err("{" BASE ",\"price\":\"1\",\"single_provider\":1}", NULL), GW_ERR_BAD_FIELD);
    assert_int_equal(order_err("{" BASE ",\"price\":\"1\",\"expire_at\":5}", NULL), GW_ERR_BAD_FIELD);
    assert_int_equal(order_err("{" BASE ",\"price\":\"1\",\"client_order_id\":\"\"}", NULL), GW_ERR_BAD_FIELD);
    assert_int_equal(order_err("{" BASE ",\"price\":\"1\",\"client_order_id\":\"a b\"}", NULL), GW_ERR_BAD_FIELD);
    assert_int_equal(order_err("{" BASE ",\"price\":\"1\",\"client_order_id\":"
                               "\"12345678901234567890123456789012345678901234567890123456789012345\"}",
                               NULL), GW_ERR_BAD_FIELD);
    assert_int_equal(order_err("{" BASE ",\"price\":\"1\",\"client_order_id\":7}", NULL), GW_ERR_BAD_FIELD);
}

static void test_decode_others(void **state)
{
    (void)state;
    gw_req_error e;
    int64_t p;
    int32_t q;
    assert_int_equal(gw_decode_replace("{\"price\":\"2.5\"}", 15, &p, &q, &e), 0);
    assert_int_equal(p, 2500000);
    assert_int_equal(q, 0);
    assert_int_equal(gw_decode_replace("{\"qty\":16}", 10, &p, &q, &e), 0);
    assert_int_equal(q, 16);
    assert_int_equal(p, 0);
    assert_int_equal(gw_decode_replace("{}", 2, &p, &q, &e), -1);
    assert_int_equal(e.err, GW_ERR_MISSING_FIELD);
    assert_int_equal(gw_decode_replace("{\"price\":2.5}", 13, &p, &q, &e), -1);
    assert_int_equal(e.err, GW_ERR_BAD_PRICE);
    assert_int_equal(gw_decode_replace("{\"qty\":16,\"side\":\"buy\"}", 23, &p, &q, &e), -1);
    assert_int_equal(e.err, GW_ERR_BAD_FIELD);

    char name[GW_ACCOUNT_NAME_MAX + 1];
    uint32_t roles;
    const char *a = "{\"name\":\"Acme GPU\",\"roles\":[\"buyer\",\"provider\"]}";
    assert_int_equal(gw_decode_account(a, strlen(a), name, &roles, &e), 0);
    assert_string_equal(name, "Acme GPU");
    assert_int_equal(roles, MATCHER_ROLE_BUYER | MATCHER_ROLE_PROVIDER);
    const char *bad_roles[] = {"{\"name\":\"x\",\"roles\":[]}", "{\"name\":\"x\",\"roles\":[\"king\"]}",
                               "{\"name\":\"x\",\"roles\":[\"buyer\",\"buyer\"]}",
                               "{\"name\":\"x\",\"roles\":\"buyer\"}", "{\"name\":\"\",\"roles\":[\"buyer\"]}",
                               "{\"name\":\"x\\n\",\"roles\":[\"buyer\"]}"};
    for (size_t i = 0; i < sizeof bad_roles / sizeof bad_roles[0]; i++) {
        assert_int_equal(gw_decode_account(bad_roles[i], strlen(bad_roles[i]), name, &roles, &e), -1);
        assert_int_equal(e.err, GW_ERR_BAD_FIELD);
    }
    assert_int_equal(gw_decode_account("{\"roles\":[\"buyer\"]}", 19, name, &roles, &e), -1);
    assert_int_equal(e.err, GW_ERR_MISSING_FIELD);

    uint32_t acct;
    int64_t amt;
    const char *t = "{\"account_id\":\"12\",\"amount\":\"1000000.5\"}";
    assert_int_equal(gw_decode_transfer(t, strlen(t), &acct, &amt, &e), 0);
    assert_int_equal(acct, 12);
    assert_int_equal(amt, 1000000500000LL);
    const char *bad_t[] = {"{\"account_id\":\"x\",\"amount\":\"1\"}", "{\"account_id\":\"1\",\"amount\":1}",
                           "{\"account_id\":\"1\",\"amount\":\"0\"}",
                           "{\"account_id\":\"1\",\"amount\":\"1000000000.000001\"}",
                           "{\"account_id\":\"99999999999\",\"amount\":\"1\"}"};
    for (size_t i = 0; i < sizeof bad_t / sizeof bad_t[0]; i++) {
        assert_int_equal(gw_decode_transfer(bad_t[i], strlen(bad_t[i]), &acct, &amt, &e), -1);
        assert_int_equal(e.err, GW_ERR_BAD_FIELD);
    }
    uint64_t id;
    assert_int_equal(gw_parse_id("18446744073709551615", 20, &id), 0);
    assert_true(id == UINT64_MAX);
    assert_int_equal(gw_parse_id("18446744073709551616", 20, &id), -1);
    assert_int_equal(gw_parse_id("-1", 2, &id), -1);
    assert_int_equal(gw_parse_id("", 0, &id), -1);
}

/* ---- errors ---- */

static void test_errors(void **state)
{
    (void)state;
    assert_int_equal(gw_err_status(GW_ERR_BAD_JSON), 400);
    assert_int_equal(gw_err_status(GW_ERR_UNAUTHENTICATED), 401);
    assert_int_equal(gw_err_status(GW_ERR_FORBIDDEN), 403);
    assert_int_equal(gw_err_status(GW_ERR_NOT_FOUND), 404);
    assert_int_equal(gw_err_status(GW_ERR_CONFLICT), 409);
    assert_int_equal(gw_err_status(GW_ERR_TOO_LARGE), 413);
    assert_int_equal(gw_err_status(GW_ERR_WOULD_MATCH), 422);
    assert_int_equal(gw_err_status(GW_ERR_RATE_LIMITED), 429);
    assert_int_equal(gw_err_status(GW_ERR_UNAVAILABLE), 503);
    /* every engine reason maps to a known api.md error with a 4xx/5xx */
    for (int r = 1; r < MATCHER_REASON_COUNT; r++) {
        gw_err e = gw_err_from_reason((matcher_reason)r);
        assert_true(e != GW_ERR_INTERNAL);
        assert_true(gw_err_status(e) >= 400);
    }
    assert_int_equal(gw_err_from_reason(MATCHER_REJ_INSUFFICIENT_FUNDS), GW_ERR_INSUFFICIENT_FUNDS);
    assert_int_equal(gw_err_from_reason(MATCHER_REJ_WINDOW_IN_PAST), GW_ERR_WINDOW_IN_PAST);
    assert_int_equal(gw_err_from_reason(MATCHER_REJ_UNKNOWN_ORDER), GW_ERR_NOT_FOUND);
    char buf[256];
    int n = gw_err_body(GW_ERR_BAD_FIELD, "unknown field \"x\"\n", buf, sizeof buf);
    assert_true(n > 0);
    json_error_t je;
    json_t *j = json_loads(buf, 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                        "bad_field");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
                        "unknown field \"x\"\n");
    json_decref(j);
    /* truncation still yields valid JSON */
    char small[70];
    char longmsg[300];
    memset(longmsg, '"', sizeof longmsg - 1);
    longmsg[sizeof longmsg - 1] = 0;
    n = gw_err_body(GW_ERR_BAD_FIELD, longmsg, small, sizeof small);
    assert_true(n > 0 && (size_t)n < sizeof small);
    j = json_loads(small, 0, &je);
    assert_non_null(j);
    json_decref(j);
}

/* ---- keys ---- */

static void test_keys(void **state)
{
    (void)state;
    gw_keys t;
    assert_int_equal(gw_keys_init(&t, 100), 0);
    char k1[GW_KEY_LEN + 1], k2[GW_KEY_LEN + 1];
    uint8_t h1[GW_SHA256_LEN], h2[GW_SHA256_LEN];
    assert_int_equal(gw_key_generate(k1, h1), 0);
    assert_int_equal(gw_key_generate(k2, h2), 0);
    assert_int_equal(strlen(k1), GW_KEY_LEN);
    assert_true(strcmp(k1, k2) != 0);
    assert_int_equal(gw_keys_add(&t, h1, 1, MATCHER_ROLE_BUYER), 0);
    assert_int_equal(gw_keys_add(&t, h2, 2, MATCHER_ROLE_ADMIN), 0);
    char hdr[128];
    snprintf(hdr, sizeof hdr, "Bearer %s", k1);
    const gw_key_entry *e = gw_keys_auth(&t, hdr);
    assert_non_null(e);
    assert_int_equal(e->account, 1);
    snprintf(hdr, sizeof hdr, "Bearer %s", k2);
    e = gw_keys_auth(&t, hdr);
    assert_non_null(e);
    assert_int_equal(e->account, 2);
    assert_null(gw_keys_auth(&t, NULL));
    assert_null(gw_keys_auth(&t, k1));             /* no Bearer */
    snprintf(hdr, sizeof hdr, "bearer %s", k1);
    assert_null(gw_keys_auth(&t, hdr));
    snprintf(hdr, sizeof hdr, "Bearer %s ", k1);
    assert_null(gw_keys_auth(&t, hdr));
    k1[10] = k1[10] == 'a' ? 'b' : 'a';            /* one digit off */
    snprintf(hdr, sizeof hdr, "Bearer %s", k1);
    assert_null(gw_keys_auth(&t, hdr));
    /* SHA-256 known answer */
    uint8_t h[GW_SHA256_LEN];
    gw_sha256("abc", 3, h);
    assert_int_equal(h[0], 0xba);
    assert_int_equal(h[31], 0xad);
    /* capacity is enforced */
    uint32_t added = 2;
    for (uint32_t i = 0; i < 1000; i++) {
        uint8_t hh[GW_SHA256_LEN];
        gw_sha256(&i, sizeof i, hh);
        if (gw_keys_add(&t, hh, 3, 0) < 0)
            break;
        added++;
    }
    assert_true(added >= 100 && added < 1000);
    gw_keys_set_roles(&t, 2, MATCHER_ROLE_BUYER);
    snprintf(hdr, sizeof hdr, "Bearer %s", k2);
    assert_int_equal(gw_keys_auth(&t, hdr)->roles, MATCHER_ROLE_BUYER);
    gw_keys_free(&t);
}

/* ---- rate limit ---- */

static void test_ratelimit(void **state)
{
    (void)state;
    gw_ratelimit rl;
    assert_int_equal(gw_ratelimit_init(&rl, 8, 10, 5), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(gw_ratelimit_take(&rl, 1, 1000), 0);
    assert_int_equal(gw_ratelimit_take(&rl, 1, 1000), 1); /* empty: retry in 1 s */
    assert_int_equal(gw_ratelimit_take(&rl, 2, 1000), 0); /* other account unaffected */
    assert_int_equal(gw_ratelimit_take(&rl, 1, 1100), 0); /* 100 ms = 1 token */
    assert_int_equal(gw_ratelimit_take(&rl, 1, 1100), 1);
    for (int i = 0; i < 5; i++)
        assert_int_equal(gw_ratelimit_take(&rl, 1, 100000), 0); /* refilled to burst only */
    assert_int_equal(gw_ratelimit_take(&rl, 1, 100000), 1);
    assert_int_equal(gw_ratelimit_take(&rl, 1, 50), 1);        /* clock going back: no refill */
    gw_ratelimit_free(&rl);
    assert_int_equal(gw_ratelimit_init(&rl, 8, 1, 1), 0);
    assert_int_equal(gw_ratelimit_take(&rl, 100, 0), 0); /* beyond table: shared last bucket */
    assert_int_equal(gw_ratelimit_take(&rl, 7, 0), 1);
    gw_ratelimit_free(&rl);
    assert_int_equal(gw_ratelimit_init(&rl, 8, 0, 0), 0); /* unlimited */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(gw_ratelimit_take(&rl, 1, 0), 0);
    gw_ratelimit_free(&rl);
}

/* ---- metrics ---- */

static void test_metrics(void **state)
{
    (void)state;
    gw_metrics m;
    gw_metrics_init(&m);
    gw_metrics_request(&m, GW_ROUTE_ORDER_CREATE, 201, 700);
    gw_metrics_request(&m, GW_ROUTE_ORDER_CREATE, 201, 3000000);
    gw_metrics_request(&m, GW_ROUTE_ORDER_CREATE, 400, 10);
    gw_metrics_request(&m, GW_ROUTE_HEALTHZ, 299, 10);
    m.trades = 3;
    m.ledger_lag = 2;
    char buf[16384];
    int n = gw_metrics_render(&m, buf, sizeof buf);
    assert_true(n > 0);
    assert_non_null(strstr(buf, "gpux_gateway_requests_total{route=\"order_create\",status=\"201\"} 2\n"));
    assert_non_null(strstr(buf, "gpux_gateway_requests_total{route=\"order_create\",status=\"400\"} 1\n"));
    assert_non_null(strstr(buf, "gpux_gateway_requests_total{route=\"healthz\",status=\"other\"} 1\n"));
    assert_non_null(strstr(buf, "gpux_gateway_request_duration_seconds_bucket{le=\"0.000500\"} 2\n"));
    assert_non_null(strstr(buf, "gpux_gateway_request_duration_seconds_bucket{le=\"0.001000\"} 3\n"));
    assert_non_null(strstr(buf, "gpux_gateway_request_duration_seconds_bucket{le=\"+Inf\"} 4\n"));
    assert_non_null(strstr(buf, "gpux_gateway_request_duration_seconds_count 4\n"));
    assert_non_null(strstr(buf, "gpux_gateway_request_duration_seconds_sum 3.000720\n"));
    assert_non_null(strstr(buf, "gpux_gateway_trades_total 3\n"));
    assert_non_null(strstr(buf, "gpux_ledger_lag 2\n"));
    /* every non-comment line is "name{labels} value" or "name value" */
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') {
            assert_true(strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0);
            continue;
        }
        assert_true(strncmp(line, "gpux_", 5) == 0);
        assert_non_null(strrchr(line, ' '));
    }
    assert_int_equal(gw_metrics_render(&m, buf, 100), -1);
}

/* ---- order rendering: the text path writes what jansson writes ---- */

static void check_order_text(const gw_server *srv, const wire_order *o, const wire_fill *f,
                             uint32_t n)
{
    json_t *fills = json_array();
    for (uint32_t i = 0; i < n; i++)
        json_array_append_new(fills, gw_render_fill(&f[i]));
    json_t *tree = gw_render_order(srv, o, fills);
    char *want = json_dumps(tree, JSON_COMPACT);
    json_decref(tree);
    assert_non_null(want);
    char got[4096];
    int len = gw_render_order_text(srv, o, f, n, got, sizeof got);
    assert_true(len > 0);
    got[len] = '\0';
    assert_string_equal(got, want);
    /* too small a buffer fails as a whole */
    assert_int_equal(gw_render_order_text(srv, o, f, n, got, (size_t)len - 1), -1);
    free(want);
}

static void test_render_order_text(void **state)
{
    (void)state;
    static matcher_catalog rcat;
    static gw_server srv;
    memset(&rcat, 0, sizeof rcat);
    rcat.n_markets = 2;
    strcpy(rcat.markets[0].gpu, "H100");
    strcpy(rcat.markets[0].region, "us-east");
    strcpy(rcat.markets[1].gpu, "A\"1\\0");
    strcpy(rcat.markets[1].region, "eu\tw");
    srv.cat = &rcat;
    wire_order o;
    memset(&o, 0, sizeof o);
    o.order_id = 18446744073709551615ULL;
    o.side = MATCHER_BUY;
    o.tif = 1;
    o.status = WIRE_ORDER_UNFILLED;
    o.qty = 64;
    o.filled_qty = 16;
    o.min_qty = 8;
    o.price_micros = 2350000;
    o.start_hour = 490000;
    o.end_hour = 490024;
    check_order_text(&srv, &o, NULL, 0);
    wire_fill f[3];
    memset(f, 0, sizeof f);
    for (int i = 0; i < 3; i++) {
        f[i].trade_id = (uint64_t)i + 1;
        f[i].price_micros = 1 + i * 1000001;
        f[i].qty = 8 * (i + 1);
        f[i].start_hour = 490000 + i;
        f[i].end_hour = i == 2 ? GW_HOUR_MAX : 490001 + i; /* out of range: null */
    }
    strcpy(o.client_order_id, "my-\"42\"\\x~");
    o.single_provider = 1;
    o.expire_at_hour = 490100;
    check_order_text(&srv, &o, f, 3);
    o.side = MATCHER_SELL;
    o.min_hours = 24;
    o.market = 1;
    o.status = WIRE_ORDER_PARTIALLY_FILLED;
    o.start_hour = -1;
    check_order_text(&srv, &o, f, 1);
    o.market = 7; /* not in the catalog: gpu and region null */
    o.price_micros = 0;
    check_order_text(&srv, &o, f, 2);
}

/* ---- market-data messages: one message, several commands ---- */

typedef struct pub_msg {
    uint8_t *buf;
    size_t len, cap;
} pub_msg;

static void pub_start(pub_msg *m, size_t events)
{
    m->cap = sizeof(wire_hdr) + events * (sizeof(wire_item_hdr) + sizeof(wire_event));
    m->buf = malloc(m->cap);
    assert_non_null(m->buf);
    m->len = wire_pub_begin(m->buf, m->cap);
    assert_int_equal(m->len, sizeof(wire_hdr));
}

static void pub_ev(pub_msg *m, uint64_t seq, uint32_t index, uint16_t type, uint16_t cmd_type,
                   uint64_t order_id, uint32_t account)
{
    wire_event e;
    memset(&e, 0, sizeof e);
    e.seq = seq;
    e.index = index;
    e.type = type;
    e.cmd_type = cmd_type;
    e.order_id = order_id;
    e.account = account;
    if (type == MATCHER_EV_DONE)
        e.reason = MATCHER_DONE_FILLED;
    m->len = wire_append_item(m->buf, m->cap, m->len, WIRE_ITEM_EVENT, &e);
    assert_true(m->len > 0);
}

static void test_pub_runs(void **state)
{
    (void)state;
    static gw_pub_runs runs;
    /* three commands in one message: an order that traded, a deposit, an
     * order that rests */
    pub_msg m;
    pub_start(&m, 8);
    pub_ev(&m, 5, 0, MATCHER_EV_ACCEPTED, MATCHER_CMD_NEW_ORDER, 77, 3);
    pub_ev(&m, 5, 1, MATCHER_EV_TRADE, MATCHER_CMD_NEW_ORDER, 0, 3);
    pub_ev(&m, 5, 2, MATCHER_EV_DONE, MATCHER_CMD_NEW_ORDER, 77, 3);
    pub_ev(&m, 6, 0, MATCHER_EV_DEPOSIT, MATCHER_CMD_DEPOSIT, 0, 4);
    pub_ev(&m, 8, 0, MATCHER_EV_BALANCE, MATCHER_CMD_NEW_ORDER, 0, 9);
    pub_ev(&m, 8, 1, MATCHER_EV_ACCEPTED, MATCHER_CMD_NEW_ORDER, 78, 9);
    assert_int_equal(gw_pub_split_runs(m.buf, m.len, &runs), 0);
    assert_int_equal(runs.n, 3);
    assert_int_equal(runs.trades, 1);
    assert_int_equal(runs.last_seq, 8);
    assert_false(runs.truncated);
    const uint64_t seqs[3] = {5, 6, 8}, oids[3] = {77, 0, 78};
    const uint32_t counts[3] = {3, 1, 2}, accts[3] = {3, 0, 9};
    for (uint32_t j = 0; j < 3; j++) {
        const gw_pub_run *r = &runs.runs[j];
        assert_int_equal(r->seq, seqs[j]);
        assert_int_equal(r->count, counts[j]);
        assert_int_equal(r->order_id, oids[j]);
        assert_int_equal(r->account, accts[j]);
        assert_true(r->complete);
        /* the reader yields exactly that command's events, in order */
        wire_reader rd;
        gw_pub_run_reader(m.buf, r, &rd);
        uint16_t type;
        wire_item it;
        char err[128];
        for (uint32_t k = 0; k < counts[j]; k++) {
            assert_int_equal(wire_reader_next(&rd, &type, &it, err, sizeof err), 1);
            assert_int_equal(it.event.seq, seqs[j]);
            assert_int_equal(it.event.index, k);
        }
        assert_int_equal(wire_reader_next(&rd, &type, &it, err, sizeof err), 0);
    }
    assert_int_equal(runs.runs[1].cmd_type, MATCHER_CMD_DEPOSIT);
    free(m.buf);

    /* a command whose first events were in an earlier message is not whole */
    pub_start(&m, 2);
    pub_ev(&m, 9, 4096, MATCHER_EV_BALANCE, MATCHER_CMD_NEW_ORDER, 0, 1);
    pub_ev(&m, 10, 0, MATCHER_EV_DEPOSIT, MATCHER_CMD_DEPOSIT, 0, 1);
    assert_int_equal(gw_pub_split_runs(m.buf, m.len, &runs), 0);
    assert_int_equal(runs.n, 2);
    assert_false(runs.runs[0].complete);
    assert_true(runs.runs[1].complete);
    free(m.buf);

    /* a full message: its last command may go on in the next one */
    pub_start(&m, WIRE_PUB_MAX_EVENTS);
    pub_ev(&m, 20, 0, MATCHER_EV_DEPOSIT, MATCHER_CMD_DEPOSIT, 0, 1);
    for (uint32_t k = 0; k + 1 < WIRE_PUB_MAX_EVENTS; k++)
        pub_ev(&m, 21, k, MATCHER_EV_BALANCE, MATCHER_CMD_ADVANCE_CLOCK, 0, 1);
    assert_int_equal(gw_pub_split_runs(m.buf, m.len, &runs), 0);
    assert_int_equal(runs.n, 2);
    assert_true(runs.runs[0].complete);
    assert_false(runs.runs[1].complete);
    assert_int_equal(runs.runs[1].count, WIRE_PUB_MAX_EVENTS - 1);
    free(m.buf);

    /* more commands than runs[] holds: the rest is not reported, and what
     * is reported is whole */
    pub_start(&m, GW_PUB_RUNS_MAX + 2);
    for (uint32_t k = 0; k < GW_PUB_RUNS_MAX + 2; k++)
        pub_ev(&m, 100 + k, 0, MATCHER_EV_DEPOSIT, MATCHER_CMD_DEPOSIT, 0, 1);
    assert_int_equal(gw_pub_split_runs(m.buf, m.len, &runs), 0);
    assert_true(runs.truncated);
    assert_int_equal(runs.n, GW_PUB_RUNS_MAX);
    assert_true(runs.runs[GW_PUB_RUNS_MAX - 1].complete);
    assert_int_equal(runs.last_seq, 100 + GW_PUB_RUNS_MAX + 1);
    free(m.buf);

    /* not in (seq, index) order, a repeated index, another item type,
     * garbage: refused, nothing reported */
    for (int bad = 0; bad < 4; bad++) {
        pub_start(&m, 3);
        pub_ev(&m, 30, 0, MATCHER_EV_DEPOSIT, MATCHER_CMD_DEPOSIT, 0, 1);
        if (bad == 0)
            pub_ev(&m, 29, 0, MATCHER_EV_DEPOSIT, MATCHER_CMD_DEPOSIT, 0, 1);
        if (bad == 1)
            pub_ev(&m, 30, 0, MATCHER_EV_BALANCE, MATCHER_CMD_DEPOSIT, 0, 1);
        if (bad == 2) {
            wire_result res;
            memset(&res, 0, sizeof res);
            m.len = wire_append_item(m.buf, m.cap, m.len, WIRE_ITEM_RESULT, &res);
            assert_true(m.len > 0);
        }
        if (bad == 3)
            m.buf[sizeof(wire_hdr) + 2] ^= 0xff; /* the item header pad */
        assert_int_equal(gw_pub_split_runs(m.buf, m.len, &runs), -1);
        assert_int_equal(runs.n, 0);
        free(m.buf);
    }
}

/* Market data comes over a socket: a damaged message must be refused or
 * read into well-formed runs, never read out of bounds (san build). */
static void test_pub_runs_mutated(void **state)
{
    (void)state;
    static gw_pub_runs runs;
    pub_msg m;
    pub_start(&m, 12);
    for (uint32_t k = 0; k < 12; k++)
        pub_ev(&m, 40 + k / 3, k % 3, k % 3 == 1 ? MATCHER_EV_TRADE : MATCHER_EV_ACCEPTED,
               MATCHER_CMD_NEW_ORDER, 100 + k, 5);
    uint8_t *buf = malloc(m.len);
    assert_non_null(buf);
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    uint32_t read_ok = 0;
    for (uint32_t iter = 0; iter < 20000; iter++) {
        memcpy(buf, m.buf, m.len);
        size_t len = m.len;
        for (uint32_t f = 0; f < 1 + iter % 4; f++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            uint32_t r = (uint32_t)(rng >> 33);
            if (r % 7 == 0)
                len = r % (len + 1); /* truncated */
            else if (len > 0)
                buf[r % len] ^= (uint8_t)(1u << (r % 8));
        }
        if (gw_pub_split_runs(buf, len, &runs) != 0) {
            assert_int_equal(runs.n, 0);
            continue;
        }
        read_ok++;
        uint64_t prev = 0;
        for (uint32_t j = 0; j < runs.n; j++) {
            const gw_pub_run *r = &runs.runs[j];
            assert_true(r->seq > prev && r->start < r->end && r->end <= len && r->count > 0);
            prev = r->seq;
            wire_reader rd;
            gw_pub_run_reader(buf, r, &rd);
            uint16_t type;
            wire_item it;
            char err[128];
            for (uint32_t k = 0; k < r->count; k++) {
                assert_int_equal(wire_reader_next(&rd, &type, &it, err, sizeof err), 1);
                assert_int_equal(it.event.seq, r->seq);
            }
            assert_int_equal(rd.off, r->end);
        }
    }
    assert_true(read_ok > 0); /* some mutations keep the message readable */
    free(buf);
    free(m.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_money_parse),
        cmocka_unit_test(test_money_format),
        cmocka_unit_test(test_hours),
        cmocka_unit_test(test_number_formats),
        cmocka_unit_test_setup(test_decode_order_ok, setup_catalog),
        cmocka_unit_test_setup(test_decode_order_errors, setup_catalog),
        cmocka_unit_test_setup(test_decode_order_arena, setup_catalog),
        cmocka_unit_test(test_decode_others),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_ratelimit),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_render_order_text),
        cmocka_unit_test(test_pub_runs),
        cmocka_unit_test(test_pub_runs_mutated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
