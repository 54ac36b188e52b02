/* gpux_client.c — `gpux buy/sell/quote/orders/...`: the exchange from a
 * terminal, in the spirit of SF Compute's `sf` CLI. Each command is one
 * API call (api.md); output is a table for people or the raw JSON with
 * --json. The gateway does all validation; this file only shapes requests
 * (it never does arithmetic on money: prices and amounts pass through as
 * the decimal strings the user typed). */
#define _GNU_SOURCE /* strptime, timegm */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/http.h>
#include <jansson.h>

#include "sim/gpux_cli.h"

typedef struct client_opts {
    const char *url;
    const char *key;
    bool json;
    int timeout_s;
} client_opts;

void gpux_client_usage(void)
{
    fputs("Client commands (gateway from --url or GPUX_URL, key from --key or GPUX_KEY):\n"
          "  gpux buy|sell --gpu G --region R --start T (--hours N | --end T) --qty N --price P\n"
          "           [--tif gtc|ioc|fok|post_only] [--min-qty N] [--min-hours N]\n"
          "           [--single-provider] [--expire-at T] [--client-id ID]\n"
          "  gpux quote --side buy|sell --gpu G --region R --start T (--hours N | --end T) --qty N\n"
          "  gpux orders [--status open]      gpux order ID\n"
          "  gpux cancel ID                   gpux replace ID [--price P] [--qty N]\n"
          "  gpux book G R [--depth N]        gpux trades G R [--limit N]\n"
          "  gpux markets                     gpux account          gpux leases\n"
          "  gpux admin account --name N --roles buyer,provider\n"
          "  gpux admin deposit|withdraw --account ID --amount A\n"
          "  gpux admin accounts\n"
          "Times are RFC 3339 UTC whole hours (2026-12-01T00:00:00Z); prices and amounts\n"
          "are decimal dollars (2.35). Add --json for the raw API answer.\n"
          "Exit status: 0 ok, 64 usage, 65 rejected by the exchange (4xx),\n"
          "69 gateway unavailable (5xx or unreachable), 70 internal error.\n",
          stdout);
}

/* ---- output ---- */

static void cell(char *out, size_t n, json_t *v)
{
    if (json_is_string(v))
        snprintf(out, n, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, n, "%lld", (long long)json_integer_value(v));
    else if (json_is_true(v))
        snprintf(out, n, "true");
    else if (json_is_false(v))
        snprintf(out, n, "false");
    else if (json_is_array(v)) {
        char *s = json_dumps(v, JSON_COMPACT);
        snprintf(out, n, "%s", s ? s : "");
        free(s);
    } else if (json_is_null(v) || !v)
        snprintf(out, n, "-");
    else
        snprintf(out, n, "?");
}

/* Prints rows (objects) as a table of the given columns. */
static void print_table(json_t *rows, const char *const *cols)
{
    size_t nc = 0, width[16] = {0};
    while (cols[nc] && nc < 16) {
        width[nc] = strlen(cols[nc]);
        nc++;
    }
    size_t i;
    json_t *row;
    char buf[256];
    json_array_foreach(rows, i, row)
    {
        for (size_t c = 0; c < nc; c++) {
            cell(buf, sizeof buf, json_object_get(row, cols[c]));
            if (strlen(buf) > width[c])
                width[c] = strlen(buf);
        }
    }
    for (size_t c = 0; c < nc; c++)
        printf("%-*s%s", (int)width[c], cols[c], c + 1 < nc ? "  " : "\n");
    json_array_foreach(rows, i, row)
    {
        for (size_t c = 0; c < nc; c++) {
            cell(buf, sizeof buf, json_object_get(row, cols[c]));
            printf("%-*s%s", (int)width[c], buf, c + 1 < nc ? "  " : "\n");
        }
    }
    if (json_array_size(rows) == 0)
        printf("(none)\n");
}

static void print_object(json_t *obj, const char *const *cols)
{
    json_t *rows = json_array();
    json_array_append(rows, obj);
    print_table(rows, cols);
    json_decref(rows);
}

static const char *const ORDER_COLS[] = {"order_id", "status", "side", "gpu", "region", "start", "end",
                                         "qty", "filled_qty", "price", "tif", NULL};

