// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Crash safety of tools/vhost-user-blk (vhost-user.rst, "Inflight I/O
 * tracking"): our front-end streams numbered writes with the inflight
 * region negotiated (GET_INFLIGHT_FD, SET_INFLIGHT_FD); three times it
 * freezes the daemon (SIGSTOP) at a moment the region shows requests in
 * flight, kills it (SIGKILL), starts a new one on the same socket and
 * reconnects as QEMU does: memory table, SET_INFLIGHT_FD with the same
 * region, rings re-set with SET_VRING_BASE = the used index (the second
 * time the avail index instead: then only the region can tell the daemon
 * what was left in flight).  Then:
 *  - every write completes exactly once (each id once in the used ring,
 *    nothing extra afterwards), with status OK;
 *  - at each completion the disk holds that write's bytes, and at the end
 *    each area holds the last write sent to it: a lost write or an old one
 *    run again after a newer one would show.
 * Writes to one area never overlap in time, so the expected content is
 * exact.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test-vu-blk-util.h"

#define AREAS 64u
#define AREA_SIZE (512u << 10)
#define IMG_SIZE (AREAS * AREA_SIZE)
#define NREQ 2400u
#define DEPTH 40u /* 3 descriptors each: 120 of the ring's 128 */
#define KILLS 3u
#define SLOT_GPA(s) (DRV_BUF_GPA + (uint64_t)(s) * (AREA_SIZE + 4096))

struct slot {
	unsigned int idx;
	unsigned int seq;
	bool busy;
};

static struct drv drv;
static struct slot slots[DEPTH];
static int img_fd;
static unsigned int done_count[NREQ];
static bool area_busy[AREAS];
static struct vh_vu_inflight inflight;
static int inflight_fd = -1;
static uint8_t *region; /* our view of the inflight region */

/* Every 512-byte sector of write seq says which write it is. */
static void fill(uint8_t *p, unsigned int seq)
{
	unsigned int s;

	for (s = 0; s < AREA_SIZE / 512; s++) {
		uint32_t w[4] = { 0x5eb10c00 + s, seq, seq % AREAS, ~seq };

		memcpy(p + s * 512, w, sizeof(w));
		memset(p + s * 512 + sizeof(w), (int)(seq * 7 + s),
		       512 - sizeof(w));
	}
}

static void check_area(unsigned int seq, const char *when)
{
	static uint8_t want[AREA_SIZE], got[AREA_SIZE];
	uint64_t off = (uint64_t)(seq % AREAS) * AREA_SIZE;

	fill(want, seq);
	CHECK(pread(img_fd, got, AREA_SIZE, (off_t)off) == AREA_SIZE);
	if (memcmp(want, got, AREA_SIZE) != 0) {
		uint32_t w[4];

		memcpy(w, got, sizeof(w));
		fprintf(stderr, "%s: area %u holds write %u, want write %u\n",
			when, seq % AREAS, w[1], seq);
		CHECK(0);
	}
}

/*
 * Reserve a slot for write seq and fill its buffers; NULL if its area is
 * still being written or no slot is free.  Not yet visible to the device.
 */
static struct slot *prepare(unsigned int seq)
{
	struct virtio_blk_outhdr h = { .type = htole32(VIRTIO_BLK_T_OUT) };
	struct slot *sl = NULL;
	unsigned int i;
	uint64_t base;

	if (area_busy[seq % AREAS])
		return NULL;
	for (i = 0; i < DEPTH && !sl; i++)
		if (!slots[i].busy)
			sl = &slots[i];
	if (!sl)
		return NULL;
	base = SLOT_GPA(sl->idx);
	h.sector = htole64((uint64_t)(seq % AREAS) * (AREA_SIZE / 512));
	memcpy(drv.guest + base, &h, sizeof(h));
	drv.guest[base + 16] = 0xee;
	fill(drv.guest + base + 4096, seq);
	sl->busy = true;
	sl->seq = seq;
	area_busy[seq % AREAS] = true;
	return sl;
}

/*
 * Fill every free slot, then make them all available at once (vh_drvq_add
 * publishes each at once): the daemon gets a burst to chew on.
 */
