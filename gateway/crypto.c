/* crypto.c — SHA-256 and CSPRNG bytes behind two small functions.
 *
 * API keys are high-entropy secrets stored only as their SHA-256; both the
 * hash and the random bytes come from OpenSSL. Keeping them here (with
 * tls.c the only other OpenSSL user) keeps OpenSSL out of the rest of the
 * gateway. */
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "gateway/gateway.h"
#include "gpux_assert.h"

void gw_sha256(const void *data, size_t len, uint8_t out[GW_SHA256_LEN])
{
    unsigned int n = 0;
    /* EVP_Digest with the default provider cannot fail for SHA-256 short of
     * memory exhaustion inside OpenSSL; treat that as fatal. */
    int ok = EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
    GPUX_ASSERT(ok == 1 && n == GW_SHA256_LEN);
}

int gw_random_bytes(uint8_t *buf, size_t len)
{
    GPUX_ASSERT(len <= 1024);
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}
