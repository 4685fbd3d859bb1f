// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost_core_test - the generic vhost control plane of /dev/vhost-net,
 * /dev/vhost-vsock and /dev/vhost-scsi through libvhost's vh_kdev:
 * ownership, features, backend features, vring and memory-table argument
 * checks (the library's and the kernel's), workers and IOTLB messages.
 *
 * A device whose node is missing is skipped, with the reason; with none of
 * them present the whole program exits KSFT_SKIP.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4(), as in a kernel tree build */
#endif
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/vhost.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_scsi.h>
#include <linux/virtio_vsock.h>

#include "kselftest_harness.h"
#include "vh_selftest.h"

#define BIT(n) (1ULL << (n))

/* What every vhost device offers (VHOST_FEATURES in drivers/vhost/vhost.h) */
#define COMMON_MUST                                                          \
	(BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_INDIRECT_DESC) |         \
	 BIT(VIRTIO_RING_F_EVENT_IDX) | BIT(VHOST_F_LOG_ALL))

FIXTURE(kdev)
{
	struct vh_ctx *ctx;
	struct vh_kdev *dev;
	struct st_guest guest;
	bool have_guest;
};

FIXTURE_VARIANT(kdev)
{
	enum vh_kdev_type type;
	const char *path;
	unsigned int virtio_id;
	unsigned int nvrings;
	uint64_t must;
	uint64_t must_backend;
};

FIXTURE_VARIANT_ADD(kdev, net)
{
	.type = VH_KDEV_NET,
	.path = "/dev/vhost-net",
	.virtio_id = VH_VIRTIO_ID_NET,
	.nvrings = 2,
	.must = COMMON_MUST | BIT(VIRTIO_NET_F_MRG_RXBUF) |
		BIT(VIRTIO_F_ACCESS_PLATFORM),
	.must_backend = BIT(VHOST_BACKEND_F_IOTLB_MSG_V2),
};

FIXTURE_VARIANT_ADD(kdev, vsock)
{
	.type = VH_KDEV_VSOCK,
	.path = "/dev/vhost-vsock",
	.virtio_id = VH_VIRTIO_ID_VSOCK,
	.nvrings = 2,
	.must = COMMON_MUST | BIT(VIRTIO_F_ACCESS_PLATFORM),
	.must_backend = BIT(VHOST_BACKEND_F_IOTLB_MSG_V2),
};

FIXTURE_VARIANT_ADD(kdev, scsi)
{
	.type = VH_KDEV_SCSI,
	.path = "/dev/vhost-scsi",
	.virtio_id = VH_VIRTIO_ID_SCSI,
	.nvrings = 0, /* the kernel's choice: probed after SET_OWNER */
	.must = COMMON_MUST | BIT(VIRTIO_SCSI_F_HOTPLUG),
	.must_backend = 0,
};

FIXTURE_SETUP(kdev)
{
	int err;

	memset(self, 0, sizeof(*self));
	ASSERT_EQ(0, vh_ctx_new(&self->ctx));
	if (access(variant->path, F_OK) != 0)
		SKIP(return, "%s missing (module %s not loaded)", variant->path,
		     vh_kdev_type_name(variant->type));
	err = vh_kdev_open_type(self->ctx, variant->type, &self->dev);
	if (err == -EACCES || err == -EPERM)
		SKIP(return, "%s: no permission (run as root)", variant->path);
	ASSERT_EQ(0, err);
}

FIXTURE_TEARDOWN(kdev)
{
	vh_kdev_unref(self->dev);
	if (self->have_guest)
		st_guest_fini(&self->guest);
	vh_ctx_unref(self->ctx);
}

static void log_features(struct __test_metadata *_metadata,
			 unsigned int id, uint64_t f)
{
	char buf[1024];

	vh_features_format(id, f, buf, sizeof(buf));
	TH_LOG("features 0x%llx: %s", (unsigned long long)f, buf);
}

