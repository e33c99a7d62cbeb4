/* Unit tests of the config loader: every default, every parsed field, and the exact text of the errors. */
#include "../../gateway/router.c"
#include "../../gateway/template.c"
#include "../../gateway/body.c"
#include "../../gateway/cors.c"
#include "../../gateway/ratelimit.c"
#include "../../gateway/jwt.c"
#include "../../gateway/auth.c"
#include "../../gateway/config.c"
#include "../../gateway/reason.c"
#include "../../gateway/plan.c"
#include "../../gateway/jsonout.c"
#include <time.h>
#include <unistd.h>
#include "tap.h"

static char err[1024];

static cf_config_t *load(const char *yaml)
{
    err[0] = '\0';
    return cf_config_load_string("t.yaml", yaml, strlen(yaml), err, sizeof(err));
}

/* Loads `yaml`, expects it to fail with exactly `expected`. */
static void bad(const char *name, const char *yaml, const char *expected)
{
    cf_config_t *c = load(yaml);
    ok(c == NULL, "%s: refused", name);
    is_str(err, expected, "%s: message", name);
    cf_config_free(c);
}

/* Loads `yaml`, expects it to succeed. */
static void good(const char *name, const char *yaml)
{
    cf_config_t *c = load(yaml);
    ok(c != NULL, "%s: accepted%s%s", name, err[0] ? ": " : "", err);
    cf_config_free(c);
}

/* Runs cf_plan_explain into a malloc'ed string. */
static char *explain(const cf_config_t *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    cf_plan_explain(c, fp);
    fclose(fp);
    return buf;
}

static int contains(const char *hay, const char *needle)
{
    int found = hay != NULL && strstr(hay, needle) != NULL;
    if (!found)
        diag("missing: %s", needle);
    return found;
}

/* Lines 1-8 of most test files; routes start at line 9. */
#define BASE                                                                                                                       \
    "listen:\n"                            /* 1 */                                                                                 \
    "  - port: 8080\n"                     /* 2 */                                                                                 \
    "backends:\n"                          /* 3 */                                                                                 \
    "  users:\n"                           /* 4 */                                                                                 \
    "    url: http://127.0.0.1:9001\n"     /* 5 */                                                                                 \
    "  recs:\n"                            /* 6 */                                                                                 \
    "    url: http://127.0.0.1:9002/v1/\n" /* 7 */                                                                                 \
    "routes:\n"                            /* 8 */

/* a route with one plain call, lines 9-13 */
#define ROUTE1                                                                                                                     \
    "  - path: /u/{id}\n"         /* 9 */                                                                                          \
    "    calls:\n"                /* 10 */                                                                                         \
    "      - name: profile\n"     /* 11 */                                                                                         \
    "        backend: users\n"    /* 12 */                                                                                         \
    "        path: /users/{id}\n" /* 13 */

static void test_cache(void)
{
    cf_config_t *c = load(BASE ROUTE1 "        cache: 30s\n");
    ok(c != NULL, "cache: 30s loads: %s", err);
    if (c != NULL) {
        is(c->routes[0].calls[0].cache.ttl_ms, 30000, "ttl 30s");
        is(c->routes[0].calls[0].cache.swr_ms, 0, "no swr");
        is(c->cache.memory, 64u << 20, "cache.memory defaults to 64MiB");
        ok(c->cache.memcached_host == NULL, "no memcached by default");
        cf_config_free(c);
    }
    c = load(BASE ROUTE1 "        cache: { ttl: 2s, stale_while_revalidate: 1m, stale_if_error: 10m }\n"
                         "cache:\n  memory: 1MiB\n  memcached: 127.0.0.1:11211\n");
    ok(c != NULL, "cache mapping loads: %s", err);
    if (c != NULL) {
        is(c->routes[0].calls[0].cache.ttl_ms, 2000, "ttl");
        is(c->routes[0].calls[0].cache.swr_ms, 60000, "stale_while_revalidate");
        is(c->routes[0].calls[0].cache.sie_ms, 600000, "stale_if_error");
        is(c->cache.memory, 1u << 20, "memory");
        is_str(c->cache.memcached_host, "127.0.0.1", "memcached host");
        is(c->cache.memcached_port, 11211, "memcached port");
        cf_config_free(c);
    }
    c = load(BASE ROUTE1 "cache:\n  memcached: \":11311\"\n");
    ok(c != NULL && strcmp(c->cache.memcached_host, "127.0.0.1") == 0 && c->cache.memcached_port == 11311,
       "memcached host defaults to 127.0.0.1");
    cf_config_free(c);
}

static void test_defaults(void)
{
    cf_config_t *c = load(BASE ROUTE1);
    ok(c != NULL, "minimal config loads: %s", err);
    if (c == NULL)
        return;
    is_str(c->filename, "t.yaml", "filename");
    is(c->num_listen, 1, "one listener");
    ok(c->listen[0].host == NULL, "listen host defaults to NULL (all IPv4)");
    is(c->listen[0].port, 8080, "listen port");
    is(c->threads, (long long)(sysconf(_SC_NPROCESSORS_ONLN) > 64 ? 64 : sysconf(_SC_NPROCESSORS_ONLN)),
       "threads default: the number of CPUs");
    ok(c->listen[0].tls_certificate == NULL && !c->listen[0].http2, "no TLS, no HTTP/2 by default");
    ok(c->admin_host == NULL, "no admin by default");
    is(c->admin_port, 0, "no admin port");
    ok(c->access_log == NULL, "no access log by default");
    is(c->shutdown_timeout_ms, 10000, "shutdown_timeout default 10s");
    is(c->limits.max_request_body, 1 << 20, "max_request_body default 1MiB");
    is(c->limits.max_response_body, 8 << 20, "max_response_body default 8MiB");
    is(c->limits.max_inflight, 10000, "max_inflight default 10000");
    is(c->limits.send_timeout_ms, 10000, "send_timeout default 10s");
    is(c->limits.max_client_connections, 0, "max_client_connections unset by default");
    is(cf_config_max_client_connections(c, 20000), 10000, "... then half the open-file limit");
    is(cf_config_max_client_connections(c, 1024), 512, "... of whatever it is");
    is(cf_config_max_client_connections(c, 20), 16, "... and at least 16");

    is(c->num_backends, 2, "two backends");
    cf_backend_t *u = &c->backends[0], *r = &c->backends[1];
    is_str(u->name, "users", "backend name");
    is(u->index, 0, "backend index");
    is(r->index, 1, "backend index 1");
    is(u->line, 4, "backend line");
    is(u->col, 3, "backend col");
    is(u->timeout_ms, 5000, "backend timeout default 5s");
    is(u->connect_timeout_ms, 1000, "connect_timeout default 1s");
    is(u->max_connections, 0, "max_connections: no default (no cap but the open-file limit)");
    is(u->breaker.failures, 0, "no circuit_breaker by default");
    ok(u->health.path == NULL, "no health checks by default");
    is(u->num_servers, 1, "url: gives one server");
    is_str(u->servers[0].url, "http://127.0.0.1:9001", "server url as written");
    is_str(u->servers[0].host, "127.0.0.1", "server host");
    is(u->servers[0].port, 9001, "server port");
    is_str(u->servers[0].base_path, "", "no base path");
    is_str(r->servers[0].base_path, "/v1", "base path without its trailing slash");

    is(c->num_routes, 1, "one route");
    cf_route_t *rt = &c->routes[0];
    is_str(rt->pattern.src, "/u/{id}", "route pattern");
    is(rt->index, 0, "route index");
    is(rt->line, 9, "route line");
    is(rt->col, 5, "route col");
    is(rt->methods, CF_METHOD_GET | CF_METHOD_HEAD, "methods default GET, HEAD");
    is(rt->merge, CF_MERGE_GROUP, "merge default group");
    is(rt->on_conflict, CF_CONFLICT_ERROR, "on_conflict default: error");
    is(rt->forward_headers.n, 0, "no forwarded headers by default");
    is(rt->forward_query.n, 0, "no forwarded query by default");
    ok(rt->proxy == NULL, "not a proxy");
    is(rt->num_calls, 1, "one call");
    is(rt->deadline_ms, 5000, "deadline default: the call's timeout");
    cf_call_t *call = &rt->calls[0];
    is_str(call->name, "profile", "call name");
    ok(call->backend == u, "call backend");
    is_str(call->path.src, "/users/{id}", "call path");
    is(call->timeout_ms, 5000, "call timeout defaults to the backend's");
    is(call->required, 0, "required default false");
    is(call->on_error, CF_ON_ERROR_NULL, "on_error default null");
    is(call->num_deps, 0, "no deps");
    ok(call->target == NULL, "no target");
    is(call->allow.n + call->deny.n + call->num_rename, 0, "no shaping");
    is(call->index, 0, "call index");
    is(call->line, 11, "call line");
    is(call->col, 9, "call col");
    is(call->path.num_parts, 2, "template parts");
    is(call->path.parts[1].kind, CF_TPL_PARAM, "param part");
    is(call->path.parts[1].rest, 0, "not a rest param");
    cf_config_free(c);
}

