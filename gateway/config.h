/* The configuration: YAML (SPEC §2) -> these structs, validated, with file:line:col errors. Knows nothing of h2o. */
#ifndef CF_CONFIG_H
#define CF_CONFIG_H

#include <stdint.h>
#include <stdio.h>
#include "cf_yaml.h"
#include "router.h"
#include "template.h"

typedef struct st_cf_listen_t {
    char *host; /* NULL: all IPv4 addresses; "::" for IPv6 */
    uint16_t port;
} cf_listen_t;

typedef struct st_cf_server_t {
    char *url;  /* as written */
    char *host; /* without brackets */
    uint16_t port;
    char *base_path; /* "" or "/prefix" (no trailing slash): prepended to every call path */
} cf_server_t;

typedef struct st_cf_backend_t {
    char *name;
    cf_server_t *servers;
    size_t num_servers;
    uint64_t timeout_ms;         /* default per-call timeout: the whole exchange. Default 5s */
    uint64_t connect_timeout_ms; /* default 1s */
    uint64_t max_connections;    /* per process; default 256 */
    size_t index;                /* in cf_config_t.backends */
    int line, col;
} cf_backend_t;

enum { CF_ON_ERROR_NULL, CF_ON_ERROR_OMIT };
enum { CF_MERGE_GROUP, CF_MERGE_MERGE };
enum { CF_CONFLICT_ERROR, CF_CONFLICT_FIRST, CF_CONFLICT_LAST };

typedef struct st_cf_rename_t {
    char *from, *to;
} cf_rename_t;

typedef struct st_cf_call_t {
    char *name;
    cf_backend_t *backend; /* borrowed from the config */
    cf_template_t path;    /* placeholders resolved: CALL parts have call_index, PARAM parts have rest */
    uint64_t timeout_ms;   /* the call's own, else its backend's */
    int required;
    int on_error; /* CF_ON_ERROR_* */
    size_t *deps; /* indices of the calls whose fields the path uses; sorted, unique */
    size_t num_deps;
    /* shaping of the upstream JSON, applied in this order: target, allow|deny, rename */
    char **target; /* field path ("data", "items"), NULL-terminated; NULL when absent */
    size_t num_target;
    cf_strlist_t allow, deny; /* at most one of them is non-empty */
    cf_rename_t *rename;
    size_t num_rename;
    size_t index; /* in the route's calls */
    int line, col;
} cf_call_t;

typedef struct st_cf_route_t {
    cf_pattern_t pattern;
    unsigned methods;             /* CF_METHOD_* mask; default GET|HEAD */
    uint64_t deadline_ms;         /* default: the longest chain of call timeouts through the dependencies */
    int merge;                    /* CF_MERGE_* */
    int on_conflict;              /* CF_CONFLICT_* */
    cf_strlist_t forward_headers; /* lower-cased */
    cf_strlist_t forward_query;
    cf_call_t *calls;
    size_t num_calls;
    cf_backend_t *proxy; /* non-NULL for a pass-through route (then num_calls == 0) */
    size_t index;        /* in cf_config_t.routes */
    int line, col;
} cf_route_t;

typedef struct st_cf_config_t {
    char *filename;
    cf_listen_t *listen;
    size_t num_listen;
    uint64_t threads; /* 1 until multi-threading lands */
    char *admin_host; /* NULL when there is no admin listener */
    uint16_t admin_port;
    char *access_log; /* NULL, "-" (stderr) or a path */
    uint64_t shutdown_timeout_ms;
    struct {
        uint64_t max_request_body;  /* default 1MiB */
        uint64_t max_response_body; /* default 8MiB */
        uint64_t max_inflight;      /* default 10000 */
    } limits;
    cf_backend_t *backends;
    size_t num_backends;
    cf_route_t *routes;
    size_t num_routes;
} cf_config_t;

/**
 * Loads and validates a config file. Returns a new config (free with cf_config_free), or NULL with the first error
 * in err as "file:line:col: key.path: message".
 */
cf_config_t *cf_config_load(const char *path, char *err, size_t errlen);
/** The same from a string; `name` stands for the file name in messages. */
cf_config_t *cf_config_load_string(const char *name, const char *yaml, size_t len, char *err, size_t errlen);
void cf_config_free(cf_config_t *c);
/** Prints each route's resolved call plan (stages, dependencies, timeouts, deadline, merge keys) for --explain. */
void cf_config_explain(const cf_config_t *c, FILE *out);

#endif
