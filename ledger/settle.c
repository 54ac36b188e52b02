/* settle.c — the settlement core: a batch of the matcher's sequenced events
 * in, one PostgreSQL transaction out.
 *
 * Transport-independent on purpose: the feed client, the event-file replay
 * mode and the tests all hand it the same ledger_rec arrays. Every event
 * comes from outside the ledger, so every field is validated here before a
 * row is built; a bad batch changes nothing.
 *
 * Exactly once: each command (seq) is written with a digest of its events.
 * Commands at or below the stored position are redeliveries: verified
 * against their digest and skipped; a different digest is a conflict that
 * stops the settler. The new position commits with the rows. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "gpux_assert.h"
#include "ledger/ledger.h"
#include "ledger/plan.h"

/* Binary format: the field helpers below must follow these column lists
 * and the tables' types (bigint i64, integer i32, smallint i16, text). */
const char *const ledger_copy_sql[LEDGER_T_COUNT] = {
    [LEDGER_T_ACCOUNTS] = "COPY ledger_accounts (account_id, kind, name, roles, created_seq)"
                          " FROM STDIN WITH (FORMAT binary)",
    [LEDGER_T_CASH] = "COPY ledger_cash (seq, kind, account_id, amount_micros, ts_us)"
                      " FROM STDIN WITH (FORMAT binary)",
    [LEDGER_T_TRADES] = "COPY ledger_trades (trade_id, seq, buy_order_id, sell_order_id, buyer_id,"
                        " provider_id, market_id, taker_side, price_micros, qty, start_hour, end_hour,"
                        " notional_micros, buyer_fee_micros, provider_fee_micros, saving_micros, ts_us)"
                        " FROM STDIN WITH (FORMAT binary)",
};

/* Bytes one record can add to a buffer at most: the buffers' ceilings. */
#define ROW_BYTES_MAX 512

/* Per-account aggregate of one batch. */
typedef struct acct_slot {
    int64_t account;      /* key; INT64_MIN = empty */
    int64_t delta_micros; /* settled balance change in this batch */
    bool has_mbal;        /* a matcher BALANCE seen in this batch */
    int64_t mbal_balance, mbal_held;
    uint64_t mbal_seq;
} acct_slot;

struct ledger_settler {
    uint32_t max_recs;
    ledger_plan plan;
    acct_slot *slots;     /* open addressing, power-of-two size */
    uint32_t slot_mask;
    uint32_t *used;       /* indexes of slots in use, in first-touch order */
    uint32_t n_used;
};

/* ---- construction -------------------------------------------------------- */

ledger_settler *ledger_settler_create(uint32_t max_recs)
{
    if (max_recs == 0 || max_recs > LEDGER_MAX_COMMAND_RECS) return NULL;
    ledger_settler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->max_recs = max_recs;
    /* a record touches at most 3 accounts; keep the table under half full */
    uint32_t slots = 16;
    while (slots < 8 * max_recs + 16) slots *= 2;
    s->slots = malloc(sizeof *s->slots * slots);
    s->used = malloc(sizeof *s->used * slots);
    if (!s->slots || !s->used) {
        free(s->slots);
        free(s->used);
        free(s);
        return NULL;
    }
    s->slot_mask = slots - 1;
    for (uint32_t i = 0; i < slots; i++) s->slots[i].account = INT64_MIN;
    size_t limit = (size_t)max_recs * ROW_BYTES_MAX + 64;
    ledger_plan *p = &s->plan;
    for (int t = 0; t < LEDGER_T_COUNT; t++) ledger_buf_init(&p->copy[t], 4096, limit);
    ledger_buf *arrays[] = {&p->delta_ids, &p->delta_micros, &p->mbal_ids, &p->mbal_balance,
                            &p->mbal_held, &p->mbal_seq, &p->dup_seqs, &p->dup_counts,
                            &p->dup_digests, &p->dup_digests_v1, &p->cmd_seqs, &p->cmd_counts,
                            &p->cmd_digests};
    for (size_t i = 0; i < GPUX_ARRAY_LEN(arrays); i++) ledger_buf_init(arrays[i], 4096, limit);
    return s;
}

