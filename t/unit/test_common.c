/* Unit tests of common/: units, host:port parsing, buffers and number writers, SHA-256, YAML loading, table-driven
 * decoding and defaults. */
#include <pthread.h>
#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "cf_buf.h"
#include "cf_net.h"
#include "cf_sha256.h"
#include "cf_units.h"
#include "cf_yaml.h"
#include "tap.h"

static void test_units(void)
{
    uint64_t v = 1;
    ok(cf_parse_duration("250ms", &v) == 0 && v == 250, "250ms");
    ok(cf_parse_duration("2s", &v) == 0 && v == 2000, "2s");
    ok(cf_parse_duration("1m", &v) == 0 && v == 60000, "1m");
    ok(cf_parse_duration("1h", &v) == 0 && v == 3600000, "1h");
    ok(cf_parse_duration("0", &v) == 0 && v == 0, "0 is a duration");
    ok(cf_parse_duration("5", &v) != 0, "a bare number is not a duration");
    ok(cf_parse_duration("5 sec", &v) != 0, "\"5 sec\" is not a duration");
    ok(cf_parse_duration("-1s", &v) != 0, "negative is not a duration");
    ok(cf_parse_duration("s", &v) != 0, "a unit alone is not a duration");
    ok(cf_parse_duration("99999999999999999999ms", &v) != 0, "overflow is refused");
    ok(cf_parse_duration("18446744073709552s", &v) != 0, "overflow in scaling is refused");
    ok(cf_parse_size("512KiB", &v) == 0 && v == 512 * 1024, "512KiB");
    ok(cf_parse_size("64MiB", &v) == 0 && v == 64 * 1024 * 1024, "64MiB");
    ok(cf_parse_size("1GiB", &v) == 0 && v == 1024ull * 1024 * 1024, "1GiB");
    ok(cf_parse_size("1000", &v) == 0 && v == 1000, "plain byte count");
    ok(cf_parse_size("1MB", &v) == 0 && v == 1000000, "1MB is decimal");
    ok(cf_parse_size("1 MiB", &v) != 0, "space before the unit is refused");
    ok(cf_parse_size("1TiB", &v) != 0, "unknown unit is refused");
    char buf[32];
    is_str(cf_format_duration(1500, buf, sizeof(buf)), "1500ms", "format 1500ms");
    is_str(cf_format_duration(2000, buf, sizeof(buf)), "2s", "format 2s");
    is_str(cf_format_duration(120000, buf, sizeof(buf)), "2m", "format 2m");
    is_str(cf_format_duration(0, buf, sizeof(buf)), "0ms", "format 0");
}

static void test_fractions(void)
{
    static const struct {
        const char *s;
        double v;
    } good[] = {{"0", 0},        {"1", 1},   {"0.25", 0.25}, {".5", 0.5}, {"+0.5", 0.5},
                {"5e-3", 0.005}, {"1E0", 1}, {"1e-400", 0},  {"1.0", 1}};
    for (size_t i = 0; i != sizeof(good) / sizeof(good[0]); ++i) {
        double v = -1;
        ok(cf_parse_fraction(good[i].s, &v) == 0 && v == good[i].v, "fraction \"%s\" is %g (got %g)", good[i].s, good[i].v, v);
    }
    static const char *const bad[] = {"",     "1.5",  "-0.5", "2", "0x1p-1", "0X0.8", "nan",  "inf", "infinity", " 0.5",
                                      "0.5 ", "0.5x", "e5",   ".", "1e400",  "-0",    "0.5e", "--1", "1e+-1",    NULL};
    for (size_t i = 0; bad[i] != NULL; ++i) {
        double v = 42;
        ok(cf_parse_fraction(bad[i], &v) == -1 && v == 42, "not a fraction: \"%s\"", bad[i]);
    }
}

