/* The config loader: YAML -> cf_config_t, validated, each error as "file:line:col: key.path: message". */
/*
 * One field table per YAML level (key, type, offset, bounds, default) drives cf_ydecode; custom decoders take the keys
 * no generic setter can. Defaults are merged after decoding, never set before it (nginx's unset-then-merge): a key
 * the file leaves out is unset, and right after its level is decoded, the table's `def` fills it, or, where the
 * default depends on the rest of the file, the level's merge_* function below does ("Defaults"). What only the calls of
 * a route taken together can get wrong (dependencies, cycles, merge keys) is plan.c's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "cf_buf.h"
#include "cf_fetch.h"
#include "cf_http.h"
#include "cf_net.h"
#include "cf_units.h"
#include "config.h"
#include "plan.h"

/* a config file larger than this is refused before parsing */
#define MAX_CONFIG_FILE (64 << 20)

/* Bounds shared by the tables below. */
#define MAX_TIMEOUT_MS (3600 * 1000ull) /* no single upstream exchange or request may take more than an hour */

/**
 * The decoding context of one load. The cf_yctx_t comes first so that the table decoders, which only receive the
 * ctx, can cast it back to the loader.
 */
struct st_loader_t {
    cf_yctx_t ctx;
    cf_config_t *c;
    yaml_node_t *routes; /* decoded last, so that every backend is known whatever the order of the keys */
    cf_route_t *route;   /* the route being decoded */
    uint64_t limits_seen, cache_seen, tracing_seen; /* the keys of limits:, cache: and tracing: in the file, for their defaults */
};

/* The defaults of each level, merged right after it is decoded: in "Defaults", after the tables they complete. */
static int merge_listen(cf_yctx_t *ctx, cf_listen_t *l, uint64_t seen);
static int merge_backend(cf_yctx_t *ctx, cf_backend_t *b, uint64_t seen);
static int merge_cache_policy(cf_yctx_t *ctx, cf_cache_policy_t *p, uint64_t seen);
static int merge_call(cf_yctx_t *ctx, cf_call_t *call, uint64_t seen);
static int merge_route(cf_yctx_t *ctx, cf_route_t *r, uint64_t seen);
static void merge_route_deadline(cf_route_t *r, uint64_t seen);
static int merge_top(struct st_loader_t *L, uint64_t seen);

static struct st_loader_t *loader_of(cf_yctx_t *ctx)
{
    return (struct st_loader_t *)ctx;
}

static size_t seq_len(const yaml_node_t *n)
{
    return n != NULL && n->type == YAML_SEQUENCE_NODE ? (size_t)(n->data.sequence.items.top - n->data.sequence.items.start) : 0;
}

static yaml_node_t *seq_item(cf_yctx_t *ctx, yaml_node_t *seq, size_t i)
{
    return cf_yaml_node(ctx->y, seq->data.sequence.items.start[i]);
}

static size_t map_len(const yaml_node_t *n)
{
    return n != NULL && n->type == YAML_MAPPING_NODE ? (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start) : 0;
}

/* The value of a node that must be a non-empty scalar, or NULL after an error. */
static const char *want_string(cf_yctx_t *ctx, yaml_node_t *node, const char *what)
{
    const char *s = cf_yscalar(node);
    if (s == NULL || *s == '\0' || (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && strcmp(s, "~") == 0)) {
        cf_yerror(ctx, node, "expected %s", what);
        return NULL;
    }
    return s;
}

static void lower_case(char *s)
{
    for (; *s != '\0'; ++s)
        if (*s >= 'A' && *s <= 'Z')
            *s += 'a' - 'A';
}

