/* Request conditions of a conflux-mock stub (match:): decoding them from YAML, and evaluating them on a request. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cf_http.h"
#include "match.h"

/* a stub's conditions and values stay small: they are test fixtures, and everything from a stubs file is hostile */
#define MAX_CONDITIONS 64
#define MAX_VALUE 4096
#define MAX_JSON_NODES 4096
/* how much of a request's value a near-miss message quotes */
#define QUOTE_MAX 80

static void cond_free(cf_mock_cond_t *c)
{
    free(c->name);
    free(c->value);
    if (c->kind == CF_MOCK_COND_REGEX)
        regfree(&c->re);
}

void cf_mock_match_dispose(cf_mock_match_t *m)
{
    for (size_t i = 0; i != m->n_query; ++i)
        cond_free(m->query + i);
    for (size_t i = 0; i != m->n_headers; ++i)
        cond_free(m->headers + i);
    free(m->query);
    free(m->headers);
    if (m->body != NULL) {
        cond_free(m->body);
        free(m->body);
    }
    json_decref(m->json);
    memset(m, 0, sizeof(*m));
}

void cf_mock_request_dispose(cf_mock_request_t *r)
{
    json_decref(r->json);
    r->json = NULL;
    r->json_state = 0;
}

/* ---- decoding ---- */

/* The end of a bracket expression that starts at p[i] == '[' (the index of its ']'), or len when it has none. */
static size_t bracket_end(const char *p, size_t len, size_t i)
{
    ++i;
    if (i < len && p[i] == '^')
        ++i;
    if (i < len && p[i] == ']') /* a ']' first is a member */
        ++i;
    for (; i < len; ++i) {
        if (p[i] == ']')
            return i;
        if (p[i] == '[' && i + 1 < len && (p[i + 1] == ':' || p[i + 1] == '.' || p[i + 1] == '=')) {
            char close = p[i + 1];
            for (i += 2; i + 1 < len && !(p[i] == close && p[i + 1] == ']'); ++i)
                ;
            ++i;
        }
    }
    return len;
}

/*
 * glibc's regcomp copies the operand of a bounded repetition once per count, so nested counts multiply:
 * "(((a{100}){100}){100})" is a million nodes and a third of a second of compiling, one more level a hundred times that.
 * So a pattern is refused when its size with every repetition expanded (an estimate of regcomp's nodes: an atom counts
 * 1, a group the sum of its contents, X{m,n} counts n times X, X+ twice) is over CF_MOCK_REGEX_EXPANDED_MAX. Back-
 * references (\1 to \9, a glibc extension to ERE) are refused too: they make matching exponential in the input.
 */
static int check_regex(const char *p, size_t len, size_t *size, char *err, size_t errlen)
{
    unsigned long sums[CF_MOCK_REGEX_MAX + 1], last = 0;
    size_t depth = 0;
    if (len == 0) {
        snprintf(err, errlen, "an empty regex");
        return -1;
    }
    if (len > CF_MOCK_REGEX_MAX) {
        snprintf(err, errlen, "a regex longer than %d bytes", CF_MOCK_REGEX_MAX);
        return -1;
    }
    if (memchr(p, '\0', len) != NULL) {
        snprintf(err, errlen, "a regex with a NUL byte");
        return -1;
    }
    sums[0] = 0;
    for (size_t i = 0; i < len; ++i) {
        unsigned long atom = 1, times = 0;
        switch (p[i]) {
        case '\\':
            if (i + 1 < len && p[i + 1] >= '1' && p[i + 1] <= '9') {
                snprintf(err, errlen, "a back-reference (\\%c): not in POSIX extended regexes", p[i + 1]);
                return -1;
            }
            ++i;
            break;
        case '[':
            i = bracket_end(p, len, i);
            break;
        case '(':
            sums[++depth] = 0;
            continue;
        case ')':
            if (depth == 0)
                continue; /* regcomp says what is wrong */
            atom = sums[depth--] + 1;
            break;
        case '|':
        case '^':
        case '$':
            continue;
        case '*':
        case '?':
            continue;
        case '+':
            times = 2;
            break;
        case '{': {
            unsigned long m = 0, n = 0;
            int comma = 0;
            size_t j = i + 1;
            for (; j < len && (isdigit((unsigned char)p[j]) || p[j] == ','); ++j) {
                unsigned long *v = comma ? &n : &m;
                if (p[j] == ',')
                    comma = 1;
                else if ((*v = *v * 10 + (unsigned long)(p[j] - '0')) > CF_MOCK_REGEX_EXPANDED_MAX)
                    *v = CF_MOCK_REGEX_EXPANDED_MAX + 1;
            }
            times = !comma ? m : n != 0 ? n : m + 1;
            i = j;
            break;
        }
        default:
            break;
        }
        if (times != 0) {
            /* the last atom again, times - 1 more times */
            sums[depth] += last * (times - 1);
            last *= times;
        } else {
            sums[depth] += atom;
            last = atom;
        }
        if (sums[depth] > CF_MOCK_REGEX_EXPANDED_MAX || last > CF_MOCK_REGEX_EXPANDED_MAX) {
            snprintf(err, errlen, "a regex over %d atoms once its repetitions are expanded", CF_MOCK_REGEX_EXPANDED_MAX);
            return -1;
        }
    }
    *size = sums[0] != 0 ? sums[0] : 1;
    return 0;
}

