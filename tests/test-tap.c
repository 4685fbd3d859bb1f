// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Multi-queue taps: vh_tap_new_mq(), vh_tap_new_from_fds(), queue
 * attach/detach, against the real tun driver in a network namespace of the
 * test's own.  Frames sent out of the interface through an AF_PACKET socket
 * must come out of the queue fds with a vnet header, byte for byte; a
 * frame written to a queue fd must reach the socket.  SKIP (77) without
 * root or /dev/net/tun.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
/* glibc's net/if.h first: linux/libc-compat.h then skips the duplicates */
#include <net/if.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/virtio_config.h>

#include "libvhost.h"
#include "test-util.h"

#define QUEUES 4
#define FLOWS 64
#define HDR_LEN 12
#define FRAME_LEN 98 /* Ethernet 14 + IPv4 20 + UDP 8 + 56 */
#define MARK 0x5a

static struct vh_ctx *ctx;

static uint16_t ip_csum(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* A UDP/IPv4 frame of flow f (its source port), payload tagged with f. */
static void make_frame(uint8_t *b, unsigned int f)
{
	static const uint8_t dst[6] = { 0x02, 0, 0, 0, 0, 0x02 };
	static const uint8_t src[6] = { 0x02, 0, 0, 0, 0, 0x01 };
	uint8_t *ip = b + 14, *udp = ip + 20;
	uint16_t v;
	unsigned int i;

	memset(b, 0, FRAME_LEN);
	memcpy(b, dst, 6);
	memcpy(b + 6, src, 6);
	b[12] = 0x08; /* IPv4 */
	ip[0] = 0x45;
	v = htons(FRAME_LEN - 14);
	memcpy(ip + 2, &v, 2);
	ip[8] = 64;
	ip[9] = 17; /* UDP */
	memcpy(ip + 12, (uint8_t[]){ 10, 214, 0, 1 }, 4);
	memcpy(ip + 16, (uint8_t[]){ 10, 214, 0, 2 }, 4);
	v = htons(ip_csum(ip, 20));
	memcpy(ip + 10, &v, 2);
	v = htons((uint16_t)(10000 + f * 7));
	memcpy(udp, &v, 2);
	v = htons(9);
	memcpy(udp + 2, &v, 2);
	v = htons(FRAME_LEN - 34);
	memcpy(udp + 4, &v, 2);
	udp[8] = MARK;
	udp[9] = (uint8_t)f;
	for (i = 10; i < FRAME_LEN - 34; i++)
		udp[i] = (uint8_t)(f * 31 + i);
}

/* Our frame (by the payload mark) and its flow, or -1. */
static int frame_flow(const uint8_t *b, size_t len)
{
	uint8_t want[FRAME_LEN];
	int f;

	if (len != FRAME_LEN || b[12] != 0x08 || b[14 + 9] != 17 ||
	    b[42] != MARK)
		return -1;
	f = b[43];
	if (f >= FLOWS)
		return -1;
	make_frame(want, (unsigned int)f);
	CHECK(memcmp(b, want, FRAME_LEN) == 0);
	return f;
}

static unsigned int tun_flags(int fd, char *name)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	CHECK(ioctl(fd, TUNGETIFF, &ifr) == 0);
	if (name)
		memcpy(name, ifr.ifr_name, IFNAMSIZ);
	return (unsigned short)ifr.ifr_flags;
}

#ifndef PACKET_VNET_HDR_SZ
#define PACKET_VNET_HDR_SZ 24 /* Linux 6.2; Debian 12's headers predate it */
#endif

/* The vnet header a packet socket carries: PACKET_VNET_HDR_SZ, else 10/0 */
static int packet_hdr_len(int s)
{
	int v = -1;
	socklen_t l = sizeof(v);

	if (getsockopt(s, SOL_PACKET, PACKET_VNET_HDR_SZ, &v, &l) == 0)
		return v;
	CHECK(getsockopt(s, SOL_PACKET, PACKET_VNET_HDR, &v, &l) == 0);
	return v ? 10 : 0;
}

static int packet_socket(int ifindex)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ALL),
		.sll_ifindex = ifindex,
	};
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK,
		       htons(ETH_P_ALL));

	CHECK(s >= 0);
	CHECK(bind(s, (struct sockaddr *)&sll, sizeof(sll)) == 0);
	return s;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Send every flow's frame out of the tap (the kernel picks the queue),
 * then read the queue fds until all arrived; per_queue[q] counts them.
 */
