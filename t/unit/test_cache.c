/* Unit tests of the cache: keys, Cache-Control, the byte-bounded LRU, the memcached format, and flights (coalescing,
 * delivery to another loop's thread, stale answers, waiters that leave) against a fake upstream. */
#include <pthread.h>
#include <unistd.h>
#include "tap.h"
#include "../../gateway/trace.c"
#include "../../gateway/attempt.c"
#include "../../gateway/breaker.c"
#include "../../gateway/cache.c"

/* --- a fake upstream: exchanges are recorded, and answered when a test says so ------------------------------------ */

struct st_cf_upstream_t {
    size_t refcnt;
    size_t started; /* exchanges started on it */
};

struct st_cf_exchange_t {
    cf_upstream_t *u;
    cf_upstream_cb cb;
    void *data;
    int live;   /* started, neither answered nor cancelled */
    int queued; /* waiting for a connection (the test says so with queue_next) */
};

static struct st_cf_exchange_t exchanges[32];
static size_t num_exchanges, num_cancelled;
static int queue_next; /* the next exchange started waits in the queue for a connection */

cf_exchange_t *cf_upstream_start(cf_upstream_t *u, const cf_upstream_req_t *req, cf_upstream_cb cb, void *data)
{
    cf_exchange_t *x = &exchanges[num_exchanges++ % 32];
    *x = (cf_exchange_t){u, cb, data, 1, queue_next};
    queue_next = 0;
    ++u->started;
    return x;
}

int cf_upstream_queued(const cf_exchange_t *x)
{
    return x->queued;
}

size_t cf_upstream_server(const cf_exchange_t *x)
{
    return 0;
}

uint64_t cf_upstream_span_id(const cf_exchange_t *x)
{
    return 0;
}

void cf_upstream_cancel(cf_exchange_t *x)
{
    x->live = 0;
    ++num_cancelled;
}

void cf_upstream_retain(cf_upstream_t *u)
{
    ++u->refcnt;
}

void cf_upstream_release(cf_upstream_t *u)
{
    --u->refcnt;
}

/* The last exchange started, answered with `status` and `body` (as the real one does: from the loop, later). */
static void answer_last(int status, const char *body)
{
    cf_exchange_t *x = &exchanges[(num_exchanges - 1) % 32];
    cf_upstream_res_t res = {.status = status, .body = h2o_iovec_init(body, strlen(body))};
    x->live = 0;
    x->cb(x->data, &res);
}

/* --- loops and waiters ------------------------------------------------------------------------------------------- */

typedef struct st_test_loop_t {
    h2o_loop_t *loop;
    h2o_multithread_queue_t *queue;
    cf_timeouts_t timeouts;
    cf_cache_port_t *port;
} test_loop_t;

static void loop_init(test_loop_t *l)
{
    l->loop = h2o_evloop_create();
    l->queue = h2o_multithread_create_queue(l->loop);
    cf_timeouts_init(&l->timeouts, l->loop);
    l->port = cf_cache_port_create(l->queue, &l->timeouts);
}

static void loop_dispose(test_loop_t *l)
{
    cf_cache_port_destroy(l->port);
    cf_timeouts_dispose(&l->timeouts);
    h2o_multithread_destroy_queue(l->queue);
    free(l->queue);
    h2o_evloop_run(l->loop, 0); /* frees the queue's socket, whose close waits for the loop */
    h2o_evloop_destroy(l->loop);
}

/* An answer's document as compact text (into `buf`), its reference released: the test keeps only its address. */
static const char *take_text(json_t *doc, char *buf, size_t size)
{
    size_t n = doc != NULL ? json_dumpb(doc, buf, size - 1, JSON_COMPACT | JSON_ENCODE_ANY) : 0;
    buf[n < size ? n : 0] = '\0';
    json_decref(doc);
    return buf;
}

