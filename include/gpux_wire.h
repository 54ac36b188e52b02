/* gpux_wire.h — the one wire format between gateway, matcher, ledger and
 * simulator (commands, queries, replies, events, market data).
 *
 * Why one header: every process that talks to the matcher must agree on the
 * bytes, so the bytes are defined once, here, and the codec (matcher/wire.c,
 * part of libgpux_matcher which every module links) is the only code that
 * turns bytes into structs.
 *
 * Layout rules (TigerBeetle style "extern structs"):
 *   - every wire struct has explicit-size fields, natural alignment and
 *     explicit pad fields, so it has no hidden padding; its size and key
 *     offsets are _Static_assert'ed below; pads and unused fields are zero;
 *   - byte order is little-endian (asserted at compile time): a struct's
 *     in-memory bytes ARE its wire bytes;
 *   - strings are fixed-size, NUL-terminated and NUL-padded.
 *
 * A message is a wire_hdr followed by body_len bytes:
 *   WIRE_KIND_CMD    body = `count` wire_cmd, 1..WIRE_MAX_BATCH_CMDS
 *                    (count = 1: the reply carries the command's events;
 *                    count > 1, a batch: one WIRE_ITEM_RESULT per command,
 *                    in order, and no events — they are in the feed/PUB)
 *   WIRE_KIND_QUERY  body = one wire_query                (count = 1)
 *   WIRE_KIND_REPLY  body = one wire_reply, then `count` items
 *   WIRE_KIND_PUB    body = `count` items (WIRE_ITEM_EVENT), see "market
 *                    data" below: on the PUB socket a topic precedes it.
 * An item is a wire_item_hdr {type, size} followed by the item struct of
 * that type; size must equal the struct's size.
 *
 * Versioning: wire_hdr.version must equal WIRE_VERSION; a change to any
 * struct or meaning bumps it. Decoders reject other versions.
 *
 * Endpoints (gpux-matcher):
 *   command  REP  GPUX_MATCHER_CMD   CMD -> REPLY(events) ; QUERY -> REPLY
 *   feed     REP  GPUX_MATCHER_FEED  QUERY(WIRE_Q_FEED) -> REPLY(events)
 *   market   PUB  GPUX_MATCHER_PUB   topic + PUB message
 */
#ifndef GPUX_WIRE_H
#define GPUX_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "matcher/matcher.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "gpux wire structs are little-endian in memory");

/* ---- constants --------------------------------------------------------- */

#define WIRE_MAGIC 0x58555047u /* "GPUX" as little-endian bytes */
#define WIRE_VERSION 1u
#define WIRE_MAX_MSG_BYTES (64u * 1024u * 1024u) /* any message, any kind */
#define WIRE_MAX_ITEMS 262144u       /* items in one reply / pub message */
#define WIRE_MAX_QUERY_LIMIT 1000u   /* rows per page of a list query */
#define WIRE_MAX_FEED_EVENTS 65536u  /* events per feed reply */
#define WIRE_MAX_REPLY_EVENTS 65536u /* events in a command reply; beyond:
                                        WIRE_REPLY_TRUNCATED, fetch the rest
                                        from the feed */
#define WIRE_MAX_BATCH_CMDS 4096u   /* commands in one CMD message (~885 KB,
                                       under nng's default 1 MiB receive
                                       limit; 1024 before the fourth session:
                                       a simulated day sent in 4x fewer
                                       round trips ran ~10% faster) */
#define WIRE_NAME_LEN 32             /* account name incl. NUL */
#define WIRE_CLIENT_ID_LEN 40        /* client_order_id incl. NUL */
#define WIRE_KEY_HASH_LEN 32         /* SHA-256 of an API key */
#define WIRE_DETAIL_LEN 64           /* error detail incl. NUL */
#define WIRE_TOPIC_MAX 32            /* PUB topic bytes incl. NUL */

/* Default endpoint addresses (overridden by flags / env). */
#define WIRE_DEFAULT_CMD_ADDR "ipc:///tmp/gpux/matcher-cmd.ipc"
#define WIRE_DEFAULT_PUB_ADDR "ipc:///tmp/gpux/matcher-pub.ipc"
#define WIRE_DEFAULT_FEED_ADDR "ipc:///tmp/gpux/matcher-feed.ipc"

/* ---- message header ---------------------------------------------------- */