static int is_ip_address(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* A call or backend name: [A-Za-z_][A-Za-z0-9_-]* */
static int is_name(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return 0;
    for (++s; *s != '\0'; ++s)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

/* ---- listen ---- */

static int on_listen_host(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_listen_t *l = object;
    const char *s = want_string(ctx, node, "an IP address (0.0.0.0, 127.0.0.1, \"[::]\")");
    if (s == NULL)
        return -1;
    size_t len = strlen(s);
    if (s[0] == '[' && len > 2 && s[len - 1] == ']')
        l->host = strndup(s + 1, len - 2);
    else
        l->host = strdup(s);
    if (!is_ip_address(l->host))
        return cf_yerror(ctx, node, "\"%s\" is not an IP address (use 0.0.0.0, 127.0.0.1 or \"[::]\")", s);
    return 0;
}

static int on_listen_port(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    uint64_t v;
    if (cf_yget_uint(ctx, node, 1, 65535, &v) != 0)
        return -1;
    ((cf_listen_t *)object)->port = (uint16_t)v;
    return 0;
}

static const cf_yfield_t tls_fields[] = {
    {.key = "certificate", .type = CF_YT_STRING, .offset = offsetof(cf_listen_t, tls_certificate)},
    {.key = "key", .type = CF_YT_STRING, .offset = offsetof(cf_listen_t, tls_key)},
    {NULL},
};

/* tls: {certificate: PATH, key: PATH}; the files themselves are read and checked by the TLS module (tls.c) */
static int on_listen_tls(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_listen_t *l = object;
    uint64_t seen = 0;
    if (node == NULL || node->type != YAML_MAPPING_NODE)
        return cf_yerror(ctx, node, "expected {certificate: PATH, key: PATH}");
    l->tls_line = (int)node->start_mark.line + 1;
    l->tls_col = (int)node->start_mark.column + 1;
    if (cf_ydecode(ctx, node, tls_fields, l, &seen) != 0)
        return -1;
    if (!cf_yseen(tls_fields, seen, "certificate") || !cf_yseen(tls_fields, seen, "key"))
        return cf_yerror(ctx, node, "needs both certificate: and key: (PEM files)");
    if (*l->tls_certificate == '\0' || *l->tls_key == '\0')
        return cf_yerror(ctx, node, "certificate: and key: may not be empty");
    return 0;
}

static const cf_yfield_t listen_fields[] = {
    {.key = "host", .type = CF_YT_CUSTOM, .custom = on_listen_host},
    {.key = "port", .type = CF_YT_CUSTOM, .custom = on_listen_port},
    {.key = "tls", .type = CF_YT_CUSTOM, .custom = on_listen_tls},
    {.key = "http2", .type = CF_YT_BOOL, .offset = offsetof(cf_listen_t, http2), .def = "false"},
    {NULL},
};

static int same_host(const char *a, const char *b)
{
    return strcmp(a != NULL ? a : "0.0.0.0", b != NULL ? b : "0.0.0.0") == 0;
}

static int on_listen(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_config_t *c = loader_of(ctx)->c;
    size_t n = seq_len(node);
    if (node == NULL || node->type != YAML_SEQUENCE_NODE || n == 0)
        return cf_yerror(ctx, node, "expected a list of listeners, e.g. [{port: 8080}, {host: 127.0.0.1, port: 8081}]");
    c->listen = calloc(n, sizeof(*c->listen));
    for (size_t i = 0; i < n; ++i) {
        yaml_node_t *item = seq_item(ctx, node, i);
        cf_listen_t *l = &c->listen[c->num_listen++];
        size_t mark = cf_ypath_index(ctx, i);
        uint64_t seen = 0;
        if (cf_ydecode(ctx, item, listen_fields, l, &seen) != 0 || merge_listen(ctx, l, seen) != 0)
            return -1;
        if (!cf_yseen(listen_fields, seen, "port"))
            return cf_yerror(ctx, item, "missing port:");
        if (l->http2 && l->tls_certificate == NULL) {
            cf_ypath_key(ctx, "http2");
            return cf_yerror(ctx, cf_ymap_get(ctx->y, item, "http2"), "HTTP/2 is offered through TLS ALPN only: it needs tls:");
        }
        for (size_t j = 0; j < i; ++j)
            if (c->listen[j].port == l->port && same_host(c->listen[j].host, l->host))
                return cf_yerror(ctx, item, "the same address as listen[%zu]", j);
        cf_ypath_restore(ctx, mark);
    }
    return 0;
}

/* ---- top-level scalars ---- */

static int on_threads(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    uint64_t v;
    if (cf_yget_uint(ctx, node, 1, CF_CONFIG_MAX_THREADS, &v) != 0)
        return -1;
    ((cf_config_t *)object)->threads = v;
    return 0;
}

/*
 * "host:port", ":port" or a bare port into *host (malloc'ed; the previous value is freed) and *port; the host defaults
 * to 127.0.0.1. `example` is a good value, for messages. Returns the text, or NULL after an error.
 */
static const char *get_hostport(cf_yctx_t *ctx, yaml_node_t *node, const char *example, char **host, uint16_t *port)
{
    char what[64];
    snprintf(what, sizeof(what), "host:port, e.g. %s", example);
    const char *s = want_string(ctx, node, what);
    if (s == NULL)
        return NULL;
    char *h = NULL;
    uint16_t p = 0;
    if (cf_parse_hostport(s, &h, &p) != 0 || p == 0) {
        free(h);
        cf_yerror(ctx, node, "\"%s\" is not host:port (e.g. %s)", s, example);
        return NULL;
    }
    free(*host);
    *host = h != NULL ? h : strdup("127.0.0.1");
    *port = p;
    return s;
}

/* admin: "host:port"; the host defaults to 127.0.0.1, because the admin listener is never meant to be public. */
static int on_admin(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_config_t *c = object;
    const char *s = get_hostport(ctx, node, "127.0.0.1:9901", &c->admin_host, &c->admin_port);
    if (s == NULL)
        return -1;
    if (!is_ip_address(c->admin_host))
        return cf_yerror(ctx, node, "\"%s\" is not an IP address and port (e.g. 127.0.0.1:9901)", s);
    return 0;
}

static const cf_yfield_t limits_fields[] = {
    {.key = "max_request_body",
     .type = CF_YT_SIZE,
     .offset = offsetof(cf_config_t, limits.max_request_body),
     .max = 1ull << 30,
     .def = "1MiB"},
    {.key = "max_response_body",
     .type = CF_YT_SIZE,
     .offset = offsetof(cf_config_t, limits.max_response_body),
     .min = 1,
     .max = 1ull << 30,
     .def = "8MiB"},
    {.key = "max_inflight",
     .type = CF_YT_UINT,
     .offset = offsetof(cf_config_t, limits.max_inflight),
     .min = 1,
     .max = 10000000,
     .def = "10000"},
    {.key = "send_timeout",
     .type = CF_YT_DURATION,
     .offset = offsetof(cf_config_t, limits.send_timeout_ms),
     .min = 1,
     .max = MAX_TIMEOUT_MS,
     .def = "10s"},
    /* unset (0) stays unset: the cap is derived from the open-file limit at start (cf_config_max_client_connections) */
    {.key = "max_client_connections",
     .type = CF_YT_UINT,
     .offset = offsetof(cf_config_t, limits.max_client_connections),
     .min = 1,
     .max = 10000000},
    {NULL},
};

static int on_limits(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    return cf_ydecode(ctx, node, limits_fields, object, &loader_of(ctx)->limits_seen);
}

/* ---- backends ---- */

/* Parses "http://host[:port][/base]" into `s`; returns NULL or a message. */
static const char *parse_server_url(const char *url, cf_server_t *s, char *buf, size_t bufsize)
{
    size_t skip = 7;
    if (strncasecmp(url, "https://", 8) == 0) {
        s->tls = 1;
        skip = 8;
    } else if (strncasecmp(url, "http://", 7) != 0) {
        return "is not an http:// or https:// URL (e.g. http://127.0.0.1:9001)";
    }
    const char *p = url + skip, *hstart, *hend;
    if (*p == '[') {
        hstart = p + 1;
        if ((hend = strchr(hstart, ']')) == NULL)
            return "has an unterminated [IPv6 address]";
        p = hend + 1;
    } else {
        hstart = p;
        while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' ||
               *p == '_')
            ++p;
        hend = p;
    }
    if (hend == hstart)
        return "has no host (e.g. http://127.0.0.1:9001)";
    s->host = strndup(hstart, (size_t)(hend - hstart));
    if (hstart != url + skip) {
        unsigned char a[16];
        if (inet_pton(AF_INET6, s->host, a) != 1)
            return "has a bracketed host that is not an IPv6 address";
    }
    s->port = s->tls ? 443 : 80;
    if (*p == ':') {
        unsigned long v = 0;
        const char *d = ++p;
        while (*p >= '0' && *p <= '9' && p - d < 6)
            v = v * 10 + (unsigned long)(*p++ - '0');
        if (p == d || v == 0 || v > 65535 || (*p >= '0' && *p <= '9'))
            return "has an invalid port (1 to 65535)";
        s->port = (uint16_t)v;
    }
    if (*p != '\0' && *p != '/') {
        snprintf(buf, bufsize, "has '%c' after the host; only http://host[:port][/path] is allowed", *p);
        return buf;
    }
    for (const char *q = p; *q != '\0'; ++q)
        if (*q == '?' || *q == '#' || (unsigned char)*q <= ' ' || *q == 0x7f)
            return "may not have a query, a fragment, spaces or control characters; only http://host[:port][/path]";
    size_t blen = strlen(p);
    while (blen > 0 && p[blen - 1] == '/')
        --blen;
    s->base_path = strndup(p, blen);
    return NULL;
}

static int add_server(cf_yctx_t *ctx, yaml_node_t *node, cf_backend_t *b)
{
    const char *url = want_string(ctx, node, "an http:// URL");
    if (url == NULL)
        return -1;
    cf_server_t *s = &b->servers[b->num_servers++];
    char buf[128];
    const char *msg;
    s->url = strdup(url);
    if ((msg = parse_server_url(url, s, buf, sizeof(buf))) != NULL)
        return cf_yerror(ctx, node, "\"%s\" %s", url, msg);
    return 0;
}

static int on_backend_url(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_backend_t *b = object;
    if (b->servers != NULL)
        return cf_yerror(ctx, node, "use either servers: or url:, not both");
    b->servers = calloc(1, sizeof(*b->servers));
    return add_server(ctx, node, b);
}

static int on_backend_servers(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_backend_t *b = object;
    if (b->servers != NULL)
        return cf_yerror(ctx, node, "use either servers: or url:, not both");
    if (node->type == YAML_SCALAR_NODE) {
        b->servers = calloc(1, sizeof(*b->servers));
        return add_server(ctx, node, b);
    }
    size_t n = seq_len(node);
    if (n == 0)
        return cf_yerror(ctx, node, "expected a list of http:// URLs");
    b->servers = calloc(n, sizeof(*b->servers));
    for (size_t i = 0; i < n; ++i) {
        size_t mark = cf_ypath_index(ctx, i);
        if (add_server(ctx, seq_item(ctx, node, i), b) != 0)
            return -1;
        cf_ypath_restore(ctx, mark);
    }
    return 0;
}

/* ca_file: PATH of PEM CA certificates for https:// servers; read at load so that -t catches a missing file */
static int on_backend_ca_file(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_backend_t *b = object;
    const char *s = want_string(ctx, node, "the path of a PEM file of CA certificates");
    if (s == NULL)
        return -1;
    FILE *fp = fopen(s, "r");
    if (fp == NULL)
        return cf_yerror(ctx, node, "cannot read \"%s\": %s", s, strerror(errno));
    fclose(fp);
    b->ca_file = strdup(s);
    return 0;
}

/* sni: the server name for TLS (SNI and certificate verification), when the URL's host is not that name */
static int on_backend_sni(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_backend_t *b = object;
    const char *s = want_string(ctx, node, "a host name, e.g. api.example.com");
    if (s == NULL)
        return -1;
    for (const char *p = s; *p != '\0'; ++p)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
            return cf_yerror(ctx, node, "\"%s\" is not a host name", s);
    if (*s == '\0')
        return cf_yerror(ctx, node, "may not be empty");
    b->sni = strdup(s);
    return 0;
}

/* circuit_breaker: {failures: 5, open_for: 10s} */
static const cf_yfield_t breaker_fields[] = {
    {.key = "failures", .type = CF_YT_UINT, .offset = offsetof(cf_breaker_policy_t, failures), .min = 1, .max = 1000, .def = "5"},
    {.key = "open_for",
     .type = CF_YT_DURATION,
     .offset = offsetof(cf_breaker_policy_t, open_for_ms),
     .min = 1,
     .max = CF_BREAKER_MAX_OPEN_MS,
     .def = "10s"},
    {NULL},
};

/* A mapping under a backend decoded after `table` into `policy`, its defaults merged; `required` names the key it must
 * have (or NULL), `example` shows what it looks like. */
static int decode_policy(cf_yctx_t *ctx, yaml_node_t *node, const cf_yfield_t *table, void *policy, const char *required,
                         const char *example)
{
    uint64_t seen = 0;
    if (node->type != YAML_MAPPING_NODE)
        return cf_yerror(ctx, node, "expected a mapping, e.g. %s", example);
    if (cf_ydecode(ctx, node, table, policy, &seen) != 0)
        return -1;
    if (required != NULL && !cf_yseen(table, seen, required))
        return cf_yerror(ctx, node, "missing %s (e.g. %s)", required, example);
    return cf_ydefaults(ctx, table, policy, seen);
}

static int on_backend_breaker(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    return decode_policy(ctx, node, breaker_fields, &((cf_backend_t *)object)->breaker, NULL, "{failures: 5, open_for: 10s}");
}

/* health: {path: /healthz, interval: 5s, timeout: 1s, healthy: 2, unhealthy: 3} */
static int on_health_path(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_health_policy_t *h = object;
    const char *s = want_string(ctx, node, "a path, e.g. /healthz");
    if (s == NULL)
        return -1;
    if (s[0] != '/')
        return cf_yerror(ctx, node, "\"%s\" does not start with '/'", s);
    for (const char *p = s; *p != '\0'; ++p)
        if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '#')
            return cf_yerror(ctx, node, "may not hold spaces, control characters or '#'");
    h->path = strdup(s);
    return 0;
}

static const cf_yfield_t health_fields[] = {
    {.key = "path", .type = CF_YT_CUSTOM, .custom = on_health_path},
    {.key = "interval",
     .type = CF_YT_DURATION,
     .offset = offsetof(cf_health_policy_t, interval_ms),
     .min = 100,
     .max = 3600 * 1000,
     .def = "5s"},
    {.key = "timeout",
     .type = CF_YT_DURATION,
     .offset = offsetof(cf_health_policy_t, timeout_ms),
     .min = 1,
     .max = 60 * 1000,
     .def = "1s"},
    {.key = "healthy", .type = CF_YT_UINT, .offset = offsetof(cf_health_policy_t, healthy), .min = 1, .max = 100, .def = "2"},
    {.key = "unhealthy", .type = CF_YT_UINT, .offset = offsetof(cf_health_policy_t, unhealthy), .min = 1, .max = 100, .def = "3"},
    {NULL},
};

static int on_backend_health(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    return decode_policy(ctx, node, health_fields, &((cf_backend_t *)object)->health, "path", "{path: /healthz, interval: 5s}");
}