void ledger_settler_destroy(ledger_settler *s)
{
    if (!s) return;
    ledger_plan *p = &s->plan;
    for (int t = 0; t < LEDGER_T_COUNT; t++) ledger_buf_free(&p->copy[t]);
    ledger_buf *arrays[] = {&p->delta_ids, &p->delta_micros, &p->mbal_ids, &p->mbal_balance,
                            &p->mbal_held, &p->mbal_seq, &p->dup_seqs, &p->dup_counts,
                            &p->dup_digests, &p->dup_digests_v1, &p->cmd_seqs, &p->cmd_counts,
                            &p->cmd_digests};
    for (size_t i = 0; i < GPUX_ARRAY_LEN(arrays); i++) ledger_buf_free(arrays[i]);
    free(s->slots);
    free(s->used);
    free(s);
}

/* ---- fast formatting ------------------------------------------------------ */

static void put_ch(ledger_buf *b, char c)
{
    if (b->len + 2 > b->cap) ledger_buf_reserve(b, 1);
    b->p[b->len++] = c;
    b->p[b->len] = '\0';
}

static void put_i64(ledger_buf *b, int64_t v)
{
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (b->len + (size_t)n + 2 > b->cap) ledger_buf_reserve(b, (size_t)n + 1);
    if (v < 0) b->p[b->len++] = '-';
    while (n) b->p[b->len++] = tmp[--n];
    b->p[b->len] = '\0';
}

/* COPY binary field helpers (buf.c), short names for the row builders. */
#define ROW ledger_buf_bin_row
#define I64 ledger_buf_bin_i64
#define I32 ledger_buf_bin_i32
#define I16 ledger_buf_bin_i16

/* Array literal helpers: "{a,b,c}". */
static void arr_add_i64(ledger_buf *b, int64_t v)
{
    put_ch(b, b->len == 0 ? '{' : ',');
    put_i64(b, v);
}

static void arr_close(ledger_buf *b)
{
    if (b->len == 0) put_ch(b, '{');
    put_ch(b, '}');
}

/* ---- digest ---------------------------------------------------------------- */

/* Two algorithms walk the same fields (ledger.h): 1, FNV-1a over the bytes
 * of each field (sql/001-002 rows), 2, one multiply-xorshift step per
 * 64-bit field (sql/003 on). 2 exists for speed: FNV-1a's eight dependent
 * multiplies per field made the digests about half of the settler's CPU;
 * 2 mixes a whole field per multiply, so every field still changes the
 * digest, ~6x faster. */
typedef struct fnv {
    uint64_t h;
    int alg; /* LEDGER_DIGEST_FNV1A or LEDGER_DIGEST_MIX64 */
} fnv;

static inline void fnv_u64(fnv *f, uint64_t v)
{
    if (f->alg == LEDGER_DIGEST_MIX64) {
        f->h = (f->h ^ v) * 0x9e3779b97f4a7c15ULL;
        f->h ^= f->h >> 32;
        return;
    }
    for (int i = 0; i < 8; i++) {
        f->h ^= (uint8_t)(v >> (8 * i));
        f->h *= 0x100000001b3ULL;
    }
}

static void fnv_fill(fnv *f, const matcher_fill_info *x)
{
    fnv_u64(f, x->trade_id); fnv_u64(f, x->buy_order_id); fnv_u64(f, x->sell_order_id);
    fnv_u64(f, x->buyer); fnv_u64(f, x->provider); fnv_u64(f, x->market);
    fnv_u64(f, x->taker_side); fnv_u64(f, (uint64_t)x->price_micros);
    fnv_u64(f, (uint64_t)x->qty); fnv_u64(f, (uint64_t)x->start_hour);
    fnv_u64(f, (uint64_t)x->end_hour); fnv_u64(f, (uint64_t)x->notional_micros);
    fnv_u64(f, (uint64_t)x->buyer_fee_micros); fnv_u64(f, (uint64_t)x->provider_fee_micros);
    fnv_u64(f, (uint64_t)x->saving_micros);
}

