/* Unit tests of gateway/ratelimit.c: the bucket's refill arithmetic and burst, what RateLimit and Retry-After are built
 * from, the key table's bound and eviction under a flood of keys, long and absent keys, and rate_limit: decoding. */
#include "tap.h"
#include "../../gateway/ratelimit.c"

#define SEC 1000000000ull
#define T0 (1000 * SEC) /* a monotonic clock far from 0 */

static int take(cf_ratelimit_t *rl, const char *key, uint64_t now, cf_ratelimit_verdict_t *v)
{
    cf_ratelimit_take(rl, key, key != NULL ? strlen(key) : 0, now, v);
    return v->allowed;
}

static void test_burst_and_refill(void)
{
    /* 10/s, burst 20: a token every 100 ms */
    cf_ratelimit_t *rl = cf_ratelimit_new(10, 1, 20, 64);
    cf_ratelimit_verdict_t v;
    is(rl->interval_ns, 100000000, "10/s: a token every 100 ms");
    int passed = 0;
    for (int i = 0; i != 25; ++i) {
        passed += take(rl, "k", T0, &v);
        if (i < 20)
            is(v.remaining, 19 - i, "request %d of the burst: remaining", i + 1);
    }
    is(passed, 20, "at one instant exactly burst (20) requests pass");
    ok(!take(rl, "k", T0, &v), "the 21st is refused");
    is(v.remaining, 0, "refused: remaining 0");
    is(v.reset_s, 1, "Retry-After: 100 ms rounded up to 1 s");
    ok(!take(rl, "k", T0 + 99999999, &v), "1 ns before the next token: still refused");
    ok(take(rl, "k", T0 + 100000000, &v), "one interval later: one passes");
    is(v.remaining, 0, "and takes the token that came back");
    ok(!take(rl, "k", T0 + 100000000, &v), "and only one");
    ok(take(rl, "k", T0 + 100000000 + 5 * SEC, &v), "after long idle: passes");
    is(v.remaining, 19, "a bucket never holds more than burst: 19 left after one");
    is(v.reset_s, 1, "full again within a second");
    cf_ratelimit_free(rl);

    /* 6/m, burst 1: the slow case, and the Retry-After of a long interval */
    rl = cf_ratelimit_new(6, 60, 1, 64);
    ok(take(rl, "k", T0, &v), "6/m burst 1: the first passes");
    is(v.reset_s, 10, "the next in 10 s (r=0)");
    ok(!take(rl, "k", T0 + 3 * SEC, &v), "3 s later: refused");
    is(v.reset_s, 7, "Retry-After 7 s");
    ok(!take(rl, "k", T0 + 3 * SEC + 1, &v), "3 s + 1 ns later: refused");
    is(v.reset_s, 7, "Retry-After rounds up: 6.999999999 s -> 7");
    ok(take(rl, "k", T0 + 10 * SEC, &v), "10 s later: passes");
    cf_ratelimit_free(rl);

    /* a refused request takes nothing: steady hammering does not push the next pass further away */
    rl = cf_ratelimit_new(1, 1, 1, 64);
    take(rl, "k", T0, &v);
    for (int i = 1; i != 100; ++i)
        take(rl, "k", T0 + (uint64_t)i * 9 * SEC / 1000, &v);
    ok(take(rl, "k", T0 + SEC, &v), "1/s: after 99 refusals, the request one second later passes");
    cf_ratelimit_free(rl);

    /* 10/h, the largest count, the smallest interval */
    rl = cf_ratelimit_new(10, 3600, 10, 64);
    is(rl->interval_ns, 360 * SEC, "10/h: a token every 6 minutes");
    cf_ratelimit_free(rl);
    rl = cf_ratelimit_new(CF_RATELIMIT_MAX_COUNT, 3600, CF_RATELIMIT_MAX_COUNT, 64);
    ok(rl != NULL && rl->tolerance_ns == 3600 * SEC, "1000000/h, burst 1000000: an hour of tolerance, no overflow");
    cf_ratelimit_free(rl);
    ok(cf_ratelimit_new(0, 1, 1, 64) == NULL && cf_ratelimit_new(1, 1, 0, 64) == NULL, "count 0 or burst 0: refused");
}

