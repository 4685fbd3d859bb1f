// SPDX-License-Identifier: GPL-2.0-only
/*
 * vduse_test - the kernel's VDUSE interface (drivers/vdpa/vdpa_user/
 * vduse_dev.c, <linux/vduse.h>), driven with raw uapi:
 *  - vduse_uapi: the control device's ioctls (API version, CREATE_DEV with
 *    each config the kernel must refuse, DESTROY_DEV) and the device
 *    node's (VQ_SETUP, VQ_GET_INFO, VQ_SETUP_KICKFD, DEV_SET_CONFIG,
 *    IOTLB_GET_FD, VQ_INJECT_IRQ) with the errno each kernel function
 *    returns;
 *  - vduse_blk: a virtio-blk device served from a thread of this program
 *    (its request loop, its IOTLB through IOTLB_GET_FD + mmap, its split
 *    virtqueue on a 1 MiB RAM disk, kicks from an eventfd, completions by
 *    VQ_INJECT_IRQ), added over the vdpa netlink family and bound to
 *    virtio_vdpa: the kernel's virtio_blk writes and reads /dev/vdX with
 *    O_DIRECT and the bytes are checked on both sides.
 * Every case SKIPs without /dev/vduse/control (a kernel without
 * CONFIG_VDPA_USER: main() loads vduse and virtio_vdpa first); vduse_blk
 * also without virtio_vdpa.
 * Every wait is bounded: poll() with timeouts, and the kernel itself gives
 * up on an unanswered request after its msg_timeout (30 s).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <endian.h>
#include <fcntl.h>
#include <glob.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <linux/vduse.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include "kselftest_harness.h"
#include "vh_selftest.h"

#define BIT(n) (1ULL << (n))
#define CONTROL "/dev/vduse/control"
#define AUTOPROBE "/sys/bus/vdpa/drivers_autoprobe"
#define VIRTIO_VDPA "/sys/bus/vdpa/drivers/virtio_vdpa"
#define DISK_SIZE (1u << 20)
#define SECTOR 512u
#define VQ_MAX 128u
#define BLK_ID "vduse-kst-blk"
/* At most this many cached IOTLB mappings, and no single one larger. */
#define NMAPS 16
#define MAP_MAX (1ull << 30)
#define SEG_MAX 8

#define BLK_FEATURES                                                          \
	(BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_ACCESS_PLATFORM) |            \
	 BIT(VIRTIO_BLK_F_FLUSH))

/* ------------------------------------------------------------------ */
/* control device helpers                                              */
/* ------------------------------------------------------------------ */

/* CREATE_DEV with a virtio-blk config space; 0 or -errno. */
static int create_dev(int ctl, const char *name, uint32_t device_id,
		      uint64_t features, uint32_t vq_num, uint32_t vq_align,
		      uint32_t config_size)
{
	struct virtio_blk_config blk;
	struct vduse_dev_config *c;
	size_t csz = config_size < sizeof(blk) ? sizeof(blk) : config_size;
	int ret;

	c = calloc(1, sizeof(*c) + csz);
	if (!c)
		return -ENOMEM;
	/* one sector: vduse_blk sets the real size with DEV_SET_CONFIG */
	memset(&blk, 0, sizeof(blk));
	blk.capacity = htole64(1);
	memcpy(c->config, &blk, sizeof(blk));
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->device_id = device_id;
	c->vendor_id = 0;
	c->features = features;
	c->vq_num = vq_num;
	c->vq_align = vq_align;
	c->config_size = config_size;
	ret = ioctl(ctl, VDUSE_CREATE_DEV, c) ? -errno : 0;
	free(c);
	return ret;
}

static int destroy_dev(int ctl, const char *name)
{
	char buf[VDUSE_NAME_MAX] = "";

	snprintf(buf, sizeof(buf), "%s", name);
	return ioctl(ctl, VDUSE_DESTROY_DEV, buf) ? -errno : 0;
}

/*
 * DESTROY_DEV once the vdpa device is gone: vduse_vdpa_free() clears the
 * VDUSE device's link to it when the last reference goes, which may be a
 * little after vdpa dev del returned.  Up to 2 s.
 */
static int destroy_dev_wait(int ctl, const char *name)
{
	int i, ret = -EBUSY;

	for (i = 0; i < 200 && ret == -EBUSY; i++) {
		ret = destroy_dev(ctl, name);
		if (ret == -EBUSY)
			usleep(10000);
	}
	return ret;
}

/* Wait up to ms for path to exist (want) or be gone (!want). */
static bool wait_path(const char *path, bool want, int ms)
{
	for (; ms > 0; ms -= 10) {
		if ((access(path, F_OK) == 0) == want)
			return true;
		usleep(10000);
	}
	return (access(path, F_OK) == 0) == want;
}

static void dev_name(char *buf, size_t size, const char *what)
{
	snprintf(buf, size, "vkst-%s-%d", what, (int)getpid());
}

/* ------------------------------------------------------------------ */
/* vduse_uapi: the ioctls and their errors                             */
/* ------------------------------------------------------------------ */

FIXTURE(vduse_uapi)
{
	int ctl;
	int dev;
	char name[64];
	char path[128];
	bool created;
};

FIXTURE_SETUP(vduse_uapi)
{
	uint64_t v = VDUSE_API_VERSION;

	self->ctl = self->dev = -1;
	self->created = false;
	if (access(CONTROL, F_OK))
		SKIP(return, "no " CONTROL " (CONFIG_VDPA_USER: VDUSE)");
	self->ctl = open(CONTROL, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->ctl)
		TH_LOG("open " CONTROL ": %s", strerror(errno));
	ASSERT_EQ(0, ioctl(self->ctl, VDUSE_SET_API_VERSION, &v));
	dev_name(self->name, sizeof(self->name), "u");
	snprintf(self->path, sizeof(self->path), "/dev/vduse/%s", self->name);
}

FIXTURE_TEARDOWN(vduse_uapi)
{
	if (self->dev >= 0)
		close(self->dev);
	if (self->created)
		EXPECT_EQ(0, destroy_dev(self->ctl, self->name));
	if (self->ctl >= 0)
		close(self->ctl);
}

