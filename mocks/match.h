/* Request conditions of a conflux-mock stub (match:): query, headers, body, JSON subset; decoding and evaluating them. */
#ifndef CF_MOCK_MATCH_H
#define CF_MOCK_MATCH_H

#include <regex.h>
#include <stddef.h>
#include <h2o.h>
#include <jansson.h>
#include "cf_buf.h"
#include "cf_yaml.h"

/** The longest regex pattern a condition accepts, in bytes. */
#define CF_MOCK_REGEX_MAX 512
/** The largest size of a regex with its repetitions ({n,m}) expanded, which is about what regcomp builds. */
#define CF_MOCK_REGEX_EXPANDED_MAX 10000
/**
 * The most work a regex condition may take on one value, as the value's length times the regex's expanded size: glibc's
 * regexec takes about that many steps at worst (a few ns each), on the event loop.
 */
#define CF_MOCK_REGEX_WORK_MAX (32 * 1024 * 1024)
/** The deepest nesting of a `json:` subset (objects and arrays). */
#define CF_MOCK_JSON_DEPTH_MAX 32
/** The largest request body that `json:` and `body:` conditions look at; a larger body misses them. */
#define CF_MOCK_MATCH_BODY_MAX (1024 * 1024)

/** How a value condition tests a query parameter, a header or the body. */
typedef enum en_cf_mock_cond_kind_t {
    CF_MOCK_COND_EQUALS,  /* the value is exactly `value` */
    CF_MOCK_COND_REGEX,   /* the value contains a match of the POSIX ERE `value` (unanchored) */
    CF_MOCK_COND_ABSENT,  /* there is no such parameter / header */
    CF_MOCK_COND_PRESENT, /* there is one, with any value */
} cf_mock_cond_kind_t;

/** One condition on a named value. */
typedef struct st_cf_mock_cond_t {
    cf_mock_cond_kind_t kind;
    char *name;  /* malloc'ed: the query parameter's name, or the header's name in lower case; NULL for the body */
    char *value; /* malloc'ed: EQUALS: the value; REGEX: the pattern; else NULL */
    size_t value_len;
    regex_t re;  /* REGEX: compiled with REG_EXTENDED | REG_NOSUB */
    size_t size; /* REGEX: its size with repetitions expanded (>= 1), which bounds the values it is tried on */
} cf_mock_cond_t;

/** The request conditions of a stub; all must hold. Zeroed: no condition. */
typedef struct st_cf_mock_match_t {
    cf_mock_cond_t *query, *headers; /* malloc'ed arrays */
    size_t n_query, n_headers;
    cf_mock_cond_t *body; /* malloc'ed, or NULL: a condition on the raw body */
    json_t *json;         /* owned, or NULL: a subset the body parsed as JSON must contain */
    size_t n;             /* the number of conditions in all */
} cf_mock_match_t;

/** What conditions are evaluated against: a view of a request, plus the body parsed once (lazily) as JSON. */
typedef struct st_cf_mock_request_t {
    h2o_iovec_t method, path; /* path without the query */
    h2o_iovec_t query;        /* the raw query after '?', base NULL without one */
    const h2o_header_t *headers;
    size_t n_headers;
    h2o_iovec_t authority; /* what a `host` condition tests (h2o keeps Host out of the headers) */
    h2o_iovec_t body;      /* base NULL without a body */
    size_t listener;
    h2o_mem_pool_t *pool; /* for decoded values; NULL: conditions on query and headers see nothing */
    /* set by cf_mock_match_eval */
    int json_state; /* 0: not parsed yet, 1: parsed into json, -1: not JSON (or too large) */
    json_t *json;   /* owned */
} cf_mock_request_t;

/**
 * Decodes a `match:` mapping (query, headers, body, json) into m (zeroed by the caller), compiling regexes. Returns 0,
 * or -1 with the error (file:line:col of the offending node) in ctx; m is then partly filled: dispose it.
 */
int cf_mock_match_decode(cf_yctx_t *ctx, yaml_node_t *node, cf_mock_match_t *m);
/** Frees what m holds (not m itself). */
void cf_mock_match_dispose(cf_mock_match_t *m);
/** Appends a canonical description of the conditions to buf ("query.q=a, header.x~^b, json {...}"), for stub keys. */
void cf_mock_match_describe(const cf_mock_match_t *m, cf_buf_t *buf);
/**
 * Evaluates the conditions on r. With missed NULL, stops at the first miss and returns 1 (0 when all hold); else
 * appends a message per missed condition to the array missed (owned by the caller) and returns how many missed.
 */
size_t cf_mock_match_eval(const cf_mock_match_t *m, cf_mock_request_t *r, json_t *missed);
/** Frees what r holds (its parsed body). */
void cf_mock_request_dispose(cf_mock_request_t *r);

#endif