/* retry_on: [connect_failed, reset, status_503, ...]: the failures of an attempt that another attempt may follow */
static int on_backend_retry_on(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    static const cf_reason_t retryable[] = {CF_REASON_CONNECT_FAILED, CF_REASON_RESET, CF_REASON_TIMEOUT, CF_REASON_BAD_RESPONSE};
    cf_backend_t *b = object;
    cf_strlist_t l = {NULL, 0};
    int ret = 0;
    if (cf_yget_strlist(ctx, node, &l) != 0) {
        cf_strlist_free(&l);
        return -1;
    }
    b->retry_on = 0;
    memset(b->retry_on_status, 0, sizeof(b->retry_on_status));
    for (size_t i = 0; i < l.n && ret == 0; ++i) {
        const char *v = l.items[i];
        size_t k;
        for (k = 0; k != sizeof(retryable) / sizeof(retryable[0]); ++k)
            if (strcmp(v, cf_reasons[retryable[k]].name) == 0)
                break;
        if (k != sizeof(retryable) / sizeof(retryable[0])) {
            b->retry_on |= 1u << retryable[k];
        } else if (strncmp(v, "status_", 7) == 0 && strlen(v) == 10 && v[7] >= '4' && v[7] <= '5' && v[8] >= '0' && v[8] <= '9' &&
                   v[9] >= '0' && v[9] <= '9') {
            int st = atoi(v + 7);
            b->retry_on_status[st / 64] |= (uint64_t)1 << (st % 64);
        } else {
            yaml_node_t *item = node->type == YAML_SEQUENCE_NODE ? seq_item(ctx, node, i) : node;
            size_t mark = node->type == YAML_SEQUENCE_NODE ? cf_ypath_index(ctx, i) : ctx->pathlen;
            cf_yerror(ctx, item,
                      "\"%s\" is not a failure that can be retried (connect_failed, reset, timeout, bad_response, "
                      "status_400 to status_599)",
                      v);
            cf_ypath_restore(ctx, mark);
            ret = -1;
        }
    }
    cf_strlist_free(&l);
    return ret;
}

static const cf_yfield_t retry_budget_fields[] = {
    {.key = "percent",
     .type = CF_YT_UINT,
     .offset = offsetof(cf_backend_t, retry_budget.percent),
     .min = 0,
     .max = 100,
     .def = "20"},
    {.key = "min", .type = CF_YT_UINT, .offset = offsetof(cf_backend_t, retry_budget.min), .min = 0, .max = 100000, .def = "3"},
    {NULL},
};

/* retry_budget: {percent: 20, min: 3} (the table's offsets are the backend's) */
static int on_backend_retry_budget(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    return decode_policy(ctx, node, retry_budget_fields, object, NULL, "{percent: 20, min: 3}");
}

/* hedge_after: a duration (150ms), or p90, p95, p99: that percentile of the backend's recent successful latencies */
static int on_backend_hedge_after(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_backend_t *b = object;
    const char *s = cf_yscalar(node);
    if (s != NULL && (strcmp(s, "p90") == 0 || strcmp(s, "p95") == 0 || strcmp(s, "p99") == 0)) {
        b->hedge_percentile = (uint64_t)atoi(s + 1);
        return 0;
    }
    uint64_t ms;
    if (s == NULL || cf_parse_duration(s, &ms) != 0)
        return cf_yerror(ctx, node, "expected a duration (150ms) or a percentile of recent latencies: p90, p95 or p99");
    if (ms < 1 || ms > MAX_TIMEOUT_MS)
        return cf_yerror(ctx, node, "\"%s\" is out of range (1ms to 1h)", s);
    b->hedge_after_ms = ms;
    return 0;
}

static const cf_yfield_t backend_fields[] = {
    {.key = "servers", .type = CF_YT_CUSTOM, .custom = on_backend_servers},
    {.key = "url", .type = CF_YT_CUSTOM, .custom = on_backend_url},
    {.key = "timeout",
     .type = CF_YT_DURATION,
     .offset = offsetof(cf_backend_t, timeout_ms),
     .min = 1,
     .max = MAX_TIMEOUT_MS,
     .def = "5s"},
    {.key = "connect_timeout",
     .type = CF_YT_DURATION,
     .offset = offsetof(cf_backend_t, connect_timeout_ms),
     .min = 1,
     .max = MAX_TIMEOUT_MS,
     .def = "1s"},
    {.key = "max_connections",
     .type = CF_YT_UINT,
     .offset = offsetof(cf_backend_t, max_connections),
     .min = 1,
     .max = 10000000}, /* no default: absent, the only bound is the open-file limit */
    {.key = "ca_file", .type = CF_YT_CUSTOM, .custom = on_backend_ca_file},
    {.key = "sni", .type = CF_YT_CUSTOM, .custom = on_backend_sni},
    {.key = "retries", .type = CF_YT_UINT, .offset = offsetof(cf_backend_t, retries), .min = 0, .max = 10, .def = "0"},
    {.key = "per_try_timeout",
     .type = CF_YT_DURATION,
     .offset = offsetof(cf_backend_t, per_try_timeout_ms),
     .min = 1,
     .max = MAX_TIMEOUT_MS},
    {.key = "retry_on", .type = CF_YT_CUSTOM, .custom = on_backend_retry_on},
    {.key = "retry_budget", .type = CF_YT_CUSTOM, .custom = on_backend_retry_budget},
    {.key = "hedge_after", .type = CF_YT_CUSTOM, .custom = on_backend_hedge_after},
    {.key = "hedge_fallback",
     .type = CF_YT_DURATION,
     .offset = offsetof(cf_backend_t, hedge_fallback_ms),
     .min = 1,
     .max = MAX_TIMEOUT_MS,
     .def = "100ms"},
    {.key = "max_hedges", .type = CF_YT_UINT, .offset = offsetof(cf_backend_t, max_hedges), .min = 1, .max = 3, .def = "1"},
    {.key = "circuit_breaker", .type = CF_YT_CUSTOM, .custom = on_backend_breaker},
    {.key = "health", .type = CF_YT_CUSTOM, .custom = on_backend_health},
    {.key = "resolve_every",
     .type = CF_YT_DURATION,
     .offset = offsetof(cf_backend_t, resolve_every_ms),
     .min = 100,
     .max = 24 * 3600 * 1000,
     .def = "30s"},
    {NULL},
};

static int on_backends(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_config_t *c = object;
    if (node == NULL || node->type != YAML_MAPPING_NODE) {
        if (cf_yscalar(node) != NULL && *cf_yscalar(node) == '\0')
            return 0; /* "backends:" with nothing under it */
        return cf_yerror(ctx, node, "expected a mapping of backend names to {servers: [...]} or {url: ...}");
    }
    size_t n = map_len(node);
    c->backends = calloc(n + 1, sizeof(*c->backends));
    for (size_t i = 0; i < n; ++i) {
        yaml_node_pair_t *pair = &node->data.mapping.pairs.start[i];
        yaml_node_t *knode = cf_yaml_node(ctx->y, pair->key), *vnode = cf_yaml_node(ctx->y, pair->value);
        const char *name = cf_yscalar(knode);
        if (name == NULL || !is_name(name))
            return cf_yerror(ctx, knode, "a backend name is letters, digits, '_' and '-', starting with a letter or '_'");
        size_t mark = cf_ypath_key(ctx, name);
        for (size_t j = 0; j < c->num_backends; ++j)
            if (strcmp(c->backends[j].name, name) == 0)
                return cf_yerror(ctx, knode, "backend \"%s\" is defined twice", name);
        cf_backend_t *b = &c->backends[c->num_backends++];
        b->name = strdup(name);
        b->index = i;
        b->line = (int)knode->start_mark.line + 1;
        b->col = (int)knode->start_mark.column + 1;
        uint64_t seen = 0;
        if (cf_ydecode(ctx, vnode, backend_fields, b, &seen) != 0 || merge_backend(ctx, b, seen) != 0)
            return -1;
        if (b->num_servers == 0)
            return cf_yerror(ctx, vnode, "needs servers: [http://host:port, ...] or url: http://host:port");
        if (b->per_try_timeout_ms != 0 && (b->retries == 0 || b->per_try_timeout_ms >= b->timeout_ms)) {
            cf_ypath_key(ctx, "per_try_timeout");
            if (b->retries == 0)
                return cf_yerror(ctx, cf_ymap_get(ctx->y, vnode, "per_try_timeout"),
                                 "per_try_timeout needs retries: an attempt cut by it is followed by another (without "
                                 "retries, set timeout: instead)");
            return cf_yerror(ctx, cf_ymap_get(ctx->y, vnode, "per_try_timeout"),
                             "per_try_timeout must be shorter than the backend's timeout (%" PRIu64
                             "ms), which bounds all the attempts of a call",
                             b->timeout_ms);
        }
        cf_ypath_restore(ctx, mark);
    }
    return 0;
}

static cf_backend_t *find_backend(const cf_config_t *c, const char *name)
{
    for (size_t i = 0; i < c->num_backends; ++i)
        if (strcmp(c->backends[i].name, name) == 0)
            return &c->backends[i];
    return NULL;
}

/* Looks up a backend by the name in `node`; on failure, the message lists the known ones. */
static int get_backend(cf_yctx_t *ctx, yaml_node_t *node, cf_backend_t **out)
{
    const cf_config_t *c = loader_of(ctx)->c;
    const char *name = want_string(ctx, node, "a backend name");
    if (name == NULL)
        return -1;
    if ((*out = find_backend(c, name)) != NULL)
        return 0;
    cf_buf_t b = CF_BUF_INIT;
    for (size_t i = 0; i < c->num_backends; ++i)
        cf_buf_appendf(&b, "%s%s", i ? ", " : "", c->backends[i].name);
    cf_yerror(ctx, node, "unknown backend \"%s\" (%s%s)", name, c->num_backends ? "backends: " : "no backends: defined",
              c->num_backends ? b.base : "");
    cf_buf_free(&b);
    return -1;
}

/* ---- calls ---- */

