/*
 * pn.h - the public interface of pynetlink's C core.
 *
 * This file is read verbatim by cffi's cdef(), so it holds no preprocessor
 * lines: C sources include it through pn_internal.h, which brings <stdint.h>
 * first.  Conventions (libmnl's): buffers are owned and sized by the caller,
 * functions return 0 or a non-negative value on success and a negative errno
 * on failure, and a failed encoder leaves b->len and the bytes it covers as
 * it found them (bytes past b->len are scratch space).
 *
 * Array sizes (checked against the kernel's constants in pn_internal.h):
 *   16  an interface name: IFNAMSIZ, terminator included;
 *   16  an IP address: sizeof(struct in6_addr) (IPv4 uses the first 4);
 *   32  a link-layer address: MAX_ADDR_LEN of <linux/netdevice.h>;
 *   256 extended-ack text: the kernel's messages are string literals, the
 *       longest well under 200 bytes; longer text is cut and terminated.
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
    PN_LINK_EXT_MASK = 256, /* IFLA_EXT_MASK from .ext_mask (requests only) */
    PN_LINK_ADDR_GEN_MODE = 512 /* IFLA_AF_SPEC { AF_INET6 { IFLA_INET6_ADDR_GEN_MODE } }
                                   from .addr_gen_mode (RTM_SETLINK only: the kernel
                                   refuses it when it creates a link) */
    /* -- link kinds (issue 16) -- */
    , PN_LINK_LINK = 1024   /* IFLA_LINK from .link: the parent (lower) link's ifindex, looked
                               up in the socket's namespace even for a link born elsewhere */
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
    uint8_t addr_gen_mode;  /* enum in6_addr_gen_mode */
    /* -- link kinds (issue 16) -- */
    uint32_t link;          /* IFLA_LINK (PN_LINK_LINK) */
};

/* -- link kinds (issue 16) -- */
/* How a struct pn_kind_attr's value is put on the wire. */
enum pn_attr_kind {
    PN_ATTR_FLAG = 1,       /* no payload */
    PN_ATTR_U8 = 2,         /* .value, at most 255 */
    PN_ATTR_U16 = 3,        /* .value, at most 65535, native byte order */
    PN_ATTR_U32 = 4,        /* .value, native byte order */
    PN_ATTR_BE16 = 5,       /* .value, at most 65535, network byte order (a port, an ethertype) */
    PN_ATTR_BYTES = 6       /* .bytes[0 .. len), len 1 to 16 (an IPv4 or IPv6 address) */
};

/* One attribute of a link kind's IFLA_INFO_DATA (`ip link add ... type
 * KIND OPTIONS`), or one found in a reply: there .kind is PN_ATTR_U8/U16/U32
 * for a payload of 1/2/4 bytes (.value native), else PN_ATTR_BYTES, and
 * .bytes holds the payload whatever its size. */
struct pn_kind_attr {
    uint16_t type;          /* IFLA_MACVLAN_MODE, IFLA_VXLAN_ID, IFLA_BR_STP_STATE, ... */
    uint8_t kind;           /* enum pn_attr_kind */
    uint8_t len;            /* payload bytes */
    uint32_t value;
    unsigned char bytes[16];
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
    uint32_t flags;         /* IFA_FLAGS (IFA_F_NODAD...), sent only when not 0 */
    uint8_t has_peer;       /* IFA_ADDRESS is .peer (point-to-point), not .local */
    unsigned char peer[16];
    char label[16];         /* IFA_LABEL (IPv4), sent only when not "" */
};

/* One route (RTM_NEWROUTE/DELROUTE): every field the kernel matches a
 * route by (fib_table_delete(), ip6_route_del()), so one can be deleted or
 * replaced exactly. */
