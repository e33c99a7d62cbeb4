/* CORS policies: cors: decoded and validated, and a request's Origin and preflight fields checked against them. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cf_buf.h"
#include "cors.h"
#include "router.h"

/* --- the request side ------------------------------------------------------------------------------------------- */

/* The bytes an origin may hold: a scheme, "://", a host name, an IPv4 or [IPv6] address, a port. Anything else (upper
 * case, controls, quotes, spaces, a path) makes the Origin not allowed, which is also what keeps an echo safe. */
static int cors_origin_byte_ok(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == ':' || ch == '/' || ch == '[' ||
           ch == ']' || ch == '+';
}

/* Whether `sub` (the part of the host in front of a wildcard's suffix) is one or more DNS labels: [a-z0-9-]+ joined by
 * single dots. No empty label, so neither "" nor ".x" nor "a..b" passes: "https://.example.com" is no subdomain. */
static int cors_labels_ok(const char *sub, size_t len)
{
    size_t label = 0;
    for (size_t i = 0; i != len; ++i) {
        char ch = sub[i];
        if (ch == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-') {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return label != 0;
}

int cf_cors_origin_allowed(const cf_cors_t *cors, const char *origin, size_t len)
{
    if (len == 0 || len > CF_CORS_MAX_ORIGIN)
        return 0;
    for (size_t i = 0; i != len; ++i)
        if (!cors_origin_byte_ok((unsigned char)origin[i]))
            return 0;
    if (cors->any_origin)
        return 1;
    for (size_t i = 0; i != cors->num_origins; ++i)
        if (strlen(cors->origins[i]) == len && memcmp(cors->origins[i], origin, len) == 0)
            return 1;
    /* a wildcard origin: the scheme and the suffix (which starts with its dot, so that "evil-example.com" is not
     * ".example.com") fixed at both ends, and whole labels between them */
    for (size_t i = 0; i != cors->num_wildcards; ++i) {
        const cf_cors_wildcard_t *w = &cors->wildcards[i];
        size_t plen = strlen(w->prefix), slen = strlen(w->suffix);
        if (len > plen + slen && memcmp(origin, w->prefix, plen) == 0 && memcmp(origin + len - slen, w->suffix, slen) == 0 &&
            cors_labels_ok(origin + plen, len - plen - slen))
            return 1;
    }
    return 0;
}

/* RFC 9110 5.6.2 tchar */
static int cors_is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

int cf_cors_headers_allowed(const cf_cors_t *cors, const char *list, size_t len)
{
    if (len > CF_CORS_MAX_REQUEST_HEADERS)
        return 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && (list[i] == ' ' || list[i] == '\t' || list[i] == ','))
            ++i;
        size_t start = i;
        while (i < len && list[i] != ',' && list[i] != ' ' && list[i] != '\t') {
            if (!cors_is_tchar((unsigned char)list[i]))
                return 0;
            ++i;
        }
        size_t n = i - start;
        while (i < len && (list[i] == ' ' || list[i] == '\t'))
            ++i;
        if (i < len && list[i] != ',')
            return 0; /* "a b": two tokens without a comma */
        if (n == 0)
            continue;
        size_t k = 0;
        while (k != cors->headers.n &&
               !(strlen(cors->headers.items[k]) == n && strncasecmp(cors->headers.items[k], list + start, n) == 0))
            ++k;
        if (k == cors->headers.n)
            return 0;
    }
    return 1;
}

cf_cors_verdict_t cf_cors_preflight(const cf_cors_t *cors, const char *origin, size_t olen, unsigned method, unsigned allowed,
                                    const char *headers, size_t hlen)
{
    if (!cf_cors_origin_allowed(cors, origin, olen))
        return CF_CORS_BAD_ORIGIN;
    if (method == 0 || (method & allowed) == 0)
        return CF_CORS_BAD_METHOD;
    if (headers != NULL && !cf_cors_headers_allowed(cors, headers, hlen))
        return CF_CORS_BAD_HEADERS;
    return CF_CORS_OK;
}

/* --- the config side -------------------------------------------------------------------------------------------- */