/* ---- one call ---- */

/* Calls the API; on success returns the parsed body (caller decrefs) and
 * prints nothing; on failure prints the API's error and sets *exit_code. */
static json_t *call(const client_opts *o, const char *method, const char *path, json_t *body, int *exit_code)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    int status;
    char *resp;
    char why[256];
    int rc = gpux_http(o->url, o->key, method, path, text, o->timeout_s, &status, &resp, why, sizeof why);
    free(text);
    if (rc != 0) {
        fprintf(stderr, "gpux: %s\n", why);
        *exit_code = GPUX_EXIT_UNAVAILABLE;
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loads(resp, 0, &jerr);
    if (status >= 400 || !j) {
        json_t *err = j ? json_object_get(j, "error") : NULL;
        if (o->json && j)
            printf("%s\n", resp);
        else if (err)
            fprintf(stderr, "gpux: %d %s: %s\n", status, json_string_value(json_object_get(err, "code")),
                    json_string_value(json_object_get(err, "message")));
        else
            fprintf(stderr, "gpux: HTTP %d: %s\n", status, resp);
        *exit_code = status >= 500 || !j ? GPUX_EXIT_UNAVAILABLE : GPUX_EXIT_REJECTED;
        free(resp);
        json_decref(j);
        return NULL;
    }
    if (o->json)
        printf("%s\n", resp);
    free(resp);
    *exit_code = GPUX_EXIT_OK;
    return j;
}

/* ---- time helpers: only to turn --hours into an end time ---- */

static int parse_hour(const char *s, time_t *out)
{
    struct tm tm = {0};
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end || tm.tm_min || tm.tm_sec)
        return -1;
    *out = timegm(&tm);
    return 0;
}

static void format_hour(time_t t, char *out, size_t n)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- commands ---- */

typedef struct order_args {
    const char *gpu, *region, *start, *end, *hours, *qty, *price, *tif, *min_qty, *min_hours, *expire_at,
        *client_id, *side, *status, *depth, *limit, *name, *roles, *account, *amount;
    bool single_provider;
} order_args;

enum {
    OPT_GPU = 256, OPT_REGION, OPT_START, OPT_END, OPT_HOURS, OPT_QTY, OPT_PRICE, OPT_TIF, OPT_MIN_QTY,
    OPT_MIN_HOURS, OPT_SP, OPT_EXPIRE, OPT_CID, OPT_SIDE, OPT_STATUS, OPT_DEPTH, OPT_LIMIT, OPT_NAME,
    OPT_ROLES, OPT_ACCOUNT, OPT_AMOUNT, OPT_URL, OPT_KEY, OPT_JSON, OPT_TIMEOUT
};

static const struct option LONG_OPTS[] = {
    {"gpu", 1, 0, OPT_GPU}, {"region", 1, 0, OPT_REGION}, {"start", 1, 0, OPT_START}, {"end", 1, 0, OPT_END},
    {"hours", 1, 0, OPT_HOURS}, {"qty", 1, 0, OPT_QTY}, {"price", 1, 0, OPT_PRICE}, {"tif", 1, 0, OPT_TIF},
    {"min-qty", 1, 0, OPT_MIN_QTY}, {"min-hours", 1, 0, OPT_MIN_HOURS}, {"single-provider", 0, 0, OPT_SP},
    {"expire-at", 1, 0, OPT_EXPIRE}, {"client-id", 1, 0, OPT_CID}, {"side", 1, 0, OPT_SIDE},
    {"status", 1, 0, OPT_STATUS}, {"depth", 1, 0, OPT_DEPTH}, {"limit", 1, 0, OPT_LIMIT},
    {"name", 1, 0, OPT_NAME}, {"roles", 1, 0, OPT_ROLES}, {"account", 1, 0, OPT_ACCOUNT},
    {"amount", 1, 0, OPT_AMOUNT}, {"url", 1, 0, OPT_URL}, {"key", 1, 0, OPT_KEY}, {"json", 0, 0, OPT_JSON},
    {"timeout", 1, 0, OPT_TIMEOUT}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};

