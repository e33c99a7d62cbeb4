/* Unit tests of gateway/jwt.c: strict base64url, JWK Sets to keys, RS256/ES256/EdDSA verification and every way a token
 * is refused, the claims' rules, and the cache of verified tokens (bound, expiry, key-set generation).
 * `test_jwt --bench N [ALG]` instead times N uncached verifications per algorithm, or only ALG's (bench/README.md,
 * "JWT"). */
#include <time.h>
#include <openssl/core_names.h>
#include <openssl/rsa.h>
#include "tap.h"
#include "../../gateway/jwt.c"

#define NOW 1900000000 /* 2030 */

typedef struct st_tkey_t {
    EVP_PKEY *key;
    const char *alg, *kid;
} tkey_t;

static void b64url(const unsigned char *p, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = tab[v >> 18], out[o++] = tab[v >> 12 & 63], out[o++] = tab[v >> 6 & 63], out[o++] = tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = tab[v >> 18], out[o++] = tab[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = tab[v >> 18], out[o++] = tab[v >> 12 & 63], out[o++] = tab[v >> 6 & 63];
    }
    out[o] = '\0';
}

static void b64s(const char *s, char *out)
{
    b64url((const unsigned char *)s, strlen(s), out);
}

static EVP_PKEY *gen(const char *type, const char *curve, unsigned bits)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *k = NULL;
    EVP_PKEY_keygen_init(c);
    if (curve != NULL)
        EVP_PKEY_CTX_set_group_name(c, curve);
    if (bits != 0)
        EVP_PKEY_CTX_set_rsa_keygen_bits(c, bits);
    EVP_PKEY_keygen(c, &k);
    EVP_PKEY_CTX_free(c);
    return k;
}

static void bn_b64(const EVP_PKEY *k, const char *name, char *out)
{
    BIGNUM *bn = NULL;
    EVP_PKEY_get_bn_param(k, name, &bn);
    unsigned char buf[1024];
    int n = BN_bn2bin(bn, buf);
    b64url(buf, (size_t)n, out);
    BN_free(bn);
}

/* The public JWK of k as JSON, with `extra` members ("" or ",\"use\":\"enc\"") */
static void jwk_json(const tkey_t *k, const char *extra, char *out, size_t len)
{
    char a[800], b[800];
    if (strcmp(k->alg, "RS256") == 0) {
        bn_b64(k->key, OSSL_PKEY_PARAM_RSA_N, a);
        bn_b64(k->key, OSSL_PKEY_PARAM_RSA_E, b);
        snprintf(out, len, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"%s}", k->kid, a, b, extra);
    } else if (strcmp(k->alg, "ES256") == 0) {
        unsigned char pt[65];
        size_t n = 0;
        EVP_PKEY_get_octet_string_param(k->key, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &n);
        b64url(pt + 1, 32, a);
        b64url(pt + 33, 32, b);
        snprintf(out, len, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"%s}", k->kid, a, b, extra);
    } else {
        unsigned char raw[32];
        size_t n = sizeof(raw);
        EVP_PKEY_get_raw_public_key(k->key, raw, &n);
        b64url(raw, 32, a);
        snprintf(out, len, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"%s\",\"x\":\"%s\"%s}", k->kid, a, extra);
    }
}

/* header.payload.signature, signed with k (the JSON texts as given) */
static char *sign(const tkey_t *k, const char *header, const char *payload)
{
    static char tok[16384];
    char h[4096], p[8192];
    b64s(header, h);
    b64s(payload, p);
    int n = snprintf(tok, sizeof(tok), "%s.%s", h, p);
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestSignInit(md, NULL, strcmp(k->alg, "EdDSA") == 0 ? NULL : EVP_sha256(), NULL, k->key);
    EVP_DigestSign(md, sig, &siglen, (unsigned char *)tok, (size_t)n);
    EVP_MD_CTX_free(md);
    if (strcmp(k->alg, "ES256") == 0) { /* DER -> r || s */
        const unsigned char *q = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)siglen);
        BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
        ECDSA_SIG_free(es);
        siglen = 64;
    }
    tok[n++] = '.';
    b64url(sig, siglen, tok + n);
    return tok;
}

static char *token(const tkey_t *k, const char *payload)
{
    char header[128];
    snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"kid\":\"%s\"}", k->alg, k->kid);
    return sign(k, header, payload);
}

