/* gpux_replay.h — replaying a day file through a running stack: straight
 * into gpux-matcher over nng (sim_replay_nng), or through the gateway's
 * HTTP API (sim_replay_http). The replay builds the same report as the
 * in-process replay (sim/sim.h), from the matcher's answers and its feed. */
#ifndef GPUX_REPLAY_H
#define GPUX_REPLAY_H

#include <stdint.h>

#include "sim/sim.h"

#define SIM_REPLAY_MAX_LANES 256

typedef struct sim_replay_config {
    const char *matcher_url;   /* the matcher's command endpoint (GPUX_MATCHER_CMD) */
    int lanes;                 /* batch messages in flight (1..SIM_REPLAY_MAX_LANES;
                                  0 = 1: the day's exact order, see docs/sim.md) */
    int batch;                 /* commands per message (1..WIRE_MAX_BATCH_CMDS;
                                  0 = WIRE_MAX_BATCH_CMDS) */
    bool progress;             /* a progress bar on stderr */
    bool preload;              /* nng replay: read and check the whole day into memory
                                  (at most SIM_REPLAY_PRELOAD_MAX_EVENTS lines) before
                                  the first command goes out, so the replay's time is
                                  the stack's, not the day file's JSON (docs/sim.md) */
} sim_replay_config;

#define SIM_REPLAY_PRELOAD_MAX_EVENTS 10000000ull /* ~1.8 GB of decoded commands */

typedef struct sim_replay_stats {
    uint64_t commands;         /* answered by the matcher */
    uint64_t rejected;         /* of which rejected (reason in the report) */
    uint64_t skipped;          /* cancels/replaces of orders never accepted */
    uint64_t events;           /* events read from the matcher's feed */
    uint64_t trades;
    uint64_t foreign_trades;   /* trades with orders not from this day */
    uint64_t messages;         /* command messages sent (nng replay) */
    int64_t fees_micros;
    int64_t notional_micros;
    long seconds_ms;           /* wall time of the replay (after the preload, if any) */
    long load_ms;              /* wall time of the preload (0 without one) */
    long matcher_wait_ms;      /* of which the reader of the day waited for answers
                                  (nng replay: the matcher was the limit) */
    long ledger_wait_ms;       /* of which it waited for the ledger (nng replay) */
    long answer_wait_ms;       /* lanes waited for the matcher's answers (sum) */
    uint64_t cuts_dep;         /* batches ended by a command needing the batch's answer
                                  (a deposit or order of an account created in it) */
    uint64_t by_ref;           /* cancels/replaces sent in their order's batch, naming
                                  it by client_order_id (nng replay) */
    uint64_t cuts_clock;       /* batches ended by a CLOCK line */
    uint64_t cuts_full;        /* batches ended full */
} sim_replay_stats;

/* Replays the day file at day_path into the matcher at cfg->matcher_url,
 * which must run with --clock sim (the day drives the clock). Commands go
 * in batch messages (include/gpux_wire.h), at most cfg->lanes in flight;
 * the day's trades are read from the matcher's feed as an observer while
 * the day runs. When a feed consumer (the ledger) is settling, the replay
 * keeps it within half of the matcher's feed ring, so the ledger never
 * falls off the feed. Blocks until every command is acknowledged and
 * every trade read. On 0, *out_report is the day's report (caller
 * destroys) and *stats the counts. -1 with a reason: unreadable or
 * malformed day file, matcher unreachable or not answering within 60 s,
 * an answer other than ok/rejected/conflict, a feed gap, or a ledger that
 * stops moving for 60 s while the replay waits for it. Threads: starts
 * cfg->lanes + 1 threads and joins them before returning. */
int sim_replay_nng(const char *day_path, const sim_replay_config *cfg, sim_report **out_report,
                   sim_replay_stats *stats, char *err, size_t errlen);

typedef struct sim_replay_http_config {
    const char *gateway_url;   /* http://host:port of gpux-gateway */
    const char *admin_key;     /* creates and funds the day's accounts */
    const char *matcher_url;   /* the matcher's command endpoint: clock and trades */
    int lanes;                 /* keep-alive connections (1..256; 0 = 32) */
    bool progress;
} sim_replay_http_config;

/* Replays the day file through the gateway's HTTP API: accounts and
 * deposits with the admin key, every order/cancel/replace with the
 * account's own key; CLOCK lines go to the matcher (which must run with
 * --clock sim, the API has no clock). Then reads the day's trades from the
 * matcher's feed as an observer (the ledger's position is not moved).
 * Same results and errors as sim_replay_nng; runs its own event loop on
 * the calling thread. */
int sim_replay_http(const char *day_path, const sim_replay_http_config *cfg, sim_report **out_report,
                    sim_replay_stats *stats, char *err, size_t errlen);

#endif
