/* tls.c — HTTPS: the gateway's only OpenSSL TLS code (crypto.c has the
 * hashing and random bytes).
 *
 * A server SSL_CTX with the certificate chain and key from PEM files,
 * TLS 1.2 minimum, no compression or renegotiation, and a libevent hook
 * that wraps every accepted connection of one evhttp in an OpenSSL
 * bufferevent: the HTTP code above it is the same for HTTP and HTTPS. */
#include <stdio.h>
#include <stdlib.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "gateway/server.h"
#include "gpux_assert.h"

struct gw_tls {
    SSL_CTX *ctx;
};

static void ssl_reason(char *err, size_t errlen, const char *what, const char *path)
{
    unsigned long e = ERR_get_error();
    char buf[160];
    ERR_error_string_n(e, buf, sizeof buf);
    snprintf(err, errlen, "%s %s: %s", what, path, e ? buf : "unknown TLS error");
}

gw_tls *gw_tls_open(const char *cert_path, const char *key_path, char *err, size_t errlen)
{
    gw_tls *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->ctx = SSL_CTX_new(TLS_server_method());
    if (!t->ctx) {
        ssl_reason(err, errlen, "SSL_CTX_new", "");
        free(t);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(t->ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                    SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(t->ctx, cert_path) != 1) {
        ssl_reason(err, errlen, "cannot load TLS certificate", cert_path);
    } else if (SSL_CTX_use_PrivateKey_file(t->ctx, key_path, SSL_FILETYPE_PEM) != 1) {
        ssl_reason(err, errlen, "cannot load TLS key", key_path);
    } else if (SSL_CTX_check_private_key(t->ctx) != 1) {
        ssl_reason(err, errlen, "TLS key does not match certificate", key_path);
    } else {
        return t;
    }
    gw_tls_close(t);
    return NULL;
}

void gw_tls_close(gw_tls *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t);
}

/* libevent calls this for each accepted connection of the HTTPS evhttp. */
static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
    gw_tls *t = arg;
    SSL *ssl = SSL_new(t->ctx);
    if (!ssl)
        return NULL; /* evhttp drops the connection */
    return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

void gw_tls_attach(gw_tls *t, struct evhttp *http)
{
    GPUX_ASSERT(t && http);
    evhttp_set_bevcb(http, tls_bev, t);
}
