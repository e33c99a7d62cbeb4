/* libFuzzer harness for the router: random routes and paths, checked against a brute-force reference matcher. */
/*
 * Input: an optional first line starting with '/' is added as one more route (fuzzing the pattern parser); the
 * first byte after it picks the method; the remaining bytes are the request path. Build and run: see README.md.
 */
#define _GNU_SOURCE /* memmem */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../gateway/router.c"
#include "../unit/router_ref.h"

static const struct ref_route fixed_routes[] = {
    {"/", CF_METHOD_GET},
    {"/dashboard/{user_id}", CF_METHOD_GET | CF_METHOD_HEAD},
    {"/dashboard/me", CF_METHOD_GET},
    {"/dashboard/{user_id}/orders", CF_METHOD_GET | CF_METHOD_POST},
    {"/a/{x}/b", CF_METHOD_GET},
    {"/a/{x}/c", CF_METHOD_PUT},
    {"/{y}/b/d", CF_METHOD_GET},
    {"/{y}/{z}/d", CF_METHOD_DELETE},
    {"/legacy/{rest*}", CF_METHOD_GET | CF_METHOD_POST},
    {"/legacy/special", CF_METHOD_GET},
    {"/legacy/{one}/x", CF_METHOD_GET},
    {"/static/", CF_METHOD_GET},
    {"/caf%C3%A9/%2F", CF_METHOD_GET},
    {"/p/{a}/{b}/{c*}", CF_METHOD_GET | CF_METHOD_OPTIONS},
    {"/{all*}", CF_METHOD_PATCH},
};
#define NUM_FIXED (sizeof(fixed_routes) / sizeof(fixed_routes[0]))

/* Whether the reference can judge this path: no NUL, at most REF_MAX_SEGS segments of < 64 bytes. */
static int ref_can_judge(const char *path, size_t len)
{
    size_t segs = 0, seglen = 0;
    if (memchr(path, '\0', len) != NULL)
        return 0;
    for (size_t i = 1; i <= len; ++i) {
        if (i == len || path[i] == '/') {
            if (++segs > REF_MAX_SEGS || seglen >= 64)
                return 0;
            seglen = 0;
        } else {
            ++seglen;
        }
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ref_route routes[NUM_FIXED + 1];
    size_t nroutes = 0;
    char err[256], extra[256];
    cf_router_t *r = cf_router_new();

    for (size_t i = 0; i != NUM_FIXED; ++i) {
        if (cf_router_add(r, fixed_routes[i].pattern, fixed_routes[i].methods, (void *)fixed_routes[i].pattern, err, sizeof(err)) !=
            0)
            abort();
        routes[nroutes++] = fixed_routes[i];
    }
    const uint8_t *nl = size != 0 && data[0] == '/' ? memchr(data, '\n', size) : NULL;
    if (nl != NULL) {
        size_t plen = (size_t)(nl - data);
        if (plen < sizeof(extra) && memchr(data, '\0', plen) == NULL) {
            memcpy(extra, data, plen);
            extra[plen] = '\0';
            unsigned methods = CF_METHOD_GET | CF_METHOD_DELETE;
            struct ref_segs check;
            int judged = ref_split(extra, &check) == 0;
            if (cf_router_add(r, extra, methods, extra, err, sizeof(err)) == 0) {
                if (!judged) {
                    cf_router_free(r);
                    return 0; /* the reference could not follow this route */
                }
                routes[nroutes].pattern = extra;
                routes[nroutes].methods = methods;
                ++nroutes;
            } else if (strlen(err) == 0) {
                abort(); /* a refusal always says why */
            }
        }
        size -= plen + 1;
        data = nl + 1;
    }
    if (size == 0) {
        cf_router_free(r);
        return 0;
    }
    unsigned method = 1u << (data[0] % 8); /* 1 << 7 is no known method */
    const char *path = (const char *)data + 1;
    size_t len = size - 1;

    char *scratch = malloc(len + 1), *copy = malloc(len + 1);
    memcpy(copy, path, len);
    copy[len] = '\0';
    cf_route_match_t m;
    int rc = cf_router_match(r, method, copy, len, scratch, &m);

    /* invariants that hold for any path */
    if (rc == CF_ROUTE_OK) {
        if (m.data == NULL || m.num_params > CF_MAX_PARAMS)
            abort();
        for (size_t i = 0; i != m.num_params; ++i) {
            if (m.params[i].len != 0 && (m.params[i].val < scratch || m.params[i].val + m.params[i].len > scratch + len))
                abort();
            if (memchr(m.params[i].val, '\0', m.params[i].len) != NULL)
                abort();
        }
    } else if (rc == CF_ROUTE_BAD_METHOD) {
        if (m.allowed == 0 || (m.allowed & method) != 0 || m.data == NULL)
            abort();
    }

    /* the same answer as the reference */
    if (ref_can_judge(copy, len)) {
        char got[4096];
        int off = snprintf(got, sizeof(got), "%s",
                           rc == CF_ROUTE_OK           ? "OK"
                           : rc == CF_ROUTE_NOT_FOUND  ? "NOT_FOUND"
                           : rc == CF_ROUTE_BAD_METHOD ? "BAD_METHOD"
                                                       : "BAD_REQUEST");
        if (rc == CF_ROUTE_OK) {
            off += snprintf(got + off, sizeof(got) - off, " %s [", (const char *)m.data);
            for (size_t i = 0; i != m.num_params; ++i)
                off += snprintf(got + off, sizeof(got) - off, "%s%.*s", i ? "|" : "", (int)m.params[i].len, m.params[i].val);
            snprintf(got + off, sizeof(got) - off, "]");
        } else if (rc == CF_ROUTE_BAD_METHOD) {
            char buf[128];
            snprintf(got + off, sizeof(got) - off, " %s %s", (const char *)m.data, cf_methods_format(m.allowed, buf, sizeof(buf)));
        }
        const char *want = ref_route(routes, nroutes, method, copy);
        if (strcmp(got, want) != 0) {
            fprintf(stderr, "path '%s' method %u: got '%s', reference '%s'\n", copy, method, got, want);
            abort();
        }
    }
    free(scratch);
    free(copy);
    cf_router_free(r);
    return 0;
}
