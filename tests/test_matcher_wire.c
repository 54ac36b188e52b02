/* test_matcher_wire.c — the wire codec: round trips, and that every kind of
 * malformed or truncated message is refused with a reason (never accepted,
 * never a crash). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "gpux_wire.h"

static wire_cmd new_order(void)
{
    wire_cmd c;
    memset(&c, 0, sizeof c);
    c.type = MATCHER_CMD_NEW_ORDER;
    c.side = MATCHER_BUY;
    c.tif = MATCHER_GTC;
    c.market = 3;
    c.account = 7;
    c.price_micros = 2350000;
    c.qty = 64;
    c.min_qty = 16;
    c.start_hour = 500000;
    c.end_hour = 500168;
    strcpy(c.client_order_id, "my-42");
    return c;
}

static int decode_cmd(const uint8_t *buf, size_t len, wire_cmd *out)
{
    char err[160];
    err[0] = 0;
    int rc = wire_decode_cmd(buf, len, out, err, sizeof err);
    if (rc < 0)
        assert_true(strlen(err) > 0); /* always a reason */
    return rc;
}

static void test_cmd_round_trip(void **state)
{
    (void)state;
    uint8_t buf[512];
    wire_cmd c = new_order(), d;
    size_t n = wire_encode_cmd(buf, sizeof buf, &c);
    assert_int_equal(n, sizeof(wire_hdr) + sizeof(wire_cmd));
    assert_int_equal(decode_cmd(buf, n, &d), 0);
    assert_memory_equal(&c, &d, sizeof c);
    /* a buffer too small is refused by the encoder, not overrun */
    assert_int_equal(wire_encode_cmd(buf, n - 1, &c), 0);
    /* conversion to the engine keeps every engine field */
    matcher_cmd mc;
    wire_cmd_to_engine(&c, &mc);
    assert_int_equal(mc.qty, 64);
    assert_int_equal(mc.min_qty, 16);
    assert_int_equal(mc.end_hour, 500168);
    assert_int_equal(mc.price_micros, 2350000);
}

static void test_cmd_truncated_and_bad_header(void **state)
{
    (void)state;
    uint8_t buf[512];
    wire_cmd c = new_order(), d;
    size_t n = wire_encode_cmd(buf, sizeof buf, &c);
    for (size_t len = 0; len < n; len++)
        assert_int_equal(decode_cmd(buf, len, &d), -1);
    uint8_t big[600];
    memcpy(big, buf, n);
    big[n] = 0;
    assert_int_equal(decode_cmd(big, n + 1, &d), -1); /* trailing byte */
    uint8_t bad[512];
    /* magic, version, kind, body_len, count */
    size_t offs[] = {0, 4, 6, 8, 12};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        memcpy(bad, buf, n);
        bad[offs[i]] ^= 0x5a;
        assert_int_equal(decode_cmd(bad, n, &d), -1);
    }
    assert_int_equal(decode_cmd(NULL, 0, &d), -1);
}

