/* Timing for conflux-mock: delay distributions, a seeded random generator, and one-shot timers on the loop. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "cf_units.h"
#include "timing.h"

/* xorshift64*: fast, good enough for jitter and fault rates, and reproducible under --seed */
static uint64_t run_seed = 0x9e3779b97f4a7c15ull;
static cf_mock_rng_t shared = {0x9e3779b97f4a7c15ull};

/* splitmix64's finalizer: spreads a seed's bits so that near seeds start far-apart streams */
static uint64_t mix(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void cf_mock_random_seed(uint64_t seed)
{
    if (seed == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = ((uint64_t)ts.tv_sec * 1000000007ull) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
    }
    run_seed = seed != 0 ? seed : 1;
    shared.state = run_seed;
}

void cf_mock_rng_init(cf_mock_rng_t *rng, const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (const char *p = name; *p != '\0'; ++p)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    rng->state = mix(run_seed ^ mix(h));
    if (rng->state == 0)
        rng->state = 1;
}

double cf_mock_random(cf_mock_rng_t *rng)
{
    if (rng == NULL)
        rng = &shared;
    rng->state ^= rng->state >> 12;
    rng->state ^= rng->state << 25;
    rng->state ^= rng->state >> 27;
    uint64_t r = rng->state * 0x2545f4914f6cdd1dull;
    return (double)(r >> 11) / (double)(1ull << 53);
}

/* a standard normal draw (Box-Muller; the second value is thrown away, draws are cheap) */
static double random_normal(cf_mock_rng_t *rng)
{
    double u1 = cf_mock_random(rng), u2 = cf_mock_random(rng);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

uint64_t cf_mock_delay_sample(const cf_mock_delay_t *d, cf_mock_rng_t *rng)
{
    switch (d->kind) {
    case CF_MOCK_DELAY_NONE:
        return 0;
    case CF_MOCK_DELAY_FIXED:
        return d->a;
    case CF_MOCK_DELAY_UNIFORM:
        return d->a + (uint64_t)(cf_mock_random(rng) * (double)(d->b - d->a + 1));
    case CF_MOCK_DELAY_LOGNORMAL: {
        if (d->a == 0)
            return 0;
        /* ln X ~ N(mu, sigma): the median is e^mu and the 99th percentile e^(mu + 2.3263 sigma) */
        double mu = log((double)d->a), sigma = (log((double)d->b) - mu) / 2.3263478740408408;
        double v = exp(mu + sigma * random_normal(rng)), cap = 10.0 * (double)d->b;
        return (uint64_t)(v < cap ? v + 0.5 : cap);
    }
    }
    return 0;
}

int cf_mock_delay_parse(const char *s, cf_mock_delay_t *d, char *err, size_t errlen)
{
    char buf[128];
    if (strlen(s) >= sizeof(buf)) {
        snprintf(err, errlen, "delay \"%.40s...\" is too long", s);
        return -1;
    }
    strcpy(buf, s);
    char *colon = strchr(buf, ':');
    if (colon == NULL) {
        if (cf_parse_duration(buf, &d->a) != 0) {
            snprintf(err, errlen, "\"%s\" is not a delay (use 500ms, uniform:100ms:900ms or lognormal:50ms:800ms)", s);
            return -1;
        }
        d->kind = d->a != 0 ? CF_MOCK_DELAY_FIXED : CF_MOCK_DELAY_NONE;
        return 0;
    }
    *colon = '\0';
    char *second = strchr(colon + 1, ':');
    if (second == NULL)
        goto Bad;
    *second = '\0';
    if (cf_parse_duration(colon + 1, &d->a) != 0 || cf_parse_duration(second + 1, &d->b) != 0)
        goto Bad;
    if (strcmp(buf, "uniform") == 0) {
        d->kind = CF_MOCK_DELAY_UNIFORM;
        if (d->a > d->b) {
            snprintf(err, errlen, "\"%s\": the lower bound is above the upper bound", s);
            return -1;
        }
    } else if (strcmp(buf, "lognormal") == 0) {
        d->kind = CF_MOCK_DELAY_LOGNORMAL;
        if (d->a == 0 || d->b < d->a) {
            snprintf(err, errlen, "\"%s\": lognormal needs 0 < median <= p99", s);
            return -1;
        }
    } else {
        goto Bad;
    }
    return 0;
Bad:
    snprintf(err, errlen, "\"%s\" is not a delay (use 500ms, uniform:100ms:900ms or lognormal:50ms:800ms)", s);
    return -1;
}

/*
 * Timers. h2o 2.2.5's h2o_timeout_t is a FIFO of entries that all share one timeout value, which suits fixed
 * timeouts but not thousands of requests each with its own random delay. So the mock keeps its own binary min-heap
 * of deadlines and drives it with a single h2o_timeout_t holding a single entry, re-armed for the earliest
 * deadline whenever that changes. Starting or stopping a timer is O(log n); the loop sees one timeout.
 */
static h2o_loop_t *timer_loop;
static h2o_timeout_t alarm_timeout;
static h2o_timeout_entry_t alarm_entry;
static cf_mock_timer_t **heap;
static size_t heap_len, heap_cap;

static void heap_set(size_t i, cf_mock_timer_t *t)
{
    heap[i] = t;
    t->slot = i + 1;
}

static void sift_up(size_t i)
{
    cf_mock_timer_t *t = heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (heap[parent]->at <= t->at)
            break;
        heap_set(i, heap[parent]);
        i = parent;
    }
    heap_set(i, t);
}

static void sift_down(size_t i)
{
    cf_mock_timer_t *t = heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= heap_len)
            break;
        if (child + 1 < heap_len && heap[child + 1]->at < heap[child]->at)
            ++child;
        if (heap[child]->at >= t->at)
            break;
        heap_set(i, heap[child]);
        i = child;
    }
    heap_set(i, t);
}