static int compile_regex(cf_yctx_t *ctx, yaml_node_t *node, cf_mock_cond_t *c, const char *pattern, size_t len)
{
    char err[256];
    if (check_regex(pattern, len, &c->size, err, sizeof(err)) != 0)
        return cf_yerror(ctx, node, "%s", err);
    c->value = h2o_strdup(NULL, pattern, len).base;
    c->value_len = len;
    int rc = regcomp(&c->re, c->value, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        regerror(rc, NULL, err, sizeof(err));
        free(c->value);
        c->value = NULL;
        return cf_yerror(ctx, node, "bad regex \"%s\": %s", pattern, err);
    }
    c->kind = CF_MOCK_COND_REGEX;
    return 0;
}

/* A value condition: "exact", "~regex", {equals: "exact"}, {regex: "..."}, {absent: true|false}. */
static int decode_cond(cf_yctx_t *ctx, yaml_node_t *node, cf_mock_cond_t *c)
{
    static const char help[] = "expected a value, \"~regex\", {equals: V}, {regex: R} or {absent: true|false}";
    const char *s = cf_yscalar(node);
    if (s != NULL) {
        size_t len = node->data.scalar.length;
        if (len > MAX_VALUE)
            return cf_yerror(ctx, node, "a value longer than %d bytes", MAX_VALUE);
        if (len != 0 && s[0] == '~')
            return compile_regex(ctx, node, c, s + 1, len - 1);
        c->kind = CF_MOCK_COND_EQUALS;
        c->value = h2o_strdup(NULL, s, len).base;
        c->value_len = len;
        return 0;
    }
    if (node->type != YAML_MAPPING_NODE || node->data.mapping.pairs.top - node->data.mapping.pairs.start != 1)
        return cf_yerror(ctx, node, "%s", help);
    yaml_node_pair_t *p = node->data.mapping.pairs.start;
    yaml_node_t *k = cf_yaml_node(ctx->y, p->key), *v = cf_yaml_node(ctx->y, p->value);
    const char *kind = cf_yscalar(k), *val = cf_yscalar(v);
    if (kind == NULL)
        return cf_yerror(ctx, node, "%s", help);
    if (strcmp(kind, "equals") != 0 && strcmp(kind, "regex") != 0 && strcmp(kind, "absent") != 0)
        return cf_yerror(ctx, k, "unknown condition \"%s\" (equals, regex, absent)", kind);
    if (val == NULL)
        return cf_yerror(ctx, v, "%s: expected a string", kind);
    size_t mark = cf_ypath_key(ctx, kind);
    int ret = 0;
    if (strcmp(kind, "equals") == 0) {
        if (v->data.scalar.length > MAX_VALUE) {
            ret = cf_yerror(ctx, v, "a value longer than %d bytes", MAX_VALUE);
        } else {
            c->kind = CF_MOCK_COND_EQUALS;
            c->value = h2o_strdup(NULL, val, v->data.scalar.length).base;
            c->value_len = v->data.scalar.length;
        }
    } else if (strcmp(kind, "regex") == 0) {
        ret = compile_regex(ctx, v, c, val, v->data.scalar.length);
    } else {
        int absent;
        if ((ret = cf_yget_bool(ctx, v, &absent)) == 0)
            c->kind = absent ? CF_MOCK_COND_ABSENT : CF_MOCK_COND_PRESENT;
    }
    cf_ypath_restore(ctx, mark);
    return ret;
}

