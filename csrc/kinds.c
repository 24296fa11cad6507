/*
 * kinds.c - links of a kind with options of its own (macvlan, ipvlan,
 * vlan, vxlan, bridge...): `ip link add NAME [link PARENT] type KIND
 * OPTIONS` and `ip link set NAME type KIND OPTIONS`.
 *
 * A kind's options are the attributes of IFLA_LINKINFO/IFLA_INFO_DATA.
 * Rather than one spec struct per kind, the caller gives a small array of
 * typed attributes (struct pn_kind_attr: attribute type, wire format,
 * value), filled from the header constants; this file checks and encodes
 * them, and decodes a reply's IFLA_INFO_DATA into the same array.
 *
 *   ifinfomsg IFLA_IFNAME ... [IFLA_LINK parent] IFLA_LINKINFO {
 *       IFLA_INFO_KIND "KIND"  [IFLA_INFO_DATA { attr ... }] }
 */
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>

#include "pn_internal.h"

_Static_assert(sizeof(((struct pn_link_info *)0)->info_data) ==
               PN_KIND_ATTRS_MAX * sizeof(struct pn_kind_attr), "PN_KIND_ATTRS_MAX");

/* 0 if the kernel could mean the attribute, else -EINVAL: a type 0 or
 * with an NLA_F_* bit, a value its kind cannot hold, an unknown kind. */
static int kind_attr_check(const struct pn_kind_attr *a)
{
    if (a->type == 0 || (a->type & (NLA_F_NESTED | NLA_F_NET_BYTEORDER)))
        return -EINVAL;
    switch (a->kind) {
    case PN_ATTR_FLAG:
    case PN_ATTR_U32:
        return 0;
    case PN_ATTR_U8:
        return a->value > UINT8_MAX ? -EINVAL : 0;
    case PN_ATTR_U16:
    case PN_ATTR_BE16:
        return a->value > UINT16_MAX ? -EINVAL : 0;
    case PN_ATTR_BYTES:
        return a->len == 0 || a->len > sizeof(a->bytes) ? -EINVAL : 0;
    default:
        return -EINVAL;
    }
}

/* Append one attribute that kind_attr_check() passed; 0 or -errno. */
static int put_kind_attr(struct pn_buf *b, const struct pn_kind_attr *a)
{
    uint8_t u8 = (uint8_t)a->value;
    uint16_t u16 = (uint16_t)a->value;

    switch (a->kind) {
    case PN_ATTR_FLAG:
        return pn_attr_put(b, a->type, NULL, 0);
    case PN_ATTR_U8:
        return pn_attr_put(b, a->type, &u8, sizeof(u8));
    case PN_ATTR_U16:
        return pn_attr_put(b, a->type, &u16, sizeof(u16));
    case PN_ATTR_BE16:
        u16 = htons(u16);
        return pn_attr_put(b, a->type, &u16, sizeof(u16));
    case PN_ATTR_U32:
        return pn_attr_put_u32(b, a->type, a->value);
    default:
        return pn_attr_put(b, a->type, a->bytes, a->len);
    }
}

/* IFLA_INFO_DATA { attrs[0 .. count) }; 0 or -errno. */
static int put_info_data(struct pn_buf *b, const struct pn_kind_attr *attrs, uint32_t count)
{
    int data, err = 0;

    data = pn_nest_start(b, IFLA_INFO_DATA);
    if (data < 0)
        return data;
    for (uint32_t i = 0; i < count && !err; i++)
        err = put_kind_attr(b, &attrs[i]);
    return err ? err : pn_nest_end(b, (uint32_t)data);
}

int pn_kind_data_msg(struct pn_buf *b, uint16_t nlflags, uint32_t seq,
                     const struct pn_link_spec *link, const char *kind,
                     const struct pn_kind_attr *attrs, uint32_t count)
{
    uint32_t mark = b->len;     /* where this message starts: dropped on failure */
    int info, err;

    if (!kind[0] || strnlen(kind, IFNAMSIZ) >= IFNAMSIZ || count > PN_KIND_ATTRS_MAX ||
        (count && !attrs))
        return -EINVAL;
    for (uint32_t i = 0; i < count; i++)     /* all checked before anything is written */
        if (kind_attr_check(&attrs[i]))
            return -EINVAL;
    err = pn_link_msg(b, RTM_NEWLINK, nlflags, seq, link);  /* the link's part, then */
    if (err)                                                /* its linkinfo, appended */
        return err;
    info = pn_nest_start(b, IFLA_LINKINFO);
    err = info < 0 ? info : pn_attr_put_str(b, IFLA_INFO_KIND, kind);
    if (!err && count)
        err = put_info_data(b, attrs, count);
    if (!err)
        err = pn_nest_end(b, (uint32_t)info);
    if (!err)
        err = pn_msg_end(b, mark);
    if (err)
        b->len = mark;
    return err;
}

/* One attribute of a reply's IFLA_INFO_DATA, payload p[0 .. len), into *out. */
static void get_kind_attr(uint16_t type, const unsigned char *p, uint32_t len,
                          struct pn_kind_attr *out)
{
    uint16_t u16;
    uint32_t u32;

    memset(out, 0, sizeof(*out));
    out->type = type;
    out->len = (uint8_t)len;
    memcpy(out->bytes, p, len);
    out->kind = PN_ATTR_BYTES;
    if (len == 1) {
        out->kind = PN_ATTR_U8;
        out->value = p[0];
    } else if (len == 2) {
        memcpy(&u16, p, sizeof(u16));
        out->kind = PN_ATTR_U16;
        out->value = u16;
    } else if (len == 4) {
        memcpy(&u32, p, sizeof(u32));
        out->kind = PN_ATTR_U32;
        out->value = u32;
    }
}

/* The attributes of IFLA_INFO_DATA (payload p[0 .. len)) of 1 to 16
 * bytes, in order, into out->info_data (at most PN_KIND_ATTRS_MAX); the
 * NLA_F_* bits masked off the type.  A length that does not fit ends the
 * walk: what came before is kept. */
void pn_kind_attrs_get(const unsigned char *p, uint32_t len, struct pn_link_info *out)
{
    struct rtattr a;
    uint32_t plen, size;

    out->info_data_n = 0;
    while (len >= RTA_LENGTH(0) && out->info_data_n < PN_KIND_ATTRS_MAX) {
        memcpy(&a, p, sizeof(a));
        if (a.rta_len < RTA_LENGTH(0) || a.rta_len > len)
            return;
        plen = (uint32_t)(a.rta_len - RTA_LENGTH(0));
        if (plen >= 1 && plen <= sizeof(out->info_data[0].bytes))
            get_kind_attr((uint16_t)(a.rta_type & NLA_TYPE_MASK), p + RTA_LENGTH(0), plen,
                          &out->info_data[out->info_data_n++]);
        size = PN_ALIGN(a.rta_len);
        if (size >= len)
            return;
        p += size;
        len -= size;
    }
}
