/*
 * neigh.c - neighbours (ARP/NDP) and forwarding entries (bridge/vxlan FDB):
 * the RTM_NEWNEIGH / RTM_DELNEIGH / RTM_GETNEIGH requests, and the decoder
 * of what the kernel says of one entry (replies, dumps, notifications).
 *
 *   ndmsg { family, ifindex, state, flags, type }
 *   NDA_DST ip  NDA_LLADDR mac  NDA_VLAN u16  NDA_PORT be16  NDA_VNI u32
 *   NDA_IFINDEX u32  NDA_MASTER u32 ...
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <linux/neighbour.h>

#include "pn_internal.h"

#define PN_REQ (NLM_F_REQUEST | NLM_F_ACK)
#define ETH_ALEN_ 6             /* an FDB entry's key: an Ethernet address */

_Static_assert(sizeof(((struct pn_neigh_info *)0)->dst) == sizeof(struct in6_addr), "in6_addr");
_Static_assert(sizeof(((struct pn_neigh_info *)0)->lladdr) == 32, "MAX_ADDR_LEN");
_Static_assert(sizeof(((struct pn_neigh_spec *)0)->lladdr) == 32, "MAX_ADDR_LEN");

static uint32_t ip_size(uint8_t family)
{
    return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

/* Whether the kernel could mean this entry: a neighbour has a destination
 * of its family; an FDB entry has a MAC and, if any, an IPv4 or IPv6 dst. */
static int neigh_valid(const struct pn_neigh_spec *n)
{
    if (n->index <= 0 || n->lladdr_len > sizeof(n->lladdr))
        return 0;
    if (n->family == AF_BRIDGE)
        return n->lladdr_len == ETH_ALEN_ && (n->dst_len == 0 || n->dst_len == 4 ||
                                              n->dst_len == 16);
    return ip_size(n->family) && n->dst_len == ip_size(n->family);
}

static int put_u16(struct pn_buf *b, uint16_t type, uint16_t value)
{
    return pn_attr_put(b, type, &value, sizeof(value));
}

/* NDA_DST and NDA_LLADDR in the order iproute2 sends them: `bridge fdb`
 * (AF_BRIDGE) the MAC first, `ip neigh` the address first. */
static int put_neigh_addrs(struct pn_buf *b, const struct pn_neigh_spec *n)
{
    int fdb = n->family == AF_BRIDGE, err = 0;

    if (fdb && n->lladdr_len)
        err = pn_attr_put(b, NDA_LLADDR, n->lladdr, n->lladdr_len);
    if (!err && n->dst_len)
        err = pn_attr_put(b, NDA_DST, n->dst, n->dst_len);
    if (!err && !fdb && n->lladdr_len)
        err = pn_attr_put(b, NDA_LLADDR, n->lladdr, n->lladdr_len);
    return err;
}

/* The attributes of one entry: its addresses, then the options present. */
static int put_neigh_attrs(struct pn_buf *b, const struct pn_neigh_spec *n)
{
    uint32_t f = n->fields;
    int err = put_neigh_addrs(b, n);

    if (!err && (f & PN_NEIGH_VLAN))
        err = put_u16(b, NDA_VLAN, n->vlan);
    if (!err && (f & PN_NEIGH_PORT))
        err = put_u16(b, NDA_PORT, htons(n->port));
    if (!err && (f & PN_NEIGH_VNI))
        err = pn_attr_put_u32(b, NDA_VNI, n->vni);
    if (!err && (f & PN_NEIGH_IFINDEX))
        err = pn_attr_put_u32(b, NDA_IFINDEX, n->via);
    if (!err && (f & PN_NEIGH_MASTER))
        err = pn_attr_put_u32(b, NDA_MASTER, n->master);
    return err;
}

/* The end of an encoder: the message at start closed, or (err) dropped. */
static int finish(struct pn_buf *b, int start, int err)
{
    if (err) {
        b->len = (uint32_t)start;
        return err;
    }
    return pn_msg_end(b, (uint32_t)start);
}

int pn_neigh_msg(struct pn_buf *b, uint16_t type, uint16_t nlflags, uint32_t seq,
                 const struct pn_neigh_spec *n)
{
    struct ndmsg ndm;
    int start;

    if (!neigh_valid(n))
        return -EINVAL;
    memset(&ndm, 0, sizeof(ndm));
    ndm.ndm_family = n->family;
    ndm.ndm_ifindex = n->index;
    ndm.ndm_state = n->state;
    ndm.ndm_flags = n->flags;
    start = pn_msg_start(b, type, nlflags | PN_REQ, seq, &ndm, sizeof(ndm));
    if (start < 0)
        return start;
    return finish(b, start, put_neigh_attrs(b, n));
}

int pn_neigh_dump_msg(struct pn_buf *b, uint32_t seq, uint8_t family, int32_t index,
                      uint32_t master, uint8_t flags)
{
    struct ndmsg ndm;
    int start, err = 0;

    if (index < 0 || (family != AF_BRIDGE && family != AF_UNSPEC && !ip_size(family)) ||
        (flags & ~NTF_PROXY) || (flags && family == AF_BRIDGE))
        return -EINVAL;
    memset(&ndm, 0, sizeof(ndm));
    ndm.ndm_family = family;
    ndm.ndm_flags = flags;              /* NTF_PROXY: the proxy entries (pneigh_dump_table()) */
    if (family == AF_BRIDGE)
        ndm.ndm_ifindex = index;        /* rtnl_fdb_dump(): the port or device */
    start = pn_msg_start(b, RTM_GETNEIGH, NLM_F_DUMP | PN_REQ, seq, &ndm, sizeof(ndm));
    if (start < 0)
        return start;
    if (family != AF_BRIDGE && index)
        err = pn_attr_put_u32(b, NDA_IFINDEX, (uint32_t)index);
    if (!err && master)
        err = pn_attr_put_u32(b, NDA_MASTER, master);
    return finish(b, start, err);
}

static const uint16_t neigh_min[NDA_MAX + 1] = {
    [NDA_VLAN] = 2, [NDA_PORT] = 2, [NDA_VNI] = 4, [NDA_SRC_VNI] = 4, [NDA_IFINDEX] = 4,
    [NDA_MASTER] = 4, [NDA_PROBES] = 4, [NDA_FLAGS_EXT] = 4, [NDA_NH_ID] = 4,
    [NDA_CACHEINFO] = offsetof(struct nda_cacheinfo, ndm_updated) + sizeof(uint32_t),
};

static uint16_t get_u16(const struct pn_attr *a)
{
    uint16_t v;

    memcpy(&v, a->data, sizeof(v));
    return v;
}

/* A u32 attribute into *value, *has set when it was there. */
static void get_opt_u32(const struct pn_attr *a, uint8_t *has, uint32_t *value)
{
    *has = a->data != NULL;
    if (*has)
        *value = pn_get_u32(a);
}

static void neigh_cacheinfo(const struct pn_attr *a, struct pn_neigh_info *out)
{
    struct nda_cacheinfo ci;

    memcpy(&ci, a->data, neigh_min[NDA_CACHEINFO]);
    out->confirmed = ci.ndm_confirmed;
    out->used = ci.ndm_used;
    out->updated = ci.ndm_updated;
    out->has_cacheinfo = 1;
}

/* The u16 attributes: NDA_VLAN (host order) and NDA_PORT (network order). */
static void neigh_u16s(struct pn_attr *tb, struct pn_neigh_info *out)
{
    if (tb[NDA_VLAN].data) {
        out->vlan = get_u16(&tb[NDA_VLAN]);
        out->has_vlan = 1;
    }
    if (tb[NDA_PORT].data) {
        out->port = ntohs(get_u16(&tb[NDA_PORT]));
        out->has_port = 1;
    }
}

int pn_parse_neigh(const unsigned char *msg, uint32_t len, struct pn_neigh_info *out)
{
    struct pn_attr tb[NDA_MAX + 1];
    struct nlmsghdr h;
    struct ndmsg ndm;
    int err;

    memset(out, 0, sizeof(*out));
    if (len < NLMSG_HDRLEN)
        return -EBADMSG;
    memcpy(&h, msg, sizeof(h));
    if (h.nlmsg_type != RTM_NEWNEIGH && h.nlmsg_type != RTM_DELNEIGH)
        return -EBADMSG;
    err = pn_msg_parse(msg, len, h.nlmsg_type, &ndm, sizeof(ndm), neigh_min, NDA_MAX, tb);
    if (err)
        return err;
    out->type = h.nlmsg_type;
    out->family = ndm.ndm_family;
    out->flags = ndm.ndm_flags;
    out->state = ndm.ndm_state;
    out->ndm_type = ndm.ndm_type;
    out->index = ndm.ndm_ifindex;
    pn_get_ip(out->dst, &out->dst_len, sizeof(out->dst), &tb[NDA_DST]);
    if (tb[NDA_LLADDR].data && tb[NDA_LLADDR].len <= sizeof(out->lladdr)) {
        memcpy(out->lladdr, tb[NDA_LLADDR].data, tb[NDA_LLADDR].len);
        out->lladdr_len = (uint8_t)tb[NDA_LLADDR].len;
    }
    neigh_u16s(tb, out);
    get_opt_u32(&tb[NDA_VNI], &out->has_vni, &out->vni);
    get_opt_u32(&tb[NDA_SRC_VNI], &out->has_src_vni, &out->src_vni);
    get_opt_u32(&tb[NDA_IFINDEX], &out->has_via, &out->via);
    get_opt_u32(&tb[NDA_MASTER], &out->has_master, &out->master);
    get_opt_u32(&tb[NDA_PROBES], &out->has_probes, &out->probes);
    get_opt_u32(&tb[NDA_FLAGS_EXT], &out->has_flags_ext, &out->flags_ext);
    get_opt_u32(&tb[NDA_NH_ID], &out->has_nh_id, &out->nh_id);
    if (tb[NDA_CACHEINFO].data)
        neigh_cacheinfo(&tb[NDA_CACHEINFO], out);
    return 0;
}