struct pn_route_spec {
    uint8_t family;
    uint8_t dst_len;        /* 0: default route, no RTA_DST */
    uint8_t protocol;       /* rtm_protocol, e.g. RTPROT_BOOT */
    uint8_t scope;          /* rtm_scope */
    uint8_t type;           /* rtm_type, e.g. RTN_UNICAST */
    uint8_t has_gateway;    /* RTA_GATEWAY from .gateway */
    uint8_t has_prefsrc;    /* RTA_PREFSRC from .prefsrc */
    uint8_t has_priority;   /* RTA_PRIORITY (the metric) from .priority */
    uint32_t table;         /* < 256: rtm_table alone; else RTA_TABLE, rtm_table
                               RT_TABLE_UNSPEC (as iproute2 sends it) */
    int32_t oif;            /* RTA_OIF, 0: none */
    uint32_t priority;
    uint32_t flags;         /* rtm_flags, e.g. RTNH_F_ONLINK */
    unsigned char dst[16];
    unsigned char gateway[16];
    unsigned char prefsrc[16];
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
    char kind[16];          /* IFLA_INFO_KIND ("veth", "bridge", ...), "" if absent */
    int32_t link_index;     /* IFLA_LINK (a veth's peer: its ifindex in its own namespace), 0 if absent */
    int32_t addr_gen_mode;  /* IFLA_INET6_ADDR_GEN_MODE of IFLA_AF_SPEC/AF_INET6; -1 if absent
                               (no IPv6 on the link) */
    uint64_t rx_packets, tx_packets, rx_bytes, tx_bytes;
    uint64_t rx_errors, tx_errors, rx_dropped, tx_dropped;
    /* -- link kinds (issue 16) -- */
    uint32_t info_data_n;   /* entries of info_data filled */
    struct pn_kind_attr info_data[64];  /* IFLA_LINKINFO/IFLA_INFO_DATA's attributes of 1 to 16
                               bytes, in the kernel's order (longer or empty ones, and those
                               past the 64th, are left out) */
};

/* What an RTM_NEWADDR says of one address (`ip addr show`).  An address
 * attribute's _len is 0 when it is absent (or longer than 16 bytes). */
struct pn_addr_info {
    uint32_t index;         /* ifa_index */
    uint8_t family;         /* ifa_family */
    uint8_t prefixlen;
    uint8_t scope;          /* ifa_scope */
    uint8_t has_label;      /* 1 when IFA_LABEL was present */
    uint32_t flags;         /* IFA_FLAGS when present, else ifa_flags */
    uint8_t local_len, address_len, broadcast_len, has_cacheinfo;
    uint32_t valid_lft;     /* IFA_CACHEINFO, seconds; 0xffffffff: forever */
    uint32_t preferred_lft;
    unsigned char local[16];        /* IFA_LOCAL */
    unsigned char address[16];      /* IFA_ADDRESS (the peer on point-to-point) */
    unsigned char broadcast[16];    /* IFA_BROADCAST */
    char label[16];                 /* IFA_LABEL, NUL-terminated */
};

/* What an RTM_NEWROUTE says of one route (`ip route show`).  An address
 * attribute's _alen is 0 when it is absent (or longer than 16 bytes). */
struct pn_route_info {
    uint8_t family, dst_len, src_len, tos;
    uint8_t protocol, scope, type;  /* rtm_protocol, rtm_scope, rtm_type */
    uint8_t has_priority;   /* 1 when RTA_PRIORITY was present */
    uint32_t table;         /* RTA_TABLE when present, else rtm_table */
    uint32_t flags;         /* rtm_flags */
    uint32_t oif;           /* RTA_OIF, 0 if absent */
    uint32_t priority;      /* RTA_PRIORITY (the metric) */
    uint8_t dst_alen, src_alen, gateway_alen, prefsrc_alen;
    uint32_t has_multipath; /* RTA_MULTIPATH was present: its next hops are
                               not decoded (not in gateway/oif) */
    uint32_t unkept;        /* 1 << type of each attribute present that the
                               fields here do not hold (bit 0: a type past 31),
                               so the route cannot be made again from them: e.g.
                               RTA_METRICS, RTA_MULTIPATH, RTA_ENCAP, RTA_NH_ID,
                               an RTA_PREF other than medium, an RTA_CACHEINFO
                               with an expiry */
    unsigned char dst[16], src[16], gateway[16], prefsrc[16];
};

/* A dump being received: the caller owns the array of its kind, of cap
 * entries (the arrays of other kinds may be NULL). */
