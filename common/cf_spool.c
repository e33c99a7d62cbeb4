/* A bounded hand-over from many producer threads to one consumer thread: malloc'ed items in a ring, dropped when full. */
#define _GNU_SOURCE /* pthread_timedjoin_np */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include "cf_spool.h"
#include "cf_units.h"

int cf_spool_init(cf_spool_t *s, size_t max_items, size_t max_units, size_t max_bytes)
{
    pthread_condattr_t attr;
    *s = (cf_spool_t){.cap = max_items, .max_units = max_units, .max_bytes = max_bytes};
    s->max_spares = max_items < CF_SPOOL_MAX_SPARES ? max_items : CF_SPOOL_MAX_SPARES;
    if ((s->ring = malloc(sizeof(*s->ring) * max_items)) == NULL ||
        (s->spares = malloc(sizeof(*s->spares) * s->max_spares)) == NULL) {
        free(s->ring);
        s->ring = NULL;
        return -1;
    }
    pthread_mutex_init(&s->mutex, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &attr);
    pthread_condattr_destroy(&attr);
    return 0;
}

int cf_spool_start(cf_spool_t *s, void *(*consumer)(void *), void *arg)
{
    int err = pthread_create(&s->consumer, NULL, consumer, arg);
    s->running = err == 0;
    return err;
}

int cf_spool_stop(cf_spool_t *s, unsigned wait_s)
{
    if (s->ring == NULL)
        return 0;
    pthread_mutex_lock(&s->mutex);
    int running = s->running;
    s->running = 0;
    s->closed = 1;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mutex);
    if (!running)
        return 0;
    if (wait_s == 0)
        return pthread_join(s->consumer, NULL) == 0 ? 1 : -1;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += wait_s;
    if (pthread_timedjoin_np(s->consumer, NULL, &until) == 0)
        return 1;
    pthread_detach(s->consumer);
    return -1;
}

int cf_spool_put(cf_spool_t *s, cf_spool_item_t item)
{
    if (s->ring == NULL) { /* set up before any producer runs: reading it unlocked is safe */
        free(item.base);
        return -1;
    }
    pthread_mutex_lock(&s->mutex);
    if (s->closed || s->count == s->cap || s->units + item.units > s->max_units || s->bytes + item.len > s->max_bytes) {
        if (item.cap != 0 && item.cap <= CF_SPOOL_MAX_SPARE_CAP && !s->closed && s->num_spares != s->max_spares) {
            /* a borrowed buffer goes round again */
            s->spares[s->num_spares++] = item;
            item.base = NULL;
        }
        pthread_mutex_unlock(&s->mutex);
        free(item.base);
        return -1;
    }
    s->ring[(s->head + s->count) % s->cap] = item;
    /* the consumer sleeps on an empty ring, or until the units it waits for are in: wake it when either changes */
    if (s->count++ == 0 || (s->wake_units != 0 && s->units < s->wake_units && s->units + item.units >= s->wake_units))
        pthread_cond_signal(&s->cond);
    s->units += item.units;
    s->bytes += item.len;
    pthread_mutex_unlock(&s->mutex);
    return 0;
}

cf_spool_item_t cf_spool_borrow(cf_spool_t *s)
{
    cf_spool_item_t it = {NULL};
    if (s->ring == NULL)
        return it;
    pthread_mutex_lock(&s->mutex);
    if (s->num_spares != 0)
        it = s->spares[--s->num_spares];
    pthread_mutex_unlock(&s->mutex);
    it.len = 0;
    it.units = 0;
    return it;
}

void cf_spool_recycle(cf_spool_t *s, cf_spool_item_t *items, size_t n)
{
    size_t i = 0, kept = 0;
    pthread_mutex_lock(&s->mutex);
    for (; i != n && s->num_spares != s->max_spares; ++i) {
        if ((items[i].cap != 0 ? items[i].cap : items[i].len) <= CF_SPOOL_MAX_SPARE_CAP)
            s->spares[s->num_spares++] = items[i];
        else
            items[kept++] = items[i]; /* too big to keep: freed below, out of the lock */
    }
    pthread_mutex_unlock(&s->mutex);
    for (size_t k = 0; k != kept; ++k)
        free(items[k].base);
    for (; i != n; ++i)
        free(items[i].base);
}

void cf_spool_poke(cf_spool_t *s, unsigned event)
{
    pthread_mutex_lock(&s->mutex);
    s->events |= event;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mutex);
}

/* Waits on the condition until `until_ns` (0: for ever); 0, or ETIMEDOUT. */
static int wait_until(cf_spool_t *s, uint64_t until_ns)
{
    if (until_ns == 0)
        return pthread_cond_wait(&s->cond, &s->mutex);
    struct timespec ts = {.tv_sec = (time_t)(until_ns / 1000000000u), .tv_nsec = (long)(until_ns % 1000000000u)};
    return pthread_cond_timedwait(&s->cond, &s->mutex, &ts);
}

cf_spool_take_t cf_spool_take(cf_spool_t *s, cf_spool_item_t *out, size_t max, size_t min_units, size_t max_units,
                              uint64_t until_ns)
{
    cf_spool_take_t r = {0};
    pthread_mutex_lock(&s->mutex);
    s->wake_units = min_units;
    while (s->events == 0 && !s->closed && (s->count == 0 || s->units < min_units))
        if (wait_until(s, until_ns) == ETIMEDOUT)
            break;
    s->wake_units = 0;
    size_t units = 0;
    while (r.n != max && s->count != 0) {
        cf_spool_item_t *it = &s->ring[s->head];
        if (r.n != 0 && max_units != 0 && units + it->units > max_units)
            break;
        units += it->units;
        out[r.n++] = *it;
        s->head = (s->head + 1) % s->cap;
        --s->count;
        s->units -= it->units;
        s->bytes -= it->len;
    }
    r.events = s->events;
    s->events = 0;
    r.closed = s->closed;
    pthread_mutex_unlock(&s->mutex);
    return r;
}
