/* The response cache: a byte-bounded LRU shared by every loop of the process, coalescing of identical misses into
 * one upstream request (flights), stale-while-revalidate / stale-if-error, and the memcached tier. */
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <h2o/memcached.h>
#include "breaker.h"
#include "cf_sha256.h"
#include "cache.h"

/*
 * Why not h2o_cache (include/h2o/cache.h): it has one lifetime for the whole cache (set at creation) where we need one
 * per entry (per-call ttl, shortened by max-age), and h2o_cache_fetch drops an expired entry on the spot, so nothing
 * stale could ever be served. It also has no notion of a request in flight for a key. What we need from it (a hash, an
 * LRU, a byte bound) is a few dozen lines, so the store is our own.
 *
 * Threads: one mutex guards the entries, the LRU, the flights table, each flight's waiter list and each waiter's
 * `flight` pointer. A flight (the one upstream request for a key) belongs to the port (loop) that started it: only that
 * thread touches its exchange, timer and memcached request. Waiters are always answered through their own port's
 * h2o_multithread queue, so a callback runs on the waiter's loop, never from inside another request's code.
 *
 * The memcached tier and its breaker. A memcached that refuses connections costs nothing: h2o's client answers every
 * get at once with "absent" while it is disconnected (and reconnects in the background). One that accepts connections
 * but never answers (stopped, swapping, a full network path) would cost every local miss the whole lookup wait, so a
 * breaker sits in front of it: MEMCACHED_BREAKER_FAILURES lookups in a row without an answer in time open it; while
 * open, lookups and stores skip memcached (a lookup is a miss, at no cost); after the open period one probe lookup goes
 * (half-open): an answer closes the breaker, no answer reopens it for twice as long, up to MEMCACHED_BREAKER_MAX_MS.
 * Lookups already waiting when it opens are given up at once on every loop. h2o's client reports a broken
 * connection the same way as "absent" (an empty value), so only lookups that time out count as failures; a broken
 * connection is then the refused case above.
 *
 * The tier is process-wide (one h2o memcached context, one connection, shared by every loop), so the breaker is
 * too: a hung memcached is one fact for the whole process, learnt once from three timeouts and probed once per
 * period, not once per loop. Its transitions take tier.mutex (rare); the healthy path, and the open one until a
 * probe is due, read it with relaxed atomic loads and take no lock.
 */

/* 3: one late answer (a scheduling hiccup) does not trip it, and tripping costs at most three waits (cache.memcached_timeout,
 * 50 ms by default). 1 s: a memcached that comes back is used again about a second later. Doubling to 30 s: one that
 * stays hung costs one wait every 30 s. */
#define MEMCACHED_BREAKER_FAILURES 3
#define MEMCACHED_BREAKER_BASE_MS 1000
#define MEMCACHED_BREAKER_MAX_MS 30000
#define MEMCACHED_PREFIX "conflux:"
#define SERIAL_MAGIC "CF1 "
/* The longest body stored to memcached. memcached refuses an item over its item size (-I, 1 MiB by default), and h2o's
 * client sends stores quietly (SETQ), so the refusal is the only reply it gets to one: it takes it for a protocol error
 * and drops the tier's one connection, failing every lookup in flight. A value (our head line, under 128 bytes, and the
 * body) up to 1 MiB less 512 bytes fits with the key and memcached's item header; a larger answer stays local. */
#define MEMCACHED_MAX_BODY (1024 * 1024 - 512 - 128)

/* --- counters --------------------------------------------------------------------------------------------------- */

static cf_cache_stats_t stats;

#define STAT_ADD(field, n) __atomic_fetch_add(&stats.field, (n), __ATOMIC_RELAXED)
#define STAT_SUB(field, n) __atomic_fetch_sub(&stats.field, (n), __ATOMIC_RELAXED)

/* The memcached tier: h2o's client and the breaker in front of it (both as long-lived as the process: the client's
 * threads cannot be stopped). */
static struct {
    h2o_memcached_context_t *memc; /* NULL without the tier */
    char name[300];                /* host:port, for the log */
    uint64_t wait_ms;              /* the most a lookup waits for an answer (cache.memcached_timeout) */
    pthread_mutex_t mutex;         /* serializes the breaker's transitions */
    cf_breaker_t breaker;
    int64_t opened_at_ms;     /* when it last opened from closed */
    uint64_t skipped_at_open; /* stats.memcached_skipped_gets then */
} tier = {.mutex = PTHREAD_MUTEX_INITIALIZER};

void cf_cache_stats(cf_cache_stats_t *out)
{
    uint64_t *dst = (uint64_t *)out, *src = (uint64_t *)&stats;
    for (size_t i = 0; i != sizeof(stats) / sizeof(uint64_t); ++i)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    out->memcached_tier = tier.memc != NULL;
    out->memcached_state = tier.memc != NULL ? (uint64_t)cf_breaker_state(&tier.breaker) : 0;
}

/* --- hash table (chained; keys are hashed with SHA-256, so clients cannot aim collisions at one bucket) ----------- */

struct st_hnode_t {
    struct st_hnode_t *next;
    uint64_t hash;
    h2o_iovec_t key;
};

struct st_htable_t {
    struct st_hnode_t **buckets;
    size_t nbuckets, count;
};

static struct st_hnode_t **htable_slot(struct st_htable_t *t, uint64_t hash, h2o_iovec_t key)
{
    struct st_hnode_t **p = &t->buckets[hash & (t->nbuckets - 1)];
    for (; *p != NULL; p = &(*p)->next)
        if ((*p)->hash == hash && h2o_memis((*p)->key.base, (*p)->key.len, key.base, key.len))
            break;
    return p;
}

static struct st_hnode_t *htable_find(struct st_htable_t *t, uint64_t hash, h2o_iovec_t key)
{
    return t->nbuckets != 0 ? *htable_slot(t, hash, key) : NULL;
}

static void htable_insert(struct st_htable_t *t, struct st_hnode_t *n)
{
    if (t->count >= t->nbuckets) {
        size_t nb = t->nbuckets != 0 ? t->nbuckets * 2 : 64;
        struct st_hnode_t **b = h2o_mem_alloc(sizeof(*b) * nb);
        memset(b, 0, sizeof(*b) * nb);
        for (size_t i = 0; i != t->nbuckets; ++i) {
            for (struct st_hnode_t *x = t->buckets[i], *next; x != NULL; x = next) {
                next = x->next;
                x->next = b[x->hash & (nb - 1)];
                b[x->hash & (nb - 1)] = x;
            }
        }
        free(t->buckets);
        t->buckets = b;
        t->nbuckets = nb;
    }
    struct st_hnode_t **head = &t->buckets[n->hash & (t->nbuckets - 1)];
    n->next = *head;
    *head = n;
    ++t->count;
}

