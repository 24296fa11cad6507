/* pn_internal.h - what every C source of the core includes: the public
 * interface (pn.h, which has no #include of its own since cffi reads it
 * verbatim) and the helpers the sources share. */
#ifndef PN_INTERNAL_H
#define PN_INTERNAL_H

#include <stdint.h>
#include <stddef.h>
#include <linux/if.h>
#include <linux/in6.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>

#include "pn.h"

/* The array sizes pn.h spells as numbers, checked against the kernel's. */
_Static_assert(sizeof(((struct pn_link_info *)0)->name) == IFNAMSIZ, "IFNAMSIZ");
_Static_assert(sizeof(((struct pn_addr_info *)0)->label) == IFNAMSIZ, "IFNAMSIZ");
_Static_assert(sizeof(((struct pn_addr_info *)0)->local) == sizeof(struct in6_addr), "in6_addr");
_Static_assert(sizeof(((struct pn_route_info *)0)->dst) == sizeof(struct in6_addr), "in6_addr");
_Static_assert(sizeof(((struct pn_route_spec *)0)->dst) == sizeof(struct in6_addr), "in6_addr");
_Static_assert(sizeof(((struct pn_link_info *)0)->address) == 32, "MAX_ADDR_LEN");

/* The smallest part of a dump: an RTM_NEWADDR with no attributes (the
 * family headers of links and routes are longer).  A datagram of n bytes
 * holds at most n / PN_DUMP_PART_MIN + 1 parts, so pn_dump_recv() wants
 * that much room in the dump's array before it reads one. */
#define PN_DUMP_PART_MIN NLMSG_LENGTH(sizeof(struct ifaddrmsg))

/* The bytes an attribute (or message) of payload length n occupies. */
#define PN_ALIGN(n) (((n) + 3u) & ~3u)

/* One attribute found by pn_attr_parse(): data NULL when absent. */
struct pn_attr {
    const unsigned char *data;
    uint32_t len;               /* payload bytes */
};

/* attr.c: the walk over received bytes. */
typedef int (*pn_msg_fn)(const unsigned char *msg, const struct nlmsghdr *h, void *ctx);
int pn_walk_msgs(const unsigned char *data, uint32_t len, pn_msg_fn fn, void *ctx);
int pn_attr_parse(const unsigned char *p, uint32_t len, const uint16_t *minlen,
                  uint16_t maxtype, struct pn_attr *tb);
int pn_msg_parse(const unsigned char *msg, uint32_t len, uint16_t type, void *fixed,
                 uint32_t fixed_len, const uint16_t *minlen, uint16_t maxtype,
                 struct pn_attr *tb);
uint32_t pn_get_u32(const struct pn_attr *a);
void pn_get_str(char *dst, size_t size, const struct pn_attr *a);
void pn_get_ip(unsigned char *dst, uint8_t *dst_len, size_t size, const struct pn_attr *a);

/* netns.c: a moment in another namespace (pn_socket_open()). */
int pn_netns_enter(int netns_fd, int home_fd, int *home);
int pn_netns_leave(int home, int home_fd);

#endif
