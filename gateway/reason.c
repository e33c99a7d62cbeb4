/* The failure reasons of a call and how each is reported: one table. */
#include <string.h>
#include "reason.h"

/*
 * One row per reason: its name; its RFC 9209 §2.3 error type (a connect timeout is reported as connection_refused like
 * a refusal: the reason does not tell them apart); the status of the answer when a required call fails with it; its
 * metric label. not_an_object fails a call only once the merge runs, after the required calls were looked at, so the
 * answer stays 200 (docs/http.md).
 */
const cf_reason_info_t cf_reasons[CF_NUM_REASONS] = {
    [CF_REASON_NONE] = {"ok", NULL, 200, "ok"},
    [CF_REASON_TIMEOUT] = {"timeout", "http_response_timeout", 504, "timeout"},
    [CF_REASON_DEADLINE] = {"deadline", "http_response_timeout", 504, "deadline"},
    [CF_REASON_CONNECT_FAILED] = {"connect_failed", "connection_refused", 502, "connect_failed"},
    [CF_REASON_RESET] = {"reset", "connection_terminated", 502, "reset"},
    [CF_REASON_TOO_LARGE] = {"too_large", "http_response_body_size", 502, "too_large"},
    [CF_REASON_BAD_RESPONSE] = {"bad_response", "http_protocol_error", 502, "bad_response"},
    [CF_REASON_BAD_REQUEST] = {"bad_request", "proxy_internal_error", 502, "bad_request"},
    [CF_REASON_STATUS] = {"status_NNN", NULL, 0, NULL},
    [CF_REASON_INVALID_JSON] = {"invalid_json", "http_protocol_error", 502, "invalid_json"},
    [CF_REASON_NOT_AN_OBJECT] = {"not_an_object", "http_protocol_error", 502, "not_an_object"},
    [CF_REASON_MISSING_PARAM] = {"missing_param", "http_request_error", 502, "missing_param"},
    [CF_REASON_BAD_PARAM] = {"bad_param", "http_request_error", 502, "bad_param"},
    [CF_REASON_CIRCUIT_OPEN] = {"circuit_open", "destination_unavailable", 502, "circuit_open"},
    [CF_REASON_CANCELLED] = {"cancelled", NULL, 502, "cancelled"},
    [CF_REASON_NOT_AN_ARRAY] = {"not_an_array", "http_protocol_error", 502, "not_an_array"},
};

const char *cf_reason_text(cf_reason_t reason, int status, char buf[CF_REASON_TEXT_SIZE])
{
    if (reason != CF_REASON_STATUS)
        return (unsigned)reason < CF_NUM_REASONS ? cf_reasons[reason].name : "unknown";
    static const char prefix[] = "status_";
    char *p = buf + sizeof(prefix) - 1;
    unsigned n = status > 0 && status <= 999 ? (unsigned)status : 0;
    memcpy(buf, prefix, sizeof(prefix) - 1);
    p[0] = (char)('0' + n / 100);
    p[1] = (char)('0' + n / 10 % 10);
    p[2] = (char)('0' + n % 10);
    p[3] = '\0';
    return buf;
}

int cf_reason_required_status(cf_reason_t reason, int status)
{
    if (reason == CF_REASON_STATUS)
        return status >= 400 && status <= 499 ? status : 502;
    return (unsigned)reason < CF_NUM_REASONS ? cf_reasons[reason].required_status : 502;
}

const char *cf_reason_proxy_error(cf_reason_t reason)
{
    return (unsigned)reason < CF_NUM_REASONS ? cf_reasons[reason].proxy_error : "proxy_internal_error";
}

/* the status classes, after the reasons in the result indices */
static const char *const classes[] = {"status_other", "status_1xx", "status_2xx", "status_3xx", "status_4xx", "status_5xx"};

size_t cf_reason_result(cf_reason_t reason, int status)
{
    if (reason == CF_REASON_NONE) /* a complete exchange; for a pass-through route that may still be an error status */
        return status >= 400 && status <= 599 ? CF_NUM_REASONS + (size_t)status / 100 : CF_REASON_NONE;
    if (reason == CF_REASON_STATUS || (unsigned)reason >= CF_NUM_REASONS)
        return CF_NUM_REASONS + (status >= 100 && status <= 599 ? (size_t)status / 100 : 0);
    return reason;
}

const char *cf_reason_result_label(size_t result)
{
    if (result >= CF_NUM_REASONS)
        return classes[result - CF_NUM_REASONS < sizeof(classes) / sizeof(classes[0]) ? result - CF_NUM_REASONS : 0];
    return cf_reasons[result].metric != NULL ? cf_reasons[result].metric : classes[0];
}

const char *cf_reason_metric(cf_reason_t reason, int status)
{
    return cf_reason_result_label(cf_reason_result(reason, status));
}
