/* Unit tests of the attempt module's arithmetic: the backoff, the retry budget, the hedge delay from recent latencies,
 * and what is retried. */
#include "tap.h"
#include "../../gateway/attempt.c"
#include "../../gateway/reason.c"

/* a fake upstream: this file starts no exchange */
struct st_cf_upstream_t {
    size_t refcnt;
};

cf_exchange_t *cf_upstream_start(cf_upstream_t *u, const cf_upstream_req_t *req, cf_upstream_cb cb, void *data)
{
    return NULL;
}

size_t cf_upstream_server(const cf_exchange_t *x)
{
    return 0;
}

void cf_upstream_cancel(cf_exchange_t *x)
{
}

void cf_upstream_retain(cf_upstream_t *u)
{
    ++u->refcnt;
}

void cf_upstream_release(cf_upstream_t *u)
{
    --u->refcnt;
}

static void test_backoff(void)
{
    /* half of the step plus a random half, rounded up to 5ms; the step doubles from 25ms and stops at 250 */
    static const uint64_t lo[] = {15, 25, 50, 100, 125, 125}, hi[] = {25, 50, 100, 200, 250, 250};
    for (unsigned n = 1; n <= 6; ++n) {
        uint64_t min = UINT64_MAX, max = 0;
        int steps_of_5 = 1;
        for (int i = 0; i != 2000; ++i) {
            uint64_t ms = backoff_ms(n);
            min = ms < min ? ms : min;
            max = ms > max ? ms : max;
            steps_of_5 &= ms % BACKOFF_STEP_MS == 0;
        }
        ok(min >= lo[n - 1] && max <= hi[n - 1], "retry %u: backoff within %llu..%llu ms (got %llu..%llu)", n,
           (unsigned long long)lo[n - 1], (unsigned long long)hi[n - 1], (unsigned long long)min, (unsigned long long)max);
        ok(max > min, "retry %u: the backoff is jittered", n);
        ok(steps_of_5, "retry %u: in steps of 5ms", n);
    }
}

static void test_budget(void)
{
    cf_upstream_t u = {1};
    cf_backend_t b = {.timeout_ms = 1000, .retries = 1, .retry_budget = {.percent = 20, .min = 3}};
    cf_attempt_backend_t *ab = cf_attempt_backend_create(NULL, &u, &b);
    is(u.refcnt, 2, "the backend state holds the upstream");
    ab->active = 5;
    is(budget_take(ab) + budget_take(ab) + budget_take(ab) + budget_take(ab), 3,
       "5 calls in flight: min 3 extra attempts (20%% would be 1)");
    ab->active = 100;
    size_t n = 3;
    while (budget_take(ab))
        ++n;
    is(n, 20, "100 calls in flight: 20 extra attempts");
    ab->extra = 0;
    ab->active = 0;
    cf_attempt_backend_release(ab);
    is(u.refcnt, 1, "and lets it go");
}

static void test_hedge_delay(void)
{
    cf_upstream_t u = {1};
    cf_backend_t b = {.timeout_ms = 1000, .hedge_after_ms = 70, .hedge_percentile = 90};
    cf_attempt_backend_t *ab = cf_attempt_backend_create(NULL, &u, &b);
    for (int i = 1; i != CF_HEDGE_MIN_SAMPLES; ++i)
        add_sample(ab, 200);
    is(hedge_delay(ab), 70, "the fallback until 100 samples");
    add_sample(ab, 200);
    is(hedge_delay(ab), 208, "then the percentile, rounded up to one of 16 values per doubling (200 -> 208)");
    for (int i = 0; i != 1000; ++i)
        add_sample(ab, (uint64_t)(i % 100) + 1); /* 1..100 ms, evenly */
    is(hedge_delay(ab), 96, "p90 of the last 1000 latencies (90 -> 96)");
    for (int i = 0; i != 1000; ++i)
        add_sample(ab, 3);
    is(hedge_delay(ab), CF_HEDGE_FLOOR_MS, "at least 10ms");
    for (int i = 0; i != 1000; ++i)
        add_sample(ab, 1234);
    is(hedge_delay(ab), 1280, "1234 -> 1280");
    cf_attempt_backend_release(ab);
}

static void test_retryable(void)
{
    cf_upstream_t u = {1};
    cf_backend_t b = {.timeout_ms = 1000, .retries = 1, .retry_on = 1u << CF_REASON_RESET};
    b.retry_on_status[503 / 64] |= (uint64_t)1 << (503 % 64);
    cf_attempt_backend_t *ab = cf_attempt_backend_create(NULL, &u, &b);
    ok(is_retryable(ab, &(cf_upstream_res_t){.reason = CF_REASON_RESET}), "reset is retried");
    ok(!is_retryable(ab, &(cf_upstream_res_t){.reason = CF_REASON_TIMEOUT}), "timeout is not, unless listed");
    ok(is_retryable(ab, &(cf_upstream_res_t){.status = 503}), "a complete 503 is");
    ok(!is_retryable(ab, &(cf_upstream_res_t){.status = 500}), "a 500 is not");
    ok(!is_retryable(ab, &(cf_upstream_res_t){.status = 200}), "a 200 is an answer");
    cf_attempt_backend_release(ab);
}

int main(void)
{
    test_backoff();
    test_budget();
    test_hedge_delay();
    test_retryable();
    return done_testing();
}
