/* YAML documents with line:column marks, and table-driven decoding of mappings into structs. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cf_units.h"
#include "cf_yaml.h"

static int load(cf_yaml_t *y, yaml_parser_t *parser, char *err, size_t errlen)
{
    if (!yaml_parser_load(parser, &y->doc)) {
        const yaml_mark_t *m = parser->problem != NULL ? &parser->problem_mark : &parser->mark;
        snprintf(err, errlen, "%s:%zu:%zu: invalid YAML: %s%s%s", y->filename, m->line + 1, m->column + 1,
                 parser->problem != NULL ? parser->problem : "parse error", parser->context != NULL ? " " : "",
                 parser->context != NULL ? parser->context : "");
        yaml_parser_delete(parser);
        return -1;
    }
    y->loaded = 1;
    yaml_parser_delete(parser);
    return 0;
}

int cf_yaml_load_file(cf_yaml_t *y, const char *path, char *err, size_t errlen)
{
    yaml_parser_t parser;
    memset(y, 0, sizeof(*y));
    y->filename = path;
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, fp);
    int ret = load(y, &parser, err, errlen);
    fclose(fp);
    return ret;
}

int cf_yaml_load_string(cf_yaml_t *y, const char *name, const char *src, size_t len, char *err, size_t errlen)
{
    yaml_parser_t parser;
    memset(y, 0, sizeof(*y));
    y->filename = name;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)src, len);
    return load(y, &parser, err, errlen);
}

void cf_yaml_dispose(cf_yaml_t *y)
{
    if (y->loaded)
        yaml_document_delete(&y->doc);
    y->loaded = 0;
}

yaml_node_t *cf_yaml_root(cf_yaml_t *y)
{
    return y->loaded ? yaml_document_get_root_node(&y->doc) : NULL;
}

yaml_node_t *cf_yaml_node(cf_yaml_t *y, int id)
{
    return yaml_document_get_node(&y->doc, id);
}

const char *cf_yscalar(const yaml_node_t *node)
{
    return node != NULL && node->type == YAML_SCALAR_NODE ? (const char *)node->data.scalar.value : NULL;
}

yaml_node_t *cf_ymap_get(cf_yaml_t *y, yaml_node_t *map, const char *key)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; ++p) {
        const char *k = cf_yscalar(cf_yaml_node(y, p->key));
        if (k != NULL && strcmp(k, key) == 0)
            return cf_yaml_node(y, p->value);
    }
    return NULL;
}

void cf_yctx_init(cf_yctx_t *ctx, cf_yaml_t *y)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->y = y;
}

/* Copies src into dst (of size cap) with control bytes and DEL written as \n, \r, \t or \xNN: a message quoting a
 * value from the file (a key, a URL...) stays on one line and cannot send escape sequences to a terminal. */
static void copy_escaped(char *dst, size_t cap, const char *src)
{
    size_t o = 0;
    for (; *src != '\0' && o + 1 < cap; ++src) {
        unsigned char c = (unsigned char)*src;
        char esc[5];
        if (c >= 0x20 && c != 0x7f) {
            dst[o++] = (char)c;
            continue;
        }
        snprintf(esc, sizeof(esc), c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : "\\x%02x", c);
        size_t n = strlen(esc);
        if (o + n + 1 > cap)
            break;
        memcpy(dst + o, esc, n);
        o += n;
    }
    dst[o] = '\0';
}

int cf_yerror(cf_yctx_t *ctx, const yaml_node_t *node, const char *fmt, ...)
{
    char raw[sizeof(ctx->err)];
    if (ctx->failed)
        return -1;
    ctx->failed = 1;
    int n;
    if (node != NULL)
        n = snprintf(raw, sizeof(raw), "%s:%zu:%zu: ", ctx->y->filename, node->start_mark.line + 1, node->start_mark.column + 1);
    else
        n = snprintf(raw, sizeof(raw), "%s: ", ctx->y->filename);
    if (ctx->pathlen != 0 && n >= 0 && (size_t)n < sizeof(raw))
        n += snprintf(raw + n, sizeof(raw) - (size_t)n, "%s: ", ctx->path);
    if (n >= 0 && (size_t)n < sizeof(raw)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(raw + n, sizeof(raw) - (size_t)n, fmt, ap);
        va_end(ap);
    }
    copy_escaped(ctx->err, sizeof(ctx->err), raw);
    return -1;
}

