/* A pass-through route: the client's request forwarded to one backend, its answer returned as is. */
#ifndef CF_PROXY_H
#define CF_PROXY_H

#include <h2o.h>
#include "runtime.h"
#include "trace.h"

/**
 * Runs a pass-through route for `req`, admitted on worker `w` (its slot reserved by cf_slot_admit). The reference to
 * table `t` (the route's) is passed on to the request, which releases it when disposed.
 */
void cf_proxy_start(cf_worker_t *w, cf_table_t *t, const cf_route_t *route, h2o_req_t *req, const cf_route_match_t *m,
                    const cf_trace_t *trace);

#endif
