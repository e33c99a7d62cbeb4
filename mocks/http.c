/* Small HTTP helpers of conflux-mock: query parameters, URL decoding, and sending a whole answer. */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "cf_buf.h"
#include "cf_http.h"
#include "http.h"

h2o_iovec_t cf_mock_query_param(h2o_req_t *req, const char *name)
{
    if (req->query_at == SIZE_MAX)
        return h2o_iovec_init(NULL, 0);
    const char *p = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    size_t nlen = strlen(name);
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pend = amp != NULL ? amp : end;
        if ((size_t)(pend - p) > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=')
            return h2o_iovec_init(p + nlen + 1, (size_t)(pend - p - nlen - 1));
        p = pend + 1;
    }
    return h2o_iovec_init(NULL, 0);
}

h2o_iovec_t cf_mock_url_decode(h2o_mem_pool_t *pool, h2o_iovec_t s)
{
    char *out = h2o_mem_alloc_pool(pool, s.len + 1);
    size_t n;
    cf_form_decode(s.base, s.len, out, &n, CF_FORM_LENIENT); /* a stray '%' is kept as is */
    out[n] = '\0';
    return h2o_iovec_init(out, n);
}

void cf_mock_send(h2o_req_t *req, int status, const char *content_type, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = cf_http_reason(status);
    req->res.content_length = len;
    if (content_type != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    h2o_send_inline(req, body, len);
}

void cf_mock_send_json(h2o_req_t *req, int status, json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    cf_mock_send(req, status, "application/json", s, strlen(s));
    free(s);
}