static int on_call_name(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_call_t *call = object;
    const cf_route_t *r = loader_of(ctx)->route;
    if (cf_yget_string(ctx, node, &call->name) != 0)
        return -1;
    if (!is_name(call->name))
        return cf_yerror(ctx, node, "\"%s\" is not a call name (letters, digits, '_' and '-', starting with a letter or '_')",
                         call->name);
    if (strcmp(call->name, "query") == 0 || strcmp(call->name, "header") == 0 || strcmp(call->name, "item") == 0 ||
        strcmp(call->name, "request") == 0 || strcmp(call->name, "jwt") == 0)
        return cf_yerror(ctx, node, "\"%s\" is reserved in templates ({%s.NAME}); choose another name", call->name, call->name);
    for (size_t i = 0; i < call->index; ++i)
        if (strcmp(r->calls[i].name, call->name) == 0)
            return cf_yerror(ctx, node, "\"%s\" is already the name of calls[%zu]", call->name, i);
    return 0;
}

static int on_call_backend(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    return get_backend(ctx, node, &((cf_call_t *)object)->backend);
}

static int on_call_path(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_call_t *call = object;
    const char *src = want_string(ctx, node, "a path template such as /users/{user_id}");
    if (src == NULL)
        return -1;
    char err[256] = "";
    cf_template_t t;
    memset(&t, 0, sizeof(t));
    if (cf_template_parse(src, &t, err, sizeof(err)) != 0)
        return cf_yerror(ctx, node, "%s", err);
    call->path = t;
    return 0;
}

static int on_call_target(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_call_t *call = object;
    const char *s = want_string(ctx, node, "a field path such as data.items");
    if (s == NULL)
        return -1;
    size_t n = 1;
    for (const char *p = s; *p != '\0'; ++p)
        n += *p == '.';
    call->target = calloc(n + 1, sizeof(*call->target));
    for (const char *p = s;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot != NULL ? (size_t)(dot - p) : strlen(p);
        if (len == 0)
            return cf_yerror(ctx, node, "\"%s\" is not a field path (names separated by dots, e.g. data.items)", s);
        call->target[call->num_target++] = strndup(p, len);
        if (dot == NULL)
            break;
        p = dot + 1;
    }
    return 0;
}

/* foreach: CALL.a.b (or CALL alone: its whole answer); the call and the fields are checked by the plan */
static int on_call_foreach(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_foreach_t *fe = &((cf_call_t *)object)->foreach;
    const char *s = want_string(ctx, node, "a call and the field path to its array, such as profile.friend_ids");
    if (s == NULL)
        return -1;
    size_t n = 0;
    for (const char *p = s; *p != '\0'; ++p)
        n += *p == '.';
    fe->source = strdup(s);
    fe->fields = calloc(n + 1, sizeof(*fe->fields));
    fe->call_index = -1;
    for (const char *p = strchr(s, '.'); p != NULL;) {
        const char *dot = strchr(p + 1, '.');
        size_t len = dot != NULL ? (size_t)(dot - p - 1) : strlen(p + 1);
        if (len == 0)
            break;
        fe->fields[fe->num_fields++] = strndup(p + 1, len);
        p = dot;
    }
    if (s[0] == '.' || fe->num_fields != n)
        return cf_yerror(ctx, node, "\"%s\" is not a call and a field path (names separated by dots, e.g. profile.friend_ids)", s);
    return 0;
}

static int on_call_rename(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_call_t *call = object;
    size_t n = map_len(node);
    if (n == 0)
        return cf_yerror(ctx, node, "expected a mapping of field names, e.g. { total: amount }");
    call->rename = calloc(n, sizeof(*call->rename));
    for (size_t i = 0; i < n; ++i) {
        yaml_node_pair_t *pair = &node->data.mapping.pairs.start[i];
        yaml_node_t *knode = cf_yaml_node(ctx->y, pair->key), *vnode = cf_yaml_node(ctx->y, pair->value);
        const char *from = want_string(ctx, knode, "a field name"), *to;
        if (from == NULL)
            return -1;
        size_t mark = cf_ypath_key(ctx, from);
        if ((to = want_string(ctx, vnode, "the new name of the field")) == NULL)
            return -1;
        for (size_t j = 0; j < call->num_rename; ++j) {
            if (strcmp(call->rename[j].from, from) == 0)
                return cf_yerror(ctx, knode, "\"%s\" is renamed twice", from);
            if (strcmp(call->rename[j].to, to) == 0)
                return cf_yerror(ctx, vnode, "\"%s\" and \"%s\" are both renamed to \"%s\"", call->rename[j].from, from, to);
        }
        if (strcmp(from, to) == 0)
            return cf_yerror(ctx, vnode, "\"%s\" is renamed to itself", from);
        call->rename[call->num_rename].from = strdup(from);
        call->rename[call->num_rename++].to = strdup(to);
        cf_ypath_restore(ctx, mark);
    }
    return 0;
}

/* cache: 30s, or {ttl: 30s, stale_while_revalidate: 1m, stale_if_error: 10m} */

static const cf_yfield_t call_cache_fields[] = {
    {.key = "ttl", .type = CF_YT_DURATION, .offset = offsetof(cf_cache_policy_t, ttl_ms), .min = 1000, .max = CF_CACHE_MAX_MS},
    {.key = "stale_while_revalidate",
     .type = CF_YT_DURATION,
     .offset = offsetof(cf_cache_policy_t, swr_ms),
     .min = 0,
     .max = CF_CACHE_MAX_MS,
     .def = "0"},
    {.key = "stale_if_error",
     .type = CF_YT_DURATION,
     .offset = offsetof(cf_cache_policy_t, sie_ms),
     .min = 0,
     .max = CF_CACHE_MAX_MS,
     .def = "0"},
    {NULL},
};

static int on_call_cache(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_call_t *call = object;
    if (node->type == YAML_SCALAR_NODE) {
        uint64_t ms;
        if (cf_yget_duration(ctx, node, &ms) != 0)
            return -1;
        if (ms < 1000 || ms > CF_CACHE_MAX_MS)
            return cf_yerror(ctx, node, "the ttl must be between 1s and 30 days");
        call->cache.ttl_ms = ms;
        return merge_cache_policy(ctx, &call->cache, 1); /* the ttl alone */
    }
    uint64_t seen = 0;
    if (cf_ydecode(ctx, node, call_cache_fields, &call->cache, &seen) != 0)
        return -1;
    if (!cf_yseen(call_cache_fields, seen, "ttl"))
        return cf_yerror(ctx, node, "missing ttl (e.g. cache: {ttl: 30s, stale_while_revalidate: 1m})");
    return merge_cache_policy(ctx, &call->cache, seen);
}

/* No placeholder is filled in a default: one would be a mistake (a default is what the call gives when it failed) */
static int no_value(void *ctx, const cf_tpl_part_t *part, cf_body_value_t *val)
{
    return CF_TPL_MISSING;
}

/* default: any YAML value, typed as a body is (body.h: YAML 1.2's core schema, numbers as JSON writes them), with no
 * placeholder in its strings ("{{" and "}}" for braces); kept parsed, to be shared by every request. */
static int on_call_default(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_call_t *call = object;
    cf_body_t b;
    if (cf_body_parse(ctx, node, &b) != 0)
        return -1;
    for (size_t i = 0; i < b.num_parts; ++i) {
        if (b.parts[i].kind != CF_BODY_TEXT) {
            cf_body_free(&b);
            return cf_yerror(ctx, node, "a default is a fixed value: no {...} placeholder in it (write {{ and }} for braces)");
        }
    }
    cf_buf_t text = CF_BUF_INIT;
    int ret = cf_body_expand(&b, no_value, NULL, NULL, 0, SIZE_MAX, &text, NULL);
    cf_body_free(&b);
    json_error_t jerr;
    if (ret == CF_TPL_OK)
        call->default_value = json_loadb(text.base, text.len, JSON_DECODE_ANY, &jerr);
    cf_buf_free(&text);
    if (call->default_value == NULL)
        return cf_yerror(ctx, node, "internal error: the default did not come out as JSON");
    return 0;
}

/* method: GET (default), POST, PUT, PATCH, DELETE. A HEAD answer has no body to merge, OPTIONS none to rely on. */
static int on_call_method(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    static const unsigned allowed = CF_METHOD_GET | CF_METHOD_POST | CF_METHOD_PUT | CF_METHOD_PATCH | CF_METHOD_DELETE;
    const char *s = want_string(ctx, node, "a method (GET, POST, PUT, PATCH, DELETE)");
    if (s == NULL)
        return -1;
    char upper[16] = "";
    size_t len = strlen(s);
    for (size_t k = 0; k < len && k < sizeof(upper) - 1; ++k)
        upper[k] = s[k] >= 'a' && s[k] <= 'z' ? s[k] - ('a' - 'A') : s[k];
    unsigned bit = len < sizeof(upper) ? cf_method_bit(upper, len) : 0;
    if (bit == CF_METHOD_HEAD)
        return cf_yerror(ctx, node, "HEAD: its answer has no body, and a call needs a JSON body (use GET)");
    if ((bit & allowed) == 0)
        return cf_yerror(ctx, node, "\"%s\" is not a call method (use GET, POST, PUT, PATCH or DELETE)", s);
    ((cf_call_t *)object)->method = bit;
    return 0;
}

static int on_call_body(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    return cf_body_parse(ctx, node, &((cf_call_t *)object)->body);
}

static const char *const on_error_names[] = {"null", "omit", NULL};
static const char *const encoded_slash_names[] = {"refuse", "keep", NULL};

