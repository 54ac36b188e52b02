/* ratelimit.c — per-account token buckets.
 *
 * Each account gets rate_per_s requests per second with bursts up to
 * burst. Tokens are kept in thousandths so slow rates refill smoothly
 * without floating point. The table is sized at init (accounts are dense
 * small integers), so taking a token never allocates. Time is passed in,
 * which keeps the limiter deterministic under test. */
#include <stdlib.h>

#include "gateway/gateway.h"
#include "gpux_assert.h"

int gw_ratelimit_init(gw_ratelimit *rl, uint32_t max_accounts, int64_t rate_per_s,
                      int64_t burst)
{
    GPUX_ASSERT(max_accounts > 0 && rate_per_s >= 0 && burst >= 0);
    rl->buckets = calloc(max_accounts, sizeof *rl->buckets);
    rl->n_buckets = max_accounts;
    rl->rate_per_s = rate_per_s;
    rl->burst = burst > 0 ? burst : 1;
    if (!rl->buckets)
        return -1;
    for (uint32_t i = 0; i < max_accounts; i++)
        rl->buckets[i].last_ms = -1; /* fresh: full bucket on first use */
    return 0;
}

void gw_ratelimit_free(gw_ratelimit *rl)
{
    free(rl->buckets);
    rl->buckets = NULL;
}

int gw_ratelimit_take(gw_ratelimit *rl, uint32_t account, int64_t now_ms)
{
    if (rl->rate_per_s == 0)
        return 0;
    gw_bucket *b = &rl->buckets[account < rl->n_buckets ? account : rl->n_buckets - 1];
    int64_t cap_milli = rl->burst * 1000;
    if (b->last_ms < 0) {
        b->tokens_milli = cap_milli;
    } else if (now_ms > b->last_ms) {
        int64_t elapsed = now_ms - b->last_ms;
        if (elapsed > 3600 * 1000)
            elapsed = 3600 * 1000; /* bounds the product below */
        b->tokens_milli += elapsed * rl->rate_per_s; /* ms * tokens/s = milli-tokens */
        if (b->tokens_milli > cap_milli)
            b->tokens_milli = cap_milli;
    }
    if (now_ms > b->last_ms)
        b->last_ms = now_ms;
    if (b->tokens_milli >= 1000) {
        b->tokens_milli -= 1000;
        return 0;
    }
    int64_t missing_ms = (1000 - b->tokens_milli + rl->rate_per_s - 1) / rl->rate_per_s;
    int64_t secs = (missing_ms + 999) / 1000;
    return secs < 1 ? 1 : (int)secs;
}
