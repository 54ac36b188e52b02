/* main_gateway.c — bin/gpux-gateway: flags, start-up, the event loop and
 * graceful shutdown.
 *
 * Start-up is the only blocking phase: wait for the matcher, load the
 * market catalog and the API key table (hashes) from it, register the
 * bootstrap admin key if one is given, then listen. After that everything
 * is asynchronous on one libevent loop. SIGTERM/SIGINT stop listening,
 * end the streams, fail what is still in flight with 503, and exit 0. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "gateway/server.h"
#include "gpux_assert.h"

#define KEY_PAGE WIRE_MAX_QUERY_LIMIT
#define MAX_KEYS (1u << 17)
#define MAX_ACCOUNTS_RL (1u << 17)

static void usage(FILE *f)
{
    fprintf(f,
"usage: gpux-gateway [options]\n"
"The gpux HTTP/HTTPS API (../shared/spec/api.md) in front of gpux-matcher.\n"
"\n"
"  --listen ADDR            address to listen on (default 127.0.0.1)\n"
"  --http-port N            plain HTTP port, 0 = any free port, -1 = off\n"
"                           (env GPUX_HTTP_PORT, default 8080)\n"
"  --https-port N           HTTPS port, 0 = any, -1 = off (env GPUX_HTTPS_PORT,\n"
"                           default off; needs --tls-cert and --tls-key)\n"
"  --tls-cert PATH          PEM certificate chain (env GPUX_TLS_CERT)\n"
"  --tls-key PATH           PEM private key (env GPUX_TLS_KEY)\n"
"  --matcher-cmd URL        matcher command endpoint (env GPUX_MATCHER_CMD,\n"
"                           default " WIRE_DEFAULT_CMD_ADDR ")\n"
"  --matcher-pub URL        matcher market data (env GPUX_MATCHER_PUB,\n"
"                           default " WIRE_DEFAULT_PUB_ADDR ")\n"
"  --matcher-timeout-ms N   per request; then 503 unavailable (default 2000)\n"
"  --startup-wait-s N       wait this long for the matcher at start (default 30)\n"
"  --max-inflight N         matcher requests in flight (default 1024)\n"
"  --idle-timeout-s N       header read / idle keep-alive timeout (default 60)\n"
"  --rate N                 requests per second per API key, 0 = unlimited\n"
"                           (env GPUX_RATE_LIMIT, default 1000)\n"
"  --burst N                burst per key (env GPUX_RATE_BURST, default 2 x rate)\n"
"  --max-ledger-lag N       /healthz: ledger down past this lag (default 10000)\n"
"  --ledger-stall-s N       /healthz: ledger down when lagging and not moving\n"
"                           for N seconds (default 10)\n"
"  --ready-file PATH        write GATEWAY_URL=/GATEWAY_TLS_URL= lines once listening\n"
"  --help                   this text\n"
"\n"
"Environment: GPUX_ADMIN_KEY=gpx_<64 hex> registers that key for an account\n"
"named admin-<hash prefix> with the admin role if the matcher does not know\n"
"it yet (the bootstrap operator key). Logs go to stderr.\n");
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

/* Parses an integer flag/env value in [lo, hi]; exits with a reason if not. */
static long int_arg(const char *what, const char *v, long lo, long hi)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        gw_log("%s must be an integer from %ld to %ld, got '%s'", what,
                lo, hi, v);
        exit(2);
    }
    return x;
}

typedef struct opts {
    gw_config cfg;
    int startup_wait_s;
    const char *ready_file;
} opts;

