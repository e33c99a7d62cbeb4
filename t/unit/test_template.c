/* Unit tests of URL templates: parsing, errors, expansion, and proof that no value changes the URL's structure. */
#include <stdint.h>
#include <stdlib.h>
#include "tap.h"
#include "../../gateway/template.c"

/* --- parsing --- */

static const char *kind_name(cf_tpl_kind_t k)
{
    static const char *names[] = {"LITERAL", "PARAM", "QUERY", "HEADER", "CALL", "ITEM", "ITEMS"};
    return (unsigned)k < 7 ? names[k] : "?";
}

/* Renders parts as "KIND:text[.field...][?]" joined by ' ' ('?' marks in_query), for one is_str per template. */
static char rendered[2048];
static const char *render(const cf_template_t *t)
{
    size_t off = 0;
    rendered[0] = '\0';
    for (size_t i = 0; i != t->num_parts; ++i) {
        const cf_tpl_part_t *p = t->parts + i;
        off += snprintf(rendered + off, sizeof(rendered) - off, "%s%s:%s", i ? " " : "", kind_name(p->kind), p->text);
        for (size_t j = 0; j != p->num_fields; ++j)
            off += snprintf(rendered + off, sizeof(rendered) - off, ".%s", p->fields[j]);
        if (p->in_query)
            off += snprintf(rendered + off, sizeof(rendered) - off, "?");
    }
    return rendered;
}

static void parses_as(const char *src, const char *want)
{
    cf_template_t t;
    char err[256] = "";
    if (cf_template_parse(src, &t, err, sizeof(err)) != 0) {
        ok(0, "parse %s", src);
        diag("error: %s", err);
        return;
    }
    is_str(render(&t), want, "parse %s", src);
    int sane = 1;
    for (size_t i = 0; i != t.num_parts; ++i) {
        const cf_tpl_part_t *p = t.parts + i;
        if (p->call_index != -1 || p->rest != 0 || strlen(p->text) != p->len ||
            (p->fields != NULL && p->fields[p->num_fields] != NULL))
            sane = 0;
    }
    ok(sane, "  call_index -1, rest 0, len matches, fields NULL-terminated");
    is_str(t.src, src, "  src kept");
    cf_template_free(&t);
}

static void fails_with(const char *src, const char *want)
{
    cf_template_t t;
    char err[256] = "";
    int rc = cf_template_parse(src, &t, err, sizeof(err));
    is(rc, -1, "refused: %s", tap_printable(src));
    is_str(err, want, "  message");
    if (rc == 0)
        cf_template_free(&t);
}

static void test_parse(void)
{
    parses_as("/users/{user_id}", "LITERAL:/users/ PARAM:user_id");
    parses_as("/orders?user={user_id}&lang={query.lang}", "LITERAL:/orders?user= PARAM:user_id? LITERAL:&lang= QUERY:lang?");
    parses_as("/recs/{profile.segment}", "LITERAL:/recs/ CALL:profile.segment");
    parses_as("/x/{header.x-tenant}", "LITERAL:/x/ HEADER:x-tenant");
    parses_as("/x/{header.X-Tenant}", "LITERAL:/x/ HEADER:x-tenant");
    parses_as("/users/{item}", "LITERAL:/users/ ITEM:item");
    parses_as("/u/{item.id}", "LITERAL:/u/ ITEM:item.id");
    parses_as("/u/{item.a.b_c.d-e.0}", "LITERAL:/u/ ITEM:item.a.b_c.d-e.0");
    parses_as("/legacy/{rest}", "LITERAL:/legacy/ PARAM:rest");
    parses_as("/a/{call-1.data.items}", "LITERAL:/a/ CALL:call-1.data.items");
    parses_as("/plain/path", "LITERAL:/plain/path");
    parses_as("/", "LITERAL:/");
    parses_as("/{a}{b}", "LITERAL:/ PARAM:a PARAM:b");
    parses_as("/u-{id}.json", "LITERAL:/u- PARAM:id LITERAL:.json");
    parses_as("/{query}/{header}", "LITERAL:/ PARAM:query LITERAL:/ PARAM:header");
    parses_as("/a/{p}?x={q}&y=?{r}", "LITERAL:/a/ PARAM:p LITERAL:?x= PARAM:q? LITERAL:&y=? PARAM:r?");
    parses_as("/a?{query.ids[]}={query.a.b}", "LITERAL:/a? QUERY:ids[]? LITERAL:= QUERY:a.b?");
    parses_as("/caf%C3%A9/%7e?q=a%20b", "LITERAL:/caf%C3%A9/%7e?q=a%20b");
    parses_as("/a:b@c!$&'()*+,;=~-._/?x=/?", "LITERAL:/a:b@c!$&'()*+,;=~-._/?x=/?");

    fails_with(NULL, "a URL template must start with '/'");
    fails_with("", "a URL template must start with '/'");
    fails_with("users/{id}", "a URL template must start with '/'");
    fails_with("{id}", "a URL template must start with '/'");
    fails_with("/users/{id", "unbalanced '{' at offset 7");
    fails_with("/users/id}", "unbalanced '}' at offset 9");
    fails_with("/users/{a{b}}", "'{' inside a placeholder at offset 9");
    fails_with("/users/{}", "empty placeholder '{}' at offset 7");
    fails_with("/users/{1d}", "invalid placeholder {1d} at offset 7 (a parameter name is letters, digits and '_')");
    fails_with("/users/{a-b}", "invalid placeholder {a-b} at offset 7 (a parameter name is letters, digits and '_')");
    fails_with("/users/{ id}", "invalid placeholder { id} at offset 7 (a parameter name is letters, digits and '_')");
    fails_with("/users/{query.}", "empty query parameter name at offset 14");
    fails_with("/users/{query.a b}", "invalid character in query parameter name at offset 15");
    fails_with("/users/{query.a&b}", "invalid character in query parameter name at offset 15");
    fails_with("/users/{header.}", "empty header name at offset 15");
    fails_with("/users/{header.a:b}", "invalid character in header name at offset 16");
    fails_with("/users/{header.a\r\nb}", "invalid character in header name at offset 16");
    fails_with("/users/{item.}", "empty field name at offset 13");
    fails_with("/users/{item..a}", "empty field name at offset 13");
    fails_with("/users/{p.a.}", "empty field name at offset 12");
    fails_with("/users/{p.a/b}", "invalid character '/' in field name at offset 11");
    fails_with("/users/{.a}", "invalid call name \"\" at offset 8");
    fails_with("/users/{9p.a}", "invalid call name \"9p\" at offset 8");
    fails_with("/a b", "byte 0x20 at offset 2 may not appear in a URL (percent-encode it)");
    fails_with("/a#frag", "'#' at offset 2 may not appear in a URL (percent-encode it)");
    fails_with("/a\r\nHost: x", "byte 0x0d at offset 2 may not appear in a URL (percent-encode it)");
    fails_with("/a\n", "byte 0x0a at offset 2 may not appear in a URL (percent-encode it)");
    fails_with("/a\t", "byte 0x09 at offset 2 may not appear in a URL (percent-encode it)");
    fails_with("/a\x7f", "byte 0x7f at offset 2 may not appear in a URL (percent-encode it)");
    fails_with("/caf\xc3\xa9", "byte 0xc3 at offset 4 may not appear in a URL (percent-encode it)");
    fails_with("/a\"b", "'\"' at offset 2 may not appear in a URL (percent-encode it)");
    fails_with("/a<b>", "'<' at offset 2 may not appear in a URL (percent-encode it)");
    fails_with("/a\\b", "'\\' at offset 2 may not appear in a URL (percent-encode it)");
    fails_with("/a|b", "'|' at offset 2 may not appear in a URL (percent-encode it)");
    fails_with("/a[0]", "'[' at offset 2 may not appear in a URL (percent-encode it)");
    fails_with("/a%", "'%' at offset 2 does not start a %XX escape");
    fails_with("/a%4", "'%' at offset 2 does not start a %XX escape");
    fails_with("/a%4g", "'%' at offset 2 does not start a %XX escape");
    fails_with("/a%%41", "'%' at offset 2 does not start a %XX escape");
    fails_with("/{id}/x y", "byte 0x20 at offset 7 may not appear in a URL (percent-encode it)");
}

