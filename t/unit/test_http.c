/* Unit tests of common/cf_http.c: reason phrases, hex digit values, form-urlencoded decoding, hop-by-hop fields. */
#include <ctype.h>
#include <stdlib.h>
#include "tap.h"
#include "cf_http.h"

static void test_reason(void)
{
    is_str(cf_http_reason(200), "OK", "200");
    is_str(cf_http_reason(204), "No Content", "204");
    is_str(cf_http_reason(304), "Not Modified", "304");
    is_str(cf_http_reason(404), "Not Found", "404");
    is_str(cf_http_reason(405), "Method Not Allowed", "405");
    is_str(cf_http_reason(408), "Request Timeout", "408 (was only in the mock's table)");
    is_str(cf_http_reason(413), "Content Too Large", "413 (was only in the gateway's table)");
    is_str(cf_http_reason(429), "Too Many Requests", "429");
    is_str(cf_http_reason(431), "Request Header Fields Too Large", "431 (was only in the gateway's table)");
    is_str(cf_http_reason(499), "Client Closed Request", "499");
    is_str(cf_http_reason(502), "Bad Gateway", "502");
    is_str(cf_http_reason(504), "Gateway Timeout", "504");
    is_str(cf_http_reason(299), "OK", "unlisted 2xx");
    is_str(cf_http_reason(307), "Redirect", "unlisted 3xx");
    is_str(cf_http_reason(418), "Client Error", "unlisted 4xx");
    is_str(cf_http_reason(599), "Server Error", "unlisted 5xx");
}