/*
 * vduse_ioctl(): GET reports the version set; SET refuses one above the
 * kernel's highest, which GET reports on a fresh fd (it may be newer than
 * our headers' VDUSE_API_VERSION: mainline has VDUSE_API_VERSION_1).
 */
TEST_F(vduse_uapi, api_version)
{
	uint64_t v = ~0ull, max = ~0ull;
	int fd;

	ASSERT_EQ(0, ioctl(self->ctl, VDUSE_GET_API_VERSION, &v));
	EXPECT_EQ(VDUSE_API_VERSION, v);
	fd = open(CONTROL, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, VDUSE_GET_API_VERSION, &max));
	EXPECT_LE(VDUSE_API_VERSION, max);
	v = max + 1;
	EXPECT_EQ(-1, ioctl(fd, VDUSE_SET_API_VERSION, &v));
	EXPECT_EQ(EINVAL, errno);
	close(fd);
	v = max + 1;
	EXPECT_EQ(-1, ioctl(self->ctl, VDUSE_SET_API_VERSION, &v));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, ioctl(self->ctl, VDUSE_GET_API_VERSION, &v));
	EXPECT_EQ(VDUSE_API_VERSION, v);
	/* an unknown control ioctl: vduse_ioctl()'s default case */
	EXPECT_EQ(-1, ioctl(self->ctl, _IO(VDUSE_BASE, 0x7f)));
	EXPECT_EQ(EINVAL, errno);
}

/*
 * CREATE_DEV that must be refused: 0 or -errno as create_dev().  A device
 * the kernel wrongly creates is destroyed again at once (the next refusal
 * is then judged on its own, not answered EEXIST); if it cannot be, the
 * teardown tries again.
 */
static int create_bad(FIXTURE_DATA(vduse_uapi) *self, const char *name,
		      uint32_t device_id, uint64_t features, uint32_t vq_num,
		      uint32_t vq_align, uint32_t config_size)
{
	int ret = create_dev(self->ctl, name, device_id, features, vq_num,
			     vq_align, config_size);

	if (ret == 0 && destroy_dev(self->ctl, name) &&
	    !strcmp(name, self->name))
		self->created = true;
	return ret;
}

/*
 * vduse_validate_config() and features_is_valid() refuse with EINVAL;
 * vduse_create_dev() refuses an existing name with EEXIST.
 */
TEST_F(vduse_uapi, create_refused)
{
	const char *n = self->name;
	const uint64_t f = BLK_FEATURES;
	const uint32_t csz = sizeof(struct virtio_blk_config);
	FIXTURE_DATA(vduse_uapi) *c = self; /* (short: the lines below) */

	/* only virtio-blk and virtio-net (allowed_device_id[]) */
	EXPECT_EQ(-EINVAL,
		  create_bad(c, n, VIRTIO_ID_CONSOLE, f, 1, 4096, csz));
	EXPECT_EQ(-EINVAL, create_bad(c, n, VIRTIO_ID_SCSI, f, 1, 4096, csz));
	/* VIRTIO_F_ACCESS_PLATFORM is required */
	EXPECT_EQ(-EINVAL, create_bad(c, n, VIRTIO_ID_BLOCK,
				      f & ~BIT(VIRTIO_F_ACCESS_PLATFORM), 1,
				      4096, csz));
	/* a writable config space (CONFIG_WCE) is not supported */
	EXPECT_EQ(-EINVAL, create_bad(c, n, VIRTIO_ID_BLOCK,
				      f | BIT(VIRTIO_BLK_F_CONFIG_WCE), 1,
				      4096, csz));
	/* vq_align: a power of two in [VRING_USED_ALIGN_SIZE, PAGE_SIZE] */
	EXPECT_EQ(-EINVAL, create_bad(c, n, VIRTIO_ID_BLOCK, f, 1, 0, csz));
	EXPECT_EQ(-EINVAL, create_bad(c, n, VIRTIO_ID_BLOCK, f, 1, 3, csz));
	EXPECT_EQ(-EINVAL, create_bad(c, n, VIRTIO_ID_BLOCK, f, 1, 4095, csz));
	EXPECT_EQ(-EINVAL, create_bad(c, n, VIRTIO_ID_BLOCK, f, 1, 2, csz));
	EXPECT_EQ(-EINVAL,
		  create_bad(c, n, VIRTIO_ID_BLOCK, f, 1,
			     2 * (uint32_t)sysconf(_SC_PAGESIZE), csz));
	/* config space at most a page */
	EXPECT_EQ(-EINVAL,
		  create_bad(c, n, VIRTIO_ID_BLOCK, f, 1, 4096,
			     (uint32_t)sysconf(_SC_PAGESIZE) + 1));
	/* at most 0xffff queues; a name */
	EXPECT_EQ(-EINVAL, create_bad(c, n, VIRTIO_ID_BLOCK, f, 0x10000, 4096,
				      csz));
	EXPECT_EQ(-EINVAL, create_bad(c, "", VIRTIO_ID_BLOCK, f, 1, 4096, csz));
	/* nothing was created */
	EXPECT_NE(0, access(self->path, F_OK));

	ASSERT_EQ(0, create_dev(self->ctl, n, VIRTIO_ID_BLOCK, f, 1, 4096,
				csz));
	self->created = true;
	/* (the one created is the teardown's: this must not destroy it) */
	EXPECT_EQ(-EEXIST, create_dev(self->ctl, n, VIRTIO_ID_BLOCK, f, 1,
				      4096, csz));
}

/* the node comes and goes with CREATE_DEV / DESTROY_DEV */
TEST_F(vduse_uapi, create_destroy)
{
	const uint32_t csz = sizeof(struct virtio_blk_config);

	ASSERT_EQ(0, create_dev(self->ctl, self->name, VIRTIO_ID_BLOCK,
				BLK_FEATURES, 1, 4096, csz));
	self->created = true;
	ASSERT_TRUE(wait_path(self->path, true, 5000));
	self->dev = open(self->path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->dev);
	/* vduse_dev_open(): one opener at a time */
	EXPECT_EQ(-1, open(self->path, O_RDWR | O_CLOEXEC));
	EXPECT_EQ(EBUSY, errno);
	/* vduse_destroy_dev(): not while the device is open */
	EXPECT_EQ(-EBUSY, destroy_dev(self->ctl, self->name));
	close(self->dev);
	self->dev = -1;
	ASSERT_EQ(0, destroy_dev(self->ctl, self->name));
	self->created = false;
	EXPECT_TRUE(wait_path(self->path, false, 5000));
	/* ... and an unknown name is EINVAL */
	EXPECT_EQ(-EINVAL, destroy_dev(self->ctl, self->name));
}

