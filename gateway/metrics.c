/* Process-wide Prometheus metrics: lock-free counters and histograms, rendered as text for the admin /metrics. */
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <h2o.h>
#include "cache.h"
#include "metrics.h"
#include "peers.h"
#include "version.h"

/*
 * Every series lives as long as the process (Prometheus counters must not go backwards, and the set of routes, calls
 * and backends is bounded by the configs ever loaded). Series of one family hang on an append-only linked list: a
 * reader walks it with acquire loads and no lock; a writer appends under `create_mutex`, which is taken only when a
 * series is seen for the first time. Counters are relaxed atomic adds. The series of a configured route, call and
 * backend is cached in that config struct (its `metrics` member, an atomic pointer), so the request path does no
 * lookup at all once warm.
 */

/* the head of each series: a name and the next series of the family */
typedef struct st_mnode_t {
    struct st_mnode_t *next;
    char *name;
} mnode_t;

/* a counter with one label value (an edge refusal by reason) */
typedef struct st_labelled_t {
    mnode_t super;
    uint64_t count;
} labelled_t;

/* a histogram: counts per bucket (not cumulative; the last one is +Inf) and the sum, in nanoseconds */
typedef struct st_hist_t {
    uint64_t buckets[CF_METRICS_NUM_BUCKETS + 1];
    uint64_t sum_ns;
} hist_t;

typedef struct st_call_series_t {
    mnode_t super; /* the call's name */
    hist_t latency;
    uint64_t cache[CF_NUM_CACHE_STATES];   /* by cache state (record.h) */
    uint64_t elements_ok, elements_failed; /* a foreach call's elements */
} call_series_t;

#define MAX_STATUS 600
typedef struct st_route_series_t {
    mnode_t super;               /* the route's pattern, or "none" */
    uint64_t status[MAX_STATUS]; /* index 0: a status outside 100-599 */
    hist_t latency;
    mnode_t *calls;      /* call_series_t */
    uint64_t limited;    /* requests refused by the route's rate limit */
    uint64_t limit_keys; /* keys in its rate limit's table, as last seen; 0 and not rendered until then */
    int has_limit;
    uint64_t jwt_failures[CF_JWT_NUM_ERRORS]; /* 401s by why the token was refused */
} route_series_t;

typedef struct st_backend_series_t {
    mnode_t super;                                        /* the backend's name */
    uint64_t results[CF_NUM_RESULTS];                     /* by result label (reason.h) */
    uint64_t attempts, retries, hedges, budget_exhausted; /* of the calls' attempts (attempt.c) */
} backend_series_t;

static const uint64_t bucket_ns[CF_METRICS_NUM_BUCKETS] = {1000000,    2500000,    5000000,    10000000,  25000000,
                                                           50000000,   100000000,  250000000,  500000000, 1000000000,
                                                           2500000000, 5000000000, 10000000000};
static const double bucket_s[CF_METRICS_NUM_BUCKETS] = CF_METRICS_BUCKETS;

static pthread_mutex_t create_mutex = PTHREAD_MUTEX_INITIALIZER;
static mnode_t *routes;   /* route_series_t */
static mnode_t *backends; /* backend_series_t */
static void *unrouted;    /* route_series_t "none", cached */
static uint64_t reloads_ok, reloads_error, log_dropped, spans[CF_METRICS_NUM_SPANS];
/* the edge: connections refused or closed before any request reached a route (labels are static strings) */
static mnode_t *http1_refused, *http2_goaway, *accept_paused; /* labelled_t by reason */
static uint64_t send_timeouts;

#define LOAD_PTR(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define COUNT(p, n) __atomic_fetch_add((p), (n), __ATOMIC_RELAXED)
#define READ(p) __atomic_load_n((p), __ATOMIC_RELAXED)

static mnode_t *find(mnode_t *const *head, const char *name)
{
    for (mnode_t *n = LOAD_PTR(head); n != NULL; n = LOAD_PTR(&n->next))
        if (n->name == name || strcmp(n->name, name) == 0)
            return n;
    return NULL;
}

