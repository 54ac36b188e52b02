/* gpux_prefetch.h — a cache prefetch the compiler cannot remove.
 *
 * Why not plain __builtin_prefetch: gcc 12 treats a function whose only
 * effect is __builtin_prefetch as free of side effects (ipa-pure-const
 * marks it const) and deletes its calls before inlining it. Sessions 4 and
 * 5 shipped two such helpers whose prefetches were not in the binary at
 * all (objdump: no prefetch instruction where the source had three): the
 * sweep's look-ahead over bid levels (matcher/match.c, sweep_prefetch) and
 * the first hop of the cross-command pipeline (matcher/prefetch.c,
 * hop_maps). An asm statement marked volatile is never deleted, wherever
 * it sits. A hint only: it never faults and changes no result. */
#ifndef GPUX_PREFETCH_H
#define GPUX_PREFETCH_H

#if defined(__x86_64__) || defined(__i386__)
#define GPUX_PREFETCH(p) __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)(p)))
#else
#define GPUX_PREFETCH(p) __builtin_prefetch(p)
#endif

#endif