static void test_hostport(void)
{
    char *host;
    uint16_t port = 0;
    ok(cf_parse_hostport("127.0.0.1:9901", &host, &port) == 0 && port == 9901, "ipv4:port");
    is_str(host, "127.0.0.1", "ipv4 host");
    free(host);
    ok(cf_parse_hostport("[::1]:80", &host, &port) == 0 && port == 80, "[v6]:port");
    is_str(host, "::1", "v6 host without brackets");
    free(host);
    ok(cf_parse_hostport(":8080", &host, &port) == 0 && port == 8080 && host == NULL, ":port has no host");
    ok(cf_parse_hostport("8080", &host, &port) == 0 && port == 8080 && host == NULL, "bare port");
    ok(cf_parse_hostport("host:99999", &host, &port) != 0, "port out of range");
    ok(cf_parse_hostport("host:", &host, &port) != 0, "missing port");
    ok(cf_parse_hostport("host:12x", &host, &port) != 0, "junk after the port");
    ok(cf_parse_hostport("[::1]80", &host, &port) != 0, "v6 without colon");
}

static void test_buf(void)
{
    cf_buf_t b = CF_BUF_INIT;
    for (int i = 0; i < 1000; ++i)
        cf_buf_appendf(&b, "%d,", i);
    ok(b.len == strlen(b.base), "length matches the NUL-terminated text");
    ok(strncmp(b.base, "0,1,2,", 6) == 0 && strcmp(b.base + b.len - 4, "999,") == 0, "appendf grows the buffer");
    /* texts that fit the spare room, fill it exactly, or overflow it by one, from every starting length */
    int exact = 1;
    for (size_t start = 0; start < 140; ++start) {
        for (size_t w = 1; w < 70; w += 17) {
            cf_buf_t c = CF_BUF_INIT;
            char want[256];
            memset(want, 'p', start);
            cf_buf_append(&c, want, start);
            snprintf(want + start, sizeof(want) - start, "%0*d|", (int)w, 7);
            cf_buf_appendf(&c, "%0*d|", (int)w, 7);
            exact &= c.len == strlen(want) && strcmp(c.base, want) == 0 && c.len < c.cap;
            cf_buf_free(&c);
        }
    }
    ok(exact, "appendf writes the same text whether it fits the spare room or not");
    cf_buf_reset(&b);
    is(b.len, 0, "reset empties");
    cf_buf_appends(&b, "x");
    cf_buf_appendc(&b, 'y');
    is_str(b.base, "xy", "appends and appendc");
    cf_buf_free(&b);
}

struct st_sample_t {
    uint64_t timeout, size, count;
    int flag, mode;
    char *name;
    cf_strlist_t list;
    int custom_seen;
};

static int decode_custom(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    struct st_sample_t *s = object;
    if (cf_yscalar(node) == NULL || strcmp(cf_yscalar(node), "magic") != 0)
        return cf_yerror(ctx, node, "must be magic");
    s->custom_seen = 1;
    return 0;
}

static const char *const modes[] = {"group", "merge", NULL};
static const cf_yfield_t sample_table[] = {
    {"timeout", CF_YT_DURATION, offsetof(struct st_sample_t, timeout), 1, 60000},
    {"size", CF_YT_SIZE, offsetof(struct st_sample_t, size)},
    {"count", CF_YT_UINT, offsetof(struct st_sample_t, count), 1, 100},
    {"flag", CF_YT_BOOL, offsetof(struct st_sample_t, flag)},
    {"mode", CF_YT_ENUM, offsetof(struct st_sample_t, mode), 0, 0, modes},
    {"name", CF_YT_STRING, offsetof(struct st_sample_t, name)},
    {"list", CF_YT_STRLIST, offsetof(struct st_sample_t, list)},
    {"custom", CF_YT_CUSTOM, 0, 0, 0, NULL, decode_custom},
    {"cache", CF_YT_UNSUPPORTED, 0, 0, 0, NULL, NULL, "caching is a later issue"},
    {NULL},
};

/* Decodes `yaml` (a mapping under key "top") and returns the error text, or "" on success. */
static const char *decode(const char *yaml, struct st_sample_t *s, uint64_t *seen)
{
    static char err[1024];
    cf_yaml_t y;
    cf_yctx_t ctx;
    memset(s, 0, sizeof(*s));
    if (cf_yaml_load_string(&y, "t.yaml", yaml, strlen(yaml), err, sizeof(err)) != 0)
        return err;
    cf_yctx_init(&ctx, &y);
    size_t mark = cf_ypath_key(&ctx, "top");
    int ret = cf_ydecode(&ctx, cf_ymap_get(&y, cf_yaml_root(&y), "top"), sample_table, s, seen);
    cf_ypath_restore(&ctx, mark);
    strcpy(err, ret == 0 ? "" : ctx.err);
    cf_yaml_dispose(&y);
    return err;
}

