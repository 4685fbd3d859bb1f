// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vhostctl check net: vhost-net with a tap.  One frame guest -> host (TX
 * ring, seen by an AF_PACKET socket bound to the tap) and one host -> guest
 * (sent by that socket, arriving in the RX ring behind the virtio-net
 * header), both compared byte for byte.  The frames carry the IEEE 802
 * local experimental EtherType 0x88b5, so that whatever else the host stack
 * puts on the tap is told apart.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>

#include "check.h"

#define NET_RING 64
#define NET_FRAME 1000
#define NET_BUF 2048
#define NET_ETHERTYPE 0x88b5
#define F_VERSION_1 (1ull << 32)

struct net_chk {
	struct vh_kdev *dev;
	struct vh_tap *tap;
	struct chk_guest g;
	struct vh_drvq *vq[2]; /* 0 rx, 1 tx */
	int kick[2], call[2];
	int pkt;
	int ifindex;
	unsigned int hdr_len;
	uint64_t rx_gpa, tx_gpa;
	bool attached;
};

static void make_frame(uint8_t *f, size_t len, uint32_t seed)
{
	static const uint8_t dst[6] = { 0x02, 0, 0, 0, 0x5c, 0x02 };
	static const uint8_t src[6] = { 0x02, 0, 0, 0, 0x5c, 0x01 };

	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = NET_ETHERTYPE >> 8;
	f[13] = NET_ETHERTYPE & 0xff;
	chk_fill(f + 14, len - 14, seed);
}

static bool is_ours(const uint8_t *f, size_t len)
{
	return len >= 14 && f[12] == (NET_ETHERTYPE >> 8) &&
	       f[13] == (NET_ETHERTYPE & 0xff);
}

/* Keep the host stack quiet on the tap: no IPv6 router solicitations. */
static void quiet_ipv6(const char *ifname)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6",
		 ifname);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, "1", 1) != 1) {
		/* harmless: foreign frames are filtered anyway */
	}
	close(fd);
}

static int open_packet_socket(int ifindex)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ALL),
		.sll_ifindex = ifindex,
	};
	int fd, err;

	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    htons(ETH_P_ALL));
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static void net_teardown(struct net_chk *n)
{
	if (n->attached) {
		vh_net_set_backend(n->dev, 0, -1);
		vh_net_set_backend(n->dev, 1, -1);
	}
	n->dev = vh_kdev_unref(n->dev);
	for (int i = 0; i < 2; i++) {
		n->vq[i] = vh_drvq_unref(n->vq[i]);
		chk_close(&n->kick[i]);
		chk_close(&n->call[i]);
	}
	chk_close(&n->pkt);
	/* the tap interface goes with its last reference */
	n->tap = vh_tap_unref(n->tap);
	if (n->g.mem)
		chk_guest_fini(&n->g);
}

static enum chk_outcome net_setup(struct vhc *v, struct net_chk *n,
				  struct chk_result *r)
{
	int err;

	if (access("/dev/vhost-net", F_OK))
		return chk_set(r, CHK_SKIP,
			       "/dev/vhost-net absent (module vhost_net)");
	if (access("/dev/net/tun", F_OK))
		return chk_set(r, CHK_SKIP, "/dev/net/tun absent (module tun)");
	if (chk_kdev_open(r, v->ctx, VH_KDEV_NET, &n->dev) != CHK_PASS)
		return r->outcome;
	n->hdr_len = vh_net_hdr_len(F_VERSION_1);

	err = vh_tap_new(v->ctx, "vhchk%d", &n->tap);
	if (!err)
		err = vh_tap_set_features(n->tap, F_VERSION_1);
	if (err)
		return chk_fail_err(r, "tap", err);
	quiet_ipv6(vh_tap_get_name(n->tap));
	err = vh_tap_set_up(n->tap, true);
	if (err)
		return chk_fail_err(r, "tap up", err);
	n->ifindex = vh_tap_get_ifindex(n->tap);
	n->pkt = open_packet_socket(n->ifindex);
	if (n->pkt < 0)
		return chk_fail_err(r, "AF_PACKET socket", n->pkt);

	err = chk_guest_init(&n->g, v->ctx, 1 << 20);
	if (err)
		return chk_fail_err(r, "guest memory", err);
	n->rx_gpa = chk_guest_alloc(&n->g, NET_BUF, 64);
	n->tx_gpa = chk_guest_alloc(&n->g, NET_BUF, 64);
	err = vh_kdev_set_mem_table(n->dev, n->g.mem);
	if (err)
		return chk_fail_err(r, "set mem table", err);
	if (!n->tx_gpa)
		return chk_fail_err(r, "guest memory", -ENOMEM);
	for (unsigned int i = 0; i < 2; i++) {
		enum chk_outcome o = chk_kdev_ring(r, v->ctx, n->dev, &n->g, i,
						   NET_RING, &n->vq[i], &n->kick[i],
						   &n->call[i]);

		if (o != CHK_PASS)
			return o;
	}
	for (unsigned int i = 0; i < 2; i++) {
		err = vh_net_set_backend(n->dev, i, vh_tap_get_fd(n->tap));
		if (err)
			return chk_fail_err(r, "set backend", err);
		n->attached = true;
	}
	return CHK_PASS;
}