static void send_and_collect(struct vh_tap *tap, int s,
			     unsigned int per_queue[QUEUES])
{
	uint8_t buf[2048];
	unsigned int seen[FLOWS] = { 0 }, got = 0, f, q;
	struct pollfd pfd[QUEUES];
	uint64_t deadline;

	for (f = 0; f < FLOWS; f++) {
		make_frame(buf, f);
		CHECK_EQ(send(s, buf, FRAME_LEN, 0), FRAME_LEN);
	}
	memset(per_queue, 0, QUEUES * sizeof(per_queue[0]));
	for (q = 0; q < QUEUES; q++) {
		pfd[q].fd = vh_tap_get_queue_fd(tap, q);
		pfd[q].events = POLLIN;
	}
	deadline = now_ms() + 5000;
	while (got < FLOWS) {
		CHECK(now_ms() < deadline);
		CHECK(poll(pfd, QUEUES, 1000) >= 0);
		for (q = 0; q < QUEUES; q++) {
			ssize_t n;
			int fl;

			if (!(pfd[q].revents & POLLIN))
				continue;
			n = read(pfd[q].fd, buf, sizeof(buf));
			if (n < 0 && errno == EAGAIN)
				continue;
			CHECK(n > HDR_LEN);
			fl = frame_flow(buf + HDR_LEN, (size_t)n - HDR_LEN);
			if (fl < 0)
				continue; /* IPv6 ND, MLD: not ours */
			/* no offload asked for: flags 0, GSO_NONE, no sizes */
			CHECK(memcmp(buf, (uint8_t[10]){ 0 }, 10) == 0);
			/* num_buffers: left alone or zeroed, by kernel */
			CHECK_EQ(seen[fl], 0);
			seen[fl]++;
			per_queue[q]++;
			got++;
		}
	}
}

static void test_args(void)
{
	struct vh_tap *tap = (struct vh_tap *)1;
	int fd = -1;

	CHECK_EQ(vh_tap_new_mq(ctx, "vhmq%d", 0, &tap), -EINVAL);
	CHECK_EQ(vh_tap_new_mq(ctx, "vhmq%d", 257, &tap), -EINVAL);
	CHECK_EQ(vh_tap_new_mq(NULL, "vhmq%d", 2, &tap), -EINVAL);
	CHECK_EQ(vh_tap_new_mq(ctx, "a/b", 2, &tap), -EINVAL);
	CHECK_EQ(vh_tap_new_mq(ctx, "0123456789abcdef", 2, &tap), -EINVAL);
	CHECK_EQ(vh_tap_new_from_fds(ctx, &fd, 1, &tap), -EINVAL);
	CHECK_EQ(vh_tap_new_from_fds(ctx, NULL, 1, &tap), -EINVAL);
	CHECK(tap == (struct vh_tap *)1);
	CHECK_EQ(vh_tap_get_queue_count(NULL), 0);
	CHECK_EQ(vh_tap_get_queue_fd(NULL, 0), -EINVAL);
	CHECK_EQ(vh_tap_set_queue_enabled(NULL, 0, true), -EINVAL);
}

