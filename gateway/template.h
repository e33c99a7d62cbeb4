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
    CF_TPL_ITEMS,   /* {items}: the elements of a foreach batch, each encoded, joined with ',' */
    CF_TPL_JWT,     /* {jwt.NAME}: a top-level claim of the request's verified token */
} cf_tpl_kind_t;

typedef struct st_cf_tpl_part_t {
    cf_tpl_kind_t kind;
    char *text;    /* LITERAL: the bytes; PARAM/QUERY/HEADER/JWT: the name; CALL: the call name; ITEM: "item" */
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

/** The longest upstream path and query a template may expand to (nginx's default request line bound is 8 KiB): longer is
 * CF_TPL_BAD_INPUT, found before the value that would go past it is encoded. */
#define CF_TPL_MAX_URL (16 * 1024)

enum {
    CF_TPL_OK = 0,
    CF_TPL_MISSING = -1,   /* a placeholder has no value: the call fails with missing_param */
    CF_TPL_BAD_INPUT = -2, /* a value may not be used where it lands (see cf_segment_value_ok): 400 or bad_param */
    CF_TPL_END = 1,        /* CF_TPL_ITEMS: the list has no more values */
};

/** Flags of cf_template_expand and cf_template_check: the policy of the call the template belongs to. */
enum {
    /* a '/' in a value that fills one path segment is sent as %2F instead of refused (a call's encoded_slash: keep,
     * for upstreams that take "group%2Fproject" as one segment and do not decode it) */
    CF_TPL_KEEP_ENCODED_SLASH = 1,
};

/** The kinds whose values come from the client's request (its token's claims too), as a mask for cf_template_check. */
#define CF_TPL_CLIENT_KINDS ((1u << CF_TPL_PARAM) | (1u << CF_TPL_QUERY) | (1u << CF_TPL_HEADER) | (1u << CF_TPL_JWT))

/**
 * Supplies the raw (decoded, unencoded) value of a placeholder. Returns CF_TPL_OK with *val and *len set (borrowed
 * until expansion ends), or CF_TPL_MISSING. For a CF_TPL_ITEMS part it is called again and again, once per value of
 * the list in order, until it returns CF_TPL_END (the callee keeps the cursor; a template has at most one {items}).
 */
typedef int (*cf_tpl_lookup_cb)(void *ctx, const cf_tpl_part_t *part, const char **val, size_t *len);

/**
 * Whether a value (decoded: the bytes the upstream will see once it decodes the segment) may fill one path segment.
 * Percent-encoding keeps a '/' inside the segment on the wire, but many servers (nginx among them) decode %2F and
 * then resolve dot segments, and some take '\' for '/', so "../admin" in /users/{id} would reach /admin there (the
 * class of Envoy's CVE-2019-9901).
 * Refused: "." and "..", any '\', and any '/' unless `flags` has CF_TPL_KEEP_ENCODED_SLASH; with it, a '/' is
 * allowed but no '/'-separated piece may be "." or "..". An empty value passes here: cf_template_expand calls it
 * missing. Reads the value once or twice with memchr; allocates nothing.
 */
int cf_segment_value_ok(const char *s, size_t len, unsigned flags);

/**
 * Whether a {name*} value may fill the path segments it holds: no '\', no "." or ".." segment, and no empty segment
 * but the last ("a/" is fine, "/a" and "a//b" are not).
 */
int cf_rest_value_ok(const char *s, size_t len);

/**
 * Appends the expansion of `t` to `out`, each value percent-encoded for where it lands, so that no value can
 * add a path segment, a query parameter, a fragment, or any byte outside RFC 3986 unreserved characters.
 * A value in a path segment must pass cf_segment_value_ok (cf_rest_value_ok for a {name*} capture), else the
 * expansion fails with CF_TPL_BAD_INPUT; so does a segment that a value helped build and that comes out as "." or
 * ".." (a rest capture next to a literal dot). An empty value in the path (not in the query, not a rest capture) is
 * CF_TPL_MISSING: "/users/" instead of "/users/42" would address another resource. Values in the query are only
 * encoded: a query value is not path-resolved, so '/' and ".." are harmless there.
 * A CF_TPL_ITEMS part writes each value of its list encoded for where it lands (and checked like one value there),
 * joined with ','; an empty list, or an empty value in it, is CF_TPL_MISSING.
 * An expansion longer than CF_TPL_MAX_URL is CF_TPL_BAD_INPUT.
 * Returns CF_TPL_OK, CF_TPL_MISSING or CF_TPL_BAD_INPUT; on failure *failed (if not NULL) names the part and `out` is
 * left as it was.
 */
int cf_template_expand(const cf_template_t *t, unsigned flags, cf_tpl_lookup_cb lookup, void *ctx, cf_buf_t *out,
                       const cf_tpl_part_t **failed);

/**
 * Checks, without expanding, the values of the placeholders whose kind is in the mask `kinds` (1u << CF_TPL_*) and
 * that land in the path: the first one cf_template_expand would refuse gives CF_TPL_BAD_INPUT with *failed (if not
 * NULL) naming it. Missing and empty values are skipped (the expansion reports them as CF_TPL_MISSING). This lets a
 * caller refuse a client's input (CF_TPL_CLIENT_KINDS) before any call goes out, whatever the values of other kinds
 * turn out to be. Returns CF_TPL_OK or CF_TPL_BAD_INPUT.
 */
int cf_template_check(const cf_template_t *t, unsigned kinds, unsigned flags, cf_tpl_lookup_cb lookup, void *ctx,
                      const cf_tpl_part_t **failed);

/**
 * Writes into buf a message for a client whose value for `part` was refused by cf_template_check, naming the
 * parameter ("path parameter \"id\"", "query parameter \"q\"", "header \"x-id\"") and what is refused. Returns buf.
 */
const char *cf_template_refusal(const cf_tpl_part_t *part, unsigned flags, char *buf, size_t size);

/**
 * Parses the inside of one placeholder ("user_id", "query.q", "profile.a.b", without the braces) into `out`, which
 * then owns its text and fields (free with cf_tpl_part_free): what a "{...}" of a URL template would be, for templates
 * that are not URLs (a call's JSON body). in_query is 0. Returns 0, or -1 with a message in err.
 */
int cf_tpl_part_parse(const char *s, size_t len, cf_tpl_part_t *out, char *err, size_t errlen);
/** Frees what cf_tpl_part_parse put in `p`, and zeroes it. */
void cf_tpl_part_free(cf_tpl_part_t *p);

/** Appends `s` percent-encoded as a path segment ("." and ".." are encoded too). */
void cf_encode_segment(cf_buf_t *out, const char *s, size_t len);
/** Appends `s` percent-encoded as a query name or value ('&', '=', '+', '#' and all else but unreserved). */
void cf_encode_query(cf_buf_t *out, const char *s, size_t len);

#endif