TEST_F(kdev, open_identity)
{
	int fd = vh_kdev_get_fd(self->dev);
	struct vh_kdev *d2 = NULL;

	ASSERT_LE(0, fd);
	EXPECT_EQ(variant->type, vh_kdev_get_type(self->dev));
	EXPECT_EQ(variant->virtio_id, vh_kdev_get_virtio_id(self->dev));
	if (variant->nvrings)
		EXPECT_EQ(variant->nvrings, vh_kdev_get_num_vrings(self->dev));
	/* the library's fds are close-on-exec and non-blocking */
	EXPECT_TRUE(!!(fcntl(fd, F_GETFD) & FD_CLOEXEC));
	EXPECT_TRUE(!!(fcntl(fd, F_GETFL) & O_NONBLOCK));
	/* by path as well; the type comes from the node */
	ASSERT_EQ(0, vh_kdev_open(self->ctx, variant->path, &d2));
	EXPECT_EQ(variant->type, vh_kdev_get_type(d2));
	EXPECT_NE(fd, vh_kdev_get_fd(d2));
	EXPECT_EQ(NULL, vh_kdev_unref(d2));
	/* references: the fd survives until the last unref */
	EXPECT_EQ(self->dev, vh_kdev_ref(self->dev));
	EXPECT_EQ(self->dev, vh_kdev_unref(self->dev));
	EXPECT_LE(0, fcntl(fd, F_GETFD));
}

TEST_F(kdev, owner_and_features)
{
	uint64_t f = 0, words[4] = { 0 };

	ASSERT_EQ(0, vh_kdev_get_features(self->dev, &f));
	log_features(_metadata, variant->virtio_id, f);
	EXPECT_EQ(variant->must, f & variant->must);

	ASSERT_EQ(0, vh_kdev_set_owner(self->dev));
	/* vhost_dev_set_owner(): one owner per device */
	EXPECT_EQ(-EBUSY, vh_kdev_set_owner(self->dev));

	/* the array form agrees with the 64-bit form (either kernel) */
	ASSERT_EQ(0, vh_kdev_get_features_array(self->dev, words, 4));
	EXPECT_EQ(f, words[0]);

	/* acking exactly what is offered is accepted, and so is a subset */
	EXPECT_EQ(0, vh_kdev_set_features(self->dev, f));
	EXPECT_EQ(0, vh_kdev_set_features(self->dev,
					  BIT(VIRTIO_F_VERSION_1)));
	words[0] = BIT(VIRTIO_F_VERSION_1);
	words[1] = 0;
	EXPECT_EQ(0, vh_kdev_set_features_array(self->dev, words, 2));
}

TEST_F(kdev, features_not_offered)
{
	uint64_t f = 0, words[2];
	unsigned int bit;
	int err;

	ASSERT_EQ(0, vh_kdev_get_features(self->dev, &f));
	ASSERT_EQ(0, vh_kdev_set_owner(self->dev));
	/* every device rejects an unknown bit with EOPNOTSUPP */
	for (bit = 0; bit < 64; bit++) {
		if (f & BIT(bit))
			continue;
		err = vh_kdev_set_features(self->dev, f | BIT(bit));
		if (err != -EOPNOTSUPP)
			TH_LOG("bit %u: %d", bit, err);
		EXPECT_EQ(-EOPNOTSUPP, err);
	}
	/* bit 64, through the array ioctl or the library's fallback */
	words[0] = f;
	words[1] = 1;
	EXPECT_EQ(-EOPNOTSUPP, vh_kdev_set_features_array(self->dev, words, 2));
}

TEST_F(kdev, backend_features)
{
	char buf[256];
	uint64_t b = 0;
	int err;

	ASSERT_EQ(0, vh_kdev_set_owner(self->dev));
	err = vh_kdev_get_backend_features(self->dev, &b);
	if (variant->must_backend == 0) {
		/* vhost-scsi has no backend features ioctls */
		EXPECT_EQ(-ENOTTY, err);
		return;
	}
	ASSERT_EQ(0, err);
	vh_backend_features_format(b, buf, sizeof(buf));
	TH_LOG("backend features 0x%llx: %s", (unsigned long long)b, buf);
	EXPECT_EQ(variant->must_backend, b & variant->must_backend);
	EXPECT_EQ(0, vh_kdev_set_backend_features(self->dev, b));
	/* unknown bits are EOPNOTSUPP (vhost_net/vhost_vsock ioctl) */
	if (!(b & BIT(63)))
		EXPECT_EQ(-EOPNOTSUPP, vh_kdev_set_backend_features(
					       self->dev, b | BIT(63)));
}

TEST_F(kdev, not_owner)
{
	struct vh_kdev_mem_region r = { .gpa = 0, .size = 4096 };
	void *p;

	/* vhost_dev_check_owner(): everything but SET_OWNER needs it */
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	r.uaddr = (uintptr_t)p;
	EXPECT_EQ(-EPERM, vh_kdev_set_mem_regions(self->dev, &r, 1));
	EXPECT_EQ(-EPERM, vh_kdev_set_vring_num(self->dev, 0, 256));
	munmap(p, 4096);
}