/* query: / headers: a mapping of names to conditions */
static int decode_named(cf_yctx_t *ctx, yaml_node_t *node, cf_mock_match_t *m, int headers)
{
    if (node->type != YAML_MAPPING_NODE)
        return cf_yerror(ctx, node, "expected a mapping of %s to conditions", headers ? "header names" : "query parameter names");
    size_t n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
    if (m->n + n > MAX_CONDITIONS)
        return cf_yerror(ctx, node, "more than %d conditions", MAX_CONDITIONS);
    cf_mock_cond_t *arr = h2o_mem_alloc((n + 1) * sizeof(*arr));
    memset(arr, 0, (n + 1) * sizeof(*arr));
    if (headers)
        m->headers = arr;
    else
        m->query = arr;
    size_t *count = headers ? &m->n_headers : &m->n_query;
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; ++p) {
        yaml_node_t *k = cf_yaml_node(ctx->y, p->key);
        const char *name = cf_yscalar(k);
        if (name == NULL || *name == '\0' || k->data.scalar.length > 256)
            return cf_yerror(ctx, k, "a name is a non-empty string of at most 256 bytes");
        if (headers && !cf_http_is_token(name, strlen(name)))
            return cf_yerror(ctx, k, "\"%s\" is not a header name", name);
        for (size_t i = 0; i != *count; ++i)
            if (headers ? strcasecmp(arr[i].name, name) == 0 : strcmp(arr[i].name, name) == 0)
                return cf_yerror(ctx, k, "\"%s\" twice", name);
        size_t mark = cf_ypath_key(ctx, name);
        cf_mock_cond_t *c = arr + *count;
        int ret = decode_cond(ctx, cf_yaml_node(ctx->y, p->value), c);
        cf_ypath_restore(ctx, mark);
        c->name = h2o_strdup(NULL, name, SIZE_MAX).base;
        if (headers)
            h2o_strtolower(c->name, strlen(c->name));
        ++*count; /* counted even when it failed, so that dispose frees what it holds */
        if (ret != 0)
            return -1;
        ++m->n;
    }
    return 0;
}

static int on_match_query(cf_yctx_t *ctx, yaml_node_t *node, void *obj)
{
    return decode_named(ctx, node, obj, 0);
}

static int on_match_headers(cf_yctx_t *ctx, yaml_node_t *node, void *obj)
{
    return decode_named(ctx, node, obj, 1);
}

static int on_match_body(cf_yctx_t *ctx, yaml_node_t *node, void *obj)
{
    cf_mock_match_t *m = obj;
    m->body = h2o_mem_alloc(sizeof(*m->body));
    memset(m->body, 0, sizeof(*m->body));
    if (decode_cond(ctx, node, m->body) != 0)
        return -1;
    ++m->n;
    return 0;
}

/* A plain YAML scalar as JSON would read it: null, a boolean, a number, else a string; a quoted one is a string. */
static json_t *scalar_to_json(yaml_node_t *node)
{
    const char *s = (const char *)node->data.scalar.value;
    size_t len = node->data.scalar.length;
    if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        if (strcmp(s, "null") == 0 || strcmp(s, "~") == 0 || len == 0)
            return json_null();
        if (strcmp(s, "true") == 0)
            return json_true();
        if (strcmp(s, "false") == 0)
            return json_false();
        const char *d = s[0] == '-' ? s + 1 : s;
        if (isdigit((unsigned char)d[0])) {
            char *end;
            errno = 0;
            long long i = strtoll(s, &end, 10);
            if (*end == '\0' && errno == 0)
                return json_integer(i);
            double v = strtod(s, &end);
            if (*end == '\0' && isfinite(v))
                return json_real(v);
        }
    }
    return json_stringn(s, len);
}

