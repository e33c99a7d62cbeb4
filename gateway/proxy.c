/* A pass-through route: one client request forwarded to one backend, its answer returned as is (RFC 9110 §7.6). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include "cf_http.h"
#include "observe.h"
#include "proxy.h"
#include "respond.h"

static h2o_iovec_t forwarded = {H2O_STRLIT("forwarded")}, x_forwarded_host = {H2O_STRLIT("x-forwarded-host")},
                   x_forwarded_proto = {H2O_STRLIT("x-forwarded-proto")};

struct st_proxy_t {
    h2o_req_t *req;
    const cf_trace_t *trace; /* the request's identity, in its pool */
    cf_worker_t *w;
    cf_table_t *table;
    const cf_route_t *route;
    cf_attempt_t attempt; /* the exchange, with the backend's retries and hedges */
    cf_watch_t watch;
    cf_slot_t slot;
    uint64_t start_ns, upstream_start_ns;
    int finished;
};

/* The exchange as one call named after the backend, for Proxy-Status and observe. */
static cf_call_record_t call_record(struct st_proxy_t *p, int upstream_status, cf_reason_t reason, uint64_t now)
{
    return (cf_call_record_t){.name = p->route->proxy->name,
                              .backend = p->route->proxy->name,
                              .status = upstream_status,
                              .reason = reason,
                              .duration_ns = p->upstream_start_ns != 0 ? now - p->upstream_start_ns : 0,
                              .attempts = p->attempt.attempts,
                              .hedges = p->attempt.hedges,
                              .budget_exhausted = p->attempt.budget_exhausted,
                              .hedge_won = p->attempt.hedge_won,
                              .spans = &p->attempt.spans};
}

/* Reports the request to metrics and the access log (observe.h); the exchange counts as one call. */
static void observe(struct st_proxy_t *p, int status, const cf_call_record_t *call, uint64_t now)
{
    cf_request_record_t rec = {p->req, p->route, status, now - p->start_ns, call, p->upstream_start_ns != 0, p->trace};
    cf_observe_request(&rec);
}

/* RFC 9110 §7.6.1: connection-specific fields a proxy must not forward (plus the de-facto Proxy-Connection). */
static int is_hop_by_hop(const h2o_iovec_t *name, const h2o_headers_t *connection_listed_in)
{
    /* the proxy credentials are for this hop too (RFC 9110 11.7) */
    if (cf_http_is_hop_by_hop(name->base, name->len) || h2o_lcstris(name->base, name->len, H2O_STRLIT("proxy-authenticate")) ||
        h2o_lcstris(name->base, name->len, H2O_STRLIT("proxy-authorization")))
        return 1;
    /* and every field the Connection header names */
    if (connection_listed_in != NULL) {
        for (ssize_t i = -1; (i = h2o_find_header(connection_listed_in, H2O_TOKEN_CONNECTION, i)) != -1;)
            if (cf_http_list_has(connection_listed_in->entries[i].value.base, connection_listed_in->entries[i].value.len,
                                 name->base, name->len))
                return 1;
    }
    return 0;
}

static void client_address(h2o_req_t *req, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (void *)&ss);
    buf[0] = '\0';
    if (len == 0)
        return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, buf, (socklen_t)size);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, buf, (socklen_t)size);
}

static void finish_error(struct st_proxy_t *p, cf_reason_t reason, int status)
{
    uint64_t now = cf_now_ns();
    cf_call_record_t call = call_record(p, status, reason, now);
    cf_add_proxy_status(p->req, &call, 1);
    char buf[CF_REASON_TEXT_SIZE];
    json_t *body = json_pack("{s:s, s:s, s:o}", "error", cf_reason_text(reason, status, buf), "backend", call.name, "status",
                             status != 0 ? json_integer(status) : json_null());
    int answer = cf_reason_required_status(reason, status); /* 504 for a timeout, else 502 */
    observe(p, answer, &call, now);
    cf_slot_answered(&p->slot);
    cf_send_json(p->req, answer, body);
    json_decref(body);
}