static yaml_node_t *cors_item_at(cf_yctx_t *ctx, yaml_node_t *list, size_t i)
{
    return list->type == YAML_SEQUENCE_NODE ? cf_yaml_node(ctx->y, list->data.sequence.items.start[i]) : list;
}

/* An error at item i of a list (or at the lone scalar that stood for a list of one): `fmt` with the item's text */
static int cors_item_error(cf_yctx_t *ctx, yaml_node_t *list, size_t i, const char *fmt, const char *text)
    __attribute__((format(printf, 4, 0)));
static int cors_item_error(cf_yctx_t *ctx, yaml_node_t *list, size_t i, const char *fmt, const char *text)
{
    char msg[512];
    snprintf(msg, sizeof(msg), fmt, text);
    size_t mark = list->type == YAML_SEQUENCE_NODE ? cf_ypath_index(ctx, i) : ctx->pathlen;
    cf_yerror(ctx, cors_item_at(ctx, list, i), "%s", msg);
    cf_ypath_restore(ctx, mark);
    return -1;
}

/* A DNS name (labels of [a-z0-9-], dots between), an IPv4 address (a DNS-shaped string too) or a bracketed IPv6 one */
static int cors_host_ok(const char *h, size_t len)
{
    if (len >= 2 && h[0] == '[') {
        if (h[len - 1] != ']' || len < 4)
            return 0;
        for (size_t i = 1; i != len - 1; ++i)
            if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f') || h[i] == ':' || h[i] == '.'))
                return 0;
        return 1;
    }
    return cors_labels_ok(h, len);
}

/* Parses one entry of origins: into the policy, lower-cased; NULL, or why it is not an origin. */
static const char *cors_add_origin(cf_cors_t *cors, const char *src)
{
    if (strcmp(src, "*") == 0) {
        cors->any_origin = 1;
        return NULL;
    }
    if (strcasecmp(src, "null") == 0)
        return "is not allowed: it is the Origin of sandboxed frames and local files, which any page can produce";
    size_t len = strlen(src);
    if (len > CF_CORS_MAX_ORIGIN)
        return "is too long for an origin";
    char *o = strdup(src);
    for (size_t i = 0; i != len; ++i)
        o[i] = o[i] >= 'A' && o[i] <= 'Z' ? o[i] - 'A' + 'a' : o[i];
    const char *why = "is not an origin (use scheme://host[:port], e.g. https://app.example.com, or https://*.example.com)";
    char *sep = strstr(o, "://"), *host, *end, *port;
    size_t slen = sep != NULL ? (size_t)(sep - o) : 0;
    if (sep == NULL || slen == 0 || !(o[0] >= 'a' && o[0] <= 'z') || strspn(o, "abcdefghijklmnopqrstuvwxyz0123456789+.-") != slen)
        goto Bad;
    host = sep + 3;
    if (strchr(host, '/') != NULL || strchr(host, '?') != NULL || strchr(host, '#') != NULL) {
        why = "is not an origin: an origin has no path, not even a trailing \"/\"";
        goto Bad;
    }
    /* the port: after the last ':' that is not inside an IPv6 address's brackets */
    end = host + strlen(host);
    port = strrchr(host, ':');
    if (port != NULL && (strchr(port, ']') == NULL)) {
        if (port[1] == '\0' || strspn(port + 1, "0123456789") != strlen(port + 1) || port[1] == '0' || strlen(port + 1) > 5 ||
            atoi(port + 1) > 65535) {
            why = "has a bad port (1 to 65535)";
            goto Bad;
        }
        end = port;
    }
    int wildcard = end - host > 2 && host[0] == '*' && host[1] == '.';
    const char *name = wildcard ? host + 2 : host;
    if (!cors_host_ok(name, end - name) || strchr(name, '*') != NULL)
        goto Bad;
    if (wildcard) {
        /* "*.com" would let anyone who registers a name in; at least two labels after the wildcard */
        if (memchr(name, '.', end - name) == NULL) {
            why = "is too wide a wildcard: name a domain of your own (https://*.example.com)";
            goto Bad;
        }
        cors->wildcards = realloc(cors->wildcards, sizeof(*cors->wildcards) * (cors->num_wildcards + 1));
        cf_cors_wildcard_t *w = &cors->wildcards[cors->num_wildcards++];
        w->prefix = strndup(o, host - o);
        w->suffix = strdup(host + 1); /* ".example.com[:port]" */
        free(o);
        return NULL;
    }
    cors->origins = realloc(cors->origins, sizeof(*cors->origins) * (cors->num_origins + 1));
    cors->origins[cors->num_origins++] = o;
    return NULL;
Bad:
    free(o);
    return why;
}

