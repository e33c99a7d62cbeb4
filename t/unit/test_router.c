/* Unit tests of the router: patterns, precedence, methods, captures, hostile paths, and a randomized cross-check. */
#define _GNU_SOURCE /* memmem */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include "tap.h"
#include "../../gateway/router.c"
#include "router_ref.h"

static const char *rc_name(int rc)
{
    switch (rc) {
    case CF_ROUTE_OK:
        return "OK";
    case CF_ROUTE_NOT_FOUND:
        return "NOT_FOUND";
    case CF_ROUTE_BAD_METHOD:
        return "BAD_METHOD";
    case CF_ROUTE_BAD_REQUEST:
        return "BAD_REQUEST";
    }
    return "?";
}

/* Matches and renders the outcome as one string: "OK <data> [p1|p2]", "BAD_METHOD <data> GET, HEAD", "NOT_FOUND". */
static char outcome[4096];
static const char *route(cf_router_t *r, unsigned method, const char *path)
{
    size_t len = strlen(path);
    char *scratch = malloc(len + 1);
    cf_route_match_t m;
    int rc = cf_router_match(r, method, path, len, scratch, &m);
    int off = snprintf(outcome, sizeof(outcome), "%s", rc_name(rc));
    if (rc == CF_ROUTE_OK) {
        off += snprintf(outcome + off, sizeof(outcome) - off, " %s [", (const char *)m.data);
        for (size_t i = 0; i != m.num_params; ++i) {
            /* captures must point into the scratch buffer */
            if (m.params[i].len != 0 && (m.params[i].val < scratch || m.params[i].val + m.params[i].len > scratch + len))
                off += snprintf(outcome + off, sizeof(outcome) - off, "(outside scratch)");
            off += snprintf(outcome + off, sizeof(outcome) - off, "%s%.*s", i ? "|" : "", (int)m.params[i].len, m.params[i].val);
        }
        snprintf(outcome + off, sizeof(outcome) - off, "]");
    } else if (rc == CF_ROUTE_BAD_METHOD) {
        char buf[128];
        snprintf(outcome + off, sizeof(outcome) - off, " %s %s", m.data != NULL ? (const char *)m.data : "(none)",
                 cf_methods_format(m.allowed, buf, sizeof(buf)));
    }
    free(scratch);
    return outcome;
}

static void test_methods(void)
{
    char buf[128];
    is(cf_method_bit("GET", 3), CF_METHOD_GET, "GET");
    is(cf_method_bit("HEAD", 4), CF_METHOD_HEAD, "HEAD");
    is(cf_method_bit("OPTIONS", 7), CF_METHOD_OPTIONS, "OPTIONS");
    is(cf_method_bit("get", 3), 0, "method names are case-sensitive");
    is(cf_method_bit("GETX", 3), CF_METHOD_GET, "length is honoured (prefix of a longer buffer)");
    is(cf_method_bit("GE", 2), 0, "prefix of a name is not a name");
    is(cf_method_bit("TRACE", 5), 0, "unknown method");
    is_str(cf_method_name(CF_METHOD_PATCH), "PATCH", "name of PATCH");
    ok(cf_method_name(CF_METHOD_GET | CF_METHOD_POST) == NULL, "no name for two bits");
    is_str(cf_methods_format(CF_METHOD_GET | CF_METHOD_HEAD | CF_METHOD_DELETE, buf, sizeof(buf)), "GET, HEAD, DELETE",
           "format in bit order");
    is_str(cf_methods_format(0, buf, sizeof(buf)), "", "empty mask");
    is_str(cf_methods_format(CF_METHOD_GET | CF_METHOD_HEAD | CF_METHOD_POST, buf, 12), "GET, HEAD",
           "truncated at a name boundary");
    is_str(cf_methods_format(CF_METHOD_GET, buf, 3), "", "too small for the first name");
}