/* Every default in the field tables is a value of its key: merged into an empty object, none is refused. */
static void test_table_defaults(void)
{
    static const struct {
        const char *name;
        const cf_yfield_t *table;
        size_t size;
    } tables[] = {
        {"top", top_fields, sizeof(cf_config_t)},
        {"listen", listen_fields, sizeof(cf_listen_t)},
        {"tls", tls_fields, sizeof(cf_listen_t)},
        {"limits", limits_fields, sizeof(cf_config_t)},
        {"cache", cache_fields, sizeof(cf_config_t)},
        {"backends", backend_fields, sizeof(cf_backend_t)},
        {"routes", route_fields, sizeof(cf_route_t)},
        {"calls", call_fields, sizeof(cf_call_t)},
        {"calls.cache", call_cache_fields, sizeof(cf_cache_policy_t)},
    };
    cf_yaml_t y = {.filename = "t.yaml"};
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); ++i) {
        void *object = calloc(1, tables[i].size);
        cf_yctx_t ctx;
        cf_yctx_init(&ctx, &y);
        ok(cf_ydefaults(&ctx, tables[i].table, object, 0) == 0, "%s: every default in the table is a value of its key%s%s",
           tables[i].name, ctx.failed ? ": " : "", ctx.err);
        free(object);
    }
}

static void test_everything(void)
{
    const char *yaml = "listen:\n"
                       "  - port: 8080\n"
                       "  - host: \"[::]\"\n"
                       "    port: 8080\n"
                       "  - host: 127.0.0.1\n"
                       "    port: 8081\n"
                       "threads: 1\n"
                       "admin: 127.0.0.1:9901\n"
                       "access_log: /var/log/conflux/access.log\n"
                       "shutdown_timeout: 3s\n"
                       "limits:\n"
                       "  max_request_body: 64KiB\n"
                       "  max_response_body: 2MiB\n"
                       "  max_inflight: 50\n"
                       "  max_client_connections: 300\n"
                       "  send_timeout: 30s\n"
                       "backends:\n"
                       "  users:\n"
                       "    servers: [http://127.0.0.1:9001, \"http://[::1]:9002/base/\", http://users.internal]\n"
                       "    timeout: 800ms\n"
                       "    connect_timeout: 200ms\n"
                       "    max_connections: 32\n"
                       "    circuit_breaker: {failures: 3}\n"
                       "    health: {path: /healthz?deep=1, unhealthy: 4}\n"
                       "  recs:\n"
                       "    url: http://127.0.0.1:9003\n"
                       "    timeout: 2s\n"
                       "  legacy:\n"
                       "    url: http://127.0.0.1:9004/old\n"
                       "routes:\n"
                       "  - path: /dash/{user_id}/{rest*}\n"
                       "    methods: [GET, post]\n"
                       "    deadline: 1500ms\n"
                       "    merge: merge\n"
                       "    on_conflict: last\n"
                       "    forward_headers: [Authorization, Accept-Language]\n"
                       "    forward_query: lang\n"
                       "    calls:\n"
                       "      - name: profile\n"
                       "        backend: users\n"
                       "        path: /users/{user_id}/{rest}?h={header.X-Trace}&q={query.q}\n"
                       "        timeout: 300ms\n"
                       "        required: true\n"
                       "        target: data.user\n"
                       "        allow: [id, segment, total]\n"
                       "        rename: { total: amount, segment: seg }\n"
                       "      - name: recs_2\n"
                       "        backend: recs\n"
                       "        path: /recs/{profile.seg.name}?also={profile.id}\n"
                       "        on_error: omit\n"
                       "        deny: [secret]\n"
                       "        required: false\n"
                       "        method: post\n"
                       "        safe: true\n"
                       "        body: { id: \"{profile.id}\", note: \"for {user_id}\", n: 1 }\n"
                       "  - path: /legacy/{rest*}\n"
                       "    methods: GET\n"
                       "    proxy: legacy\n";
    cf_config_t *c = load(yaml);
    ok(c != NULL, "full config loads: %s", err);
    if (c == NULL)
        return;
    is(c->num_listen, 3, "three listeners");
    is_str(c->listen[1].host, "::", "[::] loses its brackets");
    is_str(c->listen[2].host, "127.0.0.1", "IPv4 host");
    is(c->listen[2].port, 8081, "port");
    is_str(c->admin_host, "127.0.0.1", "admin host");
    is(c->admin_port, 9901, "admin port");
    is_str(c->access_log, "/var/log/conflux/access.log", "access_log path");
    is(c->shutdown_timeout_ms, 3000, "shutdown_timeout");
    is(c->limits.max_request_body, 64 * 1024, "max_request_body");
    is(c->limits.max_response_body, 2 * 1024 * 1024, "max_response_body");
    is(c->limits.max_inflight, 50, "max_inflight");
    is(cf_config_max_client_connections(c, 20000), 300, "max_client_connections as set, whatever the fd limit");
    is(c->limits.send_timeout_ms, 30000, "send_timeout");

    cf_backend_t *u = &c->backends[0];
    is(u->num_servers, 3, "three servers");
    is_str(u->servers[1].host, "::1", "IPv6 server host without brackets");
    is(u->servers[1].port, 9002, "IPv6 server port");
    is_str(u->servers[1].base_path, "/base", "IPv6 server base path");
    is_str(u->servers[2].host, "users.internal", "host name");
    is(u->servers[2].port, 80, "port defaults to 80");
    is(u->timeout_ms, 800, "backend timeout");
    is(u->connect_timeout_ms, 200, "connect_timeout");
    is(u->max_connections, 32, "max_connections");
    is(u->breaker.failures, 3, "circuit_breaker.failures");
    is(u->breaker.open_for_ms, 10000, "circuit_breaker.open_for default 10s");
    is_str(u->health.path, "/healthz?deep=1", "health.path");
    is(u->health.interval_ms, 5000, "health.interval default 5s");
    is(u->health.timeout_ms, 1000, "health.timeout default 1s");
    is(u->health.healthy, 2, "health.healthy default 2");
    is(u->health.unhealthy, 4, "health.unhealthy");
    is(u->resolve_every_ms, 30000, "resolve_every default 30s");

    cf_route_t *r = &c->routes[0];
    is(r->methods, CF_METHOD_GET | CF_METHOD_POST, "methods, case-insensitive");
    is(r->deadline_ms, 1500, "deadline");
    is(r->merge, CF_MERGE_MERGE, "merge: merge");
    is(r->on_conflict, CF_CONFLICT_LAST, "on_conflict: last");
    is(r->forward_headers.n, 2, "two forwarded headers");
    is_str(r->forward_headers.items[0], "authorization", "header names lower-cased");
    is_str(r->forward_headers.items[1], "accept-language", "header names lower-cased (2)");
    is(r->forward_query.n, 1, "a lone scalar is a list of one");
    is_str(r->forward_query.items[0], "lang", "forward_query");

    cf_call_t *p = &r->calls[0], *q = &r->calls[1];
    is(p->timeout_ms, 300, "call timeout");
    is(p->required, 1, "required");
    is(p->num_target, 2, "target has two fields");
    is_str(p->target[0], "data", "target[0]");
    is_str(p->target[1], "user", "target[1]");
    ok(p->target[2] == NULL, "target is NULL-terminated");
    is(p->allow.n, 3, "allow");
    is(p->num_rename, 2, "rename");
    is_str(p->rename[0].from, "total", "rename from");
    is_str(p->rename[0].to, "amount", "rename to");
    is(p->path.parts[1].kind, CF_TPL_PARAM, "{user_id}");
    is(p->path.parts[1].rest, 0, "{user_id} is not the rest");
    is(p->path.parts[3].kind, CF_TPL_PARAM, "{rest}");
    is(p->path.parts[3].rest, 1, "{rest} is bound to {rest*}");
    is(p->path.parts[5].kind, CF_TPL_HEADER, "{header.X-Trace}");
    is_str(p->path.parts[5].text, "x-trace", "header name lower-cased");
    is(p->path.parts[7].kind, CF_TPL_QUERY, "{query.q}");

    is(q->timeout_ms, 2000, "call timeout from its backend");
    is(q->on_error, CF_ON_ERROR_OMIT, "on_error: omit");
    is(q->required, 0, "required: false");
    is(q->deny.n, 1, "deny");
    is(q->num_deps, 1, "one dependency, used twice");
    is(q->deps[0], 0, "depends on profile");
    is(q->path.parts[1].kind, CF_TPL_CALL, "{profile.seg.name}");
    is(q->path.parts[1].call_index, 0, "call_index set");
    is(q->path.parts[3].call_index, 0, "call_index set (2)");
    is(p->method, CF_METHOD_GET, "method: GET by default");
    is(p->body.num_parts, 0, "no body by default");
    is(q->method, CF_METHOD_POST, "method: post, case-insensitive");
    is(q->safe, 1, "safe: true");
    is(q->body.num_parts, 5, "body: text, a value, text, an interpolated value, text");
    is(q->body.parts[1].kind, CF_BODY_VALUE, "\"{profile.id}\" is a value with its type");
    is(q->body.parts[1].tpl.call_index, 0, "a body's call placeholder is bound");
    is(q->body.parts[3].kind, CF_BODY_INTERPOLATED, "\"for {user_id}\" interpolates");
    is_str(q->body.parts[4].text, "\",\"n\":1}", "the rest is JSON text");

    cf_route_t *l = &c->routes[1];
    ok(l->proxy == &c->backends[2], "proxy backend");
    is(l->num_calls, 0, "a proxy route has no calls");
    is(l->methods, CF_METHOD_GET, "methods: a lone scalar");
    is(l->deadline_ms, 5000, "proxy deadline defaults to the backend timeout");

    char *out = explain(c);
    ok(contains(out, "listen [::]:8080"), "explain: IPv6 listener");
    ok(contains(out, "admin 127.0.0.1:9901"), "explain: admin");
    ok(contains(out, "route /dash/{user_id}/{rest*}  [GET, POST]"), "explain: route and methods");
    ok(contains(out, "forwards headers authorization, accept-language; query lang"), "explain: forwarding");
    ok(contains(out, "deadline 1500ms; the longest chain of timeouts is 2300ms: profile (300ms) -> recs_2 (2s)\n"
                     "    (calls still running at the deadline fail with \"deadline\")"),
       "explain: deadline and chain");
    ok(contains(out, "keeps the sub-document data.user, only fields id, segment, total; renames total -> amount, segment -> seg"),
       "explain: shaping");
    ok(contains(out, "on a conflict the last call in config order wins"), "explain: on_conflict");
    ok(contains(out, "profile gives: id, seg, amount"), "explain: keys of an allow list, renamed");
    ok(contains(out, "recs_2 gives: any key but secret"), "explain: keys of a deny list");
    ok(contains(out, "profile and recs_2 both give \"id\""), "explain: collisions");
    ok(contains(out, "method POST (not idempotent: never retried nor hedged); sends a JSON body (Content-Type: "
                     "application/json) from a template with 2 values"),
       "explain: method and body");
    ok(contains(out, "route /legacy/{rest*}  [GET]"), "explain: proxy route");
    ok(contains(out, "proxy -> legacy (http://127.0.0.1:9004/old), timeout 5s"), "explain: proxy target");
    free(out);
    cf_config_free(c);
}