static tkey_t keys[3];
static cf_jwks_t *set;
static char *aud_list[] = {"api", "other"};
static const cf_jwt_rules_t rules = {CF_JWT_ALL_ALGS, "https://idp", aud_list, 2, 30, 1};
#define GOOD "{\"iss\":\"https://idp\",\"aud\":\"api\",\"sub\":\"alice\",\"exp\":1900000600}"

__attribute__((noinline)) static cf_jwt_error_t check(const cf_jwt_rules_t *r, const char *tok)
{
    cf_jwt_t out;
    cf_jwt_error_t e = cf_jwt_verify(r, set, tok, strlen(tok), NOW, &out);
    json_decref(out.claims);
    return e;
}

static void test_base64url(void)
{
    unsigned char out[16];
    is(cf_base64url_decode("YWJj", 4, out), 3, "abc");
    is(cf_base64url_decode("YWI", 3, out), 2, "ab, no padding");
    is(cf_base64url_decode("YQ", 2, out), 1, "a");
    is(cf_base64url_decode("YQ==", 4, out), -1, "padding refused");
    is(cf_base64url_decode("YR", 2, out), -1, "stray bits refused (one encoding per value)");
    is(cf_base64url_decode("Y", 1, out), -1, "a length of 1 mod 4");
    is(cf_base64url_decode("a+b/", 4, out), -1, "'+' and '/' (base64, not base64url)");
    is(cf_base64url_decode("a-b_", 4, out), 3, "'-' and '_'");
    is(cf_base64url_decode("YW Jj", 5, out), -1, "whitespace");
    is(cf_base64url_decode("", 0, out), 0, "empty");
}

