/* main_matcher.c — bin/gpux-matcher: flags and environment, then
 * service_run (or service_verify). Everything from argv/env is validated
 * here before the service sees it. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpux_wire.h"
#include "matcher/service.h"

static const char usage[] =
    "usage: gpux-matcher --data DIR [options]\n"
    "       gpux-matcher --data DIR --verify\n"
    "\n"
    "The process that owns the order book. Every accepted command is journaled\n"
    "and fdatasync'ed (group commit) before it is acknowledged; state is\n"
    "recovered on start from the latest good snapshot plus the journal,\n"
    "verified by the engine's state hash. SIGTERM/SIGINT: clean shutdown with a\n"
    "final snapshot. Logs go to stderr.\n"
    "\n"
    "Endpoints (nng URLs, ipc:// or tcp://):\n"
    "  --cmd URL          commands and queries, REP   (env GPUX_MATCHER_CMD,\n"
    "                     default " WIRE_DEFAULT_CMD_ADDR ")\n"
    "  --pub URL          market data, PUB            (env GPUX_MATCHER_PUB,\n"
    "                     default " WIRE_DEFAULT_PUB_ADDR ")\n"
    "  --feed URL         sequenced event feed, REP   (env GPUX_MATCHER_FEED,\n"
    "                     default " WIRE_DEFAULT_FEED_ADDR ")\n"
    "Data and market:\n"
    "  --data DIR         journal and snapshots (env GPUX_MATCHER_DATA); required\n"
    "  --catalog FILE     market catalog (env GPUX_CATALOG, default\n"
    "                     matcher/catalog.default; format docs/catalog.md)\n"
    "  --clock wall|sim   wall: the clock follows UTC hours (default);\n"
    "                     sim: clients advance it with ADVANCE_CLOCK\n"
    "  --maker-fee-bps N  default 0      --taker-fee-bps N  default 10\n"
    "Limits (memory is allocated for them at start):\n"
    "  --max-accounts N   default 100000 --max-orders N      default 1000000\n"
    "  --max-orders-per-market N default 200000  --max-segments N default 4000000\n"
    "  --history-orders N closed orders remembered, default 65536\n"
    "  --fills N          recent fills kept (trades, leases), default 262144\n"
    "  --max-keys N       API key hashes, default 65536\n"
    "  --feed-events N    events held for the feed (power of 2), default 262144\n"
    "Tuning:\n"
    "  --contexts N       concurrent requests on the command endpoint, default 256\n"
    "  --batch-max N      commands per group commit, default 4096\n"
    "  --segment-mb N     journal segment size, default 64\n"
    "  --journal-io direct|buffered  direct (default): one O_DIRECT|O_DSYNC\n"
    "                     write per group commit (buffered when the filesystem\n"
    "                     refuses it); buffered: write + fdatasync. Equally\n"
    "                     durable: nothing is answered before it is on disk\n"
    "  --snapshot-every N commands between snapshots, default 1000000 (0 = off)\n"
    "  --snapshot-secs N  seconds between snapshots, default 600 (0 = off)\n"
    "Recovery:\n"
    "  --repair-journal   cut the journal at a corrupt record even when good\n"
    "                     records follow (they are lost; default: refuse)\n"
    "  --verify           replay the journal (from seq 1 when it is whole),\n"
    "                     check invariants and every snapshot, print\n"
    "                     'verify ok seq=N state_hash=H', exit 0/1; no serving\n"
    "  --help             this text\n";

static int parse_u64(const char *flag, const char *s, uint64_t lo, uint64_t hi,
                     uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-') {
        fprintf(stderr, "gpux-matcher: %s needs a number\n", flag);
        return -1;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi) {
        fprintf(stderr, "gpux-matcher: %s must be a whole number in %" PRIu64
                        "..%" PRIu64 ", got '%s'\n", flag, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

typedef struct num_flag {
    const char *name;
    uint64_t lo, hi;
    uint64_t *val;
} num_flag;

int main(int argc, char **argv)
{
    /* signals are taken by sigwait in service_run; block them before any
     * thread exists so every thread inherits the mask */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    service_opts o;
    memset(&o, 0, sizeof o);
    service_config_default(&o.cfg);
    o.data_dir = getenv("GPUX_MATCHER_DATA");
    o.cmd_addr = env_or("GPUX_MATCHER_CMD", WIRE_DEFAULT_CMD_ADDR);
    o.pub_addr = env_or("GPUX_MATCHER_PUB", WIRE_DEFAULT_PUB_ADDR);
    o.feed_addr = env_or("GPUX_MATCHER_FEED", WIRE_DEFAULT_FEED_ADDR);
    o.catalog_path = env_or("GPUX_CATALOG", NULL);
    uint64_t maker = (uint64_t)o.cfg.engine.maker_fee_bps;
    uint64_t taker = (uint64_t)o.cfg.engine.taker_fee_bps;
    uint64_t accounts = o.cfg.engine.max_accounts, orders = o.cfg.engine.max_orders;
    uint64_t per_market = o.cfg.engine.max_orders_per_market;
    uint64_t segments = o.cfg.engine.max_segments;
    uint64_t history = o.cfg.history_orders, fills = o.cfg.fills;
    uint64_t keys = o.cfg.max_keys, feed = o.cfg.feed_events;
    uint64_t contexts = 256, batch = 4096, seg_mb = 64;
    uint64_t snap_every = 1000000, snap_secs = 600;
    num_flag nums[] = {
        {"--maker-fee-bps", 0, MATCHER_MAX_FEE_BPS, &maker},
        {"--taker-fee-bps", 0, MATCHER_MAX_FEE_BPS, &taker},
        {"--max-accounts", 2, 10000000, &accounts},
        {"--max-orders", 1, 100000000, &orders},
        {"--max-orders-per-market", 1, 100000000, &per_market},
        {"--max-segments", 1, 1000000000, &segments},
        {"--history-orders", 0, 100000000, &history},
        {"--fills", 16, 100000000, &fills},
        {"--max-keys", 1, 10000000, &keys},
        {"--feed-events", 16, 1u << 30, &feed},
        {"--contexts", 1, 4096, &contexts},
        {"--batch-max", 1, 65536, &batch},
        {"--segment-mb", 1, 65536, &seg_mb},
        {"--snapshot-every", 0, UINT64_MAX, &snap_every},
        {"--snapshot-secs", 0, 86400 * 365, &snap_secs},
    };
    bool verify = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--verify")) {
            verify = true;
            continue;
        } else if (!strcmp(a, "--repair-journal")) {
            o.repair_journal = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "gpux-matcher: unknown flag or missing value: %s (see --help)\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--data")) o.data_dir = v;
        else if (!strcmp(a, "--cmd")) o.cmd_addr = v;
        else if (!strcmp(a, "--pub")) o.pub_addr = v;
        else if (!strcmp(a, "--feed")) o.feed_addr = v;
        else if (!strcmp(a, "--catalog")) o.catalog_path = v;
        else if (!strcmp(a, "--clock")) {
            if (strcmp(v, "wall") && strcmp(v, "sim")) {
                fprintf(stderr, "gpux-matcher: --clock must be wall or sim\n");
                return 2;
            }
            o.cfg.clock_sim = !strcmp(v, "sim");
        } else if (!strcmp(a, "--journal-io")) {
            if (strcmp(v, "direct") && strcmp(v, "buffered")) {
                fprintf(stderr, "gpux-matcher: --journal-io must be direct or buffered\n");
                return 2;
            }
            o.journal_buffered = !strcmp(v, "buffered");
        } else {
            size_t k = 0;
            while (k < sizeof nums / sizeof nums[0] && strcmp(nums[k].name, a))
                k++;
            if (k == sizeof nums / sizeof nums[0]) {
                fprintf(stderr, "gpux-matcher: unknown flag %s (see --help)\n", a);
                return 2;
            }
            if (parse_u64(a, v, nums[k].lo, nums[k].hi, nums[k].val) < 0)
                return 2;
        }
    }
    if (!o.data_dir || !*o.data_dir) {
        fprintf(stderr, "gpux-matcher: --data DIR (or GPUX_MATCHER_DATA) is required\n");
        return 2;
    }
    if (feed & (feed - 1)) {
        fprintf(stderr, "gpux-matcher: --feed-events must be a power of two\n");
        return 2;
    }
    o.cfg.engine.maker_fee_bps = (int32_t)maker;
    o.cfg.engine.taker_fee_bps = (int32_t)taker;
    o.cfg.engine.max_accounts = (uint32_t)accounts;
    o.cfg.engine.max_orders = (uint32_t)orders;
    o.cfg.engine.max_orders_per_market = (uint32_t)per_market;
    o.cfg.engine.max_segments = (uint32_t)segments;
    o.cfg.history_orders = (uint32_t)history;
    o.cfg.fills = (uint32_t)fills;
    o.cfg.max_keys = (uint32_t)keys;
    o.cfg.feed_events = (uint32_t)feed;
    o.contexts = (uint32_t)contexts;
    o.batch_max = (uint32_t)batch;
    o.segment_bytes = seg_mb << 20;
    o.snapshot_every = snap_every;
    o.snapshot_secs = (uint32_t)snap_secs;
    return verify ? service_verify(&o) : service_run(&o);
}
