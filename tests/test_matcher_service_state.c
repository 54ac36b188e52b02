/* test_matcher_service_state.c — the service state machine in process:
 * snapshot + journal replay equals journal-only replay equals the live
 * state (engine hash AND service bytes), for several seeded streams;
 * client_order_id duplicates, conflict on closed orders, order history
 * eviction, and the feed cursor. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "matcher/service.h"
#include "tests/support/gen.h"

static int scale(void)
{
    const char *f = getenv("GPUX_FLAVOUR");
    return f && strcmp(f, "san") == 0 ? 10 : 1;
}

typedef struct stream {
    matcher_catalog cat;
    service_config cfg;
    gen *g;
    uint64_t rng;
    uint32_t accounts;
    uint32_t n_keys;
} stream;

static void stream_init(stream *st, uint64_t seed)
{
    memset(st, 0, sizeof *st);
    gen_catalog(seed, &st->cat);
    service_config_default(&st->cfg);
    gen_config(seed, &st->cfg.engine);
    st->cfg.engine.max_accounts = 2000;
    st->cfg.engine.max_orders = 20000;
    st->cfg.engine.max_orders_per_market = 20000;
    st->cfg.engine.max_segments = 200000;
    st->cfg.history_orders = 512; /* small: eviction happens */
    st->cfg.fills = 1024;
    st->cfg.max_keys = 64;
    st->cfg.feed_events = 1u << 14;
    st->cfg.clock_sim = true;
    st->g = gen_create(seed, &st->cat);
    st->rng = seed * 7919;
}

/* Next command as the wire carries it: the generator's engine command
 * plus service fields (names, some client_order_ids, some key adds). */
static bool stream_next(stream *st, wire_cmd *w)
{
    memset(w, 0, sizeof *w);
    uint64_t r = gen_splitmix64(&st->rng);
    if (r % 50 == 0 && st->accounts > 0 && st->n_keys < 64) {
        w->type = WIRE_CMD_ADD_KEY;
        w->account = (uint32_t)(r >> 8) % st->accounts + 1;
        for (int i = 0; i < WIRE_KEY_HASH_LEN; i++)
            w->key_hash[i] = (uint8_t)gen_splitmix64(&st->rng);
        w->key_hash[0] |= 1;
        st->n_keys++;
        return true;
    }
    matcher_cmd c;
    gen_next(st->g, &c);
    w->type = c.type;
    w->side = c.side;
    w->tif = c.tif;
    w->single_provider = c.single_provider;
    w->market = c.market;
    w->account = c.account;
    w->roles = c.roles;
    w->order_id = c.order_id;
    w->price_micros = c.price_micros;
    w->amount_micros = c.amount_micros;
    w->qty = c.qty;
    w->min_qty = c.min_qty;
    w->min_hours = c.min_hours;
    w->start_hour = c.start_hour;
    w->end_hour = c.end_hour;
    w->expire_at_hour = c.expire_at_hour;
    w->clock_hour = c.clock_hour;
    if (c.type == MATCHER_CMD_CREATE_ACCOUNT)
        snprintf(w->name, sizeof w->name, "acct-%u", ++st->accounts);
    if (c.type == MATCHER_CMD_NEW_ORDER && r % 3 == 0)
        /* ids repeat now and then: the duplicate path */
        snprintf(w->client_order_id, sizeof w->client_order_id, "c%u-%u",
                 c.account, (unsigned)((r >> 16) % 4000));
    /* only what the decoder accepts reaches the service: the generator
     * also makes commands with fields their type does not use */
    uint8_t buf[512];
    wire_hdr h = {WIRE_MAGIC, WIRE_VERSION, WIRE_KIND_CMD, sizeof *w, 1};
    memcpy(buf, &h, sizeof h);
    memcpy(buf + sizeof h, w, sizeof *w);
    wire_cmd d;
    char err[160];
    return wire_decode_cmd(buf, sizeof h + sizeof *w, &d, err, sizeof err) == 0;
}

