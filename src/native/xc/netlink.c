/*
 * The netlink requests of a bridge network (net.c), as links.py makes them
 * with pyroute2: rtnetlink for the veth pair, the port's master and state,
 * the container's address and default route, the host end's removal;
 * nfnetlink for whether nftables holds xc's table and for the container's
 * connection-tracking entries.
 *
 * A request is built in one fixed buffer (the largest, a veth pair with its
 * peer's name and namespace, is under 100 bytes) and answered by the
 * kernel's acknowledgement: 0, or -errno.
 */
#include "xc.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

struct req {
    _Alignas(4) char buf[1024];
    size_t len;
};

static uint32_t seq;

static struct nlmsghdr *hdr(struct req *r)
{
    return (struct nlmsghdr *)r->buf;
}

static void need(struct req *r, size_t n)
{
    if (r->len + NLMSG_ALIGN(n) > sizeof r->buf)
        abort(); /* (every request here is a few dozen bytes) */
}

static void start(struct req *r, uint16_t type, uint16_t flags, const void *body, size_t n)
{
    memset(r->buf, 0, sizeof r->buf);
    r->len = NLMSG_ALIGN(NLMSG_LENGTH(n));
    hdr(r)->nlmsg_type = type;
    hdr(r)->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    hdr(r)->nlmsg_seq = ++seq;
    memcpy(NLMSG_DATA(hdr(r)), body, n);
    hdr(r)->nlmsg_len = r->len;
}

static void raw(struct req *r, const void *data, size_t n)
{
    need(r, n);
    memcpy(r->buf + r->len, data, n);
    r->len += NLMSG_ALIGN(n);
    hdr(r)->nlmsg_len = r->len;
}

static void attr(struct req *r, uint16_t type, const void *data, size_t n)
{
    need(r, NLA_HDRLEN + n);
    struct nlattr *a = (struct nlattr *)(r->buf + r->len);
    a->nla_type = type;
    a->nla_len = (uint16_t)(NLA_HDRLEN + n);
    memcpy((char *)a + NLA_HDRLEN, data, n);
    r->len += NLA_ALIGN(a->nla_len);
    hdr(r)->nlmsg_len = r->len;
}

static void attr_str(struct req *r, uint16_t type, const char *s)
{
    attr(r, type, s, strlen(s) + 1);
}

static void attr_u32(struct req *r, uint16_t type, uint32_t v)
{
    attr(r, type, &v, sizeof v);
}

/* A nested attribute: its offset, closed by end(). */
static size_t nest(struct req *r, uint16_t type)
{
    size_t at = r->len;
    attr(r, type | NLA_F_NESTED, NULL, 0);
    return at;
}

static void end(struct req *r, size_t at)
{
    ((struct nlattr *)(r->buf + at))->nla_len = (uint16_t)(r->len - at);
}

int nl_open(int protocol)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
    return fd < 0 ? -errno : fd;
}

typedef void (*each_fn)(const struct nlmsghdr *m, void *ctx);

/* Send r on fd and read the answers up to its acknowledgement (or a
 * dump's end), each message on the way given to each (if not NULL). */
static int talk(int fd, struct req *r, each_fn each, void *ctx)
{
    if (send(fd, r->buf, r->len, 0) < 0)
        return -errno;
    static _Alignas(4) char in[65536];
    for (;;) {
        ssize_t n = recv(fd, in, sizeof in, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        int left = (int)n;
        for (struct nlmsghdr *m = (struct nlmsghdr *)in; NLMSG_OK(m, left); m = NLMSG_NEXT(m, left)) {
            if (m->nlmsg_seq != hdr(r)->nlmsg_seq)
                continue;
            if (m->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(m);
                return e->error;
            }
            if (m->nlmsg_type == NLMSG_DONE)
                return 0;
            if (each)
                each(m, ctx);
        }
    }
}

/* --- rtnetlink ---------------------------------------------------------------------- */

int nl_veth_add(int fd, const char *host_name, const char *peer_name, int peer_netns)
{
    struct req r;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    start(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
    attr_str(&r, IFLA_IFNAME, host_name);
    size_t info = nest(&r, IFLA_LINKINFO);
    attr(&r, IFLA_INFO_KIND, "veth", 4);
    size_t data = nest(&r, IFLA_INFO_DATA);
    size_t peer = nest(&r, VETH_INFO_PEER);
    raw(&r, &ifi, sizeof ifi);
    attr_str(&r, IFLA_IFNAME, peer_name);
    attr_u32(&r, IFLA_NET_NS_FD, (uint32_t)peer_netns);
    end(&r, peer);
    end(&r, data);
    end(&r, info);
    return talk(fd, &r, NULL, NULL);
}

int nl_link_set(int fd, int index, int master, bool up)
{
    struct req r;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = index};
    if (up) {
        ifi.ifi_flags = IFF_UP;
        ifi.ifi_change = IFF_UP;
    }
    start(&r, RTM_NEWLINK, 0, &ifi, sizeof ifi);
    if (master > 0)
        attr_u32(&r, IFLA_MASTER, (uint32_t)master);
    return talk(fd, &r, NULL, NULL);
}

int nl_link_del(int fd, int index)
{
    struct req r;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = index};
    start(&r, RTM_DELLINK, 0, &ifi, sizeof ifi);
    return talk(fd, &r, NULL, NULL);
}

