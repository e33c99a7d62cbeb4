/* Method + path -> route: a trie of path segments with {param} and {rest*} edges; pure, no I/O. */
/*
 * Matching rules (what an nginx or KrakenD operator expects, written down once):
 *
 * - A path is "/" seg ("/" seg)*; "/" is one empty segment. Matching is on the percent-decoded segments, so
 *   "/caf%C3%A9" matches the literal "/café" written as "/caf%C3%A9" in either case of hex digits.
 * - At each segment, from the left: a literal beats a {param}, which beats a {rest*}; the first full match in that
 *   order wins (a route deeper in the tree is tried before falling back to a less specific sibling).
 * - Methods take part in matching: the best route that accepts the method wins (so "GET /u/me" and
 *   "DELETE /u/{id}" both work). HEAD is a bit of its own: a route accepts HEAD only when its mask has it (the
 *   config's default GET|HEAD does). When routes match the path but none accepts the method, the answer is
 *   CF_ROUTE_BAD_METHOD with the union of their methods (RFC 9110 15.5.6, for Allow).
 * - Trailing slash is strict: "/a/b/" does not match "/a/b" and vice versa; a pattern may end in '/' to ask for it.
 * - Empty segments ("//") never match a literal (except the final one of a pattern ending in '/') nor a {param}.
 * - {rest*} matches the remainder of the path, one or more segments or none at all: "/legacy/{rest*}" matches
 *   "/legacy" and "/legacy/" (rest "") as well as "/legacy/a/b" (rest "a/b") and "/legacy/a/" (rest "a/"). A rest
 *   value keeps its '/' separators; a "%2F" inside it, or an empty segment anywhere but at its end, is
 *   CF_ROUTE_BAD_REQUEST when that route is the one selected.
 * - Anywhere in the path, invalid percent-encoding, a decoded NUL, a raw control byte, or a "." / ".." segment
 *   (also as "%2E") is CF_ROUTE_BAD_REQUEST before any route is considered.
 * - A path that does not start with '/' (e.g. "*") is CF_ROUTE_BAD_REQUEST.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cf_http.h"
#include "router.h"

static const struct {
    const char *name;
    unsigned bit;
} method_names[] = {
    {"GET", CF_METHOD_GET},       {"HEAD", CF_METHOD_HEAD},   {"POST", CF_METHOD_POST},       {"PUT", CF_METHOD_PUT},
    {"DELETE", CF_METHOD_DELETE}, {"PATCH", CF_METHOD_PATCH}, {"OPTIONS", CF_METHOD_OPTIONS},
};
#define NUM_METHODS (sizeof(method_names) / sizeof(method_names[0]))
#define ALL_METHODS ((1u << NUM_METHODS) - 1)

unsigned cf_method_bit(const char *name, size_t len)
{
    for (size_t i = 0; i != NUM_METHODS; ++i)
        if (strlen(method_names[i].name) == len && memcmp(method_names[i].name, name, len) == 0)
            return method_names[i].bit;
    return 0;
}

const char *cf_method_name(unsigned bit)
{
    for (size_t i = 0; i != NUM_METHODS; ++i)
        if (method_names[i].bit == bit)
            return method_names[i].name;
    return NULL;
}

const char *cf_methods_format(unsigned mask, char *buf, size_t bufsize)
{
    size_t off = 0;
    if (bufsize == 0)
        return buf;
    buf[0] = '\0';
    for (size_t i = 0; i != NUM_METHODS; ++i) {
        if ((mask & method_names[i].bit) == 0)
            continue;
        int n = snprintf(buf + off, bufsize - off, "%s%s", off != 0 ? ", " : "", method_names[i].name);
        if (n < 0 || (size_t)n >= bufsize - off) {
            buf[off] = '\0'; /* never leave half a name */
            break;
        }
        off += (size_t)n;
    }
    return buf;
}

/* --- percent-decoding and character classes --- */

