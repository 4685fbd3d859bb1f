// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vhost-net backends: a tap (or an AF_PACKET socket) and
 * VHOST_NET_SET_BACKEND.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
/* glibc's net/if.h first: linux/libc-compat.h then skips the duplicates */
#include <net/if.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/kcmp.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <linux/virtio_net.h>

#ifdef HAVE_LIBNL
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#endif

#include "kdev-internal.h"

#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#define TUN_F_USO6 0x40
#endif
#ifndef PACKET_VNET_HDR_SZ
#define PACKET_VNET_HDR_SZ 24
#endif
#ifndef VIRTIO_NET_F_GUEST_USO4
#define VIRTIO_NET_F_GUEST_USO4 54
#define VIRTIO_NET_F_GUEST_USO6 55
#endif

/* MAX_TAP_QUEUES in drivers/net/tun.c */
#define TAP_QUEUES_MAX 256

struct tap_queue {
	int fd;
	bool detached; /* TUNSETQUEUE IFF_DETACH_QUEUE */
};

struct vh_tap {
	int refcount;
	struct vh_ctx *ctx;
	bool packet; /* AF_PACKET socket rather than a tun fd */
	bool mq; /* IFF_MULTI_QUEUE: queues can be detached */
	bool vnet_hdr; /* a tap with IFF_VNET_HDR: frames carry a header */
	int ifindex;
	char name[IFNAMSIZ];
	unsigned int nqueues;
	struct tap_queue q[]; /* q[0] is vh_tap_get_fd() */
};

/*
 * Whether fd's interface (a tap) or socket (a packet socket) lives in our
 * network namespace: the name and ifindex found for it are looked up in
 * ours, where another interface may bear that name or index.  A kernel
 * that cannot tell (before 5.2 for a tap) or will not (no CAP_NET_ADMIN
 * over that namespace) leaves it as it was: ours.
 */
static bool fd_netns_is_ours(int fd, bool packet)
{
	struct stat a, b;
	bool ours = true;
	int ns;

	ns = ioctl(fd, packet ? SIOCGSKNS : TUNGETDEVNETNS);
	if (ns < 0)
		return true;
	if (fstat(ns, &a) == 0 && stat("/proc/self/ns/net", &b) == 0)
		ours = a.st_ino == b.st_ino && a.st_dev == b.st_dev;
	close(ns);
	return ours;
}

/* Takes over the fds on success only. */
static int tap_alloc(struct vh_ctx *ctx, const int *fds, const bool *detached,
		     unsigned int n, bool packet, bool mq, bool vnet_hdr,
		     const char *name, struct vh_tap **out)
{
	struct vh_tap *tap;
	unsigned int i;

	tap = calloc(1, sizeof(*tap) + n * sizeof(tap->q[0]));
	if (!tap)
		return -ENOMEM;
	tap->refcount = 1;
	tap->ctx = vh_ctx_ref(ctx);
	tap->packet = packet;
	tap->mq = mq;
	tap->vnet_hdr = vnet_hdr;
	tap->nqueues = n;
	for (i = 0; i < n; i++) {
		tap->q[i].fd = fds[i];
		tap->q[i].detached = detached ? detached[i] : false;
	}
	snprintf(tap->name, sizeof(tap->name), "%s", name);
	if (fd_netns_is_ours(fds[0], packet)) {
		tap->ifindex = (int)if_nametoindex(tap->name);
	} else {
		/* its link state and MTU are its namespace's business */
		tap->ifindex = 0;
		vh_info(ctx, "%s: in another network namespace\n", name);
	}
	vh_info(ctx, "%s %s (ifindex %d) fd %d, %u queue%s\n",
		packet ? "packet" : "tap", tap->name, tap->ifindex, fds[0], n,
		n == 1 ? "" : "s");
	*out = tap;
	return 0;
}

/* dev_valid_name() in net/core/dev.c, plus room for the NUL */
static bool valid_ifname(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len >= IFNAMSIZ)
		return false;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	return strpbrk(name, "/: \t\n") == NULL;
}