TEST_F(kdev, vring_index_out_of_range)
{
	struct vhost_vring_state s = { .num = 256 };
	int fd = vh_kdev_get_fd(self->dev);
	unsigned int v, n;
	int efd;

	ASSERT_EQ(0, vh_kdev_set_owner(self->dev));
	n = vh_kdev_get_num_vrings(self->dev);
	TH_LOG("%u vrings", n);
	if (variant->nvrings)
		ASSERT_EQ(variant->nvrings, n);
	s.index = n;
	/* refused by the library with the errno the kernel would give */
	EXPECT_EQ(-ENOBUFS,
		  vh_kdev_set_vring_num(self->dev, n, 256));
	EXPECT_EQ(-ENOBUFS, vh_kdev_set_vring_base(self->dev, 1000, 0));
	EXPECT_EQ(-ENOBUFS, vh_kdev_get_vring_base(self->dev, ~0u, &v));
	efd = st_eventfd();
	ASSERT_LE(0, efd);
	EXPECT_EQ(-ENOBUFS,
		  vh_kdev_set_vring_kick(self->dev, n, efd));
	EXPECT_EQ(-ENOBUFS,
		  vh_kdev_set_vring_call(self->dev, n, efd));
	close(efd);
	/* and the kernel agrees (vhost_vring_ioctl) */
	EXPECT_EQ(-1, ioctl(fd, VHOST_SET_VRING_NUM, &s));
	EXPECT_EQ(ENOBUFS, errno);
	/* the last valid index works */
	EXPECT_EQ(0,
		  vh_kdev_set_vring_num(self->dev, n - 1, 256));
}

TEST_F(kdev, vring_num)
{
	static const unsigned int bad[] = { 0, 3, 100, 255, 32769, 65536,
					    0x80000000u };
	struct vhost_vring_state s = { .index = 0 };
	int fd = vh_kdev_get_fd(self->dev);
	unsigned int i;
	int err;

	ASSERT_EQ(0, vh_kdev_set_owner(self->dev));
	/* virtio 1.3, 2.7: a power of two up to 32768, checked before ioctl */
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = vh_kdev_set_vring_num(self->dev, 0, bad[i]);
		if (err != -EINVAL)
			TH_LOG("num %u: %d", bad[i], err);
		EXPECT_EQ(-EINVAL, err);
	}
	EXPECT_EQ(0, vh_kdev_set_vring_num(self->dev, 0, 1));
	EXPECT_EQ(0, vh_kdev_set_vring_num(self->dev, 0, 32768));
	/* the kernel refuses what it cannot handle as well */
	s.num = 3;
	EXPECT_EQ(-1, ioctl(fd, VHOST_SET_VRING_NUM, &s));
	EXPECT_EQ(EINVAL, errno);
	s.num = 0;
	EXPECT_EQ(-1, ioctl(fd, VHOST_SET_VRING_NUM, &s));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(kdev, vring_base_roundtrip)
{
	unsigned int base = 0, usec = 0;
	bool be = true;
	int err;

	ASSERT_EQ(0, vh_kdev_set_owner(self->dev));
	ASSERT_EQ(0, vh_kdev_set_vring_num(self->dev, 0, 256));
	ASSERT_EQ(0, vh_kdev_set_vring_base(self->dev, 0, 1234));
	ASSERT_EQ(0, vh_kdev_get_vring_base(self->dev, 0, &base));
	EXPECT_EQ(1234u, base);
	/* vhost_vring_ioctl(): a split ring's base is 16 bits */
	EXPECT_EQ(-EINVAL, vh_kdev_set_vring_base(self->dev, 0, 0x10000));

	ASSERT_EQ(0, vh_kdev_set_vring_busyloop_timeout(self->dev, 1, 50));
	ASSERT_EQ(0, vh_kdev_get_vring_busyloop_timeout(self->dev, 1, &usec));
	EXPECT_EQ(50u, usec);

	/* only with CONFIG_VHOST_CROSS_ENDIAN_LEGACY */
	err = vh_kdev_set_vring_endian(self->dev, 0, false);
	if (err == -ENOTTY) {
		TH_LOG("no cross-endian support in this kernel");
	} else {
		ASSERT_EQ(0, err);
		ASSERT_EQ(0, vh_kdev_get_vring_endian(self->dev, 0, &be));
		EXPECT_FALSE(be);
	}
}

