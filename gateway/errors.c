/* errors.c — the api.md error vocabulary: stable codes, HTTP statuses and
 * the {"error": {"code", "message"}} body.
 *
 * One table maps every gateway error to its code and status, so a code can
 * never be sent with the wrong status. Engine rejections go through
 * matcher_reason_code() (the engine owns the reason -> code decision) and
 * then through this table for the status. */
#include <stdio.h>
#include <string.h>

#include "gateway/gateway.h"
#include "gpux_assert.h"

typedef struct err_row {
    const char *code;
    int status;
} err_row;

static const err_row err_rows[GW_ERR_COUNT] = {
    [GW_OK] = {"ok", 200},
    [GW_ERR_BAD_JSON] = {"bad_json", 400},
    [GW_ERR_MISSING_FIELD] = {"missing_field", 400},
    [GW_ERR_BAD_FIELD] = {"bad_field", 400},
    [GW_ERR_BAD_WINDOW] = {"bad_window", 400},
    [GW_ERR_BAD_PRICE] = {"bad_price", 400},
    [GW_ERR_BAD_QTY] = {"bad_qty", 400},
    [GW_ERR_UNKNOWN_MARKET] = {"unknown_market", 400},
    [GW_ERR_UNAUTHENTICATED] = {"unauthenticated", 401},
    [GW_ERR_FORBIDDEN] = {"forbidden", 403},
    [GW_ERR_NOT_FOUND] = {"not_found", 404},
    [GW_ERR_METHOD] = {"method_not_allowed", 405},
    [GW_ERR_CONFLICT] = {"conflict", 409},
    [GW_ERR_TOO_LARGE] = {"too_large", 413},
    [GW_ERR_INSUFFICIENT_FUNDS] = {"insufficient_funds", 422},
    [GW_ERR_WOULD_MATCH] = {"would_match", 422},
    [GW_ERR_WINDOW_IN_PAST] = {"window_in_past", 422},
    [GW_ERR_RATE_LIMITED] = {"rate_limited", 429},
    [GW_ERR_UNAVAILABLE] = {"unavailable", 503},
    [GW_ERR_INTERNAL] = {"internal", 500},
};

const char *gw_err_code(gw_err e)
{
    GPUX_ASSERT((unsigned)e < GW_ERR_COUNT);
    return err_rows[e].code;
}

int gw_err_status(gw_err e)
{
    GPUX_ASSERT((unsigned)e < GW_ERR_COUNT);
    return err_rows[e].status;
}

gw_err gw_err_from_code(const char *code)
{
    for (unsigned i = 1; i < GW_ERR_COUNT; i++)
        if (strcmp(err_rows[i].code, code) == 0)
            return (gw_err)i;
    return GW_ERR_INTERNAL;
}

gw_err gw_err_from_reason(matcher_reason r)
{
    if (r == MATCHER_OK)
        return GW_OK;
    return gw_err_from_code(matcher_reason_code(r));
}

/* Appends s JSON-escaped into buf[*pos..cap-reserve). Stops (truncates) at
 * a character boundary when full. */
static void put_escaped(char *buf, size_t cap, size_t reserve, size_t *pos,
                        const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char tmp[8];
        size_t n;
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            n = 2;
        } else if (c < 0x20) {
            n = (size_t)snprintf(tmp, sizeof tmp, "\\u%04x", c);
        } else {
            tmp[0] = (char)c;
            n = 1;
        }
        if (*pos + n + reserve >= cap)
            return;
        memcpy(buf + *pos, tmp, n);
        *pos += n;
    }
}

int gw_err_body(gw_err e, const char *message, char *buf, size_t cap)
{
    static const char tail[] = "\"}}";
    if (cap < 64)
        return -1;
    int n = snprintf(buf, cap, "{\"error\":{\"code\":\"%s\",\"message\":\"", gw_err_code(e));
    GPUX_ASSERT(n > 0 && (size_t)n < cap);
    size_t pos = (size_t)n;
    put_escaped(buf, cap, sizeof tail, &pos, message ? message : "");
    memcpy(buf + pos, tail, sizeof tail);
    return (int)(pos + sizeof tail - 1);
}