size_t cf_ypath_key(cf_yctx_t *ctx, const char *key)
{
    size_t mark = ctx->pathlen;
    int n = snprintf(ctx->path + ctx->pathlen, sizeof(ctx->path) - ctx->pathlen, "%s%s", ctx->pathlen ? "." : "", key);
    if (n > 0)
        ctx->pathlen = ctx->pathlen + (size_t)n < sizeof(ctx->path) ? ctx->pathlen + (size_t)n : sizeof(ctx->path) - 1;
    return mark;
}

size_t cf_ypath_index(cf_yctx_t *ctx, size_t index)
{
    size_t mark = ctx->pathlen;
    int n = snprintf(ctx->path + ctx->pathlen, sizeof(ctx->path) - ctx->pathlen, "[%zu]", index);
    if (n > 0)
        ctx->pathlen = ctx->pathlen + (size_t)n < sizeof(ctx->path) ? ctx->pathlen + (size_t)n : sizeof(ctx->path) - 1;
    return mark;
}

void cf_ypath_restore(cf_yctx_t *ctx, size_t mark)
{
    ctx->pathlen = mark;
    ctx->path[mark] = '\0';
}

/* The scalar value of a node that must be a non-empty scalar, or NULL after recording an error. */
static const char *want_scalar(cf_yctx_t *ctx, yaml_node_t *node, const char *what)
{
    const char *s = cf_yscalar(node);
    if (s == NULL) {
        cf_yerror(ctx, node, "expected %s, not a %s", what, node != NULL && node->type == YAML_MAPPING_NODE ? "mapping" : "list");
        return NULL;
    }
    if (*s == '\0' || (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && strcmp(s, "~") == 0)) {
        cf_yerror(ctx, node, "expected %s, got nothing", what);
        return NULL;
    }
    return s;
}

/* The value parsers the node getters and cf_ydefaults share: 0, or -1 when `s` is not a value of the kind. */

static int in_range(uint64_t v, uint64_t min, uint64_t max)
{
    return max == 0 || (v >= min && v <= max);
}

static int check_range(cf_yctx_t *ctx, yaml_node_t *node, const char *s, uint64_t v, uint64_t min, uint64_t max)
{
    if (!in_range(v, min, max))
        return cf_yerror(ctx, node, "\"%s\" is out of range", s);
    return 0;
}

/* a decimal whole number, digits only */
static int parse_uint(const char *s, uint64_t *v)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    if (*end != '\0' || errno != 0 || !(*s >= '0' && *s <= '9'))
        return -1;
    *v = n;
    return 0;
}

static int parse_bool(const char *s, int *v)
{
    if (strcmp(s, "true") == 0)
        *v = 1;
    else if (strcmp(s, "false") == 0)
        *v = 0;
    else
        return -1;
    return 0;
}

static int parse_enum(const char *s, const char *const *names, int *idx)
{
    for (int i = 0; names[i] != NULL; ++i) {
        if (strcmp(names[i], s) == 0) {
            *idx = i;
            return 0;
        }
    }
    return -1;
}

int cf_yget_duration(cf_yctx_t *ctx, yaml_node_t *node, uint64_t *ms)
{
    const char *s = want_scalar(ctx, node, "a duration");
    if (s == NULL)
        return -1;
    if (cf_parse_duration(s, ms) != 0)
        return cf_yerror(ctx, node, "\"%s\" is not a duration (use 500ms, 2s, 1m)", s);
    return 0;
}

int cf_yget_size(cf_yctx_t *ctx, yaml_node_t *node, uint64_t *bytes)
{
    const char *s = want_scalar(ctx, node, "a size");
    if (s == NULL)
        return -1;
    if (cf_parse_size(s, bytes) != 0)
        return cf_yerror(ctx, node, "\"%s\" is not a size (use 512KiB, 64MiB, or a byte count)", s);
    return 0;
}

