/*
 * rtnl.c - rtnetlink request encoders.  Each appends exactly one complete
 * message to the buffer, or (on any error) nothing at all.  NLM_F_REQUEST
 * and NLM_F_ACK are always set: every request gets exactly one ACK.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/if_addr.h>
#include <linux/veth.h>

#include "pn_internal.h"

#define PN_REQ (NLM_F_REQUEST | NLM_F_ACK)

static int drop(struct pn_buf *b, int start, int err)
{
    b->len = (uint32_t)start;
    return err;
}

static void fill_ifinfomsg(struct ifinfomsg *ifi, const struct pn_link_spec *l)
{
    memset(ifi, 0, sizeof(*ifi));
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = l->index;
    ifi->ifi_flags = l->flags;
    ifi->ifi_change = l->change;
}

/* IFLA_AF_SPEC { AF_INET6 { IFLA_INET6_ADDR_GEN_MODE mode } }: how the
 * kernel makes the link's IPv6 link-local address (`ip link set DEV
 * addrgenmode MODE`); IN6_ADDR_GEN_MODE_NONE: none, so no DAD, RS or MLD. */
static int put_addr_gen_mode(struct pn_buf *b, uint8_t mode)
{
    int spec, inet6, err;

    spec = pn_nest_start(b, IFLA_AF_SPEC);
    if (spec < 0)
        return spec;
    inet6 = pn_nest_start(b, AF_INET6);
    if (inet6 < 0)
        return inet6;
    err = pn_attr_put(b, IFLA_INET6_ADDR_GEN_MODE, &mode, sizeof(mode));
    if (!err)
        err = pn_nest_end(b, (uint32_t)inet6);
    if (!err)
        err = pn_nest_end(b, (uint32_t)spec);
    return err;
}

/* The attributes of one link that are present in l->fields. */
static int put_link_attrs(struct pn_buf *b, const struct pn_link_spec *l)
{
    uint32_t f = l->fields;
    int err = 0;

    if (f & PN_LINK_NAME) {
        if (!l->name[0] || strnlen(l->name, sizeof(l->name)) >= sizeof(l->name))
            return -EINVAL;
        err = pn_attr_put_str(b, IFLA_IFNAME, l->name);
    }
    if (!err && (f & PN_LINK_MTU))
        err = pn_attr_put_u32(b, IFLA_MTU, l->mtu);
    if (!err && (f & PN_LINK_TXQLEN))
        err = pn_attr_put_u32(b, IFLA_TXQLEN, l->txqlen);
    if (!err && (f & PN_LINK_ADDRESS)) {
        if (l->address_len == 0 || l->address_len > sizeof(l->address))
            return -EINVAL;
        err = pn_attr_put(b, IFLA_ADDRESS, l->address, l->address_len);
    }
    if (!err && (f & PN_LINK_GROUP))
        err = pn_attr_put_u32(b, IFLA_GROUP, l->group);
    if (!err && (f & PN_LINK_MASTER))
        err = pn_attr_put_u32(b, IFLA_MASTER, l->master);
    if (!err && (f & PN_LINK_NS_PID))
        err = pn_attr_put_u32(b, IFLA_NET_NS_PID, (uint32_t)l->ns_pid);
    if (!err && (f & PN_LINK_NS_FD))
        err = pn_attr_put_u32(b, IFLA_NET_NS_FD, (uint32_t)l->ns_fd);
    if (!err && (f & PN_LINK_EXT_MASK))
        err = pn_attr_put_u32(b, IFLA_EXT_MASK, l->ext_mask);
    if (!err && (f & PN_LINK_ADDR_GEN_MODE))
        err = put_addr_gen_mode(b, l->addr_gen_mode);
    if (!err && (f & PN_LINK_LINK))     /* -- link kinds (issue 16) -- */
        err = pn_attr_put_u32(b, IFLA_LINK, l->link);
    return err;
}

/* Header, ifinfomsg and attributes of one link; returns the message offset. */
static int link_start(struct pn_buf *b, uint16_t type, uint16_t nlflags,
                      uint32_t seq, const struct pn_link_spec *l)
{
    struct ifinfomsg ifi;
    int start, err;

    fill_ifinfomsg(&ifi, l);
    start = pn_msg_start(b, type, nlflags | PN_REQ, seq, &ifi, sizeof(ifi));
    if (start < 0)
        return start;
    err = put_link_attrs(b, l);
    return err ? drop(b, start, err) : start;
}

/* RTM_NEWLINK / SETLINK / DELLINK / GETLINK for one link:
 * `ip link set|del|show DEV ...`. */
int pn_link_msg(struct pn_buf *b, uint16_t type, uint16_t nlflags, uint32_t seq,
                const struct pn_link_spec *link)
{
    int start = link_start(b, type, nlflags, seq, link);

    if (start < 0)
        return start;
    return pn_msg_end(b, (uint32_t)start);
}