static int parse_opts(int argc, char **argv, client_opts *o, order_args *a)
{
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", LONG_OPTS, NULL)) != -1) {
        switch (c) {
        case OPT_GPU: a->gpu = optarg; break;
        case OPT_REGION: a->region = optarg; break;
        case OPT_START: a->start = optarg; break;
        case OPT_END: a->end = optarg; break;
        case OPT_HOURS: a->hours = optarg; break;
        case OPT_QTY: a->qty = optarg; break;
        case OPT_PRICE: a->price = optarg; break;
        case OPT_TIF: a->tif = optarg; break;
        case OPT_MIN_QTY: a->min_qty = optarg; break;
        case OPT_MIN_HOURS: a->min_hours = optarg; break;
        case OPT_SP: a->single_provider = true; break;
        case OPT_EXPIRE: a->expire_at = optarg; break;
        case OPT_CID: a->client_id = optarg; break;
        case OPT_SIDE: a->side = optarg; break;
        case OPT_STATUS: a->status = optarg; break;
        case OPT_DEPTH: a->depth = optarg; break;
        case OPT_LIMIT: a->limit = optarg; break;
        case OPT_NAME: a->name = optarg; break;
        case OPT_ROLES: a->roles = optarg; break;
        case OPT_ACCOUNT: a->account = optarg; break;
        case OPT_AMOUNT: a->amount = optarg; break;
        case OPT_URL: o->url = optarg; break;
        case OPT_KEY: o->key = optarg; break;
        case OPT_JSON: o->json = true; break;
        case OPT_TIMEOUT: o->timeout_s = atoi(optarg) > 0 ? atoi(optarg) : 10; break;
        case 'h': gpux_client_usage(); exit(0);
        default: return -1;
        }
    }
    return 0;
}

/* An integer option for the JSON body: digits only, else a usage error. */
static int add_int(json_t *obj, const char *field, const char *v)
{
    if (!v)
        return 0;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end) {
        fprintf(stderr, "gpux: --%s must be an integer\n", field);
        return -1;
    }
    json_object_set_new(obj, field, json_integer(n));
    return 0;
}

static int window_end(const order_args *a, char *end, size_t n)
{
    if (a->end) {
        snprintf(end, n, "%s", a->end);
        return 0;
    }
    time_t t;
    char *e;
    long hours = a->hours ? strtol(a->hours, &e, 10) : 0;
    if (!a->start || !a->hours || *e || hours <= 0 || parse_hour(a->start, &t) != 0) {
        fprintf(stderr, "gpux: give --start as YYYY-MM-DDTHH:00:00Z and --end or --hours N\n");
        return -1;
    }
    format_hour(t + hours * 3600, end, n);
    return 0;
}

static int cmd_order(const client_opts *o, const order_args *a, const char *side)
{
    char end[64];
    if (!a->gpu || !a->region || !a->start || !a->qty || !a->price) {
        fprintf(stderr, "gpux: %s needs --gpu --region --start --qty --price\n", side);
        return GPUX_EXIT_USAGE;
    }
    if (window_end(a, end, sizeof end) != 0)
        return GPUX_EXIT_USAGE;
    json_t *b = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "side", side, "gpu", a->gpu, "region", a->region,
                          "start", a->start, "end", end, "price", a->price);
    if (add_int(b, "qty", a->qty) || add_int(b, "min_qty", a->min_qty) || add_int(b, "min_hours", a->min_hours)) {
        json_decref(b);
        return GPUX_EXIT_USAGE;
    }
    if (a->tif)
        json_object_set_new(b, "tif", json_string(a->tif));
    if (a->single_provider)
        json_object_set_new(b, "single_provider", json_true());
    if (a->expire_at)
        json_object_set_new(b, "expire_at", json_string(a->expire_at));
    if (a->client_id)
        json_object_set_new(b, "client_order_id", json_string(a->client_id));
    int rc;
    json_t *r = call(o, "POST", "/v1/orders", b, &rc);
    json_decref(b);
    if (r && !o->json) {
        print_object(r, ORDER_COLS);
        json_t *fills = json_object_get(r, "fills");
        if (json_array_size(fills) > 0) {
            static const char *const cols[] = {"trade_id", "price", "qty", "start", "end", NULL};
            printf("\nfills:\n");
            print_table(fills, cols);
        }
    }
    json_decref(r);
    return rc;
}

