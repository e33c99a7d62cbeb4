/* JSON Web Tokens: JWK Sets to OpenSSL keys, compact JWS verification, the registered claims, a cache of verified tokens. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include "cf_siphash.h"
#include "jwt.h"

/*
 * Why this shape:
 *  - The algorithm comes from the policy, never from the token alone: the header's alg must be one of the policy's,
 *    and the key it selects must be of that alg's type (RFC 8725 §3.1, §3.2). There is no "none" and no HMAC, so a
 *    token signed with a public key's bytes as an HMAC secret (the classic alg confusion) has nothing to pass.
 *  - A hostile token costs little: its length is bounded before anything is decoded, and every check that needs no
 *    signature (alg, kid, the claims' times, iss, aud) runs before the signature is verified. Those early checks only
 *    refuse; nothing from the payload is trusted until the signature verifies.
 *  - Keys are built with OpenSSL 3's EVP_PKEY_fromdata (no deprecated RSA_* / EC_KEY_* calls).
 */

static const struct {
    const char *name, *text;
} errors[CF_JWT_NUM_ERRORS] = {
    [CF_JWT_OK] = {"ok", "ok"},
    [CF_JWT_MISSING] = {"missing", "no bearer token"},
    [CF_JWT_MALFORMED] = {"malformed", "the token is not a compact JWS"},
    [CF_JWT_BAD_HEADER] = {"bad_header", "the token header is not valid"},
    [CF_JWT_BAD_ALG] = {"bad_alg", "the token algorithm is not accepted"},
    [CF_JWT_UNKNOWN_KID] = {"unknown_kid", "no key for the token"},
    [CF_JWT_BAD_SIGNATURE] = {"bad_signature", "the token signature is not valid"},
    [CF_JWT_BAD_CLAIMS] = {"bad_claims", "the token claims are not valid"},
    [CF_JWT_EXPIRED] = {"expired", "the token has expired"},
    [CF_JWT_NOT_YET_VALID] = {"not_yet_valid", "the token is not valid yet"},
    [CF_JWT_WRONG_ISSUER] = {"wrong_issuer", "the token issuer is not accepted"},
    [CF_JWT_WRONG_AUDIENCE] = {"wrong_audience", "the token audience is not accepted"},
    [CF_JWT_NO_KEYS] = {"no_keys", "no keys to verify the token with yet"},
};

const char *cf_jwt_error_name(cf_jwt_error_t e)
{
    return (unsigned)e < CF_JWT_NUM_ERRORS ? errors[e].name : "unknown";
}

const char *cf_jwt_error_text(cf_jwt_error_t e)
{
    return (unsigned)e < CF_JWT_NUM_ERRORS ? errors[e].text : "the token is not valid";
}

/* --- base64url ------------------------------------------------------------------------------------------------- */

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

long cf_base64url_decode(const char *s, size_t len, unsigned char *out)
{
    if (len % 4 == 1)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i != len; ++i) {
        int v = b64url_value((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* the bits after the last byte must be zero: one encoding per value (RFC 4648 §3.5) */
    return acc == 0 ? (long)n : -1;
}

/* Decodes a JSON member holding base64url into a new buffer of exactly `want` bytes (0: any length up to max). */
static unsigned char *member_bytes(json_t *obj, const char *name, size_t want, size_t max, size_t *outlen)
{
    json_t *v = json_object_get(obj, name);
    if (!json_is_string(v) || json_string_length(v) > max * 4 / 3 + 4)
        return NULL;
    size_t slen = json_string_length(v);
    unsigned char *buf = malloc(slen * 3 / 4 + 1);
    long n = cf_base64url_decode(json_string_value(v), slen, buf);
    if (n <= 0 || (want != 0 && (size_t)n != want)) {
        free(buf);
        return NULL;
    }
    *outlen = (size_t)n;
    return buf;
}

/* --- JWK to keys ----------------------------------------------------------------------------------------------- */

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *key = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params == NULL || pctx == NULL || EVP_PKEY_fromdata_init(pctx) != 1 ||
        EVP_PKEY_fromdata(pctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
        key = NULL;
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    return key;
}

static EVP_PKEY *rsa_key(json_t *jwk)
{
    size_t nlen = 0, elen = 0;
    unsigned char *n = member_bytes(jwk, "n", 0, 2048, &nlen), *e = member_bytes(jwk, "e", 0, 8, &elen);
    EVP_PKEY *key = NULL;
    BIGNUM *bn = n != NULL ? BN_bin2bn(n, (int)nlen, NULL) : NULL, *be = e != NULL ? BN_bin2bn(e, (int)elen, NULL) : NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (bn != NULL && be != NULL && bld != NULL && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1)
        key = pkey_fromdata("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    free(n);
    free(e);
    return key;
}

static EVP_PKEY *ec_key(json_t *jwk)
{
    size_t xlen = 0, ylen = 0;
    unsigned char *x = member_bytes(jwk, "x", 32, 32, &xlen), *y = member_bytes(jwk, "y", 32, 32, &ylen);
    EVP_PKEY *key = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (x != NULL && y != NULL && bld != NULL) {
        unsigned char point[65]; /* SEC 1 §2.3.3, uncompressed; OpenSSL refuses a point not on the curve */
        point[0] = 4;
        memcpy(point + 1, x, 32);
        memcpy(point + 33, y, 32);
        if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)) == 1)
            key = pkey_fromdata("EC", bld);
    }
    OSSL_PARAM_BLD_free(bld);
    free(x);
    free(y);
    return key;
}