typedef enum wire_kind {
    WIRE_KIND_CMD = 1,
    WIRE_KIND_QUERY = 2,
    WIRE_KIND_REPLY = 3,
    WIRE_KIND_PUB = 4,
} wire_kind;

typedef struct wire_hdr {
    uint32_t magic;    /* WIRE_MAGIC */
    uint16_t version;  /* WIRE_VERSION */
    uint16_t kind;     /* wire_kind */
    uint32_t body_len; /* bytes after this header; message len = 16 + it */
    uint32_t count;    /* items (REPLY, PUB); 1 for CMD and QUERY */
} wire_hdr;

/* ---- commands ---------------------------------------------------------- */

/* Command types: the engine's matcher_cmd_type values 1..7, plus
 * service-level commands handled by the matcher service itself. */
#define WIRE_CMD_ADD_KEY 16 /* register an API key hash for an account */

/* One command. Engine fields mirror matcher_cmd exactly (same order, same
 * sizes); the service fields follow. Which fields a type uses:
 *   CREATE_ACCOUNT  roles, name (1..31 printable ASCII, unique)
 *   DEPOSIT, WITHDRAW  account, amount_micros
 *   NEW_ORDER       account, market, side, tif, single_provider, qty,
 *                   min_qty, min_hours, price_micros, start_hour, end_hour,
 *                   expire_at_hour, client_order_id (optional: "" = none;
 *                   else 1..39 bytes 0x21..0x7e, unique per account)
 *   CANCEL          account, and exactly one of order_id and
 *                   client_order_id (the account's NEW_ORDER's: lets a
 *                   client cancel an order placed earlier in the same
 *                   unanswered batch; the service resolves it and
 *                   journals the order_id, so replay never looks it up)
 *   REPLACE         account, order_id or client_order_id as CANCEL,
 *                   price_micros, qty (0 = unchanged)
 *   ADVANCE_CLOCK   clock_hour (only with --clock sim; in wall mode the
 *                   service advances the clock itself: WIRE_ST_FORBIDDEN)
 *   WIRE_CMD_ADD_KEY account, key_hash (SHA-256 of the key, not all zero)
 * Every other field must be zero. ts_us: the service stamps the command
 * time; a client sets 0 (with --clock sim a non-zero ts_us is kept if it
 * lies inside the current clock hour). In the journal ts_us is the stamped
 * time. */
typedef struct wire_cmd {
    uint8_t type;
    uint8_t side;
    uint8_t tif;
    uint8_t single_provider;
    uint32_t market;
    uint32_t account;
    uint32_t roles;
    int64_t ts_us;
    uint64_t order_id;
    int64_t price_micros;
    int64_t amount_micros;
    int32_t qty;
    int32_t min_qty;
    int32_t min_hours;
    int32_t reserved; /* zero */
    int64_t start_hour;
    int64_t end_hour;
    int64_t expire_at_hour;
    int64_t clock_hour;
    char client_order_id[WIRE_CLIENT_ID_LEN];
    char name[WIRE_NAME_LEN];
    uint8_t key_hash[WIRE_KEY_HASH_LEN];
} wire_cmd;

/* ---- queries ----------------------------------------------------------- */

/* Answered from memory, never journaled. Reply items per query:
 *   STATUS              1 WIRE_ITEM_STATUS
 *   MARKETS             WIRE_ITEM_MARKET per market (after = first market
 *                       id, limit)
 *   ORDER               order_id -> WIRE_ITEM_ORDER then its WIRE_ITEM_FILL
 *                       items (the order's known fills, oldest first), or
 *                       WIRE_ST_NOT_FOUND
 *   ORDER_BY_CLIENT_ID  account, client_order_id -> as ORDER
 *   OPEN_ORDERS         account, after (order id cursor: ids > after),
 *                       limit -> WIRE_ITEM_ORDER per open order, id order
 *   ACCOUNT             account -> 1 WIRE_ITEM_ACCOUNT or NOT_FOUND
 *   ACCOUNTS            after (accounts with id >= after), limit ->
 *                       WIRE_ITEM_ACCOUNT each (fee account 0 included)
 *   BOOK                market, limit (depth per side), optional
 *                       start_hour/end_hour (both 0 = any window) ->
 *                       WIRE_ITEM_LEVEL: bids best first, then asks
 *   QUOTE               market, side (side of the taker), start_hour,
 *                       end_hour, qty -> 1 WIRE_ITEM_QUOTE
 *   TRADES              market, limit -> WIRE_ITEM_FILL, newest first
 *   LEASES              account, after (trade id cursor: ids < after, 0 =
 *                       newest), limit -> WIRE_ITEM_FILL, newest first
 *   KEYS                after (key index >= after), limit -> WIRE_ITEM_KEY
 *   FEED                after (seq), after_index, limit -> WIRE_ITEM_EVENT
 *                       for every event (seq, index) > (after,
 *                       after_index), in order, up to limit. Only on the
 *                       feed endpoint or the command endpoint.
 * limit: 1..WIRE_MAX_QUERY_LIMIT (FEED: 1..WIRE_MAX_FEED_EVENTS).
 * Unused fields must be zero. */
