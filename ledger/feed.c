/* feed.c — the ledger's client of the matcher's sequenced event feed
 * (nng REQ to GPUX_MATCHER_FEED, wire format include/gpux_wire.h).
 *
 * Why a pull loop: the ledger asks "events after (seq, index), at most K"
 * starting from the position stored in PostgreSQL, so after either side
 * restarts it simply asks again from where the database says it is; there
 * is no delivery state to lose. A reply may end in the middle of a command
 * (K counts events): events of the unfinished command are kept and only
 * whole commands are settled. REQ resends on reconnect, so a matcher
 * restart costs a timeout and a retry, never an event; a socket that stays
 * silent for FEED_REDIAL_AFTER round trips is replaced (req_silent). */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "gpux_assert.h"
#include "gpux_wire.h"
#include "ledger/ledger.h"
#include "ledger/runner.h"

#define FEED_TIMEOUT_MS 5000
#define FEED_WARN_EVERY_MS 30000

/* A REQ socket to the matcher that stays silent this many round trips in
 * a row (each FEED_TIMEOUT_MS) is replaced by a fresh one: see req_silent.
 * At most FEED_MAX_CLOSERS old sockets may still be closing at once. */
#define FEED_REDIAL_AFTER 3
#define FEED_MAX_CLOSERS 8

static atomic_uint closers_running;

/* One REQ socket to one matcher endpoint. */
typedef struct req_link {
    nng_socket sock;
    const char *addr;
    const char *what;   /* for logs: "feed", "commands" */
    uint32_t silent;    /* round trips in a row without an answer */
    uint64_t redials;
} req_link;

typedef struct feed {
    req_link feed;
    req_link cmd;       /* command endpoint: account names */
    ledger_rec *recs;   /* received, not yet settled (whole commands first) */
    uint32_t n;
    uint64_t after_seq; /* cursor: last event received */
    uint32_t after_idx;
} feed;

/* NONBLOCK dial: the matcher may not be up yet; nng keeps dialing. */
static int req_open(nng_socket *s, const char *addr)
{
    int rv = nng_req0_open(s);
    if (rv != 0) return rv;
    rv = nng_socket_set_ms(*s, NNG_OPT_RECVTIMEO, FEED_TIMEOUT_MS);
    if (rv == 0) rv = nng_socket_set_ms(*s, NNG_OPT_SENDTIMEO, FEED_TIMEOUT_MS);
    if (rv == 0) rv = nng_socket_set_ms(*s, NNG_OPT_RECONNMAXT, 1000);
    if (rv == 0) rv = nng_dial(*s, addr, NULL, NNG_FLAG_NONBLOCK);
    if (rv != 0) nng_close(*s);
    return rv;
}

static void *closer_main(void *arg)
{
    nng_socket *s = arg;
    nng_close(*s);
    free(s);
    atomic_fetch_sub(&closers_running, 1);
    return NULL;
}

/* Closes s without waiting for it: libnng 1.5 has hung inside nng_close on
 * a REQ socket whose dialer was reconnecting to a SIGKILLed matcher
 * (tests/test_matcher_service.c), and the ledger must not hang with it. */
static void close_detached(nng_socket s)
{
    nng_socket *p = malloc(sizeof *p);
    pthread_t t;
    if (p) {
        *p = s;
        atomic_fetch_add(&closers_running, 1);
        if (pthread_create(&t, NULL, closer_main, p) == 0) {
            pthread_detach(t);
            return;
        }
        atomic_fetch_sub(&closers_running, 1);
        free(p);
    }
    nng_close(s);
}

/* Counts a round trip that got no answer; after FEED_REDIAL_AFTER in a row
 * the socket is replaced. Why: libnng 1.5's REQ has lost requests sent
 * while its pipe to a SIGKILLed matcher was being torn down (LeakSanitizer
 * saw one in a test), and a socket left with such a pipe could time out on
 * every request forever; a fresh socket has no old pipe. A matcher that
 * is simply down costs a new socket every few timeouts, nothing more. */
