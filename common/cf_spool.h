/* A bounded hand-over from many producer threads to one consumer thread: malloc'ed items in a ring, dropped when full. */
#ifndef CF_SPOOL_H
#define CF_SPOOL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/** One item: `base` (malloc'ed, owned by whoever holds the item), `len` bytes, worth `units` of the spool's bound. */
typedef struct st_cf_spool_item_t {
    char *base;
    size_t len;
    size_t units;
} cf_spool_item_t;

/**
 * The producers only take the mutex to copy an item into the ring (no I/O under it); the consumer takes what it wants
 * at once and works with the mutex released, so a slow consumer delays nothing but itself, and a full ring only costs
 * the items that do not fit. Bounded three ways: items, units (e.g. spans) and bytes.
 */
typedef struct st_cf_spool_t {
    pthread_mutex_t mutex;
    pthread_cond_t cond; /* on CLOCK_MONOTONIC */
    cf_spool_item_t *ring;
    size_t cap, head, count, units, bytes;
    size_t max_units, max_bytes;
    unsigned events; /* cf_spool_poke's, not yet taken */
    int closed;
} cf_spool_t;

/** Sets up `s` for at most `max_items` items, `max_units` units and `max_bytes` bytes. Returns 0, or -1 (no memory). */
int cf_spool_init(cf_spool_t *s, size_t max_items, size_t max_units, size_t max_bytes);
/** Frees what `s` still holds. No thread may use it any more. */
void cf_spool_dispose(cf_spool_t *s);

/**
 * Queues `item` and takes ownership of its base: 0, or -1 when it does not fit or the spool is closed (then the base
 * is freed here and the caller counts the drop). Never blocks but on the mutex. Any thread.
 */
int cf_spool_put(cf_spool_t *s, cf_spool_item_t item);

/** Wakes the consumer with `event` (bits of the caller's choosing), as if an item had come. Any thread. */
void cf_spool_poke(cf_spool_t *s, unsigned event);

/** No more items are taken; the consumer wakes and takes what is left. Any thread; idempotent. */
void cf_spool_close(cf_spool_t *s);

/** What cf_spool_take found. */
typedef struct st_cf_spool_take_t {
    size_t n;        /* items moved into `out`, oldest first; the consumer owns their bases */
    unsigned events; /* cf_spool_poke's since the last take */
    int closed;      /* the spool is closed: once it takes nothing (n == 0), nothing more will come */
} cf_spool_take_t;

/**
 * The consumer's side: waits until there is something, a poke or the close, or until `until_ns` (CLOCK_MONOTONIC;
 * 0: no bound), then moves up to `max` items into `out`, stopping before the one that would bring their units over
 * `max_units` (0: no bound; the first item is always taken). `min_units`: with items waiting but fewer units than
 * this, and no event, no close, it waits on for more until `until_ns`.
 */
cf_spool_take_t cf_spool_take(cf_spool_t *s, cf_spool_item_t *out, size_t max, size_t min_units, size_t max_units,
                              uint64_t until_ns);

/** CLOCK_MONOTONIC in nanoseconds (the clock of cf_spool_take's `until_ns`). */
uint64_t cf_spool_now_ns(void);

#endif