/* One /dev/net/tun fd on the tap name; the kernel's name goes to ifname. */
static int tap_open(struct vh_ctx *ctx, const char *name, short flags,
		    char ifname[IFNAMSIZ])
{
	struct ifreq ifr;
	int fd, err;

	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		err = -errno;
		vh_err(ctx, "/dev/net/tun: %d\n", err);
		return err;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = flags;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		err = -errno;
		vh_err(ctx, "TUNSETIFF %s: %d\n", name, err);
		close(fd);
		return err;
	}
	ifr.ifr_name[IFNAMSIZ - 1] = '\0';
	snprintf(ifname, IFNAMSIZ, "%s", ifr.ifr_name);
	return fd;
}

VH_EXPORT int vh_tap_new(struct vh_ctx *ctx, const char *name,
			 struct vh_tap **out)
{
	char ifname[IFNAMSIZ];
	int fd, err;

	if (!ctx || !out)
		return -EINVAL;
	if (!name)
		name = "vhtap%d";
	if (!valid_ifname(name))
		return -EINVAL;
	fd = tap_open(ctx, name, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, ifname);
	if (fd < 0)
		return fd;
	err = tap_alloc(ctx, &fd, NULL, 1, false, false, true, ifname, out);
	if (err)
		close(fd);
	return err;
}

VH_EXPORT int vh_tap_new_mq(struct vh_ctx *ctx, const char *name,
			    unsigned int queues, struct vh_tap **out)
{
	const short flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR |
			    IFF_MULTI_QUEUE;
	char ifname[IFNAMSIZ];
	unsigned int i;
	int *fds, err = 0;

	if (!ctx || !out || queues < 1 || queues > TAP_QUEUES_MAX)
		return -EINVAL;
	if (!name)
		name = "vhtap%d";
	if (!valid_ifname(name))
		return -EINVAL;
	fds = calloc(queues, sizeof(*fds));
	if (!fds)
		return -ENOMEM;
	for (i = 0; i < queues; i++) {
		/* the first open names (or creates) it, the rest attach by name */
		fds[i] = tap_open(ctx, i ? ifname : name, flags, ifname);
		if (fds[i] < 0) {
			err = fds[i];
			break;
		}
	}
	if (!err)
		err = tap_alloc(ctx, fds, NULL, queues, false, true, true,
				ifname, out);
	if (err) {
		/* the last close removes an interface we created */
		while (i-- > 0)
			close(fds[i]);
	}
	free(fds);
	return err;
}

/*
 * What fd is: a tap (its name, TUNGETIFF flags) or a bound SOCK_RAW
 * AF_PACKET socket (the name of the interface it is bound to).
 */
static int tap_identify(int fd, char name[IFNAMSIZ], bool *packet, short *flags)
{
	struct stat st;

	*packet = false;
	*flags = 0;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISSOCK(st.st_mode)) {
		struct sockaddr_ll sll;
		socklen_t len = sizeof(sll);
		int domain = 0;
		socklen_t dlen = sizeof(domain);

		if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dlen) < 0)
			return -errno;
		if (domain != AF_PACKET)
			return -ENOTTY;
		/* get_raw_socket() in drivers/vhost/net.c takes SOCK_RAW only */
		dlen = sizeof(domain);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &domain, &dlen) < 0)
			return -errno;
		if (domain != SOCK_RAW)
			return -ESOCKTNOSUPPORT;
		memset(&sll, 0, sizeof(sll));
		if (getsockname(fd, (struct sockaddr *)&sll, &len) < 0)
			return -errno;
		/* vhost-net wants a bound socket: tx goes out of sll_ifindex */
		if (sll.sll_ifindex <= 0 ||
		    !if_indextoname((unsigned int)sll.sll_ifindex, name))
			return -EDESTADDRREQ;
		*packet = true;
	} else {
		struct ifreq ifr;

		memset(&ifr, 0, sizeof(ifr));
		if (ioctl(fd, TUNGETIFF, &ifr) < 0)
			return errno == EBADFD ? -ENODEV : -ENOTTY;
		if (!(ifr.ifr_flags & IFF_TAP))
			return -ENOTTY; /* vhost-net needs an Ethernet tap */
		ifr.ifr_name[IFNAMSIZ - 1] = '\0';
		snprintf(name, IFNAMSIZ, "%s", ifr.ifr_name);
		*flags = ifr.ifr_flags;
	}
	return 0;
}

