/* catalog.c — the market catalog: which (GPU type, region) markets exist,
 * with their lot size and price tick.
 *
 * The catalog is data, not code (market.md): the operator edits a small
 * line-oriented text file (format in docs/catalog.md) and restarts; adding
 * a GPU type or a region needs no rebuild. Market ids are indexes into the
 * catalog and appear in journalled commands, so they are assigned in an
 * append-only order: adding lines at the end of the file never changes the
 * id of an existing market (see docs/catalog.md, "Market ids").
 *
 * Everything in the file is outside input: every line is validated, every
 * error names the line and what is wrong, and a failed parse leaves the
 * catalog empty. Tick sizes are parsed from decimal dollar strings straight
 * into integer micro-dollars (no floating point on a money path). */
#include "matcher/matcher.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpux_assert.h"
#include "gpux_units.h"

#define CATALOG_DEFAULT_LOT 8
#define CATALOG_DEFAULT_TICK_MICROS 100 /* $0.0001 */
#define CATALOG_MAX_LINE_LEN 256        /* bytes, without the newline */
#define CATALOG_MAX_FILE_BYTES (1u << 20)
#define CATALOG_MAX_GPUS MATCHER_MAX_MARKETS
#define CATALOG_MAX_REGIONS MATCHER_MAX_MARKETS
#define CATALOG_MAX_TOKENS 8            /* directive + names + options */

_Static_assert(CATALOG_MAX_LINE_LEN < 1024, "line buffer lives on the stack");
_Static_assert(MATCHER_NAME_LEN >= 2, "names need at least one character");

/* A GPU type as declared: its markets inherit lot and tick. */
typedef struct catalog_gpu {
    char name[MATCHER_NAME_LEN];
    int32_t lot;
    int64_t tick_micros;
} catalog_gpu;

/* Everything a parse needs besides the output catalog. */
typedef struct catalog_parser {
    matcher_catalog *cat;
    char *err;
    size_t errlen;
    uint32_t line_no;
    int32_t default_lot;
    int64_t default_tick_micros;
    uint32_t n_gpus;
    uint32_t n_regions;
    catalog_gpu gpus[CATALOG_MAX_GPUS];
    char regions[CATALOG_MAX_REGIONS][MATCHER_NAME_LEN];
    uint8_t overridden[MATCHER_MAX_MARKETS]; /* a market line was seen */
} catalog_parser;

/* Options of one line: which were given and their values. */
typedef struct catalog_opts {
    bool has_lot;
    bool has_tick;
    int32_t lot;
    int64_t tick_micros;
} catalog_opts;

static int parse_fail(catalog_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Records the first error with its line number; always returns -1. */
static int parse_fail(catalog_parser *p, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "line %u: %s", p->line_no, msg);
    return -1;
}

static bool name_char_ok(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* A GPU or region id: 1..MATCHER_NAME_LEN-1 chars of [A-Za-z0-9._-]. */
static bool name_ok(const char *s)
{
    if (!s)
        return false;
    size_t n = strnlen(s, MATCHER_NAME_LEN);
    if (n == 0 || n >= MATCHER_NAME_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char_ok(s[i]))
            return false;
    return true;
}

static bool lot_ok(int64_t lot)
{
    return lot > 0 && lot <= MATCHER_MAX_QTY;
}

static bool tick_ok(int64_t tick_micros)
{
    return tick_micros > 0 && tick_micros <= MATCHER_MAX_PRICE_MICROS;
}

/* Parses a decimal dollar amount ("0.0001", "1", "0.25") exactly into
 * micro-dollars: the API's grammar (gpux_units.h), and digits beyond the
 * sixth decimal allowed when they are zero. Returns 0, or -1 when
 * malformed or > max_micros. */
static int parse_dollars(const char *s, int64_t max_micros, int64_t *out)
{
    return gpux_money_parse(s, strlen(s), max_micros, GPUX_MONEY_ZERO_TAIL, out);
}

/* Parses a positive decimal integer of at most 9 digits. */
static int parse_int(const char *s, int64_t *out)
{
    int64_t v = 0;
    int digits = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9' || ++digits > 9)
            return -1;
        v = v * 10 + (*c - '0');
    }
    if (digits == 0)
        return -1;
    *out = v;
    return 0;
}