/* YAML (or JSON) -> jansson, bounded in depth and in nodes */
static json_t *yaml_to_json(cf_yctx_t *ctx, yaml_node_t *node, size_t depth, size_t *nodes)
{
    if (++*nodes > MAX_JSON_NODES)
        return cf_yerror(ctx, node, "more than %d values in json:", MAX_JSON_NODES), NULL;
    if (depth > CF_MOCK_JSON_DEPTH_MAX)
        return cf_yerror(ctx, node, "nested deeper than %d in json:", CF_MOCK_JSON_DEPTH_MAX), NULL;
    switch (node->type) {
    case YAML_SCALAR_NODE: {
        json_t *v = scalar_to_json(node);
        if (v == NULL)
            cf_yerror(ctx, node, "a string that is not UTF-8");
        return v;
    }
    case YAML_SEQUENCE_NODE: {
        json_t *arr = json_array();
        for (yaml_node_item_t *i = node->data.sequence.items.start; i < node->data.sequence.items.top; ++i) {
            json_t *v = yaml_to_json(ctx, cf_yaml_node(ctx->y, *i), depth + 1, nodes);
            if (v == NULL) {
                json_decref(arr);
                return NULL;
            }
            json_array_append_new(arr, v);
        }
        return arr;
    }
    case YAML_MAPPING_NODE: {
        json_t *obj = json_object();
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; ++p) {
            yaml_node_t *k = cf_yaml_node(ctx->y, p->key);
            const char *name = cf_yscalar(k);
            json_t *v = NULL;
            if (name == NULL)
                cf_yerror(ctx, k, "object keys in json: are strings");
            else if (json_object_get(obj, name) != NULL)
                cf_yerror(ctx, k, "\"%s\" twice", name);
            else
                v = yaml_to_json(ctx, cf_yaml_node(ctx->y, p->value), depth + 1, nodes);
            if (v == NULL) {
                json_decref(obj);
                return NULL;
            }
            json_object_set_new(obj, name, v);
        }
        return obj;
    }
    default:
        return cf_yerror(ctx, node, "not a JSON value"), NULL;
    }
}

static int on_match_json(cf_yctx_t *ctx, yaml_node_t *node, void *obj)
{
    cf_mock_match_t *m = obj;
    size_t nodes = 0;
    if ((m->json = yaml_to_json(ctx, node, 1, &nodes)) == NULL)
        return -1;
    ++m->n;
    return 0;
}

int cf_mock_match_decode(cf_yctx_t *ctx, yaml_node_t *node, cf_mock_match_t *m)
{
    static const cf_yfield_t fields[] = {
        {"query", CF_YT_CUSTOM, 0, 0, 0, NULL, on_match_query},
        {"headers", CF_YT_CUSTOM, 0, 0, 0, NULL, on_match_headers},
        {"body", CF_YT_CUSTOM, 0, 0, 0, NULL, on_match_body},
        {"json", CF_YT_CUSTOM, 0, 0, 0, NULL, on_match_json},
        {NULL},
    };
    if (node->type != YAML_MAPPING_NODE)
        return cf_yerror(ctx, node, "expected a mapping: {query: {...}, headers: {...}, body: ..., json: {...}}");
    if (cf_ydecode(ctx, node, fields, m, NULL) != 0)
        return -1;
    if (m->body != NULL && m->json != NULL)
        return cf_yerror(ctx, cf_ymap_get(ctx->y, node, "json"), "body and json exclude each other");
    return 0;
}

/* ---- describing (stub keys) ---- */

static void describe_cond(cf_buf_t *buf, const char *prefix, const cf_mock_cond_t *c)
{
    if (buf->len != 0)
        cf_buf_appends(buf, ", ");
    cf_buf_appends(buf, prefix);
    if (c->name != NULL) {
        cf_buf_appendc(buf, '.');
        cf_buf_appends(buf, c->name);
    }
    switch (c->kind) {
    case CF_MOCK_COND_EQUALS:
        cf_buf_appendc(buf, '=');
        cf_buf_append(buf, c->value, c->value_len);
        break;
    case CF_MOCK_COND_REGEX:
        cf_buf_appendc(buf, '~');
        cf_buf_append(buf, c->value, c->value_len);
        break;
    case CF_MOCK_COND_ABSENT:
        cf_buf_appends(buf, " absent");
        break;
    case CF_MOCK_COND_PRESENT:
        cf_buf_appends(buf, " present");
        break;
    }
}