static void htable_remove(struct st_htable_t *t, struct st_hnode_t *n)
{
    struct st_hnode_t **p = &t->buckets[n->hash & (t->nbuckets - 1)];
    while (*p != n)
        p = &(*p)->next;
    *p = n->next;
    --t->count;
}

/* --- the store ---------------------------------------------------------------------------------------------------- */

struct st_entry_t {
    struct st_hnode_t h; /* key points into this allocation */
    h2o_linklist_t lru;  /* in cf_cache_t.lru: least recently used first */
    int64_t stored_ms;   /* wall clock, so that every process reading memcached computes freshness alike */
    uint64_t ttl_ms, swr_ms, sie_ms;
    int status;
    json_t *doc;  /* a reference to the parsed body, shared with the answers it gives */
    size_t bytes; /* what it counts against the bound */
};

struct st_cf_cache_port_t {
    h2o_multithread_queue_t *queue;     /* the loop's */
    cf_timeouts_t *timeouts;            /* the loop's */
    h2o_multithread_receiver_t deliver; /* answers for this loop's waiters */
    h2o_multithread_receiver_t memc;    /* replies of h2o_memcached_get */
    h2o_multithread_receiver_t opened;  /* "the tier's breaker opened": give up the lookups waiting */
    h2o_multithread_message_t opened_msg;
    int opened_queued;               /* opened_msg is on its way (under ports_mutex) */
    h2o_linklist_t flights;          /* flights this loop runs (its thread only) */
    h2o_linklist_t attached;         /* in attached_ports while attached */
    struct st_cf_cache_port_t *next; /* in retired_ports, once detached */
};

/* Ports in use, and destroyed ports whose memcached receiver stays registered (a cancelled get may
 * still be answered into it later); both under ports_mutex. */
static h2o_linklist_t attached_ports = {&attached_ports, &attached_ports};
static cf_cache_port_t *retired_ports;
static pthread_mutex_t ports_mutex = PTHREAD_MUTEX_INITIALIZER;

struct st_cf_cache_t {
    pthread_mutex_t mutex;
    uint64_t memory, bytes;
    struct st_htable_t entries, flights;
    h2o_linklist_t lru;
    struct st_hnode_t *dead;       /* entries unlinked under the mutex, freed once it is released (cache_unlock) */
    h2o_memcached_context_t *memc; /* NULL without the tier */
};

static cf_cache_t *the_cache;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t key_hash(h2o_iovec_t key, unsigned char digest[SHA256_DIGEST_LENGTH])
{
    uint64_t h;
    cf_sha256(key.base, key.len, digest);
    memcpy(&h, digest, sizeof(h));
    return h;
}

static void entry_unlink_free(cf_cache_t *c, struct st_entry_t *e)
{
    htable_remove(&c->entries, &e->h);
    h2o_linklist_unlink(&e->lru);
    c->bytes -= e->bytes;
    STAT_SUB(bytes, e->bytes);
    STAT_SUB(entries, 1);
    /* freed by cache_unlock: the last reference to a document frees all of it, which need not hold up other loops */
    e->h.next = c->dead;
    c->dead = &e->h;
}

/* Releases the mutex, then frees the entries unlinked while it was held. */
static void cache_unlock(cf_cache_t *c)
{
    struct st_hnode_t *dead = c->dead;
    c->dead = NULL;
    pthread_mutex_unlock(&c->mutex);
    while (dead != NULL) {
        struct st_entry_t *e = H2O_STRUCT_FROM_MEMBER(struct st_entry_t, h, dead);
        dead = dead->next;
        json_decref(e->doc); /* frees it unless an answer still holds it */
        free(e);
    }
}

static void evict_to(cf_cache_t *c, uint64_t bound)
{
    while (c->bytes > bound && !h2o_linklist_is_empty(&c->lru)) {
        /* h2o_linklist_insert(&c->lru, ...) appends: the least recently used entry is the first */
        struct st_entry_t *e = H2O_STRUCT_FROM_MEMBER(struct st_entry_t, lru, c->lru.next);
        entry_unlink_free(c, e);
        STAT_ADD(evictions, 1);
    }
}

static struct st_entry_t *store_find(cf_cache_t *c, uint64_t hash, h2o_iovec_t key)
{
    struct st_hnode_t *n = htable_find(&c->entries, hash, key);
    return n != NULL ? H2O_STRUCT_FROM_MEMBER(struct st_entry_t, h, n) : NULL;
}

/* What malloc gives for n bytes: 16-byte chunks with an 8-byte header, 32 at least (glibc, 64-bit). */
static size_t chunk_bytes(size_t n)
{
    n = (n + 8 + 15) & ~(size_t)15;
    return n < 32 ? 32 : n;
}

/*
 * The heap a parsed document holds, from jansson 2.14's structures (json_object_t 72 bytes and a table of 16-byte
 * buckets, a power of two above the size and 8 at least; each member 56 bytes and its key; json_array_t 40 and 8 per
 * slot, 8 slots at least; json_string_t 32 and its text, a malloc block of its own; numbers 24; true, false and null
 * are shared). Entries are kept parsed, and a parsed document takes 8 to 40 times its text: the bound counts this so
 * that it still bounds memory.
 * t/unit/test_cache.c checks it against what jansson really allocates.
 */
static size_t doc_bytes(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v), buckets = 8, bytes;
        while (buckets <= n)
            buckets *= 2;
        bytes = chunk_bytes(72) + chunk_bytes(16 * buckets);
        for (void *it = json_object_iter(v); it != NULL; it = json_object_iter_next(v, it))
            bytes += chunk_bytes(56 + json_object_iter_key_len(it) + 1) + doc_bytes(json_object_iter_value(it));
        return bytes;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v), slots = 8, bytes;
        while (slots < n)
            slots *= 2;
        bytes = chunk_bytes(40) + chunk_bytes(8 * slots);
        for (size_t i = 0; i != n; ++i)
            bytes += doc_bytes(json_array_get(v, i));
        return bytes;
    }
    case JSON_STRING:
        /* the text is allocated at the length the upstream wrote it with, quotes and escapes included (a \uXXXX is 6
         * bytes for 1 to 3 decoded): the allocator's own size of it, not the decoded length */
        return chunk_bytes(32) + chunk_bytes(malloc_usable_size((void *)json_string_value(v)));
    case JSON_INTEGER:
    case JSON_REAL:
        return chunk_bytes(24);
    default:
        return 0;
    }
}

