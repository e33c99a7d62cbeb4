/* Dispatch: the catch-all handler routes a request, admits it, and hands it to a fan-out or a pass-through. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "dispatch.h"
#include "fanout.h"
#include "jsonout.h"
#include "metrics.h"
#include "observe.h"
#include "proxy.h"
#include "respond.h"

/* Answers a request that was not admitted to a route (`route`: the one its path matched, NULL for none), and reports
 * it like any other. */
static void reject(h2o_req_t *req, const cf_trace_t *trace, const cf_route_t *route, uint64_t start_ns, int status,
                   const char *code, const char *message)
{
    cf_request_record_t rec = {req, route, status, cf_now_ns() - start_ns, NULL, 0, trace};
    cf_observe_request(&rec);
    cf_send_error(req, status, code, message);
}

/*
 * A CORS preflight (Fetch standard, "CORS-preflight request"): OPTIONS with Origin and Access-Control-Request-Method.
 * The route is the one the path and the method asked for would reach. On a route with a CORS policy conflux answers
 * it itself, whatever the route's methods (a preflight is not a request for the route's resource), and nothing goes
 * upstream. Returns 1 when answered; 0 when it goes on as an ordinary OPTIONS request (no route for the path, or a
 * route without CORS).
 */
static int answer_preflight(cf_table_t *t, h2o_req_t *req, const cf_trace_t *trace, uint64_t start_ns, size_t pathlen,
                            char *scratch)
{
    ssize_t oi = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1);
    ssize_t mi = oi != -1 ? h2o_find_header_by_str(&req->headers, H2O_STRLIT("access-control-request-method"), -1) : -1;
    if (mi == -1)
        return 0;
    const h2o_iovec_t *origin = &req->headers.entries[oi].value, *want = &req->headers.entries[mi].value;
    unsigned bit = cf_method_bit(want->base, want->len);
    cf_route_match_t m;
    int found = cf_router_match(t->router, bit, req->path.base, pathlen, scratch, &m);
    if ((found != CF_ROUTE_OK && found != CF_ROUTE_BAD_METHOD) || m.data == NULL)
        return 0;
    const cf_route_t *route = m.data;
    if (route->cors == NULL)
        return 0;
    /* on a path whose routes do not take the method, the methods named in the refusal are those of the first route */
    unsigned allowed = cf_cors_methods(route->cors, route->methods);
    if (found != CF_ROUTE_OK)
        bit = 0;
    ssize_t hi = h2o_find_header_by_str(&req->headers, H2O_STRLIT("access-control-request-headers"), -1);
    const h2o_iovec_t *headers = hi != -1 ? &req->headers.entries[hi].value : NULL;
    cf_cors_verdict_t v = cf_cors_preflight(route->cors, origin->base, origin->len, bit, allowed,
                                            headers != NULL ? headers->base : NULL, headers != NULL ? headers->len : 0);
    cf_request_record_t rec = {req, route, v == CF_CORS_OK ? 204 : 403, cf_now_ns() - start_ns, NULL, 0, trace};
    cf_observe_request(&rec);
    cf_send_cors_preflight(req, route->cors, v, allowed);
    return 1;
}

/* The bytes that key a request's client (`key: client`): its TCP peer's address, never a header such as X-Forwarded-For
 * that the client writes itself. An IPv6 client counts by its /64, the block one host is usually given. Returns the
 * length (0: no address). */
static size_t client_key(h2o_req_t *req, unsigned char *key)
{
    struct sockaddr_storage ss;
    socklen_t sslen = req->conn->callbacks->get_peername != NULL ? req->conn->callbacks->get_peername(req->conn, (void *)&ss) : 0;
    if (sslen != 0 && ss.ss_family == AF_INET) {
        key[0] = 4;
        memcpy(key + 1, &((struct sockaddr_in *)&ss)->sin_addr, 4);
        return 5;
    }
    if (sslen != 0 && ss.ss_family == AF_INET6) {
        const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            key[0] = 4;
            memcpy(key + 1, a->s6_addr + 12, 4);
            return 5;
        }
        key[0] = 6;
        memcpy(key + 1, a->s6_addr, 8);
        return 9;
    }
    return 0;
}

/*
 * The route's rate limit, before max_inflight: a refused request takes no slot and reaches no upstream. Every answer of
 * the route carries RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers-11 §3 and §4, structured
 * fields); a refusal is a 429 (RFC 6585 §4) with Retry-After in whole seconds, rounded up. Returns 0 when refused
 * (answered), 1 when the request goes on.
 */
