/* One client request on a route with calls: the calls, their deadline and cancellation, and the one answer. */
#ifndef CF_FANOUT_H
#define CF_FANOUT_H

#include <h2o.h>
#include "runtime.h"
#include "trace.h"

/**
 * Runs a route with calls for `req`, admitted on worker `w` (its slot reserved by cf_slot_admit). The reference to
 * table `t` (the route's) is passed on to the request, which releases it when disposed. `claims`: the request's verified
 * token's ({jwt.NAME} in templates), of which the request takes a reference; NULL without auth.
 */
void cf_fanout_start(cf_worker_t *w, cf_table_t *t, const cf_route_t *route, h2o_req_t *req, const cf_route_match_t *m,
                     const cf_trace_t *trace, json_t *claims);

#endif