/* What a waiter got. */
typedef struct st_got_t {
    int called;
    cf_cache_answer_t ans; /* doc: its address only (the reference is released) */
    char body[64];
    pthread_t thread;
} got_t;

static void on_got(void *data, const cf_cache_answer_t *ans)
{
    got_t *g = data;
    ++g->called;
    g->ans = *ans;
    take_text(ans->doc, g->body, sizeof(g->body));
    g->thread = pthread_self();
}

/* The text of an answer given at once (its reference released). */
static const char *text_of(cf_cache_answer_t *ans)
{
    static char buf[64];
    return take_text(ans->doc, buf, sizeof(buf));
}

/* Runs the loop until *flag is set (at most a second). */
static void run_until(test_loop_t *l, const int *flag)
{
    for (int i = 0; i != 100 && !__atomic_load_n(flag, __ATOMIC_ACQUIRE); ++i)
        h2o_evloop_run(l->loop, 10);
}

static cf_cache_wait_t *fetch(test_loop_t *l, cf_upstream_t *u, const char *key, const cf_cache_policy_t *policy, got_t *g,
                              cf_cache_answer_t *ans)
{
    static const cf_backend_t backend = {.timeout_ms = 1000}; /* no retries, no hedges */
    cf_upstream_req_t req = {.method = h2o_iovec_init(H2O_STRLIT("GET")), .path = h2o_iovec_init(key, strlen(key))};
    memset(g, 0, sizeof(*g));
    /* the attempts over the fake upstream; a flight that starts keeps its own reference */
    cf_attempt_backend_t *ab = cf_attempt_backend_create(&l->timeouts, u, &backend);
    cf_cache_wait_t *wt =
        cf_cache_fetch(cf_cache_get(), l->port, ab, &req, h2o_iovec_init(key, strlen(key)), policy, on_got, g, ans);
    cf_attempt_backend_release(ab);
    return wt;
}

/* Puts an entry for `key`, stored `age_ms` ago. */
static void put_entry(const char *key, int64_t age_ms, const cf_cache_policy_t *policy, const char *body)
{
    cf_cache_t *c = cf_cache_get();
    unsigned char d[SHA256_DIGEST_LENGTH];
    h2o_iovec_t k = h2o_iovec_init(key, strlen(key));
    json_t *doc = json_loads(body, 0, NULL);
    pthread_mutex_lock(&c->mutex);
    store_put(c, key_hash(k, d), k, wall_ms() - age_ms, policy->ttl_ms, policy->swr_ms, policy->sie_ms, 200, doc, doc_bytes(doc));
    cache_unlock(c);
    json_decref(doc);
}

static h2o_header_t hdr(const char *name, const char *value)
{
    static h2o_iovec_t names[16];
    static size_t n;
    h2o_iovec_t *nm = &names[n++ % 16];
    *nm = h2o_iovec_init(name, strlen(name));
    return (h2o_header_t){.name = nm, .value = h2o_iovec_init(value, strlen(value))};
}

static char *key_of(const char *backend, const char *url, const h2o_header_t *h, size_t n)
{
    cf_buf_t b = CF_BUF_INIT;
    cf_cache_build_key(&b, backend, h2o_iovec_init(H2O_STRLIT("GET")), h2o_iovec_init(url, strlen(url)), h, n);
    char *s = strndup(b.base, b.len);
    cf_buf_free(&b);
    return s;
}

