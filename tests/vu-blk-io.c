// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vu-blk-io SOCKET IMAGE: one guest-free I/O round trip through a
 * vhost-user-blk back-end already listening at SOCKET (started by systemd,
 * systemd-socket-activate or a test): negotiate, check the capacity against
 * IMAGE's size, write 64 KiB of a pattern no earlier run left there, flush,
 * read it back through the ring and compare, and compare IMAGE's bytes on
 * disk.  Exit 0 when every byte matched, 1 otherwise.  Used by
 * tests/test-systemd-activate.sh and the packaging stage of scripts/test.
 */
#include <endian.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "libvhost.h"
#include "libvhost-mem.h"
#include "libvhost-vring.h"
#include "libvhost-vu.h"
#include "test-util.h"

#define MEM_SIZE (4u << 20)
#define QSIZE 64
#define RING_GPA 0x0ull
#define HDR_GPA 0x10000ull
#define STATUS_GPA 0x10100ull
#define DATA_GPA 0x100000ull
#define LEN (64u << 10)
#define TIMEOUT_MS 10000

#define F_BIT(b) (1ull << (b))

struct io {
	struct vh_ctx *ctx;
	struct vh_mem *mem;
	struct vh_vu_frontend *fe;
	struct vh_drvq *vq;
	uint8_t *guest;
	int kick, call;
};

static int wait_used(struct io *io, uint32_t *len)
{
	struct pollfd p = { .fd = io->call, .events = POLLIN };
	void *token;
	uint64_t v;
	int i, r;

	for (i = 0; i < TIMEOUT_MS / 50; i++) {
		r = vh_drvq_get_used(io->vq, &token, len);
		if (r != 0)
			return r;
		if (poll(&p, 1, 50) > 0 && read(io->call, &v, sizeof(v)) < 0)
			return -1;
	}
	return 0;
}

/* header, data (out or in), status: the status byte, -1 on a ring error */
static int request(struct io *io, uint32_t type, uint64_t sector,
		   uint32_t len, bool in)
{
	struct virtio_blk_outhdr h = { .type = htole32(type),
				       .sector = htole64(sector) };
	struct vh_sg sg[3];
	unsigned int n = 0;
	uint32_t used = 0;
	int token;

	memcpy(io->guest + HDR_GPA, &h, sizeof(h));
	io->guest[STATUS_GPA] = 0xee;
	sg[n++] = (struct vh_sg){ HDR_GPA, sizeof(h) };
	if (len)
		sg[n++] = (struct vh_sg){ DATA_GPA, len };
	sg[n++] = (struct vh_sg){ STATUS_GPA, 1 };
	if (vh_drvq_add(io->vq, sg, len && !in ? 2 : 1, len && in ? 2 : 1,
			&token) < 0 ||
	    vh_drvq_kick(io->vq) < 0 || wait_used(io, &used) != 1) {
		fprintf(stderr, "request %u: no completion\n", type);
		return -1;
	}
	if (used != (in ? len : 0) + 1) {
		fprintf(stderr, "request %u: used length %u\n", type, used);
		return -1;
	}
	return io->guest[STATUS_GPA];
}

