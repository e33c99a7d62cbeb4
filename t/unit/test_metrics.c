/* Unit tests of the metrics: label escaping, result folding, the exposition text, exact counts under threads, cost. */
#include "../../gateway/router.c"
#include "../../gateway/template.c"
#include "../../gateway/body.c"
#include "../../gateway/cors.c"
#include "../../gateway/ratelimit.c"
#include "../../gateway/jwt.c"
#include "../../gateway/auth.c"
#include "../../gateway/config.c"
#include "../../gateway/plan.c"
#include "../../gateway/jsonout.c"
#include "../../gateway/version.c"
#include "../../gateway/reason.c"
#include "../../gateway/breaker.c"
#include "../../gateway/peers.c"
#include "../../gateway/metrics.c"
#include <pthread.h>
#include <time.h>
#include "tap.h"

static int contains(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

static char *render(void)
{
    cf_buf_t b = CF_BUF_INIT;
    cf_cache_stats_t cache = {.hits = 7, .misses = 3, .bytes = 1234};
    cf_metrics_render(&b, 42, &cache);
    return b.base;
}

static void test_escape(void)
{
    cf_buf_t b = CF_BUF_INIT;
    cf_metrics_escape_label(&b, "a\\b\"c\nd/{e}");
    is_str(b.base, "a\\\\b\\\"c\\nd/{e}", "backslash, quote and newline escaped; the rest kept");
    cf_buf_free(&b);
}

static void test_result_label(void)
{
    is_str(cf_reason_metric(CF_REASON_NONE, 200), "ok", "success");
    is_str(cf_reason_metric(CF_REASON_NONE, 0), "ok", "success without a status");
    is_str(cf_reason_metric(CF_REASON_NONE, 503), "status_5xx", "a proxied 503");
    is_str(cf_reason_metric(CF_REASON_NONE, 404), "status_4xx", "a proxied 404");
    is_str(cf_reason_metric(CF_REASON_STATUS, 503), "status_5xx", "status_503 folded");
    is_str(cf_reason_metric(CF_REASON_STATUS, 404), "status_4xx", "status_404 folded");
    is_str(cf_reason_metric(CF_REASON_STATUS, 302), "status_3xx", "status_302 folded");
    is_str(cf_reason_metric(CF_REASON_STATUS, 999), "status_other", "out of range");
    is_str(cf_reason_metric(CF_REASON_TIMEOUT, 0), "timeout", "a reason is its own result");
    int distinct = 1;
    for (size_t r = 0; r != CF_NUM_RESULTS; ++r)
        for (size_t q = 0; q != r; ++q)
            distinct &=
                r == CF_REASON_STATUS || q == CF_REASON_STATUS || strcmp(cf_reason_result_label(r), cf_reason_result_label(q)) != 0;
    ok(distinct, "one label per result (status_NNN is counted by class)");
}

static cf_config_t *config(void)
{
    static const char yaml[] = "listen: [{port: 1}]\n"
                               "backends:\n"
                               "  users: {url: http://127.0.0.1:9}\n"
                               "  legacy: {url: http://127.0.0.1:9}\n"
                               "routes:\n"
                               "  - path: /u/{id}\n"
                               "    calls:\n"
                               "      - {name: profile, backend: users, path: \"/users/{id}\"}\n"
                               "      - {name: orders, backend: users, path: \"/orders/{id}\"}\n"
                               "  - path: /legacy/{rest*}\n"
                               "    proxy: legacy\n";
    char err[1024];
    cf_config_t *c = cf_config_load_string("m.yaml", yaml, sizeof(yaml) - 1, err, sizeof(err));
    ok(c != NULL, "config loads: %s", c == NULL ? err : "");
    return c;
}

static void test_exposition(cf_config_t *c)
{
    const cf_route_t *u = &c->routes[0], *legacy = &c->routes[1];
    cf_call_record_t calls[2] = {
        {.name = "profile", .backend = "users", .status = 200, .duration_ns = 3000000, .cache = {.state = CF_CACHE_HIT}},
        {.name = "orders", .backend = "users", .status = 0, .reason = CF_REASON_TIMEOUT, .duration_ns = 700000000},
    };
    cf_request_record_t rec = {NULL, u, 200, 2000000, calls, 2};
    cf_metrics_observe(&rec);
    rec.duration_ns = 800000000;
    calls[0].cache.state = CF_CACHE_MISS;
    calls[1] =
        (cf_call_record_t){.name = "orders", .backend = "users", .status = 503, .reason = CF_REASON_STATUS, .duration_ns = 1000};
    cf_metrics_observe(&rec);
    ok(u->metrics != NULL && u->calls[0].metrics != NULL && u->calls[0].backend->metrics != NULL, "series cached in the config");

    cf_call_record_t pcall = {.name = "legacy", .backend = "legacy", .status = 502, .duration_ns = 5000000};
    cf_request_record_t prec = {NULL, legacy, 502, 6000000, &pcall, 1};
    cf_metrics_observe(&prec);
    cf_request_record_t none = {NULL, NULL, 404, 1000, NULL, 0};
    cf_metrics_observe(&none);
    cf_metrics_observe(&none);
    /* a record with a call that is in no config: looked up by name; its label needs escaping */
    cf_call_record_t odd = {.name = "we\"ird\\na\nme", .backend = "b\"k", .reason = CF_REASON_MISSING_PARAM};
    cf_request_record_t orec = {NULL, NULL, 400, 1000, &odd, 1};
    cf_metrics_observe(&orec);
    cf_metrics_reload(1);
    cf_metrics_reload(0);
    cf_metrics_reload(0);
    cf_metrics_log_dropped();

    char *t = render();
    ok(contains(t, "# TYPE conflux_requests_total counter\n"), "TYPE of requests");
    ok(contains(t, "conflux_requests_total{route=\"/u/{id}\",status=\"200\"} 2\n"), "requests by route and status");
    ok(contains(t, "conflux_requests_total{route=\"/legacy/{rest*}\",status=\"502\"} 1\n"), "proxy route");
    ok(contains(t, "conflux_requests_total{route=\"none\",status=\"404\"} 2\n"), "unrouted");
    ok(contains(t, "conflux_requests_total{route=\"none\",status=\"400\"} 1\n"), "unrouted 400");
    ok(contains(t, "conflux_request_duration_seconds_bucket{route=\"/u/{id}\",le=\"0.001\"} 0\n"), "2ms is above 1ms");
    ok(contains(t, "conflux_request_duration_seconds_bucket{route=\"/u/{id}\",le=\"0.0025\"} 1\n"), "2ms is under 2.5ms");
    ok(contains(t, "conflux_request_duration_seconds_bucket{route=\"/u/{id}\",le=\"0.5\"} 1\n"), "800ms is above 500ms");
    ok(contains(t, "conflux_request_duration_seconds_bucket{route=\"/u/{id}\",le=\"1\"} 2\n"), "cumulative at 1s");
    ok(contains(t, "conflux_request_duration_seconds_bucket{route=\"/u/{id}\",le=\"+Inf\"} 2\n"), "+Inf");
    ok(contains(t, "conflux_request_duration_seconds_sum{route=\"/u/{id}\"} 0.802000000\n"), "exact sum in seconds");
    ok(contains(t, "conflux_request_duration_seconds_count{route=\"/u/{id}\"} 2\n"), "count");
    ok(contains(t, "conflux_call_duration_seconds_count{route=\"/u/{id}\",call=\"orders\"} 2\n"), "call count");
    ok(contains(t, "conflux_call_duration_seconds_bucket{route=\"/u/{id}\",call=\"orders\",le=\"0.001\"} 1\n"),
       "1us call in the first bucket");
    ok(contains(t, "conflux_call_duration_seconds_sum{route=\"/u/{id}\",call=\"orders\"} 0.700001000\n"), "call sum");
    ok(contains(t, "conflux_call_duration_seconds_count{route=\"/legacy/{rest*}\",call=\"legacy\"} 1\n"),
       "proxy call named after its backend");
    ok(contains(t, "conflux_call_duration_seconds_count{route=\"none\",call=\"we\\\"ird\\\\na\\nme\"} 0\n"),
       "a call that never started: no latency observation; its name escaped");
    ok(contains(t, "conflux_upstream_results_total{backend=\"users\",result=\"ok\"} 2\n"), "ok results");
    ok(contains(t, "conflux_upstream_results_total{backend=\"users\",result=\"timeout\"} 1\n"), "timeout");
    ok(contains(t, "conflux_upstream_results_total{backend=\"users\",result=\"status_5xx\"} 1\n"), "status_5xx");
    ok(contains(t, "conflux_upstream_results_total{backend=\"legacy\",result=\"status_5xx\"} 1\n"), "proxied 502");
    ok(contains(t, "conflux_upstream_results_total{backend=\"b\\\"k\",result=\"missing_param\"} 1\n"), "escaped backend");
    ok(contains(t, "conflux_cache_requests_total{route=\"/u/{id}\",call=\"profile\",result=\"hit\"} 1\n"), "cache hit");
    ok(contains(t, "conflux_cache_requests_total{route=\"/u/{id}\",call=\"profile\",result=\"miss\"} 1\n"), "cache miss");
    ok(contains(t, "conflux_cache_results_total{result=\"hit\"} 7\n"), "process cache hits");
    ok(contains(t, "conflux_cache_bytes 1234\n"), "cache bytes");
    ok(contains(t, "conflux_inflight_requests 42\n"), "in-flight gauge");
    ok(contains(t, "conflux_config_reloads_total{result=\"ok\"} 1\n"), "reloads ok");
    ok(contains(t, "conflux_config_reloads_total{result=\"error\"} 2\n"), "reloads error");
    ok(contains(t, "conflux_access_log_dropped_total 1\n"), "log drops");
    ok(contains(t, "conflux_build_info{version=\"" CONFLUX_VERSION "\",libh2o=\"" H2O_VERSION "\"} 1\n"), "build info");
    /* every line: a comment, or name{labels} value */
    int good = 1;
    for (char *line = t, *nl; *line != '\0'; line = nl + 1) {
        nl = strchr(line, '\n');
        if (nl == NULL) {
            good = 0;
            break;
        }
        if (line[0] == '#')
            continue;
        char *sp = nl;
        while (sp != line && *sp != ' ')
            --sp;
        good &= sp != line && strncmp(line, "conflux_", 8) == 0 && (sp[-1] == '}' || memchr(line, '{', sp - line) == NULL);
    }
    ok(good, "every sample line is well-formed and the text ends with a newline");
    free(t);
}

/* many threads on one route: the counts are exact (relaxed atomics, no lock) */
#define THREADS 4
#define PER_THREAD 100000
static cf_config_t *shared;
static volatile uintptr_t ok_lookup_sink;

static void *hammer(void *unused)
{
    cf_call_record_t calls[2] = {{.name = "profile", .backend = "users", .status = 200, .duration_ns = 1500000},
                                 {.name = "orders", .backend = "users", .status = 200, .duration_ns = 1500000}};
    cf_request_record_t rec = {NULL, &shared->routes[0], 201, 1500000, calls, 2};
    for (int i = 0; i != PER_THREAD; ++i)
        cf_metrics_observe(&rec);
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_threads(cf_config_t *c)
{
    /* a second config with the same route: it shares the series (found by pattern, then cached in it) */
    shared = config();
    pthread_t th[THREADS];
    double t0 = now_s();
    for (int i = 0; i != THREADS; ++i)
        pthread_create(&th[i], NULL, hammer, NULL);
    for (int i = 0; i != THREADS; ++i)
        pthread_join(th[i], NULL);
    double per = (now_s() - t0) / (THREADS * PER_THREAD) * 1e9;
    ok(shared->routes[0].metrics == c->routes[0].metrics, "the same route pattern in a new config: the same series");
    char *t = render();
    char want[256];
    snprintf(want, sizeof(want), "conflux_requests_total{route=\"/u/{id}\",status=\"201\"} %d\n", THREADS * PER_THREAD);
    ok(contains(t, want), "exact count from %d threads", THREADS);
    snprintf(want, sizeof(want), "conflux_request_duration_seconds_bucket{route=\"/u/{id}\",le=\"0.0025\"} %d\n",
             THREADS * PER_THREAD + 1);
    ok(contains(t, want), "exact bucket count from %d threads", THREADS);
    free(t);
    diag("observe, 2 calls, %d threads contending on one route: %.0f ns per request (wall / requests)", THREADS, per);

    /* the cost on one thread: cached series vs. a lookup by name among 200 route series */
    cf_call_record_t calls[2] = {{.name = "profile", .backend = "users", .status = 200, .duration_ns = 1500000},
                                 {.name = "orders", .backend = "users", .status = 200, .duration_ns = 1500000}};
    cf_request_record_t rec = {NULL, &c->routes[0], 200, 1500000, calls, 2};
    enum { N = 1000000 };
    t0 = now_s();
    for (int i = 0; i != N; ++i)
        cf_metrics_observe(&rec);
    double cached_ns = (now_s() - t0) / N * 1e9;
    char name[64];
    for (int i = 0; i != 200; ++i) {
        snprintf(name, sizeof(name), "/route/%d/{id}", i);
        get(&routes, name, sizeof(route_series_t));
    }
    t0 = now_s();
    for (int i = 0; i != N / 10; ++i)
        ok_lookup_sink += (uintptr_t)find(&routes, "/route/199/{id}");
    double lookup_ns = (now_s() - t0) / (N / 10) * 1e9;
    diag("observe with cached series (route + 2 calls + backend): %.1f ns; one lookup by name among ~200 routes: %.1f ns",
         cached_ns, lookup_ns);
    ok(cached_ns < 2000, "observe stays cheap (%.1f ns)", cached_ns);
    cf_config_free(shared);
}

static void test_memcached_breaker(void)
{
    cf_buf_t b = CF_BUF_INIT;
    cf_cache_stats_t cache = {.memcached_errors = 3, .memcached_skipped_gets = 17, .memcached_skipped_sets = 2};
    cf_metrics_render(&b, 0, &cache);
    ok(contains(b.base, "conflux_cache_memcached_total{result=\"error\"} 3\n"), "memcached errors, tier or not");
    ok(!contains(b.base, "conflux_cache_memcached_breaker_state"), "no breaker series without a memcached tier");
    b.len = 0;
    cache.memcached_tier = 1;
    cache.memcached_state = 1;
    cache.memcached_opens = 1;
    cache.memcached_waiting = 4;
    cf_metrics_render(&b, 0, &cache);
    ok(contains(b.base, "# TYPE conflux_cache_memcached_breaker_state gauge\nconflux_cache_memcached_breaker_state 1\n"),
       "breaker state gauge: open");
    ok(contains(b.base, "# TYPE conflux_cache_memcached_breaker_opens_total counter\n"
                        "conflux_cache_memcached_breaker_opens_total 1\n"),
       "times it opened");
    ok(contains(b.base, "# TYPE conflux_cache_memcached_skipped_total counter\n"
                        "conflux_cache_memcached_skipped_total{op=\"get\"} 17\n"
                        "conflux_cache_memcached_skipped_total{op=\"set\"} 2\n"),
       "skipped lookups and stores");
    ok(contains(b.base, "# TYPE conflux_cache_memcached_waiting gauge\nconflux_cache_memcached_waiting 4\n"),
       "lookups waiting gauge");
    cf_buf_free(&b);
}

int main(void)
{
    test_escape();
    test_result_label();
    test_memcached_breaker();
    cf_config_t *c = config();
    if (c != NULL) {
        test_exposition(c);
        test_threads(c);
    }
    cf_config_free(c);
    return done_testing();
}
