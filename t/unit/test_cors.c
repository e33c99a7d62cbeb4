/* Unit tests of gateway/cors.c: cors: decoding and its errors, Origin matching (exact, "*", wildcards) and the
 * preflight checks, with the hostile values a client may send. */
#include "tap.h"
#include "../../gateway/router.c"
#include "../../gateway/cors.c"

/* Decodes `yaml` (a cors: mapping or scalar) as a route's cors:; returns the policy, or NULL with the error in err. */
static cf_cors_t *decode(const char *yaml, int *failed, char *err, size_t errlen)
{
    cf_yaml_t y;
    cf_cors_t *cors = NULL;
    *failed = 1;
    if (cf_yaml_load_string(&y, "t.yaml", yaml, strlen(yaml), err, errlen) != 0) {
        cf_yaml_dispose(&y);
        return NULL;
    }
    cf_yctx_t ctx;
    cf_yctx_init(&ctx, &y);
    cf_ypath_key(&ctx, "cors");
    *failed = cf_cors_decode(&ctx, cf_yaml_root(&y), 1, &cors) != 0;
    snprintf(err, errlen, "%s", ctx.err);
    cf_yaml_dispose(&y);
    return cors;
}

static cf_cors_t *must(const char *yaml)
{
    char err[1024];
    int failed;
    cf_cors_t *cors = decode(yaml, &failed, err, sizeof(err));
    if (!ok(!failed && cors != NULL, "decodes %s", yaml))
        diag("%s", err);
    return cors;
}

static void refused(const char *yaml, const char *what)
{
    char err[1024];
    int failed;
    cf_cors_t *cors = decode(yaml, &failed, err, sizeof(err));
    ok(failed && cors == NULL, "refuses %s", yaml);
    if (!ok(strstr(err, what) != NULL, "  says \"%s\"", what))
        diag("%s", err);
    cf_cors_free(cors);
}

static int allowed(const cf_cors_t *cors, const char *origin)
{
    return cf_cors_origin_allowed(cors, origin, strlen(origin));
}

static int headers_ok(const cf_cors_t *cors, const char *list)
{
    return cf_cors_headers_allowed(cors, list, strlen(list));
}

