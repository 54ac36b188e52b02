/* server.h — the gateway server's internals, shared by its files (not a
 * public API: other modules use nothing here).
 *
 * One libevent loop thread owns everything below. The only other threads
 * are nng's: their completions are queued (mutex) and handed to the loop
 * through an eventfd (matcher_client.c), so no handler ever blocks on the
 * matcher and no state is touched off the loop. */
#ifndef GPUX_GATEWAY_SERVER_H
#define GPUX_GATEWAY_SERVER_H

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "gateway/gateway.h"

/* ---- matcher client (matcher_client.c) ---------------------------------- */

typedef struct gw_mc gw_mc;

/* Called on the loop thread when a request completes: rc 0 with the reply
 * bytes (valid only during the call), or rc -1 (timeout, matcher down,
 * shutting down) with reply NULL. */
typedef void (*gw_mc_done_fn)(void *arg, int rc, const uint8_t *reply, size_t len);
/* Called on the loop thread for each market-data message (topic included). */
typedef void (*gw_mc_pub_fn)(void *arg, const uint8_t *msg, size_t len);

/* Opens REQ contexts to cmd_addr (max_inflight of them) and, when pub_addr
 * is not NULL, a SUB socket on pub_addr. Dials in the background: a down
 * matcher is not an error here. Returns NULL with a reason in err. */
gw_mc *gw_mc_open(struct event_base *base, const char *cmd_addr, const char *pub_addr,
                  uint32_t max_inflight, int timeout_ms, gw_mc_pub_fn pub_fn,
                  void *pub_arg, char *err, size_t errlen);
/* Stops every aio (pending callbacks fire with rc -1 first) and frees. */
void gw_mc_close(gw_mc *mc);

/* Sends msg (copied) and calls fn later on the loop. Returns 0, or -1 when
 * every context is busy (caller answers 503; fn is not called). */
int gw_mc_send(gw_mc *mc, const uint8_t *msg, size_t len, gw_mc_done_fn fn, void *arg);

/* Blocking request for start-up only (before the loop runs): a separate
 * socket, timeout_ms. Returns 0 with a malloc'd reply (*out, *out_len; the
 * caller frees) or -1. */
int gw_mc_call_blocking(const char *cmd_addr, const uint8_t *msg, size_t len,
                        int timeout_ms, uint8_t **out, size_t *out_len);

/* ---- market-data messages (pub_runs.c) ------------------------------------ */

#define GW_PUB_RUNS_MAX WIRE_PUB_MAX_EVENTS /* commands reported per message */

/* One command's events inside a PUB message (include/gpux_wire.h). */
typedef struct gw_pub_run {
    uint64_t seq;
    size_t start, end;  /* byte offsets of its items in the message */
    uint32_t count;     /* events */
    uint16_t cmd_type;  /* the command's type (matcher_cmd_type) */
    bool complete;      /* every event of the command is here */
    uint64_t order_id;  /* of its ACCEPTED event, 0 = none */
    uint32_t account;   /* of its ACCEPTED event */
} gw_pub_run;

typedef struct gw_pub_runs {
    gw_pub_run runs[GW_PUB_RUNS_MAX]; /* seq order */
    uint32_t n;
    uint32_t trades;    /* TRADE events in the message */
    uint64_t last_seq;  /* seq of the message's last event */
    bool truncated;     /* more commands than runs[]: the rest not reported */
} gw_pub_runs;

/* Splits a PUB message (after its topic) into its commands. Returns 0, or
 * -1 when it does not decode or its events are not in (seq, index) order
 * (then *out reports nothing). Any thread; msg is only read. */
int gw_pub_split_runs(const uint8_t *msg, size_t len, gw_pub_runs *out);
/* A reader over one run's events (valid while msg is). */
void gw_pub_run_reader(const uint8_t *msg, const gw_pub_run *run, wire_reader *rd);

/* ---- command batching (batch.c) ------------------------------------------ */

typedef struct gw_batcher gw_batcher;
struct gw_server;

/* Allocates the batch pool and the flush event on s->base (s->mc may be
 * opened later; it is used only when a batch is sent). Returns NULL with
 * a reason in err. Loop thread. */
gw_batcher *gw_batcher_open(struct gw_server *s, char *err, size_t errlen);
/* Answers 503 to every command collected but not sent yet, then frees.
 * Batches in flight must have completed (gw_mc_close fires them first). */
void gw_batcher_close(gw_batcher *bt);
/* A market-data message as received (msg = the PUB message after its
 * topic, runs = its commands, gw_pub_split_runs): an accepted order of a
 * batch takes its command's events from it; while batches are in flight
 * the new orders' events are kept for replies still on their way; every
 * message tells how far market data has come. Loop thread; msg and runs
 * are only read during the call; bt may be NULL (not open yet). */
