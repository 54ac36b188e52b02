/* slotmap.h — the engine's hash maps (slotmap.c): a 64-bit key != 0 ->
 * a 32-bit slot, linear probing over packed (key, value) pairs so that a
 * lookup reads one cache line. A table of mask + 1 slots, at most half
 * full. Included by engine_internal.h (needs NIL and GPUX_ASSERT).
 *
 * Homes are a multiplicative hash of the whole key. Homes that keep
 * neighbours together (consecutive order ids, and a market side's price
 * levels in price order, in consecutive slots) measured faster in
 * matcher_classic, but linear probing over such homes has no useful
 * bound: two dense runs that meet (a side with an order at every tick
 * over a stretch another side's levels also occupy; the ids of a busy
 * hour landing on the live ids of one a table-size earlier) push every
 * key of one past the other, thousands of slots; a variant bounded by a
 * probe limit and a rebuild lost its gain once the prefetch pipeline ran
 * in small books too. Not kept: docs/benchmarks.md, sixth session. */
#ifndef GPUX_SLOTMAP_H
#define GPUX_SLOTMAP_H

#include <stdint.h>

#include "gpux_prefetch.h"

typedef struct __attribute__((packed)) map_slot {
    uint64_t key;               /* 0 = empty */
    uint32_t val;
} map_slot;

_Static_assert(sizeof(map_slot) == 12, "map_slot: packed, 12 bytes");

typedef struct slot_map {
    map_slot *slots;
    uint32_t mask;
} slot_map;

static inline uint32_t slotmap_home(const slot_map *m, uint64_t key)
{
    return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & m->mask;
}

/* The value of key, or NIL. */
static inline uint32_t slotmap_find(const slot_map *m, uint64_t key)
{
    for (uint32_t i = slotmap_home(m, key), n = 0; n <= m->mask; i = (i + 1) & m->mask, n++) {
        if (m->slots[i].key == key)
            return m->slots[i].val;
        if (m->slots[i].key == 0)
            return NIL;
    }
    return NIL;
}

/* Starts loading the line where key's search begins (a hint only). */
static inline void slotmap_prefetch(const slot_map *m, uint64_t key)
{
    GPUX_PREFETCH(&m->slots[slotmap_home(m, key)]);
}

/* The level map's key of (market, side index, price). */
static inline uint64_t level_hkey(uint32_t market, int si, int64_t price)
{
    /* price <= $1000 = 1e9 micros < 2^32, so the three fit one word. */
    return ((uint64_t)(market * 2u + (uint32_t)si) << 32) | (uint64_t)price;
}

/* Inserts key (not present, != 0). The table must have a free slot. */
void slotmap_put(slot_map *m, uint64_t key, uint32_t val);
/* Removes key, which must be present. */
void slotmap_del(slot_map *m, uint64_t key);

#endif
