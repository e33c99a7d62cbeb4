/* SHA-256 of a short text (cache keys) without OpenSSL 3's per-call algorithm fetch and context allocation. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <openssl/evp.h>
#include "cf_sha256.h"

/* OpenSSL 3's one-shot SHA256() looks the algorithm up by name and allocates a context on every call: over half the
 * cost of hashing a 100-byte cache key. The algorithm is fetched once, and each thread keeps one context. */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256;
static pthread_key_t ctx_key;

static void on_thread_exit(void *ctx)
{
    EVP_MD_CTX_free(ctx);
}

static void init_once(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (sha256 == NULL || pthread_key_create(&ctx_key, on_thread_exit) != 0) {
        fprintf(stderr, "fatal: SHA-256 is not available from OpenSSL\n");
        abort();
    }
}

void cf_sha256(const void *p, size_t n, unsigned char out[CF_SHA256_LEN])
{
    pthread_once(&once, init_once);
    EVP_MD_CTX *ctx = pthread_getspecific(ctx_key);
    if (ctx == NULL) {
        if ((ctx = EVP_MD_CTX_new()) == NULL || pthread_setspecific(ctx_key, ctx) != 0) {
            fprintf(stderr, "fatal: out of memory (SHA-256 context)\n");
            abort();
        }
    }
    unsigned int len = 0;
    if (!EVP_DigestInit_ex2(ctx, sha256, NULL) || !EVP_DigestUpdate(ctx, p, n) || !EVP_DigestFinal_ex(ctx, out, &len) ||
        len != CF_SHA256_LEN) {
        fprintf(stderr, "fatal: SHA-256 failed\n");
        abort();
    }
}
