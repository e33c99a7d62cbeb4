/* Just enough of klib's khash.h for <h2o/http2_internal.h>, which includes it while Debian's libh2o-dev does not ship it.
 * conflux only reads a few scalar members of h2o_http2_conn_t (see conn.c); its `streams` member is a pointer, so the
 * struct's layout does not depend on what the hash table looks like. The lookup macros below back one inline function
 * of that header that conflux never calls; they find nothing. */
#ifndef CF_COMPAT_KHASH_H
#define CF_COMPAT_KHASH_H

typedef unsigned khiter_t;
#define KHASH_MAP_INIT_INT64(name, khval_t) typedef struct kh_##name##_s kh_##name##_t;
#define khash_t(name) kh_##name##_t
#define kh_get(name, h, k) ((void)(h), (void)(k), (khiter_t)0)
#define kh_end(h) ((void)(h), (khiter_t)0)
#define kh_val(h, x) ((void)(h), (void)(x), (void *)0)

#endif
