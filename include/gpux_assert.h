/* gpux_assert.h — always-on invariant assertions shared by every module.
 *
 * GPUX_ASSERT is for our own bugs only (a broken invariant, a violated
 * precondition between our own functions). It is never compiled out:
 * a matcher that keeps running with a corrupt book is worse than one that
 * stops. Errors from the outside world (bad input, a peer down) are
 * returned as status codes, never asserted. */
#ifndef GPUX_ASSERT_H
#define GPUX_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

#define GPUX_ASSERT(cond)                                                      \
    do {                                                                       \
        if (__builtin_expect(!(cond), 0)) {                                    \
            fprintf(stderr, "%s:%d: %s: assertion failed: %s\n", __FILE__,     \
                    __LINE__, __func__, #cond);                                \
            abort();                                                           \
        }                                                                      \
    } while (0)

#define GPUX_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
