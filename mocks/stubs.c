/* Stubs of conflux-mock: decoding them from YAML or one command-line string, the live set, and matching. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cf_buf.h"
#include "cf_http.h"
#include "cf_net.h"
#include "cf_units.h"
#include "cf_yaml.h"
#include "stubs.h"

const char *const cf_mock_fault_names[] = {"none", "reset", "hang", "empty", "garbage", "truncated", "trickle", NULL};

#define DEFAULT_TRICKLE_INTERVAL 100
#define DEFAULT_PRIORITY 5
#define DEFAULT_PROXY_TIMEOUT 30000
#define MAX_PROXY_TIMEOUT 3600000
/* the longest name of a stub, of a scenario, of a state */
#define MAX_NAME 128

/* the live stubs, in publication order; each holds one reference */
static cf_mock_stub_t **live;
static size_t n_live, cap_live;

/* the names of the listeners, once main has bound them (a stub's `listener:` is resolved against them) */
static const char *const *listener_names;
static size_t n_listener_names;
static int listeners_known;

/* the scenarios stubs have named, in order; never freed before exit, so a stub can point at its own */
static cf_mock_scenario_t **scenarios;
static size_t n_scenarios;

static char *xstrdup(const char *s)
{
    return h2o_strdup(NULL, s, SIZE_MAX).base;
}

int cf_mock_upstream_parse(const char *url, cf_mock_upstream_t *up, char *err, size_t errlen)
{
    if (strncmp(url, "http://", 7) != 0) {
        snprintf(err, errlen, "\"%s\": expected http://HOST:PORT (https is not supported)", url);
        return -1;
    }
    const char *hp = url + 7, *slash = strchr(hp, '/');
    if (slash != NULL && slash[1] != '\0') {
        snprintf(err, errlen, "\"%s\": a proxy URL has no path (the request's path is forwarded as is)", url);
        return -1;
    }
    char *hostport = h2o_strdup(NULL, hp, slash != NULL ? (size_t)(slash - hp) : SIZE_MAX).base, *colon = strrchr(hostport, ':');
    char *end;
    unsigned long port = colon != NULL ? strtoul(colon + 1, &end, 10) : 80;
    if (colon != NULL && (colon[1] == '\0' || *end != '\0' || port == 0 || port > 65535)) {
        snprintf(err, errlen, "\"%s\": not a port number (1-65535)", url);
        free(hostport);
        return -1;
    }
    if (colon != NULL)
        *colon = '\0';
    const char *host = strcmp(hostport, "localhost") == 0 ? "127.0.0.1" : hostport;
    struct in_addr a;
    if (inet_pton(AF_INET, host, &a) != 1) {
        snprintf(err, errlen, "\"%s\": the host must be a numeric IPv4 address or localhost (no name resolution)", url);
        free(hostport);
        return -1;
    }
    char buf[64];
    up->host = h2o_strdup(NULL, host, SIZE_MAX).base;
    up->port = (uint16_t)port;
    snprintf(buf, sizeof(buf), "%s:%u", host, (unsigned)port);
    up->hostport = h2o_strdup(NULL, buf, SIZE_MAX).base;
    snprintf(buf, sizeof(buf), "http://%s:%u", host, (unsigned)port);
    up->url = h2o_strdup(NULL, buf, SIZE_MAX).base;
    free(hostport);
    return 0;
}

void cf_mock_upstream_dispose(cf_mock_upstream_t *up)
{
    free(up->url);
    free(up->host);
    free(up->hostport);
    up->url = up->host = up->hostport = NULL;
}

static void stub_free(cf_mock_stub_t *stub)
{
    free(stub->method);
    free(stub->path);
    for (size_t i = 0; i != stub->n_headers; ++i) {
        free(stub->header_names[i].base);
        free(stub->header_values[i].base);
    }
    free(stub->header_names);
    free(stub->header_values);
    free(stub->body);
    free(stub->body_file);
    free(stub->sequence);
    free(stub->listener);
    free(stub->name);
    cf_mock_match_dispose(&stub->match);
    free(stub->scenario);
    free(stub->state);
    free(stub->next_state);
    cf_mock_upstream_dispose(&stub->proxy);
    free(stub->key);
    for (size_t i = 0; i != stub->n_segs; ++i)
        free(stub->segs[i].text.base);
    free(stub->segs);
    for (size_t i = 0; i != stub->n_pieces; ++i)
        if (stub->pieces[i].kind == CF_MOCK_PIECE_QUERY)
            free(stub->pieces[i].text.base);
    free(stub->pieces);
    free(stub);
}

static cf_mock_stub_t *stub_new(void)
{
    cf_mock_stub_t *stub = h2o_mem_alloc(sizeof(*stub));
    memset(stub, 0, sizeof(*stub));
    stub->status = 200;
    stub->fault_rate = 1;
    stub->trickle_interval = DEFAULT_TRICKLE_INTERVAL;
    stub->priority = DEFAULT_PRIORITY;
    stub->proxy.timeout = DEFAULT_PROXY_TIMEOUT;
    stub->refcnt = 1;
    return stub;
}

void cf_mock_stub_release(cf_mock_stub_t *stub)
{
    if (stub != NULL && --stub->refcnt == 0)
        stub_free(stub);
}

/* ---- checks and compilation shared by the YAML and the one-line forms (errors as plain messages) ---- */