/* --- expansion --- */

/* values looked up by placeholder text (for CALL/ITEM: text + fields joined with '.') */
struct values {
    size_t n;
    struct {
        const char *key, *val;
        size_t len;
        int rc;
    } v[16];
    int calls;
};

static int on_lookup(void *_ctx, const cf_tpl_part_t *part, const char **val, size_t *len)
{
    struct values *ctx = _ctx;
    char key[256];
    size_t off = (size_t)snprintf(key, sizeof(key), "%s", part->text);
    for (size_t i = 0; i != part->num_fields; ++i)
        off += (size_t)snprintf(key + off, sizeof(key) - off, ".%s", part->fields[i]);
    ++ctx->calls;
    for (size_t i = 0; i != ctx->n; ++i) {
        if (strcmp(ctx->v[i].key, key) == 0) {
            if (ctx->v[i].rc != CF_TPL_OK)
                return ctx->v[i].rc;
            *val = ctx->v[i].val;
            *len = ctx->v[i].len;
            return CF_TPL_OK;
        }
    }
    return CF_TPL_MISSING;
}

static void set_value(struct values *vs, const char *key, const char *val, size_t len)
{
    vs->v[vs->n].key = key;
    vs->v[vs->n].val = val;
    vs->v[vs->n].len = len;
    vs->v[vs->n].rc = CF_TPL_OK;
    ++vs->n;
}

/* Expands src with one value for every placeholder; returns the result or "#MISSING"/"#BAD_INPUT". */
static char expanded[8192];
static const char *expand1(const char *src, const char *val, size_t len, int rest, unsigned flags)
{
    cf_template_t t;
    char err[256];
    if (cf_template_parse(src, &t, err, sizeof(err)) != 0) {
        snprintf(expanded, sizeof(expanded), "#PARSE %s", err);
        return expanded;
    }
    for (size_t i = 0; i != t.num_parts; ++i)
        if (t.parts[i].kind == CF_TPL_PARAM)
            t.parts[i].rest = rest;
    struct values vs = {0};
    const char *keys[] = {"v", "rest", "lang", "x-tenant", "item", "item.id", "profile.segment"};
    for (size_t i = 0; i != sizeof(keys) / sizeof(keys[0]); ++i)
        set_value(&vs, keys[i], val, len);
    cf_buf_t out = CF_BUF_INIT;
    const cf_tpl_part_t *failed = NULL;
    int rc = cf_template_expand(&t, flags, on_lookup, &vs, &out, &failed);
    if (rc == CF_TPL_OK)
        snprintf(expanded, sizeof(expanded), "%s", out.len ? out.base : "");
    else
        snprintf(expanded, sizeof(expanded), "%s", rc == CF_TPL_MISSING ? "#MISSING" : "#BAD_INPUT");
    cf_buf_free(&out);
    cf_template_free(&t);
    return expanded;
}
#define E(src, val) expand1(src, val, strlen(val), 0, 0)
#define EKEEP(src, val) expand1(src, val, strlen(val), 0, CF_TPL_KEEP_ENCODED_SLASH)
#define EREST(src, val) expand1(src, val, strlen(val), 1, 0)

static void test_encoders(void)
{
    cf_buf_t b = CF_BUF_INIT;
    cf_encode_segment(&b, "", 0);
    is(b.len, 0, "empty segment encodes to nothing");
    cf_encode_segment(&b, "AZaz09-._~", 10);
    is_str(b.base, "AZaz09-._~", "unreserved kept");
    cf_buf_reset(&b);
    cf_encode_segment(&b, "!*'();:@&=+$,/?#[]% \"<>\\^`{|}", 29);
    is_str(b.base, "%21%2A%27%28%29%3B%3A%40%26%3D%2B%24%2C%2F%3F%23%5B%5D%25%20%22%3C%3E%5C%5E%60%7B%7C%7D",
           "reserved and unsafe encoded, upper-case hex");
    cf_buf_reset(&b);
    cf_encode_segment(&b, ".", 1);
    is_str(b.base, "%2E", "dot segment");
    cf_buf_reset(&b);
    cf_encode_segment(&b, "..", 2);
    is_str(b.base, "%2E%2E", "dot-dot segment");
    cf_buf_reset(&b);
    cf_encode_segment(&b, "...", 3);
    is_str(b.base, "...", "three dots are a name");
    cf_buf_reset(&b);
    cf_encode_segment(&b, "\0\x01\xff\x7f\r\n", 6);
    is_str(b.base, "%00%01%FF%7F%0D%0A", "NUL, controls, 0xFF");
    cf_buf_reset(&b);
    cf_encode_query(&b, "..", 2);
    is_str(b.base, "..", "dots need no encoding in a query value");
    cf_buf_reset(&b);
    cf_encode_query(&b, "a b&c=d+e#f?g/h", 15);
    is_str(b.base, "a%20b%26c%3Dd%2Be%23f%3Fg%2Fh", "query value");
    cf_buf_reset(&b);
    cf_buf_appends(&b, "prefix:");
    cf_encode_query(&b, "x y", 3);
    is_str(b.base, "prefix:x%20y", "appends");
    cf_buf_free(&b);
}