static void on_response(cf_attempt_t *a, const cf_upstream_res_t *res)
{
    struct st_proxy_t *p = H2O_STRUCT_FROM_MEMBER(struct st_proxy_t, attempt, a);
    h2o_req_t *req = p->req;
    p->finished = 1;
    cf_watch_stop(&p->watch);
    if (res->reason != CF_REASON_NONE) {
        finish_error(p, res->reason, res->status);
        return;
    }
    h2o_headers_t upstream_headers = {res->headers, res->num_headers, res->num_headers};
    int has_via = 0;
    for (size_t i = 0; i < res->num_headers; ++i) {
        const h2o_header_t *h = &res->headers[i];
        /* like nginx's proxy_hide_header defaults, the answer carries conflux's own Date and Server */
        if (is_hop_by_hop(h->name, &upstream_headers) || h2o_lcstris(h->name->base, h->name->len, H2O_STRLIT("content-length")) ||
            h2o_lcstris(h->name->base, h->name->len, H2O_STRLIT("date")) ||
            h2o_lcstris(h->name->base, h->name->len, H2O_STRLIT("server")) ||
            h2o_lcstris(h->name->base, h->name->len, H2O_STRLIT("x-request-id")))
            continue;
        /* on a route with cors: conflux's policy alone speaks for the route (the fields were added at dispatch) */
        if (p->route->cors != NULL && h->name->len > 15 && h2o_lcstris(h->name->base, 15, H2O_STRLIT("access-control-")))
            continue;
        h2o_iovec_t value = h2o_strdup(&req->pool, h->value.base, h->value.len);
        if (h2o_lcstris(h->name->base, h->name->len, H2O_STRLIT("via"))) {
            value = h2o_concat(&req->pool, value, h2o_iovec_init(H2O_STRLIT(", 1.1 conflux")));
            has_via = 1;
        }
        h2o_add_header_by_str(&req->pool, &req->res.headers, h->name->base, h->name->len, 1, NULL, value.base, value.len);
    }
    if (!has_via)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VIA, NULL, H2O_STRLIT("1.1 conflux"));
    uint64_t now = cf_now_ns();
    cf_call_record_t call = call_record(p, res->status, CF_REASON_NONE, now);
    observe(p, res->status, &call, now);
    req->res.status = res->status;
    req->res.reason = cf_http_reason(res->status);
    req->res.content_length = res->body.len;
    cf_slot_answered(&p->slot);
    h2o_send_inline(req, res->body.base, res->body.len);
}

static void on_client_gone(cf_watch_t *watch)
{
    struct st_proxy_t *p = H2O_STRUCT_FROM_MEMBER(struct st_proxy_t, watch, watch);
    if (p->finished)
        return;
    p->finished = 1;
    cf_attempt_cancel(&p->attempt);
    uint64_t now = cf_now_ns();
    cf_call_record_t call = call_record(p, 0, CF_REASON_CANCELLED, now);
    observe(p, 499, &call, now);
    cf_slot_answered(&p->slot);
    cf_send_client_gone(p->req);
}

static void on_dispose(void *_p)
{
    struct st_proxy_t *p = _p;
    cf_watch_stop(&p->watch);
    cf_attempt_cancel(&p->attempt);
    cf_slot_dispose(&p->slot);
    cf_table_release(p->table);
}

/*
 * Each {param} of the route fills one segment of the path sent upstream, and a {rest*} the segments it holds: a value
 * the template rules refuse there ('/', '\', "." or ".." once decoded: cf_segment_value_ok, cf_rest_value_ok) gets
 * 400, since the upstream may decode "..%2Fadmin" and resolve it. Returns 0, or -1 after answering.
 */
static int check_params(struct st_proxy_t *p, const cf_route_match_t *m)
{
    for (size_t i = 0; i < m->num_params; ++i) {
        int rest = (int)i == p->route->pattern.rest_index;
        if (rest ? cf_rest_value_ok(m->params[i].val, m->params[i].len)
                 : cf_segment_value_ok(m->params[i].val, m->params[i].len, 0))
            continue;
        char *name = p->route->pattern.param_names[i], msg[256];
        cf_tpl_part_t part = {.kind = CF_TPL_PARAM, .text = name, .len = strlen(name), .rest = rest};
        p->finished = 1;
        uint64_t now = cf_now_ns();
        cf_call_record_t call = call_record(p, 0, CF_REASON_NONE, now);
        observe(p, 400, &call, now);
        cf_slot_answered(&p->slot);
        cf_send_error(p->req, 400, "bad_param", cf_template_refusal(&part, 0, msg, sizeof(msg)));
        return -1;
    }
    return 0;
}