static int is_ident(const char *s, size_t len)
{
    if (len == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (size_t i = 1; i != len; ++i)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return 0;
    return 1;
}

static int check_method(const char *m, char *err, size_t errlen)
{
    if (strcmp(m, "*") == 0 || cf_http_is_token(m, strlen(m)))
        return 0;
    snprintf(err, errlen, "\"%s\" is not a method (use GET, POST, ... or \"*\" for any)", m);
    return -1;
}

/* Splits a pattern such as /users/{id}/files/{rest*} into segments. */
static int compile_path(cf_mock_stub_t *stub, const char *path, char *err, size_t errlen)
{
    if (path[0] != '/') {
        snprintf(err, errlen, "\"%s\" must start with /", path);
        return -1;
    }
    if (strpbrk(path, "?# \t\r\n") != NULL) {
        snprintf(err, errlen, "\"%s\": a path has no query, fragment or whitespace (conditions on the query go under match:)",
                 path);
        return -1;
    }
    size_t n = 1;
    for (const char *p = path + 1; *p != '\0'; ++p)
        n += *p == '/';
    stub->segs = h2o_mem_alloc(n * sizeof(*stub->segs));
    stub->n_segs = 0;
    size_t nparams = 0;
    const char *p = path + 1;
    for (;;) {
        const char *end = strchr(p, '/');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        cf_mock_seg_t *seg = stub->segs + stub->n_segs++;
        seg->kind = CF_MOCK_SEG_LITERAL;
        if (len >= 2 && p[0] == '{' && p[len - 1] == '}') {
            const char *name = p + 1;
            size_t nlen = len - 2;
            seg->kind = CF_MOCK_SEG_PARAM;
            if (nlen != 0 && name[nlen - 1] == '*') {
                seg->kind = CF_MOCK_SEG_REST;
                --nlen;
                if (end != NULL) {
                    snprintf(err, errlen, "\"%s\": {%.*s*} takes the rest of the path and must come last", path, (int)nlen, name);
                    seg->text = h2o_iovec_init(NULL, 0);
                    return -1;
                }
            }
            seg->text = h2o_strdup(NULL, name, nlen);
            if (!is_ident(name, nlen)) {
                snprintf(err, errlen, "\"%s\": \"%.*s\" is not a parameter name (letters, digits, _)", path, (int)nlen, name);
                return -1;
            }
            for (size_t i = 0; i + 1 < stub->n_segs; ++i) {
                if (stub->segs[i].kind != CF_MOCK_SEG_LITERAL &&
                    h2o_memis(stub->segs[i].text.base, stub->segs[i].text.len, seg->text.base, seg->text.len)) {
                    snprintf(err, errlen, "\"%s\": parameter {%.*s} appears twice", path, (int)nlen, name);
                    return -1;
                }
            }
            if (++nparams > CF_MOCK_MAX_PARAMS) {
                snprintf(err, errlen, "\"%s\": more than %d parameters", path, CF_MOCK_MAX_PARAMS);
                return -1;
            }
        } else {
            seg->text = h2o_strdup(NULL, p, len);
            if (memchr(p, '{', len) != NULL || memchr(p, '}', len) != NULL) {
                snprintf(err, errlen, "\"%s\": a {param} must be a whole segment, like /users/{id}", path);
                return -1;
            }
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
    return 0;
}

/* The index of a path parameter among the captures (captures are numbered in order of appearance). */
static ssize_t param_index(cf_mock_stub_t *stub, const char *name, size_t len)
{
    size_t idx = 0;
    for (size_t i = 0; i != stub->n_segs; ++i) {
        if (stub->segs[i].kind == CF_MOCK_SEG_LITERAL)
            continue;
        if (h2o_memis(stub->segs[i].text.base, stub->segs[i].text.len, name, len))
            return (ssize_t)idx;
        ++idx;
    }
    return -1;
}

static void add_piece(cf_mock_stub_t *stub, size_t *cap, cf_mock_piece_t piece)
{
    if (stub->n_pieces == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        stub->pieces = h2o_mem_realloc(stub->pieces, *cap * sizeof(*stub->pieces));
    }
    stub->pieces[stub->n_pieces++] = piece;
}

/* Cuts the body into literal text and {param} / {query.name} references. */
static int compile_body(cf_mock_stub_t *stub, char *err, size_t errlen)
{
    size_t cap = 0, lit = 0, i = 0;
    const char *b = stub->body;
    while (!stub->body_raw && i < stub->body_len) { /* body_raw: one piece of text, braces and all */
        if (b[i] != '{') {
            ++i;
            continue;
        }
        const char *close = memchr(b + i + 1, '}', stub->body_len - i - 1);
        if (close == NULL)
            break;
        const char *name = b + i + 1;
        size_t len = (size_t)(close - name);
        cf_mock_piece_t piece = {CF_MOCK_PIECE_TEXT};
        if (len > 6 && memcmp(name, "query.", 6) == 0 && is_ident(name + 6, len - 6)) {
            piece.kind = CF_MOCK_PIECE_QUERY;
            piece.text = h2o_strdup(NULL, name + 6, len - 6);
        } else if (is_ident(name, len)) {
            ssize_t idx = param_index(stub, name, len);
            if (idx < 0) {
                snprintf(err, errlen, "{%.*s} is not a parameter of the path %s (use {query.%.*s} for a query parameter)", (int)len,
                         name, stub->path, (int)len, name);
                return -1;
            }
            piece.kind = CF_MOCK_PIECE_PARAM;
            piece.param = (size_t)idx;
        } else {
            ++i; /* JSON like {"a": 1} is text */
            continue;
        }
        if (i != lit)
            add_piece(stub, &cap, (cf_mock_piece_t){CF_MOCK_PIECE_TEXT, h2o_iovec_init(b + lit, i - lit)});
        add_piece(stub, &cap, piece);
        i = lit = (size_t)(close - b) + 1;
    }
    if (lit != stub->body_len)
        add_piece(stub, &cap, (cf_mock_piece_t){CF_MOCK_PIECE_TEXT, h2o_iovec_init(b + lit, stub->body_len - lit)});
    return 0;
}

static int check_header(const char *name, const char *value, char *err, size_t errlen)
{
    if (!cf_http_is_token(name, strlen(name))) {
        snprintf(err, errlen, "\"%s\" is not a header name", name);
        return -1;
    }
    static const char *const reserved[] = {"content-length", "transfer-encoding", "connection", "date", NULL};
    for (size_t i = 0; reserved[i] != NULL; ++i) {
        if (strcasecmp(name, reserved[i]) == 0) {
            snprintf(err, errlen, "%s is set by the mock itself", name);
            return -1;
        }
    }
    for (const char *p = value; *p != '\0'; ++p) {
        if (*p == '\r' || *p == '\n') {
            snprintf(err, errlen, "the value of %s has a line break", name);
            return -1;
        }
    }
    return 0;
}

static void add_header(cf_mock_stub_t *stub, const char *name, const char *value)
{
    stub->header_names = h2o_mem_realloc(stub->header_names, (stub->n_headers + 1) * sizeof(*stub->header_names));
    stub->header_values = h2o_mem_realloc(stub->header_values, (stub->n_headers + 1) * sizeof(*stub->header_values));
    stub->header_names[stub->n_headers] = h2o_strdup(NULL, name, SIZE_MAX);
    stub->header_values[stub->n_headers] = h2o_strdup(NULL, value, SIZE_MAX);
    ++stub->n_headers;
    if (strcasecmp(name, "content-type") == 0)
        stub->has_content_type = 1;
}

/* One sequence step: a status (200-599) or a fault name. */
static int parse_step(const char *s, cf_mock_step_t *step, char *err, size_t errlen)
{
    step->status = 0;
    step->fault = CF_MOCK_FAULT_NONE;
    if (isdigit((unsigned char)s[0])) {
        char *end;
        long v = strtol(s, &end, 10);
        if (*end == '\0' && v >= 200 && v <= 599) {
            step->status = (int)v;
            return 0;
        }
    } else {
        for (int i = 1; cf_mock_fault_names[i] != NULL; ++i) {
            if (strcmp(s, cf_mock_fault_names[i]) == 0) {
                step->fault = (cf_mock_fault_t)i;
                return 0;
            }
        }
    }
    snprintf(err, errlen, "\"%s\" is neither a status (200-599) nor a fault (reset, hang, empty, garbage, truncated, trickle)", s);
    return -1;
}

static int parse_rate(const char *s, double *rate, char *err, size_t errlen)
{
    if (cf_parse_fraction(s, rate) != 0) {
        snprintf(err, errlen, "\"%s\" is not a fraction between 0 and 1", s);
        return -1;
    }
    return 0;
}

/* Reads body_file whole (at load time only, never on the request path). */
static int read_body_file(cf_mock_stub_t *stub, const char *base, char *err, size_t errlen)
{
    char pathbuf[4096];
    const char *path = stub->body_file;
    if (path[0] != '/' && base != NULL && strrchr(base, '/') != NULL) {
        /* relative to the stubs file's directory */
        snprintf(pathbuf, sizeof(pathbuf), "%.*s/%s", (int)(strrchr(base, '/') - base), base, path);
        path = pathbuf;
    }
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        snprintf(err, errlen, "cannot open %.300s: %s", path, strerror(errno));
        return -1;
    }
    cf_buf_t buf = CF_BUF_INIT;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) != 0)
        cf_buf_append(&buf, chunk, n);
    int failed = ferror(fp);
    fclose(fp);
    if (failed) {
        snprintf(err, errlen, "cannot read %.300s", path);
        cf_buf_free(&buf);
        return -1;
    }
    stub->body = buf.base != NULL ? buf.base : xstrdup("");
    stub->body_len = buf.len;
    return 0;
}

/* Checks whether a body is JSON-ish, which decides the default Content-Type and the escaping of substitutions. */
static int looks_like_json(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && isspace((unsigned char)s[i]))
        ++i;
    return i < len && (s[i] == '{' || s[i] == '[');
}