static void observe(stream *st, const service *s, const service_result *res)
{
    for (uint64_t p = res->ev_pos; p < res->ev_pos + res->ev_count; p++) {
        matcher_event ev;
        assert_int_equal(wire_event_to_engine(service_event_at(s, p), &ev), 0);
        gen_observe(st->g, &ev);
    }
}

static void assert_same_service(const service *a, const service *b)
{
    assert_int_equal(service_seq(a), service_seq(b));
    assert_int_equal(matcher_state_hash(service_engine(a)),
                     matcher_state_hash(service_engine(b)));
    uint8_t *ba, *bb;
    size_t la, lb;
    assert_int_equal(service_save(a, &ba, &la), 0);
    assert_int_equal(service_save(b, &bb, &lb), 0);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    free(ba);
    free(bb);
}

static void run_seed(uint64_t seed, uint32_t n_cmds)
{
    stream st;
    stream_init(&st, seed);
    char err[256];
    service *live = service_create(&st.cat, &st.cfg, err, sizeof err);
    assert_non_null(live);
    wire_cmd *journal = calloc(n_cmds + 1, sizeof *journal);
    uint64_t dup = 0, conflict = 0, accepted = 0, snap_seq = 0;
    uint8_t *eng_blob = NULL, *svc_blob = NULL;
    size_t eng_len = 0, svc_len = 0;
    for (uint32_t i = 0; i < n_cmds; i++) {
        wire_cmd w, stamped;
        if (!stream_next(&st, &w))
            continue;
        service_result res;
        service_submit(live, &w, 0, false, &res, &stamped);
        dup += res.status == WIRE_ST_DUPLICATE;
        conflict += res.status == WIRE_ST_CONFLICT;
        if (res.seq) {
            assert_int_equal(res.seq, ++accepted);
            journal[res.seq] = stamped;
            observe(&st, live, &res);
        }
        if (i == n_cmds / 2) { /* the snapshot point */
            snap_seq = service_seq(live);
            assert_int_equal(matcher_save(service_engine(live), &eng_blob, &eng_len), 0);
            assert_int_equal(service_save(live, &svc_blob, &svc_len), 0);
        }
    }
    printf("# seed %llu: %llu commands accepted, %llu duplicates, %llu conflicts, snapshot at %llu\n",
           (unsigned long long)seed, (unsigned long long)accepted,
           (unsigned long long)dup, (unsigned long long)conflict,
           (unsigned long long)snap_seq);
    assert_true(accepted > n_cmds / 4);
    assert_true(dup > 0);

    /* journal-only replay */
    service *fresh = service_create(&st.cat, &st.cfg, err, sizeof err);
    for (uint64_t s = 1; s <= accepted; s++)
        if (service_replay(fresh, s, &journal[s], err, sizeof err) != 0)
            fail_msg("replay %llu: %s", (unsigned long long)s, err);
    assert_same_service(live, fresh);
    assert_int_equal(matcher_check(service_engine(fresh), err, sizeof err), 0);

    /* snapshot + journal replay */
    service *snap = service_load(&st.cat, &st.cfg, eng_blob, eng_len, svc_blob,
                                 svc_len, err, sizeof err);
    if (!snap)
        fail_msg("load: %s", err);
    assert_int_equal(service_seq(snap), snap_seq);
    for (uint64_t s = snap_seq + 1; s <= accepted; s++)
        if (service_replay(snap, s, &journal[s], err, sizeof err) != 0)
            fail_msg("replay after snapshot %llu: %s", (unsigned long long)s, err);
    assert_same_service(live, snap);

    /* a journal that does not fit: replaying a command twice is refused */
    assert_int_equal(service_replay(fresh, accepted, &journal[accepted], err, sizeof err), -1);
    /* a snapshot made with other limits is refused */
    service_config other = st.cfg;
    other.fills *= 2;
    assert_null(service_load(&st.cat, &other, eng_blob, eng_len, svc_blob, svc_len,
                             err, sizeof err));
    free(eng_blob);
    free(svc_blob);
    free(journal);
    service_destroy(live);
    service_destroy(fresh);
    service_destroy(snap);
    gen_destroy(st.g);
}