int nl_addr_add(int fd, int index, uint32_t addr_be, int prefixlen)
{
    struct req r;
    struct ifaddrmsg ifa = {.ifa_family = AF_INET, .ifa_prefixlen = (unsigned char)prefixlen,
                            .ifa_index = (unsigned)index};
    start(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof ifa);
    attr(&r, IFA_LOCAL, &addr_be, 4);
    attr(&r, IFA_ADDRESS, &addr_be, 4);
    return talk(fd, &r, NULL, NULL);
}

int nl_default_route(int fd, uint32_t gateway_be)
{
    struct req r;
    struct rtmsg rt = {.rtm_family = AF_INET, .rtm_table = RT_TABLE_MAIN, .rtm_protocol = RTPROT_BOOT,
                       .rtm_scope = RT_SCOPE_UNIVERSE, .rtm_type = RTN_UNICAST};
    start(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rt, sizeof rt);
    attr(&r, RTA_GATEWAY, &gateway_be, 4);
    return talk(fd, &r, NULL, NULL);
}

/* --- nfnetlink ---------------------------------------------------------------------- */

int nl_nft_table_exists(const char *name)
{
    int fd AUTOCLOSE = nl_open(NETLINK_NETFILTER);
    if (fd < 0)
        return fd;
    struct req r;
    struct nfgenmsg g = {.nfgen_family = NFPROTO_IPV4, .version = NFNETLINK_V0};
    start(&r, (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE, 0, &g, sizeof g);
    attr_str(&r, NFTA_TABLE_NAME, name);
    int rc = talk(fd, &r, NULL, NULL);
    return rc == 0 ? 1 : rc == -ENOENT ? 0 : rc;
}

struct tuples {
    char *buf; /* the CTA_TUPLE_ORIG attributes, one after another */
    size_t len;
    int n;
};

static void keep_tuple(const struct nlmsghdr *m, void *ctx)
{
    struct tuples *t = ctx;
    const char *p = (const char *)NLMSG_DATA(m) + NLMSG_ALIGN(sizeof(struct nfgenmsg));
    const char *e = (const char *)m + m->nlmsg_len;
    while (p + NLA_HDRLEN <= e) {
        const struct nlattr *a = (const struct nlattr *)p;
        if (a->nla_len < NLA_HDRLEN || p + a->nla_len > e)
            return;
        if ((a->nla_type & NLA_TYPE_MASK) == CTA_TUPLE_ORIG) {
            t->buf = xrealloc(t->buf, t->len + NLA_ALIGN(a->nla_len));
            memcpy(t->buf + t->len, a, a->nla_len);
            t->len += NLA_ALIGN(a->nla_len);
            t->n++;
            return;
        }
        p += NLA_ALIGN(a->nla_len);
    }
}

/* links.flush_conntrack: the entries whose original or reply source is
 * addr (connections the container opened, and those sent to it), each
 * deleted by its original tuple; how many.  Best effort, as there. */
int nl_conntrack_flush(uint32_t addr_be)
{
    int fd AUTOCLOSE = nl_open(NETLINK_NETFILTER);
    if (fd < 0)
        return 0;
    struct tuples t = {0};
    for (int dir = 0; dir < 2; dir++) {
        struct req r;
        struct nfgenmsg g = {.nfgen_family = AF_INET, .version = NFNETLINK_V0};
        start(&r, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET, NLM_F_DUMP, &g, sizeof g);
        hdr(&r)->nlmsg_flags &= (uint16_t)~NLM_F_ACK;
        size_t tuple = nest(&r, dir == 0 ? CTA_TUPLE_ORIG : CTA_TUPLE_REPLY);
        size_t ip = nest(&r, CTA_TUPLE_IP);
        attr(&r, CTA_IP_V4_SRC, &addr_be, 4);
        end(&r, ip);
        end(&r, tuple);
        size_t filter = nest(&r, CTA_FILTER);
        attr_u32(&r, dir == 0 ? CTA_FILTER_ORIG_FLAGS : CTA_FILTER_REPLY_FLAGS, 1u << 0); /* the kernel's CTA_FILTER_F_CTA_IP_SRC */
        end(&r, filter);
        talk(fd, &r, keep_tuple, &t);
    }
    int done = 0;
    for (size_t off = 0; off < t.len;) {
        const struct nlattr *a = (const struct nlattr *)(t.buf + off);
        struct req r;
        struct nfgenmsg g = {.nfgen_family = AF_INET, .version = NFNETLINK_V0};
        start(&r, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE, 0, &g, sizeof g);
        raw(&r, a, a->nla_len);
        if (talk(fd, &r, NULL, NULL) == 0)
            done++;
        off += NLA_ALIGN(a->nla_len);
    }
    free(t.buf);
    return done;
}
