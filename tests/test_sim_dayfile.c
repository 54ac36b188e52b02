/* test_sim_dayfile.c — the day-file reader accepts exactly the documented
 * format and rejects every malformed line with its line number.
 *
 * Proves: a file using every op and optional field reads back field for
 * field; each of ~40 malformed lines (bad JSON, wrong types, unknown or
 * duplicate fields, out-of-range values, bad money/hour strings, time going
 * back, undefined names, reused refs) stops the reader at that line with a
 * message naming it; header problems, truncation, extra lines and a
 * missing final newline are caught; the reader stays stopped after an
 * error. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sim/sim.h"

#include <stdlib.h>
#include <string.h>

#define HDR(events) \
    "{\"gpux_day\":1,\"scenario\":\"t\",\"seed\":1,\"start\":\"2026-12-01T00:00:00Z\"," \
    "\"hours\":24,\"events\":" #events ",\"accounts\":2,\"orders\":2}\n"

/* lines 2..5 of every malformed-line case */
#define PREFIX                                                                       \
    "{\"t\":0,\"op\":\"clock\",\"hour\":\"2026-12-01T00:00:00Z\"}\n"                 \
    "{\"t\":0,\"op\":\"account\",\"account\":\"p1\",\"kind\":\"neocloud\",\"roles\":[\"provider\"]}\n" \
    "{\"t\":0,\"op\":\"account\",\"account\":\"b1\",\"kind\":\"lab\",\"roles\":[\"buyer\"]}\n" \
    "{\"t\":5,\"op\":\"order\",\"account\":\"p1\",\"ref\":\"o1\",\"side\":\"sell\",\"gpu\":\"H100\"," \
    "\"region\":\"us-east\",\"start\":\"2026-12-01T01:00:00Z\",\"end\":\"2026-12-01T05:00:00Z\"," \
    "\"qty\":16,\"price\":\"2.35\"}\n"

/* Reads text to its end. Returns the reader's final status (0 or -1) and
 * the number of commands read; err gets the message. */
static int read_text(const char *text, int *n_ok, char *err, size_t errlen)
{
    sim_cmd c;
    int rc;
    FILE *fp = fmemopen((void *)text, strlen(text), "r");
    assert_non_null(fp);
    *n_ok = 0;
    err[0] = '\0';
    sim_dayfile *d = sim_dayfile_open_stream(fp, "day.jsonl", err, errlen);
    if (!d)
        return -2;
    while ((rc = sim_dayfile_next(d, &c, err, errlen)) == 1)
        (*n_ok)++;
    if (rc < 0) { /* stays stopped */
        char again[256];
        assert_int_equal(sim_dayfile_next(d, &c, again, sizeof(again)), -1);
    }
    sim_dayfile_close(d);
    return rc;
}