struct pn_dump {
    uint32_t type;          /* the parts collected: RTM_NEWLINK (or 0),
                               RTM_NEWADDR or RTM_NEWROUTE */
    struct pn_link_info *links;
    struct pn_addr_info *addrs;
    struct pn_route_info *routes;
    uint32_t cap;           /* entries each array can hold */
    uint32_t n;             /* entries filled; the caller may reset it to 0 */
    uint32_t done;          /* 1 once NLMSG_DONE (or an error) ended the dump */
    int32_t error;          /* 0 or the negative errno that ended it */
    char ext_msg[256];      /* the kernel's extended-ack text with that error, "" if none */
    uint32_t interrupted;   /* 1 if a part had NLM_F_DUMP_INTR: redo the dump */
    uint32_t truncated;     /* length of a part of this dump that did not fit */
    /* -- neighbours (issue 16) -- */
    struct pn_neigh_info *neighs;   /* RTM_NEWNEIGH parts (neighbours, FDB entries) */
};

/* One link notification (RTNLGRP_LINK): what `ip monitor link` prints of
 * one RTM_NEWLINK or RTM_DELLINK message, from its family header only. */
struct pn_link_event {
    uint16_t type;          /* RTM_NEWLINK or RTM_DELLINK */
    uint8_t family;         /* ifi_family: AF_UNSPEC for the link itself; AF_BRIDGE
                               for its bridge port (a port's removal is an
                               RTM_DELLINK of AF_BRIDGE: the link stays) */
    uint8_t unused;
    int32_t index;          /* ifi_index */
    uint32_t flags;         /* ifi_flags */
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
    PN_PENDING = 1,         /* pn_result.error before any reply: no errno is positive */
    PN_MAX_ATTR = 65535,    /* largest attribute or nest, header included: rta_len is 16 bits */
    PN_MAX_BUF = 0x7ffffffc /* largest pn_buf or datagram: offsets are returned as int,
                               and this is INT32_MAX rounded down to 4-byte alignment */
    /* -- link kinds (issue 16) -- */
    , PN_KIND_ATTRS_MAX = 64 /* attributes of one IFLA_INFO_DATA: sent or decoded */
};

/*
 * Message building (nlmsg.c): the pieces every encoder is made of.  Each
 * checks the room left first and fails without writing anything: -ENOSPC
 * (b->cap too small), -EMSGSIZE (more than a 16-bit length can say),
 * -EINVAL (b->len/cap or an offset that is not consistent).
 */
/* Append a header and the family header fixed[fixed_len] (zero-padded);
 * returns the message's offset (>= 0) for pn_msg_end(). */
int pn_msg_start(struct pn_buf *b, uint16_t type, uint16_t flags, uint32_t seq,
                 const void *fixed, uint32_t fixed_len);
/* Set the length of the message at offset start to cover up to b->len; 0. */
int pn_msg_end(struct pn_buf *b, uint32_t start);
/* Append data[len] bare (no attribute header), zero-padded; 0. */
int pn_put_extra(struct pn_buf *b, const void *data, uint32_t len);
/* Append one attribute of payload data[len], zero-padded; 0. */
int pn_attr_put(struct pn_buf *b, uint16_t type, const void *data, uint32_t len);
/* ... of a native-endian u32; 0. */
int pn_attr_put_u32(struct pn_buf *b, uint16_t type, uint32_t value);
/* ... of the NUL-terminated s, terminator included; 0. */
int pn_attr_put_str(struct pn_buf *b, uint16_t type, const char *s);
/* Open a nest (an attribute whose payload is attributes); returns its
 * offset (>= 0) for pn_nest_end(). */
int pn_nest_start(struct pn_buf *b, uint16_t type);
/* Close the nest at offset start; 0, or -EMSGSIZE if it grew past
 * PN_MAX_ATTR (the caller then drops the whole message). */
int pn_nest_end(struct pn_buf *b, uint32_t start);

/*
 * rtnetlink encoders (rtnl.c): each appends one whole message to b and
 * returns 0, or appends nothing and returns -ENOSPC (no room: send what b
 * holds and start again), -EINVAL (a spec the kernel could not mean:
 * unknown family, prefix longer than the address, empty name...) or
 * -EMSGSIZE.  NLM_F_REQUEST and NLM_F_ACK are always added to nlflags.
 */