static void test_plan(void)
{
    /* a diamond: a; b and c after a; d after b and c. The default deadline is the longest chain a -> c -> d. */
    const char *yaml = BASE "  - path: /d/{id}\n"
                            "    calls:\n"
                            "      - name: d\n"
                            "        backend: users\n"
                            "        path: /d?b={b.x}&c={c.y}&b2={b.z}\n"
                            "        timeout: 50ms\n"
                            "      - name: b\n"
                            "        backend: users\n"
                            "        path: /b/{a.id}\n"
                            "        timeout: 200ms\n"
                            "      - name: c\n"
                            "        backend: users\n"
                            "        path: /c/{a.id}\n"
                            "        timeout: 300ms\n"
                            "        required: true\n"
                            "      - name: a\n"
                            "        backend: users\n"
                            "        path: /a/{id}\n"
                            "        timeout: 100ms\n"
                            "      - name: e\n"
                            "        backend: recs\n"
                            "        path: /e\n"
                            "        timeout: 400ms\n";
    cf_config_t *c = load(yaml);
    ok(c != NULL, "diamond loads: %s", err);
    if (c == NULL)
        return;
    cf_route_t *r = &c->routes[0];
    is(r->deadline_ms, 450, "default deadline: the longest chain a (100) -> c (300) -> d (50)");
    is(r->calls[0].num_deps, 2, "d has two deps");
    is(r->calls[0].deps[0], 1, "deps sorted: b");
    is(r->calls[0].deps[1], 2, "deps sorted: c");
    is(r->calls[1].deps[0], 3, "b after a");
    is(r->calls[4].num_deps, 0, "e has no deps");
    char *out = explain(c);
    ok(contains(out, "deadline 450ms; the longest chain of timeouts is 450ms: a (100ms) -> c (300ms) -> d (50ms)\n"),
       "explain: the chain");
    ok(contains(out, "  stage 0: 2 calls, in parallel at once\n"
                     "      a: /a/{id}  (backend users: http://127.0.0.1:9001)\n"
                     "        timeout 100ms, optional: on error the key is null\n"
                     "      e: /e  (backend recs: http://127.0.0.1:9002/v1)\n"),
       "explain: stage 0");
    ok(contains(out, "  stage 1: 2 calls, in parallel, each as soon as its dependencies end\n"
                     "      b: /b/{a.id}"),
       "explain: stage 1");
    ok(contains(out, "        timeout 300ms, required: a failure fails the request\n"
                     "        after a (starts when it ends, finishes by 400ms at the latest)\n"),
       "explain: c, required, after a");
    ok(contains(out, "  stage 2: 1 call, as soon as its dependencies end\n"
                     "      d: /d?b={b.x}&c={c.y}&b2={b.z}"),
       "explain: stage 2");
    ok(contains(out, "        after b, c (starts when they end, finishes by 450ms at the latest)\n"), "explain: d after b, c");
    ok(contains(out, "  response: {\"d\": ..., \"b\": ..., \"c\": ..., \"a\": ..., \"e\": ...}  (merge: group, one key per call)"),
       "explain: group keys in config order");
    free(out);
    cf_config_free(c);

    /* without dependencies the default deadline, the longest chain of timeouts, is the largest one (docs/configuration.md) */
    c = load(BASE "  - path: /p\n"
                  "    calls:\n"
                  "      - name: a\n"
                  "        backend: users\n"
                  "        path: /a\n"
                  "        timeout: 700ms\n"
                  "      - name: b\n"
                  "        backend: recs\n"
                  "        path: /b\n"
                  "        timeout: 900ms\n");
    ok(c != NULL && c->routes[0].deadline_ms == 900, "parallel calls: deadline = largest timeout");
    cf_config_free(c);
}

static void test_merge(void)
{
#define MERGE_HEAD                                                                                                                 \
    BASE "  - path: /m\n"           /* 9 */                                                                                        \
         "    merge: merge\n"       /* 10 */                                                                                       \
         "    calls:\n"             /* 11 */                                                                                       \
         "      - name: a\n"        /* 12 */                                                                                       \
         "        backend: users\n" /* 13 */                                                                                       \
         "        path: /a\n"       /* 14 */
    bad("merge, neither has allow",
        MERGE_HEAD "      - name: b\n"
                   "        backend: users\n"
                   "        path: /b\n",
        "t.yaml:15:9: routes[0].calls[1]: calls \"a\" and \"b\" may both produce any key in merge: merge: set allow: on them, "
        "or on_conflict: first|last on the route");
    bad("merge, one has allow",
        MERGE_HEAD "      - name: b\n"
                   "        backend: users\n"
                   "        path: /b\n"
                   "        allow: [x, y]\n",
        "t.yaml:15:9: routes[0].calls[1]: calls \"a\" and \"b\" can both produce \"x\" in merge: merge: narrow "
        "allow:/deny:/rename:, or set on_conflict: first|last on the route");
    good("merge, deny excludes the other's keys", MERGE_HEAD "        deny: [x, y]\n"
                                                             "      - name: b\n"
                                                             "        backend: users\n"
                                                             "        path: /b\n"
                                                             "        allow: [x, y]\n");
    bad("merge, rename brings a denied key back",
        MERGE_HEAD "        deny: [x, y]\n"
                   "        rename: { z: y }\n"
                   "      - name: b\n"
                   "        backend: users\n"
                   "        path: /b\n"
                   "        allow: [x, y]\n",
        "t.yaml:17:9: routes[0].calls[1]: calls \"a\" and \"b\" can both produce \"y\" in merge: merge: narrow "
        "allow:/deny:/rename:, or set on_conflict: first|last on the route");
    good("merge, disjoint allow lists", MERGE_HEAD "        allow: [id, name]\n"
                                                   "      - name: b\n"
                                                   "        backend: users\n"
                                                   "        path: /b\n"
                                                   "        allow: [total]\n"
                                                   "      - name: c\n"
                                                   "        backend: users\n"
                                                   "        path: /c\n"
                                                   "        allow: [items]\n");
    bad("merge, allow lists collide after rename",
        MERGE_HEAD "        allow: [id, name]\n"
                   "      - name: b\n"
                   "        backend: users\n"
                   "        path: /b\n"
                   "        allow: [total]\n"
                   "      - name: c\n"
                   "        backend: users\n"
                   "        path: /c\n"
                   "        allow: [items, uid]\n"
                   "        rename: { uid: id }\n",
        "t.yaml:20:9: routes[0].calls[2]: calls \"a\" and \"c\" can both produce \"id\" in merge: merge: narrow "
        "allow:/deny:/rename:, or set on_conflict: first|last on the route");
    good("merge, renaming away resolves it", MERGE_HEAD "        allow: [id, name]\n"
                                                        "        rename: { id: user_id }\n"
                                                        "      - name: b\n"
                                                        "        backend: users\n"
                                                        "        path: /b\n"
                                                        "        allow: [id]\n");
    good("merge, on_conflict: first", BASE "  - path: /m\n"
                                           "    merge: merge\n"
                                           "    on_conflict: first\n"
                                           "    calls:\n"
                                           "      - name: a\n"
                                           "        backend: users\n"
                                           "        path: /a\n"
                                           "      - name: b\n"
                                           "        backend: users\n"
                                           "        path: /b\n");
    good("merge, a single call", BASE "  - path: /m\n"
                                      "    merge: merge\n"
                                      "    calls:\n"
                                      "      - name: a\n"
                                      "        backend: users\n"
                                      "        path: /a\n");
    bad("on_conflict without merge: merge",
        BASE "  - path: /m\n"
             "    on_conflict: first\n"
             "    calls:\n"
             "      - name: a\n"
             "        backend: users\n"
             "        path: /a\n",
        "t.yaml:10:18: routes[0].on_conflict: only applies with merge: merge");
    bad("on_conflict: error is not a choice",
        BASE "  - path: /m\n"
             "    on_conflict: error\n",
        "t.yaml:10:18: routes[0].on_conflict: \"error\" is not one of: first, last");
    bad("merge: bogus",
        BASE "  - path: /m\n"
             "    merge: deep\n",
        "t.yaml:10:12: routes[0].merge: \"deep\" is not one of: group, merge");

    /* explain lists collisions when on_conflict allows them */
    cf_config_t *c = load(BASE "  - path: /m\n"
                               "    merge: merge\n"
                               "    on_conflict: first\n"
                               "    calls:\n"
                               "      - name: a\n"
                               "        backend: users\n"
                               "        path: /a\n"
                               "      - name: b\n"
                               "        backend: users\n"
                               "        path: /b\n"
                               "        allow: [k]\n");
    char *out = explain(c);
    ok(contains(out, "on a conflict the first call in config order wins"), "explain: first wins");
    ok(contains(out, "    a gives: any key\n"), "explain: a gives any key");
    ok(contains(out, "    b gives: k\n"), "explain: b gives k");
    ok(contains(out, "    collisions:\n      a and b both give \"k\"\n"), "explain: the collision");
    free(out);
    cf_config_free(c);
    c = load(BASE "  - path: /m\n"
                  "    merge: merge\n"
                  "    on_conflict: last\n"
                  "    calls:\n"
                  "      - name: a\n"
                  "        backend: users\n"
                  "        path: /a\n"
                  "      - name: b\n"
                  "        backend: users\n"
                  "        path: /b\n");
    out = explain(c);
    ok(contains(out, "      a and b may both give any key\n"), "explain: an any/any collision");
    free(out);
    cf_config_free(c);
    c = load(MERGE_HEAD "        allow: [x]\n");
    out = explain(c);
    ok(contains(out, "    collisions: none\n"), "explain: no collisions");
    free(out);
    cf_config_free(c);
#undef MERGE_HEAD
}

