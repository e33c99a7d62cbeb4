/* What conflux sends: its own errors, JSON answers, and the headers that report each call (formatted here only). */
#include <stdio.h>
#include <string.h>
#include "cf_http.h"
#include "jsonout.h"
#include "respond.h"
#include "router.h"

void cf_send_json(h2o_req_t *req, int status, json_t *doc)
{
    cf_buf_t text = CF_BUF_INIT;
    if (doc == NULL) { /* json_pack refuses text that is not UTF-8: never crash on what a client sent */
        status = 500;
        cf_buf_appends(&text, "{\"error\":\"internal\",\"message\":\"the answer could not be encoded\"}");
    } else {
        cf_json_write(&text, doc);
    }
    req->res.status = status;
    req->res.reason = cf_http_reason(status);
    req->res.content_length = text.len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_send_inline(req, text.base, text.len);
    cf_buf_free(&text);
}

void cf_send_error(h2o_req_t *req, int status, const char *code, const char *message)
{
    json_t *doc = json_pack("{s:s, s:s}", "error", code, "message", message);
    if (doc == NULL) /* the message quotes client bytes that are not UTF-8: jansson refuses them */
        doc = json_pack("{s:s, s:s}", "error", code, "message", "(the message quotes bytes that are not UTF-8)");
    cf_send_json(req, status, doc);
    json_decref(doc);
}

void cf_send_client_gone(h2o_req_t *req)
{
    cf_send_error(req, 499, "client_closed", "the client closed the connection");
}

/* --- the headers of an answer ----------------------------------------------------------------------------------- */

/* Appends s as an RFC 8941 §3.3.3 sf-string. Bytes it cannot hold (controls, DEL, non-ASCII) become '?'. */
static void append_sf_string(cf_buf_t *out, const char *s)
{
    cf_buf_appendc(out, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; ++p) {
        if (*p == '"' || *p == '\\') {
            cf_buf_appendc(out, '\\');
            cf_buf_appendc(out, (char)*p);
        } else if (*p < 0x20 || *p > 0x7e) {
            cf_buf_appendc(out, '?');
        } else {
            cf_buf_appendc(out, (char)*p);
        }
    }
    cf_buf_appendc(out, '"');
}

int cf_proxy_status_format(cf_buf_t *out, const char *name, cf_reason_t reason, int status)
{
    const char *error = cf_reason_proxy_error(reason);
    int received = status >= 100 && status <= 999;
    if (reason == CF_REASON_NONE || (error == NULL && !received))
        return -1;
    cf_buf_appends(out, "conflux");
    if (error != NULL) {
        cf_buf_appends(out, "; error=");
        cf_buf_appends(out, error);
    }
    if (received) {
        cf_buf_appends(out, "; received-status=");
        cf_buf_append_i64(out, status);
    }
    cf_buf_appends(out, "; details=");
    append_sf_string(out, name != NULL ? name : "");
    return 0;
}

void cf_cache_status_format(cf_buf_t *out, const char *name, const cf_cache_report_t *report)
{
    /* RFC 9211 2: hit = served from cache; fwd = why a request went forward; collapsed = joined another request */
    cf_buf_appends(out, "conflux");
    switch (report->state) {
    case CF_CACHE_HIT:
        cf_buf_appends(out, "; hit");
        break;
    case CF_CACHE_STALE:
        cf_buf_appends(out, "; hit; fwd=stale");
        break;
    case CF_CACHE_MISS:
    case CF_CACHE_COALESCED:
        cf_buf_appends(out, "; fwd=miss");
        break;
    default:
        break;
    }
    if (report->fwd_status != 0 && report->state != CF_CACHE_HIT) {
        cf_buf_appends(out, "; fwd-status=");
        cf_buf_append_i64(out, report->fwd_status);
    }
    if (report->state == CF_CACHE_COALESCED)
        cf_buf_appends(out, "; collapsed");
    if (report->stored)
        cf_buf_appends(out, "; stored");
    if (report->has_ttl) {
        cf_buf_appends(out, "; ttl=");
        cf_buf_append_i64(out, report->ttl_s);
    }
    cf_buf_appends(out, "; detail=\""); /* call names are [A-Za-z0-9_-]: nothing to escape */
    cf_buf_appends(out, name);
    cf_buf_appendc(out, '"');
}

