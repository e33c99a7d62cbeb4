/* A call's JSON body template (body: any YAML value, every string in it a template) and its expansion. Pure. */
#ifndef CF_BODY_H
#define CF_BODY_H

#include <jansson.h>
#include <stddef.h>
#include "cf_buf.h"
#include "cf_yaml.h"
#include "template.h"

/** The deepest a body may nest (mappings and lists), and the most YAML nodes it may hold (aliases counted each time). */
#define CF_BODY_MAX_DEPTH 32
#define CF_BODY_MAX_NODES 4096

typedef enum en_cf_body_kind_t {
    CF_BODY_TEXT,         /* JSON text, copied as is */
    CF_BODY_VALUE,        /* a string that is exactly one placeholder: the value with its JSON type */
    CF_BODY_INTERPOLATED, /* a placeholder inside a longer string: the value's text, escaped for a JSON string */
    CF_BODY_REQUEST,      /* "{request.body}": the client's body, byte for byte (the caller checked that it is JSON) */
} cf_body_kind_t;

typedef struct st_cf_body_part_t {
    cf_body_kind_t kind;
    char *text; /* TEXT: the JSON text */
    size_t len;
    cf_tpl_part_t tpl; /* VALUE, INTERPOLATED: the placeholder; its call_index is set by the plan (plan.c) */
} cf_body_part_t;

/**
 * A compiled body: the JSON text with holes, in order. No parts: the call has no body. Owns everything it points to.
 * E.g. { ids: "{profile.friend_ids}", note: "for {user_id}" } is TEXT {"ids": VALUE profile.friend_ids TEXT ,"note":"for
 * INTERPOLATED user_id TEXT "}.
 */
typedef struct st_cf_body_t {
    cf_body_part_t *parts;
    size_t num_parts;
    int uses_request_body; /* a part is CF_BODY_REQUEST */
} cf_body_t;

/**
 * Compiles the YAML value `node` into `out`, recording the first error in ctx at the node it concerns (under ctx's key
 * path, with each mapping key and list index below it). A mapping becomes a JSON object (keys are literal text, not
 * templates; duplicates are refused), a list an array. A plain scalar is resolved as YAML 1.2's core schema does: ~,
 * null, empty: null; true/false (also True, TRUE...): a boolean; a JSON number: that number, as written; a number that
 * JSON cannot carry (0x1F, 0o17, +1, .5, 007, .inf, .nan, 1e999) is refused, to be written the JSON way or quoted.
 * Every other scalar, and every quoted or block scalar, is a string template: "{{" and "}}" stand for '{' and '}', a
 * "{...}" is a placeholder (template.h's kinds, or request.body); a string that is exactly one placeholder inserts the
 * value with its JSON type, and "{request.body}" may only stand alone. Returns 0, or -1 (out is then empty).
 */
int cf_body_parse(cf_yctx_t *ctx, yaml_node_t *node, cf_body_t *out);
/** Frees a body (parsed or zeroed). */
void cf_body_free(cf_body_t *b);

/** A placeholder's value: a JSON value (borrowed) or, when json is NULL, a string of len bytes (any bytes). */
typedef struct st_cf_body_value_t {
    const json_t *json;
    const char *str;
    size_t len;
} cf_body_value_t;

/** Supplies a placeholder's value into *val (borrowed until expansion ends); returns CF_TPL_OK or CF_TPL_MISSING. */
typedef int (*cf_body_lookup_cb)(void *ctx, const cf_tpl_part_t *part, cf_body_value_t *val);

/** cf_body_expand's result when the body would exceed `max` bytes. */
#define CF_BODY_TOO_LARGE (-3)

/**
 * Appends the body's JSON text to `out`. A VALUE is written with its type (a JSON value through cf_json_write, so a real
 * keeps its shortest round-trip form; a string quoted and escaped); an INTERPOLATED value is a string's bytes, or a
 * number's or boolean's text (cf_json_format_scalar), escaped for a JSON string (quote, backslash, control bytes; a
 * byte that is not well-formed UTF-8 becomes U+FFFD): the result is valid JSON whatever the values. A JSON null, an
 * object or an array inside a longer string, or an absent value is CF_TPL_MISSING (with *failed naming it when not
 * NULL); so is REQUEST when request_body is NULL. request_body is copied as is. More than `max` bytes written:
 * CF_BODY_TOO_LARGE. On failure `out` is left as it was. Returns CF_TPL_OK, CF_TPL_MISSING or CF_BODY_TOO_LARGE.
 */
int cf_body_expand(const cf_body_t *b, cf_body_lookup_cb lookup, void *ctx, const char *request_body, size_t request_body_len,
                   size_t max, cf_buf_t *out, const cf_tpl_part_t **failed);

/** The deepest nesting cf_body_json_valid accepts. */
#define CF_BODY_JSON_MAX_DEPTH 10000

/**
 * Whether `len` bytes are one JSON text (RFC 8259): one value, whitespace around it, strings of well-formed UTF-8
 * with no raw control byte and no unpaired \u surrogate (RFC 7493 2.1), numbers of any magnitude (the text is
 * forwarded as it came, so nothing is lost), nesting at most CF_BODY_JSON_MAX_DEPTH levels. Reads once, builds
 * nothing, recurses not (a client's body). On 0, *error_at (if not NULL) is the offset where it stopped being JSON.
 */
int cf_body_json_valid(const char *text, size_t len, size_t *error_at);

#endif