/* RTM_NEWLINK/SETLINK/DELLINK/GETLINK of one link: `ip link set|del|show`. */
int pn_link_msg(struct pn_buf *b, uint16_t type, uint16_t nlflags, uint32_t seq,
                const struct pn_link_spec *link);
/* RTM_NEWLINK of a veth pair: `ip link add HOST type veth peer name PEER`. */
int pn_veth_msg(struct pn_buf *b, uint16_t nlflags, uint32_t seq,
                const struct pn_link_spec *host, const struct pn_link_spec *peer);
/* RTM_NEWLINK of a link of a kind without options: `ip link add NAME type KIND`. */
int pn_kind_msg(struct pn_buf *b, uint16_t nlflags, uint32_t seq,
                const struct pn_link_spec *link, const char *kind);
/* RTM_NEWADDR/DELADDR: `ip addr add|del LOCAL/PREFIX dev IDX`. */
int pn_addr_msg(struct pn_buf *b, uint16_t type, uint16_t nlflags, uint32_t seq,
                const struct pn_addr_spec *addr);
/* RTM_NEWROUTE/DELROUTE: `ip route add|replace|del ...` (NLM_F_REPLACE in
 * nlflags replaces). */
int pn_route_msg(struct pn_buf *b, uint16_t type, uint16_t nlflags, uint32_t seq,
                 const struct pn_route_spec *route);
/* RTM_NEWLINK setting one u8 option of a bridge port: `ip link set DEV
 * type bridge_slave hairpin on`. */
int pn_brport_msg(struct pn_buf *b, uint32_t seq, const struct pn_link_spec *link,
                  uint16_t attr, uint8_t value);
/* A dump request (NLM_F_DUMP) for every object of one kind in family
 * (AF_UNSPEC: all): type RTM_GETLINK, RTM_GETADDR (`ip addr show`) or
 * RTM_GETROUTE (`ip route show table all`), with the family header the
 * kernel's strict checking expects; -EINVAL for any other type. */
int pn_dump_msg(struct pn_buf *b, uint16_t type, uint32_t seq, uint8_t family);
/* -- link kinds (issue 16): kinds.c -- */
/* RTM_NEWLINK of a link of kind `kind` with the options attrs[0 .. count)
 * in IFLA_INFO_DATA (none: no IFLA_INFO_DATA): `ip link add NAME [link
 * PARENT] type KIND OPTIONS` (nlflags NLM_F_CREATE|NLM_F_EXCL), or `ip link
 * set NAME type KIND OPTIONS` (nlflags 0).  -EINVAL for an empty or
 * unterminated kind, count past PN_KIND_ATTRS_MAX, an attribute type 0 or
 * with an NLA_F_* bit, a value too large for its kind, an unknown kind. */
int pn_kind_data_msg(struct pn_buf *b, uint16_t nlflags, uint32_t seq,
                     const struct pn_link_spec *link, const char *kind,
                     const struct pn_kind_attr *attrs, uint32_t count);

/*
 * Reply decoding (reply.c, decode.c): pure functions over received bytes
 * that read nothing past len and write only *out / results[0 .. count) /
 * the dump's array; arbitrary bytes give a result or -EBADMSG.
 */
/* Decode one RTM_NEWLINK (header included); 0 or -EBADMSG (other type,
 * lengths that do not fit).  *out is zeroed first (hairpin -1). */
int pn_parse_link(const unsigned char *msg, uint32_t len, struct pn_link_info *out);
/* Decode one RTM_NEWADDR (header included); 0 or -EBADMSG.  *out zeroed first. */
int pn_parse_addr(const unsigned char *msg, uint32_t len, struct pn_addr_info *out);
/* Decode one RTM_NEWROUTE (header included); 0 or -EBADMSG.  *out zeroed first. */
int pn_parse_route(const unsigned char *msg, uint32_t len, struct pn_route_info *out);
/* Match one datagram's messages to the requests [first_seq, first_seq +
 * count) of portid; returns how many it completed, or -EBADMSG. */
int pn_parse_replies(const unsigned char *data, uint32_t len, uint32_t portid,
                     uint32_t first_seq, uint32_t count, struct pn_result *results);
/* Add one datagram's parts of the dump seq to dump; returns how many, or
 * -ENOSPC (array full: nothing of the datagram kept), -EBADMSG, -EINVAL. */
