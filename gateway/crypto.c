/* crypto.c — SHA-256 and CSPRNG bytes behind two small functions.
 *
 * API keys are high-entropy secrets stored only as their SHA-256; both the
 * hash and the random bytes come from OpenSSL. Keeping them here (with
 * tls.c the only other OpenSSL user) keeps OpenSSL out of the rest of the
 * gateway. */
#include <pthread.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "gateway/gateway.h"
#include "gpux_assert.h"

/* Every authenticated request hashes its key. EVP_sha256() makes OpenSSL 3
 * look the algorithm up in its provider store (locks, a hash table) on each
 * EVP_Digest; fetched once, the same EVP_MD serves every call (an EVP_MD
 * is immutable and safe to share between threads). */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void gw_sha256(const void *data, size_t len, uint8_t out[GW_SHA256_LEN])
{
    unsigned int n = 0;
    pthread_once(&sha256_once, fetch_sha256);
    /* EVP_Digest with the default provider cannot fail for SHA-256 short of
     * memory exhaustion inside OpenSSL; treat that as fatal. */
    int ok = EVP_Digest(data, len, out, &n, sha256_md ? sha256_md : EVP_sha256(), NULL);
    GPUX_ASSERT(ok == 1 && n == GW_SHA256_LEN);
}

int gw_random_bytes(uint8_t *buf, size_t len)
{
    GPUX_ASSERT(len <= 1024);
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}
