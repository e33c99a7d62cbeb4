/* Forwarding a request of conflux-mock to a real upstream (a proxy stub) and returning its answer. */
#ifndef CF_MOCK_PROXY_H
#define CF_MOCK_PROXY_H

#include <stdint.h>
#include <h2o.h>
#include "stubs.h"

/** An upstream answer larger than this (head or body) fails the request with 502. */
#define CF_MOCK_PROXY_MAX_BODY (64 * 1024 * 1024)

/** Binds the proxy client to the loop (once, before any forward). */
void cf_mock_proxy_init(h2o_loop_t *loop);
/**
 * Forwards req to up (borrowed: it must outlive the request) and answers req with what comes back, or with 502/504
 * and a JSON body when the upstream fails or times out. Journals the answer under journal_id.
 */
void cf_mock_proxy_forward(h2o_req_t *req, const cf_mock_upstream_t *up, uint64_t journal_id);

#endif
