/* The configuration: YAML -> these structs, validated, with file:line:col errors. Knows nothing of h2o. */
/*
 * A loaded config has every field set: the defaults of what the file leaves out are config.c's (its field tables and
 * its merge_* functions), and only there; docs/configuration.md lists them. Other modules take the values as they are.
 */
#ifndef CF_CONFIG_H
#define CF_CONFIG_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include "cf_yaml.h"
#include "auth.h"
#include "body.h"
#include "cors.h"
#include "ratelimit.h"
#include "reason.h"
#include "router.h"
#include "template.h"

typedef struct st_cf_listen_t {
    char *host; /* NULL: all IPv4 addresses; "::" for IPv6 */
    uint16_t port;
    char *tls_certificate; /* PEM chain; NULL: plain HTTP */
    char *tls_key;         /* PEM private key; set when tls_certificate is */
    int http2;             /* offer h2 through ALPN (needs TLS) */
    int tls_line, tls_col; /* where tls: is, for certificate errors found when loading it */
} cf_listen_t;

typedef struct st_cf_server_t {
    char *url;  /* as written */
    char *host; /* without brackets */
    uint16_t port;
    char *base_path; /* "" or "/prefix" (no trailing slash): prepended to every call path */
    int tls;         /* https:// */
} cf_server_t;

/** A backend's circuit_breaker: per server (docs/http.md, "Circuit breakers"). failures 0: none. */
typedef struct st_cf_breaker_policy_t {
    uint64_t failures;    /* consecutive failed attempts (transport errors, timeouts, 5xx) that open a server's breaker */
    uint64_t open_for_ms; /* the first open period; doubled after each failed probe, up to CF_BREAKER_MAX_OPEN_MS */
} cf_breaker_policy_t;

/** The longest a server's breaker stays open before a probe: 5 min. */
#define CF_BREAKER_MAX_OPEN_MS (5 * 60 * 1000)

/** A backend's health: active checks per server (docs/http.md, "Health checks"). path NULL: none. */
typedef struct st_cf_health_policy_t {
    char *path;           /* GET this path (and query); a 2xx answer is a pass, anything else a failure */
    uint64_t interval_ms; /* between two checks of a server */
    uint64_t timeout_ms;  /* of one check */
    uint64_t healthy;     /* passes in a row that put an unhealthy server back */
    uint64_t unhealthy;   /* failures in a row that take a healthy server out */
} cf_health_policy_t;

typedef struct st_cf_backend_t {
    char *name;
    cf_server_t *servers;
    size_t num_servers;
    uint64_t timeout_ms;         /* the default per-call timeout: the whole exchange */
    uint64_t connect_timeout_ms; /* a new connection that takes longer fails with connect_failed */
    uint64_t max_connections;    /* per process, shared among the threads; 0: no cap but the open-file limit */
    char *ca_file;               /* https: CA certificates (PEM) to verify servers with; NULL: the system store */
    char *sni;                   /* https: the name sent in SNI and verified in the certificate; NULL: the URL's host */
    cf_breaker_policy_t breaker;
    cf_health_policy_t health;
    uint64_t resolve_every_ms; /* servers given by a host name are resolved again this often; every address is a server */
    /* resilience (attempt.c): what may follow an attempt that failed or is slow; nothing when retries and hedge_after
     * are both 0 */
    uint64_t retries;             /* attempts after the first that a failed idempotent call may make; 0: none */
    uint64_t per_try_timeout_ms;  /* each attempt's own bound within the call's timeout; 0: none (with retries only) */
    uint32_t retry_on;            /* bit (1u << reason) per cf_reason_t retried; statuses are in retry_on_status */
    uint64_t retry_on_status[10]; /* bit per status (0 to 639) retried: status_NNN in retry_on */
    struct {
        uint64_t percent, min; /* extra attempts in flight stay below max(min, percent% of the calls in flight) */
    } retry_budget;
    uint64_t hedge_after_ms;    /* a copy goes out when an attempt has not answered by then; 0: no hedging. With
                                   hedge_percentile: until enough samples (hedge_after: p95 sets it from hedge_fallback) */
    uint64_t hedge_percentile;  /* 0: hedge_after is a duration; 90, 95 or 99: that percentile of recent latencies */
    uint64_t hedge_fallback_ms; /* hedge_after: pNN, before the backend has CF_HEDGE_MIN_SAMPLES latencies */
    uint64_t max_hedges;        /* copies one call may send */
    size_t index;               /* in cf_config_t.backends */
    int line, col;
    void *metrics; /* metrics.c's series for this backend, filled on first use (atomic); not owned */
} cf_backend_t;

