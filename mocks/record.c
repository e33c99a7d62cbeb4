/* --record DIR: what proxied exchanges answered, kept in memory and written out as a stubs file at stop. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <jansson.h>
#include "cf_buf.h"
#include "cf_http.h"
#include "record.h"

/*
 * Recording appends copies to a bounded in-memory list on the loop; the files are written once, after the loop has
 * stopped (SIGTERM/SIGINT), so no request ever waits on the disk. Each body goes to its own file, read verbatim at
 * load (body_file with body_raw: true), so binary bodies and braces replay byte for byte.
 */

typedef struct st_record_t {
    char *method, *path; /* path without the query */
    char *key;           /* method, path and query: the first answer for it wins */
    json_t *query;       /* owned: {name: decoded value}, the first of each name, or NULL */
    int status;
    json_t *headers;  /* owned: {name: value, or [values] for a name that came more than once} */
    h2o_iovec_t body; /* malloc'ed */
} record_t;

static const char *record_dir;
static record_t *records;
static size_t n_records, record_bytes, n_dropped, n_unrecordable;

void cf_mock_record_init(const char *dir)
{
    record_dir = dir;
}

/* %XX- and +-decoded, a stray '%' kept (as match.c compares query values); the result is malloc'ed and NUL-terminated */
static char *query_decode(const char *s, size_t len, size_t *outlen)
{
    char *out = malloc(len + 1);
    cf_form_decode(s, len, out, outlen, CF_FORM_LENIENT);
    out[*outlen] = '\0';
    return out;
}

/* {name: decoded value} for the first parameter of each name; NULL when a name or value is not UTF-8 text */
static json_t *query_conditions(const char *q, size_t len)
{
    json_t *obj = json_object();
    size_t i = 0;
    while (i <= len) {
        const char *amp = memchr(q + i, '&', len - i);
        size_t end = amp != NULL ? (size_t)(amp - q) : len;
        if (end != i) {
            const char *eq = memchr(q + i, '=', end - i);
            size_t nlen = eq != NULL ? (size_t)(eq - (q + i)) : end - i;
            char *name = h2o_strdup(NULL, q + i, nlen).base;
            size_t vlen;
            char *value = eq != NULL ? query_decode(eq + 1, (size_t)(q + end - eq - 1), &vlen) : query_decode("", 0, &vlen);
            json_t *v = json_stringn(value, vlen);
            free(value);
            if (v == NULL || strlen(name) != nlen || nlen == 0) {
                json_decref(v);
                free(name);
                json_decref(obj);
                return NULL;
            }
            if (json_object_get(obj, name) == NULL)
                json_object_set_new(obj, name, v);
            else
                json_decref(v);
            free(name);
        }
        i = end + 1;
    }
    return obj;
}

void cf_mock_record_add(h2o_req_t *req, int status, const h2o_headers_t *headers, h2o_iovec_t body)
{
    if (record_dir == NULL)
        return;
    if (n_records == CF_MOCK_RECORD_MAX || record_bytes + body.len > CF_MOCK_RECORD_MAX_BYTES) {
        ++n_dropped;
        return;
    }
    size_t pathlen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    record_t r = {NULL};
    r.status = status;
    /* a stub's path is a pattern ({name} captures) and its status 200-599: what cannot be written as one is counted */
    int ok = status >= 200 && status <= 599 && memchr(req->path.base, '{', pathlen) == NULL &&
             memchr(req->path.base, '}', pathlen) == NULL && memchr(req->path.base, '\0', req->path.len) == NULL;
    json_t *p = ok ? json_stringn(req->path.base, pathlen) : NULL;
    if (p == NULL)
        ok = 0;
    json_decref(p);
    if (ok && req->query_at != SIZE_MAX &&
        (r.query = query_conditions(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1)) == NULL)
        ok = 0;
    if (!ok) {
        ++n_unrecordable;
        json_decref(r.query);
        return;
    }
    /* the identity is what the replay stub will match on: method, path and the query conditions (names sorted), so
     * "?a=1&b=2", "?b=2&a=1" and "?a=%31&b=2" are one stub, and the first answer wins */
    cf_buf_t key = CF_BUF_INIT;
    cf_buf_append(&key, req->method.base, req->method.len);
    cf_buf_appendc(&key, ' ');
    cf_buf_append(&key, req->path.base, pathlen);
    if (r.query != NULL && json_object_size(r.query) != 0) {
        char *q = json_dumps(r.query, JSON_SORT_KEYS | JSON_COMPACT);
        cf_buf_appendc(&key, ' ');
        cf_buf_appends(&key, q);
        free(q);
    }
    for (size_t i = 0; i != n_records; ++i) {
        if (strcmp(records[i].key, key.base) == 0) {
            cf_buf_free(&key);
            json_decref(r.query);
            return;
        }
    }
    r.key = h2o_strdup(NULL, key.base, key.len).base;
    cf_buf_free(&key);
    r.method = h2o_strdup(NULL, req->method.base, req->method.len).base;
    r.path = h2o_strdup(NULL, req->path.base, pathlen).base;
    r.headers = json_object();
    for (size_t i = 0; i != headers->size; ++i) {
        const h2o_header_t *h = headers->entries + i;
        char *name = h2o_strdup(NULL, h->orig_name != NULL ? h->orig_name : h->name->base, h->name->len).base;
        json_t *v = json_stringn(h->value.base, h->value.len);
        /* a value that is not text is left out; a name seen before becomes a list of its values, in order (a stub's
         * headers: takes one, and sends the field once per value) */
        json_t *seen = v != NULL && strlen(name) == h->name->len ? json_object_get(r.headers, name) : NULL;
        if (v == NULL || strlen(name) != h->name->len) {
            json_decref(v);
        } else if (seen == NULL) {
            json_object_set_new(r.headers, name, v);
        } else if (json_is_array(seen)) {
            json_array_append_new(seen, v);
        } else {
            json_object_set_new(r.headers, name, json_pack("[Oo]", seen, v));
        }
        free(name);
    }
    r.body.base = malloc(body.len + 1);
    memcpy(r.body.base, body.base, body.len);
    r.body.len = body.len;
    record_bytes += body.len;
    records = realloc(records, (n_records + 1) * sizeof(*records));
    records[n_records++] = r;
}

