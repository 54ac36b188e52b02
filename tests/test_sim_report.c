/* test_sim_report.c — report arithmetic on a hand-made day, exactly.
 *
 * Proves: VWAP is notional / GPU-hours rounded half up to a micro-dollar
 * (worked by hand below); traded GPU-hours, fill rate, unfilled demand,
 * provider utilisation, fees, low/high per market and for all markets;
 * hourly VWAP per GPU type; unfilled demand by placement hour; replaces
 * move demand; inconsistent trades are refused and change nothing; sums
 * beyond int64 stay exact (128-bit); the printed table and the SVG carry
 * the numbers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "sim/sim.h"

#include <stdlib.h>
#include <string.h>

#define H0 1000 /* an arbitrary hour for the windows */

static sim_cmd order(uint32_t idx, uint32_t account, int market, uint8_t side,
                     int32_t qty, int64_t start, int64_t end, int64_t t_s)
{
    sim_cmd c;
    memset(&c, 0, sizeof(c));
    c.op = SIM_OP_ORDER;
    c.order_idx = idx;
    c.account_idx = account;
    c.market = market;
    c.side = side;
    c.qty = qty;
    c.start_hour = start;
    c.end_hour = end;
    c.t_s = t_s;
    c.price_micros = 2000000;
    return c;
}

static sim_trade trade(int64_t t_s, int market, uint32_t buyer, uint32_t prov,
                       uint32_t bid, uint32_t offer, int32_t qty, int64_t price,
                       int64_t start, int64_t end, int64_t buyer_fee)
{
    sim_trade t = {.t_s = t_s, .market = (uint32_t)market, .buyer_idx = buyer,
                   .provider_idx = prov, .buy_order_idx = bid, .sell_order_idx = offer,
                   .qty = qty, .price_micros = price, .start_hour = start,
                   .end_hour = end, .buyer_fee_micros = buyer_fee};
    return t;
}

/* accounts: 0 p1, 1 p2 (providers), 2 b1, 3 b2 (buyers) */
static sim_report *hand_made_day(void)
{
    int h100 = sim_market_find("H100", "us-east"), a100 = sim_market_find("A100", "eu-west");
    sim_report *r = sim_report_create(24, 16, 8);
    assert_non_null(r);
    assert_int_equal(sim_report_account(r, 0, "p1", "neocloud"), 0);
    assert_int_equal(sim_report_account(r, 1, "p2", "hyperscaler"), 0);
    assert_int_equal(sim_report_account(r, 2, "b1", "lab"), 0);
    assert_int_equal(sim_report_account(r, 3, "b2", "startup"), 0);
    sim_cmd c[6] = {
        order(0, 0, h100, SIM_SELL, 64, H0, H0 + 10, 0),     /* offers 640 GPUh */
        order(1, 1, h100, SIM_SELL, 16, H0, H0 + 4, 0),      /* 64 */
        order(2, 2, h100, SIM_BUY, 32, H0 + 1, H0 + 3, 5),   /* wants 64 */
        order(3, 3, h100, SIM_BUY, 8, H0, H0 + 1, 6),        /* wants 8 */
        order(4, 2, a100, SIM_BUY, 8, H0, H0 + 3, 7200),     /* wants 24 */
        order(5, 0, a100, SIM_SELL, 8, H0, H0 + 5, 7200),    /* offers 40 */
    };
    for (int i = 0; i < 6; i++)
        assert_int_equal(sim_report_order(r, &c[i]), 0);
    /* 24 x 2h at 2.100000 and 8 x 2h at 2.100003: 48 + 16 GPU-hours,
     * notional 100800000 + 33600048 = 134400048 micros,
     * VWAP 134400048 / 64 = 2100000.75 -> 2100001 (half up) */
    sim_trade t1 = trade(10, h100, 2, 0, 2, 0, 24, 2100000, H0 + 1, H0 + 3, 100800);
    sim_trade t2 = trade(20, h100, 2, 1, 2, 1, 8, 2100003, H0 + 1, H0 + 3, 33600);
    sim_trade t3 = trade(7300, a100, 2, 0, 4, 5, 8, 1500000, H0, H0 + 3, 36000);
    t2.provider_fee_micros = 1;
    assert_int_equal(sim_report_trade(r, &t1), 0);
    assert_int_equal(sim_report_trade(r, &t2), 0);
    assert_int_equal(sim_report_trade(r, &t3), 0);
    return r;
}

