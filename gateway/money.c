/* money.c — exact decimal money strings and RFC 3339 whole hours.
 *
 * The API carries money and prices as decimal strings and times as
 * "YYYY-MM-DDTHH:00:00Z". Both are parsed digit by digit into integers
 * (micro-dollars, hours since the epoch): no strtod, no rounding, no locale,
 * no timezone database. Anything that is not exactly the grammar is
 * rejected, so a value either means one exact integer or is an error. */
#include <stdio.h>
#include <string.h>

#include "gateway/gateway.h"
#include "gpux_assert.h"

_Static_assert(GW_MONEY_MAX_INT_DIGITS <= 12, "integer part must fit int64 micros");

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

int gw_money_parse(const char *s, size_t len, int64_t *out_micros)
{
    if (!s || len == 0 || len > GW_MONEY_MAX_INT_DIGITS + 1 + 6)
        return -1;
    size_t i = 0;
    int64_t whole = 0;
    while (i < len && is_digit(s[i])) {
        whole = whole * 10 + (s[i] - '0');
        i++;
    }
    if (i == 0 || i > GW_MONEY_MAX_INT_DIGITS)
        return -1;
    int64_t frac = 0;
    int frac_digits = 0;
    if (i < len) {
        if (s[i] != '.')
            return -1;
        i++;
        while (i < len && is_digit(s[i]) && frac_digits < 6) {
            frac = frac * 10 + (s[i] - '0');
            frac_digits++;
            i++;
        }
        if (frac_digits == 0 || i != len)
            return -1; /* "5." or a 7th decimal or trailing junk */
    }
    for (int d = frac_digits; d < 6; d++)
        frac *= 10;
    *out_micros = whole * MATCHER_MICROS_PER_USD + frac;
    return 0;
}

char *gw_money_format(int64_t micros, char *buf)
{
    /* Work on the magnitude as unsigned so INT64_MIN formats too. */
    uint64_t mag = micros < 0 ? (uint64_t)0 - (uint64_t)micros : (uint64_t)micros;
    uint64_t whole = mag / 1000000u;
    uint64_t frac = mag % 1000000u;
    char digits[7];
    for (int i = 5; i >= 0; i--) {
        digits[i] = (char)('0' + frac % 10);
        frac /= 10;
    }
    int keep = 6;
    while (keep > 2 && digits[keep - 1] == '0')
        keep--;
    digits[keep] = '\0';
    int n = snprintf(buf, GW_MONEY_STR_LEN, "%s%llu.%s", micros < 0 ? "-" : "",
                     (unsigned long long)whole, digits);
    GPUX_ASSERT(n > 0 && n < GW_MONEY_STR_LEN);
    return buf;
}

/* Days since 1970-01-01 of a civil date (proleptic Gregorian), after
 * H. Hinnant's days_from_civil. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int64_t *m, int64_t *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp + (mp < 10 ? 3 : -9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int64_t y, int64_t m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Reads n digits at s into *v; -1 when any is not a digit. */
static int read_digits(const char *s, int n, int64_t *v)
{
    int64_t x = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
        x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return 0;
}

int gw_hour_parse(const char *s, size_t len, int64_t *out_hour)
{
    /* 0123456789012345678 9
     * YYYY-MM-DDTHH:00:00Z */
    if (!s || len != 20)
        return -1;
    if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':' || s[19] != 'Z')
        return -1;
    if (memcmp(s + 14, "00", 2) != 0 || memcmp(s + 17, "00", 2) != 0)
        return -1; /* not a whole hour */
    int64_t y, mo, d, h;
    if (read_digits(s, 4, &y) || read_digits(s + 5, 2, &mo) ||
        read_digits(s + 8, 2, &d) || read_digits(s + 11, 2, &h))
        return -1;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23)
        return -1;
    *out_hour = days_from_civil(y, mo, d) * 24 + h;
    return 0;
}

char *gw_hour_format(int64_t hour, char *buf)
{
    GPUX_ASSERT(hour >= 0 && hour < GW_HOUR_MAX);
    int64_t y, m, d;
    civil_from_days(hour / 24, &y, &m, &d);
    int n = snprintf(buf, GW_TIME_STR_LEN, "%04d-%02d-%02dT%02d:00:00Z", (int)y,
                     (int)m, (int)d, (int)(hour % 24));
    GPUX_ASSERT(n == 20);
    return buf;
}

char *gw_time_format_us(int64_t ts_us, char *buf)
{
    if (ts_us < 0)
        ts_us = 0;
    int64_t secs = ts_us / 1000000;
    if (secs / 3600 >= GW_HOUR_MAX)
        secs = GW_HOUR_MAX * 3600 - 1;
    int64_t y, m, d;
    civil_from_days(secs / 86400, &y, &m, &d);
    int64_t sod = secs % 86400;
    int n = snprintf(buf, GW_TIME_STR_LEN, "%04d-%02d-%02dT%02d:%02d:%02dZ",
                     (int)y, (int)m, (int)d, (int)(sod / 3600),
                     (int)(sod / 60 % 60), (int)(sod % 60));
    GPUX_ASSERT(n == 20);
    return buf;
}