static unsigned int submit_burst(unsigned int next)
{
	struct slot *batch[DEPTH];
	unsigned int n = 0, i;

	while (next + n < NREQ && n < DEPTH &&
	       (batch[n] = prepare(next + n)) != NULL)
		n++;
	for (i = 0; i < n; i++) {
		uint64_t base = SLOT_GPA(batch[i]->idx);
		struct vh_sg sg[3] = { { base, 16 },
				       { base + 4096, AREA_SIZE },
				       { base + 16, 1 } };

		CHECK_EQ(vh_drvq_add(drv.vq[0], sg, 2, 1, batch[i]), 0);
	}
	return n;
}

/* Take every used buffer: the number taken. */
static unsigned int drain(void)
{
	unsigned int n = 0;
	uint32_t len;
	void *t;
	int r;

	while ((r = vh_drvq_get_used(drv.vq[0], &t, &len)) == 1) {
		struct slot *sl = t;

		CHECK(sl >= slots && sl < slots + DEPTH && sl->busy);
		CHECK_EQ(len, 1);
		CHECK_EQ(drv.guest[SLOT_GPA(sl->idx) + 16], VIRTIO_BLK_S_OK);
		/* each write comes back exactly once */
		CHECK_EQ(done_count[sl->seq], 0);
		done_count[sl->seq]++;
		check_area(sl->seq, "at completion");
		area_busy[sl->seq % AREAS] = false;
		sl->busy = false;
		n++;
	}
	CHECK_EQ(r, 0);
	return n;
}

/* Requests the (stopped) daemon has marked in flight in the region. */
static unsigned int region_inflight(uint16_t *used_idx, uint16_t *lbh)
{
	unsigned int i, n = 0;

	memcpy(lbh, region + 12, 2);
	memcpy(used_idx, region + 14, 2);
	for (i = 0; i < DRV_QSIZE; i++)
		n += region[16 + 16 * i] == 1;
	return n;
}

static void start_daemon(const char *daemon, const char *img, const char *sock)
{
	const char *argv[] = { daemon,		"--blk-file", img,
			       "--socket-path", sock,	      NULL };

	peer_start(argv);
}

/*
 * What QEMU's vhost-user-blk does when the back-end comes back.  QEMU sends
 * SET_VRING_BASE = the used index; with trust_region the avail index goes
 * instead, so that only the inflight region tells the daemon what is left.
 */
static void reconnect(const char *sock, bool trust_region)
{
	struct vh_vu_vring_addr a = { .index = 0 };
	void *desc, *avail, *used;
	uint16_t used_idx;

	vh_vu_frontend_unref(drv.fe);
	drv.fe = NULL;
	drv_connect(&drv, sock);
	CHECK(drv.pf & F_BIT(VH_VU_PROTOCOL_F_INFLIGHT_SHMFD));
	CHECK_EQ(vh_vu_frontend_set_inflight_fd(drv.fe, &inflight, inflight_fd),
		 0);
	CHECK_EQ(vh_drvq_get_host_addrs(drv.vq[0], &desc, &avail, &used), 0);
	/* the driver's ring is intact: restart at its used index */
	memcpy(&used_idx, (uint8_t *)used + 2, 2);
	CHECK_EQ(vh_vu_frontend_set_vring_num(drv.fe, 0, DRV_QSIZE), 0);
	if (trust_region)
		memcpy(&used_idx, (uint8_t *)avail + 2, 2);
	CHECK_EQ(vh_vu_frontend_set_vring_base(drv.fe, 0, used_idx), 0);
	a.desc = (uint64_t)(uintptr_t)desc;
	a.avail = (uint64_t)(uintptr_t)avail;
	a.used = (uint64_t)(uintptr_t)used;
	CHECK_EQ(vh_vu_frontend_set_vring_addr(drv.fe, &a), 0);
	CHECK_EQ(vh_vu_frontend_set_vring_call(drv.fe, 0, drv.call[0]), 0);
	CHECK_EQ(vh_vu_frontend_set_vring_kick(drv.fe, 0, drv.kick[0]), 0);
	CHECK_EQ(vh_vu_frontend_set_vring_enable(drv.fe, 0, true), 0);
}