/*
 * The attribute of type `type` in the len bytes of attributes at rta.
 * RTA_NEXT() and IFLA_RTA() cast from char *, which -Wcast-align refuses:
 * the steps go through void * (netlink attributes are 4-byte aligned).
 */
static const struct rtattr *rta_find(const struct rtattr *rta, int len,
				     unsigned short type)
{
	while (RTA_OK(rta, len)) {
		if (rta->rta_type == type)
			return rta;
		len -= (int)RTA_ALIGN(rta->rta_len);
		rta = (const void *)((const char *)rta +
				     RTA_ALIGN(rta->rta_len));
	}
	return NULL;
}

/* The attributes after an RTM_NEWLINK message's struct ifinfomsg. */
static const struct rtattr *ifla_rta(const struct nlmsghdr *nh)
{
	return (const void *)((const char *)NLMSG_DATA(nh) +
			      NLMSG_ALIGN(sizeof(struct ifinfomsg)));
}

/*
 * Whether tap `name` puts a struct tun_pi before its frames (no IFF_NO_PI):
 * 1 or 0, from rtnetlink's IFLA_TUN_PI for the interface of that name in
 * our network namespace, once its MAC address shows it is fd's; -errno
 * when that cannot be told (another namespace, no such attribute).
 * TUNGETIFF cannot say: it reports IFF_NOFILTER, the same bit as
 * IFF_NO_PI, for every tap without a socket filter.
 */
static int tap_has_pi(int fd, const char *name)
{
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
		char attrs[RTA_SPACE(IFNAMSIZ)];
	} req;
	const size_t size = 32768;
	const struct rtattr *a, *info, *data;
	struct sockaddr_nl from;
	socklen_t fromlen = sizeof(from);
	struct nlmsghdr *nh;
	struct rtattr *rta;
	struct ifreq ifr;
	int s, len, ret;
	ssize_t n;
	void *buf;

	memset(&ifr, 0, sizeof(ifr));
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		return -errno;
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_type = RTM_GETLINK;
	req.nh.nlmsg_flags = NLM_F_REQUEST;
	req.nh.nlmsg_seq = 1;
	req.ifi.ifi_family = AF_UNSPEC;
	rta = (struct rtattr *)req.attrs;
	rta->rta_type = IFLA_IFNAME;
	rta->rta_len = (unsigned short)RTA_LENGTH(strlen(name) + 1);
	memcpy(RTA_DATA(rta), name, strlen(name) + 1);
	req.nh.nlmsg_len =
		NLMSG_LENGTH(sizeof(req.ifi)) + RTA_ALIGN(rta->rta_len);
	buf = malloc(size);
	if (!buf)
		return -ENOMEM;
	s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (s < 0) {
		ret = -errno;
		goto out;
	}
	if (send(s, &req, req.nh.nlmsg_len, 0) < 0) {
		ret = -errno;
		goto out;
	}
	memset(&from, 0, sizeof(from));
	do
		n = recvfrom(s, buf, size, MSG_TRUNC, (struct sockaddr *)&from,
			     &fromlen);
	while (n < 0 && errno == EINTR);
	ret = n < 0 ? -errno : -EPROTO;
	/* the kernel's (port 0) whole answer to our request */
	if (n < 0 || (size_t)n > size || from.nl_pid != 0)
		goto out;
	nh = buf;
	if (!NLMSG_OK(nh, (unsigned int)n) || nh->nlmsg_seq != 1)
		goto out;
	if (nh->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = NLMSG_DATA(nh);

		if (nh->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error < 0)
			ret = e->error;
		goto out;
	}
	if (nh->nlmsg_type != RTM_NEWLINK ||
	    nh->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg)))
		goto out;
	ret = -ENOENT;
	len = (int)IFLA_PAYLOAD(nh);
	a = rta_find(ifla_rta(nh), len, IFLA_ADDRESS);
	if (!a || RTA_PAYLOAD(a) != 6 ||
	    memcmp(RTA_DATA(a), ifr.ifr_hwaddr.sa_data, 6) != 0)
		goto out; /* not the interface behind fd */
	info = rta_find(ifla_rta(nh), len, IFLA_LINKINFO);
	if (!info)
		goto out;
	a = rta_find(RTA_DATA(info), (int)RTA_PAYLOAD(info), IFLA_INFO_KIND);
	data = rta_find(RTA_DATA(info), (int)RTA_PAYLOAD(info), IFLA_INFO_DATA);
	if (!a || RTA_PAYLOAD(a) < 4 || memcmp(RTA_DATA(a), "tun", 4) != 0 ||
	    !data)
		goto out;
	/* Linux 4.15 */
	a = rta_find(RTA_DATA(data), (int)RTA_PAYLOAD(data), IFLA_TUN_PI);
	if (a && RTA_PAYLOAD(a) >= 1)
		ret = *(const uint8_t *)RTA_DATA(a) != 0;