static void test_keys(void)
{
    h2o_header_t alice[] = {hdr("authorization", "Bearer alice")}, bob[] = {hdr("authorization", "Bearer bob")};
    h2o_header_t lang[] = {hdr("accept-language", "fr")}, cookie[] = {hdr("cookie", "Bearer alice")};
    char *k1 = key_of("users", "/u/1", NULL, 0), *k2 = key_of("users", "/u/1", alice, 1), *k3 = key_of("users", "/u/1", bob, 1);
    char *k4 = key_of("users", "/u/1", lang, 1), *k5 = key_of("users", "/u/1", cookie, 1), *k6 = key_of("orders", "/u/1", NULL, 0);
    char *k7 = key_of("users", "/u/2", NULL, 0), *k8 = key_of("users", "/u/1", alice, 1);
    ok(strcmp(k1, k2) != 0, "Authorization changes the key");
    ok(strcmp(k2, k3) != 0, "two users, two keys");
    is_str(k2, k8, "the same user, the same key");
    is_str(k1, k4, "other forwarded headers do not change the key");
    ok(strcmp(k2, k5) != 0, "the same value as Cookie or as Authorization: different keys");
    ok(strcmp(k1, k6) != 0, "the backend is in the key");
    ok(strcmp(k1, k7) != 0, "the URL is in the key");
    /* length prefixes: a URL holding what looks like a header part cannot pose as it */
    char *k9 = key_of("users", "/u/1\na12:Bearer alice", NULL, 0);
    ok(strcmp(k9, k2) != 0, "no confusion between URL and credentials");
    free(k1), free(k2), free(k3), free(k4), free(k5), free(k6), free(k7), free(k8), free(k9);
}

static int cc(const char *value, uint64_t ttl_in, uint64_t *ttl_out)
{
    h2o_header_t h[] = {hdr("content-type", "application/json"), hdr("Cache-Control", value)};
    *ttl_out = ttl_in;
    return cf_cache_control_ttl(h, 2, ttl_out);
}

static void test_cache_control(void)
{
    uint64_t t;
    ok(cc("no-store", 30000, &t) == 0, "no-store: not stored");
    ok(cc("public, no-store", 30000, &t) == 0, "no-store among others");
    ok(cc("private, max-age=60", 30000, &t) == 0, "private: not stored");
    ok(cc("No-Cache", 30000, &t) == 0, "no-cache (any case): not stored");
    ok(cc("max-age=0", 30000, &t) == 0, "max-age=0: not stored");
    ok(cc("max-age=abc", 30000, &t) == 0, "malformed max-age: not stored");
    ok(cc("max-age=10", 30000, &t) == 1 && t == 10000, "max-age below the ttl shortens it");
    ok(cc("max-age=100", 30000, &t) == 1 && t == 30000, "max-age above the ttl leaves it");
    ok(cc("max-age=100, s-maxage=5", 30000, &t) == 1 && t == 5000, "s-maxage wins over max-age");
    ok(cc(" public , max-age=\"7\" ", 30000, &t) == 1 && t == 7000, "spaces and a quoted value");
    ok(cc("public", 30000, &t) == 1 && t == 30000, "public: stored with the ttl");
    ok(cc("max-age=99999999999999999999", 30000, &t) == 1 && t == 30000, "a huge max-age does not overflow");
    uint64_t t2 = 30000;
    ok(cf_cache_control_ttl(NULL, 0, &t2) == 1 && t2 == 30000, "no header: stored");
}

