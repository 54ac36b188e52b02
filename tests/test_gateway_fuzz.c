/* test_gateway_fuzz.c — a short, deterministic run of the request-decoding
 * fuzz target (tests/fuzz_gateway_request.c) inside `make test`: valid
 * seed bodies mutated by a fixed-seed generator (byte flips, truncation,
 * splices, inserted tokens). Under the san flavour ASan/UBSan watch every
 * decode; the target's own property checks abort on a violation. The long
 * coverage-guided run is `make fuzz`. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GW_FUZZ_LINKED 1
#include "fuzz_gateway_request.c"

static const char *const seeds[] = {
    "\x00{\"side\":\"buy\",\"gpu\":\"H100\",\"region\":\"us-east\",\"start\":\"2026-12-01T00:00:00Z\","
    "\"end\":\"2026-12-08T00:00:00Z\",\"qty\":64,\"price\":\"2.35\",\"tif\":\"gtc\",\"min_qty\":16,"
    "\"single_provider\":false,\"expire_at\":null,\"client_order_id\":\"my-42\"}",
    "\x00{\"side\":\"sell\",\"gpu\":\"A100\",\"region\":\"eu-west\",\"start\":\"2026-12-01T00:00:00Z\","
    "\"end\":\"2026-12-02T00:00:00Z\",\"qty\":8,\"price\":\"1\",\"min_hours\":4}",
    "\x01{\"price\":\"2.5\",\"qty\":16}",
    "\x02{\"name\":\"Acme GPU\",\"roles\":[\"buyer\",\"provider\"]}",
    "\x03{\"account_id\":\"12\",\"amount\":\"1000000.5\"}",
    "\x04" "2026-12-01T00:00:00Z",
    "\x04" "1234.500000",
    "\x8f" "2.35",
    "\x8c" "64",
    "\x89" "2026-12-01T00:00:00Z",
};

static const char *const tokens[] = {"\"", "{", "}", "[", "]", ",", ":", "null", "true", "1e3",
                                     "-", ".", "0", "\\u0000", "\\ud800", "99999999999999999999",
                                     "\"price\":", "\"qty\":", "\xff", " ", "2.3500001"};

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static size_t mutate(uint8_t *buf, size_t len, size_t cap)
{
    int steps = 1 + (int)(rnd() % 4);
    for (int s = 0; s < steps; s++) {
        size_t pos = len > 1 ? 1 + rnd() % (len - 1) : 1;
        switch (rnd() % 5) {
        case 0: /* flip a byte */
            if (pos < len)
                buf[pos] ^= (uint8_t)(1u << (rnd() % 8));
            break;
        case 1: /* truncate */
            len = pos;
            break;
        case 2: { /* insert a token */
            const char *t = tokens[rnd() % (sizeof tokens / sizeof tokens[0])];
            size_t tl = strlen(t);
            if (len + tl < cap && pos <= len) {
                memmove(buf + pos + tl, buf + pos, len - pos);
                memcpy(buf + pos, t, tl);
                len += tl;
            }
            break;
        }
        case 3: /* delete a span */
            if (pos < len) {
                size_t n = 1 + rnd() % (len - pos);
                memmove(buf + pos, buf + pos + n, len - pos - n);
                len -= n;
            }
            break;
        default: /* random byte */
            if (pos < len)
                buf[pos] = (uint8_t)rnd();
        }
    }
    return len;
}

static void test_fuzz_short(void **state)
{
    (void)state;
    const char *fl = getenv("GPUX_FLAVOUR");
    int iters = fl && strcmp(fl, "san") == 0 ? 5000 : 50000;
    static uint8_t buf[4096];
    for (int i = 0; i < iters; i++) {
        size_t k = rnd() % (sizeof seeds / sizeof seeds[0]);
        size_t len = 1 + strlen(seeds[k] + 1);
        memcpy(buf, seeds[k], len);
        if (i % 10 != 0) /* every 10th input is the seed itself */
            len = mutate(buf, len, sizeof buf);
        assert_int_equal(LLVMFuzzerTestOneInput(buf, len), 0);
    }
}

/* The seeds themselves must decode: otherwise the run above would only
 * exercise error paths and could not catch a broken success path. */
static void test_seeds_decode(void **state)
{
    (void)state;
    gw_order_req r;
    gw_req_error e;
    const char *s = seeds[0] + 1;
    assert_int_equal(gw_decode_order(s, strlen(s), fuzz_catalog(), &r, &e), 0);
    s = seeds[1] + 1;
    assert_int_equal(gw_decode_order(s, strlen(s), fuzz_catalog(), &r, &e), 0);
    /* the templated seeds rebuild a valid order */
    for (size_t i = 7; i < sizeof seeds / sizeof seeds[0]; i++)
        assert_int_equal(fuzz_templated((uint8_t)seeds[i][0], seeds[i] + 1, strlen(seeds[i] + 1)), 1);
    assert_int_equal(fuzz_templated(0x8f, "2.3500001", 9), 0); /* and can fail */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seeds_decode),
        cmocka_unit_test(test_fuzz_short),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