static void parse_args(int argc, char **argv, opts *o)
{
    gw_config *c = &o->cfg;
    c->http_addr = "127.0.0.1";
    c->http_port = (int)int_arg("GPUX_HTTP_PORT", env_or("GPUX_HTTP_PORT", "8080"), -1, 65535);
    c->https_port = (int)int_arg("GPUX_HTTPS_PORT", env_or("GPUX_HTTPS_PORT", "-1"), -1, 65535);
    c->tls_cert = env_or("GPUX_TLS_CERT", NULL);
    c->tls_key = env_or("GPUX_TLS_KEY", NULL);
    c->matcher_cmd = env_or("GPUX_MATCHER_CMD", WIRE_DEFAULT_CMD_ADDR);
    c->matcher_pub = env_or("GPUX_MATCHER_PUB", WIRE_DEFAULT_PUB_ADDR);
    c->matcher_timeout_ms = 2000;
    c->max_inflight = 1024;
    c->idle_timeout_s = 60;
    c->rate_per_s = int_arg("GPUX_RATE_LIMIT", env_or("GPUX_RATE_LIMIT", "1000"), 0, 100000000);
    c->rate_burst = int_arg("GPUX_RATE_BURST", env_or("GPUX_RATE_BURST", "0"), 0, 100000000);
    c->max_ledger_lag = 10000;
    c->ledger_stall_s = 10;
    c->admin_key = env_or("GPUX_ADMIN_KEY", NULL);
    o->startup_wait_s = 30;
    static const struct option lo[] = {
        {"listen", 1, 0, 'l'}, {"http-port", 1, 0, 'p'}, {"https-port", 1, 0, 's'},
        {"tls-cert", 1, 0, 'c'}, {"tls-key", 1, 0, 'k'}, {"matcher-cmd", 1, 0, 'm'},
        {"matcher-pub", 1, 0, 'P'}, {"matcher-timeout-ms", 1, 0, 't'},
        {"startup-wait-s", 1, 0, 'w'}, {"max-inflight", 1, 0, 'i'},
        {"idle-timeout-s", 1, 0, 'I'}, {"rate", 1, 0, 'r'}, {"burst", 1, 0, 'b'},
        {"max-ledger-lag", 1, 0, 'L'}, {"ledger-stall-s", 1, 0, 'S'},
        {"ready-file", 1, 0, 'R'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'l': c->http_addr = optarg; break;
        case 'p': c->http_port = (int)int_arg("--http-port", optarg, -1, 65535); break;
        case 's': c->https_port = (int)int_arg("--https-port", optarg, -1, 65535); break;
        case 'c': c->tls_cert = optarg; break;
        case 'k': c->tls_key = optarg; break;
        case 'm': c->matcher_cmd = optarg; break;
        case 'P': c->matcher_pub = optarg; break;
        case 't': c->matcher_timeout_ms = (int)int_arg("--matcher-timeout-ms", optarg, 1, 600000); break;
        case 'w': o->startup_wait_s = (int)int_arg("--startup-wait-s", optarg, 0, 86400); break;
        case 'i': c->max_inflight = (uint32_t)int_arg("--max-inflight", optarg, 1, 65536); break;
        case 'I': c->idle_timeout_s = (int)int_arg("--idle-timeout-s", optarg, 1, 86400); break;
        case 'r': c->rate_per_s = int_arg("--rate", optarg, 0, 100000000); break;
        case 'b': c->rate_burst = int_arg("--burst", optarg, 0, 100000000); break;
        case 'L': c->max_ledger_lag = int_arg("--max-ledger-lag", optarg, 0, 1000000000); break;
        case 'S': c->ledger_stall_s = (int)int_arg("--ledger-stall-s", optarg, 1, 86400); break;
        case 'R': o->ready_file = optarg; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind < argc) {
        gw_log("unexpected argument '%s' (see --help)", argv[optind]);
        exit(2);
    }
    if (c->https_port >= 0 && (!c->tls_cert || !c->tls_key)) {
        gw_log("--https-port needs --tls-cert and --tls-key");
        exit(2);
    }
    if (c->http_port < 0 && c->https_port < 0) {
        gw_log("both HTTP and HTTPS are off; nothing to serve");
        exit(2);
    }
    if (c->rate_burst == 0)
        c->rate_burst = c->rate_per_s * 2;
}

/* ---- blocking start-up calls ---------------------------------------------- */

typedef struct sync_reply {
    uint8_t *buf;
    wire_reply rep;
    wire_reader rd;
} sync_reply;

static int sync_call(const gw_config *c, const uint8_t *msg, size_t len, sync_reply *out)
{
    size_t n;
    char err[128];
    out->buf = NULL;
    if (gw_mc_call_blocking(c->matcher_cmd, msg, len, c->matcher_timeout_ms, &out->buf, &n) != 0)
        return -1;
    if (wire_decode_reply(out->buf, n, &out->rep, &out->rd, err, sizeof err) != 0) {
        gw_log("bad reply from the matcher: %s", err);
        free(out->buf);
        out->buf = NULL;
        return -1;
    }
    return 0;
}

static int sync_query(const gw_config *c, const wire_query *q, sync_reply *out)
{
    uint8_t buf[sizeof(wire_hdr) + sizeof(wire_query)];
    size_t n = wire_encode_query(buf, sizeof buf, q);
    GPUX_ASSERT(n > 0);
    return sync_call(c, buf, n, out);
}

static int sync_cmd(const gw_config *c, const wire_cmd *w, sync_reply *out)
{
    uint8_t buf[sizeof(wire_hdr) + sizeof(wire_cmd)];
    size_t n = wire_encode_cmd(buf, sizeof buf, w);
    GPUX_ASSERT(n > 0);
    return sync_call(c, buf, n, out);
}

static int wait_for_matcher(const opts *o)
{
    for (int i = 0; i <= o->startup_wait_s * 4; i++) {
        sync_reply r;
        wire_query q = {.type = WIRE_Q_STATUS};
        if (sync_query(&o->cfg, &q, &r) == 0) {
            free(r.buf);
            return 0;
        }
        if (i % 20 == 0)
            gw_log("waiting for the matcher at %s", o->cfg.matcher_cmd);
        usleep(250000);
    }
    gw_log("the matcher at %s did not answer within %d s",
            o->cfg.matcher_cmd, o->startup_wait_s);
    return -1;
}

static int load_markets(gw_server *s)
{
    s->cat = calloc(1, sizeof *s->cat);
    if (!s->cat)
        return -1;
    for (uint32_t page = 0; page < MATCHER_MAX_MARKETS / 64 + 1; page++) {
        sync_reply r;
        wire_query q = {.type = WIRE_Q_MARKETS, .after = s->cat->n_markets, .limit = 64};
        if (sync_query(&s->cfg, &q, &r) != 0 || r.rep.status != WIRE_ST_OK) {
            free(r.buf);
            return -1;
        }
        uint16_t type;
        wire_item it;
        char err[128];
        uint32_t n = 0;
        while (wire_reader_next(&r.rd, &type, &it, err, sizeof err) == 1 && n < 64) {
            if (type != WIRE_ITEM_MARKET || it.market.market != s->cat->n_markets ||
                s->cat->n_markets >= MATCHER_MAX_MARKETS)
                continue;
            matcher_market_def *d = &s->cat->markets[s->cat->n_markets++];
            memcpy(d->gpu, it.market.gpu, sizeof d->gpu);
            memcpy(d->region, it.market.region, sizeof d->region);
            d->lot = it.market.lot;
            d->tick_micros = it.market.tick_micros;
            n++;
        }
        free(r.buf);
        if (n < 64)
            return 0;
    }
    return 0;
}

/* Adds every KEY item of a reply to the table; returns how many. */
static uint32_t add_keys(gw_server *s, wire_reader *rd)
{
    uint16_t type;
    wire_item it;
    char err[128];
    uint32_t n = 0;
    while (n <= KEY_PAGE && wire_reader_next(rd, &type, &it, err, sizeof err) == 1) {
        if (type != WIRE_ITEM_KEY)
            continue;
        if (gw_keys_add(&s->keys, it.key.key_hash, it.key.account, it.key.roles) < 0)
            gw_log("key table full (%u keys)", s->keys.count);
        n++;
    }
    return n;
}

static int load_keys(gw_server *s)
{
    for (uint32_t page = 0; page < MAX_KEYS / KEY_PAGE; page++) {
        sync_reply r;
        wire_query q = {.type = WIRE_Q_KEYS, .after = s->keys_loaded, .limit = KEY_PAGE};
        if (sync_query(&s->cfg, &q, &r) != 0 || r.rep.status != WIRE_ST_OK) {
            free(r.buf);
            return -1;
        }
        uint32_t n = add_keys(s, &r.rd);
        free(r.buf);
        s->keys_loaded += n;
        if (n < KEY_PAGE)
            return 0;
    }
    return 0;
}

/* Registers GPUX_ADMIN_KEY unless the matcher already knows it. */
static int bootstrap_admin(gw_server *s)
{
    const char *key = s->cfg.admin_key;
    char hdr[GW_KEY_LEN + 16];
    snprintf(hdr, sizeof hdr, "Bearer %s", key);
    if (gw_keys_auth(&s->keys, hdr))
        return 0;
    if (strlen(key) != GW_KEY_LEN || strncmp(key, GW_KEY_PREFIX, 4) != 0 ||
        strspn(key + 4, "0123456789abcdef") != GW_KEY_LEN - 4) {
        gw_log("GPUX_ADMIN_KEY must be gpx_ followed by 64 lowercase hex digits");
        return -1;
    }
    uint8_t hash[GW_SHA256_LEN];
    gw_sha256(key, GW_KEY_LEN, hash);
    wire_cmd w = {.type = MATCHER_CMD_CREATE_ACCOUNT, .roles = MATCHER_ROLE_ADMIN};
    snprintf(w.name, sizeof w.name, "admin-%02x%02x%02x%02x", hash[0], hash[1], hash[2], hash[3]);
    sync_reply r;
    if (sync_cmd(&s->cfg, &w, &r) != 0 || r.rep.status != WIRE_ST_OK) {
        gw_log("cannot create the admin account %s: %s %s", w.name,
                r.buf ? wire_status_name(r.rep.status) : "no answer", r.buf ? r.rep.detail : "");
        free(r.buf);
        return -1;
    }
    uint32_t account = r.rep.account;
    free(r.buf);
    wire_cmd k = {.type = WIRE_CMD_ADD_KEY, .account = account};
    memcpy(k.key_hash, hash, sizeof hash);
    if (sync_cmd(&s->cfg, &k, &r) != 0 || r.rep.status != WIRE_ST_OK) {
        gw_log("cannot register the admin key");
        free(r.buf);
        return -1;
    }
    free(r.buf);
    gw_keys_add(&s->keys, hash, account, MATCHER_ROLE_ADMIN);
    gw_log("admin key registered for account %u (%s)", account, w.name);
    return 0;
}

/* ---- loop housekeeping ------------------------------------------------------ */

static void keys_refreshed(void *arg, int rc, const uint8_t *msg, size_t len)
{
    gw_server *s = arg;
    s->keys_refreshing = false;
    wire_reply rep;
    wire_reader rd;
    char err[128];
    if (rc != 0 || wire_decode_reply(msg, len, &rep, &rd, err, sizeof err) != 0 ||
        rep.status != WIRE_ST_OK)
        return;
    s->keys_loaded += add_keys(s, &rd);
}

/* Every second: pick up keys registered elsewhere (e.g. by `gpux`); every
 * 10 s refresh the matcher/ledger status; every 15 s keep streams alive. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_server *s = arg;
    static unsigned ticks;
    if (!s->keys_refreshing) {
        wire_query q = {.type = WIRE_Q_KEYS, .after = s->keys_loaded, .limit = KEY_PAGE};
        uint8_t buf[sizeof(wire_hdr) + sizeof(wire_query)];
        size_t n = wire_encode_query(buf, sizeof buf, &q);
        if (gw_mc_send(s->mc, buf, n, keys_refreshed, s) == 0)
            s->keys_refreshing = true;
    }
    if (++ticks % 10 == 0)
        gw_status_refresh(s); /* keeps the ledger lag gauge fresh; STATUS is
                                 not free for the matcher (it hashes its state) */
    if (ticks % 15 == 0)
        gw_sse_tick(s);
}

