/* gpux_replay_core.h — pieces both stack replays share (private to sim/):
 * the maps between a day file's dense indexes and the matcher's ids, the
 * translation of matcher trades into report trades, and blocking
 * request/replies over an nng REQ context. */
#ifndef GPUX_REPLAY_CORE_H
#define GPUX_REPLAY_CORE_H

#include <nng/nng.h>

#include "gpux_wire.h"
#include "sim/gpux_replay.h"

typedef struct sim_replay_maps {
    uint32_t *account_ids;  /* account_idx -> matcher account id */
    uint64_t *order_ids;    /* order_idx -> matcher order id, 0 = never accepted */
    uint64_t *ord_keys;     /* matcher order id -> order_idx (open addressing) */
    uint32_t *ord_vals;
    uint32_t ord_mask;
    uint32_t *acct_idx_of;  /* matcher account id -> account_idx + 1 (0 = not ours) */
    uint32_t acct_idx_cap;
    uint32_t n_accounts, n_orders;
} sim_replay_maps;

/* Sized from the day's header. 0, or -1 when memory cannot be had. */
int sim_replay_maps_init(sim_replay_maps *m, const sim_day_header *h);
void sim_replay_maps_free(sim_replay_maps *m);
void sim_replay_maps_account(sim_replay_maps *m, uint32_t account_idx, uint32_t account_id);
void sim_replay_maps_order(sim_replay_maps *m, uint32_t order_idx, uint64_t order_id);

/* Records a matcher TRADE event into the report with trade time t_s.
 * Returns 0 (recorded), 1 (a trade with orders not from this day: skipped
 * and counted in stats->foreign_trades) or -1 (the report refuses it: a
 * trade that should be impossible). */
int sim_replay_record_trade(sim_replay_maps *m, sim_report *r, int64_t t_s, const wire_event *ev, sim_replay_stats *stats);

/* One request/reply on ctx through aio. 0 and the reply in *reply (caller
 * frees), or an nng error code. */
int sim_replay_call(nng_ctx ctx, nng_aio *aio, const void *buf, size_t len, nng_msg **reply);

/* Asks the matcher (command or feed endpoint) for its STATUS through
 * ctx/aio: 0 and *out, or -1 with a reason in err. */
int sim_replay_status(nng_ctx ctx, nng_aio *aio, wire_status_item *out, char *err, size_t errlen);

/* Opens a REQ socket to url with resends off (a command must never be
 * applied twice because a reply was slow). 0 or an nng error. */
int sim_replay_dial(nng_socket *sock, const char *url);

#endif