static void test_market_figures(void **state)
{
    (void)state;
    sim_market_stats s;
    sim_report *r = hand_made_day();
    assert_int_equal(sim_report_market(r, sim_market_find("H100", "us-east"), &s), 0);
    assert_int_equal(s.trades, 2);
    assert_int_equal(s.traded_gpu_hours, 64);
    assert_true(s.notional_micros == 134400048);
    assert_int_equal(s.vwap_micros, 2100001);
    assert_int_equal(s.demand_gpu_hours, 72);
    assert_int_equal(s.filled_gpu_hours, 64);
    assert_int_equal(s.unfilled_gpu_hours, 8);
    assert_int_equal(s.fill_rate_bps, 8888);      /* 64 / 72 */
    assert_int_equal(s.offered_gpu_hours, 704);
    assert_int_equal(s.utilisation_bps, 909);     /* 64 / 704 */
    assert_true(s.fees_micros == 100800 + 33600 + 1);
    assert_int_equal(s.low_micros, 2100000);
    assert_int_equal(s.high_micros, 2100003);

    /* all markets: 88 GPU-hours, notional 170400048 -> 1936364.18 */
    assert_int_equal(sim_report_market(r, -1, &s), 0);
    assert_int_equal(s.trades, 3);
    assert_int_equal(s.traded_gpu_hours, 88);
    assert_int_equal(s.vwap_micros, 1936364);
    assert_int_equal(s.demand_gpu_hours, 96);
    assert_int_equal(s.fill_rate_bps, 9166);
    assert_int_equal(s.offered_gpu_hours, 744);
    assert_int_equal(s.utilisation_bps, 1182);
    assert_int_equal(s.low_micros, 1500000);
    assert_int_equal(s.high_micros, 2100003);

    /* a market with nothing */
    assert_int_equal(sim_report_market(r, sim_market_find("B200", "apac"), &s), 0);
    assert_int_equal(s.trades, 0);
    assert_int_equal(s.vwap_micros, -1);
    assert_int_equal(s.fill_rate_bps, -1);
    assert_int_equal(s.utilisation_bps, -1);
    assert_int_equal(sim_report_market(r, SIM_N_MARKETS, &s), -1);
    sim_report_destroy(r);
}

static void test_hourly_and_unfilled(void **state)
{
    (void)state;
    int64_t gh, demand;
    sim_report *r = hand_made_day();
    int h100 = sim_gpu_find("H100"), a100 = sim_gpu_find("A100");
    assert_int_equal(sim_report_vwap(r, h100, 0, 1, &gh), 2100001);
    assert_int_equal(gh, 64);
    assert_int_equal(sim_report_vwap(r, h100, 1, 24, &gh), -1);
    assert_int_equal(gh, 0);
    assert_int_equal(sim_report_vwap(r, a100, 2, 3, &gh), 1500000);
    assert_int_equal(sim_report_vwap(r, -1, 0, 24, &gh), 1936364);
    assert_int_equal(sim_report_bucket(r, a100, 2, &gh), 1500000);
    assert_int_equal(gh, 24);
    /* bids placed in hour 0: o2 (64, filled), o3 (8, open); hour 2: o4 */
    assert_int_equal(sim_report_unfilled(r, 0, 1, &demand), 8);
    assert_int_equal(demand, 72);
    assert_int_equal(sim_report_unfilled(r, 2, 3, &demand), 0);
    assert_int_equal(demand, 24);
    /* a replace raising o3 to 16 GPUs doubles its demand */
    assert_int_equal(sim_report_replace(r, 3, 16), 0);
    assert_int_equal(sim_report_unfilled(r, 0, 24, &demand), 16);
    assert_int_equal(demand, 104);
    /* o2 is filled 32: lowering below that is refused */
    assert_int_equal(sim_report_replace(r, 2, 24), -1);
    assert_int_equal(sim_report_replace(r, 15, 8), -1); /* never placed */
    sim_report_destroy(r);
}

