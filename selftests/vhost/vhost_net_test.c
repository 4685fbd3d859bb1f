// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost_net_test - vhost-net with a tap, driven by libvhost's userspace
 * virtio driver (vh_drvq) as the guest.
 *
 * guest -> host: frames put on the TX ring come out of the tap into the
 *   host stack, where an AF_PACKET socket bound to the tap sees them;
 * host -> guest: frames the AF_PACKET socket transmits on the tap arrive in
 *   the RX ring behind a virtio-net header, announced on the call eventfd.
 * Every frame is compared byte for byte.  Frames carry the IEEE 802 local
 * experimental EtherType 0x88b5 so that whatever else the host stack puts
 * on the tap is told apart.
 *
 * Sizes: 60 bytes is the shortest Ethernet frame (without FCS); the tap's
 * MTU is raised to tun's maximum, 65535 - ETH_HLEN = 65521, so frames up to
 * 65535 bytes are valid as they are, without GSO or checksum offload (none
 * is negotiated: the header is all zeroes both ways).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4(), as in a kernel tree build */
#endif
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/vhost.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>

#include "kselftest_harness.h"
#include "vh_selftest.h"

#define BIT(n) (1ULL << (n))
#define ETHERTYPE_TEST 0x88b5
#define MAX_FRAME 65535
#define TAP_MTU (MAX_FRAME - ETH_HLEN)
#define RING 256
#define MRG_BUF 4096 /* one receive buffer with MRG_RXBUF */
#define WINDOW 32    /* frames in flight: below tun's and netdev queues */

struct guest_net {
	struct vh_ctx *ctx;
	struct vh_kdev *dev;
	struct vh_tap *tap;
	struct st_guest g;
	bool have_guest;
	struct vh_drvq *vq[2]; /* 0 rx, 1 tx */
	int kick[2], call[2];
	int pkt; /* AF_PACKET socket on the tap */
	struct vh_tap *pback; /* AF_PACKET backend instead of the tap */
	int ifindex;
	uint64_t features;
	unsigned int hdr_len;
	bool mrg;
	/* receive buffers: RING of rxbuf_size each */
	uint64_t rxbuf_gpa;
	uint32_t rxbuf_size;
	/* transmit slots: RING of txbuf_size each, free ones on a stack */
	uint64_t txbuf_gpa;
	uint32_t txbuf_size;
	unsigned int tx_free[RING], ntx_free;
	unsigned int calls_seen;
	unsigned int foreign; /* frames on the tap that were not ours */
};

FIXTURE(net)
{
	struct guest_net n;
	uint8_t *frame, *got;
};

FIXTURE_VARIANT(net)
{
	uint64_t features;
};

/* legacy header (10 bytes), no merging, no event index */
FIXTURE_VARIANT_ADD(net, legacy)
{
	.features = 0,
};

FIXTURE_VARIANT_ADD(net, v1)
{
	.features = BIT(VIRTIO_F_VERSION_1),
};

FIXTURE_VARIANT_ADD(net, mrg_legacy)
{
	.features = BIT(VIRTIO_NET_F_MRG_RXBUF),
};

FIXTURE_VARIANT_ADD(net, v1_event_idx)
{
	.features = BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_EVENT_IDX),
};

FIXTURE_VARIANT_ADD(net, v1_mrg_event_idx)
{
	.features = BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_NET_F_MRG_RXBUF) |
		    BIT(VIRTIO_RING_F_EVENT_IDX),
};

/* ------------------------------------------------------------------ */
/* setup                                                               */
/* ------------------------------------------------------------------ */

/* Keep the host stack quiet on the tap: no IPv6 (router solicitations). */
static void quiet_ipv6(const char *ifname)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6",
		 ifname);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "1", 1) != 1)
			perror(path);
		close(fd);
	}
}

static int open_packet_socket(int ifindex)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ALL),
		.sll_ifindex = ifindex,
	};
	int sz = 16 << 20;
	int fd;

	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    htons(ETH_P_ALL));
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		close(fd);
		return -errno;
	}
	/* room for a window of the largest frames (root may exceed rmem_max) */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
	return fd;
}

static void rx_post(struct guest_net *n, unsigned int i)
{
	struct vh_sg sg = { .addr = n->rxbuf_gpa + (uint64_t)i * n->rxbuf_size,
			    .len = n->rxbuf_size };
	int err = vh_drvq_add(n->vq[0], &sg, 0, 1, (void *)(uintptr_t)(i + 1));

	if (err)
		fprintf(stderr, "# rx_post %u: %d\n", i, err);
}

/*
 * Bring the device up.  Returns 0, a positive KSFT_SKIP reason index (the
 * caller skips), or -errno.
 */