static const cf_yfield_t call_fields[] = {
    {.key = "name", .type = CF_YT_CUSTOM, .custom = on_call_name},
    {.key = "backend", .type = CF_YT_CUSTOM, .custom = on_call_backend},
    {.key = "path", .type = CF_YT_CUSTOM, .custom = on_call_path},
    {.key = "timeout", .type = CF_YT_DURATION, .offset = offsetof(cf_call_t, timeout_ms), .min = 1, .max = MAX_TIMEOUT_MS},
    {.key = "required", .type = CF_YT_BOOL, .offset = offsetof(cf_call_t, required), .def = "false"},
    {.key = "on_error", .type = CF_YT_ENUM, .offset = offsetof(cf_call_t, on_error), .names = on_error_names, .def = "null"},
    {.key = "target", .type = CF_YT_CUSTOM, .custom = on_call_target},
    {.key = "allow", .type = CF_YT_STRLIST, .offset = offsetof(cf_call_t, allow)},
    {.key = "deny", .type = CF_YT_STRLIST, .offset = offsetof(cf_call_t, deny)},
    {.key = "rename", .type = CF_YT_CUSTOM, .custom = on_call_rename},
    {.key = "cache", .type = CF_YT_CUSTOM, .custom = on_call_cache},
    {.key = "encoded_slash",
     .type = CF_YT_ENUM,
     .offset = offsetof(cf_call_t, encoded_slash),
     .names = encoded_slash_names,
     .def = "refuse"},
    {.key = "method", .type = CF_YT_CUSTOM, .custom = on_call_method}, /* GET unless set (merge_call) */
    {.key = "body", .type = CF_YT_CUSTOM, .custom = on_call_body},
    {.key = "safe", .type = CF_YT_BOOL, .offset = offsetof(cf_call_t, safe), .def = "false"},
    {.key = "default", .type = CF_YT_CUSTOM, .custom = on_call_default},
    {.key = "foreach", .type = CF_YT_CUSTOM, .custom = on_call_foreach},
    {.key = "concurrency",
     .type = CF_YT_UINT,
     .offset = offsetof(cf_call_t, foreach.concurrency),
     .min = 1,
     .max = CF_FOREACH_MAX_CONCURRENCY,
     .def = "16"},
    {.key = "max_items",
     .type = CF_YT_UINT,
     .offset = offsetof(cf_call_t, foreach.max_items),
     .min = 1,
     .max = CF_FOREACH_MAX_ITEMS,
     .def = "100"},
    {.key = "batch", .type = CF_YT_UINT, .offset = offsetof(cf_call_t, foreach.batch), .min = 1, .max = CF_FOREACH_MAX_BATCH},
    {NULL},
};

static int has_str(const cf_strlist_t *l, const char *s)
{
    for (size_t i = 0; i < l->n; ++i)
        if (strcmp(l->items[i], s) == 0)
            return 1;
    return 0;
}

/* Checks what cf_ydecode cannot: required keys, and shaping options that contradict each other. */
static int check_call(cf_yctx_t *ctx, yaml_node_t *node, cf_call_t *call)
{
    if (call->name == NULL)
        return cf_yerror(ctx, node, "missing name:");
    if (call->backend == NULL)
        return cf_yerror(ctx, node, "missing backend:");
    if (call->path.src == NULL)
        return cf_yerror(ctx, node, "missing path:");
    if (call->allow.n != 0 && call->deny.n != 0)
        return cf_yerror(ctx, cf_ymap_get(ctx->y, node, "deny"), "use either allow: or deny:, not both");
    if (call->default_value != NULL && call->required)
        return cf_yerror(ctx, cf_ymap_get(ctx->y, node, "default"),
                         "a required call has no default: its failure fails the request (drop one of them)");
    if (call->default_value != NULL && call->on_error == CF_ON_ERROR_OMIT)
        return cf_yerror(ctx, cf_ymap_get(ctx->y, node, "default"),
                         "on_error: omit drops a failed call's key; default: gives it a value (drop one of them)");
    if (call->foreach.source == NULL) {
        static const char *const with_foreach[] = {"concurrency", "max_items", "batch"};
        for (size_t i = 0; i < sizeof(with_foreach) / sizeof(with_foreach[0]); ++i) {
            yaml_node_t *k = cf_ymap_get(ctx->y, node, with_foreach[i]);
            if (k != NULL) {
                size_t mark = cf_ypath_key(ctx, with_foreach[i]);
                cf_yerror(ctx, k, "goes with foreach:, which this call does not have");
                cf_ypath_restore(ctx, mark);
                return -1;
            }
        }
    }
    for (size_t i = 0; i < call->num_rename; ++i) {
        const char *from = call->rename[i].from;
        if ((call->allow.n != 0 && !has_str(&call->allow, from)) || has_str(&call->deny, from)) {
            yaml_node_t *rn = cf_ymap_get(ctx->y, node, "rename");
            size_t mark = cf_ypath_key(ctx, "rename");
            cf_ypath_key(ctx, from);
            cf_yerror(ctx, rn, "\"%s\" is removed by %s: before it could be renamed", from, call->allow.n != 0 ? "allow" : "deny");
            cf_ypath_restore(ctx, mark);
            return -1;
        }
    }
    return 0;
}

/*
 * A call's method and body together: a GET has no body (RFC 9110 9.3.1: content in a GET has no defined semantics; many
 * servers ignore it and caches key without it), and only a GET is cached (a POST or PATCH is not idempotent, and the
 * answer to a PUT or DELETE is not the resource's representation).
 */
static int check_call_method(cf_yctx_t *ctx, yaml_node_t *node, cf_call_t *call)
{
    const char *name = cf_method_name(call->method);
    int failed = 0;
    size_t mark = 0;
    if (call->method == CF_METHOD_GET && call->body.num_parts != 0) {
        mark = cf_ypath_key(ctx, "body");
        failed = cf_yerror(ctx, cf_ymap_get(ctx->y, node, "body"),
                           "a GET call sends no body (many servers ignore one, and caches key without it): set method: POST "
                           "(or PUT, PATCH, DELETE)");
    } else if (call->method != CF_METHOD_GET && call->cache.ttl_ms != 0) {
        mark = cf_ypath_key(ctx, "cache");
        failed = cf_yerror(ctx, cf_ymap_get(ctx->y, node, "cache"),
                           "only GET calls are cached; a %s call is sent every time (and %s)", name,
                           call->method == CF_METHOD_POST || call->method == CF_METHOD_PATCH ? "never retried nor hedged"
                                                                                             : "its answer is not the resource");
    }
    if (failed)
        cf_ypath_restore(ctx, mark);
    return failed;
}

static int on_calls(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_route_t *r = object;
    size_t n = seq_len(node);
    if (n == 0)
        return cf_yerror(ctx, node, "expected a list of calls, each {name:, backend:, path:}");
    if (n > CF_CONFIG_MAX_CALLS)
        return cf_yerror(ctx, node, "%zu calls; a route may have at most %d", n, CF_CONFIG_MAX_CALLS);
    r->calls = calloc(n, sizeof(*r->calls));
    for (size_t i = 0; i < n; ++i) {
        yaml_node_t *item = seq_item(ctx, node, i);
        cf_call_t *call = &r->calls[r->num_calls++];
        size_t mark = cf_ypath_index(ctx, i);
        uint64_t seen = 0;
        call->index = i;
        call->line = (int)item->start_mark.line + 1;
        call->col = (int)item->start_mark.column + 1;
        if (cf_ydecode(ctx, item, call_fields, call, &seen) != 0 || merge_call(ctx, call, seen) != 0 ||
            check_call(ctx, item, call) != 0 || check_call_method(ctx, item, call) != 0)
            return -1;
        cf_ypath_restore(ctx, mark);
    }
    return 0;
}

/* ---- routes ---- */

static int on_route_path(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_route_t *r = object;
    const char *src = want_string(ctx, node, "a path pattern such as /users/{id}");
    if (src == NULL)
        return -1;
    char err[256] = "";
    cf_pattern_t p;
    memset(&p, 0, sizeof(p));
    if (cf_pattern_parse(src, &p, err, sizeof(err)) != 0)
        return cf_yerror(ctx, node, "%s", err);
    r->pattern = p;
    return 0;
}

static int on_route_methods(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_route_t *r = object;
    cf_strlist_t l = {NULL, 0};
    if (cf_yget_strlist(ctx, node, &l) != 0) {
        cf_strlist_free(&l);
        return -1;
    }
    r->methods = 0;
    for (size_t i = 0; i < l.n; ++i) {
        char upper[16] = "";
        size_t len = strlen(l.items[i]);
        for (size_t k = 0; k < len && k < sizeof(upper) - 1; ++k)
            upper[k] = l.items[i][k] >= 'a' && l.items[i][k] <= 'z' ? l.items[i][k] - ('a' - 'A') : l.items[i][k];
        unsigned bit = len < sizeof(upper) ? cf_method_bit(upper, len) : 0;
        if (bit == 0) {
            yaml_node_t *item = node->type == YAML_SEQUENCE_NODE ? seq_item(ctx, node, i) : node;
            size_t mark = node->type == YAML_SEQUENCE_NODE ? cf_ypath_index(ctx, i) : ctx->pathlen;
            cf_yerror(ctx, item, "unknown method \"%s\" (use GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS)", l.items[i]);
            cf_ypath_restore(ctx, mark);
            cf_strlist_free(&l);
            return -1;
        }
        r->methods |= bit;
    }
    cf_strlist_free(&l);
    if (r->methods == 0)
        return cf_yerror(ctx, node, "expected at least one method");
    return 0;
}

static const char *const conflict_names[] = {"first", "last", NULL};

static int on_route_on_conflict(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    int idx;
    if (cf_yget_enum(ctx, node, conflict_names, &idx) != 0)
        return -1;
    ((cf_route_t *)object)->on_conflict = idx == 0 ? CF_CONFLICT_FIRST : CF_CONFLICT_LAST;
    return 0;
}

