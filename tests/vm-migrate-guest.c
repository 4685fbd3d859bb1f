// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vm-migrate-guest - the guest's half of tests/vm-migrate.sh: a workload
 * that keeps running while the VM is live-migrated and checks every byte.
 * Built static by the test and run from a tiny initramfs.
 *
 *   vm-migrate-guest blk DEV   O_DIRECT writes of random extents (each 4 KiB
 *                              block carries its number and a generation),
 *                              reads verified at once AND kept: the read
 *                              buffers are only ever written by the device,
 *                              so a read the back-end completed without
 *                              logging it in the dirty log arrives stale on
 *                              the destination.  At STOP every kept buffer
 *                              and every block written is checked again.
 *   vm-migrate-guest net IF    a stream of sequenced frames (ethertype
 *                              0x88b5) through a loopback back-end, a window
 *                              of frames in flight; each must come back in
 *                              order, once, with its exact payload.
 *   vm-migrate-guest net-lossy IF  the same stream where frames may be
 *                              lost (counted), but never duplicated,
 *                              reordered or corrupted.
 *
 * It reads commands from stdin (the serial console): "STOP" ends the
 * workload.  Output lines for the host: READY, PROGRESS <ops>, and finally
 * RESULT OK ... or RESULT FAIL <why>.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BLK 4096u
#define MAX_BLOCKS 16384u   /* 64 MiB of the disk at most */
#define EXTENT_MAX 16u      /* blocks per write or read */
#define SLOTS 256u          /* kept read buffers (16 MiB) */

static uint64_t fails;

