/* --record DIR: what proxied exchanges answered, kept in memory and written out as a stubs file at stop. */
#ifndef CF_MOCK_RECORD_H
#define CF_MOCK_RECORD_H

#include <h2o.h>

/** The most exchanges kept, and the most body bytes; past either, exchanges are counted and dropped. */
#define CF_MOCK_RECORD_MAX 10000
#define CF_MOCK_RECORD_MAX_BYTES (64 * 1024 * 1024)

/** Turns recording on, into dir (borrowed: it lives until exit). Nothing is written before cf_mock_record_write. */
void cf_mock_record_init(const char *dir);
/**
 * Keeps one answered exchange when recording is on: the request's method and path (with its query), the answer's
 * status, its headers (already without hop-by-hop fields, Date, Server and Content-Length) and body. Everything is
 * copied; no disk I/O. The first answer for a method, path and query wins.
 */
void cf_mock_record_add(h2o_req_t *req, int status, const h2o_headers_t *headers, h2o_iovec_t body);
/** Writes dir/recorded.yaml and dir/bodies/N.bin, then frees what was kept. Returns 0, or -1 with a message in err. */
int cf_mock_record_write(char *err, size_t errlen);

#endif