/* Builds the upstream path: the {rest*} capture re-encoded segment by segment, or the client's path as sent. */
static void build_path(struct st_proxy_t *p, const cf_route_match_t *m, cf_buf_t *path)
{
    h2o_req_t *req = p->req;
    if (p->route->pattern.rest_index >= 0) {
        const char *v = m->params[p->route->pattern.rest_index].val, *end = v + m->params[p->route->pattern.rest_index].len;
        cf_buf_appendc(path, '/');
        while (v < end) {
            const char *slash = memchr(v, '/', (size_t)(end - v));
            if (slash == NULL)
                slash = end;
            cf_encode_segment(path, v, (size_t)(slash - v));
            if (slash < end)
                cf_buf_appendc(path, '/');
            v = slash + 1;
        }
    } else {
        /* as sent: the router has already refused dot segments (also as %2E), bad escapes and %00 in any path, and
         * check_params a {param} that decodes to hold a '/' or '\' */
        cf_buf_append(path, req->path.base, req->query_at != SIZE_MAX ? req->query_at : req->path.len);
    }
    if (req->query_at != SIZE_MAX)
        cf_buf_append(path, req->path.base + req->query_at, req->path.len - req->query_at);
}

/*
 * The fields by which a proxy in front tells the upstream about the client: conflux is that proxy (it sits at the
 * edge), so a client's own would be believed upstream (an https scheme on a plain connection, another host, another
 * address). Dropped; conflux sets X-Forwarded-Host, X-Forwarded-Proto and Forwarded itself. X-Forwarded-For is
 * appended to instead, as every proxy does: an upstream reads it from the right. A field name with '_' is dropped
 * too (as nginx does by default): CGI-style servers read "X_Forwarded_Host" as X-Forwarded-Host.
 */
static int is_edge_claim(const h2o_iovec_t *name)
{
    static const h2o_iovec_t claims[] = {{H2O_STRLIT("forwarded")},          {H2O_STRLIT("x-forwarded-host")},
                                         {H2O_STRLIT("x-forwarded-proto")},  {H2O_STRLIT("x-forwarded-port")},
                                         {H2O_STRLIT("x-forwarded-prefix")}, {H2O_STRLIT("x-real-ip")}};
    if (memchr(name->base, '_', name->len) != NULL)
        return 1;
    for (size_t i = 0; i != sizeof(claims) / sizeof(claims[0]); ++i)
        if (h2o_lcstris(name->base, name->len, claims[i].base, claims[i].len))
            return 1;
    return 0;
}

