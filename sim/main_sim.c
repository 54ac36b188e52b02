/* main_sim.c — gpux-sim: generate market days, replay them in process,
 * report on them and plot them.
 *
 * Subcommands (docs/sim.md):
 *   generate  write a day file from a scenario and a seed
 *   check     read a day file strictly and print its counts
 *   replay    replay a day file through an in-process engine, print the
 *             report, optionally write the trades file and the SVG plot
 *   report    report on a day file plus a trades file (e.g. from a stack
 *             replay), optionally write the SVG plot
 *   bench     time generate and the in-process replay, print
 *             operations.md "bench <name> key=value" lines
 *
 * Output files are written to FILE.tmp.PID and renamed when complete; on
 * SIGTERM/SIGINT the temp file is removed and the tool exits 143/130, so a
 * killed run never leaves a half-written day file behind. */
#include "sim/sim.h"
#include "sim/gpux_replay.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG(...) fprintf(stderr, "gpux-sim: " __VA_ARGS__)
#define MAX_OUTPUTS 3

static const char usage[] =
    "usage: gpux-sim COMMAND [options]\n"
    "\n"
    "  generate --scenario NAME --seed N [--out FILE] [--events N | --scale X]\n"
    "           [--markets LIST] [--hours N] [--start YYYY-MM-DDTHH:00:00Z]\n"
    "      Writes a market day (JSON Lines day file, docs/sim.md) to FILE or\n"
    "      stdout. Same scenario + seed + options -> byte-identical file.\n"
    "      NAME: baseline | hyperscaler-surplus | peak-crunch\n"
    "      --events N  approximate lines (default 30000; tests ~2000, bench 1000000)\n"
    "      --scale X   events = 30000 x X (decimal, e.g. 0.1 or 40)\n"
    "      --markets   comma list of GPU, GPU/REGION or */REGION (default: all)\n"
    "      --hours N   length of the day in hours (default 24, max 168)\n"
    "  check --day FILE\n"
    "      Reads the day file strictly; prints its counts; exit 1 on the first\n"
    "      bad line (the message names the line).\n"
    "  replay --day FILE [--catalog FILE] [--trades-out FILE] [--plot FILE.svg]\n"
    "      Replays the day through an in-process matching engine and prints\n"
    "      the report (VWAP, GPU-hours, fill rate, unfilled demand, provider\n"
    "      utilisation, fees).\n"
    "  replay --day FILE --matcher URL [--gateway URL --key ADMIN_KEY] [--lanes N]\n"
    "         [--preload] [--plot FILE.svg]\n"
    "      Replays the day through a running stack (gpux up --clock sim): over\n"
    "      HTTP through the gateway with --gateway (N connections, default\n"
    "      32), else straight into the matcher over nng in batch messages (N\n"
    "      messages in flight, default 1: the day's exact order). The clock\n"
    "      moves by commands to the matcher's command endpoint URL.\n"
    "      --preload (nng): read and check the whole day into memory first\n"
    "      (up to 10M lines), so the time shown is the stack's alone.\n"
    "  report --day FILE --trades FILE [--plot FILE.svg]\n"
    "      The report from a day file and its trades file (every order of the\n"
    "      day counted as accepted).\n"
    "  bench [--events N] [--catalog FILE]\n"
    "      Times generating a day of N events (default 1000000) and replaying a\n"
    "      tenth of it in process; prints 'bench sim_generate ...' and\n"
    "      'bench sim_inproc ...' lines (make bench format).\n"
    "\n"
    "environment:\n"
    "  GPUX_CATALOG  market catalog for replay (default $GPUX_ROOT/matcher/catalog.default,\n"
    "                else matcher/catalog.default)\n"
    "exit status: 0 ok, 1 failure (reason on stderr), 2 usage error,\n"
    "             143/130 stopped by SIGTERM/SIGINT\n";

/* ---- outputs written atomically --------------------------------------- */

typedef struct output {
    char path[4096];
    char tmp[4200];
    FILE *fp;
} output;

static output outputs[MAX_OUTPUTS];
static volatile sig_atomic_t n_outputs;