static int gn_setup(struct guest_net *n, uint64_t want, unsigned int num,
		     bool packet_backend, const char **why)
{
	int backend_fd;
	uint64_t offered = 0;
	unsigned int i;
	uint64_t ring_gpa;
	int err;

	err = vh_ctx_new(&n->ctx);
	if (err)
		return err;
	if (access("/dev/vhost-net", F_OK)) {
		*why = "/dev/vhost-net missing (vhost_net not loaded)";
		return 1;
	}
	if (access("/dev/net/tun", F_OK)) {
		*why = "/dev/net/tun missing (tun not loaded)";
		return 1;
	}
	err = vh_kdev_open_type(n->ctx, VH_KDEV_NET, &n->dev);
	if (err == -EACCES || err == -EPERM) {
		*why = "no permission on /dev/vhost-net (run as root)";
		return 1;
	}
	if (err)
		return err;
	err = vh_kdev_set_owner(n->dev);
	if (!err)
		err = vh_kdev_get_features(n->dev, &offered);
	if (err)
		return err;
	/*
	 * Every variant's features are in what vhost-net always offers
	 * (VHOST_NET_FEATURES): one missing is a failure, not a skip.
	 */
	if ((offered & want) != want) {
		*why = "the kernel does not offer the variant's features";
		fprintf(stderr, "# offered 0x%llx, missing 0x%llx\n",
			(unsigned long long)offered,
			(unsigned long long)(want & ~offered));
		return -EOPNOTSUPP;
	}
	n->features = want;
	n->hdr_len = vh_net_hdr_len(want);
	n->mrg = want & BIT(VIRTIO_NET_F_MRG_RXBUF);
	/*
	 * A packet socket carries no virtio-net header: vhost adds and
	 * strips it itself (VHOST_NET_F_VIRTIO_NET_HDR).
	 */
	err = vh_kdev_set_features(n->dev, packet_backend ?
				   want | BIT(VHOST_NET_F_VIRTIO_NET_HDR) :
				   want);
	if (err)
		return err;

	err = vh_tap_new(n->ctx, NULL, &n->tap);
	if (err)
		return err;
	err = vh_tap_set_features(n->tap, want);
	if (err)
		return err;
	quiet_ipv6(vh_tap_get_name(n->tap));
	err = vh_tap_set_mtu(n->tap, TAP_MTU);
	if (!err)
		err = vh_tap_set_up(n->tap, true);
	if (err)
		return err;
	n->ifindex = vh_tap_get_ifindex(n->tap);
	n->pkt = open_packet_socket(n->ifindex);
	if (n->pkt < 0)
		return n->pkt;
	backend_fd = vh_tap_get_fd(n->tap);
	if (packet_backend) {
		int p = open_packet_socket(n->ifindex);

		if (p < 0)
			return p;
		/* the library duplicates the caller's fd */
		err = vh_tap_new_from_fd(n->ctx, p, &n->pback);
		close(p);
		if (err)
			return err;
		if (!vh_tap_is_packet_socket(n->pback) ||
		    strcmp(vh_tap_get_name(n->pback), vh_tap_get_name(n->tap)))
			return -EPROTO;
		backend_fd = vh_tap_get_fd(n->pback);
	}

	/* guest memory: two rings, RING rx buffers, RING tx slots */
	n->rxbuf_size = n->mrg ? MRG_BUF : n->hdr_len + MAX_FRAME;
	n->txbuf_size = (n->hdr_len + MAX_FRAME + 4095) & ~4095u;
	err = st_guest_init(&n->g, n->ctx,
			    (uint64_t)RING * (n->rxbuf_size + n->txbuf_size) +
				    (1 << 20));
	if (err)
		return err;
	n->have_guest = true;
	n->rxbuf_gpa = st_guest_alloc(&n->g, (uint64_t)RING * n->rxbuf_size,
				      4096);
	n->txbuf_gpa = st_guest_alloc(&n->g, (uint64_t)RING * n->txbuf_size,
				      4096);
	if (!n->rxbuf_gpa || !n->txbuf_gpa)
		return -ENOMEM;
	err = vh_kdev_set_mem_table(n->dev, n->g.mem);
	if (err)
		return err;
	for (i = 0; i < 2; i++) {
		ring_gpa = st_guest_alloc(&n->g, vh_drvq_ring_bytes(num), 4096);
		if (!ring_gpa)
			return -ENOMEM;
		err = vh_drvq_new(n->ctx, n->g.mem, i, num, ring_gpa, &n->vq[i]);
		if (err)
			return err;
		err = vh_drvq_set_features(n->vq[i], want);
		if (err)
			return err;
		n->kick[i] = st_eventfd();
		n->call[i] = st_eventfd();
		if (n->kick[i] < 0 || n->call[i] < 0)
			return -errno;
		err = vh_drvq_set_kick_fd(n->vq[i], n->kick[i]);
		if (!err)
			err = vh_drvq_set_call_fd(n->vq[i], n->call[i]);
		if (!err)
			err = vh_kdev_setup_vring(n->dev, i, n->vq[i], n->kick[i],
						  n->call[i]);
		if (err)
			return err;
	}
	for (i = 0; i < num; i++)
		rx_post(n, i);
	for (i = 0; i < num; i++)
		n->tx_free[n->ntx_free++] = i;
	vh_drvq_kick(n->vq[0]);
	for (i = 0; i < 2; i++) {
		err = vh_net_set_backend(n->dev, i, backend_fd);
		if (err)
			return err;
	}
	return 0;
}

