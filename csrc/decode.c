/*
 * decode.c - what the kernel says of one link, address or route: the
 * RTM_NEWLINK / RTM_NEWADDR / RTM_NEWROUTE messages of replies and dumps,
 * decoded into caller-owned structs with pn_attr_parse() (attr.c).
 * Attributes shorter than their type needs are ignored, as if absent.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/icmpv6.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>

#include "pn_internal.h"

/* The eight counters pn_link_info carries come first in every version of
 * struct rtnl_link_stats64: an older or newer kernel's struct is read up
 * to tx_dropped. */
#define PN_STATS64_MIN (offsetof(struct rtnl_link_stats64, tx_dropped) + sizeof(uint64_t))

static const uint16_t link_min[IFLA_MAX + 1] = {
    [IFLA_MTU] = 4, [IFLA_MASTER] = 4, [IFLA_GROUP] = 4, [IFLA_TXQLEN] = 4, [IFLA_LINK] = 4,
    [IFLA_STATS64] = PN_STATS64_MIN,
};

/* IFLA_LINKINFO { IFLA_INFO_KIND "veth" IFLA_INFO_DATA { ... } ...
 * IFLA_INFO_SLAVE_KIND "bridge" IFLA_INFO_SLAVE_DATA { IFLA_BRPORT_MODE u8 } }:
 * the link's kind and its options (pn_kind_attrs_get()), and the
 * hairpin mode of a bridge port.  A malformed nest is ignored: the link
 * itself is still described. */
static void link_info(const struct pn_attr *linkinfo, struct pn_link_info *out)
{
    static const uint16_t brport_min[IFLA_BRPORT_MAX + 1] = { [IFLA_BRPORT_MODE] = 1 };
    struct pn_attr info[IFLA_INFO_MAX + 1], port[IFLA_BRPORT_MAX + 1];
    const struct pn_attr *kind, *data;

    if (pn_attr_parse(linkinfo->data, linkinfo->len, NULL, IFLA_INFO_MAX, info))
        return;
    if (info[IFLA_INFO_KIND].data)
        pn_get_str(out->kind, sizeof(out->kind), &info[IFLA_INFO_KIND]);
    if (info[IFLA_INFO_DATA].data)      /* the kind's options */
        pn_kind_attrs_get(info[IFLA_INFO_DATA].data, info[IFLA_INFO_DATA].len, out);
    kind = &info[IFLA_INFO_SLAVE_KIND];
    data = &info[IFLA_INFO_SLAVE_DATA];
    if (!kind->data || kind->len < sizeof("bridge") || memcmp(kind->data, "bridge", sizeof("bridge")) ||
        !data->data)
        return;
    if (pn_attr_parse(data->data, data->len, brport_min, IFLA_BRPORT_MAX, port) == 0 &&
        port[IFLA_BRPORT_MODE].data)
        out->hairpin = port[IFLA_BRPORT_MODE].data[0] ? 1 : 0;
}

static void link_stats(const struct pn_attr *a, struct pn_link_info *out)
{
    struct rtnl_link_stats64 st;

    memset(&st, 0, sizeof(st));
    memcpy(&st, a->data, a->len < sizeof(st) ? a->len : sizeof(st));
    out->rx_packets = st.rx_packets;
    out->tx_packets = st.tx_packets;
    out->rx_bytes = st.rx_bytes;
    out->tx_bytes = st.tx_bytes;
    out->rx_errors = st.rx_errors;
    out->tx_errors = st.tx_errors;
    out->rx_dropped = st.rx_dropped;
    out->tx_dropped = st.tx_dropped;
    out->has_stats = 1;
}

/* IFLA_AF_SPEC { AF_INET6 { IFLA_INET6_ADDR_GEN_MODE u8 ... } ... }: how
 * the kernel makes the link's IPv6 link-local address; left -1 when the
 * link has no IPv6 (the kernel sends no AF_INET6 part then). */
static void link_af_spec(const struct pn_attr *spec, struct pn_link_info *out)
{
    static const uint16_t inet6_min[IFLA_INET6_MAX + 1] = { [IFLA_INET6_ADDR_GEN_MODE] = 1 };
    struct pn_attr af[AF_INET6 + 1], inet6[IFLA_INET6_MAX + 1];

    if (pn_attr_parse(spec->data, spec->len, NULL, AF_INET6, af) || !af[AF_INET6].data)
        return;
    if (pn_attr_parse(af[AF_INET6].data, af[AF_INET6].len, inet6_min, IFLA_INET6_MAX, inet6) == 0 &&
        inet6[IFLA_INET6_ADDR_GEN_MODE].data)
        out->addr_gen_mode = inet6[IFLA_INET6_ADDR_GEN_MODE].data[0];
}

/* Decode one RTM_NEWLINK message (header included) of `len` bytes. */
int pn_parse_link(const unsigned char *msg, uint32_t len, struct pn_link_info *out)
{
    return pn_parse_link_as(msg, len, RTM_NEWLINK, out);
}