static void test_snapshot_plus_journal_equals_replay(void **state)
{
    (void)state;
    uint32_t n = 30000 / (uint32_t)scale();
    for (uint64_t seed = 1; seed <= 3; seed++)
        run_seed(seed, n);
}

/* ---- targeted behaviour ---------------------------------------------------- */

static service *small_service(void)
{
    matcher_catalog cat;
    char err[256];
    memset(&cat, 0, sizeof cat);
    assert_int_equal(matcher_catalog_add(&cat, "H100", "us-east", 8, 100), 0);
    service_config cfg;
    service_config_default(&cfg);
    cfg.engine.max_accounts = 16;
    cfg.engine.max_orders = 8;
    cfg.engine.max_orders_per_market = 8;
    cfg.engine.max_segments = 10000;
    cfg.history_orders = 4;
    cfg.fills = 16;
    cfg.max_keys = 2;
    cfg.feed_events = 64;
    cfg.clock_sim = true;
    service *s = service_create(&cat, &cfg, err, sizeof err);
    assert_non_null(s);
    return s;
}

static service_result submit(service *s, wire_cmd c)
{
    service_result res;
    wire_cmd stamped;
    service_submit(s, &c, 0, false, &res, &stamped);
    return res;
}

static wire_cmd account_cmd(const char *name, uint32_t roles)
{
    wire_cmd c;
    memset(&c, 0, sizeof c);
    c.type = MATCHER_CMD_CREATE_ACCOUNT;
    c.roles = roles;
    snprintf(c.name, sizeof c.name, "%s", name);
    return c;
}

static wire_cmd order_cmd(uint32_t acct, uint8_t side, int32_t qty, int64_t price,
                          const char *coid)
{
    wire_cmd c;
    memset(&c, 0, sizeof c);
    c.type = MATCHER_CMD_NEW_ORDER;
    c.account = acct;
    c.side = side;
    c.qty = qty;
    c.price_micros = price;
    c.start_hour = 10;
    c.end_hour = 12;
    if (coid)
        snprintf(c.client_order_id, sizeof c.client_order_id, "%s", coid);
    return c;
}

static uint16_t query(service *s, const wire_query *q, wire_item *items,
                      uint16_t *types, size_t cap, size_t *n)
{
    static uint8_t buf[SERVICE_REPLY_MAX];
    size_t len = service_query(s, q, buf, sizeof buf);
    wire_reply r;
    wire_reader rd;
    char err[160];
    assert_int_equal(wire_decode_reply(buf, len, &r, &rd, err, sizeof err), 0);
    *n = 0;
    int k;
    while (*n < cap && (k = wire_reader_next(&rd, &types[*n], &items[*n], err, sizeof err)) == 1)
        (*n)++;
    return r.status;
}

/* A cancel or replace may name its order by client_order_id: the service
 * resolves it to the order id (the stamped, journaled command carries the
 * id and no name), per account; an unknown name is the engine's unknown
 * order; a closed order is a conflict, as by id. */
