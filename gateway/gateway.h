/* The gateway's runtime: per-loop workers, the swappable route table, and the request entry points. */
#ifndef CF_GATEWAY_H
#define CF_GATEWAY_H

#include <stdint.h>
#include <h2o.h>
#include <jansson.h>
#include "cf_http.h"
#include "cf_timeouts.h"
#include "config.h"
#include "router.h"
#include "upstream.h"

/** Bounds on a request head (a field, and all of them with the path): beyond them, 431. */
#define CF_MAX_HEADER_FIELD (16 * 1024)
#define CF_MAX_HEADER_BLOCK (64 * 1024)

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
    cf_config_t *config;       /* owned */
    cf_router_t *router;       /* owned */
    cf_upstream_t **upstreams; /* owned; indexed like config->backends */
} cf_table_t;

/** One event loop's state. Only its own thread touches it. */
struct st_cf_worker_t {
    h2o_context_t *ctx;
    h2o_loop_t *loop;
    cf_table_t *table; /* the current one (holds a reference) */
    cf_timeouts_t timeouts;
    h2o_multithread_receiver_t getaddr_receiver;
    struct st_cf_cache_port_t *cache_port; /* the cache's receivers on this loop (cache.c) */
    size_t inflight;                       /* client requests admitted on this loop and not yet disposed */
    int watch_epfd;                        /* HTTP/1 client sockets watched for disconnects (see gateway.c) */
    h2o_socket_t *watch_sock;              /* watch_epfd on the loop */
};

/** Builds a table for `config` (taking ownership of it on success). Returns NULL with a message. */
cf_table_t *cf_table_create(cf_worker_t *w, cf_config_t *config, char *err, size_t errlen);
void cf_table_retain(cf_table_t *t);
/** Drops a reference; the last one frees the table (its upstreams must be idle by then, which they are). */
void cf_table_release(cf_table_t *t);

/** Sets up a worker on `ctx` with `config` as its first table. */
int cf_worker_init(cf_worker_t *w, h2o_context_t *ctx, cf_config_t *config, char *err, size_t errlen);
/**
 * A request admitted by cf_gateway_handle, as the module that answers it holds it (embedded in its state):
 *  - it holds a max_inflight slot until its answer is handed to libh2o (cf_slot_answered), not until the client has
 *    read it all: a client that never reads must not keep others out;
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
/** Takes over the slot cf_gateway_handle reserved for `req`. */
void cf_slot_init(cf_slot_t *s, cf_worker_t *w, h2o_req_t *req, uint64_t send_timeout_ms);
/** The answer was handed to libh2o: releases the max_inflight slot and arms the send timeout. Idempotent. */
void cf_slot_answered(cf_slot_t *s);
/** The request is disposed (called once, from its dispose callback). */
void cf_slot_dispose(cf_slot_t *s);

/** Requests in the whole process that conflux is working on (admitted, answer not yet handed over): what
 * max_inflight bounds. */
size_t cf_inflight_total(void);
/** Requests in the whole process not yet disposed (their answers may still be on their way): what a graceful stop
 * waits for. */
size_t cf_pending_total(void);

/** Replaces the worker's table (in-flight requests keep theirs). */
void cf_worker_swap(cf_worker_t *w, cf_table_t *t);
void cf_worker_dispose(cf_worker_t *w);

/** The catch-all request handler: routes, then runs a fan-out or a proxy exchange. `w` is the request's worker. */
int cf_gateway_handle(cf_worker_t *w, h2o_req_t *req);

/**
 * Routes a request head before its body is read (for an early answer to Expect: 100-continue): 0 when a route takes
 * `method` on the raw `path` (without the query), else 404, 405 with the Allow value in `allow`, or 400 for a path the
 * router refuses (a target that is not origin-form among them). Touches nothing.
 */
int cf_gateway_precheck(cf_worker_t *w, const char *method, size_t mlen, const char *path, size_t plen, char *allow,
                        size_t allowlen);

/* internal entry points between the request modules */

/** Runs a route with calls (fanout.c). The table reference is passed on to the request. */
void cf_fanout_start(cf_worker_t *w, cf_table_t *t, const cf_route_t *route, h2o_req_t *req, const cf_route_match_t *m);
/** Runs a pass-through route (proxy.c). The table reference is passed on to the request. */
void cf_proxy_start(cf_worker_t *w, cf_table_t *t, const cf_route_t *route, h2o_req_t *req, const cf_route_match_t *m);

/** A request is watched for its client going away only once it has run this long: most answers are sent sooner. */
#define CF_WATCH_DELAY_MS 25

/**
 * Watches an HTTP/1 client's socket while its request is processed (h2o 2.2.5 stops reading it), so that a client
 * that goes away is noticed at once: `on_gone(watch)` is then called once. The watch is armed CF_WATCH_DELAY_MS after
 * cf_watch_start (two epoll_ctl calls that a fast request need not pay; a hang-up before then is reported when it
 * arms). The struct must start zeroed with on_gone set. Returns 0, or -1 when the connection cannot be watched
 * (HTTP/2: h2o itself disposes a reset stream's request).
 */
typedef struct st_cf_watch_t {
    cf_worker_t *w;
    h2o_req_t *req;
    int fd;                  /* registered in the worker's watch set; -1 when not */
    h2o_timeout_entry_t arm; /* linked until the watch is armed */
    void (*on_gone)(struct st_cf_watch_t *watch);
} cf_watch_t;
int cf_watch_start(cf_worker_t *w, h2o_req_t *req, cf_watch_t *watch);
/** Stops watching (whether armed or not); safe to call more than once. */
void cf_watch_stop(cf_watch_t *watch);

/** Sends conflux's own error: {"error": code, "message": message} with `status`. */
void cf_send_error(h2o_req_t *req, int status, const char *code, const char *message);
/** Sends a JSON document (dumps it compactly into the request pool); does not take the reference. */
void cf_send_json(h2o_req_t *req, int status, json_t *doc);
/**
 * Ends a request whose client went away (its work already cancelled) with a 499. Nobody reads it; sending it lets
 * h2o notice the closed socket and dispose of the request.
 */
void cf_send_client_gone(h2o_req_t *req);

/** Monotonic clock in nanoseconds. */
uint64_t cf_now_ns(void);

#endif