#define TLS_RT "backends:\n  b: {url: \"http://127.0.0.1:1\"}\nroutes:\n  - path: /\n    proxy: b\n"
static void test_top_level_errors(void)
{
    bad("empty file", "", "t.yaml: the file is empty (it needs at least listen: and routes:)");
    bad("comment only", "# nothing\n", "t.yaml: the file is empty (it needs at least listen: and routes:)");
    bad("not a mapping", "- a\n- b\n", "t.yaml:1:1: expected a mapping (key: value)");
    bad("unknown key with suggestion", "listn:\n  - port: 8080\n", "t.yaml:1:1: unknown key \"listn\" (did you mean \"listen\"?)");
    bad("unknown key", BASE ROUTE1 "frobnicate: 1\n", "t.yaml:14:1: unknown key \"frobnicate\"");
    bad("duplicate key", BASE ROUTE1 "listen:\n  - port: 1\n", "t.yaml:14:1: listen: duplicate key");
    bad("missing listen", "routes:\n  - path: /\n", "t.yaml:1:1: missing listen: (e.g. listen: [{port: 8080}])");
    bad("missing routes", "listen:\n  - port: 8080\n", "t.yaml:1:1: missing routes:");
    bad("empty routes", "listen:\n  - port: 8080\nroutes: []\n",
        "t.yaml:3:9: routes: expected a list of routes, each {path:, calls: [...]} or {path:, proxy: BACKEND}");
    bad("listen not a list", "listen: 8080\n",
        "t.yaml:1:9: listen: expected a list of listeners, e.g. [{port: 8080}, {host: 127.0.0.1, port: 8081}]");
    bad("listen without port", "listen:\n  - host: 127.0.0.1\n", "t.yaml:2:5: listen[0]: missing port:");
    bad("listen port out of range", "listen:\n  - port: 70000\n",
        "t.yaml:2:11: listen[0].port: 70000 is out of range (1 to 65535)");
    bad("listen port zero", "listen:\n  - port: 0\n", "t.yaml:2:11: listen[0].port: 0 is out of range (1 to 65535)");
    bad("listen host not an address", "listen:\n  - port: 1\n    host: example.com\n",
        "t.yaml:3:11: listen[0].host: \"example.com\" is not an IP address (use 0.0.0.0, 127.0.0.1 or \"[::]\")");
    bad("listen tls", "listen:\n  - port: 1\n    tls: {}\n" TLS_RT,
        "t.yaml:3:10: listen[0].tls: needs both certificate: and key: (PEM files)");
    bad("listen tls key", "listen:\n  - port: 1\n    tls: {certificate: /c.pem, key: /k.pem, cert: x}\n" TLS_RT,
        "t.yaml:3:45: listen[0].tls: unknown key \"cert\"");
    bad("http2 without tls", "listen:\n  - port: 1\n    http2: true\n" TLS_RT,
        "t.yaml:3:12: listen[0].http2: HTTP/2 is offered through TLS ALPN only: it needs tls:");
    {
        cf_config_t *t = load("listen:\n  - port: 1\n    tls: {certificate: /c.pem, key: /k.pem}\n    http2: true\n" TLS_RT);
        ok(t != NULL, "tls + http2 load");
        if (t != NULL) {
            is_str(t->listen[0].tls_certificate, "/c.pem", "certificate");
            is_str(t->listen[0].tls_key, "/k.pem", "key");
            is(t->listen[0].http2, 1, "http2");
            is(t->listen[0].tls_line, 3, "tls: line");
            cf_config_retain(t);
            cf_config_free(t);
            is(t->refcnt, 1, "refcount: retain + free leaves one");
            cf_config_free(t);
        }
    }
    bad("listen twice", "listen:\n  - port: 80\n  - port: 81\n  - host: 0.0.0.0\n    port: 80\n",
        "t.yaml:4:5: listen[2]: the same address as listen[0]");
    good("listen same port, other host", BASE ROUTE1 "  - path: /x\n    proxy: users\n");
    good("threads 2", BASE ROUTE1 "threads: 2\n");
    bad("threads 65", BASE ROUTE1 "threads: 65\n", "t.yaml:14:10: threads: 65 is out of range (1 to 64)");
    bad("threads 0", BASE ROUTE1 "threads: 0\n", "t.yaml:14:10: threads: 0 is out of range (1 to 64)");
    bad("cache memory", BASE ROUTE1 "cache:\n  memory: lots\n",
        "t.yaml:15:11: cache.memory: \"lots\" is not a size (use 512KiB, 64MiB, or a byte count)");
    bad("cache memcached", BASE ROUTE1 "cache:\n  memcached: nowhere\n",
        "t.yaml:15:14: cache.memcached: \"nowhere\" is not host:port (e.g. 127.0.0.1:11211)");
    bad("cache unknown key", BASE ROUTE1 "cache:\n  memroy: 1MiB\n",
        "t.yaml:15:3: cache: unknown key \"memroy\" (did you mean \"memory\"?)");
    bad("admin not host:port", BASE ROUTE1 "admin: localhost\n",
        "t.yaml:14:8: admin: \"localhost\" is not host:port (e.g. 127.0.0.1:9901)");
    bad("admin host name", BASE ROUTE1 "admin: localhost:9901\n",
        "t.yaml:14:8: admin: \"localhost:9901\" is not an IP address and port (e.g. 127.0.0.1:9901)");
    bad("admin on a public port", BASE ROUTE1 "admin: 127.0.0.1:8080\n",
        "t.yaml:14:8: admin: port 8080 is also a public listener (listen[0])");
    cf_config_t *c = load(BASE ROUTE1 "admin: \":9901\"\n");
    ok(c != NULL && strcmp(c->admin_host, "127.0.0.1") == 0 && c->admin_port == 9901, "admin host defaults to 127.0.0.1");
    cf_config_free(c);
    c = load(BASE ROUTE1 "admin: \"[::1]:9901\"\n");
    ok(c != NULL && strcmp(c->admin_host, "::1") == 0, "admin on IPv6");
    cf_config_free(c);
    bad("bad duration", BASE ROUTE1 "shutdown_timeout: 5 sec\n",
        "t.yaml:14:19: shutdown_timeout: \"5 sec\" is not a duration (use 500ms, 2s, 1m)");
    bad("bad size", BASE ROUTE1 "limits:\n  max_request_body: 1 MB\n",
        "t.yaml:15:21: limits.max_request_body: \"1 MB\" is not a size (use 512KiB, 64MiB, or a byte count)");
    bad("limits unknown", BASE ROUTE1 "limits:\n  max_infligt: 1\n",
        "t.yaml:15:3: limits: unknown key \"max_infligt\" (did you mean \"max_inflight\"?)");
    bad("limits far off", BASE ROUTE1 "limits:\n  body: 1\n", "t.yaml:15:3: limits: unknown key \"body\"");
    c = load(BASE ROUTE1 "access_log: \"-\"\n");
    ok(c != NULL && strcmp(c->access_log, "-") == 0, "access_log: - (stderr)");
    cf_config_free(c);
    bad("access_log empty", BASE ROUTE1 "access_log: \"\"\n", "t.yaml:14:13: access_log: expected a string, got nothing");
    bad("access_log not a string", BASE ROUTE1 "access_log: [a, b]\n", "t.yaml:14:13: access_log: expected a string, not a list");
    bad("invalid YAML", "listen: [\n", "t.yaml:2:1: invalid YAML: did not find expected node content while parsing a flow node");
}

