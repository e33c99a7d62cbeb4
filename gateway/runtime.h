/* The gateway's runtime on each event loop: the worker, the swappable route table and the references requests hold to
 * it, the request slots that max_inflight and a graceful stop count, and the clock. */
#ifndef CF_RUNTIME_H
#define CF_RUNTIME_H

#include <stdint.h>
#include <h2o.h>
#include "cf_timeouts.h"
#include "attempt.h"
#include "cache.h"
#include "config.h"
#include "router.h"
#include "upstream.h"
#include "watch.h"

/** The most event-loop threads (workers) a process runs. */
#define CF_MAX_WORKERS 64

typedef struct st_cf_worker_t cf_worker_t;

/**
 * What a config becomes on one loop: the config, its router and one upstream runtime per backend. Requests hold a
 * reference to the table they started on, so a reload can swap the worker's table while they finish on the old one.
 */
typedef struct st_cf_table_t {
    size_t refcnt;
    cf_worker_t *worker;
    cf_config_t *config;             /* owned */
    cf_router_t *router;             /* owned */
    cf_upstream_t **upstreams;       /* a reference each; indexed like config->backends */
    cf_attempt_backend_t **attempts; /* a reference each, over upstreams[i]: what calls start their attempts on */
} cf_table_t;

/**
 * One event loop's state. Only its own thread touches it. The modules below keep their per-loop state themselves
 * (the cache's port, the watch set); the worker holds their handles.
 */
struct st_cf_worker_t {
    h2o_context_t *ctx;
    h2o_loop_t *loop;
    cf_table_t *table; /* the current one (holds a reference) */
    cf_timeouts_t timeouts;
    h2o_multithread_receiver_t getaddr_receiver;
    cf_cache_port_t *cache_port; /* the cache's deliveries and flights on this loop (cache.c) */
    cf_watch_set_t *watches;     /* client-disconnect watches (watch.c) */
    cf_jwt_cache_t *jwt_cache;   /* tokens verified on this loop, with their claims (jwt.c) */
    size_t inflight;             /* client requests admitted on this loop and not yet disposed */
};

/** Builds a table for `config` (taking ownership of it on success). Returns NULL with a message. */
cf_table_t *cf_table_create(cf_worker_t *w, cf_config_t *config, char *err, size_t errlen);
void cf_table_retain(cf_table_t *t);
/** Drops a reference; the last one frees the table and drops its references to the upstreams (a cache flight may
 * still hold one). */
void cf_table_release(cf_table_t *t);

/** Sets up a worker on `ctx` with `config` as its first table. */
int cf_worker_init(cf_worker_t *w, h2o_context_t *ctx, cf_config_t *config, char *err, size_t errlen);
/** Replaces the worker's table (in-flight requests keep theirs). */
void cf_worker_swap(cf_worker_t *w, cf_table_t *t);
void cf_worker_dispose(cf_worker_t *w);

/**
 * Reserves a request slot on worker `w` for a request being admitted: 0, or -1 (nothing reserved) when the process
 * already works on `max_inflight` requests. Whichever thread accepted the connection, two threads can never both take
 * the last slot. The module that answers the request takes the slot over with cf_slot_init.
 */
int cf_slot_admit(cf_worker_t *w, uint64_t max_inflight);

/**
 * A request admitted with cf_slot_admit, as the module that answers it holds it (embedded in its state):
 *  - it holds a max_inflight slot until its answer is handed to libh2o (cf_slot_answered, called just before the send:
 *    after it, the client may already have its answer and send its next request, on any thread), not until the client
 *    has read it all: a client that never reads must not keep others out;
 *  - from then on, the send timeout watches it: when its client takes no byte for limits.send_timeout, its connection
 *    is shut down (libh2o 2.2.5 has no send timeout of its own, and would keep the request and its answer for ever);
 *  - it counts as pending (graceful stop waits for it) until it is disposed (cf_slot_dispose).
 */
typedef struct st_cf_slot_t {
    cf_worker_t *w;
    h2o_req_t *req;
    h2o_timeout_entry_t send_timeout;
    uint64_t send_timeout_ms;
    uint64_t acked; /* the bytes the client had acknowledged when last looked at (cf_tcp_bytes_acked) */
    int working;    /* holds a max_inflight slot */
} cf_slot_t;
/** Takes over the slot cf_slot_admit reserved for `req`. */
void cf_slot_init(cf_slot_t *s, cf_worker_t *w, h2o_req_t *req, uint64_t send_timeout_ms);
/** The answer is being handed to libh2o (call it just before): releases the max_inflight slot and arms the send
 * timeout. Idempotent. */
void cf_slot_answered(cf_slot_t *s);
/** The request is disposed (called once, from its dispose callback). */
void cf_slot_dispose(cf_slot_t *s);

/** Requests in the whole process that conflux is working on (admitted, answer not yet handed over): what
 * max_inflight bounds. */
size_t cf_inflight_total(void);
/** Requests in the whole process not yet disposed (their answers may still be on their way): what a graceful stop
 * waits for. */
size_t cf_pending_total(void);

/** Monotonic clock in nanoseconds. */
uint64_t cf_now_ns(void);

#endif