static void test_cancel_replace_by_client_order_id(void **state)
{
    (void)state;
    service *s = small_service();
    assert_int_equal(submit(s, account_cmd("buyer", MATCHER_ROLE_BUYER)).status, WIRE_ST_OK);
    assert_int_equal(submit(s, account_cmd("seller", MATCHER_ROLE_PROVIDER)).status, WIRE_ST_OK);
    service_result a = submit(s, order_cmd(2, MATCHER_SELL, 16, 1000000, "ask-1"));
    service_result b = submit(s, order_cmd(2, MATCHER_SELL, 16, 2000000, "ask-2"));
    assert_int_equal(a.status, WIRE_ST_OK);
    assert_int_equal(b.status, WIRE_ST_OK);

    wire_cmd rp, stamped;
    service_result res;
    memset(&rp, 0, sizeof rp);
    rp.type = MATCHER_CMD_REPLACE;
    rp.account = 2;
    rp.price_micros = 1500000;
    snprintf(rp.client_order_id, sizeof rp.client_order_id, "ask-2");
    uint64_t seq_before = service_seq(s);
    service_submit(s, &rp, 0, false, &res, &stamped);
    assert_int_equal(res.status, WIRE_ST_OK);
    assert_int_equal(res.order_id, b.order_id);
    assert_int_equal(stamped.order_id, b.order_id);
    assert_int_equal(stamped.client_order_id[0], 0);
    assert_int_equal(service_seq(s), seq_before + 1);
    char err[160];
    wire_cmd back;
    uint8_t buf[sizeof(wire_hdr) + sizeof stamped];
    size_t len = wire_encode_cmd(buf, sizeof buf, &stamped); /* journal-valid */
    assert_true(len > 0);
    assert_int_equal(wire_decode_cmd(buf, len, &back, err, sizeof err), 0);

    /* another account's name is not ours: unknown order, nothing changes */
    wire_cmd cx;
    memset(&cx, 0, sizeof cx);
    cx.type = MATCHER_CMD_CANCEL;
    cx.account = 1;
    snprintf(cx.client_order_id, sizeof cx.client_order_id, "ask-1");
    seq_before = service_seq(s);
    res = submit(s, cx);
    assert_int_equal(res.status, WIRE_ST_REJECTED);
    assert_int_equal(res.reason, MATCHER_REJ_UNKNOWN_ORDER);
    assert_int_equal(res.rejected.type, MATCHER_EV_REJECTED);
    assert_int_equal(service_seq(s), seq_before);
    snprintf(cx.client_order_id, sizeof cx.client_order_id, "never");
    cx.account = 2;
    assert_int_equal(submit(s, cx).status, WIRE_ST_REJECTED);

    /* ours: cancelled; cancelling again is a conflict (closed), by name */
    snprintf(cx.client_order_id, sizeof cx.client_order_id, "ask-1");
    res = submit(s, cx);
    assert_int_equal(res.status, WIRE_ST_OK);
    assert_int_equal(res.order_id, a.order_id);
    res = submit(s, cx);
    assert_int_equal(res.status, WIRE_ST_CONFLICT);
    assert_int_equal(res.order_id, a.order_id);
    service_destroy(s);
}

