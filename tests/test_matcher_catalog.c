/* test_matcher_catalog.c — the catalog file format (docs/catalog.md):
 * good files parse to the exact markets and ids, every malformed line is
 * refused with its line number and leaves the catalog empty, the shipped
 * catalog.default has the 36 markets the spec names, add/find behave. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "matcher/matcher.h"

static matcher_catalog g_cat; /* ~50 KB: static, not on the stack */
static char g_err[512];

static int parse(const char *text)
{
    g_err[0] = '\0';
    return matcher_catalog_parse(&g_cat, text, strlen(text), g_err, sizeof g_err);
}

/* Parses text, expects failure whose message contains want; the catalog
 * must be left empty even though it held markets before. */
static void expect_error(const char *text, const char *want)
{
    memset(&g_cat, 0, sizeof g_cat);
    assert_int_equal(matcher_catalog_add(&g_cat, "X", "Y", 8, 100), 0);
    int rc = parse(text);
    if (rc == 0 || strstr(g_err, want) == NULL)
        fail_msg("text [%s]: rc %d, err [%s], wanted [%s]", text, rc, g_err, want);
    assert_int_equal(g_cat.n_markets, 0);
}

static void expect_market(uint32_t id, const char *gpu, const char *region,
                          int32_t lot, int64_t tick)
{
    assert_true(id < g_cat.n_markets);
    assert_string_equal(g_cat.markets[id].gpu, gpu);
    assert_string_equal(g_cat.markets[id].region, region);
    assert_int_equal(g_cat.markets[id].lot, lot);
    assert_int_equal(g_cat.markets[id].tick_micros, tick);
}

static const char *root_path(const char *rel, char *buf, size_t len)
{
    const char *root = getenv("GPUX_ROOT");
    snprintf(buf, len, "%s/%s", root && *root ? root : ".", rel);
    return buf;
}

/* ---- the shipped catalog ------------------------------------------------ */

static void test_default_file_has_36_markets_in_gpu_major_order(void **state)
{
    (void)state;
    char path[1024];
    root_path("matcher/catalog.default", path, sizeof path);
    if (matcher_catalog_load(&g_cat, path, g_err, sizeof g_err) != 0)
        fail_msg("load %s: %s", path, g_err);
    assert_int_equal(g_cat.n_markets, 36);
    static const char *gpus[] = {"H100", "H200", "B200", "A100", "MI300X", "L40S"};
    static const char *regions[] = {"us-east", "us-central", "us-west",
                                    "eu-west", "eu-north", "apac"};
    for (uint32_t g = 0; g < 6; g++)
        for (uint32_t r = 0; r < 6; r++) {
            expect_market(g * 6 + r, gpus[g], regions[r], 8, 100);
            assert_int_equal(matcher_catalog_find(&g_cat, gpus[g], regions[r]),
                             (int)(g * 6 + r));
        }
}

static void record(void *ctx, const matcher_event *ev)
{
    matcher_event *last = ctx;
    *last = *ev;
}

static void test_default_catalog_drives_an_engine(void **state)
{
    (void)state;
    char path[1024];
    root_path("matcher/catalog.default", path, sizeof path);
    assert_int_equal(matcher_catalog_load(&g_cat, path, g_err, sizeof g_err), 0);
    int m = matcher_catalog_find(&g_cat, "MI300X", "apac");
    assert_int_equal(m, 4 * 6 + 5);
    matcher_config cfg;
    matcher_config_default(&cfg);
    cfg.max_accounts = 8;
    cfg.max_orders = 16;
    cfg.max_orders_per_market = 16;
    cfg.max_segments = 16384;
    matcher_engine *e = matcher_create(&g_cat, &cfg);
    assert_non_null(e);
    assert_int_equal(matcher_catalog_of(e)->n_markets, 36);
    matcher_event last;
    matcher_cmd c;
    memset(&c, 0, sizeof c);
    c.type = MATCHER_CMD_CREATE_ACCOUNT;
    c.roles = MATCHER_ROLE_PROVIDER;
    assert_int_equal(matcher_apply(e, &c, record, &last), MATCHER_OK);
    uint32_t p = last.u.account.account;
    memset(&c, 0, sizeof c);
    c.type = MATCHER_CMD_NEW_ORDER;
    c.side = MATCHER_SELL;
    c.market = (uint32_t)m;
    c.account = p;
    c.price_micros = 1500100; /* $1.5001: a multiple of the $0.0001 tick */
    c.qty = 12;               /* not a multiple of the lot of 8 */
    c.start_hour = 10;
    c.end_hour = 20;
    assert_int_equal(matcher_apply(e, &c, NULL, NULL), MATCHER_REJ_BAD_QTY);
    c.qty = 16;
    c.price_micros = 1500050; /* off the tick */
    assert_int_equal(matcher_apply(e, &c, NULL, NULL), MATCHER_REJ_BAD_PRICE);
    c.price_micros = 1500100;
    assert_int_equal(matcher_apply(e, &c, record, &last), MATCHER_OK);
    c.market = 36; /* one past the catalog */
    assert_int_equal(matcher_apply(e, &c, NULL, NULL), MATCHER_REJ_UNKNOWN_MARKET);
    matcher_destroy(e);
}