out:
	if (s >= 0)
		close(s);
	free(buf);
	return ret;
}

/*
 * Whether fds a and b are one open file (a dup() of the other, say): one
 * tap queue, which detaching "the other" would detach.  Where kcmp(2)
 * cannot tell (ENOSYS without CONFIG_KCMP, EPERM), the numbers only.
 */
static bool same_file(int a, int b)
{
	if (a == b)
		return true;
#ifdef SYS_kcmp
	return syscall(SYS_kcmp, (pid_t)getpid(), (pid_t)getpid(), KCMP_FILE,
		       (unsigned long)a, (unsigned long)b) == 0;
#else
	return false;
#endif
}

VH_EXPORT int vh_tap_new_from_fds(struct vh_ctx *ctx, const int *fds,
				  unsigned int n, struct vh_tap **out)
{
	char name[IFNAMSIZ] = "", first[IFNAMSIZ] = "";
	bool packet = false, mq = true, vnet_hdr = true, *detached = NULL;
	int *nfds = NULL, err = 0;
	unsigned int i, j;
	short flags;

	if (!ctx || !fds || !out || n < 1 || n > TAP_QUEUES_MAX)
		return -EINVAL;
	nfds = calloc(n, sizeof(*nfds));
	detached = calloc(n, sizeof(*detached));
	if (!nfds || !detached) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (fds[i] < 0) {
			err = -EINVAL;
			goto out;
		}
		for (j = 0; j < i; j++)
			if (same_file(fds[j], fds[i])) {
				vh_err(ctx, "fds %d and %d are one file\n",
				       fds[j], fds[i]);
				err = -EINVAL;
				goto out;
			}
		err = tap_identify(fds[i], name, &packet, &flags);
		if (err)
			goto out;
		/* queues of one multi-queue tap, or one fd of any kind */
		if (n > 1 && (packet || !(flags & IFF_MULTI_QUEUE) ||
			      (i && strcmp(name, first) != 0))) {
			vh_err(ctx, "fd %d (%s) is not a queue of tap %s\n",
			       fds[i], name, first);
			err = -EINVAL;
			goto out;
		}
		/*
		 * Without IFF_NO_PI tun puts a struct tun_pi before every
		 * frame, which neither vhost-net nor a guest knows of.  The
		 * flag is the tap's (every queue's): asked once.  TUNGETIFF's
		 * bit is IFF_NO_PI only with a socket filter (clear: no
		 * IFF_NO_PI for sure); else rtnetlink says, where it can.
		 */
		if (!packet && !i) {
			int pi = 1;

			if (flags & IFF_NOFILTER)
				pi = tap_has_pi(fds[i], name);
			if (pi > 0) {
				vh_err(ctx, "fd %d (tap %s): no IFF_NO_PI\n",
				       fds[i], name);
				err = -EINVAL;
				goto out;
			}
			if (pi < 0)
				vh_dbg(ctx,
				       "fd %d (tap %s): IFF_NO_PI unknown (%d), assumed\n",
				       fds[i], name, pi);
		}
		if (!(flags & IFF_MULTI_QUEUE))
			mq = false;
		/*
		 * Without IFF_VNET_HDR tun takes TUNSETVNETHDRSZ but carries
		 * no header: vh_tap_set_vnet_hdr_len() must know
		 */
		if (!(flags & IFF_VNET_HDR))
			vnet_hdr = false;
		detached[i] = flags & IFF_DETACH_QUEUE;
		if (!i)
			memcpy(first, name, sizeof(first));
	}
	for (i = 0; i < n; i++) {
		nfds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
		if (nfds[i] < 0) {
			err = -errno;
			break;
		}
	}
	if (!err)
		err = tap_alloc(ctx, nfds, detached, n, packet, mq && !packet,
				vnet_hdr && !packet, first, out);
	if (err)
		while (i-- > 0)
			close(nfds[i]);
