/* gpux_cli.h — the `gpux` command: client commands against a gateway
 * (gpux_client_*) and stack control (gpux_stack_*). */
#ifndef GPUX_CLI_H
#define GPUX_CLI_H

#include <stdbool.h>
#include <stddef.h>

/* Exit codes of `gpux` (documented in --help). */
enum {
    GPUX_EXIT_OK = 0,
    GPUX_EXIT_USAGE = 64,       /* bad command line */
    GPUX_EXIT_REJECTED = 65,    /* the exchange answered 4xx */
    GPUX_EXIT_UNAVAILABLE = 69, /* gateway unreachable or 5xx */
    GPUX_EXIT_FAILED = 70,      /* a check failed / internal error */
};

/* One blocking HTTP request to base_url (http://host:port) + path. body may
 * be NULL. On 0, *status is the HTTP status and *resp a malloc'd NUL
 * terminated body (caller frees). -1 when the URL is bad or the gateway
 * cannot be reached, with the reason in err (errlen > 0); prints nothing. */
int gpux_http(const char *base_url, const char *key, const char *method, const char *path, const char *body,
              int timeout_s, int *status, char **resp, char *err, size_t errlen);

struct evhttp_request;

/* Adds what every gpux API request carries: Host, Accept, the bearer key
 * (when key is non-empty) and a JSON body (when body is non-NULL), with an
 * explicit Content-Length (libevent's client adds one only to POST and
 * PUT, and a PATCH without it is read as garbage by the server). */
void gpux_http_prepare(struct evhttp_request *req, const char *host, const char *key, const char *body);

/* Runs a client command (argv[0] is the command name: buy, sell, quote,
 * orders, order, cancel, replace, book, trades, markets, account, leases,
 * admin). Returns an exit code. */
int gpux_client_main(int argc, char **argv);

/* Runs a stack command (argv[0]: up, down, status, ledger) against the
 * data dir given by --data. Returns an exit code. */
int gpux_stack_main(int argc, char **argv);

/* Prints the client commands' usage. */
void gpux_client_usage(void);

#endif