typedef enum wire_query_type {
    WIRE_Q_STATUS = 1,
    WIRE_Q_MARKETS = 2,
    WIRE_Q_ORDER = 3,
    WIRE_Q_ORDER_BY_CLIENT_ID = 4,
    WIRE_Q_OPEN_ORDERS = 5,
    WIRE_Q_ACCOUNT = 6,
    WIRE_Q_ACCOUNTS = 7,
    WIRE_Q_BOOK = 8,
    WIRE_Q_QUOTE = 9,
    WIRE_Q_TRADES = 10,
    WIRE_Q_LEASES = 11,
    WIRE_Q_KEYS = 12,
    WIRE_Q_FEED = 13,
    WIRE_Q_COUNT_ = 14
} wire_query_type;

/* wire_query.flags (FEED only): read the feed without moving the
 * matcher's record of the ledger's position (reports, tools). Only the
 * ledger reads without it; its position gates journal retention and the
 * ledger lag the gateway reports. */
#define WIRE_QF_OBSERVER 1u
/* wire_query.flags (STATUS only): also compute state_hash. The hash walks
 * the whole live state on the engine thread (O(accounts + resting
 * orders)), so health checks and progress polls leave it off (state_hash
 * is then 0); tests and tools comparing states ask for it. */
#define WIRE_QF_STATE_HASH 2u

typedef struct wire_query {
    uint16_t type;   /* wire_query_type */
    uint8_t side;    /* QUOTE */
    uint8_t flags;   /* WIRE_QF_OBSERVER (FEED), WIRE_QF_STATE_HASH (STATUS), else 0 */
    uint32_t account;
    uint32_t market;
    uint32_t limit;
    uint64_t order_id;
    uint64_t after;  /* cursor, see above */
    uint32_t after_index;
    int32_t qty;     /* QUOTE */
    int64_t start_hour;
    int64_t end_hour;
    char client_order_id[WIRE_CLIENT_ID_LEN];
} wire_query;

/* ---- replies ----------------------------------------------------------- */

typedef enum wire_status {
    WIRE_ST_OK = 0,
    WIRE_ST_REJECTED = 1,    /* engine rejected: reason = matcher_reason */
    WIRE_ST_DUPLICATE = 2,   /* client_order_id already used: items = that
                                first order (ORDER + FILLs), not journaled */
    WIRE_ST_BAD_MESSAGE = 3, /* malformed / truncated / wrong version */
    WIRE_ST_NOT_FOUND = 4,   /* query target does not exist */
    WIRE_ST_BAD_FIELD = 5,   /* service-level field invalid (detail says) */
    WIRE_ST_UNAVAILABLE = 6, /* shutting down or journal failed: nothing
                                was accepted */
    WIRE_ST_FORBIDDEN = 7,   /* e.g. ADVANCE_CLOCK in wall-clock mode */
    WIRE_ST_CONFLICT = 8,    /* cancel/replace of an order the service knows
                                is closed (reason = UNKNOWN_ORDER, items =
                                the order), or a duplicate name / key */
    WIRE_ST_FEED_GAP = 9,    /* FEED: events asked for are older than what
                                the matcher still holds (detail says) */
    WIRE_ST_COUNT_ = 10
} wire_status;

#define WIRE_REPLY_TRUNCATED 1u /* more events than WIRE_MAX_REPLY_EVENTS */