/* Parses key=value options (lot=, tick=) from toks[0..n). */
static int parse_opts(catalog_parser *p, char **toks, int n, catalog_opts *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 0; i < n; i++) {
        char *eq = strchr(toks[i], '=');
        if (!eq)
            return parse_fail(p, "expected key=value, got '%s'", toks[i]);
        *eq = '\0';
        const char *key = toks[i], *val = eq + 1;
        int64_t v;
        if (strcmp(key, "lot") == 0) {
            if (o->has_lot)
                return parse_fail(p, "lot given twice");
            if (parse_int(val, &v) != 0 || !lot_ok(v))
                return parse_fail(p, "lot '%s' must be a whole number of GPUs from 1 to %d",
                                  val, MATCHER_MAX_QTY);
            o->has_lot = true;
            o->lot = (int32_t)v;
        } else if (strcmp(key, "tick") == 0) {
            if (o->has_tick)
                return parse_fail(p, "tick given twice");
            if (parse_dollars(val, MATCHER_MAX_PRICE_MICROS, &v) != 0 || !tick_ok(v))
                return parse_fail(p, "tick '%s' must be a dollar amount like 0.0001, "
                                  "> 0, at most 1000, in whole micro-dollars", val);
            o->has_tick = true;
            o->tick_micros = v;
        } else {
            return parse_fail(p, "unknown option '%s' (expected lot= or tick=)", key);
        }
    }
    return 0;
}

static int check_name(catalog_parser *p, const char *what, const char *name)
{
    if (!name_ok(name))
        return parse_fail(p, "%s id '%.40s' must be 1 to %d characters of A-Z a-z 0-9 . _ -",
                          what, name, MATCHER_NAME_LEN - 1);
    return 0;
}

