/* YAML documents with line:column marks, and table-driven decoding of mappings into structs. */
#ifndef CF_YAML_H
#define CF_YAML_H

#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

/** A loaded YAML document. `filename` is borrowed (it must outlive the document). */
typedef struct st_cf_yaml_t {
    yaml_document_t doc;
    const char *filename;
    int loaded;
} cf_yaml_t;

/** A decoding context: the document, the key path being decoded, and the first error. */
typedef struct st_cf_yctx_t {
    cf_yaml_t *y;
    char path[512];
    size_t pathlen;
    char err[1024]; /* "file:line:col: key.path: message" once failed */
    int failed;
} cf_yctx_t;

/** A list of strings, each malloc'ed; free with cf_strlist_free. */
typedef struct st_cf_strlist_t {
    char **items;
    size_t n;
} cf_strlist_t;

/**
 * Loads the first document of a file / a string. Returns 0, or -1 with "file:line:col: message" in err.
 * An empty document loads fine; cf_yaml_root then returns NULL.
 */
int cf_yaml_load_file(cf_yaml_t *y, const char *path, char *err, size_t errlen);
int cf_yaml_load_string(cf_yaml_t *y, const char *name, const char *src, size_t len, char *err, size_t errlen);
/** Frees the document (safe on a document that failed to load). */
void cf_yaml_dispose(cf_yaml_t *y);
/** The root node, or NULL for an empty document. */
yaml_node_t *cf_yaml_root(cf_yaml_t *y);
/** The node with that id (from a mapping pair or sequence item). */
yaml_node_t *cf_yaml_node(cf_yaml_t *y, int id);
/** The NUL-terminated value of a scalar node, or NULL if the node is not a scalar. Borrowed. */
const char *cf_yscalar(const yaml_node_t *node);
/** Looks a key up in a mapping node; NULL when absent or when `map` is not a mapping. */
yaml_node_t *cf_ymap_get(cf_yaml_t *y, yaml_node_t *map, const char *key);

void cf_yctx_init(cf_yctx_t *ctx, cf_yaml_t *y);
/**
 * Records an error at `node` (or at no position when NULL) under the current key path, unless an error
 * was recorded before. Always returns -1 so that callers can `return cf_yerror(...)`.
 */
int cf_yerror(cf_yctx_t *ctx, const yaml_node_t *node, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/** Appends ".key" (or "key" at the top) / "[i]" to the key path; returns a mark for cf_ypath_restore. */
size_t cf_ypath_key(cf_yctx_t *ctx, const char *key);
size_t cf_ypath_index(cf_yctx_t *ctx, size_t index);
void cf_ypath_restore(cf_yctx_t *ctx, size_t mark);

/* Typed getters: each checks the node's type and range and records a clear error on failure (-1). */
int cf_yget_duration(cf_yctx_t *ctx, yaml_node_t *node, uint64_t *ms);
int cf_yget_size(cf_yctx_t *ctx, yaml_node_t *node, uint64_t *bytes);
int cf_yget_uint(cf_yctx_t *ctx, yaml_node_t *node, uint64_t min, uint64_t max, uint64_t *v);
int cf_yget_bool(cf_yctx_t *ctx, yaml_node_t *node, int *v);
/** *out receives a malloc'ed copy (the previous value is freed). Empty strings are refused. */
int cf_yget_string(cf_yctx_t *ctx, yaml_node_t *node, char **out);
/** names is NULL-terminated; *idx receives the index of the match. */
int cf_yget_enum(cf_yctx_t *ctx, yaml_node_t *node, const char *const *names, int *idx);
/** A sequence of non-empty scalars (a lone scalar is taken as a list of one). */
int cf_yget_strlist(cf_yctx_t *ctx, yaml_node_t *node, cf_strlist_t *out);
void cf_strlist_free(cf_strlist_t *l);

typedef enum en_cf_ytype_t {
    CF_YT_DURATION,    /* uint64_t, milliseconds; min/max bound it when max != 0 */
    CF_YT_SIZE,        /* uint64_t, bytes; min/max as above */
    CF_YT_UINT,        /* uint64_t; min/max as above */
    CF_YT_BOOL,        /* int */
    CF_YT_STRING,      /* char *, malloc'ed */
    CF_YT_ENUM,        /* int, index into `names` */
    CF_YT_STRLIST,     /* cf_strlist_t */
    CF_YT_CUSTOM,      /* `custom` decodes the node itself */
    CF_YT_UNSUPPORTED, /* the key is known but refused: "<key>: not supported yet (<help>)" */
} cf_ytype_t;

typedef struct st_cf_yfield_t {
    const char *key;
    cf_ytype_t type;
    size_t offset; /* of the member in the decoded struct */
    uint64_t min, max;
    const char *const *names;                                       /* CF_YT_ENUM */
    int (*custom)(cf_yctx_t *ctx, yaml_node_t *node, void *object); /* CF_YT_CUSTOM; object is the whole struct */
    const char *help;                                               /* CF_YT_UNSUPPORTED */
    /* the default, written as in a file ("5s", "1MiB", "256", "false", an enum name), which cf_ydefaults sets when the key
     * is absent; NULL: none here (the key is required, has no value when absent, or its default is derived) */
    const char *def;
} cf_yfield_t;

/**
 * Decodes the mapping `node` into `object` after `table` (terminated by an entry with key NULL; at most 64
 * entries). Unknown keys ("did you mean ...?"), duplicate keys and type errors are errors. When `seen` is
 * not NULL, bit i is set for each table[i] present, so that cf_ydefaults can merge the defaults of the rest.
 * Returns 0 or -1 (the error is in ctx).
 */
int cf_ydecode(cf_yctx_t *ctx, yaml_node_t *node, const cf_yfield_t *table, void *object, uint64_t *seen);

/** Whether the key `key` of `table` was present: its bit in cf_ydecode's `seen`. */
int cf_yseen(const cf_yfield_t *table, uint64_t seen, const char *key);

/**
 * Merges the defaults of `table` into `object` after decoding (nginx's unset-then-merge): each entry with a `def` whose
 * bit is not set in `seen` (cf_ydecode's; 0 when the whole mapping was absent) gets that value, parsed and bounded as
 * a value from the file would be. Only the scalar types take a `def` (duration, size, uint, bool, enum, string).
 * Returns 0, or -1 with an internal error in ctx when a `def` is not a valid value of its field (a bug in the table).
 */
int cf_ydefaults(cf_yctx_t *ctx, const cf_yfield_t *table, void *object, uint64_t seen);

#endif