static int admit_rate(h2o_req_t *req, const cf_trace_t *trace, const cf_route_t *route, uint64_t start_ns, json_t *claims)
{
    cf_ratelimit_t *rl = route->rate_limit;
    unsigned char addr[16];
    char scalar[CF_JSON_SCALAR_MAX];
    const void *key = NULL;
    size_t len = 0;
    if (rl->key == CF_RATELIMIT_BY_CLIENT) {
        len = client_key(req, addr);
        key = addr;
    } else if (rl->key == CF_RATELIMIT_BY_CLAIM) {
        /* a token without the claim (or with an object or array there): the one bucket of all such tokens, as requests
         * without the header of key: header.NAME (document: docs/http.md) */
        json_t *v = claims != NULL ? json_object_get(claims, rl->header) : NULL;
        if (json_is_string(v)) {
            key = json_string_value(v);
            len = json_string_length(v);
        } else if (v != NULL && (len = cf_json_format_scalar(v, 0, scalar)) != 0) {
            key = scalar;
        }
    } else {
        /* without the header: the one bucket of every request that has none (document: docs/http.md) */
        ssize_t i = h2o_find_header_by_str(&req->headers, rl->header, rl->header_len, -1);
        if (i != -1) {
            key = req->headers.entries[i].value.base;
            len = req->headers.entries[i].value.len;
        }
    }
    cf_ratelimit_verdict_t v;
    cf_ratelimit_take(rl, key, len, start_ns, &v);
    cf_metrics_rate_limit(route, !v.allowed, cf_ratelimit_keys(rl));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("ratelimit-policy"), 0, NULL, rl->policy, rl->policy_len);
    char *field = h2o_mem_alloc_pool(&req->pool, CF_RATELIMIT_FIELD_MAX);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("ratelimit"), 0, NULL, field, cf_ratelimit_field(&v, field));
    if (v.allowed)
        return 1;
    char *retry = h2o_mem_alloc_pool(&req->pool, 20);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, retry, cf_ratelimit_seconds(&v, retry));
    reject(req, trace, route, start_ns, 429, "rate_limited",
           "too many requests on this route; retry after the seconds in Retry-After");
    return 0;
}

/*
 * The route's auth: jwt. The token comes from the one Authorization field, scheme Bearer (RFC 6750 §2.1; the scheme is
 * case-insensitive, RFC 9110 §11.1), and nowhere else (a query or a cookie leaks to logs and other sites). A refusal is
 * a 401 with WWW-Authenticate (RFC 6750 §3): with no token, only the realm (no error code, §3.1); with a bad one,
 * error="invalid_token" and a short description, never the token. Returns 1 with *claims (borrowed from the worker's
 * cache: take a reference to keep them) when the request goes on, 0 when refused (answered).
 */
static int authenticate(cf_worker_t *w, h2o_req_t *req, const cf_trace_t *trace, const cf_route_t *route, uint64_t start_ns,
                        json_t **claims)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    cf_jwt_error_t e = CF_JWT_MISSING;
    if (i != -1) {
        const h2o_iovec_t *v = &req->headers.entries[i].value;
        if (h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, i) != -1) {
            e = CF_JWT_MALFORMED; /* two credentials: which one would the upstream believe? */
        } else if (v->len > 7 && strncasecmp(v->base, "bearer ", 7) == 0) {
            size_t at = 7, end = v->len;
            while (at < end && v->base[at] == ' ')
                ++at;
            /* trailing OWS is no part of a field value (RFC 9110 §5.5), but h2o 2.2.5 keeps it */
            while (end > at && (v->base[end - 1] == ' ' || v->base[end - 1] == '\t'))
                --end;
            e = cf_auth_verify(route->auth, w->jwt_cache, v->base + at, end - at, (int64_t)time(NULL), claims);
            if (e == CF_JWT_OK)
                return 1;
        }
    }
    if (e == CF_JWT_MISSING) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, H2O_STRLIT("Bearer realm=\"conflux\""));
    } else {
        char field[160];
        int n = snprintf(field, sizeof(field), "Bearer error=\"invalid_token\", error_description=\"%s\"", cf_jwt_error_text(e));
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL, h2o_strdup(&req->pool, field, n).base,
                       (size_t)n);
    }
    cf_request_record_t rec = {req, route, 401, cf_now_ns() - start_ns, NULL, 0, trace, e};
    cf_observe_request(&rec);
    cf_send_error(req, 401, "unauthorized", e == CF_JWT_MISSING ? "this route needs a bearer token" : cf_jwt_error_text(e));
    return 0;
}

