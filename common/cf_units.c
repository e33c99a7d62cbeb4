/* Parsing of the units the YAML speaks: durations (250ms, 2s, 1m, 1h) and sizes (512KiB, 64MiB, bytes). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "cf_units.h"

/* Reads the leading decimal digits of s into *v; returns the number of digits, 0 on none or on overflow. */
static size_t parse_digits(const char *s, uint64_t *v)
{
    size_t i = 0;
    *v = 0;
    for (; isdigit((unsigned char)s[i]); ++i) {
        if (*v > (UINT64_MAX - 9) / 10)
            return 0;
        *v = *v * 10 + (uint64_t)(s[i] - '0');
    }
    return i;
}

static int scale(uint64_t v, uint64_t unit, uint64_t *out)
{
    if (unit != 0 && v > UINT64_MAX / unit)
        return -1;
    *out = v * unit;
    return 0;
}

int cf_parse_duration(const char *s, uint64_t *ms)
{
    static const struct {
        const char *suffix;
        uint64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}};
    uint64_t v;
    size_t n = parse_digits(s, &v);
    if (n == 0)
        return -1;
    if (s[n] == '\0')
        return v == 0 ? (*ms = 0, 0) : -1; /* a bare number is ambiguous, except 0 */
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); ++i)
        if (strcmp(s + n, units[i].suffix) == 0)
            return scale(v, units[i].ms, ms);
    return -1;
}

uint64_t cf_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int cf_parse_fraction(const char *s, double *v)
{
    /* strtod alone also takes hex floats, "nan", "infinity" and leading spaces: only [+]digits[.digits][e[+-]digits] */
    const char *p = s;
    if (*p == '+')
        ++p;
    if (!isdigit((unsigned char)*p) && !(*p == '.' && isdigit((unsigned char)p[1])))
        return -1;
    for (; *p != '\0'; ++p)
        if (!isdigit((unsigned char)*p) && *p != '.' && *p != 'e' && *p != 'E' &&
            !((*p == '-' || *p == '+') && (p[-1] | 0x20) == 'e'))
            return -1;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (end == s || *end != '\0' || (errno == ERANGE && d != 0.0) || !(d >= 0.0 && d <= 1.0))
        return -1;
    *v = d;
    return 0;
}

int cf_parse_size(const char *s, uint64_t *bytes)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {{"", 1},
                 {"B", 1},
                 {"KiB", 1024},
                 {"MiB", 1024 * 1024},
                 {"GiB", 1024 * 1024 * 1024},
                 {"KB", 1000},
                 {"MB", 1000 * 1000},
                 {"GB", 1000 * 1000 * 1000}};
    uint64_t v;
    size_t n = parse_digits(s, &v);
    if (n == 0)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); ++i)
        if (strcmp(s + n, units[i].suffix) == 0)
            return scale(v, units[i].mult, bytes);
    return -1;
}

const char *cf_format_duration(uint64_t ms, char *buf, unsigned long bufsize)
{
    if (ms != 0 && ms % (3600 * 1000) == 0)
        snprintf(buf, bufsize, "%lluh", (unsigned long long)(ms / (3600 * 1000)));
    else if (ms != 0 && ms % (60 * 1000) == 0)
        snprintf(buf, bufsize, "%llum", (unsigned long long)(ms / (60 * 1000)));
    else if (ms != 0 && ms % 1000 == 0)
        snprintf(buf, bufsize, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(buf, bufsize, "%llums", (unsigned long long)ms);
    return buf;
}
