/* A call's attempts at one backend: retries within a budget and the call's time, hedged copies, the first answer wins. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "attempt.h"

/*
 * How it works (docs/http.md, "Retries and hedging"):
 *
 * - The first attempt goes out at once. A backend with neither `retries` nor `hedge_after`, or a request that is not
 *   idempotent (RFC 9110 9.2.2: GET, HEAD, PUT, DELETE, OPTIONS are), takes the fast path: no copy of the request, no
 *   count, the upstream's answer handed on as it is.
 * - An attempt that fails with a reason (or status) of `retry_on`, when no other attempt of the call is still running,
 *   is followed by another after a jittered exponential backoff (base 25 ms, cap 250 ms: half the step plus a random
 *   half, as in "equal jitter"), to another server when the backend has several; none starts once the call's timeout
 *   (counted from the call's start: the attempts share it, so the route's deadline, planned from call timeouts, holds)
 *   or the route's deadline has passed or would pass during the backoff. The call's outcome is its last attempt's.
 * - A GET or HEAD attempt that has not answered after `hedge_after` (or the percentile of the backend's recent
 *   successful latencies) gets a copy on another server; the first answer that is not a failure to retry wins and the
 *   other exchanges are cancelled at once (their connections closed).
 * - Retries and hedges are "extra" attempts. Those in flight (a retry counts from its backoff on) stay within
 *   max(retry_budget.min, retry_budget.percent% of the calls in flight to the backend), as Envoy's retry budget: a
 *   dead backend sees about 1.2 times the client load, never N times. Counted per event loop.
 */

#define BACKOFF_BASE_MS 25
#define BACKOFF_CAP_MS 250
#define BACKOFF_STEP_MS 5 /* backoffs are multiples of this: few distinct timeouts on the loop */
#define LATENCY_WINDOW 1000
#define LATENCY_RECOMPUTE 32 /* the percentile is recomputed after this many new samples */

struct st_cf_attempt_req_t {
    h2o_mem_pool_t pool;
    cf_upstream_req_t req;
};

struct st_cf_attempt_backend_t {
    size_t refcnt;
    cf_upstream_t *u;
    cf_timeouts_t *timeouts;
    uint64_t timeout_ms; /* the backend's default call timeout */
    uint64_t per_try_ms; /* each attempt's own bound (per_try_timeout); 0: the call's */
    unsigned retries;
    uint32_t retry_on;
    uint64_t retry_on_status[10];
    uint64_t budget_percent, budget_min;
    uint64_t hedge_after_ms; /* fixed, or the fallback of a percentile */
    unsigned hedge_percentile, max_hedges;
    size_t active; /* calls in flight with a policy */
    size_t extra;  /* retries and hedges in flight (a retry from its backoff on) */
    /* hedge_after: pNN */
    uint32_t samples[LATENCY_WINDOW]; /* ms of successful attempts, a ring */
    size_t num_samples, next_sample, since_recompute;
    uint64_t hedge_pct_ms; /* the percentile, once computed */
};

/* --- the backend's state ----------------------------------------------------------------------------------------- */

cf_attempt_backend_t *cf_attempt_backend_create(cf_timeouts_t *timeouts, cf_upstream_t *u, const cf_backend_t *b)
{
    cf_attempt_backend_t *ab = h2o_mem_alloc(sizeof(*ab));
    memset(ab, 0, sizeof(*ab));
    ab->refcnt = 1;
    ab->u = u;
    cf_upstream_retain(u);
    ab->timeouts = timeouts;
    ab->timeout_ms = b->timeout_ms;
    ab->per_try_ms = b->per_try_timeout_ms;
    ab->retries = (unsigned)b->retries;
    ab->retry_on = b->retry_on;
    memcpy(ab->retry_on_status, b->retry_on_status, sizeof(ab->retry_on_status));
    ab->budget_percent = b->retry_budget.percent;
    ab->budget_min = b->retry_budget.min;
    ab->hedge_after_ms = b->hedge_after_ms;
    ab->hedge_percentile = (unsigned)b->hedge_percentile;
    ab->max_hedges = b->max_hedges < CF_ATTEMPT_MAX_RUNNING ? (unsigned)b->max_hedges : CF_ATTEMPT_MAX_RUNNING - 1;
    return ab;
}

void cf_attempt_backend_retain(cf_attempt_backend_t *ab)
{
    ++ab->refcnt;
}