static void test_good_file_reads_back(void **state)
{
    (void)state;
    static const char text[] = HDR(9) PREFIX
        "{\"t\":6,\"op\":\"deposit\",\"account\":\"b1\",\"amount\":\"1000000.5\"}\n"
        "{\"t\":7,\"op\":\"order\",\"account\":\"b1\",\"ref\":\"bid-1\",\"side\":\"buy\","
        "\"gpu\":\"L40S\",\"region\":\"apac\",\"start\":\"2026-12-01T02:00:00Z\","
        "\"end\":\"2026-12-01T04:00:00Z\",\"qty\":24,\"price\":\"1.2345\",\"tif\":\"fok\","
        "\"min_qty\":8,\"single_provider\":true,\"expire_at\":\"2026-12-01T01:00:00Z\"}\n"
        "{\"t\":8,\"op\":\"replace\",\"account\":\"b1\",\"ref\":\"bid-1\",\"qty\":16}\n"
        "{\"t\":9,\"op\":\"cancel\",\"account\":\"p1\",\"ref\":\"o1\"}\n"
        "{\"t\":3600,\"op\":\"clock\",\"hour\":\"2026-12-01T01:00:00Z\"}\n";
    char err[256];
    sim_cmd c;
    FILE *fp = fmemopen((void *)text, strlen(text), "r");
    sim_dayfile *d = sim_dayfile_open_stream(fp, "good", err, sizeof(err));
    if (!d)
        fail_msg("%s", err);
    const sim_day_header *h = sim_dayfile_header(d);
    assert_int_equal(h->events, 9);
    assert_int_equal(h->hours, 24);
    assert_int_equal(h->start_hour, 1796083200LL / 3600);
    int64_t start = h->start_hour;

    assert_int_equal(sim_dayfile_next(d, &c, err, sizeof(err)), 1);
    assert_int_equal(c.op, SIM_OP_CLOCK);
    assert_int_equal(c.hour, start);
    assert_int_equal(sim_dayfile_next(d, &c, err, sizeof(err)), 1);
    assert_int_equal(c.op, SIM_OP_ACCOUNT);
    assert_int_equal(c.account_idx, 0);
    assert_int_equal(c.roles, SIM_ROLE_PROVIDER);
    assert_string_equal(c.kind, "neocloud");
    assert_int_equal(sim_dayfile_next(d, &c, err, sizeof(err)), 1);
    assert_int_equal(c.account_idx, 1);
    assert_int_equal(sim_dayfile_next(d, &c, err, sizeof(err)), 1);
    assert_int_equal(c.op, SIM_OP_ORDER);
    assert_int_equal(c.side, SIM_SELL);
    assert_int_equal(c.market, sim_market_find("H100", "us-east"));
    assert_int_equal(c.price_micros, 2350000);
    assert_int_equal(c.start_hour, start + 1);
    assert_int_equal(c.end_hour, start + 5);
    assert_int_equal(c.tif, SIM_GTC);
    assert_int_equal(c.t_s, 5);
    assert_int_equal(sim_dayfile_next(d, &c, err, sizeof(err)), 1);
    assert_int_equal(c.op, SIM_OP_DEPOSIT);
    assert_int_equal(c.amount_micros, 1000000500000LL);
    assert_int_equal(sim_dayfile_next(d, &c, err, sizeof(err)), 1);
    assert_int_equal(c.op, SIM_OP_ORDER);
    assert_int_equal(c.order_idx, 1);
    assert_int_equal(c.account_idx, 1);
    assert_int_equal(c.side, SIM_BUY);
    assert_int_equal(c.tif, SIM_FOK);
    assert_int_equal(c.min_qty, 8);
    assert_int_equal(c.single_provider, 1);
    assert_int_equal(c.expire_at_hour, start + 1);
    assert_int_equal(c.price_micros, 1234500);
    assert_int_equal(sim_dayfile_next(d, &c, err, sizeof(err)), 1);
    assert_int_equal(c.op, SIM_OP_REPLACE);
    assert_int_equal(c.order_idx, 1);
    assert_int_equal(c.qty, 16);
    assert_int_equal(c.price_micros, 0);
    assert_int_equal(sim_dayfile_next(d, &c, err, sizeof(err)), 1);
    assert_int_equal(c.op, SIM_OP_CANCEL);
    assert_int_equal(c.order_idx, 0);
    assert_int_equal(sim_dayfile_next(d, &c, err, sizeof(err)), 1);
    assert_int_equal(c.op, SIM_OP_CLOCK);
    assert_int_equal(sim_dayfile_next(d, &c, err, sizeof(err)), 0);
    assert_string_equal(sim_dayfile_account_name(d, 1), "b1");
    assert_string_equal(sim_dayfile_order_ref(d, 1), "bid-1");
    assert_int_equal(sim_dayfile_find_order(d, "o1"), 0);
    assert_int_equal(sim_dayfile_find_account(d, "nobody"), -1);
    sim_dayfile_close(d);
}

typedef struct bad_case {
    const char *line;   /* line 6 */
    const char *expect; /* substring of the error */
} bad_case;

