/* Small HTTP text helpers shared by the gateway and the mock: reason phrases, hex digits, form decoding. */
#include <string.h>
#include <strings.h>
#include "cf_http.h"

const char *cf_http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 499:
        return "Client Closed Request";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    case 504:
        return "Gateway Timeout";
    default:
        return status < 300 ? "OK" : status < 400 ? "Redirect" : status < 500 ? "Client Error" : "Server Error";
    }
}

/* RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT /
 * ALPHA (a table: the request guard looks up every byte of every field name) */
/* clang-format off */
const unsigned char cf_http_tchar[256] = {
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, /* 0x00 */
    0,1,0,1,1,1,1,1,0,0,1,1,0,1,1,0,1,1,1,1,1,1,1,1,1,1,0,0,0,0,0,0, /* 0x20 */
    0,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,0,0,0,1,1, /* 0x40 */
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,0,1,0,1,0, /* 0x60 */
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, /* 0x80 */
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, /* 0xa0 */
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, /* 0xc0 */
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, /* 0xe0 */
};
/* clang-format on */

int cf_http_is_tchar(int c)
{
    return c >= 0 && c < 256 && cf_http_tchar[c];
}

int cf_http_is_token(const char *s, size_t len)
{
    for (size_t i = 0; i != len; ++i)
        if (!cf_http_tchar[(unsigned char)s[i]])
            return 0;
    return len != 0;
}

int cf_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int cf_pct_byte(const char *s, size_t len, size_t i)
{
    int hi, lo;
    if (i + 2 >= len || s[i] != '%' || (hi = cf_hexval((unsigned char)s[i + 1])) < 0 ||
        (lo = cf_hexval((unsigned char)s[i + 2])) < 0)
        return -1;
    return hi << 4 | lo;
}

int cf_form_decode(const char *src, size_t len, char *dst, size_t *dstlen, int flags)
{
    size_t n = 0;
    for (size_t i = 0; i < len; ++i) {
        int v;
        if (src[i] == '+') {
            dst[n++] = ' ';
        } else if (src[i] != '%') {
            dst[n++] = src[i];
        } else if ((v = cf_pct_byte(src, len, i)) >= 0) {
            dst[n++] = (char)v;
            i += 2;
        } else if (flags & CF_FORM_LENIENT) {
            dst[n++] = '%';
        } else {
            return -1;
        }
    }
    *dstlen = n;
    return 0;
}

int cf_http_is_hop_by_hop(const char *name, size_t len)
{
    static const char *const names[] = {"connection",        "proxy-connection", "keep-alive", "te",
                                        "transfer-encoding", "upgrade",          "trailer",    NULL};
    for (size_t i = 0; names[i] != NULL; ++i)
        if (strlen(names[i]) == len && strncasecmp(name, names[i], len) == 0)
            return 1;
    return 0;
}

int cf_http_list_has(const char *list, size_t list_len, const char *elem, size_t elem_len)
{
    const char *p = list, *end = list + list_len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p)), *e = comma != NULL ? comma : end;
        const char *b = p;
        while (b < e && (*b == ' ' || *b == '\t'))
            ++b;
        const char *t = e;
        while (t > b && (t[-1] == ' ' || t[-1] == '\t'))
            --t;
        if ((size_t)(t - b) == elem_len && elem_len != 0 && strncasecmp(b, elem, elem_len) == 0)
            return 1;
        p = e + 1;
    }
    return 0;
}
