/* Authentication policies: auth: decoded, key sets read from files and swapped atomically, tokens judged with a cache. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cf_fetch.h"
#include "cf_sha256.h"
#include "cf_units.h"
#include "auth.h"

/*
 * Key sets: one source per jwks_file path or jwks_url, shared by every policy that names it, in this and the next
 * config (a reload loads the new config before it drops the old, so a source it keeps is never closed in between).
 *  - A file is read when a config is loaded (the main thread at start, at -t and on SIGHUP; never a request), so that a
 *    reload picks up a rotated file, and a file that turns bad on a reload keeps the set read before (like a TLS
 *    certificate). Each policy keeps the set its config read (file_keys): a reload that is rejected (a bad line
 *    elsewhere in the file) has read the file too, and must not change the keys the running config verifies with.
 *  - A URL is fetched by a thread of its own (cf_auth_start_fetchers; -t fetches nothing): at once, then every
 *    `refresh`, and early when a token names a kid the set lacks, at most once a minute (that request is refused at
 *    once; it does not wait). A failed fetch keeps the last good set and is tried again within 30 s. Until the first
 *    fetch succeeds, every token is refused (no_keys), as Envoy's jwt_authn does.
 * The current set is swapped under the source's lock; a request takes a reference to it only to verify a token the
 * cache does not know, and reads only its generation otherwise. Generations are unique in the process, so a cached
 * token is never taken for verified by a set other than the one that verified it.
 */
struct st_cf_jwks_source_t {
    size_t refcnt; /* policies naming it; under sources_lock */
    char *name;    /* the path, or the URL */
    int is_url;
    cf_fetch_url_t url;
    uint64_t refresh_ms; /* atomic: the newest config's */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    cf_jwks_t *current;  /* under lock */
    uint64_t generation; /* atomic: current's (0: none yet) */
    unsigned char sha[CF_SHA256_LEN];
    int fetcher;       /* under sources_lock: a fetch thread runs (it frees the source once stopped and unreferenced) */
    int stop, kicked;  /* under lock */
    int64_t last_kick; /* atomic: when a request last asked for an early fetch */
    struct st_cf_jwks_source_t *next;
};

static pthread_mutex_t sources_lock = PTHREAD_MUTEX_INITIALIZER;
static cf_jwks_source_t *jwks_sources;
static uint64_t last_generation, last_policy; /* atomic */

#define FETCH_TIMEOUT_MS 10000
#define RETRY_MS 30000
#define KICK_INTERVAL_S 60

/* Reads a file of at most CF_JWKS_MAX_BYTES into a new buffer; NULL with a message. */
static char *read_small_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(CF_JWKS_MAX_BYTES + 1);
    size_t n = fread(buf, 1, CF_JWKS_MAX_BYTES + 1, fp);
    int failed = ferror(fp);
    fclose(fp);
    if (failed || n > CF_JWKS_MAX_BYTES) {
        snprintf(err, errlen, failed ? "cannot read %s" : "%s: larger than %d KiB", path, CF_JWKS_MAX_BYTES / 1024);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Makes the JWK Set document `doc` the source's set, unless it is the one it has. Returns 0 (taken or unchanged), or -1
 * with a message when it is no usable set (the source keeps what it has). */
static int source_take(cf_jwks_source_t *s, const char *doc, size_t len, char *err, size_t errlen)
{
    unsigned char sha[CF_SHA256_LEN];
    cf_sha256(doc, len, sha);
    pthread_mutex_lock(&s->lock);
    int same = s->current != NULL && memcmp(sha, s->sha, sizeof(sha)) == 0; /* unchanged: cached tokens stay valid */
    pthread_mutex_unlock(&s->lock);
    if (same)
        return 0;
    cf_jwks_t *set = cf_jwks_parse(doc, len, err, errlen);
    if (set == NULL)
        return -1;
    if (set->malformed[0] != '\0') /* the set is taken without it: its tokens will get unknown_kid */
        fprintf(stderr, "conflux: %s %s: %s, skipped (%zu of the keys are not used)\n", s->is_url ? "jwks_url" : "jwks_file",
                s->name, set->malformed, set->skipped);
    set->generation = __atomic_add_fetch(&last_generation, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&s->lock);
    cf_jwks_t *old = s->current;
    s->current = set;
    memcpy(s->sha, sha, sizeof(sha));
    __atomic_store_n(&s->generation, set->generation, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&s->lock);
    cf_jwks_release(old);
    return 0;
}

/* Reads a file source's file again. Returns 0 when the source has a set (the new one, or the previous one kept: then
 * `kept` holds why), or -1 with a message when it has none. */
static int source_read(cf_jwks_source_t *s, char *err, size_t errlen, char *kept, size_t keptlen)
{
    size_t len = 0;
    char *doc = read_small_file(s->name, &len, err, errlen);
    int rc = doc != NULL ? source_take(s, doc, len, err, errlen) : -1;
    free(doc);
    if (rc == 0)
        return 0;
    if (s->current == NULL)
        return -1;
    snprintf(kept, keptlen, "%s", err);
    return 0;
}

static void source_free(cf_jwks_source_t *s)
{
    cf_jwks_release(s->current);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s->name);
    free(s);
}