/* ---- good files ----------------------------------------------------------- */

static void test_comments_blank_lines_tabs_and_crlf_are_ignored(void **state)
{
    (void)state;
    const char *text = "# header\n"
                       "\n"
                       "   \t  \n"
                       "region\tus-east   # trailing comment\r\n"
                       "gpu H100\r\n"
                       "#gpu H200\n"
                       "gpu A100";         /* no final newline */
    assert_int_equal(parse(text), 0);
    assert_int_equal(g_cat.n_markets, 2);
    expect_market(0, "H100", "us-east", 8, 100);
    expect_market(1, "A100", "us-east", 8, 100);
}

static void test_ids_follow_declaration_order_gpu_first(void **state)
{
    (void)state;
    /* gpus first: each region line opens all gpus declared so far */
    assert_int_equal(parse("gpu H100\ngpu B200\nregion eu-west\nregion apac\n"), 0);
    assert_int_equal(g_cat.n_markets, 4);
    expect_market(0, "H100", "eu-west", 8, 100);
    expect_market(1, "B200", "eu-west", 8, 100);
    expect_market(2, "H100", "apac", 8, 100);
    expect_market(3, "B200", "apac", 8, 100);
}

static void test_appending_lines_never_changes_existing_ids(void **state)
{
    (void)state;
    const char *base = "region r1\ngpu g1\nregion r2\ngpu g2\n";
    assert_int_equal(parse(base), 0);
    static matcher_catalog before;
    before = g_cat;
    assert_int_equal(before.n_markets, 4);
    char text[256];
    snprintf(text, sizeof text, "%sregion r3\ngpu g3 lot=4\n", base);
    assert_int_equal(parse(text), 0);
    assert_int_equal(g_cat.n_markets, 9);
    for (uint32_t i = 0; i < before.n_markets; i++)
        assert_memory_equal(&g_cat.markets[i], &before.markets[i], sizeof before.markets[i]);
    expect_market(4, "g1", "r3", 8, 100);
    expect_market(5, "g2", "r3", 8, 100);
    expect_market(6, "g3", "r1", 4, 100);
    expect_market(7, "g3", "r2", 4, 100);
    expect_market(8, "g3", "r3", 4, 100);
}

static void test_gpu_lot_and_tick_apply_to_all_its_markets(void **state)
{
    (void)state;
    assert_int_equal(parse("gpu L40S lot=4 tick=0.01\nregion a\nregion b\n"), 0);
    expect_market(0, "L40S", "a", 4, 10000);
    expect_market(1, "L40S", "b", 4, 10000);
}

static void test_default_line_applies_to_later_gpus_only(void **state)
{
    (void)state;
    assert_int_equal(parse("region r\ngpu A\ndefault lot=16\ngpu B\n"
                           "default tick=0.5\ngpu C lot=2\n"),
                     0);
    expect_market(0, "A", "r", 8, 100);
    expect_market(1, "B", "r", 16, 100);
    expect_market(2, "C", "r", 2, 500000);
}