static void on_signal(int sig)
{
    static const char msg[] = "gpux-sim: stopped by signal, partial output removed\n";
    for (int i = 0; i < n_outputs; i++)
        unlink(outputs[i].tmp);
    ssize_t ignored = write(2, msg, sizeof(msg) - 1);
    (void)ignored;
    _exit(128 + sig);
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

static FILE *output_open(const char *path)
{
    if (n_outputs == MAX_OUTPUTS)
        return NULL;
    output *o = &outputs[n_outputs];
    if (strlen(path) >= sizeof(o->path)) {
        LOG("%s: path too long\n", path);
        return NULL;
    }
    strcpy(o->path, path);
    snprintf(o->tmp, sizeof(o->tmp), "%s.tmp.%ld", path, (long)getpid());
    o->fp = fopen(o->tmp, "w");
    if (!o->fp) {
        LOG("%s: cannot create: %s\n", o->tmp, strerror(errno));
        return NULL;
    }
    n_outputs = n_outputs + 1;
    return o->fp;
}

/* Closes every output; renames them into place when ok, else removes. */
static int outputs_finish(bool ok)
{
    int rc = 0;
    for (int i = 0; i < n_outputs; i++) {
        output *o = &outputs[i];
        if (fclose(o->fp) != 0 && ok) {
            LOG("%s: write failed: %s\n", o->tmp, strerror(errno));
            ok = false;
            rc = -1;
        }
    }
    for (int i = 0; i < n_outputs; i++) {
        output *o = &outputs[i];
        if (ok && rename(o->tmp, o->path) != 0) {
            LOG("%s: cannot rename into place: %s\n", o->path, strerror(errno));
            rc = -1;
        }
        if (!ok || rc != 0)
            unlink(o->tmp);
    }
    n_outputs = 0;
    return ok ? rc : -1;
}

/* ---- option parsing --------------------------------------------------- */

typedef struct opts {
    const char *scenario, *seed, *out, *events, *scale, *markets, *hours, *start;
    const char *day, *catalog, *trades_out, *trades, *plot;
    const char *matcher, *gateway, *key, *lanes;
    bool preload; /* --preload: a switch, no value */
} opts;

static int parse_opts(int argc, char **argv, opts *o)
{
    struct { const char *flag; const char **dst; } flags[] = {
        {"--scenario", &o->scenario}, {"--seed", &o->seed}, {"--out", &o->out},
        {"--events", &o->events}, {"--scale", &o->scale}, {"--markets", &o->markets},
        {"--hours", &o->hours}, {"--start", &o->start}, {"--day", &o->day},
        {"--catalog", &o->catalog}, {"--trades-out", &o->trades_out},
        {"--trades", &o->trades}, {"--plot", &o->plot},
        {"--matcher", &o->matcher}, {"--gateway", &o->gateway}, {"--key", &o->key},
        {"--lanes", &o->lanes},
    };
    memset(o, 0, sizeof(*o));
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--preload") == 0) {
            o->preload = true;
            continue;
        }
        size_t k = 0;
        while (k < sizeof(flags) / sizeof(flags[0]) && strcmp(argv[i], flags[k].flag) != 0)
            k++;
        if (k == sizeof(flags) / sizeof(flags[0])) {
            LOG("unknown option '%s' (see --help)\n", argv[i]);
            return -1;
        }
        if (i + 1 >= argc) {
            LOG("option %s needs a value\n", argv[i]);
            return -1;
        }
        *flags[k].dst = argv[++i];
    }
    return 0;
}

