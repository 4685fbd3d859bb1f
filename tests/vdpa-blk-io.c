// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vdpa-blk-io [--packed|--split] [--mem MIB] NODE SECTOR IN BEFORE AFTER:
 * libvhost's vhost-vdpa front-end
 * (src/vdpa.c) driving a virtio-blk device through its /dev/vhost-vdpa-N
 * NODE (run as root in the test VM by tests/vm-vduse-blk.sh, where the
 * device is tools/vhost-user-blk --vduse bound to vhost_vdpa): the status
 * handshake, guest memory mapped through IOTLB messages, one ring; then
 * reads the bytes at SECTOR into the file BEFORE, writes the file IN's
 * bytes (a multiple of 512, at most 64 KiB) there, flushes, reads them back
 * into AFTER and compares them with IN; then GET_VRING_BASE on the running
 * ring must count the requests made (packed: their descriptors), and the
 * ring must serve a read after it.  --packed offers VIRTIO_F_RING_PACKED
 * and requires it negotiated (a packed ring), --split does not offer it;
 * the default offers it and takes either.  --mem makes the guest memory
 * one memfd region of MIB MiB (default 1), with the ring and the buffers
 * in its last MiB: above 4 GiB, the device must map the region's file
 * beyond 4 GiB.  --page-maps PID maps the used MiB as one IOTLB entry per
 * page (as a vIOMMU would) and, once the I/O is done, requires the device
 * process PID to map the memfd once whatever the number of entries
 * (prints "memfd inode I maps N").  Prints "capacity N features F"
 * (sectors, from config space) and "layout packed|split"; exits 0 if
 * every step succeeded and the bytes match.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/virtio_blk.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "libvhost.h"
#include "libvhost-kernel.h"
#include "libvhost-mem.h"
#include "libvhost-vdpa.h"
#include "libvhost-vring.h"

#define RING 64
#define MEM_SIZE (1u << 20) /* the default, and the part used at its end */
#define MAX_LEN (64u << 10)
#define TIMEOUT_MS 30000 /* TCG under load */

/* VERSION_1, ACCESS_PLATFORM (IOVAs), FLUSH */
#define WANTED ((1ull << 32) | (1ull << 33) | (1ull << VIRTIO_BLK_F_FLUSH))
#define RING_PACKED (1ull << 34)

enum layout { LAYOUT_ANY, LAYOUT_PACKED, LAYOUT_SPLIT };

