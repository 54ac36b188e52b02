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
 * property that only holds by luck of one seed would show.
 *
 * The stack replay over nng (sim_replay_nng) against a real gpux-matcher
 * process (--clock sim, fresh data dir each run): with one batch message
 * in flight it applies the day in its exact file order, so its report
 * equals the in-process replay's market for market and hour for hour (so
 * trade times come back exactly), with tiny batches (many cuts where a
 * cancel needs the id of an order in its own batch) and with one command
 * per message (the reply-with-events path); with several lanes racing, it
 * still records exactly the trades the matcher made (none foreign, none
 * missed) and answers every command. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sim/gpux_replay.h"
#include "sim/sim.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
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

/* ---- the stack replay over nng, against a real gpux-matcher ---- */

/* Lines after the header of a day file. */
static uint64_t events_of(const char *path)
{
    char err[256];
    sim_dayfile *d = sim_dayfile_open(path, err, sizeof(err));
    assert_non_null(d);
    uint64_t n = sim_dayfile_header(d)->events;
    sim_dayfile_close(d);
    return n;
}

typedef struct matcher_proc {
    pid_t pid;
    char url[300];
} matcher_proc;

/* Starts $GPUX_BIN/gpux-matcher --clock sim on a fresh data dir and waits
 * (bounded) until its command endpoint exists. */
static void matcher_start(matcher_proc *m, const char *name)
{
    const char *bin = getenv("GPUX_BIN");
    char exe[512], data[256], cmd[300], pub[300], feed[300], sock[200];
    snprintf(exe, sizeof(exe), "%s/gpux-matcher", bin ? bin : "build/rel/bin");
    snprintf(data, sizeof(data), "%s/%s", dir, name);
    snprintf(sock, sizeof(sock), "%s/%s.cmd", dir, name);
    snprintf(cmd, sizeof(cmd), "ipc://%s", sock);
    snprintf(pub, sizeof(pub), "ipc://%s/%s.pub", dir, name);
    snprintf(feed, sizeof(feed), "ipc://%s/%s.feed", dir, name);
    snprintf(m->url, sizeof(m->url), "%s", cmd);
    m->pid = fork();
    assert_true(m->pid >= 0);
    if (m->pid == 0) {
        if (!freopen("/dev/null", "w", stderr))
            _exit(126);
        execl(exe, exe, "--data", data, "--cmd", cmd, "--pub", pub, "--feed", feed, "--catalog", catalog,
              "--clock", "sim", (char *)NULL);
        _exit(127);
    }
    struct stat st;
    for (int i = 0; i < 600 && stat(sock, &st) != 0; i++) {
        assert_int_equal(waitpid(m->pid, NULL, WNOHANG), 0); /* still running */
        nanosleep(&(struct timespec){0, 50000000L}, NULL);
    }
    assert_int_equal(stat(sock, &st), 0);
}