static void test_jwks(void)
{
    char err[256], doc[16384], a[4096], b[4096], c[4096];
    ok(set != NULL && set->num_keys == 3, "three keys parsed");
    ok(cf_jwks_parse("{\"keys\":[]}", 11, err, sizeof(err)) == NULL && strstr(err, "no usable key") != NULL, "no keys: %s", err);
    ok(cf_jwks_parse("[1]", 3, err, sizeof(err)) == NULL && strstr(err, "not a JWK Set") != NULL, "not a set: %s", err);
    ok(cf_jwks_parse("{\"keys\":[", 9, err, sizeof(err)) == NULL && strstr(err, "not JSON") != NULL, "not JSON: %s", err);
    jwk_json(&keys[0], "", a, sizeof(a));
    snprintf(doc, sizeof(doc), "{\"keys\":[%s,%s]}", a, a);
    ok(cf_jwks_parse(doc, strlen(doc), err, sizeof(err)) == NULL && strstr(err, "already used") != NULL, "a kid twice: %s", err);
    snprintf(doc, sizeof(doc), "{\"keys\":[%s,%s]}", a, a);
    jwk_json(&keys[1], ",\"use\":\"enc\"", b, sizeof(b));
    jwk_json(&keys[2], ",\"alg\":\"RS256\"", c, sizeof(c));
    snprintf(doc, sizeof(doc), "{\"keys\":[%s,%s,%s,{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}", a, b, c);
    cf_jwks_t *s = cf_jwks_parse(doc, strlen(doc), err, sizeof(err));
    ok(s != NULL && s->num_keys == 1 && s->skipped == 3, "use: enc, a wrong alg and an oct key are skipped");
    cf_jwks_release(s);
    tkey_t small = {gen("RSA", NULL, 1024), "RS256", "small"};
    jwk_json(&small, "", a, sizeof(a));
    snprintf(doc, sizeof(doc), "{\"keys\":[%s]}", a);
    ok(cf_jwks_parse(doc, strlen(doc), err, sizeof(err)) == NULL, "an RSA key of 1024 bits is not usable");
    EVP_PKEY_free(small.key);
    const char *bad_ec = "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
                         "\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE\"}]}";
    ok(cf_jwks_parse(bad_ec, strlen(bad_ec), err, sizeof(err)) == NULL && strstr(err, "malformed EC") != NULL,
       "an EC point not on the curve: %s", err);
    /* Ed25519 keys of small order, canonical and not: with one, a forged signature verifies (checked here first) */
    jwk_json(&keys[1], "", b, sizeof(b));
    static const char *tiny[] = {"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "7P_______________________________________38",
                                 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIA",
                                 "xxdqcD1N2E-6PAt2DRBnDyogU_osOczGTsf9d5KsA3o", "xxdqcD1N2E-6PAt2DRBnDyogU_osOczGTsf9d5KsA_o",
                                 "JuiVj8KyJ7BFw_SJ8u-Y8NXfrAXTxjM5sTgCiG1T_AU", "JuiVj8KyJ7BFw_SJ8u-Y8NXfrAXTxjM5sTgCiG1T_IU",
                                 "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIA", "7P________________________________________8",
                                 "7f_______________________________________38", "7f________________________________________8",
                                 "7v_______________________________________38", "7v________________________________________8"};
    for (size_t i = 0; i != sizeof(tiny) / sizeof(tiny[0]); ++i) {
        unsigned char x[32], sig[64] = {0};
        cf_base64url_decode(tiny[i], strlen(tiny[i]), x);
        EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, 32);
        int forged = 0; /* R the identity and S = 0 verifies one of 64 messages (for order n, about 1 in n does) */
        for (int m = 0; m != 64 && k != NULL && !forged; ++m) {
            char msg[16];
            int mlen = snprintf(msg, sizeof(msg), "token %d", m);
            sig[0] = 1; /* R: the identity (0, 1); S: 0 */
            EVP_MD_CTX *md = EVP_MD_CTX_new();
            forged |= EVP_DigestVerifyInit(md, NULL, NULL, NULL, k) == 1 &&
                      EVP_DigestVerify(md, sig, 64, (const unsigned char *)msg, (size_t)mlen) == 1;
            EVP_MD_CTX_free(md);
        }
        EVP_PKEY_free(k);
        ok(forged, "tiny[%zu]: OpenSSL verifies a forged signature with it", i);
        snprintf(doc, sizeof(doc), "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\"},%s]}", tiny[i], b);
        s = cf_jwks_parse(doc, strlen(doc), err, sizeof(err));
        ok(s != NULL && s->num_keys == 1 && s->keys[0].alg == CF_JWT_ES256, "tiny[%zu]: the key is skipped", i);
        cf_jwks_release(s);
    }
    /* RFC 7517 §5: a malformed key beside good ones is skipped, and the set taken */
    jwk_json(&keys[1], "", b, sizeof(b));
    snprintf(doc, sizeof(doc), "%.*s,{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"},7,{\"kty\":1},%s]}",
             (int)(strlen(bad_ec) - 2), bad_ec, b); /* the off-curve key of bad_ec first */
    s = cf_jwks_parse(doc, strlen(doc), err, sizeof(err));
    ok(s != NULL && s->num_keys == 1 && s->skipped == 4,
       "an off-curve point, short coordinates, a number and a kty of 1 are "
       "skipped beside a good key: %s",
       s != NULL ? s->malformed : err);
    ok(s != NULL && strcmp(s->malformed, "keys[0]: a malformed EC key") == 0, "the first one is said");
    cf_jwks_release(s);
    /* the 2048-bit modulus of keys[0] with another e: 1 (any client could forge: the signature is its own padded digest),
     * 2 (even), 2^64 - 1 and 2^33 + 1 (the cost of every forged token); 3 and 2^33 - 1 are the bounds kept */
    char n[1024];
    bn_b64(keys[0].key, OSSL_PKEY_PARAM_RSA_N, n);
    static const struct {
        const char *e, *name;
        int usable;
    } exps[] = {{"AQ", "e = 1", 0},
                {"Ag", "e = 2", 0},
                {"__________8", "e = 2^64 - 1", 0},
                {"AgAAAAE", "e = 2^33 + 1", 0},
                {"Aw", "e = 3", 1},
                {"Af____8", "e = 2^33 - 1", 1}};
    for (size_t i = 0; i != sizeof(exps) / sizeof(exps[0]); ++i) {
        snprintf(doc, sizeof(doc), "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"}]}", n, exps[i].e);
        s = cf_jwks_parse(doc, strlen(doc), err, sizeof(err));
        ok((s != NULL) == exps[i].usable, "an RSA key with %s is %s", exps[i].name, exps[i].usable ? "usable" : "skipped");
        cf_jwks_release(s);
    }
    /* a modulus of 8200 bits (1025 bytes, all 0xff: only its size matters here) */
    unsigned char big[1025];
    memset(big, 0xff, sizeof(big));
    b64url(big, sizeof(big), a);
    snprintf(doc, sizeof(doc), "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"AQAB\"}]}", a);
    ok(cf_jwks_parse(doc, strlen(doc), err, sizeof(err)) == NULL, "an RSA key over 8192 bits is skipped");
}