static void test_market_line_overrides_one_pair(void **state)
{
    (void)state;
    assert_int_equal(parse("region e\nregion w\ngpu H100\ngpu A100\n"
                           "market H100 w lot=4\nmarket A100 e tick=0.001 lot=1\n"),
                     0);
    assert_int_equal(g_cat.n_markets, 4);
    expect_market(0, "H100", "e", 8, 100);
    expect_market(1, "H100", "w", 4, 100);
    expect_market(2, "A100", "e", 1, 1000);
    expect_market(3, "A100", "w", 8, 100);
}

static void test_tick_decimal_strings_parse_exactly(void **state)
{
    (void)state;
    static const struct { const char *s; int64_t micros; } cases[] = {
        {"0.0001", 100}, {"0.000001", 1}, {"1", 1000000}, {"1.5", 1500000},
        {"0.00010000", 100}, {"1000", 1000000000}, {"1000.000000", 1000000000},
        {"007.25", 7250000}, {"0.1", 100000}, {"2.35", 2350000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "region r\ngpu g tick=%s\n", cases[i].s);
        if (parse(text) != 0)
            fail_msg("tick %s: %s", cases[i].s, g_err);
        assert_int_equal(g_cat.markets[0].tick_micros, cases[i].micros);
    }
}

static void test_names_of_15_chars_and_all_allowed_characters(void **state)
{
    (void)state;
    assert_int_equal(parse("region aZ09._-xxxxxxxx\ngpu ABCDEFGHIJKLMNO\ngpu h100\n"), 0);
    expect_market(0, "ABCDEFGHIJKLMNO", "aZ09._-xxxxxxxx", 8, 100);
    /* case-sensitive: h100 is another gpu */
    expect_market(1, "h100", "aZ09._-xxxxxxxx", 8, 100);
}

static void test_gpu_and_region_may_share_a_name(void **state)
{
    (void)state;
    assert_int_equal(parse("region X\ngpu X\n"), 0);
    expect_market(0, "X", "X", 8, 100);
}

static void test_exactly_1024_markets_fit(void **state)
{
    (void)state;
    static char text[16384];
    size_t n = 0;
    for (int i = 0; i < 32; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "region r%d\n", i);
    for (int i = 0; i < 32; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "gpu g%d\n", i);
    assert_int_equal(parse(text), 0);
    assert_int_equal(g_cat.n_markets, MATCHER_MAX_MARKETS);
    expect_market(1023, "g31", "r31", 8, 100);
    /* one more region: 32 more markets, past the limit */
    snprintf(text + n, sizeof text - n, "region extra\n");
    memset(&g_cat, 0, sizeof g_cat);
    assert_int_equal(parse(text), -1);
    assert_non_null(strstr(g_err, "line 65"));
    assert_non_null(strstr(g_err, "1024"));
    assert_int_equal(g_cat.n_markets, 0);
}

/* ---- every error path ------------------------------------------------------ */

static void test_error_unknown_directive(void **state)
{
    (void)state;
    expect_error("region r\ngpux H100\n", "line 2: unknown directive 'gpux'");
    expect_error("Region r\n", "line 1: unknown directive");
}

static void test_error_bad_names(void **state)
{
    (void)state;
    expect_error("region us east\n", "line 1: region takes exactly one name");
    expect_error("region r\ngpu H100!\n", "line 2: gpu id 'H100!'");
    expect_error("region r\ngpu ABCDEFGHIJKLMNOP\n", "line 2: gpu id");   /* 16 chars */
    expect_error("region ABCDEFGHIJKLMNOP\ngpu g\n", "line 1: region id");
    expect_error("region r/1\n", "line 1: region id");
    expect_error("region r\ngpu H100\xc3\xa9\n", "line 2: gpu id");
    expect_error("region r\ngpu\n", "line 2: gpu needs a name");
    expect_error("region\ngpu g\n", "line 1: region takes exactly one name");
}

static void test_error_duplicates(void **state)
{
    (void)state;
    expect_error("region r\ngpu g\ngpu g\n", "line 3: gpu 'g' declared twice");
    expect_error("region r\ngpu g\nregion r\n", "line 3: region 'r' declared twice");
    expect_error("region r\ngpu g\nmarket g r lot=1\nmarket g r tick=1\n",
                 "line 4: market g r overridden twice");
}