static void test_expand(void)
{
    /* a value lands in one path segment */
    is_str(E("/users/{v}", "42"), "/users/42", "plain value");
    is_str(E("/users/{v}", ""), "#MISSING", "an empty value in the path is missing (it would address /users/)");
    is_str(E("/users?id={v}", ""), "/users?id=", "an empty value in the query is a value");
    is_str(E("/users/{v}", "../"), "#BAD_INPUT", "../ is refused in a path segment");
    is_str(E("/users/{v}", ".."), "#BAD_INPUT", ".. is refused");
    is_str(E("/users/{v}", "."), "#BAD_INPUT", ". is refused");
    is_str(E("/users/{v}/x", "../../admin"), "#BAD_INPUT", "../../admin is refused");
    is_str(E("/users/{v}", "%2F"), "/users/%252F", "%%2F is taken literally");
    is_str(E("/users/{v}", "a/b"), "#BAD_INPUT", "a/b is refused");
    is_str(E("/users/{v}", "?x=1"), "/users/%3Fx%3D1", "?x=1");
    is_str(E("/users/{v}", "#f"), "/users/%23f", "#f");
    is_str(E("/users/{v}", "\r\nHost: evil"), "/users/%0D%0AHost%3A%20evil", "CRLF injection");
    is_str(E("/users/{v}", "a b"), "/users/a%20b", "space");
    is_str(E("/users/{v}", "&admin=1"), "/users/%26admin%3D1", "&admin=1");
    is_str(expand1("/users/{v}", "a\0b", 3, 0, 0), "/users/a%00b", "NUL");
    is_str(E("/users/{v}", "caf\xc3\xa9"), "/users/caf%C3%A9", "UTF-8");
    is_str(E("/users/{v}", "\xff\xfe"), "/users/%FF%FE", "0xFF bytes");
    is_str(E("/users/{v}", "~user.name_1-2"), "/users/~user.name_1-2", "unreserved untouched");
    is_str(E("/.{v}", "."), "#BAD_INPUT", "a '.' value next to a literal dot is refused");
    is_str(E("/{v}{v}", "."), "#BAD_INPUT", "two adjacent '.' values are refused");
    is_str(E("/.{v}/x", ""), "#MISSING", "literal '.' + empty value: missing");
    is_str(E("/{v}.{v}?q", ""), "#MISSING", "'{name}.{ext}' with both empty: missing");
    is_str(E("/{v}.{v}?q=.", "a"), "/a.a?q=.", "'{name}.{ext}' with values: as is");
    is_str(E("/a/../b/{v}", "x"), "/a/../b/x", "the template's own literal dots are left as written");
    is_str(expand1("/.{rest}", "", 0, 1, 0), "#BAD_INPUT", "literal '.' + empty rest makes a dot segment: refused");
    is_str(expand1("/x/{rest}.", "a/", 2, 1, 0), "#BAD_INPUT", "empty tail of a rest + literal '.': refused");
    is_str(expand1("/x/%2E{rest}", "", 0, 1, 0), "#BAD_INPUT", "literal %%2E + empty rest: refused too");
    is_str(expand1("/x/..{rest}/y", "", 0, 1, 0), "#BAD_INPUT", "literal '..' + empty rest: refused");
    is_str(expand1("/x/.{rest}", "a", 1, 1, 0), "/x/.a", "literal '.' + a rest: a name");
    is_str(expand1("/x{rest}/y", "a/b", 3, 1, 0), "/xa/b/y", "rest joined to literal text");

    /* in the query */
    is_str(E("/o?user={v}&lang={query.lang}", "a&admin=1"), "/o?user=a%26admin%3D1&lang=a%26admin%3D1", "& and = in query");
    is_str(E("/o?user={v}", ".."), "/o?user=..", "dots are harmless in a query");
    is_str(E("/o?user={v}", "a+b c"), "/o?user=a%2Bb%20c", "+ and space");
    is_str(E("/o?user={v}", "x#y"), "/o?user=x%23y", "#");
    is_str(E("/o?user={v}", "a/b?c"), "/o?user=a%2Fb%3Fc", "/ and ? encoded too");
    is_str(E("/o?user={v}", ""), "/o?user=", "empty query value");

    /* other kinds */
    is_str(E("/x/{header.X-Tenant}", "t 1"), "/x/t%201", "header value");
    is_str(E("/recs/{profile.segment}", "gold-1"), "/recs/gold-1", "call field");
    is_str(E("/recs/{profile.segment}", "a/b"), "#BAD_INPUT", "call field with '/': refused");
    is_str(E("/u/{item}", "7"), "/u/7", "item");
    is_str(E("/u/{item.id}", "7?"), "/u/7%3F", "item field");

    /* {name*} values */
    is_str(expand1("/legacy/{rest}", "a/b/c", 5, 1, 0), "/legacy/a/b/c", "rest keeps '/'");
    is_str(expand1("/legacy/{rest}", "a b/\xc3\xa9/?#", 9, 1, 0), "/legacy/a%20b/%C3%A9/%3F%23", "rest segments encoded");
    is_str(expand1("/legacy/{rest}", "", 0, 1, 0), "/legacy/", "empty rest");
    is_str(expand1("/legacy/{rest}", "a/", 2, 1, 0), "/legacy/a/", "rest with a trailing slash");
    is_str(expand1("/legacy/{rest}", "...", 3, 1, 0), "/legacy/...", "rest: three dots");
    is_str(expand1("/legacy/{rest}", "%2E%2E", 6, 1, 0), "/legacy/%252E%252E", "rest: a literal %%2E stays literal");
    is_str(expand1("/legacy/{rest}", "..", 2, 1, 0), "#BAD_INPUT", "rest: ..");
    is_str(expand1("/legacy/{rest}", ".", 1, 1, 0), "#BAD_INPUT", "rest: .");
    is_str(expand1("/legacy/{rest}", "a/../b", 6, 1, 0), "#BAD_INPUT", "rest: a/../b");
    is_str(expand1("/legacy/{rest}", "a/./b", 5, 1, 0), "#BAD_INPUT", "rest: a/./b");
    is_str(expand1("/legacy/{rest}", "a/..", 4, 1, 0), "#BAD_INPUT", "rest: trailing ..");
    is_str(expand1("/legacy/{rest}", "/etc", 4, 1, 0), "#BAD_INPUT", "rest: leading '/'");
    is_str(expand1("/legacy/{rest}", "a//b", 4, 1, 0), "#BAD_INPUT", "rest: empty segment");
    is_str(EREST("/legacy/{rest}", "a\\b/c"), "#BAD_INPUT", "rest: a backslash");
    is_str(EREST("/legacy/{rest}", "a/..\\b"), "#BAD_INPUT", "rest: a backslash after dots");
    is_str(expand1("/legacy/{rest}", "a/../b", 6, 1, CF_TPL_KEEP_ENCODED_SLASH), "#BAD_INPUT", "rest: keep changes nothing");
    is_str(expand1("/legacy?p={rest}", "a/b", 3, 1, 0), "/legacy?p=a%2Fb", "rest in the query is a plain query value");
}

