/* gpux_replay.h — replaying a day file through a running stack: straight
 * into gpux-matcher over nng (sim_replay_nng). The replay builds the same
 * report as the in-process replay (sim/sim.h), from the matcher's replies. */
#ifndef GPUX_REPLAY_H
#define GPUX_REPLAY_H

#include <stdint.h>

#include "sim/sim.h"

typedef struct sim_replay_config {
    const char *matcher_url;   /* the matcher's command endpoint (GPUX_MATCHER_CMD) */
    int lanes;                 /* commands in flight (1..256; 0 = 32) */
    bool progress;             /* a progress bar on stderr */
} sim_replay_config;

typedef struct sim_replay_stats {
    uint64_t commands;         /* answered by the matcher */
    uint64_t rejected;         /* of which rejected (reason in the report) */
    uint64_t skipped;          /* cancels/replaces of orders never accepted */
    uint64_t events;           /* events in the replies */
    uint64_t trades;
    uint64_t foreign_trades;   /* trades with orders not from this day */
    int64_t fees_micros;
    int64_t notional_micros;
    long seconds_ms;           /* wall time of the replay */
} sim_replay_stats;

/* Replays the day file at day_path into the matcher at cfg->matcher_url,
 * which must run with --clock sim (the day drives the clock). Blocks until
 * every command is acknowledged. On 0, *out_report is the day's report
 * (caller destroys) and *stats the counts. -1 with a reason: unreadable or
 * malformed day file, matcher unreachable or not answering within 30 s,
 * or an answer other than ok/rejected. Threads: starts cfg->lanes threads
 * and joins them before returning. */
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