int pn_parse_dump(const unsigned char *data, uint32_t len, uint32_t portid, uint32_t seq,
                  struct pn_dump *dump);

/* The link notifications of one datagram, in order, into out[0 .. cap):
 * RTM_NEWLINK and RTM_DELLINK messages (other types skipped); returns how
 * many, -ENOSPC (more than cap), or -EBADMSG (a length that does not fit,
 * a link message shorter than its family header).  out may be partly
 * written on failure. */
int pn_link_events(const unsigned char *data, uint32_t len, struct pn_link_event *out,
                   uint32_t cap);

/* -- events (issue 16) -- */
/* pn_parse_link/addr/route of a message of type `msg_type`, which may also be
 * the RTM_DEL* of the kind (a notification says what was deleted). */
int pn_parse_link_as(const unsigned char *msg, uint32_t len, uint16_t msg_type,
                     struct pn_link_info *out);
int pn_parse_addr_as(const unsigned char *msg, uint32_t len, uint16_t msg_type,
                     struct pn_addr_info *out);
int pn_parse_route_as(const unsigned char *msg, uint32_t len, uint16_t msg_type,
                      struct pn_route_info *out);

/* What an RTM_NEWNEIGH or RTM_DELNEIGH says of one entry (`ip neigh show`,
 * `bridge fdb show`, `ip monitor neigh`).  An address attribute's _len is
 * 0 when it is absent (or longer than the field); has_X says whether the
 * attribute X was there. */
struct pn_neigh_info {
    uint16_t type;          /* RTM_NEWNEIGH or RTM_DELNEIGH */
    uint8_t family;         /* ndm_family */
    uint8_t flags;          /* ndm_flags (NTF_*) */
    uint16_t state;         /* ndm_state (NUD_*) */
    uint8_t ndm_type;       /* ndm_type (RTN_UNICAST...) */
    uint8_t dst_len, lladdr_len;
    uint8_t has_vlan, has_port, has_vni, has_via, has_master, has_cacheinfo, has_probes;
    uint8_t has_src_vni, has_flags_ext, has_nh_id, unused;
    int32_t index;          /* ndm_ifindex */
    uint16_t vlan;          /* NDA_VLAN */
    uint16_t port;          /* NDA_PORT, host order */
    uint32_t vni;           /* NDA_VNI */
    uint32_t src_vni;       /* NDA_SRC_VNI */
    uint32_t via;           /* NDA_IFINDEX */
    uint32_t master;        /* NDA_MASTER */
    uint32_t probes;        /* NDA_PROBES */
    uint32_t flags_ext;     /* NDA_FLAGS_EXT (NTF_EXT_MANAGED...) */
    uint32_t nh_id;         /* NDA_NH_ID */
    uint32_t confirmed, used, updated;  /* NDA_CACHEINFO: ms ago (clock ticks as jiffies_to_clock_t) */
    unsigned char dst[16];
    unsigned char lladdr[32];
};

/* One notification, decoded: which body is filled is said by type. */
union pn_event_body {
    struct pn_link_info link;       /* RTM_NEWLINK, RTM_DELLINK */
    struct pn_addr_info addr;       /* RTM_NEWADDR, RTM_DELADDR */
    struct pn_route_info route;     /* RTM_NEWROUTE, RTM_DELROUTE */
    struct pn_neigh_info neigh;     /* RTM_NEWNEIGH, RTM_DELNEIGH */
};

struct pn_event {
    uint16_t type;          /* nlmsg_type */
    uint8_t family;         /* the family header's first byte: for a link,
                               AF_BRIDGE is its bridge port, not the link */
    uint8_t unused;
    union pn_event_body body;
};

enum pn_event_limits {
    PN_EVENT_MSG_MIN = 24,  /* the shortest notification recorded: a header and the
                               shortest family header decoded, NLMSG_LENGTH(sizeof(struct
                               ifaddrmsg)) (checked in events.c) */
};

/* The link, address, route and neighbour notifications of one datagram, in
 * order, decoded into out[0 .. cap) (other messages skipped); returns how
 * many, -ENOSPC (more than cap: a datagram of n bytes holds at most
 * n / PN_EVENT_MSG_MIN + 1) or -EBADMSG (a length that does not fit).
 * out may be partly written on failure. */
