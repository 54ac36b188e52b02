/* gpux_replay_core.c — the shared parts of the stack replays (see
 * gpux_replay_core.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/gpux_replay_core.h"

#include <nng/protocol/reqrep0/req.h> /* after nng.h, which it needs */

static uint32_t ord_home(uint64_t k, uint32_t mask) { return (uint32_t)((k * 0x9E3779B97F4A7C15ull) >> 32) & mask; }

int sim_replay_maps_init(sim_replay_maps *m, const sim_day_header *h)
{
    memset(m, 0, sizeof *m);
    m->n_accounts = h->accounts + 1;
    m->n_orders = h->orders + 1;
    uint32_t cap = 1;
    while (cap < 2 * m->n_orders)
        cap <<= 1;
    m->ord_mask = cap - 1;
    m->acct_idx_cap = h->accounts + 4096; /* ours plus the stack's own accounts */
    m->account_ids = calloc(m->n_accounts, sizeof(uint32_t));
    m->order_ids = calloc(m->n_orders, sizeof(uint64_t));
    m->ord_keys = calloc(cap, sizeof(uint64_t));
    m->ord_vals = calloc(cap, sizeof(uint32_t));
    m->acct_idx_of = calloc(m->acct_idx_cap, sizeof(uint32_t));
    if (!m->account_ids || !m->order_ids || !m->ord_keys || !m->ord_vals || !m->acct_idx_of) {
        sim_replay_maps_free(m);
        return -1;
    }
    return 0;
}

void sim_replay_maps_free(sim_replay_maps *m)
{
    free(m->account_ids);
    free(m->order_ids);
    free(m->ord_keys);
    free(m->ord_vals);
    free(m->acct_idx_of);
    memset(m, 0, sizeof *m);
}

void sim_replay_maps_account(sim_replay_maps *m, uint32_t account_idx, uint32_t account_id)
{
    if (account_idx < m->n_accounts)
        m->account_ids[account_idx] = account_id;
    if (account_id < m->acct_idx_cap)
        m->acct_idx_of[account_id] = account_idx + 1;
}

void sim_replay_maps_order(sim_replay_maps *m, uint32_t order_idx, uint64_t order_id)
{
    if (order_idx >= m->n_orders || order_id == 0)
        return;
    m->order_ids[order_idx] = order_id;
    uint32_t i = ord_home(order_id, m->ord_mask);
    while (m->ord_keys[i] != 0 && m->ord_keys[i] != order_id)
        i = (i + 1) & m->ord_mask;
    m->ord_keys[i] = order_id;
    m->ord_vals[i] = order_idx;
}

static int64_t ord_get(const sim_replay_maps *m, uint64_t id)
{
    for (uint32_t i = ord_home(id, m->ord_mask), n = 0; n <= m->ord_mask; i = (i + 1) & m->ord_mask, n++) {
        if (m->ord_keys[i] == id)
            return m->ord_vals[i];
        if (m->ord_keys[i] == 0)
            return -1;
    }
    return -1;
}

int sim_replay_record_trade(sim_replay_maps *m, sim_report *r, int64_t t_s, const wire_event *ev, sim_replay_stats *stats)
{
    int64_t bo = ord_get(m, ev->buy_order_id), so = ord_get(m, ev->sell_order_id);
    uint32_t bi = ev->account < m->acct_idx_cap ? m->acct_idx_of[ev->account] : 0;
    uint32_t pi = ev->provider < m->acct_idx_cap ? m->acct_idx_of[ev->provider] : 0;
    if (bo < 0 || so < 0 || bi == 0 || pi == 0) {
        stats->foreign_trades++;
        return 1;
    }
    sim_trade t = {
        .t_s = t_s,
        .market = ev->market,
        .buyer_idx = bi - 1,
        .provider_idx = pi - 1,
        .buy_order_idx = (uint32_t)bo,
        .sell_order_idx = (uint32_t)so,
        .qty = ev->qty,
        .price_micros = ev->price_micros,
        .start_hour = ev->start_hour,
        .end_hour = ev->end_hour,
        .buyer_fee_micros = ev->buyer_fee_micros,
        .provider_fee_micros = ev->provider_fee_micros,
    };
    if (sim_report_trade(r, &t) != 0)
        return -1;
    stats->trades++;
    stats->fees_micros += ev->buyer_fee_micros + ev->provider_fee_micros;
    stats->notional_micros += ev->notional_micros;
    return 0;
}

int sim_replay_call(nng_ctx ctx, nng_aio *aio, const void *buf, size_t len, nng_msg **reply)
{
    nng_msg *msg;
    int rv = nng_msg_alloc(&msg, 0);
    if (rv == 0 && (rv = nng_msg_append(msg, buf, len)) != 0)
        nng_msg_free(msg);
    if (rv != 0)
        return rv;
    nng_aio_set_msg(aio, msg);
    nng_ctx_send(ctx, aio);
    nng_aio_wait(aio);
    if ((rv = nng_aio_result(aio)) != 0) {
        nng_msg_free(nng_aio_get_msg(aio));
        return rv;
    }
    nng_ctx_recv(ctx, aio);
    nng_aio_wait(aio);
    if ((rv = nng_aio_result(aio)) != 0)
        return rv;
    *reply = nng_aio_get_msg(aio);
    return 0;
}

int sim_replay_status(nng_ctx ctx, nng_aio *aio, wire_status_item *out, char *err, size_t errlen)
{
    wire_query q = {.type = WIRE_Q_STATUS};
    uint8_t buf[sizeof(wire_hdr) + sizeof(wire_query)];
    size_t len = wire_encode_query(buf, sizeof buf, &q);
    nng_msg *msg = NULL;
    int rv = sim_replay_call(ctx, aio, buf, len, &msg);
    if (rv != 0) {
        snprintf(err, errlen, "no STATUS answer: %s", nng_strerror(rv));
        return -1;
    }
    wire_reply r;
    wire_reader rd;
    uint16_t type;
    wire_item it;
    int rc = -1;
    if (wire_decode_reply(nng_msg_body(msg), nng_msg_len(msg), &r, &rd, err, errlen) != 0)
        rc = -1;
    else if (r.status != WIRE_ST_OK)
        snprintf(err, errlen, "STATUS answered %s: %s", wire_status_name(r.status), r.detail);
    else if (wire_reader_next(&rd, &type, &it, err, errlen) != 1 || type != WIRE_ITEM_STATUS)
        snprintf(err, errlen, "STATUS answer without its status item");
    else
        *out = it.status, rc = 0;
    nng_msg_free(msg);
    return rc;
}

int sim_replay_dial(nng_socket *sock, const char *url)
{
    int rv = nng_req0_open(sock);
    if (rv == 0)
        rv = nng_socket_set_ms(*sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    if (rv == 0) /* a page of the feed can be ~12 MB */
        rv = nng_socket_set_size(*sock, NNG_OPT_RECVMAXSZ, WIRE_MAX_MSG_BYTES);
    if (rv == 0)
        rv = nng_dial(*sock, url, NULL, 0);
    return rv;
}
