/* gpux_stack.c — `gpux up|down|status|ledger check`: the whole exchange on
 * this machine, under one data directory (operations.md).
 *
 * Layout of DIR:
 *   pg/            PostgreSQL cluster (scripts/pgtmp.sh, run as `nobody`
 *                  when we are root), port kept in pg/port
 *   matcher/       journal and snapshots
 *   tls/           self-signed cert.pem + key.pem (made on first start)
 *   admin.key      the admin API key (mode 0600, made on first start)
 *   ports          "HTTP HTTPS" chosen on first start, reused after
 *   run/NAME.pid   pids of the processes gpux started; run/NAME.ipc sockets
 *   log/NAME.log   each component's stdout+stderr
 * Every step is idempotent: `up` on a running stack starts only what is
 * missing, on a stopped one recovers everything from DIR. */
#define _GNU_SOURCE /* setsid, strcasestr */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "sim/gpux_cli.h"

#define UP_TIMEOUT_MS 60000
#define DOWN_TIMEOUT_MS 30000

typedef struct stack {
    char dir[PATH_MAX];
    char bindir[PATH_MAX];   /* where gpux-* binaries are */
    char pgtmp[PATH_MAX + 64];    /* pgtmp.sh */
    char catalog[PATH_MAX + 64];
    char root[PATH_MAX];
    char admin_key[80];
    char db_url[1024];
    int http_port, https_port;
} stack;

typedef struct component {
    const char *name;        /* matcher, ledger, gateway */
    const char *binary;      /* gpux-matcher, ... */
} component;

static const component COMPONENTS[] = {
    {"matcher", "gpux-matcher"},
    {"ledger", "gpux-ledger"},
    {"gateway", "gpux-gateway"},
};
#define N_COMPONENTS 3

/* ---- small helpers ---- */

static void path_of(const stack *s, char *out, size_t n, const char *rel)
{
    snprintf(out, n, "%s/%s", s->dir, rel);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int read_file_line(const char *path, char *out, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int ok = fgets(out, (int)n, f) != NULL;
    fclose(f);
    if (!ok)
        return -1;
    out[strcspn(out, "\r\n")] = 0;
    return 0;
}

static int write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    int rc = write(fd, text, len) == (ssize_t)len ? 0 : -1;
    if (fsync(fd) != 0)
        rc = -1;
    close(fd);
    return rc;
}

/* pid of a component gpux started and that still runs (checked against
 * /proc so a recycled pid is not mistaken for ours), or 0. */
static pid_t running_pid(const stack *s, const component *c)
{
    char path[PATH_MAX + 64], line[64], cmd[PATH_MAX];
    snprintf(path, sizeof path, "%s/run/%s.pid", s->dir, c->name);
    if (read_file_line(path, line, sizeof line) != 0)
        return 0;
    pid_t pid = (pid_t)atol(line);
    if (pid <= 0 || kill(pid, 0) != 0)
        return 0;
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(cmd, 1, sizeof cmd - 1, f);
    fclose(f);
    cmd[n] = 0;
    return strstr(cmd, c->binary) ? pid : 0;
}

/* Runs a command to completion, its stdout into out (may be NULL; then
 * stdout and stderr are discarded: used for chatty tools like openssl). */
