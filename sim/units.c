/* units.c — decimal money strings and RFC 3339 hours, exactly.
 *
 * Day files and trades files carry money as decimal strings and times as
 * RFC 3339 whole hours, like the HTTP API. Both are converted here with
 * integer arithmetic only (no strtod, no timegm/TZ): the result must not
 * depend on the machine, the locale or the time zone. */
#include "sim/sim.h"

#include "gpux_assert.h"
#include "gpux_units.h"

#include <string.h>

int sim_parse_micros(const char *s, int64_t max_micros, int64_t *out)
{
    return gpux_money_parse(s, strlen(s), max_micros, 0, out); /* the API's grammar */
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

/* Hours: the one shared reading of the API's time format. */
int sim_parse_hour(const char *s, int64_t *hour)
{
    return gpux_hour_parse(s, strlen(s), hour);
}

char *sim_fmt_hour(int64_t hour, char *buf)
{
    _Static_assert(SIM_HOUR_LEN >= GPUX_HOUR_STR_LEN, "hour buffer");
    return gpux_hour_format(hour, buf);
}
