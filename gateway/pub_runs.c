/* pub_runs.c — reads a market-data message into its commands' runs.
 *
 * Why: one PUB message carries the events of every command of a matcher
 * batch (include/gpux_wire.h, "market data"). Both readers of market data
 * want them per command: an accepted order is answered from its own
 * command's events (batch.c), and a stream sees each command's events
 * grouped by topic (sse.c). This walks the message once and notes where
 * each command's events lie and whether they are all there (the matcher
 * splits a command only when it alone fills a message). */
#include <string.h>

#include "gateway/server.h"
#include "gpux_assert.h"

static void runs_clear(gw_pub_runs *out)
{
    out->n = 0;
    out->trades = 0;
    out->last_seq = 0;
    out->truncated = false;
}

static int refuse(gw_pub_runs *out)
{
    runs_clear(out);
    return -1;
}

int gw_pub_split_runs(const uint8_t *msg, size_t len, gw_pub_runs *out)
{
    runs_clear(out);
    wire_reader rd;
    char err[128];
    if (wire_decode_pub(msg, len, &rd, err, sizeof err) != 0)
        return refuse(out);
    bool full = rd.left >= WIRE_PUB_MAX_EVENTS;
    gw_pub_run *cur = NULL;
    uint32_t last_index = 0;
    for (uint32_t guard = 0; guard <= WIRE_MAX_ITEMS; guard++) {
        size_t off = rd.off;
        uint16_t type;
        wire_item it;
        int r = wire_reader_next(&rd, &type, &it, err, sizeof err);
        if (r == 0)
            break;
        if (r < 0 || type != WIRE_ITEM_EVENT)
            return refuse(out);
        const wire_event *e = &it.event;
        if (e->seq == 0 || e->seq < out->last_seq ||
            (cur && e->seq == cur->seq && e->index <= last_index))
            return refuse(out); /* not in (seq, index) order: not the matcher's */
        out->trades += e->type == MATCHER_EV_TRADE;
        if (!cur || e->seq != cur->seq) {
            if (out->n == GW_PUB_RUNS_MAX) {
                out->truncated = true; /* the rest is not reported */
                cur = NULL;
                out->last_seq = e->seq;
                continue;
            }
            cur = &out->runs[out->n++];
            *cur = (gw_pub_run){.seq = e->seq, .start = off, .cmd_type = e->cmd_type,
                                .complete = e->index == 0};
        }
        if (cur) {
            if (e->type == MATCHER_EV_ACCEPTED && cur->order_id == 0) {
                cur->order_id = e->order_id;
                cur->account = e->account;
            }
            cur->end = rd.off;
            cur->count++;
        }
        last_index = e->index;
        out->last_seq = e->seq;
    }
    /* The last command may go on in the next message when this one is
     * full. (With runs left unreported, the last reported one was followed
     * by another command's event: it is whole.) */
    if (out->n > 0 && full && !out->truncated)
        out->runs[out->n - 1].complete = false;
    return 0;
}

void gw_pub_run_reader(const uint8_t *msg, const gw_pub_run *run, wire_reader *rd)
{
    GPUX_ASSERT(run->start < run->end && run->count > 0);
    *rd = (wire_reader){.buf = msg, .len = run->end, .off = run->start, .left = run->count};
}
