/* Rate limits: rate_limit: decoded, and a token bucket per key in a bounded, set-associative table. */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "cf_http.h"
#include "cf_sha256.h"
#include "cf_siphash.h"
#include "ratelimit.h"

/*
 * Why this shape:
 *  - Each bucket is one number, its "theoretical arrival time" (GCRA, ITU-T I.371; the token bucket seen from the clock):
 *    the instant at which the bucket would be full again. Taking a token moves it one interval later; a request is
 *    refused when that would put it more than burst intervals ahead of now. No refill loop, no floating point.
 *  - The threads share one table per policy, so that the rate is the process's whatever thread a client lands on
 *    (sharding by thread would divide the rate and make it depend on how the kernel spreads connections). The table is
 *    set-associative, like a CPU cache: a keyed hash picks a set of CF_RATELIMIT_WAYS entries, and a new key takes the
 *    place of a full-again (idle) entry, else the least recently used one. So the table never grows, and a lookup
 *    never walks more than one set, whatever keys a client invents; the hash is SipHash with a per-process random key,
 *    so that nobody can aim keys at one set. A set's lock is one of STRIPES, held for a few comparisons.
 *  - A key's bytes are stored (up to CF_RATELIMIT_INLINE_KEY); a longer one as its SHA-256, so an entry is one cache
 *    line and a hostile header costs the same memory as any other.
 */

#define STRIPES 64
#define DEFAULT_MAX_KEYS (1u << 17) /* 131,072 keys: 8 MiB per policy */

enum { SLOT_EMPTY, SLOT_RAW, SLOT_DIGEST, SLOT_ABSENT };

typedef struct st_entry_t {
    uint64_t tat;  /* the bucket is full again at this instant (ns); at or before now: full */
    uint32_t used; /* last use, in units of 2^20 ns (about 1 ms), wrapping */
    uint16_t tag;  /* 16 bits of the hash, compared before the key */
    uint8_t kind;  /* SLOT_* */
    uint8_t len;   /* of key */
    unsigned char key[CF_RATELIMIT_INLINE_KEY];
} entry_t;

struct st_cf_ratelimit_table_t {
    entry_t *entries; /* num_sets * CF_RATELIMIT_WAYS */
    size_t set_mask;  /* num_sets - 1 */
    size_t keys;      /* atomic: entries not SLOT_EMPTY */
    uint64_t k0, k1;  /* the SipHash key */
    pthread_mutex_t locks[STRIPES];
};

/* --- the table ------------------------------------------------------------------------------------------------- */

static cf_ratelimit_table_t *table_new(size_t max_keys)
{
    size_t sets = 1;
    while (sets * CF_RATELIMIT_WAYS < max_keys)
        sets <<= 1;
    cf_ratelimit_table_t *t = calloc(1, sizeof(*t));
    /* calloc of this size is mmap'ed zero pages: memory is committed as keys arrive */
    if (t == NULL || (t->entries = calloc(sets * CF_RATELIMIT_WAYS, sizeof(*t->entries))) == NULL) {
        free(t);
        return NULL;
    }
    t->set_mask = sets - 1;
    cf_siphash_key(&t->k0, &t->k1, t);
    for (size_t i = 0; i != STRIPES; ++i)
        pthread_mutex_init(&t->locks[i], NULL);
    return t;
}

static void table_free(cf_ratelimit_table_t *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i != STRIPES; ++i)
        pthread_mutex_destroy(&t->locks[i]);
    free(t->entries);
    free(t);
}

static uint64_t ceil_seconds(uint64_t ns)
{
    return (ns + 999999999u) / 1000000000u;
}

