/* Unit tests of gateway/respond.c: Proxy-Status, Cache-Status and Server-Timing, and the headers of an answer. */
#include "tap.h"
#include "../../gateway/reason.c"
#include "../../gateway/jsonout.c"
#include "../../gateway/router.c"
#include "../../gateway/cors.c"
#include "../../gateway/ratelimit.c"
#include "../../gateway/respond.c"

/* Each reason's RFC 9209 error type, as docs/http.md lists them. */
static const struct {
    cf_reason_t reason;
    const char *type;
} error_types[] = {
    {CF_REASON_TIMEOUT, "http_response_timeout"},
    {CF_REASON_DEADLINE, "http_response_timeout"},
    {CF_REASON_CONNECT_FAILED, "connection_refused"},
    {CF_REASON_RESET, "connection_terminated"},
    {CF_REASON_TOO_LARGE, "http_response_body_size"},
    {CF_REASON_INVALID_JSON, "http_protocol_error"},
    {CF_REASON_NOT_AN_OBJECT, "http_protocol_error"},
    {CF_REASON_BAD_RESPONSE, "http_protocol_error"},
    {CF_REASON_MISSING_PARAM, "http_request_error"},
    {CF_REASON_BAD_PARAM, "http_request_error"},
    {CF_REASON_CIRCUIT_OPEN, "destination_unavailable"},
    {CF_REASON_BAD_REQUEST, "proxy_internal_error"},
    {CF_REASON_STATUS, NULL},
    {CF_REASON_CANCELLED, NULL},
    {CF_NUM_REASONS, "proxy_internal_error"},
};

/* Formats one member; checks the result and the text. */
static void format_is(const char *name, cf_reason_t reason, int status, const char *expected)
{
    cf_buf_t b = CF_BUF_INIT;
    char buf[CF_REASON_TEXT_SIZE];
    const char *text = cf_reason_text(reason, status, buf);
    is(cf_proxy_status_format(&b, name, reason, status), 0, "format %s for a %zu-byte name: 0", text, strlen(name));
    is_str(b.base, expected, "Proxy-Status member for %s, %zu-byte call name", text, strlen(name));
    cf_buf_free(&b);
}

static void test_proxy_status_format(void)
{
    for (size_t i = 0; i != sizeof(error_types) / sizeof(error_types[0]); ++i) {
        char want[128];
        is_str(cf_reason_proxy_error(error_types[i].reason), error_types[i].type, "proxy error type of reason %d",
               (int)error_types[i].reason);
        if (error_types[i].type == NULL || error_types[i].reason == CF_NUM_REASONS)
            continue;
        snprintf(want, sizeof(want), "conflux; error=%s; details=\"orders\"", error_types[i].type);
        format_is("orders", error_types[i].reason, 0, want);
    }
    /* received-status whenever the upstream answered; the name as an sf-string */
    format_is("recs", CF_REASON_STATUS, 503, "conflux; received-status=503; details=\"recs\"");
    format_is("p", CF_REASON_INVALID_JSON, 200, "conflux; error=http_protocol_error; received-status=200; details=\"p\"");
    format_is("a\"b\\c", CF_REASON_RESET, 0, "conflux; error=connection_terminated; details=\"a\\\"b\\\\c\"");
    format_is("ctl\r\n\x7f\xc3\xa9", CF_REASON_CIRCUIT_OPEN, 0, "conflux; error=destination_unavailable; details=\"ctl?????\"");
    format_is("", CF_REASON_RESET, 0, "conflux; error=connection_terminated; details=\"\"");

    /* members are appended: the caller joins them */
    cf_buf_t b = CF_BUF_INIT;
    cf_proxy_status_format(&b, "one", CF_REASON_TIMEOUT, 0);
    cf_buf_appends(&b, ", ");
    cf_proxy_status_format(&b, "two", CF_REASON_STATUS, 502);
    is_str(b.base, "conflux; error=http_response_timeout; details=\"one\", conflux; received-status=502; details=\"two\"",
           "two members joined");

    /* nothing to report: a success, a cancelled call */
    cf_buf_reset(&b);
    is(cf_proxy_status_format(&b, "ok", CF_REASON_NONE, 200), -1, "a success is refused");
    is(cf_proxy_status_format(&b, "c", CF_REASON_CANCELLED, 0), -1, "a cancelled call is not reported");
    is(b.len, 0, "and nothing is appended");
    cf_buf_free(&b);
}