int main(void)
{
    cf_cors_t *c = must("{origins: [https://App.Example.com, \"https://*.example.org\", \"http://*.dev.test:8080\", "
                        "\"http://[::1]:3000\"], methods: [get, POST], headers: [Content-Type, X-Api-Key], max_age: 90s}");
    if (c == NULL)
        return 1;
    /* exact: lower-cased in the file, compared byte for byte */
    ok(allowed(c, "https://app.example.com"), "an exact origin");
    ok(!allowed(c, "https://APP.example.com"), "not in another case");
    ok(!allowed(c, "https://app.example.com/"), "not with a slash");
    ok(!allowed(c, "https://app.example.com:443"), "not with an explicit port");
    ok(!allowed(c, "http://app.example.com"), "not with another scheme");
    ok(!allowed(c, "https://app.example.co"), "not a prefix");
    ok(!allowed(c, "https://app.example.comm"), "nor a longer one");
    ok(allowed(c, "http://[::1]:3000"), "an IPv6 origin");
    /* wildcards: whole labels before the dotted suffix */
    ok(allowed(c, "https://a.example.org"), "a subdomain");
    ok(allowed(c, "https://a-b.c9.example.org"), "a deeper one");
    ok(!allowed(c, "https://example.org"), "not the domain itself");
    ok(!allowed(c, "https://.example.org"), "not an empty label");
    ok(!allowed(c, "https://a..example.org"), "not an empty label inside");
    ok(!allowed(c, "https://evil-example.org"), "not a look-alike");
    ok(!allowed(c, "https://example.org.evil.net"), "not the suffix in the middle");
    ok(!allowed(c, "https://a.example.org:8443"), "not with a port the pattern lacks");
    ok(!allowed(c, "http://a.example.org"), "not with another scheme");
    ok(!allowed(c, "https://a/b.example.org"), "not with a slash in the labels");
    ok(!allowed(c, "https://a:1.example.org"), "not with a colon in the labels");
    ok(!allowed(c, "https://a_b.example.org"), "not an underscore");
    ok(allowed(c, "http://x.dev.test:8080"), "a wildcard with a port");
    ok(!allowed(c, "http://x.dev.test"), "without its port: no");
    ok(!allowed(c, "http://x.dev.test:80800"), "another port: no");
    /* hostile bytes: never allowed, so never echoed */
    ok(!cf_cors_origin_allowed(c, "https://app.example.com\0x", 25), "a NUL");
    ok(!allowed(c, "https://a\".example.org"), "a quote");
    ok(!allowed(c, "https://a\r\n.example.org"), "CR LF");
    ok(!allowed(c, "https://a\x80.example.org"), "a non-ASCII byte");
    ok(!allowed(c, ""), "empty");
    ok(!allowed(c, "null"), "null");
    char big[CF_CORS_MAX_ORIGIN + 64];
    snprintf(big, sizeof(big), "https://%0*d.example.org", (int)(CF_CORS_MAX_ORIGIN - 10), 0);
    ok(!allowed(c, big), "over %d bytes", CF_CORS_MAX_ORIGIN);

    /* Access-Control-Request-Headers */
    ok(headers_ok(c, "content-type"), "one header");
    ok(headers_ok(c, "Content-Type,X-API-KEY"), "two, any case, no space");
    ok(headers_ok(c, " x-api-key ,\tcontent-type , "), "spaces, tabs and an empty element");
    ok(headers_ok(c, ""), "none");
    ok(!headers_ok(c, "content-type, authorization"), "one not listed");
    ok(!headers_ok(c, "content-typ"), "a prefix of one");
    ok(!headers_ok(c, "content-type x-api-key"), "two without a comma");
    ok(!headers_ok(c, "content-type\r\nx: y"), "CR LF");
    ok(!headers_ok(c, "content-type\""), "a quote");

    /* preflight verdicts */
    unsigned allowed_methods = cf_cors_methods(c, CF_METHOD_GET | CF_METHOD_HEAD | CF_METHOD_POST);
    is(allowed_methods, CF_METHOD_GET | CF_METHOD_POST, "methods: the policy's among the route's");
    is(cf_cors_preflight(c, "https://a.example.org", 21, CF_METHOD_POST, allowed_methods, "x-api-key", 9), CF_CORS_OK, "allowed");
    is(cf_cors_preflight(c, "https://b.example.com", 21, CF_METHOD_POST, allowed_methods, NULL, 0), CF_CORS_BAD_ORIGIN,
       "origin first");
    is(cf_cors_preflight(c, "https://a.example.org", 21, CF_METHOD_HEAD, allowed_methods, NULL, 0), CF_CORS_BAD_METHOD,
       "HEAD: the route's, not the policy's");
    is(cf_cors_preflight(c, "https://a.example.org", 21, 0, allowed_methods, NULL, 0), CF_CORS_BAD_METHOD, "an unknown method");
    is(cf_cors_preflight(c, "https://a.example.org", 21, CF_METHOD_GET, allowed_methods, "cookie", 6), CF_CORS_BAD_HEADERS,
       "a header");
    is_str(c->allow_headers, "content-type, x-api-key", "Allow-Headers, lower case");
    is(c->max_age_ms, 90000, "max_age");
    is(c->credentials, 0, "credentials default false");
    cf_cors_free(c);

    c = must("{origins: \"*\"}");
    if (c != NULL) {
        ok(allowed(c, "https://anything.test"), "\"*\": any origin");
        ok(!allowed(c, "https://x\".test"), "\"*\": still not hostile bytes");
        is(c->max_age_ms, UINT64_MAX, "no max_age: none");
        is(cf_cors_methods(c, CF_METHOD_GET | CF_METHOD_HEAD), CF_METHOD_GET | CF_METHOD_HEAD, "no methods: the route's");
        cf_cors_free(c);
    }
    char err[256];
    int failed;
    ok(decode("off", &failed, err, sizeof(err)) == NULL && !failed, "off: no policy, no error");
    ok(decode("false", &failed, err, sizeof(err)) == NULL && !failed, "false: the same");

    refused("{origins: \"*\", credentials: true}", "cors.credentials: true with origins \"*\"");
    refused("{origins: [https://a.example.com/]}",
            "cors.origins[0]: \"https://a.example.com/\" is not an origin: an origin has no path");
    refused("{origins: [https://a.example.com/x]}", "has no path");
    refused("{origins: [a.example.com]}", "is not an origin");
    refused("{origins: [\"://a.example.com\"]}", "is not an origin");
    refused("{origins: [\"https://\"]}", "is not an origin");
    refused("{origins: [\"https://*.com\"]}", "too wide a wildcard");
    refused("{origins: [\"https://*\"]}", "is not an origin");
    refused("{origins: [\"https://a.*.example.com\"]}", "is not an origin");
    refused("{origins: [\"https://*a.example.com\"]}", "is not an origin");
    refused("{origins: [null]}", "\"null\" is not allowed");
    refused("{origins: [\"https://a.example.com:0\"]}", "bad port");
    refused("{origins: [\"https://a.example.com:65536\"]}", "bad port");
    refused("{origins: [\"https://a.example.com:\"]}", "bad port");
    refused("{origins: [\"https://a b.example.com\"]}", "is not an origin");
    refused("{origins: []}", "at least one origin");
    refused("{methods: [GET]}", "needs origins:");
    refused("{origins: [https://a.example.com], methods: [GET, TRACE]}", "cors.methods[1]: unknown method \"TRACE\"");
    refused("{origins: [https://a.example.com], headers: [\"a b\"]}", "cors.headers[0]: \"a b\" is not a header field name");
    refused("{origins: [https://a.example.com], headers: [\"*\"]}", "a wildcard is not supported");
    refused("{origins: [https://a.example.com], expose_headers: [\"x:y\"]}", "cors.expose_headers[0]");
    refused("{origins: [https://a.example.com], max_age: 25h}", "cors.max_age");
    refused("{origins: [https://a.example.com], credentials: yes}", "cors.credentials");
    refused("{origins: [https://a.example.com], origin: x}", "unknown key \"origin\"");
    refused("on", "expected {origins: [...], ...} or off");
    refused("[https://a.example.com]", "expected {origins: [...], ...} or off");
    return done_testing();
}