static void test_error_bad_lot(void **state)
{
    (void)state;
    const char *bad[] = {"0", "-8", "100001", "8x", "", "1e3", "+8", "0x10", "9999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "region r\ngpu g lot=%s\n", bad[i]);
        expect_error(text, "line 2: lot");
    }
    /* the upper bound itself is fine */
    assert_int_equal(parse("region r\ngpu g lot=100000\n"), 0);
    assert_int_equal(g_cat.markets[0].lot, 100000);
}

static void test_error_bad_tick(void **state)
{
    (void)state;
    const char *bad[] = {"0", "0.0", "-0.01", "0.0000001", "0.0000005", "1e-4",
                         ".5", "1.", "1000.000001", "1001", "abc", "", "0,01",
                         "$0.01", "1.2.3", "99999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "region r\n\ngpu g tick=%s\n", bad[i]);
        expect_error(text, "line 3: tick");
    }
}

static void test_error_bad_options(void **state)
{
    (void)state;
    expect_error("region r\ngpu g size=8\n", "line 2: unknown option 'size'");
    expect_error("region r\ngpu g lot\n", "line 2: expected key=value, got 'lot'");
    expect_error("region r\ngpu g lot = 8\n", "line 2: expected key=value");
    expect_error("region r\ngpu g lot=8 lot=4\n", "line 2: lot given twice");
    expect_error("region r\ngpu g tick=1 tick=1\n", "line 2: tick given twice");
    expect_error("default\nregion r\ngpu g\n", "line 1: default needs");
    expect_error("default lot=0\nregion r\ngpu g\n", "line 1: lot");
}

static void test_error_market_line(void **state)
{
    (void)state;
    expect_error("region r\ngpu g\nmarket h r lot=4\n", "line 3: market: gpu 'h' is not declared");
    expect_error("region r\ngpu g\nmarket g s lot=4\n", "line 3: market: region 's' is not declared");
    /* must come after both declarations */
    expect_error("region r\nmarket g r lot=4\ngpu g\n", "line 2: market: gpu 'g' is not declared");
    expect_error("region r\ngpu g\nmarket g r\n", "line 3: market needs");
    expect_error("region r\ngpu g\nmarket g r lot=0\n", "line 3: lot");
    expect_error("region r\ngpu g\nmarket g! r lot=4\n", "line 3: gpu id");
}

static void test_error_line_shape(void **state)
{
    (void)state;
    expect_error("region r\ngpu g lot=1 tick=1 a=1 b=2 c=3 d=4 e=5\n", "line 2: too many words");
    char text[600];
    memset(text, 0, sizeof text);
    strcpy(text, "region r\ngpu g # ");
    memset(text + strlen(text), 'x', 300);
    expect_error(text, "line 2: line longer than 256 bytes");
    /* a NUL inside the text is an error, not the end of the file */
    static const char with_nul[] = "region r\ngpu g\0\ngpu h\n";
    memset(&g_cat, 0, sizeof g_cat);
    assert_int_equal(matcher_catalog_parse(&g_cat, with_nul, sizeof with_nul - 1, g_err,
                                           sizeof g_err),
                     -1);
    assert_non_null(strstr(g_err, "line 2: NUL byte"));
    assert_int_equal(g_cat.n_markets, 0);
}

static void test_error_no_markets(void **state)
{
    (void)state;
    expect_error("", "no markets");
    expect_error("# only a comment\n\n", "no markets");
    expect_error("gpu H100\ngpu H200\n", "no markets");
    expect_error("region us-east\n", "no markets");
}

static void test_error_message_is_one_line_and_fits(void **state)
{
    (void)state;
    char small[24];
    memset(&g_cat, 0, sizeof g_cat);
    const char *text = "region r\ngpu g tick=nope\n";
    assert_int_equal(matcher_catalog_parse(&g_cat, text, strlen(text), small, sizeof small), -1);
    assert_true(strlen(small) < sizeof small);
    assert_memory_equal(small, "line 2: ", 8);
    assert_int_equal(parse(text), -1);
    assert_null(strchr(g_err, '\n'));
}

/* ---- load ------------------------------------------------------------------- */