static void matcher_stop(matcher_proc *m)
{
    int status;
    kill(m->pid, SIGTERM);
    assert_int_equal(waitpid(m->pid, &status, 0), m->pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Replays path into a fresh matcher with lanes x batch. */
static sim_report *replay_nng(const char *path, const char *name, int lanes, int batch, sim_replay_stats *st)
{
    matcher_proc m;
    char err[512];
    sim_report *r = NULL;
    matcher_start(&m, name);
    sim_replay_config cfg = {.matcher_url = m.url, .lanes = lanes, .batch = batch};
    int rc = sim_replay_nng(path, &cfg, &r, st, err, sizeof(err));
    matcher_stop(&m);
    if (rc != 0)
        fail_msg("replay over nng (%d lanes, batch %d): %s", lanes, batch, err);
    return r;
}

static void assert_same_report(const sim_report *a, const sim_report *b)
{
    for (int m = -1; m < SIM_N_MARKETS; m++) {
        sim_market_stats x, y;
        sim_report_market(a, m, &x);
        sim_report_market(b, m, &y);
        assert_memory_equal(&x, &y, sizeof(x));
    }
    for (int g = 0; g < SIM_N_GPUS; g++)
        for (int32_t h = 0; h < sim_report_hours(a); h++) {
            int64_t va, vb, ga, gb;
            va = sim_report_bucket(a, g, h, &ga);
            vb = sim_report_bucket(b, g, h, &gb);
            assert_true(va == vb && ga == gb);
        }
}

static void test_nng_replay_in_file_order(void **state)
{
    (void)state;
    char path[256], err[512];
    uint64_t mask;
    snprintf(path, sizeof(path), "%s/nng-day.jsonl", dir);
    assert_int_equal(sim_markets_parse("H100,B200/us-east", &mask, err, sizeof(err)), 0);
    uint64_t keep = events;
    events /= 4; /* three replays, one of them a message per command */
    make_day(path, SIM_SCEN_CRUNCH, 21, mask);
    events = keep;
    sim_report *in;
    sim_day_result res;
    if (sim_day_run(path, catalog, NULL, &in, &res, err, sizeof(err)) != 0)
        fail_msg("replay: %s", err);
    assert_true(res.trades > 0);
    static const int batches[] = {1024, 7, 1};
    for (size_t i = 0; i < sizeof(batches) / sizeof(batches[0]); i++) {
        char name[32];
        snprintf(name, sizeof(name), "m-order-%d", batches[i]);
        sim_replay_stats st;
        sim_report *r = replay_nng(path, name, 1, batches[i], &st);
        assert_int_equal(st.trades, res.trades);
        assert_int_equal(st.foreign_trades, 0);
        assert_int_equal(st.commands + st.skipped, res.commands);
        assert_int_equal(st.rejected + st.skipped, res.rejected);
        /* one command per message is the plain reply path */
        assert_true(batches[i] != 1 || st.messages == st.commands);
        assert_true(batches[i] != 7 || st.messages > st.commands / 7);
        /* the replay says why each batch ended: every message but the last
         * follows a counted cut (a batch whose commands were all skipped
         * sends none); a cancel or replace of an order in the same batch
         * does not cut it but names the order by ref (a batch of one
         * command never can) */
        assert_true(st.cuts_dep + st.cuts_clock + st.cuts_full + 1 >= st.messages);
        assert_true(batches[i] == 1 || st.by_ref > 0);
        assert_true(batches[i] != 1 || st.by_ref == 0);
        assert_true(batches[i] != 7 || st.cuts_full > 0);
        assert_true(batches[i] != 1 || st.cuts_dep + st.cuts_clock + st.cuts_full + 1 == st.commands + st.skipped);
        assert_same_report(in, r);
        sim_report_destroy(r);
    }
    sim_report_destroy(in);
}

static void test_nng_replay_lanes_race(void **state)
{
    (void)state;
    char path[256], err[512];
    uint64_t mask;
    snprintf(path, sizeof(path), "%s/nng-race.jsonl", dir);
    assert_int_equal(sim_markets_parse("H100,A100", &mask, err, sizeof(err)), 0);
    make_day(path, SIM_SCEN_BASELINE, 22, mask);
    sim_replay_stats st;
    sim_report *r = replay_nng(path, "m-race", 8, 16, &st);
    sim_market_stats all;
    sim_report_market(r, -1, &all);
    /* every command answered, every trade of the matcher recorded, none
     * foreign (the reader never records a trade before its orders' ids) */
    assert_true(st.trades > 0);
    assert_int_equal(all.trades, st.trades);
    assert_int_equal(st.foreign_trades, 0);
    assert_int_equal(st.commands + st.skipped, events_of(path));
    assert_true(st.messages >= st.commands / 16);
    assert_true(all.fees_micros == st.fees_micros);
    sim_report_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_surplus_lowers_h100_after_release),
        cmocka_unit_test(test_crunch_leaves_more_unfilled_at_peak),
        cmocka_unit_test(test_replay_deterministic),
        cmocka_unit_test(test_trades_file_round_trip),
        cmocka_unit_test(test_market_missing_from_catalog),
        cmocka_unit_test(test_nng_replay_in_file_order),
        cmocka_unit_test(test_nng_replay_lanes_race),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