static void test_bad_trades_refused(void **state)
{
    (void)state;
    sim_market_stats before, after;
    int h100 = sim_market_find("H100", "us-east"), a100 = sim_market_find("A100", "eu-west");
    sim_report *r = hand_made_day();
    sim_report_market(r, -1, &before);
    sim_trade bad[] = {
        trade(30, a100, 3, 0, 3, 0, 8, 2000000, H0, H0 + 1, 0),       /* wrong market */
        trade(30, h100, 2, 0, 2, 0, 8, 2000000, H0 + 1, H0 + 3, 0),   /* o2 overfilled */
        trade(30, h100, 2, 0, 3, 0, 8, 2000000, H0, H0 + 1, 0),       /* buyer is not o3's */
        trade(30, h100, 3, 0, 3, 0, 8, 2000000, H0, H0 + 2, 0),       /* not the bid's window */
        trade(30, h100, 3, 0, 0, 3, 8, 2000000, H0, H0 + 1, 0),       /* sides swapped */
        trade(30, h100, 3, 0, 3, 9, 8, 2000000, H0, H0 + 1, 0),       /* unknown offer */
        trade(30, h100, 3, 0, 3, 0, 8, 0, H0, H0 + 1, 0),             /* zero price */
        trade(30, h100, 3, 0, 3, 0, 0, 2000000, H0, H0 + 1, 0),       /* zero qty */
        trade(-1, h100, 3, 0, 3, 0, 8, 2000000, H0, H0 + 1, 0),       /* before the day */
        trade(30, h100, 3, 0, 3, 0, 8, 2000000, H0, H0 + 1, 16000001),/* fee > notional */
        trade(30, SIM_N_MARKETS, 3, 0, 3, 0, 8, 2000000, H0, H0 + 1, 0),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (sim_report_trade(r, &bad[i]) != -1)
            fail_msg("bad trade %zu accepted", i);
    sim_report_market(r, -1, &after);
    assert_memory_equal(&before, &after, sizeof(before));
    /* and the good version of the first one goes in */
    sim_trade good = trade(30, h100, 3, 0, 3, 0, 8, 2000000, H0, H0 + 1, 0);
    assert_int_equal(sim_report_trade(r, &good), 0);
    /* bad orders too */
    sim_cmd c = order(2, 2, h100, SIM_BUY, 8, H0, H0 + 1, 0);
    assert_int_equal(sim_report_order(r, &c), -1); /* index used */
    c = order(9, 2, h100, SIM_BUY, 8, H0 + 1, H0 + 1, 0);
    assert_int_equal(sim_report_order(r, &c), -1); /* empty window */
    c = order(16, 2, h100, SIM_BUY, 8, H0, H0 + 1, 0);
    assert_int_equal(sim_report_order(r, &c), -1); /* beyond max_orders */
    sim_report_destroy(r);
}

static void test_sums_beyond_int64(void **state)
{
    (void)state;
    /* 11 fills of 100000 GPUs x 8760 h at $1000: 8.76e17 micros each,
     * 9.636e18 in all, more than INT64_MAX (9.22e18) */
    enum { N = 11 };
    int m = sim_market_find("B200", "apac");
    sim_report *r = sim_report_create(24, 2 * N, 2);
    assert_non_null(r);
    for (uint32_t i = 0; i < N; i++) {
        sim_cmd bid = order(2 * i, 1, m, SIM_BUY, 100000, H0, H0 + 8760, 0);
        sim_cmd offer = order(2 * i + 1, 0, m, SIM_SELL, 100000, H0, H0 + 8760, 0);
        assert_int_equal(sim_report_order(r, &bid), 0);
        assert_int_equal(sim_report_order(r, &offer), 0);
        sim_trade t = trade(0, m, 1, 0, 2 * i, 2 * i + 1, 100000, 1000000000, H0,
                            H0 + 8760, 876000000000000LL);
        assert_int_equal(sim_report_trade(r, &t), 0);
    }
    sim_market_stats s;
    sim_report_market(r, m, &s);
    assert_true(s.notional_micros == (__int128)N * 876000000000000000LL);
    assert_true(s.notional_micros > INT64_MAX);
    assert_int_equal(s.vwap_micros, 1000000000);
    assert_int_equal(s.traded_gpu_hours, (int64_t)N * 876000000);
    assert_int_equal(s.fill_rate_bps, 10000);
    char buf[SIM_MONEY_LEN];
    assert_string_equal(sim_fmt_micros128(s.notional_micros, buf), "9636000000000.00");
    sim_report_destroy(r);
}

static char *capture(sim_report *r, bool svg)
{
    char *data = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&data, &len);
    assert_non_null(fp);
    assert_int_equal(svg ? sim_report_plot_svg(r, "day <1> & \"more\"", fp)
                         : sim_report_print(r, fp), 0);
    assert_int_equal(fclose(fp), 0);
    return data;
}

static void test_printed_table_and_svg(void **state)
{
    (void)state;
    sim_report *r = hand_made_day();
    sim_report_reject(r, SIM_OP_CANCEL, "not_found");
    sim_report_reject(r, SIM_OP_CANCEL, "not_found");
    char *text = capture(r, false);
    char *line = strstr(text, "H100/us-east");
    assert_non_null(line);
    assert_non_null(strstr(line, "2.100001"));
    assert_non_null(strstr(line, "88.88%"));
    assert_non_null(strstr(line, "9.09%"));
    assert_non_null(strstr(text, "A100/eu-west"));
    assert_null(strstr(text, "B200/apac")); /* idle markets are left out */
    assert_non_null(strstr(text, "all markets"));
    assert_non_null(strstr(text, "1.936364"));
    assert_non_null(strstr(text, "p1"));
    line = strstr(text, "cancel");
    assert_non_null(line);
    assert_non_null(strstr(line, "not_found"));
    free(text);
    char *svg = capture(r, true);
    assert_true(strncmp(svg, "<?xml", 5) == 0);
    assert_non_null(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert_non_null(strstr(svg, "day &lt;1&gt; &amp; &quot;more&quot;"));
    assert_non_null(strstr(svg, "<path")); /* at least one price line */
    assert_non_null(strstr(svg, "hour 0: 64 GPU-hours"));
    assert_non_null(strstr(svg, "</svg>\n"));
    free(svg);
    sim_report_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_market_figures),
        cmocka_unit_test(test_hourly_and_unfilled),
        cmocka_unit_test(test_bad_trades_refused),
        cmocka_unit_test(test_sums_beyond_int64),
        cmocka_unit_test(test_printed_table_and_svg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
