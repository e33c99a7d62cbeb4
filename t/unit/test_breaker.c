/* Unit tests of the circuit breaker: opening on consecutive failures, the half-open probe, doubling with a cap. */
#include "tap.h"
#include "../../gateway/breaker.c"

/* the memcached tier's numbers (cache.c): 3 failures, 1 s doubling to 30 s */
static cf_breaker_t fresh(void)
{
    cf_breaker_t b;
    cf_breaker_init(&b, 3, 1000, 30000);
    return b;
}

static void test_opens_after_consecutive_failures(void)
{
    cf_breaker_t b = fresh();
    is(cf_breaker_state(&b), CF_BREAKER_CLOSED, "starts closed");
    is(cf_breaker_admit(&b, 0), CF_BREAKER_PASS, "closed: attempts pass");
    ok(!cf_breaker_skips(&b, 0), "lock-free check: closed is never skipped");
    is(cf_breaker_report(&b, 10, 0, 0), -1, "failure 1: still closed");
    is(cf_breaker_report(&b, 20, 0, 0), -1, "failure 2: still closed");
    is(cf_breaker_report(&b, 30, 0, 1), -1, "a success in between");
    is(cf_breaker_report(&b, 40, 0, 0), -1, "failure 1 again: the count restarted");
    is(cf_breaker_report(&b, 50, 0, 0), -1, "failure 2");
    is(cf_breaker_state(&b), CF_BREAKER_CLOSED, "two in a row: closed");
    is(cf_breaker_report(&b, 60, 0, 0), CF_BREAKER_OPEN, "the third failure in a row opens it");
    is(cf_breaker_state(&b), CF_BREAKER_OPEN, "open");
    is(cf_breaker_admit(&b, 61), CF_BREAKER_SKIP, "open: skip");
    is(cf_breaker_admit(&b, 1059), CF_BREAKER_SKIP, "still skip 1 ms before the period ends");
    /* attempts admitted before it opened answer late: they change nothing */
    is(cf_breaker_report(&b, 70, 0, 0), -1, "a late failure while open: no change");
    is(cf_breaker_report(&b, 80, 0, 1), -1, "a late success while open: no change (only a probe closes it)");
    is(cf_breaker_state(&b), CF_BREAKER_OPEN, "still open");
    is(cf_breaker_admit(&b, 1059), CF_BREAKER_SKIP, "and the period did not move");
}

static void test_probe(void)
{
    cf_breaker_t b = fresh();
    for (int i = 0; i != 3; ++i)
        cf_breaker_report(&b, 0, 0, 0);
    ok(cf_breaker_skips(&b, 999), "lock-free check: skipped for sure before the period ends");
    ok(!cf_breaker_skips(&b, 1000), "lock-free check: not once a probe is due (ask cf_breaker_admit)");
    is(cf_breaker_admit(&b, 1000), CF_BREAKER_PROBE, "after 1 s: one probe");
    ok(cf_breaker_skips(&b, 1001), "lock-free check: skipped for sure while the probe is out");
    is(cf_breaker_state(&b), CF_BREAKER_HALF_OPEN, "half-open");
    is(cf_breaker_admit(&b, 1001), CF_BREAKER_SKIP, "others skip while the probe is out");
    is(cf_breaker_report(&b, 1010, 0, 1), -1, "a non-probe success while half-open: no change");
    is(cf_breaker_state(&b), CF_BREAKER_HALF_OPEN, "still half-open");
    is(cf_breaker_report(&b, 1050, 1, 0), CF_BREAKER_OPEN, "the probe fails: open again");
    is(cf_breaker_admit(&b, 3049), CF_BREAKER_SKIP, "for 2 s (doubled)");
    is(cf_breaker_admit(&b, 3050), CF_BREAKER_PROBE, "then a probe");
    is(cf_breaker_report(&b, 3060, 1, 0), CF_BREAKER_OPEN, "fails");
    is(cf_breaker_admit(&b, 7059), CF_BREAKER_SKIP, "4 s");
    is(cf_breaker_admit(&b, 7060), CF_BREAKER_PROBE, "then a probe");
    is(cf_breaker_report(&b, 7070, 1, 1), CF_BREAKER_CLOSED, "the probe succeeds: closed");
    is(cf_breaker_state(&b), CF_BREAKER_CLOSED, "closed");
    is(cf_breaker_admit(&b, 7071), CF_BREAKER_PASS, "attempts pass");
    /* closing resets the period and the failure count */
    cf_breaker_report(&b, 8000, 0, 0);
    cf_breaker_report(&b, 8000, 0, 0);
    is(cf_breaker_state(&b), CF_BREAKER_CLOSED, "two failures after closing: closed (the count restarted)");
    is(cf_breaker_report(&b, 8000, 0, 0), CF_BREAKER_OPEN, "three: open");
    is(cf_breaker_admit(&b, 8999), CF_BREAKER_SKIP, "for the base period again");
    is(cf_breaker_admit(&b, 9000), CF_BREAKER_PROBE, "1 s, not 8 s");
}

static void test_cap(void)
{
    cf_breaker_t b = fresh();
    for (int i = 0; i != 3; ++i)
        cf_breaker_report(&b, 0, 0, 0);
    int64_t now = 0;
    uint64_t periods[8], expect[8] = {1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
    for (int i = 0; i != 8; ++i) {
        int64_t from = now;
        while (cf_breaker_admit(&b, now) != CF_BREAKER_PROBE)
            now += 100;
        periods[i] = (uint64_t)(now - from);
        cf_breaker_report(&b, now, 1, 0);
    }
    for (int i = 0; i != 8; ++i)
        is(periods[i], expect[i], "open period %d: doubling, capped at 30 s", i + 1);
}

static void test_lost_probe(void)
{
    cf_breaker_t b = fresh();
    for (int i = 0; i != 3; ++i)
        cf_breaker_report(&b, 0, 0, 0);
    is(cf_breaker_admit(&b, 1000), CF_BREAKER_PROBE, "a probe goes");
    /* its caller goes away and never reports */
    is(cf_breaker_admit(&b, 1999), CF_BREAKER_SKIP, "skip for one more period");
    is(cf_breaker_admit(&b, 2000), CF_BREAKER_PROBE, "then another probe: a lost probe does not wedge it");
    is(cf_breaker_report(&b, 2010, 1, 1), CF_BREAKER_CLOSED, "which closes it");
}

static void test_threshold_one(void)
{
    cf_breaker_t b;
    cf_breaker_init(&b, 0, 500, 100);
    is(b.threshold, 1, "a threshold of 0 means 1");
    is(b.max_ms, 500, "a cap below the base period is the base period");
    is(cf_breaker_report(&b, 0, 0, 0), CF_BREAKER_OPEN, "one failure opens it");
    is(cf_breaker_admit(&b, 500), CF_BREAKER_PROBE, "probe after 500 ms");
    is(cf_breaker_report(&b, 500, 1, 0), CF_BREAKER_OPEN, "fails");
    is(cf_breaker_admit(&b, 999), CF_BREAKER_SKIP, "the period stays 500 ms (the cap)");
    is(cf_breaker_admit(&b, 1000), CF_BREAKER_PROBE, "probe");
}

int main(void)
{
    test_opens_after_consecutive_failures();
    test_probe();
    test_cap();
    test_lost_probe();
    test_threshold_one();
    return done_testing();
}