/*
 * Header names are lower-cased. Hop-by-hop headers (RFC 9110 7.6.1) describe one connection and must not cross a
 * proxy; Host and Content-Length are conflux's to set for each upstream request. Naming any of them is refused rather
 * than silently dropped, so that the config says what really happens.
 */
static int on_route_forward_headers(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    static const char *const hop_by_hop[] = {
        "connection", "keep-alive",          "proxy-connection",   "te", "trailer", "transfer-encoding",
        "upgrade",    "proxy-authorization", "proxy-authenticate", NULL};
    static const char *const set_by_conflux[] = {"host", "content-length", NULL};
    cf_route_t *r = object;
    if (cf_yget_strlist(ctx, node, &r->forward_headers) != 0)
        return -1;
    for (size_t i = 0; i < r->forward_headers.n; ++i) {
        char *h = r->forward_headers.items[i];
        yaml_node_t *item = node->type == YAML_SEQUENCE_NODE ? seq_item(ctx, node, i) : node;
        size_t mark = node->type == YAML_SEQUENCE_NODE ? cf_ypath_index(ctx, i) : ctx->pathlen;
        if (!cf_http_is_token(h, strlen(h))) { /* a field name is a token (RFC 9110 5.1) */
            cf_yerror(ctx, item, "\"%s\" is not a header name", h);
            return -1;
        }
        char orig[128];
        snprintf(orig, sizeof(orig), "%s", h);
        lower_case(h);
        for (size_t k = 0; hop_by_hop[k] != NULL; ++k)
            if (strcmp(h, hop_by_hop[k]) == 0)
                return cf_yerror(ctx, item, "\"%s\" is a hop-by-hop header and is never forwarded (RFC 9110 7.6.1)", orig);
        for (size_t k = 0; set_by_conflux[k] != NULL; ++k)
            if (strcmp(h, set_by_conflux[k]) == 0)
                return cf_yerror(ctx, item, "\"%s\" is set by conflux for each upstream request and cannot be forwarded", orig);
        cf_ypath_restore(ctx, mark);
    }
    return 0;
}

static int on_route_proxy(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    return get_backend(ctx, node, &((cf_route_t *)object)->proxy);
}

/* cors: {origins, ...} or off (cors.c decodes it); a route without the key takes the top-level one in merge_route */
static int on_route_cors(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_route_t *r = object;
    return cf_cors_decode(ctx, node, 1, &r->cors_own);
}

/* auth: {jwt: {...}} or off (auth.c decodes it); a route without the key takes the top-level one in merge_route */
static int on_route_auth(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    return cf_auth_decode(ctx, node, 1, &((cf_route_t *)object)->auth_own);
}

/* rate_limit: {rate, burst, key} (ratelimit.c decodes it) */
static int on_route_rate_limit(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    return cf_ratelimit_decode(ctx, node, &((cf_route_t *)object)->rate_limit);
}

static const char *const merge_names[] = {"group", "merge", NULL};

static const cf_yfield_t route_fields[] = {
    {.key = "path", .type = CF_YT_CUSTOM, .custom = on_route_path},
    {.key = "methods", .type = CF_YT_CUSTOM, .custom = on_route_methods},
    {.key = "deadline", .type = CF_YT_DURATION, .offset = offsetof(cf_route_t, deadline_ms), .min = 1, .max = MAX_TIMEOUT_MS},
    {.key = "merge", .type = CF_YT_ENUM, .offset = offsetof(cf_route_t, merge), .names = merge_names, .def = "group"},
    {.key = "on_conflict", .type = CF_YT_CUSTOM, .custom = on_route_on_conflict},
    {.key = "forward_headers", .type = CF_YT_CUSTOM, .custom = on_route_forward_headers},
    {.key = "forward_query", .type = CF_YT_STRLIST, .offset = offsetof(cf_route_t, forward_query)},
    {.key = "rate_limit", .type = CF_YT_CUSTOM, .custom = on_route_rate_limit},
    {.key = "cors", .type = CF_YT_CUSTOM, .custom = on_route_cors},
    {.key = "auth", .type = CF_YT_CUSTOM, .custom = on_route_auth},
    {.key = "calls", .type = CF_YT_CUSTOM, .custom = on_calls},
    {.key = "proxy", .type = CF_YT_CUSTOM, .custom = on_route_proxy},
    {NULL},
};

