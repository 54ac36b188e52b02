/* service_internal.h — the service's private state, shared by service.c
 * (commands, snapshots) and service_query.c (queries). */
#ifndef GPUX_SERVICE_INTERNAL_H
#define GPUX_SERVICE_INTERNAL_H

#include "matcher/service.h"

#define SVC_NONE UINT32_MAX

typedef struct svc_order {
    wire_order o;
    uint64_t fill_ids[WIRE_ORDER_MAX_FILLS]; /* the first fills */
    uint32_t open_prev, open_next;           /* account's open list */
} svc_order;

typedef struct svc_fill {
    wire_fill f;
    uint64_t prev_market;   /* previous trade id of this market (0 none) */
    uint64_t prev_buyer;    /* previous trade id involving the buyer */
    uint64_t prev_provider; /* previous trade id involving the provider */
} svc_fill;

typedef struct svc_key {
    uint32_t account;
    uint8_t key_hash[WIRE_KEY_HASH_LEN];
} svc_key;

/* Scalars saved in snapshots (plain data, fixed layout). */
typedef struct svc_scalars {
    uint64_t seq;         /* last journaled command */
    int64_t last_ts_us;   /* its stamped time */
    uint32_t n_fresh;     /* order records ever used */
    uint32_t closed_head; /* closed FIFO: oldest */
    uint32_t closed_count;
    uint32_t n_keys;
} svc_scalars;

typedef struct svc_region {
    void **ptr;
    size_t bytes;
} svc_region;

struct service {
    service_config cfg;
    matcher_catalog cat;
    matcher_engine *eng;
    svc_scalars st;

    uint32_t n_recs, id_cap, coid_cap, n_fills, feed_cap;
    char (*names)[WIRE_NAME_LEN];
    svc_key *keys;
    svc_order *orders;
    uint32_t *id_tab;
    uint32_t *coid_tab;
    uint32_t *closed;
    uint32_t *acct_head, *acct_tail;
    uint64_t *acct_last_fill;
    svc_fill *fills;
    uint64_t *market_last;
    svc_region regions[16];
    size_t n_regions;

    /* feed ring (not in snapshots: rebuilt by replay) */
    wire_event *feed;
    uint64_t ev_next;
    bool dropped_any;
    uint64_t dropped_seq;   /* newest event no longer held */
    uint32_t dropped_index;
    uint64_t ledger_seq;
    uint64_t snapshot_seq;  /* latest snapshot on disk, for STATUS */

    /* the command being applied (for emit) */
    const wire_cmd *cur;
    uint32_t cur_index;
    wire_event rejected;

    /* query scratch */
    int32_t quote_cap[MATCHER_MAX_WINDOW_HOURS];
};

uint32_t svc_id_find(const service *s, uint64_t id);
uint32_t svc_coid_find(const service *s, uint32_t account, const char *coid);

#endif
