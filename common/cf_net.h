/* Listening sockets and "host:port" parsing shared by conflux and conflux-mock. */
#ifndef CF_NET_H
#define CF_NET_H

#include <stddef.h>
#include <stdint.h>

/**
 * Opens a non-blocking listening TCP socket on host:port (host NULL or "" means 0.0.0.0; "[::]" or "::" is
 * IPv6). SO_REUSEADDR always, SO_REUSEPORT when reuseport is set. Returns the fd, or -1 with a message.
 */
int cf_listen_tcp(const char *host, uint16_t port, int reuseport, char *err, size_t errlen);
/** Splits "host:port", "[v6]:port" or ":port"/"port" into a malloc'ed host (NULL when absent) and a port. */
int cf_parse_hostport(const char *s, char **host, uint16_t *port);
/** The port a listening fd is bound to (for port 0), or 0. */
uint16_t cf_bound_port(int fd);

#endif
