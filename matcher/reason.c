/* reason.c — api.md error codes and messages for engine rejections. */
#include "matcher/matcher.h"

typedef struct reason_text {
    const char *code;
    const char *message;
} reason_text;

static const reason_text reason_texts[MATCHER_REASON_COUNT] = {
    [MATCHER_OK] = {"ok", "accepted"},
    [MATCHER_REJ_BAD_QTY] = {"bad_qty", "qty and min_qty must be positive multiples of the market's lot, min_qty <= qty, qty <= 100000"},
    [MATCHER_REJ_BAD_WINDOW] = {"bad_window", "the window must be whole hours with end > start, at most 8760 hours long, starting at most 2 years ahead"},
    [MATCHER_REJ_WINDOW_IN_PAST] = {"window_in_past", "the window starts before the current hour"},
    [MATCHER_REJ_BAD_PRICE] = {"bad_price", "price must be > 0, at most 1000.000000 and a multiple of the market's tick"},
    [MATCHER_REJ_UNKNOWN_MARKET] = {"unknown_market", "no such market (gpu, region) in the catalog"},
    [MATCHER_REJ_INSUFFICIENT_FUNDS] = {"insufficient_funds", "the available balance does not cover this"},
    [MATCHER_REJ_WOULD_MATCH] = {"would_match", "post_only order would trade on entry"},
    [MATCHER_REJ_UNKNOWN_ACCOUNT] = {"not_found", "no such account"},
    [MATCHER_REJ_UNKNOWN_ORDER] = {"not_found", "no such open order"},
    [MATCHER_REJ_FORBIDDEN] = {"forbidden", "this account may not do that (role or ownership)"},
    [MATCHER_REJ_BAD_AMOUNT] = {"bad_field", "amount must be > 0 and at most 1000000000.000000"},
    [MATCHER_REJ_BAD_TIF] = {"bad_field", "tif must be gtc, ioc, fok (bids only) or post_only"},
    [MATCHER_REJ_BAD_SIDE] = {"bad_field", "side must be buy or sell"},
    [MATCHER_REJ_BAD_MIN_HOURS] = {"bad_field", "min_hours is for offers only, 0 <= min_hours <= window hours"},
    [MATCHER_REJ_BAD_FLAGS] = {"bad_field", "single_provider is for bids only"},
    [MATCHER_REJ_BAD_EXPIRY] = {"bad_field", "expire_at must be a whole hour after the current hour"},
    [MATCHER_REJ_BAD_CLOCK] = {"bad_field", "the clock cannot move backwards"},
    [MATCHER_REJ_BAD_ROLES] = {"bad_field", "roles must be buyer, provider and/or admin"},
    [MATCHER_REJ_BAD_COMMAND] = {"bad_field", "unknown command"},
    [MATCHER_REJ_BALANCE_LIMIT] = {"bad_field", "amount would take the balance past 100000000000.000000"},
    [MATCHER_REJ_BOOK_FULL] = {"unavailable", "the order book is full; try again later"},
    [MATCHER_REJ_ACCOUNTS_FULL] = {"unavailable", "the account table is full"},
};

const char *matcher_reason_code(matcher_reason r)
{
    if ((unsigned)r >= MATCHER_REASON_COUNT || !reason_texts[r].code)
        return "internal";
    return reason_texts[r].code;
}

const char *matcher_reason_message(matcher_reason r)
{
    if ((unsigned)r >= MATCHER_REASON_COUNT || !reason_texts[r].message)
        return "internal error";
    return reason_texts[r].message;
}