out:
	free(detached);
	free(nfds);
	return err;
}

VH_EXPORT int vh_tap_new_from_fd(struct vh_ctx *ctx, int fd,
				 struct vh_tap **out)
{
	if (fd < 0)
		return -EINVAL;
	return vh_tap_new_from_fds(ctx, &fd, 1, out);
}

VH_EXPORT struct vh_tap *vh_tap_ref(struct vh_tap *tap)
{
	if (!tap)
		return NULL;
	__atomic_add_fetch(&tap->refcount, 1, __ATOMIC_RELAXED);
	return tap;
}

VH_EXPORT struct vh_tap *vh_tap_unref(struct vh_tap *tap)
{
	unsigned int i;

	if (!tap)
		return NULL;
	if (__atomic_sub_fetch(&tap->refcount, 1, __ATOMIC_ACQ_REL) > 0)
		return tap;
	for (i = 0; i < tap->nqueues; i++)
		close(tap->q[i].fd);
	vh_ctx_unref(tap->ctx);
	free(tap);
	return NULL;
}

VH_EXPORT int vh_tap_get_fd(const struct vh_tap *tap)
{
	return tap ? tap->q[0].fd : -EINVAL;
}

VH_EXPORT unsigned int vh_tap_get_queue_count(const struct vh_tap *tap)
{
	return tap ? tap->nqueues : 0;
}

VH_EXPORT int vh_tap_get_queue_fd(const struct vh_tap *tap, unsigned int q)
{
	if (!tap || q >= tap->nqueues)
		return -EINVAL;
	return tap->q[q].fd;
}

VH_EXPORT int vh_tap_set_queue_enabled(struct vh_tap *tap, unsigned int q,
				       bool enabled)
{
	struct ifreq ifr;
	int err;

	if (!tap || q >= tap->nqueues)
		return -EINVAL;
	/* tun_set_queue(): only the queues of an IFF_MULTI_QUEUE tap */
	if (!tap->mq)
		return -EOPNOTSUPP;
	if (tap->q[q].detached == !enabled)
		return 0;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = enabled ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
	if (ioctl(tap->q[q].fd, TUNSETQUEUE, &ifr) < 0) {
		err = -errno;
		vh_err(tap->ctx, "%s: queue %u: %s: %d\n", tap->name, q,
		       enabled ? "IFF_ATTACH_QUEUE" : "IFF_DETACH_QUEUE", err);
		return err;
	}
	tap->q[q].detached = !enabled;
	vh_dbg(tap->ctx, "%s: queue %u %s\n", tap->name, q,
	       enabled ? "attached" : "detached");
	return 0;
}

VH_EXPORT const char *vh_tap_get_name(const struct vh_tap *tap)
{
	return tap ? tap->name : NULL;
}

VH_EXPORT int vh_tap_get_ifindex(const struct vh_tap *tap)
{
	return tap ? tap->ifindex : -EINVAL;
}

VH_EXPORT bool vh_tap_is_packet_socket(const struct vh_tap *tap)
{
	return tap && tap->packet;
}

/*
 * virtio 1.3, 5.1.6: the header has num_buffers (12 bytes) with VERSION_1
 * or MRG_RXBUF; vhost_net_set_features() sizes it the same way.
 */
VH_EXPORT unsigned int vh_net_hdr_len(uint64_t features)
{
	if (features & ((1ULL << VIRTIO_F_VERSION_1) |
			(1ULL << VIRTIO_NET_F_MRG_RXBUF)))
		return sizeof(struct virtio_net_hdr_mrg_rxbuf);
	return sizeof(struct virtio_net_hdr);
}

