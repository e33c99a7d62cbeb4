/*
 * libFuzzer harness for gateway/jwt.c, which reads bearer tokens from clients and JWK Sets from files.
 * Input: a mode byte, then the bytes. Mode even: a token, verified against a fixed set (an RSA, an EC P-256 and an
 * Ed25519 key) and fixed rules. Mode odd: a JWK Set document. Checks:
 *  - no token passes (the fuzzer cannot forge a signature of these keys): every input ends in a refusal, whatever the
 *    header says (alg none, HS256, a kid of another type, ...);
 *  - a token over CF_JWT_MAX_TOKEN is refused as malformed, unread;
 *  - base64url decoding is strict: what decodes encodes back to the same text (one encoding per value);
 *  - a JWK Set that parses has 1 to CF_JWKS_MAX_KEYS keys, each with an OpenSSL key of the type its alg names.
 * Build and run: see README.md.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../gateway/jwt.c"

static void check(int cond)
{
    if (!cond)
        abort();
}

/* a valid set: RSA (n of 2048 bits), EC P-256 (the curve's generator as the public point), Ed25519 (any 32 bytes) */
static const char SET[] =
    "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r\",\"e\":\"AQAB\",\"n\":"
    "\"wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQ\"},"
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"e\",\"x\":\"axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY\","
    "\"y\":\"T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU\"},"
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"d\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}";

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static cf_jwks_t *set;
    static char *aud[] = {"api"};
    static const cf_jwt_rules_t rules = {CF_JWT_ALL_ALGS, "https://idp", aud, 1, 30, 1};
    char err[256];
    if (set == NULL) {
        set = cf_jwks_parse(SET, sizeof(SET) - 1, err, sizeof(err));
        check(set != NULL && set->num_keys == 3);
    }
    if (size == 0)
        return 0;
    const char *s = (const char *)data + 1;
    size_t len = size - 1;
    if ((data[0] & 1) == 0) {
        cf_jwt_t out;
        cf_jwt_error_t e = cf_jwt_verify(&rules, set, s, len, 1900000000, &out);
        check(e != CF_JWT_OK && out.claims == NULL);
        check(len <= CF_JWT_MAX_TOKEN || e == CF_JWT_MALFORMED);
        if (len <= 4096) {
            unsigned char dec[3072];
            long n = cf_base64url_decode(s, len, dec);
            if (n >= 0) { /* encode it back */
                char enc[4100];
                size_t o = 0, i = 0;
                for (; i + 3 <= (size_t)n; i += 3) {
                    uint32_t v = (uint32_t)dec[i] << 16 | (uint32_t)dec[i + 1] << 8 | dec[i + 2];
                    enc[o++] = B64[v >> 18], enc[o++] = B64[v >> 12 & 63], enc[o++] = B64[v >> 6 & 63], enc[o++] = B64[v & 63];
                }
                if ((size_t)n - i == 1) {
                    enc[o++] = B64[dec[i] >> 2], enc[o++] = B64[(dec[i] & 3) << 4];
                } else if ((size_t)n - i == 2) {
                    uint32_t v = (uint32_t)dec[i] << 8 | dec[i + 1];
                    enc[o++] = B64[v >> 10], enc[o++] = B64[v >> 4 & 63], enc[o++] = B64[(v & 15) << 2];
                }
                check(o == len && memcmp(enc, s, len) == 0);
            }
        }
    } else {
        cf_jwks_t *k = cf_jwks_parse(s, len, err, sizeof(err));
        if (k != NULL) {
            check(k->num_keys >= 1 && k->num_keys <= CF_JWKS_MAX_KEYS);
            for (size_t i = 0; i != k->num_keys; ++i) {
                int id = EVP_PKEY_get_base_id(k->keys[i].key);
                check(k->keys[i].alg == CF_JWT_RS256   ? id == EVP_PKEY_RSA && EVP_PKEY_get_bits(k->keys[i].key) >= 2048
                      : k->keys[i].alg == CF_JWT_ES256 ? id == EVP_PKEY_EC
                                                       : id == EVP_PKEY_ED25519);
            }
            cf_jwks_release(k);
        }
    }
    return 0;
}
