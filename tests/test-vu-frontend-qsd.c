// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Our vhost-user front-end against a real back-end: qemu-storage-daemon's
 * vhost-user-blk export of a raw image.  Negotiates, reads the config
 * (capacity must match the image), shares memfd guest memory, runs
 * virtio-blk writes and reads through a split ring built with vh_drvq, and
 * compares every byte with the image file.  SKIPs only without the daemon
 * (qemu-storage-daemon, package qemu-system-common, which
 * scripts/install-deps installs); failing to start is a failure.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <fcntl.h>
#include <linux/virtio_blk.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "libvhost.h"
#include "test-vu-frontend-util.h"

#define IMG_SIZE (1u << 20)
#define MEM_SIZE (4u << 20)
#define RING_GPA 0
#define QSIZE 128
#define HDR_GPA 0x100000
#define DATA_GPA 0x200000
#define STATUS_GPA 0x180000

static struct vh_ctx *ctx;
static struct vh_mem *mem;
static struct vh_drvq *vq;
static uint8_t *guest; /* our mapping of GPA 0 */
static int kick_fd, call_fd;

static uint8_t *logmap; /* the dirty log, when on */
static int logfd;

static bool logged(uint64_t page)
{
	return logmap[page / 8] & (1u << (page % 8));
}

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 31 + i / 512 + 7);
}

/* One virtio-blk request: header, data, status.  Returns the status byte. */
static int blk_request(uint32_t type, uint64_t sector, uint32_t len,
		       uint32_t *used_len)
{
	struct virtio_blk_outhdr hdr = {
		.type = type, .ioprio = 0, .sector = sector,
	};
	struct vh_sg sg[3];
	void *token;
	uint32_t ulen = 0;
	int r, i;

	memcpy(guest + HDR_GPA, &hdr, sizeof(hdr));
	guest[STATUS_GPA] = 0xee;
	sg[0] = (struct vh_sg){ HDR_GPA, sizeof(hdr) };
	sg[1] = (struct vh_sg){ DATA_GPA, len };
	sg[2] = (struct vh_sg){ STATUS_GPA, 1 };
	/* a write: device reads hdr + data; a read: device writes data */
	if (type == VIRTIO_BLK_T_OUT)
		CHECK_EQ(vh_drvq_add(vq, sg, 2, 1, &hdr), 0);
	else
		CHECK_EQ(vh_drvq_add(vq, sg, 1, 2, &hdr), 0);
	CHECK(vh_drvq_kick(vq) >= 0);
	/* a peer on a loaded 2-core host: a minute, not 5 s */
	for (i = 0; i < 600; i++) {
		r = vh_drvq_get_used(vq, &token, &ulen);
		CHECK(r >= 0);
		if (r == 1)
			break;
		efd_wait(call_fd, 100);
	}
	CHECK_EQ(r, 1);
	CHECK(token == &hdr);
	if (used_len)
		*used_len = ulen;
	return guest[STATUS_GPA];
}

/* Compare the image file with what we expect it to hold. */
static void check_image(int fd, const uint8_t *want, uint8_t *buf)
{
	size_t i;

	CHECK(pread(fd, buf, IMG_SIZE, 0) == IMG_SIZE);
	for (i = 0; i < IMG_SIZE; i++) {
		if (buf[i] != want[i]) {
			fprintf(stderr, "image byte %zu: %#x, want %#x\n", i,
				buf[i], want[i]);
			CHECK(0);
		}
	}
}

/*
 * One connection: negotiate (with or without CONFIGURE_MEM_SLOTS, so both
 * ADD_MEM_REG and SET_MEM_TABLE are used), check the config, write
 * 4 KiB at sector wsect, read around it, stop the ring.
 */
/* POSTCOPY_ADVISE returned qsd's userfaultfd, and it was checked */
static bool postcopy_checked;

