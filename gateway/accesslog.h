/* The access log: JSON lines handed by the event loops to one writer thread through a bounded queue. */
#ifndef CF_ACCESSLOG_H
#define CF_ACCESSLOG_H

#include <stddef.h>

/** At most this many lines (and CF_ACCESSLOG_MAX_BYTES bytes) wait for the writer; beyond, lines are dropped. */
#define CF_ACCESSLOG_MAX_LINES 16384
#define CF_ACCESSLOG_MAX_BYTES (16 << 20)

/**
 * Opens the log (`path`: a file, appended to; "-": stderr; NULL: no log for now) and starts the writer thread.
 * Returns 0, or -1 with a message in err (the file cannot be opened). Call once, before the loops run.
 */
int cf_accesslog_start(const char *path, char *err, size_t errlen);

/** Non-zero while lines are wanted (a log is configured). Cheap; any thread. */
int cf_accesslog_enabled(void);

/**
 * Queues one line (`len` bytes, the newline included) and takes ownership of `line` (malloc'ed; freed here or by the
 * writer). Never blocks on I/O: when the queue is full the line is dropped and counted
 * (conflux_access_log_dropped_total). Any thread.
 */
void cf_accesslog_write(char *line, size_t len);

/**
 * Asks the writer to reopen the log after rotation, or to switch to `path` (a reload may change it; NULL stops
 * logging). The writer does the open on its own thread; if it fails, it says so on stderr and keeps the old file.
 * Safe from the event loop (not from a signal handler).
 */
void cf_accesslog_reopen(const char *path);

/** Writes every queued line, closes the file and joins the writer. For a graceful stop; safe to call twice. */
void cf_accesslog_stop(void);

#endif
