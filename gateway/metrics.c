/* metrics.c — request counters, latency histogram and market gauges,
 * rendered in the Prometheus text exposition format (0.0.4).
 *
 * Fixed arrays (route x status, fixed buckets): counting a request is a
 * couple of increments and never allocates. Latency is recorded in µs and
 * rendered in seconds with integer arithmetic. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gateway/gateway.h"
#include "gpux_assert.h"

static const int statuses[GW_METRICS_STATUSES] = {200, 201, 400, 401, 403, 404, 405,
                                                   409, 413, 422, 429, 500, 503, 0};
/* Upper bounds in µs; the last bucket is +Inf. */
static const uint64_t bucket_le_us[GW_METRICS_BUCKETS - 1] = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000};

static const char *const route_names[GW_ROUTE_COUNT] = {
    [GW_ROUTE_HEALTHZ] = "healthz",
    [GW_ROUTE_METRICS] = "metrics",
    [GW_ROUTE_MARKETS] = "markets",
    [GW_ROUTE_BOOK] = "book",
    [GW_ROUTE_TRADES] = "trades",
    [GW_ROUTE_QUOTE] = "quote",
    [GW_ROUTE_STREAM] = "stream",
    [GW_ROUTE_ORDER_CREATE] = "order_create",
    [GW_ROUTE_ORDER_GET] = "order_get",
    [GW_ROUTE_ORDER_LIST] = "order_list",
    [GW_ROUTE_ORDER_CANCEL] = "order_cancel",
    [GW_ROUTE_ORDER_REPLACE] = "order_replace",
    [GW_ROUTE_ACCOUNT] = "account",
    [GW_ROUTE_LEASES] = "leases",
    [GW_ROUTE_ADMIN_ACCOUNTS_CREATE] = "admin_account_create",
    [GW_ROUTE_ADMIN_ACCOUNTS_LIST] = "admin_account_list",
    [GW_ROUTE_ADMIN_DEPOSIT] = "admin_deposit",
    [GW_ROUTE_ADMIN_WITHDRAW] = "admin_withdraw",
    [GW_ROUTE_OTHER] = "other",
};

void gw_metrics_init(gw_metrics *m)
{
    memset(m, 0, sizeof *m);
    m->ledger_lag = -1;
}

const char *gw_route_name(gw_route r)
{
    GPUX_ASSERT((unsigned)r < GW_ROUTE_COUNT);
    return route_names[r];
}

static unsigned status_index(int status)
{
    for (unsigned i = 0; i + 1 < GW_METRICS_STATUSES; i++)
        if (statuses[i] == status)
            return i;
    return GW_METRICS_STATUSES - 1;
}

void gw_metrics_request(gw_metrics *m, gw_route r, int status, uint64_t latency_us)
{
    GPUX_ASSERT((unsigned)r < GW_ROUTE_COUNT);
    m->requests[r][status_index(status)]++;
    unsigned b = 0;
    while (b < GW_METRICS_BUCKETS - 1 && latency_us > bucket_le_us[b])
        b++;
    m->latency_bucket[b]++;
    m->latency_count++;
    m->latency_sum_us += latency_us;
}

/* A bounded appender: once full, everything after is dropped and the
 * render fails as a whole. */
typedef struct out_buf {
    char *buf;
    size_t cap, len;
    bool full;
} out_buf;