static void session(const char *sock, bool mem_slots, bool log,
		    uint64_t wsect, uint8_t seed, int fd, uint8_t *file,
		    uint8_t *buf)
{
	const uint64_t f30 = 1ull << VH_VU_F_PROTOCOL_FEATURES;
	struct vh_vu_frontend *fe;
	uint64_t features, pf, capacity, n, want_pf;
	uint32_t base, ulen;
	size_t i;

	want_pf = (1ull << VH_VU_PROTOCOL_F_MQ) |
		  (1ull << VH_VU_PROTOCOL_F_REPLY_ACK) |
		  (1ull << VH_VU_PROTOCOL_F_CONFIG) |
		  (1ull << VH_VU_PROTOCOL_F_BACKEND_REQ);
	if (mem_slots)
		want_pf |= 1ull << VH_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS;
	if (log)
		want_pf |= (1ull << VH_VU_PROTOCOL_F_LOG_SHMFD) |
			   (1ull << VH_VU_PROTOCOL_F_PAGEFAULT);

	CHECK_EQ(vh_vu_frontend_new(ctx, &fe), 0);
	/* qemu-storage-daemon serves one front-end at a time: retry */
	CHECK_EQ(vh_vu_frontend_connect(fe, sock, 5000), 0);
	CHECK_EQ(vh_vu_frontend_negotiate(
			 fe,
			 (1ull << VH_VU_VIRTIO_F_VERSION_1) | f30 |
				 (log ? 1ull << VH_VU_VHOST_F_LOG_ALL : 0),
			 want_pf, &features, &pf),
		 0);
	printf("offered features %#llx protocol %#llx; negotiated %#llx / %#llx\n",
	       (unsigned long long)vh_vu_frontend_offered_features(fe),
	       (unsigned long long)vh_vu_frontend_offered_protocol_features(fe),
	       (unsigned long long)features, (unsigned long long)pf);
	CHECK(features & (1ull << VH_VU_VIRTIO_F_VERSION_1));
	CHECK(features & f30);
	/* qemu's vhost-user-blk server always offers these */
	CHECK(pf & (1ull << VH_VU_PROTOCOL_F_CONFIG));
	CHECK(pf & (1ull << VH_VU_PROTOCOL_F_REPLY_ACK));
	CHECK_EQ(!!(pf & (1ull << VH_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS)),
		 mem_slots &&
			 (vh_vu_frontend_offered_protocol_features(fe) &
			  (1ull << VH_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS)));

	if (pf & (1ull << VH_VU_PROTOCOL_F_MQ)) {
		CHECK_EQ(vh_vu_frontend_get_queue_num(fe, &n), 0);
		printf("GET_QUEUE_NUM: %llu\n", (unsigned long long)n);
		CHECK(n >= 1);
	} else {
		CHECK_EQ(vh_vu_frontend_get_queue_num(fe, &n), -EOPNOTSUPP);
	}
	if (pf & (1ull << VH_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS)) {
		CHECK_EQ(vh_vu_frontend_get_max_mem_slots(fe, &n), 0);
		printf("GET_MAX_MEM_SLOTS: %llu\n", (unsigned long long)n);
		CHECK(n >= 1);
	} else {
		CHECK_EQ(vh_vu_frontend_get_max_mem_slots(fe, &n), -EOPNOTSUPP);
	}
	if (pf & (1ull << VH_VU_PROTOCOL_F_BACKEND_REQ)) {
		CHECK_EQ(vh_vu_frontend_set_backend_req_fd(fe), 0);
		CHECK(vh_vu_frontend_get_backend_fd(fe) >= 0);
		/* nothing pending on it */
		CHECK_EQ(vh_vu_frontend_dispatch_backend(fe), -EAGAIN);
	}
	/* not negotiated: refused locally, never sent */
	CHECK_EQ(vh_vu_frontend_set_status(fe, 1), -EOPNOTSUPP);

	/* config space: capacity in 512-byte sectors */
	CHECK_EQ(vh_vu_frontend_get_config(fe, 0, &capacity, 8), 0);
	printf("capacity: %llu sectors\n", (unsigned long long)capacity);
	CHECK_EQ(capacity, IMG_SIZE / 512);
	{
		struct virtio_blk_config cfg;

		memset(&cfg, 0xff, sizeof(cfg));
		/* up to blk_size: every kernel header has these fields */
		CHECK_EQ(vh_vu_frontend_get_config(
				 fe, 0, &cfg,
				 offsetof(struct virtio_blk_config, blk_size) +
					 4),
			 0);
		CHECK_EQ(cfg.capacity, IMG_SIZE / 512);
		CHECK_EQ(cfg.blk_size, 512);
		/*
		 * A read at an offset is answered, but QEMU's libvhost-user
		 * hands the device only the size and copies from offset 0
		 * (QEMU itself always asks at offset 0): not checked here.
		 */
		CHECK_EQ(vh_vu_frontend_get_config(
				 fe, offsetof(struct virtio_blk_config, blk_size),
				 &base, 4),
			 0);
	}

	/* guest memory (one memfd region) and the ring */
	CHECK_EQ(vh_mem_new(ctx, &mem), 0);
	CHECK_EQ(vh_mem_add_memfd(mem, 0, MEM_SIZE, (void **)&guest), 0);
	CHECK_EQ(vh_drvq_new(ctx, mem, 0, QSIZE, RING_GPA, &vq), 0);
	CHECK_EQ(vh_drvq_set_features(vq, features), 0);
	kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	CHECK(kick_fd >= 0 && call_fd >= 0);
	CHECK_EQ(vh_drvq_set_kick_fd(vq, kick_fd), 0);
	CHECK_EQ(vh_drvq_set_call_fd(vq, call_fd), 0);
	CHECK_EQ(vh_vu_frontend_share_mem(fe, mem), 0);
	if (log) {
		/* "Migration": a dirty log covering all of guest memory */
		size_t lsize = vh_mem_log_size_for(MEM_SIZE);

		CHECK(features & (1ull << VH_VU_VHOST_F_LOG_ALL));
		CHECK(pf & (1ull << VH_VU_PROTOCOL_F_LOG_SHMFD));
		CHECK_EQ(vh_mem_log_alloc(mem, lsize, &logfd, (void **)&logmap),
			 0);
		CHECK_EQ(vh_vu_frontend_set_log_base(fe, logfd, lsize, 0), 0);
	}
	CHECK_EQ(vh_vu_frontend_setup_vq(fe, 0, vq, kick_fd, call_fd), 0);

	/* write 4 KiB at sector wsect */
	for (i = 0; i < 4096; i++) {
		guest[DATA_GPA + i] = (uint8_t)(seed ^ i);
		file[wsect * 512 + i] = (uint8_t)(seed ^ i);
	}
	CHECK_EQ(blk_request(VIRTIO_BLK_T_OUT, wsect, 4096, &ulen),
		 VIRTIO_BLK_S_OK);
	check_image(fd, file, buf);

	/* read 16 KiB from sector 0: the old pattern around our write */
	memset(guest + DATA_GPA, 0, 16384);
	CHECK_EQ(blk_request(VIRTIO_BLK_T_IN, 0, 16384, &ulen),
		 VIRTIO_BLK_S_OK);
	CHECK_EQ(ulen, 16384 + 1);
	CHECK(memcmp(guest + DATA_GPA, file, 16384) == 0);
	if (log) {
		uint64_t used_gpa, d, a;

		/* the device wrote the 4 data pages, the status, the used ring */
		for (i = DATA_GPA / 4096; i < (DATA_GPA + 16384) / 4096; i++)
			CHECK(logged(i));
		CHECK(logged(STATUS_GPA / 4096));
		CHECK_EQ(vh_drvq_get_addrs(vq, &d, &a, &used_gpa), 0);
		CHECK(logged(used_gpa / 4096));
		/* and never touched these */
		CHECK(!logged((DATA_GPA + 16384) / 4096));
		CHECK(!logged(0x300000 / 4096));
		printf("dirty log: data, status and used ring pages marked\n");
	}

	/* read the last sector, then one past the end: an I/O error */
	CHECK_EQ(blk_request(VIRTIO_BLK_T_IN, IMG_SIZE / 512 - 1, 512, NULL),
		 VIRTIO_BLK_S_OK);
	CHECK(memcmp(guest + DATA_GPA, file + IMG_SIZE - 512, 512) == 0);
	CHECK_EQ(blk_request(VIRTIO_BLK_T_IN, IMG_SIZE / 512, 512, NULL),
		 VIRTIO_BLK_S_IOERR);

	/* stop the ring: it consumed our 4 requests */
	CHECK_EQ(vh_vu_frontend_get_vring_base(fe, 0, &base), 0);
	CHECK_EQ(base, 4);

	/* postcopy: the back-end hands us its userfaultfd, then drops it */
	if (pf & (1ull << VH_VU_PROTOCOL_F_PAGEFAULT)) {
		char link[64], target[128];
		ssize_t len;
		int ufd;

		CHECK_EQ(vh_vu_frontend_postcopy_advise(fe, &ufd), 0);
		if (ufd >= 0) {
			snprintf(link, sizeof(link), "/proc/self/fd/%d", ufd);
			len = readlink(link, target, sizeof(target) - 1);
			CHECK(len > 0);
			target[len] = '\0';
			printf("POSTCOPY_ADVISE: fd %s\n", target);
			CHECK(strstr(target, "userfaultfd"));
			CHECK(fcntl(ufd, F_GETFD) & FD_CLOEXEC);
			close(ufd);
			postcopy_checked = true;
		} else {
			printf("POSTCOPY_ADVISE: no userfaultfd here\n");
		}
		CHECK_EQ(vh_vu_frontend_postcopy_end(fe), 0);
	}

	vh_vu_frontend_unref(fe);
	vh_drvq_unref(vq);
	vh_mem_unref(mem);
	close(kick_fd);
	close(call_fd);
}