typedef struct wire_reply {
    uint16_t status;   /* wire_status */
    uint16_t reason;   /* matcher_reason (REJECTED, CONFLICT), else 0 */
    uint32_t flags;    /* WIRE_REPLY_* */
    uint64_t seq;      /* CMD: its journal seq (0 = not journaled);
                          QUERY: last command seq applied when answered */
    uint64_t order_id; /* NEW_ORDER (accepted or DUPLICATE): the order id */
    uint32_t account;  /* CREATE_ACCOUNT: the new account id */
    uint32_t pad;
    char detail[WIRE_DETAIL_LEN]; /* a sentence for errors, else "" */
} wire_reply;

/* ---- items ------------------------------------------------------------- */

typedef enum wire_item_type {
    WIRE_ITEM_EVENT = 1,
    WIRE_ITEM_ORDER = 2,
    WIRE_ITEM_FILL = 3,
    WIRE_ITEM_ACCOUNT = 4,
    WIRE_ITEM_LEVEL = 5,
    WIRE_ITEM_QUOTE = 6,
    WIRE_ITEM_KEY = 7,
    WIRE_ITEM_STATUS = 8,
    WIRE_ITEM_MARKET = 9,
    WIRE_ITEM_RESULT = 10,
    WIRE_ITEM_COUNT_ = 11
} wire_item_type;

typedef struct wire_item_hdr {
    uint16_t type; /* wire_item_type */
    uint16_t pad;
    uint32_t size; /* = size of that type's struct */
} wire_item_hdr;

/* One engine event with its place in the sequence: the index-th event of
 * the command journaled as seq. Flat: which fields a type uses
 *   REJECTED    reason, order_id            (only in replies, never in
 *                                            the feed: rejected commands
 *                                            are not journaled)
 *   ACCOUNT     account, roles
 *   DEPOSIT, WITHDRAWAL  account, amount_micros
 *   BALANCE     account, amount_micros (= balance), held_micros
 *   ACCEPTED, REPLACED   order_id, account, market, side, tif,
 *               single_provider, qty, min_qty, min_hours, price_micros,
 *               start_hour, end_hour, expire_at_hour, held_micros (= hold)
 *   TRADE, LEASE  trade_id, buy_order_id, sell_order_id, account (= buyer),
 *               provider, market, taker_side, price_micros, qty,
 *               start_hour, end_hour, notional_micros, buyer_fee_micros,
 *               provider_fee_micros, saving_micros
 *   DONE        order_id, account, market, side, reason (=
 *               matcher_done_reason), remaining_qty
 *   CLOCK       hour
 * Unused fields are zero. */
typedef struct wire_event {
    uint64_t seq;
    uint32_t index;
    uint16_t type;     /* matcher_event_type */
    uint16_t cmd_type; /* the command type that caused it */
    int64_t ts_us;
    uint64_t order_id;
    uint64_t trade_id;
    uint64_t buy_order_id;
    uint64_t sell_order_id;
    uint32_t account;
    uint32_t provider;
    uint32_t market;
    uint32_t roles;
    uint16_t reason;
    uint8_t side;
    uint8_t tif;
    uint8_t single_provider;
    uint8_t taker_side;
    uint8_t pad[2];
    int32_t qty;
    int32_t min_qty;
    int32_t min_hours;
    int32_t remaining_qty;
    int64_t price_micros;
    int64_t amount_micros;
    int64_t held_micros;
    int64_t start_hour;
    int64_t end_hour;
    int64_t expire_at_hour;
    int64_t notional_micros;
    int64_t buyer_fee_micros;
    int64_t provider_fee_micros;
    int64_t saving_micros;
    int64_t hour;
} wire_event;

/* Order status as the API shows it. */
typedef enum wire_order_status {
    WIRE_ORDER_OPEN = 1,
    WIRE_ORDER_PARTIALLY_FILLED = 2,
    WIRE_ORDER_FILLED = 3,
    WIRE_ORDER_CANCELLED = 4,
    WIRE_ORDER_EXPIRED = 5,
    WIRE_ORDER_UNFILLED = 6, /* ioc/fok remainder: API shows "cancelled" */
} wire_order_status;

/* An order as the service remembers it (open, or recently closed). For
 * bids filled_qty is GPUs filled; for offers it is the sum of fill qtys
 * (GPUs sold, over possibly different windows). remaining_qty as in
 * matcher_order_view while open, 0 when closed. n_fills is the total
 * number of fills; the ORDER query sends up to WIRE_ORDER_MAX_FILLS of
 * them (the first ones) as WIRE_ITEM_FILL items after the order. */
