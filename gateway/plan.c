/* A route's call plan: which calls wait for which, in what stages they run, by when each ends, the keys they merge. */
/*
 * It works on decoded structs (config.c decodes and checks each key; this file checks what only the calls of a route
 * taken together can get wrong) and knows nothing of YAML: a problem comes back as a call, a key and a message, which
 * config.c turns into "file:line:col: routes[i].calls[j].key: message".
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "cf_buf.h"
#include "cf_units.h"
#include "jsonout.h"
#include "plan.h"

/* Records a problem of call `call` at `key` (NULL: the call itself) in `err`; returns -1. */
static int plan_error(cf_plan_error_t *err, size_t call, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int plan_error(cf_plan_error_t *err, size_t call, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->call = call;
    err->key = key;
    return -1;
}

static int find_call(const cf_route_t *r, const char *name, size_t len)
{
    for (size_t i = 0; i < r->num_calls; ++i)
        if (strlen(r->calls[i].name) == len && memcmp(r->calls[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

/* The k-th part of a call's templates: its path's, then its body's (NULL for body text); *key: the key it is under. */
static cf_tpl_part_t *call_part(cf_call_t *call, size_t k, const char **key)
{
    *key = k < call->path.num_parts ? "path" : "body";
    if (k < call->path.num_parts)
        return &call->path.parts[k];
    cf_body_part_t *b = &call->body.parts[k - call->path.num_parts];
    return b->kind == CF_BODY_VALUE || b->kind == CF_BODY_INTERPOLATED ? &b->tpl : NULL;
}

/* Binds call j's foreach: to its source call (which it then waits for); `items`: its {item}/{items} placeholders. */
static int bind_foreach(cf_route_t *r, size_t j, size_t items, char *uses, cf_plan_error_t *err)
{
    cf_call_t *call = &r->calls[j];
    const char *src = call->foreach.source, *dot = strchr(src, '.');
    size_t len = dot != NULL ? (size_t)(dot - src) : strlen(src);
    int idx = find_call(r, src, len);
    if (idx < 0) {
        cf_buf_t b = CF_BUF_INIT;
        for (size_t i = 0; i < r->num_calls; ++i)
            cf_buf_appendf(&b, "%s%s", i ? ", " : "", r->calls[i].name);
        plan_error(err, j, "foreach", "unknown call \"%.*s\" (calls: %s)", (int)len, src, b.base);
        cf_buf_free(&b);
        return -1;
    }
    if ((size_t)idx == j)
        return plan_error(err, j, "foreach", "a call cannot go over its own answer");
    if (r->calls[idx].foreach.source != NULL)
        return plan_error(err, j, "foreach",
                          "\"%s\" is itself a foreach call: nested foreach is not supported (go over the array of a plain "
                          "call)",
                          r->calls[idx].name);
    if (items == 0)
        return plan_error(err, j, "path", "a foreach call's path%s must use %s, or every request would be the same",
                          call->foreach.batch != 0 ? "" : " or body",
                          call->foreach.batch != 0 ? "{items}" : "{item} or {item.field}");
    if (r->merge == CF_MERGE_MERGE)
        return plan_error(err, j, "foreach",
                          "a foreach call's answer is an array, which merge: merge cannot merge (use merge: group)");
    call->foreach.call_index = idx;
    uses[idx] = 1;
    return 0;
}

/* Binds the placeholders of every call's templates (path and body) to route parameters and other calls; fills in the
 * dependencies. */
static int bind_templates(cf_route_t *r, cf_plan_error_t *err)
{
    char uses[CF_CONFIG_MAX_CALLS];
    for (size_t j = 0; j < r->num_calls; ++j) {
        cf_call_t *call = &r->calls[j];
        size_t items = 0; /* {item} and {items} parts */
        memset(uses, 0, sizeof(uses));
        for (size_t k = 0; k < call->path.num_parts + call->body.num_parts; ++k) {
            const char *key;
            cf_tpl_part_t *part = call_part(call, k, &key);
            if (part == NULL)
                continue;
            char name[128];
            snprintf(name, sizeof(name), "%.*s", (int)part->len, part->text);
            switch (part->kind) {
            case CF_TPL_LITERAL:
            case CF_TPL_QUERY:
            case CF_TPL_HEADER: /* template.c lower-cases the name */
                break;
            case CF_TPL_JWT:
                if (r->auth == NULL)
                    return plan_error(err, j, key,
                                      "{jwt.%s} needs the route's token: add auth: {jwt: ...} to the route or at the top level",
                                      name);
                break;
            case CF_TPL_PARAM: {
                int idx = cf_pattern_param_index(&r->pattern, part->text, part->len), whole;
                if (idx < 0 && key[0] == 'b' && (whole = find_call(r, part->text, part->len)) >= 0) {
                    /* "{friends}" in a body: another call's whole answer, with its JSON type (a foreach call's array
                     * can only be used so) */
                    part->kind = CF_TPL_CALL;
                    part->call_index = whole;
                    uses[whole] = 1;
                    break;
                }
                if (idx < 0) {
                    cf_buf_t b = CF_BUF_INIT;
                    if (find_call(r, part->text, part->len) >= 0) {
                        cf_buf_appendf(&b, "%s is a call: name one of its fields, e.g. {%s.id} (its whole answer may go in a body)",
                                       name, name);
                    } else if (r->pattern.num_params != 0) {
                        cf_buf_appends(&b, "the route has ");
                        for (size_t i = 0; i < r->pattern.num_params; ++i)
                            cf_buf_appendf(&b, "%s%s", i ? ", " : "", r->pattern.param_names[i]);
                    } else {
                        cf_buf_appends(&b, "the route path has no parameters");
                    }
                    plan_error(err, j, key, "unknown route parameter {%s} (%s)", name, b.base);
                    cf_buf_free(&b);
                    return -1;
                }
                part->rest = idx == r->pattern.rest_index;
                break;
            }
            case CF_TPL_CALL: {
                int idx = find_call(r, part->text, part->len);
                if (idx >= 0 && r->calls[idx].foreach.source != NULL)
                    return plan_error(err, j, key,
                                      "{%s...}: \"%s\" is a foreach call, whose answer is an array of its elements' "
                                      "answers: no field of it can be used (its whole answer may go in a body: \"{%s}\")",
                                      name, name, name);
                if (idx < 0) {
                    cf_buf_t b = CF_BUF_INIT;
                    if (cf_pattern_param_index(&r->pattern, part->text, part->len) >= 0) {
                        cf_buf_appendf(&b, "%s is a route parameter, which has no fields", name);
                    } else {
                        cf_buf_appends(&b, "calls: ");
                        for (size_t i = 0; i < r->num_calls; ++i)
                            cf_buf_appendf(&b, "%s%s", i ? ", " : "", r->calls[i].name);
                    }
                    plan_error(err, j, key, "unknown call \"%s\" (%s)", name, b.base);
                    cf_buf_free(&b);
                    return -1;
                }
                part->call_index = idx;
                uses[idx] = 1;
                break;
            }
            case CF_TPL_ITEM:
                if (call->foreach.source == NULL)
                    return plan_error(err, j, key, "{%s} is the element of foreach:, which this call does not have", name);
                if (call->foreach.batch != 0)
                    return plan_error(err, j, key,
                                      "{%s} is one element, but with batch: a request asks for several: use {items} "
                                      "(e.g. /users?ids={items})",
                                      name);
                ++items;
                break;
            case CF_TPL_ITEMS:
                if (key[0] == 'b')
                    return plan_error(err, j, key, "{items} goes in the path (e.g. /users?ids={items}), not in a body");
                if (call->foreach.source == NULL || call->foreach.batch == 0)
                    return plan_error(err, j, key,
                                      "{items} is the elements of a batch, which goes with foreach: and batch: (without "
                                      "batch:, use {item})");
                if (items++ != 0)
                    return plan_error(err, j, key, "{items} may appear only once");
                break;
            }
        }
        if (call->foreach.source != NULL && bind_foreach(r, j, items, uses, err) != 0)
            return -1;
        if (call->encoded_slash == CF_ENCODED_SLASH_KEEP) {
            /* only a value that fills one path segment can hold an encoded '/': say so rather than ignore the key */
            int fills_segment = 0;
            for (size_t k = 0; k < call->path.num_parts; ++k) {
                const cf_tpl_part_t *part = &call->path.parts[k];
                fills_segment |= part->kind != CF_TPL_LITERAL && !part->in_query && !(part->kind == CF_TPL_PARAM && part->rest);
            }
            if (!fills_segment)
                return plan_error(err, j, "encoded_slash",
                                  "keep has no effect: no value of %s fills a path segment (query values and {name*} "
                                  "captures are not concerned)",
                                  call->path.src);
        }
        size_t n = 0;
        for (size_t i = 0; i < r->num_calls; ++i)
            n += uses[i];
        if (n != 0) {
            call->deps = calloc(n, sizeof(*call->deps));
            for (size_t i = 0; i < r->num_calls; ++i)
                if (uses[i])
                    call->deps[call->num_deps++] = i;
        }
    }
    return 0;
}

/*
 * Depth-first search along the dependencies from call i. On finding a cycle, writes it as "a -> b -> a" (each call
 * waits for the next) into `out` and returns 1 with *start set to the call where the cycle closes.
 */
static int find_cycle(const cf_route_t *r, size_t i, char *color, size_t *stack, size_t depth, cf_buf_t *out, size_t *start)
{
    color[i] = 1;
    stack[depth] = i;
    for (size_t d = 0; d < r->calls[i].num_deps; ++d) {
        size_t dep = r->calls[i].deps[d];
        if (color[dep] == 1) {
            size_t from = 0;
            while (stack[from] != dep)
                ++from;
            for (size_t k = from; k <= depth; ++k)
                cf_buf_appendf(out, "%s -> ", r->calls[stack[k]].name);
            cf_buf_appends(out, r->calls[dep].name);
            *start = dep;
            return 1;
        }
        if (color[dep] == 0 && find_cycle(r, dep, color, stack, depth + 1, out, start))
            return 1;
    }
    color[i] = 2;
    return 0;
}

static int check_cycles(const cf_route_t *r, cf_plan_error_t *err)
{
    char color[CF_CONFIG_MAX_CALLS] = {0};
    size_t stack[CF_CONFIG_MAX_CALLS], start = 0;
    for (size_t i = 0; i < r->num_calls; ++i) {
        cf_buf_t b = CF_BUF_INIT;
        if (color[i] == 0 && find_cycle(r, i, color, stack, 0, &b, &start)) {
            plan_error(err, start, "path", "the calls wait for each other in a cycle: %s", b.base);
            cf_buf_free(&b);
            return -1;
        }
        cf_buf_free(&b);
    }
    return 0;
}

/*
 * The timing plan of a route's calls (a DAG by now): for each call its stage (0 without dependencies, else one more
 * than its latest dependency) and the time from the start of the request by which it ends at the latest (its timeout
 * after its slowest dependency). Memoized, so that a dense graph costs O(calls * deps), not one walk per path.
 */
typedef struct st_plan_t {
    uint64_t finish[CF_CONFIG_MAX_CALLS];
    size_t stage[CF_CONFIG_MAX_CALLS];
    char done[CF_CONFIG_MAX_CALLS];
} plan_t;

/* The requests of a foreach call at most: one per element, or per batch of elements. */
static uint64_t foreach_requests(const cf_call_t *call)
{
    uint64_t per = call->foreach.batch != 0 ? call->foreach.batch : 1;
    return (call->foreach.max_items + per - 1) / per;
}

/* The rounds of its timeout a foreach call takes at the longest: every request taking the whole timeout, `concurrency`
 * of them at a time (a slot refills at once, so it is never more). 1 for a plain call. */
static uint64_t call_rounds(const cf_call_t *call)
{
    if (call->foreach.source == NULL)
        return 1;
    return (foreach_requests(call) + call->foreach.concurrency - 1) / call->foreach.concurrency;
}

/* How long a call may take once it starts: its timeout, or for a foreach call that many rounds of it. */
static uint64_t call_span(const cf_call_t *call)
{
    return call_rounds(call) * call->timeout_ms;
}

static void plan_visit(const cf_route_t *r, size_t i, plan_t *p)
{
    if (p->done[i])
        return;
    uint64_t before = 0;
    size_t stage = 0;
    for (size_t d = 0; d < r->calls[i].num_deps; ++d) {
        size_t dep = r->calls[i].deps[d];
        plan_visit(r, dep, p);
        if (p->finish[dep] > before)
            before = p->finish[dep];
        if (p->stage[dep] + 1 > stage)
            stage = p->stage[dep] + 1;
    }
    p->finish[i] = before + call_span(&r->calls[i]);
    p->stage[i] = stage;
    p->done[i] = 1;
}

static void plan_route(const cf_route_t *r, plan_t *p)
{
    memset(p->done, 0, sizeof(p->done));
    for (size_t i = 0; i < r->num_calls; ++i)
        plan_visit(r, i, p);
}

/*
 * The keys a call can put into a `merge: merge` document. With allow: they are known: the allowed fields, renamed.
 * Without it the call may produce any key but the denied and renamed-away ones (a "cofinite" set).
 */
typedef struct st_keyset_t {
    int any;           /* 1: every key except `keys`; 0: exactly `keys` */
    const char **keys; /* borrowed from the call */
    size_t n;
} keyset_t;

static int keyset_has(const keyset_t *s, const char *key)
{
    for (size_t i = 0; i < s->n; ++i)
        if (strcmp(s->keys[i], key) == 0)
            return 1;
    return 0;
}

static void keyset_build(const cf_call_t *call, keyset_t *s)
{
    size_t ndefault = call->default_value != NULL ? json_object_size(call->default_value) : 0;
    s->keys = calloc(call->allow.n + call->deny.n + call->num_rename + ndefault + 1, sizeof(*s->keys));
    s->n = 0;
    s->any = call->allow.n == 0;
    if (!s->any) {
        for (size_t i = 0; i < call->allow.n; ++i) {
            const char *k = call->allow.items[i];
            for (size_t r = 0; r < call->num_rename; ++r)
                if (strcmp(call->rename[r].from, k) == 0)
                    k = call->rename[r].to;
            if (!keyset_has(s, k))
                s->keys[s->n++] = k;
        }
    } else {
        /* excluded: the denied keys and the renamed-away ones, except those that a rename produces again */
        for (size_t i = 0; i < call->deny.n; ++i)
            s->keys[s->n++] = call->deny.items[i];
        for (size_t r = 0; r < call->num_rename; ++r)
            if (!keyset_has(s, call->rename[r].from))
                s->keys[s->n++] = call->rename[r].from;
        for (size_t r = 0; r < call->num_rename; ++r) {
            for (size_t i = 0; i < s->n; ++i) {
                if (strcmp(s->keys[i], call->rename[r].to) == 0) {
                    s->keys[i] = s->keys[--s->n];
                    break;
                }
            }
        }
    }
    /* a failed call gives its default's members instead */
    for (void *it = ndefault != 0 ? json_object_iter(call->default_value) : NULL; it != NULL;
         it = json_object_iter_next(call->default_value, it)) {
        const char *k = json_object_iter_key(it);
        if (!s->any && !keyset_has(s, k)) {
            s->keys[s->n++] = k;
        } else if (s->any) {
            for (size_t i = 0; i < s->n; ++i) {
                if (strcmp(s->keys[i], k) == 0) {
                    s->keys[i] = s->keys[--s->n];
                    break;
                }
            }
        }
    }
}

/*
 * Whether two calls can produce the same key. Returns 0 when they cannot, 1 with *key set to one key both produce, or 2
 * when both may produce any key.
 */
static int keysets_collide(const keyset_t *a, const keyset_t *b, const char **key)
{
    if (a->any && b->any)
        return 2;
    if (a->any) {
        const keyset_t *t = a;
        a = b;
        b = t;
    }
    for (size_t i = 0; i < a->n; ++i) {
        if (b->any ? !keyset_has(b, a->keys[i]) : keyset_has(b, a->keys[i])) {
            *key = a->keys[i];
            return 1;
        }
    }
    return 0;
}

/*
 * The next pair of calls that can give the same key, from the pair (*i, *j) on, in the order (0, 1), (0, 2), (1, 2),
 * (0, 3)...: returns keysets_collide's kind with *i and *j set, or 0 when no pair is left. Start at (0, 1); go on from
 * (*i + 1, *j).
 */
static int next_collision(const keyset_t *sets, size_t n, size_t *i, size_t *j, const char **key)
{
    for (; *j < n; ++*j, *i = 0)
        for (; *i < *j; ++*i) {
            int kind = keysets_collide(&sets[*i], &sets[*j], key);
            if (kind != 0)
                return kind;
        }
    return 0;
}

static int check_merge(const cf_route_t *r, cf_plan_error_t *err)
{
    if (r->merge != CF_MERGE_MERGE || r->on_conflict != CF_CONFLICT_ERROR)
        return 0;
    keyset_t sets[CF_CONFIG_MAX_CALLS];
    for (size_t k = 0; k < r->num_calls; ++k)
        keyset_build(&r->calls[k], &sets[k]);
    size_t i = 0, j = 1;
    const char *key = NULL;
    int kind = next_collision(sets, r->num_calls, &i, &j, &key);
    if (kind == 2)
        plan_error(err, j, NULL,
                   "calls \"%s\" and \"%s\" may both produce any key in merge: merge: set allow: on them, or on_conflict: "
                   "first|last on the route",
                   r->calls[i].name, r->calls[j].name);
    else if (kind == 1)
        plan_error(err, j, NULL,
                   "calls \"%s\" and \"%s\" can both produce \"%s\" in merge: merge: narrow allow:/deny:/rename:, or set "
                   "on_conflict: first|last on the route",
                   r->calls[i].name, r->calls[j].name, key);
    for (size_t k = 0; k < r->num_calls; ++k)
        free(sets[k].keys);
    return kind != 0 ? -1 : 0;
}

/* The call that ends the latest (the first of them on a tie), with *finish set to when: the end of the longest chain. */
static size_t last_call(const cf_route_t *r, const plan_t *p, uint64_t *finish)
{
    size_t last = 0;
    *finish = 0;
    for (size_t k = 0; k < r->num_calls; ++k) {
        if (p->finish[k] > *finish) {
            *finish = p->finish[k];
            last = k;
        }
    }
    return last;
}

int cf_plan_route(cf_route_t *r, cf_plan_error_t *err)
{
    if (bind_templates(r, err) != 0 || check_cycles(r, err) != 0 || check_merge(r, err) != 0)
        return -1;
    return 0;
}

uint64_t cf_plan_longest_chain(const cf_route_t *r)
{
    plan_t plan;
    uint64_t finish;
    plan_route(r, &plan);
    last_call(r, &plan, &finish);
    return finish;
}

/* ---- --explain ---- */

static void explain_keys(FILE *out, const keyset_t *s)
{
    if (s->any && s->n == 0) {
        fputs("any key", out);
        return;
    }
    fputs(s->any ? "any key but " : "", out);
    for (size_t i = 0; i < s->n; ++i)
        fprintf(out, "%s%s", i ? ", " : "", s->keys[i]);
}

/* The retry and hedge policy of a backend, a line each (nothing when it has none). */
static void explain_attempts(FILE *out, const char *indent, const cf_backend_t *b)
{
    char d[32];
    if (b->retries != 0) {
        fprintf(out, "%sretries %u on ", indent, (unsigned)b->retries);
        const char *sep = "";
        for (int r = 0; r != CF_NUM_REASONS; ++r)
            if ((b->retry_on >> r & 1) != 0) {
                fprintf(out, "%s%s", sep, cf_reasons[r].name);
                sep = ", ";
            }
        for (int s = 100; s != 600; ++s)
            if (cf_backend_retries_status(b, s)) {
                fprintf(out, "%sstatus_%d", sep, s);
                sep = ", ";
            }
        fprintf(out, " (idempotent requests; backoff 25ms doubling to 250ms, jittered; another server when there is one; none "
                     "after the call's timeout or the deadline)\n");
        if (b->per_try_timeout_ms != 0)
            fprintf(out, "%seach attempt at most %s (per_try_timeout; an attempt cut by it is retried)\n", indent,
                    cf_format_duration(b->per_try_timeout_ms, d, sizeof(d)));
    }
    if (b->hedge_after_ms != 0) {
        if (b->hedge_percentile != 0)
            fprintf(out, "%shedge after p%u of recent latencies (%s until 100 samples)", indent, (unsigned)b->hedge_percentile,
                    cf_format_duration(b->hedge_after_ms, d, sizeof(d)));
        else
            fprintf(out, "%shedge after %s", indent, cf_format_duration(b->hedge_after_ms, d, sizeof(d)));
        fprintf(out, ", at most %u cop%s; the first answer wins\n", (unsigned)b->max_hedges, b->max_hedges == 1 ? "y" : "ies");
    }
    if (b->retries != 0 || b->hedge_after_ms != 0)
        fprintf(out, "%sretry budget: max(%u, %u%% of the calls in flight) retries and hedges in flight, per thread\n", indent,
                (unsigned)b->retry_budget.min, (unsigned)b->retry_budget.percent);
}

/* The backend's per-server policies: its circuit breaker and its health checks, one line each when it has them. */
static void explain_servers(FILE *out, const char *indent, const cf_backend_t *b)
{
    char d[32], d2[32];
    unsigned char bin[16];
    for (size_t i = 0; i != b->num_servers; ++i) {
        if (inet_pton(AF_INET, b->servers[i].host, bin) != 1 && inet_pton(AF_INET6, b->servers[i].host, bin) != 1) {
            fprintf(out, "%shost names resolved every %s, off the loop; each address a server of the rotation\n", indent,
                    cf_format_duration(b->resolve_every_ms, d, sizeof(d)));
            break;
        }
    }
    if (b->breaker.failures != 0)
        fprintf(out,
                "%scircuit_breaker: %" PRIu64 " failed attempts in a row take a server out for %s (doubled while its probe "
                "fails, up to %s), then one probe; every server out: circuit_open at once\n",
                indent, b->breaker.failures, cf_format_duration(b->breaker.open_for_ms, d, sizeof(d)),
                cf_format_duration(CF_BREAKER_MAX_OPEN_MS, d2, sizeof(d2)));
    if (b->health.path != NULL)
        fprintf(out,
                "%shealth: GET %s on each server every %s (timeout %s): out after %" PRIu64
                " failures in a row, back after %" PRIu64 " passes\n",
                indent, b->health.path, cf_format_duration(b->health.interval_ms, d, sizeof(d)),
                cf_format_duration(b->health.timeout_ms, d2, sizeof(d2)), b->health.unhealthy, b->health.healthy);
}

/* A call's method and body: one line. */
static void explain_body(FILE *out, const cf_call_t *call)
{
    int unsafe = call->method == CF_METHOD_POST || call->method == CF_METHOD_PATCH;
    fprintf(out, "        method %s%s", cf_method_name(call->method), unsafe ? " (not idempotent: never retried nor hedged)" : "");
    if (call->body.num_parts != 0) {
        size_t holes = 0;
        for (size_t i = 0; i < call->body.num_parts; ++i)
            holes += call->body.parts[i].kind != CF_BODY_TEXT;
        fprintf(out, "; sends a JSON body (Content-Type: application/json)");
        if (call->body.num_parts == 1 && call->body.parts[0].kind == CF_BODY_REQUEST)
            fputs(": the client's body, as it came", out);
        else if (call->body.uses_request_body)
            fprintf(out, " from a template with %zu value%s, the client's body among them", holes, holes == 1 ? "" : "s");
        else if (holes != 0)
            fprintf(out, " from a template with %zu value%s", holes, holes == 1 ? "" : "s");
        else
            fputs(", fixed", out);
    }
    fputc('\n', out);
}

static void explain_call(FILE *out, const cf_route_t *r, const plan_t *plan, const cf_call_t *call)
{
    char d[32], d2[32];
    const cf_server_t *s = &call->backend->servers[0];
    fprintf(out, "      %s: %s  (backend %s: http://%s%s%s:%u%s%s)\n", call->name, call->path.src, call->backend->name,
            strchr(s->host, ':') != NULL ? "[" : "", s->host, strchr(s->host, ':') != NULL ? "]" : "", s->port, s->base_path,
            call->backend->num_servers > 1 ? ", ..." : "");
    fprintf(out, "        timeout %s", cf_format_duration(call->timeout_ms, d, sizeof(d)));
    if (call->required) {
        fputs(", required: a failure fails the request", out);
    } else if (call->default_value != NULL) {
        cf_buf_t text = CF_BUF_INIT;
        cf_json_write(&text, call->default_value);
        fprintf(out, ", optional: on error the default %.*s%s", text.len > 200 ? 200 : (int)text.len, text.base,
                text.len > 200 ? "..." : "");
        cf_buf_free(&text);
    } else {
        fprintf(out, ", optional: on error %s", call->on_error == CF_ON_ERROR_OMIT ? "the key is omitted" : "the key is null");
    }
    fputc('\n', out);
    if (call->foreach.source != NULL) {
        const cf_foreach_t *fe = &call->foreach;
        fprintf(out, "        foreach %s: one request per ", fe->source);
        if (fe->batch != 0)
            fprintf(out, "%" PRIu64 " elements ({items}, batch %" PRIu64 ")", fe->batch, fe->batch);
        else
            fputs("element ({item})", out);
        fprintf(out,
                ", up to %" PRIu64 " requests (max_items %" PRIu64 "; more fails the call with too_large), concurrency %" PRIu64
                " (a slot refills as soon as a request ends)\n",
                foreach_requests(call), fe->max_items, fe->concurrency);
        fprintf(out,
                "        n elements take at least ceil(n/%" PRIu64 ") rounds of their answer time; at most %" PRIu64
                " rounds of timeout %s = %s\n",
                fe->batch != 0 ? fe->batch * fe->concurrency : fe->concurrency, call_rounds(call),
                cf_format_duration(call->timeout_ms, d, sizeof(d)), cf_format_duration(call_span(call), d2, sizeof(d2)));
    }
    explain_attempts(out, "        ", call->backend);
    explain_servers(out, "        ", call->backend);
    if (call->encoded_slash == CF_ENCODED_SLASH_KEEP)
        fputs("        encoded_slash: keep: a '/' in a value that fills one path segment is sent as %2F; \".\", \"..\" and '\\' "
              "are still refused\n",
              out);
    if (call->method != CF_METHOD_GET || call->body.num_parts != 0)
        explain_body(out, call);
    if (call->cache.ttl_ms != 0) {
        char d2[32], d3[32];
        fprintf(out, "        cache: ttl %s, stale_while_revalidate %s, stale_if_error %s\n",
                cf_format_duration(call->cache.ttl_ms, d, sizeof(d)), cf_format_duration(call->cache.swr_ms, d2, sizeof(d2)),
                cf_format_duration(call->cache.sie_ms, d3, sizeof(d3)));
    }
    if (call->num_deps != 0) {
        fputs("        after ", out);
        for (size_t i = 0; i < call->num_deps; ++i)
            fprintf(out, "%s%s", i ? ", " : "", r->calls[call->deps[i]].name);
        fprintf(out, " (starts when %s, finishes by %s at the latest)\n", call->num_deps > 1 ? "they end" : "it ends",
                cf_format_duration(plan->finish[call->index], d, sizeof(d)));
    }
    if (call->num_target != 0 || call->allow.n != 0 || call->deny.n != 0 || call->num_rename != 0) {
        fputs("        keeps", out);
        if (call->num_target != 0) {
            fputs(" the sub-document ", out);
            for (size_t i = 0; i < call->num_target; ++i)
                fprintf(out, "%s%s", i ? "." : "", call->target[i]);
        }
        if (call->allow.n != 0) {
            fputs(call->num_target != 0 ? ", only fields " : " only fields ", out);
            for (size_t i = 0; i < call->allow.n; ++i)
                fprintf(out, "%s%s", i ? ", " : "", call->allow.items[i]);
        }
        if (call->deny.n != 0) {
            fputs(call->num_target != 0 ? ", without fields " : " all but fields ", out);
            for (size_t i = 0; i < call->deny.n; ++i)
                fprintf(out, "%s%s", i ? ", " : "", call->deny.items[i]);
        }
        if (call->num_rename != 0) {
            fputs(call->num_target != 0 || call->allow.n != 0 || call->deny.n != 0 ? "; renames " : " everything; renames ", out);
            for (size_t i = 0; i < call->num_rename; ++i)
                fprintf(out, "%s%s -> %s", i ? ", " : "", call->rename[i].from, call->rename[i].to);
        }
        fputc('\n', out);
    }
}

/* Prints the chain of calls that ends the latest at call `i`: "profile (300ms) -> recs (400ms)". */
static void explain_chain(FILE *out, const cf_route_t *r, const plan_t *plan, size_t i)
{
    char d[32];
    const cf_call_t *call = &r->calls[i];
    if (call->num_deps != 0) {
        size_t slowest = call->deps[0];
        for (size_t k = 1; k < call->num_deps; ++k)
            if (plan->finish[call->deps[k]] > plan->finish[slowest])
                slowest = call->deps[k];
        explain_chain(out, r, plan, slowest);
        fputs(" -> ", out);
    }
    if (call_rounds(call) > 1)
        fprintf(out, "%s (%" PRIu64 " x %s)", call->name, call_rounds(call), cf_format_duration(call->timeout_ms, d, sizeof(d)));
    else
        fprintf(out, "%s (%s)", call->name, cf_format_duration(call->timeout_ms, d, sizeof(d)));
}

static void explain_merge(FILE *out, const cf_route_t *r)
{
    if (r->merge == CF_MERGE_GROUP) {
        fputs("  response: {", out);
        for (size_t i = 0; i < r->num_calls; ++i)
            fprintf(out, "%s\"%s\": ...", i ? ", " : "", r->calls[i].name);
        fputs("}  (merge: group, one key per call)\n", out);
        return;
    }
    static const char *const conflict[] = {"a key two calls can both give is a config error",
                                           "on a conflict the first call in config order wins",
                                           "on a conflict the last call in config order wins"};
    fprintf(out, "  response: the calls' top-level keys merged in config order (merge: merge; %s)\n", conflict[r->on_conflict]);
    keyset_t sets[CF_CONFIG_MAX_CALLS];
    for (size_t i = 0; i < r->num_calls; ++i) {
        keyset_build(&r->calls[i], &sets[i]);
        fprintf(out, "    %s gives: ", r->calls[i].name);
        explain_keys(out, &sets[i]);
        fputc('\n', out);
    }
    const char *key = NULL;
    int kind, any = 0;
    for (size_t i = 0, j = 1; (kind = next_collision(sets, r->num_calls, &i, &j, &key)) != 0; ++i) {
        if (any++ == 0)
            fputs("    collisions:\n", out);
        if (kind == 2)
            fprintf(out, "      %s and %s may both give any key\n", r->calls[i].name, r->calls[j].name);
        else
            fprintf(out, "      %s and %s both give \"%s\"\n", r->calls[i].name, r->calls[j].name, key);
    }
    if (!any)
        fputs("    collisions: none\n", out);
    for (size_t i = 0; i < r->num_calls; ++i)
        free(sets[i].keys);
}

void cf_plan_explain(const cf_config_t *c, FILE *out)
{
    char d[32], m[64];
    fprintf(out, "config %s: %zu route%s, %zu backend%s\n", c->filename, c->num_routes, c->num_routes == 1 ? "" : "s",
            c->num_backends, c->num_backends == 1 ? "" : "s");
    for (size_t i = 0; i < c->num_listen; ++i) {
        const char *h = c->listen[i].host != NULL ? c->listen[i].host : "0.0.0.0";
        fprintf(out, "listen %s%s%s:%u\n", strchr(h, ':') ? "[" : "", h, strchr(h, ':') ? "]" : "", c->listen[i].port);
    }
    if (c->admin_host != NULL)
        fprintf(out, "admin %s%s%s:%u\n", strchr(c->admin_host, ':') ? "[" : "", c->admin_host,
                strchr(c->admin_host, ':') ? "]" : "", c->admin_port);
    /* the trace every request carries, and where its spans go */
    fprintf(out, "tracing: new traces sampled at %g, %s", c->tracing.sample,
            c->tracing.parent_based ? "a continued trace keeps the client's sampled flag" : "continued traces too");
    if (c->tracing.otlp != NULL) {
        char d2[32];
        fprintf(out,
                "; sampled spans exported to %s (service %s), batches of %" PRIu64 " or every %s, %s a request, %" PRIu64
                " spans queued at most (then dropped)\n",
                c->tracing.otlp, c->tracing.service_name, c->tracing.batch, cf_format_duration(c->tracing.delay_ms, d, sizeof(d)),
                cf_format_duration(c->tracing.timeout_ms, d2, sizeof(d2)), c->tracing.queue);
    } else {
        fputs("; no span export\n", out);
    }
    for (size_t i = 0; i < c->num_routes; ++i) {
        const cf_route_t *r = &c->routes[i];
        fprintf(out, "\nroute %s  [%s]  (%s:%d)\n", r->pattern.src, cf_methods_format(r->methods, m, sizeof(m)), c->filename,
                r->line);
        if (r->cors != NULL)
            cf_cors_explain(out, "  ", r->cors, r->methods, r->cors == r->cors_own ? "its own" : "the default");
        if (r->rate_limit != NULL)
            cf_ratelimit_explain(out, "  ", r->rate_limit);
        if (r->auth != NULL)
            cf_auth_explain(out, "  ", r->auth, r->auth == r->auth_own ? "its own" : "the default");
        if (r->proxy != NULL) {
            const cf_server_t *s = &r->proxy->servers[0];
            fprintf(out, "  proxy -> %s (%s%s), timeout %s\n", r->proxy->name, s->url, r->proxy->num_servers > 1 ? ", ..." : "",
                    cf_format_duration(r->proxy->timeout_ms, d, sizeof(d)));
            explain_servers(out, "    ", r->proxy);
            fprintf(out, "  deadline %s%s\n", cf_format_duration(r->deadline_ms, d, sizeof(d)),
                    r->deadline_ms < r->proxy->timeout_ms ? " (shorter than the timeout: it bounds the exchange)" : "");
            explain_attempts(out, "  ", r->proxy);
            continue;
        }
        /* the longest chain, for the deadline line */
        plan_t plan;
        uint64_t longest;
        plan_route(r, &plan);
        size_t last = last_call(r, &plan, &longest);
        fprintf(out, "  deadline %s; the longest chain of timeouts is %s: ", cf_format_duration(r->deadline_ms, d, sizeof(d)),
                cf_format_duration(longest, m, sizeof(m)));
        explain_chain(out, r, &plan, last);
        if (r->deadline_ms < longest)
            fputs("\n    (calls still running at the deadline fail with \"deadline\")", out);
        for (size_t k = 0; k < r->num_calls; ++k)
            if (call_rounds(&r->calls[k]) > 1) {
                fputs("\n    (a foreach call counts as its most rounds of timeout; set deadline: to what clients can wait)", out);
                break;
            }
        fputc('\n', out);
        if (r->forward_headers.n != 0 || r->forward_query.n != 0) {
            fputs("  forwards", out);
            if (r->forward_headers.n != 0) {
                fputs(" headers ", out);
                for (size_t k = 0; k < r->forward_headers.n; ++k)
                    fprintf(out, "%s%s", k ? ", " : "", r->forward_headers.items[k]);
            }
            if (r->forward_query.n != 0) {
                fputs(r->forward_headers.n != 0 ? "; query " : " query ", out);
                for (size_t k = 0; k < r->forward_query.n; ++k)
                    fprintf(out, "%s%s", k ? ", " : "", r->forward_query.items[k]);
            }
            fputc('\n', out);
        }
        size_t stages = 0;
        for (size_t k = 0; k < r->num_calls; ++k)
            if (plan.stage[k] + 1 > stages)
                stages = plan.stage[k] + 1;
        for (size_t st = 0; st < stages; ++st) {
            size_t n = 0;
            for (size_t k = 0; k < r->num_calls; ++k)
                n += plan.stage[k] == st;
            fprintf(out, "  stage %zu: %zu call%s%s\n", st, n, n == 1 ? "" : "s",
                    st == 0
                        ? (n > 1 ? ", in parallel at once" : ", at once")
                        : (n > 1 ? ", in parallel, each as soon as its dependencies end" : ", as soon as its dependencies end"));
            for (size_t k = 0; k < r->num_calls; ++k)
                if (plan.stage[k] == st)
                    explain_call(out, r, &plan, &r->calls[k]);
        }
        explain_merge(out, r);
    }
}
