/* Shared declarations of conflux-mock: stubs, timers, the request journal, and serving a request. */
#ifndef CF_MOCK_H
#define CF_MOCK_H

#include <stddef.h>
#include <stdint.h>
#include <h2o.h>
#include <jansson.h>
#include "cf_yaml.h"

/** How a stub misbehaves (see serve.c for what a client sees for each). */
typedef enum en_cf_mock_fault_t {
    CF_MOCK_FAULT_NONE,
    CF_MOCK_FAULT_RESET,
    CF_MOCK_FAULT_HANG,
    CF_MOCK_FAULT_EMPTY,
    CF_MOCK_FAULT_GARBAGE,
    CF_MOCK_FAULT_TRUNCATED,
    CF_MOCK_FAULT_TRICKLE,
} cf_mock_fault_t;

/** The fault names as the YAML spells them, NULL-terminated, indexed by cf_mock_fault_t. */
extern const char *const cf_mock_fault_names[];

/** The shapes a delay can take. */
typedef enum en_cf_mock_delay_kind_t {
    CF_MOCK_DELAY_NONE,
    CF_MOCK_DELAY_FIXED,     /* a */
    CF_MOCK_DELAY_UNIFORM,   /* uniform in [a, b] */
    CF_MOCK_DELAY_LOGNORMAL, /* median a, 99th percentile b */
} cf_mock_delay_kind_t;

/** A delay distribution; all values in milliseconds. */
typedef struct st_cf_mock_delay_t {
    cf_mock_delay_kind_t kind;
    uint64_t a, b;
} cf_mock_delay_t;

/** Draws one delay (ms) from the distribution; lognormal draws are capped at 10 x p99. */
uint64_t cf_mock_delay_sample(const cf_mock_delay_t *d);
/**
 * Parses the one-line form of a delay: "500ms", "uniform:100ms:900ms" or "lognormal:50ms:800ms" (median, p99).
 * Returns 0, or -1 with a message in err.
 */
int cf_mock_delay_parse(const char *s, cf_mock_delay_t *d, char *err, size_t errlen);
/** A uniform random number in [0, 1) from the mock's generator (seeded by cf_mock_random_seed). */
double cf_mock_random(void);
/** Seeds the generator; 0 picks a seed from the clock and the pid. */
void cf_mock_random_seed(uint64_t seed);

/** One step of a `sequence:`: a status, or a fault (status then unused). */
typedef struct st_cf_mock_step_t {
    int status;
    cf_mock_fault_t fault;
} cf_mock_step_t;

/** A piece of a body template: literal text, or the value of a path parameter / query parameter. */
typedef struct st_cf_mock_piece_t {
    enum { CF_MOCK_PIECE_TEXT, CF_MOCK_PIECE_PARAM, CF_MOCK_PIECE_QUERY } kind;
    h2o_iovec_t text; /* TEXT: the bytes (into the stub's body); QUERY: the parameter name */
    size_t param;     /* PARAM: index of the capture */
} cf_mock_piece_t;

/** A path segment of a stub's pattern. */
typedef struct st_cf_mock_seg_t {
    enum { CF_MOCK_SEG_LITERAL, CF_MOCK_SEG_PARAM, CF_MOCK_SEG_REST } kind;
    h2o_iovec_t text; /* LITERAL: the segment; PARAM/REST: the parameter name */
} cf_mock_seg_t;

/** A configured answer. Immutable once published, except for the counters; reference-counted. */
typedef struct st_cf_mock_stub_t {
    /* as configured */
    char *method; /* "*" matches any method */
    char *path;
    uint64_t status;
    h2o_iovec_t *header_names, *header_values; /* malloc'ed, n_headers each */
    size_t n_headers;
    int has_content_type;
    char *body; /* malloc'ed, body_len bytes (NUL-terminated) */
    size_t body_len;
    char *body_file;
    cf_mock_delay_t delay;
    int fault; /* cf_mock_fault_t */
    double fault_rate;
    uint64_t trickle_interval; /* ms between bytes for fault: trickle */
    cf_mock_step_t *sequence;
    size_t n_sequence;
    /* compiled */
    char *key; /* "METHOD path", the identity for replacement and stats */
    cf_mock_seg_t *segs;
    size_t n_segs;
    cf_mock_piece_t *pieces; /* the body as a template */
    size_t n_pieces;
    int json_escape; /* substituted values are JSON-string-escaped (the body is JSON) */
    /* runtime */
    uint64_t calls; /* requests matched since start or the last reset; drives `sequence` */
    size_t refcnt;
} cf_mock_stub_t;

/** The largest number of {param} captures a path may have. */
#define CF_MOCK_MAX_PARAMS 16

/**
 * Loads a stubs file: `listen:` (malloc'ed into *listen, or left alone when absent) and `stubs:` (published into the
 * live set). Returns 0, or -1 with "file:line:col: key.path: message" in err.
 */
int cf_mock_load_file(const char *file, char **listen, char *err, size_t errlen);
/**
 * Decodes stubs from a YAML/JSON document sent at runtime: one stub mapping, a list of them, or `{stubs: [...]}`,
 * and publishes them (replacing stubs with the same method and path). `body_file` is refused (no disk I/O on the
 * loop). Returns the number of stubs published and *replaced, or -1 with a message in err.
 */
