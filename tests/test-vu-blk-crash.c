// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Crash safety of tools/vhost-user-blk (vhost-user.rst, "Inflight I/O
 * tracking"), with each engine (--io=uring, --io=sync), two queues and
 * O_DIRECT on a disk file system: our front-end streams numbered 512 KiB
 * writes on both queues with the inflight region negotiated
 * (GET_INFLIGHT_FD, SET_INFLIGHT_FD).  Three times it makes a fresh burst
 * of 40 writes available on every queue, freezes the daemon (SIGSTOP) as
 * soon as the region shows them taken, counts the region's in-flight
 * entries of each queue (a frozen daemon cannot change them) and, if every
 * queue has at least 32, kills it (SIGKILL); else it lets it go on and
 * tries again with the next burst, a bounded number of times: the test
 * fails unless all three kills happen with >= 32 requests in flight on
 * every queue.  A new daemon is started on the same socket and the
 * front-end reconnects as QEMU does: memory table, SET_INFLIGHT_FD with
 * the same region, rings re-set with SET_VRING_BASE = the used index (the
 * second time the avail index instead: then only the region can tell the
 * daemon what was left in flight).  Then:
 *  - every write completes exactly once (each id once in the used ring,
 *    nothing extra afterwards), with status OK;
 *  - at each completion the disk holds that write's bytes, and at the end
 *    each area holds the last write sent to it: a lost write or an old one
 *    run again after a newer one would show.
 * Writes to one area never overlap in time, so the expected content is
 * exact.
 *
 * Each engine runs with split rings (QueueRegionSplit) and with packed
 * rings (QueueRegionPacked: the ring records each chain's descriptors,
 * which used descriptors may overwrite while it is in flight).  A
 * front-end cannot know a packed ring's positions after its device died:
 * there SET_VRING_BASE says "fresh ring" (what QEMU's stale copy often
 * is), so only the region can tell the daemon where the rings are.
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

#define NQ 2u
#define AREAS 128u
#define AREA_SIZE (512u << 10)
#define IMG_SIZE ((uint64_t)AREAS * AREA_SIZE)
#define NREQ 960u
#define DEPTH 40u /* 3 descriptors each: 120 of the ring's 128 */
#define MIN_INFLIGHT 32u
#define KILLS 3u
#define KILL_TRIES 40u
#define SLOT_GPA(q, s) \
	(DRV_BUF_GPA + (uint64_t)((q) * DEPTH + (s)) * (AREA_SIZE + 4096))

struct slot {
	unsigned int q, idx;
	unsigned int seq;
	bool busy;
};

static struct drv drv;
static struct slot slots[NQ][DEPTH];
static int img_fd;
static unsigned int done_count[NREQ];
static bool area_busy[AREAS];
static struct vh_vu_inflight inflight;
static int inflight_fd = -1;
static uint8_t *region; /* our view of the inflight region */
static bool packed;     /* VIRTIO_F_RING_PACKED negotiated */
static unsigned int outstanding;

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
 * Reserve a slot of queue q for write seq and fill its buffers; NULL if
 * its area is still being written or no slot is free.
 */
static struct slot *prepare(unsigned int q, unsigned int seq)
{
	struct virtio_blk_outhdr h = { .type = htole32(VIRTIO_BLK_T_OUT) };
	struct slot *sl = NULL;
	unsigned int i;
	uint64_t base;

	if (area_busy[seq % AREAS])
		return NULL;
	for (i = 0; i < DEPTH && !sl; i++)
		if (!slots[q][i].busy)
			sl = &slots[q][i];
	if (!sl)
		return NULL;
	base = SLOT_GPA(q, sl->idx);
	h.sector = htole64((uint64_t)(seq % AREAS) * (AREA_SIZE / 512));
	memcpy(drv.guest + base, &h, sizeof(h));
	drv.guest[base + 16] = 0xee;
	fill(drv.guest + base + 4096, seq);
	sl->busy = true;
	sl->seq = seq;
	area_busy[seq % AREAS] = true;
	return sl;
}

/* Fill the free slots of queue q, then make them available at once. */
static unsigned int submit_burst(unsigned int q, unsigned int next)
{
	struct slot *batch[DEPTH];
	unsigned int n = 0, i;

	while (next + n < NREQ && n < DEPTH &&
	       (batch[n] = prepare(q, next + n)) != NULL)
		n++;
	for (i = 0; i < n; i++) {
		uint64_t base = SLOT_GPA(q, batch[i]->idx);
		struct vh_sg sg[3] = { { base, 16 },
				       { base + 4096, AREA_SIZE },
				       { base + 16, 1 } };

		CHECK_EQ(vh_drvq_add(drv.vq[q], sg, 2, 1, batch[i]), 0);
	}
	outstanding += n;
	return n;
}

