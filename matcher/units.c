/* units.c — decimal dollar strings and RFC 3339 whole hours, exactly
 * (include/gpux_units.h). Lives in the base library so the gateway, the
 * simulator and the catalog share one reading of the API's value
 * formats. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "gpux_assert.h"
#include "gpux_units.h"

#define YEAR_10000_HOURS (2932897LL * 24) /* 10000-01-01T00Z in hours */
#define MICRO_DIGITS 6

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

int gpux_money_parse(const char *s, size_t len, int64_t max_micros, unsigned flags, int64_t *out_micros)
{
    size_t i = 0;
    int64_t whole = 0, frac = 0;
    for (; i < len && is_digit(s[i]); i++) {
        if (i == GPUX_MONEY_MAX_INT_DIGITS)
            return -1;
        whole = whole * 10 + (s[i] - '0');
    }
    if (i == 0)
        return -1; /* "", ".5", "-1" */
    if (i < len && s[i] == '.') {
        size_t first = ++i;
        for (; i < len && is_digit(s[i]); i++) {
            size_t d = i - first;
            if (d < MICRO_DIGITS)
                frac = frac * 10 + (s[i] - '0');
            else if (!(flags & GPUX_MONEY_ZERO_TAIL) || s[i] != '0')
                return -1; /* finer than a micro-dollar */
        }
        size_t n_frac = i - first;
        if (n_frac == 0)
            return -1; /* "2." */
        for (size_t d = n_frac; d < MICRO_DIGITS; d++)
            frac *= 10;
    }
    if (i != len)
        return -1; /* sign, exponent, space, anything else */
    int64_t micros = whole * 1000000 + frac;
    if (micros > max_micros)
        return -1;
    *out_micros = micros;
    return 0;
}

int64_t gpux_days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void gpux_civil_from_days(int64_t z, int64_t *y, int64_t *m, int64_t *d)
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

static int digits_at(const char *s, int n, int64_t *out)
{
    int64_t v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int64_t days_in_month(int64_t y, int64_t m)
{
    static const int8_t dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dim[m - 1];
}

int gpux_hour_parse(const char *s, size_t len, int64_t *out_hour)
{
    /* 0123456789012345678 9
     * YYYY-MM-DDTHH:00:00Z */
    int64_t y, mo, d, h, mi, se;
    if (!s || len != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        s[19] != 'Z')
        return -1;
    if (digits_at(s, 4, &y) || digits_at(s + 5, 2, &mo) || digits_at(s + 8, 2, &d) ||
        digits_at(s + 11, 2, &h) || digits_at(s + 14, 2, &mi) || digits_at(s + 17, 2, &se))
        return -1;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi != 0 || se != 0)
        return -1;
    *out_hour = gpux_days_from_civil(y, mo, d) * 24 + h;
    return 0;
}

/* v (0..10^width - 1) as exactly width digits. */
static void put_digits(char *p, int64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* Digit by digit, not snprintf: the gateway formats two hours in every
 * order reply, and printf's format parsing showed in its profile. */
char *gpux_hour_format(int64_t hour, char *buf)
{
    GPUX_ASSERT(hour >= 0 && hour < YEAR_10000_HOURS);
    int64_t y, m, d;
    gpux_civil_from_days(hour / 24, &y, &m, &d);
    GPUX_ASSERT(y >= 1970 && y <= 9999);
    memcpy(buf, "0000-00-00T00:00:00Z", GPUX_HOUR_STR_LEN); /* with its NUL */
    put_digits(buf, y, 4);
    put_digits(buf + 5, m, 2);
    put_digits(buf + 8, d, 2);
    put_digits(buf + 11, hour % 24, 2);
    return buf;
}