/* Finds the index of the stub's listener among the listeners; -1 with a message when there is none of that name. */
static int resolve_listener(cf_mock_stub_t *stub, char *err, size_t errlen)
{
    cf_buf_t names = CF_BUF_INIT;
    for (size_t i = 0; i != n_listener_names; ++i) {
        if (strcmp(listener_names[i], stub->listener) == 0) {
            stub->listener_index = i;
            cf_buf_free(&names);
            return 0;
        }
        cf_buf_appendf(&names, "%s%s", i != 0 ? ", " : "", listener_names[i]);
    }
    snprintf(err, errlen, "no listener is named \"%s\" (listeners: %s)", stub->listener, names.base != NULL ? names.base : "none");
    cf_buf_free(&names);
    return -1;
}

/* Compiles what was configured into a servable stub: key, body template, JSON escaping. */
static int finish_stub(cf_mock_stub_t *stub, char *err, size_t errlen)
{
    if (stub->method == NULL)
        stub->method = xstrdup("GET");
    if (stub->body == NULL)
        stub->body = xstrdup("");
    free(stub->key);
    if (stub->name != NULL) {
        stub->key = xstrdup(stub->name);
    } else {
        /* "METHOD path[ @listener][ [conditions]]": stubs of one method and path differ by what else they require */
        cf_buf_t key = CF_BUF_INIT, conds = CF_BUF_INIT;
        cf_buf_appendf(&key, "%s %s%s%s", stub->method, stub->path, stub->listener != NULL ? " @" : "",
                       stub->listener != NULL ? stub->listener : "");
        cf_mock_match_describe(&stub->match, &conds);
        if (stub->scenario != NULL)
            cf_buf_appendf(&conds, "%sscenario %s%s%s", conds.len != 0 ? ", " : "", stub->scenario, stub->state != NULL ? "=" : "",
                           stub->state != NULL ? stub->state : "");
        if (conds.len != 0)
            cf_buf_appendf(&key, " [%s]", conds.base);
        stub->key = xstrdup(key.base);
        cf_buf_free(&key);
        cf_buf_free(&conds);
    }
    cf_mock_rng_init(&stub->rng, stub->key);
    stub->json_escape = 0;
    for (size_t i = 0; i != stub->n_headers; ++i)
        if (strcasecmp(stub->header_names[i].base, "content-type") == 0)
            stub->json_escape = strstr(stub->header_values[i].base, "json") != NULL;
    if (!stub->has_content_type)
        stub->json_escape = looks_like_json(stub->body, stub->body_len);
    return compile_body(stub, err, errlen);
}

/* ---- the YAML form ---- */

/* while decoding one document: the stubs file's name (for body_file) and whether body_file is allowed */
struct decode_state {
    const char *file;
    int runtime;
};
static struct decode_state decoding;

static int yerr_msg(cf_yctx_t *ctx, yaml_node_t *node, const char *msg)
{
    return cf_yerror(ctx, node, "%s", msg);
}

static int on_path(cf_yctx_t *ctx, yaml_node_t *node, void *obj)
{
    cf_mock_stub_t *stub = obj;
    char err[512];
    if (cf_yget_string(ctx, node, &stub->path) != 0)
        return -1;
    if (compile_path(stub, stub->path, err, sizeof(err)) != 0)
        return yerr_msg(ctx, node, err);
    return 0;
}

static int on_method(cf_yctx_t *ctx, yaml_node_t *node, void *obj)
{
    cf_mock_stub_t *stub = obj;
    char err[256];
    if (cf_yget_string(ctx, node, &stub->method) != 0)
        return -1;
    if (check_method(stub->method, err, sizeof(err)) != 0)
        return yerr_msg(ctx, node, err);
    return 0;
}

static int on_headers(cf_yctx_t *ctx, yaml_node_t *node, void *obj)
{
    cf_mock_stub_t *stub = obj;
    char err[256];
    if (node->type != YAML_MAPPING_NODE)
        return cf_yerror(ctx, node, "expected a mapping of header names to values");
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; ++p) {
        yaml_node_t *k = cf_yaml_node(ctx->y, p->key), *v = cf_yaml_node(ctx->y, p->value);
        const char *name = cf_yscalar(k);
        if (name == NULL)
            return cf_yerror(ctx, k, "header names are strings");
        size_t mark = cf_ypath_key(ctx, name);
        int ret = 0;
        /* a list of strings: the field once per value, in order (Set-Cookie cannot be joined with commas) */
        yaml_node_item_t one[1] = {p->value}, *items = one, *items_end = one + 1;
        if (v->type == YAML_SEQUENCE_NODE) {
            items = v->data.sequence.items.start;
            items_end = v->data.sequence.items.top;
            if (items == items_end)
                ret = cf_yerror(ctx, v, "an empty list of values (leave the header out)");
        }
        for (yaml_node_item_t *it = items; ret == 0 && it < items_end; ++it) {
            yaml_node_t *item = cf_yaml_node(ctx->y, *it);
            const char *value = cf_yscalar(item);
            if (value == NULL)
                ret = cf_yerror(ctx, item, "a header value is a string, or a list of strings");
            else if (check_header(name, value, err, sizeof(err)) != 0)
                ret = yerr_msg(ctx, k, err);
            else
                add_header(stub, name, value);
        }
        cf_ypath_restore(ctx, mark);
        if (ret != 0)
            return -1;
    }
    return 0;
}

static int on_body(cf_yctx_t *ctx, yaml_node_t *node, void *obj)
{
    cf_mock_stub_t *stub = obj;
    const char *s = cf_yscalar(node);
    if (s == NULL)
        return cf_yerror(ctx, node, "expected a string (quote JSON bodies: body: '{\"a\": 1}')");
    free(stub->body);
    stub->body_len = node->data.scalar.length;
    stub->body = h2o_strdup(NULL, s, stub->body_len).base;
    return 0;
}

static int on_delay(cf_yctx_t *ctx, yaml_node_t *node, void *obj)
{
    cf_mock_stub_t *stub = obj;
    cf_mock_delay_t *d = &stub->delay;
    if (node->type == YAML_SCALAR_NODE) {
        if (cf_yget_duration(ctx, node, &d->a) != 0)
            return -1;
        d->kind = d->a != 0 ? CF_MOCK_DELAY_FIXED : CF_MOCK_DELAY_NONE;
        return 0;
    }
    if (node->type != YAML_MAPPING_NODE || node->data.mapping.pairs.top - node->data.mapping.pairs.start != 1)
        return cf_yerror(ctx, node,
                         "expected a duration (500ms), {uniform: [100ms, 900ms]} or {lognormal: {median: 50ms, p99: 800ms}}");
    yaml_node_pair_t *p = node->data.mapping.pairs.start;
    yaml_node_t *k = cf_yaml_node(ctx->y, p->key), *v = cf_yaml_node(ctx->y, p->value);
    const char *kind = cf_yscalar(k);
    int ret = -1;
    if (kind != NULL && strcmp(kind, "uniform") == 0) {
        size_t mark = cf_ypath_key(ctx, "uniform");
        if (v->type != YAML_SEQUENCE_NODE || v->data.sequence.items.top - v->data.sequence.items.start != 2) {
            cf_yerror(ctx, v, "expected [min, max], like [100ms, 900ms]");
        } else if (cf_yget_duration(ctx, cf_yaml_node(ctx->y, v->data.sequence.items.start[0]), &d->a) == 0 &&
                   cf_yget_duration(ctx, cf_yaml_node(ctx->y, v->data.sequence.items.start[1]), &d->b) == 0) {
            if (d->a > d->b)
                cf_yerror(ctx, v, "the lower bound is above the upper bound");
            else
                ret = 0;
        }
        d->kind = CF_MOCK_DELAY_UNIFORM;
        cf_ypath_restore(ctx, mark);
    } else if (kind != NULL && strcmp(kind, "lognormal") == 0) {
        size_t mark = cf_ypath_key(ctx, "lognormal");
        struct {
            uint64_t median, p99;
        } ln = {0, 0};
        static const cf_yfield_t fields[] = {
            {"median", CF_YT_DURATION, 0},
            {"p99", CF_YT_DURATION, sizeof(uint64_t)},
            {NULL},
        };
        uint64_t seen = 0;
        if (cf_ydecode(ctx, v, fields, &ln, &seen) == 0) {
            if (seen != 3)
                cf_yerror(ctx, v, "needs both median and p99");
            else if (ln.median == 0 || ln.p99 < ln.median)
                cf_yerror(ctx, v, "needs 0 < median <= p99");
            else
                ret = 0;
        }
        d->kind = CF_MOCK_DELAY_LOGNORMAL;
        d->a = ln.median;
        d->b = ln.p99;
        cf_ypath_restore(ctx, mark);
    } else {
        cf_yerror(ctx, k, "unknown delay kind \"%s\" (use uniform or lognormal, or a plain duration)", kind ? kind : "");
    }
    return ret;
}

