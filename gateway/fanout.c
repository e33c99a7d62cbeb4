/* One client request on a route with calls: start every ready call at once, enforce the deadline, cancel on
 * disconnect, and finish exactly once (whichever of completion, deadline, required failure or abort comes first). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "body.h"
#include "cache.h"
#include "cf_http.h"
#include "fanout.h"
#include "jsonout.h"
#include "merge.h"
#include "observe.h"
#include "respond.h"

enum { CALL_WAITING, CALL_RUNNING, CALL_DONE };

struct st_fanout_t;
struct st_call_t;

/* One upstream request of a call: a plain call's own, or one element (or one batch of elements) of a foreach call. */
struct st_exchange_t {
    struct st_call_t *c;
    cf_attempt_t attempt;      /* its upstream request (retries, hedges), while running */
    unsigned attempts, hedges; /* what its own upstream request took (attempt.h); 0 when it made none */
    unsigned budget_exhausted : 1, hedge_won : 1;
    cf_cache_wait_t *cw;         /* while waiting for the cache (a cached call's upstream request, maybe another's) */
    h2o_timeout_entry_t timeout; /* its own timeout while it waits for another call's upstream request */
    cf_cache_report_t cache;     /* how the cache answered (CF_CACHE_NONE: not a cached call, or not answered) */
    size_t first, count;         /* foreach: the elements it asks for; count 0: the slot is free */
    size_t cursor;               /* {items}: the next element to write */
};

/*
 * A foreach call's elements (docs/http.md, "foreach"): `concurrency` exchanges at most, each taking the next element
 * (or batch) the moment it ends, so the requests in flight never come in waves. Memory per element: its slot in
 * `results` and one byte; per request in flight: one exchange.
 */
struct st_foreach_t {
    json_t *source;              /* borrowed from the source call's outcome: the array */
    json_t *results;             /* owned: one entry per element, in element order; null until it is answered */
    unsigned char *failed;       /* per element: it failed */
    size_t n;                    /* elements */
    size_t next;                 /* the first element not started */
    size_t done, ok;             /* elements ended; of those, answered */
    cf_reason_t first_reason;    /* of the first element that failed */
    int first_status;            /* its upstream status */
    struct st_exchange_t *slots; /* min(concurrency, requests) of them */
    size_t num_slots;
    unsigned attempts, hedges; /* of every element's exchanges */
    unsigned budget_exhausted : 1, hedge_won : 1;
    cf_spans_t spans;         /* the first of their span ids */
    unsigned pumping : 1;     /* foreach_pump() is starting elements: an element that ends at once only frees its slot */
    unsigned over_budget : 1; /* the elements' answers together went over limits.max_response_body: the call fails */
    size_t bytes;             /* of the elements' answers read from upstreams so far */
};

struct st_call_t {
    struct st_fanout_t *f;
    const cf_call_t *conf;
    int state;
    size_t waiting_on;       /* dependencies not done yet */
    struct st_exchange_t x;  /* a plain call's upstream request */
    struct st_foreach_t *fe; /* a foreach call's elements, once it started; NULL for a plain call */
    size_t elements;         /* foreach: the source array's length, once known (also when it fails the call) */
    uint64_t start_ns, end_ns;
};

struct st_query_param_t {
    h2o_iovec_t name, value; /* decoded (form-urlencoded) */
};

struct st_fanout_t {
    h2o_req_t *req;
    const cf_trace_t *trace; /* the request's identity, in its pool */
    cf_worker_t *w;
    cf_table_t *table;
    const cf_route_t *route;
    cf_route_match_t match;
    struct st_query_param_t *query;
    size_t num_query;
    struct st_call_t *calls;
    cf_outcome_t *outcomes; /* indexed like calls; what cf_merge consumes */
    size_t pending;         /* calls not done */
    struct st_call_t *failed_required;
    h2o_timeout_entry_t deadline;
    uint64_t deadline_at; /* loop ms */
    cf_watch_t watch;
    cf_slot_t slot;
    h2o_header_t *headers; /* the client's headers named by forward_headers, gathered once (forward_headers()) */
    size_t num_headers;
    int headers_ready;
    uint64_t start_ns;
    json_t *claims; /* the verified token's claims (a reference), NULL: the route has no auth */
    int finished;
};

static void start_call(struct st_call_t *c);
static void finish(struct st_fanout_t *f);

/* --- client query ------------------------------------------------------------------------------------------- */

/* Decodes application/x-www-form-urlencoded text into the pool; returns -1 on a bad %-escape. */
static int form_decode(h2o_mem_pool_t *pool, const char *s, size_t len, h2o_iovec_t *out)
{
    char *d = h2o_mem_alloc_pool(pool, len + 1);
    size_t n;
    if (cf_form_decode(s, len, d, &n, 0) != 0)
        return -1;
    d[n] = '\0';
    *out = h2o_iovec_init(d, n);
    return 0;
}

static int parse_query(struct st_fanout_t *f)
{
    h2o_req_t *req = f->req;
    if (req->query_at == SIZE_MAX)
        return 0;
    const char *p = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    size_t cap = 1;
    for (const char *q = p; q < end; ++q)
        cap += *q == '&';
    f->query = h2o_mem_alloc_pool(&req->pool, sizeof(*f->query) * cap);
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        if (amp == NULL)
            amp = end;
        if (amp > p) {
            const char *eq = memchr(p, '=', (size_t)(amp - p));
            const char *name_end = eq != NULL ? eq : amp;
            struct st_query_param_t *qp = &f->query[f->num_query];
            if (form_decode(&req->pool, p, (size_t)(name_end - p), &qp->name) != 0 ||
                form_decode(&req->pool, eq != NULL ? eq + 1 : amp, eq != NULL ? (size_t)(amp - eq - 1) : 0, &qp->value) != 0)
                return -1;
            ++f->num_query;
        }
        p = amp + 1;
    }
    return 0;
}

static const struct st_query_param_t *find_query(struct st_fanout_t *f, const char *name, size_t len, size_t from)
{
    for (size_t i = from; i < f->num_query; ++i)
        if (h2o_memis(f->query[i].name.base, f->query[i].name.len, name, len))
            return &f->query[i];
    return NULL;
}

