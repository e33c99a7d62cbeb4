/* Answering a request in conflux-mock: a stub, /__mock/respond, or the 404 for an unmatched request. */
#ifndef CF_MOCK_SERVE_H
#define CF_MOCK_SERVE_H

#include <h2o.h>
#include <jansson.h>
#include "stubs.h"

/*
 * Each takes the index of the listener the request arrived on, for the journal.
 */
/** Serves a request matched to stub (retained, handed over) with its path captures (copied). */
void cf_mock_serve_stub(h2o_req_t *req, size_t listener, cf_mock_stub_t *stub, h2o_iovec_t *caps);
/** Serves /__mock/respond?status=&delay=&body=&fault=&header=Name:Value (journaled as "respond"). */
void cf_mock_serve_respond(h2o_req_t *req, size_t listener);
/**
 * Answers 404 {"error":"no stub",...,"closest":closest} for a request nothing matched (journaled with closest too);
 * closest is the near miss of cf_mock_stubs_near_miss (owned: released here), or NULL.
 */
void cf_mock_serve_unmatched(h2o_req_t *req, size_t listener, json_t *closest);
/** Resets the connection of a request that arrived on a listener that is down (not journaled). */
void cf_mock_serve_down(h2o_req_t *req, size_t listener);
/** Resets every request of that listener still waiting out its delay (the listener went down). */
void cf_mock_serve_drop(size_t listener);

#endif