void cf_ratelimit_take(cf_ratelimit_t *rl, const void *key, size_t len, uint64_t now_ns, cf_ratelimit_verdict_t *v)
{
    cf_ratelimit_table_t *t = rl->table;
    unsigned char digest[CF_SHA256_LEN];
    uint8_t kind = SLOT_RAW;
    if (key == NULL || len == 0) {
        kind = SLOT_ABSENT;
        key = "";
        len = 0;
    } else if (len > CF_RATELIMIT_INLINE_KEY) {
        cf_sha256(key, len, digest);
        kind = SLOT_DIGEST;
        key = digest;
        len = sizeof(digest);
    }
    uint64_t h = cf_siphash13(t->k0, t->k1, key, len) ^ kind;
    size_t set = (size_t)(h >> 16) & t->set_mask;
    uint16_t tag = (uint16_t)h;
    uint32_t tick = (uint32_t)(now_ns >> 20);
    entry_t *ways = t->entries + set * CF_RATELIMIT_WAYS, *e = NULL, *victim = NULL;
    pthread_mutex_t *lock = &t->locks[set % STRIPES];

    pthread_mutex_lock(lock);
    uint32_t oldest = 0;
    for (size_t i = 0; i != CF_RATELIMIT_WAYS; ++i) {
        entry_t *w = ways + i;
        if (w->kind == kind && w->tag == tag && w->len == len && memcmp(w->key, key, len) == 0) {
            e = w;
            break;
        }
        /* the place for a new key: an empty entry, else a full-again one (nothing is lost), else the least recent */
        if (w->kind == SLOT_EMPTY || w->tat <= now_ns) {
            if (victim == NULL || victim->kind != SLOT_EMPTY)
                victim = w, oldest = UINT32_MAX;
        } else if (oldest != UINT32_MAX && (uint32_t)(tick - w->used) >= oldest) {
            victim = w;
            oldest = (uint32_t)(tick - w->used);
        }
    }
    if (e == NULL) {
        e = victim;
        if (e->kind == SLOT_EMPTY)
            __atomic_add_fetch(&t->keys, 1, __ATOMIC_RELAXED);
        e->kind = kind;
        e->tag = tag;
        e->len = (uint8_t)len;
        memcpy(e->key, key, len);
        e->tat = 0;
    }
    e->used = tick;
    uint64_t tat = e->tat > now_ns ? e->tat : now_ns, next = tat + rl->interval_ns;
    if (next - now_ns <= rl->tolerance_ns) {
        e->tat = next;
        pthread_mutex_unlock(lock);
        v->allowed = 1;
        v->remaining = (now_ns + rl->tolerance_ns - next) / rl->interval_ns;
        /* with tokens left: until the bucket is full; with none: until the next request would pass */
        v->reset_s = ceil_seconds(v->remaining != 0 ? next - now_ns : next + rl->interval_ns - rl->tolerance_ns - now_ns);
    } else {
        pthread_mutex_unlock(lock);
        v->allowed = 0;
        v->remaining = 0;
        v->reset_s = ceil_seconds(next - now_ns - rl->tolerance_ns);
    }
}

/* writes v in decimal at p; returns the end (printf costs ~1,200 instructions a call, a third of all this) */
static char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n != 0)
        *p++ = tmp[--n];
    return p;
}

size_t cf_ratelimit_field(const cf_ratelimit_verdict_t *v, char *buf)
{
    static const char name[] = "\"default\";r=";
    char *p = buf;
    memcpy(p, name, sizeof(name) - 1);
    p = put_u64(p + sizeof(name) - 1, v->remaining);
    memcpy(p, ";t=", 3);
    p = put_u64(p + 3, v->reset_s);
    return (size_t)(p - buf);
}

size_t cf_ratelimit_seconds(const cf_ratelimit_verdict_t *v, char *buf)
{
    return (size_t)(put_u64(buf, v->reset_s) - buf);
}

size_t cf_ratelimit_keys(const cf_ratelimit_t *rl)
{
    return __atomic_load_n(&rl->table->keys, __ATOMIC_RELAXED);
}

size_t cf_ratelimit_capacity(const cf_ratelimit_t *rl)
{
    return (rl->table->set_mask + 1) * CF_RATELIMIT_WAYS;
}

size_t cf_ratelimit_memory(const cf_ratelimit_t *rl)
{
    return cf_ratelimit_capacity(rl) * sizeof(entry_t) + sizeof(*rl->table);
}

/* --- the policy ------------------------------------------------------------------------------------------------ */

static int finish(cf_ratelimit_t *rl, size_t max_keys)
{
    rl->interval_ns = rl->period_s * 1000000000ull / rl->count;
    rl->tolerance_ns = rl->burst * rl->interval_ns;
    /* draft-ietf-httpapi-ratelimit-headers-11 §3: a List of quota policies, each named, with its quota and window */
    char buf[64];
    snprintf(buf, sizeof(buf), "\"default\";q=%llu;w=%llu", (unsigned long long)rl->count, (unsigned long long)rl->period_s);
    rl->policy = strdup(buf);
    rl->policy_len = strlen(buf);
    rl->table = table_new(max_keys);
    return rl->policy != NULL && rl->table != NULL ? 0 : -1;
}

cf_ratelimit_t *cf_ratelimit_new(uint64_t count, uint64_t period_s, uint64_t burst, size_t max_keys)
{
    if (count == 0 || count > CF_RATELIMIT_MAX_COUNT || burst == 0 || burst > CF_RATELIMIT_MAX_COUNT || period_s == 0 ||
        period_s > 3600 || max_keys == 0)
        return NULL;
    cf_ratelimit_t *rl = calloc(1, sizeof(*rl));
    rl->count = count;
    rl->period_s = period_s;
    rl->burst = burst;
    if (finish(rl, max_keys) != 0) {
        cf_ratelimit_free(rl);
        return NULL;
    }
    return rl;
}

void cf_ratelimit_free(cf_ratelimit_t *rl)
{
    if (rl == NULL)
        return;
    table_free(rl->table);
    free(rl->policy);
    free(rl->header);
    free(rl);
}

