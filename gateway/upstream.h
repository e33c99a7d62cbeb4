/* One exchange with a backend: reused keep-alive connections, a connection cap with a queue, its own timer. */
#ifndef CF_UPSTREAM_H
#define CF_UPSTREAM_H

#include <stdint.h>
#include <h2o.h>
#include "cf_timeouts.h"
#include "config.h"
#include "reason.h"
#include "trace.h"

/**
 * One backend's runtime state on one event loop: an idle list per server of keep-alive connections that stay on the
 * event loop (reused most recent first; closed after 2s idle, or as soon as the server closes one or sends unasked
 * bytes on it), round-robin server choice, the max_connections cap (connections connecting, in use or idle: an idle
 * one is closed to make room for a new one) and the FIFO queue of exchanges waiting for a connection.
 */
typedef struct st_cf_upstream_t cf_upstream_t;

/**
 * Creates the runtime for `backend`, with one reference. The backend is read during the call only: the upstream keeps
 * copies of what it needs, so it may outlive the config (a cache flight holding it across a reload). Host names are
 * resolved asynchronously through `getaddr_receiver` (registered on the loop's h2o_multithread queue with
 * h2o_hostinfo_getaddr_receiver) at once and every backend->resolve_every_ms (0: never; each connect resolves it
 * instead), every address becoming a server of the rotation; IP addresses need no resolution. Timers are linked through `timeouts`,
 * the loop's (borrowed); the loop, `timeouts` and `getaddr_receiver` must outlive every reference.
 */
cf_upstream_t *cf_upstream_create(h2o_loop_t *loop, cf_timeouts_t *timeouts, h2o_multithread_receiver_t *getaddr_receiver,
                                  const cf_backend_t *backend);
/**
 * Takes a reference. References are counted without atomics: an upstream and its references belong to its loop's
 * thread. Whoever starts an exchange holds a reference until the exchange is delivered or cancelled.
 */
void cf_upstream_retain(cf_upstream_t *u);
/**
 * Drops a reference. The last one closes idle connections and frees the runtime; by then no exchange may be running,
 * queued or awaiting its callback on it (cf_upstream_active() == 0). Safe from inside an upstream callback.
 */
void cf_upstream_release(cf_upstream_t *u);
/**
 * Sets the connection cap of this runtime (the process's max_connections divided among the event-loop threads, each
 * of which has its own runtime); 0: no cap, the open-file limit is the only bound (a connect that finds no descriptor
 * fails its exchange with CF_REASON_CONNECT_FAILED at once). Call right after cf_upstream_create.
 */
void cf_upstream_set_max_connections(cf_upstream_t *u, size_t max);
/** Exchanges started and not yet delivered or cancelled: running, queued, or with a callback still due. */
size_t cf_upstream_active(const cf_upstream_t *u);

/**
 * One request. Everything is copied by cf_upstream_start. A request that could change the HTTP/1.1 framing fails
 * with CF_REASON_BAD_REQUEST before any connection is made: a method that is not a token; a path that is empty, does not
 * start with "/" (nor is "*"), or holds a control byte, a space or DEL; an authority holding such a byte; a header
 * name that is not a token; a header value holding CR, LF, NUL or another control byte but HTAB (RFC 9110 5.5, 5.6.2).
 */
typedef struct st_cf_upstream_req_t {
    h2o_iovec_t method;    /* "GET", ...; for "HEAD" no response body is expected */
    h2o_iovec_t path;      /* path and query, already percent-encoded */
    h2o_iovec_t authority; /* Host header value; empty: host:port of the chosen server */
    h2o_header_t *headers; /* extra request headers (orig_name used when set); Host, Content-Length,
                              Transfer-Encoding and Connection belong to the framing and are dropped */
    size_t num_headers;
    h2o_iovec_t body;          /* sent with Content-Length when non-empty or when the method is POST/PUT/PATCH */
    uint64_t timeout_ms;       /* the whole exchange, start to last body byte, queueing included; 0: the backend's */
    size_t max_response_body;  /* a larger body fails with CF_REASON_TOO_LARGE, its connection closed (limits.max_response_body) */
    int idempotent;            /* may be retried once, on a fresh connection, when a reused idle connection failed
                                  before any response byte, and only before the timeout */
    int prepend_base_path;     /* prepend the chosen server's base_path to `path` (right with servers of different
                                  base paths); 0: the caller has put a base path in `path` itself */
    size_t avoid_server;       /* 1 + the index of a server to pass over when the rotation lands on it and the backend
                                  has others (a retry or a hedge goes elsewhere); 0: none */
    const cf_trace_t *trace;   /* the client request's identity (read during cf_upstream_start only), or NULL: when set,
                                  the exchange sends traceparent with a span id of its own, the tracestate if any and
                                  X-Request-Id, and drops those three from `headers` (never two of one) */
    h2o_mem_pool_t *span_pool; /* with a sampled trace, where cf_attempt keeps its spans' details (the memory the
                                  attempt's spans live as long as); NULL: none kept */
} cf_upstream_req_t;

