/* handlers_account.c — /v1/account, /v1/leases, the /v1/admin routes and /healthz.
 *
 * Account creation generates the API key before anything is sent, so a
 * CSPRNG failure changes nothing; the key's SHA-256 is journaled by the
 * matcher (ADD_KEY) and the key itself is returned once and wiped. */
#include <stdio.h>
#include <string.h>

#include "gateway/server.h"
#include "gpux_assert.h"

#define PAGE WIRE_MAX_QUERY_LIMIT

static void account_got(gw_call *c, int rc, const wire_reply *rep, wire_reader *rd)
{
    (void)rc;
    if (!gw_answered_ok(c, rep))
        return;
    wire_item it;
    if (!gw_first_item(c, rd, WIRE_ITEM_ACCOUNT, "account", &it))
        return;
    gw_reply_json(c, 200, gw_render_account(&it.account));
}

static void query_account(gw_call *c, uint32_t account)
{
    wire_query q = {.type = WIRE_Q_ACCOUNT, .account = account};
    gw_call_query(c, &q, account_got);
}

void gw_h_account(gw_call *c)
{
    query_account(c, c->account);
}

static void leases_got(gw_call *c, int rc, const wire_reply *rep, wire_reader *rd)
{
    (void)rc;
    if (!gw_answered_ok(c, rep))
        return;
    json_t *list = json_array();
    uint16_t type;
    wire_item it;
    char err[128];
    const matcher_catalog *cat = c->srv->cat;
    for (uint32_t n = 0; n <= PAGE && wire_reader_next(rd, &type, &it, err, sizeof err) == 1; n++) {
        if (type != WIRE_ITEM_FILL)
            continue;
        const wire_fill *f = &it.fill;
        json_t *l = json_object();
        json_object_set_new(l, "lease_id", gw_json_id(f->trade_id));
        json_object_set_new(l, "trade_id", gw_json_id(f->trade_id));
        json_object_set_new(l, "role", json_string(f->buyer == c->account ? "buyer" : "provider"));
        bool known = f->market < cat->n_markets;
        json_object_set_new(l, "gpu", known ? json_string(cat->markets[f->market].gpu) : json_null());
        json_object_set_new(l, "region",
                            known ? json_string(cat->markets[f->market].region) : json_null());
        json_object_set_new(l, "start", gw_json_hour(f->start_hour));
        json_object_set_new(l, "end", gw_json_hour(f->end_hour));
        json_object_set_new(l, "qty", json_integer(f->qty));
        json_object_set_new(l, "price", gw_json_money(f->price_micros));
        json_array_append_new(list, l);
    }
    json_t *body = json_object();
    json_object_set_new(body, "leases", list);
    gw_reply_json(c, 200, body);
}

void gw_h_leases(gw_call *c)
{
    wire_query q = {.type = WIRE_Q_LEASES, .account = c->account, .limit = PAGE};
    gw_call_query(c, &q, leases_got);
}

/* ---- admin: accounts ------------------------------------------------------- */

static void key_added(gw_call *c, int rc, const wire_reply *rep, wire_reader *rd)
{
    (void)rc;
    (void)rd;
    if (rep->status != WIRE_ST_OK) {
        gw_log("account %u created but its key was not stored (%s)",
                c->target_account, wire_status_name(rep->status));
        gw_reply_wire_error(c, rep);
        return;
    }
    gw_keys_add(&c->srv->keys, c->key_hash, c->target_account, c->new_roles);
    json_t *body = json_object();
    json_object_set_new(body, "account_id", gw_json_id(c->target_account));
    json_object_set_new(body, "name", json_string(c->name));
    json_object_set_new(body, "roles", gw_json_roles(c->new_roles));
    json_object_set_new(body, "api_key", json_string(c->key));
    gw_reply_json(c, 201, body);
}

static void account_created(gw_call *c, int rc, const wire_reply *rep, wire_reader *rd)
{
    (void)rc;
    (void)rd;
    if (rep->status != WIRE_ST_OK) {
        gw_reply_wire_error(c, rep); /* e.g. 409: the name is taken */
        return;
    }
    c->target_account = rep->account;
    wire_cmd w = {.type = WIRE_CMD_ADD_KEY, .account = rep->account};
    memcpy(w.key_hash, c->key_hash, sizeof w.key_hash);
    gw_call_cmd(c, &w, key_added);
}