static void gn_teardown(struct guest_net *n)
{
	unsigned int i;

	if (n->dev) {
		vh_net_set_backend(n->dev, 0, -1);
		vh_net_set_backend(n->dev, 1, -1);
	}
	vh_kdev_unref(n->dev);
	for (i = 0; i < 2; i++) {
		vh_drvq_unref(n->vq[i]);
		if (n->kick[i] >= 0)
			close(n->kick[i]);
		if (n->call[i] >= 0)
			close(n->call[i]);
	}
	if (n->pkt >= 0)
		close(n->pkt);
	vh_tap_unref(n->pback);
	vh_tap_unref(n->tap);
	if (n->have_guest)
		st_guest_fini(&n->g);
	vh_ctx_unref(n->ctx);
}

FIXTURE_SETUP(net)
{
	const char *why = NULL;
	struct guest_net *n = &self->n;
	int err;

	memset(n, 0, sizeof(*n));
	n->pkt = n->kick[0] = n->kick[1] = n->call[0] = n->call[1] = -1;
	self->frame = malloc(MAX_FRAME);
	self->got = malloc(MAX_FRAME + 64);
	ASSERT_NE(NULL, self->frame);
	ASSERT_NE(NULL, self->got);
	err = gn_setup(&self->n, variant->features, RING, false, &why);
	if (err > 0)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, err)
		TH_LOG("%s", why ? why : strerror(-err));
}

FIXTURE_TEARDOWN(net)
{
	if (self->n.foreign)
		fprintf(stderr, "# %u foreign frames ignored\n",
			self->n.foreign);
	gn_teardown(&self->n);
	free(self->frame);
	free(self->got);
}

/* ------------------------------------------------------------------ */
/* frames                                                              */
/* ------------------------------------------------------------------ */

static void make_frame(uint8_t *f, size_t len, uint32_t seq)
{
	static const uint8_t dst[6] = { 0x02, 0, 0, 0, 0, 0x02 };
	static const uint8_t src[6] = { 0x02, 0, 0, 0, 0, 0x01 };
	uint32_t be = htonl(seq);

	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = ETHERTYPE_TEST >> 8;
	f[13] = ETHERTYPE_TEST & 0xff;
	memcpy(f + 14, &be, 4);
	st_fill(f + 18, len - 18, seq);
}

static bool is_ours(const uint8_t *f, size_t len)
{
	return len >= 18 && f[12] == (ETHERTYPE_TEST >> 8) &&
	       f[13] == (ETHERTYPE_TEST & 0xff);
}

/* Wait for the vq's call eventfd after re-arming the callback. */
static int wait_used(struct guest_net *n, int q, int ms)
{
	int r;

	if (vh_drvq_enable_cb(n->vq[q]) == 1)
		return 1;
	r = st_wait_fd(n->call[q], ms);
	if (r == 1) {
		st_eventfd_drain(n->call[q]);
		n->calls_seen++;
	}
	return r;
}

static void reap_tx(struct guest_net *n)
{
	void *tok;
	uint32_t len;

	while (vh_drvq_get_used(n->vq[1], &tok, &len) == 1)
		n->tx_free[n->ntx_free++] = (unsigned int)(uintptr_t)tok - 1;
}

/* Queue one frame on the TX ring and kick; 0 or -errno. */
static int tx_frame(struct guest_net *n, const uint8_t *f, size_t len)
{
	struct vh_sg sg;
	unsigned int slot;
	uint8_t *p;
	int tries = 0;

	reap_tx(n);
	while (!n->ntx_free) {
		if (wait_used(n, 1, 1000) <= 0 && ++tries > 10)
			return -ETIMEDOUT;
		reap_tx(n);
	}
	slot = n->tx_free[--n->ntx_free];
	sg.addr = n->txbuf_gpa + (uint64_t)slot * n->txbuf_size;
	sg.len = n->hdr_len + len;
	p = st_gpa(&n->g, sg.addr);
	/* no offload: an all-zero header (virtio 1.3, 5.1.6.2) */
	memset(p, 0, n->hdr_len);
	memcpy(p + n->hdr_len, f, len);
	if (vh_drvq_add(n->vq[1], &sg, 1, 0, (void *)(uintptr_t)(slot + 1)))
		return -ENOSPC;
	vh_drvq_kick(n->vq[1]);
	return 0;
}