static void test_orders_history_and_feed(void **state)
{
    (void)state;
    service *s = small_service();
    assert_int_equal(submit(s, account_cmd("buyer", MATCHER_ROLE_BUYER)).status, WIRE_ST_OK);
    assert_int_equal(submit(s, account_cmd("seller", MATCHER_ROLE_PROVIDER)).status, WIRE_ST_OK);
    assert_int_equal(submit(s, account_cmd("buyer", MATCHER_ROLE_BUYER)).status,
                     WIRE_ST_CONFLICT); /* names are unique */
    wire_cmd dep;
    memset(&dep, 0, sizeof dep);
    dep.type = MATCHER_CMD_DEPOSIT;
    dep.account = 1;
    dep.amount_micros = 1000000000;
    assert_int_equal(submit(s, dep).status, WIRE_ST_OK);

    /* client_order_id: the second submission returns the first order */
    service_result a = submit(s, order_cmd(2, MATCHER_SELL, 16, 1000000, "o-1"));
    assert_int_equal(a.status, WIRE_ST_OK);
    uint64_t seq_before = service_seq(s);
    service_result b = submit(s, order_cmd(2, MATCHER_SELL, 16, 1000000, "o-1"));
    assert_int_equal(b.status, WIRE_ST_DUPLICATE);
    assert_int_equal(b.order_id, a.order_id);
    assert_int_equal(service_seq(s), seq_before); /* not journaled */
    /* same id, other account: a different order */
    service_result c = submit(s, order_cmd(1, MATCHER_BUY, 8, 1000000, "o-1"));
    assert_int_equal(c.status, WIRE_ST_OK);
    assert_true(c.order_id != a.order_id);

    /* the bid traded: its record shows the fill */
    wire_item items[64];
    uint16_t types[64];
    size_t n;
    wire_query q;
    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_ORDER;
    q.order_id = c.order_id;
    assert_int_equal(query(s, &q, items, types, 64, &n), WIRE_ST_OK);
    assert_int_equal(n, 2);
    assert_int_equal(types[0], WIRE_ITEM_ORDER);
    assert_int_equal(items[0].order.status, WIRE_ORDER_FILLED);
    assert_int_equal(items[0].order.filled_qty, 8);
    assert_string_equal(items[0].order.client_order_id, "o-1");
    assert_int_equal(types[1], WIRE_ITEM_FILL);
    assert_int_equal(items[1].fill.qty, 8);

    /* cancel of the filled bid: the service knows it closed -> conflict */
    wire_cmd cancel;
    memset(&cancel, 0, sizeof cancel);
    cancel.type = MATCHER_CMD_CANCEL;
    cancel.account = 1;
    cancel.order_id = c.order_id;
    service_result cr = submit(s, cancel);
    assert_int_equal(cr.status, WIRE_ST_CONFLICT);
    assert_int_equal(cr.reason, MATCHER_REJ_UNKNOWN_ORDER);
    cancel.order_id = 999; /* never existed: plain rejection */
    assert_int_equal(submit(s, cancel).status, WIRE_ST_REJECTED);

    /* open orders of the seller: the offer, with live remaining */
    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_OPEN_ORDERS;
    q.account = 2;
    q.limit = 10;
    assert_int_equal(query(s, &q, items, types, 64, &n), WIRE_ST_OK);
    assert_int_equal(n, 1);
    assert_int_equal(items[0].order.order_id, a.order_id);
    assert_int_equal(items[0].order.remaining_qty, 8);

    /* leases for both sides, trades of the market */
    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_LEASES;
    q.account = 2;
    q.limit = 10;
    assert_int_equal(query(s, &q, items, types, 64, &n), WIRE_ST_OK);
    assert_int_equal(n, 1);
    q.account = 1;
    assert_int_equal(query(s, &q, items, types, 64, &n), WIRE_ST_OK);
    assert_int_equal(n, 1);
    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_TRADES;
    q.limit = 10;
    assert_int_equal(query(s, &q, items, types, 64, &n), WIRE_ST_OK);
    assert_int_equal(n, 1);

    /* quote: buying 8 more of the window gets the offer's price */
    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_QUOTE;
    q.side = MATCHER_BUY;
    q.qty = 16;
    q.start_hour = 10;
    q.end_hour = 12;
    assert_int_equal(query(s, &q, items, types, 64, &n), WIRE_ST_OK);
    assert_int_equal(items[0].quote.fillable_qty, 8);
    assert_int_equal(items[0].quote.avg_price_micros, 1000000);
    assert_int_equal(items[0].quote.notional_micros, 1000000LL * 8 * 2);

    /* history eviction: many ioc orders close; old closed records go, the
     * open offer stays findable, and an evicted coid can be used again */
    for (int i = 0; i < 20; i++) {
        char id[16];
        snprintf(id, sizeof id, "x-%d", i);
        wire_cmd o = order_cmd(1, MATCHER_BUY, 8, 100, id);
        o.tif = MATCHER_IOC;
        assert_int_equal(submit(s, o).status, WIRE_ST_OK);
    }
    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_ORDER;
    q.order_id = c.order_id;
    assert_int_equal(query(s, &q, items, types, 64, &n), WIRE_ST_NOT_FOUND);
    q.order_id = a.order_id;
    assert_int_equal(query(s, &q, items, types, 64, &n), WIRE_ST_OK);
    wire_cmd again = order_cmd(1, MATCHER_BUY, 8, 100, "x-0");
    again.tif = MATCHER_IOC;
    assert_int_equal(submit(s, again).status, WIRE_ST_OK);

    /* feed: everything after a cursor, in (seq, index) order */
    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_FEED;
    q.after = service_seq(s) - 3;
    q.after_index = UINT32_MAX;
    q.limit = 64;
    assert_int_equal(query(s, &q, items, types, 64, &n), WIRE_ST_OK);
    assert_true(n > 3);
    assert_int_equal(items[0].event.seq, service_seq(s) - 2);
    assert_int_equal(items[n - 1].event.seq, service_seq(s));
    assert_int_equal(items[0].event.index, 0);
    for (size_t i = 1; i < n; i++) {
        const wire_event *p = &items[i - 1].event, *e = &items[i].event;
        assert_true(e->seq > p->seq || (e->seq == p->seq && e->index == p->index + 1));
    }
    /* the ring holds 64 events: asking from the start is now a gap */
    q.after = 0;
    q.after_index = 0;
    assert_int_equal(query(s, &q, items, types, 64, &n), WIRE_ST_FEED_GAP);

    /* keys: account must exist, hashes unique, table bounded */
    wire_cmd k;
    memset(&k, 0, sizeof k);
    k.type = WIRE_CMD_ADD_KEY;
    k.account = 9;
    k.key_hash[0] = 1;
    assert_int_equal(submit(s, k).status, WIRE_ST_NOT_FOUND);
    k.account = 1;
    assert_int_equal(submit(s, k).status, WIRE_ST_OK);
    assert_int_equal(submit(s, k).status, WIRE_ST_CONFLICT);
    k.key_hash[0] = 2;
    assert_int_equal(submit(s, k).status, WIRE_ST_OK);
    k.key_hash[0] = 3;
    assert_int_equal(submit(s, k).status, WIRE_ST_UNAVAILABLE);
    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_KEYS;
    q.limit = 10;
    assert_int_equal(query(s, &q, items, types, 64, &n), WIRE_ST_OK);
    assert_int_equal(n, 2);
    assert_int_equal(items[0].key.roles, MATCHER_ROLE_BUYER);

    /* accounts: the fee account first, with its name */
    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_ACCOUNTS;
    q.limit = 10;
    assert_int_equal(query(s, &q, items, types, 64, &n), WIRE_ST_OK);
    assert_int_equal(n, 3);
    assert_string_equal(items[0].account.name, "exchange");
    assert_string_equal(items[2].account.name, "seller");
    service_destroy(s);
}