static void test_backend_errors(void)
{
#define RT "routes:\n  - path: /\n    proxy: b\n"
    bad("sni", "listen: [{port: 1}]\nbackends:\n  b:\n    url: https://x\n    sni: a/b\n" RT,
        "t.yaml:5:10: backends.b.sni: \"a/b\" is not a host name");
    {
        cf_config_t *t = load("listen: [{port: 1}]\nbackends:\n  b:\n    url: https://api.example.com\n    sni: api\n" RT);
        ok(t != NULL, "https backend loads");
        if (t != NULL) {
            is(t->backends[0].servers[0].tls, 1, "https: tls");
            is(t->backends[0].servers[0].port, 443, "https: port 443 by default");
            is_str(t->backends[0].sni, "api", "sni");
            cf_config_free(t);
        }
    }
    bad("not http", "listen: [{port: 1}]\nbackends:\n  b:\n    url: ftp://x\n" RT,
        "t.yaml:4:10: backends.b.url: \"ftp://x\" is not an http:// or https:// URL (e.g. http://127.0.0.1:9001)");
    bad("no host", "listen: [{port: 1}]\nbackends:\n  b:\n    url: http://:80\n" RT,
        "t.yaml:4:10: backends.b.url: \"http://:80\" has no host (e.g. http://127.0.0.1:9001)");
    bad("bad port", "listen: [{port: 1}]\nbackends:\n  b:\n    url: http://h:99999\n" RT,
        "t.yaml:4:10: backends.b.url: \"http://h:99999\" has an invalid port (1 to 65535)");
    bad("userinfo", "listen: [{port: 1}]\nbackends:\n  b:\n    url: http://u@h/\n" RT,
        "t.yaml:4:10: backends.b.url: \"http://u@h/\" has '@' after the host; only http://host[:port][/path] is allowed");
    bad("query", "listen: [{port: 1}]\nbackends:\n  b:\n    url: http://h/a?x=1\n" RT,
        "t.yaml:4:10: backends.b.url: \"http://h/a?x=1\" may not have a query, a fragment, spaces or control characters; only "
        "http://host[:port][/path]");
    bad("bad IPv6", "listen: [{port: 1}]\nbackends:\n  b:\n    url: http://[zz]:1\n" RT,
        "t.yaml:4:10: backends.b.url: \"http://[zz]:1\" has a bracketed host that is not an IPv6 address");
    bad("servers item", "listen: [{port: 1}]\nbackends:\n  b:\n    servers:\n      - http://a\n      - http://b:0\n" RT,
        "t.yaml:6:9: backends.b.servers[1]: \"http://b:0\" has an invalid port (1 to 65535)");
    bad("both url and servers", "listen: [{port: 1}]\nbackends:\n  b:\n    servers: [http://a]\n    url: http://b\n" RT,
        "t.yaml:5:10: backends.b.url: use either servers: or url:, not both");
    bad("neither", "listen: [{port: 1}]\nbackends:\n  b:\n    timeout: 1s\n" RT,
        "t.yaml:4:5: backends.b: needs servers: [http://host:port, ...] or url: http://host:port");
    bad("retries over 10", "listen: [{port: 1}]\nbackends:\n  b:\n    url: http://a\n    retries: 11\n" RT,
        "t.yaml:5:14: backends.b.retries: 11 is out of range (0 to 10)");
    bad("retry_on: a reason that is not retried",
        "listen: [{port: 1}]\nbackends:\n  b:\n    url: http://a\n    retry_on: [reset, invalid_json]\n" RT,
        "t.yaml:5:23: backends.b.retry_on[1]: \"invalid_json\" is not a failure that can be retried (connect_failed, reset, "
        "timeout, bad_response, status_400 to status_599)");
    bad("hedge_after: p50", "listen: [{port: 1}]\nbackends:\n  b:\n    url: http://a\n    hedge_after: p50\n" RT,
        "t.yaml:5:18: backends.b.hedge_after: expected a duration (150ms) or a percentile of recent latencies: p90, p95 or p99");
    {
        cf_config_t *c = load("listen: [{port: 1}]\nbackends:\n  b:\n    url: http://a\n" RT);
        const cf_backend_t *b = c != NULL ? &c->backends[0] : NULL;
        ok(b != NULL, "a backend without resilience keys");
        if (b != NULL) {
            is(b->retries, 0, "retries: 0 by default");
            is(b->hedge_after_ms, 0, "no hedging by default");
            is(b->retry_budget.percent, 20, "retry_budget.percent: 20 by default");
            is(b->retry_budget.min, 3, "retry_budget.min: 3 by default");
            is(b->max_hedges, 1, "max_hedges: 1 by default");
            ok(b->retry_on == (1u << CF_REASON_CONNECT_FAILED | 1u << CF_REASON_RESET), "retry_on: connect_failed, reset ...");
            ok(cf_backend_retries_status(b, 502) && cf_backend_retries_status(b, 503) && cf_backend_retries_status(b, 504) &&
                   !cf_backend_retries_status(b, 500),
               "... status_502, status_503, status_504 by default");
        }
        cf_config_free(c);
        c = load("listen: [{port: 1}]\nbackends:\n  b:\n    url: http://a\n    retries: 2\n    retry_on: [timeout, status_429]\n"
                 "    retry_budget: {min: 7}\n    hedge_after: p99\n    hedge_fallback: 70ms\n" RT);
        b = c != NULL ? &c->backends[0] : NULL;
        ok(b != NULL, "a backend with every resilience key: %s", err);
        if (b != NULL) {
            is(b->retries, 2, "retries");
            ok(b->retry_on == 1u << CF_REASON_TIMEOUT && cf_backend_retries_status(b, 429) && !cf_backend_retries_status(b, 503),
               "retry_on replaces the default list");
            is(b->retry_budget.percent, 20, "retry_budget: the percent left out keeps its default");
            is(b->retry_budget.min, 7, "retry_budget.min");
            is(b->hedge_percentile, 99, "hedge_after: p99");
            is(b->hedge_after_ms, 70, "hedge_after: p99 hedges after hedge_fallback until there are samples");
        }
        cf_config_free(c);
    }
    bad("circuit_breaker open_for",
        "listen: [{port: 1}]\nbackends:\n  b:\n    url: http://a\n    circuit_breaker: {open_for: 6m}\n" RT,
        "t.yaml:5:33: backends.b.circuit_breaker.open_for: \"6m\" is out of range");
    bad("health healthy 0", "listen: [{port: 1}]\nbackends:\n  b:\n    url: http://a\n    health: {path: /h, healthy: 0}\n" RT,
        "t.yaml:5:33: backends.b.health.healthy: 0 is out of range (1 to 100)");
    bad("max_connections 0", "listen: [{port: 1}]\nbackends:\n  b:\n    url: http://a\n    max_connections: 0\n" RT,
        "t.yaml:5:22: backends.b.max_connections: 0 is out of range (1 to 10000000)");
    bad("timeout 0", "listen: [{port: 1}]\nbackends:\n  b:\n    url: http://a\n    timeout: 0\n" RT,
        "t.yaml:5:14: backends.b.timeout: \"0\" is out of range");
    bad("backend name", "listen: [{port: 1}]\nbackends:\n  9b:\n    url: http://a\n" RT,
        "t.yaml:3:3: backends: a backend name is letters, digits, '_' and '-', starting with a letter or '_'");
    bad("backend twice", "listen: [{port: 1}]\nbackends:\n  b:\n    url: http://a\n  b:\n    url: http://c\n" RT,
        "t.yaml:5:3: backends.b: backend \"b\" is defined twice");
    bad("backends not a mapping", "listen: [{port: 1}]\nbackends: [a]\n" RT,
        "t.yaml:2:11: backends: expected a mapping of backend names to {servers: [...]} or {url: ...}");
    bad("unknown proxy backend", "listen: [{port: 1}]\nbackends:\n  a:\n    url: http://a\n  c:\n    url: http://c\n" RT,
        "t.yaml:9:12: routes[0].proxy: unknown backend \"b\" (backends: a, c)");
    bad("no backends at all", "listen: [{port: 1}]\n" RT,
        "t.yaml:4:12: routes[0].proxy: unknown backend \"b\" (no backends: defined)");
    good("unused backend", "listen: [{port: 1}]\nbackends:\n  a:\n    url: http://a\n  b:\n    url: http://b\n" RT);
    good("routes before backends", "listen: [{port: 1}]\n" RT "backends:\n  b:\n    url: http://a\n");
#undef RT
}

