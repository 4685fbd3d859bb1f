// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A real front-end against our back-end: DPDK testpmd with a virtio-user
 * port (net_virtio_user, client mode) connects to a small virtio-net device
 * built on vh_vu_backend (server mode).
 *
 * Phase 1, --forward-mode=txonly on two queue pairs (MQ: GET_QUEUE_NUM,
 * four rings): we check every frame testpmd transmits on both TX rings:
 * the virtio-net header, Ethernet (source MAC = the one we gave the port,
 * type IPv4), the IPv4 header (version, length, UDP, checksum) and the UDP
 * length.  Then testpmd is stopped with SIGINT, which makes it stop its
 * rings (GET_VRING_BASE) and disconnect.
 *
 * Phase 2, a second testpmd on the same listening back-end, in
 * --forward-mode=io: we put numbered frames into its RX ring, it sends them
 * back on TX, and every byte of every frame must come back unchanged, but
 * for those testpmd flushes from its RX ring as its port starts (before
 * any echo came: counted lost, at most a quarter of them).
 *
 * SKIP (77) only without dpdk-testpmd (Debian package dpdk-dev, which
 * scripts/install-deps installs); testpmd failing to start, its EAL
 * included, is a failure.  testpmd is killed on every path (atexit, and
 * PR_SET_PDEATHSIG if we die), and its runtime directory is removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libvhost.h"
#include "test-util.h"

#define TESTPMD "/usr/bin/dpdk-testpmd"
#define WANT_PACKETS 20000
/*
 * testpmd's start and its frames: its EAL start without hugepages is slow
 * on a loaded machine (test-vu-net-dpdk.sh allows 240 s)
 */
#define SERVE_MS 180000
#define NET_HDR_LEN 12 /* struct virtio_net_hdr_mrg_rxbuf (VERSION_1) */
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_CTRL_VQ 17
#define VIRTIO_NET_F_MQ 22
#define VIRTIO_CONFIG_S_DRIVER_OK 4

static pid_t pmd = -1;
static char dir[64], prefix[64], logpath[128];

static const uint8_t our_mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0x01 };

#define ECHO_FRAMES 5000
#define ECHO_LEN 98 /* 14 Ethernet + 20 IPv4 + 8 UDP + 56 payload */

struct net {
	struct vh_vu_backend *be;
	unsigned long good, bad, kicks, starts, stops;
	unsigned long good_q[2]; /* per queue pair */
	uint8_t first_bad[128];
	size_t first_bad_len;
	/* phase 2 */
	bool echo;
	struct vh_devq *rx; /* while handed */
	unsigned long injected, echoed, echo_bad;
	uint8_t *seen;
	unsigned long lost; /* injected before testpmd was ready */
	int64_t progress; /* last echo (or hand-over of RX) */
};

static int64_t now_ms(void);

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	remove(path);
	return 0;
}