static void pattern_error(const char *src, const char *want)
{
    cf_pattern_t p;
    char err[256] = "";
    int rc = cf_pattern_parse(src, &p, err, sizeof(err));
    is(rc, -1, "pattern '%s' is refused", tap_printable(src));
    ok(strstr(err, want) != NULL, "  message: %s", err);
    if (rc == 0)
        cf_pattern_free(&p);
}

static void test_patterns(void)
{
    cf_pattern_t p;
    char err[256];

    is(cf_pattern_parse("/dashboard/{user_id}", &p, err, sizeof(err)), 0, "simple pattern");
    is(p.num_params, 1, "one param");
    is_str(p.param_names[0], "user_id", "its name");
    is(p.rest_index, -1, "no rest");
    is_str(p.src, "/dashboard/{user_id}", "src kept");
    is(cf_pattern_param_index(&p, "user_id", 7), 0, "index by name");
    is(cf_pattern_param_index(&p, "user", 4), -1, "no index for a prefix");
    cf_pattern_free(&p);

    is(cf_pattern_parse("/a/{x}/b/{_y2}/{rest*}", &p, err, sizeof(err)), 0, "three params");
    is(p.num_params, 3, "count");
    is_str(p.param_names[2], "rest", "rest name without the star");
    is(p.rest_index, 2, "rest index");
    cf_pattern_free(&p);

    is(cf_pattern_parse("/", &p, err, sizeof(err)), 0, "root");
    is(p.num_params, 0, "root has no params");
    cf_pattern_free(&p);
    is(cf_pattern_parse("/a/b/", &p, err, sizeof(err)), 0, "trailing slash allowed");
    cf_pattern_free(&p);
    is(cf_pattern_parse("/caf%C3%A9/v1.0/~u/a:b@c!$&'()*+,;=", &p, err, sizeof(err)), 0, "all pchar");
    cf_pattern_free(&p);
    is(cf_pattern_parse("/{rest*}", &p, err, sizeof(err)), 0, "rest at root");
    cf_pattern_free(&p);

    /* 16 params is the limit */
    char big[512] = "";
    for (int i = 0; i < CF_MAX_PARAMS; ++i)
        sprintf(big + strlen(big), "/{p%d}", i);
    is(cf_pattern_parse(big, &p, err, sizeof(err)), 0, "%d params", CF_MAX_PARAMS);
    cf_pattern_free(&p);
    strcat(big, "/{one_more}");
    pattern_error(big, "more than 16 parameters");

    pattern_error("", "must start with '/'");
    pattern_error("dashboard", "must start with '/'");
    pattern_error("/a/{x}/{x}", "appears twice");
    pattern_error("/a/{x}/{x*}", "appears twice");
    pattern_error("/a/{rest*}/b", "must be the last");
    pattern_error("/a/{x}y", "whole path segment");
    pattern_error("/a/y{x}", "whole path segment");
    pattern_error("/a/{x", "whole path segment");
    pattern_error("/a/x}", "whole path segment");
    pattern_error("/a/{}", "invalid parameter name");
    pattern_error("/a/{*}", "invalid parameter name");
    pattern_error("/a/{1x}", "invalid parameter name");
    pattern_error("/a/{x-y}", "invalid parameter name");
    pattern_error("/a/{x.y}", "invalid parameter name");
    pattern_error("/a//b", "empty path segment");
    pattern_error("//", "empty path segment");
    pattern_error("/a/../b", "\"..\" segments");
    pattern_error("/a/.", "\"..\" segments");
    pattern_error("/a/%2e%2E", "\"..\" segments");
    pattern_error("/a/%zz", "invalid percent-encoding");
    pattern_error("/a/%4", "invalid percent-encoding");
    pattern_error("/a/%00", "%00");
    pattern_error("/a b", "byte 0x20");
    pattern_error("/a?b", "byte 0x3f");
    pattern_error("/a#b", "byte 0x23");
    pattern_error("/\xc3\xa9", "byte 0xc3");
    pattern_error("/a\r\n", "byte 0x0d");
}

