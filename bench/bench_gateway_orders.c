/* bench_gateway_orders.c — authenticated POST /v1/orders through the whole
 * stack (wrk -> gpux-gateway -> gpux-matcher with its journal fsync on),
 * over keep-alive HTTP and over HTTPS, plus a bare libevent "hello" server
 * under the same wrk load as the yardstick.
 *
 * Prints (operations.md format, last value wins):
 *   bench gateway_hello      req_per_s=… p99_ms=…
 *   bench gateway_orders     req_per_s=… p99_ms=… non2xx=… ratio_to_hello_pct=…
 *                            gateway_cpu_us_per_req=… matcher_cpu_us_per_req=…
 *                            (CPU time of each process over the run / requests
 *                            answered: the figure the noisy shared VM moves
 *                            least)
 *   bench gateway_orders_tls req_per_s=… p99_ms=… non2xx=…
 *   bench gateway_account    req_per_s=… p99_ms=…   (GET /v1/account: a
 *                            matcher round trip without the journal, to
 *                            tell the nng round trip from the fsync)
 * On stderr, after the runs: the gateway's batching counters (commands per
 * batched matcher message, where batched orders' events came from) and
 * the matcher's group-commit figures (commands per commit, ms per write +
 * fdatasync) for the whole invocation.
 * The orders are ioc bids that find nothing to trade: each is validated,
 * authenticated, journaled (fsync) and acknowledged, and the book stays
 * the same size however long the run. A benchmark asserts nothing.
 *
 * Environment: GPUX_BIN (binaries, default build/rel/bin),
 * GPUX_BENCH_SECONDS (per run, default 10), GPUX_BENCH_CONNECTIONS
 * (default 64). Needs wrk and openssl on PATH. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "gateway/gateway.h"
#include "gateway/server.h"

typedef struct wrk_result {
    double req_per_s;
    double p99_ms;
    long non2xx;
    int ok;
} wrk_result;

static char tmpdir[256];
static pid_t pids[4];
static int n_pids;

static void stop_all(void)
{
    for (int i = n_pids - 1; i >= 0; i--) {
        kill(pids[i], SIGTERM);
        waitpid(pids[i], NULL, 0);
    }
    n_pids = 0;
    if (tmpdir[0]) {
        /* the matcher's group-commit figures (commands per commit), for
         * whoever reads the progress output */
        char cmd[400];
        snprintf(cmd, sizeof cmd, "grep -h 'group commits' %s/matcher.log >&2", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench: no group commit figures in %s/matcher.log\n", tmpdir);
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench: could not remove %s\n", tmpdir);
    }
}

static pid_t spawn(char *const argv[], const char *log, char *const extra_env)
{
    pid_t p = fork();
    if (p == 0) {
        FILE *f = freopen(log, "w", stderr);
        (void)f;
        if (extra_env)
            putenv(extra_env);
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    pids[n_pids++] = p;
    return p;
}

/* ---- the yardstick: a bare libevent hello server ---------------------------- */

static void hello_cb(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evbuffer *b = evhttp_request_get_output_buffer(req);
    evbuffer_add(b, "{\"hello\":\"world\"}", 17);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, 200, "OK", NULL);
}

static int start_hello(int *port)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t p = fork();
    if (p == 0) {
        struct event_base *base = event_base_new();
        struct evhttp *h = evhttp_new(base);
        evhttp_set_gencb(h, hello_cb, NULL);
        struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(h, "127.0.0.1", 0);
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl);
        int prt = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        if (write(fds[1], &prt, sizeof prt) != sizeof prt)
            _exit(1);
        event_base_dispatch(base);
        _exit(0);
    }
    pids[n_pids++] = p;
    close(fds[1]);
    ssize_t r = read(fds[0], port, sizeof *port);
    close(fds[0]);
    return r == sizeof *port ? 0 : -1;
}

/* ---- wrk ------------------------------------------------------------------------ */

static double to_ms(double v, const char *unit)
{
    if (strcmp(unit, "us") == 0)
        return v / 1000.0;
    if (strcmp(unit, "s") == 0)
        return v * 1000.0;
    if (strcmp(unit, "m") == 0)
        return v * 60000.0;
    return v; /* ms */
}