/*
 * Whether the encoding of an Ed25519 public key is a point of small order (a point of the torsion subgroup, order 1, 2, 4
 * or 8). OpenSSL takes such a key and verifies without the cofactor ([S]B = R + [k]A): with the identity as the key,
 * every signature with R the identity and S = 0 verifies, whatever the message; with the others, such forgeries pass for
 * one message in 2 to 8. A JWK Set with one would let any client forge tokens for its kid. The list is whole: the 8
 * points in their canonical encodings, x = 0 with the sign bit set (y = 1 and y = p - 1), and y = p and y = p + 1 (the
 * only y >= p that reduce to a small-order y: 0 and 1), each with either sign bit. Little-endian, as encoded (RFC 8032
 * §5.1.2).
 */
static int ed25519_small_order(const unsigned char *x)
{
    static const char *const small[] = {
        "0100000000000000000000000000000000000000000000000000000000000000", /* the identity (0, 1) */
        "0100000000000000000000000000000000000000000000000000000000000080", /* the same, x = -0 */
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* (0, -1), order 2 */
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", /* the same, x = -0 */
        "0000000000000000000000000000000000000000000000000000000000000000", /* (+-sqrt(-1), 0), order 4 */
        "0000000000000000000000000000000000000000000000000000000000000080",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* y = p: 0 again */
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* y = p + 1: 1 again */
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", /* the 4 of order 8 */
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    };
    for (size_t i = 0; i != sizeof(small) / sizeof(small[0]); ++i) {
        size_t j = 0;
        for (; j != 32; ++j) {
            unsigned byte;
            sscanf(small[i] + 2 * j, "%2x", &byte);
            if (x[j] != byte)
                break;
        }
        if (j == 32)
            return 1;
    }
    return 0;
}

static EVP_PKEY *ed25519_key(json_t *jwk)
{
    size_t xlen = 0;
    unsigned char *x = member_bytes(jwk, "x", 32, 32, &xlen);
    EVP_PKEY *key = x != NULL && !ed25519_small_order(x) ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, 32) : NULL;
    free(x);
    return key;
}

/*
 * An RSA key conflux verifies with: a modulus of 2048 bits (RFC 7518 §3.3) to 8192, and an odd public exponent of 3 to
 * 2^33 - 1. OpenSSL takes any n and e. With e = 1 a signature is its own padded digest: anyone could forge one. An even e
 * is no RSA key. And the cost of a verification grows with the bits of e and the square of those of n, and every forged
 * token with the key's kid pays it: a 16,384-bit n with a 64-bit e costs some hundreds of 2048-bit verifications.
 */
static int rsa_key_sound(const EVP_PKEY *key)
{
    int bits = EVP_PKEY_get_bits(key);
    if (bits < 2048 || bits > 8192)
        return 0;
    BIGNUM *e = NULL;
    int ok =
        EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) == 1 && BN_is_odd(e) && BN_num_bits(e) >= 2 && BN_num_bits(e) <= 33;
    BN_free(e);
    return ok;
}