/** Whether status `s` is listed in retry_on (status_NNN). */
static inline int cf_backend_retries_status(const cf_backend_t *b, int s)
{
    return s >= 0 && s < 640 && (b->retry_on_status[s / 64] >> (s % 64) & 1) != 0;
}

enum { CF_ON_ERROR_NULL, CF_ON_ERROR_OMIT };
enum { CF_MERGE_GROUP, CF_MERGE_MERGE };
enum { CF_CONFLICT_ERROR, CF_CONFLICT_FIRST, CF_CONFLICT_LAST };
/* encoded_slash: what a '/' in a value that fills one path segment does (template.h, cf_segment_value_ok) */
enum { CF_ENCODED_SLASH_REFUSE, CF_ENCODED_SLASH_KEEP };

typedef struct st_cf_rename_t {
    char *from, *to;
} cf_rename_t;

/** The longest ttl, stale_while_revalidate and stale_if_error (30 days: memcached's longest relative expiration). */
#define CF_CACHE_MAX_MS (30 * 24 * 3600 * 1000ull)

/** A call's cache policy (cache: 30s, or {ttl, stale_while_revalidate, stale_if_error}); ttl_ms 0: not cached. */
typedef struct st_cf_cache_policy_t {
    uint64_t ttl_ms; /* fresh for this long (shortened by the upstream's max-age/s-maxage) */
    uint64_t swr_ms; /* then served stale at once while one background refresh runs */
    uint64_t sie_ms; /* then (from expiry) served stale when the refresh fails or times out */
} cf_cache_policy_t;

/** The most elements a foreach call may take (max_items), and the most it may have in flight (concurrency). */
#define CF_FOREACH_MAX_ITEMS 10000
#define CF_FOREACH_MAX_CONCURRENCY 256
#define CF_FOREACH_MAX_BATCH 1000

/** A call's foreach: one upstream request per element (or per `batch` elements) of an earlier call's array. */
typedef struct st_cf_foreach_t {
    char *source;  /* as written: "CALL" or "CALL.a.b"; NULL: not a foreach call */
    char **fields; /* the field path after the call's name ("a", "b"), NULL-terminated; none: the call's value */
    size_t num_fields;
    int call_index;       /* the source call's index in the route (plan.c), -1 before */
    uint64_t concurrency; /* requests in flight at once, at most */
    uint64_t max_items;   /* a longer array fails the call with too_large, before any request */
    uint64_t batch;       /* elements per request ({items}); 0: one request per element ({item}) */
} cf_foreach_t;

typedef struct st_cf_call_t {
    char *name;
    cf_backend_t *backend; /* borrowed from the config */
    cf_template_t path;    /* placeholders resolved: CALL parts have call_index, PARAM parts have rest */
    uint64_t timeout_ms;   /* the call's own, else its backend's */
    int required;
    int on_error;      /* CF_ON_ERROR_* */
    int encoded_slash; /* CF_ENCODED_SLASH_*; KEEP: sent as %2F (an upstream that does not decode it), or REFUSE */
    unsigned method;   /* one CF_METHOD_* bit: GET (the default), POST, PUT, PATCH or DELETE */
    cf_body_t body;    /* the JSON body template; no parts: no body (always so with GET) */
    int safe;          /* safe: true: the method, though not GET, only reads (a search or GraphQL query sent as POST) */
    size_t *deps;      /* indices of the calls whose fields the path and body use, and the foreach source; sorted, unique */
    size_t num_deps;
    /* shaping of the upstream JSON, applied in this order: target, allow|deny, rename */
    char **target; /* field path ("data", "items"), NULL-terminated; NULL when absent */
    size_t num_target;
    cf_strlist_t allow, deny; /* at most one of them is non-empty */
    cf_rename_t *rename;
    size_t num_rename;
    cf_cache_policy_t cache;      /* ttl_ms 0: the call is not cached */
    struct json_t *default_value; /* default: the value the call gives when it fails (NULL: null, or absent with omit) */
    cf_foreach_t foreach;         /* foreach.source NULL: a plain call */
    size_t index;                 /* in the route's calls */
    int line, col;
    void *metrics; /* metrics.c's series for this call, filled on first use (atomic); not owned */
} cf_call_t;