static int cors_on_origins(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_cors_t *cors = object;
    cf_strlist_t l = {NULL, 0};
    int ret = cf_yget_strlist(ctx, node, &l);
    if (ret == 0 && l.n == 0)
        ret = cf_yerror(ctx, node, "expected at least one origin (or \"*\")");
    for (size_t i = 0; ret == 0 && i != l.n; ++i) {
        const char *why = cors_add_origin(cors, l.items[i]);
        if (why != NULL) {
            char fmt[384];
            snprintf(fmt, sizeof(fmt), "\"%%s\" %s", why);
            ret = cors_item_error(ctx, node, i, fmt, l.items[i]);
        }
    }
    cf_strlist_free(&l);
    return ret;
}

static int cors_on_methods(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_cors_t *cors = object;
    cf_strlist_t l = {NULL, 0};
    int ret = cf_yget_strlist(ctx, node, &l);
    for (size_t i = 0; ret == 0 && i != l.n; ++i) {
        char upper[16] = "";
        size_t len = strlen(l.items[i]);
        for (size_t k = 0; k < len && k < sizeof(upper) - 1; ++k)
            upper[k] = l.items[i][k] >= 'a' && l.items[i][k] <= 'z' ? l.items[i][k] - ('a' - 'A') : l.items[i][k];
        unsigned bit = len < sizeof(upper) ? cf_method_bit(upper, len) : 0;
        if (bit == 0)
            ret = cors_item_error(ctx, node, i, "unknown method \"%s\" (use GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS)",
                                  l.items[i]);
        cors->methods |= bit;
    }
    if (ret == 0 && cors->methods == 0)
        ret = cf_yerror(ctx, node, "expected at least one method");
    cf_strlist_free(&l);
    return ret;
}

/* A list of field names, lower-cased into `out`, and joined with ", " into *joined (NULL when the list is empty). */
static int cors_get_field_names(cf_yctx_t *ctx, yaml_node_t *node, cf_strlist_t *out, char **joined)
{
    if (cf_yget_strlist(ctx, node, out) != 0)
        return -1;
    cf_buf_t all = CF_BUF_INIT;
    for (size_t i = 0; i != out->n; ++i) {
        char *s = out->items[i];
        for (char *p = s; *p != '\0'; ++p) {
            if (!cors_is_tchar((unsigned char)*p)) {
                cf_buf_free(&all);
                return cors_item_error(ctx, node, i, "\"%s\" is not a header field name", s);
            }
            *p = *p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p;
        }
        if (strcmp(s, "*") == 0) {
            cf_buf_free(&all);
            return cors_item_error(ctx, node, i, "\"%s\": list the header names (a wildcard is not supported)", s);
        }
        if (i != 0)
            cf_buf_appends(&all, ", ");
        cf_buf_appends(&all, s);
    }
    free(*joined);
    *joined = out->n != 0 ? strndup(all.base, all.len) : NULL;
    cf_buf_free(&all);
    return 0;
}

static int cors_on_headers(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_cors_t *cors = object;
    return cors_get_field_names(ctx, node, &cors->headers, &cors->allow_headers);
}

static int cors_on_expose_headers(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_cors_t *cors = object;
    cf_strlist_t l = {NULL, 0};
    int ret = cors_get_field_names(ctx, node, &l, &cors->expose_headers);
    cf_strlist_free(&l);
    return ret;
}