static void test_load_missing_file_names_path_and_os_reason(void **state)
{
    (void)state;
    g_cat.n_markets = 3;
    assert_int_equal(matcher_catalog_load(&g_cat, "/nonexistent/gpux.catalog", g_err,
                                          sizeof g_err),
                     -1);
    assert_non_null(strstr(g_err, "/nonexistent/gpux.catalog"));
    assert_non_null(strstr(g_err, "No such file"));
    assert_int_equal(g_cat.n_markets, 0);
}

static void test_load_bad_file_names_path_and_line(void **state)
{
    (void)state;
    char path[] = "/tmp/gpux-catalog-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "region r\ngpu g\ngpu g lot=9 tick=bad\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    int rc = matcher_catalog_load(&g_cat, path, g_err, sizeof g_err);
    unlink(path);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(g_err, path));
    assert_non_null(strstr(g_err, "line 3"));
    assert_int_equal(g_cat.n_markets, 0);
}

static void test_load_refuses_oversized_file(void **state)
{
    (void)state;
    char path[] = "/tmp/gpux-catalog-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static char comment[4096];
    memset(comment, '#', sizeof comment);
    for (int i = 0; i < 300; i++) /* 1.2 MB of comments */
        assert_int_equal(write(fd, comment, sizeof comment), (ssize_t)sizeof comment);
    close(fd);
    int rc = matcher_catalog_load(&g_cat, path, g_err, sizeof g_err);
    unlink(path);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(g_err, "larger than"));
}

static void test_load_directory_is_an_error(void **state)
{
    (void)state;
    assert_int_equal(matcher_catalog_load(&g_cat, "/tmp", g_err, sizeof g_err), -1);
    assert_non_null(strstr(g_err, "/tmp"));
    assert_int_equal(g_cat.n_markets, 0);
}

/* ---- add / find ----------------------------------------------------------- */

static void test_add_assigns_sequential_ids_and_find_them(void **state)
{
    (void)state;
    memset(&g_cat, 0, sizeof g_cat);
    assert_int_equal(matcher_catalog_add(&g_cat, "H100", "us-east", 8, 100), 0);
    assert_int_equal(matcher_catalog_add(&g_cat, "H100", "eu-west", 4, 1000), 1);
    assert_int_equal(matcher_catalog_add(&g_cat, "A100", "us-east", 8, 100), 2);
    assert_int_equal(g_cat.n_markets, 3);
    expect_market(1, "H100", "eu-west", 4, 1000);
    assert_int_equal(matcher_catalog_find(&g_cat, "H100", "us-east"), 0);
    assert_int_equal(matcher_catalog_find(&g_cat, "H100", "eu-west"), 1);
    assert_int_equal(matcher_catalog_find(&g_cat, "A100", "us-east"), 2);
}

static void test_add_refuses_bad_markets(void **state)
{
    (void)state;
    memset(&g_cat, 0, sizeof g_cat);
    assert_int_equal(matcher_catalog_add(&g_cat, "H100", "us-east", 8, 100), 0);
    assert_int_equal(matcher_catalog_add(&g_cat, "H100", "us-east", 4, 10), -1); /* dup */
    assert_int_equal(matcher_catalog_add(&g_cat, "", "us-east", 8, 100), -1);
    assert_int_equal(matcher_catalog_add(&g_cat, "H100", "", 8, 100), -1);
    assert_int_equal(matcher_catalog_add(&g_cat, "ABCDEFGHIJKLMNOP", "r", 8, 100), -1);
    assert_int_equal(matcher_catalog_add(&g_cat, "g", "ABCDEFGHIJKLMNOP", 8, 100), -1);
    assert_int_equal(matcher_catalog_add(&g_cat, "g x", "r", 8, 100), -1);
    assert_int_equal(matcher_catalog_add(&g_cat, NULL, "r", 8, 100), -1);
    assert_int_equal(matcher_catalog_add(&g_cat, "g", "r", 0, 100), -1);
    assert_int_equal(matcher_catalog_add(&g_cat, "g", "r", -8, 100), -1);
    assert_int_equal(matcher_catalog_add(&g_cat, "g", "r", 8, 0), -1);
    assert_int_equal(matcher_catalog_add(&g_cat, "g", "r", 8, -100), -1);
    assert_int_equal(matcher_catalog_add(&g_cat, "g", "r", MATCHER_MAX_QTY + 1, 100), -1);
    assert_int_equal(matcher_catalog_add(&g_cat, "g", "r", 8, MATCHER_MAX_PRICE_MICROS + 1), -1);
    assert_int_equal(g_cat.n_markets, 1); /* nothing was added */
    assert_int_equal(matcher_catalog_add(&g_cat, "g", "r", 8, 100), 1);
}

