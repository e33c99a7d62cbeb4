/* Dispatch: the catch-all handler's work for one request: bounds on its head, its route, admission, then a fan-out or a
 * pass-through. */
#ifndef CF_DISPATCH_H
#define CF_DISPATCH_H

#include <h2o.h>
#include "runtime.h"

/** Bounds on a request head (a field, and all of them with the path): beyond them, 431. */
#define CF_MAX_HEADER_FIELD (16 * 1024)
#define CF_MAX_HEADER_BLOCK (64 * 1024)

/** The catch-all request handler: routes, then runs a fan-out or a proxy exchange. `w` is the request's worker. */
int cf_gateway_handle(cf_worker_t *w, h2o_req_t *req);

/**
 * Routes a request head before its body is read (for an early answer to Expect: 100-continue): 0 when a route takes
 * `method` on the raw `path` (without the query), else 404, 405 with the Allow value in `allow`, 400 for a path the
 * router refuses (a target that is not origin-form among them), or 401 when the route needs a token and the head has no
 * Authorization field (`has_authorization` 0); a token that is there is judged with the request. Touches nothing.
 */
int cf_gateway_precheck(cf_worker_t *w, const char *method, size_t mlen, const char *path, size_t plen, int has_authorization,
                        char *allow, size_t allowlen);

#endif
