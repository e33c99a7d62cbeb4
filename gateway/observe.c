/* What the request path reports once a request ends: metrics, and one JSON access-log line formatted on the loop. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include "accesslog.h"
#include "jsonout.h"
#include "metrics.h"
#include "observe.h"

static void json_cstr(cf_buf_t *b, const char *s)
{
    if (s == NULL)
        cf_buf_appends(b, "null");
    else
        cf_json_write_string(b, s, strlen(s));
}

/* milliseconds with microsecond precision */
static void json_ms(cf_buf_t *b, uint64_t ns)
{
    cf_buf_append_fixed(b, ns / 1000, 3);
}

/*
 * One line: {"time","client","method","path","route","status","duration","calls":[{"name","backend","status",
 * "duration","cache","reason","attempts","hedges"[,"elements":{"ok","total"} for a foreach call]}]}. The path is logged without its
 * query string: queries carry tokens and personal data more often than paths do, and the route tells which endpoint it was.
 */
/* The start of a line: {"time":...,"client":... (the peer's address, or null). */
static void line_start(cf_buf_t *b, struct sockaddr *peer, socklen_t peerlen)
{
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    cf_buf_appendf(b, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\"", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                   tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
    char host[NI_MAXHOST];
    cf_buf_appends(b, ",\"client\":");
    if (peerlen != 0 && h2o_socket_getnumerichost(peer, peerlen, host) != SIZE_MAX)
        json_cstr(b, host);
    else
        cf_buf_appends(b, "null");
}

static void format_line(cf_buf_t *b, const cf_request_record_t *rec)
{
    h2o_req_t *req = rec->req;
    struct sockaddr_storage ss;
    socklen_t sslen = req->conn->callbacks->get_peername != NULL ? req->conn->callbacks->get_peername(req->conn, (void *)&ss) : 0;
    line_start(b, (void *)&ss, sslen);

    size_t pathlen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    cf_buf_appends(b, ",\"method\":");
    cf_json_write_string(b, req->method.base, req->method.len);
    cf_buf_appends(b, ",\"path\":");
    cf_json_write_string(b, req->path.base, pathlen);
    cf_buf_appends(b, ",\"route\":");
    json_cstr(b, rec->route != NULL ? rec->route->pattern.src : NULL);
    cf_buf_appendf(b, ",\"status\":%d,\"duration\":", rec->status);
    json_ms(b, rec->duration_ns);
    cf_buf_appends(b, ",\"calls\":[");
    for (size_t i = 0; i != rec->num_calls; ++i) {
        const cf_call_record_t *c = &rec->calls[i];
        cf_buf_appends(b, i == 0 ? "{\"name\":" : ",{\"name\":");
        json_cstr(b, c->name);
        cf_buf_appends(b, ",\"backend\":");
        json_cstr(b, c->backend);
        cf_buf_appends(b, ",\"status\":");
        if (c->status != 0)
            cf_buf_appendf(b, "%d", c->status);
        else
            cf_buf_appends(b, "null");
        cf_buf_appends(b, ",\"duration\":");
        if (c->duration_ns != 0)
            json_ms(b, c->duration_ns);
        else
            cf_buf_appends(b, "null");
        cf_buf_appends(b, ",\"cache\":");
        json_cstr(b, cf_cache_state_name(c->cache.state));
        char reason[CF_REASON_TEXT_SIZE];
        cf_buf_appends(b, ",\"reason\":");
        json_cstr(b, c->reason != CF_REASON_NONE ? cf_reason_text(c->reason, c->status, reason) : NULL);
        cf_buf_appendf(b, ",\"attempts\":%u,\"hedges\":%u", c->attempts, c->hedges);
        if (c->foreach)
            cf_buf_appendf(b, ",\"elements\":{\"ok\":%zu,\"total\":%zu}", c->elements_ok, c->elements);
        cf_buf_appendc(b, '}');
    }
    cf_buf_appends(b, "]}\n");
}

void cf_observe_refusal(h2o_socket_t *sock, int status, const char *reason)
{
    if (!cf_accesslog_enabled())
        return;
    struct sockaddr_storage ss;
    socklen_t sslen = h2o_socket_getpeername(sock, (void *)&ss);
    cf_buf_t line = CF_BUF_INIT;
    line_start(&line, (void *)&ss, sslen);
    cf_buf_appendf(&line, ",\"method\":null,\"path\":null,\"route\":null,\"status\":%d", status);
    cf_buf_appends(&line, ",\"duration\":0.000,\"calls\":[],\"refused\":");
    json_cstr(&line, reason);
    cf_buf_appends(&line, "}\n");
    cf_accesslog_write(line.base, line.len);
}

void cf_observe_request(const cf_request_record_t *rec)
{
    cf_metrics_observe(rec);
    if (!cf_accesslog_enabled())
        return;
    cf_buf_t line = CF_BUF_INIT;
    cf_buf_reserve(&line, 512 + rec->num_calls * 128); /* one allocation for most lines */
    format_line(&line, rec);
    cf_accesslog_write(line.base, line.len); /* the queue takes the buffer */
}
