// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * tools/vhost-user-blk driven by our own front-end: config space, every
 * request type with the bytes compared against the backing file, hostile
 * requests (each gets its status and the daemon keeps serving), two queues
 * in parallel, read-only mode and O_DIRECT (a file on a disk file system,
 * zero-copy and bounced), each with both engines (--io=uring, --io=sync),
 * and io_uring with both queues on one worker, --inline-reads and
 * --poll-us; reads
 * the page cache holds only part of, or none of;
 * then the fallback: io_uring_setup refused by a seccomp filter, the daemon
 * says why and serves with the sync engine.  SKIPs if the daemon is not
 * built.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test-vu-blk-util.h"

#define IMG_SIZE (8u << 20)
#define SECTORS (IMG_SIZE / 512)
#define SERIAL "vublk-test-serial-01"

/* per-queue request area: header, status, data */
#define AREA(q) (DRV_BUF_GPA + (uint64_t)(q) * (4u << 20))
#define HDR(q) (AREA(q))
#define STATUS(q) (AREA(q) + 0x100)
#define DATA(q) (AREA(q) + 0x1000)

static struct drv drv;
static int img_fd;
static uint8_t *shadow; /* what the image must hold */

static uint8_t pattern(size_t i, unsigned int gen)
{
	return (uint8_t)(i * 13 + i / 512 + gen * 71 + 1);
}

static void put_hdr(unsigned int q, uint32_t type, uint64_t sector)
{
	struct virtio_blk_outhdr h = { .type = htole32(type),
				       .sector = htole64(sector) };

	memcpy(drv.guest + HDR(q), &h, sizeof(h));
}

/*
 * Submit sg on queue q and wait: the status byte at status_gpa, or -1 when
 * the device returned the chain with used length 0.
 */
static int submit(unsigned int q, const struct vh_sg *sg, unsigned int out,
		  unsigned int in, uint64_t status_gpa, uint32_t *ulen)
{
	static int token;
	void *t;
	uint32_t len = 0;

	drv.guest[status_gpa] = 0xee;
	CHECK_EQ(vh_drvq_add(drv.vq[q], sg, out, in, &token), 0);
	CHECK(vh_drvq_kick(drv.vq[q]) >= 0);
	CHECK_EQ(drv_wait_used(&drv, q, &t, &len, 5000), 1);
	CHECK(t == &token);
	if (ulen)
		*ulen = len;
	return len ? drv.guest[status_gpa] : -1;
}

/* The usual three-part request: header, data (len may be 0), status. */
static int rq(unsigned int q, uint32_t type, uint64_t sector, uint32_t len,
	      bool data_in, uint32_t *ulen)
{
	struct vh_sg sg[3];
	unsigned int n = 0;

	put_hdr(q, type, sector);
	sg[n++] = (struct vh_sg){ HDR(q), 16 };
	if (len && !data_in)
		sg[n++] = (struct vh_sg){ DATA(q), len };
	if (len && data_in) {
		sg[n++] = (struct vh_sg){ DATA(q), len };
		sg[n++] = (struct vh_sg){ STATUS(q), 1 };
		return submit(q, sg, 1, 2, STATUS(q), ulen);
	}
	sg[n++] = (struct vh_sg){ STATUS(q), 1 };
	return submit(q, sg, n - 1, 1, STATUS(q), ulen);
}

static void check_image(const char *what)
{
	uint8_t *buf = malloc(IMG_SIZE);
	size_t i;

	CHECK(buf);
	CHECK(pread(img_fd, buf, IMG_SIZE, 0) == IMG_SIZE);
	for (i = 0; i < IMG_SIZE; i++) {
		if (buf[i] != shadow[i]) {
			fprintf(stderr,
				"%s: image byte %zu (sector %zu) is %#x, want %#x\n",
				what, i, i / 512, buf[i], shadow[i]);
			CHECK(0);
		}
	}
	free(buf);
}

static void write_sectors(unsigned int q, uint64_t sector, uint32_t len,
			  unsigned int gen)
{
	uint32_t ulen, i;

	for (i = 0; i < len; i++)
		drv.guest[DATA(q) + i] = pattern(sector * 512 + i, gen);
	CHECK_EQ(rq(q, VIRTIO_BLK_T_OUT, sector, len, false, &ulen),
		 VIRTIO_BLK_S_OK);
	CHECK_EQ(ulen, 1);
	memcpy(shadow + sector * 512, drv.guest + DATA(q), len);
}

static void read_check(unsigned int q, uint64_t sector, uint32_t len)
{
	uint32_t ulen;

	memset(drv.guest + DATA(q), 0x5a, len);
	CHECK_EQ(rq(q, VIRTIO_BLK_T_IN, sector, len, true, &ulen),
		 VIRTIO_BLK_S_OK);
	CHECK_EQ(ulen, len + 1);
	CHECK(memcmp(drv.guest + DATA(q), shadow + sector * 512, len) == 0);
}

/* DISCARD / WRITE_ZEROES with one segment. */
static int dwz(uint32_t type, uint64_t sector, uint32_t n, uint32_t flags)
{
	struct virtio_blk_discard_write_zeroes s = {
		.sector = htole64(sector),
		.num_sectors = htole32(n),
		.flags = htole32(flags),
	};

	memcpy(drv.guest + DATA(0), &s, sizeof(s));
	return rq(0, type, 0, sizeof(s), false, NULL);
}

