/* JSON in, JSON out: shaping of each call's document and the merge into one answer (jansson). No I/O. */
#ifndef CF_MERGE_H
#define CF_MERGE_H

#include <jansson.h>
#include "cf_buf.h"
#include "config.h"

/** The outcome of one call as fanout saw it. */
typedef struct st_cf_outcome_t {
    json_t *value;      /* owned reference: the parsed upstream JSON; NULL when the call failed */
    const char *reason; /* NULL on success, else "timeout", "status_404", "invalid_json", ... (static string) */
    int status;         /* the upstream status, 0 when there was none */
} cf_outcome_t;

/**
 * Applies the call's target / allow / deny / rename to o->value, in that order, replacing o->value by a new
 * reference (the old one is released). The input document is never modified, so it may be shared (e.g. with the
 * cache); the result shares its unchanged leaves with it. Does nothing to a failed outcome (value NULL).
 *
 * - target ("data.items"): walks the fields through objects. When a field is missing, or a step is not an object,
 *   the value becomes JSON null: this is not a failure of the call.
 * - allow: keeps only the listed members of an object, or of each object element of an array; deny drops them.
 *   Array elements that are not objects, and values that are neither objects nor arrays, are kept as they are.
 *   Only one level of array is looked into (an array of arrays is kept as is). Member order is the upstream's.
 * - rename (from -> to), on an object or on each object element of an array: all renames apply at once (so
 *   {a: b, b: c} moves a to b and b to c); the renamed member takes the place of `from`, and when `to` already
 *   exists the renamed member wins and the original `to` is dropped.
 *
 * Returns 0, or -1 when out of memory (o->value then unchanged).
 */
int cf_shape(const cf_call_t *call, cf_outcome_t *o);

/**
 * Builds the answer of a route from the outcomes of its calls (route->num_calls of them, in config order).
 * Returns a new reference (NULL only when out of memory); the outcomes keep their own references, and the answer
 * shares values with them.
 *
 * - CF_MERGE_GROUP: an object with one member per call, named after the call, in config order. A failed call
 *   (whether optional or not) is null, or absent when its on_error is CF_ON_ERROR_OMIT.
 * - CF_MERGE_MERGE: first, a successful call whose value is not an object is turned into a failure (its value is
 *   released and set to NULL, reason "not_an_object", status kept), so callers must look at the outcomes again
 *   afterwards. Then the members of every successful call's object are merged in config order; a failed call
 *   contributes nothing (on_error does not apply). On a key collision CF_CONFLICT_FIRST keeps the first value and
 *   CF_CONFLICT_LAST the last (at the key's first position). CF_CONFLICT_ERROR means the config loader found no
 *   collision it could know of; a collision on keys it could not know of then keeps the first value, which is
 *   deterministic and favours the call listed first.
 *
 * Failed required calls are the caller's business (it answers with cf_failure_status / cf_failure_body), but they
 * are handled here like any failed call.
 */
json_t *cf_merge(const cf_route_t *route, cf_outcome_t *outcomes);

/**
 * For a failed required call, the status of the whole answer (docs/http.md, "The status of the answer"): an upstream 4xx -> that
 * same status; timeout or deadline -> 504; anything else (5xx, invalid_json, connect_failed, ...) -> 502.
 */
int cf_failure_status(const cf_outcome_t *o);

/**
 * For a failed required call: a new JSON body {"error": reason, "call": name, "status": upstream status or null},
 * members in that order. The status is o->status when non-zero (e.g. 200 for invalid_json), else null.
 */
json_t *cf_failure_body(const cf_call_t *call, const cf_outcome_t *o);

/**
 * The RFC 9209 §2.3 proxy error type for a failure reason:
 *   timeout, deadline -> http_response_timeout; connect_failed -> connection_refused (a connect timeout is
 *   reported the same, the reason does not tell them apart); reset -> connection_terminated; too_large ->
 *   http_response_body_size; invalid_json, not_an_object, bad_response -> http_protocol_error; missing_param,
 *   bad_param -> http_request_error (the upstream request could not be built from its input); circuit_open ->
 *   destination_unavailable; any other reason -> proxy_internal_error.
 * Returns NULL for "status_NNN": the upstream did answer, so there is no proxy error, only a received-status
 * (RFC 9209 §2.1.2; see cf_proxy_status_format). Returns a static string.
 */
const char *cf_proxy_status_error(const char *reason);

/**
 * Appends one RFC 9209 Proxy-Status list member for a failed call to `out`, e.g.
 * `conflux; error=http_response_timeout; details="orders"` or, for status_503,
 * `conflux; received-status=503; details="orders"`. received-status is added whenever the upstream answered
 * (o->status 100..999, e.g. `error=http_protocol_error; received-status=200` for invalid_json). The call name is
 * written as an RFC 8941 sf-string: '"' and '\' are escaped, and bytes outside printable ASCII become '?'.
 * Nothing separates it from what `out` already holds: the caller joins members with ", ".
 * Returns 0, or -1 without appending anything when the outcome is not a failure.
 */
int cf_proxy_status_format(cf_buf_t *out, const char *call_name, const cf_outcome_t *o);

#endif