/* a YAML double-quoted scalar: JSON's string escapes are YAML's */
static void put_string(FILE *fp, const char *s)
{
    json_t *j = json_string(s);
    char *d = json_dumps(j, JSON_ENCODE_ANY);
    fputs(d, fp);
    free(d);
    json_decref(j);
}

static void put_mapping(FILE *fp, const char *indent, json_t *obj, int equals)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        fprintf(fp, "%s", indent);
        put_string(fp, k);
        fputs(equals ? ": {equals: " : ": ", fp);
        char *d = json_dumps(v, JSON_ENCODE_ANY);
        fputs(d, fp);
        free(d);
        fputs(equals ? "}\n" : "\n", fp);
    }
}

static int write_files(char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/bodies", record_dir);
    if ((mkdir(record_dir, 0777) != 0 && errno != EEXIST) || (mkdir(path, 0777) != 0 && errno != EEXIST)) {
        snprintf(err, errlen, "--record: cannot create %.300s: %s", path, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof(path), "%s/recorded.yaml.tmp", record_dir);
    FILE *fp = fopen(path, "w");
    if (fp == NULL) {
        snprintf(err, errlen, "--record: cannot write %.300s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(fp, "# written by conflux-mock --record: %zu exchanges", n_records);
    if (n_dropped != 0)
        fprintf(fp, "; %zu more dropped past the bound (%d exchanges, %d MiB of bodies)", n_dropped, CF_MOCK_RECORD_MAX,
                CF_MOCK_RECORD_MAX_BYTES >> 20);
    if (n_unrecordable != 0)
        fprintf(fp, "; %zu not writable as stubs (status, braces in the path, or bytes that are not text)", n_unrecordable);
    fputs("\nstubs:\n", fp);
    if (n_records == 0)
        fputs("  []\n", fp);
    int failed = 0;
    for (size_t i = 0; i != n_records && !failed; ++i) {
        record_t *r = records + i;
        char body[4200];
        snprintf(body, sizeof(body), "%s/bodies/%zu.bin", record_dir, i + 1);
        FILE *bf = fopen(body, "wb");
        if (bf == NULL || fwrite(r->body.base, 1, r->body.len, bf) != r->body.len)
            failed = 1;
        if (bf != NULL && fclose(bf) != 0)
            failed = 1;
        fputs("  - method: ", fp);
        put_string(fp, r->method);
        fputs("\n    path: ", fp);
        put_string(fp, r->path);
        /* the more query conditions, the more specific: the lowest priority wins, so a request matches its own */
        size_t n_query = r->query != NULL ? json_object_size(r->query) : 0;
        fprintf(fp, "\n    priority: %zu\n    status: %d\n", 1000 - (n_query < 1000 ? n_query : 1000), r->status);
        if (n_query != 0) {
            fputs("    match:\n      query:\n", fp);
            put_mapping(fp, "        ", r->query, 1);
        }
        if (json_object_size(r->headers) != 0) {
            fputs("    headers:\n", fp);
            put_mapping(fp, "      ", r->headers, 0);
        }
        fprintf(fp, "    body_file: bodies/%zu.bin\n    body_raw: true\n", i + 1);
    }
    if (fclose(fp) != 0 || failed) {
        snprintf(err, errlen, "--record: cannot write into %.300s: %s", record_dir, strerror(errno));
        return -1;
    }
    char final[4200];
    snprintf(final, sizeof(final), "%s/recorded.yaml", record_dir);
    if (rename(path, final) != 0) {
        snprintf(err, errlen, "--record: cannot write %.300s: %s", final, strerror(errno));
        return -1;
    }
    return 0;
}

int cf_mock_record_write(char *err, size_t errlen)
{
    if (record_dir == NULL)
        return 0;
    int ret = write_files(err, errlen);
    if (ret == 0)
        fprintf(stderr,
                "conflux-mock: recorded %zu exchange%s into %s/recorded.yaml (%zu dropped past the bound, %zu not recordable)\n",
                n_records, n_records == 1 ? "" : "s", record_dir, n_dropped, n_unrecordable);
    for (size_t i = 0; i != n_records; ++i) {
        free(records[i].method);
        free(records[i].path);
        free(records[i].key);
        json_decref(records[i].query);
        json_decref(records[i].headers);
        free(records[i].body.base);
    }
    free(records);
    records = NULL;
    n_records = 0;
    return ret;
}