/* --- template values ------------------------------------------------------------------------------------------ */

/* Turns a JSON scalar into text for a URL: a string as is, a number or a boolean as the answer writes it (but an
 * integral real without the ".0" that keeps it a real in JSON); objects, arrays and null have no text. */
static int json_scalar_text(h2o_mem_pool_t *pool, json_t *v, const char **val, size_t *len)
{
    char buf[CF_JSON_SCALAR_MAX];
    size_t n;
    if (json_is_string(v)) {
        *val = json_string_value(v);
        *len = json_string_length(v);
        return CF_TPL_OK;
    }
    if ((n = cf_json_format_scalar(v, 0, buf)) == 0) /* 3.0 goes as 3, as it always has */
        return CF_TPL_MISSING;
    h2o_iovec_t s = h2o_strdup(pool, buf, n);
    *val = s.base;
    *len = s.len;
    return CF_TPL_OK;
}

/* The foreach element `i` of call c, walked down `fields`; NULL when a field is missing or a step is not an object. */
static json_t *element_field(const struct st_call_t *c, size_t i, char *const *fields, size_t num_fields)
{
    json_t *v = json_array_get(c->fe->source, i);
    for (size_t k = 0; v != NULL && k < num_fields; ++k)
        v = json_is_object(v) ? json_object_get(v, fields[k]) : NULL;
    return v;
}

static int lookup_value(void *ctx, const cf_tpl_part_t *part, const char **val, size_t *len)
{
    struct st_exchange_t *x = ctx;
    struct st_fanout_t *f = x->c->f;
    switch (part->kind) {
    case CF_TPL_PARAM: {
        int i = cf_pattern_param_index(&f->route->pattern, part->text, part->len);
        if (i < 0 || (size_t)i >= f->match.num_params)
            return CF_TPL_MISSING;
        *val = f->match.params[i].val;
        *len = f->match.params[i].len;
        return CF_TPL_OK;
    }
    case CF_TPL_QUERY: {
        const struct st_query_param_t *qp = find_query(f, part->text, part->len, 0);
        if (qp == NULL)
            return CF_TPL_MISSING;
        *val = qp->value.base;
        *len = qp->value.len;
        return CF_TPL_OK;
    }
    case CF_TPL_HEADER: {
        ssize_t i = h2o_find_header_by_str(&f->req->headers, part->text, part->len, -1);
        if (i < 0)
            return CF_TPL_MISSING;
        *val = f->req->headers.entries[i].value.base;
        *len = f->req->headers.entries[i].value.len;
        return CF_TPL_OK;
    }
    case CF_TPL_JWT: {
        json_t *v = f->claims != NULL ? json_object_get(f->claims, part->text) : NULL;
        return v != NULL ? json_scalar_text(&f->req->pool, v, val, len) : CF_TPL_MISSING;
    }
    case CF_TPL_CALL: {
        if (part->call_index < 0 || (size_t)part->call_index >= f->route->num_calls)
            return CF_TPL_MISSING;
        json_t *v = f->outcomes[part->call_index].value;
        for (size_t i = 0; v != NULL && i < part->num_fields; ++i)
            v = json_is_object(v) ? json_object_get(v, part->fields[i]) : NULL;
        if (v == NULL)
            return CF_TPL_MISSING;
        return json_scalar_text(&f->req->pool, v, val, len);
    }
    case CF_TPL_ITEM: {
        if (x->c->fe == NULL || x->count == 0)
            return CF_TPL_MISSING;
        json_t *v = element_field(x->c, x->first, part->fields, part->num_fields);
        return v != NULL ? json_scalar_text(&f->req->pool, v, val, len) : CF_TPL_MISSING;
    }
    case CF_TPL_ITEMS: {
        if (x->c->fe == NULL || x->cursor >= x->first + x->count)
            return CF_TPL_END;
        json_t *v = element_field(x->c, x->cursor++, NULL, 0);
        return v != NULL ? json_scalar_text(&f->req->pool, v, val, len) : CF_TPL_MISSING;
    }
    default:
        return CF_TPL_MISSING;
    }
}

/* The template flags of a call's policy. */
static unsigned tpl_flags(const cf_call_t *conf)
{
    return conf->encoded_slash == CF_ENCODED_SLASH_KEEP ? CF_TPL_KEEP_ENCODED_SLASH : 0;
}

/* --- calls ---------------------------------------------------------------------------------------------------- */

static void foreach_pump(struct st_call_t *c);

static int call_failed(const struct st_fanout_t *f, const struct st_call_t *c)
{
    return f->outcomes[c - f->calls].reason != CF_REASON_NONE;
}

/* A failed call with a default: gives that value (to the answer and to the calls that use its fields); the failure
 * stays in the outcome's reason, so the headers and the counters still report it. A copy: the config's value is shared
 * by every thread, and jansson's reference counts read the count plainly before changing it atomically (a data race
 * under C11 when several threads take and drop references to one value). Failures only; a default is small. */
static void give_default(struct st_fanout_t *f, size_t i)
{
    cf_outcome_t *o = &f->outcomes[i];
    if (o->reason != CF_REASON_NONE && o->value == NULL && f->route->calls[i].default_value != NULL)
        o->value = json_deep_copy(f->route->calls[i].default_value);
}

static void complete_call(struct st_call_t *c)
{
    struct st_fanout_t *f = c->f;
    size_t index = (size_t)(c - f->calls);
    cf_outcome_t *o = &f->outcomes[index];
    c->state = CALL_DONE;
    --f->pending;
    if (f->route->merge == CF_MERGE_MERGE && o->value != NULL && !json_is_object(o->value)) {
        /* nothing to merge: a failure now, so that a required call fails the request and a default stands in */
        json_decref(o->value);
        o->value = NULL;
        o->reason = CF_REASON_NOT_AN_OBJECT;
    }
    give_default(f, index);
    if (call_failed(f, c) && c->conf->required) {
        if (f->failed_required == NULL)
            f->failed_required = c;
        finish(f);
        return;
    }
    /* a dependent starts the moment its last input arrives; nothing else waits for it */
    for (size_t i = 0; i < f->route->num_calls && !f->finished; ++i) {
        struct st_call_t *d = &f->calls[i];
        if (d->state != CALL_WAITING)
            continue;
        for (size_t j = 0; j < d->conf->num_deps; ++j) {
            if (d->conf->deps[j] == index) {
                if (--d->waiting_on == 0)
                    start_call(d);
                break;
            }
        }
    }
    if (!f->finished && f->pending == 0)
        finish(f);
}