static void heap_remove(cf_mock_timer_t *t)
{
    size_t i = t->slot - 1;
    t->slot = 0;
    if (--heap_len == i)
        return;
    heap_set(i, heap[heap_len]);
    if (i > 0 && heap[(i - 1) / 2]->at > heap[i]->at)
        sift_up(i);
    else
        sift_down(i);
}

/* Points the single h2o timeout entry at the earliest deadline (never less than 1 ms ahead, see on_alarm). */
static void rearm(void)
{
    if (h2o_timeout_is_linked(&alarm_entry))
        h2o_timeout_unlink(&alarm_entry);
    if (heap_len == 0)
        return;
    uint64_t now = h2o_now(timer_loop);
    /* the entry list is empty here, so changing the shared timeout value is safe */
    alarm_timeout.timeout = heap[0]->at > now + 1 ? heap[0]->at - now : 1;
    h2o_timeout_link(timer_loop, &alarm_timeout, &alarm_entry);
}

static void on_alarm(h2o_timeout_entry_t *entry)
{
    uint64_t now = h2o_now(timer_loop);
    /* callbacks may start (later) or stop timers; a timer started now for 0 ms would run in this pass */
    while (heap_len != 0 && heap[0]->at <= now) {
        cf_mock_timer_t *t = heap[0];
        heap_remove(t);
        t->cb(t);
    }
    /*
     * h2o_timeout_run() keeps running entries registered before (now - timeout) as computed when it started;
     * re-linking with a timeout of at least 1 ms registers the entry at `now`, which is after that bound.
     */
    rearm();
}

void cf_mock_timers_init(h2o_loop_t *loop)
{
    timer_loop = loop;
    h2o_timeout_init(loop, &alarm_timeout, 1);
    memset(&alarm_entry, 0, sizeof(alarm_entry));
    alarm_entry.cb = on_alarm;
}

void cf_mock_timer_start(cf_mock_timer_t *timer, uint64_t delay)
{
    int was_first = heap_len != 0 && heap[0] == timer;
    if (timer->slot != 0)
        heap_remove(timer);
    timer->at = h2o_now(timer_loop) + delay;
    if (heap_len == heap_cap) {
        heap_cap = heap_cap ? heap_cap * 2 : 1024;
        heap = h2o_mem_realloc(heap, heap_cap * sizeof(*heap));
    }
    heap_set(heap_len++, timer);
    sift_up(heap_len - 1);
    if (heap[0] == timer || was_first)
        rearm();
}

void cf_mock_timer_stop(cf_mock_timer_t *timer)
{
    if (timer->slot == 0)
        return;
    int was_first = heap[0] == timer;
    heap_remove(timer);
    if (was_first)
        rearm();
}
