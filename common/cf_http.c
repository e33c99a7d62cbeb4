/* Small HTTP text helpers shared by the gateway and the mock: reason phrases, hex digits, form decoding. */
#include <string.h>
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
    case 504:
        return "Gateway Timeout";
    default:
        return status < 300 ? "OK" : status < 400 ? "Redirect" : status < 500 ? "Client Error" : "Server Error";
    }
}

int cf_is_tchar(int c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c > 0 && c < 0x80 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
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

int cf_form_decode(const char *src, size_t len, char *dst, size_t *dstlen, int flags)
{
    size_t n = 0;
    for (size_t i = 0; i < len; ++i) {
        int hi, lo;
        if (src[i] == '+') {
            dst[n++] = ' ';
        } else if (src[i] != '%') {
            dst[n++] = src[i];
        } else if (i + 2 < len && (hi = cf_hexval((unsigned char)src[i + 1])) >= 0 &&
                   (lo = cf_hexval((unsigned char)src[i + 2])) >= 0) {
            dst[n++] = (char)(hi << 4 | lo);
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
