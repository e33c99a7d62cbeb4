/* Span export: OTLP/HTTP JSON, encoded on the loop for sampled requests only, POSTed in batches by a thread of its own. */
#ifndef CF_OTLP_H
#define CF_OTLP_H

#include <stddef.h>
#include <stdint.h>
#include "cf_buf.h"
#include "config.h"
#include "record.h"

/** The instrumentation scope of every span: {"name":"conflux","version":cf_version}. */
#define CF_OTLP_SCOPE "conflux"

/** The most bytes of a request's path that go into its span's url.path (cut before a UTF-8 character, never in one). */
#define CF_OTLP_MAX_PATH 1024

/**
 * Starts the exporter thread with `c`'s tracing: settings; tracing.queue sizes its queue for good (a reload does not
 * change it). Returns 0, or -1 with a message in err. Call once, before the loops run.
 */
int cf_otlp_start(const cf_config_t *c, char *err, size_t errlen);

/** Takes a reloaded config's tracing: settings but queue (the next batch uses them). Safe from the event loop. */
void cf_otlp_configure(const cf_config_t *c);

/** Non-zero while spans are wanted (tracing.otlp is set). Cheap; any thread. */
int cf_otlp_enabled(void);

/**
 * Exports a finished request whose trace is sampled: its spans are encoded here and handed to the exporter, or
 * dropped and counted when its queue is full. Never blocks on I/O. Called on the event loop.
 */
void cf_otlp_request(const cf_request_record_t *rec);

/**
 * Sends what is queued (each request bounded by min(tracing.timeout, 1s), none once one has failed), then joins the
 * exporter. For a graceful stop; safe to call twice.
 */
void cf_otlp_stop(void);

/**
 * Appends the spans of `rec` to `out` as OTLP JSON Span objects separated by commas (no brackets): the request's
 * (SERVER, span id `span_id`, ending at `end_ns`), then one per upstream attempt (CLIENT) whose times were kept. Times
 * are cf_now_ns plus `unix_offset_ns` (the wall clock's lead over the monotonic one). Returns the number of spans.
 * Pure: the unit tests call it.
 */
size_t cf_otlp_encode_spans(cf_buf_t *out, const cf_request_record_t *rec, uint64_t span_id, uint64_t end_ns,
                            int64_t unix_offset_ns);

/** The start of an export request's body, up to the opening bracket of its spans. */
void cf_otlp_encode_open(cf_buf_t *out, const char *service_name);
/** The end of an export request's body, after its spans. */
void cf_otlp_encode_close(cf_buf_t *out);

#endif