static void test_store(void)
{
    char text[1000];
    memset(text, 'x', sizeof(text));
    json_t *body = json_stringn(text, 100), *small = json_stringn(text, 10), *big = json_stringn(text, 1000);
    size_t entry = sizeof(struct st_entry_t) + 4 + doc_bytes(body), small_entry = sizeof(struct st_entry_t) + 4 + doc_bytes(small);
    cf_cache_t *c = cf_cache_create(0, NULL, 0, 50);
    cf_cache_set_memory(c, 3 * entry);
    unsigned char d[SHA256_DIGEST_LENGTH];
    const char *keys[] = {"key1", "key2", "key3", "key4"};
    uint64_t h[4];
    for (int i = 0; i < 4; ++i)
        h[i] = key_hash(h2o_iovec_init(keys[i], 4), d);
    cf_cache_stats_t s0, s;
    cf_cache_stats(&s0);
    pthread_mutex_lock(&c->mutex);
    for (int i = 0; i < 3; ++i)
        ok(store_put(c, h[i], h2o_iovec_init(keys[i], 4), 1000, 5000, 0, 0, 200, body, doc_bytes(body)) == 0, "put %s", keys[i]);
    is(c->bytes, 3 * entry, "bytes count struct, key and parsed body");
    /* touch key1 so key2 becomes the least recently used */
    struct st_entry_t *e = store_find(c, h[0], h2o_iovec_init(keys[0], 4));
    ok(e != NULL, "find key1");
    h2o_linklist_unlink(&e->lru);
    h2o_linklist_insert(&c->lru, &e->lru);
    ok(store_put(c, h[3], h2o_iovec_init(keys[3], 4), 1000, 5000, 0, 0, 200, body, doc_bytes(body)) == 0, "put key4");
    ok(store_find(c, h[1], h2o_iovec_init(keys[1], 4)) == NULL, "the least recently used (key2) was evicted");
    ok(store_find(c, h[0], h2o_iovec_init(keys[0], 4)) != NULL, "key1 (touched) stays");
    ok(store_find(c, h[3], h2o_iovec_init(keys[3], 4)) != NULL, "key4 is in");
    is(c->bytes, 3 * entry, "bytes stay within the bound");
    ok(store_put(c, h[3], h2o_iovec_init(keys[3], 4), 2000, 5000, 0, 0, 200, small, doc_bytes(small)) == 0, "replace key4");
    is(c->bytes, 2 * entry + small_entry, "replacing re-counts");
    ok(store_put(c, h[1], h2o_iovec_init(keys[1], 4), 1000, 5000, 0, 0, 200, big, doc_bytes(big)) == -1,
       "an entry larger than the whole bound is refused");
    ok(c->bytes != 0, "and evicts nothing");
    cache_unlock(c);
    cf_cache_stats(&s);
    is(s.evictions - s0.evictions, 1, "one eviction counted");
    is(s.bytes, c->bytes, "stats.bytes is the store's");
    is(s.entries, 3, "three entries");

    /* freshness windows */
    e = store_find(c, h[0], h2o_iovec_init(keys[0], 4));
    e->ttl_ms = 5000, e->swr_ms = 2000, e->sie_ms = 10000;
    ok(entry_fresh(e, 5999) && !entry_fresh(e, 6000), "fresh for ttl after stored");
    ok(entry_in_swr(e, 7999) && !entry_in_swr(e, 8000), "stale_while_revalidate window");
    ok(entry_in_sie(e, 15999) && !entry_in_sie(e, 16000), "stale_if_error window");
    ok(entry_usable(e, 15999) && !entry_usable(e, 16000), "usable while in either window");
    is(ttl_left_s(e, 3000), 3, "ttl left rounds down");
    is(ttl_left_s(e, 6500), -1, "stale by 0.5s: -1");
    is(ttl_left_s(e, 8000), -2, "stale by 2s: -2");

    is(body->refcount, 3, "the two entries left with it share the document they were given");
    cf_cache_set_memory(c, 0);
    is(c->bytes, 0, "a zero bound empties the store");
    is(body->refcount, 1, "and give their references back");
    cf_cache_destroy(c);
    ok(cf_cache_get() == NULL, "destroyed");
    json_decref(body);
    json_decref(small);
    json_decref(big);
}

/* jansson's allocations through these: `heap` counts what glibc would hold for the live blocks (chunk_bytes of what
 * the allocator gives, which is what glibc holds less its header, or under ASan exactly what was asked). The blocks
 * are plain malloc ones, as doc_bytes expects of a string's text. */
static size_t heap;

static void *counting_malloc(size_t n)
{
    void *p = malloc(n);
    if (p != NULL)
        heap += chunk_bytes(malloc_usable_size(p));
    return p;
}

static void counting_free(void *p)
{
    if (p == NULL)
        return;
    heap -= chunk_bytes(malloc_usable_size(p));
    free(p);
}

