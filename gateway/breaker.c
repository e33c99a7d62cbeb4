/* A circuit breaker in front of a dependency that can fail or hang: pure state and arithmetic on times passed in. */
#include "breaker.h"

static void set_state(cf_breaker_t *b, int state)
{
    __atomic_store_n(&b->state, state, __ATOMIC_RELAXED);
}

static void set_failures(cf_breaker_t *b, unsigned n)
{
    __atomic_store_n(&b->failures, n, __ATOMIC_RELAXED);
}

void cf_breaker_init(cf_breaker_t *b, unsigned threshold, uint64_t base_ms, uint64_t max_ms)
{
    *b = (cf_breaker_t){
        .threshold = threshold != 0 ? threshold : 1, .base_ms = base_ms, .max_ms = max_ms < base_ms ? base_ms : max_ms};
    b->open_ms = b->base_ms;
}

static void set_next_probe(cf_breaker_t *b, int64_t at_ms)
{
    __atomic_store_n(&b->next_probe_ms, at_ms, __ATOMIC_RELAXED);
}

static void open_for(cf_breaker_t *b, int64_t now_ms, uint64_t period_ms)
{
    b->open_ms = period_ms;
    set_next_probe(b, now_ms + (int64_t)period_ms);
    set_failures(b, 0);
    set_state(b, CF_BREAKER_OPEN);
}

cf_breaker_admit_t cf_breaker_admit(cf_breaker_t *b, int64_t now_ms)
{
    if (b->state == CF_BREAKER_CLOSED)
        return CF_BREAKER_PASS;
    if (now_ms < b->next_probe_ms)
        return CF_BREAKER_SKIP;
    /* one probe per period: should it never report (its caller went away), the next one goes a period later */
    set_next_probe(b, now_ms + (int64_t)b->open_ms);
    set_state(b, CF_BREAKER_HALF_OPEN);
    return CF_BREAKER_PROBE;
}

int cf_breaker_report(cf_breaker_t *b, int64_t now_ms, int probe, int ok)
{
    switch (b->state) {
    case CF_BREAKER_CLOSED:
        if (ok) {
            if (b->failures != 0)
                set_failures(b, 0);
            return -1;
        }
        set_failures(b, b->failures + 1);
        if (b->failures < b->threshold)
            return -1;
        open_for(b, now_ms, b->base_ms);
        return CF_BREAKER_OPEN;
    case CF_BREAKER_HALF_OPEN:
        if (!probe)
            return -1;
        if (ok) {
            b->open_ms = b->base_ms;
            set_state(b, CF_BREAKER_CLOSED);
            return CF_BREAKER_CLOSED;
        }
        open_for(b, now_ms, b->open_ms * 2 < b->max_ms ? b->open_ms * 2 : b->max_ms);
        return CF_BREAKER_OPEN;
    default: /* open: late outcomes of attempts sent before it opened, or of a probe given up on */
        return -1;
    }
}
