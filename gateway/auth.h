/* Authentication policies: auth: {jwt: {...}} decoded, their key sets kept current (a jwks_file read at load and on
 * every reload, a jwks_url fetched by a thread of its own), and a bearer token judged against them through a thread's
 * cache of verified tokens. No h2o. */
#ifndef CF_AUTH_H
#define CF_AUTH_H

#include <stdint.h>
#include <stdio.h>
#include <openssl/ssl.h>
#include "cf_yaml.h"
#include "jwt.h"

/** Verified tokens each event-loop thread remembers. */
#define CF_AUTH_CACHE_ENTRIES 4096

typedef struct st_cf_jwks_source_t cf_jwks_source_t;

/** One auth: policy (today always jwt:). Immutable once decoded; its key set changes under it atomically. */
typedef struct st_cf_auth_t {
    cf_jwt_rules_t rules;   /* points into the fields below */
    char *issuer;           /* NULL: iss not checked */
    cf_strlist_t audiences; /* none: aud not checked */
    cf_strlist_t algorithms;
    uint64_t leeway_ms;
    int require_exp;
    char *jwks_file; /* one of jwks_file and jwks_url */
    char *jwks_url;
    uint64_t refresh_ms;      /* jwks_url: fetched again this often */
    cf_jwks_source_t *source; /* shared by every policy (and config) naming the same file or URL */
    cf_jwks_t *file_keys;     /* jwks_file: the set as this config read it (a reference); NULL for a jwks_url */
    uint64_t id;              /* unique in the process: what the cache keys a verified token by, with its key set */
    int line, col;
} cf_auth_t;

/**
 * Starts a thread for each jwks_url of the configs loaded so far that has none (call it after the start's load and
 * after each reload's): it fetches the set at once, then every refresh, and early (at most once a minute) when a token
 * names an unknown kid; it ends by itself once no config names its URL. For an https URL, `tls_ctx` makes the client
 * context that verifies the server as `host` (the thread owns it). Returns 0, or -1 with a message.
 */
typedef SSL_CTX *(*cf_auth_tls_cb)(const char *host, char *err, size_t errlen);
int cf_auth_start_fetchers(cf_auth_tls_cb tls_ctx, char *err, size_t errlen);

/**
 * Decodes an auth: node ({jwt: {...}}, or off when allow_off) into *out (NULL for off). Reads the jwks_file: a file
 * that cannot be read or holds no usable key is an error when no earlier config read it; on a reload (the file was
 * read before) the previous key set stays, with one line on stderr. The policy keeps the set it read: a later load of
 * the file (a reload, even one that is rejected) never changes it. Returns 0, or -1 with the error in ctx.
 */
int cf_auth_decode(cf_yctx_t *ctx, yaml_node_t *node, int allow_off, cf_auth_t **out);
/** Frees a policy (NULL: nothing); its key set goes when no policy names its file any more. */
void cf_auth_free(cf_auth_t *a);

/**
 * Judges a bearer token (len bytes, not yet decoded) at `now` (seconds since the epoch) with `cache` (the calling
 * thread's): a token verified before with the same policy and key set costs a hash of its tail, a lookup and a compare. Returns
 * CF_JWT_OK with *claims borrowed from the cache (take a reference to keep them past the next call on it), or why the
 * token is refused.
 */
cf_jwt_error_t cf_auth_verify(const cf_auth_t *a, cf_jwt_cache_t *cache, const char *token, size_t len, int64_t now,
                              json_t **claims);

/** Writes the policy for --explain: "<indent>auth: jwt (FROM) ...", FROM saying whose policy it is. */
void cf_auth_explain(FILE *out, const char *indent, const cf_auth_t *a, const char *from);

#endif
