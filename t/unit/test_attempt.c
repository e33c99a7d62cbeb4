/* Unit tests of the attempt module's arithmetic: the backoff, the retry budget, the hedge delay from recent latencies
 * and what feeds it, and what is retried. */
#include "tap.h"
#include "../../gateway/attempt.c"
#include "../../gateway/reason.c"
#include "../../gateway/trace.c"

/* a fake upstream: exchanges are recorded, and the test answers them by calling their callback */
struct st_cf_upstream_t {
    size_t refcnt;
};

struct st_cf_exchange_t {
    cf_upstream_cb cb;
    void *data;
    int live;
    uint64_t span; /* its span id when the request had a trace, else 0 */
};
static struct st_cf_exchange_t exchanges[8];
static size_t num_exchanges;

cf_exchange_t *cf_upstream_start(cf_upstream_t *u, const cf_upstream_req_t *req, cf_upstream_cb cb, void *data)
{
    exchanges[num_exchanges] = (struct st_cf_exchange_t){cb, data, 1, req->trace != NULL ? 1000 + num_exchanges : 0};
    return &exchanges[num_exchanges++];
}

uint64_t cf_upstream_span_id(const cf_exchange_t *x)
{
    return x->span;
}

size_t cf_upstream_server(const cf_exchange_t *x)
{
    return (size_t)(x - exchanges) % 2;
}

void cf_upstream_cancel(cf_exchange_t *x)
{
    x->live = 0;
}

int cf_upstream_queued(const cf_exchange_t *x)
{
    return 0;
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

static int calls_done;

static void on_call_done(cf_attempt_t *a, const cf_upstream_res_t *res)
{
    ++calls_done;
}

/* A hedge that wins: its own time is not a latency of the backend, and the attempt it overtook is sampled with its
 * time so far, so the percentile keeps seeing the slow answers that hedges cut short. */
static void test_hedge_samples(void)
{
    h2o_loop_t *loop = h2o_evloop_create();
    cf_timeouts_t timeouts;
    cf_timeouts_init(&timeouts, loop);
    cf_upstream_t u = {1};
    cf_backend_t b = {
        .timeout_ms = 5000, .hedge_after_ms = 10, .hedge_percentile = 90, .max_hedges = 1, .retry_budget = {.min = 3}};
    cf_attempt_backend_t *ab = cf_attempt_backend_create(&timeouts, &u, &b);
    cf_attempt_t a;
    cf_upstream_req_t req = {.method = h2o_iovec_init(H2O_STRLIT("GET")), .path = h2o_iovec_init(H2O_STRLIT("/")), .idempotent = 1};
    cf_upstream_res_t ok = {.reason = CF_REASON_NONE, .status = 200, .body = h2o_iovec_init("", 0)};
    num_exchanges = 0;
    cf_attempt_start(&a, ab, &req, 0, on_call_done);
    uint64_t t0 = h2o_now(loop);
    while (num_exchanges < 2 && h2o_now(loop) - t0 < 2000)
        h2o_evloop_run(loop, 10); /* the hedge timer (10 ms) sends the copy */
    is(num_exchanges, 2, "the hedge went out");
    while (h2o_now(loop) - t0 < 60)
        h2o_evloop_run(loop, 10); /* the first attempt is now at least 60 ms old, the hedge a little younger */
    ab->num_samples = 0;
    exchanges[1].cb(exchanges[1].data, &ok); /* the hedge answers first */
    is(calls_done, 1, "the call is answered");
    ok(!exchanges[0].live, "the attempt it overtook is cancelled");
    is(ab->num_samples, 1, "one sample");
    ok(ab->samples[0] >= 60, "the overtaken attempt's time so far, not the hedge's");
    cf_attempt_backend_release(ab);
    cf_timeouts_dispose(&timeouts);
    h2o_evloop_destroy(loop);
}

/* A traced call: the copy carries the trace too (copied with the request), and the call keeps both exchanges' span
 * ids in the order they started; an untraced one keeps none. */
static void test_spans(void)
{
    h2o_loop_t *loop = h2o_evloop_create();
    cf_timeouts_t timeouts;
    cf_timeouts_init(&timeouts, loop);
    cf_upstream_t u = {1};
    cf_backend_t b = {.timeout_ms = 5000, .hedge_after_ms = 10, .max_hedges = 1, .retry_budget = {.min = 3}};
    cf_attempt_backend_t *ab = cf_attempt_backend_create(&timeouts, &u, &b);
    cf_attempt_t a;
    cf_trace_t t = {.request_id = "r", .request_id_len = 1};
    cf_trace_start(&t, 0);
    cf_upstream_req_t req = {
        .method = h2o_iovec_init(H2O_STRLIT("GET")), .path = h2o_iovec_init(H2O_STRLIT("/")), .idempotent = 1, .trace = &t};
    cf_upstream_res_t ok = {.reason = CF_REASON_NONE, .status = 200, .body = h2o_iovec_init("", 0)};
    for (int traced = 1; traced >= 0; --traced) {
        req.trace = traced ? &t : NULL;
        num_exchanges = 0;
        calls_done = 0;
        cf_attempt_start(&a, ab, &req, 0, on_call_done);
        uint64_t t0 = h2o_now(loop);
        while (num_exchanges < 2 && h2o_now(loop) - t0 < 2000)
            h2o_evloop_run(loop, 10);
        is(num_exchanges, 2, "%s: the hedge went out", traced ? "traced" : "untraced");
        is(exchanges[1].span != 0, traced, "the copy's request has the trace or not, like the first");
        exchanges[1].cb(exchanges[1].data, &ok);
        is(calls_done, 1, "the call is answered");
        is(a.spans.n, traced ? 2 : 0, "its span ids");
        if (traced)
            ok(a.spans.ids[0] == exchanges[0].span && a.spans.ids[1] == exchanges[1].span, "in the order the exchanges started");
    }
    cf_attempt_backend_release(ab);
    cf_timeouts_dispose(&timeouts);
    h2o_evloop_destroy(loop);
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
    test_hedge_samples();
    test_spans();
    test_retryable();
    return done_testing();
}