void cf_server_timing_format(cf_buf_t *out, const char *name, uint64_t duration_ns, const char *desc)
{
    /* milliseconds with one decimal, rounded to the nearest tenth */
    uint64_t tenths = (duration_ns + 50000) / 100000;
    cf_buf_appends(out, name);
    cf_buf_appends(out, ";dur=");
    cf_buf_append_fixed(out, tenths, 1);
    if (desc != NULL) {
        cf_buf_appends(out, ";desc=\"");
        cf_buf_appends(out, desc);
        cf_buf_appendc(out, '"');
    }
}

/* Adds a header whose value is in `value` (copied into the pool), then empties `value` for the next one. */
static void add_header(h2o_req_t *req, const char *name, size_t namelen, cf_buf_t *value)
{
    h2o_iovec_t v = h2o_strdup(&req->pool, value->base, value->len);
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, namelen, 0, NULL, v.base, v.len);
    cf_buf_reset(value);
}

/* Appends the Proxy-Status members of the failed calls; returns whether there is one. */
static int proxy_status(cf_buf_t *out, const cf_call_record_t *calls, size_t num_calls)
{
    for (size_t i = 0; i != num_calls; ++i) {
        size_t before = out->len;
        if (before != 0)
            cf_buf_appends(out, ", ");
        const cf_call_record_t *c = &calls[i];
        /* a foreach call that got its answer but not every element's: its first failed element says why */
        int elements_failed = c->reason == CF_REASON_NONE && c->element_reason != CF_REASON_NONE;
        if (cf_proxy_status_format(out, c->name, elements_failed ? c->element_reason : c->reason,
                                   elements_failed ? c->element_status : c->status) != 0)
            out->len = before; /* a success, or a cancelled call */
    }
    return out->len != 0;
}

void cf_add_proxy_status(h2o_req_t *req, const cf_call_record_t *calls, size_t num_calls)
{
    cf_buf_t value = CF_BUF_INIT;
    if (proxy_status(&value, calls, num_calls))
        add_header(req, H2O_STRLIT("proxy-status"), &value);
    cf_buf_free(&value);
}

void cf_add_call_headers(h2o_req_t *req, const cf_call_record_t *calls, size_t num_calls, uint64_t total_ns)
{
    cf_buf_t value = CF_BUF_INIT;
    int complete = 1;
    for (size_t i = 0; i != num_calls; ++i) {
        const cf_call_record_t *c = &calls[i];
        char buf[CF_REASON_TEXT_SIZE];
        const char *desc = c->reason != CF_REASON_NONE       ? cf_reason_text(c->reason, c->status, buf)
                           : c->cache.state != CF_CACHE_NONE ? cf_cache_state_name(c->cache.state)
                                                             : "ok";
        if (i != 0)
            cf_buf_appends(&value, ", ");
        char counts[CF_REASON_TEXT_SIZE + 48];
        if (c->foreach) { /* "ok 19/20": the elements answered, of those the source array had */
            snprintf(counts, sizeof(counts), "%s %zu/%zu", c->reason != CF_REASON_NONE ? desc : "ok", c->elements_ok, c->elements);
            desc = counts;
        }
        cf_server_timing_format(&value, c->name, c->duration_ns, desc);
        /* a call that took more than one attempt says so: attempts=N (retries and hedges), hedged=won|lost */
        if (c->attempts > 1) {
            cf_buf_appends(&value, ";attempts=");
            cf_buf_append_u64(&value, c->attempts);
        }
        if (c->hedges != 0)
            cf_buf_appends(&value, c->hedge_won ? ";hedged=won" : ";hedged=lost");
        complete &= c->reason == CF_REASON_NONE && c->elements_ok == c->elements;
    }
    if (num_calls != 0)
        cf_buf_appends(&value, ", ");
    cf_server_timing_format(&value, "total", total_ns, NULL);
    add_header(req, H2O_STRLIT("server-timing"), &value);

    if (proxy_status(&value, calls, num_calls))
        add_header(req, H2O_STRLIT("proxy-status"), &value);

    for (size_t i = 0; i != num_calls; ++i) {
        if (calls[i].cache.state == CF_CACHE_NONE)
            continue;
        if (value.len != 0)
            cf_buf_appends(&value, ", ");
        cf_cache_status_format(&value, calls[i].name, &calls[i].cache);
    }
    if (value.len != 0)
        add_header(req, H2O_STRLIT("cache-status"), &value);

    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("conflux-complete"), 0, NULL, complete ? "true" : "false",
                          complete ? 4 : 5);
    cf_buf_free(&value);
}

