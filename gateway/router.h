/* Method + path -> route, with {param} and {rest*} captures; the most specific pattern wins. Pure. */
#ifndef CF_ROUTER_H
#define CF_ROUTER_H

#include <stddef.h>

enum {
    CF_METHOD_GET = 1 << 0,
    CF_METHOD_HEAD = 1 << 1,
    CF_METHOD_POST = 1 << 2,
    CF_METHOD_PUT = 1 << 3,
    CF_METHOD_DELETE = 1 << 4,
    CF_METHOD_PATCH = 1 << 5,
    CF_METHOD_OPTIONS = 1 << 6,
};
/** The bit of a method name (exact, upper case), or 0 when unknown. */
unsigned cf_method_bit(const char *name, size_t len);
/** The name of a single method bit, or NULL. */
const char *cf_method_name(unsigned bit);
/** Writes "GET, HEAD, POST" for a mask into buf (for Allow:); returns buf. */
const char *cf_methods_format(unsigned mask, char *buf, size_t bufsize);

/** Whether a path segment is "." or ".." (RFC 3986 §5.2.4 dot segments). */
static inline int cf_is_dot_segment(const char *s, size_t len)
{
    return (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.');
}

#define CF_MAX_PARAMS 16

/** A parsed route pattern such as "/dashboard/{user_id}" or "/legacy/{rest*}". */
typedef struct st_cf_pattern_t {
    char *src;
    char **param_names; /* in order of appearance */
    size_t num_params;
    int rest_index; /* index of the {name*} parameter (always the last), or -1 */
} cf_pattern_t;

/**
 * Parses a pattern: it starts with '/', a {name} fills a whole segment, {name*} only the last one, names are
 * [A-Za-z_][A-Za-z0-9_]* and unique, at most CF_MAX_PARAMS. Returns 0 or -1 with a message.
 */
int cf_pattern_parse(const char *src, cf_pattern_t *out, char *err, size_t errlen);
/** The index of a parameter by name, or -1. */
int cf_pattern_param_index(const cf_pattern_t *p, const char *name, size_t len);
void cf_pattern_free(cf_pattern_t *p);

typedef struct st_cf_router_t cf_router_t;

cf_router_t *cf_router_new(void);
void cf_router_free(cf_router_t *r);
/**
 * Adds a route: `data` is returned by a match (borrowed). Two routes with the same shape of pattern (literals
 * equal, parameters in the same places) and a method in common are an error. Returns 0 or -1 with a message.
 */
int cf_router_add(cf_router_t *r, const char *pattern, unsigned methods, void *data, char *err, size_t errlen);

enum { CF_ROUTE_OK, CF_ROUTE_NOT_FOUND, CF_ROUTE_BAD_METHOD, CF_ROUTE_BAD_REQUEST };

typedef struct st_cf_route_match_t {
    void *data;       /* CF_ROUTE_OK: the route; CF_ROUTE_BAD_METHOD: the first route the path matched (for labels) */
    unsigned allowed; /* CF_ROUTE_BAD_METHOD: the methods the path does accept (for Allow:) */
    size_t num_params;
    struct {
        const char *val; /* percent-decoded, points into the caller's scratch buffer */
        size_t len;
    } params[CF_MAX_PARAMS]; /* in the pattern's order */
} cf_route_match_t;

/**
 * Matches a raw request path (no query string; still percent-encoded). Literal segments beat {param}s, which beat
 * {rest*}, segment by segment from the left. `scratch` must hold at least `len` bytes. CF_ROUTE_BAD_REQUEST for
 * invalid percent-encoding, a decoded NUL, or a "." / ".." / "%2F" inside a rest capture.
 */
int cf_router_match(const cf_router_t *r, unsigned method, const char *path, size_t len, char *scratch, cf_route_match_t *m);

#endif
