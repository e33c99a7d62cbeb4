/* Shaping of each call's JSON (target, allow/deny, rename) and the merge of all calls into one answer. No I/O. */
#include <string.h>
#include "merge.h"

/* --- shaping ---------------------------------------------------------------------------------------------------- */

/* Whether the key (of length len, possibly with NULs) is one of the NUL-terminated strings of `list`. */
static int key_in_list(const char *key, size_t len, const cf_strlist_t *list)
{
    for (size_t i = 0; i != list->n; ++i) {
        if (strlen(list->items[i]) == len && memcmp(list->items[i], key, len) == 0)
            return 1;
    }
    return 0;
}

static int key_equals(const char *key, size_t len, const char *s)
{
    return strlen(s) == len && memcmp(s, key, len) == 0;
}

/*
 * A new object with the members of `obj` whose key is (keep=1) or is not (keep=0) in `list`, in the original
 * order. Returns a new reference, or NULL when out of memory.
 */
static json_t *filter_object(json_t *obj, const cf_strlist_t *list, int keep)
{
    json_t *out = json_object();
    if (out == NULL)
        return NULL;
    for (void *it = json_object_iter(obj); it != NULL; it = json_object_iter_next(obj, it)) {
        const char *key = json_object_iter_key(it);
        size_t len = json_object_iter_key_len(it);
        if (key_in_list(key, len, list) != keep)
            continue;
        /* keys of a parsed document are valid UTF-8 already */
        if (json_object_setn_nocheck(out, key, len, json_object_iter_value(it)) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* The rename whose `from` is this key, or NULL. */
static const cf_rename_t *rename_from(const cf_call_t *call, const char *key, size_t len)
{
    for (size_t i = 0; i != call->num_rename; ++i) {
        if (key_equals(key, len, call->rename[i].from))
            return &call->rename[i];
    }
    return NULL;
}

/* Whether this key is the `to` of a rename whose `from` is present in obj (then the renamed member replaces it). */
static int is_overwritten(const cf_call_t *call, json_t *obj, const char *key, size_t len)
{
    for (size_t i = 0; i != call->num_rename; ++i) {
        if (key_equals(key, len, call->rename[i].to) && json_object_get(obj, call->rename[i].from) != NULL)
            return 1;
    }
    return 0;
}

/* A new object: `obj` with the call's renames applied all at once. Returns a new reference or NULL (no memory). */
static json_t *rename_object(const cf_call_t *call, json_t *obj)
{
    json_t *out = json_object();
    if (out == NULL)
        return NULL;
    for (void *it = json_object_iter(obj); it != NULL; it = json_object_iter_next(obj, it)) {
        const char *key = json_object_iter_key(it);
        size_t len = json_object_iter_key_len(it);
        json_t *value = json_object_iter_value(it);
        const cf_rename_t *r = rename_from(call, key, len);
        int ret;
        if (r != NULL) {
            /* `to` comes from the config (libyaml has checked it is UTF-8); jansson checks again */
            ret = json_object_set(out, r->to, value);
        } else if (is_overwritten(call, obj, key, len)) {
            continue;
        } else {
            ret = json_object_setn_nocheck(out, key, len, value);
        }
        if (ret != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

enum { OP_ALLOW, OP_DENY, OP_RENAME };

/* Applies one object operation to an object. Returns a new reference, or NULL when out of memory. */
static json_t *apply_to_object(const cf_call_t *call, int op, json_t *obj)
{
    switch (op) {
    case OP_ALLOW:
        return filter_object(obj, &call->allow, 1);
    case OP_DENY:
        return filter_object(obj, &call->deny, 0);
    default:
        return rename_object(call, obj);
    }
}

/*
 * Applies one object operation to a value: to an object, to each object element of an array; anything else is kept
 * as is. Returns a new reference, or NULL when out of memory.
 */
static json_t *apply(const cf_call_t *call, int op, json_t *value)
{
    if (json_is_object(value))
        return apply_to_object(call, op, value);
    if (!json_is_array(value))
        return json_incref(value);
    json_t *out = json_array();
    if (out == NULL)
        return NULL;
    size_t i;
    json_t *elem;
    json_array_foreach(value, i, elem)
    {
        json_t *shaped = json_is_object(elem) ? apply_to_object(call, op, elem) : json_incref(elem);
        if (shaped == NULL || json_array_append_new(out, shaped) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* Replaces o->value by `next` (a new reference), releasing the old one. Returns -1 when next is NULL (no memory). */
static int replace(cf_outcome_t *o, json_t *next)
{
    if (next == NULL)
        return -1;
    json_decref(o->value);
    o->value = next;
    return 0;
}

int cf_shape(const cf_call_t *call, cf_outcome_t *o)
{
    if (o->value == NULL)
        return 0;

    if (call->target != NULL && call->target[0] != NULL) {
        /* borrowed walk; a missing field gives JSON null (json_null() is a singleton: no allocation) */
        json_t *cur = o->value;
        for (size_t i = 0; call->target[i] != NULL && cur != NULL; ++i)
            cur = json_is_object(cur) ? json_object_get(cur, call->target[i]) : NULL;
        /* take the new reference before releasing the document that holds it */
        json_t *next = cur != NULL ? json_incref(cur) : json_null();
        replace(o, next);
    }

    if (call->allow.n != 0) {
        if (replace(o, apply(call, OP_ALLOW, o->value)) != 0)
            return -1;
    } else if (call->deny.n != 0) {
        if (replace(o, apply(call, OP_DENY, o->value)) != 0)
            return -1;
    }

    if (call->num_rename != 0) {
        if (replace(o, apply(call, OP_RENAME, o->value)) != 0)
            return -1;
    }
    return 0;
}

/* --- merging ---------------------------------------------------------------------------------------------------- */

static json_t *merge_group(const cf_route_t *route, cf_outcome_t *outcomes)
{
    json_t *doc = json_object();
    if (doc == NULL)
        return NULL;
    for (size_t i = 0; i != route->num_calls; ++i) {
        const cf_call_t *call = &route->calls[i];
        json_t *value = outcomes[i].value; /* a failed call's default, if it has one */
        if (value == NULL) {
            if (call->on_error == CF_ON_ERROR_OMIT)
                continue;
            value = json_null();
        }
        if (json_object_set(doc, call->name, value) != 0) {
            json_decref(doc);
            return NULL;
        }
    }
    return doc;
}

static json_t *merge_members(const cf_route_t *route, cf_outcome_t *outcomes)
{
    /* a value that is not an object has no members to merge: that call fails (docs/http.md, "The answer") */
    for (size_t i = 0; i != route->num_calls; ++i) {
        cf_outcome_t *o = &outcomes[i];
        if (o->value != NULL && !json_is_object(o->value)) {
            json_decref(o->value);
            /* a copy, never a reference to the config's value, which every thread shares (fanout.c give_default) */
            o->value = route->calls[i].default_value != NULL ? json_deep_copy(route->calls[i].default_value) : NULL;
            o->reason = CF_REASON_NOT_AN_OBJECT;
        }
    }

    json_t *doc = json_object();
    if (doc == NULL)
        return NULL;
    for (size_t i = 0; i != route->num_calls; ++i) {
        json_t *obj = outcomes[i].value;
        if (obj == NULL)
            continue;
        for (void *it = json_object_iter(obj); it != NULL; it = json_object_iter_next(obj, it)) {
            const char *key = json_object_iter_key(it);
            size_t len = json_object_iter_key_len(it);
            /* CF_CONFLICT_ERROR at run time: keys the loader could not foresee; the first value stays */
            if (route->on_conflict != CF_CONFLICT_LAST && json_object_getn(doc, key, len) != NULL)
                continue;
            if (json_object_setn_nocheck(doc, key, len, json_object_iter_value(it)) != 0) {
                json_decref(doc);
                return NULL;
            }
        }
    }
    return doc;
}

json_t *cf_merge(const cf_route_t *route, cf_outcome_t *outcomes)
{
    return route->merge == CF_MERGE_MERGE ? merge_members(route, outcomes) : merge_group(route, outcomes);
}

/* --- failures --------------------------------------------------------------------------------------------------- */

int cf_failure_status(const cf_outcome_t *o)
{
    return cf_reason_required_status(o->reason, o->status);
}

json_t *cf_failure_body(const cf_call_t *call, const cf_outcome_t *o)
{
    char buf[CF_REASON_TEXT_SIZE];
    return json_pack("{s:s, s:s, s:o}", "error", cf_reason_text(o->reason, o->status, buf), "call", call->name, "status",
                     o->status != 0 ? json_integer(o->status) : json_null());
}