/* Stores `doc` (taking a reference; replacing any entry of the key), counted as `doc_size` (its doc_bytes, measured
 * before the mutex was taken); returns 0, or -1 when it cannot fit. Called with the mutex held. */
static int store_put(cf_cache_t *c, uint64_t hash, h2o_iovec_t key, int64_t stored_ms, uint64_t ttl_ms, uint64_t swr_ms,
                     uint64_t sie_ms, int status, json_t *doc, size_t doc_size)
{
    size_t bytes = sizeof(struct st_entry_t) + key.len + doc_size;
    struct st_entry_t *old = store_find(c, hash, key);
    if (old != NULL)
        entry_unlink_free(c, old);
    if (bytes > c->memory)
        return -1;
    struct st_entry_t *e = h2o_mem_alloc(sizeof(*e) + key.len);
    memset(e, 0, sizeof(*e));
    memcpy(e + 1, key.base, key.len);
    e->h.key = h2o_iovec_init((char *)(e + 1), key.len);
    e->h.hash = hash;
    e->doc = json_incref(doc);
    e->stored_ms = stored_ms;
    e->ttl_ms = ttl_ms;
    e->swr_ms = swr_ms;
    e->sie_ms = sie_ms;
    e->status = status;
    e->bytes = bytes;
    evict_to(c, c->memory - bytes);
    htable_insert(&c->entries, &e->h);
    h2o_linklist_insert(&c->lru, &e->lru);
    c->bytes += bytes;
    STAT_ADD(bytes, bytes);
    STAT_ADD(entries, 1);
    STAT_ADD(stores, 1);
    return 0;
}

/* the seconds left of a freshness of ttl_ms from stored_ms (negative once past, rounded away from zero then) */
static int64_t fresh_left_s(int64_t stored_ms, uint64_t ttl_ms, int64_t now)
{
    int64_t left = stored_ms + (int64_t)ttl_ms - now;
    return left >= 0 ? left / 1000 : -((-left + 999) / 1000);
}

static int64_t ttl_left_s(const struct st_entry_t *e, int64_t now)
{
    return fresh_left_s(e->stored_ms, e->ttl_ms, now);
}

/* how long an entry is fresh for a caller of this policy: the shorter of its own ttl and the caller's */
static uint64_t fresh_for(const struct st_entry_t *e, const cf_cache_policy_t *p)
{
    return p->ttl_ms < e->ttl_ms ? p->ttl_ms : e->ttl_ms;
}

static int entry_fresh(const struct st_entry_t *e, int64_t now)
{
    return now - e->stored_ms < (int64_t)e->ttl_ms;
}

static int entry_in_swr(const struct st_entry_t *e, int64_t now)
{
    return now - e->stored_ms < (int64_t)(e->ttl_ms + e->swr_ms);
}

static int entry_in_sie(const struct st_entry_t *e, int64_t now)
{
    return now - e->stored_ms < (int64_t)(e->ttl_ms + e->sie_ms);
}

static int entry_usable(const struct st_entry_t *e, int64_t now)
{
    return entry_in_swr(e, now) || entry_in_sie(e, now);
}

/* --- lifecycle ---------------------------------------------------------------------------------------------------- */

cf_cache_t *cf_cache_create(uint64_t memory, const char *memcached_host, uint16_t memcached_port, uint64_t memcached_wait_ms)
{
    cf_cache_t *c = h2o_mem_alloc(sizeof(*c));
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->mutex, NULL);
    c->memory = memory;
    h2o_linklist_init_anchor(&c->lru);
    if (memcached_host != NULL) {
        if (tier.memc == NULL) {
            snprintf(tier.name, sizeof(tier.name), "%s:%u", memcached_host, memcached_port);
            tier.wait_ms = memcached_wait_ms;
            cf_breaker_init(&tier.breaker, MEMCACHED_BREAKER_FAILURES, MEMCACHED_BREAKER_BASE_MS, MEMCACHED_BREAKER_MAX_MS);
            tier.memc = h2o_memcached_create_context(memcached_host, memcached_port, 0, 1, MEMCACHED_PREFIX);
        }
        c->memc = tier.memc;
    }
    the_cache = c;
    return c;
}

cf_cache_t *cf_cache_get(void)
{
    return the_cache;
}

void cf_cache_set_memory(cf_cache_t *c, uint64_t memory)
{
    pthread_mutex_lock(&c->mutex);
    c->memory = memory;
    evict_to(c, memory);
    cache_unlock(c);
}

void cf_cache_destroy(cf_cache_t *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mutex);
    evict_to(c, 0);
    cache_unlock(c);
    free(c->entries.buckets);
    free(c->flights.buckets);
    pthread_mutex_destroy(&c->mutex);
    if (the_cache == c)
        the_cache = NULL;
    free(c);
}

/* --- keys and Cache-Control --------------------------------------------------------------------------------------- */

static void key_part(cf_buf_t *out, char tag, const char *s, size_t len)
{
    cf_buf_appendc(out, tag);
    cf_buf_append_u64(out, len);
    cf_buf_appendc(out, ':');
    cf_buf_append(out, s, len);
    cf_buf_appendc(out, '\n');
}

void cf_cache_build_key(cf_buf_t *out, const char *backend, h2o_iovec_t method, h2o_iovec_t url, const h2o_header_t *headers,
                        size_t num_headers)
{
    key_part(out, 'b', backend, strlen(backend));
    key_part(out, 'm', method.base, method.len);
    key_part(out, 'u', url.base, url.len);
    for (size_t i = 0; i != num_headers; ++i) {
        const h2o_iovec_t *name = headers[i].name;
        if (h2o_lcstris(name->base, name->len, H2O_STRLIT("authorization")))
            key_part(out, 'a', headers[i].value.base, headers[i].value.len);
        else if (h2o_lcstris(name->base, name->len, H2O_STRLIT("cookie")))
            key_part(out, 'c', headers[i].value.base, headers[i].value.len);
    }
}

/* Reads a delta-seconds value (RFC 9111 1.2.2); returns -1 when malformed. */
static int64_t delta_seconds(const char *s, size_t len)
{
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"')
        ++s, len -= 2;
    if (len == 0)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i != len; ++i) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (v < INT64_MAX / 1000 / 10)
            v = v * 10 + (s[i] - '0');
    }
    return v;
}

