/* The request journal of conflux-mock: a bounded ring of what arrived and how it was answered, and its counters. */
#ifndef CF_MOCK_JOURNAL_H
#define CF_MOCK_JOURNAL_H

#include <stddef.h>
#include <stdint.h>
#include <h2o.h>
#include <jansson.h>

/**
 * Sets how many requests the journal keeps (the oldest are dropped first) and the names of the listeners (borrowed:
 * they live until exit), which entries and counters refer to by index.
 */
void cf_mock_journal_init(size_t capacity, const char *const *listeners, size_t n_listeners);
/** Records a request arriving on the listener of that index, and which stub (or NULL) it matched; returns its id. */
uint64_t cf_mock_journal_add(h2o_req_t *req, size_t listener, const char *stub);
/** Records what was decided on arrival: the fault name (static string) and the sampled delay in ms. */
void cf_mock_journal_plan(uint64_t id, const char *fault, uint64_t delay);
/** Records that the answer started now, with its status (0 for a fault that sends no status line). */
void cf_mock_journal_answer(uint64_t id, int status);
/** Records that the client went away before the answer was complete (it arrived on the listener of that index). */
void cf_mock_journal_abort(uint64_t id, size_t listener);
/** Records the near miss of a request no stub matched (borrowed: the entry takes its own reference). */
void cf_mock_journal_closest(uint64_t id, json_t *closest);
/** Records that a proxy stub forwarded the request to upstream ("http://host:port", copied). */
void cf_mock_journal_proxied(uint64_t id, const char *upstream);
/** Records that the answer was completely sent. */
void cf_mock_journal_done(uint64_t id);

/** Which journal entries to list; a NULL (base) member does not filter. */
typedef struct st_cf_mock_journal_filter_t {
    const char *path;     /* the exact path (without the query) */
    h2o_iovec_t method;   /* the exact method */
    const char *stub;     /* the key of the stub that answered ("METHOD path", or "respond") */
    const char *listener; /* the name of the listener it arrived on */
    size_t limit;         /* keep the newest limit entries; SIZE_MAX for all */
} cf_mock_journal_filter_t;
/** The entries that pass filter, oldest first, as a JSON array (owned by the caller). */
json_t *cf_mock_journal_json(const cf_mock_journal_filter_t *filter);

/** The request counters since start or the last reset. */
typedef struct st_cf_mock_journal_counts_t {
    uint64_t total, unmatched, respond, aborted;
} cf_mock_journal_counts_t;
/** Reads the request counters into counts: of every listener, or (listener < the number of listeners) of one. */
void cf_mock_journal_counts(size_t listener, cf_mock_journal_counts_t *counts);

/** Records that the exchange ended, however it ended (a fault that closes the socket sends no complete answer). */
void cf_mock_journal_close(uint64_t id);
/**
 * Requests in flight (arrived, answer not yet completely handed to the socket, not aborted) now, and the most at once
 * since start or the last reset. A request in flight across a reset is not counted after it.
 */
void cf_mock_journal_inflight(uint64_t *now, uint64_t *max);

/** The names of the listeners given to cf_mock_journal_init, and their number in *n. */
const char *const *cf_mock_journal_listeners(size_t *n);

/** Clears the journal and the request counters. */
void cf_mock_journal_reset(void);
/** Frees the journal (at exit). */
void cf_mock_journal_dispose(void);

#endif