static int find_gpu(const catalog_parser *p, const char *name)
{
    for (uint32_t i = 0; i < p->n_gpus; i++)
        if (strcmp(p->gpus[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int find_region(const catalog_parser *p, const char *name)
{
    for (uint32_t i = 0; i < p->n_regions; i++)
        if (strcmp(p->regions[i], name) == 0)
            return (int)i;
    return -1;
}

/* Appends the market (gpu g, region r) with the GPU's lot and tick. */
static int add_pair(catalog_parser *p, uint32_t g, uint32_t r)
{
    const catalog_gpu *gpu = &p->gpus[g];
    if (p->cat->n_markets >= MATCHER_MAX_MARKETS)
        return parse_fail(p, "more than %d markets (gpu x region pairs)", MATCHER_MAX_MARKETS);
    int id = matcher_catalog_add(p->cat, gpu->name, p->regions[r], gpu->lot,
                                 gpu->tick_micros);
    GPUX_ASSERT(id >= 0); /* names, lot, tick validated; pair is new */
    return 0;
}

/* "gpu NAME [lot=N] [tick=D]": declares a GPU type and creates its markets
 * in every region declared so far, in region order. */
static int do_gpu(catalog_parser *p, char **toks, int n)
{
    if (n < 2)
        return parse_fail(p, "gpu needs a name: gpu NAME [lot=N] [tick=D]");
    if (check_name(p, "gpu", toks[1]) != 0)
        return -1;
    if (find_gpu(p, toks[1]) >= 0)
        return parse_fail(p, "gpu '%s' declared twice", toks[1]);
    catalog_opts o;
    if (parse_opts(p, toks + 2, n - 2, &o) != 0)
        return -1;
    if (p->n_gpus >= CATALOG_MAX_GPUS)
        return parse_fail(p, "more than %d gpu types", CATALOG_MAX_GPUS);
    catalog_gpu *g = &p->gpus[p->n_gpus];
    snprintf(g->name, sizeof g->name, "%s", toks[1]);
    g->lot = o.has_lot ? o.lot : p->default_lot;
    g->tick_micros = o.has_tick ? o.tick_micros : p->default_tick_micros;
    p->n_gpus++;
    for (uint32_t r = 0; r < p->n_regions; r++)
        if (add_pair(p, p->n_gpus - 1, r) != 0)
            return -1;
    return 0;
}

/* "region NAME": declares a region and creates its markets for every GPU
 * type declared so far, in GPU order. */
static int do_region(catalog_parser *p, char **toks, int n)
{
    if (n != 2)
        return parse_fail(p, "region takes exactly one name: region NAME");
    if (check_name(p, "region", toks[1]) != 0)
        return -1;
    if (find_region(p, toks[1]) >= 0)
        return parse_fail(p, "region '%s' declared twice", toks[1]);
    if (p->n_regions >= CATALOG_MAX_REGIONS)
        return parse_fail(p, "more than %d regions", CATALOG_MAX_REGIONS);
    snprintf(p->regions[p->n_regions], MATCHER_NAME_LEN, "%s", toks[1]);
    p->n_regions++;
    for (uint32_t g = 0; g < p->n_gpus; g++)
        if (add_pair(p, g, p->n_regions - 1) != 0)
            return -1;
    return 0;
}

/* "market GPU REGION [lot=N] [tick=D]": overrides one existing market. */
static int do_market(catalog_parser *p, char **toks, int n)
{
    if (n < 4)
        return parse_fail(p, "market needs a gpu, a region and at least one of "
                          "lot=N tick=D: market GPU REGION lot=N");
    if (check_name(p, "gpu", toks[1]) != 0 || check_name(p, "region", toks[2]) != 0)
        return -1;
    if (find_gpu(p, toks[1]) < 0)
        return parse_fail(p, "market: gpu '%s' is not declared above", toks[1]);
    if (find_region(p, toks[2]) < 0)
        return parse_fail(p, "market: region '%s' is not declared above", toks[2]);
    int id = matcher_catalog_find(p->cat, toks[1], toks[2]);
    GPUX_ASSERT(id >= 0); /* both declared, so the pair exists */
    if (p->overridden[id])
        return parse_fail(p, "market %s %s overridden twice", toks[1], toks[2]);
    catalog_opts o;
    if (parse_opts(p, toks + 3, n - 3, &o) != 0)
        return -1;
    if (o.has_lot)
        p->cat->markets[id].lot = o.lot;
    if (o.has_tick)
        p->cat->markets[id].tick_micros = o.tick_micros;
    p->overridden[id] = 1;
    return 0;
}

/* "default [lot=N] [tick=D]": lot and tick for GPU types declared after. */
static int do_default(catalog_parser *p, char **toks, int n)
{
    if (n < 2)
        return parse_fail(p, "default needs lot=N and/or tick=D");
    catalog_opts o;
    if (parse_opts(p, toks + 1, n - 1, &o) != 0)
        return -1;
    if (o.has_lot)
        p->default_lot = o.lot;
    if (o.has_tick)
        p->default_tick_micros = o.tick_micros;
    return 0;
}

/* Splits a NUL-terminated line (comment already cut) on blanks. Returns the
 * token count, or -1 when there are more than max. */
static int tokenize(char *line, char **toks, int max)
{
    int n = 0;
    char *s = line;
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\r')
            s++;
        if (*s == '\0')
            return n;
        if (n == max)
            return -1;
        toks[n++] = s;
        while (*s && *s != ' ' && *s != '\t' && *s != '\r')
            s++;
        if (*s)
            *s++ = '\0';
    }
}

static int parse_line(catalog_parser *p, char *line)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    char *toks[CATALOG_MAX_TOKENS];
    int n = tokenize(line, toks, CATALOG_MAX_TOKENS);
    if (n < 0)
        return parse_fail(p, "too many words (at most %d)", CATALOG_MAX_TOKENS);
    if (n == 0)
        return 0;
    if (strcmp(toks[0], "gpu") == 0)
        return do_gpu(p, toks, n);
    if (strcmp(toks[0], "region") == 0)
        return do_region(p, toks, n);
    if (strcmp(toks[0], "market") == 0)
        return do_market(p, toks, n);
    if (strcmp(toks[0], "default") == 0)
        return do_default(p, toks, n);
    return parse_fail(p, "unknown directive '%.40s' (expected gpu, region, market or default)",
                      toks[0]);
}

/* Parses every line of text into p->cat; stops at the first error. */
static int parse_text(catalog_parser *p, const char *text, size_t len)
{
    size_t pos = 0;
    while (pos < len) { /* bounded: pos advances by >= 1 each line */
        p->line_no++;
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t line_len = nl ? (size_t)(nl - (text + pos)) : len - pos;
        if (line_len > CATALOG_MAX_LINE_LEN)
            return parse_fail(p, "line longer than %d bytes", CATALOG_MAX_LINE_LEN);
        char line[CATALOG_MAX_LINE_LEN + 1];
        memcpy(line, text + pos, line_len);
        line[line_len] = '\0';
        if (strlen(line) != line_len)
            return parse_fail(p, "NUL byte in line");
        if (parse_line(p, line) != 0)
            return -1;
        pos += line_len + 1;
    }
    if (p->cat->n_markets == 0) {
        snprintf(p->err, p->errlen,
                 "catalog defines no markets (needs at least one gpu and one region)");
        return -1;
    }
    return 0;
}

int matcher_catalog_parse(matcher_catalog *cat, const char *text, size_t len,
                          char *err, size_t errlen)
{
    GPUX_ASSERT(cat && err && errlen > 0);
    GPUX_ASSERT(text || len == 0);
    cat->n_markets = 0;
    err[0] = '\0';
    catalog_parser *p = calloc(1, sizeof *p); /* ~60 KB: keep off the stack */
    if (!p) {
        snprintf(err, errlen, "out of memory parsing the catalog");
        return -1;
    }
    p->cat = cat;
    p->err = err;
    p->errlen = errlen;
    p->default_lot = CATALOG_DEFAULT_LOT;
    p->default_tick_micros = CATALOG_DEFAULT_TICK_MICROS;
    int rc = parse_text(p, text, len);
    free(p);
    if (rc != 0) {
        memset(cat, 0, sizeof *cat); /* on error the catalog is empty */
        return -1;
    }
    return 0;
}

/* Reads a whole file of at most CATALOG_MAX_FILE_BYTES into *buf. */
static int read_file(const char *path, char **buf, size_t *len, char *err,
                     size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *b = malloc(CATALOG_MAX_FILE_BYTES + 1);
    if (!b) {
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    size_t n = fread(b, 1, CATALOG_MAX_FILE_BYTES + 1, f);
    int read_err = ferror(f);
    int saved_errno = errno;
    fclose(f);
    if (read_err) {
        free(b);
        snprintf(err, errlen, "%s: %s", path, strerror(saved_errno));
        return -1;
    }
    if (n > CATALOG_MAX_FILE_BYTES) {
        free(b);
        snprintf(err, errlen, "%s: larger than %u bytes", path, CATALOG_MAX_FILE_BYTES);
        return -1;
    }
    *buf = b;
    *len = n;
    return 0;
}

int matcher_catalog_load(matcher_catalog *cat, const char *path, char *err,
                         size_t errlen)
{
    GPUX_ASSERT(cat && path && err && errlen > 0);
    cat->n_markets = 0;
    char *buf = NULL;
    size_t len = 0;
    if (read_file(path, &buf, &len, err, errlen) != 0) {
        memset(cat, 0, sizeof *cat);
        return -1;
    }
    char perr[256];
    int rc = matcher_catalog_parse(cat, buf, len, perr, sizeof perr);
    free(buf);
    if (rc != 0)
        snprintf(err, errlen, "%s: %s", path, perr);
    return rc;
}

int matcher_catalog_add(matcher_catalog *cat, const char *gpu,
                        const char *region, int32_t lot, int64_t tick_micros)
{
    GPUX_ASSERT(cat);
    GPUX_ASSERT(cat->n_markets <= MATCHER_MAX_MARKETS);
    if (cat->n_markets == MATCHER_MAX_MARKETS)
        return -1;
    if (!name_ok(gpu) || !name_ok(region) || !lot_ok(lot) || !tick_ok(tick_micros))
        return -1;
    if (matcher_catalog_find(cat, gpu, region) >= 0)
        return -1;
    uint32_t id = cat->n_markets;
    matcher_market_def *m = &cat->markets[id];
    memset(m, 0, sizeof *m);
    snprintf(m->gpu, sizeof m->gpu, "%s", gpu);
    snprintf(m->region, sizeof m->region, "%s", region);
    m->lot = lot;
    m->tick_micros = tick_micros;
    cat->n_markets = id + 1;
    return (int)id;
}

int matcher_catalog_find(const matcher_catalog *cat, const char *gpu,
                         const char *region)
{
    GPUX_ASSERT(cat);
    GPUX_ASSERT(cat->n_markets <= MATCHER_MAX_MARKETS);
    if (!gpu || !region)
        return -1;
    if (strnlen(gpu, MATCHER_NAME_LEN) >= MATCHER_NAME_LEN ||
        strnlen(region, MATCHER_NAME_LEN) >= MATCHER_NAME_LEN)
        return -1;
    for (uint32_t i = 0; i < cat->n_markets; i++) {
        const matcher_market_def *m = &cat->markets[i];
        if (strcmp(m->gpu, gpu) == 0 && strcmp(m->region, region) == 0)
            return (int)i;
    }
    return -1;
}
