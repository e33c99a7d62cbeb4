/* A bounded hand-over from many producer threads to one consumer thread: malloc'ed items in a ring, dropped when full. */
#ifndef CF_SPOOL_H
#define CF_SPOOL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/**
 * One item: `base` (malloc'ed, `cap` bytes, owned by whoever holds the item; cap 0 stands for len), `len` bytes used,
 * worth `units` of the spool's bound.
 */
typedef struct st_cf_spool_item_t {
    char *base;
    size_t len;
    size_t units;
    size_t cap;
} cf_spool_item_t;

/**
 * The most buffers kept for reuse (cf_spool_recycle): as many as the spool holds items, up to this many; beyond, they
 * are freed. What stays allocated is what the queue held at its fullest, within that bound.
 */
#define CF_SPOOL_MAX_SPARES 1024

/**
 * The largest buffer kept for reuse: a bigger one (an item made large once, by a client's long strings) is freed when
 * handed back, so that the spares hold CF_SPOOL_MAX_SPARES buffers of this size at most, not as many of the largest
 * ever filled.
 */
#define CF_SPOOL_MAX_SPARE_CAP (64 << 10)

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
    size_t wake_units; /* the consumer waits for this many units (0: for any item) */
    unsigned events;   /* cf_spool_poke's, not yet taken */
    int closed;
    pthread_t consumer;
    int running;             /* the consumer thread was started and not yet stopped */
    cf_spool_item_t *spares; /* buffers handed back, for producers to fill again */
    size_t num_spares, max_spares;
} cf_spool_t;

/** Sets up `s` for at most `max_items` items, `max_units` units and `max_bytes` bytes. Returns 0, or -1 (no memory). */
int cf_spool_init(cf_spool_t *s, size_t max_items, size_t max_units, size_t max_bytes);
/** Starts the consumer thread, `consumer(arg)`, which takes with cf_spool_take. Returns 0, or an errno value. */
int cf_spool_start(cf_spool_t *s, void *(*consumer)(void *), void *arg);

/**
 * Closes the spool and waits for the consumer to end, at most `wait_s` seconds (0: as long as it takes). Returns 1 when
 * it ended, -1 when it was left running (detached: the process is about to exit), 0 when there was none to stop (never
 * started, or stopped before). The spool itself stays, closed, so that a late cf_spool_put is a drop.
 */
int cf_spool_stop(cf_spool_t *s, unsigned wait_s);

/**
 * Queues `item` and takes ownership of its base: 0, or -1 when it does not fit, the spool is closed or was never set
 * up (then the base is freed here and the caller counts the drop). Never blocks but on the mutex. Any thread.
 */
int cf_spool_put(cf_spool_t *s, cf_spool_item_t item);

/**
 * A buffer to fill and put, so that a producer need not allocate: one the consumer handed back (base and cap set, len
 * 0), or {NULL} when none is spare (the producer then allocates its own). Any thread.
 */
cf_spool_item_t cf_spool_borrow(cf_spool_t *s);

/**
 * The consumer hands the buffers of `n` taken items back: up to max_spares are kept for cf_spool_borrow, the
 * rest freed. A large allocation freed by another thread than the one that made it costs hundreds of instructions in
 * glibc, on both sides; a buffer going round costs a lock.
 */
void cf_spool_recycle(cf_spool_t *s, cf_spool_item_t *items, size_t n);

/** Wakes the consumer with `event` (bits of the caller's choosing), as if an item had come. Any thread. */
void cf_spool_poke(cf_spool_t *s, unsigned event);

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

#endif
