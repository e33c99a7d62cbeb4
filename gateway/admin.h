/* The admin listener's endpoints: /healthz, /metrics (Prometheus text) and /config (the active config's identity). */
#ifndef CF_ADMIN_H
#define CF_ADMIN_H

#include <h2o.h>
#include "config.h"

/**
 * Answers one admin request: /healthz (200 "ok", 503 "draining" when `draining`), /metrics, /config; anything
 * else gets a JSON 404. Returns 0.
 */
int cf_admin_handle(h2o_req_t *req, int draining);

/**
 * Records which config is live, for /config: its path, SHA-256, load time and counts are copied (nothing else, so
 * no secret can leak). Call at start and after each successful reload; any thread.
 */
void cf_admin_config_loaded(const cf_config_t *c);

#endif