static wrk_result run_wrk(const char *url, const char *script, int secs, int conns)
{
    wrk_result r = {0};
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "wrk -t1 -c%d -d%ds --latency %s%s %s 2>&1", conns, secs,
             script ? "-s " : "", script ? script : "", url);
    FILE *p = popen(cmd, "r");
    if (!p)
        return r;
    char line[512];
    while (fgets(line, sizeof line, p)) {
        fputs(line, stderr);
        double v;
        char unit[8];
        if (sscanf(line, " 99%% %lf%7s", &v, unit) == 2)
            r.p99_ms = to_ms(v, unit);
        else if (sscanf(line, "Requests/sec: %lf", &v) == 1) {
            r.req_per_s = v;
            r.ok = 1;
        } else
            sscanf(line, " Non-2xx or 3xx responses: %ld", &r.non2xx);
    }
    pclose(p);
    return r;
}

/* ---- set-up through the wire ---------------------------------------------------- */

static int wire_cmd_sync(const char *addr, const wire_cmd *w, wire_reply *rep)
{
    uint8_t buf[sizeof(wire_hdr) + sizeof(wire_cmd)];
    size_t n = wire_encode_cmd(buf, sizeof buf, w);
    uint8_t *out;
    size_t out_len;
    wire_reader rd;
    char err[128];
    if (gw_mc_call_blocking(addr, buf, n, 5000, &out, &out_len) != 0)
        return -1;
    int rc = wire_decode_reply(out, out_len, rep, &rd, err, sizeof err);
    free(out);
    return rc == 0 && rep->status == WIRE_ST_OK ? 0 : -1;
}

/* A funded buyer with a key; returns 0 and the key. */
static int make_buyer(const char *addr, char key[GW_KEY_LEN + 1])
{
    wire_reply rep;
    uint8_t hash[GW_SHA256_LEN];
    wire_cmd a = {.type = MATCHER_CMD_CREATE_ACCOUNT, .roles = MATCHER_ROLE_BUYER};
    strcpy(a.name, "bench-buyer");
    if (gw_key_generate(key, hash) != 0)
        return -1;
    for (int i = 0; i < 200 && wire_cmd_sync(addr, &a, &rep) != 0; i++)
        usleep(100000); /* the matcher is still starting */
    if (rep.status != WIRE_ST_OK)
        return -1;
    uint32_t acct = rep.account;
    wire_cmd k = {.type = WIRE_CMD_ADD_KEY, .account = acct};
    memcpy(k.key_hash, hash, sizeof hash);
    wire_cmd d = {.type = MATCHER_CMD_DEPOSIT, .account = acct,
                  .amount_micros = MATCHER_MAX_AMOUNT_MICROS};
    return wire_cmd_sync(addr, &k, &rep) || wire_cmd_sync(addr, &d, &rep) ? -1 : 0;
}

static int wait_file(const char *path)
{
    for (int i = 0; i < 600; i++) {
        if (access(path, R_OK) == 0)
            return 0;
        usleep(100000);
    }
    return -1;
}

static int read_url(const char *path, const char *key, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    char line[256];
    int found = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0) {
            snprintf(out, cap, "%s", line + strlen(key));
            out[strcspn(out, "\n")] = '\0';
            found = 0;
        }
    if (f)
        fclose(f);
    return found;
}

static int write_script(const char *path, const char *key)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    /* An ioc bid a month ahead: accepted, journaled, nothing to trade. */
    fprintf(f,
            "wrk.method = \"POST\"\n"
            "wrk.headers[\"Content-Type\"] = \"application/json\"\n"
            "wrk.headers[\"Authorization\"] = \"Bearer %s\"\n"
            "wrk.body = '{\"side\":\"buy\",\"gpu\":\"H100\",\"region\":\"us-east\","
            "\"start\":\"%s\",\"end\":\"%s\",\"qty\":8,\"price\":\"0.01\",\"tif\":\"ioc\"}'\n",
            key, "START", "END");
    fclose(f);
    return 0;
}

