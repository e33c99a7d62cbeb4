/* Unit tests of the cache's pure parts: keys, Cache-Control, the byte-bounded LRU, the memcached format. */
#include "tap.h"
#include "../../gateway/breaker.c"
#include "../../gateway/cache.c"

/* the flight machinery is exercised by t/40-cache.t; these satisfy the linker for the store tests */
void cf_table_retain(cf_table_t *t)
{
}
void cf_table_release(cf_table_t *t)
{
}
cf_exchange_t *cf_upstream_start(cf_upstream_t *u, const cf_upstream_req_t *req, cf_upstream_cb cb, void *data)
{
    return NULL;
}
void cf_upstream_cancel(cf_exchange_t *x)
{
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
    cf_cache_t *c = cf_cache_create(0, NULL, 0);
    cf_cache_set_memory(c, 3 * (sizeof(struct st_entry_t) + 4 + 100));
    char body[100];
    memset(body, 'x', sizeof(body));
    unsigned char d[SHA256_DIGEST_LENGTH];
    const char *keys[] = {"key1", "key2", "key3", "key4"};
    uint64_t h[4];
    for (int i = 0; i < 4; ++i)
        h[i] = key_hash(h2o_iovec_init(keys[i], 4), d);
    cf_cache_stats_t s0, s;
    cf_cache_stats(&s0);
    pthread_mutex_lock(&c->mutex);
    for (int i = 0; i < 3; ++i)
        ok(store_put(c, h[i], h2o_iovec_init(keys[i], 4), 1000, 5000, 0, 0, 200, h2o_iovec_init(body, sizeof(body))) == 0, "put %s",
           keys[i]);
    is(c->bytes, 3 * (sizeof(struct st_entry_t) + 4 + 100), "bytes count struct, key and body");
    /* touch key1 so key2 becomes the least recently used */
    struct st_entry_t *e = store_find(c, h[0], h2o_iovec_init(keys[0], 4));
    ok(e != NULL, "find key1");
    h2o_linklist_unlink(&e->lru);
    h2o_linklist_insert(&c->lru, &e->lru);
    ok(store_put(c, h[3], h2o_iovec_init(keys[3], 4), 1000, 5000, 0, 0, 200, h2o_iovec_init(body, sizeof(body))) == 0, "put key4");
    ok(store_find(c, h[1], h2o_iovec_init(keys[1], 4)) == NULL, "the least recently used (key2) was evicted");
    ok(store_find(c, h[0], h2o_iovec_init(keys[0], 4)) != NULL, "key1 (touched) stays");
    ok(store_find(c, h[3], h2o_iovec_init(keys[3], 4)) != NULL, "key4 is in");
    is(c->bytes, 3 * (sizeof(struct st_entry_t) + 4 + 100), "bytes stay within the bound");
    ok(store_put(c, h[3], h2o_iovec_init(keys[3], 4), 2000, 5000, 0, 0, 200, h2o_iovec_init(body, 10)) == 0, "replace key4");
    is(c->bytes, 2 * (sizeof(struct st_entry_t) + 4 + 100) + sizeof(struct st_entry_t) + 4 + 10, "replacing re-counts");
    char big[1000];
    memset(big, 'y', sizeof(big));
    ok(store_put(c, h[1], h2o_iovec_init(keys[1], 4), 1000, 5000, 0, 0, 200, h2o_iovec_init(big, sizeof(big))) == -1,
       "an entry larger than the whole bound is refused");
    ok(c->bytes != 0, "and evicts nothing");
    pthread_mutex_unlock(&c->mutex);
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

    cf_cache_set_memory(c, 0);
    is(c->bytes, 0, "a zero bound empties the store");
    cf_cache_destroy(c);
    ok(cf_cache_get() == NULL, "destroyed");
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
    const char *bad[] = {
        "", "CF1", "CF2 1 2 3 4 200\n{}", "CF1 1 2 3 200\n{}", "CF1 1 2 3 4 503\n{}", "CF1 1 2 3 4 200 no newline"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i)
        ok(parse_serialized(h2o_iovec_init(bad[i], strlen(bad[i])), &st, &ttl, &swr, &sie, &status, &body) == -1, "refuses \"%s\"",
           tap_printable(bad[i]));
}

int main(void)
{
    test_keys();
    test_cache_control();
    test_store();
    test_serialized();
    return done_testing();
}
