/* gpux_units.h — RFC 3339 whole hours <-> hours since the epoch, exactly,
 * for every module that speaks the API's time format (gateway, simulator,
 * CLI). Integer arithmetic only: no timegm, no TZ, no locale. Implemented
 * in matcher/units.c (libgpux_matcher, which every module links). */
#ifndef GPUX_UNITS_H
#define GPUX_UNITS_H

#include <stddef.h>
#include <stdint.h>

#define GPUX_HOUR_STR_LEN 21 /* "YYYY-MM-DDTHH:00:00Z" + NUL */

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