void gw_batcher_on_pub(gw_batcher *bt, const uint8_t *msg, const gw_pub_runs *runs);

/* ---- TLS (tls.c) --------------------------------------------------------- */

typedef struct gw_tls gw_tls;
/* Loads cert and key (PEM) into a TLS 1.2+ server context. NULL + err. */
gw_tls *gw_tls_open(const char *cert_path, const char *key_path, char *err, size_t errlen);
void gw_tls_close(gw_tls *t);
/* Makes every connection accepted by http a TLS connection. */
void gw_tls_attach(gw_tls *t, struct evhttp *http);

/* ---- server -------------------------------------------------------------- */

#define GW_MAX_BODY_BYTES (64 * 1024)    /* larger bodies: 413 too_large */
#define GW_HARD_BODY_BYTES (1024 * 1024) /* libevent's own cut-off */
#define GW_MAX_HEADERS_BYTES (16 * 1024)
#define GW_MAX_SSE_CLIENTS 1024
#define GW_MAX_ACCOUNTS_LISTED 100000    /* admin account list bound */

typedef struct gw_config {
    const char *http_addr;   /* "127.0.0.1" */
    int http_port;           /* -1 = off */
    int https_port;          /* -1 = off */
    const char *tls_cert;
    const char *tls_key;
    const char *matcher_cmd;
    const char *matcher_pub;
    int matcher_timeout_ms;
    uint32_t max_inflight;
    int idle_timeout_s;      /* header/idle timeout per connection */
    int64_t rate_per_s;      /* per account; 0 = unlimited */
    int64_t rate_burst;
    int64_t max_ledger_lag;  /* healthz: ledger down past this lag */
    int ledger_stall_s;      /* healthz: ledger down when lagging and still */
    const char *admin_key;   /* bootstrap admin key (GPUX_ADMIN_KEY) or NULL */
} gw_config;

typedef struct gw_sse_client {
    struct evhttp_request *req;
    struct gw_server *srv;
    bool in_use;
    bool has_account;
    uint32_t account;
} gw_sse_client;

typedef struct gw_server gw_server;
struct gw_server {
    gw_config cfg;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp *https;
    gw_tls *tls;
    gw_mc *mc;
    gw_batcher *batcher;         /* commands coalesced per loop turn */
    struct event *tick;          /* 1 s housekeeping */
    gw_keys keys;
    uint32_t keys_loaded;        /* KEYS cursor: index of the next key */
    bool keys_refreshing;
    gw_ratelimit rl;
    gw_metrics metrics;
    matcher_catalog *cat;        /* from the matcher at start */
    char *markets_json;          /* GET /v1/markets, rendered once */
    size_t markets_len;
    /* ledger liveness as seen through the matcher's STATUS */
    uint64_t last_seq, last_ledger_seq;
    wire_status_item status;     /* last STATUS answer, for /healthz */
    int64_t status_at_ms;        /* when it came; 0 = never */
    bool status_refreshing;
    int64_t ledger_seq_moved_ms;
    struct gw_call *calls;       /* pool, allocated at start */
    struct gw_call *free_calls;
    uint32_t n_calls;
    gw_sse_client *sse;          /* array of GW_MAX_SSE_CLIENTS */
    uint32_t n_sse;
    uint64_t pub_dropped;
    int http_port_bound, https_port_bound;
    struct evhttp_bound_socket *http_bs, *https_bs;
    uint32_t calls_in_use;       /* requests not answered yet */
};

/* A request waiting on the matcher. One per in-flight request; freed when
 * the reply is sent. */
typedef struct gw_call gw_call;
typedef void (*gw_step_fn)(gw_call *c, int rc, const wire_reply *rep, wire_reader *rd);

struct gw_call {
    gw_server *srv;
    struct evhttp_request *req;
    gw_route route;
    bool tls;                    /* came in over HTTPS */
    int64_t t0_us;
    uint32_t account;            /* authenticated account, if any */
    uint32_t roles;
    gw_step_fn step;             /* what to do with the next reply */
    /* per-route scratch */
    uint64_t order_id;
    bool cancel;                 /* DELETE (else PATCH) after the owner check */
    int64_t new_price_micros;    /* PATCH: 0 = unchanged */
    int32_t new_qty;             /* PATCH: 0 = unchanged */
    uint32_t target_account;
    uint32_t page_after;
    int64_t amount_micros;
    json_t *acc;                 /* list being built over several pages */
    char key[GW_KEY_LEN + 1];    /* admin: the new key, shown once */
    uint8_t key_hash[GW_SHA256_LEN];
    char name[WIRE_NAME_LEN];
    char client_order_id[WIRE_CLIENT_ID_LEN];
    uint32_t new_roles;
    struct evkeyvalq params;     /* parsed query string */
    bool params_parsed;
    gw_call *next_free;
};

