/* The admin listener's endpoints: /healthz, /metrics (Prometheus text) and /config (the active config's identity). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "admin.h"
#include "cache.h"
#include "gateway.h"
#include "conn.h"
#include "metrics.h"

/* what /config shows: a copy, so that the endpoint never touches a config that a reload may be freeing */
static struct {
    pthread_mutex_t mutex;
    char path[1024];
    char sha256[65];
    time_t loaded_at;
    size_t num_routes, num_backends;
    int known;
} active = {.mutex = PTHREAD_MUTEX_INITIALIZER};

void cf_admin_config_loaded(const cf_config_t *c)
{
    pthread_mutex_lock(&active.mutex);
    char *abs = c->filename != NULL ? realpath(c->filename, NULL) : NULL; /* the file as the operator finds it */
    snprintf(active.path, sizeof(active.path), "%s", abs != NULL ? abs : c->filename != NULL ? c->filename : "");
    free(abs);
    memcpy(active.sha256, c->sha256, sizeof(active.sha256));
    active.loaded_at = c->loaded_at;
    active.num_routes = c->num_routes;
    active.num_backends = c->num_backends;
    active.known = 1;
    pthread_mutex_unlock(&active.mutex);
}

static void send_text(h2o_req_t *req, int status, const char *type, const char *text, size_t len)
{
    req->res.status = status;
    req->res.reason = cf_http_reason(status);
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type, strlen(type));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_send_inline(req, text, len);
}

static void send_metrics(h2o_req_t *req)
{
    cf_buf_t text = CF_BUF_INIT;
    cf_cache_stats_t cache;
    cf_cache_stats(&cache);
    cf_metrics_render(&text, cf_inflight_total(), &cache);
    cf_metrics_render_edge(&text, cf_conn_count());
    cf_metrics_render_memory(&text);
    send_text(req, 200, "text/plain; version=0.0.4; charset=utf-8", text.base, text.len);
    cf_buf_free(&text);
}

static void send_config(h2o_req_t *req)
{
    pthread_mutex_lock(&active.mutex);
    if (!active.known) {
        pthread_mutex_unlock(&active.mutex);
        cf_send_error(req, 503, "no_config", "no config is loaded yet");
        return;
    }
    char when[32];
    struct tm tm;
    gmtime_r(&active.loaded_at, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *doc = json_pack("{s:s, s:s, s:s, s:I, s:I}", "path", active.path, "sha256", active.sha256, "loaded_at", when, "routes",
                            (json_int_t)active.num_routes, "backends", (json_int_t)active.num_backends);
    pthread_mutex_unlock(&active.mutex);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    cf_send_json(req, 200, doc);
    json_decref(doc);
}

int cf_admin_handle(h2o_req_t *req, int draining)
{
    size_t pathlen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    h2o_iovec_t path = h2o_iovec_init(req->path.base, pathlen);
    if (h2o_memis(path.base, path.len, H2O_STRLIT("/healthz"))) {
        if (draining)
            send_text(req, 503, "text/plain", H2O_STRLIT("draining\n"));
        else
            send_text(req, 200, "text/plain", H2O_STRLIT("ok\n"));
    } else if (h2o_memis(path.base, path.len, H2O_STRLIT("/metrics"))) {
        send_metrics(req);
    } else if (h2o_memis(path.base, path.len, H2O_STRLIT("/config"))) {
        send_config(req);
    } else {
        cf_send_error(req, 404, "not_found", "the admin listener serves /healthz, /metrics and /config");
    }
    return 0;
}