static void test_config(void)
{
	struct virtio_blk_config cfg;
	uint64_t n;

	memset(&cfg, 0xff, sizeof(cfg));
	CHECK_EQ(vh_vu_frontend_get_config(drv.fe, 0, &cfg, sizeof(cfg)), 0);
	CHECK_EQ(le64toh(cfg.capacity), SECTORS);
	CHECK_EQ(le32toh(cfg.blk_size), 512);
	CHECK(le32toh(cfg.seg_max) >= 1);
	CHECK_EQ(le16toh(cfg.num_queues), 2);
	CHECK(le32toh(cfg.max_discard_sectors) >= 8);
	CHECK(le32toh(cfg.max_write_zeroes_sectors) >= 8);
	CHECK_EQ(le32toh(cfg.max_discard_seg), 1);
	CHECK_EQ(cfg.write_zeroes_may_unmap, 1);
	CHECK_EQ(vh_vu_frontend_get_queue_num(drv.fe, &n), 0);
	CHECK_EQ(n, 2);
	CHECK(drv.features & F_BIT(VIRTIO_BLK_F_DISCARD));
	CHECK(drv.features & F_BIT(VIRTIO_BLK_F_WRITE_ZEROES));
	CHECK(!(drv.features & F_BIT(VIRTIO_BLK_F_RO)));
	CHECK(drv.pf & F_BIT(VH_VU_PROTOCOL_F_INFLIGHT_SHMFD));
	printf("config: %llu sectors, seg_max %u, 2 queues\n",
	       (unsigned long long)le64toh(cfg.capacity), le32toh(cfg.seg_max));
}

/* CONFIG_WCE: only the writeback byte is writable, and only 0 or 1 */
static void test_write_cache(void)
{
	const uint32_t wce = offsetof(struct virtio_blk_config, wce);
	struct virtio_blk_config cfg;
	uint8_t v;

	CHECK(drv.features & F_BIT(VIRTIO_BLK_F_CONFIG_WCE));
	CHECK_EQ(vh_vu_frontend_get_config(drv.fe, 0, &cfg, sizeof(cfg)), 0);
	CHECK_EQ(cfg.wce, 1); /* FLUSH offered: writeback after reset */
	v = 0;
	CHECK_EQ(vh_vu_frontend_set_config(drv.fe, wce, &v, 1, 0), 0);
	CHECK_EQ(vh_vu_frontend_get_config(drv.fe, wce, &v, 1), 0);
	CHECK_EQ(v, 0);
	/* writethrough: each write is synced before it completes */
	write_sectors(1, 300, 8192, 9);
	check_image("after writethrough writes");
	read_check(0, 300, 8192);
	v = 2;
	CHECK(vh_vu_frontend_set_config(drv.fe, wce, &v, 1, 0) < 0);
	CHECK(vh_vu_frontend_set_config(drv.fe, 0, &cfg, 8, 0) < 0);
	CHECK(vh_vu_frontend_set_config(drv.fe, wce, &cfg.wce, 2, 0) < 0);
	CHECK_EQ(vh_vu_frontend_get_config(drv.fe, wce, &v, 1), 0);
	CHECK_EQ(v, 0); /* the refused writes changed nothing */
	v = 1;
	CHECK_EQ(vh_vu_frontend_set_config(drv.fe, wce, &v, 1, 0), 0);
	CHECK_EQ(vh_vu_frontend_get_config(drv.fe, 0, &cfg, sizeof(cfg)), 0);
	CHECK_EQ(cfg.wce, 1);
	CHECK_EQ(le64toh(cfg.capacity), SECTORS);
	printf("write cache: off, synced writes checked, on again; bad writes refused\n");
}

static void test_io(void)
{
	uint8_t id[VIRTIO_BLK_ID_BYTES];
	uint32_t ulen;

	write_sectors(0, 100, 65536, 1);
	write_sectors(0, 0, 512, 2);
	write_sectors(0, SECTORS - 8, 4096, 3); /* the very end */
	check_image("after writes");
	read_check(0, 96, 65536 + 4096);
	read_check(0, SECTORS - 1, 512);
	read_check(0, 0, 1 << 20);

	CHECK_EQ(rq(0, VIRTIO_BLK_T_FLUSH, 0, 0, false, &ulen),
		 VIRTIO_BLK_S_OK);
	CHECK_EQ(ulen, 1);

	memset(drv.guest + DATA(0), 0x77, 64);
	CHECK_EQ(rq(0, VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES, true,
		    &ulen),
		 VIRTIO_BLK_S_OK);
	CHECK_EQ(ulen, VIRTIO_BLK_ID_BYTES + 1);
	memset(id, 0, sizeof(id));
	memcpy(id, SERIAL, strlen(SERIAL));
	CHECK(memcmp(drv.guest + DATA(0), id, sizeof(id)) == 0);

	/* write zeroes, with and without unmap; discard */
	CHECK_EQ(dwz(VIRTIO_BLK_T_WRITE_ZEROES, 100, 8,
		     VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP),
		 VIRTIO_BLK_S_OK);
	memset(shadow + 100 * 512, 0, 8 * 512);
	CHECK_EQ(dwz(VIRTIO_BLK_T_WRITE_ZEROES, 109, 7, 0), VIRTIO_BLK_S_OK);
	memset(shadow + 109 * 512, 0, 7 * 512);
	check_image("after write zeroes");
	read_check(0, 96, 32 * 512);
	CHECK_EQ(dwz(VIRTIO_BLK_T_DISCARD, 200, 8, 0), VIRTIO_BLK_S_OK);
	/* after a discard the contents are undefined (5.2.6.2): sync shadow */
	CHECK(pread(img_fd, shadow + 200 * 512, 8 * 512, 200 * 512) == 8 * 512);
	/* 5.2.6.2: unmap on a discard and unknown flags are UNSUPP */
	CHECK_EQ(dwz(VIRTIO_BLK_T_DISCARD, 200, 8,
		     VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP),
		 VIRTIO_BLK_S_UNSUPP);
	CHECK_EQ(dwz(VIRTIO_BLK_T_WRITE_ZEROES, 200, 8, 2),
		 VIRTIO_BLK_S_UNSUPP);
	/* out of range, too long, zero-size segment list */
	CHECK_EQ(dwz(VIRTIO_BLK_T_WRITE_ZEROES, SECTORS - 4, 8, 0),
		 VIRTIO_BLK_S_IOERR);
	CHECK_EQ(dwz(VIRTIO_BLK_T_DISCARD, UINT64_MAX - 2, 8, 0),
		 VIRTIO_BLK_S_IOERR);
	CHECK_EQ(rq(0, VIRTIO_BLK_T_DISCARD, 0, 0, false, NULL),
		 VIRTIO_BLK_S_IOERR);
	CHECK_EQ(rq(0, 0x55, 0, 0, false, NULL), VIRTIO_BLK_S_UNSUPP);
	check_image("after discard and hostile discards");
	printf("io: write/read/flush/get-id/write-zeroes/discard checked\n");
}