static void req_silent(req_link *l)
{
    if (++l->silent < FEED_REDIAL_AFTER) return;
    if (atomic_load(&closers_running) >= FEED_MAX_CLOSERS) {
        ledger_log("warn", "matcher %s %s: %u old sockets still closing; keeping this one", l->what, l->addr,
                   FEED_MAX_CLOSERS);
        l->silent = 0;
        return;
    }
    nng_socket fresh;
    int rv = req_open(&fresh, l->addr);
    if (rv != 0) {
        ledger_log("warn", "matcher %s %s: cannot open a fresh socket: %s", l->what, l->addr, nng_strerror(rv));
        return;
    }
    close_detached(l->sock);
    l->sock = fresh;
    l->silent = 0;
    l->redials++;
    if (l->redials <= 3 || l->redials % 20 == 0) /* a matcher down for long: not every 15 s */
        ledger_log("info", "matcher %s %s: no answer in %u tries; dialing on a fresh socket (%" PRIu64 " so far)",
                   l->what, l->addr, FEED_REDIAL_AFTER, l->redials);
}

static ledger_status feed_open(feed *f, const char *addr, const char *cmd_addr,
                               uint32_t max_recs, char *err, size_t errlen)
{
    f->cmd = (req_link){.addr = cmd_addr, .what = "commands"};
    f->feed = (req_link){.addr = addr, .what = "feed"};
    int rv = req_open(&f->cmd.sock, cmd_addr);
    if (rv != 0) {
        snprintf(err, errlen, "matcher commands %s: %s", cmd_addr, nng_strerror(rv));
        return LEDGER_ERR_FATAL;
    }
    rv = req_open(&f->feed.sock, addr);
    if (rv != 0) {
        snprintf(err, errlen, "feed %s: %s", addr, nng_strerror(rv));
        return LEDGER_ERR_FATAL;
    }
    f->recs = malloc(sizeof *f->recs * max_recs);
    if (!f->recs) {
        snprintf(err, errlen, "out of memory for %u feed records", max_recs);
        return LEDGER_ERR_FATAL;
    }
    return LEDGER_OK;
}

/* One FEED round trip. Appends events to f->recs; *complete says whether
 * the last command received is whole (the reply was short of the limit);
 * *head gets the matcher's last seq. LEDGER_ERR_DB = try again later. */
static ledger_status feed_fetch(feed *f, uint32_t limit, bool *complete, uint64_t *head,
                                char *err, size_t errlen)
{
    wire_query q;
    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_FEED;
    q.after = f->after_seq;
    q.after_index = f->after_idx;
    q.limit = limit;
    uint8_t qbuf[sizeof(wire_hdr) + sizeof(wire_query)];
    size_t qlen = wire_encode_query(qbuf, sizeof qbuf, &q);
    GPUX_ASSERT(qlen > 0);
    int rv = nng_send(f->feed.sock, qbuf, qlen, 0);
    void *buf = NULL;
    size_t len = 0;
    if (rv == 0) rv = nng_recv(f->feed.sock, &buf, &len, NNG_FLAG_ALLOC);
    if (rv != 0) {
        snprintf(err, errlen, "matcher feed: %s", nng_strerror(rv));
        req_silent(&f->feed);
        return LEDGER_ERR_DB;
    }
    f->feed.silent = 0;
    wire_reply rep;
    wire_reader rd;
    ledger_status st = LEDGER_OK;
    uint32_t got = 0;
    if (wire_decode_reply(buf, len, &rep, &rd, err, errlen) != 0) {
        st = LEDGER_ERR_INVALID;
    } else if (rep.status == WIRE_ST_FEED_GAP) {
        snprintf(err, errlen, "the matcher no longer holds the events after seq %" PRIu64
                 " (%.64s): restore them (snapshot + journal) before settling on", f->after_seq,
                 rep.detail);
        st = LEDGER_ERR_FATAL;
    } else if (rep.status == WIRE_ST_UNAVAILABLE) {
        snprintf(err, errlen, "matcher unavailable: %.64s", rep.detail);
        st = LEDGER_ERR_DB;
    } else if (rep.status != WIRE_ST_OK) {
        snprintf(err, errlen, "matcher refused the feed query: %s %.64s",
                 wire_status_name(rep.status), rep.detail);
        st = LEDGER_ERR_FATAL;
    }
    for (;;) {
        if (st != LEDGER_OK) break;
        uint16_t type = 0;
        wire_item item;
        int r = wire_reader_next(&rd, &type, &item, err, errlen);
        if (r == 0) break;
        if (r < 0 || type != WIRE_ITEM_EVENT || got == limit) {
            if (r > 0) snprintf(err, errlen, "feed reply: unexpected item or too many events");
            st = LEDGER_ERR_INVALID;
            break;
        }
        const wire_event *w = &item.event;
        bool after = w->seq > f->after_seq || (w->seq == f->after_seq && w->index > f->after_idx);
        ledger_rec *rec = &f->recs[f->n];
        memset(rec, 0, sizeof *rec);
        if (!after || wire_event_to_engine(w, &rec->ev) != 0) {
            snprintf(err, errlen, "feed reply: event (%" PRIu64 ", %u) out of order or unknown",
                     w->seq, w->index);
            st = LEDGER_ERR_INVALID;
            break;
        }
        rec->seq = w->seq;
        rec->idx = w->index;
        f->after_seq = w->seq;
        f->after_idx = w->index;
        f->n++;
        got++;
    }
    *complete = got < limit;
    *head = st == LEDGER_OK ? rep.seq : 0;
    nng_free(buf, len);
    return st;
}

