/* units.c — decimal money strings and RFC 3339 hours, exactly.
 *
 * Day files and trades files carry money as decimal strings and times as
 * RFC 3339 whole hours, like the HTTP API. Both are converted here with
 * integer arithmetic only (no strtod, no timegm/TZ): the result must not
 * depend on the machine, the locale or the time zone. */
#include "sim/sim.h"

#include "gpux_assert.h"

#include <string.h>

int sim_parse_micros(const char *s, int64_t max_micros, int64_t *out)
{
    int64_t whole = 0, frac = 0;
    int nwhole = 0, nfrac = 0;
    const char *p = s;

    for (; *p >= '0' && *p <= '9'; p++, nwhole++) {
        if (whole > (INT64_MAX / 1000000 - 10) / 10)
            return -1; /* far beyond any limit; stop before overflow */
        whole = whole * 10 + (*p - '0');
    }
    if (nwhole == 0 || (nwhole > 1 && s[0] == '0'))
        return -1; /* "" ".5" "007" */
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, nfrac++) {
            if (nfrac == 6)
                return -1; /* finer than a micro-dollar */
            frac = frac * 10 + (*p - '0');
        }
        if (nfrac == 0)
            return -1; /* "2." */
        for (int i = nfrac; i < 6; i++)
            frac *= 10;
    }
    if (*p != '\0')
        return -1;
    int64_t v = whole * 1000000 + frac;
    if (v > max_micros)
        return -1;
    *out = v;
    return 0;
}

/* Writes |v| as dollars.micros with 2..6 decimals into buf after sign. */
static char *fmt_u128(unsigned __int128 mag, bool neg, char *buf)
{
    char tmp[SIM_MONEY_LEN];
    size_t n = 0;
    unsigned __int128 whole = mag / 1000000;
    uint32_t frac = (uint32_t)(mag % 1000000);

    do {
        GPUX_ASSERT(n < sizeof(tmp));
        tmp[n++] = (char)('0' + (int)(whole % 10));
        whole /= 10;
    } while (whole > 0);
    size_t o = 0;
    if (neg)
        buf[o++] = '-';
    while (n > 0)
        buf[o++] = tmp[--n];
    buf[o++] = '.';
    char digits[6];
    for (int i = 5; i >= 0; i--) {
        digits[i] = (char)('0' + frac % 10);
        frac /= 10;
    }
    int keep = 6;
    while (keep > 2 && digits[keep - 1] == '0')
        keep--;
    memcpy(buf + o, digits, (size_t)keep);
    o += (size_t)keep;
    buf[o] = '\0';
    GPUX_ASSERT(o < SIM_MONEY_LEN);
    return buf;
}

char *sim_fmt_micros(int64_t micros, char *buf)
{
    return sim_fmt_micros128(micros, buf);
}

char *sim_fmt_micros128(__int128 micros, char *buf)
{
    bool neg = micros < 0;
    unsigned __int128 mag = neg ? (unsigned __int128)0 - (unsigned __int128)micros
                                : (unsigned __int128)micros;
    return fmt_u128(mag, neg, buf);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's
 * days_from_civil), valid for every year we accept. */
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

int sim_parse_hour(const char *s, int64_t *hour)
{
    int64_t y, mo, d, h, mi, se;
    if (strlen(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
        s[13] != ':' || s[16] != ':' || s[19] != 'Z')
        return -1;
    if (digits_at(s, 4, &y) || digits_at(s + 5, 2, &mo) ||
        digits_at(s + 8, 2, &d) || digits_at(s + 11, 2, &h) ||
        digits_at(s + 14, 2, &mi) || digits_at(s + 17, 2, &se))
        return -1;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
        h > 23 || mi != 0 || se != 0)
        return -1;
    *hour = days_from_civil(y, mo, d) * 24 + h;
    return 0;
}

char *sim_fmt_hour(int64_t hour, char *buf)
{
    int64_t y, m, d;
    GPUX_ASSERT(hour >= 0);
    civil_from_days(hour / 24, &y, &m, &d);
    snprintf(buf, SIM_HOUR_LEN, "%04d-%02d-%02dT%02d:00:00Z", (int)y, (int)m,
             (int)d, (int)(hour % 24));
    return buf;
}