static void test_cache_status(void)
{
    struct {
        cf_cache_report_t r;
        const char *want;
    } cases[] = {
        {{.state = CF_CACHE_HIT, .ttl_s = 27, .has_ttl = 1}, "conflux; hit; ttl=27; detail=\"p\""},
        {{.state = CF_CACHE_MISS, .fwd_status = 200, .stored = 1, .ttl_s = 30, .has_ttl = 1},
         "conflux; fwd=miss; fwd-status=200; stored; ttl=30; detail=\"p\""},
        {{.state = CF_CACHE_MISS, .fwd_status = 503}, "conflux; fwd=miss; fwd-status=503; detail=\"p\""},
        {{.state = CF_CACHE_MISS}, "conflux; fwd=miss; detail=\"p\""},
        {{.state = CF_CACHE_COALESCED, .fwd_status = 200}, "conflux; fwd=miss; fwd-status=200; collapsed; detail=\"p\""},
        {{.state = CF_CACHE_STALE, .ttl_s = -4, .has_ttl = 1}, "conflux; hit; fwd=stale; ttl=-4; detail=\"p\""},
        {{.state = CF_CACHE_STALE, .fwd_status = 503, .ttl_s = -4, .has_ttl = 1},
         "conflux; hit; fwd=stale; fwd-status=503; ttl=-4; detail=\"p\""},
        {{.state = CF_CACHE_HIT, .fwd_status = 200, .ttl_s = 3600, .has_ttl = 1}, "conflux; hit; ttl=3600; detail=\"p\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        cf_buf_t b = CF_BUF_INIT;
        cf_cache_status_format(&b, "p", &cases[i].r);
        is_str(b.base, cases[i].want, "Cache-Status %zu", i);
        cf_buf_free(&b);
    }
    is_str(cf_cache_state_name(CF_CACHE_COALESCED), "coalesced", "state names");
    ok(cf_cache_state_name(CF_CACHE_NONE) == NULL, "no state, no name");
}

static void test_server_timing(void)
{
    static const struct {
        uint64_t ns;
        const char *desc, *want;
    } cases[] = {
        {0, "hit", "c;dur=0.0;desc=\"hit\""},
        {12345678, "ok", "c;dur=12.3;desc=\"ok\""},
        {12350001, "ok", "c;dur=12.4;desc=\"ok\""},
        {503000000, "timeout", "c;dur=503.0;desc=\"timeout\""},
        {49999, NULL, "c;dur=0.0"},
        {99999, NULL, "c;dur=0.1"},
        {123456789012, NULL, "c;dur=123456.8"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        cf_buf_t b = CF_BUF_INIT;
        char printed[64];
        cf_server_timing_format(&b, "c", cases[i].ns, cases[i].desc);
        is_str(b.base, cases[i].want, "Server-Timing of %llu ns", (unsigned long long)cases[i].ns);
        snprintf(printed, sizeof(printed), "c;dur=%.1f", cases[i].ns / 1e6);
        ok(strncmp(b.base, printed, strlen(printed)) == 0, "as %%.1f writes it: %s", printed);
        cf_buf_free(&b);
    }
}

/* The value of the one response header `name` of req, or NULL (two of them fail the test). */
static const char *header(h2o_req_t *req, const char *name)
{
    const char *found = NULL;
    for (size_t i = 0; i != req->res.headers.size; ++i) {
        const h2o_header_t *h = &req->res.headers.entries[i];
        if (!h2o_memis(h->name->base, h->name->len, name, strlen(name)))
            continue;
        ok(found == NULL, "one %s header", name);
        found = h2o_strdup(&req->pool, h->value.base, h->value.len).base;
    }
    return found;
}

static void test_call_headers(void)
{
    h2o_req_t req;
    memset(&req, 0, sizeof(req));
    h2o_mem_init_pool(&req.pool);
    cf_call_record_t calls[] = {
        {.name = "profile", .duration_ns = 100, .cache = {.state = CF_CACHE_HIT, .ttl_s = 27, .has_ttl = 1}},
        {.name = "orders", .reason = CF_REASON_TIMEOUT, .duration_ns = 503000000},
        {.name = "recs",
         .reason = CF_REASON_STATUS,
         .status = 503,
         .duration_ns = 2000000,
         .cache = {.state = CF_CACHE_MISS, .fwd_status = 503}},
        {.name = "late", .reason = CF_REASON_CANCELLED},
    };
    cf_add_call_headers(&req, calls, 4, 503400000);
    is_str(header(&req, "server-timing"),
           "profile;dur=0.0;desc=\"hit\", orders;dur=503.0;desc=\"timeout\", recs;dur=2.0;desc=\"status_503\", "
           "late;dur=0.0;desc=\"cancelled\", total;dur=503.4",
           "Server-Timing: every call in order, then the total");
    is_str(header(&req, "proxy-status"),
           "conflux; error=http_response_timeout; details=\"orders\", conflux; received-status=503; details=\"recs\"",
           "Proxy-Status: the failed calls but the cancelled one");
    is_str(header(&req, "cache-status"),
           "conflux; hit; ttl=27; detail=\"profile\", conflux; fwd=miss; fwd-status=503; detail=\"recs\"",
           "Cache-Status: the calls the cache answered");
    is_str(header(&req, "conflux-complete"), "false", "Conflux-Complete: false");
    is_str(req.res.headers.entries[0].name->base, "server-timing", "Server-Timing comes first");

    h2o_req_t ok_req;
    memset(&ok_req, 0, sizeof(ok_req));
    h2o_mem_init_pool(&ok_req.pool);
    cf_add_call_headers(&ok_req, calls, 1, 100);
    is_str(header(&ok_req, "proxy-status"), NULL, "no failure, no Proxy-Status");
    is_str(header(&ok_req, "conflux-complete"), "true", "Conflux-Complete: true");
    cf_add_call_headers(&ok_req, NULL, 0, 0);
    is(ok_req.res.headers.size, 3 + 2, "a route without calls: Server-Timing (the total) and Conflux-Complete");
    is_str(ok_req.res.headers.entries[3].value.base, "total;dur=0.0", "the total alone");

    h2o_req_t proxy_req;
    memset(&proxy_req, 0, sizeof(proxy_req));
    h2o_mem_init_pool(&proxy_req.pool);
    cf_add_proxy_status(&proxy_req, &calls[1], 1);
    is_str(header(&proxy_req, "proxy-status"), "conflux; error=http_response_timeout; details=\"orders\"",
           "a pass-through's one exchange");
    h2o_mem_clear_pool(&req.pool);
    h2o_mem_clear_pool(&ok_req.pool);
    h2o_mem_clear_pool(&proxy_req.pool);
}

int main(void)
{
    test_proxy_status_format();
    test_cache_status();
    test_server_timing();
    test_call_headers();
    return done_testing();
}