static const bad_case bad_lines[] = {
    {"{\"t\":6,\"op\":\"clock\",\"hour\":\"2026-12-01T01:00:00Z\"", "bad JSON"},
    {"[1,2]", "not a JSON object"},
    {"", "bad JSON"},
    {"{\"t\":6,\"op\":\"clock\",\"hour\":\"2026-12-01T01:00:00Z\"} x", "bad JSON"},
    {"{\"t\":6,\"t\":7,\"op\":\"clock\",\"hour\":\"2026-12-01T01:00:00Z\"}", "bad JSON"},
    {"{\"op\":\"clock\",\"hour\":\"2026-12-01T01:00:00Z\"}", "missing field 't'"},
    {"{\"t\":\"6\",\"op\":\"clock\",\"hour\":\"2026-12-01T01:00:00Z\"}", "'t' must be an integer"},
    {"{\"t\":6.5,\"op\":\"clock\",\"hour\":\"2026-12-01T01:00:00Z\"}", "'t' must be an integer"},
    {"{\"t\":4,\"op\":\"clock\",\"hour\":\"2026-12-01T01:00:00Z\"}", "goes back"},
    {"{\"t\":86401,\"op\":\"clock\",\"hour\":\"2026-12-01T01:00:00Z\"}", "'t' must be an integer 0..86400"},
    {"{\"t\":6,\"op\":\"teleport\"}", "unknown op 'teleport'"},
    {"{\"t\":6,\"op\":\"clock\",\"hour\":\"2026-12-01T01:00:00Z\",\"x\":1}", "unknown field 'x'"},
    {"{\"t\":6,\"op\":\"clock\",\"hour\":\"2026-12-01T01:30:00Z\"}", "'hour' must be an RFC 3339"},
    {"{\"t\":6,\"op\":\"clock\",\"hour\":\"2026-11-30T23:00:00Z\"}", "must not go back"},
    {"{\"t\":6,\"op\":\"clock\",\"hour\":\"2026-12-02T01:00:00Z\"}", "inside the day"},
    {"{\"t\":6,\"op\":\"account\",\"account\":\"p1\",\"kind\":\"lab\",\"roles\":[\"buyer\"]}", "created twice"},
    {"{\"t\":6,\"op\":\"account\",\"account\":\"x y\",\"kind\":\"lab\",\"roles\":[\"buyer\"]}", "'account' must be a string"},
    {"{\"t\":6,\"op\":\"account\",\"account\":\"x\",\"kind\":\"lab\",\"roles\":[]}", "'roles'"},
    {"{\"t\":6,\"op\":\"account\",\"account\":\"x\",\"kind\":\"lab\",\"roles\":[\"buyer\",\"buyer\"]}", "distinct"},
    {"{\"t\":6,\"op\":\"account\",\"account\":\"x\",\"kind\":\"lab\",\"roles\":[\"king\"]}", "'roles'"},
    {"{\"t\":6,\"op\":\"account\",\"account\":\"x\",\"kind\":\"lab\",\"roles\":[\"buyer\"]}", "more accounts than the header"},
    {"{\"t\":6,\"op\":\"deposit\",\"account\":\"zz\",\"amount\":\"1\"}", "unknown account 'zz'"},
    {"{\"t\":6,\"op\":\"deposit\",\"account\":\"b1\",\"amount\":1}", "'amount' must be a"},
    {"{\"t\":6,\"op\":\"deposit\",\"account\":\"b1\",\"amount\":\"-1\"}", "'amount' must be a decimal"},
    {"{\"t\":6,\"op\":\"deposit\",\"account\":\"b1\",\"amount\":\"0\"}", "'amount' must be a decimal"},
    {"{\"t\":6,\"op\":\"deposit\",\"account\":\"b1\",\"amount\":\"1.0000001\"}", "'amount' must be a decimal"},
    {"{\"t\":6,\"op\":\"deposit\",\"account\":\"b1\",\"amount\":\"1000000000.01\"}", "at most 1000000000.00"},
#define ORD(extra) "{\"t\":6,\"op\":\"order\",\"account\":\"b1\",\"ref\":\"o2\",\"side\":\"buy\"," \
    "\"gpu\":\"H100\",\"region\":\"us-east\",\"start\":\"2026-12-01T01:00:00Z\"," \
    "\"end\":\"2026-12-01T02:00:00Z\"" extra "}"
    {ORD(",\"qty\":8"), "missing field 'price'"},
    {ORD(",\"price\":\"2\""), "missing field 'qty'"},
    {ORD(",\"qty\":0,\"price\":\"2\""), "'qty' must be an integer 1..100000"},
    {ORD(",\"qty\":100008,\"price\":\"2\""), "'qty' must be an integer 1..100000"},
    {ORD(",\"qty\":8,\"price\":\"1000.0001\""), "'price' must be a decimal"},
    {ORD(",\"qty\":8,\"price\":\"2\",\"min_qty\":16"), "min_qty 16 is larger than qty 8"},
    {ORD(",\"qty\":8,\"price\":\"2\",\"tif\":\"day\""), "'tif' must be"},
    {ORD(",\"qty\":8,\"price\":\"2\",\"single_provider\":1"), "'single_provider' must be true or false"},
    {ORD(",\"qty\":8,\"price\":\"2\",\"min_hours\":2"), "min_hours is longer than the window"},
    {ORD(",\"qty\":8,\"price\":\"2\",\"expire_at\":\"soon\""), "'expire_at' must be an RFC 3339"},
    {ORD(",\"qty\":8,\"price\":\"2\",\"colour\":\"red\""), "unknown field 'colour'"},
    {"{\"t\":6,\"op\":\"order\",\"account\":\"b1\",\"ref\":\"o2\",\"side\":\"buy\",\"gpu\":\"H100\","
     "\"region\":\"us-east\",\"start\":\"2026-12-01T02:00:00Z\",\"end\":\"2026-12-01T02:00:00Z\","
     "\"qty\":8,\"price\":\"2\"}", "end > start"},
    {"{\"t\":6,\"op\":\"order\",\"account\":\"b1\",\"ref\":\"o2\",\"side\":\"buy\",\"gpu\":\"H100\","
     "\"region\":\"mars\",\"start\":\"2026-12-01T01:00:00Z\",\"end\":\"2026-12-01T02:00:00Z\","
     "\"qty\":8,\"price\":\"2\"}", "unknown market H100/mars"},
    {"{\"t\":6,\"op\":\"order\",\"account\":\"b1\",\"ref\":\"o2\",\"side\":\"hold\",\"gpu\":\"H100\","
     "\"region\":\"us-east\",\"start\":\"2026-12-01T01:00:00Z\",\"end\":\"2026-12-01T02:00:00Z\","
     "\"qty\":8,\"price\":\"2\"}", "'side' must be"},
    {"{\"t\":6,\"op\":\"order\",\"account\":\"b1\",\"ref\":\"o1\",\"side\":\"buy\",\"gpu\":\"H100\","
     "\"region\":\"us-east\",\"start\":\"2026-12-01T01:00:00Z\",\"end\":\"2026-12-01T02:00:00Z\","
     "\"qty\":8,\"price\":\"2\"}", "order ref 'o1' used twice"},
    {"{\"t\":6,\"op\":\"cancel\",\"account\":\"b1\",\"ref\":\"o9\"}", "unknown order ref 'o9'"},
    {"{\"t\":6,\"op\":\"cancel\",\"account\":\"b1\"}", "missing field 'ref'"},
    {"{\"t\":6,\"op\":\"replace\",\"account\":\"p1\",\"ref\":\"o1\"}", "needs 'price' and/or 'qty'"},
    {"{\"t\":6,\"op\":\"replace\",\"account\":\"p1\",\"ref\":\"o1\",\"qty\":-8}", "'qty' must be an integer"},
    {"{\"t\":6,\"op\":\"replace\",\"account\":\"p1\",\"ref\":\"o1\",\"price\":\"abc\"}", "'price' must be a decimal"},
};