/* fault: a fault name, or a status (200-599) that replaces the stub's for the requests the fault is drawn for */
static int on_fault(cf_yctx_t *ctx, yaml_node_t *node, void *obj)
{
    cf_mock_stub_t *stub = obj;
    char err[256];
    cf_mock_step_t step;
    const char *s = cf_yscalar(node);
    if (s == NULL)
        return cf_yerror(ctx, node, "expected a fault name or a status");
    if (strcmp(s, "none") == 0)
        step = (cf_mock_step_t){0, CF_MOCK_FAULT_NONE};
    else if (parse_step(s, &step, err, sizeof(err)) != 0)
        return yerr_msg(ctx, node, err);
    stub->fault = step.fault;
    stub->fault_status = (uint64_t)step.status;
    return 0;
}

static int on_fault_rate(cf_yctx_t *ctx, yaml_node_t *node, void *obj)
{
    cf_mock_stub_t *stub = obj;
    char err[256];
    const char *s = cf_yscalar(node);
    if (s == NULL)
        return cf_yerror(ctx, node, "expected a number between 0 and 1");
    if (parse_rate(s, &stub->fault_rate, err, sizeof(err)) != 0)
        return yerr_msg(ctx, node, err);
    return 0;
}

static int on_sequence(cf_yctx_t *ctx, yaml_node_t *node, void *obj)
{
    cf_mock_stub_t *stub = obj;
    char err[256];
    if (node->type != YAML_SEQUENCE_NODE || node->data.sequence.items.top == node->data.sequence.items.start)
        return cf_yerror(ctx, node, "expected a non-empty list of statuses or faults, like [503, 503, 200]");
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    stub->sequence = h2o_mem_alloc(n * sizeof(*stub->sequence));
    stub->n_sequence = n;
    for (size_t i = 0; i != n; ++i) {
        yaml_node_t *item = cf_yaml_node(ctx->y, node->data.sequence.items.start[i]);
        const char *s = cf_yscalar(item);
        size_t mark = cf_ypath_index(ctx, i);
        int ret = 0;
        if (s == NULL)
            ret = cf_yerror(ctx, item, "expected a status or a fault name");
        else if (parse_step(s, stub->sequence + i, err, sizeof(err)) != 0)
            ret = yerr_msg(ctx, item, err);
        cf_ypath_restore(ctx, mark);
        if (ret != 0)
            return -1;
    }
    return 0;
}

/* a stub's name: printable, so that it reads well as a key in the journal and the stats */
static int on_name(cf_yctx_t *ctx, yaml_node_t *node, void *obj)
{
    cf_mock_stub_t *stub = obj;
    if (cf_yget_string(ctx, node, &stub->name) != 0)
        return -1;
    if (strlen(stub->name) > MAX_NAME)
        return cf_yerror(ctx, node, "a name longer than %d bytes", MAX_NAME);
    for (const char *p = stub->name; *p != '\0'; ++p)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return cf_yerror(ctx, node, "a name with a control character");
    return 0;
}

static int on_proxy(cf_yctx_t *ctx, yaml_node_t *node, void *obj)
{
    cf_mock_stub_t *stub = obj;
    char err[512];
    const char *s = cf_yscalar(node);
    if (s == NULL)
        return cf_yerror(ctx, node, "expected http://HOST:PORT");
    cf_mock_upstream_dispose(&stub->proxy);
    if (cf_mock_upstream_parse(s, &stub->proxy, err, sizeof(err)) != 0)
        return yerr_msg(ctx, node, err);
    return 0;
}

static int on_match(cf_yctx_t *ctx, yaml_node_t *node, void *obj)
{
    cf_mock_stub_t *stub = obj;
    return cf_mock_match_decode(ctx, node, &stub->match);
}

/* scenario:, state:, next_state: names of letters, digits, '_', '-', '.' */
static int get_scenario_name(cf_yctx_t *ctx, yaml_node_t *node, char **out)
{
    if (cf_yget_string(ctx, node, out) != 0)
        return -1;
    if (strlen(*out) > MAX_NAME)
        return cf_yerror(ctx, node, "longer than %d bytes", MAX_NAME);
    for (const char *p = *out; *p != '\0'; ++p)
        if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.'))
            return cf_yerror(ctx, node, "\"%s\": use letters, digits, '_', '-' and '.'", *out);
    return 0;
}

static int on_scenario(cf_yctx_t *ctx, yaml_node_t *node, void *obj)
{
    return get_scenario_name(ctx, node, &((cf_mock_stub_t *)obj)->scenario);
}

static int on_state(cf_yctx_t *ctx, yaml_node_t *node, void *obj)
{
    return get_scenario_name(ctx, node, &((cf_mock_stub_t *)obj)->state);
}

static int on_next_state(cf_yctx_t *ctx, yaml_node_t *node, void *obj)
{
    return get_scenario_name(ctx, node, &((cf_mock_stub_t *)obj)->next_state);
}

static const cf_yfield_t stub_fields[] = {
    {"path", CF_YT_CUSTOM, 0, 0, 0, NULL, on_path},
    {"method", CF_YT_CUSTOM, 0, 0, 0, NULL, on_method},
    {"status", CF_YT_UINT, offsetof(cf_mock_stub_t, status), 200, 599},
    {"headers", CF_YT_CUSTOM, 0, 0, 0, NULL, on_headers},
    {"body", CF_YT_CUSTOM, 0, 0, 0, NULL, on_body},
    {"body_file", CF_YT_STRING, offsetof(cf_mock_stub_t, body_file)},
    {"body_raw", CF_YT_BOOL, offsetof(cf_mock_stub_t, body_raw)},
    {"delay", CF_YT_CUSTOM, 0, 0, 0, NULL, on_delay},
    {"fault", CF_YT_CUSTOM, 0, 0, 0, NULL, on_fault},
    {"fault_rate", CF_YT_CUSTOM, 0, 0, 0, NULL, on_fault_rate},
    {"sequence", CF_YT_CUSTOM, 0, 0, 0, NULL, on_sequence},
    {"trickle_interval", CF_YT_DURATION, offsetof(cf_mock_stub_t, trickle_interval), 1, 60000},
    {"listener", CF_YT_STRING, offsetof(cf_mock_stub_t, listener)},
    {"name", CF_YT_CUSTOM, 0, 0, 0, NULL, on_name},
    {"priority", CF_YT_UINT, offsetof(cf_mock_stub_t, priority), 0, 1000000},
    {"match", CF_YT_CUSTOM, 0, 0, 0, NULL, on_match},
    {"scenario", CF_YT_CUSTOM, 0, 0, 0, NULL, on_scenario},
    {"state", CF_YT_CUSTOM, 0, 0, 0, NULL, on_state},
    {"next_state", CF_YT_CUSTOM, 0, 0, 0, NULL, on_next_state},
    {"proxy", CF_YT_CUSTOM, 0, 0, 0, NULL, on_proxy},
    {"proxy_timeout", CF_YT_DURATION, offsetof(cf_mock_stub_t, proxy.timeout), 1, MAX_PROXY_TIMEOUT},
    {NULL},
};
enum { F_PATH, F_METHOD, F_STATUS, F_HEADERS, F_BODY, F_BODY_FILE };

