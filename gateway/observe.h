/* What the request path reports once a request ends: the record of record.h feeds metrics and the access log. */
#ifndef CF_OBSERVE_H
#define CF_OBSERVE_H

#include "record.h"

/**
 * Records a finished request: request and latency counters by route and status, call latencies, upstream results
 * by backend and reason, and an access-log line. Must not block: called on the event loop.
 */
void cf_observe_request(const cf_request_record_t *rec);

/**
 * Records a connection refused before libh2o saw a request (the HTTP/1 framing checks, an early answer to Expect:
 * 100-continue): an access-log line with the client, the status and `reason` (a static label), and no method, path
 * or route. The caller counts it in metrics.
 */
void cf_observe_refusal(h2o_socket_t *sock, int status, const char *reason);

#endif