int pn_parse_events(const unsigned char *data, uint32_t len, struct pn_event *out,
                    uint32_t cap);
/* Read the queued notification datagrams of fd without waiting, decoding
 * them into out[*n .. cap) (*n grows; datagrams from other than the kernel
 * are skipped).  Returns 0 once none is queued, 1 when out has no room
 * left for a whole datagram of bufcap bytes (more may be queued), or
 * -errno: -ENOBUFS (the socket overflowed: the kernel dropped
 * notifications after out[*n - 1]), -EMSGSIZE (a datagram longer than
 * bufcap was cut: lost; *truncated says how long), -EBADMSG. */
int pn_events_recv(int fd, unsigned char *buf, uint32_t bufcap, struct pn_event *out,
                   uint32_t cap, uint32_t *n, uint32_t *truncated);
/* An fd of the network namespace socket fd lives in (ioctl SIOCGSKNS):
 * where a Handle's subscription opens its own socket; -errno. */
int pn_socket_netns(int fd);

/*
 * Network namespaces (netns.c).  Both act on the calling thread only.
 */
/* Move the calling thread into the namespace behind netns_fd; 0 or -errno. */
int pn_setns_net(int netns_fd);
/* 0 if netns_fd is a network namespace; -EINVAL if it is anything else
 * (another kind of namespace, a regular file); -errno (EBADF, ...) otherwise. */
int pn_netns_check(int netns_fd);
/* A new empty namespace: returns an fd holding it (the caller closes it),
 * or -errno; -ENOTRECOVERABLE if the thread could not come back home. */
int pn_netns_new(void);

/*
 * The process (proc.c).
 */
/* Have the kernel send signum to the calling process when the thread that
 * forked it ends (prctl PR_SET_PDEATHSIG); 0 or -errno (-EINVAL: no such
 * signal). */
int pn_die_with_parent(int signum);

/*
 * The socket (sock.c).
 */
/* Open a NETLINK_ROUTE socket in netns_fd (-1: here), returning home_fd
 * (-1: opened here) after; ext-ack and capped ACKs on, receive buffer
 * rcvbuf (0: the default), bound.  Returns the fd (the caller closes it
 * with pn_socket_close()) and sets *portid, or -errno
 * (-ENOTRECOVERABLE: the thread could not come back home). */
int pn_socket_open(int netns_fd, int home_fd, int rcvbuf, uint32_t *portid);
/* Join the multicast group `group` (RTNLGRP_LINK, ...): the kernel then
 * sends the socket its notifications (`ip monitor`); 0 or -errno. */
int pn_socket_join(int fd, uint32_t group);
/* Read one queued datagram into buf[cap] without waiting: its whole
 * length (more than cap: it was cut), and *from_kernel 1 if the kernel
 * sent it (0: another process did; ignore it); -EAGAIN if none is queued,
 * -ENOBUFS if the socket overflowed (the kernel dropped messages since the
 * last read), or -errno. */
int pn_recv(int fd, unsigned char *buf, uint32_t cap, uint32_t *from_kernel);
/* close(fd); 0 or -errno. */
int pn_socket_close(int fd);
/* Send the whole of b in one datagram; 0 or -errno. */
int pn_send(int fd, const struct pn_buf *b);
/* Receive the dump seq into dump until it ends or its array has less room
 * than one more datagram could fill; 0 or -errno (-EMSGSIZE: the next part
 * is longer than rcap, dump->truncated says how long; -ETIMEDOUT: nothing
 * came for timeout_ms). */
int pn_dump_recv(int fd, uint32_t portid, uint32_t seq, int timeout_ms,
                 unsigned char *rbuf, uint32_t rcap, struct pn_dump *dump);
/* Send the count requests of b window at a time and read every ACK into
 * results[count]; 0, or (all answered) how many replies did not fit in
 * rbuf[rcap], or -errno if the exchange itself failed (-ETIMEDOUT: after a
 * send, or since the kernel's last datagram, nothing came for timeout_ms;
 * the time a send spends blocked in the kernel does not count). */