static void test_cmd_field_rules(void **state)
{
    (void)state;
    uint8_t buf[512];
    wire_cmd d;
    wire_cmd c;

    /* a field the type does not use */
    memset(&c, 0, sizeof c);
    c.type = MATCHER_CMD_DEPOSIT;
    c.account = 1;
    c.amount_micros = 5;
    size_t n = sizeof(wire_hdr) + sizeof c;
    wire_hdr h = {WIRE_MAGIC, WIRE_VERSION, WIRE_KIND_CMD, sizeof c, 1};
    memcpy(buf, &h, sizeof h);
    memcpy(buf + sizeof h, &c, sizeof c);
    assert_int_equal(decode_cmd(buf, n, &d), 0);
    c.qty = 8;
    memcpy(buf + sizeof h, &c, sizeof c);
    assert_int_equal(decode_cmd(buf, n, &d), -1);

    /* unknown type, reserved, negative ts */
    c = new_order();
    c.type = 99;
    memcpy(buf + sizeof h, &c, sizeof c);
    assert_int_equal(decode_cmd(buf, n, &d), -1);
    c = new_order();
    c.reserved = 1;
    memcpy(buf + sizeof h, &c, sizeof c);
    assert_int_equal(decode_cmd(buf, n, &d), -1);
    c = new_order();
    c.ts_us = -1;
    memcpy(buf + sizeof h, &c, sizeof c);
    assert_int_equal(decode_cmd(buf, n, &d), -1);

    /* client_order_id: no terminator, garbage after NUL, a space */
    c = new_order();
    memset(c.client_order_id, 'x', WIRE_CLIENT_ID_LEN);
    memcpy(buf + sizeof h, &c, sizeof c);
    assert_int_equal(decode_cmd(buf, n, &d), -1);
    c = new_order();
    c.client_order_id[20] = 'z';
    memcpy(buf + sizeof h, &c, sizeof c);
    assert_int_equal(decode_cmd(buf, n, &d), -1);
    c = new_order();
    c.client_order_id[1] = ' ';
    memcpy(buf + sizeof h, &c, sizeof c);
    assert_int_equal(decode_cmd(buf, n, &d), -1);

    /* cancel / replace: exactly one of order_id and client_order_id */
    memset(&c, 0, sizeof c);
    c.type = MATCHER_CMD_CANCEL;
    c.account = 1;
    memcpy(buf + sizeof h, &c, sizeof c);
    assert_int_equal(decode_cmd(buf, n, &d), -1); /* neither */
    c.order_id = 7;
    strcpy(c.client_order_id, "my-42");
    memcpy(buf + sizeof h, &c, sizeof c);
    assert_int_equal(decode_cmd(buf, n, &d), -1); /* both */
    c.order_id = 0;
    memcpy(buf + sizeof h, &c, sizeof c);
    assert_int_equal(decode_cmd(buf, n, &d), 0);  /* by name */
    c.type = MATCHER_CMD_REPLACE;
    c.price_micros = 5;
    memcpy(buf + sizeof h, &c, sizeof c);
    assert_int_equal(decode_cmd(buf, n, &d), 0);
    memset(c.client_order_id, 0, sizeof c.client_order_id);
    c.order_id = 7;
    memcpy(buf + sizeof h, &c, sizeof c);
    assert_int_equal(decode_cmd(buf, n, &d), 0);  /* by id */

    /* names: empty, control char, leading space; fine name passes */
    memset(&c, 0, sizeof c);
    c.type = MATCHER_CMD_CREATE_ACCOUNT;
    c.roles = MATCHER_ROLE_BUYER;
    memcpy(buf + sizeof h, &c, sizeof c);
    assert_int_equal(decode_cmd(buf, n, &d), -1);
    strcpy(c.name, "acme\n");
    memcpy(buf + sizeof h, &c, sizeof c);
    assert_int_equal(decode_cmd(buf, n, &d), -1);
    memset(c.name, 0, sizeof c.name);
    strcpy(c.name, " acme");
    memcpy(buf + sizeof h, &c, sizeof c);
    assert_int_equal(decode_cmd(buf, n, &d), -1);
    memset(c.name, 0, sizeof c.name);
    strcpy(c.name, "Acme Cloud");
    memcpy(buf + sizeof h, &c, sizeof c);
    assert_int_equal(decode_cmd(buf, n, &d), 0);

    /* ADD_KEY needs a hash */
    memset(&c, 0, sizeof c);
    c.type = WIRE_CMD_ADD_KEY;
    c.account = 1;
    memcpy(buf + sizeof h, &c, sizeof c);
    assert_int_equal(decode_cmd(buf, n, &d), -1);
    c.key_hash[31] = 1;
    memcpy(buf + sizeof h, &c, sizeof c);
    assert_int_equal(decode_cmd(buf, n, &d), 0);
}