int main(void)
{
	const char *qsd = peer_find("qemu-storage-daemon");
	char img[128], sock[128], blockdev[256], exp[384];
	uint8_t *file, *buf;
	int fd, r;
	size_t i;

	peer_mkdir("vufe-qsd");
	snprintf(img, sizeof(img), "%s/disk.img", peer_dir);
	snprintf(sock, sizeof(sock), "%s/vhost.sock", peer_dir);

	/* the image: a known pattern */
	file = malloc(IMG_SIZE);
	buf = malloc(IMG_SIZE);
	CHECK(file && buf);
	for (i = 0; i < IMG_SIZE; i++)
		file[i] = pattern(i);
	fd = open(img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK(pwrite(fd, file, IMG_SIZE, 0) == IMG_SIZE);

	snprintf(blockdev, sizeof(blockdev),
		 "driver=file,node-name=f0,filename=%s", img);
	snprintf(exp, sizeof(exp),
		 "type=vhost-user-blk,id=e0,addr.type=unix,addr.path=%s,node-name=f0,writable=on",
		 sock);
	{
		const char *argv[] = { qsd, "--blockdev", blockdev,
				       "--export", exp, NULL };

		peer_start(argv);
	}
	r = peer_wait_socket(sock, 180000);
	if (r < 0) {
		peer_dump_log();
		CHECK_EQ(r, 0);
	}
	CHECK_EQ(vh_ctx_new(&ctx), 0);

	/* ADD_MEM_REG, then a second connection with SET_MEM_TABLE */
	session(sock, true, false, 8, 0xa5, fd, file, buf);
	session(sock, false, false, 24, 0x3c, fd, file, buf);
	/* and a third with the dirty log on */
	session(sock, false, true, 40, 0x69, fd, file, buf);
	CHECK(peer_alive());

	close(fd);
	free(file);
	free(buf);
	vh_ctx_unref(ctx);
	printf("qemu-storage-daemon: 3 connections, config, 3 writes + 9 reads, dirty log, %s\n",
	       postcopy_checked ? "postcopy fd checked" :
				  "postcopy fd NOT checked (none offered here)");
	return 0;
}
