/* gpux_http.c — the small blocking HTTP client the `gpux` command uses to
 * talk to a gateway: one request, one response, over libevent's evhttp
 * client (plain HTTP; for HTTPS use the gateway's TLS port with curl).
 * Blocking is right here: the CLI does one thing and prints it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "sim/gpux_cli.h"

typedef struct http_result {
    struct event_base *base;
    int status;
    char *body;
    size_t len;
    bool done;
} http_result;

static void on_done(struct evhttp_request *req, void *arg)
{
    http_result *r = arg;
    r->done = true;
    if (req) {
        r->status = evhttp_request_get_response_code(req);
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t n = evbuffer_get_length(in);
        r->body = malloc(n + 1);
        if (r->body) {
            evbuffer_remove(in, r->body, n);
            r->body[n] = 0;
            r->len = n;
        }
    }
    event_base_loopexit(r->base, NULL);
}

static enum evhttp_cmd_type method_of(const char *m)
{
    if (strcmp(m, "POST") == 0)
        return EVHTTP_REQ_POST;
    if (strcmp(m, "DELETE") == 0)
        return EVHTTP_REQ_DELETE;
    if (strcmp(m, "PATCH") == 0)
        return EVHTTP_REQ_PATCH;
    return EVHTTP_REQ_GET;
}

void gpux_http_prepare(struct evhttp_request *req, const char *host, const char *key, const char *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", host);
    evhttp_add_header(h, "Accept", "application/json");
    if (key && *key) {
        char auth[512];
        snprintf(auth, sizeof auth, "Bearer %s", key);
        evhttp_add_header(h, "Authorization", auth);
    }
    if (body) {
        char clen[24];
        snprintf(clen, sizeof clen, "%zu", strlen(body));
        evhttp_add_header(h, "Content-Length", clen);
        evhttp_add_header(h, "Content-Type", "application/json");
        evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
    }
}

int gpux_http(const char *base_url, const char *key, const char *method, const char *path, const char *body,
              int timeout_s, int *status, char **resp, char *err, size_t errlen)
{
    *status = 0;
    *resp = NULL;
    struct evhttp_uri *uri = evhttp_uri_parse(base_url);
    if (!uri || !evhttp_uri_get_host(uri) || !evhttp_uri_get_scheme(uri) ||
        strcmp(evhttp_uri_get_scheme(uri), "http") != 0) {
        snprintf(err, errlen, "bad gateway URL '%s' (want http://host:port)", base_url);
        if (uri)
            evhttp_uri_free(uri);
        return -1;
    }
    int port = evhttp_uri_get_port(uri) > 0 ? evhttp_uri_get_port(uri) : 80;
    http_result r = {.base = event_base_new()};
    struct evhttp_connection *conn =
        r.base ? evhttp_connection_base_new(r.base, NULL, evhttp_uri_get_host(uri), (unsigned short)port) : NULL;
    struct evhttp_request *req = conn ? evhttp_request_new(on_done, &r) : NULL;
    int rc = -1;
    if (req) {
        evhttp_connection_set_timeout(conn, timeout_s);
        gpux_http_prepare(req, evhttp_uri_get_host(uri), key, body);
        if (evhttp_make_request(conn, req, method_of(method), path) == 0) {
            event_base_dispatch(r.base);
            if (r.done && r.status > 0) {
                *status = r.status;
                *resp = r.body ? r.body : calloc(1, 1);
                rc = 0;
            } else {
                free(r.body);
                snprintf(err, errlen, "no answer from %s (is the gateway running?)", base_url);
            }
        }
    }
    if (conn)
        evhttp_connection_free(conn);
    if (r.base)
        event_base_free(r.base);
    evhttp_uri_free(uri);
    return rc;
}