static void out(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Has the host written STOP on stdin? */
static int stop_requested(void)
{
	static char line[64];
	static size_t have;
	struct pollfd p = { .fd = 0, .events = POLLIN };
	ssize_t n;

	while (poll(&p, 1, 0) == 1) {
		n = read(0, line + have, sizeof(line) - 1 - have);
		if (n <= 0)
			return 0;
		have += (size_t)n;
		line[have] = 0;
		if (strstr(line, "STOP"))
			return 1;
		if (have > sizeof(line) / 2) {
			/* keep the tail: STOP may straddle two reads */
			memmove(line, line + have - 8, 8);
			have = 8;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* block                                                                  */
/* ---------------------------------------------------------------------- */

/* The 4 KiB a block holds at generation g (g 0: never written, zeros). */
static void fill_block(uint8_t *p, uint32_t b, uint32_t g)
{
	uint64_t s = ((uint64_t)b << 32 | g) * 0x9e3779b97f4a7c15ull | 1;
	uint64_t *w = (uint64_t *)(void *)p;
	unsigned int i;

	if (g == 0) {
		memset(p, 0, BLK);
		return;
	}
	for (i = 0; i < BLK / 8; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		w[i] = s;
	}
	w[0] = 0x4d49475241544521ull; /* "MIGRATE!" */
	w[1] = (uint64_t)b << 32 | g;
}

static int check_block(const uint8_t *p, uint32_t b, uint32_t g,
		       const char *what)
{
	static uint8_t want[BLK] __attribute__((aligned(64)));
	const uint64_t *w = (const uint64_t *)(const void *)p;

	fill_block(want, b, g);
	if (memcmp(p, want, BLK) == 0)
		return 0;
	if (fails++ < 10)
		out("MISMATCH %s block %u: want gen %u, has %s gen %llu\n",
		    what, b, g, w[0] == 0x4d49475241544521ull ? "block" : "junk",
		    (unsigned long long)(w[1] & 0xffffffff));
	return -1;
}

static int run_blk(const char *dev)
{
	uint64_t size = 0, ops = 0, writes = 0, reads = 0, last;
	uint32_t nblocks, next_gen = 0, *gen;
	uint32_t (*slot_gen)[EXTENT_MAX];
	uint32_t *slot_b, *slot_n;
	uint8_t *wbuf, *slots;
	unsigned int s, i;
	int fd;

	fd = open(dev, O_RDWR | O_DIRECT);
	if (fd < 0 || ioctl(fd, BLKGETSIZE64, &size) < 0) {
		out("RESULT FAIL open %s: %s\n", dev, strerror(errno));
		return 1;
	}
	nblocks = size / BLK > MAX_BLOCKS ? MAX_BLOCKS : (uint32_t)(size / BLK);
	gen = calloc(nblocks, sizeof(*gen));
	slot_gen = calloc(SLOTS, sizeof(*slot_gen));
	slot_b = calloc(SLOTS, sizeof(*slot_b));
	slot_n = calloc(SLOTS, sizeof(*slot_n));
	if (!gen || !slot_gen || !slot_b || !slot_n || nblocks < EXTENT_MAX ||
	    posix_memalign((void **)&wbuf, BLK, EXTENT_MAX * BLK) ||
	    posix_memalign((void **)&slots, BLK, (size_t)SLOTS * EXTENT_MAX * BLK)) {
		out("RESULT FAIL setup (%u blocks)\n", nblocks);
		return 1;
	}
	out("READY blk %u blocks\n", nblocks);
	last = now_ms();
	for (;;) {
		uint32_t b = (uint32_t)(rnd() % (nblocks - EXTENT_MAX + 1));
		uint32_t n = 1 + (uint32_t)(rnd() % EXTENT_MAX);
		ssize_t r;

		if (rnd() % 2) {
			for (i = 0; i < n; i++)
				fill_block(wbuf + i * BLK, b + i, next_gen + 1);
			r = pwrite(fd, wbuf, n * BLK, (off_t)b * BLK);
			if (r != (ssize_t)(n * BLK)) {
				out("RESULT FAIL write %u+%u: %zd %s\n", b, n,
				    r, strerror(errno));
				return 1;
			}
			next_gen++;
			for (i = 0; i < n; i++)
				gen[b + i] = next_gen;
			writes++;
		} else {
			/*
			 * Into the next kept slot: only the device writes it,
			 * the CPU only reads it (check now, and at STOP).
			 */
			s = (uint32_t)(reads % SLOTS);
			/* its previous contents once more before reuse */
			for (i = 0; reads >= SLOTS && i < slot_n[s]; i++)
				check_block(slots + ((size_t)s * EXTENT_MAX + i) * BLK,
					    slot_b[s] + i, slot_gen[s][i], "kept");
			r = pread(fd, slots + (size_t)s * EXTENT_MAX * BLK,
				  n * BLK, (off_t)b * BLK);
			if (r != (ssize_t)(n * BLK)) {
				out("RESULT FAIL read %u+%u: %zd %s\n", b, n, r,
				    strerror(errno));
				return 1;
			}
			slot_b[s] = b;
			slot_n[s] = n;
			for (i = 0; i < n; i++) {
				slot_gen[s][i] = gen[b + i];
				check_block(slots + ((size_t)s * EXTENT_MAX + i) * BLK,
					    b + i, gen[b + i], "read");
			}
			reads++;
		}
		ops++;
		if (now_ms() - last >= 1000) {
			last = now_ms();
			out("PROGRESS %llu writes %llu reads %llu fails\n",
			    (unsigned long long)writes,
			    (unsigned long long)reads,
			    (unsigned long long)fails);
			if (stop_requested())
				break;
		}
	}
	/* the kept buffers, filled before and during the migration */
	for (s = 0; s < SLOTS && s < reads; s++)
		for (i = 0; i < slot_n[s]; i++)
			check_block(slots + ((size_t)s * EXTENT_MAX + i) * BLK,
				    slot_b[s] + i, slot_gen[s][i], "kept");
	/* everything written, read again */
	for (i = 0; i < nblocks; i++) {
		if (!gen[i])
			continue;
		if (pread(fd, wbuf, BLK, (off_t)i * BLK) != BLK) {
			out("RESULT FAIL final read %u: %s\n", i, strerror(errno));
			return 1;
		}
		check_block(wbuf, i, gen[i], "final");
	}
	if (fails) {
		out("RESULT FAIL %llu bad blocks (%llu writes, %llu reads)\n",
		    (unsigned long long)fails, (unsigned long long)writes,
		    (unsigned long long)reads);
		return 1;
	}
	out("RESULT OK blk %llu writes %llu reads, all blocks verified\n",
	    (unsigned long long)writes, (unsigned long long)reads);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* net                                                                    */
/* ---------------------------------------------------------------------- */

#define ETH_P_TEST 0x88b5
#define WINDOW 64
#define FRAME_MAX 1514

static size_t frame_len(uint64_t seq)
{
	return 60 + (size_t)((seq * 2654435761u) % (FRAME_MAX - 60 + 1));
}

static void fill_frame(uint8_t *f, uint64_t seq, const uint8_t mac[6])
{
	size_t len = frame_len(seq), i;
	uint64_t s = seq * 0x9e3779b97f4a7c15ull | 1;

	memcpy(f, mac, 6);
	memcpy(f + 6, mac, 6);
	f[12] = ETH_P_TEST >> 8;
	f[13] = ETH_P_TEST & 0xff;
	memcpy(f + 14, &seq, 8);
	for (i = 22; i < len; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		f[i] = (uint8_t)s;
	}
}

/*
 * lossy: frames may be lost, never duplicated, reordered or corrupted (a
 * real link, QEMU's own NIC on a dgram socket: what is in flight in the
 * source's socket at the switch-over is gone).  A lost frame is counted;
 * a second without any frame back ends the wait for those in flight.
 */
static int run_net(const char *ifname, int lossy)
{
	uint8_t tx[FRAME_MAX], rx[FRAME_MAX + 64], want[FRAME_MAX], mac[6];
	uint64_t next_tx = 0, next_rx = 0, last, last_rx, lost = 0;
	struct sockaddr_ll sll = { 0 };
	struct ifreq ifr = { 0 };
	int fd, stopping = 0;

	fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_TEST));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (fd < 0 || ioctl(fd, SIOCGIFINDEX, &ifr) < 0) {
		out("RESULT FAIL %s: %s\n", ifname, strerror(errno));
		return 1;
	}
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_TEST);
	sll.sll_ifindex = ifr.ifr_ifindex;
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
		out("RESULT FAIL hwaddr: %s\n", strerror(errno));
		return 1;
	}
	memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0 ||
	    (ifr.ifr_flags |= IFF_UP, ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) ||
	    bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		out("RESULT FAIL up/bind: %s\n", strerror(errno));
		return 1;
	}
	out("READY net\n");
	last = last_rx = now_ms();
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		ssize_t n;
		uint64_t seq;

		while (!stopping && next_tx - next_rx < WINDOW) {
			fill_frame(tx, next_tx, mac);
			n = sendto(fd, tx, frame_len(next_tx), 0,
				   (struct sockaddr *)&sll, sizeof(sll));
			if (n < 0 && (errno == ENOBUFS || errno == EAGAIN))
				break;
			if (n != (ssize_t)frame_len(next_tx)) {
				out("RESULT FAIL send %llu: %s\n",
				    (unsigned long long)next_tx, strerror(errno));
				return 1;
			}
			next_tx++;
		}
		if (poll(&p, 1, 100) == 1) {
			n = recvfrom(fd, rx, sizeof(rx), MSG_DONTWAIT,
				     (struct sockaddr *)&from, &fl);
			if (n < 0)
				continue;
			if (from.sll_pkttype == PACKET_OUTGOING)
				continue;
			last_rx = now_ms();
			memcpy(&seq, rx + 14, 8);
			if (lossy && n >= 22 && seq > next_rx && seq < next_tx) {
				lost += seq - next_rx;
				next_rx = seq;
			}
			if (n < 22 || seq != next_rx) {
				out("RESULT FAIL frame %llu: got seq %llu (%zd bytes)\n",
				    (unsigned long long)next_rx,
				    (unsigned long long)seq, n);
				return 1;
			}
			fill_frame(want, seq, mac);
			if ((size_t)n != frame_len(seq) ||
			    memcmp(rx, want, (size_t)n) != 0) {
				out("RESULT FAIL frame %llu: %zd bytes, payload differs\n",
				    (unsigned long long)seq, n);
				return 1;
			}
			next_rx++;
		}
		if (lossy && next_rx < next_tx && now_ms() - last_rx > 1000) {
			lost += next_tx - next_rx;
			next_rx = next_tx;
			last_rx = now_ms();
		}
		if (stopping && next_rx == next_tx)
			break;
		if (now_ms() - last_rx > 30000) {
			out("RESULT FAIL no frame for 30 s (sent %llu, received %llu)\n",
			    (unsigned long long)next_tx,
			    (unsigned long long)next_rx);
			return 1;
		}
		if (now_ms() - last >= 1000) {
			last = now_ms();
			out("PROGRESS %llu frames\n", (unsigned long long)next_rx);
			if (!stopping && stop_requested())
				stopping = 1;
		}
	}
	out("RESULT OK net %llu frames in order, every byte verified, %llu lost\n",
	    (unsigned long long)(next_rx - lost), (unsigned long long)lost);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "blk") == 0)
		return run_blk(argv[2]);
	if (argc == 3 && strcmp(argv[1], "net") == 0)
		return run_net(argv[2], 0);
	if (argc == 3 && strcmp(argv[1], "net-lossy") == 0)
		return run_net(argv[2], 1);
	fprintf(stderr, "usage: %s blk DEV | net[-lossy] IFNAME\n", argv[0]);
	return 2;
}