static void cleanup(void)
{
	char run[128];
	int st;

	if (pmd > 0) {
		kill(pmd, SIGKILL);
		waitpid(pmd, &st, 0);
		pmd = -1;
	}
	if (prefix[0]) {
		snprintf(run, sizeof(run), "/var/run/dpdk/%s", prefix);
		nftw(run, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	}
	if (dir[0])
		nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void dump_log(void)
{
	char line[512];
	FILE *f = fopen(logpath, "re");

	if (!f)
		return;
	fprintf(stderr, "---- testpmd log ----\n");
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fclose(f);
}

static bool log_has(const char *what)
{
	char line[512];
	bool found = false;
	FILE *f = fopen(logpath, "re");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, what) != NULL;
	fclose(f);
	return found;
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* One's-complement sum of an IPv4 header: 0xffff when the checksum is right. */
static uint16_t ip_csum_ok(const uint8_t *h, unsigned int len)
{
	uint32_t s = 0;
	unsigned int i;

	for (i = 0; i < len; i += 2)
		s += be16(h + i);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static bool frame_ok(const uint8_t *p, size_t len)
{
	const uint8_t *eth, *ip, *udp;
	size_t flen;
	uint16_t ip_len;

	if (len < NET_HDR_LEN + 14 + 20 + 8)
		return false;
	eth = p + NET_HDR_LEN;
	flen = len - NET_HDR_LEN;
	if (memcmp(eth + 6, our_mac, 6) || be16(eth + 12) != 0x0800)
		return false;
	ip = eth + 14;
	ip_len = be16(ip + 2);
	/* IPv4, 20-byte header, UDP, total length = the rest of the frame */
	if (ip[0] != 0x45 || ip[9] != 17 || ip_len != flen - 14 ||
	    ip_csum_ok(ip, 20) != 0xffff)
		return false;
	udp = ip + 20;
	return be16(udp + 4) == ip_len - 20;
}

/* Frame number seq of phase 2: UDP 198.18.0.1:1024 -> 198.18.0.2:1025. */
static void echo_frame(uint8_t *f, uint32_t seq)
{
	static const uint8_t hdr[34] = {
		0x02, 0,    0,	  0,	0,    0x02, 0x52, 0x54, 0x00,
		0xab, 0xcd, 0x02, 0x08, 0x00, 0x45, 0,	  0,	ECHO_LEN - 14,
		0,    0,    0,	  0,	64,   17,   0,	  0,	198,
		18,   0,    1,	  198,	18,   0,    2,
	};
	unsigned int i;

	memcpy(f, hdr, sizeof(hdr));
	f[34] = 4;
	f[35] = 0;
	f[36] = 4;
	f[37] = 1;
	f[38] = 0;
	f[39] = ECHO_LEN - 34;
	f[40] = f[41] = 0;
	memcpy(f + 42, &seq, 4);
	for (i = 46; i < ECHO_LEN; i++)
		f[i] = (uint8_t)(seq * 31 + i);
}

/* Phase 2: fill testpmd's RX buffers with numbered frames. */
static void rx_fill(struct net *n)
{
	struct iovec iov[16];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 16 };
	uint8_t buf[NET_HDR_LEN + ECHO_LEN];
	bool pushed = false;

	/* virtio 1.x 3.1.1: the device must not use the queues before DRIVER_OK */
	if (!n->echo || !n->rx ||
	    !(vh_vu_backend_get_status(n->be) & VIRTIO_CONFIG_S_DRIVER_OK))
		return;
	/*
	 * testpmd throws away what is in its RX ring when its port starts
	 * (virtio_dev_start flushes the RX queues), and we cannot tell when
	 * that is: frames that get no echo before the first echo ever came
	 * are counted lost, never those after.
	 */
	if (!n->echoed && n->injected > n->lost &&
	    now_ms() - n->progress > 300) {
		n->lost = n->injected;
		n->progress = now_ms();
	}
	/*
	 * io forwarding drops what its TX ring cannot take: keep fewer
	 * frames in flight than that ring has entries.
	 */
	while (n->injected < ECHO_FRAMES &&
	       n->injected - n->echoed - n->echo_bad - n->lost < 128 &&
	       vh_devq_pop(n->rx, &e) == 1) {
		size_t off = 0, k;
		unsigned int i;

		memset(buf, 0, NET_HDR_LEN);
		buf[10] = 1; /* num_buffers (MRG_RXBUF) */
		echo_frame(buf + NET_HDR_LEN, (uint32_t)n->injected);
		for (i = e.out_num; i < e.out_num + e.in_num; i++) {
			k = iov[i].iov_len < sizeof(buf) - off ?
				    iov[i].iov_len :
				    sizeof(buf) - off;
			memcpy(iov[i].iov_base, buf + off, k);
			off += k;
		}
		CHECK_EQ(off, sizeof(buf)); /* testpmd's mbufs are 2 KiB */
		CHECK_EQ(vh_devq_push(n->rx, e.id, (uint32_t)off), 0);
		n->injected++;
		pushed = true;
	}
	if (pushed)
		vh_vu_backend_notify(n->be, 0);
}

static void echo_check(struct net *n, const uint8_t *p, size_t len)
{
	uint8_t want[ECHO_LEN];
	uint32_t seq;

	if (len != NET_HDR_LEN + ECHO_LEN) {
		n->echo_bad++;
		return;
	}
	memcpy(&seq, p + NET_HDR_LEN + 42, 4);
	if (seq >= ECHO_FRAMES || n->seen[seq]) {
		n->echo_bad++;
		return;
	}
	echo_frame(want, seq);
	if (memcmp(p + NET_HDR_LEN, want, ECHO_LEN)) {
		n->echo_bad++;
		return;
	}
	if (seq < n->lost) {
		/* declared lost, came back late after all: fine, not counted */
		n->seen[seq] = 1;
		return;
	}
	n->seen[seq] = 1;
	n->echoed++;
	n->progress = now_ms();
}

static void tx_drain(struct net *n, unsigned int idx, struct vh_devq *vr)
{
	struct iovec iov[16];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 16 };
	uint8_t buf[2048];
	unsigned int budget = 256;
	int r;

	for (;;) {
		size_t len = 0;
		unsigned int i;

		if (!budget--) {
			/*
			 * Fair to the other TX ring: come back through the
			 * event loop, by kicking ourselves (notifications
			 * are off while we are behind).
			 */
			uint64_t one = 1;

			if (write(vh_devq_get_kick_fd(vr), &one, 8) != 8)
				vh_devq_enable_notification(vr);
			r = 0;
			break;
		}
		r = vh_devq_pop(vr, &e);
		if (r == 0 && vh_devq_enable_notification(vr) == 1)
			continue;
		if (r <= 0)
			break;
		vh_devq_disable_notification(vr);
		for (i = 0; i < e.out_num; i++) {
			size_t k = iov[i].iov_len;

			if (len + k > sizeof(buf))
				k = sizeof(buf) - len;
			memcpy(buf + len, iov[i].iov_base, k);
			len += k;
		}
		if (n->echo) {
			echo_check(n, buf, len);
		} else if (frame_ok(buf, len)) {
			n->good++;
			n->good_q[idx / 2]++;
		} else {
			if (!n->bad++) {
				n->first_bad_len = len < 128 ? len : 128;
				memcpy(n->first_bad, buf, n->first_bad_len);
			}
		}
		CHECK_EQ(vh_devq_push(vr, e.id, 0), 0);
	}
	CHECK(r >= 0);
	vh_vu_backend_notify(n->be, idx);
}

static int net_started(struct vh_vu_backend *be, void *data, unsigned int idx,
		       struct vh_devq *vr)
{
	struct net *n = data;

	n->starts++;
	if (idx == 0) {
		n->rx = vr;
		n->progress = now_ms();
	}
	return 0;
}

static void net_stopped(struct vh_vu_backend *be, void *data, unsigned int idx,
			struct vh_devq *vr)
{
	struct net *n = data;

	n->stops++;
	if (idx == 0)
		n->rx = NULL;
}

static void net_kicked(struct vh_vu_backend *be, void *data, unsigned int idx,
		       struct vh_devq *vr)
{
	struct net *n = data;

	n->kicks++;
	if (idx % 2)
		tx_drain(n, idx, vr);
	else if (idx == 0)
		rx_fill(n); /* RX buffers came (phase 2 only) */
}

static int net_get_config(struct vh_vu_backend *be, void *data, uint32_t off,
			  void *buf, uint32_t size)
{
	/* struct virtio_net_config: mac[6], status, max_virtqueue_pairs */
	uint8_t cfg[12] = { 0 };

	memcpy(cfg, our_mac, 6);
	cfg[6] = 1; /* VIRTIO_NET_S_LINK_UP */
	cfg[8] = 2; /* max_virtqueue_pairs */
	memcpy(buf, cfg + off, size);
	return 0;
}

static const struct vh_vu_device_ops net_ops = {
	.size = sizeof(net_ops),
	.queue_started = net_started,
	.queue_stopped = net_stopped,
	.queue_kicked = net_kicked,
	.get_config = net_get_config,
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void spawn_testpmd(const char *sock, const char *mode, int queues)
{
	char vdev[256], rxq[16], txq[16];
	int fd;

	/* the MAC every frame must carry as its source */
	snprintf(vdev, sizeof(vdev),
		 "net_virtio_user0,path=%s,queues=%d,"
		 "mac=%02x:%02x:%02x:%02x:%02x:%02x",
		 sock, queues, our_mac[0], our_mac[1], our_mac[2], our_mac[3],
		 our_mac[4], our_mac[5]);
	snprintf(rxq, sizeof(rxq), "--rxq=%d", queues);
	snprintf(txq, sizeof(txq), "--txq=%d", queues);
	pmd = fork();
	CHECK(pmd >= 0);
	if (pmd == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			  0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			dup2(fd, 0);
		execl(TESTPMD, TESTPMD, "--no-huge", "-m", "512", "--no-pci",
		      "--file-prefix", prefix, "--lcores", "0@0,1@1", "--vdev",
		      vdev, "--", mode, rxq, txq, "--auto-start",
		      "--total-num-mbufs=16384", "--stats-period", "1",
		      (char *)NULL);
		_exit(127);
	}
}

/* Serve the back-end until cond() or the deadline; false on timeout. */
static bool serve(struct vh_vu_backend *be, struct net *n, int64_t deadline,
		  bool (*cond)(struct net *n, struct vh_vu_backend *be))
{
	struct pollfd p = { .fd = vh_vu_backend_get_fd(be), .events = POLLIN };

	while (!cond(n, be)) {
		int r;

		if (now_ms() > deadline)
			return false;
		if (poll(&p, 1, 10) <= 0) {
			rx_fill(n); /* testpmd refills RX without kicking */
			continue;
		}
		rx_fill(n);
		r = vh_vu_backend_dispatch(be);
		if (r < 0 && r != -EAGAIN && r != -ECONNRESET)
			fprintf(stderr, "dispatch: %d\n", r);
	}
	return true;
}

static bool enough(struct net *n, struct vh_vu_backend *be)
{
	/* testpmd's one forwarding core serves both TX queues in turn */
	return n->good + n->bad >= WANT_PACKETS && n->good_q[0] && n->good_q[1];
}

static bool echoed_all(struct net *n, struct vh_vu_backend *be)
{
	return n->echoed + n->echo_bad + n->lost >= ECHO_FRAMES;
}

static bool pmd_gone(struct net *n, struct vh_vu_backend *be)
{
	int st;

	if (pmd > 0 && waitpid(pmd, &st, WNOHANG) == pmd) {
		pmd = -1;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fprintf(stderr, "testpmd exit status %#x\n", st);
	}
	return pmd < 0 && !vh_vu_backend_connected(be);
}

int main(void)
{
	struct vh_vu_device dev = {
		.size = sizeof(dev),
		.features = (1ull << 32) /* VERSION_1 */ |
			    (1ull << VIRTIO_NET_F_MRG_RXBUF) |
			    (1ull << VIRTIO_NET_F_MAC) |
			    (1ull << VIRTIO_NET_F_CTRL_VQ) |
			    (1ull << VIRTIO_NET_F_MQ),
		.protocol_features =
			(1ull << 0) /* MQ */ | (1ull << 3) /* REPLY_ACK */ |
			(1ull << 9) /* CONFIG */ | (1ull << 16) /* STATUS */,
		.num_queues = 4,
		.queue_num = 2, /* queue pairs */
		.config_size = 12,
	};
	struct vh_ctx *ctx;
	struct vh_vu_backend *be;
	struct net n = { 0 };
	char sock[128];
	int64_t t0;

	if (access(TESTPMD, X_OK) < 0) {
		fprintf(stderr, "SKIP: %s not installed (dpdk-dev)\n", TESTPMD);
		return TEST_SKIP;
	}
	/* --lcores 0@0,1@1: a main and a forwarding core */
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		fprintf(stderr, "FAIL: testpmd here needs two CPUs\n");
		return 1;
	}
	snprintf(dir, sizeof(dir), "/tmp/vube-dpdk-XXXXXX");
	CHECK(mkdtemp(dir));
	snprintf(prefix, sizeof(prefix), "vube%d", (int)getpid());
	snprintf(logpath, sizeof(logpath), "%s/testpmd.log", dir);
	snprintf(sock, sizeof(sock), "%s/vhost-user.sock", dir);
	atexit(cleanup);
	signal(SIGPIPE, SIG_IGN);

	CHECK_EQ(vh_ctx_new(&ctx), 0);
	CHECK_EQ(vh_vu_backend_new(ctx, &dev, &net_ops, &n, &be), 0);
	n.be = be;
	/* virtio-user is the client: we listen first */
	CHECK_EQ(vh_vu_backend_listen(be, sock), 0);

	t0 = now_ms();
	/* two queue pairs (MQ): frames must come on both TX rings */
	spawn_testpmd(sock, "--forward-mode=txonly", 2);
	if (!serve(be, &n, t0 + SERVE_MS, enough)) {
		int st;

		if (pmd > 0 && waitpid(pmd, &st, WNOHANG) == pmd) {
			pmd = -1;
			fprintf(stderr, "testpmd exited (status %#x)%s\n", st,
				log_has("Cannot init EAL") ||
						log_has("EAL: FATAL") ?
					": its EAL could not start" :
					"");
		}
		dump_log();
		fprintf(stderr,
			"only %lu good (%lu + %lu per queue pair) + %lu bad frames in %d s\n",
			n.good, n.good_q[0], n.good_q[1], n.bad,
			SERVE_MS / 1000);
		return 1;
	}
	printf("%lu frames checked in %lld ms (%lu kicks, %lu ring starts, "
	       "features %#llx, protocol features %#llx)\n",
	       n.good + n.bad, (long long)(now_ms() - t0), n.kicks, n.starts,
	       (unsigned long long)vh_vu_backend_get_features(be),
	       (unsigned long long)vh_vu_backend_get_protocol_features(be));
	if (n.bad) {
		size_t i;

		fprintf(stderr, "%lu bad frames; the first (%zu bytes):", n.bad,
			n.first_bad_len);
		for (i = 0; i < n.first_bad_len; i++)
			fprintf(stderr, "%s%02x", i % 16 ? " " : "\n  ",
				n.first_bad[i]);
		fprintf(stderr, "\n");
		dump_log();
		return 1;
	}
	CHECK(n.starts >= 1);
	printf("TX queue pair 0: %lu frames, queue pair 1: %lu frames\n",
	       n.good_q[0], n.good_q[1]);
	CHECK(n.good_q[0] > 0 && n.good_q[1] > 0);

	/* SIGINT: testpmd stops its port (GET_VRING_BASE) and disconnects */
	kill(pmd, SIGINT);
	if (!serve(be, &n, now_ms() + 8000, pmd_gone)) {
		dump_log();
		fprintf(stderr, "testpmd did not stop and disconnect\n");
		return 1;
	}
	/* the TX ring was taken back from the device when it stopped */
	CHECK(n.stops >= n.starts);
	CHECK(!vh_vu_backend_connected(be));

	/* phase 2: a new testpmd on the same back-end echoes our frames */
	n.echo = true;
	n.seen = calloc(ECHO_FRAMES, 1);
	CHECK(n.seen);
	t0 = now_ms();
	spawn_testpmd(sock, "--forward-mode=io", 1);
	if (!serve(be, &n, t0 + SERVE_MS, echoed_all) || n.echo_bad ||
	    n.lost > ECHO_FRAMES / 4 || n.echoed + n.lost < ECHO_FRAMES) {
		dump_log();
		fprintf(stderr,
			"echo: %lu frames injected, %lu back, %lu bad, %lu lost at start\n",
			n.injected, n.echoed, n.echo_bad, n.lost);
		return 1;
	}
	printf("%lu frames echoed byte for byte in %lld ms (%lu lost while testpmd started)\n",
	       n.echoed, (long long)(now_ms() - t0), n.lost);
	kill(pmd, SIGINT);
	if (!serve(be, &n, now_ms() + 8000, pmd_gone)) {
		dump_log();
		fprintf(stderr, "testpmd did not stop and disconnect\n");
		return 1;
	}
	CHECK(n.rx == NULL);
	free(n.seen);
	CHECK(vh_vu_backend_unref(be) == NULL);
	vh_ctx_unref(ctx);
	return 0;
}
