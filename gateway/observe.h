/* What the request path reports once a request ends: one record that feeds metrics and the access log. */
#ifndef CF_OBSERVE_H
#define CF_OBSERVE_H

#include <stdint.h>
#include <h2o.h>
#include "config.h"
#include "reason.h"

/** One upstream call of a request, as it ended. */
typedef struct st_cf_call_record_t {
    const char *name;     /* the call's name; for a proxy route, the backend's */
    const char *backend;  /* the backend's name */
    int status;           /* upstream status, 0 when none arrived */
    cf_reason_t reason;   /* CF_REASON_NONE on success */
    const char *cache;    /* NULL when the call has no cache policy, else "hit", "miss", "stale", "coalesced" */
    uint64_t duration_ns; /* 0 when it never started */
} cf_call_record_t;

/** One client request, as it ended (or as conflux answered it without a route). */
typedef struct st_cf_request_record_t {
    h2o_req_t *req;          /* method, path, client address; valid during the call */
    const cf_route_t *route; /* NULL when no route matched (404, 405, 400, 431, 503) */
    int status;              /* the status sent; 499 when the client went away first */
    uint64_t duration_ns;    /* from the handler's start to the answer */
    const cf_call_record_t *calls;
    size_t num_calls;
} cf_request_record_t;

struct st_cf_worker_t;

/**
 * Records a finished request: request and latency counters by route and status, call latencies, upstream results
 * by backend and reason, and an access-log line. Must not block: called on the event loop.
 */
void cf_observe_request(struct st_cf_worker_t *w, const cf_request_record_t *rec);

#endif