static void test_doc_bytes(void)
{
    char many[600] = "{", *p = many + 1;
    for (int i = 0; i != 40; ++i)
        p += sprintf(p, "%s\"k%d\":%d", i != 0 ? "," : "", i, i);
    strcpy(p, "}");
    /* escaped strings: jansson allocates a string's text at the length of its escaped form (6 bytes per \uXXXX), not
     * of what it decodes to; Python's json.dumps writes every non-ASCII character so by default */
    char escaped[1300] = "{\"s\":\"", accents[700] = "[\"";
    for (int i = 0; i != 200; ++i)
        strcat(escaped, "\\u0041");
    strcat(escaped, "\"}");
    for (int i = 0; i != 100; ++i)
        strcat(accents, "\\u00e9");
    strcat(accents, "\"]");
    const char *docs[] = {"{}",
                          "[]",
                          "\"\"",
                          "1",
                          "1.5",
                          "true",
                          "null",
                          "{\"a\":1}",
                          "{\"id\": 1, \"name\": \"alice\", \"plan\": \"pro\"}",
                          "{\"orders\": [{\"id\": 7, \"total\": 12.5}, {\"id\": 9, \"total\": 3}], \"empty\": {}, \"none\": null}",
                          "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, \"a string of some length\", [true, false]]",
                          many,
                          escaped,
                          accents};
    for (size_t i = 0; i != sizeof(docs) / sizeof(docs[0]); ++i) {
        size_t before = heap;
        json_t *doc = json_loads(docs[i], JSON_DECODE_ANY, NULL);
        size_t real = heap - before, est = doc_bytes(doc);
        ok(est * 20 >= real * 19 && est * 20 <= real * 21, "the heap of a parsed %zu-byte document: %zu estimated, %zu allocated",
           strlen(docs[i]), est, real);
        json_decref(doc);
    }
}

