/*
 * pn.h - the public interface of pynetlink's C core.
 *
 * This file is read verbatim by cffi's cdef(), so it holds no preprocessor
 * lines: C sources include it through pn_internal.h, which brings <stdint.h>
 * first.  Conventions (libmnl's): buffers are owned and sized by the caller,
 * functions return 0 or a non-negative value on success and a negative errno
 * on failure, and a failed encoder leaves b->len and the bytes it covers as
 * it found them (bytes past b->len are scratch space).
 */

/* A caller-owned message buffer.  Encoders append whole netlink messages. */
struct pn_buf {
    unsigned char *data;    /* storage, at least 4-byte aligned */
    uint32_t cap;           /* its size in bytes */
    uint32_t len;           /* bytes used by complete messages */
};

/* Which optional fields of a pn_link_spec are present (bit set). */
enum pn_link_field {
    PN_LINK_NAME    = 1,    /* IFLA_IFNAME from .name */
    PN_LINK_MTU     = 2,    /* IFLA_MTU from .mtu */
    PN_LINK_MASTER  = 4,    /* IFLA_MASTER from .master (0 releases) */
    PN_LINK_NS_FD   = 8,    /* IFLA_NET_NS_FD from .ns_fd */
    PN_LINK_NS_PID  = 16,   /* IFLA_NET_NS_PID from .ns_pid */
    PN_LINK_GROUP   = 32,   /* IFLA_GROUP from .group */
    PN_LINK_TXQLEN  = 64,   /* IFLA_TXQLEN from .txqlen */
    PN_LINK_ADDRESS = 128,  /* IFLA_ADDRESS from .address[0 .. address_len) */
    PN_LINK_EXT_MASK = 256  /* IFLA_EXT_MASK from .ext_mask (requests only) */
};

/* One link as RTM_NEWLINK/SETLINK/DELLINK/GETLINK sees it. */
struct pn_link_spec {
    uint32_t fields;        /* enum pn_link_field bits */
    int32_t index;          /* ifi_index; 0: the kernel looks .name up */
    uint32_t flags;         /* ifi_flags */
    uint32_t change;        /* ifi_change: the flags to change, 0: none */
    char name[16];          /* NUL-terminated, at most 15 bytes */
    uint32_t mtu;
    uint32_t master;
    int32_t ns_fd;
    int32_t ns_pid;
    uint32_t group;
    uint32_t txqlen;
    uint32_t ext_mask;
    uint32_t address_len;
    unsigned char address[32];
};

/* One interface address (RTM_NEWADDR/DELADDR). */
struct pn_addr_spec {
    int32_t index;          /* ifa_index, required */
    uint8_t family;         /* AF_INET or AF_INET6 */
    uint8_t prefixlen;
    uint8_t scope;          /* ifa_scope */
    uint8_t has_broadcast;  /* IFA_BROADCAST present (IPv4 only) */
    unsigned char local[16];        /* IFA_LOCAL and IFA_ADDRESS */
    unsigned char broadcast[16];
};

/* One route (RTM_NEWROUTE/DELROUTE). */
struct pn_route_spec {
    uint8_t family;
    uint8_t dst_len;        /* 0: default route, no RTA_DST */
    uint8_t table;          /* rtm_table, e.g. RT_TABLE_MAIN */
    uint8_t protocol;       /* rtm_protocol, e.g. RTPROT_BOOT */
    uint8_t scope;          /* rtm_scope */
    uint8_t type;           /* rtm_type, e.g. RTN_UNICAST */
    uint8_t has_gateway;
    int32_t oif;            /* RTA_OIF, 0: none */
    unsigned char dst[16];
    unsigned char gateway[16];
};

/* What an RTM_NEWLINK reply says of one link. */
struct pn_link_info {
    int32_t index;
    uint32_t flags;
    uint32_t mtu;
    uint32_t master;
    uint32_t group;
    uint32_t txqlen;
    uint32_t has_stats;     /* 1 when IFLA_STATS64 was present */
    int32_t hairpin;        /* bridge port hairpin mode: 0/1, -1 not a bridge port */
    uint32_t address_len;   /* IFLA_ADDRESS (link-layer address), 0 if absent */
    unsigned char address[32];
    char name[16];
    uint64_t rx_packets, tx_packets, rx_bytes, tx_bytes;
    uint64_t rx_errors, tx_errors, rx_dropped, tx_dropped;
};