static int cmd_simple_get(const client_opts *o, const char *path, const char *list_field,
                          const char *const *cols)
{
    int rc;
    json_t *r = call(o, "GET", path, NULL, &rc);
    if (r && !o->json) {
        if (list_field)
            print_table(json_object_get(r, list_field), cols);
        else
            print_object(r, cols);
    }
    json_decref(r);
    return rc;
}

static int cmd_quote(const client_opts *o, const order_args *a)
{
    char end[64], path[512];
    if (!a->side || !a->gpu || !a->region || !a->start || !a->qty || window_end(a, end, sizeof end) != 0) {
        fprintf(stderr, "gpux: quote needs --side --gpu --region --start (--end|--hours) --qty\n");
        return GPUX_EXIT_USAGE;
    }
    snprintf(path, sizeof path, "/v1/quote?side=%s&gpu=%s&region=%s&start=%s&end=%s&qty=%s", a->side, a->gpu,
             a->region, a->start, end, a->qty);
    static const char *const cols[] = {"fillable_qty", "avg_price", "notional", NULL};
    return cmd_simple_get(o, path, NULL, cols);
}

static int cmd_admin(const client_opts *o, const order_args *a, int argc, char **argv)
{
    const char *what = optind < argc ? argv[optind] : "";
    static const char *const acols[] = {"account_id", "name", "roles", "balance", "held", "available", NULL};
    int rc;
    json_t *b = NULL, *r = NULL;
    if (strcmp(what, "accounts") == 0)
        return cmd_simple_get(o, "/v1/admin/accounts", "accounts", acols);
    if (strcmp(what, "account") == 0) {
        if (!a->name || !a->roles) {
            fprintf(stderr, "gpux: admin account needs --name and --roles (comma separated)\n");
            return GPUX_EXIT_USAGE;
        }
        json_t *roles = json_array();
        char buf[128];
        snprintf(buf, sizeof buf, "%s", a->roles);
        for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
            json_array_append_new(roles, json_string(t));
        b = json_pack("{s:s, s:o}", "name", a->name, "roles", roles);
        r = call(o, "POST", "/v1/admin/accounts", b, &rc);
        static const char *const kcols[] = {"account_id", "name", "roles", "api_key", NULL};
        if (r && !o->json)
            print_object(r, kcols);
    } else if (strcmp(what, "deposit") == 0 || strcmp(what, "withdraw") == 0) {
        char *e;
        long long id = a->account ? strtoll(a->account, &e, 10) : -1;
        if (!a->account || *e || id < 0 || !a->amount) {
            fprintf(stderr, "gpux: admin %s needs --account ID --amount A\n", what);
            return GPUX_EXIT_USAGE;
        }
        b = json_pack("{s:I, s:s}", "account_id", id, "amount", a->amount);
        r = call(o, "POST", strcmp(what, "deposit") == 0 ? "/v1/admin/deposits" : "/v1/admin/withdrawals", b, &rc);
        if (r && !o->json)
            print_object(r, acols);
    } else {
        fprintf(stderr, "gpux: admin needs one of: account, deposit, withdraw, accounts\n");
        return GPUX_EXIT_USAGE;
    }
    json_decref(b);
    json_decref(r);
    return rc;
}