/* Take every used buffer of every queue: the number taken. */
static unsigned int drain(void)
{
	unsigned int n = 0, q;
	uint32_t len;
	void *t;
	int r;

	for (q = 0; q < NQ; q++) {
		while ((r = vh_drvq_get_used(drv.vq[q], &t, &len)) == 1) {
			struct slot *sl = t;

			CHECK(sl >= slots[q] && sl < slots[q] + DEPTH &&
			      sl->busy);
			CHECK_EQ(len, 1);
			CHECK_EQ(drv.guest[SLOT_GPA(q, sl->idx) + 16],
				 VIRTIO_BLK_S_OK);
			/* each write comes back exactly once */
			CHECK_EQ(done_count[sl->seq], 0);
			done_count[sl->seq]++;
			check_area(sl->seq, "at completion");
			area_busy[sl->seq % AREAS] = false;
			sl->busy = false;
			n++;
		}
		CHECK_EQ(r, 0);
	}
	outstanding -= n;
	return n;
}

static void wait_calls(int ms)
{
	struct pollfd p[NQ];
	uint64_t v;
	unsigned int q;

	for (q = 0; q < NQ; q++)
		p[q] = (struct pollfd){ .fd = drv.call[q], .events = POLLIN };
	if (poll(p, NQ, ms) > 0)
		for (q = 0; q < NQ; q++)
			if (p[q].revents && read(drv.call[q], &v, 8) < 0)
				CHECK(errno == EAGAIN);
}

/*
 * The region of queue q: QueueRegionSplit (16-byte header, 16 bytes per
 * descriptor) or QueueRegionPacked (32 and 32), each queue's rounded up.
 */
static uint8_t *qregion(unsigned int q)
{
	return region + (size_t)q * (inflight.mmap_size / NQ);
}

/* Requests the daemon has marked in flight in queue q's region. */
static unsigned int region_inflight(unsigned int q)
{
	const uint8_t *r = qregion(q);
	unsigned int i, n = 0, sz = packed ? 32 : 16;

	/* the inflight flag is the first byte of either entry */
	for (i = 0; i < DRV_QSIZE; i++)
		n += r[sz + sz * i] == 1;
	return n;
}

static unsigned int min_inflight(void)
{
	unsigned int q, m = ~0u;

	for (q = 0; q < NQ; q++) {
		unsigned int n = region_inflight(q);

		m = n < m ? n : m;
	}
	return m;
}

static void start_daemon(const char *daemon, const char *engine,
			 const char *img, const char *sock)
{
	char io[32];
	const char *argv[] = { daemon, "--blk-file",   img,   "--socket-path",
			       sock,   "--num-queues", "2",   "--direct",
			       io,     NULL };

	snprintf(io, sizeof(io), "--io=%s", engine);
	/* a socket file left by a killed daemon is not a listening one */
	unlink(sock);
	peer_start(argv);
	CHECK_EQ(peer_wait_socket(sock, 10000), 0);
}

/*
 * What QEMU's vhost-user-blk does when the back-end comes back.  QEMU sends
 * SET_VRING_BASE = the used index; with trust_region the avail index goes
 * instead, so that only the inflight region tells the daemon what is left.
 */