typedef struct st_cf_route_t {
    cf_pattern_t pattern;
    unsigned methods;             /* CF_METHOD_* mask */
    uint64_t deadline_ms;         /* unset in the file: the longest chain of call timeouts through the dependencies */
    int merge;                    /* CF_MERGE_* */
    int on_conflict;              /* CF_CONFLICT_* */
    cf_strlist_t forward_headers; /* lower-cased */
    cf_strlist_t forward_query;
    cf_cors_t *cors_own;        /* cors: on the route (owned); NULL when absent or off */
    const cf_cors_t *cors;      /* the policy in force: cors_own, else the top-level default unless cors: off; NULL: none */
    cf_ratelimit_t *rate_limit; /* rate_limit: (owned; its key table is shared by the threads); NULL: none */
    cf_auth_t *auth_own;        /* auth: on the route (owned); NULL when absent or off */
    const cf_auth_t *auth;      /* the policy in force: auth_own, else the top-level default unless auth: off; NULL: none */
    cf_call_t *calls;
    size_t num_calls;
    cf_backend_t *proxy; /* non-NULL for a pass-through route (then num_calls == 0) */
    size_t index;        /* in cf_config_t.routes */
    int line, col;
    void *metrics; /* metrics.c's series for this route, filled on first use (atomic); not owned */
} cf_route_t;

typedef struct st_cf_config_t {
    char *filename;
    char sha256[65];  /* hex SHA-256 of the file's bytes as loaded */
    time_t loaded_at; /* when it was loaded (wall clock) */
    cf_listen_t *listen;
    size_t num_listen;
    uint64_t threads; /* event-loop threads; unset in the file: the number of CPUs (at most CF_CONFIG_MAX_THREADS) */
    char *admin_host; /* NULL when there is no admin listener */
    uint16_t admin_port;
    char *access_log; /* NULL, "-" (stderr) or a path */
    uint64_t shutdown_timeout_ms;
    struct {
        uint64_t max_request_body;
        uint64_t max_response_body;
        uint64_t max_inflight;
        uint64_t send_timeout_ms;        /* an answer handed over whose client takes none of it for this long: closed. 10s */
        uint64_t max_client_connections; /* 0: unset, derived from the fd limit at start (cf_config_max_client_connections) */
    } limits;
    struct {
        uint64_t memory;      /* bytes of the local LRU (keys, bodies and bookkeeping) */
        char *memcached_host; /* NULL: no memcached tier */
        uint16_t memcached_port;
        uint64_t memcached_timeout_ms; /* the most a lookup waits for memcached before asking the upstream. 50ms */
    } cache;
    struct {
        char *otlp;          /* the collector's URL, http:// or https://, as written; NULL: spans are not exported */
        double sample;       /* the chance that a trace conflux starts is sampled (0 to 1). 0 */
        int parent_based;    /* a continued trace follows the client's sampled flag; 0: `sample` decides. 1 */
        uint64_t batch;      /* the most spans in one export request. 512 */
        uint64_t queue;      /* the most spans waiting for the exporter; beyond, spans are dropped. 2048 */
        uint64_t delay_ms;   /* the longest a span waits for its batch to fill. 1s */
        uint64_t timeout_ms; /* the longest one export request may take. 5s */
        char *service_name;  /* the resource's service.name. "conflux" */
    } tracing;
    cf_cors_t *cors; /* the top-level cors:, every route's unless it has its own (owned); NULL: none */
    cf_auth_t *auth; /* the top-level auth:, every route's unless it has its own or auth: off (owned); NULL: none */
    cf_backend_t *backends;
    size_t num_backends;
    cf_route_t *routes;
    size_t num_routes;
    int refcnt; /* atomic: the threads' route tables share one immutable config */
} cf_config_t;

/** The most `threads:` a config may ask for (the gateway's CF_MAX_WORKERS). */
#define CF_CONFIG_MAX_THREADS 64
/** The most calls a route may have: more would be a design problem, not a config. */
#define CF_CONFIG_MAX_CALLS 64

/**
 * Loads and validates a config file. Returns a new config (free with cf_config_free), or NULL with the first error
 * in err as "file:line:col: key.path: message".
 */
cf_config_t *cf_config_load(const char *path, char *err, size_t errlen);
/** The same from a string; `name` stands for the file name in messages. */
cf_config_t *cf_config_load_string(const char *name, const char *yaml, size_t len, char *err, size_t errlen);
/** Takes one more reference to a loaded config (thread-safe). A config is immutable once loaded. */
void cf_config_retain(cf_config_t *c);
/** Drops a reference (thread-safe); the last one frees the config. NULL is ignored. */
void cf_config_free(cf_config_t *c);
/**
 * The client connection cap: limits.max_client_connections when set, else half of the open-file limit `nofile` (the
 * other half is for upstream connections, listeners, log and cache sockets), at least 16.
 */
uint64_t cf_config_max_client_connections(const cf_config_t *c, uint64_t nofile);

#endif
