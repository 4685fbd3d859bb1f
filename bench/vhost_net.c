// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vhost_net - frames per second through vhost-net, against plain tap I/O.
 *
 * One tap, four measurements of the same frames, each after its own
 * warm-up, in ROUNDS rounds (the even ones in the reverse order):
 *   tx vhost : the userspace driver (vh_drvq) queues frames on the TX ring,
 *              vhost-net hands them to the tap, the host stack delivers
 *              them to an AF_PACKET socket on the tap;
 *   tx write : write(2) of header + frame on the tap fd, same receiver;
 *   rx vhost : the AF_PACKET socket transmits on the tap, vhost-net puts
 *              the frames in the RX ring, the driver takes them;
 *   rx read  : the same transmissions, taken with read(2) from the tap fd.
 * Frames go WINDOW at a time and each window is waited for, so that no
 * queue overflows and both paths do the same work per frame.  Under QEMU
 * TCG absolute figures mean little: the ratios are the result.
 *
 * Prints each round and the means; the ratios are of the means.
 *
 * Usage: vhost_net [-n FRAMES] [-s SIZE] [-w WINDOW] [-r ROUNDS]
 * Exits 4 (skip) when /dev/vhost-net or /dev/net/tun is missing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>

#include "libvhost.h"

#define RING 256
#define SLOT 2048 /* one rx buffer / tx slot: header + frame <= 1514 */
#define ETHERTYPE_BENCH 0x88b5
#define SKIP_EXIT 4

struct bench {
	struct vh_ctx *ctx;
	struct vh_kdev *dev;
	struct vh_tap *tap;
	struct vh_mem *mem;
	uint8_t *host;
	struct vh_drvq *vq[2];
	int kick[2], call[2];
	int pkt, tapfd, ifindex;
	unsigned int hdr_len;
	uint64_t rx_gpa, tx_gpa;
	unsigned int tx_free[RING], ntx_free;
	uint8_t frame[SLOT], buf[65536];
};