static void fail_call(struct st_call_t *c, cf_reason_t reason, int status)
{
    cf_outcome_t *o = &c->f->outcomes[c - c->f->calls];
    o->reason = reason;
    o->status = status;
    c->end_ns = cf_now_ns();
    complete_call(c);
}

/* Whether an answer's body is parsed: a 2xx, as it arrived. */
static int wants_body(cf_reason_t reason, int status)
{
    return reason == CF_REASON_NONE && status >= 200 && status <= 299;
}

/* Turns an upstream answer (or a cached one) into an outcome, shaped after `conf` (NULL: not shaped) when it is a
 * success; `doc` (taken over; NULL when the body is not JSON) is its body, parsed when wants_body(reason, status). */
static void make_outcome(const cf_call_t *conf, cf_outcome_t *o, cf_reason_t reason, int status, json_t *doc)
{
    o->status = status;
    if (reason != CF_REASON_NONE) {
        o->reason = reason;
    } else if (!wants_body(reason, status)) {
        o->reason = CF_REASON_STATUS;
    } else if (doc == NULL) {
        o->reason = CF_REASON_INVALID_JSON;
    } else {
        o->value = doc; /* cf_shape never modifies it: a cached one is shared */
        if (conf != NULL)
            cf_shape(conf, o);
        return;
    }
    json_decref(doc);
}

/* Elements [first, first + count) of a foreach call ended: `value` (borrowed; NULL: they failed with reason and
 * status) holds one answer per element, or is the one answer of a single element. */
static void record_elements(struct st_call_t *c, size_t first, size_t count, json_t *value, cf_reason_t reason, int status)
{
    struct st_foreach_t *fe = c->fe;
    for (size_t i = first; i != first + count; ++i) {
        if (value != NULL) {
            cf_outcome_t o = {
                .value = json_incref(count == 1 && c->conf->foreach.batch == 0 ? value : json_array_get(value, i - first))};
            cf_shape(c->conf, &o); /* per element, so a batch is shaped as its elements would be */
            json_array_set_new(fe->results, i, o.value != NULL ? o.value : json_null());
            ++fe->ok;
        } else {
            fe->failed[i] = 1;
            if (fe->first_reason == CF_REASON_NONE) {
                fe->first_reason = reason;
                fe->first_status = status;
            }
        }
        ++fe->done;
    }
}

/* An exchange's answer (or failure): the call's outcome, or its elements'. `doc` is taken over. */
static void take_answer(struct st_exchange_t *x, cf_reason_t reason, int status, json_t *doc)
{
    struct st_call_t *c = x->c;
    if (c->fe == NULL) {
        c->end_ns = cf_now_ns();
        make_outcome(c->conf, &c->f->outcomes[c - c->f->calls], reason, status, doc);
        return;
    }
    if (c->conf->foreach.batch != 0 && wants_body(reason, status) && doc != NULL &&
        (!json_is_array(doc) || json_array_size(doc) != x->count)) {
        /* a batch must answer one entry per element it asked for, in order: anything else cannot be matched up */
        json_decref(doc);
        doc = NULL;
        reason = CF_REASON_NOT_AN_ARRAY;
    }
    cf_outcome_t o = {NULL};
    make_outcome(NULL, &o, reason, status, doc); /* unshaped: each element is shaped on its own */
    record_elements(c, x->first, x->count, o.value, o.reason, o.status);
    json_decref(o.value);
    c->fe->attempts += x->attempts;
    c->fe->hedges += x->hedges;
    c->fe->budget_exhausted |= x->budget_exhausted;
    c->fe->hedge_won |= x->hedge_won;
    for (unsigned i = 0; i != x->attempt.spans.n; ++i) {
        int k = cf_spans_add(&c->fe->spans, x->attempt.spans.ids[i]);
        if (k < 0 || x->attempt.spans.details == NULL)
            continue;
        if (c->fe->spans.details == NULL)
            c->fe->spans.details = h2o_mem_alloc_pool(&c->f->req->pool, sizeof(*c->fe->spans.details) * CF_TRACE_MAX_SPANS);
        c->fe->spans.details[k] = x->attempt.spans.details[i];
    }
}

/* A foreach call's elements all ended (or the deadline cut them): its outcome. A required call fails with its first
 * failed element's reason; otherwise failed elements are null, or dropped with on_error: omit. */
static void foreach_conclude(struct st_call_t *c)
{
    struct st_foreach_t *fe = c->fe;
    cf_outcome_t *o = &c->f->outcomes[c - c->f->calls];
    c->end_ns = cf_now_ns();
    if (fe->over_budget) {
        o->reason = CF_REASON_TOO_LARGE;
        return;
    }
    if (fe->ok != fe->n && c->conf->required) {
        o->reason = fe->first_reason != CF_REASON_NONE ? fe->first_reason : CF_REASON_CANCELLED;
        o->status = fe->first_status;
        return;
    }
    if (fe->ok != fe->n && c->conf->on_error == CF_ON_ERROR_OMIT) {
        json_t *kept = json_array();
        for (size_t i = 0; i != fe->n; ++i)
            if (!fe->failed[i])
                json_array_append(kept, json_array_get(fe->results, i));
        o->value = kept;
        return;
    }
    o->value = json_incref(fe->results);
}

static int cancel_exchange(struct st_exchange_t *x, cf_reason_t reason);

/* Stops a foreach call's exchanges still running, reporting nothing, and starts no more. */
static void foreach_stop(struct st_call_t *c)
{
    struct st_foreach_t *fe = c->fe;
    fe->pumping = 1;
    for (size_t s = 0; s != fe->num_slots; ++s) {
        struct st_exchange_t *x = &fe->slots[s];
        if (x->count != 0) {
            cancel_exchange(x, CF_REASON_NONE);
            fe->attempts += x->attempts; /* sent all the same */
            fe->hedges += x->hedges;
            fe->budget_exhausted |= x->budget_exhausted;
        }
        x->count = 0;
    }
}

