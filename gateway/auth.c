/* Authentication policies: auth: decoded, key sets read from files and swapped atomically, tokens judged with a cache. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "cf_sha256.h"
#include "cf_units.h"
#include "auth.h"

/*
 * Key sets: one source per jwks_file path, shared by every policy that names it, in this and the next config. The file
 * is read when a config is loaded (the main thread at start, at -t and on SIGHUP; never a request), so that a reload
 * picks up a rotated file, and a file that turns bad on a reload keeps the set read before (like a TLS certificate).
 * The current set is swapped under the source's lock; a request takes a reference to it only to verify a token the
 * cache does not know, and reads only its generation otherwise. Generations are unique in the process, so a cached
 * token is never taken for verified by a set other than the one that verified it.
 */
struct st_cf_jwks_source_t {
    size_t refcnt; /* under sources_lock */
    char *path;
    pthread_mutex_t lock;
    cf_jwks_t *current;  /* under lock */
    uint64_t generation; /* atomic: current's */
    unsigned char sha[CF_SHA256_LEN];
    struct st_cf_jwks_source_t *next;
};

static pthread_mutex_t sources_lock = PTHREAD_MUTEX_INITIALIZER;
static cf_jwks_source_t *jwks_sources;
static uint64_t last_generation, last_policy; /* atomic */

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

/* Reads the source's file again. Returns 0 when the source has a set (the new one, or the previous one kept: then `kept`
 * holds why), or -1 with a message when it has none. */
static int source_read(cf_jwks_source_t *s, char *err, size_t errlen, char *kept, size_t keptlen)
{
    size_t len = 0;
    char *doc = read_small_file(s->path, &len, err, errlen);
    cf_jwks_t *set = NULL;
    unsigned char sha[CF_SHA256_LEN];
    if (doc != NULL) {
        cf_sha256(doc, len, sha);
        if (s->current != NULL && memcmp(sha, s->sha, sizeof(sha)) == 0) { /* unchanged: cached tokens stay valid */
            free(doc);
            return 0;
        }
        set = cf_jwks_parse(doc, len, err, errlen);
        free(doc);
    }
    if (set == NULL) {
        if (s->current == NULL)
            return -1;
        snprintf(kept, keptlen, "%s", err);
        return 0;
    }
    set->generation = __atomic_add_fetch(&last_generation, 1, __ATOMIC_RELAXED);
    memcpy(s->sha, sha, sizeof(sha));
    pthread_mutex_lock(&s->lock);
    cf_jwks_t *old = s->current;
    s->current = set;
    __atomic_store_n(&s->generation, set->generation, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&s->lock);
    cf_jwks_release(old);
    return 0;
}

