/* What conflux sends: its own errors and JSON answers, and the headers that report how each call of an answer went
 * (Server-Timing, Cache-Status, Proxy-Status, Conflux-Complete), all formatted here. */
#ifndef CF_RESPOND_H
#define CF_RESPOND_H

#include <h2o.h>
#include <jansson.h>
#include "cf_buf.h"
#include "record.h"

/** Sends a JSON document (written compactly into the request pool) with `status`; does not take the reference. */
void cf_send_json(h2o_req_t *req, int status, json_t *doc);
/** Sends conflux's own error: {"error": code, "message": message} with `status`. */
void cf_send_error(h2o_req_t *req, int status, const char *code, const char *message);
/**
 * Ends a request whose client went away (its work already cancelled) with a 499. Nobody reads it; sending it lets
 * h2o notice the closed socket and dispose of the request.
 */
void cf_send_client_gone(h2o_req_t *req);

/**
 * Adds the CORS fields of an answer on a route with the policy `cors` (any answer but a preflight's): Vary: Origin
 * always; when the request's Origin is allowed, Access-Control-Allow-Origin (that origin, or "*" for origins: ["*"]),
 * Access-Control-Allow-Credentials and Access-Control-Expose-Headers as the policy says.
 */
void cf_add_cors_headers(h2o_req_t *req, const cf_cors_t *cors);
/**
 * Answers a CORS preflight judged `verdict`: 204 with Access-Control-Allow-Origin, -Allow-Methods (`allowed`),
 * -Allow-Headers, -Max-Age and -Allow-Credentials as the policy says; or 403 {"error": "cors_denied"} saying what was
 * refused (without echoing what the client sent). Both vary on Origin and the two request fields.
 */
void cf_send_cors_preflight(h2o_req_t *req, const cf_cors_t *cors, cf_cors_verdict_t verdict, unsigned allowed);

/**
 * Adds the headers of an aggregated answer from its calls' records (in config order): Server-Timing (each call's
 * duration and outcome, then the total), Cache-Status (one member per call the cache answered), Proxy-Status (one
 * member per failed call it reports) and Conflux-Complete (false when any call failed).
 */
void cf_add_call_headers(h2o_req_t *req, const cf_call_record_t *calls, size_t num_calls, uint64_t total_ns);
/** Adds Proxy-Status for the failed calls among `calls`, when there is any to report. */
void cf_add_proxy_status(h2o_req_t *req, const cf_call_record_t *calls, size_t num_calls);

/**
 * Appends one RFC 9209 Proxy-Status list member for a call named `name` that failed with `reason`, e.g.
 * `conflux; error=http_response_timeout; details="orders"` (the error type of cf_reason_proxy_error) or, for
 * status_503, `conflux; received-status=503; details="orders"`. received-status is added whenever the upstream
 * answered (`status` 100..999, e.g. `error=http_protocol_error; received-status=200` for invalid_json). The name is
 * written as an RFC 8941 sf-string: '"' and '\' are escaped, and bytes outside printable ASCII become '?'. Nothing
 * separates it from what `out` already holds: the caller joins members with ", ". Returns 0, or -1 without appending
 * anything when there is nothing to report: CF_REASON_NONE, or a reason Proxy-Status does not report (cancelled).
 */
int cf_proxy_status_format(cf_buf_t *out, const char *name, cf_reason_t reason, int status);

/** Appends an RFC 9211 Cache-Status member for a call named `name`: `conflux; hit; ttl=27; detail="profile"`. */
void cf_cache_status_format(cf_buf_t *out, const char *name, const cf_cache_report_t *report);

/**
 * Appends one Server-Timing member (W3C Server Timing): `name;dur=12.3;desc="hit"` (milliseconds with one decimal);
 * desc is left out when NULL.
 */
void cf_server_timing_format(cf_buf_t *out, const char *name, uint64_t duration_ns, const char *desc);

#endif