static void reconnect(const char *sock, bool trust_region)
{
	unsigned int q;

	vh_vu_frontend_unref(drv.fe);
	drv.fe = NULL;
	drv_connect(&drv, sock);
	CHECK(drv.pf & F_BIT(VH_VU_PROTOCOL_F_INFLIGHT_SHMFD));
	CHECK_EQ(!!(drv.features & F_BIT(VH_VU_VIRTIO_F_RING_PACKED)), packed);
	CHECK_EQ(vh_vu_frontend_set_inflight_fd(drv.fe, &inflight, inflight_fd),
		 0);
	for (q = 0; q < NQ; q++) {
		struct vh_vu_vring_addr a = { .index = q };
		void *desc, *avail, *used;
		uint16_t used_idx;

		CHECK_EQ(vh_drvq_get_host_addrs(drv.vq[q], &desc, &avail,
						&used),
			 0);
		/* the driver's ring is intact: restart at its used index */
		memcpy(&used_idx, (uint8_t *)used + 2, 2);
		CHECK_EQ(vh_vu_frontend_set_vring_num(drv.fe, q, DRV_QSIZE), 0);
		if (trust_region)
			memcpy(&used_idx, (uint8_t *)avail + 2, 2);
		/* packed: a fresh ring's base (2.8.1), whatever happened */
		CHECK_EQ(vh_vu_frontend_set_vring_base(
				 drv.fe, q, packed ? 0x80008000u : used_idx),
			 0);
		a.desc = (uint64_t)(uintptr_t)desc;
		a.avail = (uint64_t)(uintptr_t)avail;
		a.used = (uint64_t)(uintptr_t)used;
		CHECK_EQ(vh_vu_frontend_set_vring_addr(drv.fe, &a), 0);
		CHECK_EQ(vh_vu_frontend_set_vring_call(drv.fe, q, drv.call[q]),
			 0);
		CHECK_EQ(vh_vu_frontend_set_vring_kick(drv.fe, q, drv.kick[q]),
			 0);
		CHECK_EQ(vh_vu_frontend_set_vring_enable(drv.fe, q, true), 0);
	}
}

/*
 * A fresh burst on every queue, the daemon frozen once it took them: 1 if
 * it was killed with >= MIN_INFLIGHT in flight on every queue, 0 if it was
 * let go on (too few: most had completed already).
 */
static int try_kill(unsigned int *next, unsigned int kill_no)
{
	unsigned int q, n[NQ], i;
	int st;

	for (q = 0; q < NQ; q++) {
		unsigned int k = submit_burst(q, *next);

		CHECK_EQ(k, DEPTH);
		*next += k;
	}
	for (q = 0; q < NQ; q++)
		CHECK(vh_drvq_kick(drv.vq[q]) >= 0);
	/* until the daemon marked the bursts taken (2 s at most) */
	for (i = 0; i < 40000 && min_inflight() < MIN_INFLIGHT; i++)
		usleep(50);
	CHECK_EQ(kill(peer_pid, SIGSTOP), 0);
	CHECK_EQ(waitpid(peer_pid, &st, WUNTRACED), peer_pid);
	CHECK(WIFSTOPPED(st));
	for (q = 0; q < NQ; q++)
		n[q] = region_inflight(q);
	if (min_inflight() < MIN_INFLIGHT) {
		CHECK_EQ(kill(peer_pid, SIGCONT), 0);
		return 0;
	}
	CHECK_EQ(kill(peer_pid, SIGKILL), 0);
	CHECK_EQ(waitpid(peer_pid, &st, 0), peer_pid);
	peer_pid = -1;
	printf("kill %u: %u and %u requests in flight in the region of queues 0 and 1\n",
	       kill_no, n[0], n[1]);
	return 1;
}

/*
 * A split region's in-flight entry of queue 0 whose counter the front-end
 * set to 2^64 - 1 (its counter: bytes 8..15 of the 16-byte entry).  The
 * daemon must not go on from there (its next counter would wrap to 0): it
 * numbers what it resubmits 1..n, in order.  The entry's head, or -1.
 */
static int scribble_counter(void)
{
	uint8_t *r = qregion(0);
	const uint64_t max = UINT64_MAX;
	unsigned int i;

	for (i = 0; i < DRV_QSIZE; i++)
		if (r[16 + 16 * i] == 1) {
			memcpy(r + 16 + 16 * i + 8, &max, 8);
			return (int)i;
		}
	return -1;
}

/* true once the daemon renumbered entry head (the driver reuses no head
 * until we submit again) */
static bool counter_renumbered(int head)
{
	uint64_t c;
	unsigned int i;

	for (i = 0; i < 2000; i++) {
		memcpy(&c, qregion(0) + 16 + 16 * head + 8, 8);
		if (c <= DRV_QSIZE)
			return true;
		usleep(1000);
	}
	return false;
}

