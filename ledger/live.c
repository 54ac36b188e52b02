/* live.c — `gpux-ledger check --cmd ADDR`: compares the ledger with the
 * running matcher itself, not only with the BALANCE events it recorded.
 *
 * Why: the recorded-balance check proves the ledger agrees with what the
 * matcher said; this one proves it agrees with what the matcher holds now.
 * Both must be at the same sequence for the comparison to mean anything,
 * so it runs only when the matcher's last seq equals the ledger's position
 * (otherwise it says so and skips). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "gpux_assert.h"
#include "gpux_wire.h"
#include "ledger/ledger.h"
#include "ledger/plan.h"

#define LIVE_TIMEOUT_MS 5000
#define LIVE_MAX_PAGES 1000 /* 1000 x 1000 accounts: above any configured limit */

/* One query round trip; *reply is nng-allocated (caller frees). */
static int ask(nng_socket s, const wire_query *q, void **reply, size_t *len, char *err,
               size_t errlen)
{
    uint8_t qbuf[sizeof(wire_hdr) + sizeof(wire_query)];
    size_t qlen = wire_encode_query(qbuf, sizeof qbuf, q);
    GPUX_ASSERT(qlen > 0);
    int rv = nng_send(s, qbuf, qlen, 0);
    if (rv == 0) rv = nng_recv(s, reply, len, NNG_FLAG_ALLOC);
    if (rv != 0) snprintf(err, errlen, "matcher: %s", nng_strerror(rv));
    return rv == 0 ? 0 : -1;
}

static int matcher_seq(nng_socket s, uint64_t *seq, char *err, size_t errlen)
{
    wire_query q;
    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_STATUS;
    void *buf = NULL;
    size_t len = 0;
    if (ask(s, &q, &buf, &len, err, errlen) != 0) return -1;
    wire_reply rep;
    wire_reader rd;
    int rc = wire_decode_reply(buf, len, &rep, &rd, err, errlen);
    if (rc == 0 && rep.status != WIRE_ST_OK) {
        snprintf(err, errlen, "matcher STATUS: %s", wire_status_name(rep.status));
        rc = -1;
    }
    if (rc == 0) *seq = rep.seq;
    nng_free(buf, len);
    return rc;
}

/* Pages through ACCOUNTS, appending ids and balances to the arrays. */
static int matcher_balances(nng_socket s, ledger_buf *ids, ledger_buf *bals, uint64_t *seq_seen,
                            uint32_t *count, char *err, size_t errlen)
{
    uint32_t after = 0;
    *count = 0;
    for (int page = 0; page < LIVE_MAX_PAGES; page++) {
        wire_query q;
        memset(&q, 0, sizeof q);
        q.type = WIRE_Q_ACCOUNTS;
        q.after = after;
        q.limit = WIRE_MAX_QUERY_LIMIT;
        void *buf = NULL;
        size_t len = 0;
        if (ask(s, &q, &buf, &len, err, errlen) != 0) return -1;
        wire_reply rep;
        wire_reader rd;
        int rc = wire_decode_reply(buf, len, &rep, &rd, err, errlen);
        if (rc == 0 && rep.status != WIRE_ST_OK) {
            snprintf(err, errlen, "matcher ACCOUNTS: %s", wire_status_name(rep.status));
            rc = -1;
        }
        if (rc == 0 && rep.seq != *seq_seen) {
            snprintf(err, errlen, "the matcher moved (seq %" PRIu64 " -> %" PRIu64 ") during the check",
                     *seq_seen, rep.seq);
            rc = -1;
        }
        uint32_t got = 0;
        uint16_t type;
        wire_item item;
        int more = rc == 0 ? 1 : -1;
        while (more == 1 && (more = wire_reader_next(&rd, &type, &item, err, errlen)) == 1) {
            if (type != WIRE_ITEM_ACCOUNT) continue;
            ledger_buf_printf(ids, "%s%u", ids->len ? "," : "{", item.account.account);
            ledger_buf_printf(bals, "%s%" PRId64, bals->len ? "," : "{", item.account.balance_micros);
            after = item.account.account + 1;
            got++;
        }
        nng_free(buf, len);
        if (rc < 0 || more < 0) return -1;
        *count += got;
        if (got < WIRE_MAX_QUERY_LIMIT) {
            ledger_buf_printf(ids, "%s}", ids->len ? "" : "{");
            ledger_buf_printf(bals, "%s}", bals->len ? "" : "{");
            return 0;
        }
    }
    snprintf(err, errlen, "more than %d pages of accounts", LIVE_MAX_PAGES);
    return -1;
}

