/* CORS policies: decoded from cors: (per route, or as the default of every route), and the checks of a request's
 * Origin, Access-Control-Request-Method and -Headers against them. Pure: strings in, decisions out (no h2o). */
#ifndef CF_CORS_H
#define CF_CORS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "cf_yaml.h"

/** The longest Origin a request may send and still be compared (a longer one is not allowed, and never echoed). */
#define CF_CORS_MAX_ORIGIN 256
/** The longest Access-Control-Request-Headers looked at (a longer one is refused). */
#define CF_CORS_MAX_REQUEST_HEADERS 2048
/** The longest max_age: 24 hours (browsers cap it lower: Chromium at 2 hours, Firefox at 24). */
#define CF_CORS_MAX_AGE_MS (24 * 3600 * 1000ull)

/** An origin pattern such as https://STAR.example.com (a "*" label first): one or more labels in front of `.domain`. */
typedef struct st_cf_cors_wildcard_t {
    char *prefix; /* "https://" */
    char *suffix; /* ".example.com" or ".example.com:8443" */
} cf_cors_wildcard_t;

/** One cors: mapping, immutable once decoded (owned by the config). */
typedef struct st_cf_cors_t {
    int any_origin; /* origins has "*": every origin, answered with "*" (never with credentials) */
    char **origins; /* exact origins, lower case, as a browser serializes them */
    size_t num_origins;
    cf_cors_wildcard_t *wildcards;
    size_t num_wildcards;
    unsigned methods;     /* CF_METHOD_* a preflight may ask for; 0: the route's own methods */
    cf_strlist_t headers; /* request headers a preflight may ask for, lower case */
    char *allow_headers;  /* `headers` joined with ", " for Access-Control-Allow-Headers; NULL when none */
    char *expose_headers; /* joined with ", " for Access-Control-Expose-Headers; NULL when none */
    uint64_t max_age_ms;  /* Access-Control-Max-Age (in seconds on the wire); UINT64_MAX: not sent */
    int credentials;      /* Access-Control-Allow-Credentials: true */
    int line, col;
} cf_cors_t;

/**
 * Decodes a cors: node. A mapping gives a new policy in *out; with `allow_off`, the scalar `off` (or `false`) gives
 * *out = NULL (no CORS, even where a default would apply). Returns 0, or -1 with the error in ctx.
 */
int cf_cors_decode(cf_yctx_t *ctx, yaml_node_t *node, int allow_off, cf_cors_t **out);
/** Frees a policy (NULL: nothing). */
void cf_cors_free(cf_cors_t *cors);

/**
 * Whether `origin` (the request's Origin value, `len` bytes, not NUL-terminated) is allowed. An Origin longer than
 * CF_CORS_MAX_ORIGIN or with a byte outside [a-z0-9.:/-] (upper case included: browsers send lower case) never is,
 * so that an allowed one can be echoed as it is.
 */
int cf_cors_origin_allowed(const cf_cors_t *cors, const char *origin, size_t len);
/**
 * Whether every field name in an Access-Control-Request-Headers value (comma-separated, case-insensitive; empty
 * elements skipped) is in the policy's headers. A value that is too long or holds something that is not a field name
 * is refused.
 */
int cf_cors_headers_allowed(const cf_cors_t *cors, const char *list, size_t len);
/** What a preflight gets: its answer's Access-Control-Allow-* (OK), or why not (a 403). */
typedef enum en_cf_cors_verdict_t {
    CF_CORS_OK,
    CF_CORS_BAD_ORIGIN,
    CF_CORS_BAD_METHOD,
    CF_CORS_BAD_HEADERS,
} cf_cors_verdict_t;

/**
 * Judges a preflight: its Origin, the method bit of its Access-Control-Request-Method (0: unknown) against `allowed`
 * (the methods a preflight may ask for: cf_cors_methods), and its Access-Control-Request-Headers (NULL: absent).
 */
cf_cors_verdict_t cf_cors_preflight(const cf_cors_t *cors, const char *origin, size_t olen, unsigned method, unsigned allowed,
                                    const char *headers, size_t hlen);

/** The methods a preflight may ask for on a route with `route_methods`. */
static inline unsigned cf_cors_methods(const cf_cors_t *cors, unsigned route_methods)
{
    return cors->methods != 0 ? cors->methods & route_methods : route_methods;
}

/** Writes the policy for --explain: "  cors: origins ...; methods ...; ..." (`route_methods` for the default). */
void cf_cors_explain(FILE *out, const char *indent, const cf_cors_t *cors, unsigned route_methods, const char *from);

#endif
