/* Small HTTP helpers of conflux-mock: query parameters, URL decoding, and sending a whole answer. */
#ifndef CF_MOCK_HTTP_H
#define CF_MOCK_HTTP_H

#include <h2o.h>
#include <jansson.h>

/** The raw (not decoded) value of the first query parameter called name, or a NULL base when absent. */
h2o_iovec_t cf_mock_query_param(h2o_req_t *req, const char *name);
/** A NUL-terminated copy in pool of a query value with %XX and '+' (as space) decoded. */
h2o_iovec_t cf_mock_url_decode(h2o_mem_pool_t *pool, h2o_iovec_t s);

/** Sends a complete in-memory response with Content-Length. body is copied. */
void cf_mock_send(h2o_req_t *req, int status, const char *content_type, const char *body, size_t len);
/** Sends v (owned: released here) as a compact application/json answer with Content-Length. */
void cf_mock_send_json(h2o_req_t *req, int status, json_t *v);

#endif