/* An exchange ended: a plain call completes; a foreach element frees its slot for the next one. */
static void exchange_ended(struct st_exchange_t *x)
{
    struct st_call_t *c = x->c;
    struct st_foreach_t *fe = c->fe;
    if (fe == NULL) {
        complete_call(c);
        return;
    }
    x->count = 0;
    if (fe->over_budget || (c->conf->required && fe->first_reason != CF_REASON_NONE)) {
        foreach_stop(c); /* the answer cannot be complete any more: stop at once */
        foreach_conclude(c);
        complete_call(c);
        return;
    }
    foreach_pump(c);
}

static void on_call_done(cf_attempt_t *a, const cf_upstream_res_t *res)
{
    struct st_exchange_t *x = H2O_STRUCT_FROM_MEMBER(struct st_exchange_t, attempt, a);
    json_t *doc = NULL;
    json_error_t jerr;
    x->attempts = a->attempts;
    x->hedges = a->hedges;
    x->budget_exhausted = a->budget_exhausted;
    x->hedge_won = a->hedge_won;
    struct st_foreach_t *fe = x->c->fe;
    if (fe != NULL && (fe->bytes += res->body.len) > x->c->f->table->config->limits.max_response_body) {
        /* max_response_body bounds what one call holds: the elements' answers together, not each (else 100 elements
         * could hold 100 times it, parsed) */
        fe->over_budget = 1;
        take_answer(x, CF_REASON_TOO_LARGE, res->status, NULL);
        exchange_ended(x);
        return;
    }
    if (wants_body(res->reason, res->status))
        doc = json_loadb(res->body.base, res->body.len, JSON_DECODE_ANY, &jerr);
    take_answer(x, res->reason, res->status, doc);
    exchange_ended(x);
}

/* The cache parsed the body once for every call that shares it: its document is taken as is. */
static void take_cache_answer(struct st_exchange_t *x, const cf_cache_answer_t *ans)
{
    x->cache = ans->report;
    x->attempts = ans->attempts; /* the call's miss made the upstream request: its attempts are the call's */
    x->hedges = ans->hedges;
    x->budget_exhausted = ans->budget_exhausted;
    x->hedge_won = ans->hedge_won;
    /* a cached call's own attempt never ran: its span ids are those of the miss's upstream request, if this was it */
    x->attempt.spans.n = 0;
    x->attempt.spans.details = NULL;
    if (ans->spans != NULL) /* the flight's details are the cache's: the request keeps a copy */
        cf_spans_copy(&x->attempt.spans, ans->spans, &x->c->f->req->pool, NULL);
    take_answer(x, ans->reason, ans->status, ans->doc);
}

static void on_cache_answer(void *data, const cf_cache_answer_t *ans)
{
    struct st_exchange_t *x = data;
    x->cw = NULL;
    h2o_timeout_unlink(&x->timeout);
    take_cache_answer(x, ans);
    exchange_ended(x);
}

/* An exchange that joined another call's upstream request reached its own timeout first: it stops waiting (the
 * request goes on and is stored), and like a refresh that fails, an expired entry within stale_if_error answers it. */
static void on_cache_timeout(h2o_timeout_entry_t *entry)
{
    struct st_exchange_t *x = H2O_STRUCT_FROM_MEMBER(struct st_exchange_t, timeout, entry);
    cf_cache_answer_t stale;
    int have_stale = cf_cache_cancel(x->cw, &stale);
    x->cw = NULL;
    if (have_stale) {
        take_cache_answer(x, &stale);
    } else {
        x->cache = (cf_cache_report_t){.state = CF_CACHE_COALESCED};
        take_answer(x, CF_REASON_TIMEOUT, 0, NULL);
    }
    exchange_ended(x);
}

/* A cached call (docs/http.md, "Caching"): GET only, keyed by backend, method, final URL and the forwarded credentials.
 * Returns 0 when the call is not cached; else 1, the exchange answered (and ended) already when the cache had it. */
static int start_cached(struct st_exchange_t *x, const cf_upstream_req_t *ureq)
{
    struct st_call_t *c = x->c;
    struct st_fanout_t *f = c->f;
    cf_cache_t *cache = cf_cache_get();
    if (cache == NULL || c->conf->cache.ttl_ms == 0)
        return 0;
    cf_buf_t key = CF_BUF_INIT;
    cf_cache_build_key(&key, c->conf->backend->name, ureq->method, ureq->path, ureq->headers, ureq->num_headers);
    cf_cache_answer_t ans;
    x->cw = cf_cache_fetch(cache, f->w->cache_port, f->table->attempts[c->conf->backend->index], ureq,
                           h2o_iovec_init(key.base, key.len), &c->conf->cache, on_cache_answer, x, &ans);
    cf_buf_free(&key);
    if (x->cw == NULL) {
        take_cache_answer(x, &ans);
        exchange_ended(x);
    } else if (cf_cache_wait_joined(x->cw)) {
        /* the request it joined runs under its starter's timeout, which may be longer (another route's call) */
        x->timeout.cb = on_cache_timeout;
        cf_timeouts_link(&f->w->timeouts, c->conf->timeout_ms, &x->timeout);
    }
    return 1;
}

/* --- method and body (a call's method: and body:) ------------------------------------------------------------- */

/* The foreach element of exchange x for {item} / {item.a.b} in a body (plan.c refuses {item} without foreach: and
 * {items} in a body). */
static const json_t *item_value(const struct st_exchange_t *x, const cf_tpl_part_t *part)
{
    if (x->c->fe == NULL || x->count == 0)
        return NULL;
    return element_field(x->c, x->first, part->fields, part->num_fields);
}

/* A body placeholder's value: a call's field and the foreach element as JSON (they keep their type), the client's
 * values (route parameters, query parameters, headers) as strings. */