/* the device node's ioctls before any vdpa device exists */
TEST_F(vduse_uapi, dev_ioctls)
{
	const uint32_t csz = sizeof(struct virtio_blk_config);
	struct vduse_vq_config vc;
	struct vduse_vq_info info;
	struct vduse_vq_eventfd ev;
	struct vduse_iotlb_entry e;
	/* a header and 16 bytes of config (uint32_t: its alignment) */
	uint32_t cdbuf[(sizeof(struct vduse_config_data) + 16) / 4];
	struct vduse_config_data *cd = (struct vduse_config_data *)cdbuf;
	struct vduse_dev_request req;
	struct vduse_dev_response resp;
	uint64_t feat = ~0ull;
	uint32_t idx;
	int efd, fl;

	ASSERT_EQ(0, create_dev(self->ctl, self->name, VIRTIO_ID_BLOCK,
				BLK_FEATURES, 2, 4096, csz));
	self->created = true;
	ASSERT_TRUE(wait_path(self->path, true, 5000));
	self->dev = open(self->path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->dev);

	/* VQ_SETUP: index < vq_num and zero reserved words */
	memset(&vc, 0, sizeof(vc));
	vc.index = 2;
	vc.max_size = VQ_MAX;
	EXPECT_EQ(-1, ioctl(self->dev, VDUSE_VQ_SETUP, &vc));
	EXPECT_EQ(EINVAL, errno);
	vc.index = 0;
	vc.reserved[3] = 1;
	EXPECT_EQ(-1, ioctl(self->dev, VDUSE_VQ_SETUP, &vc));
	EXPECT_EQ(EINVAL, errno);
	vc.reserved[3] = 0;
	EXPECT_EQ(0, ioctl(self->dev, VDUSE_VQ_SETUP, &vc));

	/* VQ_GET_INFO: nothing set by a driver yet; index checked */
	memset(&info, 0xff, sizeof(info));
	info.index = 0;
	ASSERT_EQ(0, ioctl(self->dev, VDUSE_VQ_GET_INFO, &info));
	EXPECT_EQ(0, info.index);
	EXPECT_EQ(0, info.num);
	EXPECT_EQ(0, info.desc_addr);
	EXPECT_EQ(0, info.driver_addr);
	EXPECT_EQ(0, info.device_addr);
	EXPECT_EQ(0, info.split.avail_index);
	EXPECT_EQ(0, info.ready);
	info.index = 2;
	EXPECT_EQ(-1, ioctl(self->dev, VDUSE_VQ_GET_INFO, &info));
	EXPECT_EQ(EINVAL, errno);

	/* VQ_SETUP_KICKFD (vduse_kickfd_setup()) */
	efd = st_eventfd();
	ASSERT_LE(0, efd);
	ev.index = 0;
	ev.fd = efd;
	EXPECT_EQ(0, ioctl(self->dev, VDUSE_VQ_SETUP_KICKFD, &ev));
	ev.index = 2;
	EXPECT_EQ(-1, ioctl(self->dev, VDUSE_VQ_SETUP_KICKFD, &ev));
	EXPECT_EQ(EINVAL, errno);
	/* not an eventfd: eventfd_ctx_fdget() says EINVAL */
	ev.index = 0;
	ev.fd = self->ctl;
	EXPECT_EQ(-1, ioctl(self->dev, VDUSE_VQ_SETUP_KICKFD, &ev));
	EXPECT_EQ(EINVAL, errno);
	ev.fd = VDUSE_EVENTFD_DEASSIGN;
	EXPECT_EQ(0, ioctl(self->dev, VDUSE_VQ_SETUP_KICKFD, &ev));
	close(efd);

	/* DEV_SET_CONFIG: offset <= size, 0 < length <= size - offset */
	memset(cdbuf, 0, sizeof(cdbuf));
	memset(cd->buffer, 0x5a, 16);
	cd->offset = 0;
	cd->length = 8;
	EXPECT_EQ(0, ioctl(self->dev, VDUSE_DEV_SET_CONFIG, cd));
	cd->offset = csz - 8;
	EXPECT_EQ(0, ioctl(self->dev, VDUSE_DEV_SET_CONFIG, cd));
	cd->offset = csz - 7;
	EXPECT_EQ(-1, ioctl(self->dev, VDUSE_DEV_SET_CONFIG, cd));
	EXPECT_EQ(EINVAL, errno);
	cd->offset = csz + 1;
	cd->length = 1;
	EXPECT_EQ(-1, ioctl(self->dev, VDUSE_DEV_SET_CONFIG, cd));
	EXPECT_EQ(EINVAL, errno);
	cd->offset = 0;
	cd->length = 0;
	EXPECT_EQ(-1, ioctl(self->dev, VDUSE_DEV_SET_CONFIG, cd));
	EXPECT_EQ(EINVAL, errno);
	/* offset + length wrapping around */
	cd->offset = 8;
	cd->length = 0xfffffffc;
	EXPECT_EQ(-1, ioctl(self->dev, VDUSE_DEV_SET_CONFIG, cd));
	EXPECT_EQ(EINVAL, errno);

	/* IOTLB_GET_FD: start > last, and no IOVA domain before vdpa add */
	memset(&e, 0, sizeof(e));
	e.start = 0x2000;
	e.last = 0x1000;
	EXPECT_EQ(-1, ioctl(self->dev, VDUSE_IOTLB_GET_FD, &e));
	EXPECT_EQ(EINVAL, errno);
	e.start = 0;
	e.last = 0xfff;
	EXPECT_EQ(-1, ioctl(self->dev, VDUSE_IOTLB_GET_FD, &e));
	EXPECT_EQ(EINVAL, errno);

	/* VQ_INJECT_IRQ: index checked; refused before DRIVER_OK */
	idx = 2;
	EXPECT_EQ(-1, ioctl(self->dev, VDUSE_VQ_INJECT_IRQ, &idx));
	EXPECT_EQ(EINVAL, errno);
	idx = 0;
	EXPECT_EQ(-1, ioctl(self->dev, VDUSE_VQ_INJECT_IRQ, &idx));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->dev, VDUSE_DEV_INJECT_CONFIG_IRQ));
	EXPECT_EQ(EINVAL, errno);

	/* DEV_GET_FEATURES mirrors the driver's: none yet */
	ASSERT_EQ(0, ioctl(self->dev, VDUSE_DEV_GET_FEATURES, &feat));
	EXPECT_EQ(0, feat);

	/* no request pending: a non-blocking read says EAGAIN */
	fl = fcntl(self->dev, F_GETFL);
	ASSERT_EQ(0, fcntl(self->dev, F_SETFL, fl | O_NONBLOCK));
	EXPECT_EQ(-1, read(self->dev, &req, sizeof(req)));
	EXPECT_EQ(EAGAIN, errno);
	/* too short a read (vduse_dev_read_iter()) */
	EXPECT_EQ(-1, read(self->dev, &req, sizeof(req) - 1));
	EXPECT_EQ(EINVAL, errno);
	/* an answer to no request (vduse_dev_write_iter()) */
	memset(&resp, 0, sizeof(resp));
	resp.request_id = 12345;
	EXPECT_EQ(-1, write(self->dev, &resp, sizeof(resp)));
	EXPECT_EQ(ENOENT, errno);
	resp.reserved[0] = 1;
	EXPECT_EQ(-1, write(self->dev, &resp, sizeof(resp)));
	EXPECT_EQ(EINVAL, errno);
}