static void test_mq(void)
{
	struct test_fdset before;
	char name[IFNAMSIZ], qname[IFNAMSIZ];
	unsigned int per_queue[QUEUES], q, r, used;
	struct vh_tap *tap, *wrap, *single;
	uint8_t buf[2048];
	int fds[QUEUES], s, n0, sz, v;

	n0 = test_count_fds();
	test_fdset_snapshot(&before);
	CHECK_EQ(vh_tap_new_mq(ctx, "vhmq%d", QUEUES, &tap), 0);
	CHECK_EQ(test_new_fds_without_cloexec(&before), 0);
	CHECK_EQ(vh_tap_get_queue_count(tap), QUEUES);
	CHECK_EQ(vh_tap_get_fd(tap), vh_tap_get_queue_fd(tap, 0));
	CHECK_EQ(vh_tap_get_queue_fd(tap, QUEUES), -EINVAL);
	snprintf(name, sizeof(name), "%s", vh_tap_get_name(tap));
	CHECK(strncmp(name, "vhmq", 4) == 0);
	for (q = 0; q < QUEUES; q++) {
		fds[q] = vh_tap_get_queue_fd(tap, q);
		CHECK(fds[q] >= 0);
		for (r = 0; r < q; r++)
			CHECK(fds[r] != fds[q]);
		CHECK(fcntl(fds[q], F_GETFD) & FD_CLOEXEC);
		CHECK(fcntl(fds[q], F_GETFL) & O_NONBLOCK);
		/* the kernel's view: one tap, every fd a queue of it */
		v = (int)tun_flags(fds[q], qname);
		CHECK_EQ(v & (IFF_TAP | IFF_TUN | IFF_NO_PI | IFF_VNET_HDR |
			      IFF_MULTI_QUEUE | IFF_DETACH_QUEUE),
			 IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE);
		CHECK(strcmp(qname, name) == 0);
	}
	/* the header length reaches every queue */
	CHECK_EQ(vh_tap_set_features(tap, 1ull << VIRTIO_F_VERSION_1), 0);
	for (q = 0; q < QUEUES; q++) {
		CHECK(ioctl(fds[q], TUNGETVNETHDRSZ, &sz) == 0);
		CHECK_EQ(sz, HDR_LEN);
	}
	CHECK_EQ(vh_tap_set_up(tap, true), 0);
	s = packet_socket(vh_tap_get_ifindex(tap));

	/* 64 flows spread over the queues: more than one must be used */
	send_and_collect(tap, s, per_queue);
	used = 0;
	for (q = 0; q < QUEUES; q++) {
		printf("all attached: queue %u: %u frames\n", q, per_queue[q]);
		used += per_queue[q] > 0;
	}
	CHECK(used >= 2);

	/* detached queues get nothing: everything goes to queue 0 */
	for (q = 1; q < QUEUES; q++) {
		CHECK_EQ(vh_tap_set_queue_enabled(tap, q, false), 0);
		CHECK_EQ(vh_tap_set_queue_enabled(tap, q, false), 0);
		CHECK(tun_flags(fds[q], NULL) & IFF_DETACH_QUEUE);
	}
	CHECK(!(tun_flags(fds[0], NULL) & IFF_DETACH_QUEUE));
	send_and_collect(tap, s, per_queue);
	printf("queues 1-3 detached: queue 0: %u frames\n", per_queue[0]);
	CHECK_EQ(per_queue[0], FLOWS);

	/* a detached queue's fd still transmits, and attaches back */
	memset(buf, 0, HDR_LEN);
	make_frame(buf + HDR_LEN, 5);
	CHECK_EQ(write(fds[2], buf, HDR_LEN + FRAME_LEN), HDR_LEN + FRAME_LEN);
	for (;;) {
		struct pollfd p = { .fd = s, .events = POLLIN };
		ssize_t n;

		CHECK(poll(&p, 1, 5000) == 1);
		n = recv(s, buf, sizeof(buf), 0);
		CHECK(n > 0);
		if (frame_flow(buf, (size_t)n) == 5)
			break;
	}
	for (q = 1; q < QUEUES; q++) {
		CHECK_EQ(vh_tap_set_queue_enabled(tap, q, true), 0);
		CHECK(!(tun_flags(fds[q], NULL) & IFF_DETACH_QUEUE));
	}
	send_and_collect(tap, s, per_queue);
	used = 0;
	for (q = 0; q < QUEUES; q++)
		used += per_queue[q] > 0;
	CHECK(used >= 2);

	/* wrapping the caller's queue fds: the same tap, state read back */
	CHECK_EQ(vh_tap_set_queue_enabled(tap, 3, false), 0);
	CHECK_EQ(vh_tap_new_from_fds(ctx, fds, QUEUES, &wrap), 0);
	CHECK_EQ(vh_tap_get_queue_count(wrap), QUEUES);
	CHECK(strcmp(vh_tap_get_name(wrap), name) == 0);
	for (q = 0; q < QUEUES; q++)
		CHECK(vh_tap_get_queue_fd(wrap, q) != fds[q]);
	CHECK_EQ(vh_tap_set_queue_enabled(wrap, 3, false), 0);
	CHECK_EQ(vh_tap_set_queue_enabled(wrap, 3, true), 0);
	CHECK(!(tun_flags(fds[3], NULL) & IFF_DETACH_QUEUE));
	CHECK(vh_tap_unref(wrap) == NULL);
	/* one fd twice, or a dup() of it, or a queue of another tap: refused */
	{
		int twice[2] = { fds[1], fds[1] }, mixed[2], rc;

		CHECK_EQ(vh_tap_new_from_fds(ctx, twice, 2, &wrap), -EINVAL);
		twice[1] = dup(fds[1]);
		CHECK(twice[1] >= 0);
		CHECK_EQ(vh_tap_new_from_fds(ctx, twice, 2, &wrap), -EINVAL);
		close(twice[1]);
		CHECK_EQ(vh_tap_new(ctx, "vhsq%d", &single), 0);
		CHECK_EQ(vh_tap_get_queue_count(single), 1);
		CHECK_EQ(vh_tap_set_queue_enabled(single, 0, false),
			 -EOPNOTSUPP);
		mixed[0] = fds[0];
		mixed[1] = vh_tap_get_fd(single);
		CHECK_EQ(vh_tap_new_from_fds(ctx, mixed, 2, &wrap), -EINVAL);
		mixed[0] = s;
		CHECK_EQ(vh_tap_new_from_fds(ctx, mixed, 1, &wrap), 0);
		CHECK(vh_tap_is_packet_socket(wrap));
		CHECK_EQ(vh_tap_set_queue_enabled(wrap, 0, false), -EOPNOTSUPP);
		/*
		 * VHOST_NET_F_VIRTIO_NET_HDR (bit 27): vhost adds the
		 * header, the packet socket carries none; a tap refuses
		 */
		rc = vh_tap_set_features(wrap, 1ULL << 32);
		/* 12 bytes need PACKET_VNET_HDR_SZ (Linux 6.2) */
		CHECK(rc == 0 || rc == -ENOPROTOOPT);
		if (rc == 0)
			CHECK_EQ(packet_hdr_len(vh_tap_get_fd(wrap)), 12);
		CHECK_EQ(vh_tap_set_features(wrap, 1ULL << 32 | 1ULL << 27), 0);
		CHECK_EQ(packet_hdr_len(vh_tap_get_fd(wrap)), 0);
		CHECK_EQ(vh_tap_set_features(single, 1ULL << 32 | 1ULL << 27),
			 -EINVAL);
		vh_tap_unref(wrap);
		CHECK_EQ(vh_tap_new_from_fds(ctx, mixed, 2, &wrap), -EINVAL);
		vh_tap_unref(single);
	}

	close(s);
	CHECK(vh_tap_unref(tap) == NULL);
	CHECK_EQ(test_count_fds(), n0);
	/* the last queue closed: the interface is gone */
	CHECK_EQ(if_nametoindex(name), 0);
}