static void put(out_buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(out_buf *o, const char *fmt, ...)
{
    if (o->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len) {
        o->full = true;
        return;
    }
    o->len += (size_t)n;
}

static void render_requests(const gw_metrics *m, out_buf *o)
{
    put(o, "# HELP gpux_gateway_requests_total HTTP requests answered, by route and status.\n"
           "# TYPE gpux_gateway_requests_total counter\n");
    for (unsigned r = 0; r < GW_ROUTE_COUNT; r++)
        for (unsigned s = 0; s < GW_METRICS_STATUSES; s++)
            if (m->requests[r][s]) {
                char code[8];
                if (statuses[s])
                    snprintf(code, sizeof code, "%d", statuses[s]);
                else
                    snprintf(code, sizeof code, "other");
                put(o, "gpux_gateway_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
                    route_names[r], code, (unsigned long long)m->requests[r][s]);
            }
}

static void render_latency(const gw_metrics *m, out_buf *o)
{
    put(o, "# HELP gpux_gateway_request_duration_seconds Time from request to reply.\n"
           "# TYPE gpux_gateway_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (unsigned b = 0; b < GW_METRICS_BUCKETS; b++) {
        cum += m->latency_bucket[b];
        if (b < GW_METRICS_BUCKETS - 1)
            put(o, "gpux_gateway_request_duration_seconds_bucket{le=\"%llu.%06llu\"} %llu\n",
                (unsigned long long)(bucket_le_us[b] / 1000000),
                (unsigned long long)(bucket_le_us[b] % 1000000), (unsigned long long)cum);
        else
            put(o, "gpux_gateway_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                (unsigned long long)cum);
    }
    put(o, "gpux_gateway_request_duration_seconds_sum %llu.%06llu\n",
        (unsigned long long)(m->latency_sum_us / 1000000),
        (unsigned long long)(m->latency_sum_us % 1000000));
    put(o, "gpux_gateway_request_duration_seconds_count %llu\n",
        (unsigned long long)m->latency_count);
}

int gw_metrics_render(const gw_metrics *m, char *buf, size_t cap)
{
    out_buf o = {buf, cap, 0, cap == 0};
    render_requests(m, &o);
    render_latency(m, &o);
    put(&o, "# HELP gpux_gateway_orders_total Orders submitted through the gateway, by result.\n"
            "# TYPE gpux_gateway_orders_total counter\n"
            "gpux_gateway_orders_total{result=\"accepted\"} %llu\n"
            "gpux_gateway_orders_total{result=\"rejected\"} %llu\n",
        (unsigned long long)m->orders_accepted, (unsigned long long)m->orders_rejected);
    put(&o, "# HELP gpux_gateway_trades_total Trades seen on the market data feed.\n"
            "# TYPE gpux_gateway_trades_total counter\n"
            "gpux_gateway_trades_total %llu\n", (unsigned long long)m->trades);
    put(&o, "# HELP gpux_gateway_command_batches_total Batched command messages sent to the matcher.\n"
            "# TYPE gpux_gateway_command_batches_total counter\n"
            "gpux_gateway_command_batches_total %llu\n"
            "# HELP gpux_gateway_batched_commands_total Commands sent inside batched messages.\n"
            "# TYPE gpux_gateway_batched_commands_total counter\n"
            "gpux_gateway_batched_commands_total %llu\n",
        (unsigned long long)m->cmd_batches, (unsigned long long)m->batched_cmds);
    put(&o, "# HELP gpux_gateway_batched_order_events_total Accepted batched orders, by where their events came from.\n"
            "# TYPE gpux_gateway_batched_order_events_total counter\n"
            "gpux_gateway_batched_order_events_total{source=\"market_data\"} %llu\n"
            "gpux_gateway_batched_order_events_total{source=\"feed\"} %llu\n"
            "gpux_gateway_batched_order_events_total{source=\"order_query\"} %llu\n",
        (unsigned long long)m->order_events_pub, (unsigned long long)m->order_events_feed,
        (unsigned long long)m->order_events_none);
    put(&o, "# HELP gpux_ledger_lag Matcher commands not yet settled by the ledger (-1 unknown).\n"
            "# TYPE gpux_ledger_lag gauge\n"
            "gpux_ledger_lag %lld\n", (long long)m->ledger_lag);
    put(&o, "# HELP gpux_matcher_up 1 when the matcher answers.\n"
            "# TYPE gpux_matcher_up gauge\n"
            "gpux_matcher_up %d\n"
            "# HELP gpux_ledger_up 1 when the ledger is up.\n"
            "# TYPE gpux_ledger_up gauge\n"
            "gpux_ledger_up %d\n", m->matcher_up ? 1 : 0, m->ledger_up ? 1 : 0);
    return o.full ? -1 : (int)o.len;
}
