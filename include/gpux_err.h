/* gpux_err.h — the one way our functions report an error from the outside
 * world: a sentence into the caller's buffer, and -1. */
#ifndef GPUX_ERR_H
#define GPUX_ERR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* Writes the formatted reason into err (errlen > 0) and returns -1, so a
 * check reads `return gpux_errf(err, errlen, "qty %d out of range", q);`. */
static inline int gpux_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int gpux_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

#endif