/* guest -> host: TX ring to the packet socket */
static enum chk_outcome net_tx(struct net_chk *n, struct chk_result *r)
{
	uint8_t frame[NET_FRAME], got[NET_BUF];
	struct vh_sg sg = { n->tx_gpa, n->hdr_len + NET_FRAME };
	uint8_t *p = chk_gpa(&n->g, n->tx_gpa);
	uint64_t deadline = chk_now_ms() + CHK_TIMEOUT_MS;
	struct sockaddr_ll from;
	socklen_t flen;
	void *tok = NULL;
	uint32_t len = 0;
	ssize_t got_len;
	int err;

	make_frame(frame, sizeof(frame), 0x7e57);
	/* no offload: an all-zero header (virtio 1.3, 5.1.6.2) */
	memset(p, 0, n->hdr_len);
	memcpy(p + n->hdr_len, frame, sizeof(frame));
	err = vh_drvq_add(n->vq[1], &sg, 1, 0, p);
	if (err)
		return chk_fail_err(r, "TX add", err);
	vh_drvq_kick(n->vq[1]);
	for (;;) {
		memset(&from, 0, sizeof(from));
		flen = sizeof(from);
		got_len = recvfrom(n->pkt, got, sizeof(got), MSG_TRUNC,
				   (struct sockaddr *)&from, &flen);
		if (got_len < 0 && errno == EAGAIN) {
			if (chk_now_ms() >= deadline)
				return chk_set(r, CHK_FAIL,
					       "TX: no frame on the tap");
			if (chk_poll(n->pkt, POLLIN, 200) == -EINTR)
				return chk_fail_err(r, "TX", -EINTR);
			continue;
		}
		if (got_len < 0)
			return chk_fail_err(r, "TX recv", -errno);
		if (from.sll_pkttype == PACKET_OUTGOING ||
		    !is_ours(got, (size_t)got_len))
			continue;
		break;
	}
	if (got_len != NET_FRAME || memcmp(got, frame, NET_FRAME) != 0)
		return chk_set(
			r, CHK_FAIL,
			"TX: frame of %zd bytes differs from the %d sent",
			got_len, NET_FRAME);
	/* the device hands the buffer back */
	err = chk_wait_used(n->vq[1], n->call[1], &tok, &len, CHK_TIMEOUT_MS);
	if (err != 1 || tok != p)
		return chk_fail_err(r, "TX used buffer",
				    err < 0 ? err : -EPROTO);
	return CHK_PASS;
}

/* host -> guest: packet socket to the RX ring */
static enum chk_outcome net_rx(struct net_chk *n, struct chk_result *r)
{
	struct sockaddr_ll to = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(NET_ETHERTYPE),
		.sll_ifindex = n->ifindex,
		.sll_halen = 6,
	};
	uint8_t frame[NET_FRAME];
	uint8_t *p = chk_gpa(&n->g, n->rx_gpa);
	struct vh_sg sg = { n->rx_gpa, NET_BUF };
	void *tok = NULL;
	uint32_t len = 0;
	int err;

	err = vh_drvq_add(n->vq[0], &sg, 0, 1, p);
	if (err)
		return chk_fail_err(r, "RX add", err);
	vh_drvq_kick(n->vq[0]);
	make_frame(frame, sizeof(frame), 0xd0d0);
	memcpy(to.sll_addr, frame, 6);
	for (int tries = 0;; tries++) {
		memset(p, 0xee, NET_BUF);
		if (sendto(n->pkt, frame, sizeof(frame), 0,
			   (struct sockaddr *)&to,
			   sizeof(to)) != (ssize_t)sizeof(frame))
			return chk_fail_err(r, "RX send", -errno);
		err = chk_wait_used(n->vq[0], n->call[0], &tok, &len,
				    CHK_TIMEOUT_MS);
		if (err != 1 || tok != p)
			return chk_fail_err(r, "RX: nothing in the ring",
					    err < 0 ? err : -EPROTO);
		if (len >= n->hdr_len &&
		    is_ours(p + n->hdr_len, len - n->hdr_len))
			break;
		/* someone else's frame took the buffer: post it again */
		if (tries > 8)
			return chk_set(r, CHK_FAIL,
				       "RX: only foreign frames arrived");
		err = vh_drvq_add(n->vq[0], &sg, 0, 1, p);
		if (err)
			return chk_fail_err(r, "RX add", err);
		vh_drvq_kick(n->vq[0]);
	}
	/*
	 * 5.1.6.4: no offload negotiated, so neither flags nor gso_type may
	 * be set (num_buffers is only written with MRG_RXBUF)
	 */
	if (p[0] != 0 || p[1] != 0)
		return chk_set(r, CHK_FAIL,
			       "RX: header flags 0x%02x gso_type 0x%02x", p[0],
			       p[1]);
	if (len != n->hdr_len + NET_FRAME ||
	    memcmp(p + n->hdr_len, frame, NET_FRAME) != 0)
		return chk_set(r, CHK_FAIL,
			       "RX: %u bytes differ from the %u "
			       "expected",
			       len, n->hdr_len + NET_FRAME);
	return CHK_PASS;
}

void check_net(struct vhc *v, struct chk_result *r)
{
	struct net_chk n = { .kick = { -1, -1 },
			     .call = { -1, -1 },
			     .pkt = -1 };
	char tap[32] = "";

	if (net_setup(v, &n, r) == CHK_PASS && net_tx(&n, r) == CHK_PASS &&
	    net_rx(&n, r) == CHK_PASS) {
		snprintf(tap, sizeof(tap), "%s", vh_tap_get_name(n.tap));
		chk_set(r, CHK_PASS,
			"tap %s: %d-byte frame each way, bytes "
			"compared",
			tap, NET_FRAME);
	}
	net_teardown(&n);
}