/* Next of our frames from the packet socket: its length, 0 on timeout. */
static ssize_t pkt_recv(struct guest_net *n, uint8_t *buf, size_t cap,
			int ms)
{
	struct sockaddr_ll from;
	socklen_t flen;
	ssize_t r;

	for (;;) {
		flen = sizeof(from);
		r = recvfrom(n->pkt, buf, cap, MSG_TRUNC,
			     (struct sockaddr *)&from, &flen);
		if (r < 0 && errno == EAGAIN) {
			if (st_wait_fd(n->pkt, ms) <= 0)
				return 0;
			continue;
		}
		if (r < 0)
			return -errno;
		/* our own transmissions come back as PACKET_OUTGOING */
		if (from.sll_pkttype == PACKET_OUTGOING)
			continue;
		if (!is_ours(buf, (size_t)r)) {
			n->foreign++;
			continue;
		}
		return r;
	}
}

static int pkt_send(struct guest_net *n, const uint8_t *f, size_t len)
{
	struct sockaddr_ll to = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETHERTYPE_TEST),
		.sll_ifindex = n->ifindex,
		.sll_halen = 6,
	};
	ssize_t r;

	memcpy(to.sll_addr, f, 6);
	r = sendto(n->pkt, f, len, 0, (struct sockaddr *)&to, sizeof(to));
	if (r < 0)
		return -errno;
	return r == (ssize_t)len ? 0 : -EIO;
}

/*
 * Take the next frame from the RX ring into buf (reassembling merged
 * buffers), check its header, give the buffers back.  Returns the frame
 * length, 0 on timeout, -EPROTO for a malformed header.
 */
