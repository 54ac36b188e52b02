/* test_sim_day.c — generated days replayed through the real in-process
 * engine do what their scenarios claim.
 *
 * Proves: hyperscaler-surplus lowers the H100 VWAP after the release hour
 * (against its own morning and against baseline's afternoon); peak-crunch
 * leaves more demand unfilled at peak than baseline, and raises the H100
 * peak price; the replay is deterministic (same engine state hash, same
 * figures); every engine trade passes the report's consistency checks
 * (sim_day_run fails otherwise); the trades file written by the replay
 * reads back into the same trade figures; a market missing from the
 * catalog stops the replay with the line. Several seeds each, so a
 * property that only holds by luck of one seed would show. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sim/sim.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static char catalog[4096];
static uint64_t events; /* per day: scaled down under the sanitizers */

static int setup(void **state)
{
    (void)state;
    const char *root = getenv("GPUX_ROOT"), *fl = getenv("GPUX_FLAVOUR");
    snprintf(catalog, sizeof(catalog), "%s/matcher/catalog.default", root ? root : ".");
    events = fl && strcmp(fl, "san") == 0 ? 2000 : 4000;
    strcpy(dir, "/tmp/gpux-test-sim-day-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void make_day(const char *path, sim_scenario s, uint64_t seed, uint64_t mask)
{
    sim_gen_config cfg;
    char err[256];
    sim_gen_config_default(&cfg);
    cfg.scenario = s;
    cfg.seed = seed;
    cfg.events = events;
    cfg.market_mask = mask;
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    if (sim_generate(&cfg, fp, NULL, err, sizeof(err)) != 0)
        fail_msg("generate: %s", err);
    assert_int_equal(fclose(fp), 0);
}

/* Generates and replays one day; the caller destroys the report. */
static sim_report *run(sim_scenario s, uint64_t seed, sim_day_result *res,
                       const char *trades_path)
{
    char path[256], err[512];
    sim_report *r;
    sim_day_result local;
    snprintf(path, sizeof(path), "%s/day-%d-%llu.jsonl", dir, (int)s,
             (unsigned long long)seed);
    make_day(path, s, seed, 0);
    FILE *trades = trades_path ? fopen(trades_path, "w") : NULL;
    if (sim_day_run(path, catalog, trades, &r, res ? res : &local, err, sizeof(err)) != 0)
        fail_msg("replay: %s", err);
    if (trades)
        assert_int_equal(fclose(trades), 0);
    return r;
}

static void test_surplus_lowers_h100_after_release(void **state)
{
    (void)state;
    const int h100 = sim_gpu_find("H100"), R = SIM_SURPLUS_RELEASE_HOUR;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        sim_report *sur = run(SIM_SCEN_SURPLUS, seed, NULL, NULL);
        sim_report *base = run(SIM_SCEN_BASELINE, seed, NULL, NULL);
        int64_t gh_before, gh_after;
        int64_t before = sim_report_vwap(sur, h100, 0, R, &gh_before);
        int64_t after = sim_report_vwap(sur, h100, R, 24, &gh_after);
        int64_t base_after = sim_report_vwap(base, h100, R, 24, NULL);
        print_message("# seed %llu: H100 VWAP before release %lld, after %lld, "
                      "baseline after %lld (micros)\n", (unsigned long long)seed,
                      (long long)before, (long long)after, (long long)base_after);
        assert_true(gh_before > 0 && gh_after > 0 && base_after > 0);
        assert_true(after < before);
        assert_true(after < base_after);
        sim_report_destroy(sur);
        sim_report_destroy(base);
    }
}

static void test_crunch_leaves_more_unfilled_at_peak(void **state)
{
    (void)state;
    const int h100 = sim_gpu_find("H100");
    const int32_t p0 = SIM_PEAK_START_HOUR, p1 = SIM_PEAK_END_HOUR;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        sim_report *cr = run(SIM_SCEN_CRUNCH, seed, NULL, NULL);
        sim_report *base = run(SIM_SCEN_BASELINE, seed, NULL, NULL);
        int64_t cd, bd;
        int64_t cu = sim_report_unfilled(cr, p0, p1, &cd);
        int64_t bu = sim_report_unfilled(base, p0, p1, &bd);
        int64_t cp = sim_report_vwap(cr, h100, p0, p1, NULL);
        int64_t bp = sim_report_vwap(base, h100, p0, p1, NULL);
        print_message("# seed %llu: peak unfilled GPU-h crunch %lld of %lld, baseline "
                      "%lld of %lld; H100 peak VWAP %lld vs %lld\n",
                      (unsigned long long)seed, (long long)cu, (long long)cd,
                      (long long)bu, (long long)bd, (long long)cp, (long long)bp);
        assert_true(bd > 0 && cd > bd);
        assert_true(cu > bu);
        assert_true(bp > 0 && cp > bp);
        sim_market_stats cs, bs;
        sim_report_market(cr, -1, &cs);
        sim_report_market(base, -1, &bs);
        assert_true(cs.unfilled_gpu_hours > bs.unfilled_gpu_hours);
        sim_report_destroy(cr);
        sim_report_destroy(base);
    }
}