/* ------------------------------------------------------------------ */
/* vduse_blk: the device side, served from a thread                    */
/* ------------------------------------------------------------------ */

struct map {
	uint64_t start, last;
	uint8_t *va;
	uint8_t perm;
};

struct blkdev {
	int dev;		/* /dev/vduse/NAME */
	int kick;		/* eventfd given to VQ_SETUP_KICKFD */
	int stop;		/* eventfd: ends the thread */
	pthread_t thread;
	bool running;
	uint8_t *disk;
	struct map maps[NMAPS];
	unsigned int nmaps;
	/* the virtqueue, once the driver set DRIVER_OK */
	bool vq_ok;
	uint32_t num;
	uint64_t desc_addr, avail_addr, used_addr;
	uint16_t last_avail, used_idx;
	uint8_t status;
	/* what the thread saw (read by the test once it quit or settled) */
	atomic_uint n_in, n_out, n_flush, n_getid, n_bad, n_reset, n_iotlb;
	atomic_uint n_driver_ok;
	char err[160];
	atomic_bool failed;
};

static void bd_fail(struct blkdev *b, const char *fmt, ...)
{
	va_list ap;

	if (atomic_exchange(&b->failed, true))
		return;
	va_start(ap, fmt);
	vsnprintf(b->err, sizeof(b->err), fmt, ap);
	va_end(ap);
}

static void bd_drop_maps(struct blkdev *b, uint64_t start, uint64_t last)
{
	unsigned int i = 0;

	while (i < b->nmaps) {
		struct map *m = &b->maps[i];

		if (m->last < start || m->start > last) {
			i++;
			continue;
		}
		munmap(m->va, m->last - m->start + 1);
		*m = b->maps[--b->nmaps];
	}
}

/*
 * The host address of [iova, iova + len), all inside one IOTLB entry the
 * driver granted with the access wanted; NULL otherwise.  Entries come
 * from IOTLB_GET_FD and are mmap()ed once, until UPDATE_IOTLB or reset.
 * (A bounce page the kernel has not allocated faults with SIGBUS,
 * vduse_domain_mmap_fault(): the driver here is the kernel's virtio_blk,
 * which only hands out addresses it mapped.)
 */
static void *bd_iova(struct blkdev *b, uint64_t iova, uint64_t len, bool wr)
{
	uint8_t need = wr ? VDUSE_ACCESS_WO : VDUSE_ACCESS_RO;
	struct vduse_iotlb_entry e;
	uint64_t last, size;
	unsigned int i;
	int prot = 0, fd;
	void *va;

	if (!len || iova + len - 1 < iova)
		return NULL;
	last = iova + len - 1;
	for (i = 0; i < b->nmaps; i++) {
		struct map *m = &b->maps[i];

		if (iova >= m->start && iova <= m->last) {
			if (last > m->last || (m->perm & need) != need)
				return NULL;
			return m->va + (iova - m->start);
		}
	}
	memset(&e, 0, sizeof(e));
	e.start = iova;
	e.last = iova;
	fd = ioctl(b->dev, VDUSE_IOTLB_GET_FD, &e);
	if (fd < 0)
		return NULL;
	/* the kernel's answer is checked too */
	if (e.start > iova || e.last < iova || e.last - e.start >= MAP_MAX ||
	    !(e.perm & VDUSE_ACCESS_RW) || (e.perm & ~VDUSE_ACCESS_RW)) {
		close(fd);
		return NULL;
	}
	size = e.last - e.start + 1;
	if (e.perm & VDUSE_ACCESS_RO)
		prot |= PROT_READ;
	if (e.perm & VDUSE_ACCESS_WO)
		prot |= PROT_WRITE | PROT_READ;
	va = mmap(NULL, size, prot, MAP_SHARED, fd, (off_t)e.offset);
	close(fd);
	if (va == MAP_FAILED)
		return NULL;
	if (b->nmaps == NMAPS)
		bd_drop_maps(b, b->maps[0].start, b->maps[0].last);
	b->maps[b->nmaps++] = (struct map){ e.start, e.last, va, e.perm };
	if (last > e.last || (e.perm & need) != need)
		return NULL;
	return (uint8_t *)va + (iova - e.start);
}

static void bd_vq_reset(struct blkdev *b)
{
	b->vq_ok = false;
	b->num = 0;
	b->last_avail = b->used_idx = 0;
	bd_drop_maps(b, 0, ~0ull);
}

