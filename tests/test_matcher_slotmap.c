/* test_matcher_slotmap.c — the engine's hash maps against a plain list.
 *
 * Why: every cancel, replace and new order goes through these maps
 * (matcher/slotmap.h), and a key lost by a delete's backward shift is a
 * lost order. These tests run seeded random puts, deletes and look-ups,
 * with keys shaped like the engine's (runs of order ids, market sides
 * with a level at every tick, any key), against a list searched one by
 * one, and check after every step that every key is found with its
 * value, absent keys are not, and the table holds nothing else. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "matcher/engine_internal.h"

#define T_MASK 1023u
#define T_MAX_KEYS 512u /* at most half full, as the engine keeps them */

typedef struct ref_list {
    uint64_t key[T_MAX_KEYS];
    uint32_t val[T_MAX_KEYS];
    uint32_t n;
} ref_list;

typedef struct fixture {
    map_slot slots[T_MASK + 1];
    slot_map m;
    ref_list ref;
} fixture;

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static fixture *fixture_new(void)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->m = (slot_map){.slots = f->slots, .mask = T_MASK};
    return f;
}

static int ref_index(const ref_list *r, uint64_t key)
{
    for (uint32_t i = 0; i < r->n; i++)
        if (r->key[i] == key)
            return (int)i;
    return -1;
}

static void put(fixture *f, uint64_t key, uint32_t val)
{
    if (key == 0 || ref_index(&f->ref, key) >= 0 || f->ref.n == T_MAX_KEYS)
        return;
    slotmap_put(&f->m, key, val);
    f->ref.key[f->ref.n] = key;
    f->ref.val[f->ref.n++] = val;
}

static void del_at(fixture *f, uint32_t i)
{
    slotmap_del(&f->m, f->ref.key[i]);
    f->ref.n--;
    f->ref.key[i] = f->ref.key[f->ref.n];
    f->ref.val[i] = f->ref.val[f->ref.n];
}

/* Every key found with its value and the map holds no other key. */
static void check(const fixture *f)
{
    for (uint32_t i = 0; i < f->ref.n; i++)
        assert_int_equal(slotmap_find(&f->m, f->ref.key[i]), f->ref.val[i]);
    uint32_t held = 0;
    for (uint32_t j = 0; j <= T_MASK; j++) {
        uint64_t k = f->m.slots[j].key;
        if (k == 0)
            continue;
        held++;
        assert_true(ref_index(&f->ref, k) >= 0);
    }
    assert_int_equal(held, f->ref.n);
}

/* A key shaped like the engine's: an order id near the last one, a level
 * of one of a few market sides at some tick, or any key at all. */
static uint64_t some_key(uint64_t *rng, uint64_t *next_id)
{
    uint64_t r = rng_next(rng);
    switch (r % 4) {
    case 0:
        return (*next_id)++;
    case 1:
        return *next_id > 64 ? *next_id - 1 - (r >> 8) % 64 : 1 + (r >> 8) % 64;
    case 2:
        return ((r >> 8) % 6 + 1) << 32 | ((r >> 16) % 300 + 1) * 100;
    default:
        return rng_next(rng) | 1;
    }
}

static void test_random_ops_match_the_list(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        uint64_t rng = seed, next_id = 1 + seed * 977;
        fixture *f = fixture_new();
        for (uint32_t step = 0; step < 3000; step++) {
            uint64_t r = rng_next(&rng) % 10;
            if (r < 5) {
                put(f, some_key(&rng, &next_id), (uint32_t)step + 1);
            } else if (r < 8 && f->ref.n > 0) {
                del_at(f, (uint32_t)(rng_next(&rng) % f->ref.n));
            } else {
                uint64_t k = some_key(&rng, &next_id);
                int i = ref_index(&f->ref, k);
                assert_int_equal(slotmap_find(&f->m, k), i < 0 ? NIL : f->ref.val[i]);
            }
            check(f);
        }
        free(f);
    }
}

/* A dense run of ids, then deletes inside it: every other key is still
 * found (the backward shift moved what it had to). */
static void test_dense_run_deletes(void **state)
{
    (void)state;
    fixture *f = fixture_new();
    for (uint64_t id = 1; id <= 500; id++)
        put(f, id, (uint32_t)id);
    check(f);
    for (uint32_t k = 0; k < 200; k++) {
        del_at(f, (uint32_t)((k * 37) % f->ref.n));
        check(f);
    }
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_ops_match_the_list),
        cmocka_unit_test(test_dense_run_deletes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
