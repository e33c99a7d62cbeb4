/* Unit tests of the JSON writer: compact output, escapes, reals that read as the upstream wrote them, template text. */
#include <stdlib.h>
#include "../../gateway/jsonout.c"
#include "tap.h"

/* Parses `in` with jansson, writes it back with cf_json_write, and returns the text (static buffer). */
static const char *roundtrip(const char *in)
{
    static char text[4096];
    json_error_t e;
    json_t *v = json_loads(in, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (v == NULL)
        return "(parse error)";
    cf_buf_t b = CF_BUF_INIT;
    cf_json_write(&b, v);
    snprintf(text, sizeof(text), "%s", b.base);
    cf_buf_free(&b);
    json_decref(v);
    return text;
}

/* Parses `in` with jansson and returns cf_json_format_scalar's text, or "(none)" when it has none (static buffer). */
static const char *scalar_text(const char *in)
{
    static char text[CF_JSON_SCALAR_MAX];
    json_error_t e;
    json_t *v = json_loads(in, JSON_DECODE_ANY, &e);
    if (v == NULL)
        return "(parse error)";
    size_t n = cf_json_format_scalar(v, 1, text);
    json_decref(v);
    if (n != strlen(text))
        return "(length and text differ)";
    return n != 0 ? text : "(none)";
}

int main(void)
{
    is_str(roundtrip("{\"b\": 1, \"a\": [true, false, null], \"c\": {}}"), "{\"b\":1,\"a\":[true,false,null],\"c\":{}}",
           "compact, members in order");
    is_str(roundtrip("54.9"), "54.9", "54.9 stays 54.9 (json_dumps gives 54.899999999999999)");
    is_str(roundtrip("0.92"), "0.92", "0.92");
    is_str(roundtrip("0.30000000000000004"), "0.30000000000000004", "a real that needs 17 digits keeps them");
    is_str(roundtrip("1.0"), "1.0", "an integral real stays a real");
    is_str(roundtrip("1e300"), "1e+300", "exponent");
    is_str(roundtrip("-0.0"), "-0.0", "negative zero");
    is_str(roundtrip("123456789012345678"), "123456789012345678", "large integers exactly");
    is_str(roundtrip("\"q\\\"b\\\\n\\n\\t\\u0001\\u007f/\""), "\"q\\\"b\\\\n\\n\\t\\u0001\\u007f/\"", "escapes");
    is_str(roundtrip("\"caf\\u00e9 \\ud83d\\ude00\""), "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"", "UTF-8 written as is");
    is_str(roundtrip("\"a\\u0000b\""), "\"a\\u0000b\"", "NUL inside a string");
    is_str(roundtrip("[]"), "[]", "empty array");
    /* strings from clients (the access log): any bytes in, valid JSON out */
    cf_buf_t b = CF_BUF_INIT;
    static const char client[] = "/x\xff\xc3(\xed\xa0\x80\xf4\x90\x80\x80 ok \xc3\xa9";
    cf_json_write_string(&b, client, sizeof(client) - 1);
    is_str(b.base, "\"/x\\ufffd\\ufffd(\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd ok \xc3\xa9\"",
           "bytes that are not UTF-8 (stray, truncated, surrogate, above U+10FFFF) become U+FFFD; valid ones stay");
    cf_buf_free(&b);
    /* every real from a sweep reads back to the same double */
    int bad = 0;
    srand(7);
    for (int i = 0; i < 20000; ++i) {
        double d = ((double)rand() / RAND_MAX - 0.5) * pow(10, rand() % 40 - 20);
        cf_buf_t b = CF_BUF_INIT;
        json_t *v = json_real(d);
        cf_json_write(&b, v);
        json_decref(v);
        if (strtod(b.base, NULL) != d)
            ++bad;
        cf_buf_free(&b);
    }
    is(bad, 0, "20000 random reals read back exactly");

    /* the text of a number or a boolean, as a URL template takes it: the same as in an answer */
    is_str(scalar_text("0.92"), "0.92", "0.92 (%%.17g wrote 0.92000000000000004)");
    is_str(scalar_text("54.9"), "54.9", "54.9");
    is_str(scalar_text("3.0"), "3.0", "an integral real stays a real");
    is_str(scalar_text("1e300"), "1e+300", "exponent");
    is_str(scalar_text("-2.2250738585072014e-308"), "-2.2250738585072014e-308", "the longest real fits");
    is_str(scalar_text("-9223372036854775808"), "-9223372036854775808", "the longest integer fits");
    is_str(scalar_text("7"), "7", "an integer as its digits");
    is_str(scalar_text("true"), "true", "true");
    is_str(scalar_text("false"), "false", "false");
    is_str(scalar_text("\"0.92\""), "(none)", "a string has no such text (quoted in JSON, raw in a URL)");
    is_str(scalar_text("null"), "(none)", "null has none");
    is_str(scalar_text("{}"), "(none)", "nor an object");
    is_str(scalar_text("[1]"), "(none)", "nor an array");
    bad = 0;
    for (int i = 0; i < 20000; ++i) {
        json_t *v = i % 2 ? json_real(((double)rand() / RAND_MAX - 0.5) * pow(10, rand() % 40 - 20))
                          : json_integer((json_int_t)rand() * (rand() % 2 ? 1 : -1) * rand());
        char buf[CF_JSON_SCALAR_MAX];
        cf_buf_t b = CF_BUF_INIT;
        size_t n = cf_json_format_scalar(v, 1, buf);
        cf_json_write(&b, v);
        if (n != b.len || strcmp(buf, b.base) != 0)
            ++bad;
        cf_buf_free(&b);
        json_decref(v);
    }
    is(bad, 0, "20000 random numbers: the template text is the answer's, byte for byte");
    return done_testing();
}