void gw_h_admin_create(gw_call *c)
{
    size_t len;
    const char *body = gw_body(c, &len);
    if (!body)
        return;
    gw_req_error e;
    if (gw_decode_account(body, len, c->name, &c->new_roles, &e) != 0) {
        gw_reply_error(c, e.err, e.message);
        return;
    }
    if (gw_key_generate(c->key, c->key_hash) != 0) {
        gw_reply_error(c, GW_ERR_UNAVAILABLE, "no secure random bytes for a key; nothing was created");
        return;
    }
    wire_cmd w = {.type = MATCHER_CMD_CREATE_ACCOUNT, .roles = c->new_roles};
    _Static_assert(sizeof c->name == sizeof w.name, "name sizes agree");
    memcpy(w.name, c->name, sizeof w.name);
    gw_call_cmd(c, &w, account_created);
}

static void accounts_page(gw_call *c, int rc, const wire_reply *rep, wire_reader *rd);

static void accounts_next(gw_call *c, uint64_t after)
{
    wire_query q = {.type = WIRE_Q_ACCOUNTS, .after = after, .limit = PAGE};
    gw_call_query(c, &q, accounts_page);
}

static void accounts_page(gw_call *c, int rc, const wire_reply *rep, wire_reader *rd)
{
    (void)rc;
    if (!gw_answered_ok(c, rep))
        return;
    uint16_t type;
    wire_item it;
    char err[128];
    uint32_t n = 0;
    uint64_t last = 0;
    while (n <= PAGE && wire_reader_next(rd, &type, &it, err, sizeof err) == 1) {
        if (type != WIRE_ITEM_ACCOUNT)
            continue;
        json_array_append_new(c->acc, gw_render_account(&it.account));
        last = it.account.account;
        n++;
    }
    c->page_after++;
    if (n == PAGE && c->page_after < GW_MAX_ACCOUNTS_LISTED / PAGE) {
        accounts_next(c, last + 1);
        return;
    }
    json_t *body = json_object();
    json_object_set(body, "accounts", c->acc);
    gw_reply_json(c, 200, body);
}

void gw_h_admin_list(gw_call *c)
{
    c->acc = json_array();
    accounts_next(c, 0);
}

static void transferred(gw_call *c, int rc, const wire_reply *rep, wire_reader *rd)
{
    (void)rc;
    (void)rd;
    if (!gw_answered_ok(c, rep))
        return;
    query_account(c, c->target_account);
}

void gw_h_admin_transfer(gw_call *c, bool deposit)
{
    size_t len;
    const char *body = gw_body(c, &len);
    if (!body)
        return;
    gw_req_error e;
    if (gw_decode_transfer(body, len, &c->target_account, &c->amount_micros, &e) != 0) {
        gw_reply_error(c, e.err, e.message);
        return;
    }
    wire_cmd w = {.type = deposit ? MATCHER_CMD_DEPOSIT : MATCHER_CMD_WITHDRAW,
                  .account = c->target_account, .amount_micros = c->amount_micros};
    gw_call_cmd(c, &w, transferred);
}

/* ---- healthz ---------------------------------------------------------------- */

/* Folds a STATUS item into the ledger liveness view. The ledger is "up"
 * while it keeps up with the journal: lag 0, or lag within the bound and
 * its position moved within the stall window. */
static bool ledger_up(gw_server *s, const wire_status_item *st, int64_t *lag_out)
{
    int64_t now_ms = gw_now_us() / 1000;
    if (st->ledger_seq != s->last_ledger_seq || s->ledger_seq_moved_ms == 0) {
        s->last_ledger_seq = st->ledger_seq;
        s->ledger_seq_moved_ms = now_ms;
    }
    s->last_seq = st->seq;
    int64_t lag = st->seq > st->ledger_seq ? (int64_t)(st->seq - st->ledger_seq) : 0;
    *lag_out = lag;
    s->metrics.ledger_lag = lag;
    bool up = lag == 0 || (lag <= s->cfg.max_ledger_lag &&
                           now_ms - s->ledger_seq_moved_ms < (int64_t)s->cfg.ledger_stall_s * 1000);
    s->metrics.ledger_up = up;
    return up;
}

