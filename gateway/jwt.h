/* JSON Web Tokens (RFC 7519) signed with JWS compact serialization (RFC 7515): public keys from a JWK Set (RFC 7517),
 * signatures checked with OpenSSL, the registered claims enforced, and a bounded cache of verified tokens. Pure: bytes
 * in, verdicts out; no h2o, no files. */
#ifndef CF_JWT_H
#define CF_JWT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <openssl/evp.h>

/** The longest token looked at: a longer one is refused before any decoding (an ID token is usually under 2 KiB). */
#define CF_JWT_MAX_TOKEN 8192
/** The most keys one key set holds; the longest JWK Set document read. */
#define CF_JWKS_MAX_KEYS 64
#define CF_JWKS_MAX_BYTES (256 * 1024)
/** The largest leeway a policy may give. */
#define CF_JWT_MAX_LEEWAY_S 300

/** The signature algorithms (RFC 7518 §3.1, RFC 8037 §3.1), as bits of a policy's `algorithms`. None, and no HMAC: a
 * key from a JWK Set is a public key, so a token "signed" with it as an HMAC secret can never pass. */
enum {
    CF_JWT_RS256 = 1, /* RSASSA-PKCS1-v1_5 with SHA-256, an RSA key of 2048 to 8192 bits, e odd and 3 to 2^33 - 1 */
    CF_JWT_ES256 = 2, /* ECDSA on P-256 with SHA-256; the signature is r || s, 64 bytes */
    CF_JWT_EDDSA = 4, /* Ed25519, a key that is not a point of small order */
    CF_JWT_ALL_ALGS = 7,
};

/** Why a token was refused. cf_jwt_error_name gives its name (a metric label, an access log field), and
 * cf_jwt_error_text the error_description of the WWW-Authenticate answer. */
typedef enum en_cf_jwt_error_t {
    CF_JWT_OK = 0,
    CF_JWT_MISSING,        /* no Authorization: Bearer field */
    CF_JWT_MALFORMED,      /* not three base64url parts, too long, two Authorization fields, ... */
    CF_JWT_BAD_HEADER,     /* the JOSE header is not a JSON object with a string alg, or has crit */
    CF_JWT_BAD_ALG,        /* alg is not one of the policy's algorithms */
    CF_JWT_UNKNOWN_KID,    /* no key of the set has that kid and the alg's type */
    CF_JWT_BAD_SIGNATURE,  /* the signature does not verify (or has the wrong length) */
    CF_JWT_BAD_CLAIMS,     /* the payload is not a JSON object, or a registered claim has the wrong type */
    CF_JWT_EXPIRED,        /* exp is past (with the leeway), or missing when it is required */
    CF_JWT_NOT_YET_VALID,  /* nbf or iat is ahead (with the leeway) */
    CF_JWT_WRONG_ISSUER,   /* iss is not the policy's issuer */
    CF_JWT_WRONG_AUDIENCE, /* aud names none of the policy's audiences */
    CF_JWT_NO_KEYS,        /* the policy has no key set yet (a jwks_url not fetched yet) */
    CF_JWT_NUM_ERRORS
} cf_jwt_error_t;

const char *cf_jwt_error_name(cf_jwt_error_t e);
const char *cf_jwt_error_text(cf_jwt_error_t e);

/** One public key of a set. */
typedef struct st_cf_jwk_t {
    char *kid;     /* NULL: none */
    unsigned alg;  /* the one CF_JWT_* bit the key's type serves */
    EVP_PKEY *key; /* owned */
} cf_jwk_t;

/** A key set, immutable once parsed, shared by the threads with a reference count. */
typedef struct st_cf_jwks_t {
    size_t refcnt; /* atomic */
    uint64_t generation;
    cf_jwk_t *keys;
    size_t num_keys;
    size_t skipped;     /* keys of the document that were not usable (type, curve, use, size, malformed) */
    char malformed[96]; /* why the first malformed key was skipped ("keys[3]: a malformed EC key"), or "" */
} cf_jwks_t;

