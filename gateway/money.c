/* money.c — exact decimal money strings and RFC 3339 whole hours.
 *
 * The API carries money and prices as decimal strings and times as
 * "YYYY-MM-DDTHH:00:00Z" (both read by include/gpux_units.h, shared with
 * the simulator and the catalog).
 * Both are parsed digit by digit into integers
 * (micro-dollars, hours since the epoch): no strtod, no rounding, no locale,
 * no timezone database. Anything that is not exactly the grammar is
 * rejected, so a value either means one exact integer or is an error. */
#include <stdio.h>
#include <string.h>

#include "gateway/gateway.h"
#include "gpux_assert.h"
#include "gpux_units.h"

int gw_money_parse(const char *s, size_t len, int64_t *out_micros)
{
    return s ? gpux_money_parse(s, len, INT64_MAX, 0, out_micros) : -1;
}

/* Formatting is digit by digit, not snprintf: every order reply formats
 * a price, two hours and a few integers, and printf's format parsing was
 * ~2% of the gateway's CPU per request. */

size_t gw_u64_format(uint64_t v, char *buf)
{
    char rev[20];
    size_t n = 0;
    do {
        rev[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0 && n < sizeof rev);
    for (size_t i = 0; i < n; i++)
        buf[i] = rev[n - 1 - i];
    buf[n] = '\0';
    return n;
}

size_t gw_i64_format(int64_t v, char *buf)
{
    if (v >= 0)
        return gw_u64_format((uint64_t)v, buf);
    buf[0] = '-';
    return 1 + gw_u64_format((uint64_t)0 - (uint64_t)v, buf + 1);
}

char *gw_money_format(int64_t micros, char *buf)
{
    /* Work on the magnitude as unsigned so INT64_MIN formats too. */
    uint64_t mag = micros < 0 ? (uint64_t)0 - (uint64_t)micros : (uint64_t)micros;
    uint64_t frac = mag % 1000000u;
    char digits[6];
    for (int i = 5; i >= 0; i--) {
        digits[i] = (char)('0' + frac % 10);
        frac /= 10;
    }
    int keep = 6;
    while (keep > 2 && digits[keep - 1] == '0')
        keep--;
    size_t n = 0;
    if (micros < 0)
        buf[n++] = '-';
    n += gw_u64_format(mag / 1000000u, buf + n);
    buf[n++] = '.';
    memcpy(buf + n, digits, (size_t)keep);
    n += (size_t)keep;
    buf[n] = '\0';
    GPUX_ASSERT(n < GW_MONEY_STR_LEN);
    return buf;
}

int gw_hour_parse(const char *s, size_t len, int64_t *out_hour)
{
    return gpux_hour_parse(s, len, out_hour);
}

char *gw_hour_format(int64_t hour, char *buf)
{
    GPUX_ASSERT(hour >= 0 && hour < GW_HOUR_MAX);
    return gpux_hour_format(hour, buf);
}

char *gw_time_format_us(int64_t ts_us, char *buf)
{
    if (ts_us < 0)
        ts_us = 0;
    int64_t secs = ts_us / 1000000;
    if (secs / 3600 >= GW_HOUR_MAX)
        secs = GW_HOUR_MAX * 3600 - 1;
    int64_t y, m, d;
    gpux_civil_from_days(secs / 86400, &y, &m, &d);
    int64_t sod = secs % 86400;
    int n = snprintf(buf, GW_TIME_STR_LEN, "%04d-%02d-%02dT%02d:%02d:%02dZ",
                     (int)y, (int)m, (int)d, (int)(sod / 3600),
                     (int)(sod / 60 % 60), (int)(sod % 60));
    GPUX_ASSERT(n == 20);
    return buf;
}
