/*
 * `xc run`'s default network, a bridge, as network.attach and
 * network.detach make and remove it (xcontainers/network.py, ipam.py,
 * links.py): an attachment recorded in /run/xc-network/state.json under
 * its lock before anything is made, an address handed out round-robin,
 * a network namespace kept by a bind mount under /run/xc-network/netns,
 * a veth pair (the host end on the bridge in hairpin mode, the peer
 * `eth0` inside with the address and a default route via the bridge),
 * the published ports' DNAT rules (Debian's nft, as nft.py runs it), and
 * after the container: the rules, the veth, its connection-tracking
 * entries, the namespace, the attachment.
 *
 * Only a bridge that Python's `xc run` has made ready is used here: it
 * exists, holds the subnet's gateway as its address and is up, forwarding
 * and route_localnet are on, and nftables holds xc's table (whose
 * masquerade rule Python made with the bridge).  Anything else -- no
 * bridge yet, published ports, a state file this code does not read --
 * falls back to Python, which makes what is missing or words the error;
 * so do -p values Python refuses, a port another container publishes or a
 * program of the host holds.
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
#include <strings.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
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

/* network.parse_port: [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp]; -1 where
 * Python refuses it (and words why). */
static int parse_port(const char *spec, struct port *p)
{
    const char *slash = strchr(spec, '/');
    size_t blen = slash ? (size_t)(slash - spec) : strlen(spec);
    p->proto = "tcp";
    if (slash) {
        if (strcasecmp(slash + 1, "tcp") == 0)
            p->proto = "tcp";
        else if (strcasecmp(slash + 1, "udp") == 0)
            p->proto = "udp";
        else
            return xcr_fail("-p %s", spec);
    }
    const char *f[3];
    size_t fl[3];
    int nf = 0;
    for (size_t i = 0, st = 0; i <= blen; i++)
        if (i == blen || spec[i] == ':') {
            if (nf == 3)
                return xcr_fail("-p %s", spec);
            f[nf] = spec + st;
            fl[nf++] = i - st;
            st = i + 1;
        }
    if (nf < 2)
        return xcr_fail("-p %s", spec);
    p->host_ip[0] = 0;
    if (nf == 3) {
        if (fl[0] >= sizeof p->host_ip || ip_parse(f[0], fl[0]) < 0)
            return xcr_fail("-p %s", spec);
        if (!(fl[0] == 7 && strncmp(f[0], "0.0.0.0", 7) == 0))
            snprintf(p->host_ip, sizeof p->host_ip, "%.*s", (int)fl[0], f[0]);
    }
    int *out[2] = {&p->host_port, &p->container_port};
    for (int k = 0; k < 2; k++) {
        const char *t = f[nf - 2 + k];
        size_t n = fl[nf - 2 + k];
        long v = 0;
        if (n == 0 || n > 9)
            return xcr_fail("-p %s", spec);
        for (size_t i = 0; i < n; i++) {
            if (t[i] < '0' || t[i] > '9')
                return xcr_fail("-p %s", spec);
            v = v * 10 + (t[i] - '0');
        }
        if (v < 1 || v > 65535)
            return xcr_fail("-p %s", spec);
        *out[k] = (int)v;
    }
    return 0;
}

static bool ports_clash(const char *ip_a, int port_a, const char *proto_a, const char *ip_b, int port_b,
                        const char *proto_b)
{
    return port_a == port_b && strcmp(proto_a, proto_b) == 0 && (!*ip_a || !*ip_b || strcmp(ip_a, ip_b) == 0);
}