#define WIRE_ORDER_MAX_FILLS 8
typedef struct wire_order {
    uint64_t order_id;
    uint32_t account;
    uint32_t market;
    uint8_t side;
    uint8_t tif;
    uint8_t single_provider;
    uint8_t status; /* wire_order_status */
    int32_t qty;
    int32_t min_qty;
    int32_t min_hours;
    int32_t filled_qty;
    int32_t remaining_qty;
    uint32_t n_fills;
    uint32_t pad;
    int64_t price_micros;
    int64_t start_hour;
    int64_t end_hour;
    int64_t expire_at_hour;
    int64_t hold_micros;
    int64_t created_ts_us;
    int64_t updated_ts_us;
    char client_order_id[WIRE_CLIENT_ID_LEN];
} wire_order;

/* A fill (trade = lease): matcher_fill_info plus the command time. */
typedef struct wire_fill {
    uint64_t trade_id;
    uint64_t buy_order_id;
    uint64_t sell_order_id;
    uint32_t buyer;
    uint32_t provider;
    uint32_t market;
    uint8_t taker_side;
    uint8_t pad[3];
    int64_t price_micros;
    int32_t qty;
    int32_t pad2;
    int64_t start_hour;
    int64_t end_hour;
    int64_t notional_micros;
    int64_t buyer_fee_micros;
    int64_t provider_fee_micros;
    int64_t saving_micros;
    int64_t ts_us;
} wire_fill;

typedef struct wire_account {
    uint32_t account;
    uint32_t roles;
    int64_t balance_micros;
    int64_t held_micros;
    uint32_t open_orders;
    uint32_t pad;
    char name[WIRE_NAME_LEN];
} wire_account;

/* One resting order in a book listing, anonymous. Bids: qty = remaining.
 * Offers: qty = the capacity available over the query window if one was
 * given, else the largest remaining capacity in any open hour. */
typedef struct wire_level {
    uint8_t side;
    uint8_t pad[3];
    int32_t qty;
    int64_t price_micros;
    int64_t start_hour;
    int64_t end_hour;
} wire_level;

/* What an ioc order of `qty` on `side` would fill now against resting
 * orders (min_qty = lot for a bid). avg_price_micros =
 * floor(notional / (fillable_qty x hours)), 0 when nothing fills. */
typedef struct wire_quote {
    int32_t fillable_qty;
    uint32_t n_fills;
    int64_t notional_micros;
    int64_t avg_price_micros;
} wire_quote;

typedef struct wire_key {
    uint32_t account;
    uint32_t roles; /* the account's roles now */
    uint8_t key_hash[WIRE_KEY_HASH_LEN];
} wire_key;

typedef struct wire_status_item {
    uint64_t seq;                /* last journaled command */
    uint64_t state_hash;         /* matcher_state_hash, 0 unless asked (WIRE_QF_STATE_HASH) */
    int64_t clock_hour;
    uint64_t next_order_id;
    uint64_t next_trade_id;
    uint32_t accounts;
    uint32_t orders;             /* resting */
    uint64_t snapshot_seq;       /* latest snapshot on disk (0 = none) */
    uint64_t feed_first_seq;     /* oldest seq the feed still serves */
    uint64_t ledger_seq;         /* highest seq a feed consumer asked past */
    uint8_t clock_sim;           /* 1 = --clock sim */
    uint8_t pad[7];
} wire_status_item;

typedef struct wire_market {
    char gpu[MATCHER_NAME_LEN];
    char region[MATCHER_NAME_LEN];
    uint32_t market;
    int32_t lot;
    int64_t tick_micros;
} wire_market;

/* The outcome of one command of a batch (fields as in wire_reply). */
typedef struct wire_result {
    uint16_t status;   /* wire_status */
    uint16_t reason;   /* matcher_reason */
    uint32_t account;  /* CREATE_ACCOUNT: the new account id */
    uint64_t seq;      /* journal seq, 0 = not journaled */
    uint64_t order_id; /* NEW_ORDER / DUPLICATE: the order id */
} wire_result;

/* Any item, for the reader. */
typedef union wire_item {
    wire_event event;
    wire_order order;
    wire_fill fill;
    wire_account account;
    wire_level level;
    wire_quote quote;
    wire_key key;
    wire_status_item status;
    wire_market market;
    wire_result result;
} wire_item;