#define DRAIN_MS 3000 /* how long requests in flight get to finish, at least */

static struct event *drain_ev;
static int64_t drain_deadline_ms;

/* Every 50 ms while draining: exit once nothing has been in flight for a
 * whole tick (the last replies need a loop turn to reach their sockets). */
static void on_drain(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_server *s = arg;
    static int idle_ticks;
    bool late = gw_now_us() / 1000 >= drain_deadline_ms;
    idle_ticks = s->calls_in_use == 0 ? idle_ticks + 1 : 0;
    if (idle_ticks >= 2 || late) {
        if (late)
            gw_log("%u requests still in flight at the drain deadline; they get 503",
                   s->calls_in_use);
        event_base_loopexit(s->base, NULL);
    }
}

/* SIGTERM/SIGINT: stop accepting, let what is in flight finish, then stop. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    gw_server *s = arg;
    if (drain_ev) {
        gw_log("second signal: stopping now");
        event_base_loopexit(s->base, NULL);
        return;
    }
    gw_log("%s: no new connections; finishing %u requests in flight",
           sig == SIGTERM ? "SIGTERM" : "SIGINT", s->calls_in_use);
    gw_server_stop_accepting(s);
    gw_sse_close_all(s);
    /* Long enough for every request in flight to get its own answer (the
     * matcher's, or 503 at its timeout). */
    int drain_ms = s->cfg.matcher_timeout_ms + 500 > DRAIN_MS ? s->cfg.matcher_timeout_ms + 500
                                                              : DRAIN_MS;
    drain_deadline_ms = gw_now_us() / 1000 + drain_ms;
    struct timeval tv = {0, 50000};
    drain_ev = event_new(s->base, -1, EV_PERSIST, on_drain, s);
    if (!drain_ev || event_add(drain_ev, &tv) != 0)
        event_base_loopexit(s->base, NULL);
}

