/* SipHash-1-3 (Aumasson and Bernstein, 2012): a keyed hash for tables whose keys a client chooses. */
#ifndef CF_SIPHASH_H
#define CF_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/**
 * The 64-bit SipHash-1-3 of p[0..len) under the key (k0, k1). With a secret random key, nobody who sees only what a
 * table does can aim keys at one of its places. Not a digest to compare values by: compare the keys themselves.
 */
uint64_t cf_siphash13(uint64_t k0, uint64_t k1, const void *p, size_t len);

/** Fills *k0 and *k1 with a random key (getrandom; `salt` mixed in if that ever fails). */
void cf_siphash_key(uint64_t *k0, uint64_t *k1, const void *salt);

#endif
