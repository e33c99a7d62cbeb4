/* JSON text out: jansson values serialized compactly, with each real in the shortest form that reads back the same. */
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

/**
 * Appends `len` bytes as a JSON string: any bytes, e.g. a client's path for the access log. Quote, backslash and
 * control characters are escaped; a byte that does not start a well-formed UTF-8 sequence becomes U+FFFD, so the
 * output is always valid JSON.
 */
void cf_json_write_string(cf_buf_t *out, const char *s, size_t len);

#endif