static void test_route_errors(void)
{
    bad("route not a mapping", BASE "  - /x\n", "t.yaml:9:5: routes[0]: expected a mapping (key: value)");
    bad("route without path", BASE "  - proxy: users\n", "t.yaml:9:5: routes[0]: missing path:");
    bad("bad pattern", BASE "  - path: x\n    proxy: users\n", "t.yaml:9:11: routes[0].path: a path pattern must start with '/'");
    bad("neither calls nor proxy", BASE "  - path: /x\n",
        "t.yaml:9:5: routes[0]: needs calls: (an aggregated route) or proxy: BACKEND (a pass-through route)");
    bad("calls and proxy", BASE ROUTE1 "    proxy: users\n",
        "t.yaml:11:7: routes[0].calls: a route has either calls: or proxy:, not both");
    bad("proxy and merge", BASE "  - path: /x\n    proxy: users\n    merge: merge\n",
        "t.yaml:11:12: routes[0].merge: only for routes with calls: (a proxy: route passes the whole request through)");
    bad("proxy and forward_headers", BASE "  - path: /x\n    proxy: users\n    forward_headers: [a]\n",
        "t.yaml:11:22: routes[0].forward_headers: only for routes with calls: (a proxy: route passes the whole request through)");
    bad("unknown method", BASE "  - path: /x\n    methods: [GET, FETCH]\n",
        "t.yaml:10:20: routes[0].methods[1]: unknown method \"FETCH\" (use GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS)");
    bad("unknown method, scalar", BASE "  - path: /x\n    methods: FETCH\n",
        "t.yaml:10:14: routes[0].methods: unknown method \"FETCH\" (use GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS)");
    bad("no methods", BASE "  - path: /x\n    methods: []\n", "t.yaml:10:14: routes[0].methods: expected at least one method");
    bad("bad deadline", BASE "  - path: /x\n    deadline: soon\n",
        "t.yaml:10:15: routes[0].deadline: \"soon\" is not a duration (use 500ms, 2s, 1m)");
    bad("unknown route key", BASE "  - path: /x\n    method: [GET]\n",
        "t.yaml:10:5: routes[0]: unknown key \"method\" (did you mean \"methods\"?)");
    bad("hop-by-hop header", BASE "  - path: /x\n    forward_headers: [Accept, Connection]\n",
        "t.yaml:10:31: routes[0].forward_headers[1]: \"Connection\" is a hop-by-hop header and is never forwarded (RFC 9110 "
        "7.6.1)");
    bad("Host header", BASE "  - path: /x\n    forward_headers: Host\n",
        "t.yaml:10:22: routes[0].forward_headers: \"Host\" is set by conflux for each upstream request and cannot be forwarded");
    bad("bad header name", BASE "  - path: /x\n    forward_headers: [\"a b\"]\n",
        "t.yaml:10:23: routes[0].forward_headers[0]: \"a b\" is not a header name");
    bad("empty calls", BASE "  - path: /x\n    calls: []\n",
        "t.yaml:10:12: routes[0].calls: expected a list of calls, each {name:, backend:, path:}");
    bad("duplicate route", BASE ROUTE1 "  - path: /u/{other}\n    methods: [HEAD, POST]\n    proxy: users\n",
        "t.yaml:14:11: routes[1].path: route \"/u/{other}\" conflicts with route \"/u/{id}\": same path shape and method HEAD");
    good("same path, other methods", BASE ROUTE1 "  - path: /u/{other}\n    methods: [POST]\n    proxy: users\n");
    bad("second route's error", BASE ROUTE1 "  - path: /v\n    calls:\n      - name: x\n        backend: nope\n",
        "t.yaml:17:18: routes[1].calls[0].backend: unknown backend \"nope\" (backends: users, recs)");
}

static void test_call_errors(void)
{
#define R "  - path: /u/{id}\n    calls:\n" /* lines 9-10; calls from line 11 */
    bad("call not a mapping", BASE R "      - profile\n", "t.yaml:11:9: routes[0].calls[0]: expected a mapping (key: value)");
    bad("missing name", BASE R "      - backend: users\n        path: /x\n", "t.yaml:11:9: routes[0].calls[0]: missing name:");
    bad("missing backend", BASE R "      - name: a\n        path: /x\n", "t.yaml:11:9: routes[0].calls[0]: missing backend:");
    bad("missing path", BASE R "      - name: a\n        backend: users\n", "t.yaml:11:9: routes[0].calls[0]: missing path:");
    bad("bad name", BASE R "      - name: 1a\n",
        "t.yaml:11:15: routes[0].calls[0].name: \"1a\" is not a call name (letters, digits, '_' and '-', starting with a letter or "
        "'_')");
    bad("reserved name", BASE R "      - name: query\n",
        "t.yaml:11:15: routes[0].calls[0].name: \"query\" is reserved in templates ({query.NAME}); choose another name");
    bad("reserved name item", BASE R "      - name: item\n",
        "t.yaml:11:15: routes[0].calls[0].name: \"item\" is reserved in templates ({item.NAME}); choose another name");
    bad("duplicate name", BASE ROUTE1 "      - name: profile\n",
        "t.yaml:14:15: routes[0].calls[1].name: \"profile\" is already the name of calls[0]");
    bad("unknown backend", BASE R "      - name: a\n        backend: user\n",
        "t.yaml:12:18: routes[0].calls[0].backend: unknown backend \"user\" (backends: users, recs)");
    bad("bad timeout", BASE ROUTE1 "        timeout: 5 sec\n",
        "t.yaml:14:18: routes[0].calls[0].timeout: \"5 sec\" is not a duration (use 500ms, 2s, 1m)");
    bad("timeout too long", BASE ROUTE1 "        timeout: 2h\n",
        "t.yaml:14:18: routes[0].calls[0].timeout: \"2h\" is out of range");
    bad("bad required", BASE ROUTE1 "        required: yes\n",
        "t.yaml:14:19: routes[0].calls[0].required: \"yes\" is not a boolean (use true or false)");
    bad("bad on_error", BASE ROUTE1 "        on_error: fail\n",
        "t.yaml:14:19: routes[0].calls[0].on_error: \"fail\" is not one of: null, omit");
    bad("unknown call key", BASE ROUTE1 "        timout: 1s\n",
        "t.yaml:14:9: routes[0].calls[0]: unknown key \"timout\" (did you mean \"timeout\"?)");
    bad("cache not a duration", BASE ROUTE1 "        cache: soon\n",
        "t.yaml:14:16: routes[0].calls[0].cache: \"soon\" is not a duration (use 500ms, 2s, 1m)");
    bad("cache ttl too short", BASE ROUTE1 "        cache: 500ms\n",
        "t.yaml:14:16: routes[0].calls[0].cache: the ttl must be between 1s and 30 days");
    bad("cache without ttl", BASE ROUTE1 "        cache: { stale_if_error: 1m }\n",
        "t.yaml:14:16: routes[0].calls[0].cache: missing ttl (e.g. cache: {ttl: 30s, stale_while_revalidate: 1m})");
    bad("cache unknown key", BASE ROUTE1 "        cache: { ttl: 1s, stale_while_revalidat: 1m }\n",
        "t.yaml:14:27: routes[0].calls[0].cache: unknown key \"stale_while_revalidat\" (did you mean \"stale_while_revalidate\"?)");
    bad("foreach over its own answer", BASE ROUTE1 "        foreach: profile.friend_ids\n",
        "t.yaml:14:18: routes[0].calls[0].foreach: a call cannot go over its own answer");
    bad("concurrency without foreach", BASE ROUTE1 "        concurrency: 8\n",
        "t.yaml:14:22: routes[0].calls[0].concurrency: goes with foreach:, which this call does not have");
    bad("batch without foreach", BASE ROUTE1 "        batch: 8\n",
        "t.yaml:14:16: routes[0].calls[0].batch: goes with foreach:, which this call does not have");
    bad("foreach not a field path",
        BASE ROUTE1 "      - name: b\n        backend: users\n        path: /x/{item}\n"
                    "        foreach: profile..ids\n",
        "t.yaml:17:18: routes[0].calls[1].foreach: \"profile..ids\" is not a call and a field path (names separated by dots, e.g. "
        "profile.friend_ids)");
    bad("concurrency 0",
        BASE ROUTE1 "      - name: b\n        backend: users\n        path: /x/{item}\n"
                    "        foreach: profile.ids\n        concurrency: 0\n",
        "t.yaml:18:22: routes[0].calls[1].concurrency: 0 is out of range (1 to 256)");
    bad("allow and deny", BASE ROUTE1 "        allow: [a]\n        deny: [b]\n",
        "t.yaml:15:15: routes[0].calls[0]: use either allow: or deny:, not both");
    bad("rename of a field allow drops", BASE ROUTE1 "        allow: [a]\n        rename: { b: c }\n",
        "t.yaml:15:17: routes[0].calls[0].rename.b: \"b\" is removed by allow: before it could be renamed");
    bad("rename of a denied field", BASE ROUTE1 "        deny: [b]\n        rename: { b: c }\n",
        "t.yaml:15:17: routes[0].calls[0].rename.b: \"b\" is removed by deny: before it could be renamed");
    bad("rename to the same", BASE ROUTE1 "        rename: { a: c, b: c }\n",
        "t.yaml:14:28: routes[0].calls[0].rename.b: \"a\" and \"b\" are both renamed to \"c\"");
    bad("rename to itself", BASE ROUTE1 "        rename: { a: a }\n",
        "t.yaml:14:22: routes[0].calls[0].rename.a: \"a\" is renamed to itself");
    bad("rename not a mapping", BASE ROUTE1 "        rename: [a]\n",
        "t.yaml:14:17: routes[0].calls[0].rename: expected a mapping of field names, e.g. { total: amount }");
    bad("bad target", BASE ROUTE1 "        target: data..items\n",
        "t.yaml:14:17: routes[0].calls[0].target: \"data..items\" is not a field path (names separated by dots, e.g. data.items)");
    bad("template syntax", BASE R "      - name: a\n        backend: users\n        path: /x/{id\n",
        "t.yaml:13:15: routes[0].calls[0].path: unbalanced '{' at offset 3");
    bad("template without slash", BASE R "      - name: a\n        backend: users\n        path: x\n",
        "t.yaml:13:15: routes[0].calls[0].path: a URL template must start with '/'");
    bad("unknown route parameter", BASE R "      - name: a\n        backend: users\n        path: /x/{uid}\n",
        "t.yaml:13:15: routes[0].calls[0].path: unknown route parameter {uid} (the route has id)");
    bad("unknown route parameter, none",
        BASE "  - path: /x\n    calls:\n      - name: a\n        backend: users\n        path: /x/{uid}\n",
        "t.yaml:13:15: routes[0].calls[0].path: unknown route parameter {uid} (the route path has no parameters)");
    bad("a call used as a parameter", BASE ROUTE1 "      - name: b\n        backend: users\n        path: /x/{profile}\n",
        "t.yaml:16:15: routes[0].calls[1].path: unknown route parameter {profile} (profile is a call: name one of its fields, e.g. "
        "{profile.id} (its whole answer may go in a body))");
    bad("unknown call", BASE ROUTE1 "      - name: b\n        backend: users\n        path: /x/{profil.id}\n",
        "t.yaml:16:15: routes[0].calls[1].path: unknown call \"profil\" (calls: profile, b)");
    bad("a parameter used as a call", BASE ROUTE1 "      - name: b\n        backend: users\n        path: /x/{id.x}\n",
        "t.yaml:16:15: routes[0].calls[1].path: unknown call \"id\" (id is a route parameter, which has no fields)");
    bad("item without foreach", BASE ROUTE1 "      - name: b\n        backend: users\n        path: /x/{item.id}\n",
        "t.yaml:16:15: routes[0].calls[1].path: {item} is the element of foreach:, which this call does not have");
    bad("self dependency", BASE R "      - name: a\n        backend: users\n        path: /x/{a.id}\n",
        "t.yaml:13:15: routes[0].calls[0].path: the calls wait for each other in a cycle: a -> a");
    bad("cycle",
        BASE R "      - name: profile\n"         /* 11 */
               "        backend: users\n"        /* 12 */
               "        path: /p/{recs.x}\n"     /* 13 */
               "      - name: recs\n"            /* 14 */
               "        backend: recs\n"         /* 15 */
               "        path: /r/{profile.y}\n", /* 16 */
        "t.yaml:13:15: routes[0].calls[0].path: the calls wait for each other in a cycle: profile -> recs -> profile");
    bad("cycle not through the first call",
        BASE R "      - name: a\n" /* 11 */
               "        backend: users\n"
               "        path: /a/{b.x}\n"
               "      - name: b\n" /* 14 */
               "        backend: users\n"
               "        path: /b/{c.x}\n" /* 16 */
               "      - name: c\n"
               "        backend: users\n"
               "        path: /c/{d.x}/{b.z}\n"
               "      - name: d\n"
               "        backend: users\n"
               "        path: /d\n",
        "t.yaml:16:15: routes[0].calls[1].path: the calls wait for each other in a cycle: b -> c -> b");
    good("header and query placeholders",
         BASE R "      - name: a\n        backend: users\n        path: /x/{id}?l={query.lang}&t={header.X-T}\n");
#undef R
}