void cf_attempt_backend_release(cf_attempt_backend_t *ab)
{
    if (--ab->refcnt != 0)
        return;
    assert(ab->active == 0 && ab->extra == 0);
    cf_upstream_release(ab->u);
    free(ab);
}

/* Takes one extra attempt from the budget: 1, or 0 when the extra attempts in flight are at the budget's bound. */
static int budget_take(cf_attempt_backend_t *ab)
{
    uint64_t bound = ab->budget_percent * ab->active / 100;
    if (bound < ab->budget_min)
        bound = ab->budget_min;
    if (ab->extra >= bound)
        return 0;
    ++ab->extra;
    return 1;
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void add_sample(cf_attempt_backend_t *ab, uint64_t ms)
{
    ab->samples[ab->next_sample] = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
    ab->next_sample = (ab->next_sample + 1) % LATENCY_WINDOW;
    if (ab->num_samples < LATENCY_WINDOW)
        ++ab->num_samples;
    if (ab->num_samples < CF_HEDGE_MIN_SAMPLES || (++ab->since_recompute < LATENCY_RECOMPUTE && ab->hedge_pct_ms != 0))
        return;
    ab->since_recompute = 0;
    uint32_t sorted[LATENCY_WINDOW];
    memcpy(sorted, ab->samples, sizeof(sorted[0]) * ab->num_samples);
    qsort(sorted, ab->num_samples, sizeof(sorted[0]), compare_u32);
    size_t rank = (ab->num_samples * ab->hedge_percentile + 99) / 100; /* nearest rank */
    ab->hedge_pct_ms = sorted[rank != 0 ? rank - 1 : 0];
}

/* Rounds a delay up to one of few values (16 per doubling), so that the loop keeps few distinct timeouts. */
static uint64_t coarse(uint64_t ms)
{
    uint64_t step = 1;
    while (step * 16 < ms)
        step *= 2;
    return (ms + step - 1) / step * step;
}

/* How long an attempt may run before a copy goes out. */
static uint64_t hedge_delay(const cf_attempt_backend_t *ab)
{
    if (ab->hedge_percentile == 0 || ab->num_samples < CF_HEDGE_MIN_SAMPLES || ab->hedge_pct_ms == 0)
        return ab->hedge_after_ms;
    return coarse(ab->hedge_pct_ms < CF_HEDGE_FLOOR_MS ? CF_HEDGE_FLOOR_MS : ab->hedge_pct_ms);
}

/* A random number for the backoff's jitter (xorshift64*, one state per thread). */
static uint64_t jitter_random(void)
{
    static __thread uint64_t state;
    if (state == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        state = ((uint64_t)ts.tv_nsec << 20 ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&state) | 1;
    }
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 2685821657736338717ull;
}

/* The wait before retry number n (1, 2, ...): half the step plus a random half, the step doubling from 25 ms to 250. */
static uint64_t backoff_ms(unsigned n)
{
    uint64_t step = BACKOFF_BASE_MS;
    for (unsigned i = 1; i < n && step < BACKOFF_CAP_MS; ++i)
        step *= 2;
    if (step > BACKOFF_CAP_MS)
        step = BACKOFF_CAP_MS;
    uint64_t ms = step / 2 + jitter_random() % (step / 2 + 1);
    return (ms + BACKOFF_STEP_MS - 1) / BACKOFF_STEP_MS * BACKOFF_STEP_MS;
}

/* Whether an attempt that ended so may be followed by another. */
static int is_retryable(const cf_attempt_backend_t *ab, const cf_upstream_res_t *res)
{
    if (res->reason == CF_REASON_NONE) {
        int s = res->status;
        return s >= 0 && s < 640 && (ab->retry_on_status[s / 64] >> (s % 64) & 1) != 0;
    }
    return (unsigned)res->reason < 32 && (ab->retry_on >> res->reason & 1) != 0;
}

/* --- one call ---------------------------------------------------------------------------------------------------- */

void cf_attempt_req_copy(h2o_mem_pool_t *pool, cf_upstream_req_t *dst, const cf_upstream_req_t *src)
{
    *dst = *src;
    dst->method = h2o_strdup(pool, src->method.base, src->method.len);
    dst->path = h2o_strdup(pool, src->path.base, src->path.len);
    dst->authority = h2o_strdup(pool, src->authority.base, src->authority.len);
    dst->body = src->body.base != NULL ? h2o_strdup(pool, src->body.base, src->body.len) : h2o_iovec_init(NULL, 0);
    if (src->trace != NULL) {
        cf_trace_t *t = h2o_mem_alloc_pool(pool, sizeof(*t));
        cf_trace_copy(pool, t, src->trace);
        dst->trace = t;
    }
    dst->headers = NULL;
    if (src->num_headers != 0) {
        dst->headers = h2o_mem_alloc_pool(pool, sizeof(*dst->headers) * src->num_headers);
        for (size_t i = 0; i != src->num_headers; ++i) {
            h2o_header_t *d = &dst->headers[i];
            const h2o_header_t *s = &src->headers[i];
            d->name = h2o_mem_alloc_pool(pool, sizeof(*d->name));
            *d->name = h2o_strdup(pool, s->name->base, s->name->len);
            d->orig_name = s->orig_name != NULL ? h2o_strdup(pool, s->orig_name, SIZE_MAX).base : NULL;
            d->value = h2o_strdup(pool, s->value.base, s->value.len);
        }
    }
}

static void on_exchange_done(void *data, const cf_upstream_res_t *res);
static void on_hedge_timer(h2o_timeout_entry_t *entry);

/* Starts one exchange of the call and keeps its span id for the access log; its start too when the trace is sampled. */
static cf_exchange_t *open_exchange(cf_attempt_t *a, const cf_upstream_req_t *req, cf_attempt_slot_t *s)
{
    cf_exchange_t *x = cf_upstream_start(a->ab->u, req, on_exchange_done, s);
    uint64_t id = cf_upstream_span_id(x);
    s->span = id != 0 ? (signed char)cf_spans_add(&a->spans, id) : -1;
    if (s->span >= 0 && a->spans.details != NULL)
        a->spans.details[s->span] = (cf_span_detail_t){.start_ns = cf_trace_now_ns(),
                                                       .reason = CF_REASON_NONE,
                                                       .kind = s->hedge   ? CF_SPAN_HEDGE
                                                               : s->extra ? CF_SPAN_RETRY
                                                                          : CF_SPAN_FIRST};
    return x;
}

/* The end of a slot's exchange, on its span when the trace is sampled. */
static void end_span(cf_attempt_t *a, cf_attempt_slot_t *s, cf_reason_t reason, int status)
{
    if (a->spans.details == NULL || s->span < 0)
        return;
    cf_span_detail_t *sp = &a->spans.details[s->span];
    sp->end_ns = cf_trace_now_ns();
    sp->reason = (uint8_t)reason;
    sp->status = (uint16_t)status;
}

static h2o_loop_t *loop_of(const cf_attempt_t *a)
{
    return a->ab->timeouts->loop;
}

/* Starts an exchange in slot `s`: a retry or a hedge (the first attempt of a fast-path call is started directly). */
static void start_exchange(cf_attempt_t *a, cf_attempt_slot_t *s, int extra, int hedge, uint64_t now)
{
    cf_upstream_req_t req = a->copy->req;
    req.timeout_ms = a->call_end > now ? a->call_end - now : 1; /* what is left of the call's */
    if (a->ab->per_try_ms != 0 && a->ab->per_try_ms < req.timeout_ms)
        req.timeout_ms = a->ab->per_try_ms;
    req.avoid_server = a->last_server;
    s->extra = extra != 0;
    s->hedge = hedge != 0;
    s->start = now;
    ++a->running;
    ++a->attempts;
    s->x = open_exchange(a, &req, s);
    size_t server = cf_upstream_server(s->x);
    if (server != 0)
        a->last_server = server;
    /* the attempt may be slow too: a copy after hedge_after, if the call may still send one */
    if (a->may_hedge && a->ab->hedge_after_ms != 0 && a->hedges < a->ab->max_hedges &&
        !h2o_linklist_is_linked(&a->hedge_timer._link)) {
        a->hedge_timer.cb = on_hedge_timer;
        cf_timeouts_link(a->ab->timeouts, hedge_delay(a->ab), &a->hedge_timer);
    }
}

static cf_attempt_slot_t *free_slot(cf_attempt_t *a)
{
    for (size_t i = 0; i != CF_ATTEMPT_MAX_RUNNING; ++i)
        if (a->slots[i].x == NULL)
            return &a->slots[i];
    return NULL;
}

/* Cancels what runs in a slot and gives back its extra attempt. */
static void stop_slot(cf_attempt_t *a, cf_attempt_slot_t *s)
{
    if (s->x != NULL) {
        end_span(a, s, CF_REASON_CANCELLED, 0);
        cf_upstream_cancel(s->x);
        s->x = NULL;
        --a->running;
    }
    if (s->extra) {
        s->extra = 0;
        --a->ab->extra;
    }
}

/* Ends the call's bookkeeping: every exchange stopped, timers unlinked, counts given back, the copy freed. */
static void wind_up(cf_attempt_t *a)
{
    cf_attempt_backend_t *ab = a->ab;
    if (!a->counted) { /* the fast path: one exchange, no timer, no count */
        stop_slot(a, &a->slots[0]);
        a->cb = NULL;
        return;
    }
    for (size_t i = 0; i != CF_ATTEMPT_MAX_RUNNING; ++i)
        stop_slot(a, &a->slots[i]);
    h2o_timeout_unlink(&a->retry_timer);
    h2o_timeout_unlink(&a->hedge_timer);
    if (a->waiting_extra) {
        a->waiting_extra = 0;
        --ab->extra;
    }
    if (a->counted) {
        a->counted = 0;
        --ab->active;
    }
    if (a->copy != NULL) {
        h2o_mem_clear_pool(&a->copy->pool);
        free(a->copy);
        a->copy = NULL;
    }
    a->cb = NULL;
}

static void deliver(cf_attempt_t *a, const cf_upstream_res_t *res)
{
    cf_attempt_cb cb = a->cb;
    wind_up(a);
    cb(a, res);
}

static void on_retry_timer(h2o_timeout_entry_t *entry)
{
    cf_attempt_t *a = H2O_STRUCT_FROM_MEMBER(cf_attempt_t, retry_timer, entry);
    cf_attempt_slot_t *s = free_slot(a);
    a->waiting_extra = 0; /* the retry's exchange takes its extra attempt over */
    start_exchange(a, s, 1, 0, h2o_now(loop_of(a)));
}

static void on_hedge_timer(h2o_timeout_entry_t *entry)
{
    cf_attempt_t *a = H2O_STRUCT_FROM_MEMBER(cf_attempt_t, hedge_timer, entry);
    uint64_t now = h2o_now(loop_of(a));
    cf_attempt_slot_t *s;
    if (a->running == 0 || a->hedges >= a->ab->max_hedges || now >= a->end_at || (s = free_slot(a)) == NULL)
        return;
    if (!budget_take(a->ab)) {
        a->budget_exhausted = 1;
        return;
    }
    ++a->hedges;
    start_exchange(a, s, 1, 1, now);
}

/* Schedules a retry after a failed attempt when the policy, the budget and the time allow: 1, else 0. */
static int schedule_retry(cf_attempt_t *a, uint64_t now)
{
    cf_attempt_backend_t *ab = a->ab;
    if (a->retries_left == 0)
        return 0;
    uint64_t wait = backoff_ms(ab->retries - a->retries_left + 1);
    if (now + wait >= a->end_at)
        return 0;
    if (!budget_take(ab)) {
        a->budget_exhausted = 1;
        return 0;
    }
    --a->retries_left;
    a->waiting_extra = 1;
    h2o_timeout_unlink(&a->hedge_timer); /* the retry arms it again */
    a->retry_timer.cb = on_retry_timer;
    cf_timeouts_link(ab->timeouts, wait, &a->retry_timer);
    return 1;
}

static void on_exchange_done(void *data, const cf_upstream_res_t *res)
{
    cf_attempt_slot_t *s = data;
    cf_attempt_t *a = s->a;
    cf_attempt_backend_t *ab = a->ab;

    s->x = NULL;
    --a->running;
    end_span(a, s, res->reason, res->status);
    if (!a->counted) { /* the fast path: nothing to wind up */
        cf_attempt_cb cb = a->cb;
        a->cb = NULL;
        cb(a, res);
        return;
    }
    if (s->extra) {
        s->extra = 0;
        --ab->extra;
    }
    if (a->copy == NULL) { /* not idempotent: the one attempt is the outcome */
        deliver(a, res);
        return;
    }
    uint64_t now = h2o_now(loop_of(a));
    /* The percentile is of the backend's own latency, so only attempts that are not hedges are sampled: a hedge's time
     * runs from the hedge, not from the call. And when a hedge wins, the attempt it overtook is cancelled without an
     * answer; its time so far is sampled as what it is, a lower bound. Left out, every slow answer a hedge cut short
     * would vanish from the window, the percentile would sink and hedges would go out ever earlier. */
    if (ab->hedge_percentile != 0 && res->reason == CF_REASON_NONE && res->status < 500 && !s->hedge)
        add_sample(ab, now - s->start);
    /* an attempt cut by per_try_timeout before the call's end is what per_try_timeout is for: it is retried (as in
     * Envoy) whether or not retry_on lists timeout */
    int per_try_cut = res->reason == CF_REASON_TIMEOUT && ab->per_try_ms != 0 && now < a->call_end;
    if (!per_try_cut && !is_retryable(ab, res)) {
        a->hedge_won = s->hedge;
        if (ab->hedge_percentile != 0 && s->hedge)
            for (size_t i = 0; i != CF_ATTEMPT_MAX_RUNNING; ++i)
                if (a->slots[i].x != NULL && !a->slots[i].hedge)
                    add_sample(ab, now - a->slots[i].start);
        deliver(a, res); /* the other exchanges are cancelled */
        return;
    }
    if (a->running != 0)
        return; /* another attempt may still answer */
    if (schedule_retry(a, now))
        return;
    deliver(a, res);
}

void cf_attempt_start(cf_attempt_t *a, cf_attempt_backend_t *ab, const cf_upstream_req_t *req, uint64_t deadline, cf_attempt_cb cb)
{
    /* only what the fast path reads is set here: it never touches the timers nor the other slots (wind_up) */
    a->attempts = 1;
    a->hedges = 0;
    a->budget_exhausted = 0;
    a->hedge_won = 0;
    a->spans.n = 0;
    a->spans.details = req->trace != NULL && req->trace->sampled && req->span_pool != NULL
                           ? h2o_mem_alloc_pool(req->span_pool, sizeof(*a->spans.details) * CF_TRACE_MAX_SPANS)
                           : NULL;
    a->ab = ab;
    a->cb = cb;
    a->copy = NULL;
    a->running = 1;
    a->counted = 0;
    a->slots[0] = (cf_attempt_slot_t){.a = a};
    if (ab->retries == 0 && ab->hedge_after_ms == 0) {
        /* the fast path: nothing can follow this exchange */
        a->slots[0].x = open_exchange(a, req, &a->slots[0]);
        return;
    }
    for (size_t i = 1; i != CF_ATTEMPT_MAX_RUNNING; ++i)
        a->slots[i] = (cf_attempt_slot_t){.a = a};
    a->retry_timer = (h2o_timeout_entry_t){0};
    a->hedge_timer = (h2o_timeout_entry_t){0};
    a->waiting_extra = 0;
    a->last_server = 0;
    a->counted = 1;
    ++ab->active;
    if (!req->idempotent) {
        a->slots[0].x = open_exchange(a, req, &a->slots[0]);
        return;
    }
    uint64_t now = h2o_now(ab->timeouts->loop);
    a->end_at = a->call_end = now + (req->timeout_ms != 0 ? req->timeout_ms : ab->timeout_ms);
    if (deadline != 0 && deadline < a->end_at)
        a->end_at = deadline;
    a->retries_left = ab->retries;
    /* a PUT or DELETE may be retried (once one has failed, the next goes), never hedged: two copies in flight at once
     * could land in either order between other clients' writes to the same resource */
    a->may_hedge = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
                   h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    a->copy = h2o_mem_alloc(sizeof(*a->copy));
    h2o_mem_init_pool(&a->copy->pool);
    cf_attempt_req_copy(&a->copy->pool, &a->copy->req, req);
    a->attempts = 0;
    a->running = 0;
    start_exchange(a, &a->slots[0], 0, 0, now);
}

int cf_attempt_queued(const cf_attempt_t *a)
{
    if (a->cb == NULL)
        return 0;
    size_t n = a->counted ? CF_ATTEMPT_MAX_RUNNING : 1; /* the fast path only ever uses the first slot */
    int queued = 0;
    for (size_t i = 0; i != n; ++i) {
        if (a->slots[i].x == NULL)
            continue;
        if (!cf_upstream_queued(a->slots[i].x))
            return 0;
        queued = 1;
    }
    return queued;
}

void cf_attempt_cancel(cf_attempt_t *a)
{
    if (a->cb != NULL)
        wind_up(a);
}
