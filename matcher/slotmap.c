/* slotmap.c — the engine's two hash maps: order id -> order slot and
 * (market, side, price) -> level slot.
 *
 * Open addressing with linear probing over one table of packed 12-byte
 * (key, value) slots, key 0 = empty. Backward-shift deletion keeps every
 * chain unbroken, so lookups never need tombstones. The lookup is inline
 * in engine_internal.h (slotmap_find); insertion and deletion are here.
 *
 * Why key and value side by side: with a key array and a value array a
 * lookup in a 1M-order book was two cache misses (perf put 78% of
 * book_find's samples on the key load and 14% on the value load); one
 * table makes it one, and a miss less on every cancel and replace. */
#include "matcher/engine_internal.h"

void slotmap_put(slot_map *m, uint64_t key, uint32_t val)
{
    GPUX_ASSERT(key != 0);
    uint32_t i = slotmap_home(m, key);
    for (uint32_t n = 0; m->slots[i].key != 0; n++) {
        GPUX_ASSERT(m->slots[i].key != key && n < m->mask);
        i = (i + 1) & m->mask;
    }
    m->slots[i].key = key;
    m->slots[i].val = val;
}

void slotmap_del(slot_map *m, uint64_t key)
{
    uint32_t mask = m->mask;
    map_slot *s = m->slots;
    uint32_t i = slotmap_home(m, key);
    for (uint32_t n = 0; s[i].key != key; n++) {
        GPUX_ASSERT(s[i].key != 0 && n < mask);
        i = (i + 1) & mask;
    }
    /* Shift back every later key of the run whose home is not between
     * the hole and its own slot (cyclically): it stays findable. */
    uint32_t hole = i;
    for (uint32_t j = (i + 1) & mask; s[j].key != 0; j = (j + 1) & mask) {
        uint32_t home = slotmap_home(m, s[j].key);
        bool movable = (hole <= j) ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            s[hole] = s[j];
            hole = j;
        }
    }
    s[hole].key = 0;
}
