/* SHA-256 of a short text (cache keys) without OpenSSL 3's per-call algorithm fetch and context allocation. */
#ifndef CF_SHA256_H
#define CF_SHA256_H

#include <stddef.h>

#define CF_SHA256_LEN 32

/** Writes the SHA-256 digest of p[0..n) to out. Thread-safe: each thread reuses a context of its own, freed when the
 * thread exits; the algorithm is fetched once per process. Aborts if OpenSSL cannot compute it (out of memory). */
void cf_sha256(const void *p, size_t n, unsigned char out[CF_SHA256_LEN]);

#endif