/* The source of `name` (a path, or a URL when is_url) with one more reference; a file is read again. NULL with a
 * message. */
static cf_jwks_source_t *source_open(const char *name, int is_url, uint64_t refresh_ms, char *err, size_t errlen)
{
    cf_fetch_url_t url;
    const char *why;
    memset(&url, 0, sizeof(url));
    if (is_url && cf_fetch_parse_url(name, &url, &why) != 0) {
        snprintf(err, errlen, "%s", why);
        return NULL;
    }
    pthread_mutex_lock(&sources_lock);
    cf_jwks_source_t *s = jwks_sources;
    while (s != NULL && (s->is_url != is_url || strcmp(s->name, name) != 0))
        s = s->next;
    int created = s == NULL;
    if (created) {
        s = calloc(1, sizeof(*s));
        s->name = strdup(name);
        s->is_url = is_url;
        s->url = url;
        pthread_mutex_init(&s->lock, NULL);
        pthread_condattr_t attr; /* the refresh period is a duration: a wall-clock step must not stretch or skip it */
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&s->cond, &attr);
        pthread_condattr_destroy(&attr);
    }
    if (is_url) {
        if (!created && __atomic_load_n(&s->refresh_ms, __ATOMIC_RELAXED) != refresh_ms) {
            /* a reload changed it: the thread fetches now and then waits the new period */
            pthread_mutex_lock(&s->lock);
            __atomic_store_n(&s->refresh_ms, refresh_ms, __ATOMIC_RELAXED);
            s->kicked = 1;
            pthread_cond_signal(&s->cond);
            pthread_mutex_unlock(&s->lock);
        }
        __atomic_store_n(&s->refresh_ms, refresh_ms, __ATOMIC_RELAXED); /* the newest config's */
    } else {
        char kept[512] = "";
        if (source_read(s, err, errlen, kept, sizeof(kept)) != 0) {
            pthread_mutex_unlock(&sources_lock);
            if (created)
                source_free(s);
            return NULL;
        }
        if (kept[0] != '\0')
            fprintf(stderr, "conflux: jwks_file %s: %s; keeping the key set read before\n", name, kept);
    }
    ++s->refcnt;
    if (created) {
        s->next = jwks_sources;
        jwks_sources = s;
    }
    pthread_mutex_unlock(&sources_lock);
    return s;
}

static void unlink_source(cf_jwks_source_t *s)
{
    cf_jwks_source_t **p = &jwks_sources;
    while (*p != s)
        p = &(*p)->next;
    *p = s->next;
}

static void source_close(cf_jwks_source_t *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&sources_lock);
    if (--s->refcnt != 0) {
        pthread_mutex_unlock(&sources_lock);
        return;
    }
    unlink_source(s);
    int fetcher = s->fetcher;
    pthread_mutex_unlock(&sources_lock);
    if (!fetcher) {
        source_free(s);
        return;
    }
    pthread_mutex_lock(&s->lock); /* the thread frees it when it sees this */
    s->stop = 1;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static cf_jwks_t *source_keys(cf_jwks_source_t *s)
{
    pthread_mutex_lock(&s->lock);
    cf_jwks_t *set = s->current;
    if (set != NULL)
        cf_jwks_retain(set);
    pthread_mutex_unlock(&s->lock);
    return set;
}