/* An error at `key` (or at the call itself when NULL) of call `j` of the route `rnode`, as routes[i].calls[j].key. */
static int call_error(cf_yctx_t *ctx, yaml_node_t *rnode, size_t j, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int call_error(cf_yctx_t *ctx, yaml_node_t *rnode, size_t j, const char *key, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    yaml_node_t *node = seq_item(ctx, cf_ymap_get(ctx->y, rnode, "calls"), j);
    size_t mark = cf_ypath_key(ctx, "calls");
    cf_ypath_index(ctx, j);
    if (key != NULL) {
        cf_ypath_key(ctx, key);
        node = cf_ymap_get(ctx->y, node, key);
    }
    cf_yerror(ctx, node, "%s", msg);
    cf_ypath_restore(ctx, mark);
    return -1;
}

/*
 * A route with calls that lists a method carrying a body (POST, PUT, PATCH, DELETE) must do something with it: a call
 * that forwards the client's body ({request.body}) or that has a method other than GET. Else the client's body would be
 * dropped and its POST answered like a GET. The other way round, {request.body} on a route that only takes GET and
 * HEAD would fail every request. A proxy route forwards the whole request and is not concerned.
 */
static int check_route_methods(cf_yctx_t *ctx, yaml_node_t *rnode, const cf_route_t *r)
{
    static const unsigned with_body = CF_METHOD_POST | CF_METHOD_PUT | CF_METHOD_PATCH | CF_METHOD_DELETE;
    int forwards = 0, own_method = 0;
    size_t forwarder = 0;
    for (size_t j = 0; j < r->num_calls; ++j) {
        if (r->calls[j].body.uses_request_body && !forwards) {
            forwards = 1;
            forwarder = j;
        }
        own_method |= r->calls[j].method != CF_METHOD_GET;
    }
    char m[64];
    if ((r->methods & with_body) != 0 && !forwards && !own_method) {
        size_t mark = cf_ypath_key(ctx, "methods");
        cf_yerror(ctx, cf_ymap_get(ctx->y, rnode, "methods"),
                  "%s: no call forwards the client's body ({request.body} in a body:) or has a method: other than GET, so the "
                  "request would be answered as a GET with its body dropped; list only GET (and HEAD), or use the body",
                  cf_methods_format(r->methods & with_body, m, sizeof(m)));
        cf_ypath_restore(ctx, mark);
        return -1;
    }
    if (forwards && (r->methods & with_body) == 0)
        return call_error(ctx, rnode, forwarder, "body",
                          "{request.body} forwards the client's body, but the route takes only %s, which carry none: add "
                          "methods: [POST] (or PUT, PATCH, DELETE) to the route",
                          cf_methods_format(r->methods, m, sizeof(m)));
    /* the other way round: a request that is safe to send (a link, a prefetch, a CORS preflight, a client or CDN that
     * retries a GET on its own) must not make an upstream change something: CSRF through an <img src> */
    static const unsigned safe_methods = CF_METHOD_GET | CF_METHOD_HEAD | CF_METHOD_OPTIONS;
    for (size_t j = 0; j < r->num_calls; ++j) {
        const cf_call_t *call = &r->calls[j];
        if ((r->methods & safe_methods) != 0 && call->method != CF_METHOD_GET && !call->safe)
            return call_error(ctx, rnode, j, "method",
                              "the route answers %s, which must change nothing, but this call sends %s upstream (a link, a "
                              "prefetch or a retried request would trigger it): list only POST, PUT, PATCH or DELETE in the "
                              "route's methods, or say safe: true if this %s only reads (a search or a GraphQL query)",
                              cf_methods_format(r->methods & safe_methods, m, sizeof(m)), cf_method_name(call->method),
                              cf_method_name(call->method));
        if (call->method == CF_METHOD_GET && call->safe)
            return call_error(ctx, rnode, j, "safe", "safe: is for a call whose method is not GET (a GET is safe already)");
    }
    return 0;
}

/* Checks a decoded route as a whole; `router` is a scratch router that catches routes that shadow each other. */
static int check_route(cf_yctx_t *ctx, yaml_node_t *rnode, cf_route_t *r, uint64_t seen, cf_router_t *router)
{
    if (r->pattern.src == NULL)
        return cf_yerror(ctx, rnode, "missing path:");
    if (r->proxy == NULL && r->num_calls == 0)
        return cf_yerror(ctx, rnode, "needs calls: (an aggregated route) or proxy: BACKEND (a pass-through route)");
    if (r->rate_limit != NULL && r->rate_limit->key == CF_RATELIMIT_BY_CLAIM && r->auth == NULL) {
        size_t mark = cf_ypath_key(ctx, "rate_limit");
        cf_ypath_key(ctx, "key");
        cf_yerror(ctx, cf_ymap_get(ctx->y, cf_ymap_get(ctx->y, rnode, "rate_limit"), "key"),
                  "jwt.%s needs the route's token: add auth: {jwt: ...} to the route or at the top level", r->rate_limit->header);
        cf_ypath_restore(ctx, mark);
        return -1;
    }
    if (r->proxy != NULL) {
        static const char *const calls_only[] = {"calls", "merge", "on_conflict", "forward_headers", "forward_query", NULL};
        for (size_t i = 0; calls_only[i] != NULL; ++i) {
            if (cf_yseen(route_fields, seen, calls_only[i])) {
                size_t mark = cf_ypath_key(ctx, calls_only[i]);
                if (i == 0)
                    cf_yerror(ctx, cf_ymap_get(ctx->y, rnode, calls_only[i]), "a route has either calls: or proxy:, not both");
                else
                    cf_yerror(ctx, cf_ymap_get(ctx->y, rnode, calls_only[i]),
                              "only for routes with calls: (a proxy: route passes the whole request through)");
                cf_ypath_restore(ctx, mark);
                return -1;
            }
        }
    } else {
        if (r->on_conflict != CF_CONFLICT_ERROR && r->merge != CF_MERGE_MERGE) {
            size_t mark = cf_ypath_key(ctx, "on_conflict");
            cf_yerror(ctx, cf_ymap_get(ctx->y, rnode, "on_conflict"), "only applies with merge: merge");
            cf_ypath_restore(ctx, mark);
            return -1;
        }
        for (size_t i = 0; i < r->num_calls; ++i)
            if (r->merge == CF_MERGE_MERGE && r->calls[i].default_value != NULL && !json_is_object(r->calls[i].default_value))
                return call_error(ctx, rnode, i, "default",
                                  "with merge: merge a default must be a mapping: its members are merged like the call's");
        cf_plan_error_t perr;
        if (cf_plan_route(r, &perr) != 0)
            return call_error(ctx, rnode, perr.call, perr.key, "%s", perr.msg);
        if (check_route_methods(ctx, rnode, r) != 0)
            return -1;
    }
    merge_route_deadline(r, seen); /* it needs the plan */
    char err[256] = "";
    if (cf_router_add(router, r->pattern.src, r->methods, r, err, sizeof(err)) != 0) {
        size_t mark = cf_ypath_key(ctx, "path");
        cf_yerror(ctx, cf_ymap_get(ctx->y, rnode, "path"), "%s", err);
        cf_ypath_restore(ctx, mark);
        return -1;
    }
    return 0;
}

static int load_routes(struct st_loader_t *L)
{
    cf_yctx_t *ctx = &L->ctx;
    cf_config_t *c = L->c;
    yaml_node_t *node = L->routes;
    size_t n = seq_len(node), mark = cf_ypath_key(ctx, "routes");
    if (n == 0)
        return cf_yerror(ctx, node, "expected a list of routes, each {path:, calls: [...]} or {path:, proxy: BACKEND}");
    cf_router_t *router = cf_router_new();
    int ret = 0;
    c->routes = calloc(n, sizeof(*c->routes));
    for (size_t i = 0; i < n && ret == 0; ++i) {
        yaml_node_t *item = seq_item(ctx, node, i);
        cf_route_t *r = &c->routes[c->num_routes++];
        size_t imark = cf_ypath_index(ctx, i);
        uint64_t seen = 0;
        r->index = i;
        r->line = (int)item->start_mark.line + 1;
        r->col = (int)item->start_mark.column + 1;
        L->route = r;
        if (cf_ydecode(ctx, item, route_fields, r, &seen) != 0 || merge_route(ctx, r, seen) != 0 ||
            check_route(ctx, item, r, seen, router) != 0)
            ret = -1;
        cf_ypath_restore(ctx, imark);
    }
    L->route = NULL;
    cf_router_free(router);
    cf_ypath_restore(ctx, mark);
    return ret;
}

/* ---- the top level ---- */

static int on_routes(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    loader_of(ctx)->routes = node;
    return 0;
}

/* cache: {memory: 64MiB, memcached: host:port} */
static int on_cache_memcached(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_config_t *c = object;
    return get_hostport(ctx, node, "127.0.0.1:11211", &c->cache.memcached_host, &c->cache.memcached_port) != NULL ? 0 : -1;
}

static const cf_yfield_t cache_fields[] = {
    {.key = "memory",
     .type = CF_YT_SIZE,
     .offset = offsetof(cf_config_t, cache.memory),
     .min = 0,
     .max = 1ull << 40,
     .def = "64MiB"},
    {.key = "memcached", .type = CF_YT_CUSTOM, .custom = on_cache_memcached},
    {.key = "memcached_timeout",
     .type = CF_YT_DURATION,
     .offset = offsetof(cf_config_t, cache.memcached_timeout_ms),
     .min = 1,
     .max = 10000,
     .def = "50ms"},
    {NULL},
};

static int on_cache(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    return cf_ydecode(ctx, node, cache_fields, object, &loader_of(ctx)->cache_seen);
}

/* tracing: {otlp: URL, sample: 0.1, batch:, queue:, delay:, timeout:, service_name:} */
static int on_tracing_otlp(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_config_t *c = object;
    const char *url = want_string(ctx, node, "the collector's traces URL (e.g. http://127.0.0.1:4318/v1/traces)");
    if (url == NULL)
        return -1;
    cf_fetch_url_t parsed; /* checked by the parser the exporter uses (cf_fetch.h) */
    const char *why = NULL;
    if (cf_fetch_parse_url(url, &parsed, &why) != 0)
        return cf_yerror(ctx, node, "\"%s\" %s (e.g. http://127.0.0.1:4318/v1/traces)", url, why);
    free(c->tracing.otlp);
    c->tracing.otlp = strdup(url);
    return 0;
}

static int on_tracing_sample(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_config_t *c = object;
    const char *s = want_string(ctx, node, "a number from 0 to 1");
    if (s == NULL)
        return -1;
    if (cf_parse_fraction(s, &c->tracing.sample) != 0)
        return cf_yerror(ctx, node, "\"%s\" is not a number from 0 to 1 (the share of new traces sampled)", s);
    return 0;
}

static const cf_yfield_t tracing_fields[] = {
    {.key = "otlp", .type = CF_YT_CUSTOM, .custom = on_tracing_otlp},
    {.key = "sample", .type = CF_YT_CUSTOM, .custom = on_tracing_sample},
    {.key = "parent_based", .type = CF_YT_BOOL, .offset = offsetof(cf_config_t, tracing.parent_based), .def = "true"},
    {.key = "batch", .type = CF_YT_UINT, .offset = offsetof(cf_config_t, tracing.batch), .min = 1, .max = 10000, .def = "512"},
    {.key = "queue", .type = CF_YT_UINT, .offset = offsetof(cf_config_t, tracing.queue), .min = 1, .max = 1000000, .def = "2048"},
    {.key = "delay",
     .type = CF_YT_DURATION,
     .offset = offsetof(cf_config_t, tracing.delay_ms),
     .min = 1,
     .max = 60000,
     .def = "1s"},
    {.key = "timeout",
     .type = CF_YT_DURATION,
     .offset = offsetof(cf_config_t, tracing.timeout_ms),
     .min = 1,
     .max = 60000,
     .def = "5s"},
    {.key = "service_name", .type = CF_YT_STRING, .offset = offsetof(cf_config_t, tracing.service_name), .def = "conflux"},
    {NULL},
};

static int on_tracing(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    return cf_ydecode(ctx, node, tracing_fields, object, &loader_of(ctx)->tracing_seen);
}

static int on_top_cors(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    return cf_cors_decode(ctx, node, 0, &((cf_config_t *)object)->cors);
}

static int on_top_auth(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    return cf_auth_decode(ctx, node, 0, &((cf_config_t *)object)->auth);
}

static const cf_yfield_t top_fields[] = {
    {.key = "listen", .type = CF_YT_CUSTOM, .custom = on_listen},
    {.key = "threads", .type = CF_YT_CUSTOM, .custom = on_threads},
    {.key = "admin", .type = CF_YT_CUSTOM, .custom = on_admin},
    {.key = "access_log", .type = CF_YT_STRING, .offset = offsetof(cf_config_t, access_log)},
    {.key = "shutdown_timeout",
     .type = CF_YT_DURATION,
     .offset = offsetof(cf_config_t, shutdown_timeout_ms),
     .min = 0,
     .max = MAX_TIMEOUT_MS,
     .def = "10s"},
    {.key = "limits", .type = CF_YT_CUSTOM, .custom = on_limits},
    {.key = "cache", .type = CF_YT_CUSTOM, .custom = on_cache},
    {.key = "backends", .type = CF_YT_CUSTOM, .custom = on_backends},
    {.key = "routes", .type = CF_YT_CUSTOM, .custom = on_routes},
    {.key = "cors", .type = CF_YT_CUSTOM, .custom = on_top_cors},
    {.key = "auth", .type = CF_YT_CUSTOM, .custom = on_top_auth},
    {.key = "tracing", .type = CF_YT_CUSTOM, .custom = on_tracing},
    {NULL},
};

/* ---- defaults ---- */

/*
 * Every default of the file is a `def` in the tables above or is set here, after its level is decoded; nothing else in
 * conflux knows one (upstream.c and the route tables take what the config holds). The defaults set here depend on
 * the machine or on the rest of the file.
 */

static int merge_listen(cf_yctx_t *ctx, cf_listen_t *l, uint64_t seen)
{
    return cf_ydefaults(ctx, listen_fields, l, seen); /* host: NULL stands for 0.0.0.0 */
}

/* retry_on: [connect_failed, reset, status_502, status_503, status_504] and retry_budget: {percent: 20, min: 3} when
 * absent (as Envoy's retry_budget); hedge_after: pNN goes after hedge_fallback until the backend has enough samples. */
static int merge_backend(cf_yctx_t *ctx, cf_backend_t *b, uint64_t seen)
{
    if (!cf_yseen(backend_fields, seen, "retry_on")) {
        b->retry_on = 1u << CF_REASON_CONNECT_FAILED | 1u << CF_REASON_RESET;
        for (int st = 502; st <= 504; ++st)
            b->retry_on_status[st / 64] |= (uint64_t)1 << (st % 64);
    }
    if (!cf_yseen(backend_fields, seen, "retry_budget") && cf_ydefaults(ctx, retry_budget_fields, b, 0) != 0)
        return -1;
    if (cf_ydefaults(ctx, backend_fields, b, seen) != 0)
        return -1;
    if (b->hedge_percentile != 0)
        b->hedge_after_ms = b->hedge_fallback_ms;
    return 0;
}

static int merge_cache_policy(cf_yctx_t *ctx, cf_cache_policy_t *p, uint64_t seen)
{
    return cf_ydefaults(ctx, call_cache_fields, p, seen);
}

/* A call's timeout is its backend's unless it has its own (a call without backend: fails its check next). */
static int merge_call(cf_yctx_t *ctx, cf_call_t *call, uint64_t seen)
{
    if (!cf_yseen(call_fields, seen, "timeout") && call->backend != NULL)
        call->timeout_ms = call->backend->timeout_ms;
    if (!cf_yseen(call_fields, seen, "method"))
        call->method = CF_METHOD_GET;
    return cf_ydefaults(ctx, call_fields, call, seen);
}

static int merge_route(cf_yctx_t *ctx, cf_route_t *r, uint64_t seen)
{
    if (!cf_yseen(route_fields, seen, "methods"))
        r->methods = CF_METHOD_GET | CF_METHOD_HEAD;
    /* cors: replaces the default wholly (off: none); without the key the route takes the default */
    r->cors = cf_yseen(route_fields, seen, "cors") ? r->cors_own : loader_of(ctx)->c->cors;
    /* auth: the same (off: none) */
    r->auth = cf_yseen(route_fields, seen, "auth") ? r->auth_own : loader_of(ctx)->c->auth;
    if (!cf_yseen(route_fields, seen, "on_conflict"))
        r->on_conflict = CF_CONFLICT_ERROR; /* a key two calls can both give is a config error */
    return cf_ydefaults(ctx, route_fields, r, seen);
}

/*
 * A proxy route's deadline is its backend's timeout. A route with calls gets the longest chain of call timeouts
 * through the dependencies: "the largest call timeout" is only enough when the calls all run at once, since a call
 * that waits for another starts when that one ends, so the budget a chain needs is the sum of its timeouts. Without
 * dependencies the two are the same. A foreach call counts as the most rounds of its timeout it can take (plan.c),
 * so that the default never cuts what would have finished; the hour that bounds any deadline caps it.
 */
static void merge_route_deadline(cf_route_t *r, uint64_t seen)
{
    if (!cf_yseen(route_fields, seen, "deadline"))
        r->deadline_ms = r->proxy != NULL ? r->proxy->timeout_ms : cf_plan_longest_chain(r);
    if (r->deadline_ms > MAX_TIMEOUT_MS)
        r->deadline_ms = MAX_TIMEOUT_MS;
}

/* The top level, limits: and cache:, these two whether the file has them or not. threads: one per CPU. */
static int merge_top(struct st_loader_t *L, uint64_t seen)
{
    cf_config_t *c = L->c;
    if (!cf_yseen(top_fields, seen, "threads")) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        c->threads = ncpu < 1 ? 1 : ncpu > CF_CONFIG_MAX_THREADS ? CF_CONFIG_MAX_THREADS : (uint64_t)ncpu;
    }
    if (cf_ydefaults(&L->ctx, top_fields, c, seen) != 0 || cf_ydefaults(&L->ctx, limits_fields, c, L->limits_seen) != 0 ||
        cf_ydefaults(&L->ctx, tracing_fields, c, L->tracing_seen) != 0)
        return -1;
    return cf_ydefaults(&L->ctx, cache_fields, c, L->cache_seen);
}