static ssize_t rx_frame(struct guest_net *n, uint8_t *buf, size_t cap,
			int ms)
{
	struct virtio_net_hdr_mrg_rxbuf hdr;
	unsigned int nbufs, i, idx;
	uint32_t len, copied = 0;
	void *tok;
	uint8_t *p;
	int r;

	for (;;) {
		r = vh_drvq_get_used(n->vq[0], &tok, &len);
		if (r < 0)
			return r;
		if (r == 0) {
			r = wait_used(n, 0, ms);
			if (r <= 0)
				return r;
			continue;
		}
		idx = (unsigned int)(uintptr_t)tok - 1;
		p = st_gpa(&n->g, n->rxbuf_gpa + (uint64_t)idx * n->rxbuf_size);
		if (len < n->hdr_len)
			return -EPROTO;
		memset(&hdr, 0, sizeof(hdr));
		memcpy(&hdr, p, n->hdr_len);
		/* 5.1.6.4: no offload negotiated, nothing may be flagged */
		if (hdr.hdr.gso_type != VIRTIO_NET_HDR_GSO_NONE ||
		    (hdr.hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
			return -EPROTO;
		nbufs = n->mrg ? le16toh(hdr.num_buffers) : 1;
		if (nbufs == 0 || nbufs > RING)
			return -EPROTO;
		copied = len - n->hdr_len;
		if (copied > cap)
			return -EMSGSIZE;
		memcpy(buf, p + n->hdr_len, copied);
		rx_post(n, idx);
		for (i = 1; i < nbufs; i++) {
			int tries = 0;

			while ((r = vh_drvq_get_used(n->vq[0], &tok, &len)) == 0) {
				if (wait_used(n, 0, ms) <= 0 && ++tries > 3)
					return -ETIMEDOUT;
			}
			if (r < 0)
				return r;
			idx = (unsigned int)(uintptr_t)tok - 1;
			p = st_gpa(&n->g,
				   n->rxbuf_gpa + (uint64_t)idx * n->rxbuf_size);
			if (copied + len > cap)
				return -EMSGSIZE;
			memcpy(buf + copied, p, len);
			copied += len;
			rx_post(n, idx);
		}
		vh_drvq_kick(n->vq[0]);
		if (!is_ours(buf, copied)) {
			n->foreign++;
			continue;
		}
		return copied;
	}
}

/* ------------------------------------------------------------------ */
/* tests                                                               */
/* ------------------------------------------------------------------ */

static const size_t sizes[] = { 60, 61, 64, 127, 1000, 1514, 1515, 2048,
				4096, 9014, 16384, 32768, 65534, 65535 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

TEST_F_TIMEOUT(net, tx_sizes, 120)
{
	unsigned int i;
	ssize_t r;

	for (i = 0; i < NSIZES; i++) {
		make_frame(self->frame, sizes[i], i);
		ASSERT_EQ(0, tx_frame(&self->n, self->frame, sizes[i]));
		r = pkt_recv(&self->n, self->got, MAX_FRAME + 64, 5000);
		if (r != (ssize_t)sizes[i])
			TH_LOG("frame of %zu bytes: got %zd", sizes[i], r);
		ASSERT_EQ((ssize_t)sizes[i], r);
		ASSERT_EQ(0, memcmp(self->frame, self->got, sizes[i]));
	}
	/* the device handed every buffer back */
	for (i = 0; i < 50 && self->n.ntx_free < RING; i++) {
		wait_used(&self->n, 1, 100);
		reap_tx(&self->n);
	}
	EXPECT_EQ((unsigned int)RING, self->n.ntx_free);
}

/*
 * Were RX arrivals announced on the call eventfd?  The calls the waits
 * consumed, plus one still pending: a device quicker than us (TCG) may
 * have used every buffer before we looked, so that nothing was waited
 * for and its signals sit unread in the eventfd.
 */
static unsigned int rx_calls(struct guest_net *n)
{
	return n->calls_seen + st_eventfd_drain(n->call[0]);
}

TEST_F_TIMEOUT(net, rx_sizes, 120)
{
	unsigned int i;
	ssize_t r;

	for (i = 0; i < NSIZES; i++) {
		make_frame(self->frame, sizes[i], 1000 + i);
		ASSERT_EQ(0, pkt_send(&self->n, self->frame, sizes[i]));
		r = rx_frame(&self->n, self->got, MAX_FRAME + 64, 5000);
		if (r != (ssize_t)sizes[i])
			TH_LOG("frame of %zu bytes: got %zd", sizes[i], r);
		ASSERT_EQ((ssize_t)sizes[i], r);
		ASSERT_EQ(0, memcmp(self->frame, self->got, sizes[i]));
	}
	/* the arrivals were announced on the call eventfd */
	EXPECT_LT(0u, rx_calls(&self->n));
}

/*
 * Thousands of frames, WINDOW at a time, through rings of RING entries
 * (each wraps a dozen times); sizes cycle through 60..1514.
 */
#define MANY 3000

TEST_F_TIMEOUT(net, tx_many, 300)
{
	unsigned int sent = 0, got = 0, k;
	ssize_t r;
	size_t len;

	while (got < MANY) {
		for (k = 0; k < WINDOW && sent < MANY; k++, sent++) {
			len = 60 + (sent * 37) % (1514 - 60 + 1);
			make_frame(self->frame, len, sent);
			ASSERT_EQ(0, tx_frame(&self->n, self->frame, len));
		}
		while (got < sent) {
			len = 60 + (got * 37) % (1514 - 60 + 1);
			r = pkt_recv(&self->n, self->got, MAX_FRAME + 64, 5000);
			if (r != (ssize_t)len)
				TH_LOG("frame %u: got %zd of %zu", got, r, len);
			ASSERT_EQ((ssize_t)len, r);
			make_frame(self->frame, len, got);
			if (memcmp(self->frame, self->got, len))
				TH_LOG("frame %u differs", got);
			ASSERT_EQ(0, memcmp(self->frame, self->got, len));
			got++;
		}
	}
}

TEST_F_TIMEOUT(net, rx_many, 300)
{
	unsigned int sent = 0, got = 0, k;
	ssize_t r;
	size_t len;

	while (got < MANY) {
		for (k = 0; k < WINDOW && sent < MANY; k++, sent++) {
			len = 60 + (sent * 53) % (1514 - 60 + 1);
			make_frame(self->frame, len, sent);
			ASSERT_EQ(0, pkt_send(&self->n, self->frame, len));
		}
		while (got < sent) {
			len = 60 + (got * 53) % (1514 - 60 + 1);
			r = rx_frame(&self->n, self->got, MAX_FRAME + 64, 5000);
			if (r != (ssize_t)len)
				TH_LOG("frame %u: got %zd of %zu", got, r, len);
			ASSERT_EQ((ssize_t)len, r);
			make_frame(self->frame, len, got);
			if (memcmp(self->frame, self->got, len))
				TH_LOG("frame %u differs", got);
			ASSERT_EQ(0, memcmp(self->frame, self->got, len));
			got++;
		}
	}
	EXPECT_LT(0u, rx_calls(&self->n));
}

/*
 * Detaching the RX backend gives the tap queue back to its fd: a frame the
 * host transmits is then read from the tap fd, behind the vnet header the
 * tap was configured for.
 */
TEST_F(net, detach_rx)
{
	uint8_t *buf = self->got;
	ssize_t r;
	int tapfd = vh_tap_get_fd(self->n.tap);

	ASSERT_EQ(0, vh_net_set_backend(self->n.dev, 0, -1));
	make_frame(self->frame, 100, 77);
	ASSERT_EQ(0, pkt_send(&self->n, self->frame, 100));
	do {
		ASSERT_EQ(1, st_wait_fd(tapfd, 5000));
		r = read(tapfd, buf, MAX_FRAME + 64);
		ASSERT_LT(0, r);
	} while (!is_ours(buf + self->n.hdr_len, r - self->n.hdr_len));
	ASSERT_EQ((ssize_t)(self->n.hdr_len + 100), r);
	EXPECT_EQ(0, memcmp(buf + self->n.hdr_len, self->frame, 100));
	/* and re-attaching works */
	EXPECT_EQ(0, vh_net_set_backend(self->n.dev, 0,
					vh_tap_get_fd(self->n.tap)));
	make_frame(self->frame, 200, 78);
	ASSERT_EQ(0, pkt_send(&self->n, self->frame, 200));
	r = rx_frame(&self->n, self->got, MAX_FRAME + 64, 5000);
	ASSERT_EQ(200, r);
	EXPECT_EQ(0, memcmp(self->got, self->frame, 200));
}

/*
 * Dirty logging (VHOST_F_LOG_ALL, as for live migration), switched on while
 * the rings run: a frame received marks the page of the buffer vhost wrote
 * and the page of the used ring in the bitmap at SET_LOG_BASE, and the log
 * eventfd fires; pages vhost did not write stay clean.
 */
TEST_F(net, dirty_log)
{
	struct guest_net *n = &self->n;
	struct vh_kdev_vring_addr a = { 0 };
	void *desc, *avail, *used, *log = NULL;
	uint64_t dg, ag, ug, page;
	uint8_t *bm;
	int logfd;
	ssize_t r;

#define DIRTY(gpa) ((bm[((gpa) / 4096) / 8] >> (((gpa) / 4096) % 8)) & 1)
	logfd = st_eventfd();
	ASSERT_LE(0, logfd);
	ASSERT_EQ(0, vh_mem_log_alloc(n->g.mem, vh_mem_log_size_for(n->g.size),
				      NULL, &log));
	bm = log;
	ASSERT_EQ(0, vh_kdev_set_log_base(n->dev, log));
	ASSERT_EQ(0, vh_kdev_set_log_fd(n->dev, logfd));
	/* log the RX used ring too: the same areas, with its guest address */
	ASSERT_EQ(0, vh_drvq_get_host_addrs(n->vq[0], &desc, &avail, &used));
	ASSERT_EQ(0, vh_drvq_get_addrs(n->vq[0], &dg, &ag, &ug));
	a.desc = (uintptr_t)desc;
	a.avail = (uintptr_t)avail;
	a.used = (uintptr_t)used;
	a.log = ug;
	a.flags = VH_VRING_F_LOG;
	ASSERT_EQ(0, vh_kdev_set_vring_addr(n->dev, 0, &a));
	/* the log address of the used ring must be in guest memory */
	a.log = n->g.size + 4096;
	EXPECT_EQ(-EINVAL, vh_kdev_set_vring_addr(n->dev, 0, &a));
	ASSERT_EQ(0, vh_kdev_set_features(n->dev,
					  n->features | BIT(VHOST_F_LOG_ALL)));

	make_frame(self->frame, 1000, 4242);
	ASSERT_EQ(0, pkt_send(n, self->frame, 1000));
	r = rx_frame(n, self->got, MAX_FRAME + 64, 5000);
	ASSERT_EQ(1000, r);
	/* the frame itself, every byte (rx_frame() only knows it is ours) */
	EXPECT_EQ(0, memcmp(self->got, self->frame, 1000));
	/* the first frame lands in the first buffer posted */
	EXPECT_EQ(1, DIRTY(n->rxbuf_gpa));
	EXPECT_EQ(1, DIRTY(ug));
	/* nothing wrote the TX slots or the second half of the rx buffers */
	EXPECT_EQ(0, DIRTY(n->txbuf_gpa));
	page = n->rxbuf_gpa + (uint64_t)(RING - 1) * n->rxbuf_size;
	EXPECT_EQ(0, DIRTY(page));
	EXPECT_EQ(1, st_wait_fd(logfd, 2000));

	/* logging off again */
	EXPECT_EQ(0, vh_kdev_set_features(n->dev, n->features));
	close(logfd);
#undef DIRTY
}

/*
 * An AF_PACKET socket bound to the tap as the backend: the roles turn
 * round, the tap fd is now the far end.  Guest frames leave through the
 * packet socket, so the host transmits them on the tap and they are read
 * from the tap fd; frames written to the tap fd enter the host stack, the
 * packet socket catches them and vhost puts them in the RX ring.
 */
FIXTURE(pback)
{
	int unused;
};

FIXTURE_SETUP(pback)
{
}

FIXTURE_TEARDOWN(pback)
{
}

TEST_F_TIMEOUT(pback, packet_socket_backend, 120)
{
	static const size_t psizes[] = { 60, 1514, 9014, 65535 };
	struct guest_net *n = calloc(1, sizeof(*n));
	uint8_t *f = malloc(MAX_FRAME), *got = malloc(MAX_FRAME + 64);
	const char *why = NULL;
	unsigned int i, hl;
	int err, tapfd;
	ssize_t r;

	ASSERT_NE(NULL, n);
	ASSERT_NE(NULL, f);
	ASSERT_NE(NULL, got);
	n->pkt = n->kick[0] = n->kick[1] = n->call[0] = n->call[1] = -1;
	err = gn_setup(n, BIT(VIRTIO_F_VERSION_1), RING, true, &why);
	if (err > 0)
		SKIP(goto out, "%s", why);
	ASSERT_EQ(0, err)
		TH_LOG("%s", why ? why : strerror(-err));
	tapfd = vh_tap_get_fd(n->tap);
	hl = n->hdr_len;
	for (i = 0; i < sizeof(psizes) / sizeof(psizes[0]); i++) {
		make_frame(f, psizes[i], 500 + i);
		ASSERT_EQ(0, tx_frame(n, f, psizes[i]));
		do {
			ASSERT_EQ(1, st_wait_fd(tapfd, 5000));
			r = read(tapfd, got, MAX_FRAME + 64);
			ASSERT_LT((ssize_t)hl, r);
		} while (!is_ours(got + hl, r - hl));
		ASSERT_EQ((ssize_t)(hl + psizes[i]), r);
		ASSERT_EQ(0, memcmp(got + hl, f, psizes[i]));

		make_frame(f, psizes[i], 600 + i);
		memset(got, 0, hl);
		memcpy(got + hl, f, psizes[i]);
		ASSERT_EQ((ssize_t)(hl + psizes[i]),
			  write(tapfd, got, hl + psizes[i]));
		r = rx_frame(n, got, MAX_FRAME + 64, 5000);
		ASSERT_EQ((ssize_t)psizes[i], r);
		ASSERT_EQ(0, memcmp(got, f, psizes[i]));
	}
out:
	gn_teardown(n);
	free(n);
	free(f);
	free(got);
}

/* ------------------------------------------------------------------ */
/* negative cases                                                      */
/* ------------------------------------------------------------------ */

FIXTURE(neg)
{
	struct vh_ctx *ctx;
	struct vh_kdev *dev;
	struct vh_tap *tap;
	struct st_guest g;
	bool have_guest;
	uint64_t offered;
};

FIXTURE_SETUP(neg)
{
	int err;

	memset(self, 0, sizeof(*self));
	ASSERT_EQ(0, vh_ctx_new(&self->ctx));
	if (access("/dev/vhost-net", F_OK) || access("/dev/net/tun", F_OK))
		SKIP(return, "/dev/vhost-net or /dev/net/tun missing");
	err = vh_kdev_open_type(self->ctx, VH_KDEV_NET, &self->dev);
	if (err == -EACCES || err == -EPERM)
		SKIP(return, "no permission on /dev/vhost-net");
	ASSERT_EQ(0, err);
	ASSERT_EQ(0, vh_kdev_set_owner(self->dev));
	ASSERT_EQ(0, vh_kdev_get_features(self->dev, &self->offered));
	ASSERT_EQ(0, vh_tap_new(self->ctx, NULL, &self->tap));
	ASSERT_EQ(0, st_guest_init(&self->g, self->ctx, 1 << 20));
	self->have_guest = true;
}

FIXTURE_TEARDOWN(neg)
{
	vh_kdev_unref(self->dev);
	vh_tap_unref(self->tap);
	if (self->have_guest)
		st_guest_fini(&self->g);
	vh_ctx_unref(self->ctx);
}

/* vhost_net_set_features(): VHOST_NET_FEATURES only */
TEST_F(neg, features_not_offered)
{
	static const unsigned int bits[] = { VIRTIO_NET_F_CTRL_VQ,
					     VIRTIO_NET_F_MQ,
					     VIRTIO_NET_F_GUEST_TSO4,
					     VIRTIO_NET_F_CSUM,
					     VIRTIO_F_RING_PACKED };
	unsigned int i;

	for (i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		if (self->offered & BIT(bits[i]))
			continue;
		EXPECT_EQ(-EOPNOTSUPP,
			  vh_kdev_set_features(self->dev, BIT(bits[i])));
	}
}

/*
 * A ring never given an address: the kernel only finds out when the
 * backend starts the ring (vhost_vq_init_access() writes used->flags at
 * address 0).
 */
TEST_F(neg, backend_on_unset_ring)
{
	ASSERT_EQ(0, vh_kdev_set_mem_table(self->dev, self->g.mem));
	EXPECT_EQ(-EFAULT, vh_net_set_backend(self->dev, 0,
					      vh_tap_get_fd(self->tap)));
}

TEST_F(neg, backend_bad_ring_address)
{
	struct vhost_vring_addr va = { .index = 1 };
	uint8_t *hole;
	int efd = st_eventfd();

	ASSERT_LE(0, efd);
	ASSERT_EQ(0, vh_kdev_set_mem_table(self->dev, self->g.mem));
	ASSERT_EQ(0, vh_kdev_set_vring_num(self->dev, 1, 64));
	hole = mmap(NULL, 1 << 16, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		    0);
	ASSERT_NE(MAP_FAILED, hole);
	munmap(hole, 1 << 16);
	va.desc_user_addr = (uintptr_t)hole;
	va.avail_user_addr = (uintptr_t)hole + 0x1000;
	va.used_user_addr = (uintptr_t)hole + 0x2000;
	/* the library refuses a ring outside guest memory ... */
	{
		struct vh_kdev_vring_addr a = { .desc = va.desc_user_addr,
						.avail = va.avail_user_addr,
						.used = va.used_user_addr };

		EXPECT_EQ(-EINVAL, vh_kdev_set_vring_addr(self->dev, 1, &a));
	}
	/* ... the kernel takes it and fails when the ring starts */
	ASSERT_EQ(0, ioctl(vh_kdev_get_fd(self->dev), VHOST_SET_VRING_ADDR,
			   &va));
	ASSERT_EQ(0, vh_kdev_set_vring_kick(self->dev, 1, efd));
	EXPECT_EQ(-EFAULT, vh_net_set_backend(self->dev, 1,
					      vh_tap_get_fd(self->tap)));
	close(efd);
}

TEST_F(neg, backend_bad_fds)
{
	struct vhost_vring_file f = { .index = 2,
				      .fd = vh_tap_get_fd(self->tap) };
	struct vh_drvq *vq = NULL;
	uint64_t ring;
	int efd = st_eventfd();

	ASSERT_LE(0, efd);
	/* a ring the kernel can start, so that only the fd is wrong */
	ASSERT_EQ(0, vh_kdev_set_mem_table(self->dev, self->g.mem));
	ring = st_guest_alloc(&self->g, vh_drvq_ring_bytes(64), 4096);
	ASSERT_NE(0u, ring);
	ASSERT_EQ(0, vh_drvq_new(self->ctx, self->g.mem, 0, 64, ring, &vq));
	ASSERT_EQ(0, vh_kdev_setup_vring(self->dev, 0, vq, efd, -1));
	/* vhost-net has two vrings: library and kernel say ENOBUFS */
	EXPECT_EQ(-ENOBUFS, vh_net_set_backend(self->dev, 2,
					       vh_tap_get_fd(self->tap)));
	EXPECT_EQ(-1, ioctl(vh_kdev_get_fd(self->dev), VHOST_NET_SET_BACKEND,
			    &f));
	EXPECT_EQ(ENOBUFS, errno);
	/* get_socket(): neither a tap nor a raw packet socket */
	EXPECT_EQ(-ENOTSOCK, vh_net_set_backend(self->dev, 0, efd));
	/* a closed fd never reaches the kernel */
	close(efd);
	EXPECT_EQ(-EBADF, vh_net_set_backend(self->dev, 0, efd));
	/* detaching what was never attached is fine */
	EXPECT_EQ(0, vh_net_set_backend(self->dev, 0, -1));
	vh_drvq_unref(vq);
}

TEST_F(neg, tap_wrapping)
{
	struct vh_tap *t2 = NULL;
	int efd = st_eventfd(), p;

	ASSERT_LE(0, efd);
	/* an existing tap fd is duplicated and its name found */
	ASSERT_EQ(0, vh_tap_new_from_fd(self->ctx, vh_tap_get_fd(self->tap),
					&t2));
	EXPECT_STREQ(vh_tap_get_name(self->tap), vh_tap_get_name(t2));
	EXPECT_NE(vh_tap_get_fd(self->tap), vh_tap_get_fd(t2));
	EXPECT_EQ(0, vh_tap_set_vnet_hdr_len(t2, 12));
	EXPECT_EQ(-EINVAL, vh_tap_set_vnet_hdr_len(t2, 11));
	vh_tap_unref(t2);
	/* anything else is refused */
	EXPECT_EQ(-ENOTTY, vh_tap_new_from_fd(self->ctx, efd, &t2));
	p = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, p);
	/* vhost-net takes SOCK_RAW packet sockets only */
	EXPECT_EQ(-ESOCKTNOSUPPORT, vh_tap_new_from_fd(self->ctx, p, &t2));
	close(p);
	p = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, p);
	/* ... bound to an interface */
	EXPECT_EQ(-EDESTADDRREQ, vh_tap_new_from_fd(self->ctx, p, &t2));
	close(p);
	EXPECT_EQ(-EINVAL, vh_tap_new(self->ctx, "a/b", &t2));
	EXPECT_EQ(-EINVAL,
		  vh_tap_new(self->ctx, "name-longer-than-ifnamsiz", &t2));
	close(efd);
}

int main(int argc, char **argv)
{
	st_need_module("vhost_net");
	st_need_module("tun");
	if (access("/dev/vhost-net", F_OK))
		ksft_exit_skip("/dev/vhost-net missing: vhost_net not "
			       "loaded\n");
	return test_harness_run(argc, argv);
}