static void test_cmd_batch(void **state)
{
    (void)state;
    static wire_cmd cmds[WIRE_MAX_BATCH_CMDS + 1], out[WIRE_MAX_BATCH_CMDS];
    static uint8_t buf[sizeof(wire_hdr) + (WIRE_MAX_BATCH_CMDS + 1) * sizeof(wire_cmd)];
    for (uint32_t i = 0; i <= WIRE_MAX_BATCH_CMDS; i++) {
        cmds[i] = new_order();
        cmds[i].qty = 8 * (int32_t)(i + 1);
    }
    char err[160];
    uint32_t n = 0;
    size_t len = wire_encode_cmds(buf, sizeof buf, cmds, 3);
    assert_int_equal(len, sizeof(wire_hdr) + 3 * sizeof(wire_cmd));
    assert_int_equal(wire_decode_cmds(buf, len, out, WIRE_MAX_BATCH_CMDS, &n, err, sizeof err), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(out, cmds, 3 * sizeof(wire_cmd));
    /* a batch is not a single command */
    assert_int_equal(decode_cmd(buf, len, out), -1);
    /* more than the caller can hold, a short body, one bad command */
    assert_int_equal(wire_decode_cmds(buf, len, out, 2, &n, err, sizeof err), -1);
    assert_int_equal(wire_decode_cmds(buf, len - 1, out, 8, &n, err, sizeof err), -1);
    buf[sizeof(wire_hdr) + sizeof(wire_cmd) + offsetof(wire_cmd, reserved)] = 1;
    assert_int_equal(wire_decode_cmds(buf, len, out, 8, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "command 1"));
    /* the limit: WIRE_MAX_BATCH_CMDS passes, one more does not */
    len = wire_encode_cmds(buf, sizeof buf, cmds, WIRE_MAX_BATCH_CMDS);
    assert_int_equal(wire_decode_cmds(buf, len, out, WIRE_MAX_BATCH_CMDS, &n, err, sizeof err), 0);
    wire_hdr h = {WIRE_MAGIC, WIRE_VERSION, WIRE_KIND_CMD,
                  (WIRE_MAX_BATCH_CMDS + 1) * sizeof(wire_cmd), WIRE_MAX_BATCH_CMDS + 1};
    memcpy(buf, &h, sizeof h);
    memcpy(buf + sizeof h, cmds, (WIRE_MAX_BATCH_CMDS + 1) * sizeof(wire_cmd));
    assert_int_equal(wire_decode_cmds(buf, sizeof buf, out, WIRE_MAX_BATCH_CMDS, &n, err,
                                      sizeof err), -1);
}

static int decode_query(const wire_query *q)
{
    uint8_t buf[256];
    wire_hdr h = {WIRE_MAGIC, WIRE_VERSION, WIRE_KIND_QUERY, sizeof *q, 1};
    memcpy(buf, &h, sizeof h);
    memcpy(buf + sizeof h, q, sizeof *q);
    wire_query d;
    char err[160];
    int rc = wire_decode_query(buf, sizeof h + sizeof *q, &d, err, sizeof err);
    if (rc == 0)
        assert_memory_equal(&d, q, sizeof d);
    return rc;
}

static void test_query_rules(void **state)
{
    (void)state;
    wire_query q;
    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_FEED;
    q.after = 10;
    q.limit = 100;
    assert_int_equal(decode_query(&q), 0);
    q.limit = 0;
    assert_int_equal(decode_query(&q), -1);
    q.limit = WIRE_MAX_FEED_EVENTS + 1;
    assert_int_equal(decode_query(&q), -1);
    q.limit = 10;
    q.market = 1; /* not used by FEED */
    assert_int_equal(decode_query(&q), -1);
    q.market = 0;
    q.flags = WIRE_QF_OBSERVER;
    assert_int_equal(decode_query(&q), 0);
    q.flags = WIRE_QF_STATE_HASH; /* a STATUS flag */
    assert_int_equal(decode_query(&q), -1);

    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_STATUS;
    assert_int_equal(decode_query(&q), 0);
    q.flags = WIRE_QF_STATE_HASH;
    assert_int_equal(decode_query(&q), 0);
    q.flags = WIRE_QF_OBSERVER; /* a FEED flag */
    assert_int_equal(decode_query(&q), -1);

    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_QUOTE;
    q.market = 0;
    q.side = MATCHER_BUY;
    q.qty = 8;
    q.start_hour = 100;
    q.end_hour = 110;
    assert_int_equal(decode_query(&q), 0);
    q.side = 3;
    assert_int_equal(decode_query(&q), -1);
    q.side = MATCHER_SELL;
    q.end_hour = 100;
    assert_int_equal(decode_query(&q), -1);
    q.end_hour = 110;
    q.qty = 0;
    assert_int_equal(decode_query(&q), -1);

    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_BOOK;
    q.limit = 10;
    assert_int_equal(decode_query(&q), 0); /* no window */
    q.start_hour = 5;
    assert_int_equal(decode_query(&q), -1); /* half a window */

    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_ORDER_BY_CLIENT_ID;
    q.account = 2;
    assert_int_equal(decode_query(&q), -1); /* coid required */
    strcpy(q.client_order_id, "abc");
    assert_int_equal(decode_query(&q), 0);

    memset(&q, 0, sizeof q);
    q.type = 0;
    assert_int_equal(decode_query(&q), -1);
    q.type = WIRE_Q_COUNT_;
    assert_int_equal(decode_query(&q), -1);
}

static void test_reply_items(void **state)
{
    (void)state;
    uint8_t buf[4096];
    wire_reply r;
    memset(&r, 0, sizeof r);
    r.status = WIRE_ST_OK;
    r.seq = 42;
    strcpy(r.detail, "fine");
    size_t n = wire_reply_begin(buf, sizeof buf, &r);
    assert_int_equal(n, WIRE_REPLY_BASE_BYTES);
    wire_event e;
    memset(&e, 0, sizeof e);
    e.seq = 42;
    e.type = MATCHER_EV_CLOCK;
    e.cmd_type = MATCHER_CMD_ADVANCE_CLOCK;
    e.hour = 77;
    n = wire_append_item(buf, sizeof buf, n, WIRE_ITEM_EVENT, &e);
    assert_true(n > 0);
    wire_account a;
    memset(&a, 0, sizeof a);
    a.account = 3;
    strcpy(a.name, "acme");
    n = wire_append_item(buf, sizeof buf, n, WIRE_ITEM_ACCOUNT, &a);
    assert_true(n > 0);
    /* no room: refused, buffer unchanged */
    assert_int_equal(wire_append_item(buf, n + 10, n, WIRE_ITEM_ACCOUNT, &a), 0);

    wire_reply d;
    wire_reader rd;
    char err[160];
    assert_int_equal(wire_decode_reply(buf, n, &d, &rd, err, sizeof err), 0);
    assert_int_equal(d.seq, 42);
    wire_item it;
    uint16_t type;
    assert_int_equal(wire_reader_next(&rd, &type, &it, err, sizeof err), 1);
    assert_int_equal(type, WIRE_ITEM_EVENT);
    assert_int_equal(it.event.hour, 77);
    assert_int_equal(wire_reader_next(&rd, &type, &it, err, sizeof err), 1);
    assert_int_equal(type, WIRE_ITEM_ACCOUNT);
    assert_string_equal(it.account.name, "acme");
    assert_int_equal(wire_reader_next(&rd, &type, &it, err, sizeof err), 0);

    /* every truncation fails somewhere: header/reply decode or an item */
    for (size_t len = 0; len < n; len++) {
        int rc = wire_decode_reply(buf, len, &d, &rd, err, sizeof err);
        if (rc == 0) {
            int k;
            while ((k = wire_reader_next(&rd, &type, &it, err, sizeof err)) == 1)
                ;
            assert_int_equal(k, -1);
        }
    }
    /* a wrong item size, an unknown event type, a bad account name */
    uint8_t bad[4096];
    memcpy(bad, buf, n);
    bad[WIRE_REPLY_BASE_BYTES + 4] ^= 1; /* item size */
    assert_int_equal(wire_decode_reply(bad, n, &d, &rd, err, sizeof err), 0);
    assert_int_equal(wire_reader_next(&rd, &type, &it, err, sizeof err), -1);
    memcpy(bad, buf, n);
    bad[WIRE_REPLY_BASE_BYTES + 8 + offsetof(wire_event, type)] = 200;
    assert_int_equal(wire_decode_reply(bad, n, &d, &rd, err, sizeof err), 0);
    assert_int_equal(wire_reader_next(&rd, &type, &it, err, sizeof err), -1);
    memcpy(bad, buf, n);
    bad[n - 1] = 'x'; /* name loses its terminator */
    assert_int_equal(wire_decode_reply(bad, n, &d, &rd, err, sizeof err), 0);
    assert_int_equal(wire_reader_next(&rd, &type, &it, err, sizeof err), 1);
    assert_int_equal(wire_reader_next(&rd, &type, &it, err, sizeof err), -1);
    /* a status out of range */
    memcpy(bad, buf, n);
    bad[sizeof(wire_hdr)] = WIRE_ST_COUNT_;
    assert_int_equal(wire_decode_reply(bad, n, &d, &rd, err, sizeof err), -1);
}

static void test_event_conversion(void **state)
{
    (void)state;
    matcher_event evs[6];
    memset(evs, 0, sizeof evs);
    evs[0].type = MATCHER_EV_TRADE;
    evs[0].cmd_type = MATCHER_CMD_NEW_ORDER;
    evs[0].ts_us = 123;
    evs[0].u.fill = (matcher_fill_info){.trade_id = 9, .buy_order_id = 4,
        .sell_order_id = 5, .buyer = 1, .provider = 2, .market = 3,
        .taker_side = MATCHER_SELL, .price_micros = 2000000, .qty = 16,
        .start_hour = 10, .end_hour = 20, .notional_micros = 320000000,
        .buyer_fee_micros = 5, .provider_fee_micros = 6, .saving_micros = 7};
    evs[1].type = MATCHER_EV_DONE;
    evs[1].cmd_type = MATCHER_CMD_CANCEL;
    evs[1].u.done.order_id = 4;
    evs[1].u.done.account = 1;
    evs[1].u.done.market = 3;
    evs[1].u.done.side = MATCHER_BUY;
    evs[1].u.done.reason = MATCHER_DONE_CANCELLED;
    evs[1].u.done.remaining_qty = 8;
    evs[2].type = MATCHER_EV_BALANCE;
    evs[2].cmd_type = MATCHER_CMD_DEPOSIT;
    evs[2].u.balance.account = 2;
    evs[2].u.balance.balance_micros = 1000;
    evs[2].u.balance.held_micros = 10;
    evs[3].type = MATCHER_EV_ACCEPTED;
    evs[3].cmd_type = MATCHER_CMD_NEW_ORDER;
    evs[3].u.order = (matcher_order_info){.order_id = 4, .account = 1,
        .market = 3, .side = MATCHER_BUY, .tif = MATCHER_IOC,
        .single_provider = 1, .qty = 16, .min_qty = 8, .price_micros = 3,
        .start_hour = 10, .end_hour = 20, .expire_at_hour = 9,
        .hold_micros = 1234};
    evs[4].type = MATCHER_EV_CLOCK;
    evs[4].cmd_type = MATCHER_CMD_ADVANCE_CLOCK;
    evs[4].u.clock.hour = 99;
    evs[5].type = MATCHER_EV_REJECTED;
    evs[5].cmd_type = MATCHER_CMD_CANCEL;
    evs[5].u.rejected.reason = MATCHER_REJ_FORBIDDEN;
    evs[5].u.rejected.order_id = 77;
    for (size_t i = 0; i < 6; i++) {
        wire_event w;
        wire_event_from_engine(&w, &evs[i], 5, (uint32_t)i);
        assert_int_equal(w.seq, 5);
        assert_int_equal(w.index, i);
        matcher_event back;
        assert_int_equal(wire_event_to_engine(&w, &back), 0);
        assert_int_equal(back.type, evs[i].type);
        assert_int_equal(back.ts_us, evs[i].ts_us);
        /* compare the union member that the type uses */
        switch (evs[i].type) {
        case MATCHER_EV_TRADE:
            assert_memory_equal(&back.u.fill, &evs[i].u.fill, sizeof back.u.fill);
            break;
        case MATCHER_EV_ACCEPTED:
            assert_memory_equal(&back.u.order, &evs[i].u.order, sizeof back.u.order);
            break;
        case MATCHER_EV_DONE:
            assert_int_equal(back.u.done.remaining_qty, 8);
            assert_int_equal(back.u.done.reason, MATCHER_DONE_CANCELLED);
            break;
        case MATCHER_EV_BALANCE:
            assert_int_equal(back.u.balance.held_micros, 10);
            break;
        case MATCHER_EV_CLOCK: assert_int_equal(back.u.clock.hour, 99); break;
        case MATCHER_EV_REJECTED:
            assert_int_equal(back.u.rejected.order_id, 77);
            break;
        }
    }
}

static void test_pub_topics(void **state)
{
    (void)state;
    uint8_t msg[64] = WIRE_PUB_TOPIC;
    size_t off = wire_pub_split(msg, sizeof msg);
    assert_int_equal(off, sizeof WIRE_PUB_TOPIC);
    size_t n = wire_pub_begin(msg + off, sizeof msg - off);
    assert_int_equal(n, sizeof(wire_hdr));
    wire_reader rd;
    char err[160];
    assert_int_equal(wire_decode_pub(msg + off, n, &rd, err, sizeof err), 0);
    uint8_t nonul[WIRE_TOPIC_MAX + 4];
    memset(nonul, 'a', sizeof nonul);
    assert_int_equal(wire_pub_split(nonul, sizeof nonul), 0);
    assert_string_equal(wire_status_name(WIRE_ST_FEED_GAP), "feed_gap");
    assert_string_equal(wire_order_status_name(WIRE_ORDER_UNFILLED), "cancelled");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cmd_round_trip),
        cmocka_unit_test(test_cmd_truncated_and_bad_header),
        cmocka_unit_test(test_cmd_field_rules),
        cmocka_unit_test(test_cmd_batch),
        cmocka_unit_test(test_query_rules),
        cmocka_unit_test(test_reply_items),
        cmocka_unit_test(test_event_conversion),
        cmocka_unit_test(test_pub_topics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