void cf_mock_match_describe(const cf_mock_match_t *m, cf_buf_t *buf)
{
    cf_buf_t own = CF_BUF_INIT;
    for (size_t i = 0; i != m->n_query; ++i)
        describe_cond(&own, "query", m->query + i);
    for (size_t i = 0; i != m->n_headers; ++i)
        describe_cond(&own, "header", m->headers + i);
    if (m->body != NULL)
        describe_cond(&own, "body", m->body);
    if (m->json != NULL) {
        char *s = json_dumps(m->json, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        if (own.len != 0)
            cf_buf_appends(&own, ", ");
        cf_buf_appends(&own, "json ");
        cf_buf_appends(&own, s != NULL ? s : "?");
        free(s);
    }
    if (own.len != 0)
        cf_buf_append(buf, own.base, own.len);
    cf_buf_free(&own);
}

/* ---- evaluating ---- */

/* A request's value quoted for a message: at most QUOTE_MAX bytes, printable ASCII (others as '?'). */
static void quote(cf_buf_t *buf, const char *s, size_t len)
{
    cf_buf_appendc(buf, '"');
    for (size_t i = 0; i != len && i != QUOTE_MAX; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            cf_buf_appendc(buf, '\\');
        cf_buf_appendc(buf, c >= 0x20 && c < 0x7f ? (char)c : '?');
    }
    cf_buf_appendc(buf, '"');
    if (len > QUOTE_MAX)
        cf_buf_appends(buf, "...");
}

static void add_missed(json_t *missed, cf_buf_t *msg)
{
    json_array_append_new(missed, json_stringn(msg->base, msg->len));
    cf_buf_free(msg);
}

/*
 * Request values are not NUL-terminated: regexec gets a terminated copy (sanitizers' regexec interceptors read up to the
 * NUL whatever the flags), and REG_STARTEND so that a NUL inside the value does not end it early.
 */
static int regex_matches(const regex_t *re, const char *s, size_t len)
{
    char small[256], *copy = len < sizeof(small) ? small : h2o_mem_alloc(len + 1);
    if (len != 0)
        memcpy(copy, s, len);
    copy[len] = '\0';
    regmatch_t range = {0, (regoff_t)len};
    int ok = regexec(re, copy, 1, &range, REG_STARTEND) == 0;
    if (copy != small)
        free(copy);
    return ok;
}

/* Whether a value (base NULL: absent) meets c; when not and missed is given, a message "WHAT: expected ..., got ...". */
static int cond_holds(const cf_mock_cond_t *c, h2o_iovec_t v, const char *what, json_t *missed)
{
    int ok = 0;
    switch (c->kind) {
    case CF_MOCK_COND_EQUALS:
        ok = v.base != NULL && h2o_memis(v.base, v.len, c->value, c->value_len);
        break;
    case CF_MOCK_COND_REGEX:
        if (v.base != NULL && (v.len + 1) > CF_MOCK_REGEX_WORK_MAX / c->size) {
            /* matching takes up to length x automaton size steps, on the loop: too long a value misses */
            if (missed != NULL) {
                cf_buf_t msg = CF_BUF_INIT;
                cf_buf_appendf(&msg, "%s: %zu bytes are too many for this regex (at most %zu for its size)", what, v.len,
                               (size_t)(CF_MOCK_REGEX_WORK_MAX / c->size) - 1);
                add_missed(missed, &msg);
            }
            return 0;
        }
        ok = v.base != NULL && regex_matches(&c->re, v.base, v.len);
        break;
    case CF_MOCK_COND_ABSENT:
        ok = v.base == NULL;
        break;
    case CF_MOCK_COND_PRESENT:
        ok = v.base != NULL;
        break;
    }
    if (ok || missed == NULL)
        return ok;
    cf_buf_t msg = CF_BUF_INIT;
    cf_buf_appendf(&msg, "%s: expected ", what);
    switch (c->kind) {
    case CF_MOCK_COND_EQUALS:
        quote(&msg, c->value, c->value_len);
        break;
    case CF_MOCK_COND_REGEX:
        cf_buf_appends(&msg, "a match of ~");
        quote(&msg, c->value, c->value_len);
        break;
    case CF_MOCK_COND_ABSENT:
        cf_buf_appends(&msg, "none");
        break;
    case CF_MOCK_COND_PRESENT:
        cf_buf_appends(&msg, "one");
        break;
    }
    cf_buf_appends(&msg, ", got ");
    if (v.base == NULL)
        cf_buf_appends(&msg, "none");
    else
        quote(&msg, v.base, v.len);
    add_missed(missed, &msg);
    return 0;
}

/* The first query parameter called name, decoded into the pool ('+' as space), or a NULL base. */
static h2o_iovec_t query_value(cf_mock_request_t *r, const char *name)
{
    if (r->query.base == NULL || r->pool == NULL)
        return h2o_iovec_init(NULL, 0);
    const char *p = r->query.base, *end = r->query.base + r->query.len;
    size_t nlen = strlen(name);
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *pend = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pend - p));
        const char *kend = eq != NULL ? eq : pend;
        if ((size_t)(kend - p) == nlen && memcmp(p, name, nlen) == 0) {
            const char *vs = eq != NULL ? eq + 1 : pend;
            char *out = h2o_mem_alloc_pool(r->pool, (size_t)(pend - vs) + 1);
            size_t n;
            cf_form_decode(vs, (size_t)(pend - vs), out, &n, CF_FORM_LENIENT);
            out[n] = '\0';
            return h2o_iovec_init(out, n);
        }
        p = pend + 1;
    }
    return h2o_iovec_init(NULL, 0);
}

