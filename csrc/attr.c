/*
 * attr.c - the one walk over received netlink bytes (libmnl's
 * __mnl_cb_run() and mnl_attr_parse() are the model).  Every length is
 * checked against the bytes actually there before it is used: arbitrary
 * input gives a result or -EBADMSG, never an out-of-bounds read.
 *
 *   datagram:  | nlmsghdr | body ... |pad| nlmsghdr | body ... |pad| ...
 *   body:      | family header |pad| rtattr | payload |pad| rtattr | ...
 */
#include <errno.h>
#include <string.h>

#include "pn_internal.h"

/* Call fn for each message of a datagram, its header checked against the
 * bytes actually there first; fn returns 0 to go on, 1 to stop, or -errno.
 * Trailing bytes shorter than a header are ignored, as the kernel's own
 * netlink_rcv_skb() does.  Returns 0 or the first -errno (-EBADMSG for a
 * header whose length is below a header or past the datagram). */
int pn_walk_msgs(const unsigned char *data, uint32_t len, pn_msg_fn fn, void *ctx)
{
    if (len > PN_MAX_BUF)
        return -EBADMSG;
    while (len >= NLMSG_HDRLEN) {
        struct nlmsghdr h;
        uint32_t size;
        int rc;

        memcpy(&h, data, sizeof(h));
        if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > len)
            return -EBADMSG;
        rc = fn(data, &h, ctx);
        if (rc)
            return rc < 0 ? rc : 0;
        size = NLMSG_ALIGN(h.nlmsg_len);
        if (size >= len)
            break;
        data += size;
        len -= size;
    }
    return 0;
}

/*
 * Parse the attributes in [p, p + len) into tb[0 .. maxtype]: tb[type] is
 * the last attribute of that type (as the kernel's nla_parse() keeps it),
 * {NULL, 0} if there is none.  Types above maxtype are skipped (a newer
 * kernel's additions); an attribute whose payload is shorter than
 * minlen[type] (minlen may be NULL: no minimum) is skipped too, so a
 * decoder may read minlen[type] bytes of any attribute it finds.  The
 * NLA_F_NESTED / NLA_F_NET_BYTEORDER bits are masked off the type.
 * Trailing bytes shorter than an attribute header are ignored.
 * Returns 0, or -EBADMSG for an rta_len below a header or past len (tb is
 * then partly filled: the caller discards it).
 */
int pn_attr_parse(const unsigned char *p, uint32_t len, const uint16_t *minlen,
                  uint16_t maxtype, struct pn_attr *tb)
{
    memset(tb, 0, sizeof(*tb) * ((size_t)maxtype + 1));
    while (len >= RTA_LENGTH(0)) {
        struct rtattr a;
        uint16_t type;
        uint32_t size, plen;

        memcpy(&a, p, sizeof(a));
        if (a.rta_len < RTA_LENGTH(0) || a.rta_len > len)
            return -EBADMSG;
        type = (uint16_t)(a.rta_type & NLA_TYPE_MASK);
        plen = (uint32_t)(a.rta_len - RTA_LENGTH(0));
        if (type <= maxtype && (!minlen || plen >= minlen[type])) {
            tb[type].data = p + RTA_LENGTH(0);
            tb[type].len = plen;
        }
        size = PN_ALIGN(a.rta_len);
        if (size >= len)
            break;
        p += size;
        len -= size;
    }
    return 0;
}

/*
 * Check one message (header included) of `len` bytes: its type is `type`,
 * its nlmsg_len is within len and holds the family header of fixed_len
 * bytes, which is copied to *fixed.  Sets [*attrs, *attrs + *attrs_len) to
 * the attributes after the (aligned) family header.  Returns 0 or -EBADMSG.
 */
static int msg_fixed(const unsigned char *msg, uint32_t len, uint16_t type, void *fixed,
                     uint32_t fixed_len, const unsigned char **attrs, uint32_t *attrs_len)
{
    struct nlmsghdr h;
    uint32_t head = NLMSG_LENGTH(fixed_len);

    if (len < head || len > PN_MAX_BUF)
        return -EBADMSG;
    memcpy(&h, msg, sizeof(h));
    if (h.nlmsg_type != type || h.nlmsg_len < head || h.nlmsg_len > len)
        return -EBADMSG;
    memcpy(fixed, msg + NLMSG_HDRLEN, fixed_len);
    head = NLMSG_ALIGN(head);
    *attrs = msg + head;
    *attrs_len = h.nlmsg_len > head ? h.nlmsg_len - head : 0;
    return 0;
}

/*
 * One message of `type` (header included) of `len` bytes: its family header
 * of fixed_len bytes copied to *fixed, its attributes parsed into
 * tb[0 .. maxtype] as pn_attr_parse() does.  Returns 0 or -EBADMSG (another
 * type, or a length that does not fit).
 */
int pn_msg_parse(const unsigned char *msg, uint32_t len, uint16_t type, void *fixed,
                 uint32_t fixed_len, const uint16_t *minlen, uint16_t maxtype,
                 struct pn_attr *tb)
{
    const unsigned char *attrs;
    uint32_t alen;
    int err = msg_fixed(msg, len, type, fixed, fixed_len, &attrs, &alen);

    return err ? err : pn_attr_parse(attrs, alen, minlen, maxtype, tb);
}

uint32_t pn_get_u32(const struct pn_attr *a)
{
    uint32_t v;

    memcpy(&v, a->data, sizeof(v));
    return v;
}

/* Copy a string attribute into dst[size], always NUL-terminated. */
void pn_get_str(char *dst, size_t size, const struct pn_attr *a)
{
    size_t n = strnlen((const char *)a->data, a->len);

    if (n >= size)
        n = size - 1;
    memcpy(dst, a->data, n);
    dst[n] = '\0';
}

/* Copy an address attribute of at most size bytes to dst; *dst_len gets its
 * length (0, absent, when the attribute is missing or longer than dst). */
void pn_get_ip(unsigned char *dst, uint8_t *dst_len, size_t size, const struct pn_attr *a)
{
    *dst_len = 0;
    if (!a->data || a->len == 0 || a->len > size)
        return;
    memcpy(dst, a->data, a->len);
    *dst_len = (uint8_t)a->len;
}