static void fnv_order(fnv *f, const matcher_order_info *o)
{
    fnv_u64(f, o->order_id); fnv_u64(f, o->account); fnv_u64(f, o->market);
    fnv_u64(f, o->side); fnv_u64(f, o->tif); fnv_u64(f, o->single_provider);
    fnv_u64(f, (uint64_t)o->qty); fnv_u64(f, (uint64_t)o->min_qty);
    fnv_u64(f, (uint64_t)o->min_hours); fnv_u64(f, (uint64_t)o->price_micros);
    fnv_u64(f, (uint64_t)o->start_hour); fnv_u64(f, (uint64_t)o->end_hour);
    fnv_u64(f, (uint64_t)o->expire_at_hour); fnv_u64(f, (uint64_t)o->hold_micros);
}

static void fnv_event(fnv *f, const ledger_rec *r)
{
    const matcher_event *e = &r->ev;
    fnv_u64(f, r->idx);
    fnv_u64(f, e->type);
    fnv_u64(f, e->cmd_type);
    fnv_u64(f, (uint64_t)e->ts_us);
    switch (e->type) {
    case MATCHER_EV_REJECTED:
        fnv_u64(f, e->u.rejected.reason); fnv_u64(f, e->u.rejected.order_id); break;
    case MATCHER_EV_ACCOUNT:
        fnv_u64(f, e->u.account.account); fnv_u64(f, e->u.account.roles);
        for (const char *c = r->name; *c; c++) fnv_u64(f, (uint8_t)*c);
        break;
    case MATCHER_EV_DEPOSIT:
    case MATCHER_EV_WITHDRAWAL:
        fnv_u64(f, e->u.transfer.account); fnv_u64(f, (uint64_t)e->u.transfer.amount_micros);
        break;
    case MATCHER_EV_BALANCE:
        fnv_u64(f, e->u.balance.account); fnv_u64(f, (uint64_t)e->u.balance.balance_micros);
        fnv_u64(f, (uint64_t)e->u.balance.held_micros);
        break;
    case MATCHER_EV_ACCEPTED:
    case MATCHER_EV_REPLACED: fnv_order(f, &e->u.order); break;
    case MATCHER_EV_TRADE:
    case MATCHER_EV_LEASE: fnv_fill(f, &e->u.fill); break;
    case MATCHER_EV_DONE:
        fnv_u64(f, e->u.done.order_id); fnv_u64(f, e->u.done.account);
        fnv_u64(f, e->u.done.market); fnv_u64(f, e->u.done.side);
        fnv_u64(f, e->u.done.reason); fnv_u64(f, (uint64_t)e->u.done.remaining_qty);
        break;
    case MATCHER_EV_CLOCK: fnv_u64(f, (uint64_t)e->u.clock.hour); break;
    default: break; /* rejected by validation before any digest is used */
    }
}

uint64_t ledger_digest_alg(const ledger_rec *recs, uint32_t n, int alg)
{
    GPUX_ASSERT(alg == LEDGER_DIGEST_FNV1A || alg == LEDGER_DIGEST_MIX64);
    fnv f = {0xcbf29ce484222325ULL, alg};
    fnv_u64(&f, n);
    for (uint32_t i = 0; i < n; i++) fnv_event(&f, &recs[i]);
    return f.h;
}

uint64_t ledger_digest(const ledger_rec *recs, uint32_t n)
{
    return ledger_digest_alg(recs, n, LEDGER_DIGEST_MIX64);
}

/* ---- validation ------------------------------------------------------------ */

static bool name_ok(const char *s)
{
    size_t n = strnlen(s, LEDGER_NAME_LEN);
    if (n >= LEDGER_NAME_LEN) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return false;
    return true;
}

