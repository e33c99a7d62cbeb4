/* libFuzzer harness for merge.c (and respond.c's Proxy-Status): shaping rules and documents from the input, results
 * checked member by member. */
/*
 * Input, as text: a first line of route options ("merge" for merge: merge, "first" / "last" for on_conflict), then
 * one block per call (at most 16):
 *   call NAME [omit]          starts a call (omit: on_error: omit)
 *   target a.b.c              allow k1 k2 ...      deny k1 ...      rename from=to ...
 *   reason WORD STATUS        the call failed with this reason and upstream status: a reason's name, status_NNN (the
 *                             status is then NNN unless STATUS is given), or any other word for the reason it hashes to
 * then a line "---" and the calls' JSON documents in order, separated by lines "===" (a call without one failed
 * with "timeout"; one that does not parse, with "invalid_json"). Words are %XX-decoded. Rules the config loader
 * would refuse (a bad call name, a name twice, allow with deny, a rename of a removed field, two renames from or to
 * one name, a name that is not UTF-8) make the input uninteresting.
 *
 * Checks, on top of ASan/UBSan and jansson's reference counts (every node of every document is read back from
 * instrumented code after all is done):
 * - cf_shape leaves the input document as it was, and gives exactly what the rules say, in the input's order, sharing
 *   the input's values (the same json_t pointers): target walks objects (null when a step is missing), allow/deny keep
 *   or drop members, renames apply all at once with the renamed member in the place of `from`, arrays are shaped
 *   element by element, other values are kept as they are;
 * - cf_merge gives one member per call in order (group: null for a failure, none with omit) or the members of every
 *   object in order with the first (or, with "last", the last) value of a key at its first place (merge), and turns
 *   a value that is not an object into a "not_an_object" failure;
 * - for every failed call, cf_failure_status is the 4xx of a status_4xx reason, 504 for timeout/deadline, else 502; cf_failure_body
 * holds reason, call and status; cf_proxy_status_format writes printable ASCII whose details= sf-string decodes back to the call
 * name (bytes it cannot hold as '?'), for every failure but a cancelled call and a status_NNN without a status.
 */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cf_http.h"
#include "../../gateway/reason.c"
#include "../../gateway/merge.c"
#include "../../gateway/jsonout.c"
#include "../../gateway/router.c"
#include "../../gateway/cors.c"
#include "../../gateway/ratelimit.c"
#include "../../gateway/respond.c" /* Proxy-Status of the failed calls */

#define MAX_CALLS 16
#define MAX_WORDS 32

struct input_call {
    char name[64];
    int omit, failed, status;
    cf_reason_t reason;
    char *target[MAX_WORDS + 1];
    char *allow[MAX_WORDS], *deny[MAX_WORDS];
    cf_rename_t rename[MAX_WORDS];
    size_t num_target, num_allow, num_deny, num_rename;
};

static void bug(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_merge: %s%s%s\n", what, detail != NULL ? ": " : "", detail != NULL ? detail : "");
    abort();
}

/* The reason a word of the input stands for (see the top); status_NNN sets *status to NNN when it is 0. */
static cf_reason_t reason_of(const char *word, int *status)
{
    unsigned h = 0;
    if (strncmp(word, "status_", 7) == 0 && strlen(word) == 10 && strspn(word + 7, "0123456789") == 3) {
        if (*status == 0)
            *status = atoi(word + 7);
        return CF_REASON_STATUS;
    }
    for (int r = CF_REASON_NONE + 1; r != CF_NUM_REASONS; ++r)
        if (strcmp(word, cf_reasons[r].name) == 0)
            return (cf_reason_t)r;
    for (const char *p = word; *p != '\0'; ++p)
        h = h * 31 + (unsigned char)*p;
    return (cf_reason_t)(1 + h % (CF_NUM_REASONS - 1));
}

