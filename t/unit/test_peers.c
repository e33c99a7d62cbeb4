/* Unit tests of the process-wide server state: finding a peer by key, the breaker and health gates, check claims. */
#include "tap.h"
#include "../../gateway/breaker.c"
#include "../../gateway/peers.c"

static cf_peer_key_t key(const char *server, uint64_t failures, uint64_t interval_ms)
{
    return (cf_peer_key_t){.backend = "users",
                           .server = server,
                           .breaker = {failures, 1000},
                           .health_interval_ms = interval_ms,
                           .healthy = 2,
                           .unhealthy = 3};
}

static void count_view(const cf_peer_view_t *v, void *data)
{
    (void)v;
    ++*(int *)data;
}

static int num_peers(void)
{
    int n = 0;
    cf_peers_foreach(count_view, &n);
    return n;
}

static void test_registry(void)
{
    cf_peer_key_t none = key("http://a:1", 0, 0), k = key("http://a:1", 3, 0);
    ok(cf_peer_get(&none) == NULL, "no breaker and no health checks: no peer");
    cf_peer_t *p = cf_peer_get(&k), *q = cf_peer_get(&k);
    ok(p != NULL && p == q, "one peer per key, whoever asks (every loop shares it)");
    cf_peer_key_t other_addr = key("http://a:1 (10.0.0.1)", 3, 0), other_policy = key("http://a:1", 4, 0);
    cf_peer_t *r = cf_peer_get(&other_addr), *s = cf_peer_get(&other_policy);
    ok(r != p && s != p && r != s, "another address or another policy: another peer");
    is(num_peers(), 3, "three peers in use");
    cf_peer_release(q);
    is(num_peers(), 3, "one reference dropped: still in use");
    cf_peer_release(p);
    cf_peer_release(r);
    cf_peer_release(s);
    is(num_peers(), 0, "the last references dropped: freed, gone from /metrics");
}

static void test_breaker_gate(void)
{
    cf_peer_key_t k = key("http://b:1", 2, 0);
    cf_peer_t *p = cf_peer_get(&k);
    is(cf_peer_admit(p, 0), CF_BREAKER_PASS, "closed: pass");
    cf_peer_report(p, 10, 0, 1);
    cf_peer_report(p, 20, 0, 0);
    is(cf_peer_admit(p, 21), CF_BREAKER_PASS, "one failure: still pass");
    cf_peer_report(p, 30, 0, 0);
    is(cf_peer_admit(p, 31), CF_BREAKER_SKIP, "two in a row: skip");
    is(cf_peer_admit(p, 1029), CF_BREAKER_SKIP, "until open_for has passed");
    is(cf_peer_admit(p, 1030), CF_BREAKER_PROBE, "then one probe");
    is(cf_peer_admit(p, 1031), CF_BREAKER_SKIP, "and only one");
    cf_peer_report(p, 1040, 1, 1);
    is(cf_peer_admit(p, 1041), CF_BREAKER_PASS, "its success closes it");
    cf_peer_release(p);
}

static void test_health_gate(void)
{
    cf_peer_key_t k = key("http://c:1", 0, 100);
    cf_peer_t *p = cf_peer_get(&k);
    is(cf_peer_admit(p, 0), CF_BREAKER_PASS, "starts healthy");
    cf_peer_health_report(p, 0);
    cf_peer_health_report(p, 0);
    cf_peer_health_report(p, 1);
    cf_peer_health_report(p, 0);
    cf_peer_health_report(p, 0);
    is(cf_peer_admit(p, 0), CF_BREAKER_PASS, "failures not in a row do not take it out");
    cf_peer_health_report(p, 0);
    is(cf_peer_admit(p, 0), CF_BREAKER_SKIP, "three in a row do");
    cf_peer_report(p, 0, 0, 1);
    is(cf_peer_admit(p, 0), CF_BREAKER_SKIP, "an attempt's outcome does not put it back");
    cf_peer_health_report(p, 1);
    is(cf_peer_admit(p, 0), CF_BREAKER_SKIP, "one pass is not enough");
    cf_peer_health_report(p, 1);
    is(cf_peer_admit(p, 0), CF_BREAKER_PASS, "two in a row put it back");

    ok(cf_peer_claim_check(p, 1000), "a check is due at first");
    ok(!cf_peer_claim_check(p, 1000), "claimed: another loop asking at once does not get it");
    ok(!cf_peer_claim_check(p, 1099), "nor before the interval has passed");
    ok(cf_peer_claim_check(p, 1100), "then the next one is due");
    cf_peer_key_t none = key("http://c:2", 3, 0);
    cf_peer_t *q = cf_peer_get(&none);
    ok(!cf_peer_claim_check(q, 1000), "no health checks: never due");
    cf_peer_release(q);
    cf_peer_release(p);
}

int main(void)
{
    test_registry();
    test_breaker_gate();
    test_health_gate();
    return done_testing();
}