static void test_replay_deterministic(void **state)
{
    (void)state;
    sim_day_result a, b;
    sim_report *ra = run(SIM_SCEN_BASELINE, 11, &a, NULL);
    sim_report *rb = run(SIM_SCEN_BASELINE, 11, &b, NULL);
    assert_true(a.trades > 0);
    assert_int_equal(a.commands, b.commands);
    assert_int_equal(a.rejected, b.rejected);
    assert_int_equal(a.trades, b.trades);
    assert_int_equal(a.engine_events, b.engine_events);
    assert_int_equal(a.state_hash, b.state_hash);
    /* the engine's books agree with the report: money conserved, and the
     * fee account holds exactly the fees the report summed */
    sim_market_stats all;
    sim_report_market(ra, -1, &all);
    assert_true(a.money_conserved);
    assert_true(all.fees_micros > 0);
    assert_true(all.fees_micros == a.fee_balance_micros);
    for (int m = -1; m < SIM_N_MARKETS; m++) {
        sim_market_stats x, y;
        sim_report_market(ra, m, &x);
        sim_report_market(rb, m, &y);
        assert_memory_equal(&x, &y, sizeof(x));
    }
    sim_report_destroy(ra);
    sim_report_destroy(rb);
}

static void test_trades_file_round_trip(void **state)
{
    (void)state;
    char trades[256], day[256], err[512];
    sim_day_result res;
    snprintf(trades, sizeof(trades), "%s/trades.jsonl", dir);
    sim_report *live = run(SIM_SCEN_SURPLUS, 5, &res, trades);
    snprintf(day, sizeof(day), "%s/day-%d-5.jsonl", dir, (int)SIM_SCEN_SURPLUS);
    /* rebuild from the day file (every order as accepted) + the trades */
    sim_report *back;
    long n;
    if (sim_report_from_files(day, trades, &back, &n, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_int_equal(n, (long)res.trades);
    for (int m = -1; m < SIM_N_MARKETS; m++) {
        sim_market_stats x, y;
        sim_report_market(live, m, &x);
        sim_report_market(back, m, &y);
        assert_int_equal(x.trades, y.trades);
        assert_int_equal(x.traded_gpu_hours, y.traded_gpu_hours);
        assert_true(x.notional_micros == y.notional_micros);
        assert_int_equal(x.vwap_micros, y.vwap_micros);
        assert_true(x.fees_micros == y.fees_micros);
        assert_int_equal(x.low_micros, y.low_micros);
        assert_int_equal(x.high_micros, y.high_micros);
    }
    /* a damaged trades file is refused with its line */
    FILE *fp = fopen(trades, "a");
    fputs("{\"trade_id\":\"x\",\"t\":1}\n", fp);
    fclose(fp);
    sim_report *again;
    assert_int_equal(sim_report_from_files(day, trades, &again, &n, err, sizeof(err)), -1);
    assert_null(again);
    char want[64];
    snprintf(want, sizeof(want), "trades.jsonl: line %ld:", (long)res.trades + 1);
    if (!strstr(err, want))
        fail_msg("error '%s' does not name %s", err, want);
    sim_report_destroy(back);
    sim_report_destroy(live);
}

static void test_market_missing_from_catalog(void **state)
{
    (void)state;
    char path[256], cat[256], err[512];
    sim_report *r;
    sim_day_result res;
    uint64_t mask;
    snprintf(cat, sizeof(cat), "%s/h100-only.catalog", dir);
    FILE *fp = fopen(cat, "w");
    fputs("region us-east\ngpu H100\n", fp);
    fclose(fp);
    assert_int_equal(sim_markets_parse("A100/us-east", &mask, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/a100.jsonl", dir);
    make_day(path, SIM_SCEN_BASELINE, 1, mask);
    assert_int_equal(sim_day_run(path, cat, NULL, &r, &res, err, sizeof(err)), -1);
    assert_null(r);
    assert_non_null(strstr(err, "A100/us-east is not in the catalog"));
    assert_non_null(strstr(err, "line "));
    assert_int_equal(sim_day_run(path, "/nonexistent.catalog", NULL, &r, &res, err,
                                 sizeof(err)), -1);
    assert_non_null(strstr(err, "catalog"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_surplus_lowers_h100_after_release),
        cmocka_unit_test(test_crunch_leaves_more_unfilled_at_peak),
        cmocka_unit_test(test_replay_deterministic),
        cmocka_unit_test(test_trades_file_round_trip),
        cmocka_unit_test(test_market_missing_from_catalog),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
