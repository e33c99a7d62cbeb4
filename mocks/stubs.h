/* Stubs of conflux-mock: what a stub can do (status, body, delay, fault, sequence), loading them, the live set, matching. */
#ifndef CF_MOCK_STUBS_H
#define CF_MOCK_STUBS_H

#include <stddef.h>
#include <stdint.h>
#include <h2o.h>
#include "match.h"
#include "timing.h"

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

/** Where a proxy stub forwards to: a numeric IPv4 address and a port (names are resolved when the stub is loaded). */
typedef struct st_cf_mock_upstream_t {
    char *url;  /* "http://host:port" as normalized (malloc'ed): what the journal shows */
    char *host; /* dotted IPv4 (malloc'ed) */
    uint16_t port;
    char *hostport;   /* the Host header sent upstream (malloc'ed) */
    uint64_t timeout; /* ms from forwarding to the last byte of the answer */
} cf_mock_upstream_t;

/**
 * Parses "http://HOST:PORT" (no path; HOST a dotted IPv4 address or "localhost", which is 127.0.0.1) into up (its
 * strings malloc'ed; timeout left alone). Returns 0, or -1 with a message in err.
 */
int cf_mock_upstream_parse(const char *url, cf_mock_upstream_t *up, char *err, size_t errlen);
/** Frees what cf_mock_upstream_parse allocated (safe on a zeroed struct). */
void cf_mock_upstream_dispose(cf_mock_upstream_t *up);

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
    int body_raw; /* the body is sent verbatim, not as a template ({name} stays text) */
    cf_mock_delay_t delay;
    int fault;                 /* cf_mock_fault_t */
    uint64_t fault_status;     /* instead of a fault, this status (0: none) */
    double fault_rate;         /* the fraction of requests that get the fault (or fault_status) */
    uint64_t trickle_interval; /* ms between bytes for fault: trickle */
    cf_mock_step_t *sequence;
    size_t n_sequence;
    char *listener;                     /* the name of the only listener it answers on, or NULL for every listener */
    char *name;                         /* its key when given (else derived from method, path, listener, conditions) */
    uint64_t priority;                  /* among the stubs that match a request, the lowest wins (default 5) */
    cf_mock_match_t match;              /* request conditions beyond method and path */
    char *scenario;                     /* the scenario it belongs to, or NULL */
    char *state;                        /* the state of the scenario it requires, or NULL for any */
    char *next_state;                   /* the state the scenario moves to when it is chosen, or NULL */
    cf_mock_upstream_t proxy;           /* proxy: where to forward to (url NULL: the stub answers itself) */
    struct st_cf_mock_scenario_t *scen; /* `scenario` resolved (set when published) */
    /* compiled */
    char *key;             /* name, or "METHOD path[ @listener][ [conditions]]": the identity for replacement and stats */
    size_t listener_index; /* the index of `listener` among the listeners (set once they are known) */
    cf_mock_seg_t *segs;
    size_t n_segs;
    cf_mock_piece_t *pieces; /* the body as a template */
    size_t n_pieces;
    int json_escape; /* substituted values are JSON-string-escaped (the body is JSON) */
    /* runtime */
    uint64_t calls;    /* requests matched since start or the last reset; drives `sequence` */
    cf_mock_rng_t rng; /* its delays and fault draws; restarted at each reset */
    size_t refcnt;
} cf_mock_stub_t;

/** The largest number of {param} captures a path may have. */
#define CF_MOCK_MAX_PARAMS 16

/** A listener as a stubs file or --port gives it: a name (NULL: named after its bound address) and "host:port". */
typedef struct st_cf_mock_listen_t {
    char *name;    /* malloc'ed or NULL */
    char *address; /* malloc'ed */
} cf_mock_listen_t;

/**
 * Loads a stubs file: `listen:` (a malloc'ed array into *listen and its length into *n_listen, or both left alone
 * when absent) and `stubs:` (published into the live set). Returns 0, or -1 with "file:line:col: key.path: message"
 * in err.
 */
int cf_mock_load_file(const char *file, cf_mock_listen_t **listen, size_t *n_listen, char *err, size_t errlen);
/**
 * Tells the stubs the names of the listeners (borrowed: they live until exit), in order, and resolves the `listener:`
 * of every live stub. Returns 0, or -1 with a message in err when a stub names no listener. Stubs loaded afterwards
 * are checked as they are decoded; before this call, every `listener:` waits for it.
 */
int cf_mock_stubs_set_listeners(const char *const *names, size_t n, char *err, size_t errlen);
/**
 * Decodes stubs from a YAML/JSON document sent at runtime: one stub mapping, a list of them, or `{stubs: [...]}`,
 * and publishes them (replacing stubs with the same method and path). `body_file` is refused (no disk I/O on the
 * loop). Returns the number of stubs published and *replaced, or -1 with a message in err.
 */
int cf_mock_load_runtime(const char *src, size_t len, size_t *replaced, char *err, size_t errlen);
/** Parses the one-line form `METHOD PATH STATUS [BODY] [key=value ...]` and publishes it. Returns 0 or -1 + err. */
int cf_mock_load_cli(const char *line, char *err, size_t errlen);
/** The state every scenario starts in, and returns to at each reset. */
#define CF_MOCK_SCENARIO_START "started"

/** A scenario: a named state shared by the stubs that name it. Lives until exit once a stub has named it. */
typedef struct st_cf_mock_scenario_t {
    char *name;
    char *state; /* malloc'ed */
} cf_mock_scenario_t;

/**
 * Finds the stub for a request (r->listener is the index of the listener it arrived on): among the stubs whose method,
 * path, listener, conditions and scenario state hold, the lowest priority; then the most specific (literal segments
 * beat {param}, which beats {rest*}; then a method beats "*", then a stub of that listener beats one of every
 * listener); ties go to the earliest stub. Stores the captures (pointing into r->path) in caps, and moves the stub's
 * scenario to its next_state in the same step. Returns a retained stub or NULL.
 */
cf_mock_stub_t *cf_mock_stubs_match(cf_mock_request_t *r, h2o_iovec_t *caps);
/**
 * For a request no stub matched: the closest stub and why it missed, {"stub": KEY, "missed": ["...", ...]}, or NULL
 * without any stub for its listener (owned by the caller). Closest: a stub whose path matches beats one whose path
 * does not; then one whose method matches; then the fewest missed conditions; then the earliest.
 */
json_t *cf_mock_stubs_near_miss(cf_mock_request_t *r);
/** The scenarios, in the order stubs first named them (borrowed), and their number in *n. */
cf_mock_scenario_t **cf_mock_scenarios_list(size_t *n);
/** The scenario of that name, or NULL. */
cf_mock_scenario_t *cf_mock_scenario_find(const char *name);
/** Sets a scenario's state (copied). */
void cf_mock_scenario_set(cf_mock_scenario_t *s, const char *state);
/** Whether a listener's name is made of letters, digits and _ - . : [ ] (the last three for a bound address). */
int cf_mock_listener_name_ok(const char *name);
/** Drops a reference taken by cf_mock_stubs_match. */
void cf_mock_stub_release(cf_mock_stub_t *stub);
/** The live stubs, in order (borrowed; valid until the next publish). */
cf_mock_stub_t **cf_mock_stubs_list(size_t *n);
/** Zeroes every stub's call counter (and so its sequence position), restarts its random stream, and puts every scenario
 * back in its first state. */
void cf_mock_stubs_reset(void);
/** Frees every stub (at exit, for leak checkers). */
void cf_mock_stubs_dispose(void);

#endif