VH_EXPORT int vh_tap_set_vnet_hdr_len(struct vh_tap *tap, unsigned int len)
{
	int v = (int)len;
	unsigned int i;

	if (!tap)
		return -EINVAL;
	if (len != 0 && len != sizeof(struct virtio_net_hdr) &&
	    len != sizeof(struct virtio_net_hdr_mrg_rxbuf))
		return -EINVAL;
	if (tap->packet) {
		int on = len != 0;

		/* PACKET_VNET_HDR_SZ (Linux 6.2) takes 12; PACKET_VNET_HDR 10 */
		if (setsockopt(tap->q[0].fd, SOL_PACKET, PACKET_VNET_HDR_SZ, &v,
			       sizeof(v)) == 0)
			return 0;
		if (len == sizeof(struct virtio_net_hdr_mrg_rxbuf))
			return -errno;
		if (setsockopt(tap->q[0].fd, SOL_PACKET, PACKET_VNET_HDR, &on,
			       sizeof(on)) < 0)
			return -errno;
		return 0;
	}
	/*
	 * A tap's header is fixed by IFF_VNET_HDR, set when it was created:
	 * with it a length of at least 10 (tun refuses less), without it
	 * none (tun would take a length and still carry no header)
	 */
	if (!tap->vnet_hdr && len) {
		vh_err(tap->ctx, "%s: no IFF_VNET_HDR: no %u-byte header\n",
		       tap->name, len);
		return -EINVAL;
	}
	if (!tap->vnet_hdr)
		return 0;
	if (len == 0)
		return -EINVAL;
	/*
	 * tun keeps it per device, but set it through every queue (detached
	 * ones accept it too) rather than rely on that
	 */
	for (i = 0; i < tap->nqueues; i++)
		if (ioctl(tap->q[i].fd, TUNSETVNETHDRSZ, &v) < 0)
			return -errno;
	return 0;
}

VH_EXPORT int vh_tap_set_offload(struct vh_tap *tap, unsigned int flags)
{
	unsigned int i;

	if (!tap)
		return -EINVAL;
	if (tap->packet)
		return flags ? -EOPNOTSUPP : 0;
	/* an offloaded frame needs the header that says so */
	if (!tap->vnet_hdr && flags)
		return -EOPNOTSUPP;
	if (flags & ~(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN |
		      TUN_F_UFO | TUN_F_USO4 | TUN_F_USO6))
		return -EINVAL;
	for (i = 0; i < tap->nqueues; i++)
		if (ioctl(tap->q[i].fd, TUNSETOFFLOAD, (unsigned long)flags) <
		    0)
			return -errno;
	return 0;
}

VH_EXPORT int vh_tap_set_features(struct vh_tap *tap, uint64_t features)
{
	static const struct {
		unsigned int bit, flag;
	} map[] = {
		{ VIRTIO_NET_F_GUEST_CSUM, TUN_F_CSUM },
		{ VIRTIO_NET_F_GUEST_TSO4, TUN_F_TSO4 },
		{ VIRTIO_NET_F_GUEST_TSO6, TUN_F_TSO6 },
		{ VIRTIO_NET_F_GUEST_ECN, TUN_F_TSO_ECN },
		{ VIRTIO_NET_F_GUEST_UFO, TUN_F_UFO },
		{ VIRTIO_NET_F_GUEST_USO4, TUN_F_USO4 },
		{ VIRTIO_NET_F_GUEST_USO6, TUN_F_USO6 },
	};
	unsigned int flags = 0, i;
	int err;

	if (!tap)
		return -EINVAL;
	/*
	 * VHOST_NET_F_VIRTIO_NET_HDR: vhost adds and strips the header
	 * itself, the socket carries none (a tap with IFF_VNET_HDR always
	 * does: -EINVAL; one without it never does: -EINVAL without the bit)
	 */
	err = vh_tap_set_vnet_hdr_len(tap,
				      features & (1ULL << VHOST_NET_F_VIRTIO_NET_HDR) ?
					      0 :
					      vh_net_hdr_len(features));
	if (err)
		return err;
	for (i = 0; i < VH_ARRAY_SIZE(map); i++)
		if (features & (1ULL << map[i].bit))
			flags |= map[i].flag;
	/*
	 * the TSO flags only make sense with checksum offload (tun refuses);
	 * none without a header to carry them (vhost's own header says
	 * nothing of them either)
	 */
	if (!(flags & TUN_F_CSUM) || !tap->vnet_hdr)
		flags = 0;
	if (tap->packet)
		return 0;
	err = vh_tap_set_offload(tap, flags);
	if (err == -EINVAL && (flags & (TUN_F_USO4 | TUN_F_USO6))) {
		/* a kernel before 6.2 knows no USO */
		vh_warn(tap->ctx, "%s: no USO offload, continuing without\n",
			tap->name);
		err = vh_tap_set_offload(tap,
					 flags & ~(TUN_F_USO4 | TUN_F_USO6));
	}
	return err;
}