/* A tap of our own through /dev/net/tun, with TUNSETIFF flags. */
static int tun_open(const char *name, short flags)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	CHECK(fd >= 0);
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = flags;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	CHECK(ioctl(fd, TUNSETIFF, &ifr) == 0);
	return fd;
}

/*
 * A caller's tap without IFF_NO_PI is refused (a struct tun_pi before
 * every frame); one without IFF_VNET_HDR carries no header, whatever
 * TUNSETVNETHDRSZ says: only a header length of 0 is right for it.
 */
static void test_tap_flags(void)
{
	struct vh_tap *tap = NULL;
	int fd, sz = 0;

	fd = tun_open("vhnohdr", IFF_TAP | IFF_NO_PI);
	CHECK_EQ(vh_tap_new_from_fd(ctx, fd, &tap), 0);
	CHECK_EQ(vh_tap_set_vnet_hdr_len(tap, 12), -EINVAL);
	CHECK_EQ(vh_tap_set_vnet_hdr_len(tap, 10), -EINVAL);
	CHECK_EQ(vh_tap_set_vnet_hdr_len(tap, 0), 0);
	/* tun's default, untouched: nothing was set */
	CHECK(ioctl(fd, TUNGETVNETHDRSZ, &sz) == 0);
	CHECK_EQ(sz, 10);
	CHECK_EQ(vh_tap_set_features(tap, 1ULL << VIRTIO_F_VERSION_1), -EINVAL);
	/* vhost adds the header (bit 27): no offload, nothing to carry it */
	CHECK_EQ(vh_tap_set_features(tap, 1ULL << VIRTIO_F_VERSION_1 |
						  1ULL << 27 | 1ULL << 0),
		 0);
	CHECK_EQ(vh_tap_set_offload(tap, TUN_F_CSUM), -EOPNOTSUPP);
	CHECK_EQ(vh_tap_set_offload(tap, 0), 0);
	CHECK(vh_tap_unref(tap) == NULL);
	close(fd);

	tap = NULL;
	fd = tun_open("vhpi", IFF_TAP | IFF_VNET_HDR);
	CHECK_EQ(vh_tap_new_from_fd(ctx, fd, &tap), -EINVAL);
	CHECK(tap == NULL);
	close(fd);

	/* both: a header of 10 or 12, never none */
	fd = tun_open("vhboth", IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
	CHECK_EQ(vh_tap_new_from_fd(ctx, fd, &tap), 0);
	CHECK_EQ(vh_tap_set_vnet_hdr_len(tap, 12), 0);
	CHECK(ioctl(fd, TUNGETVNETHDRSZ, &sz) == 0);
	CHECK_EQ(sz, 12);
	CHECK_EQ(vh_tap_set_vnet_hdr_len(tap, 0), -EINVAL);
	CHECK_EQ(vh_tap_set_offload(tap, TUN_F_CSUM), 0);
	CHECK(vh_tap_unref(tap) == NULL);
	close(fd);
}

/* An interface's MTU, looked up by name in the current namespace. */
static int mtu_of(const char *name)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), mtu;

	CHECK(s >= 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	mtu = ioctl(s, SIOCGIFMTU, &ifr) == 0 ? ifr.ifr_mtu : -1;
	close(s);
	return mtu;
}