int cf_yget_uint(cf_yctx_t *ctx, yaml_node_t *node, uint64_t min, uint64_t max, uint64_t *v)
{
    const char *s = want_scalar(ctx, node, "a number");
    uint64_t n;
    if (s == NULL)
        return -1;
    if (parse_uint(s, &n) != 0)
        return cf_yerror(ctx, node, "\"%s\" is not a whole number", s);
    if (!in_range(n, min, max))
        return cf_yerror(ctx, node, "%s is out of range (%llu to %llu)", s, (unsigned long long)min, (unsigned long long)max);
    *v = n;
    return 0;
}

int cf_yget_bool(cf_yctx_t *ctx, yaml_node_t *node, int *v)
{
    const char *s = want_scalar(ctx, node, "true or false");
    if (s == NULL)
        return -1;
    if (parse_bool(s, v) != 0)
        return cf_yerror(ctx, node, "\"%s\" is not a boolean (use true or false)", s);
    return 0;
}

int cf_yget_string(cf_yctx_t *ctx, yaml_node_t *node, char **out)
{
    const char *s = want_scalar(ctx, node, "a string");
    if (s == NULL)
        return -1;
    free(*out);
    *out = strdup(s);
    return 0;
}

int cf_yget_enum(cf_yctx_t *ctx, yaml_node_t *node, const char *const *names, int *idx)
{
    const char *s = want_scalar(ctx, node, "a value");
    if (s == NULL)
        return -1;
    if (parse_enum(s, names, idx) == 0)
        return 0;
    char choices[256] = "";
    size_t n = 0;
    for (int i = 0; names[i] != NULL && n < sizeof(choices); ++i)
        n += (size_t)snprintf(choices + n, sizeof(choices) - n, "%s%s", i ? ", " : "", names[i]);
    return cf_yerror(ctx, node, "\"%s\" is not one of: %s", s, choices);
}

int cf_yget_strlist(cf_yctx_t *ctx, yaml_node_t *node, cf_strlist_t *out)
{
    cf_strlist_free(out);
    if (node != NULL && node->type == YAML_SCALAR_NODE) {
        const char *s = want_scalar(ctx, node, "a list of strings");
        if (s == NULL)
            return -1;
        out->items = malloc(sizeof(*out->items));
        out->items[0] = strdup(s);
        out->n = 1;
        return 0;
    }
    if (node == NULL || node->type != YAML_SEQUENCE_NODE)
        return cf_yerror(ctx, node, "expected a list of strings");
    size_t count = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    out->items = calloc(count + 1, sizeof(*out->items));
    for (size_t i = 0; i < count; ++i) {
        yaml_node_t *item = cf_yaml_node(ctx->y, node->data.sequence.items.start[i]);
        size_t mark = cf_ypath_index(ctx, i);
        const char *s = want_scalar(ctx, item, "a string");
        cf_ypath_restore(ctx, mark);
        if (s == NULL)
            return -1;
        out->items[out->n++] = strdup(s);
    }
    return 0;
}

void cf_strlist_free(cf_strlist_t *l)
{
    for (size_t i = 0; i < l->n; ++i)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* Levenshtein distance, capped: used to suggest the key a typo meant. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 64;
    size_t prev[64], cur[64];
    for (size_t j = 0; j <= lb; ++j)
        prev[j] = j;
    for (size_t i = 1; i <= la; ++i) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; ++j) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]), del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(prev));
    }
    return prev[lb];
}

static int unknown_key(cf_yctx_t *ctx, yaml_node_t *knode, const char *key, const cf_yfield_t *table)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (const cf_yfield_t *f = table; f->key != NULL; ++f) {
        size_t d = edit_distance(key, f->key);
        if (d < best_d) {
            best_d = d;
            best = f->key;
        }
    }
    if (best != NULL)
        return cf_yerror(ctx, knode, "unknown key \"%s\" (did you mean \"%s\"?)", key, best);
    return cf_yerror(ctx, knode, "unknown key \"%s\"", key);
}