static int lookup_body_value(void *ctx, const cf_tpl_part_t *part, cf_body_value_t *v)
{
    struct st_exchange_t *x = ctx;
    struct st_call_t *c = x->c;
    const json_t *j = NULL;
    switch (part->kind) {
    case CF_TPL_CALL:
        if (part->call_index < 0 || (size_t)part->call_index >= c->f->route->num_calls)
            return CF_TPL_MISSING;
        j = c->f->outcomes[part->call_index].value;
        for (size_t i = 0; j != NULL && i < part->num_fields; ++i)
            j = json_is_object(j) ? json_object_get(j, part->fields[i]) : NULL;
        break;
    case CF_TPL_ITEM:
        j = item_value(x, part);
        break;
    case CF_TPL_JWT: /* with its JSON type, like a call's field */
        j = c->f->claims != NULL ? json_object_get(c->f->claims, part->text) : NULL;
        break;
    default:
        return lookup_value(ctx, part, &v->str, &v->len);
    }
    if (j == NULL)
        return CF_TPL_MISSING;
    v->json = j;
    return CF_TPL_OK;
}

/*
 * Sets the upstream request's method and, when the call has a body, the body (expanded into `body`, which must outlive
 * the start of the request) and Content-Type: application/json (in place of a forwarded one). POST and PATCH are not
 * idempotent (RFC 9110 9.2.2): never retried, hedged, or sent again on a fresh connection. Returns CF_REASON_NONE,
 * or why the body cannot be built (missing_param, or too_large past the two body limits together).
 */
static cf_reason_t set_method_body(struct st_exchange_t *x, cf_upstream_req_t *ureq, cf_buf_t *body)
{
    struct st_call_t *c = x->c;
    const cf_call_t *conf = c->conf;
    h2o_req_t *req = c->f->req;
    const cf_config_t *config = c->f->table->config;
    const char *name = cf_method_name(conf->method);
    ureq->method = h2o_iovec_init(name, strlen(name));
    ureq->idempotent = conf->method != CF_METHOD_POST && conf->method != CF_METHOD_PATCH;
    if (conf->body.num_parts == 0)
        return CF_REASON_NONE;
    int rc = cf_body_expand(&conf->body, lookup_body_value, x, req->entity.base, req->entity.len,
                            config->limits.max_request_body + config->limits.max_response_body, body, NULL);
    if (rc != CF_TPL_OK)
        return rc == CF_BODY_TOO_LARGE ? CF_REASON_TOO_LARGE : CF_REASON_MISSING_PARAM;
    ureq->body = h2o_iovec_init(body->base, body->len);
    h2o_header_t *headers = h2o_mem_alloc_pool(&req->pool, sizeof(*headers) * (ureq->num_headers + 1));
    size_t n = 0;
    for (size_t i = 0; i < ureq->num_headers; ++i)
        if (!h2o_lcstris(ureq->headers[i].name->base, ureq->headers[i].name->len, H2O_STRLIT("content-type")))
            headers[n++] = ureq->headers[i];
    headers[n++] = (h2o_header_t){&H2O_TOKEN_CONTENT_TYPE->buf, NULL, h2o_iovec_init(H2O_STRLIT("application/json"))};
    ureq->headers = headers;
    ureq->num_headers = n;
    return CF_REASON_NONE;
}

/* traceparent, tracestate and X-Request-Id go upstream as the request's identity (trace.h) even when forward_headers
 * names them: never twice, and never in a cache key, where a per-request value would defeat every hit and coalescing. */
static int own_header(const char *name)
{
    return cf_trace_is_own_header(name, strlen(name));
}

/* The client's headers named by forward_headers (nothing else from the client goes upstream), gathered once. */
static void forward_headers(struct st_fanout_t *f)
{
    h2o_req_t *req = f->req;
    if (f->headers_ready)
        return;
    f->headers_ready = 1;
    size_t max_headers = 0;
    for (size_t i = 0; i < f->route->forward_headers.n; ++i)
        if (!own_header(f->route->forward_headers.items[i]))
            for (ssize_t j = -1; (j = h2o_find_header_by_str(&req->headers, f->route->forward_headers.items[i],
                                                             strlen(f->route->forward_headers.items[i]), j)) != -1;)
                ++max_headers;
    f->headers = max_headers != 0 ? h2o_mem_alloc_pool(&req->pool, sizeof(*f->headers) * max_headers) : NULL;
    for (size_t i = 0; i < f->route->forward_headers.n; ++i)
        if (!own_header(f->route->forward_headers.items[i]))
            for (ssize_t j = -1; (j = h2o_find_header_by_str(&req->headers, f->route->forward_headers.items[i],
                                                             strlen(f->route->forward_headers.items[i]), j)) != -1;)
                f->headers[f->num_headers++] = req->headers.entries[j];
}

/*
 * Builds the upstream request of exchange x: its URL into `url` (the call's path template, then the forwarded client
 * query) and the rest into *ureq, which points into `url`. Returns CF_TPL_OK, or the template's failure (url then
 * holds nothing to send).
 */
static int build_request(struct st_exchange_t *x, cf_buf_t *url, cf_upstream_req_t *ureq)
{
    struct st_fanout_t *f = x->c->f;
    const cf_call_t *conf = x->c->conf;
    x->cursor = x->first;
    int ret = cf_template_expand(&conf->path, tpl_flags(conf), lookup_value, x, url, NULL);
    if (ret != CF_TPL_OK)
        return ret;
    /* client query parameters named by forward_query go to every call, encoded again */
    for (size_t i = 0; i < f->route->forward_query.n; ++i) {
        const char *name = f->route->forward_query.items[i];
        size_t nlen = strlen(name);
        for (const struct st_query_param_t *qp = find_query(f, name, nlen, 0); qp != NULL;
             qp = find_query(f, name, nlen, (size_t)(qp - f->query) + 1)) {
            cf_buf_appendc(url, memchr(url->base, '?', url->len) != NULL ? '&' : '?');
            cf_encode_query(url, name, nlen);
            cf_buf_appendc(url, '=');
            cf_encode_query(url, qp->value.base, qp->value.len);
        }
    }
    forward_headers(f);
    *ureq = (cf_upstream_req_t){
        .method = h2o_iovec_init(H2O_STRLIT("GET")),
        .path = h2o_iovec_init(url->base, url->len),
        .headers = f->headers,
        .num_headers = f->num_headers,
        .timeout_ms = conf->timeout_ms,
        .max_response_body = f->table->config->limits.max_response_body,
        .prepend_base_path = 1,
        .trace = f->trace,
        .span_pool = &f->req->pool,
    };
    return CF_TPL_OK;
}

