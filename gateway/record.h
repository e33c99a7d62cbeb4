/* What the request path reports when a call or a request ends: one record feeds the answer's headers (respond.c), the
 * metrics and the access log (observe.c). */
#ifndef CF_RECORD_H
#define CF_RECORD_H

#include <stdint.h>
#include <h2o.h>
#include "config.h"
#include "reason.h"
#include "trace.h"

/** How the cache answered a cached call. */
typedef enum en_cf_cache_state_t {
    CF_CACHE_NONE = 0,  /* the cache did not answer it (not a cached call, or cancelled first) */
    CF_CACHE_HIT,       /* a fresh entry (local, or from memcached for the process that looked it up) */
    CF_CACHE_MISS,      /* the call's own upstream request */
    CF_CACHE_STALE,     /* an expired entry: stale_while_revalidate, or stale_if_error */
    CF_CACHE_COALESCED, /* another call's upstream request for the same key */
    CF_NUM_CACHE_STATES
} cf_cache_state_t;

/** "hit", "miss", "stale", "coalesced"; NULL for CF_CACHE_NONE. */
static inline const char *cf_cache_state_name(cf_cache_state_t state)
{
    static const char *const names[CF_NUM_CACHE_STATES] = {NULL, "hit", "miss", "stale", "coalesced"};
    return (unsigned)state < CF_NUM_CACHE_STATES ? names[state] : NULL;
}

/** What Cache-Status (RFC 9211) reports of a cached call, as the cache answered it. */
typedef struct st_cf_cache_report_t {
    cf_cache_state_t state;
    int fwd_status; /* the status of the upstream request made for it, 0 when none */
    int stored;     /* its upstream answer was stored */
    int has_ttl;    /* ttl_s is meaningful: an entry answered, or the answer was stored */
    int64_t ttl_s;  /* freshness left in seconds (negative: stale by that much) */
} cf_cache_report_t;

/** One upstream call of a request, as it ended. */
typedef struct st_cf_call_record_t {
    const char *name;              /* the call's name; for a proxy route, the backend's */
    const char *backend;           /* the backend's name */
    cf_reason_t reason;            /* CF_REASON_NONE on success */
    int status;                    /* upstream status, 0 when none arrived */
    uint64_t duration_ns;          /* 0 when it never started */
    cf_cache_report_t cache;       /* state CF_CACHE_NONE when the cache did not answer it */
    unsigned attempts;             /* upstream exchanges the call started itself (0: answered by the cache, or never started) */
    unsigned hedges;               /* of those, copies of a slow attempt (hedge_after) */
    unsigned budget_exhausted : 1; /* a retry or a hedge was not sent because the backend's retry budget was spent */
    unsigned hedge_won : 1;        /* the answer came from a copy */
    unsigned foreach : 1;          /* a foreach call: attempts are its elements' together, and elements are counted */
    const cf_spans_t *spans;       /* the span ids of the attempts counted (the first CF_TRACE_MAX_SPANS); NULL: none */
    size_t elements, elements_ok;  /* foreach: the source array's elements (0 when it never got one), and those answered */
    unsigned elements_tried : 1;   /* foreach: the elements were gone over (not refused as more than max_items) */
    cf_reason_t element_reason;    /* foreach: why its first failed element failed (CF_REASON_NONE: none failed) */
    int element_status;            /* and that element's upstream status */
} cf_call_record_t;

/** One client request, as it ended (or as conflux answered it without a route). */
typedef struct st_cf_request_record_t {
    h2o_req_t *req;          /* method, path, client address; valid during the call */
    const cf_route_t *route; /* NULL when no route matched (404, 405, 400, 431, 503) */
    int status;              /* the status sent; 499 when the client went away first */
    uint64_t duration_ns;    /* from the handler's start to the answer */
    const cf_call_record_t *calls;
    size_t num_calls;
    const cf_trace_t *trace; /* its identity; NULL when refused before it was read (431) */
    int jwt_error;           /* a cf_jwt_error_t: why its bearer token was refused (a 401); 0: none */
} cf_request_record_t;

#endif