static ledger_status compare(ledger_db *db, nng_socket s, uint64_t seq, FILE *out, char *err,
                             size_t errlen)
{
    ledger_buf ids, bals, sql;
    size_t limit = 64u << 20;
    ledger_buf_init(&ids, 4096, limit);
    ledger_buf_init(&bals, 4096, limit);
    ledger_buf_init(&sql, 4096, 3 * limit);
    uint32_t count = 0;
    ledger_status st = LEDGER_OK;
    if (matcher_balances(s, &ids, &bals, &seq, &count, err, errlen) != 0) {
        st = LEDGER_ERR_DB;
    } else {
        /* only digits, commas and braces: safe to inline */
        ledger_buf_printf(&sql,
            "SELECT count(*) FROM unnest('%s'::bigint[], '%s'::bigint[]) AS m(id, bal)"
            " FULL JOIN (SELECT account_id, balance_micros FROM ledger_accounts WHERE account_id >= 0) l"
            " ON l.account_id = m.id"
            " WHERE m.id IS NULL OR l.account_id IS NULL OR m.bal <> l.balance_micros", ids.p, bals.p);
        int64_t bad = 0;
        st = ledger_db_query_i64(db, sql.p, &bad, err, errlen);
        if (st == LEDGER_OK) {
            fprintf(out, "%s ledger = live matcher at seq %" PRIu64 ": every balance equals the "
                         "matcher's (%u accounts)%s\n",
                    bad ? "FAIL" : "ok  ", seq, count, bad ? " -- NOT EQUAL" : "");
            if (bad) {
                snprintf(err, errlen, "%" PRId64 " accounts differ from the live matcher", bad);
                st = LEDGER_ERR_INVALID;
            }
        }
    }
    ledger_buf_free(&ids);
    ledger_buf_free(&bals);
    ledger_buf_free(&sql);
    return st;
}

ledger_status ledger_check_live(ledger_db *db, const char *cmd_addr, FILE *out, char *err,
                                size_t errlen)
{
    nng_socket s;
    int rv = nng_req0_open(&s);
    if (rv == 0) rv = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, LIVE_TIMEOUT_MS);
    if (rv == 0) rv = nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, LIVE_TIMEOUT_MS);
    if (rv == 0) rv = nng_dial(s, cmd_addr, NULL, 0);
    if (rv != 0) {
        snprintf(err, errlen, "matcher %s: %s", cmd_addr, nng_strerror(rv));
        nng_close(s);
        return LEDGER_ERR_DB;
    }
    uint64_t mseq = 0, pos = 0;
    ledger_status st = LEDGER_OK;
    if (matcher_seq(s, &mseq, err, errlen) != 0) st = LEDGER_ERR_DB;
    if (st == LEDGER_OK) st = ledger_db_position(db, &pos, NULL, err, errlen);
    if (st == LEDGER_OK && mseq != pos)
        fprintf(out, "skip ledger = live matcher: matcher at seq %" PRIu64 ", ledger at %" PRIu64
                     " (not the same sequence; run again when the ledger has caught up)\n", mseq, pos);
    else if (st == LEDGER_OK)
        st = compare(db, s, mseq, out, err, errlen);
    nng_close(s);
    return st;
}