TEST_F(kdev, vring_fds)
{
	int efd, closed;

	ASSERT_EQ(0, vh_kdev_set_owner(self->dev));
	efd = st_eventfd();
	ASSERT_LE(0, efd);
	EXPECT_EQ(0, vh_kdev_set_vring_kick(self->dev, 0, efd));
	EXPECT_EQ(0, vh_kdev_set_vring_call(self->dev, 0, efd));
	EXPECT_EQ(0, vh_kdev_set_vring_err(self->dev, 0, efd));
	EXPECT_EQ(0, vh_kdev_set_vring_call(self->dev, 0, -1));
	EXPECT_EQ(0, vh_kdev_set_vring_err(self->dev, 0, -1));
	EXPECT_EQ(0, vh_kdev_set_log_fd(self->dev, efd));
	EXPECT_EQ(0, vh_kdev_set_log_fd(self->dev, -1));
	/* a closed fd: the library says EBADF before the kernel would */
	closed = dup(efd);
	ASSERT_LE(0, closed);
	close(closed);
	EXPECT_EQ(-EBADF, vh_kdev_set_vring_call(self->dev, 0, closed));
	EXPECT_EQ(-EBADF, vh_kdev_set_vring_kick(self->dev, 0, -5));
	/* the kernel wants an eventfd, not any fd */
	EXPECT_EQ(-EINVAL, vh_kdev_set_vring_call(self->dev, 0,
						  vh_kdev_get_fd(self->dev)));
	close(efd);
}

/* Lay out guest memory and give the device its table. */
static void setup_memory(struct __test_metadata *_metadata,
			 FIXTURE_DATA(kdev) * self)
{
	ASSERT_EQ(0, st_guest_init(&self->guest, self->ctx, 1 << 20));
	self->have_guest = true;
	ASSERT_EQ(0, vh_kdev_set_mem_table(self->dev, self->guest.mem));
}

TEST_F(kdev, mem_table_checks)
{
	struct vh_kdev_mem_region r[2];
	void *p;

	ASSERT_EQ(0, vh_kdev_set_owner(self->dev));
	p = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	r[0] = (struct vh_kdev_mem_region){ 0, 1 << 15, (uintptr_t)p };
	r[1] = (struct vh_kdev_mem_region){ 1 << 14, 1 << 15,
					    (uintptr_t)p + (1 << 15) };
	/* overlapping guest ranges, unaligned and empty regions */
	EXPECT_EQ(-EINVAL, vh_kdev_set_mem_regions(self->dev, r, 2));
	r[1].gpa = 1 << 15;
	r[1].size = 100;
	EXPECT_EQ(-EINVAL, vh_kdev_set_mem_regions(self->dev, r, 2));
	r[1].size = 0;
	EXPECT_EQ(-EINVAL, vh_kdev_set_mem_regions(self->dev, r, 2));
	r[1].size = 1 << 15;
	r[1].gpa = ~0ULL & ~4095ULL;
	EXPECT_EQ(-EINVAL, vh_kdev_set_mem_regions(self->dev, r, 2));
	r[1].gpa = 1 << 20;
	EXPECT_EQ(0, vh_kdev_set_mem_regions(self->dev, r, 2));
	/* an empty table is valid */
	EXPECT_EQ(0, vh_kdev_set_mem_regions(self->dev, NULL, 0));
	munmap(p, 1 << 16);
}