static cf_mock_stub_t *decode_stub(cf_yctx_t *ctx, yaml_node_t *node)
{
    cf_mock_stub_t *stub = stub_new();
    char err[512];
    uint64_t seen = 0;
    if (cf_ydecode(ctx, node, stub_fields, stub, &seen) != 0)
        goto Error;
    if ((seen & (1u << F_PATH)) == 0) {
        cf_yerror(ctx, node, "path is required");
        goto Error;
    }
    if (stub->scenario == NULL && (stub->state != NULL || stub->next_state != NULL)) {
        const char *k = stub->state != NULL ? "state" : "next_state";
        size_t mark = cf_ypath_key(ctx, k);
        cf_yerror(ctx, cf_ymap_get(ctx->y, node, k), "needs scenario: (the scenario whose state it is)");
        cf_ypath_restore(ctx, mark);
        goto Error;
    }
    if (stub->proxy.url == NULL && cf_ymap_get(ctx->y, node, "proxy_timeout") != NULL) {
        size_t mark = cf_ypath_key(ctx, "proxy_timeout");
        cf_yerror(ctx, cf_ymap_get(ctx->y, node, "proxy_timeout"), "needs proxy: (the upstream it bounds)");
        cf_ypath_restore(ctx, mark);
        goto Error;
    }
    if (stub->proxy.url != NULL && stub->n_sequence != 0) {
        cf_yerror(ctx, cf_ymap_get(ctx->y, node, "sequence"), "sequence and proxy exclude each other");
        goto Error;
    }
    if ((seen & (1u << F_BODY)) != 0 && (seen & (1u << F_BODY_FILE)) != 0) {
        cf_yerror(ctx, cf_ymap_get(ctx->y, node, "body_file"), "body and body_file exclude each other");
        goto Error;
    }
    if (stub->body_file != NULL) {
        yaml_node_t *bf = cf_ymap_get(ctx->y, node, "body_file");
        size_t mark = cf_ypath_key(ctx, "body_file");
        int ret = decoding.runtime ? cf_yerror(ctx, bf, "not accepted at runtime (no disk reads on the loop): send body")
                  : read_body_file(stub, decoding.file, err, sizeof(err)) != 0 ? yerr_msg(ctx, bf, err)
                                                                               : 0;
        cf_ypath_restore(ctx, mark);
        if (ret != 0)
            goto Error;
    }
    /* at runtime the listeners are known; a file's stubs wait for them (cf_mock_stubs_set_listeners) */
    if (stub->listener != NULL && (listeners_known || decoding.runtime) && resolve_listener(stub, err, sizeof(err)) != 0) {
        size_t mark = cf_ypath_key(ctx, "listener");
        yerr_msg(ctx, cf_ymap_get(ctx->y, node, "listener"), err);
        cf_ypath_restore(ctx, mark);
        goto Error;
    }
    if (finish_stub(stub, err, sizeof(err)) != 0) {
        yaml_node_t *b = cf_ymap_get(ctx->y, node, "body");
        size_t mark = cf_ypath_key(ctx, b != NULL ? "body" : "body_file");
        yerr_msg(ctx, b != NULL ? b : cf_ymap_get(ctx->y, node, "body_file"), err);
        cf_ypath_restore(ctx, mark);
        goto Error;
    }
    return stub;
Error:
    stub_free(stub);
    return NULL;
}

/* Decodes a list of stubs (under the current key path); returns a malloc'ed array or NULL with ctx failed. */
static cf_mock_stub_t **decode_stub_list(cf_yctx_t *ctx, yaml_node_t *node, size_t *n)
{
    if (node->type != YAML_SEQUENCE_NODE)
        return cf_yerror(ctx, node, "expected a list of stubs"), NULL;
    size_t cnt = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    cf_mock_stub_t **stubs = h2o_mem_alloc((cnt + 1) * sizeof(*stubs));
    for (size_t i = 0; i != cnt; ++i) {
        yaml_node_t *item = cf_yaml_node(ctx->y, node->data.sequence.items.start[i]);
        size_t mark = cf_ypath_index(ctx, i);
        stubs[i] = decode_stub(ctx, item);
        for (size_t j = 0; stubs[i] != NULL && j != i; ++j) {
            if (strcmp(stubs[j]->key, stubs[i]->key) == 0) {
                cf_yerror(ctx, item, "a second stub for %s (the first is [%zu]): tell them apart with name:", stubs[i]->key, j);
                stub_free(stubs[i]);
                stubs[i] = NULL;
            }
        }
        cf_ypath_restore(ctx, mark);
        if (stubs[i] == NULL) {
            for (size_t j = 0; j != i; ++j)
                stub_free(stubs[j]);
            free(stubs);
            return NULL;
        }
    }
    *n = cnt;
    return stubs;
}

cf_mock_scenario_t *cf_mock_scenario_find(const char *name)
{
    for (size_t i = 0; i != n_scenarios; ++i)
        if (strcmp(scenarios[i]->name, name) == 0)
            return scenarios[i];
    return NULL;
}

void cf_mock_scenario_set(cf_mock_scenario_t *s, const char *state)
{
    free(s->state);
    s->state = xstrdup(state);
}

cf_mock_scenario_t **cf_mock_scenarios_list(size_t *n)
{
    *n = n_scenarios;
    return scenarios;
}

/* The scenario of that name, created in its first state when no stub named it before. */
static cf_mock_scenario_t *scenario_get(const char *name)
{
    cf_mock_scenario_t *s = cf_mock_scenario_find(name);
    if (s != NULL)
        return s;
    s = h2o_mem_alloc(sizeof(*s));
    s->name = xstrdup(name);
    s->state = xstrdup(CF_MOCK_SCENARIO_START);
    scenarios = h2o_mem_realloc(scenarios, (n_scenarios + 1) * sizeof(*scenarios));
    scenarios[n_scenarios++] = s;
    return s;
}

/* Adds a stub to the live set, replacing the one with the same key in place. */
static int publish(cf_mock_stub_t *stub)
{
    if (stub->scenario != NULL)
        stub->scen = scenario_get(stub->scenario);
    for (size_t i = 0; i != n_live; ++i) {
        if (strcmp(live[i]->key, stub->key) == 0) {
            cf_mock_stub_release(live[i]);
            live[i] = stub;
            return 1;
        }
    }
    if (n_live == cap_live) {
        cap_live = cap_live ? cap_live * 2 : 16;
        live = h2o_mem_realloc(live, cap_live * sizeof(*live));
    }
    live[n_live++] = stub;
    return 0;
}

struct file_conf {
    cf_mock_listen_t *listen;
    size_t n_listen;
    cf_mock_stub_t **stubs;
    size_t n_stubs;
    cf_mock_stub_t *fallback; /* the file-level proxy:, or NULL */
};