static void test_add_errors(void)
{
    cf_router_t *r = cf_router_new();
    char err[256];
    is(cf_router_add(r, "/u/{id}", CF_METHOD_GET | CF_METHOD_HEAD, "a", err, sizeof(err)), 0, "add /u/{id}");
    is(cf_router_add(r, "/u/{name}", CF_METHOD_POST, "b", err, sizeof(err)), 0, "same shape, other method: fine");
    is(cf_router_add(r, "/u/{other}", CF_METHOD_HEAD | CF_METHOD_PUT, "c", err, sizeof(err)), -1, "same shape, HEAD in common");
    is_str(err, "route \"/u/{other}\" conflicts with route \"/u/{id}\": same path shape and method HEAD", "duplicate message");
    is(cf_router_add(r, "/u/{id}", CF_METHOD_GET | CF_METHOD_POST, "d", err, sizeof(err)), -1, "two methods in common");
    is_str(err, "route \"/u/{id}\" conflicts with route \"/u/{id}\": same path shape and method GET", "names the first conflict");
    is(cf_router_add(r, "/u/{q}", CF_METHOD_GET | CF_METHOD_HEAD | CF_METHOD_OPTIONS, "d", err, sizeof(err)), -1, "more in common");
    ok(strstr(err, "methods GET, HEAD") != NULL, "plural: %s", err);
    is(cf_router_add(r, "/u/{id}/", CF_METHOD_GET, "e", err, sizeof(err)), 0, "trailing slash is another shape");
    is(cf_router_add(r, "/u/{r*}", CF_METHOD_GET, "f", err, sizeof(err)), 0, "rest is another shape");
    is(cf_router_add(r, "/u/{s*}", CF_METHOD_GET, "g", err, sizeof(err)), -1, "rest twice");
    ok(strstr(err, "conflicts with route \"/u/{r*}\"") != NULL, "  %s", err);
    is(cf_router_add(r, "/u/me", CF_METHOD_GET, "h", err, sizeof(err)), 0, "literal beside param");
    is(cf_router_add(r, "/u/%6De", CF_METHOD_GET, "i", err, sizeof(err)), -1, "the same literal percent-encoded");
    is(cf_router_add(r, "/x", 0, "j", err, sizeof(err)), -1, "no methods");
    ok(strstr(err, "no methods") != NULL, "  %s", err);
    is(cf_router_add(r, "/x", 1u << 20, "j", err, sizeof(err)), -1, "unknown method bit");
    is(cf_router_add(r, "/x/{a}{b}", CF_METHOD_GET, "j", err, sizeof(err)), -1, "bad pattern");
    ok(strncmp(err, "route \"/x/{a}{b}\": ", 19) == 0, "  message names the route: %s", err);
    is_str(route(r, CF_METHOD_GET, "/u/42"), "OK a [42]", "first route still there");
    is_str(route(r, CF_METHOD_POST, "/u/42"), "OK b [42]", "second route");
    is_str(route(r, CF_METHOD_PUT, "/u/42"), "BAD_METHOD a GET, HEAD, POST", "refused routes were not added");
    cf_router_free(r);
}

