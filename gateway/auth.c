/* auth.c — API keys and the in-memory key table.
 *
 * A key is "gpx_" + 64 hex digits from 32 CSPRNG bytes: too much entropy to
 * guess, so an unsalted SHA-256 is a safe at-rest form. The table keeps
 * only (hash -> account, roles); the matcher service journals the hashes
 * (durable across restarts) and the gateway loads them at start. Lookups
 * hash the presented key and probe an open-addressing table: no key ever
 * sits in memory longer than the request. */
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway.h"
#include "gpux_assert.h"

int gw_keys_init(gw_keys *t, uint32_t max_keys)
{
    GPUX_ASSERT(max_keys > 0 && max_keys <= (1u << 24));
    uint32_t cap = 16;
    while (cap < max_keys * 2)
        cap *= 2; /* load factor <= 1/2 keeps probes short */
    t->slots = calloc(cap, sizeof *t->slots);
    t->cap = cap;
    t->count = 0;
    return t->slots ? 0 : -1;
}

void gw_keys_free(gw_keys *t)
{
    free(t->slots);
    t->slots = NULL;
    t->cap = t->count = 0;
}

static uint32_t slot_of(const gw_keys *t, const uint8_t hash[GW_SHA256_LEN])
{
    uint32_t h;
    memcpy(&h, hash, sizeof h); /* the hash is already uniform */
    return h & (t->cap - 1);
}

/* The slot holding hash, or the empty slot where it would go. */
static gw_key_entry *probe(const gw_keys *t, const uint8_t hash[GW_SHA256_LEN])
{
    uint32_t i = slot_of(t, hash);
    for (uint32_t n = 0; n < t->cap; n++) {
        gw_key_entry *e = &t->slots[i];
        if (!e->used || memcmp(e->hash, hash, GW_SHA256_LEN) == 0)
            return e;
        i = (i + 1) & (t->cap - 1);
    }
    return NULL;
}

int gw_keys_add(gw_keys *t, const uint8_t hash[GW_SHA256_LEN], uint32_t account,
                uint32_t roles)
{
    gw_key_entry *e = probe(t, hash);
    if (e && e->used) {
        e->account = account;
        e->roles = roles;
        return 1;
    }
    if (!e || t->count + 1 > t->cap / 2)
        return -1;
    memcpy(e->hash, hash, GW_SHA256_LEN);
    e->account = account;
    e->roles = roles;
    e->used = true;
    t->count++;
    return 0;
}

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char hexd[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexd[in[i] >> 4];
        out[2 * i + 1] = hexd[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int gw_key_generate(char *key_out, uint8_t hash_out[GW_SHA256_LEN])
{
    uint8_t raw[32];
    if (gw_random_bytes(raw, sizeof raw) != 0)
        return -1;
    memcpy(key_out, GW_KEY_PREFIX, 4);
    hex_encode(raw, sizeof raw, key_out + 4);
    gw_sha256(key_out, GW_KEY_LEN, hash_out);
    memset(raw, 0, sizeof raw);
    return 0;
}

static bool well_formed_key(const char *k, size_t n)
{
    if (n != GW_KEY_LEN || memcmp(k, GW_KEY_PREFIX, 4) != 0)
        return false;
    for (size_t i = 4; i < n; i++)
        if (!((k[i] >= '0' && k[i] <= '9') || (k[i] >= 'a' && k[i] <= 'f')))
            return false;
    return true;
}

const gw_key_entry *gw_keys_auth(const gw_keys *t, const char *authz)
{
    if (!authz || strncmp(authz, "Bearer ", 7) != 0)
        return NULL;
    const char *k = authz + 7;
    size_t n = strlen(k);
    if (!well_formed_key(k, n))
        return NULL;
    uint8_t hash[GW_SHA256_LEN];
    gw_sha256(k, n, hash);
    const gw_key_entry *e = probe(t, hash);
    return e && e->used ? e : NULL;
}

void gw_keys_set_roles(gw_keys *t, uint32_t account, uint32_t roles)
{
    for (uint32_t i = 0; i < t->cap; i++)
        if (t->slots[i].used && t->slots[i].account == account)
            t->slots[i].roles = roles;
}
