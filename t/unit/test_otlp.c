/* Unit tests of gateway/otlp.c's encoder: the OTLP/HTTP JSON field names and encodings, ids and parent links. */
#include "tap.h"
#include "../../gateway/trace.c"
#include "../../gateway/jsonout.c"
#include "../../gateway/version.c"
#include "../../gateway/reason.c"
#include "../../gateway/otlp.c"

static uint64_t counted[CF_METRICS_NUM_SPANS];
void cf_metrics_spans(cf_metrics_spans_t what, uint64_t n)
{
    counted[what] += n;
}

#define TID "4bf92f3577b34da6a3ce929d0e0e4736"
#define PID "00f067aa0ba902b7"
#define OFFSET 1700000000000000000ll /* the wall clock's lead over the monotonic one */

/* A batch of one request's spans, as the exporter sends it, decoded (owned by the caller). */
static json_t *encode(const cf_request_record_t *rec, uint64_t span_id, uint64_t end_ns, size_t *n, const char *service)
{
    cf_buf_t b = CF_BUF_INIT;
    cf_otlp_encode_open(&b, service);
    *n = cf_otlp_encode_spans(&b, rec, span_id, end_ns, OFFSET);
    cf_otlp_encode_close(&b);
    json_error_t err;
    json_t *doc = json_loadb(b.base, b.len, 0, &err);
    if (doc == NULL)
        diag("not JSON (%s): %.*s", err.text, (int)b.len, b.base);
    cf_buf_free(&b);
    return doc;
}

static json_t *spans_of(json_t *doc)
{
    return json_object_get(
        json_array_get(json_object_get(json_array_get(json_object_get(doc, "resourceSpans"), 0), "scopeSpans"), 0), "spans");
}

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* The value object of attribute `key` of a span, or NULL. */
static json_t *attr(json_t *span, const char *key)
{
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(span, "attributes"), i,
                       a) if (strcmp(str(a, "key"), key) == 0) return json_object_get(a, "value");
    return NULL;
}

static const char *attr_s(json_t *span, const char *key)
{
    return str(attr(span, key), "stringValue");
}

static h2o_req_t fake_req(const char *method, const char *path, size_t query_at)
{
    h2o_req_t req;
    memset(&req, 0, sizeof(req));
    req.method = h2o_iovec_init(method, strlen(method));
    req.path = h2o_iovec_init(path, strlen(path));
    req.query_at = query_at;
    return req;
}