/* Checks one fill as the engine's rules promise it; the reason in err. */
static bool fill_ok(const matcher_fill_info *x, char *err, size_t errlen)
{
    const char *why = NULL;
    int64_t hours = x->end_hour - x->start_hour, pq = 0, notional = 0;
    if (x->trade_id == 0 || x->buy_order_id == 0 || x->sell_order_id == 0) why = "zero id";
    else if (x->buyer == MATCHER_FEE_ACCOUNT || x->provider == MATCHER_FEE_ACCOUNT)
        why = "the fee account cannot trade";
    else if (x->buyer == x->provider) why = "buyer and provider are the same account";
    else if (x->market >= MATCHER_MAX_MARKETS) why = "market id out of range";
    else if (x->taker_side != MATCHER_BUY && x->taker_side != MATCHER_SELL) why = "bad taker side";
    else if (x->price_micros <= 0 || x->price_micros > MATCHER_MAX_PRICE_MICROS) why = "bad price";
    else if (x->qty <= 0 || x->qty > MATCHER_MAX_QTY) why = "bad qty";
    else if (x->start_hour < 0 || hours <= 0 || hours > MATCHER_MAX_WINDOW_HOURS) why = "bad window";
    else if (__builtin_mul_overflow(x->price_micros, (int64_t)x->qty, &pq) ||
             __builtin_mul_overflow(pq, hours, &notional) || notional != x->notional_micros)
        why = "notional is not price x qty x hours";
    else if (x->buyer_fee_micros < 0 || x->buyer_fee_micros > notional / 10 ||
             x->provider_fee_micros < 0 || x->provider_fee_micros > notional / 10)
        why = "fee out of range (0..10% of notional)";
    else if (x->saving_micros < 0) why = "negative saving";
    if (why) snprintf(err, errlen, "trade %" PRIu64 ": %s", x->trade_id, why);
    return why == NULL;
}

static bool fill_equal(const matcher_fill_info *a, const matcher_fill_info *b)
{
    return a->trade_id == b->trade_id && a->buy_order_id == b->buy_order_id &&
           a->sell_order_id == b->sell_order_id && a->buyer == b->buyer &&
           a->provider == b->provider && a->market == b->market &&
           a->taker_side == b->taker_side && a->price_micros == b->price_micros &&
           a->qty == b->qty && a->start_hour == b->start_hour && a->end_hour == b->end_hour &&
           a->notional_micros == b->notional_micros &&
           a->buyer_fee_micros == b->buyer_fee_micros &&
           a->provider_fee_micros == b->provider_fee_micros &&
           a->saving_micros == b->saving_micros;
}

/* Validates event i of a command (recs[first..end) is the command). */
static bool event_ok(const ledger_rec *recs, uint32_t first, uint32_t end, uint32_t i,
                     char *err, size_t errlen)
{
    const matcher_event *e = &recs[i].ev;
    char why[160];
    why[0] = '\0';
    switch (e->type) {
    case MATCHER_EV_ACCOUNT:
        if (e->u.account.account == MATCHER_FEE_ACCOUNT) snprintf(why, sizeof why, "ACCOUNT 0 (the fee account exists from the start)");
        else if (e->u.account.roles > 7) snprintf(why, sizeof why, "unknown role bits %u", e->u.account.roles);
        else if (!name_ok(recs[i].name)) snprintf(why, sizeof why, "account name too long or has control characters");
        break;
    case MATCHER_EV_DEPOSIT:
    case MATCHER_EV_WITHDRAWAL:
        if (e->u.transfer.amount_micros <= 0 || e->u.transfer.amount_micros > MATCHER_MAX_AMOUNT_MICROS)
            snprintf(why, sizeof why, "amount %" PRId64 " out of range", e->u.transfer.amount_micros);
        break;
    case MATCHER_EV_BALANCE:
        if (e->u.balance.balance_micros < 0 || e->u.balance.held_micros < 0 ||
            e->u.balance.held_micros > e->u.balance.balance_micros ||
            e->u.balance.balance_micros > MATCHER_MAX_BALANCE_MICROS)
            snprintf(why, sizeof why, "balance %" PRId64 " held %" PRId64 " impossible",
                     e->u.balance.balance_micros, e->u.balance.held_micros);
        break;
    case MATCHER_EV_TRADE:
        if (!fill_ok(&e->u.fill, why, sizeof why)) break;
        if (i + 1 >= end ||
            recs[i + 1].ev.type != MATCHER_EV_LEASE || !fill_equal(&e->u.fill, &recs[i + 1].ev.u.fill))
            snprintf(why, sizeof why, "trade %" PRIu64 " not followed by its identical LEASE", e->u.fill.trade_id);
        break;
    case MATCHER_EV_LEASE:
        if (i == first || recs[i - 1].ev.type != MATCHER_EV_TRADE)
            snprintf(why, sizeof why, "LEASE %" PRIu64 " without its TRADE", e->u.fill.trade_id);
        break;
    case MATCHER_EV_REJECTED: case MATCHER_EV_ACCEPTED: case MATCHER_EV_REPLACED:
    case MATCHER_EV_DONE: case MATCHER_EV_CLOCK:
        break; /* no money moves; part of the digest only */
    default:
        snprintf(why, sizeof why, "unknown event type %u", e->type);
    }
    if (why[0]) snprintf(err, errlen, "seq %" PRIu64 " event %u: %s", recs[i].seq, recs[i].idx, why);
    return why[0] == '\0';
}

