/* Unit tests of body templates: YAML -> JSON text with holes, the expansion's types and escaping, its failures. */
#include <stdint.h>
#include <stdlib.h>
#include "tap.h"
#include "../../gateway/template.c"
#include "../../gateway/jsonout.c"
#include "../../gateway/body.c"

static char err[1024];

/* Compiles the YAML document `yaml` (its root is the body) into *b; returns 0, or -1 with the error in err. */
static int compile(const char *yaml, cf_body_t *b)
{
    cf_yaml_t y;
    cf_yctx_t ctx;
    err[0] = '\0';
    memset(b, 0, sizeof(*b));
    if (cf_yaml_load_string(&y, "b.yaml", yaml, strlen(yaml), err, sizeof(err)) != 0)
        return -1;
    cf_yctx_init(&ctx, &y);
    int rc = cf_body_parse(&ctx, cf_yaml_root(&y), b);
    if (rc != 0)
        snprintf(err, sizeof(err), "%s", ctx.err);
    cf_yaml_dispose(&y);
    return rc;
}

/* The values of a test: placeholders named by their text (a CALL's first field, else the name) */
struct vals {
    const char *name;
    const json_t *json; /* or */
    const char *str;
    size_t len;
};
static struct vals *cur_vals;

static int lookup(void *ctx, const cf_tpl_part_t *part, cf_body_value_t *v)
{
    (void)ctx;
    const char *name = part->kind == CF_TPL_CALL && part->num_fields != 0 ? part->fields[0] : part->text;
    for (struct vals *x = cur_vals; x != NULL && x->name != NULL; ++x) {
        if (strcmp(x->name, name) == 0) {
            v->json = x->json;
            v->str = x->str;
            v->len = x->str != NULL && x->len == 0 ? strlen(x->str) : x->len;
            return CF_TPL_OK;
        }
    }
    return CF_TPL_MISSING;
}