/* Configs that could cost a lot: a dense dependency graph, too many calls, self-referencing YAML anchors. */
static void test_hostile(void)
{
    /* call i uses every call before it: 2^63 paths through the graph, but the plan is computed once per call */
    cf_buf_t b = CF_BUF_INIT;
    cf_buf_appends(&b, BASE "  - path: /dense\n    calls:\n");
    for (int i = 0; i < CF_CONFIG_MAX_CALLS; ++i) {
        cf_buf_appendf(&b, "      - name: c%d\n        backend: users\n        timeout: 10ms\n        path: /x?", i);
        for (int j = 0; j < i; ++j)
            cf_buf_appendf(&b, "b%d={c%d.v}&", j, j);
        cf_buf_appends(&b, "z=1\n");
    }
    time_t start = time(NULL);
    cf_config_t *c = load(b.base);
    ok(c != NULL, "64 calls, each after all the earlier ones: %s", err);
    ok(time(NULL) - start <= 2, "loads quickly");
    if (c != NULL) {
        is(c->routes[0].deadline_ms, 640, "deadline: 64 chained timeouts of 10ms");
        is(c->routes[0].calls[63].num_deps, 63, "the last call has 63 deps");
        char *out = explain(c);
        ok(contains(out, "  stage 63: 1 call"), "explain: 64 stages");
        free(out);
    }
    cf_config_free(c);
    cf_buf_reset(&b);

    cf_buf_appends(&b, BASE "  - path: /many\n    calls:\n");
    for (int i = 0; i <= CF_CONFIG_MAX_CALLS; ++i)
        cf_buf_appendf(&b, "      - name: c%d\n        backend: users\n        path: /x\n", i);
    bad("too many calls", b.base, "t.yaml:11:7: routes[0].calls: 65 calls; a route may have at most 64");
    cf_buf_free(&b);

    bad("a list that contains itself", "listen: &a\n  - *a\n", "t.yaml:1:9: listen[0]: expected a mapping (key: value)");
    bad("routes that contain themselves", "listen: [{port: 1}]\nroutes: &r\n  - *r\n",
        "t.yaml:2:9: routes[0]: expected a mapping (key: value)");
    bad("a route that contains itself", "listen: [{port: 1}]\nroutes:\n  - &r\n    path: /\n    calls: *r\n",
        "t.yaml:3:5: routes[0].calls: expected a list of calls, each {name:, backend:, path:}");
}

/* The loader from a file, and the sample config of the repository. */
static void test_files(void)
{
    char path[] = "/tmp/cf-test-config-XXXXXX";
    int fd = mkstemp(path);
    const char *yaml = BASE ROUTE1 "        timeout: 5 sec\n";
    ok(fd >= 0 && write(fd, yaml, strlen(yaml)) == (ssize_t)strlen(yaml), "wrote a temp file");
    close(fd);
    cf_config_t *c = cf_config_load(path, err, sizeof(err));
    ok(c == NULL, "bad file refused");
    char expected[256];
    snprintf(expected, sizeof(expected), "%s:14:18: routes[0].calls[0].timeout: \"5 sec\" is not a duration (use 500ms, 2s, 1m)",
             path);
    is_str(err, expected, "the message names the file");
    unlink(path);
    /* a good file: its SHA-256 (what /config shows) and load time are recorded */
    strcpy(path, "/tmp/cf-test-config-XXXXXX");
    fd = mkstemp(path);
    yaml = "listen: [{port: 1}]\nroutes:\n  - path: /\n    proxy: b\nbackends:\n  b:\n    url: http://127.0.0.1:9\n";
    ok(fd >= 0 && write(fd, yaml, strlen(yaml)) == (ssize_t)strlen(yaml), "wrote a good temp file");
    close(fd);
    time_t before = time(NULL);
    c = cf_config_load(path, err, sizeof(err));
    ok(c != NULL, "good file loads: %s", c == NULL ? err : "");
    if (c != NULL) {
        is_str(c->sha256, "e9e88b378bc2402194dfefd1ca23aa4762ce10ac0ea361a67bab1f7ba4f8eed5", "sha256 of the file's bytes");
        ok(c->loaded_at >= before && c->loaded_at <= time(NULL), "loaded_at is now");
    }
    cf_config_free(c);
    unlink(path);
    c = cf_config_load("/nonexistent/conflux.yaml", err, sizeof(err));
    ok(c == NULL, "missing file refused");
    is_str(err, "/nonexistent/conflux.yaml: cannot open: No such file or directory", "missing file message");

    /* the repository is three levels above this file (CMake compiles it by its absolute path) */
    char sample[1024];
    snprintf(sample, sizeof(sample), "%s", __FILE__);
    char *slash = strstr(sample, "t/unit/test_config.c");
    if (slash != NULL)
        strcpy(slash, "config/conflux.yaml");
    c = cf_config_load(sample, err, sizeof(err));
    ok(c != NULL, "config/conflux.yaml loads: %s", c == NULL ? err : "");
    if (c != NULL) {
        ok(c->num_routes >= 2, "the sample has routes");
        char *out = explain(c);
        ok(contains(out, "stage 1"), "the sample has a dependent stage");
        ok(contains(out, "proxy -> "), "the sample has a proxy route");
        free(out);
    }
    cf_config_free(c);
}