static void test_bad_lines_name_the_line(void **state)
{
    (void)state;
    char text[4096], err[512];
    for (size_t i = 0; i < sizeof(bad_lines) / sizeof(bad_lines[0]); i++) {
        int n;
        snprintf(text, sizeof(text), "%s%s%s\n", HDR(5), PREFIX, bad_lines[i].line);
        int rc = read_text(text, &n, err, sizeof(err));
        if (rc != -1 || n != 4 || !strstr(err, "day.jsonl: line 6: ") ||
            !strstr(err, bad_lines[i].expect))
            fail_msg("case %zu (%s): rc %d, %d good lines, err '%s', want '%s'", i,
                     bad_lines[i].line, rc, n, err, bad_lines[i].expect);
    }
}

static void test_structure_errors(void **state)
{
    (void)state;
    char err[512], text[4096];
    int n;
    /* the header says 6 events, the file has 4 */
    assert_int_equal(read_text(HDR(6) PREFIX, &n, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "file ends after 4 events, the header says 6"));
    /* the header says 3 events, the file has 4 */
    assert_int_equal(read_text(HDR(3) PREFIX, &n, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line 5: more events than the header's 3"));
    /* last line without its newline (a cut-off write) */
    snprintf(text, sizeof(text), "%s%s{\"t\":6,\"op\":\"clock\",\"hour\":\"2026-12-01T01:00:00Z\"}",
             HDR(5), PREFIX);
    assert_int_equal(read_text(text, &n, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line 6: no newline"));
    /* a line longer than the limit */
    memset(text, 0, sizeof(text));
    strcpy(text, HDR(5) PREFIX "{\"t\":6,\"op\":\"clock\",\"hour\":\"");
    memset(text + strlen(text), 'x', SIM_MAX_LINE + 10);
    strcat(text, "\"}\n");
    assert_int_equal(read_text(text, &n, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line 6: line longer than"));
    /* header problems */
    assert_int_equal(read_text("", &n, err, sizeof(err)), -2);
    assert_non_null(strstr(err, "empty file"));
    assert_int_equal(read_text("{\"gpux_day\":2,\"scenario\":\"t\",\"seed\":1,\"start\":"
                               "\"2026-12-01T00:00:00Z\",\"hours\":24,\"events\":1,"
                               "\"accounts\":0,\"orders\":0}\n", &n, err, sizeof(err)), -2);
    assert_non_null(strstr(err, "line 1: day file version 2"));
    assert_int_equal(read_text("{\"gpux_day\":1,\"scenario\":\"t\",\"seed\":1,\"start\":"
                               "\"2026-12-01T00:00:00Z\",\"hours\":0,\"events\":1,"
                               "\"accounts\":0,\"orders\":0}\n", &n, err, sizeof(err)), -2);
    assert_non_null(strstr(err, "line 1: field 'hours'"));
    assert_int_equal(read_text("{\"gpux_day\":1,\"scenario\":\"t\",\"seed\":1,\"start\":"
                               "\"2026-12-01T00:00:00Z\",\"hours\":24,\"events\":1,"
                               "\"accounts\":0}\n", &n, err, sizeof(err)), -2);
    assert_non_null(strstr(err, "missing field 'orders'"));
    /* and a missing file names the path */
    assert_null(sim_dayfile_open("/nonexistent/day.jsonl", err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/day.jsonl: cannot open"));
}

/* Damages one line of a generated day in random ways (deterministic
 * PRNG): the reader never crashes (ASan in the san flavour), never reports
 * a line before the damaged one, and a failure always names a line. */
static void test_damaged_days(void **state)
{
    (void)state;
    sim_gen_config cfg;
    char *day = NULL, err[512];
    size_t len = 0;
    sim_rng rng;
    FILE *fp = open_memstream(&day, &len);
    sim_gen_config_default(&cfg);
    cfg.events = 300;
    assert_int_equal(sim_generate(&cfg, fp, NULL, err, sizeof(err)), 0);
    fclose(fp);
    size_t starts[1024], n_lines = 0;
    for (size_t i = 0; i < len && n_lines < 1024; i++)
        if (i == 0 || day[i - 1] == '\n')
            starts[n_lines++] = i;
    static const char junk[] = "{}[]\",:0123456789-.eE\\ xtnul\n";
    char *copy = malloc(len + 1);
    sim_rng_seed(&rng, 2026);
    const char *fl = getenv("GPUX_FLAVOUR");
    int iters = fl && strcmp(fl, "san") == 0 ? 150 : 400, failures = 0;
    for (int iter = 0; iter < iters; iter++) {
        memcpy(copy, day, len);
        size_t line = (size_t)sim_rng_below(&rng, n_lines); /* 0 = header */
        size_t end = line + 1 < n_lines ? starts[line + 1] - 1 : len - 1;
        size_t span = end - starts[line];
        for (int k = 0, edits = (int)sim_rng_range(&rng, 1, 3); k < edits && span > 0; k++)
            copy[starts[line] + sim_rng_below(&rng, span)] =
                junk[sim_rng_below(&rng, sizeof(junk) - 1)];
        int n, rc;
        copy[len] = '\0';
        rc = read_text(copy, &n, err, sizeof(err));
        if (rc == 0)
            continue; /* the edit kept the file valid (a digit for a digit) */
        failures++;
        const char *at = strstr(err, ": line ");
        if (rc == -2 && line == 0)
            continue; /* header refused: nothing was read */
        if (!at)
            fail_msg("iteration %d: error without a line: %s", iter, err);
        unsigned long reported = strtoul(at + 7, NULL, 10);
        if (reported < line + 1)
            fail_msg("iteration %d: damaged line %zu, error at line %lu: %s", iter,
                     line + 1, reported, err);
    }
    assert_true(failures > iters / 2); /* the damage was mostly caught */
    free(copy);
    free(day);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_file_reads_back),
        cmocka_unit_test(test_bad_lines_name_the_line),
        cmocka_unit_test(test_structure_errors),
        cmocka_unit_test(test_damaged_days),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