/* ... of message type `msg_type` (RTM_NEWLINK or RTM_DELLINK: a notification). */
int pn_parse_link_as(const unsigned char *msg, uint32_t len, uint16_t msg_type,
                     struct pn_link_info *out)
{
    struct pn_attr tb[IFLA_MAX + 1];
    struct ifinfomsg ifi;
    int err;

    memset(out, 0, sizeof(*out));
    out->hairpin = -1;
    out->addr_gen_mode = -1;
    err = pn_msg_parse(msg, len, msg_type, &ifi, sizeof(ifi), link_min, IFLA_MAX, tb);
    if (err)
        return err;
    out->index = ifi.ifi_index;
    out->flags = ifi.ifi_flags;
    if (tb[IFLA_ADDRESS].data && tb[IFLA_ADDRESS].len <= sizeof(out->address)) {
        memcpy(out->address, tb[IFLA_ADDRESS].data, tb[IFLA_ADDRESS].len);
        out->address_len = tb[IFLA_ADDRESS].len;
    }
    if (tb[IFLA_IFNAME].data)
        pn_get_str(out->name, sizeof(out->name), &tb[IFLA_IFNAME]);
    if (tb[IFLA_MTU].data)
        out->mtu = pn_get_u32(&tb[IFLA_MTU]);
    if (tb[IFLA_MASTER].data)
        out->master = pn_get_u32(&tb[IFLA_MASTER]);
    if (tb[IFLA_GROUP].data)
        out->group = pn_get_u32(&tb[IFLA_GROUP]);
    if (tb[IFLA_TXQLEN].data)
        out->txqlen = pn_get_u32(&tb[IFLA_TXQLEN]);
    if (tb[IFLA_STATS64].data)
        link_stats(&tb[IFLA_STATS64], out);
    if (tb[IFLA_LINK].data)
        out->link_index = (int32_t)pn_get_u32(&tb[IFLA_LINK]);
    if (tb[IFLA_LINKINFO].data)
        link_info(&tb[IFLA_LINKINFO], out);
    if (tb[IFLA_AF_SPEC].data)
        link_af_spec(&tb[IFLA_AF_SPEC], out);
    return 0;
}

static const uint16_t addr_min[IFA_MAX + 1] = {
    [IFA_FLAGS] = 4,
    [IFA_CACHEINFO] = offsetof(struct ifa_cacheinfo, ifa_valid) + sizeof(uint32_t),
};

/* Decode one RTM_NEWADDR message (header included) of `len` bytes:
 * `ip addr show` of one address. */
int pn_parse_addr(const unsigned char *msg, uint32_t len, struct pn_addr_info *out)
{
    return pn_parse_addr_as(msg, len, RTM_NEWADDR, out);
}

/* ... of message type `msg_type` (RTM_NEWADDR or RTM_DELADDR: a notification). */
int pn_parse_addr_as(const unsigned char *msg, uint32_t len, uint16_t msg_type,
                     struct pn_addr_info *out)
{
    struct pn_attr tb[IFA_MAX + 1];
    struct ifaddrmsg ifa;
    int err;

    memset(out, 0, sizeof(*out));
    err = pn_msg_parse(msg, len, msg_type, &ifa, sizeof(ifa), addr_min, IFA_MAX, tb);
    if (err)
        return err;
    out->index = ifa.ifa_index;
    out->family = ifa.ifa_family;
    out->prefixlen = ifa.ifa_prefixlen;
    out->scope = ifa.ifa_scope;
    out->flags = tb[IFA_FLAGS].data ? pn_get_u32(&tb[IFA_FLAGS]) : ifa.ifa_flags;
    pn_get_ip(out->local, &out->local_len, sizeof(out->local), &tb[IFA_LOCAL]);
    pn_get_ip(out->address, &out->address_len, sizeof(out->address), &tb[IFA_ADDRESS]);
    pn_get_ip(out->broadcast, &out->broadcast_len, sizeof(out->broadcast), &tb[IFA_BROADCAST]);
    if (tb[IFA_LABEL].data) {
        pn_get_str(out->label, sizeof(out->label), &tb[IFA_LABEL]);
        out->has_label = 1;
    }
    if (tb[IFA_CACHEINFO].data) {
        struct ifa_cacheinfo ci;

        memcpy(&ci, tb[IFA_CACHEINFO].data, addr_min[IFA_CACHEINFO]);
        out->preferred_lft = ci.ifa_prefered;
        out->valid_lft = ci.ifa_valid;
        out->has_cacheinfo = 1;
    }
    return 0;
}

static const uint16_t route_min[RTA_MAX + 1] = {
    [RTA_TABLE] = 4, [RTA_OIF] = 4, [RTA_PRIORITY] = 4, [RTA_PREF] = 1,
    [RTA_CACHEINFO] = sizeof(struct rta_cacheinfo),
};