/* The file-level `proxy:` is a stub named "proxy" for every method and path that any other stub beats. */
static int on_file_proxy(cf_yctx_t *ctx, yaml_node_t *node, void *obj)
{
    struct file_conf *conf = obj;
    char err[64];
    if (conf->fallback == NULL) {
        conf->fallback = stub_new();
        conf->fallback->method = xstrdup("*");
        conf->fallback->path = xstrdup("/{rest*}");
        conf->fallback->name = xstrdup("proxy");
        conf->fallback->priority = UINT64_MAX;
        if (compile_path(conf->fallback, conf->fallback->path, err, sizeof(err)) != 0 ||
            finish_stub(conf->fallback, err, sizeof(err)) != 0)
            return cf_yerror(ctx, node, "%s", err);
    }
    return on_proxy(ctx, node, conf->fallback);
}

static int on_file_proxy_timeout(cf_yctx_t *ctx, yaml_node_t *node, void *obj)
{
    struct file_conf *conf = obj;
    uint64_t ms;
    if (cf_yget_duration(ctx, node, &ms) != 0)
        return -1;
    if (ms == 0 || ms > MAX_PROXY_TIMEOUT)
        return cf_yerror(ctx, node, "expected a duration from 1ms to 1h");
    if (conf->fallback == NULL)
        return cf_yerror(ctx, node, "proxy_timeout needs proxy: above it");
    conf->fallback->proxy.timeout = ms;
    return 0;
}

static void free_listen(cf_mock_listen_t *listen, size_t n)
{
    for (size_t i = 0; i != n; ++i) {
        free(listen[i].name);
        free(listen[i].address);
    }
    free(listen);
}

static int on_stubs(cf_yctx_t *ctx, yaml_node_t *node, void *obj)
{
    struct file_conf *conf = obj;
    conf->stubs = decode_stub_list(ctx, node, &conf->n_stubs);
    return conf->stubs != NULL ? 0 : -1;
}

/* One listener of `listen:`: its address node, and its name (NULL in a list, which names it after its address). */
static int add_listen(cf_yctx_t *ctx, struct file_conf *conf, const char *name, yaml_node_t *node)
{
    char *host = NULL, *address = NULL;
    uint16_t port;
    if (cf_yget_string(ctx, node, &address) != 0)
        return -1;
    cf_mock_listen_t *l = conf->listen + conf->n_listen++;
    l->address = address;
    l->name = name != NULL ? xstrdup(name) : NULL;
    if (cf_parse_hostport(address, &host, &port) != 0)
        return cf_yerror(ctx, node, "\"%s\" is not host:port (like 127.0.0.1:9001)", address);
    free(host);
    return 0;
}

/* listen: host:port, a list of them, or a mapping of names to them */
static int on_listen(cf_yctx_t *ctx, yaml_node_t *node, void *obj)
{
    struct file_conf *conf = obj;
    if (node->type == YAML_SCALAR_NODE) {
        conf->listen = h2o_mem_alloc(sizeof(*conf->listen));
        return add_listen(ctx, conf, NULL, node);
    }
    if (node->type == YAML_SEQUENCE_NODE) {
        size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
        conf->listen = h2o_mem_alloc((n + 1) * sizeof(*conf->listen));
        for (size_t i = 0; i != n; ++i) {
            size_t mark = cf_ypath_index(ctx, i);
            int ret = add_listen(ctx, conf, NULL, cf_yaml_node(ctx->y, node->data.sequence.items.start[i]));
            cf_ypath_restore(ctx, mark);
            if (ret != 0)
                return -1;
        }
    } else if (node->type == YAML_MAPPING_NODE) {
        size_t n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
        conf->listen = h2o_mem_alloc((n + 1) * sizeof(*conf->listen));
        for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; ++p) {
            yaml_node_t *k = cf_yaml_node(ctx->y, p->key);
            const char *name = cf_yscalar(k);
            if (name == NULL || !cf_mock_listener_name_ok(name))
                return cf_yerror(ctx, k, "a listener's name is letters, digits, '_', '-' and '.'");
            for (size_t i = 0; i != conf->n_listen; ++i)
                if (strcmp(conf->listen[i].name, name) == 0)
                    return cf_yerror(ctx, k, "two listeners named \"%s\"", name);
            size_t mark = cf_ypath_key(ctx, name);
            int ret = add_listen(ctx, conf, name, cf_yaml_node(ctx->y, p->value));
            cf_ypath_restore(ctx, mark);
            if (ret != 0)
                return -1;
        }
    } else {
        return cf_yerror(ctx, node, "expected host:port, a list of them, or a mapping of names to them");
    }
    if (conf->n_listen == 0)
        return cf_yerror(ctx, node, "no listener");
    return 0;
}

int cf_mock_load_file(const char *file, cf_mock_listen_t **listen, size_t *n_listen, char *err, size_t errlen)
{
    static const cf_yfield_t fields[] = {
        {"listen", CF_YT_CUSTOM, 0, 0, 0, NULL, on_listen},
        {"stubs", CF_YT_CUSTOM, 0, 0, 0, NULL, on_stubs},
        {"proxy", CF_YT_CUSTOM, 0, 0, 0, NULL, on_file_proxy},
        {"proxy_timeout", CF_YT_CUSTOM, 0, 0, 0, NULL, on_file_proxy_timeout},
        {NULL},
    };
    cf_yaml_t y;
    cf_yctx_t ctx;
    struct file_conf conf = {NULL, 0, NULL, 0, NULL};
    if (cf_yaml_load_file(&y, file, err, errlen) != 0)
        return -1;
    cf_yctx_init(&ctx, &y);
    decoding = (struct decode_state){file, 0};
    yaml_node_t *root = cf_yaml_root(&y);
    int ret = 0;
    if (root != NULL && cf_ydecode(&ctx, root, fields, &conf, NULL) != 0) {
        snprintf(err, errlen, "%s", ctx.err);
        ret = -1;
    }
    cf_yaml_dispose(&y);
    if (ret == 0) {
        for (size_t i = 0; i != conf.n_stubs; ++i)
            publish(conf.stubs[i]);
        if (conf.fallback != NULL)
            publish(conf.fallback);
        if (conf.listen != NULL) {
            free_listen(*listen, *n_listen);
            *listen = conf.listen;
            *n_listen = conf.n_listen;
            conf.listen = NULL;
            conf.n_listen = 0;
        }
    } else {
        for (size_t i = 0; i != conf.n_stubs; ++i)
            stub_free(conf.stubs[i]);
        if (conf.fallback != NULL)
            stub_free(conf.fallback);
    }
    free(conf.stubs);
    free_listen(conf.listen, conf.n_listen);
    return ret;
}

int cf_mock_load_runtime(const char *src, size_t len, size_t *replaced, char *err, size_t errlen)
{
    cf_yaml_t y;
    cf_yctx_t ctx;
    cf_mock_stub_t **stubs = NULL;
    size_t n = 0;
    if (cf_yaml_load_string(&y, "request", src, len, err, errlen) != 0)
        return -1;
    cf_yctx_init(&ctx, &y);
    decoding = (struct decode_state){NULL, 1};
    yaml_node_t *root = cf_yaml_root(&y);
    if (root == NULL) {
        cf_yerror(&ctx, NULL, "no stubs in the body (send a stub, a list of stubs, or {stubs: [...]})");
    } else if (root->type == YAML_SEQUENCE_NODE) {
        stubs = decode_stub_list(&ctx, root, &n);
    } else if (root->type == YAML_MAPPING_NODE && cf_ymap_get(&y, root, "stubs") != NULL) {
        if (root->data.mapping.pairs.top - root->data.mapping.pairs.start != 1) {
            cf_yerror(&ctx, root, "with stubs:, nothing else is accepted at runtime");
        } else {
            size_t mark = cf_ypath_key(&ctx, "stubs");
            stubs = decode_stub_list(&ctx, cf_ymap_get(&y, root, "stubs"), &n);
            cf_ypath_restore(&ctx, mark);
        }
    } else {
        stubs = h2o_mem_alloc(sizeof(*stubs));
        if ((stubs[0] = decode_stub(&ctx, root)) != NULL)
            n = 1;
        else
            free(stubs), stubs = NULL;
    }
    cf_yaml_dispose(&y);
    if (stubs == NULL) {
        snprintf(err, errlen, "%s", ctx.err);
        return -1;
    }
    *replaced = 0;
    for (size_t i = 0; i != n; ++i)
        *replaced += (size_t)publish(stubs[i]);
    free(stubs);
    return (int)n;
}