int64_t gw_now_us(void);

/* http.c */
int gw_server_start(gw_server *s, struct event_base *base, const gw_config *cfg,
                    char *err, size_t errlen);
/* Closes the listening sockets (open connections keep being served). */
void gw_server_stop_accepting(gw_server *s);
void gw_server_stop(gw_server *s);

/* Replies (all finish the request, count metrics, free the call). */
void gw_reply_json(gw_call *c, int status, json_t *body); /* steals body */
void gw_reply_error(gw_call *c, gw_err e, const char *message);
/* Answers with an already rendered JSON body (copied). */
void gw_reply_raw(gw_call *c, int status, const char *json, size_t len);
void gw_reply_unavailable(gw_call *c);
/* Counts c as answered with status and frees it, for replies sent by other
 * means (the SSE stream). */
void gw_call_release(gw_call *c, int status);
/* Sends a wire message for c; step is called with the decoded reply.
 * On failure to send, answers 503 itself. */
void gw_call_send(gw_call *c, const uint8_t *msg, size_t len, gw_step_fn step);
void gw_call_query(gw_call *c, const wire_query *q, gw_step_fn step);
void gw_call_cmd(gw_call *c, const wire_cmd *w, gw_step_fn step);
/* Like gw_call_cmd, but the command joins the batch of this loop turn
 * (batch.c). step gets the command's own outcome: rep as for a single
 * command (status, reason, seq, order_id; no detail), and rd = its events
 * when they are known, or NULL when they are not (a batched command that
 * is not an accepted new order, or whose events could not be fetched):
 * the step then fetches what it needs. On failure to send: 503. */
void gw_call_cmd_batched(gw_call *c, const wire_cmd *w, gw_step_fn step);
/* Maps a non-OK wire reply to the api.md error and answers. */
void gw_reply_wire_error(gw_call *c, const wire_reply *rep);
/* In a step: true when the matcher answered OK; otherwise the api.md error
 * has been sent (gw_reply_wire_error) and the step must return. */
bool gw_answered_ok(gw_call *c, const wire_reply *rep);
/* Reads the reply's first item, which must be of type want, into *it.
 * Otherwise answers 500 "unreadable <what> from the matcher" and returns
 * false (the matcher's answer is not what the query promises). Loop
 * thread only. */
bool gw_first_item(gw_call *c, wire_reader *rd, uint16_t want, const char *what, wire_item *it);

/* routes (handlers_*.c): each either answers now or sends a request */
void gw_h_markets(gw_call *c);
void gw_h_book(gw_call *c, uint32_t market);
void gw_h_trades(gw_call *c, uint32_t market);
void gw_h_quote(gw_call *c);
void gw_h_order_create(gw_call *c);
void gw_h_order_get(gw_call *c, uint64_t order_id);
void gw_h_order_list(gw_call *c);
void gw_h_order_cancel(gw_call *c, uint64_t order_id);
void gw_h_order_replace(gw_call *c, uint64_t order_id);
void gw_h_account(gw_call *c);
void gw_h_leases(gw_call *c);
void gw_h_admin_create(gw_call *c);
void gw_h_admin_list(gw_call *c);
void gw_h_admin_transfer(gw_call *c, bool deposit);
void gw_h_healthz(gw_call *c);
/* Asks the matcher for its STATUS in the background (metrics, health). */
void gw_status_refresh(gw_server *s);

/* Request helpers */
/* The body as a (ptr, len) view; NULL when over the limit (413 sent). */
const char *gw_body(gw_call *c, size_t *len);
/* Query-string value of key, or NULL. Uses a per-request cache. */
const char *gw_query_param(gw_call *c, const char *key);

/* render.c: wire structs -> JSON */
json_t *gw_json_money(int64_t micros);
json_t *gw_json_hour(int64_t hour);
json_t *gw_json_id(uint64_t id);
json_t *gw_json_roles(uint32_t roles);
json_t *gw_render_order(const gw_server *s, const wire_order *o, json_t *fills);
json_t *gw_render_fill(const wire_fill *f);
json_t *gw_render_account(const wire_account *a);
json_t *gw_render_market(const matcher_market_def *m);
/* The order with its n_fills fills as compact JSON text in buf (cap bytes,
 * not NUL-terminated): the same bytes as json_dumps(gw_render_order(...),
 * JSON_COMPACT), without the tree. Returns the length, or -1 when cap is
 * too small. */
int gw_render_order_text(const gw_server *s, const wire_order *w, const wire_fill *fills,
                         uint32_t n_fills, char *buf, size_t cap);

/* sse.c */
void gw_sse_start(gw_call *c, const gw_key_entry *key);
void gw_sse_on_pub(void *arg, const uint8_t *msg, size_t len);
void gw_sse_tick(gw_server *s);
void gw_sse_close_all(gw_server *s);

#endif