/* The queue as the driver set it up, at DRIVER_OK. */
static void bd_vq_start(struct blkdev *b)
{
	struct vduse_vq_info info = { .index = 0 };
	struct vduse_vq_eventfd ev = { .index = 0, .fd = b->kick };

	if (ioctl(b->dev, VDUSE_VQ_GET_INFO, &info)) {
		bd_fail(b, "VQ_GET_INFO: %s", strerror(errno));
		return;
	}
	/* virtio 1.2 2.7: a split queue's size is a power of 2 <= 32768 */
	if (!info.ready || !info.num || info.num > VQ_MAX ||
	    (info.num & (info.num - 1))) {
		bd_fail(b, "queue at DRIVER_OK: ready %u num %u", info.ready,
			info.num);
		return;
	}
	b->num = info.num;
	b->desc_addr = info.desc_addr;
	b->avail_addr = info.driver_addr;
	b->used_addr = info.device_addr;
	b->last_avail = b->used_idx = info.split.avail_index;
	/* vduse_dev_reset() dropped the kick eventfd: hand it again */
	if (ioctl(b->dev, VDUSE_VQ_SETUP_KICKFD, &ev)) {
		bd_fail(b, "VQ_SETUP_KICKFD: %s", strerror(errno));
		return;
	}
	b->vq_ok = true;
}

struct seg {
	uint8_t *p;
	uint32_t len;
};

/* Copy len bytes at offset off of the segments' bytes to/from buf. */
static void segs_copy(struct seg *s, unsigned int n, uint64_t off,
		      uint8_t *buf, uint64_t len, bool to_segs)
{
	unsigned int i;

	for (i = 0; i < n && len; i++) {
		uint64_t c;

		if (off >= s[i].len) {
			off -= s[i].len;
			continue;
		}
		c = s[i].len - off;
		if (c > len)
			c = len;
		if (to_segs)
			memcpy(s[i].p + off, buf, c);
		else
			memcpy(buf, s[i].p + off, c);
		buf += c;
		len -= c;
		off = 0;
	}
}

/*
 * One request chain from head: its bytes written to the device-writable
 * part, or -1 for a chain the device refuses (it is still returned, with
 * nothing written: virtio 1.2 2.7.4).
 */
static int bd_request(struct blkdev *b, const struct vring_desc *desc,
		      uint16_t head)
{
	struct seg rd[SEG_MAX], wr[SEG_MAX];
	unsigned int nrd = 0, nwr = 0, i;
	uint64_t rlen = 0, wlen = 0, sector, off, len;
	struct virtio_blk_outhdr h;
	uint16_t idx = head;
	uint8_t st = VIRTIO_BLK_S_OK;
	char id[VIRTIO_BLK_ID_BYTES];

	for (i = 0;; i++) {
		struct vring_desc d;
		bool w;
		void *p;

		/* a chain is at most the ring size long (loops end) */
		if (i >= b->num || idx >= b->num)
			return -1;
		memcpy(&d, &desc[idx], sizeof(d));
		w = le16toh(d.flags) & VRING_DESC_F_WRITE;
		/* INDIRECT was not offered */
		if (le16toh(d.flags) & VRING_DESC_F_INDIRECT)
			return -1;
		p = bd_iova(b, le64toh(d.addr), le32toh(d.len), w);
		if (!p)
			return -1;
		if (w) {
			if (nwr == SEG_MAX)
				return -1;
			wr[nwr++] = (struct seg){ p, le32toh(d.len) };
			wlen += le32toh(d.len);
		} else {
			/* readable before writable (virtio 1.2 2.7.4.2) */
			if (nwr || nrd == SEG_MAX)
				return -1;
			rd[nrd++] = (struct seg){ p, le32toh(d.len) };
			rlen += le32toh(d.len);
		}
		if (!(le16toh(d.flags) & VRING_DESC_F_NEXT))
			break;
		idx = le16toh(d.next);
	}
	/* a header to read, a status byte to write (virtio 1.2 5.2.6) */
	if (rlen < sizeof(h) || wlen < 1)
		return -1;
	segs_copy(rd, nrd, 0, (uint8_t *)&h, sizeof(h), false);
	sector = le64toh(h.sector);
	switch (le32toh(h.type)) {
	case VIRTIO_BLK_T_IN:
		len = wlen - 1;
		off = sector * SECTOR;
		if (len % SECTOR || sector > DISK_SIZE / SECTOR ||
		    len > DISK_SIZE - off) {
			st = VIRTIO_BLK_S_IOERR;
			len = 0;
			break;
		}
		segs_copy(wr, nwr, 0, b->disk + off, len, true);
		atomic_fetch_add(&b->n_in, 1);
		break;
	case VIRTIO_BLK_T_OUT:
		len = rlen - sizeof(h);
		off = sector * SECTOR;
		if (len % SECTOR || sector > DISK_SIZE / SECTOR ||
		    len > DISK_SIZE - off) {
			st = VIRTIO_BLK_S_IOERR;
		} else {
			segs_copy(rd, nrd, sizeof(h), b->disk + off, len,
				  false);
			atomic_fetch_add(&b->n_out, 1);
		}
		len = 0;
		break;
	case VIRTIO_BLK_T_FLUSH:
		/* RAM: nothing to make durable */
		atomic_fetch_add(&b->n_flush, 1);
		len = 0;
		break;
	case VIRTIO_BLK_T_GET_ID:
		memset(id, 0, sizeof(id));
		memcpy(id, BLK_ID, sizeof(BLK_ID) - 1);
		len = wlen - 1 < sizeof(id) ? wlen - 1 : sizeof(id);
		segs_copy(wr, nwr, 0, (uint8_t *)id, len, true);
		atomic_fetch_add(&b->n_getid, 1);
		break;
	default:
		st = VIRTIO_BLK_S_UNSUPP;
		len = 0;
		break;
	}
	segs_copy(wr, nwr, wlen - 1, &st, 1, true);
	return (int)(len + 1);
}