/* One ACCOUNTS page (ids >= first) from the command endpoint; fills the
 * names of the ACCOUNT records in recs[0..n). LEDGER_ERR_DB = retry. */
static ledger_status names_page(feed *f, ledger_rec *recs, uint32_t n, uint32_t first,
                                uint32_t *next, char *err, size_t errlen)
{
    wire_query q;
    memset(&q, 0, sizeof q);
    q.type = WIRE_Q_ACCOUNTS;
    q.after = first;
    q.limit = WIRE_MAX_QUERY_LIMIT;
    uint8_t qbuf[sizeof(wire_hdr) + sizeof(wire_query)];
    size_t qlen = wire_encode_query(qbuf, sizeof qbuf, &q);
    GPUX_ASSERT(qlen > 0);
    void *buf = NULL;
    size_t len = 0;
    int rv = nng_send(f->cmd.sock, qbuf, qlen, 0);
    if (rv == 0) rv = nng_recv(f->cmd.sock, &buf, &len, NNG_FLAG_ALLOC);
    if (rv != 0) {
        snprintf(err, errlen, "account names from the matcher: %s", nng_strerror(rv));
        req_silent(&f->cmd);
        return LEDGER_ERR_DB;
    }
    f->cmd.silent = 0;
    wire_reply rep;
    wire_reader rd;
    memset(&rep, 0, sizeof rep);
    ledger_status st = LEDGER_OK;
    *next = UINT32_MAX;
    if (wire_decode_reply(buf, len, &rep, &rd, err, errlen) != 0) {
        st = LEDGER_ERR_DB;
    } else if (rep.status != WIRE_ST_OK) {
        snprintf(err, errlen, "ACCOUNTS query: %s", wire_status_name(rep.status));
        st = LEDGER_ERR_DB;
    }
    uint16_t type;
    wire_item item;
    int r;
    while (st == LEDGER_OK && (r = wire_reader_next(&rd, &type, &item, err, errlen)) == 1) {
        if (type != WIRE_ITEM_ACCOUNT) continue;
        if (*next == UINT32_MAX || item.account.account + 1 > *next) *next = item.account.account + 1;
        for (uint32_t i = 0; i < n; i++)
            if (recs[i].ev.type == MATCHER_EV_ACCOUNT && recs[i].ev.u.account.account == item.account.account)
                snprintf(recs[i].name, sizeof recs[i].name, "%.*s", WIRE_NAME_LEN - 1, item.account.name);
    }
    nng_free(buf, len);
    return st;
}

/* Account names are service state, not in the events: ask the matcher
 * (retrying while it is away) so the ledger records them. */
static ledger_status fill_names(feed *f, ledger_rec *recs, uint32_t n, char *err, size_t errlen)
{
    uint32_t lo = UINT32_MAX, hi = 0;
    for (uint32_t i = 0; i < n; i++)
        if (recs[i].ev.type == MATCHER_EV_ACCOUNT) {
            uint32_t a = recs[i].ev.u.account.account;
            lo = a < lo ? a : lo;
            hi = a > hi ? a : hi;
        }
    int64_t last_warn = 0;
    for (uint32_t first = lo; first <= hi && !ledger_stop_requested;) {
        uint32_t next = 0;
        ledger_status st = names_page(f, recs, n, first, &next, err, errlen);
        if (st == LEDGER_OK) {
            if (next == UINT32_MAX || next <= first) break; /* no more accounts */
            first = next;
            continue;
        }
        if (ledger_now_ms() - last_warn > FEED_WARN_EVERY_MS) {
            ledger_log("warn", "%s; waiting for the matcher", err);
            last_warn = ledger_now_ms();
        }
        ledger_sleep_ms(100);
    }
    if (ledger_stop_requested) {
        snprintf(err, errlen, "stopped while asking for account names");
        return LEDGER_ERR_DB;
    }
    return LEDGER_OK;
}