static int write_get_script(const char *path, const char *key)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "wrk.headers[\"Authorization\"] = \"Bearer %s\"\n", key);
    fclose(f);
    return 0;
}

/* CPU time (user + system) a process has used so far, in microseconds;
 * -1 when /proc cannot tell. */
static int64_t cpu_us(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                     &st) != 2)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    return hz > 0 ? (int64_t)((ut + st) * 1000000ULL / (unsigned long long)hz) : -1;
}

/* Prints the gateway's batching figures from its /metrics on stderr (how
 * many orders a matcher message carried; where batched orders' events
 * came from). url is "http://127.0.0.1:PORT". */
static void print_batching(const char *url)
{
    const char *colon = strrchr(url, ':');
    int port = colon ? atoi(colon + 1) : 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    static char buf[64 * 1024];
    size_t n = 0;
    const char *req = "GET /metrics HTTP/1.0\r\n\r\n";
    if (fd >= 0 && port > 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        write(fd, req, strlen(req)) == (ssize_t)strlen(req)) {
        for (ssize_t r; n + 1 < sizeof buf && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0;)
            n += (size_t)r;
    }
    if (fd >= 0)
        close(fd);
    buf[n] = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
        if (strncmp(line, "gpux_gateway_command_batches_total", 34) == 0 ||
            strncmp(line, "gpux_gateway_batched_", 21) == 0)
            fprintf(stderr, "bench: gateway %s\n", line);
}