static void test_envelope_and_request_span(void)
{
    h2o_req_t req = fake_req("GET", "/users/7?token=x", 8);
    cf_route_t route = {.pattern = {.src = "/users/{id}"}};
    cf_trace_t t = {.trace_id = TID, .flags = "01", .request_id = "rid-1", .request_id_len = 5, .sampled = 1};
    cf_request_record_t rec = {.req = &req, .route = &route, .status = 200, .duration_ns = 1500, .trace = &t};
    size_t n;
    json_t *doc = encode(&rec, 0x0123456789abcdefull, 1000000, &n, "svc \"one\"");
    ok(doc != NULL, "a batch is JSON");
    is(n, 1, "a request without calls is one span");
    json_t *rs = json_array_get(json_object_get(doc, "resourceSpans"), 0);
    json_t *res_attr = json_array_get(json_object_get(json_object_get(rs, "resource"), "attributes"), 0);
    is_str(str(res_attr, "key"), "service.name", "resource.attributes[0] is service.name");
    is_str(str(json_object_get(res_attr, "value"), "stringValue"), "svc \"one\"", "its stringValue, escaped");
    json_t *scope = json_object_get(json_array_get(json_object_get(rs, "scopeSpans"), 0), "scope");
    is_str(str(scope, "name"), "conflux", "scopeSpans[0].scope.name");
    is_str(str(scope, "version"), cf_version, "scopeSpans[0].scope.version");
    json_t *spans = spans_of(doc);
    is(json_array_size(spans), 1, "scopeSpans[0].spans holds the span");
    json_t *s = json_array_get(spans, 0);
    is_str(str(s, "traceId"), TID, "traceId: the trace-id, lowercase hex (not base64)");
    is_str(str(s, "spanId"), "0123456789abcdef", "spanId: 16 lowercase hex digits");
    ok(json_object_get(s, "parentSpanId") == NULL, "a trace conflux started: the request span is a root (no parentSpanId)");
    ok(json_object_get(s, "traceState") == NULL, "no traceState without the client's tracestate");
    is_str(str(s, "name"), "GET /users/{id}", "name: method and route pattern, not the path");
    ok(json_is_integer(json_object_get(s, "kind")) && json_integer_value(json_object_get(s, "kind")) == 2,
       "kind 2 (SERVER), a number");
    is_str(str(s, "startTimeUnixNano"), "1700000000000998500", "startTimeUnixNano: a string of Unix ns (end - duration)");
    is_str(str(s, "endTimeUnixNano"), "1700000000001000000", "endTimeUnixNano: a string of Unix ns");
    is_str(attr_s(s, "http.request.method"), "GET", "http.request.method");
    is_str(attr_s(s, "http.route"), "/users/{id}", "http.route");
    is_str(attr_s(s, "url.path"), "/users/7", "url.path, without the query");
    is_str(str(attr(s, "http.response.status_code"), "intValue"), "200", "http.response.status_code: an intValue string");
    is_str(attr_s(s, "conflux.request_id"), "rid-1", "conflux.request_id");
    ok(json_object_get(s, "status") == NULL, "status unset on success (OpenTelemetry's HTTP conventions)");
    json_decref(doc);

    /* a continued trace, answered 502, without a route */
    cf_trace_t ct = t;
    ct.parent_id = 0x00f067aa0ba902b7ull; /* PID */
    ct.continued = 1;
    ct.tracestate = "vendor=a\"b";
    ct.tracestate_len = strlen(ct.tracestate);
    h2o_req_t odd = fake_req("GET", "/q\"\\\xff\n", SIZE_MAX);
    rec = (cf_request_record_t){.req = &odd, .route = NULL, .status = 502, .duration_ns = 10, .trace = &ct};
    doc = encode(&rec, 1, 100, &n, "conflux");
    s = json_array_get(spans_of(doc), 0);
    is_str(str(s, "parentSpanId"), PID, "a continued trace: parentSpanId is the client's parent-id");
    is_str(str(s, "traceState"), "vendor=a\"b", "traceState: the client's tracestate");
    is_str(str(s, "spanId"), "0000000000000001", "ids keep their leading zeros");
    is_str(str(s, "name"), "GET", "no route: the method alone");
    ok(attr(s, "http.route") == NULL, "and no http.route");
    is_str(attr_s(s, "url.path"), "/q\"\\\xef\xbf\xbd\n", "a path with quotes, backslashes, bad UTF-8 and controls is escaped");
    is(json_integer_value(json_object_get(json_object_get(s, "status"), "code")), 2, "a 5xx answer: status.code 2 (ERROR)");
    is_str(str(json_object_get(s, "status"), "message"), "status 502", "with a message");
    json_decref(doc);
}