static void test_wall_clock_rules(void **state)
{
    (void)state;
    matcher_catalog cat;
    char err[256];
    memset(&cat, 0, sizeof cat);
    assert_int_equal(matcher_catalog_add(&cat, "H100", "us-east", 8, 100), 0);
    service_config cfg;
    service_config_default(&cfg);
    cfg.engine.max_accounts = 4;
    cfg.engine.max_orders = 4;
    cfg.engine.max_orders_per_market = 4;
    cfg.engine.max_segments = 10000;
    cfg.history_orders = 4;
    cfg.fills = 16;
    cfg.feed_events = 16;
    service *s = service_create(&cat, &cfg, err, sizeof err);
    assert_non_null(s);
    wire_cmd c;
    memset(&c, 0, sizeof c);
    c.type = MATCHER_CMD_ADVANCE_CLOCK;
    c.clock_hour = 5;
    assert_int_equal(submit(s, c).status, WIRE_ST_FORBIDDEN);
    int64_t now = 493000LL * 3600000000LL + 5;
    wire_cmd tick, stamped;
    assert_true(service_clock_due(s, now, &tick));
    assert_int_equal(tick.clock_hour, 493000);
    service_result res;
    service_submit(s, &tick, now, true, &res, &stamped);
    assert_int_equal(res.status, WIRE_ST_OK);
    assert_int_equal(stamped.ts_us, now);
    assert_false(service_clock_due(s, now + 1000, &tick));
    service_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_orders_history_and_feed),
        cmocka_unit_test(test_cancel_replace_by_client_order_id),
        cmocka_unit_test(test_wall_clock_rules),
        cmocka_unit_test(test_snapshot_plus_journal_equals_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