static void test_precedence(void)
{
    cf_router_t *r = cf_router_new();
    char err[256];
    static const struct {
        const char *pattern;
        unsigned methods;
    } routes[] = {
        {"/", CF_METHOD_GET},
        {"/dashboard/{user_id}", CF_METHOD_GET | CF_METHOD_HEAD},
        {"/dashboard/me", CF_METHOD_GET},
        {"/dashboard/{user_id}/orders", CF_METHOD_GET},
        {"/a/{x}/b", CF_METHOD_GET},
        {"/a/{x}/c", CF_METHOD_GET},
        {"/{y}/b/d", CF_METHOD_GET},
        {"/legacy/{rest*}", CF_METHOD_GET | CF_METHOD_POST},
        {"/legacy/special", CF_METHOD_GET},
        {"/legacy/{one}/x", CF_METHOD_GET},
        {"/static/", CF_METHOD_GET},
        {"/users/me", CF_METHOD_GET},
        {"/users/{id}", CF_METHOD_DELETE},
        {"/caf%C3%A9", CF_METHOD_GET},
        {"/p/{a}/{b}/{c}", CF_METHOD_GET},
    };
    for (size_t i = 0; i != sizeof(routes) / sizeof(routes[0]); ++i)
        if (cf_router_add(r, routes[i].pattern, routes[i].methods, (void *)routes[i].pattern, err, sizeof(err)) != 0)
            diag("add %s: %s", routes[i].pattern, err);

    is_str(route(r, CF_METHOD_GET, "/"), "OK / []", "root");
    is_str(route(r, CF_METHOD_GET, "/dashboard/42"), "OK /dashboard/{user_id} [42]", "param");
    is_str(route(r, CF_METHOD_GET, "/dashboard/me"), "OK /dashboard/me []", "literal beats param");
    is_str(route(r, CF_METHOD_HEAD, "/dashboard/me"), "OK /dashboard/{user_id} [me]", "method-aware: HEAD falls back to param");
    is_str(route(r, CF_METHOD_GET, "/dashboard/%6De"), "OK /dashboard/me []", "literal matched after decoding");
    is_str(route(r, CF_METHOD_GET, "/dashboard/42/orders"), "OK /dashboard/{user_id}/orders [42]", "param then literal");
    is_str(route(r, CF_METHOD_GET, "/dashboard/me/orders"), "OK /dashboard/{user_id}/orders [me]",
           "backtracks from literal 'me' to the param");
    is_str(route(r, CF_METHOD_GET, "/dashboard/42/"), "NOT_FOUND", "trailing slash is strict");
    is_str(route(r, CF_METHOD_GET, "/dashboard/"), "NOT_FOUND", "param does not match empty");
    is_str(route(r, CF_METHOD_GET, "/dashboard"), "NOT_FOUND", "too short");
    is_str(route(r, CF_METHOD_GET, "/dashboard//orders"), "NOT_FOUND", "empty segment is not a param");
    is_str(route(r, CF_METHOD_GET, "/dashboard/42/orders/x"), "NOT_FOUND", "too long");
    is_str(route(r, CF_METHOD_GET, "/a/1/b"), "OK /a/{x}/b [1]", "a/{x}/b");
    is_str(route(r, CF_METHOD_GET, "/a/1/c"), "OK /a/{x}/c [1]", "a/{x}/c");
    is_str(route(r, CF_METHOD_GET, "/a/b/d"), "OK /{y}/b/d [a]", "backtrack to a param at the root");
    is_str(route(r, CF_METHOD_GET, "/z/b/d"), "OK /{y}/b/d [z]", "param at the root");
    is_str(route(r, CF_METHOD_GET, "/legacy/a/b/c"), "OK /legacy/{rest*} [a/b/c]", "rest keeps slashes");
    is_str(route(r, CF_METHOD_GET, "/legacy/special"), "OK /legacy/special []", "literal beats rest");
    is_str(route(r, CF_METHOD_POST, "/legacy/special"), "OK /legacy/{rest*} [special]", "POST only on the rest route");
    is_str(route(r, CF_METHOD_GET, "/legacy/q/x"), "OK /legacy/{one}/x [q]", "param beats rest");
    is_str(route(r, CF_METHOD_GET, "/legacy/q/y"), "OK /legacy/{rest*} [q/y]", "falls back to rest");
    is_str(route(r, CF_METHOD_GET, "/legacy/"), "OK /legacy/{rest*} []", "rest matches empty after the slash");
    is_str(route(r, CF_METHOD_GET, "/legacy"), "OK /legacy/{rest*} []", "rest matches zero segments");
    is_str(route(r, CF_METHOD_GET, "/legacy/a/"), "OK /legacy/{rest*} [a/]", "rest keeps a trailing slash");
    is_str(route(r, CF_METHOD_GET, "/legacy/a%20b/%C3%A9"), "OK /legacy/{rest*} [a b/\xc3\xa9]", "rest decoded per segment");
    is_str(route(r, CF_METHOD_GET, "/legacyx"), "NOT_FOUND", "no prefix matching");
    is_str(route(r, CF_METHOD_GET, "/static/"), "OK /static/ []", "pattern with trailing slash");
    is_str(route(r, CF_METHOD_GET, "/static"), "NOT_FOUND", "... needs the slash");
    is_str(route(r, CF_METHOD_GET, "/caf%c3%a9"), "OK /caf%C3%A9 []", "hex case does not matter");
    is_str(route(r, CF_METHOD_GET, "/CAF%c3%a9"), "NOT_FOUND", "literals are case-sensitive");
    is_str(route(r, CF_METHOD_GET, "/p/1/2/3"), "OK /p/{a}/{b}/{c} [1|2|3]", "three captures in order");
    is_str(route(r, CF_METHOD_GET, "/p/a%2Fb/%3F%23/%25"), "OK /p/{a}/{b}/{c} [a/b|?#|%]", "param captures are decoded");
    is_str(route(r, CF_METHOD_GET, "/p/%E2%80%AE/%FF/%0D%0A"), "OK /p/{a}/{b}/{c} [\xe2\x80\xae|\xff|\r\n]",
           "any decoded byte but NUL is passed on (the template encodes it again)");

    /* methods */
    is_str(route(r, CF_METHOD_POST, "/dashboard/42"), "BAD_METHOD /dashboard/{user_id} GET, HEAD",
           "405 with Allow, and the route the path matched");
    is_str(route(r, CF_METHOD_HEAD, "/"), "BAD_METHOD / GET", "HEAD is not implied by GET");
    is_str(route(r, CF_METHOD_DELETE, "/dashboard/me"), "BAD_METHOD /dashboard/me GET, HEAD",
           "union over literal and param routes; the literal route is the one named");
    is_str(route(r, CF_METHOD_DELETE, "/users/me"), "OK /users/{id} [me]", "DELETE /users/me reaches /users/{id}");
    is_str(route(r, CF_METHOD_PUT, "/users/me"), "BAD_METHOD /users/me GET, DELETE", "Allow lists both routes");
    is_str(route(r, CF_METHOD_PUT, "/legacy/special"), "BAD_METHOD /legacy/special GET, POST", "union with the rest route");
    is_str(route(r, 0, "/dashboard/42"), "BAD_METHOD /dashboard/{user_id} GET, HEAD", "unknown method (bit 0) on a known path");
    is_str(route(r, CF_METHOD_POST, "/nowhere"), "NOT_FOUND", "unknown path is 404 whatever the method");

    /* hostile and malformed paths */
    is_str(route(r, CF_METHOD_GET, ""), "BAD_REQUEST", "empty path");
    is_str(route(r, CF_METHOD_GET, "*"), "BAD_REQUEST", "asterisk form");
    is_str(route(r, CF_METHOD_GET, "dashboard/42"), "BAD_REQUEST", "no leading slash");
    is_str(route(r, CF_METHOD_GET, "/dashboard/%"), "BAD_REQUEST", "lone %%");
    is_str(route(r, CF_METHOD_GET, "/dashboard/%4"), "BAD_REQUEST", "short escape");
    is_str(route(r, CF_METHOD_GET, "/dashboard/%4g"), "BAD_REQUEST", "bad hex");
    is_str(route(r, CF_METHOD_GET, "/dashboard/%00"), "BAD_REQUEST", "decoded NUL");
    is_str(route(r, CF_METHOD_GET, "/nowhere/%zz"), "BAD_REQUEST", "bad escape even where no route matches");
    is_str(route(r, CF_METHOD_GET, "/dashboard/a\rb"), "BAD_REQUEST", "raw CR");
    is_str(route(r, CF_METHOD_GET, "/dashboard/a\x7f"), "BAD_REQUEST", "raw DEL");
    is_str(route(r, CF_METHOD_GET, "/dashboard/.."), "BAD_REQUEST", "dot-dot as a param");
    is_str(route(r, CF_METHOD_GET, "/dashboard/."), "BAD_REQUEST", "dot as a param");
    is_str(route(r, CF_METHOD_GET, "/dashboard/%2e%2E"), "BAD_REQUEST", "encoded dot-dot");
    is_str(route(r, CF_METHOD_GET, "/dashboard/..."), "OK /dashboard/{user_id} [...]", "three dots are a name");
    is_str(route(r, CF_METHOD_GET, "/dashboard/.x"), "OK /dashboard/{user_id} [.x]", "dot prefix is a name");
    is_str(route(r, CF_METHOD_GET, "/legacy/../etc/passwd"), "BAD_REQUEST", "dot-dot in rest");
    is_str(route(r, CF_METHOD_GET, "/legacy/a/%2E%2E/b"), "BAD_REQUEST", "encoded dot-dot in rest");
    is_str(route(r, CF_METHOD_GET, "/legacy/a/./b"), "BAD_REQUEST", "dot in rest");
    is_str(route(r, CF_METHOD_GET, "/legacy/a%2Fb"), "BAD_REQUEST", "%%2F in rest");
    is_str(route(r, CF_METHOD_GET, "/legacy/a%2fb/c"), "BAD_REQUEST", "%%2f in rest");
    is_str(route(r, CF_METHOD_GET, "/legacy//etc"), "BAD_REQUEST", "leading empty segment in rest");
    is_str(route(r, CF_METHOD_GET, "/legacy/a//b"), "BAD_REQUEST", "empty segment inside rest");
    is_str(route(r, CF_METHOD_PUT, "/legacy/a%2Fb"), "BAD_METHOD /legacy/{rest*} GET, POST",
           "method is checked before the rest value");
    is_str(route(r, CF_METHOD_GET, "/legacy/%2F/x"), "OK /legacy/{one}/x [/]", "a param may hold %%2F, so it wins");
    is_str(route(r, CF_METHOD_GET, "/dashboard/\xc3\xa9"), "OK /dashboard/{user_id} [\xc3\xa9]", "raw UTF-8 is data");
    cf_router_free(r);

    /* a rest route at the root catches everything, but after every other route */
    r = cf_router_new();
    cf_router_add(r, "/{all*}", CF_METHOD_GET, "all", err, sizeof(err));
    cf_router_add(r, "/health", CF_METHOD_GET, "health", err, sizeof(err));
    is_str(route(r, CF_METHOD_GET, "/"), "OK all []", "root rest on /");
    is_str(route(r, CF_METHOD_GET, "/health"), "OK health []", "literal first");
    is_str(route(r, CF_METHOD_GET, "/health/x"), "OK all [health/x]", "rest for the rest");
    is_str(route(r, CF_METHOD_GET, "//x"), "BAD_REQUEST", "empty first segment in rest");
    cf_router_free(r);

    /* an empty router */
    r = cf_router_new();
    is_str(route(r, CF_METHOD_GET, "/"), "NOT_FOUND", "empty router");
    cf_router_free(r);
    cf_router_free(NULL);
}