/* ---- per-account aggregation ------------------------------------------------ */

static acct_slot *slot_of(ledger_settler *s, int64_t account)
{
    uint64_t h = (uint64_t)(account + 1) * 0x9e3779b97f4a7c15ULL;
    uint32_t i = (uint32_t)(h >> 40) & s->slot_mask;
    for (uint32_t probe = 0; probe <= s->slot_mask; probe++) {
        acct_slot *sl = &s->slots[i];
        if (sl->account == account) return sl;
        if (sl->account == INT64_MIN) {
            GPUX_ASSERT(s->n_used < s->slot_mask); /* sized to stay half empty */
            memset(sl, 0, sizeof *sl);
            sl->account = account;
            s->used[s->n_used++] = i;
            return sl;
        }
        i = (i + 1) & s->slot_mask;
    }
    GPUX_ASSERT(0 && "account table full");
    return NULL;
}

static void move_money(ledger_settler *s, int64_t from, int64_t to, int64_t amount)
{
    slot_of(s, from)->delta_micros -= amount;
    slot_of(s, to)->delta_micros += amount;
}

/* ---- building the plan --------------------------------------------------------- */

static void plan_reset(ledger_settler *s, uint64_t position, uint64_t matcher_seq)
{
    ledger_plan *p = &s->plan;
    for (int t = 0; t < LEDGER_T_COUNT; t++) {
        ledger_buf_reset(&p->copy[t]);
        ledger_buf_bin_header(&p->copy[t]);
        p->rows[t] = 0;
    }
    ledger_buf *arrays[] = {&p->delta_ids, &p->delta_micros, &p->mbal_ids, &p->mbal_balance,
                            &p->mbal_held, &p->mbal_seq, &p->dup_seqs, &p->dup_counts,
                            &p->dup_digests, &p->dup_digests_v1, &p->cmd_seqs, &p->cmd_counts,
                            &p->cmd_digests};
    for (size_t i = 0; i < GPUX_ARRAY_LEN(arrays); i++) ledger_buf_reset(arrays[i]);
    p->n_deltas = p->n_mbal = p->n_dups = p->n_cmds = p->n_legs = 0;
    p->first_cmd_seq = 0;
    p->last_seq = position;
    p->matcher_seq = matcher_seq;
    for (uint32_t i = 0; i < s->n_used; i++) s->slots[s->used[i]].account = INT64_MIN;
    s->n_used = 0;
}

static void trade_rows(ledger_settler *s, const ledger_rec *r)
{
    ledger_plan *p = &s->plan;
    const matcher_fill_info *x = &r->ev.u.fill;
    ledger_buf *b = &p->copy[LEDGER_T_TRADES];
    ROW(b, 17);
    I64(b, (int64_t)x->trade_id); I64(b, (int64_t)r->seq);
    I64(b, (int64_t)x->buy_order_id); I64(b, (int64_t)x->sell_order_id);
    I64(b, x->buyer); I64(b, x->provider); I32(b, x->market);
    I16(b, x->taker_side); I64(b, x->price_micros); I32(b, x->qty);
    I64(b, x->start_hour); I64(b, x->end_hour); I64(b, x->notional_micros);
    I64(b, x->buyer_fee_micros); I64(b, x->provider_fee_micros);
    I64(b, x->saving_micros); I64(b, r->ev.ts_us);
    p->rows[LEDGER_T_TRADES]++;
    /* The LEASE (validated identical) is no row of its own: ledger_leases
     * is a view of ledger_trades (sql/002). Nor are the trade's legs: the
     * row holds them, ledger_transfers presents them (sql/003). */

    /* buyer pays notional + fee; provider receives notional - fee; the fee
     * account receives both fees. Zero fees make no leg (amount > 0). */
    move_money(s, x->buyer, x->provider, x->notional_micros);
    p->n_legs++;
    if (x->buyer_fee_micros > 0) {
        move_money(s, x->buyer, MATCHER_FEE_ACCOUNT, x->buyer_fee_micros);
        p->n_legs++;
    }
    if (x->provider_fee_micros > 0) {
        move_money(s, x->provider, MATCHER_FEE_ACCOUNT, x->provider_fee_micros);
        p->n_legs++;
    }
}