int cf_gateway_precheck(cf_worker_t *w, const char *method, size_t mlen, const char *path, size_t plen, int has_authorization,
                        char *allow, size_t allowlen)
{
    char small[1024], *scratch = plen <= sizeof(small) ? small : h2o_mem_alloc(plen);
    cf_route_match_t m;
    int status = 0;
    switch (cf_router_match(w->table->router, cf_method_bit(method, mlen), path, plen, scratch, &m)) {
    case CF_ROUTE_OK:
        if (((const cf_route_t *)m.data)->auth != NULL && !has_authorization)
            status = 401;
        break;
    case CF_ROUTE_NOT_FOUND:
        status = 404;
        break;
    case CF_ROUTE_BAD_METHOD:
        cf_methods_format(m.allowed, allow, allowlen);
        status = 405;
        break;
    default:
        status = 400;
        break;
    }
    if (scratch != small)
        free(scratch);
    return status;
}

int cf_gateway_handle(cf_worker_t *w, h2o_req_t *req)
{
    cf_table_t *t = w->table;
    uint64_t start_ns = cf_now_ns();
    char msg[256];

    /* h2o 2.2.5 accepts request heads up to ~408 KiB (H2O_MAX_REQLEN); nginx's default is 8 KiB a line */
    size_t total = req->path.len;
    for (size_t i = 0; i != req->headers.size; ++i) {
        size_t len = req->headers.entries[i].name->len + req->headers.entries[i].value.len;
        total += len;
        if (len > CF_MAX_HEADER_FIELD || total > CF_MAX_HEADER_BLOCK) {
            req->http1_is_persistent = 0;
            reject(req, NULL, NULL, start_ns, 431, "headers_too_large", "request header fields too large");
            return 0;
        }
    }

    /* its identity, once the head is known to be bounded: every answer from here on carries its X-Request-Id */
    const cf_trace_t *trace = cf_trace_begin(req, t->config->tracing.sample, t->config->tracing.parent_based);
    unsigned method = cf_method_bit(req->method.base, req->method.len);
    size_t pathlen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    char *scratch = h2o_mem_alloc_pool(&req->pool, pathlen + 1);
    if (method == CF_METHOD_OPTIONS && answer_preflight(t, req, trace, start_ns, pathlen, scratch))
        return 0;
    cf_route_match_t m;
    switch (cf_router_match(t->router, method, req->path.base, pathlen, scratch, &m)) {
    case CF_ROUTE_OK:
        break;
    case CF_ROUTE_NOT_FOUND:
        if (t->config->cors != NULL) /* no route, so the default policy: a page may read why */
            cf_add_cors_headers(req, t->config->cors);
        snprintf(msg, sizeof(msg), "no route for %.*s", (int)(pathlen < 200 ? pathlen : 200), req->path.base);
        reject(req, trace, NULL, start_ns, 404, "not_found", msg);
        return 0;
    case CF_ROUTE_BAD_METHOD: {
        char allow[128];
        cf_methods_format(m.allowed, allow, sizeof(allow));
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen(allow));
        if (((const cf_route_t *)m.data)->cors != NULL)
            cf_add_cors_headers(req, ((const cf_route_t *)m.data)->cors);
        snprintf(msg, sizeof(msg), "method not allowed; allowed: %s", allow);
        reject(req, trace, m.data, start_ns, 405, "method_not_allowed", msg);
        return 0;
    }
    default:
        reject(req, trace, NULL, start_ns, 400, "bad_request", "malformed request path");
        return 0;
    }

    const cf_route_t *route = m.data;
    if (route->cors != NULL) /* before anything can answer: every answer of the route carries them */
        cf_add_cors_headers(req, route->cors);

    /* the cheap checks first: a rate limit by client or header before the token (so a flood of forged tokens costs one
     * bucket each, not a signature each), one keyed by a claim after it; both before max_inflight and any upstream */
    json_t *claims = NULL;
    int by_claim = route->rate_limit != NULL && route->rate_limit->key == CF_RATELIMIT_BY_CLAIM;
    if (route->rate_limit != NULL && !by_claim && !admit_rate(req, trace, route, start_ns, NULL))
        return 0;
    if (route->auth != NULL && !authenticate(w, req, trace, route, start_ns, &claims))
        return 0;
    if (by_claim && !admit_rate(req, trace, route, start_ns, claims))
        return 0;

    /* max_inflight bounds the whole process, whichever thread accepted the connection */
    if (cf_slot_admit(w, t->config->limits.max_inflight) != 0) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
        reject(req, trace, m.data, start_ns, 503, "overloaded", "too many requests in flight; retry shortly");
        return 0;
    }

    cf_table_retain(t);
    if (route->proxy != NULL)
        cf_proxy_start(w, t, route, req, &m, trace);
    else
        cf_fanout_start(w, t, route, req, &m, trace, claims);
    return 0;
}