static void test_add_refuses_when_full(void **state)
{
    (void)state;
    memset(&g_cat, 0, sizeof g_cat);
    for (int i = 0; i < MATCHER_MAX_MARKETS; i++) {
        char gpu[16];
        snprintf(gpu, sizeof gpu, "g%d", i);
        assert_int_equal(matcher_catalog_add(&g_cat, gpu, "r", 8, 100), i);
    }
    assert_int_equal(matcher_catalog_add(&g_cat, "last", "r", 8, 100), -1);
    assert_int_equal(g_cat.n_markets, MATCHER_MAX_MARKETS);
    assert_int_equal(matcher_catalog_find(&g_cat, "g1023", "r"), 1023);
}

static void test_find_is_exact_and_case_sensitive(void **state)
{
    (void)state;
    assert_int_equal(parse("region us-east\ngpu H100\n"), 0);
    assert_int_equal(matcher_catalog_find(&g_cat, "H100", "us-east"), 0);
    assert_int_equal(matcher_catalog_find(&g_cat, "h100", "us-east"), -1);
    assert_int_equal(matcher_catalog_find(&g_cat, "H100", "US-EAST"), -1);
    assert_int_equal(matcher_catalog_find(&g_cat, "H10", "us-east"), -1);
    assert_int_equal(matcher_catalog_find(&g_cat, "H1000", "us-east"), -1);
    assert_int_equal(matcher_catalog_find(&g_cat, "us-east", "H100"), -1);
    assert_int_equal(matcher_catalog_find(&g_cat, "", ""), -1);
    assert_int_equal(matcher_catalog_find(&g_cat, NULL, "us-east"), -1);
    assert_int_equal(matcher_catalog_find(&g_cat, "H100", NULL), -1);
    assert_int_equal(matcher_catalog_find(&g_cat, "H100xxxxxxxxxxxxxxxxxxxxx", "us-east"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_file_has_36_markets_in_gpu_major_order),
        cmocka_unit_test(test_default_catalog_drives_an_engine),
        cmocka_unit_test(test_comments_blank_lines_tabs_and_crlf_are_ignored),
        cmocka_unit_test(test_ids_follow_declaration_order_gpu_first),
        cmocka_unit_test(test_appending_lines_never_changes_existing_ids),
        cmocka_unit_test(test_gpu_lot_and_tick_apply_to_all_its_markets),
        cmocka_unit_test(test_default_line_applies_to_later_gpus_only),
        cmocka_unit_test(test_market_line_overrides_one_pair),
        cmocka_unit_test(test_tick_decimal_strings_parse_exactly),
        cmocka_unit_test(test_names_of_15_chars_and_all_allowed_characters),
        cmocka_unit_test(test_gpu_and_region_may_share_a_name),
        cmocka_unit_test(test_exactly_1024_markets_fit),
        cmocka_unit_test(test_error_unknown_directive),
        cmocka_unit_test(test_error_bad_names),
        cmocka_unit_test(test_error_duplicates),
        cmocka_unit_test(test_error_bad_lot),
        cmocka_unit_test(test_error_bad_tick),
        cmocka_unit_test(test_error_bad_options),
        cmocka_unit_test(test_error_market_line),
        cmocka_unit_test(test_error_line_shape),
        cmocka_unit_test(test_error_no_markets),
        cmocka_unit_test(test_error_message_is_one_line_and_fits),
        cmocka_unit_test(test_load_missing_file_names_path_and_os_reason),
        cmocka_unit_test(test_load_bad_file_names_path_and_line),
        cmocka_unit_test(test_load_refuses_oversized_file),
        cmocka_unit_test(test_load_directory_is_an_error),
        cmocka_unit_test(test_add_assigns_sequential_ids_and_find_them),
        cmocka_unit_test(test_add_refuses_bad_markets),
        cmocka_unit_test(test_add_refuses_when_full),
        cmocka_unit_test(test_find_is_exact_and_case_sensitive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