static bool wanted(const char *filter, const char *name)
{
    return !filter || strstr(name, filter);
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    if (!wanted(filter, "gateway_orders") && !wanted(filter, "gateway_orders_tls") &&
        !wanted(filter, "gateway_hello") && !wanted(filter, "gateway_account"))
        return 0;
    const char *bin = getenv("GPUX_BIN") ? getenv("GPUX_BIN") : "build/rel/bin";
    int secs = getenv("GPUX_BENCH_SECONDS") ? atoi(getenv("GPUX_BENCH_SECONDS")) : 10;
    int conns = getenv("GPUX_BENCH_CONNECTIONS") ? atoi(getenv("GPUX_BENCH_CONNECTIONS")) : 64;
    if (secs <= 0 || conns <= 0) {
        fprintf(stderr, "bench: GPUX_BENCH_SECONDS and GPUX_BENCH_CONNECTIONS must be > 0\n");
        return 2;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gpux-gwbench.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "bench: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    int rc = 1;
    char p[16][512];
    char acct_url[300];
    /* 0 cmd 1 pub 2 feed 3 data 4 matcher 5 gateway 6 ready 7 cert 8 key 9 script */
    snprintf(p[0], 512, "ipc://%s/cmd", tmpdir);
    snprintf(p[1], 512, "ipc://%s/pub", tmpdir);
    snprintf(p[2], 512, "ipc://%s/feed", tmpdir);
    snprintf(p[3], 512, "%s/m", tmpdir);
    snprintf(p[4], 512, "%s/gpux-matcher", bin);
    snprintf(p[5], 512, "%s/gpux-gateway", bin);
    snprintf(p[6], 512, "%s/ready", tmpdir);
    snprintf(p[7], 512, "%s/cert.pem", tmpdir);
    snprintf(p[8], 512, "%s/key.pem", tmpdir);
    snprintf(p[9], 512, "%s/orders.lua", tmpdir);
    snprintf(p[10], 512, "%s/get.lua", tmpdir);
    char cmd[1400];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 2 "
             "-subj /CN=127.0.0.1 >/dev/null 2>&1", p[8], p[7]);
    int hello_port;
    char key[GW_KEY_LEN + 1];
    char url[256], tls_url[256], hello_url[64];
    char mlog[512], glog[512];
    snprintf(mlog, sizeof mlog, "%s/matcher.log", tmpdir);
    snprintf(glog, sizeof glog, "%s/gateway.log", tmpdir);
    char *margv[] = {p[4], "--data", p[3], "--cmd", p[0], "--pub", p[1], "--feed", p[2], NULL};
    char *gargv[] = {p[5], "--http-port", "0", "--https-port", "0", "--tls-cert", p[7],
                     "--tls-key", p[8], "--matcher-cmd", p[0], "--matcher-pub", p[1],
                     "--rate", "0", "--ready-file", p[6], NULL};
    if (system(cmd) != 0 || start_hello(&hello_port) != 0) {
        fprintf(stderr, "bench: openssl or the hello server failed\n");
        goto out;
    }
    snprintf(hello_url, sizeof hello_url, "http://127.0.0.1:%d/", hello_port);
    pid_t mpid = spawn(margv, mlog, NULL);
    if (make_buyer(p[0], key) != 0) {
        fprintf(stderr, "bench: could not set up an account (see %s)\n", mlog);
        goto out;
    }
    pid_t gpid = spawn(gargv, glog, NULL);
    if (wait_file(p[6]) != 0 || read_url(p[6], "GATEWAY_URL=", url, sizeof url) ||
        read_url(p[6], "GATEWAY_TLS_URL=", tls_url, sizeof tls_url)) {
        fprintf(stderr, "bench: the gateway did not start (see %s)\n", glog);
        goto out;
    }
    if (write_script(p[9], key) != 0 || write_get_script(p[10], key) != 0)
        goto out;
    {
        /* the order window: from 30 days ahead, 24 hours */
        char start[GW_TIME_STR_LEN], end[GW_TIME_STR_LEN];
        int64_t h = (int64_t)time(NULL) / 3600 + 24 * 30;
        gw_hour_format(h, start);
        gw_hour_format(h + 24, end);
        snprintf(cmd, sizeof cmd, "sed -i 's/START/%s/; s/END/%s/' %s", start, end, p[9]);
        if (system(cmd) != 0)
            goto out;
    }
    char base_url[256];
    snprintf(base_url, sizeof base_url, "%s", url);
    snprintf(acct_url, sizeof acct_url, "%s/v1/account", url);
    strcat(url, "/v1/orders");
    strcat(tls_url, "/v1/orders");
    wrk_result hello = run_wrk(hello_url, NULL, secs, conns);
    int64_t m0 = cpu_us(mpid), g0 = cpu_us(gpid);
    wrk_result plain = run_wrk(url, p[9], secs, conns);
    int64_t m1 = cpu_us(mpid), g1 = cpu_us(gpid);
    double n_req = plain.req_per_s * secs;
    wrk_result tls = wanted(filter, "gateway_orders_tls") ? run_wrk(tls_url, p[9], secs, conns)
                                                          : (wrk_result){0};
    wrk_result acct = wanted(filter, "gateway_account") ? run_wrk(acct_url, p[10], secs, conns)
                                                        : (wrk_result){0};
    if (acct.ok)
        printf("bench gateway_account req_per_s=%.0f p99_ms=%.3f non2xx=%ld\n", acct.req_per_s,
               acct.p99_ms, acct.non2xx);
    if (hello.ok && wanted(filter, "gateway_hello"))
        printf("bench gateway_hello req_per_s=%.0f p99_ms=%.3f\n", hello.req_per_s, hello.p99_ms);
    if (plain.ok && wanted(filter, "gateway_orders"))
        printf("bench gateway_orders req_per_s=%.0f p99_ms=%.3f non2xx=%ld ratio_to_hello_pct=%.1f"
               " gateway_cpu_us_per_req=%.1f matcher_cpu_us_per_req=%.1f\n",
               plain.req_per_s, plain.p99_ms, plain.non2xx,
               hello.req_per_s > 0 ? 100.0 * plain.req_per_s / hello.req_per_s : 0.0,
               g0 >= 0 && g1 >= 0 && n_req > 0 ? (double)(g1 - g0) / n_req : -1.0,
               m0 >= 0 && m1 >= 0 && n_req > 0 ? (double)(m1 - m0) / n_req : -1.0);
    if (tls.ok)
        printf("bench gateway_orders_tls req_per_s=%.0f p99_ms=%.3f non2xx=%ld\n", tls.req_per_s,
               tls.p99_ms, tls.non2xx);
    print_batching(base_url);
    rc = hello.ok && plain.ok ? 0 : 1;
out:
    fflush(stdout);
    stop_all();
    return rc;
}
