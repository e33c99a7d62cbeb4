/* A per-loop set of h2o_timeout_t, one per distinct duration: h2o 2.2.5 timeouts have a fixed delay each. */
#ifndef CF_TIMEOUTS_H
#define CF_TIMEOUTS_H

#include <stdint.h>
#include <h2o.h>

/** Owned by one event loop; never shared across threads. */
typedef struct st_cf_timeouts_t {
    h2o_loop_t *loop;
    struct st_cf_timeout_slot_t *slots; /* few: durations come from the config */
    size_t num_slots, cap;
} cf_timeouts_t;

void cf_timeouts_init(cf_timeouts_t *t, h2o_loop_t *loop);
/** Disposes every timeout; no entry may still be linked. */
void cf_timeouts_dispose(cf_timeouts_t *t);
/** Links `entry` (whose cb is set) to fire after `ms` milliseconds; the entry must not be linked already. */
void cf_timeouts_link(cf_timeouts_t *t, uint64_t ms, h2o_timeout_entry_t *entry);

#endif