static void write_ready(const char *path, const gw_server *s)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        gw_log("cannot write %s: %s", tmp, strerror(errno));
        return;
    }
    if (s->http)
        fprintf(f, "GATEWAY_URL=http://%s:%d\n", s->cfg.http_addr, s->http_port_bound);
    if (s->https)
        fprintf(f, "GATEWAY_TLS_URL=https://%s:%d\n", s->cfg.http_addr, s->https_port_bound);
    fclose(f);
    if (rename(tmp, path) != 0)
        gw_log("cannot write %s: %s", path, strerror(errno));
}

static int setup(gw_server *s, opts *o, struct event_base *base)
{
    char err[256];
    s->cfg = o->cfg;
    gw_metrics_init(&s->metrics);
    if (gw_keys_init(&s->keys, MAX_KEYS) != 0 ||
        gw_ratelimit_init(&s->rl, MAX_ACCOUNTS_RL, o->cfg.rate_per_s, o->cfg.rate_burst) != 0) {
        gw_log("out of memory");
        return -1;
    }
    if (wait_for_matcher(o) != 0)
        return -1;
    if (load_markets(s) != 0 || load_keys(s) != 0) {
        gw_log("cannot load markets and keys from the matcher");
        return -1;
    }
    if (o->cfg.admin_key && bootstrap_admin(s) != 0)
        return -1;
    s->metrics.matcher_up = true;
    gw_log("%u markets, %u API keys loaded from %s", s->cat->n_markets,
            s->keys.count, o->cfg.matcher_cmd);
    s->mc = gw_mc_open(base, o->cfg.matcher_cmd, o->cfg.matcher_pub, o->cfg.max_inflight,
                       o->cfg.matcher_timeout_ms, gw_sse_on_pub, s, err, sizeof err);
    if (!s->mc || gw_server_start(s, base, &o->cfg, err, sizeof err) != 0) {
        gw_log("%s", err);
        return -1;
    }
    if (s->http)
        gw_log("listening on http://%s:%d", o->cfg.http_addr,
                s->http_port_bound);
    if (s->https)
        gw_log("listening on https://%s:%d", o->cfg.http_addr,
                s->https_port_bound);
    if (o->ready_file)
        write_ready(o->ready_file, s);
    return 0;
}