/* ---- layouts (the wire depends on these; change = bump WIRE_VERSION) --- */

_Static_assert(sizeof(wire_hdr) == 16, "wire_hdr layout");
_Static_assert(sizeof(wire_cmd) == 200, "wire_cmd layout");
_Static_assert(offsetof(wire_cmd, ts_us) == 16, "wire_cmd layout");
_Static_assert(offsetof(wire_cmd, clock_hour) == 88, "wire_cmd layout");
_Static_assert(offsetof(wire_cmd, client_order_id) == 96, "wire_cmd layout");
_Static_assert(sizeof(wire_query) == 96, "wire_query layout");
_Static_assert(offsetof(wire_query, client_order_id) == 56, "wire_query layout");
_Static_assert(sizeof(wire_reply) == 96, "wire_reply layout");
_Static_assert(sizeof(wire_item_hdr) == 8, "wire_item_hdr layout");
_Static_assert(sizeof(wire_event) == 184, "wire_event layout");
_Static_assert(offsetof(wire_event, reason) == 72, "wire_event layout");
_Static_assert(offsetof(wire_event, hour) == 176, "wire_event layout");
_Static_assert(sizeof(wire_order) == 144, "wire_order layout");
_Static_assert(sizeof(wire_fill) == 112, "wire_fill layout");
_Static_assert(sizeof(wire_account) == 64, "wire_account layout");
_Static_assert(sizeof(wire_level) == 32, "wire_level layout");
_Static_assert(sizeof(wire_quote) == 24, "wire_quote layout");
_Static_assert(sizeof(wire_key) == 40, "wire_key layout");
_Static_assert(sizeof(wire_status_item) == 80, "wire_status_item layout");
_Static_assert(sizeof(wire_market) == 48, "wire_market layout");
_Static_assert(sizeof(wire_result) == 24, "wire_result layout");

/* ---- codec (matcher/wire.c) ------------------------------------------- */
/* All functions are pure: no allocation, no global state, thread-safe.
 * Decoders take untrusted bytes (any len, any content), never read past
 * len, never crash, and either fill *out completely and return 0, or return
 * -1 with a one-line reason in err (err != NULL, errlen > 0) and leave the
 * caller's state meaningless. */

/* Bytes of an item struct of this type (0 for an unknown type). */
size_t wire_item_size(uint16_t type);

/* Encoders write a complete message into buf (cap bytes) and return its
 * length, or 0 when cap is too small. They assert (GPUX_ASSERT) that the
 * struct is valid by the decoder's rules: encoding garbage is our bug. */
size_t wire_encode_cmd(uint8_t *buf, size_t cap, const wire_cmd *c);
/* A batch of n commands (1..WIRE_MAX_BATCH_CMDS) in one CMD message. */
size_t wire_encode_cmds(uint8_t *buf, size_t cap, const wire_cmd *c, uint32_t n);
size_t wire_encode_query(uint8_t *buf, size_t cap, const wire_query *q);

/* Reply / pub messages are built in steps: header + reply, then items.
 * wire_reply_begin writes the header (count 0) and the reply at buf[0..];
 * wire_append_item writes one item at buf[len..] and bumps the header's
 * count and body_len; each returns the new total length, or 0 when cap is
 * too small or the item limit is reached (buf unchanged then). */
size_t wire_reply_begin(uint8_t *buf, size_t cap, const wire_reply *r);
size_t wire_pub_begin(uint8_t *buf, size_t cap);
size_t wire_append_item(uint8_t *buf, size_t cap, size_t len, uint16_t type,
                        const void *item);
/* Bytes of a header + reply, and of one item with its header. */
#define WIRE_REPLY_BASE_BYTES (sizeof(wire_hdr) + sizeof(wire_reply))
#define WIRE_ITEM_BYTES(item_struct) (sizeof(wire_item_hdr) + sizeof(item_struct))

/* Reads only the header of a message: magic, version, kind, and that
 * body_len matches len exactly. */
int wire_decode_hdr(const uint8_t *buf, size_t len, wire_hdr *out, char *err,
                    size_t errlen);

/* A whole CMD message: header + every field of the command (type known,
 * unused fields zero, strings well formed, see wire_cmd). Semantic checks
 * with an engine reason (qty, price, window...) are the engine's. */
int wire_decode_cmd(const uint8_t *buf, size_t len, wire_cmd *out, char *err,
                    size_t errlen);