/* The series `name` of a family, created (zeroed, `size` bytes) on first sight. */
static mnode_t *get(mnode_t **head, const char *name, size_t size)
{
    mnode_t *n = find(head, name);
    if (n != NULL)
        return n;
    pthread_mutex_lock(&create_mutex);
    if ((n = find(head, name)) == NULL) {
        n = h2o_mem_alloc(size);
        memset(n, 0, size);
        n->name = h2o_strdup(NULL, name, SIZE_MAX).base;
        mnode_t **link = head;
        while (*link != NULL) /* only writers, under the mutex, change links */
            link = &(*link)->next;
        __atomic_store_n(link, n, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&create_mutex);
    return n;
}

/* The series cached in `*slot` (a config struct's `metrics`), looked up or created on first use. */
static void *cached(void **slot, mnode_t **head, const char *name, size_t size)
{
    void *p = LOAD_PTR(slot);
    if (p == NULL) {
        p = get(head, name, size);
        __atomic_store_n(slot, p, __ATOMIC_RELEASE); /* every thread stores the same pointer */
    }
    return p;
}

static void hist_observe(hist_t *h, uint64_t ns)
{
    size_t i = 0;
    while (i != CF_METRICS_NUM_BUCKETS && ns > bucket_ns[i])
        ++i;
    COUNT(&h->buckets[i], 1);
    COUNT(&h->sum_ns, ns);
}

static route_series_t *route_series(const cf_route_t *route)
{
    if (route == NULL)
        return cached(&unrouted, &routes, "none", sizeof(route_series_t));
    return cached((void **)&route->metrics, &routes, route->pattern.src, sizeof(route_series_t));
}

static call_series_t *call_series(const cf_route_t *route, route_series_t *rs, size_t i, const char *name)
{
    if (route != NULL && route->proxy == NULL && i < route->num_calls && strcmp(route->calls[i].name, name) == 0)
        return cached((void **)&route->calls[i].metrics, &rs->calls, name, sizeof(call_series_t));
    return (call_series_t *)get(&rs->calls, name, sizeof(call_series_t)); /* a proxy route's one call */
}

static backend_series_t *backend_series(const cf_route_t *route, size_t i, const char *name)
{
    const cf_backend_t *b = NULL;
    if (route != NULL && route->proxy != NULL)
        b = route->proxy;
    else if (route != NULL && i < route->num_calls)
        b = route->calls[i].backend;
    if (b != NULL && (name == NULL || strcmp(b->name, name) == 0))
        return cached((void **)&b->metrics, &backends, b->name, sizeof(backend_series_t));
    return (backend_series_t *)get(&backends, name != NULL ? name : "unknown", sizeof(backend_series_t));
}

void cf_metrics_rate_limit(const cf_route_t *route, int limited, size_t keys)
{
    route_series_t *rs = route_series(route);
    if (!__atomic_load_n(&rs->has_limit, __ATOMIC_RELAXED))
        __atomic_store_n(&rs->has_limit, 1, __ATOMIC_RELAXED);
    if (limited)
        COUNT(&rs->limited, 1);
    if (__atomic_load_n(&rs->limit_keys, __ATOMIC_RELAXED) != keys) /* no write to share between threads when unchanged */
        __atomic_store_n(&rs->limit_keys, (uint64_t)keys, __ATOMIC_RELAXED);
}

void cf_metrics_observe(const cf_request_record_t *rec)
{
    route_series_t *rs = route_series(rec->route);
    COUNT(&rs->status[rec->status >= 100 && rec->status < MAX_STATUS ? rec->status : 0], 1);
    if (rec->jwt_error > 0 && rec->jwt_error < CF_JWT_NUM_ERRORS)
        COUNT(&rs->jwt_failures[rec->jwt_error], 1);
    hist_observe(&rs->latency, rec->duration_ns);
    for (size_t i = 0; i != rec->num_calls; ++i) {
        const cf_call_record_t *c = &rec->calls[i];
        call_series_t *cs = call_series(rec->route, rs, i, c->name != NULL ? c->name : "unknown");
        if (c->duration_ns != 0) /* a call that never started has no latency */
            hist_observe(&cs->latency, c->duration_ns);
        if (c->cache.state != CF_CACHE_NONE)
            COUNT(&cs->cache[c->cache.state], 1);
        if (c->elements != 0 && c->elements_tried) { /* a hostile source far over max_items counts nothing */
            COUNT(&cs->elements_ok, c->elements_ok);
            COUNT(&cs->elements_failed, c->elements - c->elements_ok);
        }
        backend_series_t *bs = backend_series(rec->route, i, c->backend);
        COUNT(&bs->results[cf_reason_result(c->reason, c->status)], 1);
        if (c->attempts != 0) {
            COUNT(&bs->attempts, c->attempts);
            if (c->attempts > 1 + c->hedges)
                COUNT(&bs->retries, c->attempts - 1 - c->hedges);
            if (c->hedges != 0)
                COUNT(&bs->hedges, c->hedges);
        }
        if (c->budget_exhausted)
            COUNT(&bs->budget_exhausted, 1);
    }
}

void cf_metrics_reload(int ok)
{
    COUNT(ok ? &reloads_ok : &reloads_error, 1);
}

void cf_metrics_spans(cf_metrics_spans_t what, uint64_t n)
{
    COUNT(&spans[what], n);
}

void cf_metrics_log_dropped(void)
{
    COUNT(&log_dropped, 1);
}

/* --- the text exposition format ------------------------------------------------------------------------------- */

void cf_metrics_escape_label(cf_buf_t *out, const char *s)
{
    for (; *s != '\0'; ++s) {
        switch (*s) {
        case '\\':
            cf_buf_append(out, "\\\\", 2);
            break;
        case '"':
            cf_buf_append(out, "\\\"", 2);
            break;
        case '\n':
            cf_buf_append(out, "\\n", 2);
            break;
        default:
            cf_buf_appendc(out, *s);
        }
    }
}

static void header(cf_buf_t *out, const char *name, const char *type, const char *help)
{
    cf_buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* `name{labels,` ... the caller's own labels follow, as `k="v"` pairs: up to two here. */
static void series_start(cf_buf_t *out, const char *name, const char *k1, const char *v1, const char *k2, const char *v2)
{
    cf_buf_appendf(out, "%s{%s=\"", name, k1);
    cf_metrics_escape_label(out, v1);
    cf_buf_appendc(out, '"');
    if (k2 != NULL) {
        cf_buf_appendf(out, ",%s=\"", k2);
        cf_metrics_escape_label(out, v2);
        cf_buf_appendc(out, '"');
    }
}

static void hist_render(cf_buf_t *out, const char *name, const hist_t *h, const char *k1, const char *v1, const char *k2,
                        const char *v2)
{
    uint64_t counts[CF_METRICS_NUM_BUCKETS + 1], cumulative = 0;
    for (size_t i = 0; i != CF_METRICS_NUM_BUCKETS + 1; ++i)
        counts[i] = READ(&h->buckets[i]);
    uint64_t sum_ns = READ(&h->sum_ns);
    for (size_t i = 0; i != CF_METRICS_NUM_BUCKETS + 1; ++i) {
        cumulative += counts[i];
        series_start(out, name, k1, v1, k2, v2);
        if (i != CF_METRICS_NUM_BUCKETS)
            cf_buf_appendf(out, ",le=\"%g\"} %" PRIu64 "\n", bucket_s[i], cumulative);
        else
            cf_buf_appendf(out, ",le=\"+Inf\"} %" PRIu64 "\n", cumulative);
    }
    /* the name of the series is NAME_bucket; _sum and _count replace the suffix */
    size_t base = strlen(name) - strlen("_bucket");
    char stem[128];
    snprintf(stem, sizeof(stem), "%.*s_sum", (int)base, name);
    series_start(out, stem, k1, v1, k2, v2);
    cf_buf_appendf(out, "} %" PRIu64 ".%09" PRIu64 "\n", sum_ns / 1000000000, sum_ns % 1000000000);
    snprintf(stem, sizeof(stem), "%.*s_count", (int)base, name);
    series_start(out, stem, k1, v1, k2, v2);
    cf_buf_appendf(out, "} %" PRIu64 "\n", cumulative); /* the +Inf bucket: _count and buckets agree by construction */
}

/* the process-wide response cache (cache.h) */
static void cache_render(cf_buf_t *out, const cf_cache_stats_t *c)
{
    header(out, "conflux_cache_results_total", "counter",
           "Cached calls of the whole process by result: hit, miss, stale (served expired), coalesced (waited for "
           "another call's upstream request).");
    cf_buf_appendf(out,
                   "conflux_cache_results_total{result=\"hit\"} %" PRIu64 "\nconflux_cache_results_total{result=\"miss\"} %" PRIu64
                   "\nconflux_cache_results_total{result=\"stale\"} %" PRIu64
                   "\nconflux_cache_results_total{result=\"coalesced\"} %" PRIu64 "\n",
                   c->hits, c->misses, c->stale, c->coalesced);
    header(out, "conflux_cache_evictions_total", "counter", "Entries dropped from the local cache to make room.");
    cf_buf_appendf(out, "conflux_cache_evictions_total %" PRIu64 "\n", c->evictions);
    header(out, "conflux_cache_abandoned_total", "counter",
           "Cached calls' upstream requests dropped while still queued for a connection, every caller having left.");
    cf_buf_appendf(out, "conflux_cache_abandoned_total %" PRIu64 "\n", c->abandoned);
    header(out, "conflux_cache_stores_total", "counter", "Entries written to the local cache.");
    cf_buf_appendf(out, "conflux_cache_stores_total %" PRIu64 "\n", c->stores);
    header(out, "conflux_cache_bytes", "gauge", "Bytes held by the local cache (keys, parsed bodies, bookkeeping).");
    cf_buf_appendf(out, "conflux_cache_bytes %" PRIu64 "\n", c->bytes);
    header(out, "conflux_cache_entries", "gauge", "Entries held by the local cache.");
    cf_buf_appendf(out, "conflux_cache_entries %" PRIu64 "\n", c->entries);
    header(out, "conflux_cache_memcached_total", "counter", "memcached lookups by result: hit, miss, error.");
    cf_buf_appendf(out,
                   "conflux_cache_memcached_total{result=\"hit\"} %" PRIu64
                   "\nconflux_cache_memcached_total{result=\"miss\"} %" PRIu64
                   "\nconflux_cache_memcached_total{result=\"error\"} %" PRIu64 "\n",
                   c->memcached_hits, c->memcached_misses, c->memcached_errors);
    if (!c->memcached_tier)
        return;
    header(out, "conflux_cache_memcached_breaker_state", "gauge",
           "The memcached tier's breaker: 0 closed, 1 open (memcached is skipped), 2 half-open (one probe lookup let "
           "through).");
    cf_buf_appendf(out, "conflux_cache_memcached_breaker_state %" PRIu64 "\n", c->memcached_state);
    header(out, "conflux_cache_memcached_breaker_opens_total", "counter",
           "Times the memcached tier's breaker opened because lookups in a row got no answer in time.");
    cf_buf_appendf(out, "conflux_cache_memcached_breaker_opens_total %" PRIu64 "\n", c->memcached_opens);
    header(out, "conflux_cache_memcached_skipped_total", "counter",
           "memcached operations skipped because the tier's breaker was open, by op: get (a lookup not sent, or given "
           "up: the local miss goes to the upstream at once), set.");
    cf_buf_appendf(out,
                   "conflux_cache_memcached_skipped_total{op=\"get\"} %" PRIu64
                   "\nconflux_cache_memcached_skipped_total{op=\"set\"} %" PRIu64 "\n",
                   c->memcached_skipped_gets, c->memcached_skipped_sets);
    header(out, "conflux_cache_memcached_too_large_total", "counter",
           "Answers stored locally but not to memcached: their value is over what memcached takes (1 MiB).");
    cf_buf_appendf(out, "conflux_cache_memcached_too_large_total %" PRIu64 "\n", c->memcached_large_sets);
    header(out, "conflux_cache_memcached_waiting", "gauge", "memcached lookups waiting for an answer now.");
    cf_buf_appendf(out, "conflux_cache_memcached_waiting %" PRIu64 "\n", c->memcached_waiting);
}

static void count_reason(mnode_t **family, const char *reason)
{
    COUNT(&((labelled_t *)get(family, reason, sizeof(labelled_t)))->count, 1);
}

void cf_metrics_http1_refused(const char *reason)
{
    count_reason(&http1_refused, reason);
}

void cf_metrics_http2_goaway(const char *reason)
{
    count_reason(&http2_goaway, reason);
}

void cf_metrics_send_timeout(void)
{
    COUNT(&send_timeouts, 1);
}

void cf_metrics_accept_paused(const char *reason)
{
    count_reason(&accept_paused, reason);
}

static void reasons_render(cf_buf_t *out, const char *name, mnode_t *const *family)
{
    for (mnode_t *r = LOAD_PTR(family); r != NULL; r = LOAD_PTR(&r->next)) {
        series_start(out, name, "reason", r->name, NULL, NULL);
        cf_buf_appendf(out, "} %" PRIu64 "\n", READ(&((labelled_t *)r)->count));
    }
}

void cf_metrics_render_edge(cf_buf_t *out, size_t client_connections)
{
    header(out, "conflux_client_connections", "gauge", "Client connections open now (admin connections not counted).");
    cf_buf_appendf(out, "conflux_client_connections %zu\n", client_connections);
    header(out, "conflux_http1_refused_total", "counter",
           "HTTP/1 client connections answered with an error and closed before their request reached libh2o, by what "
           "was wrong (two Content-Lengths, a bare LF, ...).");
    reasons_render(out, "conflux_http1_refused_total", &http1_refused);
    header(out, "conflux_http2_goaway_total", "counter",
           "HTTP/2 connections closed with GOAWAY (ENHANCE_YOUR_CALM), by reason: rapid_reset, made_you_reset, "
           "frame_flood, header_flood.");
    reasons_render(out, "conflux_http2_goaway_total", &http2_goaway);
    header(out, "conflux_accept_paused_total", "counter",
           "Times accepting new connections paused for a moment, by reason: fd_limit (accept failed with EMFILE or the "
           "like), max_client_connections (the cap was reached).");
    reasons_render(out, "conflux_accept_paused_total", &accept_paused);
    header(out, "conflux_send_timeouts_total", "counter",
           "Client connections shut down because an answer handed to them went unread for limits.send_timeout.");
    cf_buf_appendf(out, "conflux_send_timeouts_total %" PRIu64 "\n", READ(&send_timeouts));
}

void cf_metrics_render_memory(cf_buf_t *out)
{
    /* After a burst (2 MiB bodies parsed into JSON, say), glibc keeps the freed memory in its per-thread arenas: RSS
     * stays near the burst's high-water mark while what is in use falls back. These two tell the cases apart. */
    struct mallinfo2 mi = mallinfo2();
    header(out, "conflux_memory_heap_bytes", "gauge",
           "Heap bytes by state, as glibc counts them: in_use (allocated, mmapped blocks included), free (held by the "
           "allocator for reuse; part of RSS until returned to the system).");
    cf_buf_appendf(out, "conflux_memory_heap_bytes{state=\"in_use\"} %zu\n", mi.uordblks + mi.hblkhd);
    cf_buf_appendf(out, "conflux_memory_heap_bytes{state=\"free\"} %zu\n", mi.fordblks);
}

/* One series per backend of the counter at `offset` in backend_series_t. */
static void backend_counter_render(cf_buf_t *out, const char *name, size_t offset)
{
    for (mnode_t *n = LOAD_PTR(&backends); n != NULL; n = LOAD_PTR(&n->next)) {
        series_start(out, name, "backend", n->name, NULL, NULL);
        cf_buf_appendf(out, "} %" PRIu64 "\n", READ((uint64_t *)((char *)n + offset)));
    }
}

/* the servers of backends with a circuit_breaker or health checks (peers.h), in three passes over the peers */
struct peers_pass_t {
    cf_buf_t *out;
    int family; /* 0: breaker state, 1: breaker opens, 2: healthy */
};

static void peer_render(const cf_peer_view_t *v, void *data)
{
    struct peers_pass_t *pass = data;
    static const char *const names[] = {"conflux_upstream_breaker_state", "conflux_upstream_breaker_opens_total",
                                        "conflux_upstream_server_healthy"};
    if (pass->family == 2 ? !v->has_health : !v->has_breaker)
        return;
    series_start(pass->out, names[pass->family], "backend", v->backend, "server", v->server);
    uint64_t value = pass->family == 0 ? (uint64_t)v->breaker_state : pass->family == 1 ? v->opens : (uint64_t)v->healthy;
    cf_buf_appendf(pass->out, "} %" PRIu64 "\n", value);
}

static void peers_render(cf_buf_t *out)
{
    struct peers_pass_t pass = {out, 0};
    header(out, "conflux_upstream_breaker_state", "gauge",
           "Each server's circuit breaker, by backend and server (its URL): 0 closed, 1 open (the server gets no "
           "attempt), 2 half-open (one probe attempt let through). Backends with a circuit_breaker only.");
    cf_peers_foreach(peer_render, &pass);
    header(out, "conflux_upstream_breaker_opens_total", "counter",
           "Times a server's circuit breaker opened after failed attempts in a row, by backend and server.");
    pass.family = 1;
    cf_peers_foreach(peer_render, &pass);
    header(out, "conflux_upstream_server_healthy", "gauge",
           "Each server's health as its active checks say, by backend and server: 1 in rotation, 0 taken out. Backends "
           "with health checks only.");
    pass.family = 2;
    cf_peers_foreach(peer_render, &pass);
}

void cf_metrics_render(cf_buf_t *out, size_t inflight, const cf_cache_stats_t *cache)
{
    header(out, "conflux_requests_total", "counter",
           "Client requests answered, by route pattern (\"none\": no route matched) and status (499: the client went away).");
    for (mnode_t *n = LOAD_PTR(&routes); n != NULL; n = LOAD_PTR(&n->next)) {
        route_series_t *rs = (route_series_t *)n;
        for (int s = 0; s != MAX_STATUS; ++s) {
            uint64_t v = READ(&rs->status[s]);
            if (v == 0)
                continue;
            char status[8];
            if (s != 0)
                snprintf(status, sizeof(status), "%d", s);
            else
                strcpy(status, "other");
            series_start(out, "conflux_requests_total", "route", n->name, "status", status);
            cf_buf_appendf(out, "} %" PRIu64 "\n", v);
        }
    }

    header(out, "conflux_rate_limited_total", "counter",
           "Requests refused with 429 by their route's rate_limit, by route (routes with a rate_limit that has judged a request).");
    for (mnode_t *n = LOAD_PTR(&routes); n != NULL; n = LOAD_PTR(&n->next)) {
        route_series_t *rs = (route_series_t *)n;
        if (!__atomic_load_n(&rs->has_limit, __ATOMIC_RELAXED))
            continue;
        series_start(out, "conflux_rate_limited_total", "route", n->name, NULL, NULL);
        cf_buf_appendf(out, "} %" PRIu64 "\n", READ(&rs->limited));
    }
    header(out, "conflux_rate_limit_keys", "gauge",
           "Keys in a route's rate_limit table, by route, as its last request saw it (at most 131072 per route; a reload "
           "starts the table empty).");
    for (mnode_t *n = LOAD_PTR(&routes); n != NULL; n = LOAD_PTR(&n->next)) {
        route_series_t *rs = (route_series_t *)n;
        if (!__atomic_load_n(&rs->has_limit, __ATOMIC_RELAXED))
            continue;
        series_start(out, "conflux_rate_limit_keys", "route", n->name, NULL, NULL);
        cf_buf_appendf(out, "} %" PRIu64 "\n", READ(&rs->limit_keys));
    }

    header(out, "conflux_jwt_failures_total", "counter",
           "Requests refused with 401 by their route's auth: jwt, by route and reason (missing, malformed, bad_header, bad_alg, "
           "unknown_kid, bad_signature, bad_claims, expired, not_yet_valid, wrong_issuer, wrong_audience, no_keys).");
    for (mnode_t *n = LOAD_PTR(&routes); n != NULL; n = LOAD_PTR(&n->next)) {
        route_series_t *rs = (route_series_t *)n;
        for (int e = 1; e != CF_JWT_NUM_ERRORS; ++e) {
            uint64_t v = READ(&rs->jwt_failures[e]);
            if (v == 0)
                continue;
            series_start(out, "conflux_jwt_failures_total", "route", n->name, "reason", cf_jwt_error_name(e));
            cf_buf_appendf(out, "} %" PRIu64 "\n", v);
        }
    }

    header(out, "conflux_request_duration_seconds", "histogram", "Time from a request's arrival to its answer, by route.");
    for (mnode_t *n = LOAD_PTR(&routes); n != NULL; n = LOAD_PTR(&n->next))
        hist_render(out, "conflux_request_duration_seconds_bucket", &((route_series_t *)n)->latency, "route", n->name, NULL, NULL);

    header(out, "conflux_call_duration_seconds", "histogram",
           "Duration of each upstream call that started, by route and call (a pass-through route's call is named after "
           "its backend).");
    for (mnode_t *n = LOAD_PTR(&routes); n != NULL; n = LOAD_PTR(&n->next))
        for (mnode_t *c = LOAD_PTR(&((route_series_t *)n)->calls); c != NULL; c = LOAD_PTR(&c->next))
            hist_render(out, "conflux_call_duration_seconds_bucket", &((call_series_t *)c)->latency, "route", n->name, "call",
                        c->name);

    header(out, "conflux_call_elements_total", "counter",
           "Elements of foreach calls by route, call and result: ok (answered), failed (null or dropped in the answer).");
    for (mnode_t *n = LOAD_PTR(&routes); n != NULL; n = LOAD_PTR(&n->next))
        for (mnode_t *c = LOAD_PTR(&((route_series_t *)n)->calls); c != NULL; c = LOAD_PTR(&c->next)) {
            const call_series_t *cs = (const call_series_t *)c;
            uint64_t ok = READ(&cs->elements_ok), failed = READ(&cs->elements_failed);
            if (ok == 0 && failed == 0) /* only calls that had elements */
                continue;
            series_start(out, "conflux_call_elements_total", "route", n->name, "call", c->name);
            cf_buf_appendf(out, ",result=\"ok\"} %" PRIu64 "\n", ok);
            series_start(out, "conflux_call_elements_total", "route", n->name, "call", c->name);
            cf_buf_appendf(out, ",result=\"failed\"} %" PRIu64 "\n", failed);
        }

    header(out, "conflux_upstream_results_total", "counter",
           "Upstream call outcomes by backend and result: ok, or the failure reason (status_NNN folded to status_4xx, "
           "status_5xx, ...).");
    for (mnode_t *n = LOAD_PTR(&backends); n != NULL; n = LOAD_PTR(&n->next))
        for (size_t r = 0; r != CF_NUM_RESULTS; ++r) {
            uint64_t v = READ(&((backend_series_t *)n)->results[r]);
            if (v == 0) /* a result is shown once it happened */
                continue;
            series_start(out, "conflux_upstream_results_total", "backend", n->name, "result", cf_reason_result_label(r));
            cf_buf_appendf(out, "} %" PRIu64 "\n", v);
        }

    header(out, "conflux_upstream_attempts_total", "counter",
           "Upstream exchanges the calls to a backend started: first attempts, retries and hedges (a cache miss counts "
           "the request it started, a hit none).");
    backend_counter_render(out, "conflux_upstream_attempts_total", offsetof(backend_series_t, attempts));
    header(out, "conflux_upstream_retries_total", "counter", "Attempts that followed a failed attempt (retries), by backend.");
    backend_counter_render(out, "conflux_upstream_retries_total", offsetof(backend_series_t, retries));
    header(out, "conflux_upstream_hedges_total", "counter",
           "Copies sent because an attempt had not answered after hedge_after, by backend.");
    backend_counter_render(out, "conflux_upstream_hedges_total", offsetof(backend_series_t, hedges));
    header(out, "conflux_retry_budget_exhausted_total", "counter",
           "Calls that did not send a retry or a hedge because the backend's retry budget was spent, by backend.");
    backend_counter_render(out, "conflux_retry_budget_exhausted_total", offsetof(backend_series_t, budget_exhausted));
    peers_render(out);

    header(out, "conflux_cache_requests_total", "counter",
           "Cached calls by route, call and cache result (hit, miss, stale, coalesced).");
    for (mnode_t *n = LOAD_PTR(&routes); n != NULL; n = LOAD_PTR(&n->next))
        for (mnode_t *c = LOAD_PTR(&((route_series_t *)n)->calls); c != NULL; c = LOAD_PTR(&c->next))
            for (int state = CF_CACHE_NONE + 1; state != CF_NUM_CACHE_STATES; ++state) {
                uint64_t v = READ(&((call_series_t *)c)->cache[state]);
                if (v == 0) /* a result is shown once it happened */
                    continue;
                series_start(out, "conflux_cache_requests_total", "route", n->name, "call", c->name);
                cf_buf_appendf(out, ",result=\"%s\"} %" PRIu64 "\n", cf_cache_state_name((cf_cache_state_t)state), v);
            }

    if (cache != NULL)
        cache_render(out, cache);

    header(out, "conflux_inflight_requests", "gauge",
           "Client requests conflux is working on: admitted, answer not yet handed to the client's connection (what "
           "limits.max_inflight bounds).");
    cf_buf_appendf(out, "conflux_inflight_requests %zu\n", inflight);

    header(out, "conflux_config_reloads_total", "counter", "Config reloads (SIGHUP) by result.");
    cf_buf_appendf(out, "conflux_config_reloads_total{result=\"ok\"} %" PRIu64 "\n", READ(&reloads_ok));
    cf_buf_appendf(out, "conflux_config_reloads_total{result=\"error\"} %" PRIu64 "\n", READ(&reloads_error));

    header(out, "conflux_access_log_dropped_total", "counter", "Access-log lines dropped because the writer fell behind.");
    cf_buf_appendf(out, "conflux_access_log_dropped_total %" PRIu64 "\n", READ(&log_dropped));

    static const char *const span_results[CF_METRICS_NUM_SPANS] = {"exported", "dropped", "failed"};
    header(out, "conflux_trace_spans_total", "counter",
           "Spans of sampled requests by what became of them: exported (the collector took them), dropped (the export "
           "queue was full, or no usable collector), failed (their batch got no 2xx in time).");
    for (size_t i = 0; i != CF_METRICS_NUM_SPANS; ++i)
        cf_buf_appendf(out, "conflux_trace_spans_total{result=\"%s\"} %" PRIu64 "\n", span_results[i], READ(&spans[i]));

    header(out, "conflux_build_info", "gauge", "The running conflux version and the libh2o it was built with.");
    series_start(out, "conflux_build_info", "version", cf_version, "libh2o", H2O_VERSION);
    cf_buf_appends(out, "} 1\n");
}