static void test_attempt_spans(void)
{
    h2o_req_t req = fake_req("GET", "/p", SIZE_MAX);
    cf_route_t route = {.pattern = {.src = "/p"}};
    cf_trace_t t = {.trace_id = TID, .flags = "01", .request_id = "r", .request_id_len = 1, .sampled = 1};
    cf_span_detail_t d1[CF_TRACE_MAX_SPANS] = {
        {.start_ns = 200, .end_ns = 300, .status = 503, .kind = CF_SPAN_FIRST},
        {.start_ns = 400, .end_ns = 500, .status = 200, .kind = CF_SPAN_RETRY},
        {.start_ns = 450, .end_ns = 0, .reason = CF_REASON_CANCELLED, .kind = CF_SPAN_HEDGE}};
    cf_spans_t s1 = {.n = 3, .ids = {0xa1, 0xa2, 0xa3}, .details = d1};
    cf_span_detail_t d2[CF_TRACE_MAX_SPANS] = {{.start_ns = 210, .end_ns = 220, .reason = CF_REASON_CONNECT_FAILED}};
    cf_spans_t s2 = {.n = 1, .ids = {0xb1}, .details = d2};
    cf_spans_t unsampled = {.n = 1, .ids = {0xc1}};
    cf_call_record_t calls[] = {
        {.name = "user", .backend = "api", .spans = &s1, .cache = {.state = CF_CACHE_MISS}},
        {.name = "orders", .backend = "shop", .spans = &s2},
        {.name = "hit", .backend = "api", .spans = NULL, .cache = {.state = CF_CACHE_HIT}},
        {.name = "odd", .backend = "api", .spans = &unsampled},
    };
    cf_request_record_t rec = {
        .req = &req, .route = &route, .status = 200, .duration_ns = 900, .calls = calls, .num_calls = 4, .trace = &t};
    size_t n;
    json_t *doc = encode(&rec, 0xfeed, 1000, &n, "conflux");
    json_t *spans = spans_of(doc);
    is(n, 5, "the request and one span per attempt whose times were kept");
    is(json_array_size(spans), 5, "all in the batch");
    json_t *first = json_array_get(spans, 1), *retry = json_array_get(spans, 2), *hedge = json_array_get(spans, 3),
           *failed = json_array_get(spans, 4);
    is_str(str(first, "spanId"), "00000000000000a1", "an attempt's spanId is the id its traceparent carried");
    is_str(str(first, "parentSpanId"), "000000000000feed", "its parentSpanId is the request's span");
    is_str(str(first, "traceId"), TID, "same trace");
    is(json_integer_value(json_object_get(first, "kind")), 3, "kind 3 (CLIENT)");
    is_str(str(first, "name"), "user", "named after the call");
    is_str(str(first, "startTimeUnixNano"), "1700000000000000200", "its own start");
    is_str(str(first, "endTimeUnixNano"), "1700000000000000300", "its own end");
    ok(attr(first, "conflux.call") == NULL, "the call is the span's name, not an attribute too");
    is_str(attr_s(first, "conflux.backend"), "api", "conflux.backend");
    is_str(attr_s(first, "conflux.attempt"), "first", "conflux.attempt: first");
    is_str(attr_s(first, "conflux.cache"), "miss", "conflux.cache: the call's cache state");
    is_str(str(attr(first, "http.response.status_code"), "intValue"), "503", "the attempt's own status");
    is_str(attr_s(first, "error.type"), "status_503", "error.type for a 5xx");
    is(json_integer_value(json_object_get(json_object_get(first, "status"), "code")), 2, "a 5xx attempt: ERROR");
    is_str(attr_s(retry, "conflux.attempt"), "retry", "the second attempt is a retry");
    ok(attr(retry, "conflux.retry") == NULL, "no separate boolean: conflux.attempt says it");
    ok(json_object_get(retry, "status") == NULL, "a 200 attempt: status unset");
    is_str(attr_s(hedge, "conflux.attempt"), "hedge", "a hedge");
    is_str(attr_s(hedge, "conflux.reason"), "cancelled", "the loser of a race: conflux.reason cancelled");
    ok(json_object_get(hedge, "status") == NULL && attr(hedge, "error.type") == NULL, "and no error");
    is_str(str(hedge, "endTimeUnixNano"), "1700000000000001000", "an attempt that had not ended ends with the request");
    ok(attr(hedge, "http.response.status_code") == NULL, "no status code when none came");
    is_str(str(failed, "name"), "orders", "the next call's attempt");
    ok(attr(failed, "conflux.cache") == NULL, "no conflux.cache for a call without cache");
    is_str(attr_s(failed, "conflux.reason"), "connect_failed", "conflux.reason: the failure reason");
    is_str(attr_s(failed, "error.type"), "connect_failed", "error.type too");
    is_str(str(json_object_get(failed, "status"), "message"), "connect_failed", "status message: the reason");
    json_decref(doc);
}

int main(void)
{
    test_envelope_and_request_span();
    test_attempt_spans();
    return done_testing();
}