int cf_cache_control_ttl(const h2o_header_t *headers, size_t num_headers, uint64_t *ttl_ms)
{
    int64_t max_age = -1, s_maxage = -1;
    for (size_t i = 0; i != num_headers; ++i) {
        if (!h2o_lcstris(headers[i].name->base, headers[i].name->len, H2O_STRLIT("cache-control")))
            continue;
        const char *p = headers[i].value.base, *end = p + headers[i].value.len;
        while (p < end) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            if (comma == NULL)
                comma = end;
            const char *a = p, *b = comma;
            while (a < b && (*a == ' ' || *a == '\t'))
                ++a;
            while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
                --b;
            const char *eq = memchr(a, '=', (size_t)(b - a));
            size_t nlen = (size_t)((eq != NULL ? eq : b) - a);
            if (h2o_lcstris(a, nlen, H2O_STRLIT("no-store")) || h2o_lcstris(a, nlen, H2O_STRLIT("private")) ||
                h2o_lcstris(a, nlen, H2O_STRLIT("no-cache")))
                return 0;
            if (eq != NULL && h2o_lcstris(a, nlen, H2O_STRLIT("max-age"))) {
                int64_t v = delta_seconds(eq + 1, (size_t)(b - eq - 1));
                if (v < 0)
                    return 0; /* a malformed max-age is treated as stale (RFC 9111 4.2.1) */
                max_age = v;
            } else if (eq != NULL && h2o_lcstris(a, nlen, H2O_STRLIT("s-maxage"))) {
                int64_t v = delta_seconds(eq + 1, (size_t)(b - eq - 1));
                if (v < 0)
                    return 0;
                s_maxage = v;
            }
            p = comma + 1;
        }
    }
    int64_t limit = s_maxage >= 0 ? s_maxage : max_age; /* a shared cache prefers s-maxage (RFC 9111 5.2.2.10) */
    if (limit == 0)
        return 0;
    if (limit > 0 && (uint64_t)limit * 1000 < *ttl_ms)
        *ttl_ms = (uint64_t)limit * 1000;
    return 1;
}

/* --- flights and waiters ----------------------------------------------------------------------------------------- */

/* One upstream answer shared by every waiter of a flight (refcounted: waiters may be on other threads). */
struct st_result_t {
    size_t refcnt;
    cf_reason_t reason;
    int status, fwd_status, stored, stale, from_memcached, too_large_for_memcached;
    int64_t ttl_s;
    json_t *doc;      /* a reference to the parsed body; NULL when there is none or it is not JSON */
    h2o_iovec_t body; /* the text of a body to store to memcached (points into this allocation); base NULL otherwise */
    unsigned attempts, hedges, budget_exhausted, hedge_won; /* of the upstream request, for the leader's answer */
    cf_spans_t spans;
    cf_span_detail_t span_details[CF_TRACE_MAX_SPANS]; /* spans.details when sampled: the flight's pool goes first */
};

struct st_flight_t {
    struct st_hnode_t h; /* key points into this allocation */
    unsigned char digest[SHA256_DIGEST_LENGTH];
    cf_cache_t *cache;
    cf_cache_port_t *port;         /* the loop that runs it */
    cf_attempt_backend_t *backend; /* a reference: a reload may drop the table it came from */
    cf_cache_policy_t policy;
    h2o_mem_pool_t pool; /* the copy of the request */
    cf_upstream_req_t req;
    h2o_linklist_t waiters;    /* under the mutex */
    h2o_linklist_t port_link;  /* in port->flights */
    cf_attempt_t attempt;      /* the upstream request, with the backend's retries and hedges */
    h2o_memcached_req_t *mreq; /* the lookup waiting for memcached */
    h2o_timeout_entry_t mtimer;
    int probe; /* the lookup is the breaker's probe */
};

/* The flight's memcached key: its digest in hex, into `hex` (h2o_memcached puts MEMCACHED_PREFIX in front). */
static h2o_iovec_t memcached_key(const struct st_flight_t *fl, char hex[SHA256_DIGEST_LENGTH * 2 + 1])
{
    for (size_t i = 0; i != SHA256_DIGEST_LENGTH; ++i)
        sprintf(hex + i * 2, "%02x", fl->digest[i]);
    return h2o_iovec_init(hex, SHA256_DIGEST_LENGTH * 2);
}

struct st_cf_cache_wait_t {
    h2o_multithread_message_t msg; /* first: delivered through the waiter's port */
    h2o_linklist_t link;           /* in flight->waiters while attached */
    struct st_flight_t *flight;    /* NULL once detached (an answer is on its way) */
    cf_cache_port_t *port;
    cf_cache_cb cb;
    void *data;
    int leader, cancelled;
    struct st_result_t *result;
    uint64_t hash;
    h2o_iovec_t key; /* points into this allocation */
};

static void result_release(struct st_result_t *r)
{
    if (r != NULL && __atomic_sub_fetch(&r->refcnt, 1, __ATOMIC_ACQ_REL) == 0) {
        json_decref(r->doc);
        free(r);
    }
}

static struct st_result_t *result_new(h2o_iovec_t body)
{
    struct st_result_t *r = h2o_mem_alloc(sizeof(*r) + body.len + 1);
    memset(r, 0, sizeof(*r));
    r->refcnt = 1;
    if (body.base != NULL) {
        r->body = h2o_iovec_init((char *)(r + 1), body.len);
        memcpy(r->body.base, body.base, body.len);
    }
    return r;
}

static void fill_from_entry(cf_cache_answer_t *ans, const struct st_entry_t *e, int64_t now)
{
    ans->status = e->status;
    ans->report.ttl_s = ttl_left_s(e, now);
    ans->report.has_ttl = 1;
    ans->doc = json_incref(e->doc);
}

static void on_deliver(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        cf_cache_wait_t *wt = H2O_STRUCT_FROM_MEMBER(cf_cache_wait_t, msg.link, messages->next);
        h2o_linklist_unlink(&wt->msg.link);
        struct st_result_t *r = wt->result;
        if (!wt->cancelled) {
            cf_cache_answer_t ans = {
                .report = {.fwd_status = r->fwd_status, .stored = wt->leader && r->stored && !r->from_memcached, .ttl_s = r->ttl_s},
                .reason = r->reason,
                .status = r->status,
                .doc = json_incref(r->doc)};
            if (wt->leader) {
                ans.attempts = r->attempts;
                ans.hedges = r->hedges;
                ans.budget_exhausted = r->budget_exhausted != 0;
                ans.hedge_won = r->hedge_won != 0;
                ans.spans = &r->spans;
            }
            if (r->stale) {
                ans.report.state = CF_CACHE_STALE;
                STAT_ADD(stale, 1);
            } else if (!wt->leader) {
                ans.report.state = CF_CACHE_COALESCED;
                STAT_ADD(coalesced, 1);
            } else if (r->from_memcached) {
                ans.report.state = CF_CACHE_HIT;
                STAT_ADD(hits, 1);
            } else {
                ans.report.state = CF_CACHE_MISS;
                STAT_ADD(misses, 1);
            }
            /* the freshness of what answered: an entry, or the answer just stored */
            ans.report.has_ttl = r->reason == CF_REASON_NONE && r->doc != NULL &&
                                 (ans.report.state == CF_CACHE_HIT || ans.report.state == CF_CACHE_STALE || ans.report.stored);
            wt->cb(wt->data, &ans);
        }
        result_release(r);
        free(wt);
    }
}