/* A header's value (repeated fields joined with ", ", RFC 9110 5.3), or a NULL base; `host` is the authority. */
static h2o_iovec_t header_value(cf_mock_request_t *r, const char *name)
{
    size_t nlen = strlen(name);
    if (nlen == 4 && memcmp(name, "host", 4) == 0)
        return r->authority.len != 0 ? r->authority : h2o_iovec_init(NULL, 0);
    h2o_iovec_t found = {NULL, 0};
    cf_buf_t joined = CF_BUF_INIT;
    size_t count = 0;
    for (size_t i = 0; i != r->n_headers; ++i) {
        const h2o_header_t *h = r->headers + i;
        if (!h2o_lcstris(h->name->base, h->name->len, name, nlen))
            continue;
        if (count++ == 0) {
            found = h->value;
            continue;
        }
        if (count == 2)
            cf_buf_append(&joined, found.base, found.len);
        cf_buf_appends(&joined, ", ");
        cf_buf_append(&joined, h->value.base, h->value.len);
    }
    if (count > 1) {
        found = r->pool != NULL ? h2o_strdup(r->pool, joined.base, joined.len) : h2o_iovec_init(NULL, 0);
        cf_buf_free(&joined);
    }
    return found;
}

static void json_path_append(cf_buf_t *path, const char *key)
{
    cf_buf_appendc(path, '.');
    cf_buf_appends(path, key);
}

static void json_short(cf_buf_t *buf, const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    size_t len = s != NULL ? strlen(s) : 0;
    if (len > QUOTE_MAX) {
        cf_buf_append(buf, s, QUOTE_MAX);
        cf_buf_appends(buf, "...");
    } else {
        cf_buf_append(buf, s != NULL ? s : "?", s != NULL ? len : 1);
    }
    free(s);
}

static int numbers_equal(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b))
        return json_integer_value(a) == json_integer_value(b);
    return json_number_value(a) == json_number_value(b);
}

/*
 * Whether actual contains want: an object every member of want (recursively), an array exactly want's elements in
 * order (each compared the same way), a number the same number (1 == 1.0), other scalars equal. On a miss, the JSON
 * path of the first difference goes to path and what differs to why. Recursion follows want, whose depth is bounded.
 */
static int json_contains(const json_t *want, const json_t *actual, cf_buf_t *path, cf_buf_t *why)
{
    if (json_is_number(want) && json_is_number(actual)) {
        if (numbers_equal(want, actual))
            return 1;
    } else if (json_is_object(want) && json_is_object(actual)) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)want, key, v)
        {
            size_t mark = path->len;
            json_path_append(path, key);
            json_t *a = json_object_get(actual, key);
            if (a == NULL) {
                cf_buf_appends(why, "expected ");
                json_short(why, v);
                cf_buf_appends(why, ", got none");
                return 0;
            }
            if (!json_contains(v, a, path, why))
                return 0;
            path->len = mark;
        }
        return 1;
    } else if (json_is_array(want) && json_is_array(actual)) {
        if (json_array_size(want) == json_array_size(actual)) {
            for (size_t i = 0; i != json_array_size(want); ++i) {
                size_t mark = path->len;
                cf_buf_appendf(path, "[%zu]", i);
                if (!json_contains(json_array_get(want, i), json_array_get(actual, i), path, why))
                    return 0;
                path->len = mark;
            }
            return 1;
        }
        cf_buf_appendf(why, "expected %zu elements, got %zu: ", json_array_size(want), json_array_size(actual));
        json_short(why, actual);
        return 0;
    } else if (json_equal((json_t *)want, (json_t *)actual)) {
        return 1;
    }
    cf_buf_appends(why, "expected ");
    json_short(why, want);
    cf_buf_appends(why, ", got ");
    json_short(why, actual);
    return 0;
}