static void test_verify(void)
{
    for (int i = 0; i != 3; ++i) {
        cf_jwt_t out;
        char *tok = token(&keys[i], GOOD);
        is(cf_jwt_verify(&rules, set, tok, strlen(tok), NOW, &out), CF_JWT_OK, "%s passes", keys[i].alg);
        is_str(json_string_value(json_object_get(out.claims, "sub")), "alice", "%s: the claims", keys[i].alg);
        is(out.exp, 1900000600, "%s: exp", keys[i].alg);
        json_decref(out.claims);
    }
    tkey_t *rs = &keys[0], *es = &keys[1];
    char hs[16384], h[256], p[1024];
    b64s("{\"alg\":\"none\"}", h);
    b64s(GOOD, p);
    snprintf(hs, sizeof(hs), "%s.%s.", h, p);
    is(check(&rules, hs), CF_JWT_MALFORMED, "alg none with an empty signature");
    snprintf(hs, sizeof(hs), "%s.%s.AAAA", h, p);
    is(check(&rules, hs), CF_JWT_BAD_ALG, "alg none");
    is(check(&rules, sign(rs, "{\"alg\":\"HS256\",\"kid\":\"r\"}", GOOD)), CF_JWT_BAD_ALG, "HS256");
    is(check(&rules, sign(rs, "{\"alg\":\"RS256\",\"kid\":\"x\"}", GOOD)), CF_JWT_UNKNOWN_KID, "an unknown kid");
    is(check(&rules, sign(rs, "{\"alg\":\"RS256\",\"kid\":\"e\"}", GOOD)), CF_JWT_UNKNOWN_KID, "the kid of an EC key with RS256");
    is(check(&rules, sign(rs, "{\"alg\":\"RS256\"}", GOOD)), CF_JWT_OK, "no kid: the one RSA key");
    is(check(&rules, sign(rs, "{\"alg\":\"RS256\",\"kid\":7}", GOOD)), CF_JWT_BAD_HEADER, "a kid that is not a string");
    is(check(&rules, sign(rs, "{\"alg\":\"RS256\",\"kid\":\"r\",\"crit\":[\"b64\"]}", GOOD)), CF_JWT_BAD_HEADER, "crit");
    is(check(&rules, sign(rs, "{\"alg\":\"RS256\",\"kid\":\"r\",\"kid\":\"e\"}", GOOD)), CF_JWT_BAD_HEADER, "a member twice");
    is(check(&rules, sign(rs, "[\"RS256\"]", GOOD)), CF_JWT_BAD_HEADER, "a header that is an array");
    is(check(&rules, sign(rs, "{alg:1", GOOD)), CF_JWT_BAD_HEADER, "a header that is not JSON");
    is(check(&rules, token(rs, "[1]")), CF_JWT_BAD_CLAIMS, "a payload that is not an object");
    is(check(&rules, token(rs, "{\"sub\":\"a\",\"sub\":\"b\",\"exp\":1900000600}")), CF_JWT_BAD_CLAIMS, "a claim twice");
    is(check(&rules, token(rs, "{\"iss\":\"https://idp\",\"aud\":\"api\",\"exp\":1899999900}")), CF_JWT_EXPIRED, "expired");
    is(check(&rules, token(rs, "{\"iss\":\"https://idp\",\"aud\":\"api\",\"exp\":1899999980}")), CF_JWT_OK,
       "expired 20 s ago: leeway");
    is(check(&rules, token(rs, "{\"iss\":\"https://idp\",\"aud\":\"api\",\"exp\":1899999970}")), CF_JWT_EXPIRED, "30 s ago: not");
    is(check(&rules, token(rs, "{\"iss\":\"https://idp\",\"aud\":\"api\"}")), CF_JWT_EXPIRED, "no exp");
    cf_jwt_rules_t lax = rules;
    lax.require_exp = 0;
    is(check(&lax, token(rs, "{\"iss\":\"https://idp\",\"aud\":\"api\"}")), CF_JWT_OK, "no exp, require_exp off");
    is(check(&rules, token(rs, "{\"iss\":\"https://idp\",\"aud\":\"api\",\"exp\":\"soon\"}")), CF_JWT_BAD_CLAIMS, "exp a string");
    is(check(&rules, token(rs, "{\"iss\":\"https://idp\",\"aud\":\"api\",\"exp\":1900000600,\"nbf\":1900000100}")),
       CF_JWT_NOT_YET_VALID, "nbf ahead");
    is(check(&rules, token(rs, "{\"iss\":\"https://idp\",\"aud\":\"api\",\"exp\":1900000600,\"nbf\":1900000020}")), CF_JWT_OK,
       "nbf 20 s ahead: leeway");
    is(check(&rules, token(rs, "{\"iss\":\"https://idp\",\"aud\":\"api\",\"exp\":1900000600,\"iat\":1900000100}")),
       CF_JWT_NOT_YET_VALID, "iat ahead");
    is(check(&rules, token(rs, "{\"iss\":\"https://idp\",\"aud\":\"api\",\"exp\":9.3e18}")), CF_JWT_BAD_CLAIMS, "exp out of range");
    /* claims are judged before the signature: the extremes of int64 must not overflow with the leeway (UBSan aborts) */
    is(check(&rules, token(rs, "{\"iss\":\"https://idp\",\"aud\":\"api\",\"exp\":9223372036854775807}")), CF_JWT_OK,
       "exp the largest int64");
    is(check(&rules, token(rs, "{\"iss\":\"https://idp\",\"aud\":\"api\",\"exp\":-9223372036854775808}")), CF_JWT_EXPIRED,
       "exp the smallest int64");
    is(check(&rules, token(rs, "{\"iss\":\"https://idp\",\"aud\":\"api\",\"exp\":1900000600,\"nbf\":9223372036854775807}")),
       CF_JWT_NOT_YET_VALID, "nbf the largest int64");
    is(check(&rules, token(rs, "{\"iss\":\"https://idp\",\"aud\":\"api\",\"exp\":1900000600,\"iat\":9223372036854775807}")),
       CF_JWT_NOT_YET_VALID, "iat the largest int64");
    is(check(&rules, token(rs, "{\"iss\":\"https://idp\",\"aud\":\"api\",\"exp\":1900000600,\"nbf\":-9223372036854775808}")),
       CF_JWT_OK, "nbf the smallest int64");
    is(check(&rules, token(rs, "{\"iss\":\"https://evil\",\"aud\":\"api\",\"exp\":1900000600}")), CF_JWT_WRONG_ISSUER, "iss");
    is(check(&rules, token(rs, "{\"aud\":\"api\",\"exp\":1900000600}")), CF_JWT_WRONG_ISSUER, "no iss");
    is(check(&rules, token(rs, "{\"iss\":\"https://idp\",\"aud\":\"x\",\"exp\":1900000600}")), CF_JWT_WRONG_AUDIENCE, "aud");
    is(check(&rules, token(rs, "{\"iss\":\"https://idp\",\"aud\":[\"x\",\"other\"],\"exp\":1900000600}")), CF_JWT_OK,
       "aud array naming one");
    is(check(&rules, token(rs, "{\"iss\":\"https://idp\",\"aud\":[[\"api\"]],\"exp\":1900000600}")), CF_JWT_WRONG_AUDIENCE,
       "aud nested");
    /* signatures */
    char good[16384];
    snprintf(good, sizeof(good), "%s", token(rs, GOOD));
    char *last = strrchr(good, '.');
    char tampered[16384];
    snprintf(tampered, sizeof(tampered), "%s", good);
    tampered[last - good + 5] = tampered[last - good + 5] == 'A' ? 'B' : 'A';
    is(check(&rules, tampered), CF_JWT_BAD_SIGNATURE, "a changed signature byte");
    b64s("{\"iss\":\"https://idp\",\"aud\":\"api\",\"sub\":\"root\",\"exp\":1900000600}", p);
    char *dot = strchr(good, '.');
    snprintf(tampered, sizeof(tampered), "%.*s.%s%s", (int)(dot - good), good, p, last);
    is(check(&rules, tampered), CF_JWT_BAD_SIGNATURE, "another payload under the signature");
    snprintf(tampered, sizeof(tampered), "%.*s", (int)(last - good + 13), good);
    is(check(&rules, tampered), CF_JWT_BAD_SIGNATURE, "a short RSA signature");
    char *e = token(es, GOOD);
    snprintf(tampered, sizeof(tampered), "%.*s.%s", (int)(strrchr(e, '.') - e), e, "AAAA");
    is(check(&rules, tampered), CF_JWT_BAD_SIGNATURE, "an ES256 signature of 3 bytes");
    snprintf(tampered, sizeof(tampered), "%s", e);
    tampered[strlen(tampered) - 1] = '\0';
    is(check(&rules, tampered), CF_JWT_MALFORMED, "an ES256 signature one character short (no base64url has that length)");
    tampered[strlen(tampered) - 1] = '\0';
    is(check(&rules, tampered), CF_JWT_BAD_SIGNATURE, "two characters short: 63 bytes");
    /* form */
    is(check(&rules, "a.b"), CF_JWT_MALFORMED, "two parts");
    is(check(&rules, "a.b.c.d"), CF_JWT_MALFORMED, "four parts");
    is(check(&rules, ".b.c"), CF_JWT_MALFORMED, "an empty header");
    size_t glen = strlen(good);
    memcpy(tampered, good, glen);
    memcpy(tampered + glen, "=", 2);
    is(check(&rules, tampered), CF_JWT_MALFORMED, "padding");
    tampered[0] = '\0';
    static char huge[CF_JWT_MAX_TOKEN + 2];
    memset(huge, 'A', sizeof(huge) - 1);
    huge[10] = huge[20] = '.';
    is(check(&rules, huge), CF_JWT_MALFORMED, "over CF_JWT_MAX_TOKEN");
    cf_jwt_rules_t ed_only = rules;
    ed_only.algs = CF_JWT_EDDSA;
    is(check(&ed_only, good), CF_JWT_BAD_ALG, "RS256 where only EdDSA is accepted");
    cf_jwt_t out;
    is(cf_jwt_verify(&rules, NULL, good, strlen(good), NOW, &out), CF_JWT_NO_KEYS, "no key set");
}