static const char *str_member(json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* One JWK into *out: 1 taken, 0 skipped (not a signing key conflux can use), -1 malformed (err set; skipped too). */
static int parse_jwk(json_t *jwk, size_t i, cf_jwk_t *out, char *err, size_t errlen)
{
    const char *kty = str_member(jwk, "kty"), *crv = str_member(jwk, "crv"), *use = str_member(jwk, "use"),
               *alg = str_member(jwk, "alg");
    if (!json_is_object(jwk) || kty == NULL) {
        snprintf(err, errlen, "keys[%zu]: not a JWK (an object with kty)", i);
        return -1;
    }
    if (use != NULL && strcmp(use, "sig") != 0)
        return 0;
    unsigned type;
    const char *want;
    if (strcmp(kty, "RSA") == 0) {
        type = CF_JWT_RS256, want = "RS256";
    } else if (strcmp(kty, "EC") == 0 && crv != NULL && strcmp(crv, "P-256") == 0) {
        type = CF_JWT_ES256, want = "ES256";
    } else if (strcmp(kty, "OKP") == 0 && crv != NULL && strcmp(crv, "Ed25519") == 0) {
        type = CF_JWT_EDDSA, want = "EdDSA";
    } else {
        return 0;
    }
    if (alg != NULL && strcmp(alg, want) != 0)
        return 0;
    EVP_PKEY *key = type == CF_JWT_RS256 ? rsa_key(jwk) : type == CF_JWT_ES256 ? ec_key(jwk) : ed25519_key(jwk);
    ERR_clear_error();
    if (key == NULL) {
        snprintf(err, errlen, "keys[%zu]: a malformed %s key", i, kty);
        return -1;
    }
    if (type == CF_JWT_RS256 && !rsa_key_sound(key)) {
        EVP_PKEY_free(key);
        return 0;
    }
    const char *kid = str_member(jwk, "kid");
    out->kid = kid != NULL ? strdup(kid) : NULL;
    out->alg = type;
    out->key = key;
    return 1;
}

cf_jwks_t *cf_jwks_parse(const char *doc, size_t len, char *err, size_t errlen)
{
    json_error_t jerr;
    if (len > CF_JWKS_MAX_BYTES) {
        snprintf(err, errlen, "a JWK Set of more than %d KiB", CF_JWKS_MAX_BYTES / 1024);
        return NULL;
    }
    json_t *root = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(err, errlen, "not JSON: %s at line %d", jerr.text, jerr.line);
        return NULL;
    }
    json_t *arr = json_object_get(root, "keys");
    char why[sizeof(((cf_jwks_t *)NULL)->malformed)];
    cf_jwks_t *s = calloc(1, sizeof(*s));
    s->refcnt = 1;
    if (!json_is_array(arr)) {
        snprintf(err, errlen, "not a JWK Set (an object with a \"keys\" array)");
        goto Fail;
    }
    if (json_array_size(arr) > CF_JWKS_MAX_KEYS) {
        snprintf(err, errlen, "more than %d keys", CF_JWKS_MAX_KEYS);
        goto Fail;
    }
    s->keys = calloc(json_array_size(arr) + 1, sizeof(*s->keys));
    for (size_t i = 0; i != json_array_size(arr); ++i) {
        /* a malformed key is skipped like one of an unknown type (RFC 7517 §5: "SHOULD ignore JWKs ... that are missing
         * required members, or for which values are out of the supported ranges"): an issuer that publishes one odd key
         * beside its good ones must not stop every token, nor keep a rotated set from being taken */
        int rc = parse_jwk(json_array_get(arr, i), i, &s->keys[s->num_keys], why, sizeof(why));
        if (rc < 0 && s->malformed[0] == '\0')
            snprintf(s->malformed, sizeof(s->malformed), "%s", why);
        if (rc <= 0) {
            ++s->skipped;
            continue;
        }
        const char *kid = s->keys[s->num_keys].kid;
        ++s->num_keys;
        for (size_t j = 0; kid != NULL && j + 1 < s->num_keys; ++j) {
            if (s->keys[j].kid != NULL && strcmp(s->keys[j].kid, kid) == 0) {
                snprintf(err, errlen, "keys[%zu]: kid \"%.64s\" is already used by another key", i, kid);
                goto Fail;
            }
        }
    }
    if (s->num_keys == 0) {
        snprintf(err, errlen,
                 "no usable key (RSA of 2048 to 8192 bits with an odd e of 3 to 2^33 - 1, EC P-256 or OKP Ed25519, for "
                 "signatures)%s%s",
                 s->malformed[0] != '\0' ? "; " : "", s->malformed);
        goto Fail;
    }
    json_decref(root);
    return s;
Fail:
    json_decref(root);
    cf_jwks_release(s);
    return NULL;
}