/* Open a nest, storing its offset in *at; returns 0 or -errno. */
static int nest(struct pn_buf *b, uint16_t type, int *at)
{
    *at = pn_nest_start(b, type);
    return *at < 0 ? *at : 0;
}

/*
 * RTM_NEWLINK for a veth pair: `ip link add HOST type veth peer name PEER`.
 *
 *   ifinfomsg(host) IFLA_IFNAME ... IFLA_LINKINFO {
 *       IFLA_INFO_KIND "veth"
 *       IFLA_INFO_DATA { VETH_INFO_PEER { ifinfomsg(peer) IFLA_IFNAME ... } } }
 *
 * The peer's part (namespace, MTU, flags) applies to the peer alone, so it
 * can be born inside another namespace, configured and up.
 */
int pn_veth_msg(struct pn_buf *b, uint16_t nlflags, uint32_t seq,
                const struct pn_link_spec *host, const struct pn_link_spec *peer)
{
    struct ifinfomsg ifi;
    int start, info = 0, data = 0, pinfo = 0, err;

    start = link_start(b, RTM_NEWLINK, nlflags, seq, host);
    if (start < 0)
        return start;
    fill_ifinfomsg(&ifi, peer);
    err = nest(b, IFLA_LINKINFO, &info);
    if (!err)
        err = pn_attr_put_str(b, IFLA_INFO_KIND, "veth");
    if (!err)
        err = nest(b, IFLA_INFO_DATA, &data);
    if (!err)
        err = nest(b, VETH_INFO_PEER, &pinfo);
    if (!err)
        err = pn_put_extra(b, &ifi, sizeof(ifi));
    if (!err)
        err = put_link_attrs(b, peer);
    if (!err)
        err = pn_nest_end(b, (uint32_t)pinfo);
    if (!err)
        err = pn_nest_end(b, (uint32_t)data);
    if (!err)
        err = pn_nest_end(b, (uint32_t)info);
    if (err)
        return drop(b, start, err);
    return pn_msg_end(b, (uint32_t)start);
}

/*
 * RTM_NEWLINK for a link of a kind that needs no options of its own:
 * `ip link add NAME [mtu M] [up] type KIND` (a bridge, say).
 *
 *   ifinfomsg IFLA_IFNAME ... IFLA_LINKINFO { IFLA_INFO_KIND KIND }
 */
int pn_kind_msg(struct pn_buf *b, uint16_t nlflags, uint32_t seq,
                const struct pn_link_spec *link, const char *kind)
{
    int start, info = 0, err;

    start = link_start(b, RTM_NEWLINK, nlflags, seq, link);
    if (start < 0)
        return start;
    err = nest(b, IFLA_LINKINFO, &info);
    if (!err)
        err = pn_attr_put_str(b, IFLA_INFO_KIND, kind);
    if (!err)
        err = pn_nest_end(b, (uint32_t)info);
    if (err)
        return drop(b, start, err);
    return pn_msg_end(b, (uint32_t)start);
}

