/*
 * `xc run`'s default network, a bridge, as network.attach and
 * network.detach make and remove it (xcontainers/network.py, ipam.py,
 * links.py): an attachment recorded in /run/xc-network/state.json under
 * its lock before anything is made, an address handed out round-robin,
 * a network namespace kept by a bind mount under /run/xc-network/netns,
 * a veth pair (the host end on the bridge in hairpin mode, the peer
 * `eth0` inside with the address and a default route via the bridge),
 * and after the container: the veth, its connection-tracking entries,
 * the namespace, the attachment.
 *
 * Only a bridge that Python's `xc run` has made ready is used here: it
 * exists, holds the subnet's gateway as its address and is up, forwarding
 * and route_localnet are on, and nftables holds xc's table (whose
 * masquerade rule Python made with the bridge).  Anything else -- no
 * bridge yet, published ports, a state file this code does not read --
 * falls back to Python, which makes what is missing or words the error.
 */
#include "xc.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/close_range.h>
#include <linux/netlink.h>

#define STATE_DIR "/run/xc-network"
#define NETNS_DIR STATE_DIR "/netns"
#define DEFAULT_ROOT "/run/xc"

/* --- names --------------------------------------------------------------------------- */

/* zlib.crc32 */
static uint32_t crc32(const char *s)
{
    uint32_t c = 0xffffffffu;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        c ^= *p;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

/* network._key: the id, qualified by the state root unless it is the default. */
static char *attachment_key(const char *root, const char *cid)
{
    char *abs = path_abspath(root);
    char *key = strcmp(abs, DEFAULT_ROOT) == 0 ? xstrdup(cid) : xasprintf("%s@%08x", cid, crc32(abs));
    free(abs);
    if (strlen(key) > 200) {
        char *k = xasprintf("%.180s~%08x", key, crc32(key));
        free(key);
        key = k;
    }
    return key;
}

/* network._tag */
static char *rule_tag(const char *key)
{
    return strlen(key) <= 100 ? xasprintf("xc:%s", key) : xasprintf("xc:%.80s~%08x", key, crc32(key));
}

/* ipam._ip_to_int: -1 for anything but a plain dotted quad */
static long long ip_parse(const char *s, size_t n)
{
    long long v = 0;
    int parts = 0;
    size_t i = 0;
    while (parts < 4) {
        size_t j = i;
        while (j < n && s[j] >= '0' && s[j] <= '9')
            j++;
        if (j == i || j - i > 3 || (j - i > 1 && s[i] == '0'))
            return -1;
        int x = 0;
        for (size_t k = i; k < j; k++)
            x = x * 10 + (s[k] - '0');
        if (x > 255)
            return -1;
        v = v << 8 | x;
        parts++;
        if (parts < 4) {
            if (j >= n || s[j] != '.')
                return -1;
            j++;
        }
        i = j;
    }
    return i == n ? v : -1;
}

static char *ip_text(uint32_t v)
{
    return xasprintf("%u.%u.%u.%u", v >> 24, v >> 16 & 255, v >> 8 & 255, v & 255);
}

/* network.request's checks of XC_BRIDGE and XC_SUBNET (ipam.parse_subnet);
 * -1 where Python would refuse them (it says why). */
static int read_request(struct bridge_net *n)
{
    const char *b = getenv("XC_BRIDGE");
    n->bridge = xstrdup(b && *b ? b : "xc0");
    size_t bl = strlen(n->bridge);
    if (bl > 15 || strchr(n->bridge, '/') || strcmp(n->bridge, ".") == 0 || strcmp(n->bridge, "..") == 0)
        return xcr_fail("XC_BRIDGE=%s", n->bridge);
    const char *s = getenv("XC_SUBNET");
    if (!(s && *s))
        s = "10.88.0.0/16";
    const char *slash = strchr(s, '/');
    long long net = slash ? ip_parse(s, (size_t)(slash - s)) : -1;
    int plen = 0;
    if (net < 0 || !slash[1] || strlen(slash + 1) > 2 || strspn(slash + 1, "0123456789") != strlen(slash + 1) ||
        (plen = atoi(slash + 1)) < 8 || plen > 30)
        return xcr_fail("XC_SUBNET=%s", s);
    uint32_t mask = 0xffffffffu << (32 - plen);
    unsigned first = (unsigned)(net >> 24);
    if ((net & ~mask) || first == 0 || first == 127 || first >= 224 || (net >> 16) == (169 << 8 | 254))
        return xcr_fail("XC_SUBNET=%s", s);
    n->network = (uint32_t)net;
    n->prefixlen = plen;
    char *ip = ip_text(n->network);
    n->subnet = xasprintf("%s/%d", ip, plen);
    free(ip);
    n->gateway = ip_text(n->network + 1);
    return 0;
}

/* --- the bridge, as Python left it ---------------------------------------------------- */

static bool proc_is(const char *path, const char *want)
{
    size_t len;
    char *t = read_file(path, 64, &len);
    bool ok = t && len >= strlen(want) && strncmp(t, want, strlen(want)) == 0 &&
              (len == strlen(want) || t[strlen(want)] == '\n');
    free(t);
    return ok;
}

static bool is_mountpoint(const char *path)
{
    size_t len;
    char *t = read_file("/proc/self/mountinfo", 1 << 22, &len);
    if (t == NULL)
        return false;
    bool found = false;
    for (char *line = t; line && *line && !found;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        char *f = line;
        for (int k = 0; k < 4 && f; k++) {
            f = strchr(f, ' ');
            f = f ? f + 1 : NULL;
        }
        if (f) {
            char *e = strchr(f, ' ');
            found = e && (size_t)(e - f) == strlen(path) && strncmp(f, path, strlen(path)) == 0;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(t);
    return found;
}

int net_ready(struct bridge_net *n)
{
    memset(n, 0, sizeof *n);
    if (read_request(n) < 0)
        return -1;
    char *p = xasprintf("/sys/class/net/%s/bridge", n->bridge);
    bool bridge = isdir(p);
    free(p);
    if (!bridge)
        return xcr_fail("bridge %s not made yet", n->bridge);
    int s AUTOCLOSE = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", n->bridge);
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0 || !(ifr.ifr_flags & IFF_UP))
        return xcr_fail("bridge %s is not up", n->bridge);
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
    if (ioctl(s, SIOCGIFADDR, &ifr) < 0 || ntohl(sin->sin_addr.s_addr) != n->network + 1)
        return xcr_fail("bridge %s's address is not %s", n->bridge, n->gateway);
    if (ioctl(s, SIOCGIFNETMASK, &ifr) < 0 || ntohl(sin->sin_addr.s_addr) != 0xffffffffu << (32 - n->prefixlen))
        return xcr_fail("bridge %s's prefix is not /%d", n->bridge, n->prefixlen);
    p = xasprintf("/proc/sys/net/ipv4/conf/%s/route_localnet", n->bridge);
    bool rl = proc_is(p, "1");
    free(p);
    if (!rl || !proc_is("/proc/sys/net/ipv4/ip_forward", "1"))
        return xcr_fail("forwarding or route_localnet is off");
    if (nl_nft_table_exists("xcontainers") != 1)
        return xcr_fail("nftables has no xcontainers table");
    if (!is_mountpoint(NETNS_DIR))
        return xcr_fail("%s is not a mount yet", NETNS_DIR);
    return 0;
}

/* --- the record (ipam.NetworkState) ---------------------------------------------------- */

struct record {
    int lock;
    struct jval *doc, *atts, *last;
};

static struct jval *member(struct jval *doc, const char *key)
{
    struct jval *v = json_opt(doc, key);
    if (v == NULL) {
        v = json_new(J_OBJ);
        json_set(doc, key, v);
    }
    return v->t == J_OBJ ? v : NULL;
}

static int record_open(struct record *r)
{
    r->lock = -1;
    if (makedirs(STATE_DIR, 0711) < 0)
        return xcr_fail_errno("%s", STATE_DIR);
    r->lock = open(STATE_DIR "/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (r->lock < 0 || flock(r->lock, LOCK_EX) < 0)
        return xcr_fail_errno("%s/lock", STATE_DIR);
    size_t len;
    char *text = read_file(STATE_DIR "/state.json", JSON_MAX_SIZE, &len);
    if (text == NULL && errno != ENOENT)
        return xcr_fail_errno("%s/state.json", STATE_DIR);
    r->doc = text ? json_parse(text, len) : json_new(J_OBJ);
    free(text);
    /* the keys in the order NetworkState.save writes them */
    if (r->doc == NULL || r->doc->t != J_OBJ || !(r->atts = member(r->doc, "attachments")) ||
        !(r->last = member(r->doc, "last")) || !member(r->doc, "bridges"))
        return xcr_fail("the network state is not read natively");
    return 0;
}

static void record_close(struct record *r)
{
    if (r->lock >= 0)
        close(r->lock); /* (the flock goes with it) */
    r->lock = -1;
}

static int record_save(struct record *r)
{
    struct sbuf b = {0};
    json_dump(&b, r->doc);
    int rc = write_file(STATE_DIR "/state.json.tmp", b.s, b.len, O_CREAT | O_TRUNC, 0600);
    free(b.s);
    if (rc < 0 || rename(STATE_DIR "/state.json.tmp", STATE_DIR "/state.json") < 0)
        return xcr_fail_errno("saving the network state");
    return 0;
}

static void json_del(struct jval *obj, const char *key)
{
    for (size_t i = 0; i < obj->n; i++)
        if (strcmp(obj->k[i], key) == 0) {
            memmove(obj->k + i, obj->k + i + 1, (obj->n - i - 1) * sizeof *obj->k);
            memmove(obj->v + i, obj->v + i + 1, (obj->n - i - 1) * sizeof *obj->v);
            obj->n--;
            return;
        }
}

/* ipam.NetworkState.allocate */
static int allocate(struct record *r, struct bridge_net *n, uint32_t *out)
{
    uint32_t size = 1u << (32 - n->prefixlen), first = n->network + 2, last = n->network + size - 2;
    uint32_t cap = last - first + 1;
    uint32_t *taken = xmalloc(sizeof *taken * (r->atts->n + 1));
    size_t nt = 0;
    for (size_t i = 0; i < r->atts->n; i++) {
        struct jval *a = r->atts->v[i];
        if (a->t != J_OBJ)
            continue;
        struct jval *br = json_opt(a, "bridge"), *ad = json_opt(a, "address");
        if (json_is_str(br) && strcmp(br->s, n->bridge) == 0 && json_is_str(ad) && ad->n) {
            long long v = ip_parse(ad->s, ad->n);
            if (v >= 0)
                taken[nt++] = (uint32_t)v;
        }
    }
    uint32_t start = first;
    struct jval *prev = json_opt(r->last, n->bridge);
    if (prev != NULL) {
        if (!json_is_str(prev))
            return xcr_fail("the network state's last address");
        long long after = ip_parse(prev->s, prev->n);
        if (after >= first && after <= last)
            start = after < last ? (uint32_t)after + 1 : first;
    }
    for (uint32_t i = 0; i < cap; i++) {
        uint32_t a = first + (start - first + i) % cap;
        bool used = false;
        for (size_t k = 0; k < nt && !used; k++)
            used = taken[k] == a;
        if (!used) {
            free(taken);
            *out = a;
            return 0;
        }
    }
    free(taken);
    return xcr_fail("subnet %s is full", n->subnet);
}

/* --- making and removing ----------------------------------------------------------------- */

/* links.create_netns: the namespace, lo up, the bind mount, its sysctls */
static int create_netns(const char *path)
{
    int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (fd < 0)
        return xcr_fail_errno("network namespace %s", path);
    close(fd);
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return xcr_fail_errno("pipe");
    pid_t pid = fork();
    if (pid < 0)
        return xcr_fail_errno("fork");
    if (pid == 0) {
        close(p[0]);
        const char *what = "unshare";
        int s = -1;
        struct ifreq ifr = {.ifr_name = "lo"};
        if (unshare(CLONE_NEWNET) < 0)
            goto fail;
        what = "lo";
        s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
            goto fail;
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
            goto fail;
        what = "mount";
        if (mount("/proc/self/ns/net", path, NULL, MS_BIND, NULL) < 0)
            goto fail;
        what = "sysctl net.ipv4.ping_group_range";
        if (write_file("/proc/sys/net/ipv4/ping_group_range", "0 2147483647", 12, O_TRUNC, 0) < 0)
            goto fail;
        what = "sysctl net.ipv4.ip_unprivileged_port_start";
        if (write_file("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0", 1, O_TRUNC, 0) < 0)
            goto fail;
        _exit(0);
    fail:;
        char msg[256];
        int n = snprintf(msg, sizeof msg, "%s: %s", what, strerror(errno));
        if (write(p[1], msg, (size_t)n) < 0)
            _exit(2);
        _exit(1);
    }
    close(p[1]);
    char msg[257] = {0};
    ssize_t got = read(p[0], msg, sizeof msg - 1);
    close(p[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (got > 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return xcr_fail("network namespace %s: %s", path, got > 0 ? msg : "its maker failed");
    return 0;
}

/* links.remove_netns: 0, or -1 (xcr_error) */
static int remove_netns(const char *path)
{
    if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
        return xcr_fail_errno("unmounting network namespace %s", path);
    if (unlink(path) < 0 && errno != ENOENT)
        return xcr_fail_errno("removing %s", path);
    return 0;
}

static int delete_link(const char *name)
{
    unsigned idx = if_nametoindex(name);
    if (idx == 0)
        return 0;
    int fd AUTOCLOSE = nl_open(NETLINK_ROUTE);
    int rc = fd < 0 ? fd : nl_link_del(fd, (int)idx);
    if (rc < 0 && rc != -ENODEV)
        return errno = -rc, xcr_fail_errno("deleting link %s", name);
    return 0;
}

/* links.add_veth */
static int add_veth(const struct bridge_net *n)
{
    int fd AUTOCLOSE = nl_open(NETLINK_ROUTE);
    int ns AUTOCLOSE = open(n->netns, O_RDONLY | O_CLOEXEC);
    unsigned br = if_nametoindex(n->bridge);
    if (fd < 0 || ns < 0 || br == 0)
        return xcr_fail_errno("creating veth %s", n->veth);
    int rc = nl_veth_add(fd, n->veth, "eth0", ns);
    if (rc < 0)
        return errno = -rc, xcr_fail_errno("creating veth %s", n->veth);
    unsigned idx = if_nametoindex(n->veth);
    char *hp = xasprintf("/sys/class/net/%s/brport/hairpin_mode", n->veth);
    rc = idx == 0 ? -ENODEV : nl_link_set(fd, (int)idx, (int)br, false);
    if (rc == 0 && write_file(hp, "1", 1, O_TRUNC, 0) < 0)
        rc = -errno;
    free(hp);
    if (rc == 0)
        rc = nl_link_set(fd, (int)idx, 0, true);
    if (rc < 0)
        return errno = -rc, xcr_fail_errno("attaching %s to %s", n->veth, n->bridge);
    return 0;
}

/* links.configure_container: in the namespace, eth0 up with the address
 * and a default route via the gateway (lo is up already).  This thread
 * joins the namespace for the socket() call only. */
static int configure(const struct bridge_net *n)
{
    int home AUTOCLOSE = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    int ns AUTOCLOSE = open(n->netns, O_RDONLY | O_CLOEXEC);
    if (home < 0 || ns < 0 || setns(ns, CLONE_NEWNET) < 0)
        return xcr_fail_errno("configuring eth0 in %s", n->netns);
    int fd AUTOCLOSE = nl_open(NETLINK_ROUTE);
    unsigned eth0 = if_nametoindex("eth0");
    if (setns(home, CLONE_NEWNET) < 0) {
        fprintf(stderr, "xc: cannot return to the host's network namespace: %s\n", strerror(errno));
        _exit(1);
    }
    if (fd < 0 || eth0 == 0)
        return xcr_fail("configuring eth0 in %s: no eth0", n->netns);
    int rc = nl_addr_add(fd, (int)eth0, htonl(n->address), n->prefixlen);
    if (rc == 0)
        rc = nl_link_set(fd, (int)eth0, 0, true);
    if (rc == 0)
        rc = nl_default_route(fd, htonl(n->network + 1));
    if (rc < 0)
        return errno = -rc, xcr_fail_errno("configuring eth0 (%s/%d) in %s", n->address_text, n->prefixlen,
                                           n->netns);
    return 0;
}

/* network._unmake of a bridge attachment without ports: 0, or -1 with
 * xcr_error naming what stays. */
static int unmake(const char *veth, const char *address, const char *netns)
{
    char errs[sizeof xcr_error] = "";
    if (veth && delete_link(veth) < 0)
        snprintf(errs, sizeof errs, "veth: %.900s", xcr_error);
    long long a = address ? ip_parse(address, strlen(address)) : -1;
    if (a >= 0)
        nl_conntrack_flush(htonl((uint32_t)a));
    if (netns && remove_netns(netns) < 0)
        snprintf(errs + strlen(errs), sizeof errs - strlen(errs), "%snetns: %.900s", *errs ? "; " : "", xcr_error);
    return *errs ? xcr_fail("%s", errs) : 0;
}

int net_attach(const char *state_root, const char *cid, struct bridge_net *n)
{
    struct record r;
    if (record_open(&r) < 0) {
        record_close(&r);
        return -1;
    }
    n->key = attachment_key(state_root, cid);
    if (json_opt(r.atts, n->key) != NULL) {
        record_close(&r);
        return xcr_fail("container %s already has a network", cid);
    }
    struct jval *last_before = json_opt(r.last, n->bridge);
    if (allocate(&r, n, &n->address) < 0) {
        record_close(&r);
        return -1;
    }
    n->address_text = ip_text(n->address);
    n->netns = xasprintf("%s/%s", NETNS_DIR, n->key);
    n->veth = xasprintf("xcv%08x", n->address);
    /* the attachment as network.attach writes it, before anything is made */
    struct jval *att = json_new(J_OBJ), *owner = json_new(J_ARR);
    pid_t self = getpid();
    long long start = process_start_time(self);
    owner->v = xmalloc(2 * sizeof *owner->v);
    owner->v[owner->n++] = json_int_new(self);
    owner->v[owner->n++] = json_int_new(start < 0 ? 0 : start);
    json_set(att, "id", json_str(cid));
    json_set(att, "root", json_str(path_abspath(state_root)));
    json_set(att, "mode", json_str("bridge"));
    json_set(att, "owner", owner);
    json_set(att, "netns", json_str(n->netns));
    json_set(att, "bridge", json_str(n->bridge));
    json_set(att, "subnet", json_str(n->subnet));
    json_set(att, "gateway", json_str(n->gateway));
    json_set(att, "prefixlen", json_int_new(n->prefixlen));
    json_set(att, "address", json_str(n->address_text));
    json_set(att, "ports", json_new(J_ARR));
    json_set(att, "tag", json_str(rule_tag(n->key)));
    json_set(att, "veth", json_str(n->veth));
    json_set(r.atts, n->key, att);
    json_set(r.last, n->bridge, json_str(n->address_text));
    if (record_save(&r) < 0) {
        record_close(&r);
        return -1;
    }
    if (create_netns(n->netns) == 0 && add_veth(n) == 0 && configure(n) == 0) {
        record_close(&r);
        return 0;
    }
    char why[sizeof xcr_error];
    memcpy(why, xcr_error, sizeof why);
    if (unmake(n->veth, n->address_text, n->netns) == 0) {
        json_del(r.atts, n->key);
        if (last_before)
            json_set(r.last, n->bridge, last_before);
        else
            json_del(r.last, n->bridge);
        record_save(&r);
    }
    record_close(&r);
    return xcr_fail("%s", why);
}

int net_detach(const char *state_root, const char *cid)
{
    /* The attachment is read under the lock, its kernel objects removed
     * without it (the veth's removal and the conntrack dumps take ~50 ms
     * here, and every other `xc run` of a bridge would wait on the lock
     * meanwhile), then it is removed under the lock.  Meanwhile it names
     * what may still exist, and its owner (this process or its caller) is
     * alive: a collector leaves it alone, and a parallel detach of the same
     * container (`xc rm`) does the same idempotent steps. */
    struct record r;
    if (record_open(&r) < 0) {
        record_close(&r);
        return -1;
    }
    char *key = attachment_key(state_root, cid);
    struct jval *att = json_opt(r.atts, key);
    record_close(&r);
    int rc = 0;
    if (att != NULL && att->t == J_OBJ) {
        struct jval *veth = json_opt(att, "veth"), *addr = json_opt(att, "address"), *ns = json_opt(att, "netns");
        rc = unmake(json_is_str(veth) ? veth->s : NULL, json_is_str(addr) ? addr->s : NULL,
                    json_is_str(ns) ? ns->s : NULL);
        if (rc == 0) {
            if (record_open(&r) == 0) {
                json_del(r.atts, key);
                rc = record_save(&r);
            } else {
                rc = -1;
            }
            record_close(&r);
        }
    } else if (att != NULL) {
        rc = xcr_fail("the network state's attachment %s", key);
    }
    free(key);
    return rc;
}

int net_detach_later(const char *state_root, const char *cid)
{
    int go[2];
    if (pipe2(go, O_CLOEXEC) < 0)
        return net_detach(state_root, cid);
    fflush(stdout);
    fflush(stderr);
    pid_t child = fork();
    if (child == 0) {
        /* the network's remover: none of the caller's files, its own session */
        close(go[1]);
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        for (int fd = 0; fd < 3; fd++)
            dup2(null, fd);
        dup2(go[0], 3);
        close_range(4, ~0U, 0);
        setsid();
        char c;
        if (read(3, &c, 1) == 1) {
            mark("network-removing");
            net_detach(state_root, cid);
        }
        _exit(0);
    }
    close(go[0]);
    /* The attachment is the remover's from here on: a collector sees its
     * owner alive until it is done (and collects it if the remover dies). */
    long long start = child > 0 ? process_start_time(child) : -1;
    struct record r;
    bool handed = false;
    if (start >= 0 && record_open(&r) == 0) {
        char *key = attachment_key(state_root, cid);
        struct jval *att = json_opt(r.atts, key), *owner = json_new(J_ARR);
        if (att != NULL && att->t == J_OBJ) {
            owner->v = xmalloc(2 * sizeof *owner->v);
            owner->v[owner->n++] = json_int_new(child);
            owner->v[owner->n++] = json_int_new(start);
            json_set(att, "owner", owner);
            handed = record_save(&r) == 0;
        }
        free(key);
    }
    if (start >= 0)
        record_close(&r);
    if (handed && write(go[1], "1", 1) != 1)
        handed = false;
    close(go[1]); /* (the remover exits at once if nothing was written) */
    return handed ? 0 : net_detach(state_root, cid);
}