/* vhost_set_memory(): at most max_mem_regions (module parameter) */
TEST_F(kdev, mem_table_max_regions)
{
	struct vh_kdev_mem_region *r;
	unsigned int max = 64, i;
	uint8_t *p;
	FILE *f;

	f = fopen("/sys/module/vhost/parameters/max_mem_regions", "re");
	if (f) {
		if (fscanf(f, "%u", &max) != 1)
			max = 64;
		fclose(f);
	}
	TH_LOG("max_mem_regions %u", max);
	ASSERT_LT(0u, max);
	ASSERT_GT(4096u, max); /* keep the mapping small */
	ASSERT_EQ(0, vh_kdev_set_owner(self->dev));
	p = mmap(NULL, (size_t)(max + 1) * 4096, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	r = calloc(max + 1, sizeof(*r));
	ASSERT_NE(NULL, r);
	/* one page per region, with holes between them in guest space */
	for (i = 0; i <= max; i++) {
		r[i].gpa = (uint64_t)i * 2 * 4096;
		r[i].size = 4096;
		r[i].uaddr = (uintptr_t)p + (uint64_t)i * 4096;
	}
	EXPECT_EQ(0, vh_kdev_set_mem_regions(self->dev, r, max));
	EXPECT_EQ(-E2BIG, vh_kdev_set_mem_regions(self->dev, r, max + 1));
	free(r);
	munmap(p, (size_t)(max + 1) * 4096);
}

TEST_F(kdev, vring_addr_checks)
{
	struct vh_kdev_vring_addr a;
	uint8_t *base;

	ASSERT_EQ(0, vh_kdev_set_owner(self->dev));
	setup_memory(_metadata, self);
	ASSERT_EQ(0, vh_kdev_set_vring_num(self->dev, 0, 256));
	base = self->guest.host;
	a = (struct vh_kdev_vring_addr){
		.desc = (uintptr_t)base + 0x1000,
		.avail = (uintptr_t)base + 0x2000,
		.used = (uintptr_t)base + 0x3000,
	};
	EXPECT_EQ(0, vh_kdev_set_vring_addr(self->dev, 0, &a));
	/* virtio 1.3, 2.7 alignment: the library refuses */
	a.desc += 8;
	EXPECT_EQ(-EINVAL, vh_kdev_set_vring_addr(self->dev, 0, &a));
	a.desc -= 8;
	a.used += 2;
	EXPECT_EQ(-EINVAL, vh_kdev_set_vring_addr(self->dev, 0, &a));
	a.used -= 2;
	a.avail += 1;
	EXPECT_EQ(-EINVAL, vh_kdev_set_vring_addr(self->dev, 0, &a));
	a.avail -= 1;
	/* ... and vhost_vring_set_addr() refuses misaligned avail/used too */
	{
		struct vhost_vring_addr va = {
			.index = 0,
			.desc_user_addr = a.desc,
			.avail_user_addr = a.avail + 1,
			.used_user_addr = a.used,
		};

		EXPECT_EQ(-1, ioctl(vh_kdev_get_fd(self->dev),
				    VHOST_SET_VRING_ADDR, &va));
		EXPECT_EQ(EINVAL, errno);
	}
	/* a ring running past the end of guest memory */
	a.used = (uintptr_t)base + self->guest.size - 64;
	EXPECT_EQ(-EINVAL, vh_kdev_set_vring_addr(self->dev, 0, &a));
	/* a ring outside guest memory altogether */
	a.used = (uintptr_t)&a & ~15ULL;
	EXPECT_EQ(-EINVAL, vh_kdev_set_vring_addr(self->dev, 0, &a));
}

/*
 * A ring at an address the kernel cannot access: vhost only checks it when
 * the ring is started (vhost_vq_init_access() -> EFAULT).  The library
 * would refuse the address, so it goes in through the raw ioctl.
 */
TEST_F(kdev, vring_addr_unmapped_efault)
{
	struct vhost_vring_addr va = { .index = 0 };
	struct vh_tap *tap = NULL;
	uint8_t *hole;
	unsigned int i;
	int efd, err;

	ASSERT_EQ(0, vh_kdev_set_owner(self->dev));
	ASSERT_EQ(0, vh_kdev_set_features(self->dev, BIT(VIRTIO_F_VERSION_1)));
	setup_memory(_metadata, self);
	hole = mmap(NULL, 1 << 16, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		    0);
	ASSERT_NE(MAP_FAILED, hole);
	ASSERT_EQ(0, munmap(hole, 1 << 16));
	efd = st_eventfd();
	ASSERT_LE(0, efd);
	for (i = 0; i < vh_kdev_get_num_vrings(self->dev); i++) {
		ASSERT_EQ(0, vh_kdev_set_vring_num(self->dev, i, 64));
		va.index = i;
		va.desc_user_addr = (uintptr_t)hole;
		va.avail_user_addr = (uintptr_t)hole + 0x1000;
		va.used_user_addr = (uintptr_t)hole + 0x2000;
		ASSERT_EQ(0, ioctl(vh_kdev_get_fd(self->dev),
				   VHOST_SET_VRING_ADDR, &va));
		ASSERT_EQ(0, vh_kdev_set_vring_kick(self->dev, i, efd));
	}
	if (variant->type == VH_KDEV_SCSI) {
		/*
		 * The kernel took the addresses.  vhost-scsi starts its rings
		 * at VHOST_SCSI_SET_ENDPOINT, and never says EFAULT for a
		 * hole: its check there, vhost_vq_access_ok(), is access_ok()
		 * on the ring addresses (and the memory table's), which a
		 * hole in the address space passes, and it ignores what
		 * vhost_vq_init_access() answers.  So the rings get by, and
		 * what fails is the WWPN no TPG has.
		 */
		EXPECT_EQ(-ENODEV, vh_scsi_set_endpoint(self->dev,
							"naa.5001405000000001",
							1));
	} else if (variant->type == VH_KDEV_NET) {
		err = vh_tap_new(self->ctx, NULL, &tap);
		if (err == -ENOENT || err == -ENODEV)
			SKIP(goto out, "no /dev/net/tun");
		ASSERT_EQ(0, err);
		ASSERT_EQ(0, vh_tap_set_features(tap, BIT(VIRTIO_F_VERSION_1)));
		EXPECT_EQ(-EFAULT,
			  vh_net_set_backend(self->dev, 0, vh_tap_get_fd(tap)));
		vh_tap_unref(tap);
	} else {
		EXPECT_EQ(-EFAULT, vh_vsock_set_running(self->dev, true));
	}
out:
	close(efd);
}

TEST_F(kdev, reset_owner)
{
	if (variant->type != VH_KDEV_NET) {
		/* only vhost-net implements VHOST_RESET_OWNER */
		ASSERT_EQ(0, vh_kdev_set_owner(self->dev));
		EXPECT_EQ(-ENOTTY, vh_kdev_reset_owner(self->dev));
		return;
	}
	ASSERT_EQ(0, vh_kdev_set_owner(self->dev));
	setup_memory(_metadata, self);
	ASSERT_EQ(0, vh_kdev_reset_owner(self->dev));
	/* ownership is released: it can be taken again */
	EXPECT_EQ(0, vh_kdev_set_owner(self->dev));
	EXPECT_EQ(-EBUSY, vh_kdev_set_owner(self->dev));
}

TEST_F(kdev, workers)
{
	unsigned int id = ~0u, id2 = ~0u, cur = ~0u;
	int err;

	ASSERT_EQ(0, vh_kdev_set_owner(self->dev));
	err = vh_kdev_new_worker(self->dev, &id);
	if (err == -ENOTTY) {
		/*
		 * No worker ioctls on this device: all four are then unknown
		 * alike.  vhost-net and vhost-vsock do not hand them to
		 * vhost_worker_ioctl() (up to 6.12 at least): that is their
		 * answer, and the test passes.  vhost-scsi does since Linux
		 * 6.5; before, there is nothing else to run, a SKIP
		 * (tests/expected-skips lists it for 6.1 only).
		 */
		ASSERT_EQ(-ENOTTY, vh_kdev_get_vring_worker(self->dev, 0, &cur));
		ASSERT_EQ(-ENOTTY, vh_kdev_attach_vring_worker(self->dev, 0, 0));
		ASSERT_EQ(-ENOTTY, vh_kdev_free_worker(self->dev, 0));
		if (variant->type == VH_KDEV_SCSI)
			SKIP(return, "%s: no worker ioctls (ENOTTY: before 6.5)",
			     variant->path);
		return;
	}
	ASSERT_EQ(0, err);
	ASSERT_EQ(0, vh_kdev_get_vring_worker(self->dev, 0, &cur));
	EXPECT_NE(id, cur);
	ASSERT_EQ(0, vh_kdev_attach_vring_worker(self->dev, 0, id));
	ASSERT_EQ(0, vh_kdev_get_vring_worker(self->dev, 0, &cur));
	EXPECT_EQ(id, cur);
	/* vhost_free_worker(): an attached worker is busy */
	EXPECT_EQ(-EBUSY, vh_kdev_free_worker(self->dev, id));
	ASSERT_EQ(0, vh_kdev_new_worker(self->dev, &id2));
	EXPECT_NE(id, id2);
	EXPECT_EQ(0, vh_kdev_free_worker(self->dev, id2));
	EXPECT_EQ(-ENODEV, vh_kdev_free_worker(self->dev, id2));
	EXPECT_EQ(-ENOBUFS,
		  vh_kdev_attach_vring_worker(
			  self->dev, vh_kdev_get_num_vrings(self->dev), id));
}

TEST_F(kdev, iotlb)
{
	struct vh_kdev_iotlb_msg m = { 0 };
	uint64_t f = 0, b = 0;

	ASSERT_EQ(0, vh_kdev_get_features(self->dev, &f));
	ASSERT_EQ(0, vh_kdev_set_owner(self->dev));
	setup_memory(_metadata, self);
	if (!(f & BIT(VIRTIO_F_ACCESS_PLATFORM))) {
		/* vhost-scsi: no IOTLB, and no write() on the device at all */
		EXPECT_EQ(-EOPNOTSUPP,
			  vh_kdev_set_features(self->dev,
					       BIT(VIRTIO_F_VERSION_1) |
						       BIT(VIRTIO_F_ACCESS_PLATFORM)));
		m.type = VH_IOTLB_UPDATE;
		m.size = 0x1000;
		m.uaddr = (uintptr_t)self->guest.host;
		m.perm = VH_ACCESS_RW;
		EXPECT_EQ(-EINVAL, vh_kdev_iotlb_send(self->dev, &m));
		EXPECT_EQ(-EINVAL, vh_kdev_iotlb_recv(self->dev, &m));
		return;
	}

	m.type = VH_IOTLB_UPDATE;
	m.iova = 0x10000;
	m.size = 0x1000;
	m.uaddr = (uintptr_t)self->guest.host;
	m.perm = VH_ACCESS_RW;
	/* vhost_process_iotlb_msg(): no IOTLB before ACCESS_PLATFORM */
	EXPECT_EQ(-EFAULT, vh_kdev_iotlb_send(self->dev, &m));
	ASSERT_EQ(0, vh_kdev_set_features(self->dev,
					  BIT(VIRTIO_F_VERSION_1) |
						  BIT(VIRTIO_F_ACCESS_PLATFORM)));
	EXPECT_EQ(0, vh_kdev_iotlb_send(self->dev, &m));
	m.type = VH_IOTLB_INVALIDATE;
	EXPECT_EQ(0, vh_kdev_iotlb_send(self->dev, &m));
	/* library checks: empty range, bad perm, batching not negotiated */
	m.type = VH_IOTLB_UPDATE;
	m.size = 0;
	EXPECT_EQ(-EINVAL, vh_kdev_iotlb_send(self->dev, &m));
	m.size = 0x1000;
	m.perm = 0;
	EXPECT_EQ(-EINVAL, vh_kdev_iotlb_send(self->dev, &m));
	m.perm = VH_ACCESS_RO;
	m.type = VH_IOTLB_BATCH_BEGIN;
	EXPECT_EQ(-EOPNOTSUPP, vh_kdev_iotlb_send(self->dev, &m));
	/* nothing pending: a non-blocking read */
	EXPECT_EQ(-EAGAIN, vh_kdev_iotlb_recv(self->dev, &m));

	/* the v2 layout once IOTLB_MSG_V2 is acked */
	ASSERT_EQ(0, vh_kdev_get_backend_features(self->dev, &b));
	ASSERT_TRUE(!!(b & BIT(VHOST_BACKEND_F_IOTLB_MSG_V2)));
	ASSERT_EQ(0, vh_kdev_set_backend_features(
			     self->dev, BIT(VHOST_BACKEND_F_IOTLB_MSG_V2)));
	m.type = VH_IOTLB_UPDATE;
	m.iova = 0x20000;
	EXPECT_EQ(0, vh_kdev_iotlb_send(self->dev, &m));
	m.type = VH_IOTLB_INVALIDATE;
	EXPECT_EQ(0, vh_kdev_iotlb_send(self->dev, &m));
	/* a non-zero address space needs IOTLB_ASID, which vhost lacks */
	m.asid = 1;
	EXPECT_EQ(-EINVAL, vh_kdev_iotlb_send(self->dev, &m));
}

/*
 * Under ACCESS_PLATFORM the ring addresses are IOVAs.  Starting a ring
 * whose IOVAs nothing maps makes vhost ask with an IOTLB MISS, read from
 * the device fd; once UPDATE messages map them, the ring starts.
 */
TEST_F(kdev, iotlb_miss)
{
	const uint64_t iova = 0x40000000;
	struct vh_kdev_iotlb_msg m = { 0 };
	struct vh_kdev_vring_addr a = { 0 };
	struct vh_tap *tap = NULL;
	uint64_t f = 0, ring_gpa = 0x10000;
	unsigned int i, n, misses = 0;
	int efd, err, start;

	ASSERT_EQ(0, vh_kdev_get_features(self->dev, &f));
	if (variant->type == VH_KDEV_SCSI) {
		/*
		 * vhost-scsi has no IOTLB: it does not offer
		 * ACCESS_PLATFORM, so no ring of it can miss (the iotlb test
		 * checks its refusals).  That is all there is to check.
		 */
		EXPECT_FALSE(!!(f & BIT(VIRTIO_F_ACCESS_PLATFORM)));
		return;
	}
	/* vhost-net and vhost-vsock offer it (the variants' .must) */
	ASSERT_TRUE(!!(f & BIT(VIRTIO_F_ACCESS_PLATFORM)));
	ASSERT_EQ(0, vh_kdev_set_owner(self->dev));
	setup_memory(_metadata, self);
	ASSERT_EQ(0, vh_kdev_set_features(self->dev,
					  BIT(VIRTIO_F_VERSION_1) |
						  BIT(VIRTIO_F_ACCESS_PLATFORM)));
	ASSERT_EQ(0, vh_kdev_set_backend_features(
			     self->dev, BIT(VHOST_BACKEND_F_IOTLB_MSG_V2)));
	efd = st_eventfd();
	ASSERT_LE(0, efd);
	n = vh_kdev_get_num_vrings(self->dev);
	for (i = 0; i < n; i++) {
		/* ring i at gpa 0x10000 + i * 0x4000, seen at iova + that */
		uint64_t off = ring_gpa + i * 0x4000;

		ASSERT_EQ(0, vh_kdev_set_vring_num(self->dev, i, 64));
		a.desc = iova + off;
		a.avail = iova + off + 0x1000;
		a.used = iova + off + 0x2000;
		/* IOVAs: the library does not hold them against the table */
		ASSERT_EQ(0, vh_kdev_set_vring_addr(self->dev, i, &a));
		ASSERT_EQ(0, vh_kdev_set_vring_kick(self->dev, i, efd));
	}
	if (variant->type == VH_KDEV_NET) {
		ASSERT_EQ(0, vh_tap_new(self->ctx, NULL, &tap));
		ASSERT_EQ(0, vh_tap_set_features(tap, BIT(VIRTIO_F_VERSION_1)));
	}
#define START()                                                            \
	(variant->type == VH_KDEV_NET ?                                     \
		 vh_net_set_backend(self->dev, 0, vh_tap_get_fd(tap)) :     \
		 vh_vsock_set_running(self->dev, true))
	/* nothing is mapped yet: vhost_vq_init_access() fails, and asks */
	start = START();
	EXPECT_EQ(-EFAULT, start);
	/* every miss names an address inside the rings, for access RO/WO */
	while (st_wait_fd(vh_kdev_get_fd(self->dev), 2000) == 1) {
		err = vh_kdev_iotlb_recv(self->dev, &m);
		if (err == -EAGAIN)
			break;
		ASSERT_EQ(0, err);
		EXPECT_EQ(VH_IOTLB_MISS, m.type);
		EXPECT_LE(iova + ring_gpa, m.iova);
		EXPECT_GT(iova + ring_gpa + n * 0x4000, m.iova);
		EXPECT_NE(0, m.perm);
		misses++;
		/* map the whole ring area at once */
		m.type = VH_IOTLB_UPDATE;
		m.iova = iova + ring_gpa;
		m.size = n * 0x4000;
		m.uaddr = (uintptr_t)self->guest.host + ring_gpa;
		m.perm = VH_ACCESS_RW;
		m.asid = 0;
		ASSERT_EQ(0, vh_kdev_iotlb_send(self->dev, &m));
	}
	EXPECT_LT(0u, misses);
	if (start)
		EXPECT_EQ(0, START());
#undef START
	EXPECT_EQ(-EAGAIN, vh_kdev_iotlb_recv(self->dev, &m));
	if (tap) {
		EXPECT_EQ(0, vh_net_set_backend(self->dev, 0, -1));
		vh_tap_unref(tap);
	}
	close(efd);
}

int main(int argc, char **argv)
{
	/* each variant's device, and tun for the net backend cases */
	st_need_module("vhost_net");
	st_need_module("vhost_vsock");
	st_need_module("vhost_scsi");
	st_need_module("tun");
	if (access("/dev/vhost-net", F_OK) && access("/dev/vhost-vsock", F_OK) &&
	    access("/dev/vhost-scsi", F_OK))
		ksft_exit_skip("no /dev/vhost-net, /dev/vhost-vsock or "
			       "/dev/vhost-scsi: vhost modules not loaded\n");
	return test_harness_run(argc, argv);
}
