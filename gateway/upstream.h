/* One exchange with a backend: pooled keep-alive connections, a connection cap with a queue, its own timer. */
#ifndef CF_UPSTREAM_H
#define CF_UPSTREAM_H

#include <stdint.h>
#include <h2o.h>
#include "config.h"

/** One backend's runtime state on one event loop (pools per server, the connection cap and its queue). */
typedef struct st_cf_upstream_t cf_upstream_t;

/**
 * Creates the runtime for `backend` (borrowed: it must outlive the upstream). Names are resolved asynchronously
 * through `getaddr_receiver` (registered on the loop's h2o_multithread queue).
 */
cf_upstream_t *cf_upstream_create(h2o_loop_t *loop, h2o_multithread_receiver_t *getaddr_receiver, const cf_backend_t *backend);
/** Closes pooled connections and frees the runtime. No exchange may be running on it. */
void cf_upstream_destroy(cf_upstream_t *u);
/** Exchanges running or queued (for draining and tests). */
size_t cf_upstream_active(const cf_upstream_t *u);

typedef struct st_cf_upstream_req_t {
    h2o_iovec_t method;    /* "GET", ... */
    h2o_iovec_t path;      /* path and query, already percent-encoded; no CR, LF, NUL or space (checked: 400-worthy) */
    h2o_iovec_t authority; /* Host header value; empty: host:port of the server */
    h2o_header_t *headers; /* extra request headers (name, value); none may hold CR, LF or NUL */
    size_t num_headers;
    h2o_iovec_t body;    /* sent with Content-Length when non-empty or when the method is POST/PUT/PATCH */
    uint64_t timeout_ms; /* for the whole exchange, from start to last body byte, queueing included */
    size_t max_response_body;
    int idempotent; /* may be retried once on a fresh connection if a pooled one was dead */
} cf_upstream_req_t;

typedef struct st_cf_upstream_res_t {
    const char *error;     /* NULL, or "timeout", "connect_failed", "reset", "too_large", "bad_response" */
    int status;            /* 0 when no response head arrived */
    h2o_header_t *headers; /* response headers (names lower-case tokens or strings) */
    size_t num_headers;
    h2o_iovec_t body; /* the whole body (decoded from chunked) */
} cf_upstream_res_t;

/** Called exactly once per exchange unless it was cancelled; `res` and everything in it are valid only during the call. */
typedef void (*cf_upstream_cb)(void *data, const cf_upstream_res_t *res);

typedef struct st_cf_exchange_t cf_exchange_t;

/** Starts an exchange; the callback is never invoked before this returns. The request is copied. */
cf_exchange_t *cf_upstream_start(cf_upstream_t *u, const cf_upstream_req_t *req, cf_upstream_cb cb, void *data);
/** Abandons an exchange: its connection is closed (never pooled), its timer unlinked, no callback follows. */
void cf_upstream_cancel(cf_exchange_t *x);

#endif