/* RFC 3986 pchar minus pct-encoded (checked separately): unreserved / sub-delims / ":" / "@" */
static int is_pchar(int c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("-._~!$&'()*+,;=:@", c) != NULL;
}

/*
 * Decodes src[0..len) into dst (which may be src). Returns the decoded length, or -1 on a bad escape or a decoded
 * NUL.
 */
static long decode_bytes(const char *src, size_t len, char *dst)
{
    size_t o = 0;
    for (size_t i = 0; i < len; ++i) {
        int c = (unsigned char)src[i];
        if (c == '%') {
            if ((c = cf_pct_byte(src, len, i)) <= 0) /* a bad escape, or %00 */
                return -1;
            i += 2;
        }
        dst[o++] = (char)c;
    }
    return (long)o;
}

/* --- patterns --- */

static int valid_name(const char *s, size_t len)
{
    if (len == 0 || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return 0;
    for (size_t i = 1; i != len; ++i) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

/* kinds of pattern segments */
enum { SEG_LITERAL, SEG_PARAM, SEG_REST };

/*
 * Classifies and validates one pattern segment. For a literal, writes its decoded form into `dec` (which must hold
 * len bytes) and its length into *declen; for a param, the name is seg[1..]. Returns the kind or -1 with a message.
 */
static int pattern_segment(const char *seg, size_t len, int is_last, char *dec, size_t *declen, char *err, size_t errlen,
                           size_t offset)
{
    if (len != 0 && seg[0] == '{') {
        if (seg[len - 1] != '}') {
            snprintf(err, errlen, "a {param} must fill a whole path segment (at offset %zu)", offset);
            return -1;
        }
        int rest = len >= 3 && seg[len - 2] == '*';
        const char *name = seg + 1;
        size_t namelen = len - 2 - (rest ? 1 : 0);
        if (!valid_name(name, namelen)) {
            snprintf(err, errlen,
                     "invalid parameter name \"%.*s\" at offset %zu (use letters, digits and '_', not starting "
                     "with a digit)",
                     (int)namelen, name, offset + 1);
            return -1;
        }
        if (rest && !is_last) {
            snprintf(err, errlen, "{%.*s*} must be the last path segment", (int)namelen, name);
            return -1;
        }
        return rest ? SEG_REST : SEG_PARAM;
    }
    for (size_t i = 0; i != len; ++i) {
        int c = (unsigned char)seg[i];
        if (c == '%') {
            if (cf_pct_byte(seg, len, i) < 0) {
                snprintf(err, errlen, "invalid percent-encoding at offset %zu", offset + i);
                return -1;
            }
            i += 2;
        } else if (c == '{' || c == '}') {
            snprintf(err, errlen, "a {param} must fill a whole path segment (at offset %zu)", offset + i);
            return -1;
        } else if (!is_pchar(c)) {
            snprintf(err, errlen, "byte 0x%02x at offset %zu may not appear in a path (percent-encode it)", c, offset + i);
            return -1;
        }
    }
    long n = decode_bytes(seg, len, dec);
    if (n < 0) {
        snprintf(err, errlen, "\"%%00\" may not appear in a path (at offset %zu)", offset);
        return -1;
    }
    if (cf_is_dot_segment(dec, (size_t)n)) {
        snprintf(err, errlen, "\".\" and \"..\" segments are not allowed (at offset %zu)", offset);
        return -1;
    }
    if (n == 0 && !is_last) {
        snprintf(err, errlen, "empty path segment (\"//\") at offset %zu", offset);
        return -1;
    }
    *declen = (size_t)n;
    return SEG_LITERAL;
}

/* Walks the segments of a valid-so-far pattern, calling `fn` for each. Returns 0, or -1 when fn does. */
typedef int (*segment_cb)(void *ctx, int kind, const char *seg, size_t len, const char *dec, size_t declen);

static int pattern_walk(const char *src, segment_cb fn, void *ctx, char *err, size_t errlen)
{
    size_t srclen = strlen(src);
    char *dec = malloc(srclen + 1);
    if (dec == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int ret = 0;
    size_t pos = 1;
    for (;;) {
        const char *slash = memchr(src + pos, '/', srclen - pos);
        size_t end = slash != NULL ? (size_t)(slash - src) : srclen, declen = 0;
        int kind = pattern_segment(src + pos, end - pos, slash == NULL, dec, &declen, err, errlen, pos);
        if (kind < 0 || fn(ctx, kind, src + pos, end - pos, dec, declen) != 0) {
            ret = -1;
            break;
        }
        if (slash == NULL)
            break;
        pos = end + 1;
    }
    free(dec);
    return ret;
}

struct st_collect_names_t {
    cf_pattern_t *p;
    char *err;
    size_t errlen;
};

static int on_pattern_segment(void *_ctx, int kind, const char *seg, size_t len, const char *dec, size_t declen)
{
    struct st_collect_names_t *ctx = _ctx;
    cf_pattern_t *p = ctx->p;
    (void)dec, (void)declen;
    if (kind == SEG_LITERAL)
        return 0;
    const char *name = seg + 1;
    size_t namelen = len - 2 - (kind == SEG_REST ? 1 : 0);
    if (cf_pattern_param_index(p, name, namelen) >= 0) {
        snprintf(ctx->err, ctx->errlen, "parameter {%.*s} appears twice", (int)namelen, name);
        return -1;
    }
    if (p->num_params == CF_MAX_PARAMS) {
        snprintf(ctx->err, ctx->errlen, "more than %d parameters", CF_MAX_PARAMS);
        return -1;
    }
    char *copy = malloc(namelen + 1);
    if (copy == NULL) {
        snprintf(ctx->err, ctx->errlen, "out of memory");
        return -1;
    }
    memcpy(copy, name, namelen);
    copy[namelen] = '\0';
    p->param_names[p->num_params] = copy;
    if (kind == SEG_REST)
        p->rest_index = (int)p->num_params;
    ++p->num_params;
    return 0;
}

int cf_pattern_parse(const char *src, cf_pattern_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->rest_index = -1;
    if (src == NULL || src[0] != '/') {
        snprintf(err, errlen, "a path pattern must start with '/'");
        return -1;
    }
    size_t srclen = strlen(src);
    if ((out->src = malloc(srclen + 1)) != NULL)
        memcpy(out->src, src, srclen + 1);
    if (out->src == NULL || (out->param_names = calloc(CF_MAX_PARAMS, sizeof(*out->param_names))) == NULL) {
        snprintf(err, errlen, "out of memory");
        cf_pattern_free(out);
        return -1;
    }
    struct st_collect_names_t ctx = {out, err, errlen};
    if (pattern_walk(src, on_pattern_segment, &ctx, err, errlen) != 0) {
        cf_pattern_free(out);
        return -1;
    }
    return 0;
}

int cf_pattern_param_index(const cf_pattern_t *p, const char *name, size_t len)
{
    for (size_t i = 0; i != p->num_params; ++i)
        if (strlen(p->param_names[i]) == len && memcmp(p->param_names[i], name, len) == 0)
            return (int)i;
    return -1;
}

void cf_pattern_free(cf_pattern_t *p)
{
    if (p->param_names != NULL) {
        for (size_t i = 0; i != p->num_params; ++i)
            free(p->param_names[i]);
        free(p->param_names);
    }
    free(p->src);
    memset(p, 0, sizeof(*p));
    p->rest_index = -1;
}

/* --- the trie --- */

struct st_route_entry_t {
    cf_pattern_t pattern;
    unsigned methods;
    void *data;
};

/* the routes that end at one place of the trie, with pairwise disjoint methods */
struct st_entry_list_t {
    struct st_route_entry_t *entries;
    size_t num;
};

struct st_node_t {
    char *seg; /* decoded literal of the edge leading here (NULL for the root and param nodes) */
    size_t seglen;
    struct st_node_t **lits; /* literal children sorted by (seglen, bytes) for binary search */
    size_t num_lits;
    struct st_node_t *param;     /* the {param} child */
    struct st_entry_list_t here; /* routes whose pattern ends here */
    struct st_entry_list_t rest; /* routes whose {rest*} follows here */
};

struct st_cf_router_t {
    struct st_node_t root;
};

static int lit_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return alen < blen ? -1 : 1;
    return memcmp(a, b, alen);
}

/* Returns the index of the literal child equal to seg, or -(insertion point) - 1. */
static long find_literal(const struct st_node_t *n, const char *seg, size_t len)
{
    size_t lo = 0, hi = n->num_lits;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = lit_cmp(n->lits[mid]->seg, n->lits[mid]->seglen, seg, len);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

static void node_free(struct st_node_t *n)
{
    for (size_t i = 0; i != n->num_lits; ++i) {
        node_free(n->lits[i]);
        free(n->lits[i]);
    }
    free(n->lits);
    if (n->param != NULL) {
        node_free(n->param);
        free(n->param);
    }
    for (size_t i = 0; i != n->here.num; ++i)
        cf_pattern_free(&n->here.entries[i].pattern);
    free(n->here.entries);
    for (size_t i = 0; i != n->rest.num; ++i)
        cf_pattern_free(&n->rest.entries[i].pattern);
    free(n->rest.entries);
    free(n->seg);
}

cf_router_t *cf_router_new(void)
{
    return calloc(1, sizeof(cf_router_t));
}

void cf_router_free(cf_router_t *r)
{
    if (r == NULL)
        return;
    node_free(&r->root);
    free(r);
}

struct st_insert_ctx_t {
    struct st_node_t *node;
    int ends_in_rest;
    char *err;
    size_t errlen;
};

static int on_insert_segment(void *_ctx, int kind, const char *seg, size_t len, const char *dec, size_t declen)
{
    struct st_insert_ctx_t *ctx = _ctx;
    struct st_node_t *n = ctx->node, *child;
    (void)seg, (void)len;
    switch (kind) {
    case SEG_LITERAL: {
        long at = find_literal(n, dec, declen);
        if (at >= 0) {
            child = n->lits[at];
            break;
        }
        size_t ins = (size_t)(-at - 1);
        struct st_node_t **lits = realloc(n->lits, (n->num_lits + 1) * sizeof(*lits));
        if (lits == NULL)
            goto NoMem;
        n->lits = lits;
        if ((child = calloc(1, sizeof(*child))) == NULL || (child->seg = malloc(declen + 1)) == NULL) {
            free(child);
            goto NoMem;
        }
        memcpy(child->seg, dec, declen);
        child->seg[declen] = '\0';
        child->seglen = declen;
        memmove(lits + ins + 1, lits + ins, (n->num_lits - ins) * sizeof(*lits));
        lits[ins] = child;
        ++n->num_lits;
    } break;
    case SEG_PARAM:
        if (n->param == NULL && (n->param = calloc(1, sizeof(*n->param))) == NULL)
            goto NoMem;
        child = n->param;
        break;
    default: /* SEG_REST: always the last segment; the routes hang off the current node */
        ctx->ends_in_rest = 1;
        return 0;
    }
    ctx->node = child;
    return 0;
NoMem:
    snprintf(ctx->err, ctx->errlen, "out of memory");
    return -1;
}

int cf_router_add(cf_router_t *r, const char *pattern, unsigned methods, void *data, char *err, size_t errlen)
{
    struct st_route_entry_t entry = {.methods = methods, .data = data};
    if (methods == 0 || (methods & ~ALL_METHODS) != 0) {
        snprintf(err, errlen, "route \"%s\": %s", pattern != NULL ? pattern : "",
                 methods == 0 ? "no methods" : "unknown method bit");
        return -1;
    }
    char perr[256];
    if (cf_pattern_parse(pattern, &entry.pattern, perr, sizeof(perr)) != 0) {
        snprintf(err, errlen, "route \"%s\": %s", pattern != NULL ? pattern : "", perr);
        return -1;
    }
    /* nodes created on the way stay even if the route is refused below: they are harmless empty branches */
    struct st_insert_ctx_t ctx = {&r->root, 0, err, errlen};
    if (pattern_walk(pattern, on_insert_segment, &ctx, err, errlen) != 0) {
        cf_pattern_free(&entry.pattern);
        return -1;
    }
    struct st_entry_list_t *list = ctx.ends_in_rest ? &ctx.node->rest : &ctx.node->here;
    for (size_t i = 0; i != list->num; ++i) {
        unsigned common = list->entries[i].methods & methods;
        if (common != 0) {
            char mbuf[64];
            snprintf(err, errlen, "route \"%s\" conflicts with route \"%s\": same path shape and method%s %s", pattern,
                     list->entries[i].pattern.src, (common & (common - 1)) != 0 ? "s" : "",
                     cf_methods_format(common, mbuf, sizeof(mbuf)));
            cf_pattern_free(&entry.pattern);
            return -1;
        }
    }
    struct st_route_entry_t *entries = realloc(list->entries, (list->num + 1) * sizeof(*entries));
    if (entries == NULL) {
        snprintf(err, errlen, "out of memory");
        cf_pattern_free(&entry.pattern);
        return -1;
    }
    list->entries = entries;
    list->entries[list->num++] = entry;
    return 0;
}

/* --- matching --- */

struct st_match_ctx_t {
    const char *path;
    size_t len;
    const char *dec; /* the decoded path: each raw '/' at its decoded place, so offsets map segment by segment */
    size_t declen;
    unsigned method;
    unsigned allowed; /* union of the methods of every route matching the path */
    void *first;      /* the first route offered (the most specific matching the path), whatever its methods */
    size_t ncaps;
    struct {
        size_t off, len;
    } caps[CF_MAX_PARAMS];
    cf_route_match_t *m;
    int result; /* -1 while searching */
};

/* A rest value may not contain "%2F", nor an empty segment other than its last. Dot segments were refused earlier. */
static int rest_is_valid(const char *raw, size_t len)
{
    size_t seglen = 0;
    for (size_t i = 0; i < len; ++i) {
        if (raw[i] == '/') {
            if (seglen == 0)
                return 0;
            seglen = 0;
        } else {
            if (raw[i] == '%' && raw[i + 1] == '2' && (raw[i + 2] == 'F' || raw[i + 2] == 'f'))
                return 0;
            ++seglen;
        }
    }
    return 1;
}

/* Offers the routes of one place of the trie; the first one accepting the method ends the search. */
static void offer(struct st_match_ctx_t *ctx, const struct st_entry_list_t *list, int is_rest, size_t rawpos, size_t decpos)
{
    for (size_t i = 0; i != list->num; ++i) {
        const struct st_route_entry_t *e = list->entries + i;
        ctx->allowed |= e->methods;
        if (ctx->first == NULL)
            ctx->first = e->data;
        if ((e->methods & ctx->method) == 0 || ctx->result >= 0)
            continue;
        cf_route_match_t *m = ctx->m;
        if (is_rest && !rest_is_valid(ctx->path + rawpos, ctx->len - rawpos)) {
            ctx->result = CF_ROUTE_BAD_REQUEST;
            return;
        }
        m->data = e->data;
        m->num_params = 0;
        for (size_t j = 0; j != ctx->ncaps; ++j) {
            m->params[j].val = ctx->dec + ctx->caps[j].off;
            m->params[j].len = ctx->caps[j].len;
        }
        m->num_params = ctx->ncaps;
        if (is_rest) {
            m->params[m->num_params].val = ctx->dec + decpos;
            m->params[m->num_params].len = ctx->declen - decpos;
            ++m->num_params;
        }
        ctx->result = CF_ROUTE_OK;
        return;
    }
}

/*
 * Depth-first search in priority order. `pos` is the index of the '/' before the next segment (or len when there is
 * none), `decpos` the same place in the decoded path.
 */
static void walk(struct st_match_ctx_t *ctx, const struct st_node_t *n, size_t pos, size_t decpos)
{
    if (pos == ctx->len) {
        offer(ctx, &n->here, 0, 0, 0);
        if (ctx->result < 0)
            offer(ctx, &n->rest, 1, pos, decpos);
        return;
    }
    const char *seg = ctx->path + pos + 1, *slash = memchr(seg, '/', ctx->len - pos - 1);
    size_t end = slash != NULL ? (size_t)(slash - ctx->path) : ctx->len, rawlen = end - pos - 1, declen = rawlen;
    for (size_t i = 0; i != rawlen; ++i)
        if (seg[i] == '%')
            declen -= 2;
    const char *dseg = ctx->dec + decpos + 1;

    if (n->num_lits != 0) {
        long at = find_literal(n, dseg, declen);
        if (at >= 0) {
            walk(ctx, n->lits[at], end, decpos + 1 + declen);
            if (ctx->result >= 0)
                return;
        }
    }
    if (n->param != NULL && declen != 0 && ctx->ncaps < CF_MAX_PARAMS) {
        ctx->caps[ctx->ncaps].off = decpos + 1;
        ctx->caps[ctx->ncaps].len = declen;
        ++ctx->ncaps;
        walk(ctx, n->param, end, decpos + 1 + declen);
        --ctx->ncaps;
        if (ctx->result >= 0)
            return;
    }
    if (n->rest.num != 0)
        offer(ctx, &n->rest, 1, pos + 1, decpos + 1);
}

/* Decodes the whole path into dec, refusing what no route may see. Returns the decoded length or -1. */
static long decode_path(const char *path, size_t len, char *dec)
{
    size_t o = 0, segstart = 1;
    if (len == 0 || path[0] != '/')
        return -1;
    for (size_t i = 0; i <= len; ++i) {
        int c = i < len ? (unsigned char)path[i] : '/';
        if (c == '/') {
            if (i != 0 && cf_is_dot_segment(dec + segstart, o - segstart))
                return -1;
            if (i == len)
                break;
            dec[o++] = '/';
            segstart = o;
            continue;
        }
        if (c < 0x20 || c == 0x7f)
            return -1;
        if (c == '%') {
            if ((c = cf_pct_byte(path, len, i)) <= 0) /* a bad escape, or %00 */
                return -1;
            i += 2;
        }
        dec[o++] = (char)c;
    }
    return (long)o;
}

int cf_router_match(const cf_router_t *r, unsigned method, const char *path, size_t len, char *scratch, cf_route_match_t *m)
{
    m->data = NULL;
    m->allowed = 0;
    m->num_params = 0;
    long declen = decode_path(path, len, scratch);
    if (declen < 0)
        return CF_ROUTE_BAD_REQUEST;
    struct st_match_ctx_t ctx = {path, len, scratch, (size_t)declen, method, 0, NULL, 0, {{0, 0}}, m, -1};
    walk(&ctx, &r->root, 0, 0);
    if (ctx.result < 0) {
        /* no route accepts the method: finish the search so that Allow lists every method the path accepts */
        if (ctx.allowed == 0)
            return CF_ROUTE_NOT_FOUND;
        m->allowed = ctx.allowed;
        m->data = ctx.first;
        return CF_ROUTE_BAD_METHOD;
    }
    if (ctx.result != CF_ROUTE_OK) {
        m->data = NULL;
        m->num_params = 0;
    }
    return ctx.result;
}