static void account_row(ledger_plan *p, const ledger_rec *r)
{
    ledger_buf *b = &p->copy[LEDGER_T_ACCOUNTS];
    ROW(b, 5);
    I64(b, r->ev.u.account.account);
    ledger_buf_bin_text(b, "user");
    if (r->name[0]) ledger_buf_bin_text(b, r->name);
    else ledger_buf_bin_null(b);
    I32(b, r->ev.u.account.roles);
    I64(b, (int64_t)r->seq);
    p->rows[LEDGER_T_ACCOUNTS]++;
}

static void cash_rows(ledger_settler *s, const ledger_rec *r)
{
    ledger_plan *p = &s->plan;
    bool dep = r->ev.type == MATCHER_EV_DEPOSIT;
    int64_t acct = r->ev.u.transfer.account, amount = r->ev.u.transfer.amount_micros;
    ledger_buf *b = &p->copy[LEDGER_T_CASH];
    ROW(b, 5);
    I64(b, (int64_t)r->seq);
    ledger_buf_bin_text(b, dep ? "deposit" : "withdrawal");
    I64(b, acct);
    I64(b, amount);
    I64(b, r->ev.ts_us);
    p->rows[LEDGER_T_CASH]++;
    int64_t from = dep ? LEDGER_EXTERNAL_ACCOUNT : acct, to = dep ? acct : LEDGER_EXTERNAL_ACCOUNT;
    move_money(s, from, to, amount); /* its one leg: the cash row (sql/003) */
    p->n_legs++;
}

/* Adds the rows of one new command recs[0..n). */
static void command_rows(ledger_settler *s, const ledger_rec *recs, uint32_t n)
{
    ledger_plan *p = &s->plan;
    for (uint32_t i = 0; i < n; i++) {
        const ledger_rec *r = &recs[i];
        switch (r->ev.type) {
        case MATCHER_EV_ACCOUNT: account_row(p, r); break;
        case MATCHER_EV_DEPOSIT:
        case MATCHER_EV_WITHDRAWAL: cash_rows(s, r); break;
        case MATCHER_EV_TRADE: trade_rows(s, r); break;
        case MATCHER_EV_BALANCE: {
            acct_slot *sl = slot_of(s, r->ev.u.balance.account);
            sl->has_mbal = true; /* later events overwrite: the last one wins */
            sl->mbal_balance = r->ev.u.balance.balance_micros;
            sl->mbal_held = r->ev.u.balance.held_micros;
            sl->mbal_seq = r->seq;
            break;
        }
        default: break;
        }
    }
    arr_add_i64(&p->cmd_seqs, (int64_t)recs[0].seq);
    arr_add_i64(&p->cmd_counts, n);
    arr_add_i64(&p->cmd_digests, (int64_t)ledger_digest(recs, n));
    if (p->n_cmds++ == 0) p->first_cmd_seq = recs[0].seq;
    p->last_seq = recs[0].seq;
}

static void finish_arrays(ledger_settler *s)
{
    ledger_plan *p = &s->plan;
    for (int t = 0; t < LEDGER_T_COUNT; t++) ledger_buf_bin_trailer(&p->copy[t]);
    for (uint32_t i = 0; i < s->n_used; i++) {
        const acct_slot *sl = &s->slots[s->used[i]];
        if (sl->delta_micros != 0) {
            arr_add_i64(&p->delta_ids, sl->account);
            arr_add_i64(&p->delta_micros, sl->delta_micros);
            p->n_deltas++;
        }
        if (sl->has_mbal) {
            arr_add_i64(&p->mbal_ids, sl->account);
            arr_add_i64(&p->mbal_balance, sl->mbal_balance);
            arr_add_i64(&p->mbal_held, sl->mbal_held);
            arr_add_i64(&p->mbal_seq, (int64_t)sl->mbal_seq);
            p->n_mbal++;
        }
    }
    ledger_buf *arrays[] = {&p->delta_ids, &p->delta_micros, &p->mbal_ids, &p->mbal_balance,
                            &p->mbal_held, &p->mbal_seq, &p->dup_seqs, &p->dup_counts,
                            &p->dup_digests, &p->dup_digests_v1, &p->cmd_seqs, &p->cmd_counts,
                            &p->cmd_digests};
    for (size_t i = 0; i < GPUX_ARRAY_LEN(arrays); i++) arr_close(arrays[i]);
}