static void test_keys(void)
{
    cf_ratelimit_t *rl = cf_ratelimit_new(1, 60, 2, 64);
    cf_ratelimit_verdict_t v;
    take(rl, "alpha", T0, &v);
    take(rl, "alpha", T0, &v);
    ok(!take(rl, "alpha", T0, &v), "alpha spent its burst");
    ok(take(rl, "beta", T0, &v), "beta has its own bucket");
    ok(take(rl, "alph", T0, &v), "a prefix is another key");
    /* requests without a key share one bucket, apart from every key (the empty value included) */
    ok(take(rl, NULL, T0, &v) && take(rl, "", T0, &v), "absent and empty: two requests pass");
    ok(!take(rl, NULL, T0, &v), "the third without a key is refused: one shared bucket");

    /* a long key: stored as its SHA-256, still a key of its own */
    char a[4096], b[4096];
    memset(a, 'x', sizeof(a) - 1);
    a[sizeof(a) - 1] = '\0';
    memcpy(b, a, sizeof(b));
    b[sizeof(b) - 2] = 'y'; /* differs in the last byte only */
    take(rl, a, T0, &v);
    take(rl, a, T0, &v);
    ok(!take(rl, a, T0, &v), "a 4 KiB key spent its burst");
    ok(take(rl, b, T0, &v), "another 4 KiB key differing in its last byte is not limited");
    char at[CF_RATELIMIT_INLINE_KEY + 1], over[CF_RATELIMIT_INLINE_KEY + 2];
    memset(at, 'z', sizeof(at) - 1);
    at[sizeof(at) - 1] = '\0';
    memset(over, 'z', sizeof(over) - 1);
    over[sizeof(over) - 1] = '\0';
    take(rl, at, T0, &v);
    take(rl, at, T0, &v);
    ok(!take(rl, at, T0, &v), "a key of exactly the inline length spent its burst");
    ok(take(rl, over, T0, &v), "one byte longer is another key");
    cf_ratelimit_free(rl);
}

static void test_table_bound(void)
{
    /* a flood of distinct keys: the table never holds more than its capacity, and each lookup is one set */
    cf_ratelimit_t *rl = cf_ratelimit_new(1, 60, 1, 1024);
    cf_ratelimit_verdict_t v;
    is(cf_ratelimit_capacity(rl), 1024, "capacity: 128 sets of 8");
    is(cf_ratelimit_memory(rl), 1024 * 64 + sizeof(*rl->table), "an entry is 64 bytes (one cache line)");
    char key[32];
    int passed = 0;
    for (int i = 0; i != 1000000; ++i) {
        snprintf(key, sizeof(key), "flood-%d", i);
        passed += take(rl, key, T0 + (uint64_t)i * 1000, &v);
    }
    is(passed, 1000000, "every new key gets a full bucket");
    ok(cf_ratelimit_keys(rl) <= 1024, "after a million keys the table holds %zu (at most its capacity)", cf_ratelimit_keys(rl));
    is(cf_ratelimit_keys(rl), 1024, "and is full");
    cf_ratelimit_free(rl);

    /* eviction prefers an idle key (its bucket full again: nothing is lost) over an active one */
    rl = cf_ratelimit_new(1, 60, 1, 8); /* one set of 8 */
    for (int i = 0; i != 8; ++i) {
        snprintf(key, sizeof(key), "busy-%d", i);
        take(rl, key, T0, &v);
    }
    /* at T0 + 120 s, busy-0 .. busy-7 are full again; busy-3 is used once more (its bucket now active) */
    ok(take(rl, "busy-3", T0 + 120 * SEC, &v), "busy-3 passes again after 2 minutes");
    for (int i = 0; i != 7; ++i) {
        snprintf(key, sizeof(key), "new-%d", i);
        take(rl, key, T0 + 120 * SEC, &v);
    }
    ok(!take(rl, "busy-3", T0 + 120 * SEC, &v), "7 new keys in a set of 8 took idle places: busy-3 kept its state");
    /* a set full of active keys: the least recently used one goes */
    rl->table->entries[0].used = 0; /* make way 0 the least recent */
    uint8_t kind0 = rl->table->entries[0].kind;
    unsigned char key0[CF_RATELIMIT_INLINE_KEY];
    memcpy(key0, rl->table->entries[0].key, sizeof(key0));
    take(rl, "intruder", T0 + 121 * SEC, &v);
    ok(rl->table->entries[0].kind == kind0 && memcmp(rl->table->entries[0].key, "intruder", 8) == 0,
       "with every key active, the least recently used place is taken");
    (void)key0;
    is(cf_ratelimit_keys(rl), 8, "still 8 keys");
    cf_ratelimit_free(rl);
}

/* threads taking from one bucket at one instant: exactly burst pass in all (the per-process choice: one shared table) */
#define RACERS 4
static cf_ratelimit_t *shared;
static int racer_passed[RACERS];

static void *racer(void *arg)
{
    int *passed = arg;
    cf_ratelimit_verdict_t v;
    char key[16];
    for (int i = 0; i != 20000; ++i) {
        *passed += take(shared, "one", T0, &v);
        snprintf(key, sizeof(key), "k%d", i % 500); /* and other keys, under the same locks, meanwhile */
        take(shared, key, T0 + (uint64_t)i, &v);
    }
    return NULL;
}