static const cf_yfield_t cors_fields[] = {
    {.key = "origins", .type = CF_YT_CUSTOM, .custom = cors_on_origins},
    {.key = "methods", .type = CF_YT_CUSTOM, .custom = cors_on_methods},
    {.key = "headers", .type = CF_YT_CUSTOM, .custom = cors_on_headers},
    {.key = "expose_headers", .type = CF_YT_CUSTOM, .custom = cors_on_expose_headers},
    {.key = "max_age", .type = CF_YT_DURATION, .offset = offsetof(cf_cors_t, max_age_ms), .min = 0, .max = CF_CORS_MAX_AGE_MS},
    {.key = "credentials", .type = CF_YT_BOOL, .offset = offsetof(cf_cors_t, credentials), .def = "false"},
    {NULL},
};

int cf_cors_decode(cf_yctx_t *ctx, yaml_node_t *node, int allow_off, cf_cors_t **out)
{
    *out = NULL;
    const char *s = node != NULL ? cf_yscalar(node) : NULL;
    if (allow_off && s != NULL && (strcmp(s, "off") == 0 || strcmp(s, "false") == 0))
        return 0;
    if (node == NULL || node->type != YAML_MAPPING_NODE)
        return cf_yerror(ctx, node, allow_off ? "expected {origins: [...], ...} or off" : "expected {origins: [...], ...}");
    cf_cors_t *cors = calloc(1, sizeof(*cors));
    cors->line = (int)node->start_mark.line + 1;
    cors->col = (int)node->start_mark.column + 1;
    uint64_t seen = 0;
    if (cf_ydecode(ctx, node, cors_fields, cors, &seen) != 0 || cf_ydefaults(ctx, cors_fields, cors, seen) != 0)
        goto Fail;
    if (!cf_yseen(cors_fields, seen, "max_age"))
        cors->max_age_ms = UINT64_MAX;
    if (!cf_yseen(cors_fields, seen, "origins")) {
        cf_yerror(ctx, node, "needs origins: (the origins allowed, e.g. [https://app.example.com])");
        goto Fail;
    }
    if (cors->credentials && cors->any_origin) {
        /* the Fetch standard refuses "*" with credentials; echoing any origin instead would hand every site the user's
         * cookies */
        size_t mark = cf_ypath_key(ctx, "credentials");
        cf_yerror(ctx, cf_ymap_get(ctx->y, node, "credentials"),
                  "true with origins \"*\": credentials need the origins listed (any site could read the answers otherwise)");
        cf_ypath_restore(ctx, mark);
        goto Fail;
    }
    *out = cors;
    return 0;
Fail:
    cf_cors_free(cors);
    return -1;
}

void cf_cors_free(cf_cors_t *cors)
{
    if (cors == NULL)
        return;
    for (size_t i = 0; i != cors->num_origins; ++i)
        free(cors->origins[i]);
    free(cors->origins);
    for (size_t i = 0; i != cors->num_wildcards; ++i) {
        free(cors->wildcards[i].prefix);
        free(cors->wildcards[i].suffix);
    }
    free(cors->wildcards);
    cf_strlist_free(&cors->headers);
    free(cors->allow_headers);
    free(cors->expose_headers);
    free(cors);
}

void cf_cors_explain(FILE *out, const char *indent, const cf_cors_t *cors, unsigned route_methods, const char *from)
{
    char m[64];
    fprintf(out, "%scors (%s): origins ", indent, from);
    const char *sep = "";
    if (cors->any_origin) {
        fputs("*", out);
        sep = ", ";
    }
    for (size_t i = 0; i != cors->num_origins; ++i, sep = ", ")
        fprintf(out, "%s%s", sep, cors->origins[i]);
    for (size_t i = 0; i != cors->num_wildcards; ++i, sep = ", ")
        fprintf(out, "%s%s*%s", sep, cors->wildcards[i].prefix, cors->wildcards[i].suffix);
    fprintf(out, "; methods %s; headers %s", cf_methods_format(cf_cors_methods(cors, route_methods), m, sizeof(m)),
            cors->allow_headers != NULL ? cors->allow_headers : "(none)");
    if (cors->expose_headers != NULL)
        fprintf(out, "; exposes %s", cors->expose_headers);
    if (cors->max_age_ms != UINT64_MAX)
        fprintf(out, "; max_age %llus", (unsigned long long)(cors->max_age_ms / 1000));
    fprintf(out, "; credentials %s\n", cors->credentials ? "true" : "false");
}