/* Checks order and content of the whole batch before anything is built. */
static ledger_status validate(const ledger_rec *recs, uint32_t n, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < n; i++) {
        if (recs[i].seq == 0 || recs[i].seq > (uint64_t)INT64_MAX) {
            snprintf(err, errlen, "record %u: seq %" PRIu64 " out of range", i, recs[i].seq);
            return LEDGER_ERR_INVALID;
        }
        if (i > 0 && (recs[i].seq < recs[i - 1].seq ||
                      (recs[i].seq == recs[i - 1].seq && recs[i].idx <= recs[i - 1].idx))) {
            snprintf(err, errlen, "records out of order at seq %" PRIu64 " event %u",
                     recs[i].seq, recs[i].idx);
            return LEDGER_ERR_INVALID;
        }
    }
    for (uint32_t first = 0; first < n;) {
        uint32_t end = first;
        while (end < n && recs[end].seq == recs[first].seq) end++;
        for (uint32_t i = first; i < end; i++)
            if (!event_ok(recs, first, end, i, err, errlen)) return LEDGER_ERR_INVALID;
        if (recs[end - 1].ev.type == MATCHER_EV_TRADE) {
            snprintf(err, errlen, "seq %" PRIu64 ": trade without its LEASE", recs[first].seq);
            return LEDGER_ERR_INVALID;
        }
        first = end;
    }
    return LEDGER_OK;
}

static void build_plan(ledger_settler *s, const ledger_rec *recs, uint32_t n, uint64_t position)
{
    ledger_plan *p = &s->plan;
    for (uint32_t first = 0; first < n;) {
        uint32_t end = first;
        while (end < n && recs[end].seq == recs[first].seq) end++;
        if (recs[first].seq <= position) {
            arr_add_i64(&p->dup_seqs, (int64_t)recs[first].seq);
            arr_add_i64(&p->dup_counts, end - first);
            /* stored rows of either algorithm: send both (redeliveries
             * are rare, the second digest is cheap next to a round trip) */
            arr_add_i64(&p->dup_digests, (int64_t)ledger_digest(recs + first, end - first));
            arr_add_i64(&p->dup_digests_v1, (int64_t)ledger_digest_alg(recs + first, end - first,
                                                                        LEDGER_DIGEST_FNV1A));
            p->n_dups++;
        } else {
            command_rows(s, recs + first, end - first);
        }
        first = end;
    }
    finish_arrays(s);
}

ledger_status ledger_settle(ledger_settler *s, ledger_db *db, const ledger_rec *recs,
                            uint32_t n, uint64_t matcher_seq, ledger_batch_result *res,
                            char *err, size_t errlen)
{
    GPUX_ASSERT(s && db && err && errlen > 0 && (recs || n == 0));
    memset(res, 0, sizeof *res);
    if (n > s->max_recs) {
        snprintf(err, errlen, "batch of %u records is over the limit %u", n, s->max_recs);
        return LEDGER_ERR_INVALID;
    }
    ledger_status st = validate(recs, n, err, errlen);
    if (st != LEDGER_OK) return st;
    uint64_t position = 0;
    st = ledger_db_begin(db, &position, err, errlen);
    if (st != LEDGER_OK) return st;
    plan_reset(s, position, matcher_seq);
    build_plan(s, recs, n, position);
    st = ledger_db_verify_dups(db, &s->plan, err, errlen);
    if (st == LEDGER_OK) st = ledger_db_apply(db, &s->plan, err, errlen);
    else ledger_db_rollback(db);
    if (st != LEDGER_OK) return st;
    res->last_seq = s->plan.last_seq;
    res->new_commands = s->plan.n_cmds;
    res->dup_commands = s->plan.n_dups;
    res->trades = s->plan.rows[LEDGER_T_TRADES];
    res->transfers = s->plan.n_legs;
    return LEDGER_OK;
}