/* Serve the available ring; inject one interrupt if anything was used. */
static void bd_serve(struct blkdev *b)
{
	const struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t aidx, n = 0;
	uint32_t q = 0;

	if (!b->vq_ok)
		return;
	desc = bd_iova(b, b->desc_addr, 16ull * b->num, false);
	avail = bd_iova(b, b->avail_addr, 6 + 2ull * b->num, false);
	used = bd_iova(b, b->used_addr, 6 + 8ull * b->num, true);
	if (!desc || !avail || !used) {
		bd_fail(b, "ring addresses not in the IOTLB");
		b->vq_ok = false;
		return;
	}
	aidx = le16toh(__atomic_load_n(&avail->idx, __ATOMIC_ACQUIRE));
	/* more than a ring's worth new: the driver is broken (2.7.13.3) */
	if ((uint16_t)(aidx - b->last_avail) > b->num) {
		bd_fail(b, "avail idx %u, last %u, num %u", aidx,
			b->last_avail, b->num);
		b->vq_ok = false;
		return;
	}
	while (b->last_avail != aidx) {
		uint16_t head = le16toh(avail->ring[b->last_avail % b->num]);
		struct vring_used_elem *u = &used->ring[b->used_idx % b->num];
		int r;

		if (head >= b->num) {
			bd_fail(b, "avail head %u >= num %u", head, b->num);
			b->vq_ok = false;
			return;
		}
		r = bd_request(b, desc, head);
		if (r < 0) {
			atomic_fetch_add(&b->n_bad, 1);
			r = 0;
		}
		u->id = htole32(head);
		u->len = htole32((uint32_t)r);
		b->last_avail++;
		b->used_idx++;
		n++;
		__atomic_store_n(&used->idx, htole16(b->used_idx),
				 __ATOMIC_RELEASE);
	}
	if (n && ioctl(b->dev, VDUSE_VQ_INJECT_IRQ, &q))
		bd_fail(b, "VQ_INJECT_IRQ: %s", strerror(errno));
}

/* One control message from the kernel, answered. */
static void bd_message(struct blkdev *b)
{
	struct vduse_dev_request req;
	struct vduse_dev_response resp;
	ssize_t n;

	n = read(b->dev, &req, sizeof(req));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n != (ssize_t)sizeof(req)) {
		bd_fail(b, "read request: %zd (%s)", n, strerror(errno));
		return;
	}
	memset(&resp, 0, sizeof(resp));
	resp.request_id = req.request_id;
	resp.result = VDUSE_REQ_RESULT_OK;
	switch (req.type) {
	case VDUSE_SET_STATUS:
		b->status = req.s.status;
		if (!b->status) {
			atomic_fetch_add(&b->n_reset, 1);
			bd_vq_reset(b);
		}
		break;
	case VDUSE_GET_VQ_STATE:
		if (req.vq_state.index != 0) {
			resp.result = VDUSE_REQ_RESULT_FAILED;
			break;
		}
		resp.vq_state.index = 0;
		resp.vq_state.split.avail_index = b->last_avail;
		break;
	case VDUSE_UPDATE_IOTLB:
		if (req.iova.start > req.iova.last) {
			resp.result = VDUSE_REQ_RESULT_FAILED;
			break;
		}
		atomic_fetch_add(&b->n_iotlb, 1);
		bd_drop_maps(b, req.iova.start, req.iova.last);
		break;
	default:
		resp.result = VDUSE_REQ_RESULT_FAILED;
		break;
	}
	if (write(b->dev, &resp, sizeof(resp)) != (ssize_t)sizeof(resp))
		bd_fail(b, "write response: %s", strerror(errno));
	/*
	 * vduse_vdpa_set_status() stores the status after this answer, and
	 * the queue's ready/addresses were set before DRIVER_OK: read them.
	 */
	if (req.type == VDUSE_SET_STATUS &&
	    (b->status & VIRTIO_CONFIG_S_DRIVER_OK) && !b->vq_ok &&
	    !atomic_load(&b->failed)) {
		bd_vq_start(b);
		if (b->vq_ok)
			atomic_fetch_add(&b->n_driver_ok, 1);
	}
}

static void *bd_thread(void *arg)
{
	struct blkdev *b = arg;

	for (;;) {
		struct pollfd p[3] = {
			{ .fd = b->dev, .events = POLLIN },
			{ .fd = b->kick, .events = POLLIN },
			{ .fd = b->stop, .events = POLLIN },
		};
		int r = poll(p, 3, 200);

		if (r < 0 && errno != EINTR) {
			bd_fail(b, "poll: %s", strerror(errno));
			break;
		}
		if (p[2].revents)
			break;
		if (p[0].revents & POLLERR) {
			bd_fail(b, "device broken (a request timed out?)");
			break;
		}
		if (p[0].revents & POLLIN)
			bd_message(b);
		if (p[1].revents & POLLIN) {
			st_eventfd_drain(b->kick);
			bd_serve(b);
		}
	}
	bd_drop_maps(b, 0, ~0ull);
	return NULL;
}

/* ------------------------------------------------------------------ */

FIXTURE(vduse_blk)
{
	int ctl;
	char name[64];
	char path[128];
	bool created;
	struct vh_ctx *ctx;
	struct vh_vdpa_mgmt *mgmt;
	bool added;
	char autoprobe[8];
	struct blkdev b;
};

/* Load virtio_vdpa if it is not (main() tried already; it is cheap). */
static bool have_virtio_vdpa(void)
{
	st_need_module("virtio_vdpa");
	return access(VIRTIO_VDPA, F_OK) == 0;
}