static void test_cache(void)
{
    cf_jwt_cache_t *c = cf_jwt_cache_new(8);
    json_t *claims = json_pack("{s:s}", "sub", "alice");
    ok(cf_jwt_cache_get(c, "tok", 3, 1, 1, NOW) == NULL, "empty");
    cf_jwt_cache_put(c, "tok", 3, 1, 1, NOW + 10, claims);
    ok(cf_jwt_cache_get(c, "tok", 3, 1, 1, NOW) == claims, "a hit");
    ok(cf_jwt_cache_get(c, "tok", 2, 1, 1, NOW) == NULL, "a prefix: a miss");
    ok(cf_jwt_cache_get(c, "toj", 3, 1, 1, NOW) == NULL, "another token: a miss");
    ok(cf_jwt_cache_get(c, "tok", 3, 2, 1, NOW) == NULL, "another policy: a miss");
    ok(cf_jwt_cache_get(c, "tok", 3, 1, 1, NOW + 10) == NULL, "at its end: a miss");
    is(cf_jwt_cache_size(c), 0, "and dropped");
    cf_jwt_cache_put(c, "tok", 3, 1, 1, NOW + 10, claims);
    ok(cf_jwt_cache_get(c, "tok", 3, 1, 2, NOW) == NULL, "a new key set: a miss");
    cf_jwt_cache_put(c, "tok", 3, 1, 2, NOW + 10, claims);
    cf_jwt_cache_put(c, "tok", 3, 1, 2, NOW + 10, claims);
    is(cf_jwt_cache_size(c), 1, "the same token twice: one entry");
    for (int i = 0; i != 1000; ++i) {
        char t[32];
        cf_jwt_cache_put(c, t, (size_t)snprintf(t, sizeof(t), "t%d", i), 1, 2, NOW + 10, claims);
    }
    is(cf_jwt_cache_size(c), 8, "1000 tokens: the cache stays at its bound");
    ok(cf_jwt_cache_get(c, "t999", 4, 1, 2, NOW) == claims, "the last one is there");
    cf_jwt_cache_free(c);
    is(claims->refcount, 1, "freeing the cache drops its references");
    json_decref(claims);
}