/* --- CORS (the policies and their checks are cors.c's) ------------------------------------------------------------ */

static const h2o_iovec_t *request_origin(h2o_req_t *req)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1);
    return i != -1 ? &req->headers.entries[i].value : NULL;
}

/* Access-Control-Allow-Origin and -Credentials for an origin the policy allows (its bytes checked by cors.c: safe to
 * echo). Never "*" with credentials: the config refuses that pair. */
static void add_allow_origin(h2o_req_t *req, const cf_cors_t *cors, const h2o_iovec_t *origin)
{
    if (cors->any_origin)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCESS_CONTROL_ALLOW_ORIGIN, NULL, H2O_STRLIT("*"));
    else
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCESS_CONTROL_ALLOW_ORIGIN, NULL, origin->base, origin->len);
    if (cors->credentials)
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-allow-credentials"), 0, NULL,
                              H2O_STRLIT("true"));
}

/* A field whose value is the config's: copied, since the answer may still be written after a reload freed the config */
static void add_config_value(h2o_req_t *req, const char *name, const char *value)
{
    h2o_iovec_t v = h2o_strdup(&req->pool, value, SIZE_MAX);
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0, NULL, v.base, v.len);
}

void cf_add_cors_headers(h2o_req_t *req, const cf_cors_t *cors)
{
    /* the answer depends on Origin even when it carries no CORS field (a cache must not serve one origin's to another) */
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VARY, NULL, H2O_STRLIT("Origin"));
    const h2o_iovec_t *origin = request_origin(req);
    if (origin == NULL || !cf_cors_origin_allowed(cors, origin->base, origin->len))
        return; /* no CORS fields: the browser keeps the answer from the page */
    add_allow_origin(req, cors, origin);
    if (cors->expose_headers != NULL)
        add_config_value(req, "access-control-expose-headers", cors->expose_headers);
}

void cf_send_cors_preflight(h2o_req_t *req, const cf_cors_t *cors, cf_cors_verdict_t verdict, unsigned allowed)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VARY, NULL,
                   H2O_STRLIT("Origin, Access-Control-Request-Method, Access-Control-Request-Headers"));
    switch (verdict) {
    case CF_CORS_OK:
        break;
    case CF_CORS_BAD_ORIGIN:
        cf_send_error(req, 403, "cors_denied", "CORS preflight refused: the Origin is not allowed on this route");
        return;
    case CF_CORS_BAD_METHOD: {
        char m[64], msg[160];
        snprintf(msg, sizeof(msg), "CORS preflight refused: the method is not allowed on this route (allowed: %s)",
                 allowed != 0 ? cf_methods_format(allowed, m, sizeof(m)) : "none");
        cf_send_error(req, 403, "cors_denied", msg);
        return;
    }
    default: {
        char msg[1024];
        snprintf(msg, sizeof(msg), "CORS preflight refused: a requested header is not allowed on this route (allowed: %s)",
                 cors->allow_headers != NULL ? cors->allow_headers : "none");
        cf_send_error(req, 403, "cors_denied", msg);
        return;
    }
    }
    add_allow_origin(req, cors, request_origin(req));
    char m[64];
    cf_methods_format(allowed, m, sizeof(m));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-allow-methods"), 0, NULL,
                          h2o_strdup(&req->pool, m, SIZE_MAX).base, strlen(m));
    if (cors->allow_headers != NULL)
        add_config_value(req, "access-control-allow-headers", cors->allow_headers);
    if (cors->max_age_ms != UINT64_MAX) {
        char age[24];
        int n = snprintf(age, sizeof(age), "%llu", (unsigned long long)(cors->max_age_ms / 1000));
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("access-control-max-age"), 0, NULL,
                              h2o_strdup(&req->pool, age, n).base, n);
    }
    req->res.status = 204;
    req->res.reason = cf_http_reason(204);
    req->res.content_length = 0;
    h2o_send_inline(req, "", 0);
}