/**
 * Parses a JWK Set document (RFC 7517 §5): {"keys": [...]}. Keys of type RSA (n, e; 2048 to 8192 bits, e odd, 3 to
 * 2^33 - 1), EC on P-256 (x, y) and OKP Ed25519 (x) are taken; a key with "use" other than "sig", an "alg" that does not
 * match its type, another type or curve, an RSA key out of those bounds, or a malformed key (RFC 7517 §5; the first one
 * said in `malformed`) is skipped (counted in `skipped`). Returns a new set with one reference and generation 0, or NULL
 * with a message in err (not JSON, no keys array, more than CF_JWKS_MAX_KEYS, no usable key, two keys with one kid).
 */
cf_jwks_t *cf_jwks_parse(const char *doc, size_t len, char *err, size_t errlen);
void cf_jwks_retain(cf_jwks_t *s);
/** Drops a reference; the last frees the set. NULL is ignored. */
void cf_jwks_release(cf_jwks_t *s);

/** What a token must satisfy besides its signature. */
typedef struct st_cf_jwt_rules_t {
    unsigned algs;          /* CF_JWT_* bits */
    const char *issuer;     /* NULL: iss not checked */
    char *const *audiences; /* n_audiences of them; none: aud not checked */
    size_t num_audiences;
    uint64_t leeway_s; /* clock skew allowed on exp, nbf and iat */
    int require_exp;   /* a token without exp is refused */
} cf_jwt_rules_t;

/** A verified token. */
typedef struct st_cf_jwt_t {
    json_t *claims; /* owned: the payload object */
    int64_t exp;    /* INT64_MAX when the token has none */
} cf_jwt_t;

/**
 * Verifies the compact JWS `token` (len bytes) with the keys of `keys` at `now` (seconds since the epoch), against
 * `rules`. In this order, each step refusing before the costlier ones: the length bound, the three base64url parts
 * (strictly: no padding, no '+', '/' or whitespace, no stray bits), the header (a JSON object, no duplicate member,
 * an allowed alg, no crit), the key (by kid; without kid the one key of the alg's type), the payload and its claims
 * (read before the signature only to refuse early: they are trusted only once it verifies), then the signature.
 * Returns CF_JWT_OK with out->claims set (owned by the caller), or why the token is refused.
 */
cf_jwt_error_t cf_jwt_verify(const cf_jwt_rules_t *rules, const cf_jwks_t *keys, const char *token, size_t len, int64_t now,
                             cf_jwt_t *out);

/**
 * Decodes base64url without padding (RFC 7515 §2) strictly: only [A-Za-z0-9_-], a length that is not 1 mod 4, and
 * zero bits after the last byte. `out` holds at least len * 3 / 4 bytes. Returns the decoded length, or -1.
 */
long cf_base64url_decode(const char *s, size_t len, unsigned char *out);

/* --- the cache of verified tokens ------------------------------------------------------------------------------- */

typedef struct st_cf_jwt_cache_t cf_jwt_cache_t;

/** A cache of at least `entries` verified tokens (rounded up to a power of two). One per event-loop thread: it is not
 * thread-safe, and the claims it holds are used by that thread's requests only. */
cf_jwt_cache_t *cf_jwt_cache_new(size_t entries);
/** Frees the cache and drops its references to claims. NULL is ignored. */
void cf_jwt_cache_free(cf_jwt_cache_t *c);

/**
 * The claims of a token verified before (`len` bytes, compared whole): `policy` identifies the rules it was verified
 * against and `generation` the key set (a new set invalidates every entry of the old). An entry is valid until the
 * `until` it was put with. Returns borrowed claims (valid until the next call on this cache), or NULL.
 */
json_t *cf_jwt_cache_get(cf_jwt_cache_t *c, const char *token, size_t len, uint64_t policy, uint64_t generation, int64_t now);
/** Remembers a verified token (a copy) until `until` (seconds since the epoch); takes a reference to claims. */
void cf_jwt_cache_put(cf_jwt_cache_t *c, const char *token, size_t len, uint64_t policy, uint64_t generation, int64_t until,
                      json_t *claims);
/** Entries held now. */
size_t cf_jwt_cache_size(const cf_jwt_cache_t *c);

#endif
