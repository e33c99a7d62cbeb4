/* A circuit breaker in front of a dependency that can fail or hang: pure state and arithmetic on times passed in. */
#ifndef CF_BREAKER_H
#define CF_BREAKER_H

#include <stdint.h>

/** Breaker states; the numbers are those of the /metrics gauges. */
enum { CF_BREAKER_CLOSED = 0, CF_BREAKER_OPEN = 1, CF_BREAKER_HALF_OPEN = 2 };

/** What cf_breaker_admit decides for one attempt. */
typedef enum en_cf_breaker_admit_t {
    CF_BREAKER_PASS,  /* closed: go */
    CF_BREAKER_PROBE, /* the one attempt let through after the open period: report its outcome with probe = 1 */
    CF_BREAKER_SKIP   /* open (or a probe is out): do not touch the dependency */
} cf_breaker_admit_t;

/**
 * `threshold` consecutive failures open the breaker for `base_ms`; then one probe attempt is admitted (half-open): its
 * success closes the breaker, its failure reopens it for twice the last period, at most `max_ms`. A probe that never
 * reports does not wedge it: another one is admitted one period later.
 *
 * Not thread-safe: the owner serializes calls (one lock, or one thread). `state`, `failures` and `next_probe_ms` are
 * written with atomic stores, so that other threads may read them without the lock (cf_breaker_state,
 * cf_breaker_skips, a closed fast path).
 */
typedef struct st_cf_breaker_t {
    unsigned threshold;
    uint64_t base_ms, max_ms;
    int state;             /* CF_BREAKER_* */
    unsigned failures;     /* consecutive failures while closed */
    uint64_t open_ms;      /* the current open period */
    int64_t next_probe_ms; /* open or half-open: from when the next probe may go */
} cf_breaker_t;

/** Sets `b` up closed. `threshold` >= 1, 0 < `base_ms` <= `max_ms`; times are milliseconds of one monotonic clock. */
void cf_breaker_init(cf_breaker_t *b, unsigned threshold, uint64_t base_ms, uint64_t max_ms);

/** The state, for any thread (a relaxed atomic load). */
static inline int cf_breaker_state(const cf_breaker_t *b)
{
    return __atomic_load_n(&b->state, __ATOMIC_RELAXED);
}

/**
 * For any thread, without the lock: 1 when an attempt at `now_ms` is skipped for sure (open or half-open, and the next
 * probe not due yet); 0 means ask cf_breaker_admit. Lets the degraded path, like the healthy one, run without the lock.
 */
static inline int cf_breaker_skips(const cf_breaker_t *b, int64_t now_ms)
{
    return cf_breaker_state(b) != CF_BREAKER_CLOSED && now_ms < __atomic_load_n(&b->next_probe_ms, __ATOMIC_RELAXED);
}

/** Decides whether an attempt at `now_ms` may go. Open -> half-open happens here, on the first attempt due. */
cf_breaker_admit_t cf_breaker_admit(cf_breaker_t *b, int64_t now_ms);

/**
 * Reports the outcome (`ok` non-zero: success) of an attempt admitted earlier, `probe` non-zero when it was the probe.
 * Outcomes of ordinary attempts that arrive while open or half-open (sent before it opened) change nothing: only the
 * probe decides. Returns the new state when it changed, else -1.
 */
int cf_breaker_report(cf_breaker_t *b, int64_t now_ms, int probe, int ok);

#endif