static void test_threads(void)
{
    shared = cf_ratelimit_new(1, 3600, 5000, 65536); /* room enough that nothing is evicted */
    pthread_t th[RACERS];
    for (int i = 0; i != RACERS; ++i)
        pthread_create(&th[i], NULL, racer, &racer_passed[i]);
    int total = 0;
    for (int i = 0; i != RACERS; ++i) {
        pthread_join(th[i], NULL);
        total += racer_passed[i];
    }
    is(total, 5000, "4 threads, 80,000 requests of one key at one instant: exactly burst (5000) pass");
    is(cf_ratelimit_keys(shared), 501, "501 keys");
    cf_ratelimit_free(shared);
}

/* Decodes `yaml` as a route's rate_limit:; returns the policy, or NULL with the error in err. */
static cf_ratelimit_t *decode(const char *yaml, char *err, size_t errlen)
{
    cf_yaml_t y;
    cf_ratelimit_t *rl = NULL;
    if (cf_yaml_load_string(&y, "t.yaml", yaml, strlen(yaml), err, errlen) != 0) {
        cf_yaml_dispose(&y);
        return NULL;
    }
    cf_yctx_t ctx;
    cf_yctx_init(&ctx, &y);
    cf_ypath_key(&ctx, "rate_limit");
    cf_ratelimit_decode(&ctx, cf_yaml_root(&y), &rl);
    snprintf(err, errlen, "%s", ctx.err);
    cf_yaml_dispose(&y);
    return rl;
}

static void refused(const char *yaml, const char *needle)
{
    char err[1024];
    cf_ratelimit_t *rl = decode(yaml, err, sizeof(err));
    ok(rl == NULL && strstr(err, needle) != NULL, "%s: refused with \"%s\"", yaml, needle);
    if (rl != NULL || strstr(err, needle) == NULL)
        diag("error: %s", err);
    cf_ratelimit_free(rl);
}

static void test_decode(void)
{
    char err[1024];
    cf_ratelimit_t *rl = decode("{rate: 100/s, burst: 200, key: header.X-Api-Key}", err, sizeof(err));
    if (!ok(rl != NULL, "a full policy decodes"))
        diag("%s", err);
    if (rl != NULL) {
        is(rl->count, 100, "count");
        is(rl->period_s, 1, "per second");
        is(rl->burst, 200, "burst");
        is(rl->key, CF_RATELIMIT_BY_HEADER, "by header");
        is_str(rl->header, "x-api-key", "the header name, lower case");
        is_str(rl->policy, "\"default\";q=100;w=1", "RateLimit-Policy");
    }
    cf_ratelimit_free(rl);
    rl = decode("{rate: 600/m, key: client}", err, sizeof(err));
    ok(rl != NULL && rl->burst == 600 && rl->period_s == 60 && rl->key == CF_RATELIMIT_BY_CLIENT,
       "600/m by client: burst defaults to the count");
    cf_ratelimit_free(rl);
    rl = decode("{rate: 10/h, key: client}", err, sizeof(err));
    ok(rl != NULL && rl->period_s == 3600 && rl->interval_ns == 360 * SEC, "10/h");
    cf_ratelimit_free(rl);
    refused("{rate: 100/s, key: jwt.a.b}", "expected jwt.CLAIM");
    refused("{rate: 100/x, key: client}", "expected a rate such as 100/s");
    refused("{rate: 100, key: client}", "expected a rate such as 100/s");
    refused("{rate: 0/s, key: client}", "between 1 and 1000000");
    refused("{rate: 99999999999999999999999/s, key: client}", "between 1 and 1000000");
    refused("{rate: 100/s, burst: 0, key: client}", "burst");
    refused("{rate: 100/s, key: header.}", "expected client, header.NAME");
    refused("{rate: 100/s, key: \"header.x y\"}", "expected client, header.NAME");
    refused("{rate: 100/s, key: ip}", "expected client, header.NAME");
    refused("{key: client}", "needs rate:");
    refused("{rate: 1/s}", "needs key:");
    refused("{rate: 1/s, key: client, burts: 3}", "unknown key \"burts\"");
    refused("100/s", "expected {rate: 100/s");
}

static void test_fields(void)
{
    char buf[CF_RATELIMIT_FIELD_MAX];
    cf_ratelimit_verdict_t v = {1, 0, 0};
    buf[cf_ratelimit_field(&v, buf)] = '\0';
    is_str(buf, "\"default\";r=0;t=0", "RateLimit of zeros");
    v.remaining = 1000000;
    v.reset_s = 3600;
    buf[cf_ratelimit_field(&v, buf)] = '\0';
    is_str(buf, "\"default\";r=1000000;t=3600", "RateLimit r and t");
    v.remaining = v.reset_s = UINT64_MAX;
    size_t n = cf_ratelimit_field(&v, buf);
    ok(n <= CF_RATELIMIT_FIELD_MAX, "the longest field fits (%zu bytes)", n);
    buf[cf_ratelimit_seconds(&v, buf)] = '\0';
    is_str(buf, "18446744073709551615", "Retry-After of the largest value");
}

int main(void)
{
    test_fields();
    test_burst_and_refill();
    test_keys();
    test_table_bound();
    test_threads();
    test_decode();
    return done_testing();
}
