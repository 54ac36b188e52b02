/* buf.c — bounded buffers for the settlement plan (binary COPY rows, array
 * literals). Integer formatting is hand-rolled because the settler formats
 * millions of integers a second and snprintf is the slow part. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpux_assert.h"
#include "ledger/plan.h"

void ledger_buf_init(ledger_buf *b, size_t initial, size_t limit)
{
    GPUX_ASSERT(initial > 0 && initial <= limit);
    b->p = malloc(initial);
    GPUX_ASSERT(b->p); /* init-time allocation: no memory means no ledger */
    b->cap = initial;
    b->limit = limit;
    b->len = 0;
    b->p[0] = '\0';
}

void ledger_buf_free(ledger_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

void ledger_buf_reset(ledger_buf *b)
{
    b->len = 0;
    b->p[0] = '\0';
}

/* Makes room for n more bytes plus the NUL. Growing stops at the limit,
 * which is sized from the batch limit: passing it is a bug. */
void ledger_buf_reserve(ledger_buf *b, size_t n)
{
    if (b->len + n + 1 <= b->cap) return;
    size_t cap = b->cap;
    while (cap < b->len + n + 1) cap *= 2;
    if (cap > b->limit) cap = b->limit;
    GPUX_ASSERT(b->len + n + 1 <= cap);
    char *p = realloc(b->p, cap);
    GPUX_ASSERT(p);
    b->p = p;
    b->cap = cap;
}

void ledger_buf_printf(ledger_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    GPUX_ASSERT(n >= 0);
    ledger_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* ---- COPY binary format ----------------------------------------------------
 * Binary rather than text: no decimal formatting here and no parsing in the
 * server (text parsing was ~10 % of the backend's CPU per batch). Layout
 * (PostgreSQL "COPY ... WITH (FORMAT binary)"): an 11-byte signature, two
 * int32 (flags, extension length), then per row an int16 field count and
 * per field an int32 length (-1 = NULL) and the value in network order; an
 * int16 -1 ends the data. The column types must match the table exactly. */

static void put_be(ledger_buf *b, uint64_t v, int bytes)
{
    ledger_buf_reserve(b, (size_t)bytes);
    for (int i = bytes - 1; i >= 0; i--) b->p[b->len++] = (char)(uint8_t)(v >> (8 * i));
    b->p[b->len] = '\0';
}

void ledger_buf_bin_header(ledger_buf *b)
{
    static const char sig[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', '\377', '\r', '\n', '\0'};
    ledger_buf_reserve(b, sizeof sig + 8);
    memcpy(b->p + b->len, sig, sizeof sig);
    b->len += sizeof sig;
    put_be(b, 0, 4); /* flags: no OIDs */
    put_be(b, 0, 4); /* no header extension */
}

void ledger_buf_bin_trailer(ledger_buf *b) { put_be(b, 0xffff, 2); }

void ledger_buf_bin_row(ledger_buf *b, int n_fields)
{
    GPUX_ASSERT(n_fields > 0 && n_fields < 100);
    put_be(b, (uint64_t)n_fields, 2);
}

void ledger_buf_bin_i64(ledger_buf *b, int64_t v)
{
    ledger_buf_reserve(b, 12);
    put_be(b, 8, 4);
    put_be(b, (uint64_t)v, 8);
}

void ledger_buf_bin_i32(ledger_buf *b, int64_t v)
{
    GPUX_ASSERT(v >= INT32_MIN && v <= INT32_MAX); /* validated before */
    put_be(b, 4, 4);
    put_be(b, (uint64_t)(uint32_t)(int32_t)v, 4);
}

void ledger_buf_bin_i16(ledger_buf *b, int64_t v)
{
    GPUX_ASSERT(v >= INT16_MIN && v <= INT16_MAX); /* validated before */
    put_be(b, 2, 4);
    put_be(b, (uint64_t)(uint16_t)(int16_t)v, 2);
}

void ledger_buf_bin_text(ledger_buf *b, const char *s)
{
    size_t n = strlen(s);
    GPUX_ASSERT(n < 4096);
    put_be(b, n, 4);
    ledger_buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void ledger_buf_bin_null(ledger_buf *b) { put_be(b, 0xffffffffu, 4); }
