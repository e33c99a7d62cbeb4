/* URL templates ("/users/{id}?lang={query.lang}") and the encoding of values for where they land. Pure. */
#ifndef CF_TEMPLATE_H
#define CF_TEMPLATE_H

#include <stddef.h>
#include "cf_buf.h"

typedef enum en_cf_tpl_kind_t {
    CF_TPL_LITERAL, /* text copied as is (validated at parse time: no CR, LF, NUL, space, '#') */
    CF_TPL_PARAM,   /* {name}: a route parameter */
    CF_TPL_QUERY,   /* {query.NAME}: a client query parameter */
    CF_TPL_HEADER,  /* {header.NAME}: a client request header (name lower-cased) */
    CF_TPL_CALL,    /* {CALL.a.b}: a field of an earlier call's JSON */
    CF_TPL_ITEM,    /* {item} / {item.a.b}: the foreach element */
} cf_tpl_kind_t;

typedef struct st_cf_tpl_part_t {
    cf_tpl_kind_t kind;
    char *text;    /* LITERAL: the bytes; PARAM/QUERY/HEADER: the name; CALL: the call name; ITEM: "item" */
    size_t len;    /* of text */
    char **fields; /* CALL / ITEM: the field path after the first dot ("a", "b"); NULL-terminated */
    size_t num_fields;
    int call_index; /* CALL: index of the call in its route, set by the config loader (-1 before) */
    int in_query;   /* the placeholder stands after the template's first '?': encode as a query value */
    int rest;       /* PARAM: bound to a {name*} capture, so '/' is kept (set by the config loader) */
} cf_tpl_part_t;

/** A parsed template; owns everything it points to. */
typedef struct st_cf_template_t {
    char *src;
    cf_tpl_part_t *parts;
    size_t num_parts;
} cf_template_t;

/**
 * Parses `src`. A template must start with '/'. Returns 0, or -1 with a message in err (unbalanced or empty
 * braces, an empty name, a literal with a byte that may not appear in a request target, ...).
 */
int cf_template_parse(const char *src, cf_template_t *out, char *err, size_t errlen);
void cf_template_free(cf_template_t *t);

enum {
    CF_TPL_OK = 0,
    CF_TPL_MISSING = -1,   /* a placeholder has no value: the call fails with missing_param */
    CF_TPL_BAD_INPUT = -2, /* a value may not be used (a "." or ".." segment in a rest value): 400 */
};

/**
 * Supplies the raw (decoded, unencoded) value of a placeholder. Returns CF_TPL_OK with *val and *len set (borrowed
 * until expansion ends), or CF_TPL_MISSING.
 */
typedef int (*cf_tpl_lookup_cb)(void *ctx, const cf_tpl_part_t *part, const char **val, size_t *len);

/**
 * Appends the expansion of `t` to `out`, each value percent-encoded for where it lands, so that no value can
 * add a path segment, a query parameter, a fragment, or any byte outside RFC 3986 unreserved characters.
 * An empty value in the path (not in the query, not a rest capture) is CF_TPL_MISSING: "/users/" instead of
 * "/users/42" would address another resource.
 * Returns CF_TPL_OK, CF_TPL_MISSING or CF_TPL_BAD_INPUT; on failure *failed (if not NULL) names the part.
 */
int cf_template_expand(const cf_template_t *t, cf_tpl_lookup_cb lookup, void *ctx, cf_buf_t *out, const cf_tpl_part_t **failed);

/** Appends `s` percent-encoded as a path segment ("." and ".." are encoded too). */
void cf_encode_segment(cf_buf_t *out, const char *s, size_t len);
/** Appends `s` percent-encoded as a query name or value ('&', '=', '+', '#' and all else but unreserved). */
void cf_encode_query(cf_buf_t *out, const char *s, size_t len);

#endif