/* Whether attribute `type` of a route says something struct pn_route_info
 * does not hold (see its `unkept`). */
static int route_attr_unkept(int type, const struct pn_attr *a)
{
    struct rta_cacheinfo ci;

    switch (type) {
    case RTA_DST: case RTA_SRC: case RTA_GATEWAY: case RTA_PREFSRC:
    case RTA_OIF: case RTA_PRIORITY: case RTA_TABLE:
        return 0;
    case RTA_PREF:
        return *(const uint8_t *)a->data != ICMPV6_ROUTER_PREF_MEDIUM;
    case RTA_CACHEINFO:             /* counters, and an expiry if it has one */
        memcpy(&ci, a->data, sizeof(ci));
        return ci.rta_expires != 0;
    default:
        return 1;
    }
}

/* Decode one RTM_NEWROUTE message (header included) of `len` bytes:
 * `ip route show` of one route.  RTA_MULTIPATH is not decoded: has_multipath
 * says it was there (the next hops are then not in gateway/oif). */
int pn_parse_route(const unsigned char *msg, uint32_t len, struct pn_route_info *out)
{
    return pn_parse_route_as(msg, len, RTM_NEWROUTE, out);
}

/* ... of message type `msg_type` (RTM_NEWROUTE or RTM_DELROUTE: a notification). */
int pn_parse_route_as(const unsigned char *msg, uint32_t len, uint16_t msg_type,
                      struct pn_route_info *out)
{
    struct pn_attr tb[RTA_MAX + 1];
    struct rtmsg rtm;
    int err;

    memset(out, 0, sizeof(*out));
    err = pn_msg_parse(msg, len, msg_type, &rtm, sizeof(rtm), route_min, RTA_MAX, tb);
    if (err)
        return err;
    out->family = rtm.rtm_family;
    out->dst_len = rtm.rtm_dst_len;
    out->src_len = rtm.rtm_src_len;
    out->tos = rtm.rtm_tos;
    out->protocol = rtm.rtm_protocol;
    out->scope = rtm.rtm_scope;
    out->type = rtm.rtm_type;
    out->flags = rtm.rtm_flags;
    out->table = tb[RTA_TABLE].data ? pn_get_u32(&tb[RTA_TABLE]) : rtm.rtm_table;
    pn_get_ip(out->dst, &out->dst_alen, sizeof(out->dst), &tb[RTA_DST]);
    pn_get_ip(out->src, &out->src_alen, sizeof(out->src), &tb[RTA_SRC]);
    pn_get_ip(out->gateway, &out->gateway_alen, sizeof(out->gateway), &tb[RTA_GATEWAY]);
    pn_get_ip(out->prefsrc, &out->prefsrc_alen, sizeof(out->prefsrc), &tb[RTA_PREFSRC]);
    if (tb[RTA_OIF].data)
        out->oif = pn_get_u32(&tb[RTA_OIF]);
    if (tb[RTA_PRIORITY].data) {
        out->priority = pn_get_u32(&tb[RTA_PRIORITY]);
        out->has_priority = 1;
    }
    out->has_multipath = tb[RTA_MULTIPATH].data != NULL;
    for (int type = 1; type <= RTA_MAX; type++)
        if (tb[type].data && route_attr_unkept(type, &tb[type]))
            out->unkept |= type < 32 ? 1u << type : 1u;
    return 0;
}

/* The link notifications being collected by pn_link_events(). */
struct link_events {
    struct pn_link_event *out;
    uint32_t cap, n;
};

static int link_event(const unsigned char *msg, const struct nlmsghdr *h, void *ctx)
{
    struct link_events *ev = ctx;
    struct pn_link_event *e;
    struct ifinfomsg ifi;

    if (h->nlmsg_type != RTM_NEWLINK && h->nlmsg_type != RTM_DELLINK)
        return 0;
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(ifi)))
        return -EBADMSG;
    if (ev->n == ev->cap)
        return -ENOSPC;
    memcpy(&ifi, msg + NLMSG_HDRLEN, sizeof(ifi));
    e = &ev->out[ev->n++];
    e->type = h->nlmsg_type;
    e->family = ifi.ifi_family;
    e->unused = 0;
    e->index = ifi.ifi_index;
    e->flags = ifi.ifi_flags;
    return 0;
}

/* The RTM_NEWLINK/RTM_DELLINK messages of one received datagram (a
 * multicast notification, `ip monitor link`): type, family and index of
 * each, from the family header alone (pn_walk_msgs() checks each header's
 * length against the bytes there first). */
int pn_link_events(const unsigned char *data, uint32_t len, struct pn_link_event *out,
                   uint32_t cap)
{
    struct link_events ev = { out, cap, 0 };
    int err = pn_walk_msgs(data, len, link_event, &ev);

    return err ? err : (int)ev.n;
}