static int run_capture(char *const argv[], char *out, size_t n)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fds[1], 1);
        if (!out)
            dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        fprintf(stderr, "gpux: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    char sink[4096];
    for (;;) {
        char *dst = out && len + 1 < n ? out + len : sink;
        size_t room = out && len + 1 < n ? n - 1 - len : sizeof sink;
        ssize_t r = read(fds[0], dst, room);
        if (r <= 0)
            break;
        if (dst != sink)
            len += (size_t)r;
    }
    if (out)
        out[len] = 0;
    close(fds[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static const char *kv_get(const char *text, const char *key, char *out, size_t n)
{
    size_t kl = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t vl = strcspn(p + kl + 1, "\n");
            snprintf(out, n, "%.*s", (int)vl, p + kl + 1);
            return out;
        }
    }
    return NULL;
}

/* ---- locating the installation ---- */

static bool is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* bin dir = the directory of this executable; root = the source tree
 * (for sql/, scripts/pgtmp.sh, matcher/catalog.default): $GPUX_ROOT, or
 * the nearest parent of the bin dir that has them. */
static int locate(stack *s)
{
    char exe[PATH_MAX], probe[PATH_MAX + 64], root[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = 0;
    *strrchr(exe, '/') = 0;
    snprintf(s->bindir, sizeof s->bindir, "%s", exe);
    const char *env = getenv("GPUX_ROOT");
    if (env) {
        snprintf(root, sizeof root, "%s", env);
    } else {
        snprintf(root, sizeof root, "%s", exe);
        for (int up = 0; up < 4; up++) {
            snprintf(probe, sizeof probe, "%s/scripts/pgtmp.sh", root);
            if (is_file(probe))
                break;
            char *slash = strrchr(root, '/');
            if (!slash || slash == root)
                break;
            *slash = 0;
        }
    }
    snprintf(s->root, sizeof s->root, "%s", root);
    snprintf(s->pgtmp, sizeof s->pgtmp, "%s/scripts/pgtmp.sh", root);
    snprintf(s->catalog, sizeof s->catalog, "%s/matcher/catalog.default", root);
    if (!is_file(s->pgtmp) || !is_file(s->catalog)) {
        fprintf(stderr, "gpux: cannot find scripts/pgtmp.sh and matcher/catalog.default (set GPUX_ROOT to the gpux tree)\n");
        return -1;
    }
    return 0;
}

/* ---- postgres (scripts/pgtmp.sh) ---- */

static int pg(stack *s, const char *verb, char *out, size_t n)
{
    char pgdir[PATH_MAX + 8];
    path_of(s, pgdir, sizeof pgdir, "pg");
    char *argv[] = {"/bin/sh", s->pgtmp, (char *)verb, pgdir, NULL};
    return run_capture(argv, out, n);
}

/* ---- processes ---- */

static void ipc_url(const stack *s, const char *name, char *out, size_t n)
{
    snprintf(out, n, "ipc://%s/run/%s.ipc", s->dir, name);
}

/* Starts one component detached (own session, output to log/NAME.log) and
 * records its pid. */
static pid_t spawn(const stack *s, const component *c, char *const args[])
{
    char bin[PATH_MAX + 32], logp[PATH_MAX + 32], pidp[PATH_MAX + 32];
    snprintf(bin, sizeof bin, "%s/%s", s->bindir, c->binary);
    snprintf(logp, sizeof logp, "%s/log/%s.log", s->dir, c->name);
    snprintf(pidp, sizeof pidp, "%s/run/%s.pid", s->dir, c->name);
    char *argv[32];
    int argc = 0;
    argv[argc++] = bin;
    for (int i = 0; args[i] && argc < 31; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        setsid();
        int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int nul = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (nul >= 0)
            dup2(nul, 0);
        setenv("GPUX_ROOT", s->root, 0);
        if (strcmp(c->name, "gateway") == 0)
            setenv("GPUX_ADMIN_KEY", s->admin_key, 1); /* registered on first start */
        execv(bin, argv);
        fprintf(stderr, "gpux: cannot run %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    char line[32];
    snprintf(line, sizeof line, "%d\n", (int)pid);
    write_file(pidp, line, 0644);
    return pid;
}

static void log_tail(const stack *s, const component *c)
{
    char logp[PATH_MAX + 32], line[512];
    snprintf(logp, sizeof logp, "%s/log/%s.log", s->dir, c->name);
    FILE *f = fopen(logp, "r");
    if (!f)
        return;
    char ring[8][512];
    int n = 0;
    while (fgets(line, sizeof line, f))
        snprintf(ring[n++ % 8], sizeof ring[0], "%s", line);
    fclose(f);
    fprintf(stderr, "--- last lines of %s:\n", logp);
    for (int i = n > 8 ? n - 8 : 0; i < n; i++)
        fprintf(stderr, "  %s", ring[i % 8]);
}

/* ---- component command lines ---- */

/* Builds the argument list of one component into args (NULL-terminated),
 * using storage in buf. Kept in one place so the flags of all three
 * binaries are visible together. */
static void component_args(const stack *s, const component *c, bool sim_clock, char buf[8][PATH_MAX + 64],
                           char *args[32])
{
    int n = 0;
    char cmd[PATH_MAX + 32], pub[PATH_MAX + 32], feed[PATH_MAX + 32];
    ipc_url(s, "cmd", cmd, sizeof cmd);
    ipc_url(s, "pub", pub, sizeof pub);
    ipc_url(s, "feed", feed, sizeof feed);
    if (strcmp(c->name, "matcher") == 0) {
        snprintf(buf[0], sizeof buf[0], "%s/matcher", s->dir);
        snprintf(buf[1], sizeof buf[1], "%s", cmd);
        snprintf(buf[2], sizeof buf[2], "%s", pub);
        snprintf(buf[3], sizeof buf[3], "%s", feed);
        snprintf(buf[4], sizeof buf[4], "%s/catalog", s->dir);
        args[n++] = "--data", args[n++] = buf[0];
        args[n++] = "--cmd", args[n++] = buf[1];
        args[n++] = "--pub", args[n++] = buf[2];
        args[n++] = "--feed", args[n++] = buf[3];
        args[n++] = "--catalog", args[n++] = buf[4];
        if (sim_clock)
            args[n++] = "--clock", args[n++] = "sim";
    } else if (strcmp(c->name, "ledger") == 0) {
        snprintf(buf[0], sizeof buf[0], "%s", s->db_url);
        snprintf(buf[1], sizeof buf[1], "%s", feed);
        snprintf(buf[2], sizeof buf[2], "%s/catalog", s->dir);
        snprintf(buf[3], sizeof buf[3], "%s", cmd); /* account names come from the matcher */
        args[n++] = "run";
        args[n++] = "--db", args[n++] = buf[0];
        args[n++] = "--feed", args[n++] = buf[1];
        args[n++] = "--catalog", args[n++] = buf[2];
        args[n++] = "--cmd", args[n++] = buf[3];
    } else {
        snprintf(buf[0], sizeof buf[0], "%d", s->http_port);
        snprintf(buf[1], sizeof buf[1], "%d", s->https_port);
        snprintf(buf[2], sizeof buf[2], "%s/tls/cert.pem", s->dir);
        snprintf(buf[3], sizeof buf[3], "%s/tls/key.pem", s->dir);
        snprintf(buf[4], sizeof buf[4], "%s", cmd);
        snprintf(buf[5], sizeof buf[5], "%s", pub);
        args[n++] = "--http-port", args[n++] = buf[0];
        args[n++] = "--https-port", args[n++] = buf[1];
        args[n++] = "--tls-cert", args[n++] = buf[2];
        args[n++] = "--tls-key", args[n++] = buf[3];
        args[n++] = "--matcher-cmd", args[n++] = buf[4];
        args[n++] = "--matcher-pub", args[n++] = buf[5];
    }
    args[n] = NULL;
}

/* ---- state of DIR ---- */

static int free_port(void);

static int load_ports(stack *s, int want_http, int want_https)
{
    char path[PATH_MAX + 16], line[64];
    path_of(s, path, sizeof path, "ports");
    int http = 0, https = 0;
    if (read_file_line(path, line, sizeof line) == 0)
        sscanf(line, "%d %d", &http, &https);
    if (want_http)
        http = want_http;
    if (want_https)
        https = want_https;
    if (!http)
        http = free_port();
    if (!https)
        https = free_port();
    if (http <= 0 || https <= 0 || http == https) {
        fprintf(stderr, "gpux: no usable HTTP/HTTPS ports\n");
        return -1;
    }
    s->http_port = http;
    s->https_port = https;
    snprintf(line, sizeof line, "%d %d\n", http, https);
    return write_file(path, line, 0644);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int ensure_catalog(const stack *s)
{
    char dst[PATH_MAX + 16];
    path_of(s, dst, sizeof dst, "catalog");
    if (is_file(dst))
        return 0; /* the stack keeps the catalog it started with */
    char *argv[] = {"/bin/cp", (char *)s->catalog, dst, NULL};
    return run_capture(argv, NULL, 0) == 0 ? 0 : -1;
}

/* A self-signed certificate for 127.0.0.1/localhost, made once. */
static int ensure_tls(const stack *s)
{
    char cert[PATH_MAX + 32], key[PATH_MAX + 32];
    path_of(s, cert, sizeof cert, "tls/cert.pem");
    path_of(s, key, sizeof key, "tls/key.pem");
    if (is_file(cert) && is_file(key))
        return 0;
    char *argv[] = {"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", key, "-out", cert, NULL};
    if (run_capture(argv, NULL, 0) != 0) {
        fprintf(stderr, "gpux: could not make a TLS certificate with openssl\n");
        return -1;
    }
    chmod(key, 0600);
    return 0;
}

static int make_dirs(stack *s, const char *dir)
{
    char real[PATH_MAX];
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "gpux: cannot create %s: %s\n", dir, strerror(errno));
        return -1;
    }
    if (!realpath(dir, real))
        return -1;
    snprintf(s->dir, sizeof s->dir, "%s", real);
    /* PostgreSQL runs as `nobody` when we are root and must reach DIR/pg. */
    chmod(s->dir, 0755);
    const char *subs[] = {"run", "log", "tls", "matcher"};
    char p[PATH_MAX + 16];
    for (size_t i = 0; i < 4; i++) {
        path_of(s, p, sizeof p, subs[i]);
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return -1;
    }
    if (strlen(s->dir) > 80) {
        fprintf(stderr, "gpux: data dir path too long for unix sockets (keep it under 80 characters)\n");
        return -1;
    }
    return 0;
}

/* The admin key: gpx_ + 64 hex digits from the kernel's CSPRNG, made on
 * first start, kept in DIR/admin.key (0600), registered by the gateway. */
static int ensure_admin_key(stack *s)
{
    char path[PATH_MAX + 16];
    path_of(s, path, sizeof path, "admin.key");
    if (read_file_line(path, s->admin_key, sizeof s->admin_key) == 0 && strlen(s->admin_key) == 68)
        return 0;
    unsigned char raw[32];
    FILE *r = fopen("/dev/urandom", "rb");
    if (!r || fread(raw, 1, sizeof raw, r) != sizeof raw) {
        if (r)
            fclose(r);
        fprintf(stderr, "gpux: cannot read /dev/urandom\n");
        return -1;
    }
    fclose(r);
    char *p = s->admin_key + sprintf(s->admin_key, "gpx_");
    for (size_t i = 0; i < sizeof raw; i++)
        p += sprintf(p, "%02x", raw[i]);
    char line[96];
    snprintf(line, sizeof line, "%s\n", s->admin_key);
    return write_file(path, line, 0600);
}

static void print_urls(const stack *s)
{
    printf("GATEWAY_URL=http://127.0.0.1:%d\n", s->http_port);
    printf("GATEWAY_TLS_URL=https://127.0.0.1:%d\n", s->https_port);
    printf("DATABASE_URL=%s\n", s->db_url);
    printf("MATCHER_CMD=ipc://%s/run/cmd.ipc\n", s->dir);
    printf("MATCHER_FEED=ipc://%s/run/feed.ipc\n", s->dir);
}

/* Waits until GET /healthz answers 200 (matcher and ledger up), or a
 * component died, or the timeout passed. */
static int wait_healthy(const stack *s, const pid_t started[N_COMPONENTS])
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", s->http_port);
    long deadline = now_ms() + UP_TIMEOUT_MS;
    int status = 0;
    while (now_ms() < deadline) {
        for (int i = 0; i < N_COMPONENTS; i++) {
            /* Our own children are watched with waitpid (their cmdline is
             * still ours until they exec); others must still be running. */
            int st;
            pid_t pid = started[i];
            bool gone = pid > 0 ? waitpid(pid, &st, WNOHANG) == pid : !running_pid(s, &COMPONENTS[i]);
            if (gone) {
                fprintf(stderr, "gpux: %s exited during start\n", COMPONENTS[i].name);
                log_tail(s, &COMPONENTS[i]);
                return -1;
            }
        }
        char *body = NULL, why[256];
        int rc = gpux_http(url, NULL, "GET", "/healthz", NULL, 2, &status, &body, why, sizeof why);
        free(body); /* not answering yet is expected while it starts */
        if (rc == 0 && status == 200)
            return 0;
        sleep_ms(200);
    }
    fprintf(stderr, "gpux: the stack did not become healthy in %d s (last /healthz status %d)\n",
            UP_TIMEOUT_MS / 1000, status);
    for (int i = 0; i < N_COMPONENTS; i++)
        log_tail(s, &COMPONENTS[i]);
    return -1;
}

static int pg_start(stack *s)
{
    char out[4096];
    if (pg(s, "start", out, sizeof out) != 0 || !kv_get(out, "DATABASE_URL", s->db_url, sizeof s->db_url)) {
        fprintf(stderr, "gpux: PostgreSQL did not start (see %s/pg/postgres.log)\n", s->dir);
        return -1;
    }
    return 0;
}

/* The clock mode is part of the stack: the first `up` records it in
 * DIR/clock and later ones use it unless told otherwise (a journal made
 * with a simulated clock must not be resumed on the wall clock by
 * accident). */
static int clock_mode(const stack *s, int asked, bool *sim_clock)
{
    char path[PATH_MAX + 16], line[16];
    path_of(s, path, sizeof path, "clock");
    if (asked < 0 && read_file_line(path, line, sizeof line) == 0) {
        *sim_clock = strcmp(line, "sim") == 0;
        return 0;
    }
    *sim_clock = asked == 1;
    return write_file(path, *sim_clock ? "sim\n" : "wall\n", 0644);
}

static int cmd_up(stack *s, int clock_asked, int http, int https)
{
    bool sim_clock;
    if (clock_mode(s, clock_asked, &sim_clock) != 0) {
        fprintf(stderr, "gpux: cannot record the clock mode in %s\n", s->dir);
        return GPUX_EXIT_FAILED;
    }
    if (ensure_catalog(s) != 0 || ensure_tls(s) != 0 || ensure_admin_key(s) != 0 || load_ports(s, http, https) != 0)
        return GPUX_EXIT_FAILED;
    if (pg_start(s) != 0)
        return GPUX_EXIT_UNAVAILABLE;
    pid_t started[N_COMPONENTS] = {0};
    for (int i = 0; i < N_COMPONENTS; i++) {
        const component *c = &COMPONENTS[i];
        if (running_pid(s, c))
            continue; /* already up: start only what is missing */
        char buf[8][PATH_MAX + 64];
        char *args[32];
        component_args(s, c, sim_clock, buf, args);
        if ((started[i] = spawn(s, c, args)) <= 0) {
            fprintf(stderr, "gpux: cannot start %s\n", c->binary);
            return GPUX_EXIT_FAILED;
        }
    }
    if (wait_healthy(s, started) != 0)
        return GPUX_EXIT_UNAVAILABLE;
    print_urls(s);
    printf("ADMIN_KEY=%s\n", s->admin_key);
    return GPUX_EXIT_OK;
}

static void stop_pid(const stack *s, const component *c)
{
    pid_t pid = running_pid(s, c);
    if (!pid)
        return;
    kill(pid, SIGTERM);
    long deadline = now_ms() + DOWN_TIMEOUT_MS;
    while (kill(pid, 0) == 0 && now_ms() < deadline) {
        waitpid(pid, NULL, WNOHANG);
        sleep_ms(50);
    }
    if (kill(pid, 0) == 0) {
        fprintf(stderr, "gpux: %s did not stop in %d s; killing it\n", c->name, DOWN_TIMEOUT_MS / 1000);
        kill(pid, SIGKILL);
    }
}

static int cmd_down(stack *s)
{
    /* Gateway first (no new commands), then the ledger, then the matcher
     * (which snapshots on SIGTERM), then PostgreSQL. */
    for (int i = N_COMPONENTS - 1; i >= 0; i--)
        stop_pid(s, &COMPONENTS[i]);
    char out[1024];
    if (pg(s, "stop", out, sizeof out) != 0) {
        fprintf(stderr, "gpux: PostgreSQL did not stop cleanly\n");
        return GPUX_EXIT_FAILED;
    }
    return GPUX_EXIT_OK;
}

static int cmd_status(stack *s)
{
    char out[4096], pgpid[32] = "";
    bool pg_up = pg(s, "status", NULL, 0) == 0;
    if (pg_up && pg(s, "start", out, sizeof out) == 0) {
        kv_get(out, "DATABASE_URL", s->db_url, sizeof s->db_url);
        kv_get(out, "POSTGRES_PID", pgpid, sizeof pgpid);
    } else if (pg(s, "url", out, sizeof out) == 0) {
        kv_get(out, "DATABASE_URL", s->db_url, sizeof s->db_url);
    }
    load_ports(s, 0, 0);
    print_urls(s);
    bool all = pg_up;
    const char *keys[] = {"MATCHER_PID", "LEDGER_PID", "GATEWAY_PID"};
    for (int i = 0; i < N_COMPONENTS; i++) {
        pid_t pid = running_pid(s, &COMPONENTS[i]);
        all = all && pid;
        if (pid)
            printf("%s=%d\n", keys[i], (int)pid);
        else
            printf("%s=\n", keys[i]);
    }
    printf("POSTGRES_PID=%s\n", pg_up ? pgpid : "");
    return all ? GPUX_EXIT_OK : GPUX_EXIT_UNAVAILABLE;
}

static int cmd_ledger_check(stack *s)
{
    if (pg(s, "status", NULL, 0) != 0) {
        fprintf(stderr, "gpux: PostgreSQL of %s is not running (gpux up first)\n", s->dir);
        return GPUX_EXIT_UNAVAILABLE;
    }
    char out[4096], feed[PATH_MAX + 32], bin[PATH_MAX + 32], catalog[PATH_MAX + 16];
    pg(s, "start", out, sizeof out);
    kv_get(out, "DATABASE_URL", s->db_url, sizeof s->db_url);
    ipc_url(s, "feed", feed, sizeof feed);
    snprintf(bin, sizeof bin, "%s/gpux-ledger", s->bindir);
    path_of(s, catalog, sizeof catalog, "catalog");
    fflush(stdout);
    /* With the matcher running, the check also compares the ledger with
     * the live matcher at the same sequence (operations.md). */
    char cmd[PATH_MAX + 32];
    ipc_url(s, "cmd", cmd, sizeof cmd);
    bool live = running_pid(s, &COMPONENTS[0]) != 0;
    pid_t pid = fork();
    if (pid == 0) {
        if (live)
            execl(bin, bin, "check", "--db", s->db_url, "--feed", feed, "--catalog", catalog, "--cmd", cmd,
                  (char *)NULL);
        else
            execl(bin, bin, "check", "--db", s->db_url, "--feed", feed, "--catalog", catalog, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? GPUX_EXIT_OK : GPUX_EXIT_FAILED;
}

int gpux_stack_main(int argc, char **argv)
{
    static const struct option lo[] = {{"data", 1, 0, 'd'}, {"http-port", 1, 0, 'p'}, {"https-port", 1, 0, 's'},
                                       {"clock", 1, 0, 'c'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    const char *data = getenv("GPUX_DATA");
    int http = 0, https = 0, ch;
    int clock_asked = -1; /* -1: as recorded in DIR (wall on first up) */
    const char *cmd = argv[0];
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'd': data = optarg; break;
        case 'p': http = atoi(optarg); break;
        case 's': https = atoi(optarg); break;
        case 'c':
            if (strcmp(optarg, "sim") != 0 && strcmp(optarg, "wall") != 0) {
                fprintf(stderr, "gpux: --clock is wall or sim\n");
                return GPUX_EXIT_USAGE;
            }
            clock_asked = strcmp(optarg, "sim") == 0;
            break;
        case 'h':
            printf("gpux up|down|status|ledger check --data DIR [--http-port N] [--https-port N] [--clock wall|sim]\n");
            return GPUX_EXIT_OK;
        default: return GPUX_EXIT_USAGE;
        }
    }
    if (strcmp(cmd, "ledger") == 0 && (optind >= argc || strcmp(argv[optind], "check") != 0)) {
        fprintf(stderr, "gpux: usage: gpux ledger check --data DIR\n");
        return GPUX_EXIT_USAGE;
    }
    if (!data || (http < 0 || http > 65535 || https < 0 || https > 65535)) {
        fprintf(stderr, "gpux: %s needs --data DIR (or GPUX_DATA)%s\n", cmd, http < 0 || https < 0 ? " and valid ports" : "");
        return GPUX_EXIT_USAGE;
    }
    stack s = {0};
    if (locate(&s) != 0 || make_dirs(&s, data) != 0)
        return GPUX_EXIT_FAILED;
    if (strcmp(cmd, "up") == 0)
        return cmd_up(&s, clock_asked, http, https);
    if (strcmp(cmd, "down") == 0)
        return cmd_down(&s);
    if (strcmp(cmd, "status") == 0)
        return cmd_status(&s);
    return cmd_ledger_check(&s);
}
