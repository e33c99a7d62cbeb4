/* Timing for conflux-mock: delay distributions, a seeded random generator, and one-shot timers on the loop. */
#ifndef CF_MOCK_TIMING_H
#define CF_MOCK_TIMING_H

#include <stddef.h>
#include <stdint.h>
#include <h2o.h>

/** The shapes a delay can take. */
typedef enum en_cf_mock_delay_kind_t {
    CF_MOCK_DELAY_NONE,
    CF_MOCK_DELAY_FIXED,     /* a */
    CF_MOCK_DELAY_UNIFORM,   /* uniform in [a, b] */
    CF_MOCK_DELAY_LOGNORMAL, /* median a, 99th percentile b */
} cf_mock_delay_kind_t;

/** A delay distribution; all values in milliseconds. */
typedef struct st_cf_mock_delay_t {
    cf_mock_delay_kind_t kind;
    uint64_t a, b;
} cf_mock_delay_t;

/** A stream of random numbers (xorshift64*), reproducible from its seed. */
typedef struct st_cf_mock_rng_t {
    uint64_t state;
} cf_mock_rng_t;

/**
 * Draws one delay (ms) from the distribution with rng (NULL: the shared stream); lognormal draws are capped at
 * 10 x p99.
 */
uint64_t cf_mock_delay_sample(const cf_mock_delay_t *d, cf_mock_rng_t *rng);
/**
 * Parses the one-line form of a delay: "500ms", "uniform:100ms:900ms" or "lognormal:50ms:800ms" (median, p99).
 * Returns 0, or -1 with a message in err.
 */
int cf_mock_delay_parse(const char *s, cf_mock_delay_t *d, char *err, size_t errlen);
/** A uniform random number in [0, 1) from rng, or from the mock's shared stream when rng is NULL. */
double cf_mock_random(cf_mock_rng_t *rng);
/** Seeds the run: the shared stream, and every stream cf_mock_rng_init starts after; 0 picks a seed from the clock. */
void cf_mock_random_seed(uint64_t seed);
/**
 * (Re)starts a stream from the run's seed and a name (a stub's key): each stub draws from a stream of its own, so
 * what it draws for its n-th request does not depend on the requests to other stubs.
 */
void cf_mock_rng_init(cf_mock_rng_t *rng, const char *name);

/** A one-shot timer on the loop; embed it, set cb, then start/stop. */
typedef struct st_cf_mock_timer_t {
    uint64_t at; /* loop time (ms) it fires at */
    size_t slot; /* 1 + index in the heap; 0 when not running */
    void (*cb)(struct st_cf_mock_timer_t *timer);
} cf_mock_timer_t;

/** Binds the timers to the loop (once, before any start). */
void cf_mock_timers_init(h2o_loop_t *loop);
/** (Re)starts the timer to fire after delay ms. */
void cf_mock_timer_start(cf_mock_timer_t *timer, uint64_t delay);
/** Stops the timer if it runs (safe to call when it does not). */
void cf_mock_timer_stop(cf_mock_timer_t *timer);

#endif