static int dispatch(const char *cmd, const client_opts *o, const order_args *a, int argc, char **argv)
{
    const char *arg1 = optind < argc ? argv[optind] : NULL;
    const char *arg2 = optind + 1 < argc ? argv[optind + 1] : NULL;
    char path[512];
    if (strcmp(cmd, "buy") == 0 || strcmp(cmd, "sell") == 0)
        return cmd_order(o, a, cmd);
    if (strcmp(cmd, "quote") == 0)
        return cmd_quote(o, a);
    if (strcmp(cmd, "orders") == 0) {
        snprintf(path, sizeof path, "/v1/orders%s%s", a->status ? "?status=" : "", a->status ? a->status : "");
        return cmd_simple_get(o, path, "orders", ORDER_COLS);
    }
    if ((strcmp(cmd, "order") == 0 || strcmp(cmd, "cancel") == 0 || strcmp(cmd, "replace") == 0) && arg1) {
        snprintf(path, sizeof path, "/v1/orders/%s", arg1);
        if (strcmp(cmd, "order") == 0)
            return cmd_simple_get(o, path, NULL, ORDER_COLS);
        json_t *b = NULL;
        if (strcmp(cmd, "replace") == 0) {
            b = json_object();
            if (a->price)
                json_object_set_new(b, "price", json_string(a->price));
            if (add_int(b, "qty", a->qty) != 0) {
                json_decref(b);
                return GPUX_EXIT_USAGE;
            }
        }
        int rc;
        json_t *r = call(o, b ? "PATCH" : "DELETE", path, b, &rc);
        if (r && !o->json)
            print_object(r, ORDER_COLS);
        json_decref(b);
        json_decref(r);
        return rc;
    }
    if ((strcmp(cmd, "book") == 0 || strcmp(cmd, "trades") == 0) && arg1 && arg2) {
        bool book = strcmp(cmd, "book") == 0;
        snprintf(path, sizeof path, "/v1/markets/%s/%s/%s?%s=%s", arg1, arg2, cmd, book ? "depth" : "limit",
                 book ? (a->depth ? a->depth : "10") : (a->limit ? a->limit : "20"));
        if (!book) {
            static const char *const cols[] = {"trade_id", "time", "price", "qty", "start", "end", NULL};
            return cmd_simple_get(o, path, "trades", cols);
        }
        int rc;
        json_t *r = call(o, "GET", path, NULL, &rc);
        static const char *const cols[] = {"price", "qty", "start", "end", NULL};
        if (r && !o->json) {
            printf("bids (best first):\n");
            print_table(json_object_get(r, "bids"), cols);
            printf("\nasks (best first):\n");
            print_table(json_object_get(r, "asks"), cols);
        }
        json_decref(r);
        return rc;
    }
    if (strcmp(cmd, "markets") == 0) {
        static const char *const cols[] = {"gpu", "region", "lot", "tick", NULL};
        return cmd_simple_get(o, "/v1/markets", "markets", cols);
    }
    if (strcmp(cmd, "account") == 0) {
        static const char *const cols[] = {"account_id", "name", "roles", "balance", "held", "available", NULL};
        return cmd_simple_get(o, "/v1/account", NULL, cols);
    }
    if (strcmp(cmd, "leases") == 0) {
        static const char *const cols[] = {"lease_id", "role", "gpu", "region", "start", "end", "qty", "price", NULL};
        return cmd_simple_get(o, "/v1/leases", "leases", cols);
    }
    if (strcmp(cmd, "admin") == 0)
        return cmd_admin(o, a, argc, argv);
    fprintf(stderr, "gpux: unknown command or missing argument: %s (see gpux --help)\n", cmd);
    return GPUX_EXIT_USAGE;
}

/* Whether url names a gateway gpux_http can reach: http://HOST[:PORT].
 * Checked before any command runs: a malformed URL is the user's typo (a
 * usage error, 64), not an unreachable gateway (69). */
static bool gateway_url_ok(const char *url)
{
    struct evhttp_uri *u = evhttp_uri_parse(url);
    if (!u)
        return false;
    const char *scheme = evhttp_uri_get_scheme(u), *host = evhttp_uri_get_host(u);
    bool ok = scheme && strcmp(scheme, "http") == 0 && host && *host && evhttp_uri_get_port(u) != 0;
    evhttp_uri_free(u);
    return ok;
}

int gpux_client_main(int argc, char **argv)
{
    client_opts o = {.url = getenv("GPUX_URL"), .key = getenv("GPUX_KEY"), .timeout_s = 10};
    order_args a = {0};
    if (parse_opts(argc, argv, &o, &a) != 0)
        return GPUX_EXIT_USAGE;
    if (!o.url || !*o.url) {
        fprintf(stderr, "gpux: no gateway: set GPUX_URL or pass --url http://127.0.0.1:PORT\n");
        return GPUX_EXIT_USAGE;
    }
    if (!gateway_url_ok(o.url)) {
        fprintf(stderr, "gpux: bad gateway URL '%s' (want http://HOST:PORT, from --url or GPUX_URL)\n", o.url);
        return GPUX_EXIT_USAGE;
    }
    return dispatch(argv[0], &o, &a, argc, argv);
}