static uint32_t addr_size(uint8_t family)
{
    return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

/* RTM_NEWADDR / DELADDR: `ip addr add|del LOCAL/PREFIX [broadcast BRD] dev IDX
 * [nodad ...]`: IFA_FLAGS only when flags are given (the kernel takes it
 * over ifa_flags). */
int pn_addr_msg(struct pn_buf *b, uint16_t type, uint16_t nlflags, uint32_t seq,
                const struct pn_addr_spec *a)
{
    uint32_t n = addr_size(a->family);
    struct ifaddrmsg ifa;
    int start, err;

    if (!n || a->prefixlen > n * 8 || a->index <= 0 ||
        (a->has_broadcast && a->family != AF_INET) ||
        (a->label[0] && (a->family != AF_INET || !memchr(a->label, 0, sizeof(a->label)))))
        return -EINVAL;
    memset(&ifa, 0, sizeof(ifa));
    ifa.ifa_family = a->family;
    ifa.ifa_prefixlen = a->prefixlen;
    ifa.ifa_scope = a->scope;
    ifa.ifa_index = (uint32_t)a->index;
    start = pn_msg_start(b, type, nlflags | PN_REQ, seq, &ifa, sizeof(ifa));
    if (start < 0)
        return start;
    err = pn_attr_put(b, IFA_LOCAL, a->local, n);
    if (!err)
        err = pn_attr_put(b, IFA_ADDRESS, a->has_peer ? a->peer : a->local, n);
    if (!err && a->has_broadcast)
        err = pn_attr_put(b, IFA_BROADCAST, a->broadcast, n);
    if (!err && a->flags)
        err = pn_attr_put_u32(b, IFA_FLAGS, a->flags);
    if (!err && a->label[0])
        err = pn_attr_put(b, IFA_LABEL, a->label, (uint32_t)strlen(a->label) + 1);
    if (err)
        return drop(b, start, err);
    return pn_msg_end(b, (uint32_t)start);
}

/* RTM_NEWROUTE / DELROUTE: `ip route add|replace|del DST/LEN [via GW]
 * [dev OIF] [src PREFSRC] [metric PRIORITY] [table TABLE]`.  A table that
 * does not fit rtm_table's 8 bits goes in RTA_TABLE, rtm_table then
 * RT_TABLE_UNSPEC, as iproute2 sends it. */
int pn_route_msg(struct pn_buf *b, uint16_t type, uint16_t nlflags, uint32_t seq,
                 const struct pn_route_spec *r)
{
    uint32_t n = addr_size(r->family);
    struct rtmsg rtm;
    int start, err = 0;

    if (!n || r->dst_len > n * 8 || r->oif < 0)
        return -EINVAL;
    memset(&rtm, 0, sizeof(rtm));
    rtm.rtm_family = r->family;
    rtm.rtm_dst_len = r->dst_len;
    rtm.rtm_table = r->table <= UINT8_MAX ? (uint8_t)r->table : RT_TABLE_UNSPEC;
    rtm.rtm_protocol = r->protocol;
    rtm.rtm_scope = r->scope;
    rtm.rtm_type = r->type;
    rtm.rtm_flags = r->flags;
    start = pn_msg_start(b, type, nlflags | PN_REQ, seq, &rtm, sizeof(rtm));
    if (start < 0)
        return start;
    if (r->dst_len)
        err = pn_attr_put(b, RTA_DST, r->dst, n);
    if (!err && r->has_gateway)
        err = pn_attr_put(b, RTA_GATEWAY, r->gateway, n);
    if (!err && r->oif)
        err = pn_attr_put_u32(b, RTA_OIF, (uint32_t)r->oif);
    if (!err && r->has_prefsrc)
        err = pn_attr_put(b, RTA_PREFSRC, r->prefsrc, n);
    if (!err && r->has_priority)
        err = pn_attr_put_u32(b, RTA_PRIORITY, r->priority);
    if (!err && r->table > UINT8_MAX)
        err = pn_attr_put_u32(b, RTA_TABLE, r->table);
    if (err)
        return drop(b, start, err);
    return pn_msg_end(b, (uint32_t)start);
}

/*
 * RTM_NEWLINK (no NLM_F_CREATE) changing one u8 option of a bridge port:
 * `ip link set DEV type bridge_slave hairpin on`.
 *
 *   ifinfomsg IFLA_IFNAME ... IFLA_LINKINFO {
 *       IFLA_INFO_SLAVE_KIND "bridge"  IFLA_INFO_SLAVE_DATA { attr: u8 } }
 */
int pn_brport_msg(struct pn_buf *b, uint32_t seq, const struct pn_link_spec *link,
                  uint16_t attr, uint8_t value)
{
    int start, info = 0, data = 0, err;

    start = link_start(b, RTM_NEWLINK, 0, seq, link);
    if (start < 0)
        return start;
    err = nest(b, IFLA_LINKINFO, &info);
    if (!err)
        err = pn_attr_put_str(b, IFLA_INFO_SLAVE_KIND, "bridge");
    if (!err)
        err = nest(b, IFLA_INFO_SLAVE_DATA, &data);
    if (!err)
        err = pn_attr_put(b, attr, &value, sizeof(value));
    if (!err)
        err = pn_nest_end(b, (uint32_t)data);
    if (!err)
        err = pn_nest_end(b, (uint32_t)info);
    if (err)
        return drop(b, start, err);
    return pn_msg_end(b, (uint32_t)start);
}

/*
 * A dump request: RTM_GETLINK, RTM_GETADDR or RTM_GETROUTE with NLM_F_DUMP
 * for every object of family (AF_UNSPEC: every family), its family header
 * whole and zero apart from the family (what the kernel's strict checking,
 * NETLINK_GET_STRICT_CHK, wants; `ip addr show` / `ip route show table all`).
 */
int pn_dump_msg(struct pn_buf *b, uint16_t type, uint32_t seq, uint8_t family)
{
    union {
        struct ifinfomsg ifi;
        struct ifaddrmsg ifa;
        struct rtmsg rtm;
    } fixed;
    uint32_t size;
    int start;

    memset(&fixed, 0, sizeof(fixed));
    switch (type) {
    case RTM_GETLINK:
        fixed.ifi.ifi_family = family;
        size = sizeof(fixed.ifi);
        break;
    case RTM_GETADDR:
        fixed.ifa.ifa_family = family;
        size = sizeof(fixed.ifa);
        break;
    case RTM_GETROUTE:
        fixed.rtm.rtm_family = family;
        size = sizeof(fixed.rtm);
        break;
    default:
        return -EINVAL;
    }
    start = pn_msg_start(b, type, NLM_F_DUMP | PN_REQ, seq, &fixed, size);
    if (start < 0)
        return start;
    return pn_msg_end(b, (uint32_t)start);
}