/* A whole CMD message of 1..cap commands (a batch): each command checked
 * as above; *n gets the count. */
int wire_decode_cmds(const uint8_t *buf, size_t len, wire_cmd *out,
                     uint32_t cap, uint32_t *n, char *err, size_t errlen);

/* A whole QUERY message: type known, limit in range, unused fields zero. */
int wire_decode_query(const uint8_t *buf, size_t len, wire_query *out,
                      char *err, size_t errlen);

/* Iterates the items of a REPLY or PUB message. wire_decode_reply checks
 * the header and the reply struct and sets up *rd; wire_decode_pub does
 * the same for a PUB message (after its topic, see wire_pub_split). */
typedef struct wire_reader {
    const uint8_t *buf;
    size_t len;
    size_t off;
    uint32_t left; /* items not yet read */
} wire_reader;
int wire_decode_reply(const uint8_t *buf, size_t len, wire_reply *out,
                      wire_reader *rd, char *err, size_t errlen);
int wire_decode_pub(const uint8_t *buf, size_t len, wire_reader *rd,
                    char *err, size_t errlen);

/* Next item: returns 1 and fills *type and *out (validated by its type's
 * rules), 0 at the end (all `count` items read and no bytes left), or -1
 * with a reason. */
int wire_reader_next(wire_reader *rd, uint16_t *type, wire_item *out,
                     char *err, size_t errlen);

/* ---- conversions to and from the engine -------------------------------- */

/* The engine command of a wire command (engine types only; asserts that
 * w->type is an engine type). */
void wire_cmd_to_engine(const wire_cmd *w, matcher_cmd *out);

/* Flattens an engine event; seq/index give its place in the sequence. */
void wire_event_from_engine(wire_event *out, const matcher_event *ev,
                            uint64_t seq, uint32_t index);

/* Back to an engine event (for consumers that want the union). Returns 0,
 * or -1 when the type is unknown. */
int wire_event_to_engine(const wire_event *w, matcher_event *out);

/* ---- market data (PUB) -------------------------------------------------- */
/* A PUB message is the ASCII topic WIRE_PUB_TOPIC, a NUL, then a
 * WIRE_KIND_PUB message of WIRE_ITEM_EVENT items: every event of one or
 * more consecutive commands, each event once, in (seq, index) order,
 * exactly as the feed holds them (an event naming several accounts, e.g.
 * a TRADE, is still one item). The matcher publishes one message per
 * batch of commands it applied, after the batch is durable in the
 * journal, and cuts a message only
 *   - at the end of a batch, or
 *   - before a command whose events would not fit in WIRE_PUB_MAX_EVENTS
 *     (so a message with fewer events ends on a command boundary), or
 *   - at WIRE_PUB_MAX_EVENTS inside a command that alone has more events:
 *     the rest follows in the next message(s).
 * So a command's events in one message are complete when they start at
 * index 0 and are followed by another command's event or the message
 * holds fewer than WIRE_PUB_MAX_EVENTS events. Market data is best
 * effort: nng drops messages for a subscriber that falls behind; the feed
 * (WIRE_Q_FEED) is the complete record. Subscribers filter by event
 * (type, market, account, provider) themselves: nng's SUB filters on the
 * receiving side anyway, so per-market or per-account topics would cost
 * every subscriber one message each without saving any transport.
 * A message is at most 16 + WIRE_PUB_MAX_EVENTS x 192 bytes after its
 * topic (under nng's default 1 MiB receive limit). This format replaced
 * one message per command and topic ("mkt.<m>.", "acct.<a>."); the topic
 * changed with it, so an old subscriber receives nothing from a new
 * matcher and a new one nothing from an old matcher (the gateway then
 * completes orders from the feed): no mixed reading, no WIRE_VERSION
 * bump, and journals stay readable. */
#define WIRE_PUB_TOPIC "evt."
#define WIRE_PUB_MAX_EVENTS 4096u

/* Splits a received PUB message: returns the offset of the wire message
 * (after the topic's NUL), or 0 when there is no NUL within
 * WIRE_TOPIC_MAX bytes. */
size_t wire_pub_split(const uint8_t *buf, size_t len);

/* ---- names -------------------------------------------------------------- */

const char *wire_status_name(uint16_t status);  /* "ok", "rejected", ... */
const char *wire_order_status_name(uint8_t st); /* api.md status string */

#endif