int net_ready(struct bridge_net *n, const char *const *publish, int npublish)
{
    memset(n, 0, sizeof *n);
    n->ports = xmalloc(sizeof *n->ports * (size_t)(npublish + 1));
    for (int i = 0; i < npublish; i++) {
        if (parse_port(publish[i], &n->ports[i]) < 0)
            return -1;
        for (int k = 0; k < i; k++) /* network.request: published twice */
            if (ports_clash(n->ports[k].host_ip, n->ports[k].host_port, n->ports[k].proto, n->ports[i].host_ip,
                            n->ports[i].host_port, n->ports[i].proto))
                return xcr_fail("-p %s twice", publish[i]);
        n->nports++;
    }
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

/* network._owner: [pid, start time or 0] */
static struct jval *owner_of(pid_t pid, long long start)
{
    struct jval *o = json_new(J_ARR);
    o->v = xmalloc(2 * sizeof *o->v);
    o->v[o->n++] = json_int_new(pid);
    o->v[o->n++] = json_int_new(start < 0 ? 0 : start);
    return o;
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

/* --- published ports: nft, as nft.py drives it ---------------------------------------------- */

static const char *nft_path(void)
{
    static const char *const cand[] = {"/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"};
    for (size_t i = 0; i < sizeof cand / sizeof *cand; i++)
        if (access(cand[i], X_OK) == 0)
            return cand[i];
    return NULL;
}

/* nft ARGS with *input* on its stdin (or none); its stdout in *out* (if
 * not NULL).  0, or -1 with xcr_error carrying nft's "Error" lines. */
static int nft(const char *const *args, const char *input, char **out)
{
    const char *bin = nft_path();
    if (bin == NULL)
        return xcr_fail("nft is not installed");
    int in[2] = {-1, -1}, o[2], e[2];
    if ((input && pipe2(in, O_CLOEXEC) < 0) || pipe2(o, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0)
        return xcr_fail_errno("pipe");
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return xcr_fail_errno("fork");
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        dup2(input ? in[0] : null, 0);
        dup2(o[1], 1);
        dup2(e[1], 2);
        char *argv[16] = {(char *)bin};
        int k = 1;
        for (; args[k - 1] && k < 15; k++)
            argv[k] = (char *)args[k - 1];
        argv[k] = NULL;
        execv(bin, argv);
        _exit(127);
    }
    close(o[1]);
    close(e[1]);
    if (input) {
        close(in[0]);
        write_all(in[1], input, strlen(input));
        close(in[1]);
    }
    struct sbuf ob = {0}, eb = {0};
    char buf[8192];
    ssize_t r;
    while ((r = read(o[0], buf, sizeof buf)) > 0 || (r < 0 && errno == EINTR))
        if (r > 0)
            sb_add(&ob, buf, (size_t)r);
    while ((r = read(e[0], buf, sizeof buf)) > 0 || (r < 0 && errno == EINTR))
        if (r > 0)
            sb_add(&eb, buf, (size_t)r);
    close(o[0]);
    close(e[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        const char *msg = eb.s ? eb.s : "failed";
        const char *err = eb.s ? strstr(eb.s, "Error") : NULL;
        int len = (int)(err ? strcspn(err, "\n") : strcspn(msg, "\n"));
        xcr_fail("nft %s: %.*s", args[0], len, err ? err : msg);
        free(ob.s);
        free(eb.s);
        return -1;
    }
    free(eb.s);
    if (out)
        *out = ob.s ? ob.s : xstrdup("");
    else
        free(ob.s);
    return 0;
}

/* nft.ensure_table() + nft.port_rules(tag, ports, address), one transaction */
static int add_port_rules(const struct bridge_net *n, const char *tag)
{
    struct sbuf b = {0};
    sb_puts(&b, "table ip xcontainers {\n"
                "    chain nat_pre { type nat hook prerouting priority dstnat; policy accept; }\n"
                "    chain nat_out { type nat hook output priority -100; policy accept; }\n"
                "    chain nat_post { type nat hook postrouting priority srcnat; policy accept; }\n"
                "}\n");
    for (int i = 0; i < n->nports; i++) {
        const struct port *p = &n->ports[i];
        char *match = *p->host_ip ? xasprintf("ip daddr %s", p->host_ip) : xstrdup("fib daddr type local");
        char *rule = xasprintf("%s %s dport %d dnat to %s:%d comment \"%s\"", match, p->proto, p->host_port,
                               n->address_text, p->container_port, tag);
        sb_printf(&b, "add rule ip xcontainers nat_pre %s\n", rule);
        sb_printf(&b, "add rule ip xcontainers nat_out %s\n", rule);
        free(match);
        free(rule);
    }
    const char *args[] = {"-f", "-", NULL};
    int rc = nft(args, b.s, NULL);
    free(b.s);
    return rc;
}

/* nft.delete_tagged([tag]) */
static int delete_port_rules(const char *tag)
{
    const char *list[] = {"-j", "list", "table", "ip", "xcontainers", NULL};
    char *out = NULL;
    if (nft(list, NULL, &out) < 0)
        return strstr(xcr_error, "No such file or directory") ? 0 : -1;
    struct jval *doc = json_parse(out, strlen(out));
    free(out);
    struct jval *items = doc && doc->t == J_OBJ ? json_opt(doc, "nftables") : NULL;
    if (items == NULL || items->t != J_ARR)
        return xcr_fail("nft -j list: not the listing expected");
    struct sbuf b = {0};
    for (size_t i = 0; i < items->n; i++) {
        struct jval *r = items->v[i]->t == J_OBJ ? json_opt(items->v[i], "rule") : NULL;
        if (r == NULL || r->t != J_OBJ)
            continue;
        struct jval *c = json_opt(r, "comment"), *chain = json_opt(r, "chain"), *h = json_opt(r, "handle");
        long long handle;
        if (json_is_str(c) && strcmp(c->s, tag) == 0 && json_is_str(chain) && json_int_in(h, 0, 1LL << 40, &handle))
            sb_printf(&b, "delete rule ip xcontainers %s handle %lld\n", chain->s, handle);
    }
    if (b.s == NULL)
        return 0;
    const char *args[] = {"-f", "-", NULL};
    int rc = nft(args, b.s, NULL);
    free(b.s);
    return rc;
}

/* network._check_published: not published by another container, not held
 * by a program of the host (a test bind). */
static int check_published(const struct record *r, const struct bridge_net *n)
{
    for (int i = 0; i < n->nports; i++) {
        const struct port *m = &n->ports[i];
        for (size_t k = 0; k < r->atts->n; k++) {
            struct jval *ps = r->atts->v[k]->t == J_OBJ ? json_opt(r->atts->v[k], "ports") : NULL;
            for (size_t j = 0; ps && ps->t == J_ARR && j < ps->n; j++) {
                struct jval *q = ps->v[j];
                struct jval *ip = json_opt(q, "host_ip"), *pr = json_opt(q, "proto");
                long long hp;
                if (q->t != J_OBJ || !json_is_str(ip) || !json_is_str(pr) ||
                    !json_int_in(json_opt(q, "host_port"), 0, 65535, &hp))
                    return xcr_fail("the network state's ports");
                if (ports_clash(m->host_ip, m->host_port, m->proto, ip->s, (int)hp, pr->s))
                    return xcr_fail("-p %d: published by %s", m->host_port, r->atts->k[k]);
            }
        }
        int s AUTOCLOSE = socket(AF_INET, (strcmp(m->proto, "tcp") == 0 ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
        int one = 1;
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)m->host_port)};
        if (*m->host_ip)
            inet_pton(AF_INET, m->host_ip, &sa.sin_addr);
        if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
            bind(s, (struct sockaddr *)&sa, sizeof sa) < 0)
            return xcr_fail_errno("-p %d", m->host_port);
    }
    return 0;
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
static int unmake(const char *tag, const char *veth, const char *address, const char *netns)
{
    char errs[sizeof xcr_error] = "";
    if (tag && delete_port_rules(tag) < 0)
        snprintf(errs, sizeof errs, "nft rules: %.600s", xcr_error);
    if (veth && delete_link(veth) < 0)
        snprintf(errs + strlen(errs), sizeof errs - strlen(errs), "%sveth: %.600s", *errs ? "; " : "", xcr_error);
    long long a = address ? ip_parse(address, strlen(address)) : -1;
    if (a >= 0)
        nl_conntrack_flush(htonl((uint32_t)a));
    if (netns && remove_netns(netns) < 0)
        snprintf(errs + strlen(errs), sizeof errs - strlen(errs), "%snetns: %.600s", *errs ? "; " : "", xcr_error);
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
    if (check_published(&r, n) < 0) {
        record_close(&r);
        return -1;
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
    struct jval *att = json_new(J_OBJ);
    json_set(att, "id", json_str(cid));
    json_set(att, "root", json_str(path_abspath(state_root)));
    json_set(att, "mode", json_str("bridge"));
    json_set(att, "owner", owner_of(getpid(), process_start_time(getpid())));
    json_set(att, "netns", json_str(n->netns));
    json_set(att, "bridge", json_str(n->bridge));
    json_set(att, "subnet", json_str(n->subnet));
    json_set(att, "gateway", json_str(n->gateway));
    json_set(att, "prefixlen", json_int_new(n->prefixlen));
    json_set(att, "address", json_str(n->address_text));
    struct jval *ports = json_new(J_ARR);
    ports->v = xmalloc(sizeof *ports->v * (size_t)(n->nports + 1));
    for (int i = 0; i < n->nports; i++) { /* PortMapping.to_dict */
        struct jval *p = json_new(J_OBJ);
        json_set(p, "host_ip", json_str(n->ports[i].host_ip));
        json_set(p, "host_port", json_int_new(n->ports[i].host_port));
        json_set(p, "container_port", json_int_new(n->ports[i].container_port));
        json_set(p, "proto", json_str(n->ports[i].proto));
        ports->v[ports->n++] = p;
    }
    char *tag = rule_tag(n->key);
    json_set(att, "ports", ports);
    json_set(att, "tag", json_str(tag));
    json_set(att, "veth", json_str(n->veth));
    json_set(r.atts, n->key, att);
    json_set(r.last, n->bridge, json_str(n->address_text));
    if (record_save(&r) < 0) {
        record_close(&r);
        return -1;
    }
    if (create_netns(n->netns) == 0 && add_veth(n) == 0 && configure(n) == 0 &&
        (n->nports == 0 || add_port_rules(n, tag) == 0)) {
        record_close(&r);
        return 0;
    }
    char why[sizeof xcr_error];
    memcpy(why, xcr_error, sizeof why);
    if (unmake(n->nports ? tag : NULL, n->veth, n->address_text, n->netns) == 0) {
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
        struct jval *ports = json_opt(att, "ports"), *tag = json_opt(att, "tag");
        bool rules = ports && ports->t == J_ARR && ports->n > 0 && json_is_str(tag);
        rc = unmake(rules ? tag->s : NULL, json_is_str(veth) ? veth->s : NULL, json_is_str(addr) ? addr->s : NULL,
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
    pid_t child = fork_remover(go);
    if (child == 0) {
        char c;
        if (read(3, &c, 1) == 1) {
            mark("network-removing");
            net_detach(state_root, cid);
        }
        _exit(0);
    }
    /* The attachment is the remover's from here on: a collector sees its
     * owner alive until it is done (and collects it if the remover dies). */
    long long start = child > 0 ? process_start_time(child) : -1;
    struct record r;
    bool handed = false;
    if (start >= 0 && record_open(&r) == 0) {
        char *key = attachment_key(state_root, cid);
        struct jval *att = json_opt(r.atts, key);
        if (att != NULL && att->t == J_OBJ) {
            json_set(att, "owner", owner_of(child, start));
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