static void test_tchar(void)
{
    /* RFC 9110 §5.6.2, written out again */
    int wrong = 0;
    for (int c = -1; c <= 256; ++c) {
        int want = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (c > 0 && c < 128 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
        if (cf_http_is_tchar(c) != want || (c >= 0 && c < 256 && cf_http_tchar[c] != want)) {
            diag("byte %d: %d, want %d", c, cf_http_is_tchar(c), want);
            ++wrong;
        }
    }
    is(wrong, 0, "tchar: every byte value as RFC 9110 5.6.2 says (table and function)");

    ok(cf_http_is_token("GET", 3), "GET is a token");
    ok(cf_http_is_token("X-Tenant_1.v2~!#$%&'*+^`|", 25), "every tchar kind");
    ok(!cf_http_is_token("", 0), "the empty string is not a token (one or more tchars)");
    ok(!cf_http_is_token("X Y", 3), "a space is not a tchar");
    ok(!cf_http_is_token("X:Y", 3), "nor a colon");
    ok(!cf_http_is_token("caf\xc3\xa9", 5), "nor a byte above 0x7f");
    ok(!cf_http_is_token("a\0b", 3), "a NUL inside counts (the length is honoured)");
    ok(cf_http_is_token("ab\r\n", 2), "bytes past the length do not");
}

static void test_hexval(void)
{
    is(cf_hexval('0'), 0, "'0'");
    is(cf_hexval('9'), 9, "'9'");
    is(cf_hexval('a'), 10, "'a'");
    is(cf_hexval('F'), 15, "'F'");
    is(cf_hexval('g'), -1, "'g'");
    is(cf_hexval(-1), -1, "EOF");
    is(cf_hexval((char)0xc3), -1, "a negative char");
    int bad = 0;
    for (int c = 0; c < 256; ++c) {
        char s[2] = {(char)c, '\0'};
        int want = isxdigit(c) ? (int)strtol(s, NULL, 16) : -1;
        if (cf_hexval(c) != want) {
            diag("byte 0x%02x: got %d, expected %d", c, cf_hexval(c), want);
            ++bad;
        }
    }
    is(bad, 0, "every byte agrees with isxdigit/strtol");

    is(cf_pct_byte("%41", 3, 0), 'A', "%%41");
    is(cf_pct_byte("a%2fb", 5, 1), '/', "%%2f, lower case, inside");
    is(cf_pct_byte("%C3%A9", 6, 3), 0xa9, "%%A9, upper case, a byte above 0x7f");
    is(cf_pct_byte("%00", 3, 0), 0, "%%00 is the NUL byte (callers that refuse it check for 0)");
    is(cf_pct_byte("%4", 2, 0), -1, "one digit");
    is(cf_pct_byte("%41", 2, 0), -1, "the second digit past the length");
    is(cf_pct_byte("%4g", 3, 0), -1, "not a hex digit");
    is(cf_pct_byte("%%41", 4, 0), -1, "'%%' is not a digit");
    is(cf_pct_byte("A41", 3, 0), -1, "no '%%'");
    bad = 0;
    for (int c = 0; c < 256; ++c) {
        char s[4] = {'%', (char)c, '7', '\0'};
        int want = isxdigit(c) ? (int)strtol(s + 1, NULL, 16) : -1;
        if (cf_pct_byte(s, 3, 0) != want ||
            cf_pct_byte((char[]){'%', '7', (char)c}, 3, 0) != (isxdigit(c) ? 0x70 + cf_hexval(c) : -1))
            ++bad;
    }
    is(bad, 0, "%%X7 and %%7X for every byte X agree with isxdigit/strtol");
}

/* Decodes `src` with `flags`; returns the text, "(fail)" on -1 (and checks the output length fits). */
static const char *decode(const char *src, int flags)
{
    static char out[256];
    size_t len = strlen(src), n = 12345;
    memset(out, '#', sizeof(out));
    if (cf_form_decode(src, len, out, &n, flags) != 0)
        return n == 12345 ? "(fail)" : "(fail, length set)";
    if (n > len)
        return "(longer than the input)";
    if (out[len] != '#')
        return "(wrote past len bytes)";
    out[n] = '\0';
    return out;
}

static void test_form_decode(void)
{
    is_str(decode("", 0), "", "empty");
    is_str(decode("plain", 0), "plain", "plain text");
    is_str(decode("a+b", 0), "a b", "'+' is a space");
    is_str(decode("a%20b%2Bc", 0), "a b+c", "%%XX escapes, %%2B is a '+'");
    is_str(decode("caf%c3%A9", 0), "caf\xc3\xa9", "either case of hex digits");
    is_str(decode("%41", 0), "A", "escape at the very end");
    is_str(decode("100%", 0), "(fail)", "lone '%%' at the end");
    is_str(decode("%4", 0), "(fail)", "one digit at the end");
    is_str(decode("%zz", 0), "(fail)", "non-hex digits");
    is_str(decode("%4g", 0), "(fail)", "second digit bad");
    is_str(decode("100%", CF_FORM_LENIENT), "100%", "lenient: lone '%%' kept");
    is_str(decode("%4", CF_FORM_LENIENT), "%4", "lenient: short escape kept");
    is_str(decode("%zz+%41", CF_FORM_LENIENT), "%zz A", "lenient: bad escape kept, the rest decoded");
    is_str(decode("%%41", CF_FORM_LENIENT), "%A", "lenient: '%%' then a valid escape");

    char out[8];
    size_t n = 0;
    is(cf_form_decode("a%00b", 5, out, &n, 0), 0, "%%00 decodes");
    is(n, 3, "  to three bytes");
    ok(memcmp(out, "a\0b", 3) == 0, "  with a NUL in the middle");
    is(cf_form_decode("xy%41", 2, out, &n, 0), 0, "len is honoured (prefix of a longer buffer)");
    is(n, 2, "  two bytes");
}

static void test_hop_by_hop(void)
{
    static const char *const hop[] = {"Connection",        "proxy-connection", "KEEP-ALIVE", "te",
                                      "Transfer-Encoding", "upgrade",          "Trailer",    NULL};
    for (size_t i = 0; hop[i] != NULL; ++i)
        ok(cf_http_is_hop_by_hop(hop[i], strlen(hop[i])), "%s is hop-by-hop", hop[i]);
    static const char *const end[] = {"content-length", "connectio", "connections", "tee", "x-upgrade", "", "host", NULL};
    for (size_t i = 0; end[i] != NULL; ++i)
        ok(!cf_http_is_hop_by_hop(end[i], strlen(end[i])), "'%s' is not", end[i]);

    const char *list = "close, X-Secret ,\tx-other\t,,";
    ok(cf_http_list_has(list, strlen(list), "x-secret", 8), "an element with spaces around it, in another case");
    ok(cf_http_list_has(list, strlen(list), "X-OTHER", 7), "one with tabs around it");
    ok(cf_http_list_has(list, strlen(list), "close", 5), "the first");
    ok(!cf_http_list_has(list, strlen(list), "x-secre", 7), "not a prefix of one");
    ok(!cf_http_list_has(list, strlen(list), "x-secret ,", 10), "not across a comma");
    ok(!cf_http_list_has(list, strlen(list), "", 0), "never the empty element");
    ok(!cf_http_list_has("", 0, "close", 5), "nothing in an empty list");
}

int main(void)
{
    test_hop_by_hop();
    test_reason();
    test_tchar();
    test_hexval();
    test_form_decode();
    return done_testing();
}
