/* catalog.c — the GPU types, regions and price bands the simulator knows.
 *
 * The generator needs more than the matcher's catalog: a realistic price
 * band per GPU type to draw prices from. The names and their order are
 * those of matcher/catalog.default, so a sim market index equals the
 * matcher's market id for the default catalog (the in-process replay still
 * maps names through the engine's catalog, never assumes this). */
#include "sim/sim.h"

#include <string.h>

#define USD(d, c) ((int64_t)(d) * 1000000 + (int64_t)(c) * 10000)

/* Market bands per GPU-hour, 2026 neocloud/marketplace prices. Hyperscaler
 * list prices are far higher (H100 $7-12) but their surplus sells at
 * market, inside these bands. */
static const sim_gpu_def gpus[SIM_N_GPUS] = {
    {"H100", USD(2, 10), USD(4, 30)},
    {"H200", USD(3, 60), USD(4, 60)},
    {"B200", USD(5, 0), USD(7, 0)},
    {"A100", USD(1, 40), USD(2, 80)},
    {"MI300X", USD(1, 50), USD(2, 60)},
    {"L40S", USD(0, 80), USD(1, 60)},
};

static const char *const regions[SIM_N_REGIONS] = {
    "us-east", "us-central", "us-west", "eu-west", "eu-north", "apac",
};

const sim_gpu_def *sim_gpu(int gpu_idx)
{
    if (gpu_idx < 0 || gpu_idx >= SIM_N_GPUS)
        return NULL;
    return &gpus[gpu_idx];
}

const char *sim_region(int region_idx)
{
    if (region_idx < 0 || region_idx >= SIM_N_REGIONS)
        return NULL;
    return regions[region_idx];
}

int sim_gpu_find(const char *gpu)
{
    for (int i = 0; i < SIM_N_GPUS; i++)
        if (strcmp(gpus[i].gpu, gpu) == 0)
            return i;
    return -1;
}

int sim_region_find(const char *region)
{
    for (int i = 0; i < SIM_N_REGIONS; i++)
        if (strcmp(regions[i], region) == 0)
            return i;
    return -1;
}

int sim_market_find(const char *gpu, const char *region)
{
    int g = sim_gpu_find(gpu), r = sim_region_find(region);
    if (g < 0 || r < 0)
        return -1;
    return g * SIM_N_REGIONS + r;
}
