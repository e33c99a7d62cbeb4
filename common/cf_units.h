/* Parsing of the units the YAML speaks: durations (250ms, 2s, 1m, 1h) and sizes (512KiB, 64MiB, bytes). */
#ifndef CF_UNITS_H
#define CF_UNITS_H

#include <stdint.h>

/** CLOCK_MONOTONIC in nanoseconds: the one clock that request times, span times, queue waits and fetch deadlines use. */
uint64_t cf_mono_ns(void);
/** "250ms", "2s", "1m", "1h" (and "0") -> milliseconds. Returns 0, or -1 when not a duration or overflowing. */
int cf_parse_duration(const char *s, uint64_t *ms);
/**
 * A fraction from 0 to 1 written in decimal ("0", "0.25", "1", "5e-3") -> *v. Returns 0, or -1 for anything else:
 * out of range, hex floats ("0x1p-1"), "nan", "inf", spaces, trailing bytes. A value too small to represent is 0.
 */
int cf_parse_fraction(const char *s, double *v);
/** "123", "512KiB", "64MiB", "1GiB" (also KB/MB/GB as powers of 1000) -> bytes. Returns 0 or -1. */
int cf_parse_size(const char *s, uint64_t *bytes);
/** Writes a duration the way the YAML spells it ("1500ms" -> "1500ms", "2000" -> "2s"); returns buf. */
const char *cf_format_duration(uint64_t ms, char *buf, unsigned long bufsize);

#endif