/*
 * Reads the page cache does not hold, or holds only the start of.  With
 * --inline-reads the uring engine tries a buffered read on the worker
 * (preadv2 RWF_NOWAIT) and sends what was not cached through io_uring;
 * past 16 misses in a row it stops trying for a while.  The bytes must be
 * right whichever way they came.
 */
static void test_cold_reads(void)
{
	unsigned int i;

	CHECK(fdatasync(img_fd) == 0);
	/* nothing cached: EAGAIN, all of it through the ring */
	CHECK(posix_fadvise(img_fd, 0, 0, POSIX_FADV_DONTNEED) == 0);
	read_check(0, 0, 1 << 20);
	/* the first half cached: a short inline read, the rest on the ring */
	read_check(0, 4096, 131072);
	CHECK(posix_fadvise(img_fd, 4096 * 512 + 65536, 65536,
			    POSIX_FADV_DONTNEED) == 0);
	read_check(0, 4096, 131072);
	/* a cold run of small reads: the engine backs off, then tries again */
	CHECK(posix_fadvise(img_fd, 0, 0, POSIX_FADV_DONTNEED) == 0);
	for (i = 0; i < 48; i++)
		read_check(0, 8192 + (uint64_t)i * 64, 4096);
	printf("cold reads: uncached and partly cached reads checked\n");
}

static void test_hostile(void)
{
	struct vh_sg sg[4];
	uint32_t ulen, i;

	for (i = 0; i < 4096; i++)
		drv.guest[DATA(0) + i] = 0xc3;

	/* short header: 8 bytes then the status */
	put_hdr(0, VIRTIO_BLK_T_OUT, 10);
	sg[0] = (struct vh_sg){ HDR(0), 8 };
	sg[1] = (struct vh_sg){ STATUS(0), 1 };
	CHECK_EQ(submit(0, sg, 1, 1, STATUS(0), &ulen), VIRTIO_BLK_S_IOERR);
	CHECK_EQ(ulen, 1);

	/* no status byte: every buffer device-readable -> not run, len 0 */
	put_hdr(0, VIRTIO_BLK_T_OUT, 10);
	sg[0] = (struct vh_sg){ HDR(0), 16 };
	sg[1] = (struct vh_sg){ DATA(0), 4096 };
	CHECK_EQ(submit(0, sg, 2, 0, STATUS(0), &ulen), -1);
	/* the status buffer read-only: the same */
	sg[2] = (struct vh_sg){ STATUS(0), 1 };
	CHECK_EQ(submit(0, sg, 3, 0, STATUS(0), &ulen), -1);
	CHECK_EQ(drv.guest[STATUS(0)], 0xee);
	check_image("after requests without status");

	/*
	 * beyond capacity, crossing the end, u64 wrap of sector * 512; a
	 * failed read's used length is every writable byte, so that the
	 * dirty log covers its status byte (at the end of them)
	 */
	CHECK_EQ(rq(0, VIRTIO_BLK_T_IN, SECTORS, 512, true, &ulen),
		 VIRTIO_BLK_S_IOERR);
	CHECK_EQ(ulen, 513);
	CHECK_EQ(rq(0, VIRTIO_BLK_T_OUT, SECTORS - 1, 1024, false, NULL),
		 VIRTIO_BLK_S_IOERR);
	CHECK_EQ(rq(0, VIRTIO_BLK_T_OUT, UINT64_MAX / 256, 512, false, NULL),
		 VIRTIO_BLK_S_IOERR);
	CHECK_EQ(rq(0, VIRTIO_BLK_T_IN, UINT64_MAX, 512, true, NULL),
		 VIRTIO_BLK_S_IOERR);
	/* length not a multiple of 512 (5.2.6.1) */
	CHECK_EQ(rq(0, VIRTIO_BLK_T_OUT, 10, 1000, false, NULL),
		 VIRTIO_BLK_S_IOERR);
	CHECK_EQ(rq(0, VIRTIO_BLK_T_IN, 10, 513, true, NULL),
		 VIRTIO_BLK_S_IOERR);
	/* a read whose data buffer is device-readable */
	CHECK_EQ(rq(0, VIRTIO_BLK_T_IN, 10, 512, false, NULL),
		 VIRTIO_BLK_S_IOERR);
	/* a write with data device-writable */
	CHECK_EQ(rq(0, VIRTIO_BLK_T_OUT, 10, 512, true, NULL),
		 VIRTIO_BLK_S_IOERR);
	/* GET_ID with a 4-byte buffer: 4 bytes, no more */
	memset(drv.guest + DATA(0), 0x77, 16);
	CHECK_EQ(rq(0, VIRTIO_BLK_T_GET_ID, 0, 4, true, &ulen),
		 VIRTIO_BLK_S_OK);
	CHECK_EQ(ulen, 5);
	CHECK(memcmp(drv.guest + DATA(0), SERIAL, 4) == 0);
	CHECK_EQ(drv.guest[DATA(0) + 4], 0x77);
	/* a buffer longer than the id: the used length still ends at the status */
	CHECK_EQ(rq(0, VIRTIO_BLK_T_GET_ID, 0, 64, true, &ulen),
		 VIRTIO_BLK_S_OK);
	CHECK_EQ(ulen, 65);
	check_image("after hostile requests");

	/* framing (2.7.4): header split 3 + 13, data in odd pieces */
	put_hdr(0, VIRTIO_BLK_T_OUT, 300);
	for (i = 0; i < 1536; i++)
		drv.guest[DATA(0) + i] = pattern(300 * 512 + i, 9);
	sg[0] = (struct vh_sg){ HDR(0), 3 };
	sg[1] = (struct vh_sg){ HDR(0) + 3, 13 };
	sg[2] = (struct vh_sg){ DATA(0), 1000 };
	sg[3] = (struct vh_sg){ DATA(0) + 1000, 536 };
	{
		struct vh_sg sg5[5] = {
			sg[0], sg[1], sg[2], sg[3], { STATUS(0), 1 }
		};

		CHECK_EQ(submit(0, sg5, 4, 1, STATUS(0), &ulen),
			 VIRTIO_BLK_S_OK);
	}
	memcpy(shadow + 300 * 512, drv.guest + DATA(0), 1536);
	/* a read with data and status in one writable buffer */
	put_hdr(0, VIRTIO_BLK_T_IN, 300);
	sg[0] = (struct vh_sg){ HDR(0), 16 };
	sg[1] = (struct vh_sg){ DATA(0), 1537 };
	memset(drv.guest + DATA(0), 0, 1537);
	CHECK_EQ(submit(0, sg, 1, 1, DATA(0) + 1536, &ulen), VIRTIO_BLK_S_OK);
	CHECK_EQ(ulen, 1537);
	CHECK(memcmp(drv.guest + DATA(0), shadow + 300 * 512, 1536) == 0);
	check_image("after split requests");

	/* still serving */
	write_sectors(0, 400, 4096, 4);
	read_check(0, 400, 4096);
	printf("hostile: short header, no/read-only status, range, length, direction checked\n");
}

