/* A route's call plan: which calls wait for which, in what stages they run, by when each ends, the keys they merge. */
#ifndef CF_PLAN_H
#define CF_PLAN_H

#include <stdint.h>
#include <stdio.h>
#include "config.h"

/** What is wrong with a route's calls, and where: the call, and its key (NULL: the call as a whole). */
typedef struct st_cf_plan_error_t {
    size_t call;     /* index in the route's calls */
    const char *key; /* "path", "encoded_slash" or NULL; a static string */
    char msg[768];
} cf_plan_error_t;

/**
 * Plans the calls of a decoded route (at most CF_CONFIG_MAX_CALLS of them, each with its path parsed and its backend
 * set; a proxy route has none): binds every placeholder of every call's template to a route parameter or to another
 * call of the route (filling the parts' `rest` and `call_index`, each foreach call's source `call_index`, and each call's
 * sorted `deps`, a foreach call's source among them; a nested foreach, a field of a foreach call, {item} or {items}
 * where they do not belong, and a foreach call in `merge: merge` are refused), then checks that no
 * calls wait for each other in a cycle and, for `merge: merge` without on_conflict, that no two calls can give the same
 * key. Returns 0, or -1 with the first problem in `err`; what was filled in is freed with the config.
 */
int cf_plan_route(cf_route_t *r, cf_plan_error_t *err);

/**
 * The time from the start of a request by which its calls end at the latest, each call's timeout counted from the end
 * of its slowest dependency: the longest chain of timeouts through the dependencies (0 without calls). A foreach call
 * counts as ceil(ceil(max_items / batch) / concurrency) rounds of its timeout, the most it can take. After
 * cf_plan_route.
 */
uint64_t cf_plan_longest_chain(const cf_route_t *r);

/** Prints each route's resolved call plan (stages, dependencies, timeouts, deadline, merge keys) for --explain. */
void cf_plan_explain(const cf_config_t *c, FILE *out);

#endif