static void flight_free(struct st_flight_t *fl)
{
    h2o_linklist_unlink(&fl->port_link);
    h2o_timeout_unlink(&fl->mtimer);
    h2o_mem_clear_pool(&fl->pool);
    cf_attempt_backend_release(fl->backend);
    free(fl);
}

/* Stores the flight's answer to memcached (asynchronously: h2o's client sends it from its own thread). */
static void memcached_store(struct st_flight_t *fl, struct st_result_t *r, uint64_t ttl_ms, int64_t stored_ms)
{
    /* "CF1 stored_ms ttl_ms swr_ms sie_ms status\n" + body: any process computes freshness the same way */
    char hex[SHA256_DIGEST_LENGTH * 2 + 1];
    cf_buf_t v = CF_BUF_INIT;
    cf_buf_appendf(&v, SERIAL_MAGIC "%" PRId64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %d\n", stored_ms, ttl_ms, fl->policy.swr_ms,
                   fl->policy.sie_ms, r->status);
    cf_buf_append(&v, r->body.base, r->body.len);
    /* memcached reads an expiration over 30 days as a Unix time, and one that far in the past expires the item at once:
     * an entry whose ttl and stale window add up to more is kept there for 30 days (its last days stay local) */
    uint64_t life_ms = ttl_ms + (fl->policy.swr_ms > fl->policy.sie_ms ? fl->policy.swr_ms : fl->policy.sie_ms);
    uint64_t life_s = life_ms / 1000 + 1;
    if (life_s > CF_CACHE_MAX_MS / 1000)
        life_s = CF_CACHE_MAX_MS / 1000;
    h2o_memcached_set(fl->cache->memc, memcached_key(fl, hex), h2o_iovec_init(v.base, v.len), (uint32_t)life_s, 0);
    cf_buf_free(&v);
}

/* Ends a flight on its loop: stores a storable answer, detaches the waiters and sends each its answer. */
static void flight_finish(struct st_flight_t *fl, struct st_result_t *r, int storable, uint64_t ttl_ms, int64_t stored_ms)
{
    cf_cache_t *c = fl->cache;
    int64_t now = wall_ms();
    int failed = r->reason != CF_REASON_NONE || r->status >= 500;
    size_t doc_size = storable ? doc_bytes(r->doc) : 0; /* a walk of the document: not under the mutex */
    h2o_linklist_t waiters;
    h2o_linklist_init_anchor(&waiters);

    pthread_mutex_lock(&c->mutex);
    htable_remove(&c->flights, &fl->h);
    if (storable && store_put(c, fl->h.hash, fl->h.key, stored_ms, ttl_ms, fl->policy.swr_ms, fl->policy.sie_ms, r->status, r->doc,
                              doc_size) == 0) {
        r->stored = 1;
    } else if (failed) {
        struct st_entry_t *e = store_find(c, fl->h.hash, fl->h.key);
        if (e != NULL && !entry_fresh(e, now) && entry_in_sie(e, now)) {
            struct st_result_t *s = result_new(h2o_iovec_init(NULL, 0));
            s->doc = json_incref(e->doc);
            s->status = e->status;
            s->fwd_status = r->status;
            s->stale = 1;
            s->ttl_s = ttl_left_s(e, now);
            s->attempts = r->attempts; /* the upstream request was made all the same */
            s->hedges = r->hedges;
            s->budget_exhausted = r->budget_exhausted;
            s->hedge_won = r->hedge_won;
            cf_spans_copy(&s->spans, &r->spans, NULL, s->span_details);
            result_release(r);
            r = s;
        }
    }
    if (storable)
        r->ttl_s = (stored_ms + (int64_t)ttl_ms - now) / 1000;
    size_t n = 0;
    while (!h2o_linklist_is_empty(&fl->waiters)) {
        cf_cache_wait_t *wt = H2O_STRUCT_FROM_MEMBER(cf_cache_wait_t, link, fl->waiters.next);
        h2o_linklist_unlink(&wt->link);
        h2o_linklist_insert(&waiters, &wt->link);
        wt->flight = NULL;
        wt->result = r;
        ++n;
    }
    __atomic_add_fetch(&r->refcnt, n, __ATOMIC_RELAXED);
    cache_unlock(c);

    while (!h2o_linklist_is_empty(&waiters)) {
        cf_cache_wait_t *wt = H2O_STRUCT_FROM_MEMBER(cf_cache_wait_t, link, waiters.next);
        h2o_linklist_unlink(&wt->link);
        h2o_multithread_send_message(&wt->port->deliver, &wt->msg);
    }

    if (r->stored && c->memc != NULL && !r->from_memcached) {
        if (r->too_large_for_memcached)
            STAT_ADD(memcached_large_sets, 1);
        else if (cf_breaker_state(&tier.breaker) == CF_BREAKER_CLOSED)
            memcached_store(fl, r, ttl_ms, stored_ms);
        else
            STAT_ADD(memcached_skipped_sets, 1); /* a hung memcached would only queue it; half-open, only the probe goes */
    }
    result_release(r);
    flight_free(fl);
}

static void on_upstream_done(cf_attempt_t *a, const cf_upstream_res_t *res)
{
    struct st_flight_t *fl = H2O_STRUCT_FROM_MEMBER(struct st_flight_t, attempt, a);
    json_t *doc = NULL;
    if (res->reason == CF_REASON_NONE && res->status >= 200 && res->status <= 299) {
        /* the one parse of this body: every waiter and the entry share the document */
        json_error_t jerr;
        doc = json_loadb(res->body.base, res->body.len, JSON_DECODE_ANY, &jerr);
    }
    uint64_t ttl_ms = fl->policy.ttl_ms;
    /* only JSON answers are worth keeping: anything else fails the call anyway */
    int storable = doc != NULL && cf_cache_control_ttl(res->headers, res->num_headers, &ttl_ms);
    /* the text is kept only to be stored to memcached, and only when memcached can take it */
    int large = storable && fl->cache->memc != NULL && res->body.len > MEMCACHED_MAX_BODY;
    struct st_result_t *r = result_new(storable && fl->cache->memc != NULL && !large ? res->body : h2o_iovec_init(NULL, 0));
    r->too_large_for_memcached = large;
    r->doc = doc;
    r->reason = res->reason;
    r->status = res->status;
    r->fwd_status = res->status;
    r->attempts = a->attempts;
    r->hedges = a->hedges;
    r->budget_exhausted = a->budget_exhausted;
    r->hedge_won = a->hedge_won;
    cf_spans_copy(&r->spans, &a->spans, NULL, r->span_details);
    flight_finish(fl, r, storable, ttl_ms, wall_ms());
}