struct blk {
	struct vh_kdev *dev;
	struct vh_mem *mem;
	uint8_t *host;
	struct vh_drvq *vq;
	int kick, call;
	uint64_t hdr_gpa, data_gpa;
	uint64_t acked;
	uint64_t mem_size;
	long maps_pid; /* --page-maps, else 0 */
	unsigned int ndesc; /* descriptors made available so far */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One request; the virtio-blk status byte (virtio 1.3, 5.2.6), or -errno. */
static int request(struct blk *b, uint32_t type, uint64_t sector, uint32_t len)
{
	struct virtio_blk_outhdr *h = (void *)(b->host + b->hdr_gpa);
	uint8_t *status = b->host + b->hdr_gpa + 64;
	uint64_t deadline = now_ms() + TIMEOUT_MS;
	unsigned int out = 1, in = 0;
	struct vh_sg sg[3];
	void *tok = NULL;
	uint32_t used = 0;
	uint64_t cnt;
	int r;

	h->type = type;
	h->ioprio = 0;
	h->sector = sector;
	*status = 0xee;
	sg[0] = (struct vh_sg){ b->hdr_gpa, sizeof(*h) };
	if (len && type == VIRTIO_BLK_T_OUT)
		sg[out++] = (struct vh_sg){ b->data_gpa, len };
	if (len && type == VIRTIO_BLK_T_IN)
		sg[out + in++] = (struct vh_sg){ b->data_gpa, len };
	sg[out + in++] = (struct vh_sg){ b->hdr_gpa + 64, 1 };
	r = vh_drvq_add(b->vq, sg, out, in, h);
	if (r)
		return r;
	b->ndesc += out + in;
	if (vh_drvq_kick(b->vq) < 0)
		return -EIO;
	for (;;) {
		r = vh_drvq_get_used(b->vq, &tok, &used);
		if (r < 0)
			return r;
		if (r == 1)
			break;
		if (vh_drvq_enable_cb(b->vq) == 1)
			continue;
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = b->call, .events = POLLIN };
		if (poll(&p, 1, 100) == 1 &&
		    read(b->call, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
			return -errno;
	}
	if (tok != h)
		return -EPROTO;
	return *status;
}

/* --page-maps: the used MiB, one IOTLB entry per page, in one batch */
static int map_pages(struct blk *b)
{
	uint64_t iova;
	int r;

	r = vh_vdpa_batch_begin(b->dev, 0);
	for (iova = b->mem_size - MEM_SIZE; !r && iova < b->mem_size;
	     iova += 4096)
		r = vh_vdpa_dma_map(b->dev, 0, iova, 4096, b->host + iova,
				    VH_ACCESS_RW);
	if (!r)
		r = vh_vdpa_batch_end(b->dev, 0);
	return r;
}

/*
 * How many mappings of our memfd the process pid has (/proc/PID/maps:
 * address perms offset dev inode path).
 */
static int count_maps(struct blk *b, long pid, unsigned long *ino)
{
	struct vh_mem_region reg;
	char path[64], line[512];
	unsigned long long i;
	struct stat st;
	int n = 0, pathpos;
	FILE *f;

	if (vh_mem_get_region(b->mem, 0, &reg) || fstat(reg.fd, &st) < 0)
		return -EIO;
	*ino = (unsigned long)st.st_ino;
	snprintf(path, sizeof(path), "/proc/%ld/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		pathpos = 0;
		if (sscanf(line, "%*s %*s %*s %*s %llu %n", &i, &pathpos) == 1 &&
		    pathpos && i == (unsigned long long)st.st_ino &&
		    !strncmp(line + pathpos, "/memfd:", 7))
			n++;
	}
	fclose(f);
	return n;
}

static int setup(struct vh_ctx *ctx, const char *node, enum layout layout,
		 struct blk *b, uint64_t *capacity)
{
	uint64_t wanted = WANTED | (layout == LAYOUT_SPLIT ? 0 : RING_PACKED);
	uint64_t acked = 0, ring;
	void *host = NULL;
	int r;

	r = vh_kdev_open(ctx, node, &b->dev);
	if (!r)
		r = vh_kdev_set_owner(b->dev);
	if (!r)
		r = vh_vdpa_setup_backend(b->dev, 0, NULL);
	if (r)
		return fprintf(stderr, "open %s: %s\n", node, strerror(-r)), r;
	r = vh_vdpa_negotiate(b->dev, wanted, &acked);
	if (r)
		return fprintf(stderr, "handshake: %s\n", strerror(-r)), r;
	if ((acked & (1ull << 32)) == 0) {
		fprintf(stderr, "features 0x%" PRIx64 ": no VERSION_1\n", acked);
		return -EPROTO;
	}
	r = vh_vdpa_get_config(b->dev, offsetof(struct virtio_blk_config,
						capacity),
			       capacity, sizeof(*capacity));
	if (r)
		return fprintf(stderr, "config: %s\n", strerror(-r)), r;
	printf("capacity %" PRIu64 " features 0x%" PRIx64 "\n", *capacity,
	       acked);
	printf("layout %s\n", acked & RING_PACKED ? "packed" : "split");
	if (layout == LAYOUT_PACKED && !(acked & RING_PACKED)) {
		fprintf(stderr, "packed ring asked, not negotiated\n");
		return -EPROTO;
	}
	b->acked = acked;

	r = vh_mem_new(ctx, &b->mem);
	if (!r)
		r = vh_mem_add_memfd(b->mem, 0, b->mem_size, &host);
	if (r)
		return fprintf(stderr, "memory: %s\n", strerror(-r)), r;
	b->host = host;
	/* in the last MiB (the memfd's pages are only made when touched) */
	b->hdr_gpa = b->mem_size - MEM_SIZE + 0x1000;
	ring = b->mem_size - MEM_SIZE + 0x2000;
	b->data_gpa = b->mem_size - MEM_SIZE + 0x10000;
	if (ring + vh_drvq_ring_bytes(RING) > b->data_gpa ||
	    b->data_gpa + MAX_LEN > b->mem_size)
		return -ENOMEM;
	/* vh_vdpa_setup_vring() gives it the negotiated layout */
	r = vh_drvq_new(ctx, b->mem, 0, RING, ring, &b->vq);
	b->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	b->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!r && (b->kick < 0 || b->call < 0))
		r = -errno;
	if (!r)
		r = vh_drvq_set_kick_fd(b->vq, b->kick);
	if (!r)
		r = vh_drvq_set_call_fd(b->vq, b->call);
	/* IOVA = GPA (vh_vdpa_setup_vring() puts GPAs in the ring) */
	if (!r && b->maps_pid)
		r = map_pages(b);
	else if (!r)
		r = vh_vdpa_map_mem(b->dev, 0, b->mem);
	if (!r)
		r = vh_vdpa_setup_vring(b->dev, 0, b->vq, b->kick, b->call);
	if (!r)
		r = vh_vdpa_set_vring_enable(b->dev, 0, true);
	if (!r)
		r = vh_vdpa_driver_ok(b->dev);
	if (r)
		fprintf(stderr, "ring setup / DRIVER_OK: %s\n", strerror(-r));
	return r;
}

static int read_file(const char *path, uint8_t *buf, size_t max, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, max + 1);
	close(fd);
	if (n < 0)
		return -errno;
	*len = (size_t)n;
	return 0;
}