static void test_serialized(void)
{
    int64_t st;
    uint64_t ttl, swr, sie;
    int status;
    h2o_iovec_t body;
    const char *v = "CF1 1700000000000 30000 60000 0 200\n{\"a\":1}";
    ok(parse_serialized(h2o_iovec_init(v, strlen(v)), &st, &ttl, &swr, &sie, &status, &body) == 0, "parses");
    ok(st == 1700000000000 && ttl == 30000 && swr == 60000 && sie == 0 && status == 200, "fields");
    ok(h2o_memis(body.base, body.len, H2O_STRLIT("{\"a\":1}")), "body");
    const char *bad[] = {"", "CF1", "CF2 1 2 3 4 200\n{}", "CF1 1 2 3 200\n{}", "CF1 1 2 3 4 503\n{}", "CF1 1 2 3 4 200 no newline",
                         /* out of the config's bounds: no conflux writes them */
                         "CF1 -1 30000 0 0 200\n{}", "CF1 1 0 0 0 200\n{}", "CF1 1 2592000001 0 0 200\n{}",
                         "CF1 1 30000 2592000001 0 200\n{}", "CF1 1 30000 0 18446744073709551615 200\n{}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i)
        ok(parse_serialized(h2o_iovec_init(bad[i], strlen(bad[i])), &st, &ttl, &swr, &sie, &status, &body) == -1, "refuses \"%s\"",
           tap_printable(bad[i]));
}

/* --- flights ------------------------------------------------------------------------------------------------------ */

static const cf_cache_policy_t plain = {.ttl_ms = 30000};

static void test_coalescing(test_loop_t *a)
{
    cf_upstream_t u = {.refcnt = 1};
    got_t g1, g2, g3;
    cf_cache_answer_t ans;
    cf_cache_stats_t s0, s;
    cf_cache_stats(&s0);

    ok(fetch(a, &u, "/c", &plain, &g1, &ans) != NULL, "a miss waits");
    is(u.started, 1, "and starts the upstream request");
    is(u.refcnt, 2, "the flight holds a reference to the upstream");
    ok(fetch(a, &u, "/c", &plain, &g2, &ans) != NULL, "the same key waits too");
    is(u.started, 1, "on the same request: no second one");
    answer_last(200, "{\"a\":1}");
    is(u.refcnt, 1, "the flight gave its reference back when it ended");
    is(g1.called + g2.called, 0, "answers go through the loop, not from inside the upstream's callback");
    run_until(a, &g2.called);
    is(g1.called, 1, "the first waiter is answered once");
    is(g1.ans.report.state, CF_CACHE_MISS, "as a miss");
    ok(g1.ans.report.stored && g1.ans.report.has_ttl && g1.ans.report.ttl_s >= 29 && g1.ans.report.ttl_s <= 30,
       "stored, with its ttl");
    is(g1.ans.report.fwd_status, 200, "fwd-status 200");
    is_str(g1.body, "{\"a\":1}", "the upstream's body");
    is(g2.called, 1, "the second waiter is answered once");
    is(g2.ans.report.state, CF_CACHE_COALESCED, "as coalesced");
    ok(!g2.ans.report.stored, "only the leader reports the store");
    is_str(g2.body, "{\"a\":1}", "the same body");
    ok(g2.ans.doc == g1.ans.doc, "the same document: the body was parsed once for both");

    ok(fetch(a, &u, "/c", &plain, &g3, &ans) == NULL, "then the entry answers at once");
    is(ans.report.state, CF_CACHE_HIT, "a hit");
    ok(ans.doc == g1.ans.doc, "the entry keeps that document");
    is_str(text_of(&ans), "{\"a\":1}", "with the stored body");
    is(u.started, 1, "and no upstream request");
    cf_cache_stats(&s);
    ok(s.misses - s0.misses == 1 && s.coalesced - s0.coalesced == 1 && s.hits - s0.hits == 1,
       "counted: a miss, a coalesced, a hit");
}

/* The other loop: joins a flight that the main loop runs, and is answered on its own thread. */
static struct {
    const char *key;
    got_t got;
    int joined;
    size_t started; /* its upstream's exchanges */
    pthread_barrier_t barrier;
} other;

static void *other_main(void *arg)
{
    test_loop_t b;
    cf_upstream_t ub = {.refcnt = 1};
    cf_cache_answer_t ans;
    loop_init(&b);
    other.joined = fetch(&b, &ub, other.key, &plain, &other.got, &ans) != NULL;
    pthread_barrier_wait(&other.barrier); /* the main thread answers the flight now */
    run_until(&b, &other.got.called);
    other.started = ub.started;
    loop_dispose(&b);
    /* libh2o 2.2.5 keeps recycled socket buffers in thread-local storage, with no destructor: a thread that ends
     * leaks them (LeakSanitizer says so). Like conflux's loop threads, this one lives as long as the process. */
    pthread_barrier_wait(&other.barrier);
    for (;;)
        pause();
    return NULL;
}

static void test_other_thread(test_loop_t *a)
{
    cf_upstream_t u = {.refcnt = 1};
    got_t g;
    cf_cache_answer_t ans;
    pthread_t th;

    other.key = "/t";
    pthread_barrier_init(&other.barrier, NULL, 2);
    ok(fetch(a, &u, other.key, &plain, &g, &ans) != NULL, "a miss on this loop starts a flight");
    pthread_create(&th, NULL, other_main, NULL);
    pthread_barrier_wait(&other.barrier);
    ok(other.joined, "another loop's lookup of the key waits for it");
    answer_last(200, "{\"t\":1}");
    run_until(a, &g.called);
    pthread_barrier_wait(&other.barrier); /* its loop is gone */
    is(u.started, 1, "one upstream request for both loops");
    is(other.started, 0, "none from the other loop's upstream");
    is(g.ans.report.state, CF_CACHE_MISS, "this loop's waiter: miss");
    is(other.got.called, 1, "the other loop's waiter is answered once");
    is(other.got.ans.report.state, CF_CACHE_COALESCED, "coalesced");
    is_str(other.got.body, "{\"t\":1}", "with the body");
    ok(pthread_equal(other.got.thread, th), "on its own loop's thread");
    ok(pthread_equal(g.thread, pthread_self()), "and this one on this thread");
}

static void test_swr(test_loop_t *a)
{
    cf_upstream_t u = {.refcnt = 1};
    const cf_cache_policy_t swr = {.ttl_ms = 1000, .swr_ms = 60000};
    got_t g1, g2, g3;
    cf_cache_answer_t ans1, ans2, ans3;

    put_entry("/s", 3000, &swr, "{\"v\":1}");
    ok(fetch(a, &u, "/s", &swr, &g1, &ans1) == NULL, "an entry within stale_while_revalidate answers at once");
    is(ans1.report.state, CF_CACHE_STALE, "stale");
    /* stale by 2s and the few milliseconds since put_entry: rounded away from zero */
    ok(ans1.report.has_ttl && ans1.report.ttl_s <= -2 && ans1.report.ttl_s >= -3, "ttl: stale by 2s (%d)", (int)ans1.report.ttl_s);
    is_str(text_of(&ans1), "{\"v\":1}", "with the old body");
    is(u.started, 1, "and starts a refresh");
    ok(fetch(a, &u, "/s", &swr, &g2, &ans2) == NULL && ans2.report.state == CF_CACHE_STALE, "a second lookup: stale too");
    json_decref(ans2.doc);
    is(u.started, 1, "one refresh per key");
    answer_last(200, "{\"v\":2}");
    is(u.refcnt, 1, "the refresh gave its reference back");
    ok(fetch(a, &u, "/s", &swr, &g3, &ans3) == NULL, "after the refresh");
    is(ans3.report.state, CF_CACHE_HIT, "a hit");
    is_str(text_of(&ans3), "{\"v\":2}", "on the new body");
    h2o_evloop_run(a->loop, 0);
    ok(g1.called + g2.called + g3.called == 0, "nobody waited, nobody is called");
}

static void test_stale_if_error(test_loop_t *a)
{
    cf_upstream_t u = {.refcnt = 1};
    const cf_cache_policy_t sie = {.ttl_ms = 10000, .sie_ms = 60000};
    got_t g;
    cf_cache_answer_t ans, stale;

    /* the route's deadline cuts the wait: the waiter leaves with the stale entry */
    put_entry("/d", 15000, &sie, "{\"old\":1}");
    cf_cache_wait_t *wt = fetch(a, &u, "/d", &sie, &g, &ans);
    ok(wt != NULL, "past its ttl (no stale_while_revalidate), a lookup waits for the refresh");
    ok(cf_cache_cancel(wt, &stale) == 1, "cut by the deadline: an entry within stale_if_error is offered");
    is(stale.report.state, CF_CACHE_STALE, "stale");
    ok(stale.report.has_ttl && stale.report.ttl_s <= -5 && stale.report.ttl_s >= -6, "ttl: stale by 5s (%d)",
       (int)stale.report.ttl_s);
    is_str(text_of(&stale), "{\"old\":1}", "the old body");
    answer_last(200, "{\"new\":1}");
    h2o_evloop_run(a->loop, 10);
    is(g.called, 0, "the waiter that left is not called");
    ok(fetch(a, &u, "/d", &sie, &g, &ans) == NULL && ans.report.state == CF_CACHE_HIT, "the refresh went on and was stored");
    is_str(text_of(&ans), "{\"new\":1}", "its body");

    /* the refresh fails: the entry answers */
    put_entry("/e", 15000, &sie, "{\"old\":2}");
    ok(fetch(a, &u, "/e", &sie, &g, &ans) != NULL, "waits for the refresh");
    answer_last(503, "{}");
    run_until(a, &g.called);
    is(g.ans.report.state, CF_CACHE_STALE, "the refresh got 503: stale");
    is(g.ans.report.fwd_status, 503, "fwd-status 503");
    is_str(g.body, "{\"old\":2}", "the old body");
    is(u.refcnt, 1, "no reference left behind");
}

static void test_waiter_leaves(test_loop_t *a)
{
    cf_upstream_t u = {.refcnt = 1};
    got_t g1, g2, g3, g4;
    cf_cache_answer_t ans;

    cf_cache_wait_t *w1 = fetch(a, &u, "/l", &plain, &g1, &ans);
    ok(fetch(a, &u, "/l", &plain, &g2, &ans) != NULL, "two waiters");
    is(cf_cache_cancel(w1, NULL), 0, "the leader leaves (no entry to offer)");
    is(num_cancelled, 0, "its request goes on");
    answer_last(200, "{\"l\":1}");
    run_until(a, &g2.called);
    is(g1.called, 0, "the waiter that left is not called");
    is(g2.called, 1, "the one that stayed is");
    is(g2.ans.report.state, CF_CACHE_COALESCED, "coalesced");

    /* leaving once the answer is on its way to the loop */
    cf_cache_wait_t *w3 = fetch(a, &u, "/l2", &plain, &g3, &ans);
    answer_last(200, "{\"l\":2}");
    is(cf_cache_cancel(w3, NULL), 0, "leaves with its answer queued");
    h2o_evloop_run(a->loop, 10);
    is(g3.called, 0, "the queued answer is dropped");

    /* the last waiter leaves a request still queued for a connection: it is dropped, not left to go first */
    got_t g5, g6;
    cf_cache_stats_t s0, s;
    cf_cache_stats(&s0);
    queue_next = 1;
    cf_cache_wait_t *w5 = fetch(a, &u, "/q", &plain, &g5, &ans);
    size_t cancelled = num_cancelled, started = u.started;
    is(cf_cache_cancel(w5, NULL), 0, "the only waiter of a request queued for a connection leaves");
    is(num_cancelled, cancelled + 1, "the queued request is cancelled");
    cf_cache_stats(&s);
    is(s.abandoned - s0.abandoned, 1, "counted as abandoned");
    is(u.refcnt, 1, "the flight gave its upstream reference back");
    ok(fetch(a, &u, "/q", &plain, &g6, &ans) != NULL, "the key's next lookup waits");
    is(u.started, started + 1, "on a request of its own");
    answer_last(200, "{\"q\":1}");
    run_until(a, &g6.called);
    is(g6.ans.report.state, CF_CACHE_MISS, "which answers it");
    is(g5.called, 0, "the waiter that left is never called");

    /* the loop goes away: its flights are cancelled, its waiters told */
    ok(fetch(a, &u, "/l3", &plain, &g4, &ans) != NULL, "a flight runs");
    cf_cache_port_destroy(a->port);
    is(num_cancelled, cancelled + 2, "destroying the port cancels its upstream request");
    is(g4.called, 1, "the waiter is answered");
    is(g4.ans.reason, CF_REASON_CANCELLED, "cancelled");
    is(u.refcnt, 1, "the upstream reference is given back");
    a->port = cf_cache_port_create(a->queue, &a->timeouts);
}

static void test_flights(void)
{
    test_loop_t a;
    cf_cache_t *c = cf_cache_create(1 << 20, NULL, 0, 50);
    loop_init(&a);
    test_coalescing(&a);
    test_other_thread(&a);
    test_swr(&a);
    test_stale_if_error(&a);
    test_waiter_leaves(&a);
    loop_dispose(&a);
    cf_cache_destroy(c);
}

int main(void)
{
    json_set_alloc_funcs(counting_malloc, counting_free); /* before any JSON is made */
    test_keys();
    test_cache_control();
    test_store();
    test_doc_bytes();
    test_serialized();
    test_flights();
    return done_testing();
}