void cf_jwks_retain(cf_jwks_t *s)
{
    __atomic_add_fetch(&s->refcnt, 1, __ATOMIC_RELAXED);
}

void cf_jwks_release(cf_jwks_t *s)
{
    if (s == NULL || __atomic_sub_fetch(&s->refcnt, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (size_t i = 0; i != s->num_keys; ++i) {
        free(s->keys[i].kid);
        EVP_PKEY_free(s->keys[i].key);
    }
    free(s->keys);
    free(s);
}

/* --- verification ---------------------------------------------------------------------------------------------- */

static unsigned alg_bit(const char *alg)
{
    if (strcmp(alg, "RS256") == 0)
        return CF_JWT_RS256;
    if (strcmp(alg, "ES256") == 0)
        return CF_JWT_ES256;
    if (strcmp(alg, "EdDSA") == 0)
        return CF_JWT_EDDSA;
    return 0;
}

/* Decodes one base64url part and parses it as a JSON object with no duplicate member. */
static json_t *part_object(const char *s, size_t len, unsigned char *scratch)
{
    long n = cf_base64url_decode(s, len, scratch);
    if (n <= 0)
        return NULL;
    json_t *v = json_loadb((const char *)scratch, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    if (v != NULL && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

/* A NumericDate claim (RFC 7519 §2): 1 with *t set, 0 absent, -1 not a number. */
static int numeric_date(json_t *claims, const char *name, int64_t *t)
{
    json_t *v = json_object_get(claims, name);
    if (v == NULL)
        return 0;
    if (json_is_integer(v)) {
        *t = json_integer_value(v);
        return 1;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!(d > -9.2e18 && d < 9.2e18))
            return -1;
        *t = (int64_t)d;
        return 1;
    }
    return -1;
}

static int audience_ok(const cf_jwt_rules_t *rules, json_t *aud)
{
    if (json_is_string(aud)) {
        for (size_t i = 0; i != rules->num_audiences; ++i)
            if (strcmp(rules->audiences[i], json_string_value(aud)) == 0)
                return 1;
        return 0;
    }
    if (!json_is_array(aud))
        return 0;
    for (size_t k = 0; k != json_array_size(aud); ++k)
        if (json_is_string(json_array_get(aud, k)) && audience_ok(rules, json_array_get(aud, k)))
            return 1;
    return 0;
}

/* The registered claims (RFC 7519 §4.1) against the rules. Sets *exp. */
static cf_jwt_error_t check_claims(const cf_jwt_rules_t *rules, json_t *claims, int64_t now, int64_t *exp)
{
    int64_t t, leeway = (int64_t)rules->leeway_s;
    int rc = numeric_date(claims, "exp", &t);
    if (rc < 0)
        return CF_JWT_BAD_CLAIMS;
    if (rc == 0 && rules->require_exp)
        return CF_JWT_EXPIRED;
    *exp = rc == 0 ? INT64_MAX : t;
    /* the arithmetic is on `now` (a clock reading, far from the int64 bounds), never on a claim: a claim is any int64 the
     * client chose, and it is judged before the signature, so exp: 9223372036854775807 must not overflow */
    if (rc > 0 && now - leeway >= t) /* §4.1.4: valid only before exp */
        return CF_JWT_EXPIRED;
    if ((rc = numeric_date(claims, "nbf", &t)) < 0)
        return CF_JWT_BAD_CLAIMS;
    if (rc > 0 && now + leeway < t)
        return CF_JWT_NOT_YET_VALID;
    if ((rc = numeric_date(claims, "iat", &t)) < 0) /* a token issued in the future: a wrong clock or a forgery */
        return CF_JWT_BAD_CLAIMS;
    if (rc > 0 && now + leeway < t)
        return CF_JWT_NOT_YET_VALID;
    if (rules->issuer != NULL) {
        const char *iss = str_member(claims, "iss");
        if (iss == NULL || strcmp(iss, rules->issuer) != 0)
            return CF_JWT_WRONG_ISSUER;
    }
    if (rules->num_audiences != 0 && !audience_ok(rules, json_object_get(claims, "aud")))
        return CF_JWT_WRONG_AUDIENCE;
    return CF_JWT_OK;
}

static const cf_jwk_t *find_key(const cf_jwks_t *keys, unsigned alg, const char *kid)
{
    const cf_jwk_t *only = NULL;
    size_t of_type = 0;
    for (size_t i = 0; i != keys->num_keys; ++i) {
        const cf_jwk_t *k = &keys->keys[i];
        if (kid != NULL) {
            if (k->kid != NULL && strcmp(k->kid, kid) == 0)
                return k->alg == alg ? k : NULL;
        } else if (k->alg == alg) {
            only = k;
            ++of_type;
        }
    }
    return of_type == 1 ? only : NULL;
}

/* ES256's r || s (RFC 7518 §3.4) as the DER ECDSA-Sig-Value OpenSSL verifies; its length in *derlen. */
static unsigned char *es256_der(const unsigned char *sig, size_t *derlen)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    unsigned char *der = NULL;
    if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return NULL;
    }
    int n = i2d_ECDSA_SIG(es, &der);
    ECDSA_SIG_free(es);
    if (n <= 0)
        return NULL;
    *derlen = (size_t)n;
    return der;
}

static int signature_ok(const cf_jwk_t *k, const char *input, size_t inlen, const unsigned char *sig, size_t siglen)
{
    unsigned char *der = NULL;
    if (k->alg == CF_JWT_ES256) {
        if (siglen != 64 || (der = es256_der(sig, &siglen)) == NULL)
            return 0;
        sig = der;
    } else if (k->alg == CF_JWT_RS256 && siglen != (size_t)EVP_PKEY_get_size(k->key)) {
        return 0;
    } else if (k->alg == CF_JWT_EDDSA && siglen != 64) {
        return 0;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestVerifyInit(md, NULL, k->alg == CF_JWT_EDDSA ? NULL : EVP_sha256(), NULL, k->key) == 1 &&
             EVP_DigestVerify(md, sig, siglen, (const unsigned char *)input, inlen) == 1;
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    ERR_clear_error();
    return ok;
}

cf_jwt_error_t cf_jwt_verify(const cf_jwt_rules_t *rules, const cf_jwks_t *keys, const char *token, size_t len, int64_t now,
                             cf_jwt_t *out)
{
    out->claims = NULL;
    out->exp = INT64_MAX;
    if (len == 0 || len > CF_JWT_MAX_TOKEN)
        return CF_JWT_MALFORMED;
    const char *dot1 = memchr(token, '.', len), *dot2 = dot1 != NULL ? memchr(dot1 + 1, '.', token + len - dot1 - 1) : NULL;
    if (dot2 == NULL || memchr(dot2 + 1, '.', token + len - dot2 - 1) != NULL || dot1 == token || dot2 == dot1 + 1 ||
        dot2 + 1 == token + len)
        return CF_JWT_MALFORMED;
    unsigned char scratch[CF_JWT_MAX_TOKEN];
    json_t *header = part_object(token, (size_t)(dot1 - token), scratch);
    if (header == NULL)
        return CF_JWT_BAD_HEADER;
    const char *alg = str_member(header, "alg"), *kid = str_member(header, "kid");
    json_t *kidv = json_object_get(header, "kid");
    cf_jwt_error_t e = CF_JWT_OK;
    unsigned bit = 0;
    if (alg == NULL || json_object_get(header, "crit") != NULL || (kidv != NULL && kid == NULL)) /* RFC 7515 §4.1.11 */
        e = CF_JWT_BAD_HEADER;
    else if ((bit = alg_bit(alg) & rules->algs) == 0)
        e = CF_JWT_BAD_ALG;
    const cf_jwk_t *k = NULL;
    if (e == CF_JWT_OK && keys == NULL)
        e = CF_JWT_NO_KEYS;
    if (e == CF_JWT_OK && (k = find_key(keys, bit, kid)) == NULL)
        e = CF_JWT_UNKNOWN_KID;
    json_decref(header);
    if (e != CF_JWT_OK)
        return e;

    json_t *claims = part_object(dot1 + 1, (size_t)(dot2 - dot1 - 1), scratch);
    if (claims == NULL)
        return CF_JWT_BAD_CLAIMS;
    if ((e = check_claims(rules, claims, now, &out->exp)) != CF_JWT_OK)
        goto Fail;
    long siglen = cf_base64url_decode(dot2 + 1, (size_t)(token + len - dot2 - 1), scratch);
    if (siglen <= 0) {
        e = CF_JWT_MALFORMED;
        goto Fail;
    }
    if (!signature_ok(k, token, (size_t)(dot2 - token), scratch, (size_t)siglen)) {
        e = CF_JWT_BAD_SIGNATURE;
        goto Fail;
    }
    out->claims = claims;
    return CF_JWT_OK;
Fail:
    json_decref(claims);
    return e;
}

/* --- the cache ------------------------------------------------------------------------------------------------- */

/*
 * Set-associative like the rate-limit table: a hash of the token picks a set of WAYS entries, and a new token takes the
 * place of an empty entry, else of the one used longest ago. An entry holds the token itself and a hit compares it
 * whole, so no hash collision, found or chanced, can ever pass another token: the hash only places it. So it need not
 * cover the whole token: it is the SipHash (under a random key per cache) of its length and its last HASHED bytes, which
 * are signature bytes, random-looking in every verified token. Only verified tokens get in, so a client cannot crowd a
 * set with tokens of its making, and a flood of forged ones costs no memory; the entries hold at most
 * entries * CF_JWT_MAX_TOKEN bytes. (A SHA-256 of the whole token as the key, as a first version had, cost 20,000
 * instructions a request under callgrind for an RS256 token of 630 bytes: half the whole fast path.)
 */
#define WAYS 4
#define HASHED 32

typedef struct st_centry_t {
    uint64_t hash, policy, generation;
    int64_t until;
    uint64_t used;
    char *token; /* owned; NULL: empty */
    size_t len;
    json_t *claims; /* owned */
} centry_t;

struct st_cf_jwt_cache_t {
    centry_t *entries;
    size_t set_mask;
    size_t size;
    uint64_t clock;
    uint64_t k0, k1;
};

static uint64_t token_hash(const cf_jwt_cache_t *c, const char *token, size_t len)
{
    size_t n = len < HASHED ? len : HASHED;
    return cf_siphash13(c->k0, c->k1 ^ len, token + len - n, n);
}

cf_jwt_cache_t *cf_jwt_cache_new(size_t entries)
{
    size_t sets = 1;
    while (sets * WAYS < entries)
        sets <<= 1;
    cf_jwt_cache_t *c = calloc(1, sizeof(*c));
    c->entries = calloc(sets * WAYS, sizeof(*c->entries));
    c->set_mask = sets - 1;
    cf_siphash_key(&c->k0, &c->k1, c);
    return c;
}

static void cache_drop(cf_jwt_cache_t *c, centry_t *e)
{
    json_decref(e->claims);
    free(e->token);
    e->claims = NULL;
    e->token = NULL;
    --c->size;
}

void cf_jwt_cache_free(cf_jwt_cache_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i != (c->set_mask + 1) * WAYS; ++i)
        if (c->entries[i].token != NULL)
            cache_drop(c, &c->entries[i]);
    free(c->entries);
    free(c);
}

json_t *cf_jwt_cache_get(cf_jwt_cache_t *c, const char *token, size_t len, uint64_t policy, uint64_t generation, int64_t now)
{
    uint64_t h = token_hash(c, token, len);
    centry_t *set = &c->entries[(h & c->set_mask) * WAYS];
    for (size_t i = 0; i != WAYS; ++i) {
        centry_t *e = &set[i];
        if (e->token == NULL || e->hash != h || e->policy != policy || e->len != len || memcmp(e->token, token, len) != 0)
            continue;
        if (e->generation != generation || now >= e->until) {
            cache_drop(c, e);
            return NULL;
        }
        e->used = ++c->clock;
        return e->claims;
    }
    return NULL;
}

void cf_jwt_cache_put(cf_jwt_cache_t *c, const char *token, size_t len, uint64_t policy, uint64_t generation, int64_t until,
                      json_t *claims)
{
    uint64_t h = token_hash(c, token, len);
    centry_t *set = &c->entries[(h & c->set_mask) * WAYS], *victim = &set[0];
    for (size_t i = 0; i != WAYS; ++i) { /* the same token, else an empty entry, else the least recently used */
        centry_t *e = &set[i];
        int same = e->token != NULL && e->hash == h && e->policy == policy && e->len == len && memcmp(e->token, token, len) == 0;
        if (e->token == NULL || same) {
            victim = e;
            if (same)
                break;
        } else if (victim->token != NULL && e->used < victim->used) {
            victim = e;
        }
    }
    if (victim->token != NULL)
        cache_drop(c, victim);
    victim->token = malloc(len);
    memcpy(victim->token, token, len);
    victim->len = len;
    victim->hash = h;
    victim->policy = policy;
    victim->generation = generation;
    victim->until = until;
    victim->used = ++c->clock;
    victim->claims = json_incref(claims);
    ++c->size;
}

size_t cf_jwt_cache_size(const cf_jwt_cache_t *c)
{
    return c->size;
}