/* A %XX-decoded copy of a word, or NULL when it is not valid UTF-8 without NUL (the config loader's strings). */
static char *word(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    size_t n;
    cf_form_decode(s, len, out, &n, CF_FORM_LENIENT);
    out[n] = '\0';
    json_t *check = memchr(out, '\0', n) == NULL ? json_string(out) : NULL;
    if (check == NULL) {
        free(out);
        return NULL;
    }
    json_decref(check);
    return out;
}

static int is_call_name(const char *s)
{
    if (!(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return 0;
    for (; *s != '\0'; ++s)
        if (!(*s == '_' || *s == '-' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
            return 0;
    return 1;
}

static int listed(char *const *list, size_t n, const char *key, size_t len)
{
    for (size_t i = 0; i != n; ++i)
        if (strlen(list[i]) == len && memcmp(list[i], key, len) == 0)
            return 1;
    return 0;
}

/* Splits the rule line's words after its first into out (at most MAX_WORDS); returns -1 on a word that cannot be. */
static int words(const char *p, const char *end, char **out, size_t *n)
{
    while (p < end) {
        while (p < end && *p == ' ')
            ++p;
        const char *w = p;
        while (p < end && *p != ' ')
            ++p;
        if (p == w)
            break;
        if (*n == MAX_WORDS || (out[*n] = word(w, (size_t)(p - w))) == NULL)
            return -1;
        if (out[*n][0] == '\0') {
            free(out[*n]);
            return -1;
        }
        ++*n;
    }
    return 0;
}

/* Reads the rule lines; returns the number of calls, or -1 for an input the config loader would not produce. */
static int parse_rules(const char *p, const char *end, struct input_call *calls, cf_route_t *route)
{
    int n = -1;
    for (int first = 1; p < end; first = 0) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        struct input_call *c = n >= 0 ? calls + n : NULL;
        char *tmp[MAX_WORDS];
        size_t ntmp = 0;
#define IS(kw) ((size_t)(eol - p) >= sizeof(kw) - 1 && memcmp(p, kw, sizeof(kw) - 1) == 0)
        if (first) {
            route->merge = memmem(p, (size_t)(eol - p), "merge", 5) != NULL ? CF_MERGE_MERGE : CF_MERGE_GROUP;
            route->on_conflict = memmem(p, (size_t)(eol - p), "first", 5) != NULL  ? CF_CONFLICT_FIRST
                                 : memmem(p, (size_t)(eol - p), "last", 4) != NULL ? CF_CONFLICT_LAST
                                                                                   : CF_CONFLICT_ERROR;
        } else if (IS("call ")) {
            if (++n == MAX_CALLS || words(p + 5, eol, tmp, &ntmp) != 0 || ntmp == 0 || strlen(tmp[0]) >= sizeof(c->name) ||
                !is_call_name(tmp[0]))
                goto Bad;
            c = calls + n;
            strcpy(c->name, tmp[0]);
            c->omit = ntmp > 1 && strcmp(tmp[1], "omit") == 0;
            for (int i = 0; i != n; ++i)
                if (strcmp(calls[i].name, c->name) == 0)
                    goto Bad;
        } else if (c == NULL) {
            goto Bad;
        } else if (IS("target ")) {
            if (words(p + 7, eol, tmp, &ntmp) != 0 || ntmp != 1 || c->num_target != 0)
                goto Bad;
            for (char *s = tmp[0], *dot; c->num_target != MAX_WORDS; s = dot + 1) {
                if ((dot = strchr(s, '.')) != NULL)
                    *dot = '\0';
                if (*s == '\0')
                    goto Bad;
                c->target[c->num_target++] = strdup(s);
                if (dot == NULL)
                    break;
            }
        } else if (IS("allow ")) {
            if (c->num_allow != 0 || words(p + 6, eol, c->allow, &c->num_allow) != 0)
                goto Bad;
        } else if (IS("deny ")) {
            if (c->num_deny != 0 || words(p + 5, eol, c->deny, &c->num_deny) != 0)
                goto Bad;
        } else if (IS("rename ")) {
            if (c->num_rename != 0 || words(p + 7, eol, tmp, &ntmp) != 0)
                goto Bad;
            for (size_t i = 0; i != ntmp; ++i) {
                char *eq = strchr(tmp[i], '=');
                if (eq == NULL || eq == tmp[i] || eq[1] == '\0')
                    goto Bad;
                *eq = '\0';
                c->rename[c->num_rename].from = strdup(tmp[i]);
                c->rename[c->num_rename++].to = strdup(eq + 1);
            }
        } else if (IS("reason ")) {
            if (words(p + 7, eol, tmp, &ntmp) != 0 || ntmp != 2)
                goto Bad;
            c->failed = 1;
            c->status = atoi(tmp[1]) % 1000;
            c->reason = reason_of(tmp[0], &c->status);
        } else if (eol != p) {
            goto Bad;
        }
#undef IS
        for (size_t i = 0; i != ntmp; ++i)
            free(tmp[i]);
        ntmp = 0;
        p = eol + 1;
        continue;
    Bad:
        for (size_t i = 0; i != ntmp; ++i)
            free(tmp[i]);
        return -1;
    }
    /* what check_call and on_call_rename refuse */
    for (int i = 0; i <= n && i < MAX_CALLS; ++i) {
        struct input_call *c = calls + i;
        if (c->num_allow != 0 && c->num_deny != 0)
            return -1;
        for (size_t r = 0; r != c->num_rename; ++r) {
            const char *from = c->rename[r].from, *to = c->rename[r].to;
            if (strcmp(from, to) == 0 || (c->num_allow != 0 && !listed(c->allow, c->num_allow, from, strlen(from))) ||
                listed(c->deny, c->num_deny, from, strlen(from)))
                return -1;
            for (size_t q = 0; q != r; ++q)
                if (strcmp(c->rename[q].from, from) == 0 || strcmp(c->rename[q].to, to) == 0)
                    return -1;
        }
    }
    return n + 1;
}

static void free_calls(struct input_call *calls, size_t n)
{
    for (size_t i = 0; i != n; ++i) {
        struct input_call *c = calls + i;
        for (size_t k = 0; k != c->num_target; ++k)
            free(c->target[k]);
        for (size_t k = 0; k != c->num_allow; ++k)
            free(c->allow[k]);
        for (size_t k = 0; k != c->num_deny; ++k)
            free(c->deny[k]);
        for (size_t k = 0; k != c->num_rename; ++k) {
            free(c->rename[k].from);
            free(c->rename[k].to);
        }
    }
}

/* --- what shaping must give ------------------------------------------------------------------------------------ */

struct member {
    const char *key;
    size_t len;
    json_t *value;
};

static const cf_rename_t *renamed_from(const struct input_call *c, const char *key, size_t len)
{
    for (size_t r = 0; r != c->num_rename; ++r)
        if (strlen(c->rename[r].from) == len && memcmp(c->rename[r].from, key, len) == 0)
            return &c->rename[r];
    return NULL;
}

/* The members an object must have after allow/deny and rename, in order; returns their number. */
static size_t expected_members(const struct input_call *c, json_t *obj, struct member *out)
{
    struct member *kept = malloc(sizeof(*kept) * (json_object_size(obj) + 1));
    size_t nkept = 0, n = 0;
    for (void *it = json_object_iter(obj); it != NULL; it = json_object_iter_next(obj, it)) {
        struct member m = {json_object_iter_key(it), json_object_iter_key_len(it), json_object_iter_value(it)};
        if (c->num_allow != 0 && !listed(c->allow, c->num_allow, m.key, m.len))
            continue;
        if (listed(c->deny, c->num_deny, m.key, m.len))
            continue;
        kept[nkept++] = m;
    }
    for (size_t i = 0; i != nkept; ++i) {
        const cf_rename_t *r = renamed_from(c, kept[i].key, kept[i].len);
        if (r != NULL) {
            out[n++] = (struct member){r->to, strlen(r->to), kept[i].value};
            continue;
        }
        /* a member whose name a present member is renamed to gives way to it */
        int overwritten = 0;
        for (size_t r2 = 0; r2 != c->num_rename && !overwritten; ++r2)
            if (strlen(c->rename[r2].to) == kept[i].len && memcmp(c->rename[r2].to, kept[i].key, kept[i].len) == 0)
                for (size_t j = 0; j != nkept && !overwritten; ++j)
                    overwritten =
                        strlen(c->rename[r2].from) == kept[j].len && memcmp(c->rename[r2].from, kept[j].key, kept[j].len) == 0;
        if (!overwritten)
            out[n++] = kept[i];
    }
    free(kept);
    return n;
}

/* Whether obj has exactly these members, in this order, with these very values. */
static int has_members(json_t *obj, const struct member *m, size_t n)
{
    if (!json_is_object(obj) || json_object_size(obj) != n)
        return 0;
    size_t i = 0;
    for (void *it = json_object_iter(obj); it != NULL; it = json_object_iter_next(obj, it), ++i)
        if (json_object_iter_key_len(it) != m[i].len || memcmp(json_object_iter_key(it), m[i].key, m[i].len) != 0 ||
            json_object_iter_value(it) != m[i].value)
            return 0;
    return 1;
}

static void check_shaped_object(const struct input_call *c, json_t *in, json_t *out)
{
    struct member *m = malloc(sizeof(*m) * (json_object_size(in) + 1));
    size_t n = expected_members(c, in, m);
    if (!has_members(out, m, n))
        bug("a shaped object is not what the rules say", c->name);
    free(m);
}

static void check_shape(const struct input_call *c, json_t *in, json_t *out)
{
    json_t *cur = in;
    for (size_t i = 0; i != c->num_target && cur != NULL; ++i)
        cur = json_is_object(cur) ? json_object_get(cur, c->target[i]) : NULL;
    if (cur == NULL)
        cur = json_null();
    int ops = c->num_allow != 0 || c->num_deny != 0 || c->num_rename != 0;
    if (json_is_object(cur) && ops) {
        check_shaped_object(c, cur, out);
    } else if (json_is_array(cur) && ops) {
        if (!json_is_array(out) || json_array_size(out) != json_array_size(cur))
            bug("a shaped array of another size", c->name);
        for (size_t i = 0; i != json_array_size(cur); ++i) {
            json_t *e = json_array_get(cur, i);
            if (json_is_object(e))
                check_shaped_object(c, e, json_array_get(out, i));
            else if (json_array_get(out, i) != e)
                bug("an array element that is not an object was changed", c->name);
        }
    } else if (out != cur) {
        bug("a value the rules do not touch was not passed on as is", c->name);
    }
}

/* --- what merging must give ------------------------------------------------------------------------------------ */

static void check_merge(const cf_route_t *route, const cf_outcome_t *o, json_t *doc)
{
    size_t cap = 1 + route->num_calls, n = 0; /* a member per call, or per member of each object */
    for (size_t i = 0; i != route->num_calls; ++i)
        cap += o[i].value != NULL && json_is_object(o[i].value) ? json_object_size(o[i].value) : 0;
    struct member *m = malloc(sizeof(*m) * cap);
    for (size_t i = 0; i != route->num_calls; ++i) {
        const cf_call_t *call = &route->calls[i];
        if (route->merge == CF_MERGE_GROUP) {
            if (o[i].value != NULL || call->on_error != CF_ON_ERROR_OMIT)
                m[n++] = (struct member){call->name, strlen(call->name), o[i].value != NULL ? o[i].value : json_null()};
            continue;
        }
        if (o[i].value == NULL)
            continue;
        for (void *it = json_object_iter(o[i].value); it != NULL; it = json_object_iter_next(o[i].value, it)) {
            const char *key = json_object_iter_key(it);
            size_t len = json_object_iter_key_len(it), k = 0;
            while (k != n && !(m[k].len == len && memcmp(m[k].key, key, len) == 0))
                ++k;
            if (k == n)
                m[n++] = (struct member){key, len, json_object_iter_value(it)};
            else if (route->on_conflict == CF_CONFLICT_LAST)
                m[k].value = json_object_iter_value(it);
        }
    }
    if (!has_members(doc, m, n))
        bug(route->merge == CF_MERGE_GROUP ? "a group answer is not one member per call" : "a merged answer is not the union",
            NULL);
    free(m);
}

static void check_failure(const cf_call_t *call, const cf_outcome_t *o)
{
    char text[CF_REASON_TEXT_SIZE], want_text[32];
    const char *reason = cf_reason_text(o->reason, o->status, text);
    int want = 502;
    if (o->reason == CF_REASON_TIMEOUT || o->reason == CF_REASON_DEADLINE)
        want = 504;
    else if (o->reason == CF_REASON_STATUS && o->status >= 400 && o->status <= 499)
        want = o->status;
    if (cf_failure_status(o) != want)
        bug("cf_failure_status", reason);
    if (o->reason == CF_REASON_STATUS)
        snprintf(want_text, sizeof(want_text), "status_%03d", o->status);
    else
        snprintf(want_text, sizeof(want_text), "%s", cf_reasons[o->reason].name);

    json_t *body = cf_failure_body(call, o);
    json_t *status = json_object_get(body, "status");
    if (json_object_size(body) != 3 || strcmp(json_string_value(json_object_get(body, "error")), want_text) != 0 ||
        strcmp(json_string_value(json_object_get(body, "call")), call->name) != 0 ||
        (o->status != 0 ? json_integer_value(status) != o->status : !json_is_null(status)))
        bug("cf_failure_body", reason);
    json_decref(body);

    cf_buf_t b = CF_BUF_INIT;
    int reported = o->reason != CF_REASON_CANCELLED && (o->reason != CF_REASON_STATUS || o->status >= 100);
    if (!reported) {
        if (cf_proxy_status_format(&b, call->name, o->reason, o->status) != -1 || b.len != 0)
            bug("cf_proxy_status_format reports what it should not", reason);
        return;
    }
    if (cf_proxy_status_format(&b, call->name, o->reason, o->status) != 0 || b.len < 8 || memcmp(b.base, "conflux;", 8) != 0)
        bug("cf_proxy_status_format", reason);
    for (size_t i = 0; i != b.len; ++i)
        if (b.base[i] < 0x20 || b.base[i] > 0x7e)
            bug("a Proxy-Status byte that is not printable ASCII", reason);
    const char *d = strstr(b.base, "; details=\"");
    if (d == NULL || b.base[b.len - 1] != '"')
        bug("no details at the end of Proxy-Status", b.base);
    size_t k = 0;
    for (d += 11; d < b.base + b.len - 1; ++d, ++k) {
        if (*d == '\\')
            ++d;
        else if (*d == '"')
            bug("an unescaped quote in details", b.base);
        unsigned char want_c = (unsigned char)call->name[k];
        if (want_c < 0x20 || want_c > 0x7e)
            want_c = '?';
        if (call->name[k] == '\0' || (unsigned char)*d != want_c)
            bug("details do not decode back to the call name", b.base);
    }
    if (call->name[k] != '\0')
        bug("details cut the call name", b.base);
    cf_buf_free(&b);
}

/* Reads every node from instrumented code, so that ASan reports one freed behind our back. */
static void touch_all(json_t *j)
{
    if (j->refcount == 0)
        bug("a node without a reference", NULL);
    if (json_is_object(j)) {
        for (void *it = json_object_iter(j); it != NULL; it = json_object_iter_next(j, it))
            touch_all(json_object_iter_value(it));
    } else if (json_is_array(j)) {
        for (size_t i = 0; i != json_array_size(j); ++i)
            touch_all(json_array_get(j, i));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data, *end = text + size;
    const char *sep = memmem(text, size, "\n---\n", 5);
    struct input_call calls[MAX_CALLS];
    cf_call_t conf[MAX_CALLS];
    cf_outcome_t o[MAX_CALLS];
    json_t *docs[MAX_CALLS], *copies[MAX_CALLS];
    cf_route_t route;

    memset(calls, 0, sizeof(calls));
    memset(conf, 0, sizeof(conf));
    memset(&route, 0, sizeof(route));
    int n = parse_rules(text, sep != NULL ? sep : end, calls, &route);
    if (n <= 0) {
        free_calls(calls, n < 0 ? MAX_CALLS : 0);
        return 0;
    }
    route.calls = conf;
    route.num_calls = (size_t)n;

    const char *doc = sep != NULL ? sep + 5 : end;
    for (int i = 0; i != n; ++i) {
        struct input_call *c = calls + i;
        cf_call_t *call = conf + i;
        call->name = c->name;
        call->index = (size_t)i;
        call->on_error = c->omit ? CF_ON_ERROR_OMIT : CF_ON_ERROR_NULL;
        call->target = c->num_target != 0 ? c->target : NULL;
        call->num_target = c->num_target;
        call->allow = (cf_strlist_t){c->allow, c->num_allow};
        call->deny = (cf_strlist_t){c->deny, c->num_deny};
        call->rename = c->rename;
        call->num_rename = c->num_rename;

        const char *doc_end = doc < end ? memmem(doc, (size_t)(end - doc), "\n===\n", 5) : NULL;
        o[i] = (cf_outcome_t){NULL, CF_REASON_TIMEOUT, 0};
        docs[i] = copies[i] = NULL;
        if (doc < end) {
            json_error_t jerr;
            size_t len = (size_t)((doc_end != NULL ? doc_end : end) - doc);
            docs[i] = json_loadb(doc, len, JSON_DECODE_ANY, &jerr); /* as fanout.c parses a body */
            o[i] = (cf_outcome_t){docs[i] != NULL ? json_incref(docs[i]) : NULL,
                                  docs[i] != NULL ? CF_REASON_NONE : CF_REASON_INVALID_JSON, 200};
            doc = doc_end != NULL ? doc_end + 5 : end;
        }
        if (c->failed) {
            json_decref(o[i].value);
            o[i] = (cf_outcome_t){NULL, c->reason, c->status};
        }
        copies[i] = docs[i] != NULL ? json_deep_copy(docs[i]) : NULL;
    }

    for (int i = 0; i != n; ++i) {
        json_t *in = o[i].value;
        if (in != NULL)
            json_incref(in);
        if (cf_shape(&conf[i], &o[i]) != 0)
            bug("cf_shape failed", conf[i].name);
        if (in != NULL) {
            check_shape(&calls[i], in, o[i].value);
            json_decref(in);
        }
        if (docs[i] != NULL && !json_equal(docs[i], copies[i]))
            bug("cf_shape changed its input", conf[i].name);
    }

    json_t *before[MAX_CALLS];
    int turned[MAX_CALLS];
    for (int i = 0; i != n; ++i) {
        before[i] = o[i].value;
        turned[i] = route.merge == CF_MERGE_MERGE && o[i].value != NULL && !json_is_object(o[i].value);
    }
    json_t *answer = cf_merge(&route, o);
    if (answer == NULL)
        bug("cf_merge returned NULL", NULL);
    for (int i = 0; i != n; ++i) {
        if (turned[i] ? o[i].value != NULL || o[i].reason != CF_REASON_NOT_AN_OBJECT : o[i].value != before[i])
            bug("cf_merge changed an outcome it should not have, or not one it should", conf[i].name);
    }
    check_merge(&route, o, answer);
    for (int i = 0; i != n; ++i)
        if (o[i].value == NULL)
            check_failure(&conf[i], &o[i]);

    touch_all(answer);
    json_decref(answer);
    for (int i = 0; i != n; ++i) {
        if (o[i].value != NULL) {
            touch_all(o[i].value);
            json_decref(o[i].value);
        }
        if (docs[i] != NULL) {
            touch_all(docs[i]);
            if (!json_equal(docs[i], copies[i]))
                bug("the input document changed", conf[i].name);
            json_decref(docs[i]);
            json_decref(copies[i]);
        }
    }
    free_calls(calls, (size_t)n);
    return 0;
}
