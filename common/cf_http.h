/* Small HTTP text helpers shared by the gateway and the mock: reason phrases, hex digits, form decoding. */
#ifndef CF_HTTP_H
#define CF_HTTP_H

#include <stddef.h>

/** The reason phrase for a status (HTTP/1 needs one; RFC 9110 §15 names them); a generic one for unlisted codes. */
const char *cf_http_reason(int status);

/** 1 when `c` (a byte value) is an RFC 9110 §5.6.2 tchar, a byte of a token (a method, a header field name). */
int cf_http_is_tchar(int c);
/** The same as a table indexed by byte value (1: a tchar). */
extern const unsigned char cf_http_tchar[256];
/** 1 when the `len` bytes at `s` are a token (RFC 9110 §5.6.2: one or more tchars), as a method or a field name is. */
int cf_http_is_token(const char *s, size_t len);

/**
 * 1 when the field `name` (len bytes, any case) is hop-by-hop by its name alone (RFC 9110 7.6.1): Connection,
 * Proxy-Connection, Keep-Alive, TE, Transfer-Encoding, Upgrade, Trailer. A proxy drops these, and every field a
 * Connection field names (cf_http_list_has), in both directions; what else it drops is its own choice.
 */
int cf_http_is_hop_by_hop(const char *name, size_t len);
/**
 * 1 when the comma-separated list `list` (list_len bytes: a Connection field's value) has the element `elem`
 * (elem_len bytes), compared in any case, with optional whitespace around elements (RFC 9110 5.6.1).
 */
int cf_http_list_has(const char *list, size_t list_len, const char *elem, size_t elem_len);

/** The value of a hex digit (either case), or -1 when `c` is not one. */
int cf_hexval(int c);
/**
 * The byte a percent-escape stands for (RFC 3986 §2.1): the value of "%XX" at s[i] (hex digits in either case), or -1
 * when s[i] is not '%' followed by two hex digits within the `len` bytes of `s`. A "%00" gives 0.
 */
int cf_pct_byte(const char *s, size_t len, size_t i);

/** cf_form_decode flag: copy a '%' that does not start a valid %XX escape as is, instead of failing. */
#define CF_FORM_LENIENT 1

/**
 * Decodes application/x-www-form-urlencoded text ('+' is a space, %XX a byte) from `src` into `dst`, which has room
 * for `len` bytes (no NUL is written). Returns 0 with the decoded length in `*dstlen`, or -1 on a bad %-escape
 * (never with CF_FORM_LENIENT in `flags`).
 */
int cf_form_decode(const char *src, size_t len, char *dst, size_t *dstlen, int flags);

#endif