/* Sends exchange x's request, through the cache when the call is cached; it may end before this returns. */
static void start_exchange(struct st_exchange_t *x)
{
    struct st_fanout_t *f = x->c->f;
    cf_buf_t url = CF_BUF_INIT, body = CF_BUF_INIT;
    cf_upstream_req_t ureq;
    int ret = build_request(x, &url, &ureq);
    /* a client's value was checked before any call went out (check_client_values): a bad one here came from an
     * earlier call's JSON or a foreach element (or is an empty {name*} next to a literal dot), and fails only this
     * call, or this element */
    cf_reason_t reason = ret == CF_TPL_OK          ? set_method_body(x, &ureq, &body)
                         : ret == CF_TPL_BAD_INPUT ? CF_REASON_BAD_PARAM
                                                   : CF_REASON_MISSING_PARAM;
    if (reason != CF_REASON_NONE) {
        cf_buf_free(&url);
        cf_buf_free(&body);
        take_answer(x, reason, 0, NULL);
        exchange_ended(x);
        return;
    }
    if (!start_cached(x, &ureq))
        cf_attempt_start(&x->attempt, f->table->attempts[x->c->conf->backend->index], &ureq, f->deadline_at, on_call_done);
    cf_buf_free(&body);
    cf_buf_free(&url);
}

/* Starts elements on the free slots until every element has started; concludes the call once every one has ended. */
static void foreach_pump(struct st_call_t *c)
{
    struct st_foreach_t *fe = c->fe;
    if (fe->pumping)
        return; /* an element that ended at once: the loop below goes on */
    fe->pumping = 1;
    size_t per = c->conf->foreach.batch != 0 ? c->conf->foreach.batch : 1;
    for (size_t s = 0; s < fe->num_slots && fe->next < fe->n && c->state == CALL_RUNNING; ++s) {
        struct st_exchange_t *x = &fe->slots[s];
        while (x->count == 0 && fe->next < fe->n && c->state == CALL_RUNNING) {
            x->first = fe->next;
            x->count = fe->n - fe->next < per ? fe->n - fe->next : per;
            x->attempts = x->hedges = 0;
            x->budget_exhausted = x->hedge_won = 0;
            x->attempt.spans.n = 0;
            fe->next += x->count;
            start_exchange(x); /* an element that ends at once (a cache hit, a missing value) frees the slot again */
        }
    }
    fe->pumping = 0;
    if (c->state == CALL_RUNNING && fe->done == fe->n) {
        foreach_conclude(c);
        complete_call(c);
    }
}

/* A foreach call: its source array (docs/http.md, "foreach"), then its elements through foreach_pump. */
static void start_foreach(struct st_call_t *c)
{
    struct st_fanout_t *f = c->f;
    const cf_foreach_t *conf = &c->conf->foreach;
    const cf_outcome_t *so = &f->outcomes[conf->call_index];
    if (so->reason != CF_REASON_NONE && so->value == NULL) { /* no array to go over (a failed source's default is one) */
        fail_call(c, CF_REASON_MISSING_PARAM, 0);
        return;
    }
    json_t *v = so->value;
    for (size_t i = 0; v != NULL && !json_is_null(v) && i < conf->num_fields; ++i) {
        if (!json_is_object(v)) {
            fail_call(c, CF_REASON_NOT_AN_ARRAY, 0);
            return;
        }
        v = json_object_get(v, conf->fields[i]);
    }
    if (v != NULL && !json_is_null(v) && !json_is_array(v)) {
        fail_call(c, CF_REASON_NOT_AN_ARRAY, 0);
        return;
    }
    size_t n = v != NULL && json_is_array(v) ? json_array_size(v) : 0; /* absent or null: no elements, [] */
    c->elements = n; /* shown ("too_large 0/5000"), but counted in /metrics only once gone over (elements_tried) */
    if (n > conf->max_items) {
        fail_call(c, CF_REASON_TOO_LARGE, 0); /* before any request: the whole list or nothing */
        return;
    }
    struct st_foreach_t *fe = h2o_mem_alloc_pool(&f->req->pool, sizeof(*fe));
    memset(fe, 0, sizeof(*fe));
    c->fe = fe;
    fe->source = v;
    fe->n = n;
    fe->results = json_array();
    for (size_t i = 0; i != n; ++i)
        json_array_append_new(fe->results, json_null());
    fe->failed = h2o_mem_alloc_pool(&f->req->pool, n + 1);
    memset(fe->failed, 0, n + 1);
    size_t per = conf->batch != 0 ? conf->batch : 1, requests = (n + per - 1) / per;
    fe->num_slots = requests < conf->concurrency ? requests : conf->concurrency;
    fe->slots = fe->num_slots != 0 ? h2o_mem_alloc_pool(&f->req->pool, sizeof(*fe->slots) * fe->num_slots) : NULL;
    if (fe->num_slots != 0)
        memset(fe->slots, 0, sizeof(*fe->slots) * fe->num_slots);
    for (size_t s = 0; s != fe->num_slots; ++s)
        fe->slots[s].c = c;
    foreach_pump(c);
}

static void start_call(struct st_call_t *c)
{
    c->state = CALL_RUNNING;
    c->start_ns = cf_now_ns();
    if (c->conf->foreach.source != NULL)
        start_foreach(c);
    else
        start_exchange(&c->x);
}

/* Stops exchange x if it runs. When `reason` is CF_REASON_DEADLINE, an expired cache entry within stale_if_error
 * answers it (RFC 5861 4: it covers a refresh that did not come back in time) and 1 is returned; else 0. */
static int cancel_exchange(struct st_exchange_t *x, cf_reason_t reason)
{
    if (cf_attempt_running(&x->attempt)) {
        x->attempts = x->attempt.attempts; /* made all the same */
        x->hedges = x->attempt.hedges;
        x->budget_exhausted = x->attempt.budget_exhausted;
        cf_attempt_cancel(&x->attempt);
    }
    h2o_timeout_unlink(&x->timeout);
    if (x->cw != NULL) {
        cf_cache_answer_t stale;
        int have_stale = cf_cache_cancel(x->cw, reason != CF_REASON_NONE ? &stale : NULL);
        x->cw = NULL;
        if (have_stale && reason == CF_REASON_DEADLINE) {
            take_cache_answer(x, &stale);
            return 1;
        }
        if (have_stale)
            json_decref(stale.doc); /* found, but the call is cancelled, not cut by its deadline */
    }
    return 0;
}