static void die(const char *what, int err)
{
	fprintf(stderr, "vhost_net: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int wait_fd(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms);
}

static void rx_post(struct bench *b, unsigned int i)
{
	struct vh_sg sg = { .addr = b->rx_gpa + (uint64_t)i * SLOT,
			    .len = SLOT };

	vh_drvq_add(b->vq[0], &sg, 0, 1, (void *)(uintptr_t)(i + 1));
}

static void setup(struct bench *b)
{
	uint64_t features = (1ULL << VIRTIO_F_VERSION_1) |
			    (1ULL << VIRTIO_RING_F_EVENT_IDX);
	struct sockaddr_ll sll = { .sll_family = AF_PACKET,
				   .sll_protocol = htons(ETH_P_ALL) };
	uint64_t offered = 0, size, ring;
	void *host = NULL;
	unsigned int i;
	int err, sz = 8 << 20;

	if (access("/dev/vhost-net", F_OK) || access("/dev/net/tun", F_OK)) {
		printf("vhost_net: skipped: /dev/vhost-net or /dev/net/tun "
		       "missing\n");
		exit(SKIP_EXIT);
	}
	if ((err = vh_ctx_new(&b->ctx)) ||
	    (err = vh_kdev_open_type(b->ctx, VH_KDEV_NET, &b->dev)) ||
	    (err = vh_kdev_set_owner(b->dev)) ||
	    (err = vh_kdev_get_features(b->dev, &offered)))
		die("vhost-net", err);
	features &= offered;
	if ((err = vh_kdev_set_features(b->dev, features)))
		die("SET_FEATURES", err);
	b->hdr_len = vh_net_hdr_len(features);
	if ((err = vh_tap_new(b->ctx, NULL, &b->tap)) ||
	    (err = vh_tap_set_features(b->tap, features)))
		die("tap", err);
	{
		char path[128];
		int fd;

		/* keep IPv6 router solicitations off the tap */
		snprintf(path, sizeof(path),
			 "/proc/sys/net/ipv6/conf/%s/disable_ipv6",
			 vh_tap_get_name(b->tap));
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			if (write(fd, "1", 1) != 1)
				perror(path);
			close(fd);
		}
	}
	if ((err = vh_tap_set_up(b->tap, true)))
		die("link up", err);
	b->tapfd = vh_tap_get_fd(b->tap);
	b->ifindex = vh_tap_get_ifindex(b->tap);

	b->pkt = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK,
			htons(ETH_P_ALL));
	if (b->pkt < 0)
		die("AF_PACKET", errno);
	sll.sll_ifindex = b->ifindex;
	if (bind(b->pkt, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		die("bind", errno);
	setsockopt(b->pkt, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));

	size = 2ull * RING * SLOT + (1 << 20);
	if ((err = vh_mem_new(b->ctx, &b->mem)) ||
	    (err = vh_mem_add_memfd(b->mem, 0, size, &host)))
		die("guest memory", err);
	b->host = host;
	b->rx_gpa = 0x10000;
	b->tx_gpa = b->rx_gpa + (uint64_t)RING * SLOT;
	ring = b->tx_gpa + (uint64_t)RING * SLOT;
	if ((err = vh_kdev_set_mem_table(b->dev, b->mem)))
		die("SET_MEM_TABLE", err);
	for (i = 0; i < 2; i++) {
		b->kick[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		b->call[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (b->kick[i] < 0 || b->call[i] < 0)
			die("eventfd", errno);
		if ((err = vh_drvq_new(b->ctx, b->mem, i, RING, ring, &b->vq[i])) ||
		    (err = vh_drvq_set_features(b->vq[i], features)) ||
		    (err = vh_drvq_set_kick_fd(b->vq[i], b->kick[i])) ||
		    (err = vh_drvq_set_call_fd(b->vq[i], b->call[i])) ||
		    (err = vh_kdev_setup_vring(b->dev, i, b->vq[i], b->kick[i],
					       b->call[i])))
			die("vring", err);
		ring += (vh_drvq_ring_bytes(RING) + 4095) & ~4095ull;
	}
	for (i = 0; i < RING; i++) {
		rx_post(b, i);
		b->tx_free[b->ntx_free++] = i;
	}
	vh_drvq_kick(b->vq[0]);
}

static void attach(struct bench *b, int q, bool on)
{
	int err = vh_net_set_backend(b->dev, q, on ? b->tapfd : -1);

	if (err)
		die("SET_BACKEND", err);
}

static void make_frame(struct bench *b, size_t len, uint32_t seq)
{
	memset(b->frame, 0, 14);
	b->frame[0] = 0x02;
	b->frame[5] = 0x02;
	b->frame[6] = 0x02;
	b->frame[11] = 0x01;
	b->frame[12] = ETHERTYPE_BENCH >> 8;
	b->frame[13] = ETHERTYPE_BENCH & 0xff;
	memcpy(b->frame + 14, &seq, 4);
	memset(b->frame + 18, (int)(seq & 0xff), len - 18);
}

static bool ours(const uint8_t *f, ssize_t len)
{
	return len >= 14 && f[12] == (ETHERTYPE_BENCH >> 8) &&
	       f[13] == (ETHERTYPE_BENCH & 0xff);
}

/* Frames of ours arriving on the AF_PACKET socket, waiting up to 2 s. */
static unsigned int pkt_drain(struct bench *b, unsigned int want)
{
	struct sockaddr_ll from;
	socklen_t flen;
	unsigned int got = 0;
	ssize_t r;

	while (got < want) {
		flen = sizeof(from);
		r = recvfrom(b->pkt, b->buf, sizeof(b->buf), 0,
			     (struct sockaddr *)&from, &flen);
		if (r < 0) {
			if (errno != EAGAIN || wait_fd(b->pkt, 2000) <= 0)
				break;
			continue;
		}
		if (from.sll_pkttype != PACKET_OUTGOING && ours(b->buf, r))
			got++;
	}
	return got;
}

static void pkt_send(struct bench *b, size_t len)
{
	struct sockaddr_ll to = { .sll_family = AF_PACKET,
				  .sll_protocol = htons(ETHERTYPE_BENCH),
				  .sll_ifindex = b->ifindex,
				  .sll_halen = 6 };

	memcpy(to.sll_addr, b->frame, 6);
	if (sendto(b->pkt, b->frame, len, 0, (struct sockaddr *)&to,
		   sizeof(to)) != (ssize_t)len)
		die("sendto", errno);
}

static int wait_used(struct bench *b, int q)
{
	uint64_t v;

	if (vh_drvq_enable_cb(b->vq[q]) == 1)
		return 1;
	if (wait_fd(b->call[q], 2000) <= 0)
		return 0;
	if (read(b->call[q], &v, sizeof(v)) < 0 && errno != EAGAIN)
		die("call eventfd", errno);
	return 1;
}

static double tx_vhost(struct bench *b, unsigned int n, size_t len,
		       unsigned int window)
{
	unsigned int sent = 0, got = 0, k;
	uint64_t t0 = now_ns();
	void *tok;
	uint32_t ulen;

	while (sent < n) {
		for (k = 0; k < window && sent < n; k++, sent++) {
			struct vh_sg sg;
			unsigned int slot;

			while (vh_drvq_get_used(b->vq[1], &tok, &ulen) == 1)
				b->tx_free[b->ntx_free++] =
					(unsigned int)(uintptr_t)tok - 1;
			while (!b->ntx_free) {
				if (!wait_used(b, 1))
					die("tx ring stuck", ETIMEDOUT);
				while (vh_drvq_get_used(b->vq[1], &tok, &ulen) == 1)
					b->tx_free[b->ntx_free++] =
						(unsigned int)(uintptr_t)tok - 1;
			}
			slot = b->tx_free[--b->ntx_free];
			sg.addr = b->tx_gpa + (uint64_t)slot * SLOT;
			sg.len = b->hdr_len + len;
			make_frame(b, len, sent);
			memset(b->host + sg.addr, 0, b->hdr_len);
			memcpy(b->host + sg.addr + b->hdr_len, b->frame, len);
			vh_drvq_add(b->vq[1], &sg, 1, 0,
				  (void *)(uintptr_t)(slot + 1));
		}
		vh_drvq_kick(b->vq[1]);
		got += pkt_drain(b, sent - got);
		if (got < sent)
			die("tx vhost: frames lost", EIO);
	}
	return n / ((now_ns() - t0) / 1e9);
}

static double tx_write(struct bench *b, unsigned int n, size_t len,
		       unsigned int window)
{
	unsigned int sent = 0, got = 0, k;
	uint64_t t0 = now_ns();

	while (sent < n) {
		for (k = 0; k < window && sent < n; k++, sent++) {
			make_frame(b, len, sent);
			memset(b->buf, 0, b->hdr_len);
			memcpy(b->buf + b->hdr_len, b->frame, len);
			if (write(b->tapfd, b->buf, b->hdr_len + len) !=
			    (ssize_t)(b->hdr_len + len))
				die("write tap", errno);
		}
		got += pkt_drain(b, sent - got);
		if (got < sent)
			die("tx write: frames lost", EIO);
	}
	return n / ((now_ns() - t0) / 1e9);
}

static double rx_vhost(struct bench *b, unsigned int n, size_t len,
		       unsigned int window)
{
	unsigned int sent = 0, got = 0, k;
	uint64_t t0 = now_ns();
	void *tok;
	uint32_t ulen;

	while (sent < n) {
		for (k = 0; k < window && sent < n; k++, sent++) {
			make_frame(b, len, sent);
			pkt_send(b, len);
		}
		while (got < sent) {
			if (vh_drvq_get_used(b->vq[0], &tok, &ulen) != 1) {
				if (!wait_used(b, 0))
					die("rx vhost: frames lost", EIO);
				continue;
			}
			if (ours(b->host + b->rx_gpa +
					 ((uintptr_t)tok - 1) * SLOT +
					 b->hdr_len,
				 (ssize_t)ulen - b->hdr_len))
				got++;
			rx_post(b, (unsigned int)(uintptr_t)tok - 1);
		}
		vh_drvq_kick(b->vq[0]);
	}
	return n / ((now_ns() - t0) / 1e9);
}

static double rx_read(struct bench *b, unsigned int n, size_t len,
		      unsigned int window)
{
	unsigned int sent = 0, got = 0, k;
	uint64_t t0 = now_ns();
	ssize_t r;

	while (sent < n) {
		for (k = 0; k < window && sent < n; k++, sent++) {
			make_frame(b, len, sent);
			pkt_send(b, len);
		}
		while (got < sent) {
			r = read(b->tapfd, b->buf, sizeof(b->buf));
			if (r < 0) {
				if (errno != EAGAIN || wait_fd(b->tapfd, 2000) <= 0)
					die("rx read: frames lost", EIO);
				continue;
			}
			if (r > (ssize_t)b->hdr_len &&
			    ours(b->buf + b->hdr_len, r - b->hdr_len))
				got++;
		}
	}
	return n / ((now_ns() - t0) / 1e9);
}

/* the four paths, in the order the odd rounds run them */
enum path { TX_VHOST, TX_WRITE, RX_VHOST, RX_READ, NPATH };

static double (*const path_fn[NPATH])(struct bench *, unsigned int, size_t,
				      unsigned int) = {
	tx_vhost, tx_write, rx_vhost, rx_read
};

static const char *const path_name[NPATH] = {
	"tx  driver->vhost-net->tap", "tx  write(2)->tap",
	"rx  tap->vhost-net->driver", "rx  tap->read(2)",
};

/*
 * One measurement of path p: vhost-net serves the ring of its own path
 * only (the other paths take the tap fd), after a warm-up of that very
 * path (4 windows: the caches, the tap's and the socket's queues).
 */
static double run_path(struct bench *b, enum path p, unsigned int n,
		       size_t len, unsigned int window)
{
	attach(b, 0, p == RX_VHOST);
	attach(b, 1, p == TX_VHOST);
	path_fn[p](b, window * 4, len, window);
	return path_fn[p](b, n, len, window);
}

int main(int argc, char **argv)
{
	static struct bench b;
	unsigned int n = 20000, window = 32, rounds = 3, r, i;
	double sum[NPATH] = { 0 };
	size_t len = 64;
	struct utsname u;
	int opt;

	while ((opt = getopt(argc, argv, "n:s:w:r:h")) != -1) {
		switch (opt) {
		case 'n':
			n = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 's':
			len = strtoul(optarg, NULL, 0);
			break;
		case 'w':
			window = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'r':
			rounds = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		default:
			fprintf(stderr,
				"usage: %s [-n FRAMES] [-s SIZE 60..1514] "
				"[-w WINDOW 1..%d] [-r ROUNDS 1..100]\n",
				argv[0], RING / 2);
			return 2;
		}
	}
	if (n == 0 || len < 60 || len > 1514 || window == 0 ||
	    window > RING / 2 || rounds == 0 || rounds > 100) {
		fprintf(stderr, "vhost_net: bad arguments\n");
		return 2;
	}
	setup(&b);
	uname(&u);
	printf("vhost_net bench: kernel %s, %u frames of %zu bytes, window %u, "
	       "header %u bytes, %u rounds\n", u.release, n, len, window,
	       b.hdr_len, rounds);

	/*
	 * Each round runs every path once, each after its own warm-up; the
	 * even rounds in the reverse order, so that no path always comes
	 * first (or last) after the others
	 */
	for (r = 0; r < rounds; r++) {
		double v[NPATH];

		for (i = 0; i < NPATH; i++) {
			enum path p = r % 2 ? (enum path)(NPATH - 1 - i) :
					      (enum path)i;

			v[p] = run_path(&b, p, n, len, window);
			sum[p] += v[p];
		}
		printf("round %u: %.0f %.0f %.0f %.0f frames/s "
		       "(tx vhost, tx write, rx vhost, rx read)\n", r + 1,
		       v[TX_VHOST], v[TX_WRITE], v[RX_VHOST], v[RX_READ]);
	}
	attach(&b, 0, false);
	attach(&b, 1, false);

	printf("means of %u rounds:\n", rounds);
	for (i = 0; i < NPATH; i++)
		printf("%-27s: %12.0f frames/s\n", path_name[i],
		       sum[i] / rounds);
	printf("tx  ratio vhost/write      : %12.2f\n",
	       sum[TX_VHOST] / sum[TX_WRITE]);
	printf("rx  ratio vhost/read       : %12.2f\n",
	       sum[RX_VHOST] / sum[RX_READ]);

	vh_kdev_unref(b.dev);
	vh_drvq_unref(b.vq[0]);
	vh_drvq_unref(b.vq[1]);
	vh_tap_unref(b.tap);
	vh_mem_unref(b.mem);
	vh_ctx_unref(b.ctx);
	return 0;
}