/* ---- the one-line form: METHOD PATH STATUS [BODY] [key=value ...] ---- */

static int apply_option(cf_mock_stub_t *stub, const char *opt, char *err, size_t errlen)
{
    const char *eq = strchr(opt, '=');
    size_t klen = (size_t)(eq - opt);
    const char *v = eq + 1;
    char msg[300];
    if (h2o_memis(opt, klen, H2O_STRLIT("delay"))) {
        if (cf_mock_delay_parse(v, &stub->delay, msg, sizeof(msg)) != 0)
            goto Bad;
    } else if (h2o_memis(opt, klen, H2O_STRLIT("fault"))) {
        cf_mock_step_t step = {0, CF_MOCK_FAULT_NONE};
        if (strcmp(v, "none") != 0 && parse_step(v, &step, msg, sizeof(msg)) != 0)
            goto Bad;
        stub->fault = step.fault;
        stub->fault_status = (uint64_t)step.status;
    } else if (h2o_memis(opt, klen, H2O_STRLIT("fault_rate"))) {
        if (parse_rate(v, &stub->fault_rate, msg, sizeof(msg)) != 0)
            goto Bad;
    } else if (h2o_memis(opt, klen, H2O_STRLIT("trickle_interval"))) {
        if (cf_parse_duration(v, &stub->trickle_interval) != 0 || stub->trickle_interval == 0 || stub->trickle_interval > 60000) {
            snprintf(msg, sizeof(msg), "\"%s\" is not a duration between 1ms and 1m", v);
            goto Bad;
        }
    } else if (h2o_memis(opt, klen, H2O_STRLIT("listener"))) {
        free(stub->listener);
        stub->listener = xstrdup(v);
    } else if (h2o_memis(opt, klen, H2O_STRLIT("header"))) {
        const char *colon = strchr(v, ':');
        if (colon == NULL) {
            snprintf(msg, sizeof(msg), "\"%s\" is not Name:Value", v);
            goto Bad;
        }
        char *name = h2o_strdup(NULL, v, (size_t)(colon - v)).base;
        const char *value = colon + 1;
        while (*value == ' ')
            ++value;
        int ret = check_header(name, value, msg, sizeof(msg));
        if (ret == 0)
            add_header(stub, name, value);
        free(name);
        if (ret != 0)
            goto Bad;
    } else if (h2o_memis(opt, klen, H2O_STRLIT("sequence"))) {
        size_t n = 1;
        for (const char *p = v; *p != '\0'; ++p)
            n += *p == ',';
        free(stub->sequence);
        stub->sequence = h2o_mem_alloc(n * sizeof(*stub->sequence));
        stub->n_sequence = n;
        const char *p = v;
        for (size_t i = 0; i != n; ++i) {
            const char *end = strchr(p, ',');
            char *item = h2o_strdup(NULL, p, end != NULL ? (size_t)(end - p) : strlen(p)).base;
            int ret = parse_step(item, stub->sequence + i, msg, sizeof(msg));
            free(item);
            if (ret != 0)
                goto Bad;
            if (end != NULL)
                p = end + 1;
        }
    } else {
        snprintf(msg, sizeof(msg),
                 "unknown option \"%.*s\" (delay, fault, fault_rate, header, listener, sequence, trickle_interval)", (int)klen,
                 opt);
        goto Bad;
    }
    return 0;
Bad:
    snprintf(err, errlen, "%.*s: %s", (int)klen, opt, msg);
    return -1;
}

static int is_option(const char *tok, size_t len)
{
    static const char *const keys[] = {
        "delay=", "fault=", "fault_rate=", "header=", "listener=", "sequence=", "trickle_interval=", NULL};
    for (size_t i = 0; keys[i] != NULL; ++i)
        if (len > strlen(keys[i]) && memcmp(tok, keys[i], strlen(keys[i])) == 0)
            return 1;
    return 0;
}

int cf_mock_load_cli(const char *line, char *err, size_t errlen)
{
    cf_mock_stub_t *stub = stub_new();
    char msg[512];
    const char *p = line, *tok[3];
    size_t toklen[3];
    for (int i = 0; i != 3; ++i) {
        while (*p == ' ')
            ++p;
        tok[i] = p;
        while (*p != ' ' && *p != '\0')
            ++p;
        toklen[i] = (size_t)(p - tok[i]);
        if (toklen[i] == 0) {
            snprintf(msg, sizeof(msg), "expected METHOD PATH STATUS [BODY] [delay=..] [fault=..] [header=Name:Value] ...");
            goto Error;
        }
    }
    stub->method = h2o_strdup(NULL, tok[0], toklen[0]).base;
    stub->path = h2o_strdup(NULL, tok[1], toklen[1]).base;
    char *status = h2o_strdup(NULL, tok[2], toklen[2]).base, *end;
    long st = strtol(status, &end, 10);
    int bad_status = *end != '\0' || st < 200 || st > 599;
    free(status);
    if (bad_status) {
        snprintf(msg, sizeof(msg), "\"%.*s\" is not a status (200-599)", (int)toklen[2], tok[2]);
        goto Error;
    }
    stub->status = (uint64_t)st;
    if (check_method(stub->method, msg, sizeof(msg)) != 0 || compile_path(stub, stub->path, msg, sizeof(msg)) != 0)
        goto Error;
    /* options are the trailing key=value words; what is between the status and them is the body */
    while (*p == ' ')
        ++p;
    const char *body_end = p + strlen(p);
    const char *opts[32];
    size_t nopts = 0;
    for (;;) {
        const char *e = body_end;
        while (e > p && e[-1] == ' ')
            --e;
        const char *s = e;
        while (s > p && s[-1] != ' ')
            --s;
        if (s == e || !is_option(s, (size_t)(e - s)) || nopts == sizeof(opts) / sizeof(opts[0]))
            break;
        opts[nopts++] = h2o_strdup(NULL, s, (size_t)(e - s)).base;
        body_end = s;
    }
    while (body_end > p && body_end[-1] == ' ')
        --body_end;
    stub->body = h2o_strdup(NULL, p, (size_t)(body_end - p)).base;
    stub->body_len = (size_t)(body_end - p);
    int failed = 0;
    while (nopts != 0) {
        char *o = (char *)opts[--nopts];
        if (!failed && apply_option(stub, o, msg, sizeof(msg)) != 0)
            failed = 1;
        free(o);
    }
    if (failed || finish_stub(stub, msg, sizeof(msg)) != 0)
        goto Error;
    publish(stub);
    return 0;
Error:
    snprintf(err, errlen, "--stub '%s': %s", line, msg);
    stub_free(stub);
    return -1;
}

/* ---- matching ---- */

/* how specific a segment kind is: literal > {param} > {rest*} */
static int seg_rank(const cf_mock_stub_t *s, size_t i)
{
    return s->segs[i].kind == CF_MOCK_SEG_LITERAL ? 2 : s->segs[i].kind == CF_MOCK_SEG_PARAM ? 1 : 0;
}

