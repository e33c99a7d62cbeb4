/* libFuzzer harness for body templates: compile any YAML as a body, expand it with any values, and check the JSON. */
/*
 * Input: the YAML text up to the first NUL; after it, each placeholder in turn takes a value as one length byte
 * followed by that many bytes: for a {CALL.x} placeholder the bytes are parsed as JSON when they are JSON (else they
 * are a string), for the others they are a string of any bytes; when the input runs out, the value is missing. The
 * client body is a fixed JSON text. Checked: a body that compiles and expands is valid JSON (whatever the values);
 * a failed expansion leaves the buffer as it was. Build and run: see README.md.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../gateway/template.c"
#include "../../gateway/jsonout.c"
#include "../../gateway/body.c"

#define MAX_VALUES 256

struct feed {
    const uint8_t *p;
    size_t left;
    json_t *owned[MAX_VALUES];
    size_t num_owned;
};

static int on_lookup(void *_ctx, const cf_tpl_part_t *part, cf_body_value_t *v)
{
    struct feed *f = _ctx;
    if (f->left == 0 || f->num_owned == MAX_VALUES)
        return CF_TPL_MISSING;
    size_t n = f->p[0];
    if (n > f->left - 1)
        n = f->left - 1;
    const char *s = (const char *)f->p + 1;
    f->p += n + 1;
    f->left -= n + 1;
    if (part->kind == CF_TPL_CALL || part->kind == CF_TPL_ITEM) {
        json_t *doc = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (doc != NULL) {
            f->owned[f->num_owned++] = doc;
            v->json = doc;
            return CF_TPL_OK;
        }
    }
    v->str = s;
    v->len = n;
    return CF_TPL_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t ylen = nul != NULL ? (size_t)(nul - data) : size;
    cf_yaml_t y;
    char err[512];
    if (cf_yaml_load_string(&y, "fuzz.yaml", (const char *)data, ylen, err, sizeof(err)) != 0)
        return 0;
    cf_yctx_t ctx;
    cf_yctx_init(&ctx, &y);
    cf_body_t b;
    yaml_node_t *root = cf_yaml_root(&y);
    if (root == NULL || cf_body_parse(&ctx, root, &b) != 0) {
        cf_yaml_dispose(&y);
        return 0;
    }
    cf_yaml_dispose(&y); /* the body owns its copies */

    static const char rb[] = "{\"client\": [1, 2.50, \"\\u00e9\"]}";
    struct feed f = {.p = nul != NULL ? nul + 1 : data + size, .left = nul != NULL ? size - ylen - 1 : 0};
    cf_buf_t out = CF_BUF_INIT;
    cf_buf_appends(&out, "x");
    int rc = cf_body_expand(&b, on_lookup, &f, rb, sizeof(rb) - 1, 1 << 20, &out, NULL);
    if (rc == CF_TPL_OK) {
        json_error_t jerr;
        json_t *doc = json_loadb(out.base + 1, out.len - 1, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (doc == NULL) {
            fprintf(stderr, "expansion is not JSON (%s at %d): %.*s\n", jerr.text, jerr.position, (int)out.len - 1, out.base + 1);
            abort();
        }
        json_decref(doc);
    } else if (out.len != 1 || memcmp(out.base, "x", 1) != 0 || (rc != CF_TPL_MISSING && rc != CF_BODY_TOO_LARGE)) {
        fprintf(stderr, "a failed expansion (%d) changed the buffer\n", rc);
        abort();
    }
    cf_buf_free(&out);
    for (size_t i = 0; i < f.num_owned; ++i)
        json_decref(f.owned[i]);
    cf_body_free(&b);
    return 0;
}