/* cf_segment_value_ok on every spelling; the values are decoded (what the upstream sees once it decodes). */
static void test_segment_rules(void)
{
    static const struct {
        const char *val;
        size_t len;
        int ok, ok_keep;
        const char *name;
    } cases[] = {
        {"..", 2, 0, 0, ".."},
        {".", 1, 0, 0, "."},
        {"..", 2, 0, 0, "%2e%2E decoded"},
        {".%2E", 4, 1, 1, ".%2E as bytes: not a dot segment (it is sent as .%252E)"},
        {"%2e%2E", 6, 1, 1, "%2e%2E as bytes (sent as %252e%252E, decodes once to a name)"},
        {"...", 3, 1, 1, "three dots: a name"},
        {".a", 2, 1, 1, ".a"},
        {"a.", 2, 1, 1, "a."},
        {".. ", 3, 1, 1, "'.. ': a name"},
        {"a/b", 3, 0, 1, "a/b"},
        {"/", 1, 0, 1, "/"},
        {"../", 3, 0, 0, "../ (..%2F decoded)"},
        {"../admin", 8, 0, 0, "../admin"},
        {"x/../../admin", 13, 0, 0, "x/../../admin"},
        {"a/..", 4, 0, 0, "a/.."},
        {"a/./b", 5, 0, 0, "a/./b"},
        {"..%2Fadmin", 10, 1, 1, "..%2Fadmin as bytes (sent as ..%252Fadmin)"},
        {"group/project", 13, 0, 1, "group/project"},
        {"/a", 2, 0, 1, "/a"},
        {"a//b", 4, 0, 1, "a//b"},
        {"a\\b", 3, 0, 0, "a\\b"},
        {"\\", 1, 0, 0, "\\"},
        {"..\\admin", 8, 0, 0, "..\\admin (..%5C decoded)"},
        {"", 0, 1, 1, "empty: passes here, the expansion calls it missing"},
        {"42", 2, 1, 1, "42"},
        {"a\0b", 3, 1, 1, "a NUL b (encoded as %00)"},
        {"caf\xc3\xa9", 5, 1, 1, "UTF-8 caf\xc3\xa9"},
        {"\xef\xbc\x8f", 3, 1, 1, "U+FF0F fullwidth solidus: not a separator (sent as %EF%BC%8F)"},
        {"\xe2\x88\x95", 3, 1, 1, "U+2215 division slash"},
        {"\xef\xbc\x8e\xef\xbc\x8e", 6, 1, 1, "U+FF0E U+FF0E fullwidth dots"},
        {"\xc0\xaf", 2, 1, 1, "overlong C0 AF: not UTF-8, sent as %C0%AF"},
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        is(cf_segment_value_ok(cases[i].val, cases[i].len, 0), cases[i].ok, "segment: %s", cases[i].name);
        is(cf_segment_value_ok(cases[i].val, cases[i].len, CF_TPL_KEEP_ENCODED_SLASH), cases[i].ok_keep, "  with keep: %s",
           cases[i].name);
    }
    /* no multi-byte UTF-8 sequence holds a '/' or '\\' byte: every byte of one is >= 0x80 */
    char utf8[4];
    int bad = 0;
    for (unsigned cp = 0x80; cp <= 0x10ffff; ++cp) {
        size_t n;
        if (cp >= 0xd800 && cp <= 0xdfff)
            continue;
        if (cp < 0x800) {
            utf8[0] = (char)(0xc0 | cp >> 6), utf8[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
        } else if (cp < 0x10000) {
            utf8[0] = (char)(0xe0 | cp >> 12), utf8[1] = (char)(0x80 | (cp >> 6 & 0x3f)), utf8[2] = (char)(0x80 | (cp & 0x3f)),
            n = 3;
        } else {
            utf8[0] = (char)(0xf0 | cp >> 18), utf8[1] = (char)(0x80 | (cp >> 12 & 0x3f)),
            utf8[2] = (char)(0x80 | (cp >> 6 & 0x3f)), utf8[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
        }
        bad += !cf_segment_value_ok(utf8, n, 0);
    }
    is(bad, 0, "every non-ASCII code point passes (and is percent-encoded byte by byte)");

    /* {name*} values */
    ok(cf_rest_value_ok("a/b/c", 5), "rest a/b/c");
    ok(cf_rest_value_ok("", 0), "rest empty");
    ok(cf_rest_value_ok("a/", 2), "rest a/ (trailing slash)");
    ok(cf_rest_value_ok("...", 3), "rest ...");
    ok(!cf_rest_value_ok("a\\b", 3), "rest a\\b");
    ok(!cf_rest_value_ok("a/../b", 6), "rest a/../b");
    ok(!cf_rest_value_ok(".", 1), "rest .");
    ok(!cf_rest_value_ok("a/.", 3), "rest a/.");
    ok(!cf_rest_value_ok("/a", 2), "rest /a");
    ok(!cf_rest_value_ok("a//b", 4), "rest a//b");
}

/* Where a value lands decides what is refused: path segment, query value, or (with keep) one segment holding %2F. */
static void test_placement(void)
{
    /* the attack: one segment that decodes to climb, with an upstream that decodes %2F and resolves dot segments */
    is_str(E("/users/{v}", "../admin"), "#BAD_INPUT", "path: ../admin");
    is_str(E("/users/{v}", "x/../../admin"), "#BAD_INPUT", "path: x/../../admin");
    is_str(E("/users/{v}", "..\\admin"), "#BAD_INPUT", "path: ..\\admin");
    is_str(E("/users/{v}.json", "a/b"), "#BAD_INPUT", "path: a value sharing its segment with a literal");
    is_str(E("/users/{v}", "..."), "/users/...", "path: three dots are a name");
    is_str(E("/users/{header.x-tenant}", "a/b"), "#BAD_INPUT", "path: a header value");
    is_str(E("/users/{query.lang}", ".."), "#BAD_INPUT", "path: a query parameter's value");
    is_str(E("/u/{item}", "a/b"), "#BAD_INPUT", "path: the foreach element");
    /* query values are not path-resolved: only encoded */
    is_str(E("/o?user={v}", "../admin"), "/o?user=..%2Fadmin", "query: ../admin is harmless");
    is_str(E("/o?user={v}", "a\\b"), "/o?user=a%5Cb", "query: a backslash is harmless");
    is_str(E("/o?user={v}", "."), "/o?user=.", "query: .");
    is_str(E("/o?p={profile.segment}", "a/b"), "/o?p=a%2Fb", "query: a call field with '/'");
    is_str(E("/a/{v}?q={query.lang}", "x"), "/a/x?q=x", "path and query together");
    /* encoded_slash: keep */
    is_str(EKEEP("/projects/{v}", "group/project"), "/projects/group%2Fproject", "keep: '/' sent as %%2F in one segment");
    is_str(EKEEP("/projects/{v}/issues", "a/b/c"), "/projects/a%2Fb%2Fc/issues", "keep: several");
    is_str(EKEEP("/projects/{v}", ".."), "#BAD_INPUT", "keep: .. still refused");
    is_str(EKEEP("/projects/{v}", "."), "#BAD_INPUT", "keep: . still refused");
    is_str(EKEEP("/projects/{v}", "../admin"), "#BAD_INPUT", "keep: a '..' piece still refused");
    is_str(EKEEP("/projects/{v}", "a/./b"), "#BAD_INPUT", "keep: a '.' piece still refused");
    is_str(EKEEP("/projects/{v}", "a\\b"), "#BAD_INPUT", "keep: '\\' still refused");
    is_str(EKEEP("/projects/{v}", ""), "#MISSING", "keep: empty is still missing");
    is_str(EKEEP("/p?x={v}", "a/../b"), "/p?x=a%2F..%2Fb", "keep: query values unchanged");
}

/* cf_template_check sees the values of the kinds asked for, in the path only, skipping missing and empty ones. */
static void test_check(void)
{
    cf_template_t t;
    char err[256], msg[256];
    struct values vs = {0};
    const cf_tpl_part_t *failed = NULL;

    is(cf_template_parse("/r/{id}/{profile.seg}/{header.x-t}?q={query.q}", &t, err, sizeof(err)), 0, "parse");
    set_value(&vs, "id", "7", 1);
    set_value(&vs, "profile.seg", "../admin", 8);
    set_value(&vs, "x-t", "t1", 2);
    set_value(&vs, "q", "../admin", 8);
    vs.calls = 0;
    is(cf_template_check(&t, CF_TPL_CLIENT_KINDS, 0, on_lookup, &vs, &failed), CF_TPL_OK,
       "a bad call field and a bad query value are not the client's path values");
    is(vs.calls, 2, "  looked up only id and header.x-t");
    vs.v[0].val = "a/b", vs.v[0].len = 3;
    is(cf_template_check(&t, CF_TPL_CLIENT_KINDS, 0, on_lookup, &vs, &failed), CF_TPL_BAD_INPUT, "id a/b: refused");
    ok(failed == t.parts + 1, "  failed names {id}");
    is_str(cf_template_refusal(failed, 0, msg, sizeof(msg)),
           "path parameter \"id\": a value that is \".\" or \"..\" or holds \"/\" or \"\\\" cannot fill a segment of the upstream "
           "path",
           "  the message names it");
    is(cf_template_check(&t, CF_TPL_CLIENT_KINDS, CF_TPL_KEEP_ENCODED_SLASH, on_lookup, &vs, &failed), CF_TPL_OK,
       "  allowed with keep");
    vs.v[0].val = "..", vs.v[0].len = 2;
    is(cf_template_check(&t, CF_TPL_CLIENT_KINDS, CF_TPL_KEEP_ENCODED_SLASH, on_lookup, &vs, &failed), CF_TPL_BAD_INPUT,
       "id ..: refused with keep too");
    is_str(
        cf_template_refusal(failed, CF_TPL_KEEP_ENCODED_SLASH, msg, sizeof(msg)),
        "path parameter \"id\": a value that holds \"\\\" or a \".\" or \"..\" segment cannot fill a segment of the upstream path",
        "  the message says what keep still refuses");
    vs.v[0].val = "", vs.v[0].len = 0;
    is(cf_template_check(&t, CF_TPL_CLIENT_KINDS, 0, on_lookup, &vs, &failed), CF_TPL_OK, "empty id: left to the expansion");
    vs.v[0].rc = CF_TPL_MISSING;
    is(cf_template_check(&t, CF_TPL_CLIENT_KINDS, 0, on_lookup, &vs, &failed), CF_TPL_OK, "missing id: left to the expansion");
    vs.v[0].rc = CF_TPL_BAD_INPUT;
    is(cf_template_check(&t, CF_TPL_CLIENT_KINDS, 0, on_lookup, &vs, &failed), CF_TPL_BAD_INPUT, "lookup's BAD_INPUT is passed on");
    vs.v[0].rc = CF_TPL_OK, vs.v[0].val = "7", vs.v[0].len = 1;
    vs.v[2].val = "t\\1", vs.v[2].len = 3;
    is(cf_template_check(&t, CF_TPL_CLIENT_KINDS, 0, on_lookup, &vs, &failed), CF_TPL_BAD_INPUT, "header with '\\': refused");
    is_str(cf_template_refusal(failed, 0, msg, sizeof(msg)),
           "header \"x-t\": a value that is \".\" or \"..\" or holds \"/\" or \"\\\" cannot fill a segment of the upstream path",
           "  named as a header");
    vs.v[2].val = "t1", vs.v[2].len = 2;
    is(cf_template_check(&t, 1u << CF_TPL_CALL, 0, on_lookup, &vs, &failed), CF_TPL_BAD_INPUT, "asked for calls: the call field");
    ok(failed == t.parts + 3, "  failed names {profile.seg}");
    cf_buf_t out = CF_BUF_INIT;
    is(cf_template_expand(&t, 0, on_lookup, &vs, &out, &failed), CF_TPL_BAD_INPUT, "the expansion refuses it too");
    ok(failed == t.parts + 3, "  on the same part");
    cf_buf_free(&out);
    cf_template_free(&t);

    is(cf_template_parse("/q/{query.id}?x", &t, err, sizeof(err)), 0, "parse a query value in the path");
    struct values qv = {0};
    set_value(&qv, "id", ".", 1);
    is(cf_template_check(&t, CF_TPL_CLIENT_KINDS, 0, on_lookup, &qv, &failed), CF_TPL_BAD_INPUT, "{query.id} = .: refused");
    is_str(cf_template_refusal(failed, 0, msg, sizeof(msg)),
           "query parameter \"id\": a value that is \".\" or \"..\" or holds \"/\" or \"\\\" cannot fill a segment of the upstream "
           "path",
           "  named as a query parameter");
    cf_template_free(&t);

    is(cf_template_parse("/files/{rest}", &t, err, sizeof(err)), 0, "parse a rest");
    t.parts[1].rest = 1;
    struct values rv = {0};
    set_value(&rv, "rest", "a/b\\c", 5);
    is(cf_template_check(&t, CF_TPL_CLIENT_KINDS, 0, on_lookup, &rv, &failed), CF_TPL_BAD_INPUT, "rest with '\\': refused");
    is_str(cf_template_refusal(failed, 0, msg, sizeof(msg)),
           "path parameter \"rest\": a value that holds \"\\\" or a \".\", \"..\" or empty segment cannot fill the upstream path",
           "  the rest message");
    rv.v[0].val = "a/b", rv.v[0].len = 3;
    is(cf_template_check(&t, CF_TPL_CLIENT_KINDS, 0, on_lookup, &rv, &failed), CF_TPL_OK, "rest a/b: fine");
    cf_template_free(&t);
}

static void test_expand_failures(void)
{
    cf_template_t t;
    char err[256];
    struct values vs = {0};
    cf_buf_t out = CF_BUF_INIT;
    const cf_tpl_part_t *failed = NULL;

    is(cf_template_parse("/u/{id}?lang={query.lang}&t={header.x-t}", &t, err, sizeof(err)), 0, "parse");
    set_value(&vs, "id", "7", 1);
    set_value(&vs, "x-t", "T", 1);
    cf_buf_appends(&out, "GET ");
    is(cf_template_expand(&t, 0, on_lookup, &vs, &out, &failed), CF_TPL_MISSING, "missing query parameter");
    ok(failed == t.parts + 3, "failed points at the query part");
    is_str(failed->text, "lang", "failed part is 'lang'");
    is(out.len, 4, "out is left as it was");
    is_str(out.base, "GET ", "out content as it was");

    set_value(&vs, "lang", "fr", 2);
    vs.calls = 0;
    is(cf_template_expand(&t, 0, on_lookup, &vs, &out, NULL), CF_TPL_OK, "all present (failed may be NULL)");
    is_str(out.base, "GET /u/7?lang=fr&t=T", "appended to what was there");
    is(vs.calls, 3, "lookup called once per placeholder");

    vs.v[0].rc = CF_TPL_BAD_INPUT;
    cf_buf_reset(&out);
    is(cf_template_expand(&t, 0, on_lookup, &vs, &out, &failed), CF_TPL_BAD_INPUT, "lookup's BAD_INPUT is passed on");
    ok(failed == t.parts + 1, "  on the id part");
    is(out.len, 0, "  nothing left in out");
    vs.v[0].rc = 42;
    is(cf_template_expand(&t, 0, on_lookup, &vs, &out, &failed), CF_TPL_MISSING, "another code counts as missing");
    cf_template_free(&t);

    /* the URL bound: a value that cannot fit is refused before it is encoded; one whose encoding goes past it after */
    {
        static char big[CF_TPL_MAX_URL + 1], spaces[CF_TPL_MAX_URL / 2];
        memset(big, 'a', sizeof(big));
        memset(spaces, ' ', sizeof(spaces)); /* each encoded as %20: three times as long */
        struct values bv = {0};
        set_value(&bv, "id", big, CF_TPL_MAX_URL - 30);
        set_value(&bv, "lang", "fr", 2);
        set_value(&bv, "x-t", "T", 1);
        is(cf_template_parse("/u/{id}?lang={query.lang}&t={header.x-t}", &t, err, sizeof(err)), 0, "parse");
        cf_buf_reset(&out);
        is(cf_template_expand(&t, 0, on_lookup, &bv, &out, &failed), CF_TPL_OK, "a URL just under %d bytes", CF_TPL_MAX_URL);
        bv.v[0].len = sizeof(big);
        cf_buf_reset(&out);
        is(cf_template_expand(&t, 0, on_lookup, &bv, &out, &failed), CF_TPL_BAD_INPUT, "a value longer than the bound: refused");
        is(out.len, 0, "  before anything is left in out");
        bv.v[0].val = spaces;
        bv.v[0].len = sizeof(spaces);
        cf_buf_reset(&out);
        is(cf_template_expand(&t, 0, on_lookup, &bv, &out, &failed), CF_TPL_BAD_INPUT, "a value that grows past it encoded");
        cf_template_free(&t);
    }

    /* a literal-only template needs no lookup */
    is(cf_template_parse("/health", &t, err, sizeof(err)), 0, "parse literal");
    cf_buf_reset(&out);
    is(cf_template_expand(&t, 0, NULL, NULL, &out, NULL), CF_TPL_OK, "expand without a callback");
    is_str(out.base, "/health", "literal copied");
    cf_template_free(&t);
    cf_buf_free(&out);
}

/* --- structure: no value can add a segment, a parameter, a fragment or a byte outside the allowed set --- */

static int count_of(const char *s, size_t len, char c)
{
    int n = 0;
    for (size_t i = 0; i != len; ++i)
        n += s[i] == c;
    return n;
}

/* The path-segment rule written out plainly, apart from the code under test: "." and "..", and any '/' or '\\'. */
static int refused_in_segment(const char *val, size_t len)
{
    if ((len == 1 && val[0] == '.') || (len == 2 && val[0] == '.' && val[1] == '.'))
        return 1;
    for (size_t i = 0; i != len; ++i)
        if (val[i] == '/' || val[i] == '\\')
            return 1;
    return 0;
}

/*
 * Checks the expansion of `src` (every placeholder = val) against the template's literals: refused (BAD_INPUT) exactly
 * when a value fills a path segment and the rule refuses it; else the same count of each structural byte, every '%'
 * a valid escape, only unreserved bytes otherwise, no dot segment, no %2F or %5C in the path. Returns 1 when all hold.
 */
static int structure_holds(const char *src, const char *val, size_t len, char *why, size_t whylen)
{
    cf_template_t t;
    char err[256];
    if (cf_template_parse(src, &t, err, sizeof(err)) != 0) {
        snprintf(why, whylen, "parse: %s", err);
        return 0;
    }
    struct values vs = {0};
    const char *keys[] = {"v", "w", "lang", "x-tenant", "item.id"};
    for (size_t i = 0; i != 5; ++i)
        set_value(&vs, keys[i], val, len);
    cf_buf_t out = CF_BUF_INIT;
    int rc = cf_template_expand(&t, 0, on_lookup, &vs, &out, NULL), good = 1;
    const char *o = out.len ? out.base : "";
    size_t srclen = strlen(src);
    if (rc == CF_TPL_MISSING && len == 0)
        goto Done; /* an empty value in the path is refused: no URL at all, so nothing can change */
    size_t qmark = strcspn(src, "?");
    int refused = memchr(src, '{', qmark) != NULL && refused_in_segment(val, len);
    if (refused != (rc == CF_TPL_BAD_INPUT)) {
        snprintf(why, whylen, "rc %d but the value is %s in the path", rc, refused ? "refused" : "allowed");
        good = 0;
        goto Done;
    }
    if (refused)
        goto Done; /* no URL at all, so nothing can change */
    if (rc != CF_TPL_OK) {
        snprintf(why, whylen, "rc %d", rc);
        good = 0;
        goto Done;
    }
    static const char structural[] = "/?&=#;+, ";
    for (const char *c = structural; *c != '\0'; ++c) {
        if (count_of(o, out.len, *c) != count_of(src, srclen, *c)) {
            snprintf(why, whylen, "count of '%c' changed: %s", *c, o);
            good = 0;
            goto Done;
        }
    }
    for (size_t i = 0; i != out.len; ++i) {
        unsigned char c = (unsigned char)o[i];
        if (c == '%') {
            if (cf_pct_byte(o, out.len, i) < 0) {
                snprintf(why, whylen, "bad escape at %zu: %s", i, o);
                good = 0;
                goto Done;
            }
        } else if (!is_literal_byte(c)) {
            snprintf(why, whylen, "byte 0x%02x at %zu: %s", c, i, o);
            good = 0;
            goto Done;
        }
    }
    /* no dot segment in the path part */
    size_t pathlen = strcspn(o, "?");
    for (size_t i = 0; i < pathlen; ++i) {
        if (o[i] != '/')
            continue;
        size_t seglen = strcspn(o + i + 1, "/?");
        if ((seglen == 1 && o[i + 1] == '.') || (seglen == 2 && o[i + 1] == '.' && o[i + 2] == '.')) {
            snprintf(why, whylen, "dot segment at %zu: %s", i, o);
            good = 0;
            goto Done;
        }
    }
    /* no '/' or '\\' inside a path segment, even encoded (the templates here spell none) */
    for (size_t i = 0; i + 2 < pathlen; ++i) {
        if (o[i] == '%' && ((o[i + 1] == '2' && (o[i + 2] | 0x20) == 'f') || (o[i + 1] == '5' && (o[i + 2] | 0x20) == 'c'))) {
            snprintf(why, whylen, "encoded separator at %zu: %s", i, o);
            good = 0;
            goto Done;
        }
    }
Done:
    cf_buf_free(&out);
    cf_template_free(&t);
    return good;
}

/* Decodes what cf_encode_segment / cf_encode_query produced and compares it with the input. */
static int round_trips(const char *val, size_t len, int query)
{
    cf_buf_t b = CF_BUF_INIT;
    if (query)
        cf_encode_query(&b, val, len);
    else
        cf_encode_segment(&b, val, len);
    char *dec = malloc(b.len + 1);
    size_t n = 0;
    for (size_t i = 0; i < b.len; ++i) {
        if (b.base[i] == '%') {
            char hex[3] = {b.base[i + 1], b.base[i + 2], 0};
            dec[n++] = (char)strtoul(hex, NULL, 16);
            i += 2;
        } else {
            dec[n++] = b.base[i];
        }
    }
    int same = n == len && memcmp(dec, val, len) == 0;
    free(dec);
    cf_buf_free(&b);
    return same;
}

static uint32_t rng_state = 4242;
static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return (rng_state >> 8) % n;
}

static void test_structure(void)
{
    static const char *templates[] = {
        "/users/{v}",
        "/users/{v}/orders",
        "/a/{v}{w}/b",
        "/.{v}/x",
        "/o?user={v}",
        "/o?user={v}&lang={query.lang}",
        "/r/{v}?a={w}&b={header.x-tenant}#",
        "/u/{item.id}?q={item.id}",
    };
    static const struct {
        const char *val;
        size_t len;
    } hostile[] = {
        {"../", 3},      {"..", 2},          {".", 1},      {"%2F", 3},
        {"a/b", 3},      {"?x=1", 4},        {"#f", 2},     {"\r\nHost: evil", 12},
        {"a b", 3},      {"&admin=1", 8},    {"\0", 1},     {"a\0b", 3},
        {"\xc3\xa9", 2}, {"\xff\xff", 2},    {"", 0},       {"%", 1},
        {"%%", 2},       {"+", 1},           {";a=b", 4},   {",", 1},
        {"/", 1},        {"//evil.com", 10}, {"\\..\\", 4}, {"..;/", 4},
        {"%2e%2e", 6},   {"\t", 1},          {"@host", 5},  {"http://x/", 9},
        {"{v}", 3},      {"\x7f", 1},
    };
    size_t nt = sizeof(templates) / sizeof(templates[0]); /* [6] has a '#': checked below as a parse error */
    int bad = 0, checked = 0;
    char why[512];
    for (size_t i = 0; i != nt; ++i) {
        if (i == 6)
            continue;
        for (size_t j = 0; j != sizeof(hostile) / sizeof(hostile[0]); ++j) {
            ++checked;
            if (!structure_holds(templates[i], hostile[j].val, hostile[j].len, why, sizeof(why)) && bad++ < 10)
                diag("%s with value #%zu: %s", templates[i], j, why);
        }
    }
    is(bad, 0, "%d hostile values x templates keep the URL's structure", checked);
    ok(!structure_holds(templates[6], "x", 1, why, sizeof(why)), "(a template with '#' does not even parse)");

    /* random bytes */
    char val[64];
    bad = 0;
    for (int n = 0; n < 20000; ++n) {
        size_t len = rnd(sizeof(val));
        for (size_t k = 0; k != len; ++k)
            val[k] = rnd(4) == 0 ? "./%?#&=\r\n \0"[rnd(11)] : (char)rnd(256);
        const char *tpl = templates[rnd(6) == 0 ? 7 : rnd(6)];
        if (!structure_holds(tpl, val, len, why, sizeof(why)) && bad++ < 10)
            diag("%s with random value: %s", tpl, why);
        if ((!round_trips(val, len, 0) && !(len <= 2 && strspn(val, ".") == len)) || !round_trips(val, len, 1)) {
            if (bad++ < 10)
                diag("value of %zu bytes does not decode back", len);
        }
    }
    is(bad, 0, "20000 random values: structure kept, and the encoding decodes back to the value");
    ok(round_trips("..", 2, 0) && round_trips(".", 1, 0), "even %%2E%%2E decodes back to ..");
}

/* --- {items}: a list of values, each encoded for where it lands, joined with ',' --- */

struct list {
    const char *const *vals; /* NULL entry: a value that is missing (an object element) */
    size_t n, next;
};

static int on_list(void *ctx, const cf_tpl_part_t *part, const char **val, size_t *len)
{
    struct list *l = ctx;
    if (part->kind != CF_TPL_ITEMS)
        return CF_TPL_MISSING;
    if (l->next == l->n)
        return CF_TPL_END;
    const char *v = l->vals[l->next++];
    if (v == NULL)
        return CF_TPL_MISSING;
    *val = v;
    *len = strlen(v);
    return CF_TPL_OK;
}

static const char *expand_items(const char *src, const char *const *vals, size_t n)
{
    static char expanded[1024];
    cf_template_t t;
    char err[256];
    if (cf_template_parse(src, &t, err, sizeof(err)) != 0) {
        snprintf(expanded, sizeof(expanded), "#PARSE %s", err);
        return expanded;
    }
    struct list l = {vals, n, 0};
    cf_buf_t out = CF_BUF_INIT;
    int rc = cf_template_expand(&t, 0, on_list, &l, &out, NULL);
    if (rc == CF_TPL_OK)
        snprintf(expanded, sizeof(expanded), "%s", out.base);
    else
        snprintf(expanded, sizeof(expanded), "%s", rc == CF_TPL_MISSING ? "#MISSING" : "#BAD_INPUT");
    cf_buf_free(&out);
    cf_template_free(&t);
    return expanded;
}

static void test_items(void)
{
    parses_as("/users?ids={items}", "LITERAL:/users?ids= ITEMS:items?");
    parses_as("/users/{items}", "LITERAL:/users/ ITEMS:items");
    const char *const nums[] = {"1", "0.92", "3"};
    is_str(expand_items("/users?ids={items}", nums, 3), "/users?ids=1,0.92,3", "query: joined with ','");
    const char *const odd[] = {"a,b", "x y", "a/b", "&c=d"};
    is_str(expand_items("/users?ids={items}", odd, 4), "/users?ids=a%2Cb,x%20y,a%2Fb,%26c%3Dd",
           "query: each value encoded, its own ',' too");
    is_str(expand_items("/users/{items}", nums, 3), "/users/1,0.92,3", "path: joined with ','");
    is_str(expand_items("/users/{items}", odd, 4), "#BAD_INPUT", "path: a '/' in one value is refused as in {item}");
    const char *const dots[] = {"1", ".."};
    is_str(expand_items("/users/{items}", dots, 2), "#BAD_INPUT", "path: a dot segment value is refused");
    is_str(expand_items("/users?ids={items}", nums, 0), "#MISSING", "an empty list is missing");
    const char *const holes[] = {"1", NULL};
    is_str(expand_items("/users?ids={items}", holes, 2), "#MISSING", "a missing value in the list");
    const char *const empty[] = {"1", ""};
    is_str(expand_items("/users?ids={items}", empty, 2), "#MISSING", "an empty value in the list");
}

int main(void)
{
    test_items();
    test_parse();
    test_encoders();
    test_expand();
    test_segment_rules();
    test_placement();
    test_check();
    test_expand_failures();
    test_structure();
    return done_testing();
}