/**
 * The outcome. `reason` is CF_REASON_NONE for a complete response (of any status), else exactly one of:
 * - CF_REASON_TIMEOUT: timeout_ms passed (queued, connecting, waiting for the head, or reading a trickling body);
 * - CF_REASON_CONNECT_FAILED: refused, unreachable, name not resolved, or the backend's connect_timeout passed;
 * - CF_REASON_RESET: the connection was lost before the response was complete, which includes a body shorter than its
 *   Content-Length and a chunked body cut off (even right after a complete chunk);
 * - CF_REASON_TOO_LARGE: the body, declared or received, exceeds max_response_body;
 * - CF_REASON_BAD_RESPONSE: not HTTP/1.x, a malformed or folded head, a head over 64KiB (1xx responses included), conflicting
 *   Content-Length values, both Content-Length and Transfer-Encoding, a Transfer-Encoding other than chunked or from
 *   an HTTP/1.0 server, a malformed chunk (a size that is not 1 to 15 hex digits, a malformed extension or trailer
 *   field, a line not ending in CRLF, data not followed by CRLF), a 101 (never asked for); see common/cf_h1resp.h;
 * - CF_REASON_BAD_REQUEST: see cf_upstream_req_t;
 * - CF_REASON_CIRCUIT_OPEN: every server of the backend is out of rotation (its breaker open, or health checks took it
 *   out); nothing was sent.
 * On error, headers and body are empty, and status is that of the head when one had arrived (e.g. with too_large).
 * 1xx informational responses are skipped.
 */
typedef struct st_cf_upstream_res_t {
    cf_reason_t reason;
    int status;            /* 0 when no response head arrived */
    h2o_header_t *headers; /* name: lower-case (an h2o token when known); orig_name: as received */
    size_t num_headers;
    h2o_iovec_t body; /* the whole body (decoded from chunked); empty for HEAD, 204, 304; base never NULL */
} cf_upstream_res_t;

/**
 * Called exactly once per exchange unless it was cancelled, always from the event loop (a zero-delay timer): never
 * from inside cf_upstream_start, cf_upstream_cancel or h2o's I/O callbacks. `res` and everything in it are valid only
 * during the call; the exchange is freed when it returns. The callback may start and cancel other exchanges.
 */
typedef void (*cf_upstream_cb)(void *data, const cf_upstream_res_t *res);

typedef struct st_cf_exchange_t cf_exchange_t;

/**
 * Starts an exchange, or queues it (FIFO) while max_connections are busy. The request is copied. The handle stays
 * valid until the callback returns or cf_upstream_cancel is called, whichever comes first.
 */
cf_exchange_t *cf_upstream_start(cf_upstream_t *u, const cf_upstream_req_t *req, cf_upstream_cb cb, void *data);
/** The span id its traceparent carries; 0 when the request had no trace (or was refused before it was written). */
uint64_t cf_upstream_span_id(const cf_exchange_t *x);
/**
 * 1 + the index in the rotation of the server an exchange runs on (for cf_upstream_req_t.avoid_server); 0 while it
 * waits in the queue (no server chosen yet). The rotation changes when names are resolved again: an index is a hint.
 */
size_t cf_upstream_server(const cf_exchange_t *x);
/** Whether the exchange still waits in the queue for a connection (max_connections busy): nothing of it has been sent. */
int cf_upstream_queued(const cf_exchange_t *x);
/**
 * Abandons an exchange, whether running, queued, or finished with its callback still due: its connection is closed
 * (never kept idle), its timers are unlinked, no callback follows, the handle is freed. Not from its own callback.
 */
void cf_upstream_cancel(cf_exchange_t *x);

#endif