/* Stops the calls still running and marks them failed with `reason` (CF_REASON_NONE: the request is being disposed,
 * nothing is reported any more). A foreach call cut by the deadline keeps the elements that arrived, the others
 * failing with `deadline`. */
static void cancel_running(struct st_fanout_t *f, cf_reason_t reason)
{
    uint64_t now = cf_now_ns();
    for (size_t i = 0; i < f->route->num_calls; ++i) {
        struct st_call_t *c = &f->calls[i];
        if (c->state == CALL_DONE)
            continue;
        if (c->fe != NULL) {
            struct st_foreach_t *fe = c->fe;
            fe->pumping = 1; /* nothing starts any more */
            for (size_t s = 0; s != fe->num_slots; ++s) {
                struct st_exchange_t *x = &fe->slots[s];
                if (x->count != 0 && !cancel_exchange(x, reason) && reason != CF_REASON_NONE)
                    take_answer(x, reason, 0, NULL);
                x->count = 0;
            }
            if (reason != CF_REASON_NONE) {
                record_elements(c, fe->next, fe->n - fe->next, NULL, reason, 0); /* never started */
                fe->next = fe->n;
                if (reason == CF_REASON_DEADLINE) {
                    foreach_conclude(c);
                } else {
                    f->outcomes[i].reason = reason;
                    c->end_ns = now;
                }
            }
            c->state = CALL_DONE;
            continue;
        }
        if (c->state == CALL_RUNNING && cancel_exchange(&c->x, reason)) {
            c->state = CALL_DONE;
            continue;
        }
        if (reason != CF_REASON_NONE && f->outcomes[i].reason == CF_REASON_NONE && f->outcomes[i].value == NULL) {
            /* a call whose own timeout ends with the deadline (the default deadline is the longest chain of timeouts)
             * timed out: whichever timer the loop ran first, that is what happened to it (1 ms: the loop's clock) */
            int timed_out =
                reason == CF_REASON_DEADLINE && c->start_ns != 0 && now - c->start_ns + 1000000 >= c->conf->timeout_ms * 1000000;
            f->outcomes[i].reason = timed_out ? CF_REASON_TIMEOUT : reason;
            c->end_ns = now;
        }
        c->state = CALL_DONE;
    }
}

/* --- finishing ------------------------------------------------------------------------------------------------ */

/* What each call ended as, in config order (into the request's pool): for the answer's headers and observe. */
static cf_call_record_t *call_records(struct st_fanout_t *f, uint64_t now)
{
    size_t n = f->calls != NULL ? f->route->num_calls : 0;
    cf_call_record_t *calls = n != 0 ? h2o_mem_alloc_pool(&f->req->pool, sizeof(*calls) * n) : NULL;
    for (size_t i = 0; i != n; ++i) {
        const struct st_call_t *c = &f->calls[i];
        calls[i] = (cf_call_record_t){.name = c->conf->name,
                                      .backend = c->conf->backend->name,
                                      .reason = f->outcomes[i].reason,
                                      .status = f->outcomes[i].status,
                                      .duration_ns = c->start_ns != 0 ? (c->end_ns != 0 ? c->end_ns : now) - c->start_ns : 0,
                                      .cache = c->x.cache,
                                      .attempts = c->x.attempts,
                                      .hedges = c->x.hedges,
                                      .budget_exhausted = c->x.budget_exhausted,
                                      .hedge_won = c->x.hedge_won,
                                      .spans = &c->x.attempt.spans,
                                      .foreach = c->conf->foreach.source != NULL,
                                      .elements = c->elements,
                                      .elements_tried = c->fe != NULL};
        if (c->fe != NULL) { /* the elements' exchanges together; their cache states are not summed up */
            calls[i].attempts = c->fe->attempts;
            calls[i].hedges = c->fe->hedges;
            calls[i].budget_exhausted = c->fe->budget_exhausted;
            calls[i].hedge_won = c->fe->hedge_won;
            calls[i].spans = &c->fe->spans;
            calls[i].elements_ok = c->fe->ok;
            calls[i].element_reason = c->fe->first_reason;
            calls[i].element_status = c->fe->first_status;
        }
    }
    return calls;
}

/* Reports the request to metrics and the access log (observe.h); `calls` NULL: built here. */
static void observe(struct st_fanout_t *f, int status, uint64_t now, const cf_call_record_t *calls)
{
    if (calls == NULL)
        calls = call_records(f, now);
    cf_request_record_t rec = {.req = f->req,
                               .route = f->route,
                               .status = status,
                               .duration_ns = now - f->start_ns,
                               .calls = calls,
                               .num_calls = f->calls != NULL ? f->route->num_calls : 0,
                               .trace = f->trace};
    cf_observe_request(&rec);
}

static void finish(struct st_fanout_t *f)
{
    if (f->finished)
        return;
    f->finished = 1;
    h2o_timeout_unlink(&f->deadline);
    cf_watch_stop(&f->watch);
    cancel_running(f, CF_REASON_CANCELLED); /* only after a required call failed are there calls left */

    int status = 200;
    json_t *body;
    if (f->failed_required != NULL) {
        const cf_outcome_t *o = &f->outcomes[f->failed_required - f->calls];
        status = cf_failure_status(o);
        body = cf_failure_body(f->failed_required->conf, o);
    } else {
        for (size_t i = 0; i < f->route->num_calls; ++i)
            give_default(f, i); /* calls cut by the deadline */
        body = cf_merge(f->route, f->outcomes);
    }
    uint64_t now = cf_now_ns();
    cf_call_record_t *calls = call_records(f, now);
    cf_add_call_headers(f->req, calls, f->route->num_calls, now - f->start_ns);
    observe(f, status, now, calls);
    cf_slot_answered(&f->slot);
    cf_send_json(f->req, status, body);
    json_decref(body);
}

