/* A bounded hand-over from many producer threads to one consumer thread: malloc'ed items in a ring, dropped when full. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include "cf_spool.h"

uint64_t cf_spool_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int cf_spool_init(cf_spool_t *s, size_t max_items, size_t max_units, size_t max_bytes)
{
    pthread_condattr_t attr;
    *s = (cf_spool_t){.cap = max_items, .max_units = max_units, .max_bytes = max_bytes};
    if ((s->ring = malloc(sizeof(*s->ring) * max_items)) == NULL)
        return -1;
    pthread_mutex_init(&s->mutex, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &attr);
    pthread_condattr_destroy(&attr);
    return 0;
}

void cf_spool_dispose(cf_spool_t *s)
{
    if (s->ring == NULL)
        return;
    for (size_t i = 0; i != s->count; ++i)
        free(s->ring[(s->head + i) % s->cap].base);
    free(s->ring);
    s->ring = NULL;
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mutex);
}

int cf_spool_put(cf_spool_t *s, cf_spool_item_t item)
{
    pthread_mutex_lock(&s->mutex);
    if (s->closed || s->count == s->cap || s->units + item.units > s->max_units || s->bytes + item.len > s->max_bytes) {
        pthread_mutex_unlock(&s->mutex);
        free(item.base);
        return -1;
    }
    s->ring[(s->head + s->count) % s->cap] = item;
    if (s->count++ == 0)
        pthread_cond_signal(&s->cond); /* the consumer only sleeps on an empty ring, or waiting for more units */
    s->units += item.units;
    s->bytes += item.len;
    pthread_mutex_unlock(&s->mutex);
    return 0;
}

void cf_spool_poke(cf_spool_t *s, unsigned event)
{
    pthread_mutex_lock(&s->mutex);
    s->events |= event;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mutex);
}

void cf_spool_close(cf_spool_t *s)
{
    pthread_mutex_lock(&s->mutex);
    s->closed = 1;
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
    while (s->events == 0 && !s->closed && (s->count == 0 || s->units < min_units))
        if (wait_until(s, until_ns) == ETIMEDOUT)
            break;
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
