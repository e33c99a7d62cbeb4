/* Why a call failed: one enum, and one table that gives each reason its name, Proxy-Status error type, status and
 * metric label. */
#ifndef CF_REASON_H
#define CF_REASON_H

#include <stddef.h>

/**
 * The failure reasons of a call (docs/http.md, "Failure reasons"). CF_REASON_NONE is success. A reason is data: code
 * compares the enum, and everything that is spelled out comes from cf_reasons.
 */
typedef enum en_cf_reason_t {
    CF_REASON_NONE = 0,
    CF_REASON_TIMEOUT,        /* the call's own timeout passed */
    CF_REASON_DEADLINE,       /* the route's deadline passed while the call ran or waited */
    CF_REASON_CONNECT_FAILED, /* refused, unreachable, not resolved, connect timeout, TLS handshake */
    CF_REASON_RESET,          /* the connection was lost before the answer was complete */
    CF_REASON_TOO_LARGE,      /* the body is over max_response_body */
    CF_REASON_BAD_RESPONSE,   /* not HTTP/1.x, or framing that could be read two ways */
    CF_REASON_BAD_REQUEST,    /* conflux refused to write the request (a byte would change its framing) */
    CF_REASON_STATUS,         /* the upstream answered with a status that is not 2xx: "status_NNN", NNN kept apart */
    CF_REASON_INVALID_JSON,   /* a 2xx answer whose body is not JSON */
    CF_REASON_NOT_AN_OBJECT,  /* merge: merge, and the (shaped) answer is not an object */
    CF_REASON_MISSING_PARAM,  /* a placeholder of the call's path has no value */
    CF_REASON_BAD_PARAM,      /* a value from another call's answer may not fill a path segment */
    CF_REASON_CIRCUIT_OPEN,   /* every server of the backend is out of rotation (breaker open, or unhealthy) */
    CF_REASON_CANCELLED,      /* stopped: a required call failed first, or the client went away */
    CF_REASON_NOT_AN_ARRAY,   /* foreach: the source field, or a batch's answer (after shaping), is not an array of the
                                 expected length */
    CF_NUM_REASONS
} cf_reason_t;

/** What a reason is called and how it is reported. */
typedef struct st_cf_reason_info_t {
    const char *name;        /* as in Server-Timing, the error body and the access log ("status_NNN" for STATUS) */
    const char *proxy_error; /* the RFC 9209 §2.3 error type in Proxy-Status; NULL: none (see cf_reason_proxy_error) */
    int required_status;     /* the status of the answer when a required call fails so; 0 for STATUS (see below) */
    const char *metric;      /* the `result` label of conflux_upstream_results_total; NULL for STATUS (by class) */
} cf_reason_info_t;

/** Indexed by cf_reason_t. */
extern const cf_reason_info_t cf_reasons[CF_NUM_REASONS];

/** The longest text a reason is written as ("status_NNN"), with its NUL. */
#define CF_REASON_TEXT_SIZE 16

/**
 * The reason as text: its name, or "status_NNN" for CF_REASON_STATUS with the upstream's `status` (written into buf).
 * Returns a static string or buf.
 */
const char *cf_reason_text(cf_reason_t reason, int status, char buf[CF_REASON_TEXT_SIZE]);

/**
 * The status of the whole answer when a required call fails with `reason` (docs/http.md, "The status of the answer"):
 * an upstream 4xx (CF_REASON_STATUS) gives that same status, any other upstream status 502; other reasons their row.
 */
int cf_reason_required_status(cf_reason_t reason, int status);

/**
 * The RFC 9209 error type for a reason, or NULL when Proxy-Status names none: for CF_REASON_STATUS the upstream did
 * answer, so received-status says it all (§2.1.2); a cancelled call is not reported at all.
 */
const char *cf_reason_proxy_error(cf_reason_t reason);

/** How many `result` labels there are: one per reason (CF_REASON_NONE's is "ok"), then the six status classes. */
#define CF_NUM_RESULTS (CF_NUM_REASONS + 6)

/**
 * The `result` label of an upstream exchange, as an index below CF_NUM_RESULTS: CF_REASON_NONE's ("ok") for a complete
 * exchange, or for a pass-through answer of status 4xx/5xx its class; the reason's own for a failure, and for
 * CF_REASON_STATUS the status class ("status_1xx" ... "status_5xx", "status_other").
 */
size_t cf_reason_result(cf_reason_t reason, int status);
/** The label of a result index: "ok", "timeout", ..., "status_5xx" (a static string). */
const char *cf_reason_result_label(size_t result);
/** cf_reason_result_label(cf_reason_result(reason, status)). */
const char *cf_reason_metric(cf_reason_t reason, int status);

#endif