static void sample_free(struct st_sample_t *s)
{
    free(s->name);
    cf_strlist_free(&s->list);
}

static void test_yaml(void)
{
    struct st_sample_t s;
    uint64_t seen = 0;
    is_str(decode("top:\n  timeout: 500ms\n  size: 1KiB\n  count: 7\n  flag: true\n  mode: merge\n  name: hi\n"
                  "  list: [a, b]\n  custom: magic\n",
                  &s, &seen),
           "", "a full mapping decodes");
    ok(s.timeout == 500 && s.size == 1024 && s.count == 7 && s.flag == 1 && s.mode == 1, "scalar fields");
    is_str(s.name, "hi", "string field");
    ok(s.list.n == 2 && strcmp(s.list.items[1], "b") == 0, "list field");
    ok(s.custom_seen, "custom decoder ran");
    is(seen, 0xff, "seen has a bit per present key");
    sample_free(&s);

    is_str(decode("top:\n  timeout: 5 sec\n", &s, NULL),
           "t.yaml:2:12: top.timeout: \"5 sec\" is not a duration (use 500ms, 2s, 1m)",
           "bad duration names file:line:col and the key path");
    is_str(decode("top:\n  timout: 5s\n", &s, NULL), "t.yaml:2:3: top: unknown key \"timout\" (did you mean \"timeout\"?)",
           "unknown key with a suggestion");
    is_str(decode("top:\n  zzzzzzzz: 5s\n", &s, NULL), "t.yaml:2:3: top: unknown key \"zzzzzzzz\"",
           "unknown key without a suggestion");
    is_str(decode("top:\n  count: 1\n  count: 2\n", &s, NULL), "t.yaml:3:3: top.count: duplicate key", "duplicate key");
    is_str(decode("top:\n  count: 101\n", &s, NULL), "t.yaml:2:10: top.count: 101 is out of range (1 to 100)", "uint range");
    is_str(decode("top:\n  timeout: 2m\n", &s, NULL), "t.yaml:2:12: top.timeout: \"2m\" is out of range", "duration range");
    is_str(decode("top:\n  flag: yes\n", &s, NULL), "t.yaml:2:9: top.flag: \"yes\" is not a boolean (use true or false)", "bool");
    is_str(decode("top:\n  mode: both\n", &s, NULL), "t.yaml:2:9: top.mode: \"both\" is not one of: group, merge", "enum");
    is_str(decode("top:\n  cache: 30s\n", &s, NULL), "t.yaml:2:10: top.cache: not supported yet (caching is a later issue)",
           "unsupported key");
    is_str(decode("top:\n  custom: plain\n", &s, NULL), "t.yaml:2:11: top.custom: must be magic", "custom error");
    is_str(decode("top:\n  list: [a, {x: 1}]\n", &s, NULL), "t.yaml:2:13: top.list[1]: expected a string, not a mapping",
           "list item error has its index");
    sample_free(&s);
    is_str(decode("top:\n  name:\n", &s, NULL), "t.yaml:2:8: top.name: expected a string, got nothing", "empty value");
    is_str(decode("top: [1, 2]\n", &s, NULL), "t.yaml:1:6: top: expected a mapping (key: value)", "not a mapping");
    /* seen while writing fuzz_config, which now checks it: a quoted value kept its line breaks in a message */
    is_str(decode("top:\n  timeout: \"5\\nsec\\r\\x1b[2J\\t\"\n  \"ke\\ny\": 1\n", &s, NULL),
           "t.yaml:2:12: top.timeout: \"5\\nsec\\r\\x1b[2J\\t\" is not a duration (use 500ms, 2s, 1m)",
           "control bytes of a value escaped: one line, no terminal escape");
    is_str(decode("top:\n  \"ke\\ny\": 1\n", &s, NULL), "t.yaml:2:3: top: unknown key \"ke\\ny\"", "and of a key");
    is_str(decode("top:\n  a: [1, 2\n", &s, NULL),
           "t.yaml:3:1: invalid YAML: did not find expected ',' or ']' while parsing a flow sequence",
           "syntax error has a position");
}

