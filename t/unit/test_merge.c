/* Unit tests of gateway/merge.c: shaping, group and merge answers, failure statuses and bodies. */
#include <stdlib.h>
#include "tap.h"
#include "../../gateway/reason.c"
#include "../../gateway/merge.c"

#define STRS(...) ((char *[]){__VA_ARGS__})
#define LIST(...) ((cf_strlist_t){STRS(__VA_ARGS__), sizeof(STRS(__VA_ARGS__)) / sizeof(char *)})

/* A call with nothing but a name (shaping fields empty); the rest is filled in by each test. */
static cf_call_t make_call(const char *name)
{
    cf_call_t c;
    memset(&c, 0, sizeof(c));
    c.name = (char *)name;
    return c;
}

static json_t *parse(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (j == NULL) {
        diag("bad JSON in the test itself: %s: %s", text, err.text);
        fflush(stdout);
        abort();
    }
    return j;
}

/* Compares a document with the expected JSON text: equal as JSON, and (when `ordered`) dumped identically too. */
static void is_json_(json_t *got, const char *expected, int ordered, const char *name)
{
    json_t *want = parse(expected);
    int same = got != NULL && json_equal(got, want);
    char *g = got != NULL ? json_dumps(got, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    char *w = json_dumps(want, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_ENCODE_ANY);
    if (same && ordered)
        same = strcmp(g, w) == 0;
    if (!ok(same, "%s", name))
        printf("#          got: %s\n#     expected: %s\n", g != NULL ? g : "(NULL)", w);
    free(g);
    free(w);
    json_decref(want);
}
#define is_json(got, expected, name) is_json_((got), (expected), 0, (name))
#define is_json_ordered(got, expected, name) is_json_((got), (expected), 1, (name))

/*
 * Reads every node of a document from instrumented code, so that ASan reports one freed behind our back (jansson
 * itself is not instrumented), and checks that each holds a reference. Returns the number of bad nodes.
 */
static int touch_all(json_t *j)
{
    int bad = j->refcount == 0;
    if (json_is_object(j)) {
        for (void *it = json_object_iter(j); it != NULL; it = json_object_iter_next(j, it))
            bad += touch_all(json_object_iter_value(it));
    } else if (json_is_array(j)) {
        for (size_t i = 0; i != json_array_size(j); ++i)
            bad += touch_all(json_array_get(j, i));
    }
    return bad;
}

/* Shapes `input` with `call`, checks the result (in order), and that the input document was left untouched. */
static void shape_is(const cf_call_t *call, const char *input, const char *expected, const char *name)
{
    cf_outcome_t o = {parse(input), CF_REASON_NONE, 200};
    json_t *shared = json_incref(o.value); /* as if the cache held it too */
    is(cf_shape(call, &o), 0, "%s: returns 0", name);
    is_json_ordered(o.value, expected, name);
    json_decref(o.value);
    is(touch_all(shared), 0, "input still fully referenced once the result is released");
    is_json_ordered(shared, input, "input left untouched");
    json_decref(shared);
}

static void test_shape_target(void)
{
    cf_call_t c = make_call("orders");
    c.target = STRS("data", "items", NULL);
    c.num_target = 2;
    shape_is(&c, "{\"data\":{\"items\":[1,2],\"n\":2},\"x\":1}", "[1,2]", "nested target");
    shape_is(&c, "{\"data\":{\"n\":2}}", "null", "missing last field -> null");
    shape_is(&c, "{\"other\":1}", "null", "missing first field -> null");
    shape_is(&c, "{\"data\":[{\"items\":1}]}", "null", "step through an array -> null");
    shape_is(&c, "{\"data\":\"items\"}", "null", "step through a string -> null");
    shape_is(&c, "[1,2]", "null", "target of a top-level array -> null");
    shape_is(&c, "{\"data\":{\"items\":null}}", "null", "target that is null");
    shape_is(&c, "{\"data\":{\"items\":{\"a\":{\"b\":1}}}}", "{\"a\":{\"b\":1}}", "target that is an object");

    cf_call_t one = make_call("one");
    one.target = STRS("data", NULL);
    one.num_target = 1;
    shape_is(&one, "{\"data\":\"text\"}", "\"text\"", "single-field target to a string");
    shape_is(&one, "{\"data\":0}", "0", "single-field target to a number");

    /* the target's value outlives its document: the last reference to the document goes away */
    cf_outcome_t o = {parse("{\"data\":{\"items\":[{\"id\":1}]}}"), CF_REASON_NONE, 200};
    is(cf_shape(&c, &o), 0, "target on an unshared document");
    is_json(o.value, "[{\"id\":1}]", "its value is intact after the document is released");
    json_decref(o.value);
}

static void test_shape_allow_deny(void)
{
    cf_call_t c = make_call("orders");
    c.allow = LIST("id", "total");
    shape_is(&c, "{\"total\":3,\"secret\":\"x\",\"id\":1,\"more\":{\"id\":2}}", "{\"total\":3,\"id\":1}",
             "allow on an object keeps upstream order, top level only");
    shape_is(&c, "{\"secret\":1}", "{}", "allow with nothing left gives {}");
    shape_is(&c, "[{\"id\":1,\"x\":1},{\"total\":2,\"y\":2},{}]", "[{\"id\":1},{\"total\":2},{}]",
             "allow on each object of an array");
    shape_is(&c, "[{\"id\":1,\"x\":1},7,\"s\",null,[{\"x\":1}]]", "[{\"id\":1},7,\"s\",null,[{\"x\":1}]]",
             "allow keeps non-object array elements as they are");
    shape_is(&c, "[]", "[]", "allow on an empty array");
    shape_is(&c, "\"plain\"", "\"plain\"", "allow on a string keeps it");
    shape_is(&c, "42", "42", "allow on a number keeps it");
    shape_is(&c, "null", "null", "allow on null keeps it");

    cf_call_t d = make_call("orders");
    d.deny = LIST("secret", "token");
    shape_is(&d, "{\"id\":1,\"secret\":\"x\",\"total\":3,\"token\":\"t\"}", "{\"id\":1,\"total\":3}", "deny on an object");
    shape_is(&d, "[{\"id\":1,\"secret\":2},{\"token\":3},5]", "[{\"id\":1},{},5]", "deny on each object of an array");
    shape_is(&d, "{\"nested\":{\"secret\":1}}", "{\"nested\":{\"secret\":1}}", "deny is top level only");
    shape_is(&d, "true", "true", "deny on a boolean keeps it");

    /* keys with an embedded NUL (jansson's parser refuses them, but its API allows them) are compared whole */
    cf_call_t n = make_call("n");
    n.allow = LIST("a");
    cf_outcome_t o = {json_object(), CF_REASON_NONE, 200};
    json_object_setn_new(o.value, "a\0b", 3, json_integer(1));
    json_object_set_new(o.value, "a", json_integer(2));
    is(cf_shape(&n, &o), 0, "allow on a key with a NUL");
    is_json(o.value, "{\"a\":2}", "a key with a NUL is not its prefix");
    json_decref(o.value);
    n.allow = (cf_strlist_t){NULL, 0};
    n.deny = LIST("a");
    o.value = json_object();
    json_object_setn_new(o.value, "a\0b", 3, json_integer(1));
    json_object_set_new(o.value, "a", json_integer(2));
    is(cf_shape(&n, &o), 0, "deny on a key with a NUL");
    ok(json_object_size(o.value) == 1 && json_integer_value(json_object_getn(o.value, "a\0b", 3)) == 1,
       "the key with a NUL survives deny of its prefix");
    json_decref(o.value);
}

static void test_shape_rename(void)
{
    cf_rename_t r1[] = {{"total", "amount"}};
    cf_call_t c = make_call("orders");
    c.rename = r1;
    c.num_rename = 1;
    shape_is(&c, "{\"id\":1,\"total\":3,\"z\":0}", "{\"id\":1,\"amount\":3,\"z\":0}", "rename keeps the position");
    shape_is(&c, "{\"id\":1}", "{\"id\":1}", "rename of an absent key changes nothing");
    shape_is(&c, "[{\"total\":1},{\"id\":2},3]", "[{\"amount\":1},{\"id\":2},3]", "rename on each object of an array");
    shape_is(&c, "{\"amount\":\"old\",\"total\":3}", "{\"amount\":3}", "rename wins over an existing key (before)");
    shape_is(&c, "{\"total\":3,\"amount\":\"old\"}", "{\"amount\":3}", "rename wins over an existing key (after)");
    shape_is(&c, "{\"amount\":\"kept\"}", "{\"amount\":\"kept\"}", "existing key stays when from is absent");
    shape_is(&c, "\"x\"", "\"x\"", "rename on a string keeps it");

    cf_rename_t chain[] = {{"a", "b"}, {"b", "c"}};
    cf_call_t s = make_call("s");
    s.rename = chain;
    s.num_rename = 2;
    shape_is(&s, "{\"a\":1,\"b\":2}", "{\"b\":1,\"c\":2}", "renames apply at once (a->b, b->c)");
    shape_is(&s, "{\"b\":2,\"a\":1}", "{\"c\":2,\"b\":1}", "renames apply at once, other order");

    cf_rename_t swap[] = {{"x", "y"}, {"y", "x"}};
    cf_call_t w = make_call("w");
    w.rename = swap;
    w.num_rename = 2;
    shape_is(&w, "{\"x\":1,\"y\":2}", "{\"y\":1,\"x\":2}", "swap of two keys");
}

static void test_shape_all(void)
{
    /* the example of docs/configuration.md: target data.items, allow [id, total], rename total -> amount */
    cf_rename_t r[] = {{"total", "amount"}};
    cf_call_t c = make_call("orders");
    c.target = STRS("data", "items", NULL);
    c.num_target = 2;
    c.allow = LIST("id", "total");
    c.rename = r;
    c.num_rename = 1;
    shape_is(&c,
             "{\"data\":{\"items\":[{\"id\":1,\"total\":9.5,\"sku\":\"a\"},{\"id\":2,\"total\":1,\"note\":\"n\"}],"
             "\"page\":1}}",
             "[{\"id\":1,\"amount\":9.5},{\"id\":2,\"amount\":1}]", "target + allow + rename");
    shape_is(&c, "{\"data\":{}}", "null", "missing target, then allow and rename keep null");

    cf_rename_t r2[] = {{"secret", "visible"}};
    cf_call_t d = make_call("d");
    d.deny = LIST("secret");
    d.rename = r2;
    d.num_rename = 1;
    shape_is(&d, "{\"secret\":1,\"id\":2}", "{\"id\":2}", "deny runs before rename");

    cf_outcome_t failed = {NULL, CF_REASON_TIMEOUT, 0};
    is(cf_shape(&c, &failed), 0, "shaping a failed outcome returns 0");
    ok(failed.value == NULL, "and leaves it failed");
    is(failed.reason, CF_REASON_TIMEOUT, "with its reason");

    cf_call_t none = make_call("none");
    cf_outcome_t o = {parse("{\"a\":1}"), CF_REASON_NONE, 200};
    json_t *before = o.value;
    is(cf_shape(&none, &o), 0, "no shaping: returns 0");
    ok(o.value == before, "no shaping: the same document");
    json_decref(o.value);
}

/* A route over `n` calls; they must outlive it. */
static cf_route_t make_route(cf_call_t *calls, size_t n, int merge, int on_conflict)
{
    cf_route_t r;
    memset(&r, 0, sizeof(r));
    r.calls = calls;
    r.num_calls = n;
    r.merge = merge;
    r.on_conflict = on_conflict;
    for (size_t i = 0; i != n; ++i)
        calls[i].index = i;
    return r;
}

static void release(cf_outcome_t *o, size_t n)
{
    for (size_t i = 0; i != n; ++i)
        json_decref(o[i].value);
}

static void test_group(void)
{
    /* names chosen so that hash or alphabetical order would differ from config order */
    cf_call_t calls[] = {make_call("zeta"), make_call("alpha"), make_call("mid"), make_call("gone"), make_call("beta")};
    calls[3].on_error = CF_ON_ERROR_OMIT;
    calls[4].required = 1;
    cf_route_t route = make_route(calls, 5, CF_MERGE_GROUP, CF_CONFLICT_ERROR);

    cf_outcome_t o[] = {
        {parse("{\"id\":1}"), CF_REASON_NONE, 200},
        {parse("[1,2]"), CF_REASON_NONE, 200},
        {NULL, CF_REASON_TIMEOUT, 0},
        {NULL, CF_REASON_STATUS, 503},
        {parse("\"s\""), CF_REASON_NONE, 200},
    };
    json_t *doc = cf_merge(&route, o);
    is_json_ordered(doc, "{\"zeta\":{\"id\":1},\"alpha\":[1,2],\"mid\":null,\"beta\":\"s\"}",
                    "group: config order, failed -> null, omit -> absent");
    char *dumped = json_dumps(doc, JSON_PRESERVE_ORDER | JSON_COMPACT);
    is_str(dumped, "{\"zeta\":{\"id\":1},\"alpha\":[1,2],\"mid\":null,\"beta\":\"s\"}", "group: as fanout dumps it");
    free(dumped);
    ok(o[0].value != NULL && o[0].value->refcount == 2, "group: the answer shares values with the outcomes");
    json_decref(doc);
    ok(o[0].value->refcount == 1, "group: releasing the answer leaves the outcomes' references");
    release(o, 5);

    /* the same calls, all successful; and all failed */
    cf_outcome_t all[] = {
        {parse("1"), CF_REASON_NONE, 200}, {parse("2"), CF_REASON_NONE, 200},    {parse("3"), CF_REASON_NONE, 200},
        {parse("4"), CF_REASON_NONE, 200}, {parse("null"), CF_REASON_NONE, 200},
    };
    doc = cf_merge(&route, all);
    is_json_ordered(doc, "{\"zeta\":1,\"alpha\":2,\"mid\":3,\"gone\":4,\"beta\":null}", "group: all successful");
    json_decref(doc);
    release(all, 5);

    cf_outcome_t none[] = {
        {NULL, CF_REASON_RESET, 0},    {NULL, CF_REASON_CONNECT_FAILED, 0}, {NULL, CF_REASON_DEADLINE, 0},
        {NULL, CF_REASON_DEADLINE, 0}, {NULL, CF_REASON_STATUS, 404},
    };
    doc = cf_merge(&route, none);
    is_json_ordered(doc, "{\"zeta\":null,\"alpha\":null,\"mid\":null,\"beta\":null}",
                    "group: all failed (a failed required call too) does not crash");
    json_decref(doc);

    cf_route_t empty = make_route(calls, 0, CF_MERGE_GROUP, CF_CONFLICT_ERROR);
    doc = cf_merge(&empty, NULL);
    is_json(doc, "{}", "group: no calls gives {}");
    json_decref(doc);
}

static void test_merge_mode(void)
{
    cf_call_t calls[] = {make_call("a"), make_call("b"), make_call("c"), make_call("d")};
    calls[2].on_error = CF_ON_ERROR_OMIT;
    static const char *const answers[] = {"{\"id\":1,\"name\":\"first\",\"x\":1}", "{\"name\":\"second\",\"y\":2,\"id\":2}", "[1]",
                                          "{\"x\":\"last\",\"z\":3}"};
    static const struct {
        int on_conflict;
        const char *expected;
        const char *name;
    } cases[] = {
        {CF_CONFLICT_FIRST, "{\"id\":1,\"name\":\"first\",\"x\":1,\"y\":2,\"z\":3}", "merge: first wins"},
        {CF_CONFLICT_LAST, "{\"id\":2,\"name\":\"second\",\"x\":\"last\",\"y\":2,\"z\":3}",
         "merge: last wins, at the first position"},
        {CF_CONFLICT_ERROR, "{\"id\":1,\"name\":\"first\",\"x\":1,\"y\":2,\"z\":3}",
         "merge: unforeseen collision under on_conflict error keeps the first"},
    };
    for (size_t k = 0; k != sizeof(cases) / sizeof(cases[0]); ++k) {
        cf_route_t route = make_route(calls, 4, CF_MERGE_MERGE, cases[k].on_conflict);
        cf_outcome_t o[4];
        for (size_t i = 0; i != 4; ++i)
            o[i] = (cf_outcome_t){parse(answers[i]), CF_REASON_NONE, 200};
        json_t *doc = cf_merge(&route, o);
        is_json_ordered(doc, cases[k].expected, cases[k].name);
        int shared = 1;
        for (void *it = json_object_iter(doc); it != NULL; it = json_object_iter_next(doc, it))
            shared &= json_object_iter_value(it)->refcount == 2;
        ok(shared, "merge: every member is shared between the answer and an outcome");
        ok(o[2].value == NULL, "merge: the array answer is now a failure");
        is(o[2].reason, CF_REASON_NOT_AN_OBJECT, "merge: with reason not_an_object");
        is(o[2].status, 200, "merge: keeping its upstream status");
        ok(o[0].value != NULL && o[1].value != NULL && o[3].value != NULL, "merge: the objects stay successful");
        json_decref(doc);
        is(touch_all(o[0].value) + touch_all(o[1].value) + touch_all(o[3].value), 0,
           "merge: outcomes intact once the answer is released");
        release(o, 4);
    }

    /* failed calls contribute nothing; non-objects of every kind fail */
    cf_route_t route = make_route(calls, 4, CF_MERGE_MERGE, CF_CONFLICT_LAST);
    cf_outcome_t o[] = {
        {NULL, CF_REASON_TIMEOUT, 0},
        {parse("\"str\""), CF_REASON_NONE, 200},
        {parse("null"), CF_REASON_NONE, 201},
        {parse("{}"), CF_REASON_NONE, 200},
    };
    json_t *doc = cf_merge(&route, o);
    is_json_ordered(doc, "{}", "merge: failures and non-objects contribute nothing");
    is(o[0].reason, CF_REASON_TIMEOUT, "merge: an earlier failure keeps its reason");
    ok(o[1].value == NULL && o[1].reason == CF_REASON_NOT_AN_OBJECT, "merge: a string is not an object");
    ok(o[2].value == NULL && o[2].reason == CF_REASON_NOT_AN_OBJECT, "merge: null is not an object");
    is(o[2].status, 201, "merge: status stays");
    ok(o[3].value != NULL && o[3].reason == CF_REASON_NONE, "merge: {} is an object");
    json_decref(doc);
    release(o, 4);

    /* a value shared with someone else (the cache) survives the not_an_object conversion */
    cf_outcome_t s[] = {{parse("[1,2]"), CF_REASON_NONE, 200},
                        {parse("{\"k\":[1]}"), CF_REASON_NONE, 200},
                        {NULL, CF_REASON_RESET, 0},
                        {NULL, CF_REASON_RESET, 0}};
    json_t *shared = json_incref(s[0].value);
    doc = cf_merge(&route, s);
    is_json_ordered(doc, "{\"k\":[1]}", "merge: one object");
    is_json(shared, "[1,2]", "merge: a shared non-object is only released, not freed");
    json_decref(shared);
    json_decref(doc);
    release(s, 4);
}

static void test_failure_status(void)
{
    static const struct {
        cf_reason_t reason;
        int status;
        int expected;
    } cases[] = {
        {CF_REASON_STATUS, 404, 404},
        {CF_REASON_STATUS, 400, 400},
        {CF_REASON_STATUS, 499, 499},
        {CF_REASON_STATUS, 500, 502},
        {CF_REASON_STATUS, 503, 502},
        {CF_REASON_STATUS, 399, 502},
        {CF_REASON_STATUS, 302, 502},
        {CF_REASON_STATUS, 0, 502},
        {CF_REASON_TIMEOUT, 0, 504},
        {CF_REASON_TIMEOUT, 200, 504},
        {CF_REASON_DEADLINE, 0, 504},
        {CF_REASON_CONNECT_FAILED, 0, 502},
        {CF_REASON_RESET, 0, 502},
        {CF_REASON_INVALID_JSON, 200, 502},
        {CF_REASON_TOO_LARGE, 200, 502},
        {CF_REASON_CIRCUIT_OPEN, 0, 502},
        {CF_REASON_MISSING_PARAM, 0, 502},
        {CF_REASON_BAD_RESPONSE, 0, 502},
        {CF_REASON_BAD_REQUEST, 0, 502},
        {CF_REASON_CANCELLED, 0, 502},
        {CF_NUM_REASONS, 0, 502},
        /* fanout turns a call into not_an_object when it completes, so a required one fails the request */
        {CF_REASON_NOT_AN_OBJECT, 200, 502},
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        cf_outcome_t o = {NULL, cases[i].reason, cases[i].status};
        char buf[CF_REASON_TEXT_SIZE];
        is(cf_failure_status(&o), cases[i].expected, "failure status of %s (upstream %d)",
           cf_reason_text(cases[i].reason, cases[i].status, buf), cases[i].status);
    }
    cf_outcome_t bad_param = {NULL, CF_REASON_BAD_PARAM, 0};
    is(cf_failure_status(&bad_param), 502, "failure status of bad_param: 502, like missing_param");
}

static void body_is(const char *name, cf_reason_t reason, int status, const char *expected)
{
    cf_call_t c = make_call(name);
    cf_outcome_t o = {NULL, reason, status};
    json_t *body = cf_failure_body(&c, &o);
    char *dumped = body != NULL ? json_dumps(body, JSON_PRESERVE_ORDER | JSON_COMPACT) : NULL;
    is_str(dumped, expected, "failure body for %s/%s", name, cf_reasons[reason].name);
    free(dumped);
    json_decref(body);
}

static void test_failure_body(void)
{
    body_is("profile", CF_REASON_STATUS, 404, "{\"error\":\"status_404\",\"call\":\"profile\",\"status\":404}");
    body_is("profile", CF_REASON_TIMEOUT, 0, "{\"error\":\"timeout\",\"call\":\"profile\",\"status\":null}");
    body_is("recs", CF_REASON_BAD_PARAM, 0, "{\"error\":\"bad_param\",\"call\":\"recs\",\"status\":null}");
    body_is("orders", CF_REASON_INVALID_JSON, 200, "{\"error\":\"invalid_json\",\"call\":\"orders\",\"status\":200}");
    body_is("we\"ird\\", CF_REASON_DEADLINE, 0, "{\"error\":\"deadline\",\"call\":\"we\\\"ird\\\\\",\"status\":null}");
}

int main(void)
{
    test_shape_target();
    test_shape_allow_deny();
    test_shape_rename();
    test_shape_all();
    test_group();
    test_merge_mode();
    test_failure_status();
    test_failure_body();
    return done_testing();
}