/* Both queues filled, kicked together, drained together. */
/*
 * The front-end clears O_NONBLOCK of its call eventfd (a flag of the file
 * both sides share) and fills its counter: a write of ours would wait
 * until it reads, holding the worker, and the take-back of the ring
 * (GET_VRING_BASE) would wait for the worker.  The completion must still
 * be used, and the ring stop answered within the deadline.  Stops queue 0.
 */
static void test_full_call_fd(void)
{
	uint64_t full = 0xfffffffffffffffeull, v;
	static int token;
	struct vh_sg sg[2];
	uint32_t len = 0, base = 0;
	void *t = NULL;
	int flags, i, r = 0;

	/*
	 * filled while still non-blocking: a late signal of an earlier
	 * request may come in between (EAGAIN: read it, fill again)
	 */
	for (i = 0; write(drv.call[0], &full, sizeof(full)) != sizeof(full);
	     i++) {
		CHECK(errno == EAGAIN && i < 100);
		CHECK(read(drv.call[0], &v, sizeof(v)) == sizeof(v));
	}
	flags = fcntl(drv.call[0], F_GETFL);
	CHECK(flags >= 0);
	CHECK_EQ(fcntl(drv.call[0], F_SETFL, flags & ~O_NONBLOCK), 0);
	put_hdr(0, VIRTIO_BLK_T_FLUSH, 0);
	sg[0] = (struct vh_sg){ HDR(0), 16 };
	sg[1] = (struct vh_sg){ STATUS(0), 1 };
	drv.guest[STATUS(0)] = 0xee;
	CHECK_EQ(vh_drvq_add(drv.vq[0], sg, 1, 1, &token), 0);
	CHECK(vh_drvq_kick(drv.vq[0]) >= 0);
	/* the call fd is not read here: that would let a waiting write go */
	for (i = 0; i < 250 && r == 0; i++) {
		r = vh_drvq_get_used(drv.vq[0], &t, &len);
		CHECK(r >= 0);
		if (!r)
			usleep(20000);
	}
	CHECK_EQ(r, 1);
	CHECK(t == &token);
	CHECK_EQ(drv.guest[STATUS(0)], VIRTIO_BLK_S_OK);
	vh_vu_frontend_set_timeout(drv.fe, 3000);
	CHECK_EQ(vh_vu_frontend_get_vring_base(drv.fe, 0, &base), 0);
	CHECK(base > 0);
	vh_vu_frontend_set_timeout(drv.fe, 0); /* the default again */
	CHECK(read(drv.call[0], &v, sizeof(v)) == sizeof(v));
	CHECK_EQ(v, full);
	CHECK_EQ(fcntl(drv.call[0], F_SETFL, flags), 0);
	CHECK(peer_alive());
	printf("a full call eventfd without O_NONBLOCK: completion used, ring stopped in time\n");
}

static void test_multiqueue(void)
{
	enum { PER_Q = 40, LEN = 8192 }; /* 3 descriptors each */
	unsigned int q, i, got[2] = { 0, 0 };
	static struct {
		uint64_t sector;
		unsigned int q;
	} reqs[2][PER_Q];
	int rounds;

	for (q = 0; q < 2; q++) {
		for (i = 0; i < PER_Q; i++) {
			uint64_t base = AREA(q) + (uint64_t)i * (LEN + 4096);
			uint64_t sector = 1024 + (q * PER_Q + i) * (LEN / 512);
			struct virtio_blk_outhdr h = {
				.type = htole32(VIRTIO_BLK_T_OUT),
				.sector = htole64(sector)
			};
			struct vh_sg sg[3] = { { base, 16 },
					       { base + 4096, LEN },
					       { base + 16, 1 } };
			uint32_t k;

			memcpy(drv.guest + base, &h, sizeof(h));
			drv.guest[base + 16] = 0xee;
			for (k = 0; k < LEN; k++)
				drv.guest[base + 4096 + k] =
					pattern(sector * 512 + k, 5 + q);
			memcpy(shadow + sector * 512, drv.guest + base + 4096,
			       LEN);
			reqs[q][i].sector = sector;
			reqs[q][i].q = q;
			CHECK_EQ(vh_drvq_add(drv.vq[q], sg, 2, 1, &reqs[q][i]),
				 0);
		}
	}
	CHECK(vh_drvq_kick(drv.vq[0]) >= 0);
	CHECK(vh_drvq_kick(drv.vq[1]) >= 0);
	for (rounds = 0; rounds < 500 && (got[0] < PER_Q || got[1] < PER_Q);
	     rounds++) {
		for (q = 0; q < 2; q++) {
			void *t;
			uint32_t len;

			while (vh_drvq_get_used(drv.vq[q], &t, &len) == 1) {
				unsigned int k =
					(unsigned int)((uint8_t *)t -
						       (uint8_t *)reqs[q]) /
					sizeof(reqs[q][0]);

				CHECK(k < PER_Q);
				CHECK_EQ(len, 1);
				CHECK_EQ(drv.guest[AREA(q) +
						   (uint64_t)k * (LEN + 4096) +
						   16],
					 VIRTIO_BLK_S_OK);
				got[q]++;
			}
		}
		efd_wait(drv.call[0], 5);
		efd_wait(drv.call[1], 5);
	}
	CHECK_EQ(got[0], PER_Q);
	CHECK_EQ(got[1], PER_Q);
	check_image("after multiqueue writes");
	read_check(1, 1024, PER_Q * LEN);
	read_check(0, 1024 + PER_Q * LEN / 512, PER_Q * LEN);
	printf("multiqueue: %u writes on each of 2 queues in parallel\n",
	       PER_Q);
}

