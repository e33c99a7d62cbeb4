/* JSON text out: jansson values serialized compactly, with each real in the shortest form that reads back the same. */
/* The same text of a number or a boolean goes into answers and, through cf_json_format_scalar, into URL templates. */
#ifndef CF_JSONOUT_H
#define CF_JSONOUT_H

#include <jansson.h>
#include "cf_buf.h"

/**
 * Appends `v` to `out` as compact JSON, members in insertion order. Unlike json_dumps (which writes every real with
 * %.17g, so that 54.9 reads 54.899999999999999), a real is written with the fewest digits (15 to 17) that parse back
 * to the same double: what the upstream wrote is what the client reads. Borrowed reference.
 */
void cf_json_write(cf_buf_t *out, const json_t *v);

/** The most bytes cf_json_format_scalar writes, its NUL included. */
#define CF_JSON_SCALAR_MAX 32

/**
 * Writes the number or boolean `v` into `buf`, NUL-terminated, as cf_json_write writes it in an answer: an integer as
 * its digits, a real with the fewest digits that parse back to the same double, true or false. With mark_real, ".0"
 * follows a real that has no fraction, so that it stays a real (answers); without it, 3.0 is written 3 (template
 * values, {CALL.field}: a URL has no types, and 0.92 goes upstream as 0.92). Returns its length, or 0 (and "") for a
 * string, null, an object, an array, or a real that is not finite (jansson makes none): a string's text depends on
 * where it goes, the others have none. Borrowed reference.
 */
size_t cf_json_format_scalar(const json_t *v, int mark_real, char buf[CF_JSON_SCALAR_MAX]);

/**
 * Appends `len` bytes as a JSON string: any bytes, e.g. a client's path for the access log. Quote, backslash and
 * control characters are escaped; a byte that does not start a well-formed UTF-8 sequence becomes U+FFFD, so the
 * output is always valid JSON.
 */
void cf_json_write_string(cf_buf_t *out, const char *s, size_t len);

#endif