FIXTURE_SETUP(vduse_blk)
{
	uint64_t v = VDUSE_API_VERSION;
	int ret;

	memset(&self->b, 0, sizeof(self->b));
	self->ctl = self->b.dev = self->b.kick = self->b.stop = -1;
	self->created = self->added = false;
	self->ctx = NULL;
	self->mgmt = NULL;
	self->autoprobe[0] = '\0';
	if (access(CONTROL, F_OK))
		SKIP(return, "no " CONTROL " (CONFIG_VDPA_USER: VDUSE)");
	if (!have_virtio_vdpa())
		SKIP(return, "no " VIRTIO_VDPA
		     " and modprobe virtio_vdpa failed (CONFIG_VIRTIO_VDPA)");

	self->b.disk = mmap(NULL, DISK_SIZE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->b.disk);
	self->b.kick = st_eventfd();
	self->b.stop = st_eventfd();
	ASSERT_LE(0, self->b.kick);
	ASSERT_LE(0, self->b.stop);

	ASSERT_EQ(0, vh_ctx_new(&self->ctx));
	if (!getenv("LIBVHOST_LOG"))
		vh_ctx_set_log_priority(self->ctx, 3);
	ret = vh_vdpa_mgmt_new(self->ctx, &self->mgmt);
	ASSERT_EQ(0, ret)
		TH_LOG("vdpa netlink family: %s", strerror(-ret));

	self->ctl = open(CONTROL, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->ctl);
	ASSERT_EQ(0, ioctl(self->ctl, VDUSE_SET_API_VERSION, &v));
	dev_name(self->name, sizeof(self->name), "b");
	snprintf(self->path, sizeof(self->path), "/dev/vduse/%s", self->name);
	ASSERT_EQ(0, create_dev(self->ctl, self->name, VIRTIO_ID_BLOCK,
				BLK_FEATURES, 1, 4096,
				sizeof(struct virtio_blk_config)));
	self->created = true;
	/*
	 * From here a failed setup must destroy the device itself: the
	 * harness runs the teardown only after a setup that completed.
	 */
	if (wait_path(self->path, true, 5000))
		self->b.dev = open(self->path,
				   O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (self->b.dev < 0) {
		int e = errno;

		EXPECT_EQ(0, destroy_dev_wait(self->ctl, self->name));
		self->created = false;
		ASSERT_LE(0, self->b.dev)
			TH_LOG("%s: %s", self->path,
			       access(self->path, F_OK) ? "never appeared" :
							  strerror(e));
	}
}

static void vdpa_del(struct __test_metadata *_metadata,
		     FIXTURE_DATA(vduse_blk) *self)
{
	char p[160];

	if (!self->added)
		return;
	EXPECT_EQ(0, vh_vdpa_mgmt_dev_del(self->mgmt, self->name));
	self->added = false;
	snprintf(p, sizeof(p), "/sys/bus/vdpa/devices/%s", self->name);
	EXPECT_TRUE(wait_path(p, false, 5000));
}

static void thread_stop(FIXTURE_DATA(vduse_blk) *self)
{
	uint64_t one = 1;

	if (!self->b.running)
		return;
	if (write(self->b.stop, &one, sizeof(one)) != sizeof(one))
		return;
	pthread_join(self->b.thread, NULL);
	self->b.running = false;
}

FIXTURE_TEARDOWN(vduse_blk)
{
	if (self->autoprobe[0])
		st_write_file(AUTOPROBE, self->autoprobe);
	/* the thread answers the resets vdpa dev del sends */
	vdpa_del(_metadata, self);
	thread_stop(self);
	if (self->b.dev >= 0)
		close(self->b.dev);
	if (self->created) {
		EXPECT_EQ(0, destroy_dev_wait(self->ctl, self->name));
		EXPECT_TRUE(wait_path(self->path, false, 5000));
	}
	if (self->ctl >= 0)
		close(self->ctl);
	vh_vdpa_mgmt_unref(self->mgmt);
	vh_ctx_unref(self->ctx);
	if (self->b.kick >= 0)
		close(self->b.kick);
	if (self->b.stop >= 0)
		close(self->b.stop);
	if (self->b.disk && self->b.disk != MAP_FAILED)
		munmap(self->b.disk, DISK_SIZE);
}

/* The library's log, off around a request expected to fail. */
static void quiet(FIXTURE_DATA(vduse_blk) *self, bool on)
{
	if (!getenv("LIBVHOST_LOG"))
		vh_ctx_set_log_priority(self->ctx, on ? 0 : 3);
}

/* /dev/vdX of the virtio device virtio_vdpa made of our vdpa device. */
static bool find_disk(const char *name, char *dev, size_t size, int ms)
{
	char pat[192];
	glob_t gl;

	snprintf(pat, sizeof(pat), "/sys/bus/vdpa/devices/%s/virtio*/block/vd*",
		 name);
	for (; ms > 0; ms -= 20) {
		if (glob(pat, 0, NULL, &gl) == 0) {
			const char *s = strrchr(gl.gl_pathv[0], '/') + 1;

			snprintf(dev, size, "/dev/%s", s);
			globfree(&gl);
			if (access(dev, F_OK) == 0)
				return true;
		}
		usleep(20000);
	}
	return false;
}

TEST_F_TIMEOUT(vduse_blk, virtio_blk_io, 120)
{
	struct vh_vdpa_dev_new p = { .size = sizeof(p) };
	struct vduse_vq_config vc = { .index = 0, .max_size = VQ_MAX };
	struct vduse_vq_info info = { .index = 0 };
	struct vduse_iotlb_entry e;
	const size_t len = 64 * 1024;
	const off_t off_w = 256 * 1024, off_r = 640 * 1024;
	char disk[64], sys[128], serial[64];
	uint32_t cdbuf[(sizeof(struct vduse_config_data) + 8) / 4];
	struct vduse_config_data *cd = (struct vduse_config_data *)cdbuf;
	uint8_t *buf = NULL, *pat = NULL;
	const char *vd;
	uint64_t feat = 0, cap;
	int fd, ret;

	/* the capacity the driver will read, set after CREATE_DEV */
	cap = htole64(DISK_SIZE / SECTOR);
	memset(cdbuf, 0, sizeof(cdbuf));
	cd->offset = offsetof(struct virtio_blk_config, capacity);
	cd->length = sizeof(cap);
	memcpy(cd->buffer, &cap, sizeof(cap));
	ASSERT_EQ(0, ioctl(self->b.dev, VDUSE_DEV_SET_CONFIG, cd));

	/* vdpa_dev_add(): every queue needs VQ_SETUP first */
	p.name = self->name;
	p.mgmtdev = "vduse";
	quiet(self, true);
	EXPECT_EQ(-EINVAL, vh_vdpa_mgmt_dev_add(self->mgmt, &p));
	quiet(self, false);
	ASSERT_EQ(0, ioctl(self->b.dev, VDUSE_VQ_SETUP, &vc));

	ASSERT_EQ(0, pthread_create(&self->b.thread, NULL, bd_thread,
				    &self->b));
	self->b.running = true;

	/* added with autoprobe off, so that vhost_vdpa does not take it */
	ASSERT_EQ(0, st_read_file(AUTOPROBE, self->autoprobe,
			       sizeof(self->autoprobe)));
	ASSERT_EQ(0, st_write_file(AUTOPROBE, "0"));
	ret = vh_vdpa_mgmt_dev_add(self->mgmt, &p);
	ASSERT_EQ(0, ret)
		TH_LOG("vdpa dev add %s mgmtdev vduse: %s (%s)", self->name,
		       strerror(-ret), vh_vdpa_mgmt_last_error(self->mgmt));
	self->added = true;
	/* one vdpa device per VDUSE device (vduse_dev_init_vdpa()) */
	quiet(self, true);
	EXPECT_EQ(-EEXIST, vh_vdpa_mgmt_dev_add(self->mgmt, &p));
	quiet(self, false);
	/* vduse_destroy_dev(): not while the vdpa device exists */
	EXPECT_EQ(-EBUSY, destroy_dev(self->ctl, self->name));

	/* an IOVA domain now, but nothing mapped up there */
	memset(&e, 0, sizeof(e));
	e.start = 1ull << 62;
	e.last = e.start + 4095;
	EXPECT_EQ(-1, ioctl(self->b.dev, VDUSE_IOTLB_GET_FD, &e));
	EXPECT_EQ(EINVAL, errno);

	ret = st_write_file(VIRTIO_VDPA "/bind", self->name);
	EXPECT_EQ(0, st_write_file(AUTOPROBE, self->autoprobe));
	self->autoprobe[0] = '\0';
	ASSERT_EQ(0, ret)
		TH_LOG("bind to virtio_vdpa: %s", strerror(-ret));
	ASSERT_TRUE(find_disk(self->name, disk, sizeof(disk), 20000))
		TH_LOG("no /dev/vd* for %s (device thread: %s)", self->name,
		       self->b.err);
	ASSERT_FALSE(atomic_load(&self->b.failed))
		TH_LOG("device thread: %s", self->b.err);
	EXPECT_EQ(1, atomic_load(&self->b.n_driver_ok));

	/* the queue as the driver left it (the thread has read it too) */
	ASSERT_EQ(0, ioctl(self->b.dev, VDUSE_VQ_GET_INFO, &info));
	EXPECT_EQ(1, info.ready);
	EXPECT_LT(0, info.num);
	EXPECT_GE(VQ_MAX, info.num);
	EXPECT_NE(0, info.desc_addr);
	EXPECT_NE(0, info.driver_addr);
	EXPECT_NE(0, info.device_addr);
	ASSERT_EQ(0, ioctl(self->b.dev, VDUSE_DEV_GET_FEATURES, &feat));
	EXPECT_EQ(BLK_FEATURES, feat);

	/* the capacity DEV_SET_CONFIG wrote, in 512-byte sectors */
	vd = strrchr(disk, '/') + 1;
	snprintf(sys, sizeof(sys), "/sys/block/%s/size", vd);
	ASSERT_EQ(0, st_read_file(sys, serial, sizeof(serial)));
	EXPECT_EQ(DISK_SIZE / SECTOR, strtoul(serial, NULL, 10));
	/* GET_ID, through the serial attribute */
	snprintf(sys, sizeof(sys), "/sys/block/%s/serial", vd);
	ASSERT_EQ(0, st_read_file(sys, serial, sizeof(serial)));
	EXPECT_STREQ(BLK_ID, serial);
	EXPECT_LE(1, atomic_load(&self->b.n_getid));

	ASSERT_EQ(0, posix_memalign((void **)&buf, 4096, len));
	ASSERT_EQ(0, posix_memalign((void **)&pat, 4096, len));
	fd = open(disk, O_RDWR | O_DIRECT | O_CLOEXEC);
	ASSERT_LE(0, fd)
		TH_LOG("open %s: %s", disk, strerror(errno));

	/* OUT: the pattern lands in the RAM disk, FLUSH on fsync */
	st_fill(pat, len, 0xd05e);
	ASSERT_EQ((ssize_t)len, pwrite(fd, pat, len, off_w));
	ASSERT_EQ(0, fsync(fd));
	EXPECT_LE(1, atomic_load(&self->b.n_out));
	EXPECT_LE(1, atomic_load(&self->b.n_flush));
	EXPECT_EQ(0, memcmp(self->b.disk + off_w, pat, len));
	/* IN: read back what was written */
	memset(buf, 0, len);
	ASSERT_EQ((ssize_t)len, pread(fd, buf, len, off_w));
	EXPECT_EQ(0, memcmp(buf, pat, len));
	/* IN: bytes the device put there itself */
	st_fill(self->b.disk + off_r, len, 0x5eed);
	memset(buf, 0, len);
	ASSERT_EQ((ssize_t)len, pread(fd, buf, len, off_r));
	st_fill(pat, len, 0x5eed);
	EXPECT_EQ(0, memcmp(buf, pat, len));
	/* the last sector, and nothing past the end */
	ASSERT_EQ(512, pwrite(fd, pat, 512, DISK_SIZE - 512));
	EXPECT_EQ(0, memcmp(self->b.disk + DISK_SIZE - 512, pat, 512));
	EXPECT_EQ(0, pread(fd, buf, 512, DISK_SIZE));
	close(fd);
	free(buf);
	free(pat);

	EXPECT_LE(1, atomic_load(&self->b.n_in));
	EXPECT_EQ(0, atomic_load(&self->b.n_bad));
	EXPECT_FALSE(atomic_load(&self->b.failed))
		TH_LOG("device thread: %s", self->b.err);

	/* vdpa dev del: virtio_blk goes away, the device is reset */
	vdpa_del(_metadata, self);
	EXPECT_LE(1, atomic_load(&self->b.n_reset));
	thread_stop(self);
	EXPECT_FALSE(atomic_load(&self->b.failed))
		TH_LOG("device thread: %s", self->b.err);
	close(self->b.dev);
	self->b.dev = -1;
	ASSERT_EQ(0, destroy_dev_wait(self->ctl, self->name));
	self->created = false;
	EXPECT_TRUE(wait_path(self->path, false, 5000));
}

/*
 * No VDUSE: the whole program skips, as the others do without their
 * device, so that a run with nothing tested does not read as a pass.
 */
int main(int argc, char **argv)
{
	st_need_module("vduse");
	st_need_module("virtio_vdpa");
	/* the kernel's driver of the block device it serves (=m: no udev) */
	st_need_module("virtio_blk");
	if (access(CONTROL, F_OK))
		ksft_exit_skip("no " CONTROL " (CONFIG_VDPA_USER: VDUSE)\n");
	return test_harness_run(argc, argv);
}