/* `only`: one algorithm's verifications and nothing else (for counting instructions under callgrind); NULL: all */
static void bench(long n, const char *only)
{
    printf("# %ld uncached verifications per algorithm (one thread, the token parsed and all claims checked each time)\n", n);
    for (int i = 0; i != 3; ++i) {
        if (only != NULL && strcmp(only, keys[i].alg) != 0)
            continue;
        char tok[16384];
        snprintf(tok, sizeof(tok), "%s", token(&keys[i], GOOD));
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int bad = 0;
        for (long k = 0; k != n; ++k)
            bad += check(&rules, tok) != CF_JWT_OK;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 1e3 / (double)n;
        printf("%-6s %8.1f us/verification  %9.0f/s  (token %zu bytes%s)\n", keys[i].alg, us, 1e6 / us, strlen(tok),
               bad ? ", FAILURES" : "");
    }
    if (only != NULL)
        return;
    /* refusals: what a hostile token costs */
    static char hostile[6][16384];
    const char *names[6] = {"alg none", "HS256", "unknown kid", "expired", "bad base64", "bad RS256 signature"};
    char h[256], p[1024];
    b64s("{\"alg\":\"none\"}", h);
    b64s(GOOD, p);
    snprintf(hostile[0], sizeof(hostile[0]), "%s.%s.AAAA", h, p);
    snprintf(hostile[1], sizeof(hostile[1]), "%s", sign(&keys[0], "{\"alg\":\"HS256\",\"kid\":\"r\"}", GOOD));
    snprintf(hostile[2], sizeof(hostile[2]), "%s", sign(&keys[0], "{\"alg\":\"RS256\",\"kid\":\"x\"}", GOOD));
    snprintf(hostile[3], sizeof(hostile[3]), "%s", token(&keys[0], "{\"iss\":\"https://idp\",\"aud\":\"api\",\"exp\":1800000000}"));
    snprintf(hostile[4], sizeof(hostile[4]), "%s", token(&keys[0], GOOD));
    hostile[4][30] = '$';
    snprintf(hostile[5], sizeof(hostile[5]), "%s", token(&keys[0], GOOD));
    hostile[5][strlen(hostile[5]) - 5] ^= 1;
    for (int i = 0; i != 6; ++i) {
        struct timespec t0, t1;
        long m = i == 5 ? n : n * 10;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (long k = 0; k != m; ++k)
            if (check(&rules, hostile[i]) == CF_JWT_OK)
                abort();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("refused: %-20s %8.2f us (%s)\n", names[i],
               ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 1e3 / (double)m,
               cf_jwt_error_name(check(&rules, hostile[i])));
    }

    char tok[16384];
    snprintf(tok, sizeof(tok), "%s", token(&keys[0], GOOD));
    cf_jwt_cache_t *c = cf_jwt_cache_new(4096);
    cf_jwt_t out;
    cf_jwt_verify(&rules, set, tok, strlen(tok), NOW, &out);
    cf_jwt_cache_put(c, tok, strlen(tok), 1, 1, NOW + 600, out.claims);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long k = 0; k != n * 100; ++k)
        if (cf_jwt_cache_get(c, tok, strlen(tok), 1, 1, NOW) == NULL)
            abort();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("cached %8.3f us/lookup of an RS256 token (its SipHash, the table, the compare)\n",
           ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 1e3 / (double)(n * 100));
    json_decref(out.claims);
    cf_jwt_cache_free(c);
}

int main(int argc, char **argv)
{
    keys[0] = (tkey_t){gen("RSA", NULL, 2048), "RS256", "r"};
    keys[1] = (tkey_t){gen("EC", "P-256", 0), "ES256", "e"};
    keys[2] = (tkey_t){gen("ED25519", NULL, 0), "EdDSA", "d"};
    char doc[8192], a[2048], b[1024], c[1024], err[256];
    jwk_json(&keys[0], "", a, sizeof(a));
    jwk_json(&keys[1], "", b, sizeof(b));
    jwk_json(&keys[2], ",\"use\":\"sig\"", c, sizeof(c));
    snprintf(doc, sizeof(doc), "{\"keys\":[%s,%s,%s]}", a, b, c);
    set = cf_jwks_parse(doc, strlen(doc), err, sizeof(err));
    if (set == NULL)
        diag("jwks: %s", err);
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "--bench") == 0) {
        bench(atol(argv[2]), argc == 4 ? argv[3] : NULL);
        return 0;
    }
    test_base64url();
    test_jwks();
    test_verify();
    test_cache();
    cf_jwks_release(set);
    for (int i = 0; i != 3; ++i)
        EVP_PKEY_free(keys[i].key);
    return done_testing();
}
