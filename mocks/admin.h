/* The admin API of conflux-mock: the /__mock/ endpoints over the journal and the live stubs. */
#ifndef CF_MOCK_ADMIN_H
#define CF_MOCK_ADMIN_H

#include <h2o.h>

/** Serves the admin API under /__mock/ (not journaled); answers 404 for unknown admin paths. */
void cf_mock_admin_handle(h2o_req_t *req);

#endif