/* A request found no key for its token: a URL source fetches early, at most once a minute whatever clients send. */
static void source_kick(cf_jwks_source_t *s, int64_t now)
{
    int64_t last = __atomic_load_n(&s->last_kick, __ATOMIC_RELAXED);
    if (!s->is_url || now - last < KICK_INTERVAL_S ||
        !__atomic_compare_exchange_n(&s->last_kick, &last, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        return;
    pthread_mutex_lock(&s->lock);
    s->kicked = 1;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* One fetch of a URL source; logs a failure. Returns 0 when the source has the document's set. */
static int source_fetch(cf_jwks_source_t *s, SSL_CTX *ssl_ctx)
{
    cf_fetch_request_t req = {.method = "GET",
                              .url = &s->url,
                              .accept = "application/jwk-set+json, application/json",
                              .timeout_ms = FETCH_TIMEOUT_MS,
                              .max_body = CF_JWKS_MAX_BYTES,
                              .ssl_ctx = ssl_ctx};
    cf_fetch_result_t res;
    char err[256] = "";
    int rc = -1;
    if (cf_fetch(&req, &res) != 0)
        snprintf(err, sizeof(err), "%s", res.error);
    else if (res.status != 200)
        snprintf(err, sizeof(err), "status %d", res.status);
    else
        rc = source_take(s, res.body, res.body_len, err, sizeof(err));
    cf_fetch_result_free(&res);
    if (rc != 0)
        fprintf(stderr, "conflux: jwks_url %s: %s; %s\n", s->name, err,
                __atomic_load_n(&s->generation, __ATOMIC_ACQUIRE) != 0 ? "keeping the key set fetched before"
                                                                       : "tokens are refused until a fetch succeeds");
    return rc;
}

struct st_fetcher_t {
    cf_jwks_source_t *s;
    SSL_CTX *ssl_ctx;
};

static void *fetcher_main(void *arg)
{
    struct st_fetcher_t *f = arg;
    cf_jwks_source_t *s = f->s;
    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        s->kicked = 0;
        pthread_mutex_unlock(&s->lock);
        int ok = source_fetch(s, f->ssl_ctx) == 0;
        pthread_mutex_lock(&s->lock);
        uint64_t refresh = __atomic_load_n(&s->refresh_ms, __ATOMIC_RELAXED),
                 wait_ms = ok || refresh < RETRY_MS ? refresh : RETRY_MS;
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += (time_t)(wait_ms / 1000);
        until.tv_nsec += (long)(wait_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_nsec -= 1000000000;
            ++until.tv_sec;
        }
        while (!s->stop && !s->kicked && pthread_cond_timedwait(&s->cond, &s->lock, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&s->lock);
    SSL_CTX_free(f->ssl_ctx);
    free(f);
    source_free(s); /* no config names it any more (source_close unlinked it) */
    return NULL;
}

int cf_auth_start_fetchers(cf_auth_tls_cb tls_ctx, char *err, size_t errlen)
{
    int rc = 0;
    pthread_mutex_lock(&sources_lock);
    for (cf_jwks_source_t *s = jwks_sources; s != NULL && rc == 0; s = s->next) {
        if (!s->is_url || s->fetcher)
            continue;
        struct st_fetcher_t *f = calloc(1, sizeof(*f));
        f->s = s;
        if (s->url.is_https && (f->ssl_ctx = tls_ctx(s->url.host, err, errlen)) == NULL) {
            free(f);
            rc = -1;
            break;
        }
        pthread_t tid;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&tid, &attr, fetcher_main, f) != 0) {
            snprintf(err, errlen, "jwks_url %s: cannot start its thread", s->name);
            SSL_CTX_free(f->ssl_ctx);
            free(f);
            rc = -1;
        } else {
            s->fetcher = 1;
        }
        pthread_attr_destroy(&attr);
    }
    pthread_mutex_unlock(&sources_lock);
    return rc;
}

/* --- judging a token ------------------------------------------------------------------------------------------- */

cf_jwt_error_t cf_auth_verify(const cf_auth_t *a, cf_jwt_cache_t *cache, const char *token, size_t len, int64_t now,
                              json_t **claims)
{
    *claims = NULL;
    if (len == 0 || len > CF_JWT_MAX_TOKEN) /* before hashing it */
        return CF_JWT_MALFORMED;
    uint64_t gen = a->file_keys != NULL ? a->file_keys->generation : __atomic_load_n(&a->source->generation, __ATOMIC_ACQUIRE);
    if ((*claims = cf_jwt_cache_get(cache, token, len, a->id, gen, now)) != NULL)
        return CF_JWT_OK;
    cf_jwks_t *keys = a->file_keys != NULL ? a->file_keys : source_keys(a->source);
    if (a->file_keys != NULL)
        cf_jwks_retain(keys);
    cf_jwt_t jwt;
    cf_jwt_error_t e = cf_jwt_verify(&a->rules, keys, token, len, now, &jwt);
    if (e == CF_JWT_UNKNOWN_KID || e == CF_JWT_NO_KEYS)
        source_kick(a->source, now);
    if (e == CF_JWT_OK) {
        /* valid until exp plus the leeway the check gave it: what a fresh verification would accept */
        int64_t leeway = (int64_t)a->rules.leeway_s;
        int64_t until = jwt.exp < INT64_MAX - leeway ? jwt.exp + leeway : INT64_MAX;
        cf_jwt_cache_put(cache, token, len, a->id, keys->generation, until, jwt.claims);
        *claims = jwt.claims;
        json_decref(jwt.claims); /* the cache holds it */
    }
    cf_jwks_release(keys);
    return e;
}

/* --- the policy ------------------------------------------------------------------------------------------------ */

static int on_algorithms(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_auth_t *a = object;
    if (cf_yget_strlist(ctx, node, &a->algorithms) != 0)
        return -1;
    a->rules.algs = 0;
    for (size_t i = 0; i != a->algorithms.n; ++i) {
        const char *s = a->algorithms.items[i];
        unsigned bit = strcmp(s, "RS256") == 0   ? CF_JWT_RS256
                       : strcmp(s, "ES256") == 0 ? CF_JWT_ES256
                       : strcmp(s, "EdDSA") == 0 ? CF_JWT_EDDSA
                                                 : 0;
        if (bit == 0)
            return cf_yerror(ctx, node,
                             "\"%s\" is not accepted: one of RS256, ES256, EdDSA (none and HMAC never are: a key "
                             "of a JWK Set is public)",
                             s);
        a->rules.algs |= bit;
    }
    if (a->rules.algs == 0)
        return cf_yerror(ctx, node, "needs at least one algorithm");
    return 0;
}

static const cf_yfield_t jwt_fields[] = {
    {.key = "jwks_file", .type = CF_YT_STRING, .offset = offsetof(cf_auth_t, jwks_file)},
    {.key = "jwks_url", .type = CF_YT_STRING, .offset = offsetof(cf_auth_t, jwks_url)},
    {.key = "refresh",
     .type = CF_YT_DURATION,
     .offset = offsetof(cf_auth_t, refresh_ms),
     .min = 1000,
     .max = 24 * 3600 * 1000,
     .def = "10m"},
    {.key = "issuer", .type = CF_YT_STRING, .offset = offsetof(cf_auth_t, issuer)},
    {.key = "audience", .type = CF_YT_STRLIST, .offset = offsetof(cf_auth_t, audiences)},
    {.key = "algorithms", .type = CF_YT_CUSTOM, .custom = on_algorithms},
    {.key = "leeway",
     .type = CF_YT_DURATION,
     .offset = offsetof(cf_auth_t, leeway_ms),
     .min = 0,
     .max = CF_JWT_MAX_LEEWAY_S * 1000,
     .def = "30s"},
    {.key = "require_exp", .type = CF_YT_BOOL, .offset = offsetof(cf_auth_t, require_exp), .def = "true"},
    {NULL},
};

static int on_jwt(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_auth_t *a = object;
    if (node == NULL || node->type != YAML_MAPPING_NODE)
        return cf_yerror(ctx, node, "expected {jwks_file: FILE or jwks_url: URL, issuer: ..., audience: [...], algorithms: [...]}");
    uint64_t seen = 0;
    if (cf_ydecode(ctx, node, jwt_fields, a, &seen) != 0 || cf_ydefaults(ctx, jwt_fields, a, seen) != 0)
        return -1;
    if (!cf_yseen(jwt_fields, seen, "algorithms"))
        a->rules.algs = CF_JWT_ALL_ALGS;
    int file = cf_yseen(jwt_fields, seen, "jwks_file"), url = cf_yseen(jwt_fields, seen, "jwks_url");
    if (file == url)
        return cf_yerror(ctx, node,
                         file ? "jwks_file and jwks_url: one or the other"
                              : "needs jwks_file: or jwks_url: (a JWK Set with the issuer's public keys)");
    if (file && cf_yseen(jwt_fields, seen, "refresh")) {
        size_t mark = cf_ypath_key(ctx, "refresh");
        cf_yerror(ctx, cf_ymap_get(ctx->y, node, "refresh"), "goes with jwks_url (a jwks_file is read again on reload)");
        cf_ypath_restore(ctx, mark);
        return -1;
    }
    char err[512];
    const char *key = file ? "jwks_file" : "jwks_url";
    size_t mark = cf_ypath_key(ctx, key);
    a->source = source_open(file ? a->jwks_file : a->jwks_url, url, a->refresh_ms, err, sizeof(err));
    if (a->source == NULL)
        cf_yerror(ctx, cf_ymap_get(ctx->y, node, key), "%s", err);
    else if (file)
        a->file_keys = source_keys(a->source); /* the set as this config read it, whatever a later load reads */
    cf_ypath_restore(ctx, mark);
    return a->source != NULL ? 0 : -1;
}

static const cf_yfield_t auth_fields[] = {
    {.key = "jwt", .type = CF_YT_CUSTOM, .custom = on_jwt},
    {NULL},
};

int cf_auth_decode(cf_yctx_t *ctx, yaml_node_t *node, int allow_off, cf_auth_t **out)
{
    *out = NULL;
    const char *s = node != NULL ? cf_yscalar(node) : NULL;
    if (allow_off && s != NULL && (strcmp(s, "off") == 0 || strcmp(s, "false") == 0))
        return 0;
    if (node == NULL || node->type != YAML_MAPPING_NODE)
        return cf_yerror(ctx, node, allow_off ? "expected {jwt: {...}} or off" : "expected {jwt: {...}}");
    cf_auth_t *a = calloc(1, sizeof(*a));
    a->line = (int)node->start_mark.line + 1;
    a->col = (int)node->start_mark.column + 1;
    uint64_t seen = 0;
    if (cf_ydecode(ctx, node, auth_fields, a, &seen) != 0)
        goto Fail;
    if (seen == 0) {
        cf_yerror(ctx, node, "needs jwt: (the only kind of auth)");
        goto Fail;
    }
    a->id = __atomic_add_fetch(&last_policy, 1, __ATOMIC_RELAXED);
    a->rules.issuer = a->issuer;
    a->rules.audiences = a->audiences.items;
    a->rules.num_audiences = a->audiences.n;
    a->rules.leeway_s = a->leeway_ms / 1000;
    a->rules.require_exp = a->require_exp;
    *out = a;
    return 0;
Fail:
    cf_auth_free(a);
    return -1;
}

void cf_auth_free(cf_auth_t *a)
{
    if (a == NULL)
        return;
    cf_jwks_release(a->file_keys);
    source_close(a->source);
    free(a->issuer);
    free(a->jwks_file);
    free(a->jwks_url);
    cf_strlist_free(&a->audiences);
    cf_strlist_free(&a->algorithms);
    free(a);
}

void cf_auth_explain(FILE *out, const char *indent, const cf_auth_t *a, const char *from)
{
    char leeway[32];
    char refresh[32] = "";
    if (a->jwks_url != NULL)
        snprintf(refresh, sizeof(refresh), " every %s", cf_format_duration(a->refresh_ms, leeway, sizeof(leeway)));
    fprintf(out, "%sauth: jwt (%s), keys from %s%s (%s%s%s), iss %s, aud ", indent, from,
            a->jwks_file != NULL ? a->jwks_file : a->jwks_url, refresh, (a->rules.algs & CF_JWT_RS256) ? "RS256 " : "",
            (a->rules.algs & CF_JWT_ES256) ? "ES256 " : "", (a->rules.algs & CF_JWT_EDDSA) ? "EdDSA" : "",
            a->issuer != NULL ? a->issuer : "not checked");
    if (a->audiences.n == 0)
        fprintf(out, "not checked");
    for (size_t i = 0; i != a->audiences.n; ++i)
        fprintf(out, "%s%s", i ? " | " : "", a->audiences.items[i]);
    fprintf(out, ", leeway %s, exp %s; before the rate limit unless it is keyed by a claim, and before max_inflight\n",
            cf_format_duration(a->leeway_ms, leeway, sizeof(leeway)), a->require_exp ? "required" : "optional");
}