static void on_deadline(h2o_timeout_entry_t *entry)
{
    struct st_fanout_t *f = H2O_STRUCT_FROM_MEMBER(struct st_fanout_t, deadline, entry);
    cancel_running(f, CF_REASON_DEADLINE);
    for (size_t i = 0; i < f->route->num_calls && f->failed_required == NULL; ++i)
        if (f->calls[i].conf->required && f->outcomes[i].reason != CF_REASON_NONE)
            f->failed_required = &f->calls[i];
    finish(f);
}

static void on_client_gone(cf_watch_t *watch)
{
    struct st_fanout_t *f = H2O_STRUCT_FROM_MEMBER(struct st_fanout_t, watch, watch);
    if (f->finished)
        return;
    f->finished = 1;
    h2o_timeout_unlink(&f->deadline);
    cancel_running(f, CF_REASON_CANCELLED);
    observe(f, 499, cf_now_ns(), NULL);
    cf_slot_answered(&f->slot);
    cf_send_client_gone(f->req);
}

static void on_dispose(void *_f)
{
    struct st_fanout_t *f = _f;
    cf_watch_stop(&f->watch);
    h2o_timeout_unlink(&f->deadline);
    if (f->calls != NULL)
        cancel_running(f, CF_REASON_NONE);
    for (size_t i = 0; f->outcomes != NULL && i < f->route->num_calls; ++i) {
        json_decref(f->outcomes[i].value);
        if (f->calls[i].fe != NULL)
            json_decref(f->calls[i].fe->results);
    }
    json_decref(f->claims);
    cf_slot_dispose(&f->slot);
    cf_table_release(f->table);
}

/*
 * Refuses a client's value that would fill an upstream path segment it may not (a '/', '\', "." or ".."; see
 * cf_segment_value_ok) with 400, before any call goes out: a later call must not find it after earlier ones were
 * sent. Returns 0, or -1 after answering.
 */
static int check_client_values(struct st_fanout_t *f)
{
    struct st_call_t probe_call = {.f = f};
    struct st_exchange_t probe = {.c = &probe_call}; /* lookup_value reads only f for the client's kinds */
    for (size_t i = 0; i < f->route->num_calls; ++i) {
        const cf_call_t *conf = &f->route->calls[i];
        const cf_tpl_part_t *bad;
        if (cf_template_check(&conf->path, CF_TPL_CLIENT_KINDS, tpl_flags(conf), lookup_value, &probe, &bad) != CF_TPL_OK) {
            char msg[256];
            f->finished = 1;
            observe(f, 400, cf_now_ns(), NULL);
            cf_slot_answered(&f->slot);
            cf_send_error(f->req, 400, "bad_param", cf_template_refusal(bad, tpl_flags(conf), msg, sizeof(msg)));
            return -1;
        }
    }
    return 0;
}

/*
 * A route whose calls forward the client's body ({request.body}) needs one that is JSON: else 400 before any call goes
 * out. The body is parsed once here (it is at most limits.max_request_body) and then sent as it came. Returns 0, or -1
 * after answering.
 */
static int check_request_body(struct st_fanout_t *f)
{
    int uses = 0;
    for (size_t i = 0; i < f->route->num_calls; ++i)
        uses |= f->route->calls[i].body.uses_request_body;
    if (!uses)
        return 0;
    h2o_iovec_t e = f->req->entity;
    char msg[128];
    if (e.base == NULL || e.len == 0) {
        snprintf(msg, sizeof(msg), "this route forwards the request body, which must be JSON: the request has none");
    } else {
        /* checked, not parsed: it goes on byte for byte, so any JSON text will do (a 40-digit integer too), and a
         * megabyte of [[[...]]] costs one pass, not a tree */
        size_t at;
        if (cf_body_json_valid(e.base, e.len, &at))
            return 0;
        snprintf(msg, sizeof(msg), "the request body is not JSON (at byte %zu)", at);
    }
    f->finished = 1;
    observe(f, 400, cf_now_ns(), NULL);
    cf_slot_answered(&f->slot);
    cf_send_error(f->req, 400, "bad_request", msg);
    return -1;
}

void cf_fanout_start(cf_worker_t *w, cf_table_t *t, const cf_route_t *route, h2o_req_t *req, const cf_route_match_t *m,
                     const cf_trace_t *trace, json_t *claims)
{
    struct st_fanout_t *f = h2o_mem_alloc_shared(&req->pool, sizeof(*f), on_dispose);
    memset(f, 0, sizeof(*f));
    f->req = req;
    f->trace = trace;
    f->w = w;
    f->table = t;
    f->route = route;
    f->match = *m;
    f->start_ns = cf_now_ns();
    f->claims = json_incref(claims);
    f->deadline.cb = on_deadline;
    f->watch.on_gone = on_client_gone;
    f->watch.fd = -1;
    cf_slot_init(&f->slot, w, req, t->config->limits.send_timeout_ms);

    if (parse_query(f) != 0) {
        f->finished = 1;
        observe(f, 400, cf_now_ns(), NULL);
        cf_slot_answered(&f->slot);
        cf_send_error(req, 400, "bad_request", "malformed query string");
        return;
    }
    if (check_client_values(f) != 0 || check_request_body(f) != 0)
        return;
    f->calls = h2o_mem_alloc_pool(&req->pool, sizeof(*f->calls) * route->num_calls);
    f->outcomes = h2o_mem_alloc_pool(&req->pool, sizeof(*f->outcomes) * route->num_calls);
    memset(f->calls, 0, sizeof(*f->calls) * route->num_calls);
    memset(f->outcomes, 0, sizeof(*f->outcomes) * route->num_calls);
    for (size_t i = 0; i < route->num_calls; ++i) {
        f->calls[i].f = f;
        f->calls[i].conf = &route->calls[i];
        f->calls[i].waiting_on = route->calls[i].num_deps;
        f->calls[i].x.c = &f->calls[i];
    }
    f->pending = route->num_calls;
    f->deadline_at = h2o_now(w->loop) + route->deadline_ms;
    cf_timeouts_link(&w->timeouts, route->deadline_ms, &f->deadline);
    cf_watch_start(w->watches, req, &f->watch);
    for (size_t i = 0; i < route->num_calls && !f->finished; ++i)
        if (f->calls[i].state == CALL_WAITING && f->calls[i].waiting_on == 0)
            start_call(&f->calls[i]);
    if (route->num_calls == 0)
        finish(f);
}
