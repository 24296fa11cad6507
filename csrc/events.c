/*
 * events.c - notifications (`ip monitor`): the link, address, route and
 * neighbour messages the kernel multicasts to a subscribed socket, decoded
 * into whole records by the decoders of replies (decode.c), which read the
 * RTM_DEL* of their kind as well.  A kind is one case of event_body().
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/neighbour.h>
#include <linux/sockios.h>

#include "pn_internal.h"

/* PN_EVENT_MSG_MIN (pn.h) is the shortest message recorded. */
_Static_assert(PN_EVENT_MSG_MIN == NLMSG_LENGTH(sizeof(struct ifaddrmsg)), "ifaddrmsg");
_Static_assert(PN_EVENT_MSG_MIN <= NLMSG_LENGTH(sizeof(struct ifinfomsg)), "ifinfomsg");
_Static_assert(PN_EVENT_MSG_MIN <= NLMSG_LENGTH(sizeof(struct rtmsg)), "rtmsg");
_Static_assert(PN_EVENT_MSG_MIN <= NLMSG_LENGTH(sizeof(struct ndmsg)), "ndmsg");

/* recv() calls one pn_events_recv() makes at most: a bound far above what a
 * receive buffer holds between two reads. */
#define PN_EVENTS_READS (1 << 20)

struct events_walk {
    struct pn_event *out;
    uint32_t cap, n;
};

/* Decode one message of a kind events carry into body; 1 for a message of
 * another kind (skipped), 0, or -EBADMSG. */
static int event_body(const unsigned char *msg, const struct nlmsghdr *h, union pn_event_body *body)
{
    switch (h->nlmsg_type) {
    case RTM_NEWLINK: case RTM_DELLINK:
        return pn_parse_link_as(msg, h->nlmsg_len, h->nlmsg_type, &body->link);
    case RTM_NEWADDR: case RTM_DELADDR:
        return pn_parse_addr_as(msg, h->nlmsg_len, h->nlmsg_type, &body->addr);
    case RTM_NEWROUTE: case RTM_DELROUTE:
        return pn_parse_route_as(msg, h->nlmsg_len, h->nlmsg_type, &body->route);
    case RTM_NEWNEIGH: case RTM_DELNEIGH:
        return pn_parse_neigh(msg, h->nlmsg_len, &body->neigh);
    }
    return 1;
}

static int event_msg(const unsigned char *msg, const struct nlmsghdr *h, void *ctx)
{
    struct events_walk *w = ctx;
    union pn_event_body body;
    struct pn_event *e;
    int rc = event_body(msg, h, &body);

    if (rc)
        return rc > 0 ? 0 : rc;
    if (w->n == w->cap)
        return -ENOSPC;
    e = &w->out[w->n++];
    e->type = h->nlmsg_type;
    e->family = msg[NLMSG_HDRLEN];      /* every family header starts with it */
    e->unused = 0;
    memcpy(&e->body, &body, sizeof(body));
    return 0;
}

int pn_parse_events(const unsigned char *data, uint32_t len, struct pn_event *out, uint32_t cap)
{
    struct events_walk w = { out, cap, 0 };
    int err = pn_walk_msgs(data, len, event_msg, &w);

    return err ? err : (int)w.n;
}

int pn_events_recv(int fd, unsigned char *buf, uint32_t bufcap, struct pn_event *out,
                   uint32_t cap, uint32_t *n, uint32_t *truncated)
{
    uint32_t room = bufcap / PN_EVENT_MSG_MIN + 1, from_kernel;

    if (*n > cap || bufcap > PN_MAX_BUF)
        return -EINVAL;
    for (int reads = 0; reads < PN_EVENTS_READS; reads++) {
        int got, count;

        if (cap - *n < room)
            return 1;
        got = pn_recv(fd, buf, bufcap, &from_kernel);
        if (got == -EAGAIN)
            return 0;
        if (got < 0)
            return got;
        if ((uint32_t)got > bufcap) {
            *truncated = (uint32_t)got;
            return -EMSGSIZE;
        }
        if (!from_kernel)
            continue;
        count = pn_parse_events(buf, (uint32_t)got, out + *n, cap - *n);
        if (count < 0)
            return count;
        *n += (uint32_t)count;
    }
    return 1;
}

int pn_socket_netns(int fd)
{
    int ns = ioctl(fd, SIOCGSKNS);

    return ns < 0 ? -errno : ns;
}