/* The source of `path` with one more reference, its file read again; NULL with a message. */
static cf_jwks_source_t *source_open(const char *path, char *err, size_t errlen)
{
    pthread_mutex_lock(&sources_lock);
    cf_jwks_source_t *s = jwks_sources;
    while (s != NULL && strcmp(s->path, path) != 0)
        s = s->next;
    int created = s == NULL;
    if (created) {
        s = calloc(1, sizeof(*s));
        s->path = strdup(path);
        pthread_mutex_init(&s->lock, NULL);
    }
    char kept[512] = "";
    if (source_read(s, err, errlen, kept, sizeof(kept)) != 0) {
        pthread_mutex_unlock(&sources_lock);
        if (created) {
            pthread_mutex_destroy(&s->lock);
            free(s->path);
            free(s);
        }
        return NULL;
    }
    if (kept[0] != '\0')
        fprintf(stderr, "conflux: jwks_file %s: %s; keeping the key set read before\n", path, kept);
    ++s->refcnt;
    if (created) {
        s->next = jwks_sources;
        jwks_sources = s;
    }
    pthread_mutex_unlock(&sources_lock);
    return s;
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
    cf_jwks_source_t **p = &jwks_sources;
    while (*p != s)
        p = &(*p)->next;
    *p = s->next;
    pthread_mutex_unlock(&sources_lock);
    cf_jwks_release(s->current);
    pthread_mutex_destroy(&s->lock);
    free(s->path);
    free(s);
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

/* --- judging a token ------------------------------------------------------------------------------------------- */

cf_jwt_error_t cf_auth_verify(const cf_auth_t *a, cf_jwt_cache_t *cache, const char *token, size_t len, int64_t now,
                              json_t **claims)
{
    *claims = NULL;
    if (len == 0 || len > CF_JWT_MAX_TOKEN) /* before hashing it */
        return CF_JWT_MALFORMED;
    uint64_t gen = __atomic_load_n(&a->source->generation, __ATOMIC_ACQUIRE);
    if ((*claims = cf_jwt_cache_get(cache, token, len, a->id, gen, now)) != NULL)
        return CF_JWT_OK;
    cf_jwks_t *keys = source_keys(a->source);
    cf_jwt_t jwt;
    cf_jwt_error_t e = cf_jwt_verify(&a->rules, keys, token, len, now, &jwt);
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
    {.key = "jwks_url", .type = CF_YT_UNSUPPORTED, .help = "use jwks_file, and have the file rotated by whoever fetches it"},
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

static int jwt_seen(uint64_t seen, const char *key)
{
    for (size_t i = 0; jwt_fields[i].key != NULL; ++i)
        if (strcmp(jwt_fields[i].key, key) == 0)
            return (seen >> i) & 1;
    return 0;
}

static int on_jwt(cf_yctx_t *ctx, yaml_node_t *node, void *object)
{
    cf_auth_t *a = object;
    if (node == NULL || node->type != YAML_MAPPING_NODE)
        return cf_yerror(ctx, node, "expected {jwks_file: FILE, issuer: ..., audience: [...], algorithms: [...]}");
    uint64_t seen = 0;
    if (cf_ydecode(ctx, node, jwt_fields, a, &seen) != 0 || cf_ydefaults(ctx, jwt_fields, a, seen) != 0)
        return -1;
    if (!jwt_seen(seen, "algorithms"))
        a->rules.algs = CF_JWT_ALL_ALGS;
    if (!jwt_seen(seen, "jwks_file"))
        return cf_yerror(ctx, node, "needs jwks_file: (a JWK Set with the issuer's public keys)");
    char err[512];
    size_t mark = cf_ypath_key(ctx, "jwks_file");
    a->source = source_open(a->jwks_file, err, sizeof(err));
    if (a->source == NULL)
        cf_yerror(ctx, cf_ymap_get(ctx->y, node, "jwks_file"), "%s", err);
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
    source_close(a->source);
    free(a->issuer);
    free(a->jwks_file);
    cf_strlist_free(&a->audiences);
    cf_strlist_free(&a->algorithms);
    free(a);
}

void cf_auth_explain(FILE *out, const char *indent, const cf_auth_t *a, const char *from)
{
    char leeway[32];
    fprintf(out, "%sauth: jwt (%s), keys from %s (%s%s%s), iss %s, aud ", indent, from, a->jwks_file,
            (a->rules.algs & CF_JWT_RS256) ? "RS256 " : "", (a->rules.algs & CF_JWT_ES256) ? "ES256 " : "",
            (a->rules.algs & CF_JWT_EDDSA) ? "EdDSA" : "", a->issuer != NULL ? a->issuer : "not checked");
    if (a->audiences.n == 0)
        fprintf(out, "not checked");
    for (size_t i = 0; i != a->audiences.n; ++i)
        fprintf(out, "%s%s", i ? " | " : "", a->audiences.items[i]);
    fprintf(out, ", leeway %s, exp %s; before the rate limit unless it is keyed by a claim, and before max_inflight\n",
            cf_format_duration(a->leeway_ms, leeway, sizeof(leeway)), a->require_exp ? "required" : "optional");
}