static int decode_field(cf_yctx_t *ctx, const cf_yfield_t *f, yaml_node_t *vnode, void *object)
{
    char *member = (char *)object + f->offset;
    switch (f->type) {
    case CF_YT_DURATION:
    case CF_YT_SIZE: {
        uint64_t v;
        if ((f->type == CF_YT_DURATION ? cf_yget_duration(ctx, vnode, &v) : cf_yget_size(ctx, vnode, &v)) != 0 ||
            check_range(ctx, vnode, cf_yscalar(vnode), v, f->min, f->max) != 0)
            return -1;
        *(uint64_t *)member = v;
        return 0;
    }
    case CF_YT_UINT:
        return cf_yget_uint(ctx, vnode, f->min, f->max, (uint64_t *)member);
    case CF_YT_BOOL:
        return cf_yget_bool(ctx, vnode, (int *)member);
    case CF_YT_STRING:
        return cf_yget_string(ctx, vnode, (char **)member);
    case CF_YT_ENUM:
        return cf_yget_enum(ctx, vnode, f->names, (int *)member);
    case CF_YT_STRLIST:
        return cf_yget_strlist(ctx, vnode, (cf_strlist_t *)member);
    case CF_YT_CUSTOM:
        return f->custom(ctx, vnode, object);
    case CF_YT_UNSUPPORTED:
        return cf_yerror(ctx, vnode, "not supported yet%s%s%s", f->help ? " (" : "", f->help ? f->help : "", f->help ? ")" : "");
    }
    return cf_yerror(ctx, vnode, "internal error: unknown field type");
}

int cf_ydecode(cf_yctx_t *ctx, yaml_node_t *node, const cf_yfield_t *table, void *object, uint64_t *seen)
{
    uint64_t present = 0;
    if (node == NULL || node->type != YAML_MAPPING_NODE)
        return cf_yerror(ctx, node, "expected a mapping (key: value)");
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; ++p) {
        yaml_node_t *knode = cf_yaml_node(ctx->y, p->key), *vnode = cf_yaml_node(ctx->y, p->value);
        const char *key = cf_yscalar(knode);
        if (key == NULL)
            return cf_yerror(ctx, knode, "keys must be strings");
        size_t i;
        for (i = 0; table[i].key != NULL; ++i)
            if (strcmp(table[i].key, key) == 0)
                break;
        if (table[i].key == NULL)
            return unknown_key(ctx, knode, key, table);
        size_t mark = cf_ypath_key(ctx, key);
        if ((present & ((uint64_t)1 << i)) != 0) {
            cf_yerror(ctx, knode, "duplicate key");
            cf_ypath_restore(ctx, mark);
            return -1;
        }
        present |= (uint64_t)1 << i;
        int ret = decode_field(ctx, &table[i], vnode, object);
        cf_ypath_restore(ctx, mark);
        if (ret != 0)
            return -1;
    }
    if (seen != NULL)
        *seen = present;
    return 0;
}

/* Sets the default of one field: 0, or -1 when its `def` is not a valid value for it. */
static int set_default(const cf_yfield_t *f, void *object)
{
    char *member = (char *)object + f->offset;
    uint64_t v;
    switch (f->type) {
    case CF_YT_DURATION:
    case CF_YT_SIZE:
    case CF_YT_UINT:
        if ((f->type == CF_YT_DURATION ? cf_parse_duration(f->def, &v)
             : f->type == CF_YT_SIZE   ? cf_parse_size(f->def, &v)
                                       : parse_uint(f->def, &v)) != 0 ||
            !in_range(v, f->min, f->max))
            return -1;
        *(uint64_t *)member = v;
        return 0;
    case CF_YT_BOOL:
        return parse_bool(f->def, (int *)member);
    case CF_YT_ENUM:
        return parse_enum(f->def, f->names, (int *)member);
    case CF_YT_STRING:
        free(*(char **)member);
        *(char **)member = strdup(f->def);
        return 0;
    default: /* a list, a custom or a refused key: its level's own merge sets what it lacks */
        return -1;
    }
}

int cf_ydefaults(cf_yctx_t *ctx, const cf_yfield_t *table, void *object, uint64_t seen)
{
    for (size_t i = 0; table[i].key != NULL; ++i) {
        if (table[i].def == NULL || (seen & ((uint64_t)1 << i)) != 0)
            continue;
        if (set_default(&table[i], object) != 0)
            return cf_yerror(ctx, NULL, "internal error: the default of %s, \"%s\", is not one of its values", table[i].key,
                             table[i].def);
    }
    return 0;
}

int cf_yseen(const cf_yfield_t *table, uint64_t seen, const char *key)
{
    for (size_t i = 0; table[i].key != NULL; ++i)
        if (strcmp(table[i].key, key) == 0)
            return (seen >> i & 1) != 0;
    return 0;
}