int main(int argc, char *argv[])
{
	const uint64_t want = F_BIT(VH_VU_VIRTIO_F_VERSION_1) |
			      F_BIT(VH_VU_F_PROTOCOL_FEATURES) |
			      F_BIT(VIRTIO_BLK_F_FLUSH);
	struct virtio_blk_config cfg;
	struct io io = { .kick = -1, .call = -1 };
	uint64_t features, pf, sector, sectors;
	uint8_t *disk;
	struct stat st;
	unsigned int seed, i;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "Usage: %s SOCKET IMAGE\n", argv[0]);
		return 2;
	}
	fd = open(argv[2], O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0 && fstat(fd, &st) == 0);
	sectors = (uint64_t)st.st_size / 512;
	CHECK(sectors >= 2 * LEN / 512);
	CHECK_EQ(vh_ctx_new(&io.ctx), 0);
	CHECK_EQ(vh_mem_new(io.ctx, &io.mem), 0);
	CHECK_EQ(vh_mem_add_memfd(io.mem, 0, MEM_SIZE, (void **)&io.guest), 0);
	io.kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	io.call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	CHECK(io.kick >= 0 && io.call >= 0);

	CHECK_EQ(vh_vu_frontend_new(io.ctx, &io.fe), 0);
	CHECK_EQ(vh_vu_frontend_connect(io.fe, argv[1], TIMEOUT_MS), 0);
	CHECK_EQ(vh_vu_frontend_negotiate(io.fe, want,
					  F_BIT(VH_VU_PROTOCOL_F_CONFIG) |
						  F_BIT(VH_VU_PROTOCOL_F_REPLY_ACK),
					  &features, &pf),
		 0);
	CHECK(features & F_BIT(VIRTIO_BLK_F_FLUSH));
	CHECK(pf & F_BIT(VH_VU_PROTOCOL_F_CONFIG));
	CHECK_EQ(vh_vu_frontend_get_config(io.fe, 0, &cfg, sizeof(cfg)), 0);
	CHECK_EQ(le64toh(cfg.capacity), sectors);
	CHECK_EQ(vh_vu_frontend_share_mem(io.fe, io.mem), 0);
	CHECK_EQ(vh_drvq_new(io.ctx, io.mem, 0, QSIZE, RING_GPA, &io.vq), 0);
	CHECK_EQ(vh_drvq_set_features(io.vq, features), 0);
	CHECK_EQ(vh_drvq_set_kick_fd(io.vq, io.kick), 0);
	CHECK_EQ(vh_drvq_set_call_fd(io.vq, io.call), 0);
	CHECK_EQ(vh_vu_frontend_setup_vq(io.fe, 0, io.vq, io.kick, io.call),
		 0);

	/* a fresh pattern at a fresh place: a stale image cannot pass */
	seed = (unsigned int)time(NULL) ^ (unsigned int)getpid();
	sector = (seed % (sectors - LEN / 512)) & ~7ull;
	for (i = 0; i < LEN; i++)
		io.guest[DATA_GPA + i] = (uint8_t)((i * 31 + seed) >> 3);
	disk = malloc(LEN);
	CHECK(disk);
	memcpy(disk, io.guest + DATA_GPA, LEN);
	CHECK_EQ(request(&io, VIRTIO_BLK_T_OUT, sector, LEN, false),
		 VIRTIO_BLK_S_OK);
	CHECK_EQ(request(&io, VIRTIO_BLK_T_FLUSH, 0, 0, false),
		 VIRTIO_BLK_S_OK);
	memset(io.guest + DATA_GPA, 0x5a, LEN);
	CHECK_EQ(request(&io, VIRTIO_BLK_T_IN, sector, LEN, true),
		 VIRTIO_BLK_S_OK);
	CHECK(memcmp(io.guest + DATA_GPA, disk, LEN) == 0);
	/* and the bytes are on the disk, not only in the daemon */
	memset(io.guest + DATA_GPA, 0, LEN);
	CHECK(pread(fd, io.guest + DATA_GPA, LEN, (off_t)(sector * 512)) ==
	      (ssize_t)LEN);
	CHECK(memcmp(io.guest + DATA_GPA, disk, LEN) == 0);
	printf("vu-blk-io: %llu sectors; wrote, flushed, read back and found on disk %u bytes at sector %llu\n",
	       (unsigned long long)sectors, LEN, (unsigned long long)sector);

	free(disk);
	vh_vu_frontend_unref(io.fe);
	vh_drvq_unref(io.vq);
	close(io.kick);
	close(io.call);
	close(fd);
	vh_mem_unref(io.mem);
	vh_ctx_unref(io.ctx);
	return 0;
}
