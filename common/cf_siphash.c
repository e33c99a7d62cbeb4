/* SipHash-1-3, and random keys for it. */
#include <string.h>
#include <endian.h>
#include <sys/random.h>
#include "cf_siphash.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                                                   \
    do {                                                                                                                           \
        v0 += v1;                                                                                                                  \
        v1 = ROTL(v1, 13);                                                                                                         \
        v1 ^= v0;                                                                                                                  \
        v0 = ROTL(v0, 32);                                                                                                         \
        v2 += v3;                                                                                                                  \
        v3 = ROTL(v3, 16);                                                                                                         \
        v3 ^= v2;                                                                                                                  \
        v0 += v3;                                                                                                                  \
        v3 = ROTL(v3, 21);                                                                                                         \
        v3 ^= v0;                                                                                                                  \
        v2 += v1;                                                                                                                  \
        v1 = ROTL(v1, 17);                                                                                                         \
        v1 ^= v2;                                                                                                                  \
        v2 = ROTL(v2, 32);                                                                                                         \
    } while (0)

uint64_t cf_siphash13(uint64_t k0, uint64_t k1, const void *_p, size_t len)
{
    const unsigned char *p = _p;
    uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull, v2 = k0 ^ 0x6c7967656e657261ull,
             v3 = k1 ^ 0x7465646279746573ull;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t m;
        memcpy(&m, p + i, 8); /* one load: the words are little-endian */
        m = le64toh(m);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t j = 0; i + j < len; ++j)
        b |= (uint64_t)p[i + j] << (8 * j);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

void cf_siphash_key(uint64_t *k0, uint64_t *k1, const void *salt)
{
    uint64_t seed[2];
    if (getrandom(seed, sizeof(seed), 0) != sizeof(seed)) { /* not seen on Linux >= 3.17 with a 16-byte read */
        seed[0] = (uint64_t)(uintptr_t)salt ^ 0x9e3779b97f4a7c15ull;
        seed[1] = (uint64_t)(uintptr_t)k0;
    }
    *k0 = seed[0];
    *k1 = seed[1];
}