int cf_mock_load_runtime(const char *src, size_t len, size_t *replaced, char *err, size_t errlen);
/** Parses the one-line form `METHOD PATH STATUS [BODY] [key=value ...]` and publishes it. Returns 0 or -1 + err. */
int cf_mock_load_cli(const char *spec, char *err, size_t errlen);
/**
 * Finds the most specific stub for a request (literal segments beat {param}, which beats {rest*}; ties go to the
 * earliest stub) and stores the captures (pointing into `path`) in caps. Returns a retained stub or NULL.
 */
cf_mock_stub_t *cf_mock_stubs_match(h2o_iovec_t method, h2o_iovec_t path, h2o_iovec_t *caps);
/** Drops a reference taken by cf_mock_stubs_match. */
void cf_mock_stub_release(cf_mock_stub_t *stub);
/** The live stubs, in order (borrowed; valid until the next publish). */
cf_mock_stub_t **cf_mock_stubs_list(size_t *n);
/** Zeroes every stub's call counter (and so its sequence position). */
void cf_mock_stubs_reset(void);
/** Frees every stub (at exit, for leak checkers). */
void cf_mock_stubs_dispose(void);

/** A one-shot timer on the loop; embed it, set cb, then start/stop. */
typedef struct st_cf_mock_timer_t {
    uint64_t at; /* loop time (ms) it fires at */
    size_t slot; /* 1 + index in the heap; 0 when not running */
    void (*cb)(struct st_cf_mock_timer_t *timer);
} cf_mock_timer_t;

/** Binds the timers to the loop (once, before any start). */
void cf_mock_timers_init(h2o_loop_t *loop);
/** (Re)starts the timer to fire after delay ms. */
void cf_mock_timer_start(cf_mock_timer_t *timer, uint64_t delay);
/** Stops the timer if it runs (safe to call when it does not). */
void cf_mock_timer_stop(cf_mock_timer_t *timer);

/** Sets how many requests the journal keeps (the oldest are dropped first). */
void cf_mock_journal_init(size_t capacity);
/** Records an arriving request and which stub (or NULL) it matched; returns its id. */
uint64_t cf_mock_journal_add(h2o_req_t *req, const char *stub);
/** Records what was decided on arrival: the fault name (static string) and the sampled delay in ms. */
void cf_mock_journal_plan(uint64_t id, const char *fault, uint64_t delay);
/** Records that the answer started now, with its status (0 for a fault that sends no status line). */
void cf_mock_journal_answer(uint64_t id, int status);
/** Records that the client went away before the answer was complete. */
void cf_mock_journal_abort(uint64_t id);
/** Records that the answer was completely sent. */
void cf_mock_journal_done(uint64_t id);
/** Which journal entries to list; a NULL (base) member does not filter. */
typedef struct st_cf_mock_journal_filter_t {
    const char *path;   /* the exact path (without the query) */
    h2o_iovec_t method; /* the exact method */
    const char *stub;   /* the key of the stub that answered ("METHOD path", or "respond") */
    size_t limit;       /* keep the newest limit entries; SIZE_MAX for all */
} cf_mock_journal_filter_t;
/** The entries that pass filter, oldest first, as a JSON array (owned by the caller). */
json_t *cf_mock_journal_json(const cf_mock_journal_filter_t *filter);
/** The request counters since start or the last reset. */
typedef struct st_cf_mock_journal_counts_t {
    uint64_t total, unmatched, respond, aborted;
} cf_mock_journal_counts_t;
/** Reads the request counters into counts. */
void cf_mock_journal_counts(cf_mock_journal_counts_t *counts);
/** Clears the journal and the request counters. */
void cf_mock_journal_reset(void);
/** Frees the journal (at exit). */
void cf_mock_journal_dispose(void);

/** Serves the admin API under /__mock/ (not journaled); answers 404 for unknown admin paths. */
void cf_mock_admin_handle(h2o_req_t *req);

/** Serves a request matched to stub (retained, handed over) with its path captures (copied). */
void cf_mock_serve_stub(h2o_req_t *req, cf_mock_stub_t *stub, h2o_iovec_t *caps);
/** Serves /__mock/respond?status=&delay=&body=&fault=&header=Name:Value (journaled as "respond"). */
void cf_mock_serve_respond(h2o_req_t *req);
/** Answers 404 {"error":"no stub",...} for a request nothing matched (journaled). */
void cf_mock_serve_unmatched(h2o_req_t *req);

/** The raw (not decoded) value of the first query parameter called name, or a NULL base when absent. */
h2o_iovec_t cf_mock_query_param(h2o_req_t *req, const char *name);
/** A NUL-terminated copy in pool of a query value with %XX and '+' (as space) decoded. */
h2o_iovec_t cf_mock_url_decode(h2o_mem_pool_t *pool, h2o_iovec_t s);

/** Sends a complete in-memory response with Content-Length. body is copied. */
void cf_mock_send(h2o_req_t *req, int status, const char *content_type, const char *body, size_t len);
/** Sends v (owned: released here) as a compact application/json answer with Content-Length. */
void cf_mock_send_json(h2o_req_t *req, int status, json_t *v);

#endif