static void test_read_only(const char *daemon, const char *engine,
			   const char *img, const char *sock)
{
	char io[32];
	const char *argv[] = { daemon,	      "--blk-file", img, "--socket-path",
			       sock,	      "--read-only", io,  NULL };
	uint32_t ulen;

	snprintf(io, sizeof(io), "--io=%s", engine);
	unlink(sock);
	peer_start(argv);
	CHECK_EQ(peer_wait_socket(sock, 10000), 0);
	drv_connect(&drv, sock);
	CHECK(drv.features & F_BIT(VIRTIO_BLK_F_RO));
	CHECK(!(drv.features & F_BIT(VIRTIO_BLK_F_DISCARD)));
	CHECK(!(drv.features & F_BIT(VIRTIO_BLK_F_WRITE_ZEROES)));
	drv.nq = 1;
	drv_setup_rings(&drv);
	memset(drv.guest + DATA(0), 0x99, 4096);
	CHECK_EQ(rq(0, VIRTIO_BLK_T_OUT, 8, 4096, false, &ulen),
		 VIRTIO_BLK_S_IOERR);
	CHECK_EQ(ulen, 1);
	/* not negotiated (and read-only): UNSUPP / IOERR, never a write */
	CHECK_EQ(dwz(VIRTIO_BLK_T_WRITE_ZEROES, 8, 8, 0), VIRTIO_BLK_S_UNSUPP);
	read_check(0, 0, 65536);
	CHECK_EQ(rq(0, VIRTIO_BLK_T_FLUSH, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
	/* no --serial: one derived from the path, 20 bytes */
	CHECK_EQ(rq(0, VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES, true,
		    &ulen),
		 VIRTIO_BLK_S_OK);
	CHECK_EQ(ulen, VIRTIO_BLK_ID_BYTES + 1);
	CHECK(memcmp(drv.guest + DATA(0), "vublk-", 6) == 0);
	check_image("after writes in read-only mode");
	printf("read-only: writes refused with IOERR, reads served\n");
}

/*
 * The uring engine with --direct: 100 unaligned 1 MiB writes in flight at
 * once, from one guest buffer through indirect tables, each needing a
 * bounce buffer of its own.  The queue's bounce buffers are bounded
 * (BLK_BOUNCE_BUDGET): past it a request waits for one to end.  Every
 * write completes, in any order, and the image holds the bytes.  (How
 * many waited depends on how fast the disk completes them: printed.)
 */
#define MANY 100u

static unsigned int peer_log_count(const char *needle);

static void direct_many_unaligned(void)
{
	static int tok[MANY];
	const uint64_t sector = 2048, ind = DATA(0) + (3u << 20);
	unsigned int i, got = 0;
	void *t;
	uint32_t len;

	put_hdr(0, VIRTIO_BLK_T_OUT, sector);
	for (i = 0; i < (1u << 20); i++)
		drv.guest[DATA(0) + 5 + i] = pattern(sector * 512 + i, 13);
	CHECK_EQ(vh_drvq_set_indirect_area(drv.vq[0], ind, 64u << 10), 0);
	for (i = 0; i < MANY; i++) {
		struct vh_sg sg[3] = { { HDR(0), 16 },
				       { DATA(0) + 5, 1u << 20 },
				       { STATUS(0) + i, 1 } };

		drv.guest[STATUS(0) + i] = 0xee;
		CHECK_EQ(vh_drvq_add_indirect(drv.vq[0], sg, 2, 1, &tok[i]),
			 0);
	}
	CHECK(vh_drvq_kick(drv.vq[0]) >= 0);
	while (got < MANY) {
		CHECK_EQ(drv_wait_used(&drv, 0, &t, &len, 10000), 1);
		CHECK(t >= (void *)tok && t < (void *)(tok + MANY));
		CHECK_EQ(len, 1);
		got++;
	}
	for (i = 0; i < MANY; i++)
		CHECK_EQ(drv.guest[STATUS(0) + i], VIRTIO_BLK_S_OK);
	memcpy(shadow + sector * 512, drv.guest + DATA(0) + 5, 1u << 20);
	check_image("after 100 unaligned O_DIRECT writes in flight");
	printf("direct: %u unaligned writes in flight, all complete (bounce budget reached: %s)\n",
	       MANY, peer_log_count("at their budget") ? "yes" : "no");
}

/*
 * --direct on a disk file system: aligned guest buffers go straight to the
 * disk, unaligned ones through the bounce buffer.  The daemon failing to
 * start is a failure.
 */
static void test_direct(const char *daemon, const char *engine,
			const char *sock)
{
	const char *img = blk_direct_image(IMG_SIZE);
	char io[32];
	const char *argv[] = { daemon, "--blk-file", img, "--socket-path",
			       sock,   "--direct",   io,  NULL };
	struct virtio_blk_config cfg;
	uint32_t bs, ulen, i;
	struct vh_sg sg[3];
	int fd;

	/* the image as the shadow says, through the page cache */
	fd = open(img, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(pwrite(fd, shadow, IMG_SIZE, 0) == IMG_SIZE);
	CHECK_EQ(fsync(fd), 0);
	close(img_fd);
	img_fd = fd;
	snprintf(io, sizeof(io), "--io=%s", engine);
	unlink(sock);
	peer_start(argv);
	if (peer_wait_socket(sock, 10000) < 0) {
		peer_dump_log();
		fprintf(stderr, "direct: the daemon did not start with --direct on %s\n",
			img);
		CHECK(0);
	}
	blk_check_engine(engine);
	drv_connect(&drv, sock);
	CHECK_EQ(vh_vu_frontend_get_config(drv.fe, 0, &cfg, sizeof(cfg)), 0);
	bs = le32toh(cfg.blk_size);
	CHECK(bs >= 512 && bs <= 65536 && !(bs & (bs - 1)));
	drv.nq = 1;
	drv_setup_rings(&drv);

	/* 2 MiB + one block from an odd guest address, at an aligned sector */
	put_hdr(0, VIRTIO_BLK_T_OUT, 4096);
	for (i = 0; i < (2u << 20) + bs; i++)
		drv.guest[DATA(0) + 1 + i] = pattern(4096 * 512 + i, 11);
	sg[0] = (struct vh_sg){ HDR(0), 16 };
	sg[1] = (struct vh_sg){ DATA(0) + 1, (2u << 20) + bs };
	sg[2] = (struct vh_sg){ STATUS(0), 1 };
	CHECK_EQ(submit(0, sg, 2, 1, STATUS(0), &ulen), VIRTIO_BLK_S_OK);
	memcpy(shadow + 4096 * 512, drv.guest + DATA(0) + 1, (2u << 20) + bs);
	check_image("after O_DIRECT write");
	put_hdr(0, VIRTIO_BLK_T_IN, 4096);
	memset(drv.guest + DATA(0), 0, (2u << 20) + bs + 8);
	sg[1] = (struct vh_sg){ DATA(0) + 3, (2u << 20) + bs };
	CHECK_EQ(submit(0, sg, 1, 2, STATUS(0), &ulen), VIRTIO_BLK_S_OK);
	CHECK_EQ(ulen, (2u << 20) + bs + 1);
	CHECK(memcmp(drv.guest + DATA(0) + 3, shadow + 4096 * 512,
		     (2u << 20) + bs) == 0);
	/* aligned buffers: no bounce buffer, the same bytes */
	write_sectors(0, 8192, 1u << 20, 12);
	check_image("after aligned O_DIRECT write");
	read_check(0, 8192 - 8, (1u << 20) + 8192);
	CHECK_EQ(rq(0, VIRTIO_BLK_T_FLUSH, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
	/* not aligned to the advertised block size: refused, not attempted */
	if (bs > 512)
		CHECK_EQ(rq(0, VIRTIO_BLK_T_OUT, 4097, bs, false, NULL),
			 VIRTIO_BLK_S_IOERR);
	check_image("after O_DIRECT requests");
	if (strcmp(engine, "uring") == 0)
		direct_many_unaligned();
	printf("direct: O_DIRECT writes/reads zero-copy and through the bounce buffer, block size %u\n",
	       bs);
}

/*
 * Run argv[2..] with io_uring_setup(2) failing with EPERM (a seccomp
 * filter, as a container runtime's default profile does).
 */
static int seccomp_exec(char *argv[])
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]),
				   .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
		perror("seccomp");
		return 1;
	}
	execv(argv[2], argv + 2);
	perror("execv");
	return 127;
}

static void test_fallback(const char *daemon, const char *img,
			  const char *sock)
{
	const char *argv[] = { "/proc/self/exe", "--seccomp-exec", daemon,
			       "--blk-file",	 img,		   "--socket-path",
			       sock,		 NULL };
	char buf[8192];
	ssize_t n;
	int fd;

	unlink(sock);
	peer_start(argv);
	CHECK_EQ(peer_wait_socket(sock, 10000), 0);
	fd = open(peer_log, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	CHECK(n > 0);
	buf[n] = 0;
	/* one line says why, and the engine that serves */
	CHECK(strstr(buf, "io_uring unavailable (io_uring_setup: Operation not permitted): synchronous I/O\n"));
	CHECK(strstr(buf, "synchronous I/O"));
	drv_connect(&drv, sock);
	drv.nq = 1;
	drv_setup_rings(&drv);
	write_sectors(0, 64, 65536, 13);
	check_image("after writes with the fallback engine");
	read_check(0, 0, 1 << 20);
	printf("fallback: io_uring_setup refused (seccomp): said so, served synchronously\n");
}

/*
 * 16 io_uring queues on one worker thread, each ring's eventfd watched
 * there (the daemon used to fall back to synchronous I/O past 12): a
 * write on every queue at once, each read back.
 */
static void test_queues_one_worker(const char *daemon, const char *img,
				   const char *sock)
{
	enum { NQ = 16, LEN = 4096 };
	const char *argv[] = { daemon,	   "--blk-file", img,
			       "--socket-path", sock,	      "--num-queues=16",
			       "--threads=1",   "--io=uring", NULL };
	static int token[NQ];
	unsigned int q, k;

	unlink(sock);
	peer_start(argv);
	CHECK_EQ(peer_wait_socket(sock, 10000), 0);
	blk_check_engine("uring");
	drv_init(&drv, NQ);
	drv_connect(&drv, sock);
	drv_setup_rings(&drv);
	for (q = 0; q < NQ; q++) {
		uint64_t a = DRV_BUF_GPA + (uint64_t)q * 0x40000;
		uint64_t sector = 4096 + q * (LEN / 512);
		struct virtio_blk_outhdr h = { .type = htole32(VIRTIO_BLK_T_OUT),
					       .sector = htole64(sector) };
		struct vh_sg sg[3] = { { a, 16 }, { a + 0x1000, LEN },
				       { a + 0x100, 1 } };

		memcpy(drv.guest + a, &h, sizeof(h));
		drv.guest[a + 0x100] = 0xee;
		for (k = 0; k < LEN; k++)
			drv.guest[a + 0x1000 + k] =
				pattern(sector * 512 + k, 9 + q);
		memcpy(shadow + sector * 512, drv.guest + a + 0x1000, LEN);
		CHECK_EQ(vh_drvq_add(drv.vq[q], sg, 2, 1, &token[q]), 0);
	}
	for (q = 0; q < NQ; q++)
		CHECK(vh_drvq_kick(drv.vq[q]) >= 0);
	for (q = 0; q < NQ; q++) {
		uint64_t a = DRV_BUF_GPA + (uint64_t)q * 0x40000;
		uint32_t len = 0;
		void *t;

		CHECK_EQ(drv_wait_used(&drv, q, &t, &len, 5000), 1);
		CHECK(t == &token[q]);
		CHECK_EQ(drv.guest[a + 0x100], VIRTIO_BLK_S_OK);
	}
	check_image("after a write on each of 16 queues of one worker");
	printf("16 io_uring queues on one worker thread: a write on each, all on disk\n");
}

static void drop_connection(unsigned int nq)
{
	unsigned int q;

	vh_vu_frontend_unref(drv.fe);
	drv.fe = NULL;
	for (q = 0; q < nq; q++) {
		vh_drvq_unref(drv.vq[q]);
		drv.vq[q] = NULL;
	}
}

/*
 * 5.2.5: a driver without FLUSH cannot flush, so the cache is writethrough
 * whatever was chosen, and the writeback byte says so; with FLUSH again
 * the chosen writeback comes back.
 */
static void test_cache_without_flush(const char *sock)
{
	const uint64_t flush = F_BIT(VIRTIO_BLK_F_FLUSH);
	struct virtio_blk_config cfg;
	unsigned int n0;

	drv.drop_features = flush;
	drv_connect(&drv, sock);
	CHECK(drv.features & F_BIT(VIRTIO_BLK_F_CONFIG_WCE));
	CHECK_EQ(vh_vu_frontend_get_config(drv.fe, 0, &cfg, sizeof(cfg)), 0);
	CHECK_EQ(cfg.wce, 0);
	drv_setup_rings(&drv);
	write_sectors(0, 600, 8192, 11);
	check_image("after writes without FLUSH");
	drop_connection(drv.nq);
	drv.drop_features = 0;
	drv_connect(&drv, sock);
	CHECK(drv.features & flush);
	CHECK_EQ(vh_vu_frontend_get_config(drv.fe, 0, &cfg, sizeof(cfg)), 0);
	CHECK_EQ(cfg.wce, 1);
	drop_connection(drv.nq);
	/*
	 * A driver with neither (SeaBIOS) never reads the byte, and it must
	 * not turn it off for the front-end's copy of the config space: QEMU
	 * serves the kernel's driver, which negotiates both, from that copy.
	 * Its writes are still synced.
	 */
	drv.drop_features = flush | F_BIT(VIRTIO_BLK_F_CONFIG_WCE);
	n0 = peer_log_count("(FLUSH not negotiated)");
	drv_connect(&drv, sock);
	CHECK_EQ(vh_vu_frontend_get_config(drv.fe, 0, &cfg, sizeof(cfg)), 0);
	CHECK_EQ(cfg.wce, 1);
	/* ... while the daemon syncs (GET_CONFIG's reply came after) */
	CHECK_EQ(peer_log_count("(FLUSH not negotiated)"), n0 + 1);
	drv_setup_rings(&drv);
	write_sectors(0, 700, 4096, 12);
	check_image("after writes without FLUSH and CONFIG_WCE");
	drop_connection(drv.nq);
	drv.drop_features = 0;
	printf("write cache: off without FLUSH, on again with it; the byte "
	       "says the chosen mode to a driver without CONFIG_WCE\n");
}

/* How many times the daemon's log holds needle. */
static unsigned int peer_log_count(const char *needle)
{
	struct stat st;
	unsigned int k = 0;
	char *buf, *p;
	ssize_t n;
	int fd = open(peer_log, O_RDONLY | O_CLOEXEC);

	CHECK(fd >= 0);
	CHECK_EQ(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	CHECK(buf != NULL);
	n = pread(fd, buf, (size_t)st.st_size, 0);
	close(fd);
	CHECK(n >= 0);
	buf[n] = 0;
	for (p = buf; (p = strstr(p, needle)) != NULL; p++)
		k++;
	free(buf);
	return k;
}

#define HUGE_SIZE (2u << 20)

/*
 * A front-end that shrinks guest memory under the daemon: an unsealable
 * memfd (no MFD_ALLOW_SEALING), of 4 KiB pages or of 2 MiB huge pages
 * (hugetlbfs, as QEMU's usual memory-backend-file on /dev/hugepages),
 * truncated to nothing once the ring is set up, then a kick.  The
 * daemon's access to the ring faults (SIGBUS, past the end of the file):
 * it must not die of it, but read zeros there, say why and drop that
 * front-end, then serve the next one (bytes checked).
 */
static void truncated_memory(const char *sock, bool huge)
{
	const uint64_t size = huge ? HUGE_SIZE : DRV_MEM_SIZE;
	struct drv t;
	uint64_t one = 1, features;
	int i, fd, mfd;

	memset(&t, 0, sizeof(t));
	t.nq = 1;
	CHECK_EQ(vh_ctx_new(&t.ctx), 0);
	CHECK_EQ(vh_mem_new(t.ctx, &t.mem), 0);
	mfd = memfd_create(huge ? "guest-huge" : "guest-unsealed",
			   MFD_CLOEXEC | (huge ? MFD_HUGETLB : 0));
	CHECK(mfd >= 0);
	CHECK_EQ(ftruncate(mfd, (off_t)size), 0);
	fd = fcntl(mfd, F_DUPFD_CLOEXEC, 0);
	CHECK(fd >= 0);
	CHECK_EQ(vh_mem_add_fd(t.mem, 0, size, 0x10000000, fd, 0), 0);
	t.kick[0] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	t.call[0] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	CHECK(t.kick[0] >= 0 && t.call[0] >= 0);
	drv_connect(&t, sock);
	drv_setup_rings(&t);
	/* nothing here touches the memory any more (it would fault too) */
	CHECK_EQ(ftruncate(mfd, 0), 0);
	CHECK(write(t.kick[0], &one, sizeof(one)) == sizeof(one));
	/*
	 * that front-end was dropped: its next call fails (GET_FEATURES:
	 * GET_VRING_BASE would stop the ring before the daemon's worker,
	 * on a loaded machine, took the kick and faulted)
	 */
	for (i = 0; i < 500; i++) {
		if (vh_vu_frontend_get_features(t.fe, &features) < 0)
			break;
		usleep(20000);
	}
	if (i == 500 || !peer_alive()) {
		printf("%s case: %s\n", huge ? "hugetlbfs" : "4 KiB",
		       i == 500 ? "the front-end was not dropped" :
				  "the daemon died");
		peer_dump_log();
		CHECK(!"the front-end dropped, the daemon alive");
	}
	vh_vu_frontend_unref(t.fe);
	vh_drvq_unref(t.vq[0]);
	vh_mem_unref(t.mem);
	vh_ctx_unref(t.ctx);
	close(t.kick[0]);
	close(t.call[0]);
	close(mfd);
	/* the next front-end is served */
	drv_connect(&drv, sock);
	drv_setup_rings(&drv);
	write_sectors(0, 700, 8192, huge ? 19 : 17);
	check_image("after a front-end shrank its memory");
	read_check(0, 0, 1 << 20);
	drop_connection(drv.nq);
	CHECK(peer_alive());
}

static void test_truncated_memory(const char *sock)
{
	unsigned int n0 = peer_log_count("guest memory shrunk");

	truncated_memory(sock, false);
	CHECK_EQ(peer_log_count("guest memory shrunk"), n0 + 1);
	printf("guest memory truncated under the daemon: that front-end dropped, the next one served\n");
	if (!test_huge_page_ready()) {
		/* a user's make check; scripts/test runs as root */
		CHECK(geteuid() != 0);
		printf("NOTE: no free 2 MiB huge page and not root: the hugetlbfs case did not run\n");
		return;
	}
	truncated_memory(sock, true);
	CHECK_EQ(peer_log_count("guest memory shrunk"), n0 + 2);
	printf("the same on 2 MiB huge pages (hugetlbfs): that front-end dropped, the next one served\n");
}

static void run(const char *daemon, const char *engine, const char *img,
		const char *sock, bool one_thread)
{
	char io[32];
	const char *argv[] = { daemon,
			       "--blk-file",
			       img,
			       "--socket-path",
			       sock,
			       "--num-queues",
			       "2",
			       "--serial",
			       SERIAL,
			       io,
			       one_thread ? "--threads=1" : NULL,
			       /* the inline read path (and its fallbacks),
				* and the worker spinning on empty rings */
			       one_thread ? "--inline-reads" : NULL,
			       one_thread ? "--poll-us=50" : NULL,
			       NULL };
	size_t i;
	unsigned int q;

	printf("engine %s%s\n", engine,
	       one_thread ? ", one worker thread for both queues, "
			    "--inline-reads, --poll-us=50" :
			    "");
	snprintf(io, sizeof(io), "--io=%s", engine);
	for (i = 0; i < IMG_SIZE; i++)
		shadow[i] = pattern(i, 0);
	img_fd = open(img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(img_fd >= 0);
	CHECK(pwrite(img_fd, shadow, IMG_SIZE, 0) == IMG_SIZE);

	unlink(sock);
	peer_start(argv);
	if (peer_wait_socket(sock, 10000) < 0) {
		peer_dump_log();
		CHECK(0);
	}
	blk_check_engine(engine);
	drv_init(&drv, 2);
	drv_connect(&drv, sock);
	test_config();
	drv_setup_rings(&drv);
	test_io();
	test_cold_reads();
	test_write_cache();
	test_hostile();
	test_multiqueue();
	test_full_call_fd();

	/*
	 * a clean stop: GET_VRING_BASE returns where each ring stopped
	 * (queue 0: test_full_call_fd())
	 */
	for (q = 1; q < 2; q++) {
		uint32_t base;

		CHECK_EQ(vh_vu_frontend_get_vring_base(drv.fe, q, &base), 0);
		CHECK(base > 0);
	}
	CHECK(peer_alive());
	drop_connection(2);
	test_cache_without_flush(sock);
	CHECK(peer_alive());
	test_truncated_memory(sock);
	peer_kill();

	test_read_only(daemon, engine, img, sock);
	peer_kill();
	drop_connection(1);

	test_direct(daemon, engine, sock);
	peer_kill();
	drop_connection(1);
	drv.nq = 2;
	drv_fini(&drv);
	close(img_fd);
}

int main(int argc, char *argv[])
{
	const char *daemon;
	char img[128], sock[128];
	unsigned int e;

	if (argc > 2 && !strcmp(argv[1], "--seccomp-exec"))
		return seccomp_exec(argv);
	daemon = blk_daemon_path();
	peer_mkdir("vublk");
	snprintf(img, sizeof(img), "%s/disk.img", peer_dir);
	snprintf(sock, sizeof(sock), "%s/blk.sock", peer_dir);

	shadow = malloc(IMG_SIZE);
	CHECK(shadow);
	for (e = 0; e < sizeof(blk_engines) / sizeof(blk_engines[0]); e++)
		run(daemon, blk_engines[e], img, sock, false);
	/* two io_uring instances completing on one worker */
	run(daemon, "uring", img, sock, true);

	/* sixteen */
	img_fd = open(img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(img_fd >= 0);
	CHECK(pwrite(img_fd, shadow, IMG_SIZE, 0) == IMG_SIZE);
	test_queues_one_worker(daemon, img, sock);
	peer_kill();
	drop_connection(16);
	drv_fini(&drv);
	close(img_fd);

	/* io_uring refused: the one log line, then the sync engine */
	img_fd = open(img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(img_fd >= 0);
	CHECK(pwrite(img_fd, shadow, IMG_SIZE, 0) == IMG_SIZE);
	drv_init(&drv, 1);
	test_fallback(daemon, img, sock);
	peer_kill();
	drop_connection(1);
	drv_fini(&drv);
	close(img_fd);
	free(shadow);
	return blk_exit();
}
