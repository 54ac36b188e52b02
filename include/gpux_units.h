/* gpux_units.h — decimal dollar strings -> micro-dollars and RFC 3339
 * whole hours <-> hours since the epoch, exactly, for every module that
 * reads the API's value formats (gateway, simulator, CLI, catalog). Integer arithmetic only: no timegm, no TZ, no locale. Implemented
 * in matcher/units.c (libgpux_matcher, which every module links). */
#ifndef GPUX_UNITS_H
#define GPUX_UNITS_H

#include <stddef.h>
#include <stdint.h>

#define GPUX_HOUR_STR_LEN 21 /* "YYYY-MM-DDTHH:00:00Z" + NUL */
#define GPUX_MONEY_MAX_INT_DIGITS 12 /* $999,999,999,999: fits int64 micros */
#define GPUX_MONEY_ZERO_TAIL 1u      /* flag: zeros after the 6th decimal are
                                        allowed ("0.00010000": catalog) */

/* Parses a decimal dollar amount of exactly len bytes (no NUL needed):
 * 1..GPUX_MONEY_MAX_INT_DIGITS digits (leading zeros allowed), then
 * optionally "." and 1..6 digits (more only with GPUX_MONEY_ZERO_TAIL and
 * all '0'); no sign, exponent, space or other character. Integer
 * arithmetic only. Returns 0 and the amount in micro-dollars when it is
 * <= max_micros, else -1 with *out_micros left alone. */
int gpux_money_parse(const char *s, size_t len, int64_t max_micros, unsigned flags, int64_t *out_micros);

/* Parses exactly "YYYY-MM-DDTHH:00:00Z" (len bytes, no NUL needed; year
 * 1970..9999, a real date, minutes and seconds 00) into hours since
 * 1970-01-01T00Z. Returns 0, or -1 and leaves *out_hour alone. */
int gpux_hour_parse(const char *s, size_t len, int64_t *out_hour);

/* Writes hour (0 <= hour < year 10000) as "YYYY-MM-DDTHH:00:00Z" into buf
 * (GPUX_HOUR_STR_LEN bytes). Returns buf. */
char *gpux_hour_format(int64_t hour, char *buf);

/* Days since 1970-01-01 of a proleptic Gregorian date and back (H.
 * Hinnant's days_from_civil / civil_from_days). */
int64_t gpux_days_from_civil(int64_t y, int64_t m, int64_t d);
void gpux_civil_from_days(int64_t days, int64_t *y, int64_t *m, int64_t *d);

#endif