int pn_transact(int fd, uint32_t portid, const struct pn_buf *b, uint32_t first_seq,
                uint32_t count, uint32_t window, int timeout_ms,
                struct pn_result *results, unsigned char *rbuf, uint32_t rcap);

/* -- neighbours (issue 16) -- */

/* Which optional attributes of a pn_neigh_spec are sent (bit set). */
enum pn_neigh_field {
    PN_NEIGH_VLAN    = 1,   /* NDA_VLAN (u16) from .vlan */
    PN_NEIGH_PORT    = 2,   /* NDA_PORT (be16 on the wire) from .port */
    PN_NEIGH_VNI     = 4,   /* NDA_VNI (u32) from .vni */
    PN_NEIGH_IFINDEX = 8,   /* NDA_IFINDEX (u32) from .via: a vxlan remote's outgoing link */
    PN_NEIGH_MASTER  = 16   /* NDA_MASTER (u32) from .master */
};

/* One neighbour (ARP/NDP, family AF_INET/AF_INET6) or forwarding entry
 * (FDB, family AF_BRIDGE) as RTM_NEWNEIGH/DELNEIGH sees it: `ip neigh`,
 * `bridge fdb`. */
struct pn_neigh_spec {
    uint32_t fields;        /* enum pn_neigh_field bits */
    uint8_t family;         /* ndm_family: AF_INET, AF_INET6 or AF_BRIDGE */
    uint8_t flags;          /* ndm_flags: NTF_ROUTER, NTF_SELF, NTF_MASTER... */
    uint16_t state;         /* ndm_state: NUD_PERMANENT, NUD_REACHABLE... */
    int32_t index;          /* ndm_ifindex, required (> 0) */
    uint8_t dst_len;        /* NDA_DST: 0 absent, 4 (IPv4) or 16 (IPv6); a
                               neighbour's length is its family's */
    uint8_t lladdr_len;     /* NDA_LLADDR: 0 absent, else 1 .. 32 bytes */
    uint16_t vlan;
    uint16_t port;          /* host order */
    uint32_t vni;
    uint32_t via;
    uint32_t master;
    unsigned char dst[16];
    unsigned char lladdr[32];
};


/* RTM_NEWNEIGH/DELNEIGH of one entry: `ip neigh add|replace|del ADDR
 * [lladdr MAC] dev IDX [nud STATE] [router]`, `bridge fdb add|append|
 * replace|del MAC dev IDX [dst IP] [vni VNI] [port P] [vlan V] [self|master]`
 * (NLM_F_REPLACE / NLM_F_APPEND in nlflags).  -EINVAL for a family other
 * than AF_INET/AF_INET6/AF_BRIDGE, an index <= 0, a neighbour without a
 * destination of its family's length, an FDB entry without a 6-byte MAC,
 * or lengths past the fields. */
int pn_neigh_msg(struct pn_buf *b, uint16_t type, uint16_t nlflags, uint32_t seq,
                 const struct pn_neigh_spec *neigh);
/* RTM_GETNEIGH with NLM_F_DUMP, the ndmsg whole and zero but for the family
 * (what strict checking wants): family AF_UNSPEC/AF_INET/AF_INET6 lists
 * neighbours (`ip neigh show`; index > 0 adds NDA_IFINDEX: that link's
 * only), AF_BRIDGE forwarding entries (`bridge fdb show`; index > 0 puts
 * it in ndm_ifindex: that port's or device's only).  master > 0 adds
 * NDA_MASTER: the entries of that bridge's ports only.  flags NTF_PROXY (a
 * neighbour family only) lists the proxy entries instead (`ip neigh show
 * proxy`).  The kernel filters by index and master when the socket checks
 * strictly; a caller filters again.  -EINVAL otherwise. */
int pn_neigh_dump_msg(struct pn_buf *b, uint32_t seq, uint8_t family, int32_t index,
                      uint32_t master, uint8_t flags);
/* Decode one RTM_NEWNEIGH or RTM_DELNEIGH (header included) into a
 * struct pn_neigh_info (declared with the events above); 0 or
 * -EBADMSG (another type, lengths that do not fit).  *out zeroed first. */
int pn_parse_neigh(const unsigned char *msg, uint32_t len, struct pn_neigh_info *out);