/* Decodes `yaml` (a mapping under key "top", or no "top" at all) after `table`, then merges its defaults: "" or the error. */
static const char *decode_merge(const char *yaml, const cf_yfield_t *table, struct st_sample_t *s)
{
    static char err[1024];
    cf_yaml_t y;
    cf_yctx_t ctx;
    uint64_t seen = 0;
    memset(s, 0, sizeof(*s));
    if (cf_yaml_load_string(&y, "t.yaml", yaml, strlen(yaml), err, sizeof(err)) != 0)
        return err;
    cf_yctx_init(&ctx, &y);
    size_t mark = cf_ypath_key(&ctx, "top");
    yaml_node_t *top = cf_ymap_get(&y, cf_yaml_root(&y), "top");
    int ret = (top == NULL || cf_ydecode(&ctx, top, table, s, &seen) == 0) ? cf_ydefaults(&ctx, table, s, seen) : -1;
    cf_ypath_restore(&ctx, mark);
    strcpy(err, ret == 0 ? "" : ctx.err);
    cf_yaml_dispose(&y);
    return err;
}

static const cf_yfield_t defaults_table[] = {
    {.key = "timeout",
     .type = CF_YT_DURATION,
     .offset = offsetof(struct st_sample_t, timeout),
     .min = 1,
     .max = 60000,
     .def = "5s"},
    {.key = "size", .type = CF_YT_SIZE, .offset = offsetof(struct st_sample_t, size), .def = "1MiB"},
    {.key = "count", .type = CF_YT_UINT, .offset = offsetof(struct st_sample_t, count), .min = 1, .max = 100, .def = "7"},
    {.key = "flag", .type = CF_YT_BOOL, .offset = offsetof(struct st_sample_t, flag), .def = "true"},
    {.key = "mode", .type = CF_YT_ENUM, .offset = offsetof(struct st_sample_t, mode), .names = modes, .def = "merge"},
    {.key = "name", .type = CF_YT_STRING, .offset = offsetof(struct st_sample_t, name), .def = "anon"},
    {.key = "list", .type = CF_YT_STRLIST, .offset = offsetof(struct st_sample_t, list)},
    {NULL},
};

static void test_defaults(void)
{
    struct st_sample_t s;
    is_str(decode_merge("other: 1\n", defaults_table, &s), "", "a level absent from the file gets every default");
    ok(s.timeout == 5000 && s.size == 1 << 20 && s.count == 7 && s.flag == 1 && s.mode == 1, "defaults parsed as values");
    is_str(s.name, "anon", "string default");
    is(s.list.n, 0, "no default: left alone");
    sample_free(&s);

    is_str(decode_merge("top:\n  timeout: 500ms\n  flag: false\n  mode: group\n  name: x\n", defaults_table, &s), "",
           "a level with some keys");
    ok(s.timeout == 500 && s.flag == 0 && s.mode == 0, "what the file says stays, false and the first enum value too");
    is_str(s.name, "x", "a string from the file stays");
    ok(s.size == 1 << 20 && s.count == 7, "what it leaves out gets its default");
    sample_free(&s);

    static const cf_yfield_t bad_value[] = {{.key = "t", .type = CF_YT_DURATION, .def = "5 sec"}, {NULL}};
    static const cf_yfield_t out_of_range[] = {{.key = "n", .type = CF_YT_UINT, .min = 1, .max = 100, .def = "101"}, {NULL}};
    static const cf_yfield_t bad_enum[] = {{.key = "m", .type = CF_YT_ENUM, .names = modes, .def = "both"}, {NULL}};
    static const cf_yfield_t on_custom[] = {{.key = "c", .type = CF_YT_CUSTOM, .custom = decode_custom, .def = "magic"}, {NULL}};
    is_str(decode_merge("top: {}\n", bad_value, &s),
           "t.yaml: top: internal error: the default of t, \"5 sec\", is not one of its values",
           "a default that is not a value of its type is a bug, said so");
    is_str(decode_merge("top: {}\n", out_of_range, &s),
           "t.yaml: top: internal error: the default of n, \"101\", is not one of its values",
           "a default out of the field's bounds too");
    ok(*decode_merge("top: {}\n", bad_enum, &s) != '\0', "an enum default that is not one of its names too");
    ok(*decode_merge("top: {}\n", on_custom, &s) != '\0', "a custom key takes no table default (its level's merge sets it)");
    is_str(decode_merge("top: {c: magic}\n", on_custom, &s), "", "but a key present in the file needs none");
}

