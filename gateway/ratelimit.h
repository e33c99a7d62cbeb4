/* Rate limits: decoded from a route's rate_limit:, and the token bucket of each key in a bounded table that the
 * process's event-loop threads share. No h2o: keys in, verdicts out. */
#ifndef CF_RATELIMIT_H
#define CF_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "cf_yaml.h"

/** The most tokens a rate may give per period, and the largest burst. */
#define CF_RATELIMIT_MAX_COUNT 1000000
/** Keys up to this many bytes are stored as they are; a longer one is stored as its SHA-256. */
#define CF_RATELIMIT_INLINE_KEY 48
/** Ways of one set of the key table: a key lives in one set, and a lookup compares at most this many keys. */
#define CF_RATELIMIT_WAYS 8

/** What a rate limit counts by. */
typedef enum en_cf_ratelimit_key_t {
    CF_RATELIMIT_BY_CLIENT, /* the TCP peer's address (an IPv6 one by its /64) */
    CF_RATELIMIT_BY_HEADER, /* a request header's value; requests without it share one bucket */
    CF_RATELIMIT_BY_CLAIM,  /* a claim of the request's verified JWT; tokens without it share one bucket */
} cf_ratelimit_key_t;

typedef struct st_cf_ratelimit_table_t cf_ratelimit_table_t;

/**
 * One rate_limit: mapping. The policy is immutable once decoded; the table of buckets it owns is shared by every
 * thread (under striped locks) and lives as long as the config: a reload starts every bucket full.
 */
typedef struct st_cf_ratelimit_t {
    uint64_t count;    /* tokens per period */
    uint64_t period_s; /* 1, 60 or 3600 */
    uint64_t burst;    /* bucket size; rate_limit.burst, else `count` */
    int key;           /* CF_RATELIMIT_BY_* */
    char *header;      /* CF_RATELIMIT_BY_HEADER: the field name, lower case; CF_RATELIMIT_BY_CLAIM: the claim name */
    size_t header_len;
    uint64_t interval_ns;  /* the time one token takes to come back: period / count */
    uint64_t tolerance_ns; /* burst * interval_ns: how far ahead of now a key's bucket may be drawn */
    char *policy;          /* the RateLimit-Policy field value */
    size_t policy_len;
    cf_ratelimit_table_t *table; /* owned */
    int line, col;
} cf_ratelimit_t;

/** What one request gets from its bucket. */
typedef struct st_cf_ratelimit_verdict_t {
    int allowed;
    uint64_t remaining; /* tokens left after this request */
    uint64_t reset_s;   /* with tokens left: seconds until the bucket is full again; with none (and refused): until the
                         * next request would pass (Retry-After) */
} cf_ratelimit_verdict_t;

/** Decodes a rate_limit: node into a new policy in *out. Returns 0, or -1 with the error in ctx. */
int cf_ratelimit_decode(cf_yctx_t *ctx, yaml_node_t *node, cf_ratelimit_t **out);

/**
 * A policy built directly (unit tests): `count` tokens per `period_s`, bucket `burst`, a table of at least `max_keys`
 * keys (rounded up to a power of two number of sets). NULL on bad arguments.
 */
cf_ratelimit_t *cf_ratelimit_new(uint64_t count, uint64_t period_s, uint64_t burst, size_t max_keys);

/** Frees a policy and its table (NULL: nothing). */
void cf_ratelimit_free(cf_ratelimit_t *rl);

/**
 * Takes one token from the bucket of `key` (`len` bytes, any bytes; NULL or empty: the shared bucket of requests
 * without a key) at `now_ns` (monotonic). A key not in the table gets a full bucket, taking the place of an idle or
 * least recently used key of its set. O(1): one keyed hash, at most CF_RATELIMIT_WAYS comparisons, one lock held
 * only for them. Thread-safe.
 */
void cf_ratelimit_take(cf_ratelimit_t *rl, const void *key, size_t len, uint64_t now_ns, cf_ratelimit_verdict_t *v);

/** The longest RateLimit field value cf_ratelimit_field writes. */
#define CF_RATELIMIT_FIELD_MAX 64
/** Writes the RateLimit field value of `v` ("default";r=R;t=T) into buf (CF_RATELIMIT_FIELD_MAX bytes, no NUL); returns
 * its length. */
size_t cf_ratelimit_field(const cf_ratelimit_verdict_t *v, char *buf);
/** Writes v->reset_s in decimal (a Retry-After value) into buf (20 bytes, no NUL); returns its length. */
size_t cf_ratelimit_seconds(const cf_ratelimit_verdict_t *v, char *buf);

/** The keys the table holds now (an idle one stays until its place is taken). */
size_t cf_ratelimit_keys(const cf_ratelimit_t *rl);
/** The most keys the table can hold. */
size_t cf_ratelimit_capacity(const cf_ratelimit_t *rl);
/** The bytes of the table (allocated up front; pages are committed as keys arrive). */
size_t cf_ratelimit_memory(const cf_ratelimit_t *rl);

/** Writes the policy for --explain: "<indent>rate_limit: 100/s, burst 200, by client; ..." */
void cf_ratelimit_explain(FILE *out, const char *indent, const cf_ratelimit_t *rl);

#endif
