/* buf.c — bounded text buffers for the settlement plan (COPY rows, array
 * literals). Integer formatting is hand-rolled because the settler formats
 * millions of integers a second and snprintf is the slow part. */
#include <stdarg.h>
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

void ledger_buf_copy_text(ledger_buf *b, const char *s)
{
    size_t n = strlen(s);
    ledger_buf_reserve(b, 2 * n);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        switch (c) {
        case '\\': b->p[b->len++] = '\\'; b->p[b->len++] = '\\'; break;
        case '\t': b->p[b->len++] = '\\'; b->p[b->len++] = 't'; break;
        case '\n': b->p[b->len++] = '\\'; b->p[b->len++] = 'n'; break;
        case '\r': b->p[b->len++] = '\\'; b->p[b->len++] = 'r'; break;
        default: b->p[b->len++] = c;
        }
    }
    b->p[b->len] = '\0';
}