#ifdef HAVE_LIBNL
/* libnl's NLE_* codes back to errno, for the common ones. */
static int nlerr_to_errno(int err)
{
	switch (-err) {
	case NLE_PERM:
		return -EPERM;
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_INVAL:
		return -EINVAL;
	case NLE_RANGE:
		return -ERANGE;
	case NLE_BUSY:
		return -EBUSY;
	case NLE_OBJ_NOTFOUND:
	case NLE_NODEV:
		return -ENODEV;
	case NLE_OPNOTSUPP:
		return -EOPNOTSUPP;
	case NLE_EXIST:
		return -EEXIST;
	default:
		return -EIO;
	}
}

static int link_change(struct vh_tap *tap, int up, unsigned int mtu)
{
	struct rtnl_link *orig = NULL, *change = NULL;
	struct nl_sock *sk;
	int err;

	sk = nl_socket_alloc();
	if (!sk)
		return -ENOMEM;
	err = nl_connect(sk, NETLINK_ROUTE);
	if (err < 0)
		goto out;
	orig = rtnl_link_alloc();
	change = rtnl_link_alloc();
	if (!orig || !change) {
		err = -NLE_NOMEM;
		goto out;
	}
	rtnl_link_set_ifindex(orig, tap->ifindex);
	rtnl_link_set_name(orig, tap->name);
	if (up > 0)
		rtnl_link_set_flags(change, IFF_UP);
	else if (up == 0)
		rtnl_link_unset_flags(change, IFF_UP);
	if (mtu)
		rtnl_link_set_mtu(change, mtu);
	err = rtnl_link_change(sk, orig, change, 0);
out:
	rtnl_link_put(change);
	rtnl_link_put(orig);
	nl_socket_free(sk);
	if (err < 0) {
		vh_err(tap->ctx, "%s: link change: %s\n", tap->name,
		       nl_geterror(err));
		return nlerr_to_errno(err);
	}
	return 0;
}
#else
static int link_change(struct vh_tap *tap, int up, unsigned int mtu)
{
	struct ifreq ifr;
	int s, err = 0;

	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", tap->name);
	if (mtu) {
		ifr.ifr_mtu = (int)mtu;
		if (ioctl(s, SIOCSIFMTU, &ifr) < 0)
			err = -errno;
	}
	if (!err && up >= 0) {
		if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
			err = -errno;
		} else {
			if (up)
				ifr.ifr_flags |= IFF_UP;
			else
				ifr.ifr_flags &= ~IFF_UP;
			if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
				err = -errno;
		}
	}
	close(s);
	return err;
}
#endif

VH_EXPORT int vh_tap_set_up(struct vh_tap *tap, bool up)
{
	if (!tap || tap->ifindex <= 0)
		return -EINVAL;
	return link_change(tap, up ? 1 : 0, 0);
}

VH_EXPORT int vh_tap_set_mtu(struct vh_tap *tap, unsigned int mtu)
{
	/* ETH_MIN_MTU; the upper bound is the device's (tun: 65521) */
	if (!tap || tap->ifindex <= 0 || mtu < 68 || mtu > 65535)
		return -EINVAL;
	return link_change(tap, -1, mtu);
}

VH_EXPORT int vh_net_set_backend(struct vh_kdev *dev, unsigned int index,
				 int fd)
{
	struct vhost_vring_file f = { .index = index, .fd = fd };
	int err;

	if (!dev)
		return -EINVAL;
	if (dev->type != VH_KDEV_NET)
		return -ENOTTY;
	err = vh_kdev_check_index(dev, index);
	if (err)
		return err;
	err = vh_kdev_check_fd(fd);
	if (err)
		return err;
	err = vh_kdev_ioctl(dev, VHOST_NET_SET_BACKEND, &f);
	if (err)
		vh_err(dev->ctx, "vring %u: SET_BACKEND fd %d: %d\n", index, fd,
		       err);
	return err;
}