/* A dump of links being received: the caller owns links[cap]. */
struct pn_dump {
    struct pn_link_info *links;
    uint32_t cap;           /* entries links can hold */
    uint32_t n;             /* entries filled; the caller may reset it to 0 */
    uint32_t done;          /* 1 once NLMSG_DONE (or an error) ended the dump */
    int32_t error;          /* 0 or the negative errno that ended it */
    uint32_t interrupted;   /* 1 if a part had NLM_F_DUMP_INTR: redo the dump */
    uint32_t truncated;     /* length of a part of this dump that did not fit */
};

/* The outcome of one request message. */
struct pn_result {
    uint32_t seq;
    int32_t error;          /* 0, or a negative errno; PN_PENDING until acked */
    uint32_t has_link;      /* 1 when .link was filled by a reply */
    uint32_t truncated;     /* length of a reply that did not fit (not decoded) */
    struct pn_link_info link;
    char ext_msg[256];      /* the kernel's extended-ack text, "" if none */
};

enum pn_limits {
    PN_PENDING = 1,         /* pn_result.error before any reply */
    PN_IFNAMSIZ = 16,
    PN_MAX_ATTR = 65535,    /* largest attribute or nest, header included */
    PN_MAX_BUF = 0x7ffffffc /* largest pn_buf or datagram: offsets fit an int */
};

/* Message building (nlmsg.c): the pieces every encoder is made of. */
int pn_msg_start(struct pn_buf *b, uint16_t type, uint16_t flags, uint32_t seq,
                 const void *fixed, uint32_t fixed_len);
int pn_msg_end(struct pn_buf *b, uint32_t start);
int pn_put_extra(struct pn_buf *b, const void *data, uint32_t len);
int pn_attr_put(struct pn_buf *b, uint16_t type, const void *data, uint32_t len);
int pn_attr_put_u32(struct pn_buf *b, uint16_t type, uint32_t value);
int pn_attr_put_str(struct pn_buf *b, uint16_t type, const char *s);
int pn_nest_start(struct pn_buf *b, uint16_t type);
int pn_nest_end(struct pn_buf *b, uint32_t start);

/* rtnetlink encoders (rtnl.c): each appends one whole message or nothing.
 * NLM_F_REQUEST and NLM_F_ACK are always added to nlflags. */
int pn_link_msg(struct pn_buf *b, uint16_t type, uint16_t nlflags, uint32_t seq,
                const struct pn_link_spec *link);
int pn_veth_msg(struct pn_buf *b, uint16_t nlflags, uint32_t seq,
                const struct pn_link_spec *host, const struct pn_link_spec *peer);
int pn_kind_msg(struct pn_buf *b, uint16_t nlflags, uint32_t seq,
                const struct pn_link_spec *link, const char *kind);
int pn_addr_msg(struct pn_buf *b, uint16_t type, uint16_t nlflags, uint32_t seq,
                const struct pn_addr_spec *addr);
int pn_route_msg(struct pn_buf *b, uint16_t type, uint16_t nlflags, uint32_t seq,
                 const struct pn_route_spec *route);
int pn_brport_msg(struct pn_buf *b, uint32_t seq, const struct pn_link_spec *link,
                  uint16_t attr, uint8_t value);

/* Reply decoding (reply.c): pure functions over received bytes. */
int pn_parse_link(const unsigned char *msg, uint32_t len, struct pn_link_info *out);
int pn_parse_replies(const unsigned char *data, uint32_t len, uint32_t portid,
                     uint32_t first_seq, uint32_t count, struct pn_result *results);
int pn_parse_dump(const unsigned char *data, uint32_t len, uint32_t portid, uint32_t seq,
                  struct pn_dump *dump);

/* The socket (sock.c). */
int pn_socket_open(int netns_fd, int home_fd, int rcvbuf, uint32_t *portid);
int pn_socket_close(int fd);
int pn_setns_net(int netns_fd);
int pn_netns_new(void);
int pn_send(int fd, const struct pn_buf *b);
int pn_dump_recv(int fd, uint32_t portid, uint32_t seq, int timeout_ms,
                 unsigned char *rbuf, uint32_t rcap, struct pn_dump *dump);
int pn_transact(int fd, uint32_t portid, const struct pn_buf *b, uint32_t first_seq,
                uint32_t count, uint32_t window, int timeout_ms,
                struct pn_result *results, unsigned char *rbuf, uint32_t rcap);
