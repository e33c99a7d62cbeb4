/* The router's slow reference matcher, shared by its unit test and its fuzz harness. */
#ifndef CF_ROUTER_REF_H
#define CF_ROUTER_REF_H

/*
 * Include after gateway/router.c (it uses cf_methods_format and the CF_METHOD_* bits), with _GNU_SOURCE defined
 * before the first system header (memmem).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A slow reference matcher written from the rules, not from the trie: every route is tried against every path and
 * the winner is the lexicographically smallest vector of segment kinds (literal 0 < param 1 < rest 2).
 */
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
    int any = -1, any_vec[REF_MAX_SEGS + 1], any_veclen = 0;
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
        /* the most specific route for the path, whatever its methods: the one a 405 is reported under */
        int cmp_any = 0;
        for (int k = 0; cmp_any == 0 && k < veclen && k < any_veclen; ++k)
            cmp_any = vec[k] - any_vec[k];
        if (cmp_any == 0)
            cmp_any = veclen - any_veclen;
        if (any < 0 || cmp_any < 0) {
            any = (int)ri;
            memcpy(any_vec, vec, sizeof(vec));
            any_veclen = veclen;
        }
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
        snprintf(ref_out, sizeof(ref_out), "BAD_METHOD %s %s", routes[any].pattern, cf_methods_format(allowed, buf, sizeof(buf)));
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

#endif
