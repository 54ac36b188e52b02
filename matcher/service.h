/* service.h — the matcher service: engine + service-level state + the
 * process around them (journal, snapshots, nng endpoints).
 *
 * Two layers:
 *   1. service_* (service.c, service_query.c): a pure state machine around
 *      the engine, no I/O, no threads. It validates the service-level rules
 *      (names, keys, client_order_id), stamps command time, applies to the
 *      engine, keeps the service state (account names, API key hashes,
 *      client_order_id -> order, order history with fills, recent fills for
 *      trades and leases, the event feed ring) and answers queries. The same
 *      code runs live and on journal replay, so both give the same state.
 *   2. service_run (service_loop.c): the process: nng endpoints, the engine
 *      thread, the journal thread (group commit), snapshots, recovery.
 *
 * Every table is sized from service_config at creation; nothing allocates
 * per command. Threading: a service is owned by one thread (the engine
 * thread); nothing here locks. */
#ifndef GPUX_SERVICE_H
#define GPUX_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gpux_wire.h"
#include "matcher/matcher.h"

typedef struct service_config {
    matcher_config engine;
    uint32_t history_orders; /* closed orders remembered (beyond open ones) */
    uint32_t fills;          /* recent fills kept (trades / leases), >= 16 */
    uint32_t max_keys;       /* API key hashes */
    uint32_t feed_events;    /* events kept in memory for the feed; power of 2 */
    bool clock_sim;          /* --clock sim: clients advance the clock */
} service_config;

/* Defaults: engine defaults, 65536 closed orders, 262144 fills, 65536 keys,
 * 262144 feed events, wall clock. */
void service_config_default(service_config *cfg);

typedef struct service service;

/* Creates a service with a fresh engine (fee account 0 named "exchange").
 * Returns NULL with a reason when the limits are out of range or memory
 * cannot be had. Free with service_destroy. */
service *service_create(const matcher_catalog *cat, const service_config *cfg,
                        char *err, size_t errlen);
void service_destroy(service *s);

/* The engine, for read-only use (queries, hash, save). */
const matcher_engine *service_engine(const service *s);

/* Last journaled seq (0 = none yet). */
uint64_t service_seq(const service *s);

/* The outcome of one live command. Its events (accepted commands) are the
 * feed positions [ev_pos, ev_pos + ev_count) (service_event_at). */
typedef struct service_result {
    uint16_t status;  /* wire_status */
    uint16_t reason;  /* matcher_reason for REJECTED / CONFLICT */
    uint64_t seq;     /* journal seq when accepted, else 0 */
    uint64_t order_id;
    uint32_t account;
    uint64_t ev_pos;
    uint64_t ev_count;
    wire_event rejected; /* the REJECTED event when status == REJECTED */
    char detail[WIRE_DETAIL_LEN];
} service_result;

/* A hint before service_submit of the command before ahead[0]: ahead[0 ..
 * n_ahead) follow it in the same message. Lets the engine start loading
 * what they will read (matcher_prefetch). Changes nothing; commands named
 * by client_order_id are not looked up here. Engine thread only. */
void service_prefetch(const service *s, const wire_cmd *ahead, uint32_t n_ahead);

/* Handles one live command c. Stamps its time from now_us (wall mode) or
 * the simulated clock, checks the service rules, applies it. When accepted
 * (res->seq != 0) *stamped is the command to journal under res->seq; the
 * caller must journal it before replying. internal: the service's own
 * wall-clock ADVANCE_CLOCK (allowed in wall mode). A command that is not
 * accepted changes nothing. */
void service_submit(service *s, const wire_cmd *c, int64_t now_us,
                    bool internal, service_result *res, wire_cmd *stamped);

/* In wall-clock mode, the ADVANCE_CLOCK command due at now_us (when the
 * wall hour is past the engine's clock): returns true and fills *out. */
bool service_clock_due(const service *s, int64_t now_us, wire_cmd *out);

/* Applies a journaled command (already stamped) under seq, which must be
 * service_seq() + 1. Returns 0, or -1 with a reason when it does not apply
 * as it did live (the journal and this build disagree). */
int service_replay(service *s, uint64_t seq, const wire_cmd *c, char *err,
                   size_t errlen);

/* Writes the reply to query q into buf (cap bytes, >= SERVICE_REPLY_MAX
 * to be sure to fit). Returns the message length. */
#define SERVICE_REPLY_MAX \
    (WIRE_REPLY_BASE_BYTES + (size_t)WIRE_MAX_FEED_EVENTS * WIRE_ITEM_BYTES(wire_event))
size_t service_query(service *s, const wire_query *q, uint8_t *buf, size_t cap);

/* Writes the reply to a command (its result and events) into buf. */
size_t service_reply_cmd(const service *s, const service_result *res,
                         uint8_t *buf, size_t cap);

/* Writes a reply with only a status and detail (e.g. BAD_MESSAGE). */
size_t service_reply_error(uint8_t *buf, size_t cap, uint16_t status,
                           const char *detail);

/* The event at feed position pos (must be held: pos in [first, next)). */
const wire_event *service_event_at(const service *s, uint64_t pos);
uint64_t service_events_next(const service *s);  /* next feed position */
uint64_t service_events_first(const service *s); /* oldest held position */

/* Highest seq a feed consumer has fully consumed (from FEED queries). */
uint64_t service_ledger_seq(const service *s);
void service_set_ledger_seq(service *s, uint64_t seq);

/* The latest snapshot on disk, reported by the STATUS query. */
void service_set_snapshot_seq(service *s, uint64_t seq);

/* After loading a snapshot at seq: the feed holds nothing at or before it. */
void service_feed_reset(service *s, uint64_t seq);

/* Service state as bytes (without the engine and the feed ring), for
 * snapshots. *buf is malloc'd (caller frees). Returns 0 or -1 (memory). */
int service_save(const service *s, uint8_t **buf, size_t *len);

/* Builds a service from an engine blob and a service blob made with the
 * same catalog and config. Returns NULL with a reason. */
service *service_load(const matcher_catalog *cat, const service_config *cfg,
                      const uint8_t *engine, size_t engine_len,
                      const uint8_t *svc, size_t svc_len, char *err,
                      size_t errlen);

/* ---- the process (service_loop.c) -------------------------------------- */

typedef struct service_opts {
    const char *data_dir;
    const char *cmd_addr;
    const char *pub_addr;
    const char *feed_addr;
    const char *catalog_path;  /* NULL: the built-in default catalog */
    service_config cfg;
    uint32_t contexts;         /* REP contexts on the command endpoint */
    uint64_t segment_bytes;    /* journal segment size */
    uint64_t snapshot_every;   /* commands between snapshots (0 = never) */
    uint32_t snapshot_secs;    /* seconds between snapshots (0 = never) */
    uint32_t batch_max;        /* commands per group commit */
    bool repair_journal;
    bool journal_buffered;     /* --journal-io buffered: write + fdatasync */
} service_opts;

/* Recovers state from data_dir (latest good snapshot + journal, verified
 * by state hash), serves until SIGTERM/SIGINT, writes a final snapshot.
 * Returns 0 on a clean shutdown, else 1 after logging the reason. The
 * caller must have blocked SIGTERM/SIGINT/SIGPIPE in every thread. */
int service_run(const service_opts *o);

/* Offline check: replays the whole journal from seq 1 (or from the oldest
 * snapshot when the journal was pruned) without serving, checks the engine
 * invariants, compares every snapshot it passes (state hash and service
 * bytes), prints "verify ok seq=N state_hash=H" on stdout. Returns 0 when
 * everything agrees, else 1. */
int service_verify(const service_opts *o);

#endif