static void test_numbers(void)
{
    /* decimal writers against printf, at the edges and over random values */
    int64_t edges[] = {0, 1, -1, 9, 10, -10, 99, 100, INT64_MAX, INT64_MIN, INT64_MIN + 1, 1000000007, -999999999999};
    int same = 1;
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]) + 20000; ++i) {
        int64_t v = i < sizeof(edges) / sizeof(edges[0])
                        ? edges[i]
                        : (int64_t)(((uint64_t)rand() << 42) ^ ((uint64_t)rand() << 21) ^ (uint64_t)rand()) >> (rand() % 64);
        char want[64], got[CF_I64_MAX_LEN];
        snprintf(want, sizeof(want), "%" PRId64, v);
        same &= cf_fmt_i64(got, v) == strlen(want) && strcmp(got, want) == 0;
        cf_buf_t b = CF_BUF_INIT;
        cf_buf_append_i64(&b, v);
        cf_buf_appendc(&b, ' ');
        cf_buf_append_u64(&b, (uint64_t)v);
        snprintf(want, sizeof(want), "%" PRId64 " %" PRIu64, v, (uint64_t)v);
        same &= strcmp(b.base, want) == 0;
        cf_buf_free(&b);
    }
    ok(same, "integers written as printf writes them, INT64_MIN and UINT64_MAX included");

    cf_buf_t b = CF_BUF_INIT;
    cf_buf_append_fixed(&b, 12345, 1);
    cf_buf_appendc(&b, ' ');
    cf_buf_append_fixed(&b, 5, 3);
    cf_buf_appendc(&b, ' ');
    cf_buf_append_fixed(&b, 0, 1);
    cf_buf_appendc(&b, ' ');
    cf_buf_append_fixed(&b, 42, 0);
    cf_buf_appendc(&b, ' ');
    cf_buf_append_fixed(&b, UINT64_MAX, 9);
    is_str(b.base, "1234.5 0.005 0.0 42 18446744073.709551615", "fixed-point: the digits after the point always there");
    cf_buf_free(&b);
}

static void sha256_hex(const char *text, size_t n, char hex[CF_SHA256_LEN * 2 + 1])
{
    unsigned char d[CF_SHA256_LEN];
    cf_sha256(text, n, d);
    for (size_t i = 0; i != CF_SHA256_LEN; ++i)
        sprintf(hex + i * 2, "%02x", d[i]);
}

static void *sha256_thread(void *arg)
{
    char hex[CF_SHA256_LEN * 2 + 1];
    int *same = arg;
    for (int i = 0; i < 1000; ++i) {
        sha256_hex("abc", 3, hex);
        *same &= strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0;
    }
    return NULL;
}

static void test_sha256(void)
{
    char hex[CF_SHA256_LEN * 2 + 1];
    /* the test vectors of FIPS 180-2 */
    sha256_hex("abc", 3, hex);
    is_str(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "SHA-256 of abc");
    sha256_hex("", 0, hex);
    is_str(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "of the empty text");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_hex(two, strlen(two), hex);
    is_str(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", "of a two-block text");
    /* each thread has a context of its own: hashing at once from several gives the same digests */
    int same[3] = {1, 1, 1};
    pthread_t th[3];
    for (int i = 0; i < 3; ++i)
        pthread_create(&th[i], NULL, sha256_thread, &same[i]);
    for (int i = 0; i < 3; ++i)
        pthread_join(th[i], NULL);
    ok(same[0] && same[1] && same[2], "three threads hashing at once get the right digest every time");
}

int main(void)
{
    test_units();
    test_fractions();
    test_hostport();
    test_buf();
    test_sha256();
    test_numbers();
    test_yaml();
    test_defaults();
    return done_testing();
}