int main(int argc, char **argv)
{
    opts o;
    memset(&o, 0, sizeof o);
    parse_args(argc, argv, &o);
    signal(SIGPIPE, SIG_IGN);
    /* epoll with libevent's changelist: the read/write interest changes a
     * keep-alive connection makes within one loop turn (write done, read
     * again) become one epoll_ctl instead of two. Safe here: no fd given
     * to libevent is a dup() of another (the changelist's one caveat). */
    struct event_config *ecfg = event_config_new();
    if (ecfg)
        event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    struct event_base *base = ecfg ? event_base_new_with_config(ecfg) : NULL;
    if (ecfg)
        event_config_free(ecfg);
    static gw_server srv;
    if (!base) {
        gw_log("cannot create the event loop");
        return 1;
    }
    int rc = setup(&srv, &o, base);
    struct event *sterm = evsignal_new(base, SIGTERM, on_signal, &srv);
    struct event *sint = evsignal_new(base, SIGINT, on_signal, &srv);
    struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, &srv);
    struct timeval one_s = {1, 0};
    if (rc == 0) {
        evsignal_add(sterm, NULL);
        evsignal_add(sint, NULL);
        event_add(tick, &one_s);
        event_base_dispatch(base);
        gw_log("stopped");
    }
    event_free(tick);
    if (drain_ev)
        event_free(drain_ev);
    event_free(sterm);
    event_free(sint);
    gw_mc_close(srv.mc); /* in-flight requests get 503 before their connections go */
    gw_server_stop(&srv);
    free(srv.calls);
    free(srv.cat);
    free(srv.markets_json);
    gw_keys_free(&srv.keys);
    gw_ratelimit_free(&srv.rl);
    event_base_free(base);
    return rc == 0 ? 0 : 1;
}