static void test_many_routes(void)
{
    cf_router_t *r = cf_router_new();
    char err[256], pat[64], path[64], want[128];
    int fails = 0;
    static char names[600][64];
    for (int i = 0; i < 600; ++i) {
        snprintf(pat, sizeof(pat), "/svc%d/%s/{id}", i / 3, i % 3 == 0 ? "items" : i % 3 == 1 ? "users" : "{kind}");
        snprintf(names[i], sizeof(names[i]), "%s", pat);
        if (cf_router_add(r, pat, CF_METHOD_GET, names[i], err, sizeof(err)) != 0) {
            diag("%s", err);
            ++fails;
        }
    }
    is(fails, 0, "600 routes added");
    for (int i = 0; i < 600; ++i) {
        snprintf(path, sizeof(path), "/svc%d/%s/%d", i / 3, i % 3 == 0 ? "items" : i % 3 == 1 ? "users" : "other", i);
        snprintf(want, sizeof(want), i % 3 == 2 ? "OK %s [other|%d]" : "OK %s [%d]", names[i], i);
        if (strcmp(route(r, CF_METHOD_GET, path), want) != 0) {
            diag("%s: got '%s', expected '%s'", path, outcome, want);
            ++fails;
        }
    }
    is(fails, 0, "each of 600 routes found with its captures");
    cf_router_free(r);
}