static int json_holds(const cf_mock_match_t *m, cf_mock_request_t *r, json_t *missed)
{
    if (r->json_state == 0) {
        r->json_state = -1;
        if (r->body.base != NULL && r->body.len <= CF_MOCK_MATCH_BODY_MAX) {
            /* jansson bounds its own nesting (2048 levels), so a hostile body cannot overflow the stack */
            r->json = json_loadb(r->body.base, r->body.len, JSON_DECODE_ANY, NULL);
            if (r->json != NULL)
                r->json_state = 1;
        }
    }
    cf_buf_t msg = CF_BUF_INIT;
    if (r->json_state < 0) {
        if (missed == NULL)
            return 0;
        if (r->body.base == NULL || r->body.len == 0)
            cf_buf_appends(&msg, "json: expected a JSON body, got none");
        else if (r->body.len > CF_MOCK_MATCH_BODY_MAX)
            cf_buf_appendf(&msg, "json: a body over %d bytes is not matched", CF_MOCK_MATCH_BODY_MAX);
        else
            cf_buf_appends(&msg, "json: the body is not JSON");
        add_missed(missed, &msg);
        return 0;
    }
    cf_buf_t path = CF_BUF_INIT;
    cf_buf_appendc(&path, '$');
    int ok = json_contains(m->json, r->json, &path, &msg);
    if (!ok && missed != NULL) {
        cf_buf_t full = CF_BUF_INIT;
        cf_buf_appends(&full, "json at ");
        cf_buf_append(&full, path.base, path.len);
        cf_buf_appends(&full, ": ");
        cf_buf_append(&full, msg.base, msg.len);
        add_missed(missed, &full);
    }
    cf_buf_free(&path);
    cf_buf_free(&msg);
    return ok;
}

static int body_holds(const cf_mock_cond_t *c, cf_mock_request_t *r, json_t *missed)
{
    h2o_iovec_t body = r->body.base != NULL && r->body.len != 0 ? r->body : h2o_iovec_init(NULL, 0);
    if (body.len > CF_MOCK_MATCH_BODY_MAX && (c->kind == CF_MOCK_COND_EQUALS || c->kind == CF_MOCK_COND_REGEX)) {
        if (missed != NULL) {
            cf_buf_t msg = CF_BUF_INIT;
            cf_buf_appendf(&msg, "body: a body over %d bytes is not matched", CF_MOCK_MATCH_BODY_MAX);
            add_missed(missed, &msg);
        }
        return 0;
    }
    return cond_holds(c, body, "body", missed);
}

size_t cf_mock_match_eval(const cf_mock_match_t *m, cf_mock_request_t *r, json_t *missed)
{
    size_t n_missed = 0;
    char what[300];
    for (size_t i = 0; i != m->n_query; ++i) {
        snprintf(what, sizeof(what), "query %s", m->query[i].name);
        if (!cond_holds(m->query + i, query_value(r, m->query[i].name), what, missed) && (++n_missed, missed == NULL))
            return 1;
    }
    for (size_t i = 0; i != m->n_headers; ++i) {
        snprintf(what, sizeof(what), "header %s", m->headers[i].name);
        if (!cond_holds(m->headers + i, header_value(r, m->headers[i].name), what, missed) && (++n_missed, missed == NULL))
            return 1;
    }
    if (m->body != NULL && !body_holds(m->body, r, missed) && (++n_missed, missed == NULL))
        return 1;
    if (m->json != NULL && !json_holds(m, r, missed) && (++n_missed, missed == NULL))
        return 1;
    return n_missed;
}
