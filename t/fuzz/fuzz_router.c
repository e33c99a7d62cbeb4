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

struct ref_route {
    const char *pattern;
    unsigned methods;
};

static int ref_decode(const char *s, size_t len, char *out, size_t *outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return -1;
        if (c == '%') {
            unsigned v;
            char hex[3] = {0};
            if (i + 2 >= len || !isxdigit((unsigned char)s[i + 1]) || !isxdigit((unsigned char)s[i + 2]))
                return -1;
            hex[0] = s[i + 1], hex[1] = s[i + 2];
            v = (unsigned)strtoul(hex, NULL, 16);
            if (v == 0)
                return -1;
            c = (unsigned char)v;
            i += 2;
        }
        out[o++] = (char)c;
    }
    *outlen = o;
    return 0;
}

#define REF_MAX_SEGS 16 /* longer paths or segments (>= 64 bytes) are left out of the comparison */
struct ref_segs {
    size_t n;
    const char *raw[REF_MAX_SEGS];
    size_t rawlen[REF_MAX_SEGS];
    char dec[REF_MAX_SEGS][64];
    size_t declen[REF_MAX_SEGS];
};

static int ref_split(const char *s, struct ref_segs *out)
{
    out->n = 0;
    if (s[0] != '/')
        return -1;
    const char *p = s + 1;
    for (;;) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (out->n == REF_MAX_SEGS || len >= 64)
            return -1;
        out->raw[out->n] = p;
        out->rawlen[out->n] = len;
        if (ref_decode(p, len, out->dec[out->n], &out->declen[out->n]) != 0)
            return -1;
        ++out->n;
        if (!e)
            return 0;
        p = e + 1;
    }
}

/* Returns the outcome string like route() does. */
static const char *ref_route(const struct ref_route *routes, size_t nroutes, unsigned method, const char *path)
{
    static char ref_out[4096];
    struct ref_segs ps, pp;
    if (ref_split(path, &ps) != 0)
        return "BAD_REQUEST";
    for (size_t i = 0; i != ps.n; ++i) {
        const char *d = ps.dec[i];
        if ((ps.declen[i] == 1 && d[0] == '.') || (ps.declen[i] == 2 && d[0] == '.' && d[1] == '.'))
            return "BAD_REQUEST";
    }
    int best = -1, best_vec[REF_MAX_SEGS + 1], best_veclen = 0;
    unsigned allowed = 0;
    for (size_t ri = 0; ri != nroutes; ++ri) {
        ref_split(routes[ri].pattern, &pp);
        int vec[REF_MAX_SEGS + 1], veclen = 0, matched = 1;
        for (size_t k = 0; k != pp.n; ++k) {
            const char *seg = pp.raw[k];
            if (seg[0] == '{' && pp.rawlen[k] >= 2 && seg[pp.rawlen[k] - 2] == '*') {
                vec[veclen++] = 2;
                break;
            }
            if (k >= ps.n) {
                matched = 0;
                break;
            }
            if (seg[0] == '{') {
                if (ps.declen[k] == 0)
                    matched = 0;
                vec[veclen++] = 1;
            } else {
                if (pp.declen[k] != ps.declen[k] || memcmp(pp.dec[k], ps.dec[k], ps.declen[k]) != 0)
                    matched = 0;
                vec[veclen++] = 0;
            }
            if (!matched)
                break;
            if (k == pp.n - 1 && ps.n != pp.n)
                matched = 0;
        }
        if (!matched)
            continue;
        allowed |= routes[ri].methods;
        if ((routes[ri].methods & method) == 0)
            continue;
        int cmp = 0;
        for (int k = 0; cmp == 0 && k < veclen && k < best_veclen; ++k)
            cmp = vec[k] - best_vec[k];
        if (cmp == 0)
            cmp = veclen - best_veclen;
        if (best < 0 || cmp < 0) {
            best = (int)ri;
            memcpy(best_vec, vec, sizeof(vec));
            best_veclen = veclen;
        }
    }
    if (best < 0) {
        if (allowed == 0)
            return "NOT_FOUND";
        char buf[128];
        snprintf(ref_out, sizeof(ref_out), "BAD_METHOD %s", cf_methods_format(allowed, buf, sizeof(buf)));
        return ref_out;
    }
    int off = snprintf(ref_out, sizeof(ref_out), "OK %s [", routes[best].pattern);
    int nparams = 0;
    for (int k = 0; k != best_veclen; ++k) {
        if (best_vec[k] == 1) {
            off += snprintf(ref_out + off, sizeof(ref_out) - off, "%s%.*s", nparams++ ? "|" : "", (int)ps.declen[k], ps.dec[k]);
        } else if (best_vec[k] == 2) {
            off += snprintf(ref_out + off, sizeof(ref_out) - off, "%s", nparams++ ? "|" : "");
            for (size_t j = (size_t)k; j < ps.n; ++j) {
                int last = j == ps.n - 1;
                if ((ps.rawlen[j] == 0 && !last) || memmem(ps.raw[j], ps.rawlen[j], "%2F", 3) != NULL ||
                    memmem(ps.raw[j], ps.rawlen[j], "%2f", 3) != NULL)
                    return "BAD_REQUEST";
                off += snprintf(ref_out + off, sizeof(ref_out) - off, "%.*s%s", (int)ps.declen[j], ps.dec[j], last ? "" : "/");
            }
        }
    }
    snprintf(ref_out + off, sizeof(ref_out) - off, "]");
    return ref_out;
}

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
        if (m.allowed == 0 || (m.allowed & method) != 0)
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
            snprintf(got + off, sizeof(got) - off, " %s", cf_methods_format(m.allowed, buf, sizeof(buf)));
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