/* encoded_slash: refuse (default) | keep, per call; keep only where a value fills a path segment; --explain says so. */
static void test_encoded_slash(void)
{
    cf_config_t *c = load(BASE ROUTE1);
    ok(c != NULL && c->routes[0].calls[0].encoded_slash == CF_ENCODED_SLASH_REFUSE, "default: refuse");
    cf_config_free(c);
    c = load(BASE ROUTE1 "        encoded_slash: keep\n");
    ok(c != NULL && c->routes[0].calls[0].encoded_slash == CF_ENCODED_SLASH_KEEP, "keep: %s", err);
    if (c != NULL) {
        char *out = explain(c);
        ok(contains(out,
                    "      profile: /users/{id}  (backend users: http://127.0.0.1:9001)\n        timeout 5s, optional: on error "
                    "the key is null\n        encoded_slash: keep: a '/' in a value that fills one path segment is sent as "
                    "%2F; \".\", \"..\" and '\\' are still refused\n"),
           "--explain shows keep under the call");
        free(out);
    }
    cf_config_free(c);
    c = load(BASE ROUTE1 "        encoded_slash: refuse\n");
    ok(c != NULL && c->routes[0].calls[0].encoded_slash == CF_ENCODED_SLASH_REFUSE, "refuse spelled out: %s", err);
    if (c != NULL) {
        char *out = explain(c);
        ok(out != NULL && strstr(out, "encoded_slash") == NULL, "--explain says nothing of the default");
        free(out);
    }
    cf_config_free(c);
    good("keep with a call field in the path",
         BASE ROUTE1 "      - name: recs\n        backend: recs\n        path: /r/{profile.seg}\n"
                     "        encoded_slash: keep\n");
    bad("encoded_slash: yes", BASE ROUTE1 "        encoded_slash: yes\n",
        "t.yaml:14:24: routes[0].calls[0].encoded_slash: \"yes\" is not one of: refuse, keep");
    bad("keep without a path value",
        BASE "  - path: /u/{id}\n    calls:\n      - name: a\n        backend: users\n"
             "        path: /users?id={id}\n        encoded_slash: keep\n",
        "t.yaml:14:24: routes[0].calls[0].encoded_slash: keep has no effect: no value of /users?id={id} fills a path segment "
        "(query values and {name*} captures are not concerned)");
    bad("keep with only a rest",
        BASE "  - path: /f/{rest*}\n    calls:\n      - name: a\n        backend: users\n"
             "        path: /files/{rest}\n        encoded_slash: keep\n",
        "t.yaml:14:24: routes[0].calls[0].encoded_slash: keep has no effect: no value of /files/{rest} fills a path segment "
        "(query values and {name*} captures are not concerned)");
}

/* A call's method: and body:, and the route methods they go with. */
static void test_method_body(void)
{
/* a route of POST with one call, lines 9-14; the call's keys follow from line 15 */
#define POSTCALL                                                                                                                   \
    "  - path: /u/{id}\n"         /* 9 */                                                                                          \
    "    methods: [POST]\n"       /* 10 */                                                                                         \
    "    calls:\n"                /* 11 */                                                                                         \
    "      - name: profile\n"     /* 12 */                                                                                         \
    "        backend: users\n"    /* 13 */                                                                                         \
    "        path: /users/{id}\n" /* 14 */
    good("POST with the client's body", BASE POSTCALL "        method: POST\n        body: \"{request.body}\"\n");
    good("POST without a body", BASE POSTCALL "        method: POST\n");
    good("PUT with a fixed body", BASE POSTCALL "        method: put\n        body: {a: 1}\n");
    good("DELETE with a body", BASE POSTCALL "        method: DELETE\n        body: [1, 2]\n");
    bad("HEAD", BASE POSTCALL "        method: HEAD\n",
        "t.yaml:15:17: routes[0].calls[0].method: HEAD: its answer has no body, and a call needs a JSON body (use GET)");
    bad("OPTIONS", BASE POSTCALL "        method: OPTIONS\n",
        "t.yaml:15:17: routes[0].calls[0].method: \"OPTIONS\" is not a call method (use GET, POST, PUT, PATCH or DELETE)");
    bad("a body on a GET", BASE ROUTE1 "        body: {a: 1}\n",
        "t.yaml:14:15: routes[0].calls[0].body: a GET call sends no body (many servers ignore one, and caches key without it): "
        "set method: POST (or PUT, PATCH, DELETE)");
    bad("cache on a POST", BASE POSTCALL "        method: POST\n        cache: 30s\n",
        "t.yaml:16:16: routes[0].calls[0].cache: only GET calls are cached; a POST call is sent every time (and never retried "
        "nor hedged)");
    bad("cache on a PUT", BASE POSTCALL "        method: PUT\n        cache: {ttl: 30s}\n",
        "t.yaml:16:16: routes[0].calls[0].cache: only GET calls are cached; a PUT call is sent every time (and its answer is "
        "not the resource)");
    bad("a route listing POST that does nothing with it", BASE POSTCALL,
        "t.yaml:10:14: routes[0].methods: POST: no call forwards the client's body ({request.body} in a body:) or has a "
        "method: other than GET, so the request would be answered as a GET with its body dropped; list only GET (and HEAD), or "
        "use the body");
    bad("a POST call on a GET route", BASE ROUTE1 "        method: POST\n",
        "t.yaml:14:17: routes[0].calls[0].method: the route answers GET, HEAD, which must change nothing, but this call sends "
        "POST upstream (a link, a prefetch or a retried request would trigger it): list only POST, PUT, PATCH or DELETE in the "
        "route's methods, or say safe: true if this POST only reads (a search or a GraphQL query)");
    good("a safe POST call on a GET route", BASE ROUTE1 "        method: POST\n        safe: true\n");
    bad("{request.body} on a GET route", BASE ROUTE1 "        method: POST\n        body: {x: \"{request.body}\"}\n",
        "t.yaml:15:15: routes[0].calls[0].body: {request.body} forwards the client's body, but the route takes only GET, "
        "HEAD, which carry none: add methods: [POST] (or PUT, PATCH, DELETE) to the route");
    bad("an unknown parameter in a body", BASE POSTCALL "        method: POST\n        body: {a: [\"{nope}\"]}\n",
        "t.yaml:16:15: routes[0].calls[0].body: unknown route parameter {nope} (the route has id)");
    bad("an unknown call in a body", BASE POSTCALL "        method: POST\n        body: {a: \"x {other.id}\"}\n",
        "t.yaml:16:15: routes[0].calls[0].body: unknown call \"other\" (calls: profile)");
    bad("{item} in a body without foreach", BASE POSTCALL "        method: POST\n        body: \"{item.id}\"\n",
        "t.yaml:16:15: routes[0].calls[0].body: {item} is the element of foreach:, which this call does not have");
    bad("a cycle through a body",
        BASE POSTCALL "        method: POST\n        body: \"{b.id}\"\n"
                      "      - name: b\n        backend: users\n        path: /b/{profile.id}\n",
        "t.yaml:14:15: routes[0].calls[0].path: the calls wait for each other in a cycle: profile -> b -> profile");
    bad("{request.body} inside a string", BASE POSTCALL "        method: POST\n        body: {a: \"x{request.body}\"}\n",
        "t.yaml:16:19: routes[0].calls[0].body.a: {request.body} inside a longer string: it inserts the client's JSON body and "
        "must be the whole string (\"{request.body}\")");
    bad("{request.other}", BASE POSTCALL "        method: POST\n        body: \"{request.headers}\"\n",
        "t.yaml:16:15: routes[0].calls[0].body: \"{request.headers}\": the only field of request is body ({request.body})");
    bad("a call named request", BASE "  - path: /u\n    calls:\n      - name: request\n        backend: users\n        path: /\n",
        "t.yaml:11:15: routes[0].calls[0].name: \"request\" is reserved in templates ({request.NAME}); choose another name");
    bad("a YAML number JSON cannot carry", BASE POSTCALL "        method: POST\n        body: {n: [1, 0x1F]}\n",
        "t.yaml:16:23: routes[0].calls[0].body.n[1]: 0x1F is a number in YAML that JSON cannot carry as written: write it as "
        "JSON does (10, 0.5, 1e3) or quote it to send a string");
    bad("a number out of range", BASE POSTCALL "        method: POST\n        body: 1e999\n",
        "t.yaml:16:15: routes[0].calls[0].body: 1e999 is out of the range of a JSON number (a double)");
    bad("a duplicate key", BASE POSTCALL "        method: POST\n        body: {a: 1, a: 2}\n",
        "t.yaml:16:22: routes[0].calls[0].body: \"a\" appears twice in this mapping");
    bad("an unbalanced brace", BASE POSTCALL "        method: POST\n        body: \"a {b\"\n",
        "t.yaml:16:15: routes[0].calls[0].body: unbalanced '{' at offset 2 of \"a {b\" (write \"{{\" for a '{')");
    bad("a self-referencing alias", BASE POSTCALL "        method: POST\n        body: &a [1, *a]\n",
        "t.yaml:16:19: routes[0].calls[0].body[1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1][1]"
        "[1][1][1][1][1][0]: nests deeper than 32 levels");
#undef POSTCALL
}

int main(void)
{
    test_defaults();
    test_table_defaults();
    test_cache();
    test_everything();
    test_plan();
    test_merge();
    test_top_level_errors();
    test_backend_errors();
    test_route_errors();
    test_call_errors();
    test_encoded_slash();
    test_method_body();
    test_hostile();
    test_files();
    return done_testing();
}