static void run(const char *daemon, const char *engine, const char *sock,
		bool pk)
{
	unsigned int next = 0, done = 0, kills = 0, tries = 0, i, q;
	const char *img = blk_direct_image(IMG_SIZE);
	unsigned int last_done = 0;
	time_t progress;

	packed = pk;
	printf("engine %s, %s rings\n", engine, packed ? "packed" : "split");
	memset(done_count, 0, sizeof(done_count));
	memset(area_busy, 0, sizeof(area_busy));
	outstanding = 0;
	img_fd = open(img, O_RDWR | O_CLOEXEC);
	CHECK(img_fd >= 0);
	for (q = 0; q < NQ; q++)
		for (i = 0; i < DEPTH; i++)
			slots[q][i] = (struct slot){ .q = q, .idx = i };

	start_daemon(daemon, engine, img, sock);
	blk_check_engine(engine);
	drv_init(&drv, NQ);
	if (packed)
		drv.extra_features = F_BIT(VH_VU_VIRTIO_F_RING_PACKED);
	drv_connect(&drv, sock);
	CHECK(drv.pf & F_BIT(VH_VU_PROTOCOL_F_INFLIGHT_SHMFD));
	CHECK_EQ(!!(drv.features & F_BIT(VH_VU_VIRTIO_F_RING_PACKED)), packed);
	/*
	 * As QEMU: the back-end allocates the region, we keep it; features
	 * come first, so its layout follows the ring's.
	 */
	CHECK_EQ(vh_vu_frontend_get_inflight_fd(drv.fe, NQ, DRV_QSIZE,
						&inflight, &inflight_fd),
		 0);
	CHECK(inflight_fd >= 0);
	CHECK(inflight.mmap_size % NQ == 0);
	CHECK(inflight.mmap_size / NQ >=
	      (packed ? 32 + 32 * DRV_QSIZE : 16 + 16 * DRV_QSIZE));
	region = mmap(NULL, inflight.mmap_size, PROT_READ | PROT_WRITE,
		      MAP_SHARED, inflight_fd, (off_t)inflight.mmap_offset);
	CHECK(region != MAP_FAILED);
	CHECK_EQ(vh_vu_frontend_set_inflight_fd(drv.fe, &inflight, inflight_fd),
		 0);
	drv_setup_rings(&drv);

	progress = time(NULL);
	while (done < NREQ) {
		bool kill_due = kills < KILLS &&
				done >= (kills + 1) * NREQ / (KILLS + 2);

		if (done != last_done) {
			last_done = done;
			progress = time(NULL);
		}
		/* a lost request never completes */
		if (time(NULL) - progress > 20) {
			fprintf(stderr,
				"no completion for 20 s: %u of %u done, %u sent\n",
				done, NREQ, next);
			peer_dump_log();
			CHECK(0);
		}
		if (kill_due && !outstanding) {
			/* there must be requests left for a full burst */
			CHECK(next + NQ * DEPTH <= NREQ);
			if (try_kill(&next, kills + 1)) {
				int head = -1;

				kills++;
				if (!packed && kills == 1) {
					head = scribble_counter();
					CHECK(head >= 0);
				}
				start_daemon(daemon, engine, img, sock);
				reconnect(sock, kills == 2);
				if (head >= 0)
					CHECK(counter_renumbered(head));
			} else {
				/* not hoped for: counted, and bounded */
				tries++;
				CHECK(tries < KILL_TRIES);
			}
			continue;
		}
		if (!kill_due) {
			for (q = 0; q < NQ; q++) {
				next += submit_burst(q, next);
				CHECK(vh_drvq_kick(drv.vq[q]) >= 0);
			}
		}
		wait_calls(50);
		done += drain();
		CHECK(peer_alive());
	}
	CHECK_EQ(kills, KILLS);
	/* nothing more comes back */
	wait_calls(200);
	CHECK_EQ(drain(), 0);
	for (i = 0; i < NREQ; i++)
		CHECK_EQ(done_count[i], 1);
	for (i = NREQ - AREAS; i < NREQ; i++)
		check_area(i, "at the end");
	/* and the region says nothing is in flight */
	CHECK_EQ(region_inflight(0) + region_inflight(1), 0);
	printf("%s, %s: %u writes on %u queues, %u kills with >= %u in flight on every queue (%u more tries): each write done once, disk content exact\n",
	       engine, packed ? "packed" : "split", NREQ, NQ, kills, MIN_INFLIGHT, tries);

	peer_kill();
	munmap(region, inflight.mmap_size);
	close(inflight_fd);
	inflight_fd = -1;
	drv_fini(&drv);
	close(img_fd);
}

int main(void)
{
	const char *daemon = blk_daemon_path();
	char sock[128];
	unsigned int e;

	peer_mkdir("vublk-crash");
	snprintf(sock, sizeof(sock), "%s/blk.sock", peer_dir);
	for (e = 0; e < sizeof(blk_engines) / sizeof(blk_engines[0]); e++) {
		run(daemon, blk_engines[e], sock, false);
		run(daemon, blk_engines[e], sock, true);
	}
	return blk_exit();
}