static uint32_t rng_state = 12345;
static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return (rng_state >> 8) % n;
}

static void test_against_reference(void)
{
    static const char *pat_segs[] = {"a", "b", "c", "{x}", "{y}", "{z*}", ""};
    static const char *path_segs[] = {"a", "b", "c", "d", "", "%61", ".", "..", "%2F", "x%2Fy", "%2e", "%00", "%", "a b"};
    static char patterns[300][128];
    struct ref_route routes[300];
    size_t nroutes = 0;
    int mismatches = 0, checked = 0, round, kinds[4] = {0};
    char err[256];

    for (round = 0; round < 40; ++round) {
        cf_router_t *r = cf_router_new();
        nroutes = 0;
        int target = 1 + (int)rnd(20);
        for (int i = 0; i < target * 3 && (int)nroutes < target; ++i) {
            char *p = patterns[nroutes];
            int nseg = 1 + (int)rnd(4), pi = 0;
            p[0] = '\0';
            for (int k = 0; k < nseg; ++k) {
                const char *s = pat_segs[rnd(7)];
                if (s[0] == '{' && s[1] != 'z') /* unique names */
                    s = (const char *[]){"{p0}", "{p1}", "{p2}", "{p3}"}[pi++];
                strcat(p, "/");
                strcat(p, s);
            }
            unsigned methods = 1 + rnd(7);
            if (cf_router_add(r, p, methods, p, err, sizeof(err)) == 0) {
                routes[nroutes].pattern = p;
                routes[nroutes].methods = methods;
                ++nroutes;
            }
        }
        for (int i = 0; i < 400; ++i) {
            char path[256] = "";
            int nseg = 1 + (int)rnd(5);
            for (int k = 0; k < nseg; ++k) {
                strcat(path, "/");
                strcat(path, path_segs[rnd(rnd(3) == 0 ? 14 : 5)]);
            }
            unsigned method = 1u << rnd(3);
            char got[4096];
            snprintf(got, sizeof(got), "%s", route(r, method, path));
            const char *want = ref_route(routes, nroutes, method, path);
            ++checked;
            for (int k = 0; k < 4; ++k)
                if (strncmp(want, rc_name(k), strlen(rc_name(k))) == 0)
                    ++kinds[k];
            if (strcmp(got, want) != 0 && mismatches++ < 5) {
                diag("round %d: %s %s: got '%s', expected '%s'", round, cf_method_name(method), path, got, want);
                for (size_t k = 0; k != nroutes; ++k)
                    diag("  route %s %u", routes[k].pattern, routes[k].methods);
            }
        }
        cf_router_free(r);
    }
    diag("reference outcomes: %d OK, %d NOT_FOUND, %d BAD_METHOD, %d BAD_REQUEST", kinds[0], kinds[1], kinds[2], kinds[3]);
    ok(kinds[0] > 1000 && kinds[1] > 1000 && kinds[2] > 300 && kinds[3] > 300, "the random requests reach every outcome");
    is(mismatches, 0, "trie agrees with the brute-force reference on %d random requests", checked);
}

int main(void)
{
    test_methods();
    test_patterns();
    test_add_errors();
    test_precedence();
    test_many_routes();
    test_against_reference();
    return done_testing();
}