/* Compiles `yaml`, expands it with `vals` and the client body `rb`, and compares the text with `want`. */
static void expands_to(const char *name, const char *yaml, struct vals *vals, const char *rb, const char *want)
{
    cf_body_t b;
    if (compile(yaml, &b) != 0) {
        ok(0, "%s: compiles", name);
        diag("%s", err);
        return;
    }
    cur_vals = vals;
    cf_buf_t out = CF_BUF_INIT;
    int rc = cf_body_expand(&b, lookup, NULL, rb, rb != NULL ? strlen(rb) : 0, 1 << 20, &out, NULL);
    is(rc, CF_TPL_OK, "%s: expands", name);
    is_str(out.base != NULL ? out.base : "", want, "%s: text", name);
    json_error_t jerr;
    json_t *doc = json_loadb(out.base, out.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    ok(doc != NULL, "%s: valid JSON", name);
    json_decref(doc);
    cf_buf_free(&out);
    cf_body_free(&b);
}

static void fails(const char *name, const char *yaml, struct vals *vals, const char *rb, size_t max, int want_rc)
{
    cf_body_t b;
    if (compile(yaml, &b) != 0) {
        ok(0, "%s: compiles", name);
        diag("%s", err);
        return;
    }
    cur_vals = vals;
    cf_buf_t out = CF_BUF_INIT;
    cf_buf_appends(&out, "keep");
    const cf_tpl_part_t *failed = NULL;
    int rc = cf_body_expand(&b, lookup, NULL, rb, rb != NULL ? strlen(rb) : 0, max, &out, &failed);
    is(rc, want_rc, "%s: fails", name);
    is_str(out.base, "keep", "%s: the buffer is left as it was", name);
    cf_buf_free(&out);
    cf_body_free(&b);
}

static void refused(const char *name, const char *yaml, const char *want)
{
    cf_body_t b;
    ok(compile(yaml, &b) != 0, "%s: refused", name);
    is_str(err, want, "%s: message", name);
    cf_body_free(&b);
}

static void test_literals(void)
{
    expands_to("scalars keep their YAML type",
               "{i: 42, s: \"42\", q: '42', r: 1.50, neg: -0, e: 1E+3, t: true, T: True, f: FALSE, n: ~, N: null, empty: , "
               "str: hello world, y: yes}",
               NULL, NULL,
               "{\"i\":42,\"s\":\"42\",\"q\":\"42\",\"r\":1.50,\"neg\":-0,\"e\":1E+3,\"t\":true,\"T\":true,\"f\":false,\"n\":null,"
               "\"N\":null,\"empty\":null,\"str\":\"hello world\",\"y\":\"yes\"}");
    expands_to("lists and nesting", "[1, [], {}, {a: [x, {b: c}]}]", NULL, NULL, "[1,[],{},{\"a\":[\"x\",{\"b\":\"c\"}]}]");
    expands_to("a block scalar is a string, escaped", "|\n  line \"one\"\\\n  line\ttwo\n", NULL, NULL,
               "\"line \\\"one\\\"\\\\\\nline\\ttwo\\n\"");
    expands_to("braces doubled", "\"{{literal}} and }}{{\"", NULL, NULL, "\"{literal} and }{\"");
    expands_to("keys are literal", "{\"{id}\": 1, \"a\\\"b\": 2}", NULL, NULL, "{\"{id}\":1,\"a\\\"b\":2}");
    expands_to("unicode passes", "{\"é\": \"✓ ü\"}", NULL, NULL, "{\"é\":\"✓ ü\"}");
    expands_to("a quoted null is a string", "[\"null\", 'true', \"\"]", NULL, NULL, "[\"null\",\"true\",\"\"]");
}

static void test_values(void)
{
    json_t *arr = json_pack("[i,i,i]", 1, 2, 3), *obj = json_pack("{s:s,s:[f]}", "a", "x", "b", 1.5);
    json_t *real = json_real(0.92), *whole = json_real(3.0), *big = json_real(1e300), *i = json_integer(-7);
    json_t *t = json_true(), *nul = json_null(), *str = json_string("q\"uo\\te\r\n\x01✓");
    struct vals v[] = {{"arr", arr},
                       {"obj", obj},
                       {"real", real},
                       {"whole", whole},
                       {"big", big},
                       {"int", i},
                       {"t", t},
                       {"nul", nul},
                       {"str", str},
                       {"id", NULL, "4\"2"},
                       {"q", NULL, "a\r\nb"},
                       {"empty", NULL, ""},
                       {"u", NULL, "\xff\xfe ok"},
                       {NULL}};
    expands_to("values with their type",
               "{a: \"{c.arr}\", o: \"{c.obj}\", r: \"{c.real}\", w: \"{c.whole}\", b: \"{c.big}\", i: \"{c.int}\", t: "
               "\"{c.t}\", s: \"{c.str}\", p: \"{id}\", q: \"{query.q}\", e: \"{header.empty}\"}",
               v, NULL,
               "{\"a\":[1,2,3],\"o\":{\"a\":\"x\",\"b\":[1.5]},\"r\":0.92,\"w\":3.0,\"b\":1e+300,\"i\":-7,\"t\":true,"
               "\"s\":\"q\\\"uo\\\\te\\r\\n\\u0001✓\",\"p\":\"4\\\"2\",\"q\":\"a\\r\\nb\",\"e\":\"\"}");
    expands_to("values inside a string", "\"{c.real} {c.whole} {c.int} {c.t} [{c.str}] {id} {query.q} {u}\"", v, NULL,
               "\"0.92 3 -7 true [q\\\"uo\\\\te\\r\\n\\u0001✓] 4\\\"2 a\\r\\nb \\ufffd\\ufffd ok\"");
    fails("null with its type is missing", "{a: \"{c.nul}\"}", v, NULL, 1 << 20, CF_TPL_MISSING);
    fails("null inside a string is missing", "\"x {c.nul}\"", v, NULL, 1 << 20, CF_TPL_MISSING);
    fails("an array inside a string is missing", "\"x {c.arr}\"", v, NULL, 1 << 20, CF_TPL_MISSING);
    fails("an absent value is missing", "[\"{query.nope}\"]", v, NULL, 1 << 20, CF_TPL_MISSING);
    fails("too large", "[\"{c.arr}\", \"{c.arr}\"]", v, NULL, 10, CF_BODY_TOO_LARGE);
    json_decref(arr);
    json_decref(obj);
    json_decref(real);
    json_decref(whole);
    json_decref(big);
    json_decref(i);
    json_decref(t);
    json_decref(str);
}

static void test_request_body(void)
{
    const char *rb = "{ \"a\" : [1, 2.50, \"\\u00e9\"],\n\"b\":null }";
    expands_to("the client's body alone, byte for byte", "\"{request.body}\"", NULL, rb, rb);
    cf_body_t b;
    compile("\"{request.body}\"", &b);
    ok(b.uses_request_body && b.num_parts == 1 && b.parts[0].kind == CF_BODY_REQUEST, "one part, the client's body");
    cf_body_free(&b);
    expands_to("the client's body inside", "{wrapped: \"{request.body}\", n: 1}", NULL, "[1, 2]", "{\"wrapped\":[1, 2],\"n\":1}");
    fails("no client body", "\"{request.body}\"", NULL, NULL, 1 << 20, CF_TPL_MISSING);
    fails("a client body over the bound", "\"{request.body}\"", NULL, "[1,2,3,4,5,6,7,8]", 8, CF_BODY_TOO_LARGE);
}

static void test_refused(void)
{
    refused("a hex number", "[0x10]",
            "b.yaml:1:2: [0]: 0x10 is a number in YAML that JSON cannot carry as written: write it as JSON does (10, 0.5, "
            "1e3) or quote it to send a string");
    refused("a leading zero", "{a: 007}",
            "b.yaml:1:5: a: 007 is a number in YAML that JSON cannot carry as written: write it as JSON does (10, 0.5, 1e3) "
            "or quote it to send a string");
    refused(".5", ".5",
            "b.yaml:1:1: .5 is a number in YAML that JSON cannot carry as written: write it as JSON does (10, 0.5, "
            "1e3) or quote it to send a string");
    refused(".nan", "[.nan]",
            "b.yaml:1:2: [0]: .nan is a number in YAML that JSON cannot carry as written: write it as JSON "
            "does (10, 0.5, 1e3) or quote it to send a string");
    refused("an integer past 64 bits", "[9223372036854775807, 9223372036854775808]",
            "b.yaml:1:23: [1]: 9223372036854775808 is out of the range of a 64-bit integer: write it as a real (1e30) or quote it");
    refused("a negative one", "-9223372036854775809",
            "b.yaml:1:1: -9223372036854775809 is out of the range of a 64-bit integer: write it as a real (1e30) or quote it");
    refused("a key that is a list", "{[a]: 1}", "b.yaml:1:2: a mapping key must be a string, not a list");
    refused("a lone '}'", "\"a}b\"", "b.yaml:1:1: unbalanced '}' at offset 1 of \"a}b\" (write \"}}\" for a '}')");
    refused("an empty placeholder", "\"{}\"", "b.yaml:1:1: \"{}\": empty placeholder '{}'");
    refused("a bad name", "\"{a b}\"",
            "b.yaml:1:1: \"{a b}\": invalid placeholder {a b} at offset 0 (a parameter name is letters, digits and '_')");
    refused("too deep", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
            "b.yaml:1:34: [0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: "
            "nests deeper than 32 levels");
    refused("billion laughs",
            "a: &a [1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b]\n"
            "d: &d [*c,*c,*c,*c,*c,*c,*c,*c]\n",
            "b.yaml:1:22: d[5][6][6][7]: more than 4096 values in all (aliases count each time they are used)");
}

/* Any bytes in any place give valid JSON, and a string value reads back as itself (when it is valid UTF-8). */
static void test_any_bytes(void)
{
    cf_body_t b;
    compile("{v: \"{v}\", s: \"<{v}>\"}", &b);
    srand(7);
    int bad = 0, mismatched = 0;
    for (int n = 0; n < 5000; ++n) {
        char s[32];
        size_t len = (size_t)(rand() % 32);
        int ascii = n % 2;
        for (size_t k = 0; k < len; ++k)
            s[k] = ascii ? (char)(rand() % 128) : (char)(rand() % 256);
        struct vals v[] = {{"v", NULL, s, len}, {NULL}};
        if (len == 0)
            v[0].str = "";
        cur_vals = v;
        cf_buf_t out = CF_BUF_INIT;
        if (cf_body_expand(&b, lookup, NULL, NULL, 0, 1 << 20, &out, NULL) != CF_TPL_OK) {
            ++bad;
            continue;
        }
        json_error_t jerr;
        json_t *doc = json_loadb(out.base, out.len, JSON_ALLOW_NUL, &jerr);
        if (doc == NULL) {
            ++bad;
        } else if (ascii) {
            json_t *got = json_object_get(doc, "v");
            if (json_string_length(got) != len || memcmp(json_string_value(got), s, len) != 0)
                ++mismatched;
        }
        json_decref(doc);
        cf_buf_free(&out);
    }
    is(bad, 0, "5000 random values: always valid JSON");
    is(mismatched, 0, "ASCII values (controls, quotes, backslashes) read back as they were");
    cf_body_free(&b);
}

static int valid(const char *s)
{
    return cf_body_json_valid(s, strlen(s), NULL);
}

static void test_json_valid(void)
{
    static const char *const good[] = {"0",
                                       "-0",
                                       "1.5e-3",
                                       "123456789012345678901234567890",
                                       "[1e400]",
                                       "\"\"",
                                       "\"a\\u0000b\"",
                                       " {\"a\" : [1, {}, []] } ",
                                       "true",
                                       "null",
                                       "\"\\ud83d\\ude00\"",
                                       "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
                                       "{\"a\":1,\"a\":2}",
                                       "[\"\\/\\b\\f\\n\\r\\t\"]",
                                       "\r\n\t[]\n",
                                       NULL};
    static const char *const bad[] = {"",
                                      " ",
                                      "01",
                                      "1.",
                                      ".5",
                                      "-",
                                      "+1",
                                      "1e",
                                      "NaN",
                                      "Infinity",
                                      "[1,]",
                                      "{\"a\":1,}",
                                      "[1 2]",
                                      "{\"a\" 1}",
                                      "{a:1}",
                                      "{1:1}",
                                      "\"\\x\"",
                                      "\"\\u12\"",
                                      "\"\\ud800\"",
                                      "\"\\udc00\"",
                                      "\"\\ud800\\u0041\"",
                                      "\"a\tb\"",
                                      "\"\xc0\xaf\"",
                                      "\"\xed\xa0\x80\"",
                                      "\"\xf4\x90\x80\x80\"",
                                      "\"\xff\"",
                                      "\"\xe2\x82\"",
                                      "\xef\xbb\xbf{}",
                                      "{} {}",
                                      "[]x",
                                      "tru",
                                      "nul",
                                      "[",
                                      "{",
                                      "\"",
                                      "]",
                                      "/* */ 1",
                                      NULL};
    for (size_t i = 0; good[i] != NULL; ++i)
        ok(valid(good[i]), "JSON: %s", good[i]);
    for (size_t i = 0; bad[i] != NULL; ++i)
        ok(!valid(bad[i]), "not JSON: %s", bad[i]);
    ok(cf_body_json_valid("a\0", 2, NULL) == 0, "a NUL byte");
    ok(cf_body_json_valid("\"\0\"", 3, NULL) == 0, "a raw NUL in a string");
    size_t at = 0;
    ok(!cf_body_json_valid("[1, 2, x]", 9, &at) && at == 7, "where it stops: %zu", at);

    /* deep: up to the bound, one level more refused, and never a recursion */
    size_t n = CF_BODY_JSON_MAX_DEPTH;
    char *deep = malloc(2 * n + 2);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    ok(cf_body_json_valid(deep, 2 * n, NULL), "%zu levels", n);
    deep[0] = '{';
    ok(!cf_body_json_valid(deep, 2 * n, NULL), "a mismatched close");
    free(deep);
    deep = malloc(2 * n + 4);
    memset(deep, '[', n + 1);
    memset(deep + n + 1, ']', n + 1);
    ok(!cf_body_json_valid(deep, 2 * n + 2, NULL), "%zu levels: refused", n + 1);
    free(deep);

    /* against jansson: what it takes is JSON, and what this refuses it refuses (but for numbers too big for it); random
     * texts from JSON pieces */
    static const char *const pieces[] = {"[",    "]", "{",           "}", ",",  ":", "\"k\"", "1",        "-2.5e3", "true",
                                         "null", " ", "\"\\u00e9\"", "0", "\"", "x", "\\",    "\xc3\xa9", "e",      "."};
    uint32_t r = 12345;
    int disagree = 0, accepted = 0;
    for (int round = 0; round < 200000; ++round) {
        char text[64] = "";
        int parts = 1 + (int)((r = r * 1103515245u + 12345u) >> 16) % 8;
        for (int k = 0; k < parts; ++k) {
            r = r * 1103515245u + 12345u;
            strcat(text, pieces[(r >> 16) % (sizeof(pieces) / sizeof(pieces[0]))]);
        }
        json_error_t jerr;
        json_t *doc = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        int mine = valid(text);
        accepted += mine;
        /* jansson refuses numbers it cannot hold; the text of one is JSON all the same */
        int too_big = doc == NULL && (strstr(jerr.text, "overflow") != NULL || strstr(jerr.text, "too big") != NULL);
        if ((doc != NULL) != mine && !(mine && too_big) && disagree++ < 5)
            diag("disagree on '%s': jansson %s, here %s", text, doc != NULL ? "yes" : "no", mine ? "yes" : "no");
        json_decref(doc);
    }
    is(disagree, 0, "agrees with jansson on 200000 random texts (%d of them JSON)", accepted);
}

int main(void)
{
    test_json_valid();
    test_literals();
    test_values();
    test_request_body();
    test_refused();
    test_any_bytes();
    return done_testing();
}