static void start_upstream(struct st_flight_t *fl)
{
    cf_attempt_start(&fl->attempt, fl->backend, &fl->req, 0, on_upstream_done);
}

/* Parses a memcached value; returns 0 with the fields, -1 when it is not ours. */
static int parse_serialized(h2o_iovec_t v, int64_t *stored_ms, uint64_t *ttl, uint64_t *swr, uint64_t *sie, int *status,
                            h2o_iovec_t *body)
{
    const char *nl = v.len != 0 ? memchr(v.base, '\n', v.len < 128 ? v.len : 128) : NULL;
    if (nl == NULL || v.len < sizeof(SERIAL_MAGIC) - 1 || memcmp(v.base, SERIAL_MAGIC, sizeof(SERIAL_MAGIC) - 1) != 0)
        return -1;
    char head[128];
    memcpy(head, v.base, (size_t)(nl - v.base));
    head[nl - v.base] = '\0';
    if (sscanf(head, SERIAL_MAGIC "%" SCNd64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %d", stored_ms, ttl, swr, sie, status) != 5)
        return -1;
    if (*status < 200 || *status > 299)
        return -1;
    /* what no conflux writes (the config's bounds) is not ours either: the freshness arithmetic then stays in range */
    if (*stored_ms < 0 || *ttl == 0 || *ttl > CF_CACHE_MAX_MS || *swr > CF_CACHE_MAX_MS || *sie > CF_CACHE_MAX_MS)
        return -1;
    *body = h2o_iovec_init(nl + 1, v.len - (size_t)(nl + 1 - v.base));
    return 0;
}

/* --- the memcached tier's breaker ---------------------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Asks every port to give up the lookups it has waiting (on its own thread: flights are per port). */
static void give_up_waiting_lookups(void)
{
    pthread_mutex_lock(&ports_mutex);
    for (h2o_linklist_t *l = attached_ports.next; l != &attached_ports; l = l->next) {
        cf_cache_port_t *p = H2O_STRUCT_FROM_MEMBER(cf_cache_port_t, attached, l);
        if (!p->opened_queued) {
            p->opened_queued = 1;
            h2o_multithread_send_message(&p->opened, &p->opened_msg);
        }
    }
    pthread_mutex_unlock(&ports_mutex);
}

/* Whether a lookup may go to memcached now; counts it when skipped. */
static cf_breaker_admit_t tier_admit(void)
{
    if (cf_breaker_state(&tier.breaker) == CF_BREAKER_CLOSED)
        return CF_BREAKER_PASS;
    int64_t now = mono_ms();
    cf_breaker_admit_t a = CF_BREAKER_SKIP;
    if (!cf_breaker_skips(&tier.breaker, now)) { /* the lock only when a probe may be due */
        pthread_mutex_lock(&tier.mutex);
        a = cf_breaker_admit(&tier.breaker, now);
        pthread_mutex_unlock(&tier.mutex);
    }
    if (a == CF_BREAKER_SKIP)
        STAT_ADD(memcached_skipped_gets, 1);
    return a;
}

/* Reports whether a lookup got an answer in time; logs when the breaker opens from closed and when it closes. */
static void tier_report(int probe, int ok)
{
    if (ok && !probe && cf_breaker_state(&tier.breaker) == CF_BREAKER_CLOSED &&
        __atomic_load_n(&tier.breaker.failures, __ATOMIC_RELAXED) == 0)
        return; /* the healthy path takes no lock */
    int64_t now = mono_ms();
    uint64_t skipped = __atomic_load_n(&stats.memcached_skipped_gets, __ATOMIC_RELAXED), open_ms = 0;
    int64_t opened_at = 0;
    pthread_mutex_lock(&tier.mutex);
    int was = tier.breaker.state, to = cf_breaker_report(&tier.breaker, now, probe, ok);
    if (to == CF_BREAKER_OPEN && was == CF_BREAKER_CLOSED) {
        tier.opened_at_ms = now;
        tier.skipped_at_open = skipped;
        open_ms = tier.breaker.open_ms;
    } else if (to == CF_BREAKER_CLOSED) {
        opened_at = tier.opened_at_ms;
        skipped -= tier.skipped_at_open;
    }
    pthread_mutex_unlock(&tier.mutex);

    /* one line when it opens and one when it closes; reopenings after a failed probe are only in /metrics */
    if (to == CF_BREAKER_OPEN && was == CF_BREAKER_CLOSED) {
        STAT_ADD(memcached_opens, 1);
        fprintf(stderr,
                "conflux: memcached %s: %d lookups in a row got no answer within %" PRIu64 "ms; skipping it for %" PRIu64
                "ms, then one probe lookup (the period doubles while it fails, up to %ds)\n",
                tier.name, MEMCACHED_BREAKER_FAILURES, tier.wait_ms, open_ms, MEMCACHED_BREAKER_MAX_MS / 1000);
        give_up_waiting_lookups();
    } else if (to == CF_BREAKER_CLOSED) {
        fprintf(stderr, "conflux: memcached %s answers again; using it (skipped %" PRIu64 " lookups over %.1fs)\n", tier.name,
                skipped, (now - opened_at) / 1000.0);
    }
}

/* Stops waiting for the flight's lookup, if one waits: cancels the get (h2o's client drops a late answer) and the
 * timer. Returns whether one was waiting. */
static int lookup_stop(struct st_flight_t *fl)
{
    h2o_timeout_unlink(&fl->mtimer);
    if (fl->mreq == NULL)
        return 0;
    h2o_memcached_cancel_get(fl->cache->memc, fl->mreq);
    fl->mreq = NULL;
    STAT_SUB(memcached_waiting, 1);
    return 1;
}

/* The breaker opened: the lookups this port has waiting go to their upstream now instead of at their timeout. */
static void on_tier_opened(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    cf_cache_port_t *p = H2O_STRUCT_FROM_MEMBER(cf_cache_port_t, opened, receiver);
    pthread_mutex_lock(&ports_mutex);
    while (!h2o_linklist_is_empty(messages))
        h2o_linklist_unlink(messages->next);
    p->opened_queued = 0;
    pthread_mutex_unlock(&ports_mutex);
    if (cf_breaker_state(&tier.breaker) == CF_BREAKER_CLOSED)
        return;
    /* cf_upstream_start never answers from inside itself, so no flight leaves the list during this walk */
    for (h2o_linklist_t *l = p->flights.next; l != &p->flights; l = l->next) {
        struct st_flight_t *fl = H2O_STRUCT_FROM_MEMBER(struct st_flight_t, port_link, l);
        if (!fl->probe && lookup_stop(fl)) {
            STAT_ADD(memcached_skipped_gets, 1);
            start_upstream(fl);
        }
    }
}

static void on_memcached_get(h2o_iovec_t value, void *data)
{
    struct st_flight_t *fl = data;
    fl->mreq = NULL;
    h2o_timeout_unlink(&fl->mtimer);
    STAT_SUB(memcached_waiting, 1);
    tier_report(fl->probe, 1);
    int64_t stored_ms;
    uint64_t ttl, swr, sie;
    int status;
    h2o_iovec_t body;
    json_t *doc = NULL;
    json_error_t jerr;
    int64_t now = wall_ms();
    /* stored in the future by more than its ttl: not a clock a little ahead, and it would stay fresh for ever */
    if (value.len != 0 && parse_serialized(value, &stored_ms, &ttl, &swr, &sie, &status, &body) == 0 &&
        stored_ms - now <= (int64_t)ttl && now - stored_ms < (int64_t)ttl &&
        now - stored_ms < (int64_t)fl->policy.ttl_ms && /* fresh for this call too (see cf_cache_fetch) */
        (doc = json_loadb(body.base, body.len, JSON_DECODE_ANY, &jerr)) != NULL) {
        STAT_ADD(memcached_hits, 1);
        struct st_result_t *r = result_new(h2o_iovec_init(NULL, 0)); /* not stored back to memcached: no text */
        r->doc = doc;
        r->status = status;
        r->from_memcached = 1;
        fl->policy.swr_ms = swr; /* the entry keeps the windows of the process that stored it */
        fl->policy.sie_ms = sie;
        flight_finish(fl, r, 1, ttl, stored_ms);
        return;
    }
    STAT_ADD(memcached_misses, 1);
    start_upstream(fl);
}

static void on_memcached_timeout(h2o_timeout_entry_t *entry)
{
    struct st_flight_t *fl = H2O_STRUCT_FROM_MEMBER(struct st_flight_t, mtimer, entry);
    lookup_stop(fl);
    STAT_ADD(memcached_errors, 1);
    tier_report(fl->probe, 0);
    start_upstream(fl);
}

static void start_flight(struct st_flight_t *fl)
{
    cf_breaker_admit_t admit = fl->cache->memc != NULL ? tier_admit() : CF_BREAKER_SKIP;
    if (admit == CF_BREAKER_SKIP) {
        start_upstream(fl);
        return;
    }
    char hex[SHA256_DIGEST_LENGTH * 2 + 1];
    fl->probe = admit == CF_BREAKER_PROBE;
    fl->mtimer.cb = on_memcached_timeout;
    cf_timeouts_link(fl->port->timeouts, tier.wait_ms, &fl->mtimer);
    STAT_ADD(memcached_waiting, 1);
    /* h2o's client answers through the port's queue, never from inside this call */
    fl->mreq = h2o_memcached_get(fl->cache->memc, &fl->port->memc, memcached_key(fl, hex), on_memcached_get, fl, 0);
}

/* Creates a flight (with the mutex held) and registers it; the caller starts it once the mutex is released. */
static struct st_flight_t *flight_new(cf_cache_t *c, cf_cache_port_t *port, cf_attempt_backend_t *backend,
                                      const cf_upstream_req_t *req, h2o_iovec_t key, uint64_t hash, const unsigned char *digest,
                                      const cf_cache_policy_t *policy)
{
    struct st_flight_t *fl = h2o_mem_alloc(sizeof(*fl) + key.len);
    memset(fl, 0, sizeof(*fl));
    memcpy(fl + 1, key.base, key.len);
    fl->h.key = h2o_iovec_init((char *)(fl + 1), key.len);
    fl->h.hash = hash;
    memcpy(fl->digest, digest, sizeof(fl->digest));
    fl->cache = c;
    fl->port = port;
    fl->backend = backend;
    cf_attempt_backend_retain(backend);
    fl->policy = *policy;
    h2o_mem_init_pool(&fl->pool);
    cf_attempt_req_copy(&fl->pool, &fl->req, req);
    fl->req.span_pool = &fl->pool; /* copied into the result at the end: the flight's pool goes with the flight */
    fl->req.body = h2o_iovec_init(NULL, 0);
    h2o_linklist_init_anchor(&fl->waiters);
    h2o_linklist_insert(&fl->port->flights, &fl->port_link);
    htable_insert(&c->flights, &fl->h);
    return fl;
}

static cf_cache_wait_t *waiter_new(cf_cache_port_t *port, struct st_flight_t *fl, h2o_iovec_t key, uint64_t hash, cf_cache_cb cb,
                                   void *data, int leader)
{
    cf_cache_wait_t *wt = h2o_mem_alloc(sizeof(*wt) + key.len);
    memset(wt, 0, sizeof(*wt));
    memcpy(wt + 1, key.base, key.len);
    wt->key = h2o_iovec_init((char *)(wt + 1), key.len);
    wt->hash = hash;
    wt->port = port;
    wt->cb = cb;
    wt->data = data;
    wt->leader = leader;
    wt->flight = fl;
    h2o_linklist_insert(&fl->waiters, &wt->link);
    return wt;
}

cf_cache_wait_t *cf_cache_fetch(cf_cache_t *c, cf_cache_port_t *port, cf_attempt_backend_t *backend, const cf_upstream_req_t *req,
                                h2o_iovec_t key, const cf_cache_policy_t *policy, cf_cache_cb cb, void *data,
                                cf_cache_answer_t *ans)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    uint64_t hash = key_hash(key, digest);
    int64_t now = wall_ms();
    struct st_flight_t *start = NULL;
    cf_cache_wait_t *wt = NULL;

    memset(ans, 0, sizeof(*ans));
    pthread_mutex_lock(&c->mutex);
    struct st_entry_t *e = store_find(c, hash, key);
    if (e != NULL && !entry_usable(e, now)) {
        entry_unlink_free(c, e);
        e = NULL;
    }
    /* An entry is fresh for the shorter of its own ttl and the caller's, and then stale within the caller's
     * stale_while_revalidate: the key holds no policy, and a call with `cache: 1s` must not take an answer a `cache: 1h`
     * call stored an hour ago as fresh. With one policy per key this is the entry's own ttl and window. */
    uint64_t fresh_ms = e != NULL ? fresh_for(e, policy) : 0;
    if (e != NULL && now - e->stored_ms < (int64_t)(fresh_ms + policy->swr_ms)) {
        h2o_linklist_unlink(&e->lru);
        h2o_linklist_insert(&c->lru, &e->lru);
        fill_from_entry(ans, e, now);
        ans->report.ttl_s = fresh_left_s(e->stored_ms, fresh_ms, now);
        if (now - e->stored_ms < (int64_t)fresh_ms) {
            ans->report.state = CF_CACHE_HIT;
        } else {
            /* stale_while_revalidate (RFC 5861 3): answer now, refresh in the background, one refresh per key */
            ans->report.state = CF_CACHE_STALE;
            if (htable_find(&c->flights, hash, key) == NULL)
                start = flight_new(c, port, backend, req, key, hash, digest, policy);
        }
        cache_unlock(c);
        if (ans->report.state == CF_CACHE_HIT)
            STAT_ADD(hits, 1);
        else
            STAT_ADD(stale, 1);
        if (start != NULL)
            start_flight(start);
        return NULL;
    }
    struct st_hnode_t *n = htable_find(&c->flights, hash, key);
    if (n != NULL) {
        wt = waiter_new(port, H2O_STRUCT_FROM_MEMBER(struct st_flight_t, h, n), key, hash, cb, data, 0);
    } else {
        start = flight_new(c, port, backend, req, key, hash, digest, policy);
        wt = waiter_new(port, start, key, hash, cb, data, 1);
    }
    cache_unlock(c);
    if (start != NULL)
        start_flight(start);
    return wt;
}

int cf_cache_wait_joined(const cf_cache_wait_t *wt)
{
    return !wt->leader;
}

int cf_cache_cancel(cf_cache_wait_t *wt, cf_cache_answer_t *stale)
{
    cf_cache_t *c = the_cache;
    int64_t now = wall_ms();
    int found = 0, do_free = 0;
    struct st_flight_t *abandoned = NULL;
    pthread_mutex_lock(&c->mutex);
    if (wt->flight != NULL) {
        struct st_flight_t *fl = wt->flight;
        h2o_linklist_unlink(&wt->link);
        do_free = 1;
        /* The last waiter leaves a request of this loop that still waits for a connection (max_connections busy):
         * nobody wants it now, and left in the queue it would go before requests that somebody waits for. One that has
         * been sent runs on and is stored, as the docs say; a flight of another loop is that loop's to run. */
        if (h2o_linklist_is_empty(&fl->waiters) && fl->port == wt->port && fl->mreq == NULL && cf_attempt_queued(&fl->attempt)) {
            htable_remove(&c->flights, &fl->h);
            abandoned = fl;
        }
    } else {
        wt->cancelled = 1; /* its answer is queued: on_deliver frees it */
    }
    struct st_entry_t *e = stale != NULL ? store_find(c, wt->hash, wt->key) : NULL;
    if (e != NULL && !entry_fresh(e, now) && entry_in_sie(e, now)) {
        memset(stale, 0, sizeof(*stale));
        fill_from_entry(stale, e, now);
        stale->report.state = CF_CACHE_STALE;
        found = 1;
    }
    cache_unlock(c);
    if (abandoned != NULL) {
        cf_attempt_cancel(&abandoned->attempt);
        flight_free(abandoned);
        STAT_ADD(abandoned, 1);
    }
    if (do_free)
        free(wt);
    if (found)
        STAT_ADD(stale, 1);
    return found;
}

/* --- ports -------------------------------------------------------------------------------------------------------- */

cf_cache_port_t *cf_cache_port_create(h2o_multithread_queue_t *queue, cf_timeouts_t *timeouts)
{
    cf_cache_port_t *p = h2o_mem_alloc(sizeof(*p));
    memset(p, 0, sizeof(*p));
    p->queue = queue;
    p->timeouts = timeouts;
    h2o_linklist_init_anchor(&p->flights);
    h2o_multithread_register_receiver(queue, &p->deliver, on_deliver);
    h2o_multithread_register_receiver(queue, &p->memc, h2o_memcached_receiver);
    h2o_multithread_register_receiver(queue, &p->opened, on_tier_opened);
    pthread_mutex_lock(&ports_mutex);
    h2o_linklist_insert(&attached_ports, &p->attached);
    pthread_mutex_unlock(&ports_mutex);
    return p;
}

void cf_cache_port_destroy(cf_cache_port_t *p)
{
    if (p == NULL)
        return;
    while (!h2o_linklist_is_empty(&p->flights)) {
        struct st_flight_t *fl = H2O_STRUCT_FROM_MEMBER(struct st_flight_t, port_link, p->flights.next);
        if (cf_attempt_running(&fl->attempt)) {
            cf_attempt_cancel(&fl->attempt);
        }
        lookup_stop(fl);
        struct st_result_t *r = result_new(h2o_iovec_init(NULL, 0));
        r->reason = CF_REASON_CANCELLED;
        flight_finish(fl, r, 0, 0, 0);
    }
    /* answers already queued for this port are delivered (or freed) before the receiver goes; no lookup of this loop
     * waits any more, so nothing else can be sent to it */
    if (!h2o_linklist_is_empty(&p->deliver._messages))
        on_deliver(&p->deliver, &p->deliver._messages);
    h2o_multithread_unregister_receiver(p->queue, &p->deliver);
    /* once out of attached_ports no thread sends it "opened"; one already sent is dropped (nothing waits any more) */
    pthread_mutex_lock(&ports_mutex);
    h2o_linklist_unlink(&p->attached);
    if (h2o_linklist_is_linked(&p->opened_msg.link))
        h2o_linklist_unlink(&p->opened_msg.link);
    pthread_mutex_unlock(&ports_mutex);
    h2o_multithread_unregister_receiver(p->queue, &p->opened);
    if (tier.memc != NULL) {
        pthread_mutex_lock(&ports_mutex);
        p->next = retired_ports;
        retired_ports = p;
        pthread_mutex_unlock(&ports_mutex);
        return;
    }
    h2o_multithread_unregister_receiver(p->queue, &p->memc);
    free(p);
}