/*
 * A tap fd from another network namespace, while one of ours bears its
 * name: the wrapper has no ifindex, and its MTU and link calls are
 * refused instead of changing ours (they changed ours).
 */
static void test_foreign_netns(void)
{
	struct vh_tap *there = NULL, *here = NULL, *w = NULL;
	int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);

	CHECK(home >= 0);
	CHECK_EQ(unshare(CLONE_NEWNET), 0);
	CHECK_EQ(vh_tap_new(ctx, "vhns0", &there), 0);
	CHECK_EQ(setns(home, CLONE_NEWNET), 0);
	CHECK_EQ(vh_tap_new(ctx, "vhns0", &here), 0);
	CHECK(vh_tap_get_ifindex(here) > 0);
	CHECK_EQ(mtu_of("vhns0"), 1500);
	CHECK_EQ(vh_tap_new_from_fd(ctx, vh_tap_get_fd(there), &w), 0);
	CHECK_EQ(vh_tap_get_ifindex(w), 0);
	CHECK_EQ(vh_tap_set_mtu(w, 1280), -EINVAL);
	CHECK_EQ(vh_tap_set_up(w, true), -EINVAL);
	CHECK_EQ(mtu_of("vhns0"), 1500);
	/* the one of ours is ours */
	vh_tap_unref(w);
	CHECK_EQ(vh_tap_new_from_fd(ctx, vh_tap_get_fd(here), &w), 0);
	CHECK_EQ(vh_tap_get_ifindex(w), vh_tap_get_ifindex(here));
	vh_tap_unref(w);
	vh_tap_unref(there);
	vh_tap_unref(here);
	close(home);
}

/* Running out of fds half-way: every queue opened so far is closed. */
static void test_cleanup(void)
{
	struct rlimit old, low;
	struct vh_tap *tap = NULL;
	int n0 = test_count_fds(), fd, nfree;

	CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
	/* the limit at the 4th free fd number: 3 opens work, the 4th fails */
	for (fd = 0, nfree = 0;; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF && ++nfree == 4)
			break;
	low = old;
	low.rlim_cur = (rlim_t)fd;
	CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
	CHECK_EQ(vh_tap_new_mq(ctx, "vhmqfail", 8, &tap), -EMFILE);
	CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);
	CHECK(tap == NULL);
	CHECK_EQ(test_count_fds(), n0);
	CHECK_EQ(if_nametoindex("vhmqfail"), 0);

	/* the kernel's limit is ours: 256 queues work */
	CHECK_EQ(vh_tap_new_mq(ctx, "vhmq256", 256, &tap), 0);
	CHECK_EQ(vh_tap_get_queue_count(tap), 256);
	CHECK(tun_flags(vh_tap_get_queue_fd(tap, 255), NULL) & IFF_MULTI_QUEUE);
	vh_tap_unref(tap);
	CHECK_EQ(test_count_fds(), n0);
}

int main(void)
{
	if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK) != 0) {
		printf("SKIP: needs root and /dev/net/tun\n");
		return TEST_SKIP;
	}
	/* a namespace of our own: no name clash, no stray traffic */
	if (unshare(CLONE_NEWNET) != 0) {
		printf("SKIP: unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return TEST_SKIP;
	}
	CHECK_EQ(vh_ctx_new(&ctx), 0);
	test_args();
	test_mq();
	test_tap_flags();
	test_cleanup();
	test_foreign_netns();
	vh_ctx_unref(ctx);
	printf("PASS\n");
	return 0;
}
