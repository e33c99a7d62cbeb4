/* Listening sockets and "host:port" parsing shared by conflux and conflux-mock. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "cf_net.h"

int cf_listen_tcp(const char *host, uint16_t port, int reuseport, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    memset(&ss, 0, sizeof(ss));
    if (host == NULL || *host == '\0')
        host = "0.0.0.0";
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        sslen = sizeof(*sin);
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        sslen = sizeof(*sin6);
    } else {
        snprintf(err, errlen, "%s: not an IP address (listeners take numeric addresses)", host);
        return -1;
    }

    int fd, on = 1;
    if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    if (bind(fd, (struct sockaddr *)&ss, sslen) != 0) {
        snprintf(err, errlen, "cannot listen on %s:%u: %s", host, port, strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, 65535) != 0) {
        snprintf(err, errlen, "listen %s:%u: %s", host, port, strerror(errno));
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

int cf_parse_hostport(const char *s, char **host, uint16_t *port)
{
    const char *colon, *hend;
    *host = NULL;
    if (*s == '[') {
        if ((hend = strchr(s, ']')) == NULL || hend[1] != ':')
            return -1;
        colon = hend + 1;
        ++s;
    } else if ((colon = strrchr(s, ':')) == NULL) {
        colon = s - 1; /* a bare port */
        hend = s;
    } else {
        hend = colon;
    }
    const char *p = colon + 1;
    char *end;
    if (*p == '\0')
        return -1;
    unsigned long v = strtoul(p, &end, 10);
    if (*end != '\0' || v > 65535 || !(*p >= '0' && *p <= '9'))
        return -1;
    *port = (uint16_t)v;
    if (hend > s) {
        *host = strndup(s, (size_t)(hend - s));
    }
    return 0;
}

uint16_t cf_bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}