/* rate: N/s, N/m or N/h */
static int on_rate(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_ratelimit_t *rl = object;
    const char *s = cf_yscalar(node), *p = s;
    uint64_t n = 0;
    if (s != NULL) {
        for (; *p >= '0' && *p <= '9'; ++p) /* saturating: a huge count is "too large", not "not a rate" */
            n = n > CF_RATELIMIT_MAX_COUNT ? n : n * 10 + (uint64_t)(*p - '0');
    }
    if (s == NULL || p == s || p[0] != '/' || p[1] == '\0' || p[2] != '\0' || strchr("smh", p[1]) == NULL)
        return cf_yerror(ctx, node, "expected a rate such as 100/s, 600/m or 10/h");
    if (n == 0 || n > CF_RATELIMIT_MAX_COUNT)
        return cf_yerror(ctx, node, "the count must be between 1 and %d", CF_RATELIMIT_MAX_COUNT);
    rl->count = n;
    rl->period_s = p[1] == 's' ? 1 : p[1] == 'm' ? 60 : 3600;
    return 0;
}

/* key: client, header.NAME or jwt.CLAIM (a top-level claim of the route's verified token) */
static int on_key(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_ratelimit_t *rl = object;
    const char *s = cf_yscalar(node);
    if (s != NULL && strcmp(s, "client") == 0) {
        rl->key = CF_RATELIMIT_BY_CLIENT;
        return 0;
    }
    if (s != NULL && strncmp(s, "jwt.", 4) == 0) {
        if (!cf_http_is_token(s + 4, strlen(s + 4)) || strchr(s + 4, '.') != NULL)
            return cf_yerror(ctx, node, "expected jwt.CLAIM, a top-level claim of the token (e.g. jwt.sub)");
        rl->key = CF_RATELIMIT_BY_CLAIM;
        free(rl->header);
        rl->header = strdup(s + 4);
        rl->header_len = strlen(rl->header);
        return 0;
    }
    if (s == NULL || strncmp(s, "header.", 7) != 0 || !cf_http_is_token(s + 7, strlen(s + 7)))
        return cf_yerror(ctx, node, "expected client, header.NAME (e.g. header.X-Api-Key) or jwt.CLAIM (e.g. jwt.sub)");
    rl->key = CF_RATELIMIT_BY_HEADER;
    free(rl->header);
    rl->header = strdup(s + 7);
    rl->header_len = strlen(rl->header);
    for (char *c = rl->header; *c != '\0'; ++c)
        *c = (char)tolower((unsigned char)*c);
    return 0;
}

static const cf_yfield_t ratelimit_fields[] = {
    {.key = "rate", .type = CF_YT_CUSTOM, .custom = on_rate},
    {.key = "burst", .type = CF_YT_UINT, .offset = offsetof(cf_ratelimit_t, burst), .min = 1, .max = CF_RATELIMIT_MAX_COUNT},
    {.key = "key", .type = CF_YT_CUSTOM, .custom = on_key},
    {NULL},
};

int cf_ratelimit_decode(cf_yctx_t *ctx, yaml_node_t *node, cf_ratelimit_t **out)
{
    *out = NULL;
    if (node == NULL || node->type != YAML_MAPPING_NODE)
        return cf_yerror(ctx, node, "expected {rate: 100/s, burst: 200, key: client | header.NAME | jwt.CLAIM}");
    cf_ratelimit_t *rl = calloc(1, sizeof(*rl));
    rl->line = (int)node->start_mark.line + 1;
    rl->col = (int)node->start_mark.column + 1;
    uint64_t seen = 0;
    if (cf_ydecode(ctx, node, ratelimit_fields, rl, &seen) != 0)
        goto Fail;
    if (!cf_yseen(ratelimit_fields, seen, "rate")) {
        cf_yerror(ctx, node, "needs rate: (e.g. 100/s)");
        goto Fail;
    }
    if (!cf_yseen(ratelimit_fields, seen, "key")) {
        cf_yerror(ctx, node, "needs key: (client, header.NAME or jwt.CLAIM)");
        goto Fail;
    }
    if (!cf_yseen(ratelimit_fields, seen, "burst"))
        rl->burst = rl->count;
    if (finish(rl, DEFAULT_MAX_KEYS) != 0) {
        cf_yerror(ctx, node, "out of memory for the key table");
        goto Fail;
    }
    *out = rl;
    return 0;
Fail:
    cf_ratelimit_free(rl);
    return -1;
}

void cf_ratelimit_explain(FILE *out, const char *indent, const cf_ratelimit_t *rl)
{
    fprintf(out,
            "%srate_limit: %llu/%s, burst %llu, by %s%s, before max_inflight; %zu keys at most (%zu MiB), then the idle or least "
            "recently used key of a set makes room\n",
            indent, (unsigned long long)rl->count,
            rl->period_s == 1    ? "s"
            : rl->period_s == 60 ? "m"
                                 : "h",
            (unsigned long long)rl->burst,
            rl->key == CF_RATELIMIT_BY_CLIENT   ? "client address"
            : rl->key == CF_RATELIMIT_BY_HEADER ? "header "
                                                : "token claim ",
            rl->key == CF_RATELIMIT_BY_CLIENT ? "" : rl->header, cf_ratelimit_capacity(rl), cf_ratelimit_memory(rl) >> 20);
}