/* One command alone fills the batch: double the batch (feed buffer and
 * settler) so the command is settled whole, in one transaction, as every
 * command is. Bounded by LEDGER_MAX_COMMAND_RECS. */
static ledger_status grow_batch(ledger_runner *r, feed *f, char *err, size_t errlen)
{
    uint32_t want = r->max_recs * 2;
    if (r->max_recs >= LEDGER_MAX_COMMAND_RECS) {
        snprintf(err, errlen, "command %" PRIu64 " has more than %u events", f->recs[0].seq,
                 LEDGER_MAX_COMMAND_RECS);
        return LEDGER_ERR_FATAL;
    }
    if (want > LEDGER_MAX_COMMAND_RECS)
        want = LEDGER_MAX_COMMAND_RECS;
    ledger_rec *recs = realloc(f->recs, sizeof *recs * want);
    ledger_settler *st = recs ? ledger_settler_create(want) : NULL;
    if (!st) {
        if (recs)
            f->recs = recs;
        snprintf(err, errlen, "out of memory growing the batch to %u records for command %" PRIu64, want,
                 f->recs[0].seq);
        return LEDGER_ERR_FATAL;
    }
    f->recs = recs;
    ledger_settler_destroy(r->settler);
    r->settler = st;
    ledger_log("info", "command %" PRIu64 " has more than %u events: batch grown to %u", f->recs[0].seq,
               r->max_recs, want);
    r->max_recs = want;
    return LEDGER_OK;
}

/* Settles the whole commands at the front of f->recs; keeps the rest. */
static ledger_status settle_whole(ledger_runner *r, feed *f, bool last_complete, uint64_t head,
                                  char *err, size_t errlen)
{
    uint32_t whole = f->n;
    if (!last_complete) {
        while (whole > 0 && f->recs[whole - 1].seq == f->recs[f->n - 1].seq) whole--;
        if (whole == 0 && f->n == r->max_recs)
            return grow_batch(r, f, err, errlen); /* one command fills the batch */
    }
    if (whole == 0) return LEDGER_OK;
    ledger_status st = fill_names(f, f->recs, whole, err, errlen);
    if (st == LEDGER_ERR_DB && ledger_stop_requested) return LEDGER_OK;
    if (st == LEDGER_OK) st = ledger_runner_settle(r, f->recs, whole, head, err, errlen);
    if (st != LEDGER_OK) return st;
    memmove(f->recs, f->recs + whole, sizeof *f->recs * (f->n - whole));
    f->n -= whole;
    return LEDGER_OK;
}

ledger_status ledger_feed_follow(ledger_runner *r, const char *addr, const char *cmd_addr,
                                 int64_t poll_ms, char *err, size_t errlen)
{
    feed f;
    memset(&f, 0, sizeof f);
    ledger_status st = feed_open(&f, addr, cmd_addr, r->max_recs, err, errlen);
    /* everything after command `position`: index UINT32_MAX sorts after
     * every event of that command */
    f.after_seq = r->position;
    f.after_idx = UINT32_MAX;
    int64_t last_warn = 0;
    while (st == LEDGER_OK && !ledger_stop_requested) {
        bool complete = false;
        uint64_t head = 0;
        GPUX_ASSERT(f.n < r->max_recs);
        uint32_t room = r->max_recs - f.n;
        st = feed_fetch(&f, room < WIRE_MAX_FEED_EVENTS ? room : WIRE_MAX_FEED_EVENTS, &complete, &head,
                        err, errlen);
        if (st == LEDGER_ERR_DB) { /* matcher away: wait for it, forever */
            if (ledger_now_ms() - last_warn > FEED_WARN_EVERY_MS) {
                ledger_log("warn", "%s; waiting for the matcher", err);
                last_warn = ledger_now_ms();
            }
            st = LEDGER_OK;
            ledger_sleep_ms(poll_ms);
            continue;
        }
        if (st != LEDGER_OK) break;
        if (f.n == 0) {
            if (head > r->matcher_seq) r->matcher_seq = head;
            ledger_sleep_ms(poll_ms);
            continue;
        }
        st = settle_whole(r, &f, complete, head, err, errlen);
        /* Everything received is settled and the last command was whole:
         * ask past the whole command (index UINT32_MAX), which is also how
         * the matcher learns the ledger has settled it (its lag and
         * journal retention); naming its last event would leave the
         * ledger's recorded position one command short. */
        if (st == LEDGER_OK && complete && f.n == 0)
            f.after_idx = UINT32_MAX;
    }
    nng_close(f.feed.sock);
    nng_close(f.cmd.sock);
    free(f.recs);
    return st;
}