/* Parses a whole decimal number in [lo, hi]. */
static int parse_u64(const char *what, const char *s, uint64_t lo, uint64_t hi,
                     uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end || errno || v < lo || v > hi) {
        LOG("%s must be a whole number %llu..%llu, got '%s'\n", what,
            (unsigned long long)lo, (unsigned long long)hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int gen_config(const opts *o, sim_gen_config *cfg)
{
    char err[256];
    uint64_t v;
    int64_t micros;
    sim_gen_config_default(cfg);
    if (!o->scenario || !o->seed) {
        LOG("generate needs --scenario and --seed (see --help)\n");
        return -1;
    }
    int s = sim_scenario_find(o->scenario);
    if (s < 0) {
        LOG("unknown scenario '%s' (baseline, hyperscaler-surplus, peak-crunch)\n",
            o->scenario);
        return -1;
    }
    cfg->scenario = (sim_scenario)s;
    if (parse_u64("--seed", o->seed, 0, INT64_MAX, &cfg->seed))
        return -1;
    if (o->events && o->scale) {
        LOG("give --events or --scale, not both\n");
        return -1;
    }
    if (o->events && parse_u64("--events", o->events, 100, SIM_MAX_EVENTS / 2, &cfg->events))
        return -1;
    if (o->scale) {
        if (sim_parse_micros(o->scale, 1000 * 1000000LL, &micros) != 0 ||
            micros * 30000 / 1000000 < 100) {
            LOG("--scale must be a decimal like 0.1 or 40, giving at least 100 "
                "events, at most 1000, got '%s'\n", o->scale);
            return -1;
        }
        cfg->events = (uint64_t)(micros * 30000 / 1000000);
    }
    if (o->hours) {
        if (parse_u64("--hours", o->hours, 1, SIM_MAX_HOURS, &v))
            return -1;
        cfg->hours = (int32_t)v;
    }
    if (o->start && sim_parse_hour(o->start, &cfg->start_hour) != 0) {
        LOG("--start must be a whole UTC hour like 2026-12-01T00:00:00Z, got '%s'\n",
            o->start);
        return -1;
    }
    if (o->markets && sim_markets_parse(o->markets, &cfg->market_mask, err, sizeof(err))) {
        LOG("%s\n", err);
        return -1;
    }
    return 0;
}

/* ---- subcommands ------------------------------------------------------ */

static int cmd_generate(const opts *o)
{
    sim_gen_config cfg;
    sim_day_header hdr;
    char err[256];
    if (gen_config(o, &cfg) != 0)
        return 2;
    FILE *out = o->out ? output_open(o->out) : stdout;
    if (!out)
        return 1;
    int rc = sim_generate(&cfg, out, &hdr, err, sizeof(err));
    if (rc != 0)
        LOG("generate failed: %s\n", err);
    if (o->out && outputs_finish(rc == 0) != 0)
        return 1;
    if (rc != 0)
        return 1;
    LOG("generated %s seed %llu: %llu events, %u accounts, %u orders over %d hours -> %s\n",
        hdr.scenario, (unsigned long long)hdr.seed, (unsigned long long)hdr.events,
        hdr.accounts, hdr.orders, hdr.hours, o->out ? o->out : "stdout");
    return 0;
}

static int cmd_check(const opts *o)
{
    char err[512];
    sim_cmd c;
    uint64_t by_op[8] = {0};
    int rc;
    if (!o->day) {
        LOG("check needs --day FILE\n");
        return 2;
    }
    sim_dayfile *d = sim_dayfile_open(o->day, err, sizeof(err));
    if (!d) {
        LOG("%s\n", err);
        return 1;
    }
    while ((rc = sim_dayfile_next(d, &c, err, sizeof(err))) == 1)
        by_op[c.op]++;
    if (rc < 0) {
        LOG("%s\n", err);
        sim_dayfile_close(d);
        return 1;
    }
    const sim_day_header *h = sim_dayfile_header(d);
    printf("day %s: scenario %s seed %llu, %d hours, %llu events: %llu clock, "
           "%llu account, %llu deposit, %llu order, %llu cancel, %llu replace\n",
           o->day, h->scenario, (unsigned long long)h->seed, h->hours,
           (unsigned long long)h->events, (unsigned long long)by_op[SIM_OP_CLOCK],
           (unsigned long long)by_op[SIM_OP_ACCOUNT], (unsigned long long)by_op[SIM_OP_DEPOSIT],
           (unsigned long long)by_op[SIM_OP_ORDER], (unsigned long long)by_op[SIM_OP_CANCEL],
           (unsigned long long)by_op[SIM_OP_REPLACE]);
    sim_dayfile_close(d);
    return 0;
}

static const char *catalog_path(const opts *o, char *buf, size_t len)
{
    const char *env = getenv("GPUX_CATALOG"), *root = getenv("GPUX_ROOT");
    if (o->catalog)
        return o->catalog;
    if (env && *env)
        return env;
    if (root && *root) {
        snprintf(buf, len, "%s/matcher/catalog.default", root);
        return buf;
    }
    return "matcher/catalog.default";
}

/* The first line of a printed report: what day this is. */
static void print_day_title(const char *path)
{
    char err[256], hb[SIM_HOUR_LEN];
    sim_dayfile *d = sim_dayfile_open(path, err, sizeof(err));
    if (!d)
        return;
    const sim_day_header *h = sim_dayfile_header(d);
    printf("gpux market day %s: scenario %s, seed %llu, %d hours from %s, %llu events\n\n",
           path, h->scenario, (unsigned long long)h->seed, h->hours,
           sim_fmt_hour(h->start_hour, hb), (unsigned long long)h->events);
    sim_dayfile_close(d);
}

static int write_plot(const sim_report *r, const char *path, const char *title)
{
    FILE *fp = output_open(path);
    if (!fp)
        return -1;
    if (sim_report_plot_svg(r, title, fp) != 0) {
        LOG("%s: write failed\n", path);
        return -1;
    }
    return 0;
}

/* Replay through a running stack: over HTTP via the gateway when
 * --gateway is given (accounts made with --key, the admin key), else
 * straight into the matcher over nng. The matcher must run --clock sim. */
static int cmd_replay_stack(const opts *o)
{
    char err[512], title[128];
    sim_report *r = NULL;
    sim_replay_stats st;
    uint64_t lanes = 0;
    if (o->lanes && parse_u64("--lanes", o->lanes, 1, 256, &lanes))
        return 2;
    int rc;
    if (o->gateway) {
        if (o->preload) {
            LOG("--preload is for the replay over nng, not through the gateway\n");
            return 2;
        }
        if (!o->key) {
            LOG("replay through the gateway needs --key ADMIN_KEY\n");
            return 2;
        }
        sim_replay_http_config cfg = {.gateway_url = o->gateway, .admin_key = o->key,
                                      .matcher_url = o->matcher, .lanes = (int)lanes,
                                      .progress = isatty(2)};
        rc = sim_replay_http(o->day, &cfg, &r, &st, err, sizeof(err));
    } else {
        sim_replay_config cfg = {.matcher_url = o->matcher, .lanes = (int)lanes, .progress = isatty(2),
                                 .preload = o->preload};
        rc = sim_replay_nng(o->day, &cfg, &r, &st, err, sizeof(err));
    }
    if (rc != 0) {
        LOG("replay failed: %s\n", err);
        outputs_finish(false);
        return 1;
    }
    char fee[SIM_MONEY_LEN];
    LOG("replayed %s through %s: %llu commands (%llu rejected, %llu skipped), %llu trades, "
        "fees %s, %.1f s, %llu commands/s\n", o->day, o->gateway ? o->gateway : o->matcher,
        (unsigned long long)st.commands, (unsigned long long)st.rejected,
        (unsigned long long)st.skipped, (unsigned long long)st.trades,
        sim_fmt_micros(st.fees_micros, fee), st.seconds_ms / 1000.0,
        (unsigned long long)(st.seconds_ms > 0 ? st.commands * 1000 / (uint64_t)st.seconds_ms : 0));
    snprintf(title, sizeof(title), "gpux market day: %s", o->day);
    print_day_title(o->day);
    rc = sim_report_print(r, stdout);
    if (o->plot && write_plot(r, o->plot, title) != 0)
        rc = -1;
    sim_report_destroy(r);
    return outputs_finish(rc == 0) == 0 ? 0 : 1;
}

static int cmd_replay(const opts *o)
{
    if (o->day && o->matcher)
        return cmd_replay_stack(o);
    if (o->preload) {
        LOG("--preload is for the replay into a running stack (--matcher URL)\n");
        return 2;
    }
    char err[512], cat[4200], title[128];
    sim_report *r;
    sim_day_result res;
    if (!o->day) {
        LOG("replay needs --day FILE\n");
        return 2;
    }
    FILE *trades = o->trades_out ? output_open(o->trades_out) : NULL;
    if (o->trades_out && !trades)
        return 1;
    if (sim_day_run(o->day, catalog_path(o, cat, sizeof(cat)), trades, &r, &res, err,
                    sizeof(err)) != 0) {
        LOG("replay failed: %s\n", err);
        outputs_finish(false);
        return 1;
    }
    char fee[SIM_MONEY_LEN];
    LOG("replayed %s: %llu commands (%llu rejected), %llu trades, %llu engine events, "
        "state hash %016llx, fee account %s, money %s\n", o->day,
        (unsigned long long)res.commands, (unsigned long long)res.rejected,
        (unsigned long long)res.trades, (unsigned long long)res.engine_events,
        (unsigned long long)res.state_hash, sim_fmt_micros(res.fee_balance_micros, fee),
        res.money_conserved ? "conserved" : "NOT CONSERVED");
    snprintf(title, sizeof(title), "gpux market day: %s", o->day);
    print_day_title(o->day);
    int rc = sim_report_print(r, stdout);
    if (o->plot && write_plot(r, o->plot, title) != 0)
        rc = -1;
    sim_report_destroy(r);
    if (!res.money_conserved) {
        LOG("replay failed: the engine's balances do not add up to deposits - "
            "withdrawals\n");
        rc = -1;
    }
    return outputs_finish(rc == 0) == 0 ? 0 : 1;
}

static int cmd_report(const opts *o)
{
    char err[512], title[128];
    sim_report *r;
    long n;
    if (!o->day || !o->trades) {
        LOG("report needs --day FILE and --trades FILE\n");
        return 2;
    }
    if (sim_report_from_files(o->day, o->trades, &r, &n, err, sizeof(err)) != 0) {
        LOG("%s\n", err);
        return 1;
    }
    LOG("report on %s with %ld trades from %s\n", o->day, n, o->trades);
    snprintf(title, sizeof(title), "gpux market day: %s", o->day);
    print_day_title(o->day);
    int rc = sim_report_print(r, stdout);
    if (o->plot && write_plot(r, o->plot, title) != 0)
        rc = -1;
    sim_report_destroy(r);
    return outputs_finish(rc == 0) == 0 ? 0 : 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Generates cfg to path (NULL: /dev/null); returns seconds, or -1. */
static double timed_generate(const sim_gen_config *cfg, const char *path,
                             sim_day_header *hdr)
{
    char err[256];
    FILE *fp = path ? output_open(path) : fopen("/dev/null", "w");
    if (!fp)
        return -1;
    double t0 = now_s();
    int rc = sim_generate(cfg, fp, hdr, err, sizeof(err));
    double secs = now_s() - t0;
    if (rc != 0)
        LOG("generate failed: %s\n", err);
    if (!path)
        return fclose(fp) == 0 && rc == 0 ? secs : -1;
    return outputs_finish(rc == 0) == 0 ? secs : -1;
}

static int cmd_bench(const opts *o)
{
    char err[512], cat[4200], path[64];
    sim_gen_config cfg;
    sim_day_header hdr;
    sim_day_result res;
    sim_report *r;
    sim_gen_config_default(&cfg);
    cfg.events = 1000000;
    if (o->events && parse_u64("--events", o->events, 1000, SIM_MAX_EVENTS / 2, &cfg.events))
        return 2;
    snprintf(path, sizeof(path), "/tmp/gpux-sim-bench-%ld.jsonl", (long)getpid());
    double secs = timed_generate(&cfg, NULL, &hdr);
    if (secs < 0)
        return 1;
    printf("bench sim_generate events=%llu seconds=%.3f events_per_s=%.0f\n",
           (unsigned long long)hdr.events, secs, (double)hdr.events / secs);
    fflush(stdout);
    cfg.events /= 10;
    if (timed_generate(&cfg, path, &hdr) < 0)
        return 1;
    double t0 = now_s();
    int rc = sim_day_run(path, catalog_path(o, cat, sizeof(cat)), NULL, &r, &res, err,
                         sizeof(err));
    secs = now_s() - t0;
    unlink(path);
    if (rc != 0) {
        LOG("replay failed: %s\n", err);
        return 1;
    }
    sim_report_destroy(r);
    printf("bench sim_inproc events=%llu trades=%llu seconds=%.3f events_per_s=%.0f\n",
           (unsigned long long)res.commands, (unsigned long long)res.trades, secs,
           (double)res.commands / secs);
    return 0;
}

int main(int argc, char **argv)
{
    opts o;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
    install_signals();
    if (parse_opts(argc, argv, &o) != 0)
        return 2;
    if (strcmp(argv[1], "generate") == 0)
        return cmd_generate(&o);
    if (strcmp(argv[1], "check") == 0)
        return cmd_check(&o);
    if (strcmp(argv[1], "replay") == 0)
        return cmd_replay(&o);
    if (strcmp(argv[1], "report") == 0)
        return cmd_report(&o);
    if (strcmp(argv[1], "bench") == 0)
        return cmd_bench(&o);
    LOG("unknown command '%s' (generate, check, replay, report, bench; see --help)\n",
        argv[1]);
    return 2;
}