/* The client connection cap, when the file does not set one, comes from the open-file limit at start. */
uint64_t cf_config_max_client_connections(const cf_config_t *c, uint64_t nofile)
{
    if (c->limits.max_client_connections != 0)
        return c->limits.max_client_connections;
    uint64_t half = nofile / 2;
    return half < 16 ? 16 : half;
}

/* ---- loading ---- */

static cf_config_t *load_document(cf_yaml_t *y, const char *name, char *err, size_t errlen)
{
    struct st_loader_t L;
    memset(&L, 0, sizeof(L));
    cf_yctx_init(&L.ctx, y);
    cf_config_t *c = L.c = calloc(1, sizeof(*c));
    c->filename = strdup(name);
    c->refcnt = 1;

    yaml_node_t *root = cf_yaml_root(y);
    uint64_t seen = 0;
    if (root == NULL || (root->type == YAML_SCALAR_NODE && *cf_yscalar(root) == '\0')) {
        cf_yerror(&L.ctx, NULL, "the file is empty (it needs at least listen: and routes:)");
    } else if (cf_ydecode(&L.ctx, root, top_fields, c, &seen) == 0 && merge_top(&L, seen) == 0) {
        if (c->num_listen == 0)
            cf_yerror(&L.ctx, root, "missing listen: (e.g. listen: [{port: 8080}])");
        else if (L.routes == NULL)
            cf_yerror(&L.ctx, root, "missing routes:");
        else if (load_routes(&L) == 0 && c->admin_host != NULL) {
            for (size_t i = 0; i < c->num_listen; ++i) {
                if (c->listen[i].port == c->admin_port) {
                    size_t mark = cf_ypath_key(&L.ctx, "admin");
                    cf_yerror(&L.ctx, cf_ymap_get(y, root, "admin"), "port %u is also a public listener (listen[%zu])",
                              c->admin_port, i);
                    cf_ypath_restore(&L.ctx, mark);
                    break;
                }
            }
        }
    }
    if (L.ctx.failed) {
        snprintf(err, errlen, "%s", L.ctx.err);
        cf_config_free(c);
        return NULL;
    }
    return c;
}

/* The file is read whole so that the bytes parsed are exactly the bytes hashed (the /config endpoint shows the hash). */
cf_config_t *cf_config_load(const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    cf_buf_t text = CF_BUF_INIT;
    char chunk[16384];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) != 0 && text.len <= MAX_CONFIG_FILE)
        cf_buf_append(&text, chunk, n);
    int failed = ferror(fp), saved_errno = errno;
    fclose(fp);
    cf_config_t *c = NULL;
    if (failed)
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(saved_errno));
    else if (text.len > MAX_CONFIG_FILE)
        snprintf(err, errlen, "%s: larger than %d MiB; that is not a config file", path, MAX_CONFIG_FILE >> 20);
    else
        c = cf_config_load_string(path, text.base != NULL ? text.base : "", text.len, err, errlen);
    cf_buf_free(&text);
    return c;
}

/* SHA-256 of the config text as 64 hex digits (OpenSSL's EVP interface). */
static void hash_hex(const void *p, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (EVP_Digest(p, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        out[0] = '\0';
        return;
    }
    for (unsigned i = 0; i != mdlen; ++i)
        snprintf(out + i * 2, 3, "%02x", md[i]);
}

cf_config_t *cf_config_load_string(const char *name, const char *yaml, size_t len, char *err, size_t errlen)
{
    cf_yaml_t y;
    if (cf_yaml_load_string(&y, name, yaml, len, err, errlen) != 0) {
        cf_yaml_dispose(&y);
        return NULL;
    }
    cf_config_t *c = load_document(&y, name, err, errlen);
    cf_yaml_dispose(&y);
    if (c != NULL) {
        hash_hex(yaml, len, c->sha256);
        c->loaded_at = time(NULL);
    }
    return c;
}

static void free_call(cf_call_t *call)
{
    free(call->name);
    cf_template_free(&call->path);
    cf_body_free(&call->body);
    free(call->deps);
    for (size_t i = 0; i < call->num_target; ++i)
        free(call->target[i]);
    free(call->target);
    cf_strlist_free(&call->allow);
    cf_strlist_free(&call->deny);
    for (size_t i = 0; i < call->num_rename; ++i) {
        free(call->rename[i].from);
        free(call->rename[i].to);
    }
    free(call->rename);
    json_decref(call->default_value);
    free(call->foreach.source);
    for (size_t i = 0; i < call->foreach.num_fields; ++i)
        free(call->foreach.fields[i]);
    free(call->foreach.fields);
}

void cf_config_retain(cf_config_t *c)
{
    __atomic_add_fetch(&c->refcnt, 1, __ATOMIC_RELAXED);
}

void cf_config_free(cf_config_t *c)
{
    if (c == NULL || __atomic_sub_fetch(&c->refcnt, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (size_t i = 0; i < c->num_routes; ++i) {
        cf_route_t *r = &c->routes[i];
        cf_pattern_free(&r->pattern);
        cf_strlist_free(&r->forward_headers);
        cf_strlist_free(&r->forward_query);
        cf_cors_free(r->cors_own);
        cf_ratelimit_free(r->rate_limit);
        cf_auth_free(r->auth_own);
        for (size_t j = 0; j < r->num_calls; ++j)
            free_call(&r->calls[j]);
        free(r->calls);
    }
    free(c->routes);
    cf_cors_free(c->cors);
    cf_auth_free(c->auth);
    for (size_t i = 0; i < c->num_backends; ++i) {
        cf_backend_t *b = &c->backends[i];
        for (size_t j = 0; j < b->num_servers; ++j) {
            free(b->servers[j].url);
            free(b->servers[j].host);
            free(b->servers[j].base_path);
        }
        free(b->servers);
        free(b->name);
        free(b->ca_file);
        free(b->sni);
        free(b->health.path);
    }
    free(c->backends);
    free(c->cache.memcached_host);
    for (size_t i = 0; i < c->num_listen; ++i) {
        free(c->listen[i].host);
        free(c->listen[i].tls_certificate);
        free(c->listen[i].tls_key);
    }
    free(c->listen);
    free(c->admin_host);
    free(c->access_log);
    free(c->tracing.otlp);
    free(c->tracing.service_name);
    free(c->filename);
    free(c);
}