int main(void)
{
	const char *daemon = blk_daemon_path();
	unsigned int next = 0, done = 0, kills = 0, hits = 0, probes = 0, i;
	char img[128], sock[128];
	unsigned int last_done;
	time_t progress;
	int loops;

	peer_mkdir("vublk-crash");
	snprintf(img, sizeof(img), "%s/disk.img", peer_dir);
	snprintf(sock, sizeof(sock), "%s/blk.sock", peer_dir);
	img_fd = open(img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(img_fd >= 0);
	CHECK_EQ(ftruncate(img_fd, IMG_SIZE), 0);
	for (i = 0; i < DEPTH; i++)
		slots[i].idx = i;

	start_daemon(daemon, img, sock);
	CHECK_EQ(peer_wait_socket(sock, 10000), 0);
	drv_init(&drv, 1);
	drv_connect(&drv, sock);
	CHECK(drv.pf & F_BIT(VH_VU_PROTOCOL_F_INFLIGHT_SHMFD));
	/* as QEMU: the back-end allocates the region, we keep it */
	CHECK_EQ(vh_vu_frontend_get_inflight_fd(drv.fe, 1, DRV_QSIZE, &inflight,
						&inflight_fd),
		 0);
	CHECK(inflight_fd >= 0);
	CHECK(inflight.mmap_size >= 16 + 16 * DRV_QSIZE);
	region = mmap(NULL, inflight.mmap_size, PROT_READ | PROT_WRITE,
		      MAP_SHARED, inflight_fd, (off_t)inflight.mmap_offset);
	CHECK(region != MAP_FAILED);
	CHECK_EQ(vh_vu_frontend_set_inflight_fd(drv.fe, &inflight, inflight_fd),
		 0);
	drv_setup_rings(&drv);

	last_done = 0;
	progress = time(NULL);
	for (loops = 0; done < NREQ; loops++) {
		if (done != last_done) {
			last_done = done;
			progress = time(NULL);
		}
		/* a lost request never completes */
		if (time(NULL) - progress > 10) {
			fprintf(stderr,
				"no completion for 10 s: %u of %u done, %u sent\n",
				done, NREQ, next);
			CHECK(0);
		}
		next += submit_burst(next);
		CHECK(vh_drvq_kick(drv.vq[0]) >= 0);
		if (kills < KILLS && done >= (kills + 1) * NREQ / (KILLS + 1)) {
			int st;
			uint16_t uidx, lbh;
			unsigned int n;

			/*
			 * Freeze it a varying while after the kick; kill it
			 * only mid-request.
			 */
			usleep(100 * (probes % 8));
			CHECK_EQ(kill(peer_pid, SIGSTOP), 0);
			CHECK_EQ(waitpid(peer_pid, &st, WUNTRACED), peer_pid);
			CHECK(WIFSTOPPED(st));
			n = region_inflight(&uidx, &lbh);
			probes++;
			if (n == 0 && probes < 12) {
				CHECK_EQ(kill(peer_pid, SIGCONT), 0);
				efd_wait(drv.call[0], 50);
				done += drain();
				continue;
			}
			printf("kill %u after %u writes done, %u sent: %u in flight in the region (used_idx %u, last batch head %u), %u probes\n",
			       kills + 1, done, next, n, uidx, lbh, probes);
			hits += n > 0;
			CHECK_EQ(kill(peer_pid, SIGKILL), 0);
			CHECK_EQ(waitpid(peer_pid, &st, 0), peer_pid);
			peer_pid = -1;
			probes = 0;
			kills++;
			start_daemon(daemon, img, sock);
			reconnect(sock, kills == 2);
			continue;
		}
		efd_wait(drv.call[0], 50);
		done += drain();
		CHECK(peer_alive());
	}
	CHECK_EQ(kills, KILLS);
	/* the daemon was really killed with writes in flight */
	CHECK(hits >= 1);
	/* nothing more comes back */
	efd_wait(drv.call[0], 200);
	CHECK_EQ(drain(), 0);
	for (i = 0; i < NREQ; i++)
		CHECK_EQ(done_count[i], 1);
	for (i = NREQ - AREAS; i < NREQ; i++)
		check_area(i, "at the end");
	/* and the region says nothing is in flight */
	{
		uint16_t uidx, lbh;

		CHECK_EQ(region_inflight(&uidx, &lbh), 0);
	}
	printf("%u writes, %u kills (%u with requests in flight): each write done once, disk content exact\n",
	       NREQ, kills, hits);

	peer_kill();
	munmap(region, inflight.mmap_size);
	close(inflight_fd);
	drv_fini(&drv);
	close(img_fd);
	return 0;
}