void cf_proxy_start(cf_worker_t *w, cf_table_t *t, const cf_route_t *route, h2o_req_t *req, const cf_route_match_t *m,
                    const cf_trace_t *trace)
{
    struct st_proxy_t *p = h2o_mem_alloc_shared(&req->pool, sizeof(*p), on_dispose);
    memset(p, 0, sizeof(*p));
    p->req = req;
    p->trace = trace;
    p->w = w;
    p->table = t;
    p->route = route;
    p->start_ns = cf_now_ns();
    p->watch.on_gone = on_client_gone;
    p->watch.fd = -1;
    cf_slot_init(&p->slot, w, req, t->config->limits.send_timeout_ms);

    if (check_params(p, m) != 0)
        return;
    cf_buf_t path = CF_BUF_INIT;
    build_path(p, m, &path);

    /* client headers minus hop-by-hop ones and Host; then Via and the X-Forwarded-* / Forwarded (RFC 7239) set */
    char addr[INET6_ADDRSTRLEN];
    client_address(req, addr, sizeof(addr));
    h2o_header_t *headers = h2o_mem_alloc_pool(&req->pool, sizeof(*headers) * (req->headers.size + 6));
    size_t n = 0;
    h2o_iovec_t xff = {NULL, 0}, via = {NULL, 0};
    for (size_t i = 0; i != req->headers.size; ++i) {
        const h2o_header_t *h = &req->headers.entries[i];
        if (is_hop_by_hop(h->name, &req->headers) || h->name == &H2O_TOKEN_HOST->buf ||
            h2o_lcstris(h->name->base, h->name->len, H2O_STRLIT("content-length")) ||
            h2o_lcstris(h->name->base, h->name->len, H2O_STRLIT("expect")))
            continue;
        if (h->name == &H2O_TOKEN_X_FORWARDED_FOR->buf) {
            xff = xff.base == NULL ? h->value : h2o_concat(&req->pool, xff, h2o_iovec_init(H2O_STRLIT(", ")), h->value);
            continue;
        }
        if (is_edge_claim(h->name))
            continue;
        if (h->name == &H2O_TOKEN_VIA->buf) {
            via = via.base == NULL ? h->value : h2o_concat(&req->pool, via, h2o_iovec_init(H2O_STRLIT(", ")), h->value);
            continue;
        }
        headers[n++] = *h;
    }
    h2o_iovec_t a = h2o_strdup(&req->pool, addr, SIZE_MAX);
    xff = xff.base == NULL ? a : h2o_concat(&req->pool, xff, h2o_iovec_init(H2O_STRLIT(", ")), a);
    via = via.base == NULL ? h2o_iovec_init(H2O_STRLIT("1.1 conflux"))
                           : h2o_concat(&req->pool, via, h2o_iovec_init(H2O_STRLIT(", 1.1 conflux")));
    headers[n++] = (h2o_header_t){&H2O_TOKEN_X_FORWARDED_FOR->buf, NULL, xff};
    headers[n++] = (h2o_header_t){&H2O_TOKEN_VIA->buf, NULL, via};
    int v6 = strchr(addr, ':') != NULL;
    char fwd[256];
    int fl = snprintf(fwd, sizeof(fwd), "for=%s%s%s;proto=%s", v6 ? "\"[" : "", addr, v6 ? "]\"" : "",
                      req->scheme == &H2O_URL_SCHEME_HTTPS ? "https" : "http");
    /* the Host the client sent (HTTP/2: :authority); h2o gives a request without one (HTTP/1.0) its host entry's
     * name, "default", which is nobody's host */
    h2o_iovec_t host = req->input.authority;
    if (req->hostconf != NULL && host.base == req->hostconf->authority.hostport.base)
        host = h2o_iovec_init(NULL, 0);
    if (host.len != 0 && host.len < 128 && fl > 0 && (size_t)fl < sizeof(fwd) && memchr(host.base, '"', host.len) == NULL &&
        memchr(host.base, '\\', host.len) == NULL) {
        /* RFC 7239 §4: host:port is not a token, so it goes in a quoted string */
        snprintf(fwd + fl, sizeof(fwd) - (size_t)fl, ";host=\"%.*s\"", (int)host.len, host.base);
        headers[n++] = (h2o_header_t){&x_forwarded_host, NULL, host};
    }
    headers[n++] = (h2o_header_t){&forwarded, NULL, h2o_strdup(&req->pool, fwd, SIZE_MAX)};
    headers[n++] = (h2o_header_t){&x_forwarded_proto, NULL,
                                  req->scheme == &H2O_URL_SCHEME_HTTPS ? h2o_iovec_init(H2O_STRLIT("https"))
                                                                       : h2o_iovec_init(H2O_STRLIT("http"))};

    unsigned method = cf_method_bit(req->method.base, req->method.len);
    cf_upstream_req_t ureq = {
        .method = req->method,
        .path = h2o_iovec_init(path.base, path.len),
        .headers = headers,
        .num_headers = n,
        .body = req->entity.base != NULL ? req->entity : h2o_iovec_init(NULL, 0),
        /* the route's deadline, when it says one, bounds the exchange as it bounds a fan-out's calls */
        .timeout_ms = route->deadline_ms < route->proxy->timeout_ms ? route->deadline_ms : route->proxy->timeout_ms,
        .max_response_body = t->config->limits.max_response_body,
        .prepend_base_path = 1,
        .trace = trace, /* its traceparent, tracestate and X-Request-Id replace the client's */
        .span_pool = &req->pool,
        .idempotent = (method & (CF_METHOD_GET | CF_METHOD_HEAD | CF_METHOD_PUT | CF_METHOD_DELETE | CF_METHOD_OPTIONS)) != 0,
    };
    cf_watch_start(w->watches, req, &p->watch);
    p->upstream_start_ns = cf_now_ns();
    cf_attempt_start(&p->attempt, t->attempts[route->proxy->index], &ureq, h2o_now(w->loop) + route->deadline_ms, on_response);
    cf_buf_free(&path);
}
