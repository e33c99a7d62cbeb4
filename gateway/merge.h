/* JSON in, JSON out: shaping of each call's document and the merge into one answer (jansson). No I/O. */
#ifndef CF_MERGE_H
#define CF_MERGE_H

#include <jansson.h>
#include "config.h"
#include "reason.h"

/** The outcome of one call as fanout saw it. */
typedef struct st_cf_outcome_t {
    json_t *value;      /* owned reference: the parsed upstream JSON; when the call failed, its default or NULL */
    cf_reason_t reason; /* CF_REASON_NONE on success */
    int status;         /* the upstream status, 0 when there was none (for CF_REASON_STATUS, the NNN of status_NNN) */
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
 *   released and replaced by the call's default, or NULL; reason CF_REASON_NOT_AN_OBJECT, status kept), so callers
 *   must look at the outcomes again afterwards. Then the members of every call's object are merged in config order
 *   (a failed call's default included); a failed call without one contributes nothing (on_error does not apply).
 *   On a key collision CF_CONFLICT_FIRST keeps the first value and CF_CONFLICT_LAST the last (at the key's first
 *   position). CF_CONFLICT_ERROR means the config loader found no collision it could know of; a collision on keys it
 *   could not know of then keeps the first value, which is deterministic and favours the call listed first.
 *
 * Failed required calls are the caller's business (it answers with cf_failure_status / cf_failure_body), but they
 * are handled here like any failed call.
 */
json_t *cf_merge(const cf_route_t *route, cf_outcome_t *outcomes);

/**
 * For a failed required call, the status of the whole answer (cf_reason_required_status; docs/http.md, "The status
 * of the answer"): an upstream 4xx -> that same status; timeout or deadline -> 504; anything else (5xx, invalid_json,
 * connect_failed, ...) -> 502.
 */
int cf_failure_status(const cf_outcome_t *o);

/**
 * For a failed required call: a new JSON body {"error": reason, "call": name, "status": upstream status or null},
 * members in that order; the reason as cf_reason_text writes it ("status_503"). The status is o->status when non-zero
 * (e.g. 200 for invalid_json), else null.
 */
json_t *cf_failure_body(const cf_call_t *call, const cf_outcome_t *o);

#endif