/* > 0 when a is more specific than b */
static int compare_specificity(const cf_mock_stub_t *a, const cf_mock_stub_t *b)
{
    size_t n = a->n_segs < b->n_segs ? a->n_segs : b->n_segs;
    for (size_t i = 0; i != n; ++i) {
        int d = seg_rank(a, i) - seg_rank(b, i);
        if (d != 0)
            return d;
    }
    if (a->n_segs != b->n_segs)
        return a->n_segs > b->n_segs ? 1 : -1;
    int d = (strcmp(a->method, "*") != 0) - (strcmp(b->method, "*") != 0);
    return d != 0 ? d : (a->listener != NULL) - (b->listener != NULL);
}

static int match_path(const cf_mock_stub_t *stub, h2o_iovec_t path, h2o_iovec_t *caps)
{
    /* `off` is where the next segment starts; path.len + 1 once the last segment has been consumed */
    size_t off = 1, ncap = 0;
    for (size_t i = 0; i != stub->n_segs; ++i) {
        const cf_mock_seg_t *seg = stub->segs + i;
        if (seg->kind == CF_MOCK_SEG_REST) {
            caps[ncap++] = off <= path.len ? h2o_iovec_init(path.base + off, path.len - off) : h2o_iovec_init(path.base, 0);
            return 1;
        }
        if (off > path.len)
            return 0;
        const char *slash = memchr(path.base + off, '/', path.len - off);
        size_t segend = slash != NULL ? (size_t)(slash - path.base) : path.len;
        h2o_iovec_t s = h2o_iovec_init(path.base + off, segend - off);
        if (seg->kind == CF_MOCK_SEG_LITERAL) {
            if (!h2o_memis(s.base, s.len, seg->text.base, seg->text.len))
                return 0;
        } else {
            if (s.len == 0)
                return 0;
            caps[ncap++] = s;
        }
        off = segend + 1;
    }
    return off == path.len + 1;
}

static int method_matches(const cf_mock_stub_t *s, h2o_iovec_t method)
{
    return strcmp(s->method, "*") == 0 || h2o_memis(method.base, method.len, s->method, strlen(s->method));
}

static int state_holds(const cf_mock_stub_t *s)
{
    return s->state == NULL || strcmp(s->scen->state, s->state) == 0;
}

/*
 * Method and path come first, and most stubs have nothing else: conditions (and the body's JSON parse, done once per
 * request) are looked at only for stubs whose method and path match, and only while they could still win.
 */
cf_mock_stub_t *cf_mock_stubs_match(cf_mock_request_t *r, h2o_iovec_t *caps)
{
    cf_mock_stub_t *best = NULL;
    h2o_iovec_t tmp[CF_MOCK_MAX_PARAMS];
    if (r->path.len == 0 || r->path.base[0] != '/')
        return NULL;
    for (size_t i = 0; i != n_live; ++i) {
        cf_mock_stub_t *s = live[i];
        if (s->listener != NULL && s->listener_index != r->listener)
            continue;
        if (!method_matches(s, r->method) || !match_path(s, r->path, tmp))
            continue;
        if (best != NULL && (s->priority > best->priority || (s->priority == best->priority && compare_specificity(s, best) <= 0)))
            continue;
        if (s->scen != NULL && !state_holds(s))
            continue;
        if (s->match.n != 0 && cf_mock_match_eval(&s->match, r, NULL) != 0)
            continue;
        best = s;
        memcpy(caps, tmp, sizeof(tmp));
    }
    if (best == NULL)
        return NULL;
    /* one loop thread: choosing the stub and moving its scenario on are one step, so one request sees each state */
    if (best->next_state != NULL)
        cf_mock_scenario_set(best->scen, best->next_state);
    ++best->refcnt;
    return best;
}

json_t *cf_mock_stubs_near_miss(cf_mock_request_t *r)
{
    cf_mock_stub_t *closest = NULL;
    json_t *closest_missed = NULL;
    size_t best_rank = 0, best_missed = 0;
    h2o_iovec_t tmp[CF_MOCK_MAX_PARAMS];
    for (size_t i = 0; i != n_live; ++i) {
        cf_mock_stub_t *s = live[i];
        if (s->listener != NULL && s->listener_index != r->listener)
            continue;
        json_t *missed = json_array();
        int path_ok = r->path.len != 0 && r->path.base[0] == '/' && match_path(s, r->path, tmp),
            method_ok = method_matches(s, r->method);
        if (!method_ok) {
            cf_buf_t msg = CF_BUF_INIT;
            cf_buf_appendf(&msg, "method: expected %s, got %.*s", s->method, (int)(r->method.len < 32 ? r->method.len : 32),
                           r->method.base);
            json_array_append_new(missed, json_string(msg.base));
            cf_buf_free(&msg);
        }
        if (!path_ok)
            json_array_append_new(missed, json_pack("s+", "path: expected ", s->path));
        size_t n_missed = (size_t)!method_ok + (size_t)!path_ok;
        if (s->scen != NULL && !state_holds(s)) {
            cf_buf_t msg = CF_BUF_INIT;
            cf_buf_appendf(&msg, "scenario %s: expected state \"%s\", got \"%s\"", s->scenario, s->state, s->scen->state);
            json_array_append_new(missed, json_string(msg.base));
            cf_buf_free(&msg);
            ++n_missed;
        }
        if (s->match.n != 0)
            n_missed += cf_mock_match_eval(&s->match, r, missed);
        /* a matching path counts most, then the method, then the fewest misses; the earliest stub wins ties */
        size_t rank = (size_t)path_ok * 2 + (size_t)method_ok;
        if (closest == NULL || rank > best_rank || (rank == best_rank && n_missed < best_missed)) {
            json_decref(closest_missed);
            closest = s;
            closest_missed = missed;
            best_rank = rank;
            best_missed = n_missed;
        } else {
            json_decref(missed);
        }
    }
    if (closest == NULL)
        return NULL;
    json_t *v = json_object();
    json_object_set_new(v, "stub", json_string(closest->key));
    json_object_set_new(v, "missed", closest_missed);
    return v;
}

int cf_mock_listener_name_ok(const char *name)
{
    if (*name == '\0')
        return 0;
    for (const char *p = name; *p != '\0'; ++p)
        if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.' || *p == ':' || *p == '[' || *p == ']'))
            return 0;
    return 1;
}

int cf_mock_stubs_set_listeners(const char *const *names, size_t n, char *err, size_t errlen)
{
    listener_names = names;
    n_listener_names = n;
    listeners_known = 1;
    for (size_t i = 0; i != n_live; ++i) {
        char msg[512];
        if (live[i]->listener != NULL && resolve_listener(live[i], msg, sizeof(msg)) != 0) {
            snprintf(err, errlen, "stub %s: listener: %s", live[i]->key, msg);
            return -1;
        }
    }
    return 0;
}

cf_mock_stub_t **cf_mock_stubs_list(size_t *n)
{
    *n = n_live;
    return live;
}

void cf_mock_stubs_reset(void)
{
    for (size_t i = 0; i != n_live; ++i) {
        live[i]->calls = 0;
        cf_mock_rng_init(&live[i]->rng, live[i]->key);
    }
    for (size_t i = 0; i != n_scenarios; ++i)
        cf_mock_scenario_set(scenarios[i], CF_MOCK_SCENARIO_START);
}

void cf_mock_stubs_dispose(void)
{
    for (size_t i = 0; i != n_live; ++i)
        cf_mock_stub_release(live[i]);
    free(live);
    live = NULL;
    n_live = cap_live = 0;
    for (size_t i = 0; i != n_scenarios; ++i) {
        free(scenarios[i]->name);
        free(scenarios[i]->state);
        free(scenarios[i]);
    }
    free(scenarios);
    scenarios = NULL;
    n_scenarios = 0;
}