static int write_file(const char *path, const uint8_t *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, buf, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

/*
 * What GET_VRING_BASE must read once every request completed: split, the
 * avail index (one per request); packed (2.8.1), the positions count
 * descriptors and wrap around the ring, each wrap flipping its counter
 * (1 at start): avail | wrap << 15 in bits 0-15, used the same above.
 */
static uint32_t expected_base(const struct blk *b, unsigned int nreq)
{
	uint32_t pos = b->ndesc % RING, wrap = 1 ^ ((b->ndesc / RING) & 1);

	if (!(b->acked & RING_PACKED))
		return nreq & 0xffff;
	return (pos | wrap << 15) * 0x10001u;
}

static int run(struct vh_ctx *ctx, enum layout layout, uint64_t mem_size,
	       long maps_pid, char **argv)
{
	static uint8_t in[MAX_LEN + 1];
	struct blk b = { .kick = -1, .call = -1, .mem_size = mem_size,
			 .maps_pid = maps_pid };
	uint64_t capacity = 0, sector;
	unsigned int nreq = 3; /* read, write, read; flush if negotiated */
	uint32_t base = 0;
	size_t len = 0;
	char *end;
	int r, st;

	errno = 0;
	sector = strtoull(argv[2], &end, 0);
	if (errno || *end || end == argv[2]) {
		fprintf(stderr, "bad sector %s\n", argv[2]);
		return -EINVAL;
	}
	r = read_file(argv[3], in, MAX_LEN, &len);
	if (r || len == 0 || len > MAX_LEN || len % 512) {
		fprintf(stderr, "%s: need 512..%u bytes, a multiple of 512\n",
			argv[3], MAX_LEN);
		return r ? r : -EINVAL;
	}
	r = setup(ctx, argv[1], layout, &b, &capacity);
	if (!r && (sector > capacity || len / 512 > capacity - sector)) {
		fprintf(stderr, "sector %" PRIu64 " + %zu bytes past %" PRIu64
				" sectors\n", sector, len, capacity);
		r = -EINVAL;
	}
	if (r)
		goto out;
	st = request(&b, VIRTIO_BLK_T_IN, sector, (uint32_t)len);
	if (st == VIRTIO_BLK_S_OK)
		r = write_file(argv[4], b.host + b.data_gpa, len);
	else
		fprintf(stderr, "read before: status %d\n", st);
	memcpy(b.host + b.data_gpa, in, len);
	if (st == VIRTIO_BLK_S_OK && !r)
		st = request(&b, VIRTIO_BLK_T_OUT, sector, (uint32_t)len);
	/* FLUSH only where negotiated (virtio 1.3, 5.2.6.2) */
	if (st == VIRTIO_BLK_S_OK &&
	    (b.acked & (1ull << VIRTIO_BLK_F_FLUSH))) {
		st = request(&b, VIRTIO_BLK_T_FLUSH, 0, 0);
		nreq++;
	}
	memset(b.host + b.data_gpa, 0xa5, len);
	if (st == VIRTIO_BLK_S_OK)
		st = request(&b, VIRTIO_BLK_T_IN, sector, (uint32_t)len);
	if (st != VIRTIO_BLK_S_OK) {
		fprintf(stderr, "write/flush/read: status %d\n", st);
		r = st < 0 ? st : -EIO;
		goto out;
	}
	r = write_file(argv[5], b.host + b.data_gpa, len);
	if (!r && memcmp(b.host + b.data_gpa, in, len) != 0) {
		fprintf(stderr, "read back differs from what was written\n");
		r = -EIO;
	}
	/*
	 * GET_VRING_BASE of the running ring (VDUSE: GET_VQ_STATE, which the
	 * daemon answers by taking the ring back from its worker and handing
	 * it over again): every request made, and the ring still serves.
	 */
	if (!r) {
		r = vh_kdev_get_vring_base(b.dev, 0, &base);
		if (r)
			fprintf(stderr, "GET_VRING_BASE: %s\n", strerror(-r));
		else if (base != expected_base(&b, nreq)) {
			fprintf(stderr,
				"vring base %#x, expected %#x (%u requests, %u descriptors)\n",
				base, expected_base(&b, nreq), nreq, b.ndesc);
			r = -EPROTO;
		} else
			printf("vring base %#x\n", base);
	}
	if (!r) {
		memset(b.host + b.data_gpa, 0x5a, len);
		st = request(&b, VIRTIO_BLK_T_IN, sector, (uint32_t)len);
		if (st != VIRTIO_BLK_S_OK ||
		    memcmp(b.host + b.data_gpa, in, len) != 0) {
			fprintf(stderr, "read after GET_VRING_BASE: status %d "
					"or bytes differ\n", st);
			r = -EIO;
		}
	}
	/*
	 * One IOTLB entry per page, each its own VDUSE_IOTLB_GET_FD answer:
	 * the device maps our file once for all of them
	 */
	if (!r && b.maps_pid) {
		unsigned long ino = 0;
		int n = count_maps(&b, b.maps_pid, &ino);

		printf("memfd inode %lu maps %d\n", ino, n);
		if (n != 1) {
			fprintf(stderr,
				"process %ld maps the memfd %d times, not once\n",
				b.maps_pid, n);
			r = n < 0 ? n : -EPROTO;
		}
	}
	if (!r)
		r = vh_vdpa_reset(b.dev);
out:
	vh_kdev_unref(b.dev);
	vh_drvq_unref(b.vq);
	if (b.kick >= 0)
		close(b.kick);
	if (b.call >= 0)
		close(b.call);
	vh_mem_unref(b.mem);
	return r;
}

int main(int argc, char **argv)
{
	const char *prog = argv[0];
	enum layout layout = LAYOUT_ANY;
	uint64_t mem_size = MEM_SIZE;
	struct vh_ctx *ctx = NULL;
	long maps_pid = 0;
	char *end;
	int r;

	for (argc--, argv++; argc && !strncmp(argv[0], "--", 2);
	     argc--, argv++) {
		if (!strcmp(argv[0], "--packed")) {
			layout = LAYOUT_PACKED;
		} else if (!strcmp(argv[0], "--split")) {
			layout = LAYOUT_SPLIT;
		} else if (!strcmp(argv[0], "--mem") && argc > 1) {
			errno = 0;
			mem_size = strtoull(argv[1], &end, 10);
			/* MiB, at most 1 TiB */
			if (errno || *end || end == argv[1] || !mem_size ||
			    mem_size > (1u << 20))
				break;
			mem_size <<= 20;
			argc--;
			argv++;
		} else if (!strcmp(argv[0], "--page-maps") && argc > 1) {
			errno = 0;
			maps_pid = strtol(argv[1], &end, 10);
			if (errno || *end || end == argv[1] || maps_pid <= 0)
				break;
			argc--;
			argv++;
		} else {
			break;
		}
	}
	if (argc != 5) {
		fprintf(stderr,
			"usage: %s [--packed|--split] [--mem MIB] [--page-maps PID] /dev/vhost-vdpa-N SECTOR IN BEFORE AFTER\n",
			prog);
		return 2;
	}
	r = vh_ctx_new(&ctx);
	if (r) {
		fprintf(stderr, "vh_ctx_new: %s\n", strerror(-r));
		return 1;
	}
	/* run() takes argv[1..5] */
	r = run(ctx, layout, mem_size, maps_pid, argv - 1);
	vh_ctx_unref(ctx);
	return r ? 1 : 0;
}