static void reply_health(gw_call *c, const wire_status_item *st)
{
    int64_t lag;
    bool up = ledger_up(c->srv, st, &lag);
    json_t *body = json_object();
    json_object_set_new(body, "status", json_string(up ? "ok" : "degraded"));
    json_object_set_new(body, "matcher", json_string("up"));
    json_object_set_new(body, "ledger", json_string(up ? "up" : "down"));
    json_object_set_new(body, "ledger_lag", json_integer(lag));
    gw_reply_json(c, up ? 200 : 503, body);
}

static void status_got(gw_call *c, int rc, const wire_reply *rep, wire_reader *rd)
{
    (void)rc;
    uint16_t type;
    wire_item it;
    char err[128];
    if (rep->status != WIRE_ST_OK ||
        wire_reader_next(rd, &type, &it, err, sizeof err) != 1 || type != WIRE_ITEM_STATUS) {
        gw_reply_wire_error(c, rep);
        return;
    }
    c->srv->status = it.status;
    c->srv->status_at_ms = gw_now_us() / 1000;
    reply_health(c, &it.status);
}

static void healthz_reply(void *arg, int rc, const uint8_t *msg, size_t len)
{
    gw_call *c = arg;
    wire_reply rep;
    wire_reader rd;
    char err[128];
    if (rc == 0 && wire_decode_reply(msg, len, &rep, &rd, err, sizeof err) == 0) {
        c->srv->metrics.matcher_up = true;
        status_got(c, 0, &rep, &rd);
        return;
    }
    c->srv->metrics.matcher_up = false;
    json_t *body = json_object();
    json_object_set_new(body, "status", json_string("down"));
    json_object_set_new(body, "matcher", json_string("down"));
    json_object_set_new(body, "ledger", json_string("unknown"));
    json_object_set_new(body, "ledger_lag", json_null());
    gw_reply_json(c, 503, body);
}

static void refreshed(void *arg, int rc, const uint8_t *msg, size_t len)
{
    gw_server *s = arg;
    wire_reply rep;
    wire_reader rd;
    uint16_t type;
    wire_item it;
    char err[128];
    s->status_refreshing = false;
    if (rc != 0 || wire_decode_reply(msg, len, &rep, &rd, err, sizeof err) != 0 ||
        rep.status != WIRE_ST_OK || wire_reader_next(&rd, &type, &it, err, sizeof err) != 1 ||
        type != WIRE_ITEM_STATUS) {
        s->metrics.matcher_up = false;
        return;
    }
    s->metrics.matcher_up = true;
    s->status = it.status;
    s->status_at_ms = gw_now_us() / 1000;
    int64_t lag;
    ledger_up(s, &it.status, &lag); /* updates the ledger gauges */
}

void gw_status_refresh(gw_server *s)
{
    if (s->status_refreshing)
        return;
    wire_query q = {.type = WIRE_Q_STATUS};
    uint8_t buf[sizeof(wire_hdr) + sizeof(wire_query)];
    size_t n = wire_encode_query(buf, sizeof buf, &q);
    GPUX_ASSERT(n > 0);
    if (gw_mc_send(s->mc, buf, n, refreshed, s) == 0)
        s->status_refreshing = true;
}

/* /healthz is public: it answers from a STATUS at most HEALTH_CACHE_MS old,
 * so a flood of health checks costs the matcher one query a second. */
#define HEALTH_CACHE_MS 1000

void gw_h_healthz(gw_call *c)
{
    gw_server *s = c->srv;
    int64_t now_ms = gw_now_us() / 1000;
    if (s->status_at_ms && now_ms - s->status_at_ms < HEALTH_CACHE_MS && s->metrics.matcher_up) {
        reply_health(c, &s->status);
        return;
    }
    wire_query q = {.type = WIRE_Q_STATUS};
    uint8_t buf[sizeof(wire_hdr) + sizeof(wire_query)];
    size_t n = wire_encode_query(buf, sizeof buf, &q);
    GPUX_ASSERT(n > 0);
    if (gw_mc_send(c->srv->mc, buf, n, healthz_reply, c) != 0)
        healthz_reply(c, -1, NULL, 0);
}
