// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vhostctl check vduse: a blk round trip through a temporary VDUSE device.
 *
 * A 1 MiB RAM disk is served in this process, by a thread, as the VDUSE
 * virtio-blk device vhostctl-check-PID (libvhost's vh_vduse_dev and its
 * device-side ring).  Its vdpa device is added over the vdpa netlink
 * family and bound to virtio_vdpa by hand (drivers_autoprobe off meanwhile:
 * vhost_vdpa may be loaded too), so that this host's own virtio_blk drives
 * it.  On the /dev/vdX that appears: the serial (GET_ID), an O_DIRECT
 * pattern across the disk and another at its last sector, an fsync
 * (FLUSH), the disk read back with O_DIRECT, and the bytes compared both
 * there and in the RAM disk.  The vdpa device is deleted, the VDUSE
 * device destroyed, drivers_autoprobe restored - on failure and after a
 * signal too.
 *
 * Everything that waits on virtio_blk runs in a child process, the
 * prober (see vdc_prober), so that a device that stops answering fails
 * the check instead of hanging it.
 *
 * The kernel is a peer like any other: every request is checked (sizes,
 * sector ranges, the status byte) and a malformed one fails the check.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/fs.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>

#ifdef HAVE_LIBKMOD
#include <libkmod.h>
#endif

#include "libvhost-vdpa.h"
#include "libvhost-vduse.h"
#include "libvhost-vring.h"
#include "check.h"

#define VDC_SECTOR 512u
#define VDC_DISK (1u << 20)
#define VDC_SECTORS (VDC_DISK / VDC_SECTOR)
#define VDC_RING 128
#define VDC_SEG_MAX (VDC_RING - 2) /* header and status take two */
#define VDC_IOV 1024
#define VDC_CHUNK (64u << 10)
#define VDC_SERIAL "vhostctl-check"
#define VDC_HDR 16 /* struct virtio_blk_outhdr */
#define VDC_AUTOPROBE "/sys/bus/vdpa/drivers_autoprobe"
#define VDC_VIRTIO_VDPA "/sys/bus/vdpa/drivers/virtio_vdpa"
#define VDC_THREAD "vhostctl-vduse" /* the serving thread's name (comm) */
/* longer than the prober's own waits (CHK_TIMEOUT_MS): theirs report first */
#define VDC_STALL_MS (CHK_TIMEOUT_MS + 5000)
#define VDC_REAP_MS 2000 /* a killed prober not waiting on the device */
#define VDC_SEED 0xd15c      /* the pattern across the disk */
#define VDC_SEED_LAST 0x1a57 /* and the one at its last sector */

/* INDIRECT_DESC, EVENT_IDX (VERSION_1, ACCESS_PLATFORM come with VDUSE) */
#define VDC_FEATURES                                                  \
	((1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_FLUSH) | \
	 (1ull << 28) | (1ull << 29))

struct vdc {
	struct vhc *v;
	char name[48];
	uint8_t *disk;

	/* the serving thread; vq, iov and the counters are its own */
	struct vh_vduse_dev *dev;
	pthread_t thread;
	bool running, stop_asked;
	int stop_fd;
	struct vh_devq *vq;
	struct iovec iov[VDC_IOV];
	unsigned int n_in, n_out, n_flush, n_id, n_unsupp, n_bad, n_msg;
	int serve_err; /* read with __atomic, as the counters */
	/* the device stopped answering: nobody serves it any more */
	bool gave_up;
	/* the vdpa device is left: requests on it nobody will answer */
	bool left;

	struct vh_vdpa_mgmt *mgmt;
	bool added;
	char autoprobe; /* '0'/'1' to restore, 0 when untouched */
	char blk[32];   /* /dev/vdX */
	int fd;         /* the prober's */
	pid_t prober;
};

/* ------------------------------------------------------------------ */
/* the device: a RAM disk behind the ring (virtio 1.2, 5.2.6)          */
/* ------------------------------------------------------------------ */

/* Copy len bytes between buf and the iovecs at byte off; false if short. */
static bool iov_xfer(const struct iovec *iov, unsigned int n, size_t off,
		     void *buf, size_t len, bool to_iov)
{
	uint8_t *b = buf;

	for (unsigned int i = 0; i < n && len; i++) {
		size_t l = iov[i].iov_len;
		uint8_t *p = iov[i].iov_base;

		if (off >= l) {
			off -= l;
			continue;
		}
		l -= off;
		if (l > len)
			l = len;
		if (to_iov)
			memcpy(p + off, b, l);
		else
			memcpy(b, p + off, l);
		b += l;
		len -= l;
		off = 0;
	}
	return len == 0;
}

/* Data of len bytes at sector: whole sectors, inside the disk. */
static bool in_disk(uint64_t sector, uint64_t len)
{
	return len % VDC_SECTOR == 0 && sector <= VDC_SECTORS &&
	       len / VDC_SECTOR <= VDC_SECTORS - sector;
}

/*
 * One request: its status, *written the bytes written to the writable
 * buffers.  *bad is set for a request no correct driver sends.
 */
static uint8_t vdc_req(struct vdc *d, const struct vh_devq_elem *e,
		       uint32_t *written, bool *bad)
{
	const struct iovec *out = e->iov, *in = e->iov + e->out_num;
	uint8_t hdr[VDC_HDR] = { 0 }, id[VIRTIO_BLK_ID_BYTES] = { 0 };
	uint64_t sector, len;
	uint32_t type;

	*written = 1;
	*bad = true;
	/* 5.2.6: header first, device-readable; the status byte last */
	if (e->out_len < VDC_HDR)
		return VIRTIO_BLK_S_IOERR;
	iov_xfer(out, e->out_num, 0, hdr, VDC_HDR, false);
	type = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 |
	       (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
	sector = 0;
	for (int i = 7; i >= 0; i--)
		sector = sector << 8 | hdr[8 + i];
	switch (type) {
	case VIRTIO_BLK_T_IN:
		len = e->in_len - 1;
		if (e->out_len != VDC_HDR || !in_disk(sector, len))
			return VIRTIO_BLK_S_IOERR;
		iov_xfer(in, e->in_num, 0, d->disk + sector * VDC_SECTOR, len,
			 true);
		__atomic_add_fetch(&d->n_in, 1, __ATOMIC_RELAXED);
		*written = (uint32_t)len + 1;
		break;
	case VIRTIO_BLK_T_OUT:
		len = e->out_len - VDC_HDR;
		if (e->in_len != 1 || !in_disk(sector, len))
			return VIRTIO_BLK_S_IOERR;
		iov_xfer(out, e->out_num, VDC_HDR,
			 d->disk + sector * VDC_SECTOR, len, false);
		__atomic_add_fetch(&d->n_out, 1, __ATOMIC_RELAXED);
		break;
	case VIRTIO_BLK_T_FLUSH:
		/* nothing is cached in front of the RAM disk */
		if (e->out_len != VDC_HDR || e->in_len != 1)
			return VIRTIO_BLK_S_IOERR;
		__atomic_add_fetch(&d->n_flush, 1, __ATOMIC_RELAXED);
		break;
	case VIRTIO_BLK_T_GET_ID:
		/* up to 20 bytes, NUL-padded when shorter */
		len = e->in_len - 1;
		if (e->out_len != VDC_HDR)
			return VIRTIO_BLK_S_IOERR;
		if (len > sizeof(id))
			len = sizeof(id);
		memcpy(id, VDC_SERIAL, sizeof(VDC_SERIAL) - 1);
		iov_xfer(in, e->in_num, 0, id, len, true);
		__atomic_add_fetch(&d->n_id, 1, __ATOMIC_RELAXED);
		*written = (uint32_t)len + 1;
		break;
	default:
		*bad = false;
		__atomic_add_fetch(&d->n_unsupp, 1, __ATOMIC_RELAXED);
		return VIRTIO_BLK_S_UNSUPP;
	}
	*bad = false;
	return VIRTIO_BLK_S_OK;
}

/* Everything the ring has: 0, or -errno (the ring is broken). */
static int vdc_drain(struct vdc *d)
{
	struct vh_devq_elem e;
	uint32_t written;
	uint8_t status;
	bool bad;
	int r;

	for (;;) {
		e.iov = d->iov;
		e.iov_max = VDC_IOV;
		r = vh_devq_pop(d->vq, &e);
		/* an IOTLB miss: the mapping is fetched and the ring kicked */
		if (r == -EAGAIN)
			r = 0;
		if (r <= 0)
			break;
		if (!e.in_len) {
			/* no status byte: nothing to answer with */
			bad = true;
			written = 0;
		} else {
			status = vdc_req(d, &e, &written, &bad);
			iov_xfer(d->iov + e.out_num, e.in_num, e.in_len - 1,
				 &status, 1, true);
		}
		if (bad)
			__atomic_add_fetch(&d->n_bad, 1, __ATOMIC_RELAXED);
		r = vh_devq_push(d->vq, e.id, written);
		if (r < 0)
			break;
	}
	if (r == 0)
		vh_devq_notify(d->vq);
	return r;
}

static int vdc_queue_started(struct vh_vduse_dev *dev, void *data,
			     unsigned int idx, struct vh_devq *vring)
{
	struct vdc *d = data;

	(void)dev;
	if (idx != 0)
		return -EINVAL;
	d->vq = vring;
	return 0;
}

static void vdc_queue_stopped(struct vh_vduse_dev *dev, void *data,
			      unsigned int idx, struct vh_devq *vring)
{
	struct vdc *d = data;

	(void)dev;
	(void)idx;
	(void)vring;
	d->vq = NULL;
}

/*
 * The serving thread: the kernel's requests (status, DRIVER_OK, IOTLB)
 * and the ring's kicks, until stop_fd.  Signals go to the main thread.
 */
static void *vdc_serve(void *arg)
{
	struct vdc *d = arg;
	int r = 0;

	for (;;) {
		struct pollfd p[3] = {
			{ .fd = d->stop_fd, .events = POLLIN },
			{ .fd = vh_vduse_dev_get_fd(d->dev), .events = POLLIN },
			{ .fd = d->vq ? vh_devq_get_kick_fd(d->vq) : -1,
			  .events = POLLIN },
		};

		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (p[0].revents)
			break;
		/* requests first: DRIVER_OK starts the ring */
		do {
			r = vh_vduse_dev_process(d->dev);
			if (r > 0)
				__atomic_add_fetch(&d->n_msg, 1,
						   __ATOMIC_RELAXED);
		} while (r > 0);
		if (r < 0)
			break;
		if (d->vq) {
			vh_devq_read_kick(d->vq);
			r = vdc_drain(d);
			if (r < 0)
				break;
		}
	}
	__atomic_store_n(&d->serve_err, r, __ATOMIC_RELEASE);
	return NULL;
}

static enum chk_outcome vdc_start(struct vdc *d, struct chk_result *r)
{
	static const struct vh_vduse_ops ops = {
		.size = sizeof(ops),
		.queue_started = vdc_queue_started,
		.queue_stopped = vdc_queue_stopped,
	};
	struct virtio_blk_config cfg = { 0 };
	struct vh_vduse_config c = {
		.size = sizeof(c),
		.name = d->name,
		.device_id = VIRTIO_ID_BLOCK,
		.features = VDC_FEATURES,
		.num_queues = 1,
		.max_queue_size = VDC_RING,
		.config = &cfg,
		.config_size = sizeof(cfg),
	};
	sigset_t all, old;
	int err;

	/* VDUSE config space is little-endian (VERSION_1) */
	cfg.capacity = htole64(VDC_SECTORS);
	cfg.seg_max = htole32(VDC_SEG_MAX);
	d->disk = calloc(1, VDC_DISK);
	if (!d->disk)
		return chk_fail_err(r, "RAM disk", -ENOMEM);
	err = vh_vduse_dev_new(d->v->ctx, &c, &ops, d, &d->dev);
	if (err)
		return chk_set(r, CHK_FAIL, "create VDUSE device %s: %s",
			       d->name, strerror(-err));
	d->stop_fd = chk_eventfd();
	if (d->stop_fd < 0)
		return chk_fail_err(r, "eventfd", d->stop_fd);
	/* the thread inherits a full mask: SIGINT ends the main thread's waits */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&d->thread, NULL, vdc_serve, d);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return chk_fail_err(r, "serving thread", -err);
	d->running = true;
	/* for ps -L and tests that stop it (vm-vhostctl.sh) */
	pthread_setname_np(d->thread, VDC_THREAD);
	return CHK_PASS;
}

/* ------------------------------------------------------------------ */
/* modules, vdpa device, block device                                  */
/* ------------------------------------------------------------------ */

/*
 * Make sure module name is there when path (what it provides) is not:
 * CHK_PASS, or a SKIP naming what to modprobe.
 */
static enum chk_outcome vdc_module(struct chk_result *r, const char *name,
				   const char *config, const char *path)
{
#ifdef HAVE_LIBKMOD
	struct kmod_ctx *k;
	struct kmod_list *list = NULL, *it;
	int err = -ENOENT;

	if (access(path, F_OK) == 0)
		return CHK_PASS;
	k = kmod_new(NULL, NULL);
	if (!k)
		return chk_set(r, CHK_SKIP, "%s absent (module %s; libkmod "
			       "unusable: modprobe %s)", path, name, name);
	if (kmod_module_new_from_lookup(k, name, &list) == 0) {
		kmod_list_foreach(it, list) {
			struct kmod_module *mod = kmod_module_get_module(it);

			err = kmod_module_probe_insert_module(mod, 0, NULL,
							      NULL, NULL, NULL);
			kmod_module_unref(mod);
			break;
		}
		kmod_module_unref_list(list);
	}
	kmod_unref(k);
	if (err == -ENOENT)
		return chk_set(r, CHK_SKIP, "no %s module (%s; modprobe %s)",
			       name, config, name);
	if (err)
		return chk_set(r, CHK_SKIP, "module %s cannot be loaded "
			       "(modprobe %s: %s)", name, name, strerror(-err));
	/* devtmpfs and sysfs have it once the module's init returned */
	if (access(path, F_OK) != 0)
		return chk_set(r, CHK_SKIP, "%s absent after loading module %s",
			       path, name);
	return CHK_PASS;
#else
	(void)config;
	if (access(path, F_OK) == 0)
		return CHK_PASS;
	return chk_set(r, CHK_SKIP, "%s absent (module %s: modprobe %s; "
		       "vhostctl was built without libkmod)", path, name, name);
#endif
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int err = 0;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	if (n < 0)
		err = -errno;
	else if ((size_t)n != strlen(s))
		err = -EIO;
	close(fd);
	return err;
}

static int read_line(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static int vdc_serving(struct vdc *d)
{
	return __atomic_load_n(&d->serve_err, __ATOMIC_ACQUIRE);
}

/* Wait a little (20 ms); false when the check must give up. */
static bool vdc_nap(struct vdc *d, uint64_t deadline)
{
	if (chk_interrupted() || vdc_serving(d) || chk_now_ms() >= deadline)
		return false;
	usleep(20000);
	return true;
}

/*
 * Add the vdpa device, with drivers_autoprobe off until the prober has
 * bound it to virtio_vdpa (another bus driver, vhost_vdpa, could take it
 * first).
 */
static enum chk_outcome vdc_add(struct vdc *d, struct chk_result *r)
{
	struct vh_vdpa_dev_new p = { .size = sizeof(p),
				     .name = d->name,
				     .mgmtdev = "vduse" };
	uint64_t deadline = chk_now_ms() + CHK_TIMEOUT_MS;
	char ap[8];
	int err;

	err = vh_vdpa_mgmt_new(d->v->ctx, &d->mgmt);
	if (err == -EOPNOTSUPP)
		return chk_set(r, CHK_SKIP, "libvhost built without libmnl "
			       "(no vdpa netlink; module vduse is there)");
	if (err)
		return chk_fail_err(r, "vdpa netlink", err);
	err = read_line(VDC_AUTOPROBE, ap, sizeof(ap));
	if (err)
		return chk_fail_err(r, "read " VDC_AUTOPROBE, err);
	if (strcmp(ap, "0") != 0) {
		err = write_file(VDC_AUTOPROBE, "0");
		if (err)
			return chk_fail_err(r, "write " VDC_AUTOPROBE, err);
		d->autoprobe = '1';
	}
	/* EINVAL until VDUSE_VQ_SETUP of every queue (done at creation) */
	do {
		err = vh_vdpa_mgmt_dev_add(d->mgmt, &p);
	} while (err == -EINVAL && vdc_nap(d, deadline));
	if (err)
		return chk_set(r, CHK_FAIL, "vdpa dev add %s: %s%s%s", d->name,
			       strerror(-err),
			       vh_vdpa_mgmt_last_error(d->mgmt)[0] ? ": " : "",
			       vh_vdpa_mgmt_last_error(d->mgmt));
	d->added = true;
	return CHK_PASS;
}

/* The prober's: bind to virtio_vdpa, drivers_autoprobe restored after. */
static enum chk_outcome vdc_bind(struct vdc *d, struct chk_result *r)
{
	/* probes synchronously: virtio_blk's requests are answered meanwhile */
	int err = write_file(VDC_VIRTIO_VDPA "/bind", d->name);

	/* the parent restores it too, should this fail */
	if (d->autoprobe)
		write_file(VDC_AUTOPROBE, "1");
	if (err)
		return chk_fail_err(r, "bind to virtio_vdpa", err);
	return CHK_PASS;
}

/* "MAJOR:MINOR" of a sysfs dev file. */
static bool parse_devnum(const char *s, unsigned int *ma, unsigned int *mi)
{
	char *end;
	unsigned long a, b;

	errno = 0;
	a = strtoul(s, &end, 10);
	if (end == s || *end != ':')
		return false;
	s = end + 1;
	b = strtoul(s, &end, 10);
	if (end == s || *end || errno || a > UINT32_MAX || b > UINT32_MAX)
		return false;
	*ma = (unsigned int)a;
	*mi = (unsigned int)b;
	return true;
}

/*
 * The /dev/vdX virtio_blk made of it: a block device whose number is the
 * one sysfs gives.  1 found, 0 not (yet).
 */
static int vdc_find_blk(struct vdc *d)
{
	char pat[128], path[300], num[32];
	unsigned int ma, mi;
	struct stat st;
	glob_t g;
	int found = 0;

	snprintf(pat, sizeof(pat), "/sys/bus/vdpa/devices/%s/virtio*/block/vd*",
		 d->name);
	if (glob(pat, 0, NULL, &g) != 0)
		return 0;
	if (g.gl_pathc == 1) {
		const char *base = strrchr(g.gl_pathv[0], '/') + 1;

		snprintf(path, sizeof(path), "%s/dev", g.gl_pathv[0]);
		snprintf(d->blk, sizeof(d->blk), "/dev/%s", base);
		if (read_line(path, num, sizeof(num)) == 0 &&
		    parse_devnum(num, &ma, &mi) && stat(d->blk, &st) == 0 &&
		    S_ISBLK(st.st_mode) && st.st_rdev == makedev(ma, mi))
			found = 1;
	}
	globfree(&g);
	return found;
}

static enum chk_outcome vdc_open_blk(struct vdc *d, struct chk_result *r)
{
	uint64_t deadline = chk_now_ms() + CHK_TIMEOUT_MS, size = 0;
	char path[64], serial[64];
	int err;

	while (!vdc_find_blk(d))
		if (!vdc_nap(d, deadline))
			return chk_set(r, CHK_FAIL,
				       "no virtio_blk disk on %s", d->name);
	/* exclusive: nobody mounts it while we write */
	d->fd = open(d->blk, O_RDWR | O_DIRECT | O_EXCL | O_CLOEXEC);
	if (d->fd < 0)
		return chk_fail_err(r, d->blk, -errno);
	if (ioctl(d->fd, BLKGETSIZE64, &size) < 0)
		return chk_fail_err(r, "BLKGETSIZE64", -errno);
	if (size != VDC_DISK)
		return chk_set(r, CHK_FAIL, "%s: %llu bytes, not %u", d->blk,
			       (unsigned long long)size, VDC_DISK);
	/* reading it sends VIRTIO_BLK_T_GET_ID */
	snprintf(path, sizeof(path), "/sys/block/%s/serial", d->blk + 5);
	err = read_line(path, serial, sizeof(serial));
	if (err)
		return chk_fail_err(r, "serial (GET_ID)", err);
	if (strcmp(serial, VDC_SERIAL) != 0)
		return chk_set(r, CHK_FAIL, "serial \"%s\", not \"" VDC_SERIAL
			       "\"", serial);
	return CHK_PASS;
}

/* O_DIRECT transfer of len bytes at off, in chunks. */
static int vdc_rw(struct vdc *d, bool write, uint8_t *buf, size_t len,
		  off_t off)
{
	while (len) {
		size_t l = len < VDC_CHUNK ? len : VDC_CHUNK;
		ssize_t n;

		if (chk_interrupted())
			return -EINTR;
		n = write ? pwrite(d->fd, buf, l, off) :
			    pread(d->fd, buf, l, off);
		if (n < 0)
			return -errno;
		if ((size_t)n != l)
			return -EIO;
		buf += l;
		len -= l;
		off += (off_t)l;
	}
	return 0;
}

static enum chk_outcome vdc_io(struct vdc *d, struct chk_result *r)
{
	uint8_t *want = NULL, *got = NULL;
	enum chk_outcome o = CHK_FAIL;
	int err;

	if (posix_memalign((void **)&want, 4096, VDC_DISK) ||
	    posix_memalign((void **)&got, 4096, VDC_DISK)) {
		chk_fail_err(r, "buffers", -ENOMEM);
		goto out;
	}
	chk_fill(want, VDC_DISK, VDC_SEED);
	err = vdc_rw(d, true, want, VDC_DISK, 0);
	if (err) {
		chk_fail_err(r, "O_DIRECT write", err);
		goto out;
	}
	/* the last sector alone, with other bytes */
	chk_fill(want + VDC_DISK - VDC_SECTOR, VDC_SECTOR, VDC_SEED_LAST);
	err = vdc_rw(d, true, want + VDC_DISK - VDC_SECTOR, VDC_SECTOR,
		     VDC_DISK - VDC_SECTOR);
	if (err) {
		chk_fail_err(r, "O_DIRECT write of the last sector", err);
		goto out;
	}
	if (fsync(d->fd) < 0) {
		chk_fail_err(r, "fsync (FLUSH)", -errno);
		goto out;
	}
	memset(got, 0xee, VDC_DISK);
	err = vdc_rw(d, false, got, VDC_DISK, 0);
	if (err) {
		chk_fail_err(r, "O_DIRECT read", err);
		goto out;
	}
	if (memcmp(got, want, VDC_DISK) != 0) {
		chk_set(r, CHK_FAIL, "%s reads back other bytes", d->blk);
		goto out;
	}
	o = CHK_PASS;
out:
	free(want);
	free(got);
	return o;
}

/* After the prober's PASS: what the device got, in this process. */
static enum chk_outcome vdc_ram_disk(struct vdc *d, struct chk_result *r)
{
	uint8_t *want = malloc(VDC_DISK);
	enum chk_outcome o = CHK_PASS;

	if (!want)
		return chk_fail_err(r, "buffers", -ENOMEM);
	chk_fill(want, VDC_DISK, VDC_SEED);
	chk_fill(want + VDC_DISK - VDC_SECTOR, VDC_SECTOR, VDC_SEED_LAST);
	/* the counters' acquire orders the bytes */
	if (!__atomic_load_n(&d->n_out, __ATOMIC_ACQUIRE) ||
	    memcmp(d->disk, want, VDC_DISK) != 0)
		o = chk_set(r, CHK_FAIL, "the RAM disk holds other bytes");
	free(want);
	return o;
}

/* ------------------------------------------------------------------ */
/* the prober                                                          */
/* ------------------------------------------------------------------ */

/*
 * Why a child process: virtio_blk's waits (the bind's partition scan,
 * GET_ID, O_DIRECT I/O, fsync) sleep uninterruptibly, with no timeout,
 * until the device answers - and VDUSE bounds only its control messages,
 * not requests on a ring.  Should the serving thread stop or stall, a
 * thread of ours doing them would never return, and the process could
 * not even exit.  This process instead watches the prober with a
 * deadline on the device's progress, and leaves a stuck prober behind.
 */
struct vdc_report {
	struct chk_result r;
	char blk[sizeof(((struct vdc *)0)->blk)];
};

/* The child: bind, the block device and its I/O; the result to wfd. */
__attribute__((noreturn)) static void vdc_prober(struct vdc *d, int wfd)
{
	struct vdc_report rep;
	enum chk_outcome o;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	/*
	 * Nothing of the caller's held open should this process be stuck:
	 * not its stdout/stderr (a reader would wait for their end), not
	 * the VDUSE device (it could not be destroyed).
	 */
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
	}
	if (wfd > 3)
		close_range(3, (unsigned int)wfd - 1, 0);
	close_range((unsigned int)wfd + 1, ~0u, 0);

	memset(&rep, 0, sizeof(rep));
	o = vdc_bind(d, &rep.r);
	if (o == CHK_PASS)
		o = vdc_open_blk(d, &rep.r);
	if (o == CHK_PASS)
		o = vdc_io(d, &rep.r);
	rep.r.outcome = o;
	memcpy(rep.blk, d->blk, sizeof(rep.blk));
	/* under PIPE_BUF: written at once */
	if (write(wfd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
		_exit(1);
	/* no exit(): nothing of the parent's (stdio, atexit) runs twice */
	_exit(0);
}

/* Reap the prober within ms: true when it is gone. */
static bool vdc_reap(struct vdc *d, unsigned int ms, int *status)
{
	for (unsigned int t = 0;; t += 20) {
		pid_t p = waitpid(d->prober, status, WNOHANG);

		if (p == d->prober || (p < 0 && errno != EINTR)) {
			d->prober = 0;
			return true;
		}
		if (t >= ms)
			return false;
		usleep(20000);
	}
}

/* Requests and control messages the serving thread answered. */
static unsigned int vdc_progress(struct vdc *d)
{
	return __atomic_load_n(&d->n_in, __ATOMIC_RELAXED) +
	       __atomic_load_n(&d->n_out, __ATOMIC_RELAXED) +
	       __atomic_load_n(&d->n_flush, __ATOMIC_RELAXED) +
	       __atomic_load_n(&d->n_id, __ATOMIC_RELAXED) +
	       __atomic_load_n(&d->n_unsupp, __ATOMIC_RELAXED) +
	       __atomic_load_n(&d->n_bad, __ATOMIC_RELAXED) +
	       __atomic_load_n(&d->n_msg, __ATOMIC_RELAXED);
}

/* The serving thread's progress, watched for VDC_STALL_MS without any. */
struct vdc_watch {
	unsigned int seen;
	uint64_t last;
};

static void vdc_watch_start(struct vdc *d, struct vdc_watch *w)
{
	w->seen = vdc_progress(d);
	w->last = chk_now_ms();
}

/* True once nothing was served for VDC_STALL_MS. */
static bool vdc_stalled(struct vdc *d, struct vdc_watch *w)
{
	uint64_t now = chk_now_ms();
	unsigned int seen = vdc_progress(d);

	if (seen != w->seen) {
		w->seen = seen;
		w->last = now;
		return false;
	}
	return now - w->last >= VDC_STALL_MS;
}

/*
 * Run the prober and wait for its result - until the serving thread
 * stops, or answers nothing for VDC_STALL_MS: then nobody will answer
 * what the prober waits for, and the check fails (d->gave_up).
 */
static enum chk_outcome vdc_probe(struct vdc *d, struct chk_result *r)
{
	struct vdc_report rep;
	struct vdc_watch wt;
	ssize_t n;
	int p[2], w, err, status = 0;

	if (pipe2(p, O_CLOEXEC) < 0)
		return chk_fail_err(r, "pipe", -errno);
	d->prober = fork();
	if (d->prober < 0) {
		d->prober = 0;
		err = -errno;
		close(p[0]);
		close(p[1]);
		return chk_fail_err(r, "fork", err);
	}
	if (d->prober == 0)
		vdc_prober(d, p[1]);
	close(p[1]);
	vdc_watch_start(d, &wt);
	for (;;) {
		w = chk_poll(p[0], POLLIN, 100);
		if (w != 0)
			break;
		err = vdc_serving(d);
		if (err) {
			d->gave_up = true;
			close(p[0]);
			return chk_fail_err(r, "serving the device", err);
		}
		if (vdc_stalled(d, &wt)) {
			d->gave_up = true;
			close(p[0]);
			return chk_set(r, CHK_FAIL, "the device stopped "
				       "answering: nothing served for %u s",
				       VDC_STALL_MS / 1000);
		}
	}
	if (w < 0) {
		/* interrupted: the prober is killed in the teardown */
		close(p[0]);
		return chk_fail_err(r, "waiting for the device", w);
	}
	n = read(p[0], &rep, sizeof(rep));
	close(p[0]);
	if (n != (ssize_t)sizeof(rep)) {
		/* it ended without a result: its status says why */
		if (!vdc_reap(d, VDC_REAP_MS, &status))
			return chk_set(r, CHK_FAIL, "prober: no result");
		if (WIFSIGNALED(status))
			return chk_set(r, CHK_FAIL, "prober killed by signal "
				       "%d", WTERMSIG(status));
		return chk_set(r, CHK_FAIL, "prober exited with status %d "
			       "without a result", WEXITSTATUS(status));
	}
	vdc_reap(d, VDC_REAP_MS, &status);
	if (rep.r.outcome != CHK_PASS && rep.r.outcome != CHK_FAIL)
		rep.r.outcome = CHK_FAIL;
	rep.r.detail[sizeof(rep.r.detail) - 1] = '\0';
	rep.blk[sizeof(rep.blk) - 1] = '\0';
	memcpy(d->blk, rep.blk, sizeof(d->blk));
	*r = rep.r;
	return r->outcome;
}

/* ------------------------------------------------------------------ */
/* teardown and the check                                              */
/* ------------------------------------------------------------------ */

/* Wait (bounded) until path is gone: 0, or -EEXIST. */
static int gone(const char *path)
{
	for (int i = 0; i < 250 && access(path, F_OK) == 0; i++)
		usleep(20000);
	return access(path, F_OK) == 0 ? -EEXIST : 0;
}

/* Requests virtio_blk has outstanding on the device (0 if no disk). */
static unsigned int vdc_inflight(struct vdc *d)
{
	char path[64], line[64], *p, *end;
	unsigned long n = 0;

	if (!d->blk[0] && !vdc_find_blk(d))
		return 0;
	snprintf(path, sizeof(path), "/sys/block/%s/inflight", d->blk + 5);
	if (read_line(path, line, sizeof(line)) != 0)
		return 0;
	/* "reads writes" */
	for (p = line; n < UINT32_MAX; p = end) {
		unsigned long v = strtoul(p, &end, 10);

		if (end == p)
			break;
		n += v < UINT32_MAX ? v : UINT32_MAX;
	}
	return n < UINT32_MAX ? (unsigned int)n : UINT32_MAX;
}

/*
 * Wait for the prober to end while the device makes progress: true once
 * reaped, false when the device stopped answering.
 */
static bool vdc_wait_gone(struct vdc *d)
{
	struct vdc_watch wt;
	int status;

	vdc_watch_start(d, &wt);
	while (!vdc_reap(d, 100, &status))
		if (vdc_serving(d) || vdc_stalled(d, &wt))
			return false;
	return true;
}

/* Tell the serving thread to stop: 0, or -errno. */
static int vdc_stop_ask(struct vdc *d)
{
	uint64_t one = 1;

	if (!d->running || d->stop_asked)
		return 0;
	d->stop_asked = true;
	if (write(d->stop_fd, &one, sizeof(one)) != sizeof(one))
		return -errno;
	return 0;
}

/* Stop the serving thread, waiting CHK_TIMEOUT_MS at most: 0, or -errno. */
static int vdc_stop(struct vdc *d)
{
	struct timespec ts;
	int err;

	if (!d->running)
		return 0;
	err = vdc_stop_ask(d);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += CHK_TIMEOUT_MS / 1000;
	/* a thread that does not stop keeps what it uses: d->dev, d->disk */
	if (pthread_clockjoin_np(d->thread, NULL, CLOCK_MONOTONIC, &ts) != 0)
		return -ETIMEDOUT;
	d->running = false;
	return err;
}

/*
 * Remove everything: 0, or the first -errno; *what says which step.
 * Once the device does not answer (d->gave_up, also when a prober told
 * to stop does not end while nothing is served), the vdpa device stays
 * if requests on it remain (d->left): deleting it would wait for them in
 * the kernel for ever (del_gendisk), holding the vdpa lock of the whole
 * host.
 */
static int vdc_teardown(struct vdc *d, const char **what)
{
	char path[300];
	int err = 0, e, status;

	*what = "";
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	/*
	 * A signal ended the wait, the device still answering: the prober
	 * (it has our handlers) stops after its current step.  Not SIGKILL:
	 * that would cut a VDUSE message short in the bind (killable
	 * waits), leaving the device half started and its requests stuck.
	 */
	if (d->prober > 0 && !d->gave_up) {
		kill(d->prober, SIGTERM);
		if (!vdc_wait_gone(d))
			d->gave_up = true;
	}
	/*
	 * Nothing is answered any more: the thread is told to stop before
	 * the prober is killed, so what it still waits for then stays
	 * unanswered - and is counted below.
	 */
	if (d->gave_up) {
		vdc_stop_ask(d);
		if (d->prober > 0)
			kill(d->prober, SIGKILL);
		e = vdc_stop(d);
		if (e && !err) {
			err = e;
			*what = "stopping the serving thread of";
		}
		/* killed, it goes at once - unless waiting on the device */
		if (d->prober > 0)
			vdc_reap(d, VDC_REAP_MS, &status);
	}
	/*
	 * A prober still there waits on the device; requests may outlive
	 * it too (GET_ID is not counted in inflight: the prober waits for
	 * it).
	 */
	if (d->added && d->gave_up) {
		unsigned int n = vdc_inflight(d); /* finds d->blk too */

		d->left = d->prober > 0 || n > 0;
	}
	if (d->autoprobe && write_file(VDC_AUTOPROBE, "1") < 0 && !err) {
		err = -EIO;
		*what = "restoring " VDC_AUTOPROBE;
	}
	if (d->added && !d->left) {
		/* virtio_blk goes, resetting the device: still served */
		e = vh_vdpa_mgmt_dev_del(d->mgmt, d->name);
		snprintf(path, sizeof(path), "/sys/bus/vdpa/devices/%s",
			 d->name);
		if (!e)
			e = gone(path);
		if (e && !err) {
			err = e;
			*what = "vdpa dev del";
		}
		d->added = false;
	}
	d->mgmt = vh_vdpa_mgmt_unref(d->mgmt);
	e = d->gave_up ? 0 : vdc_stop(d); /* else asked above */
	if (e && !err) {
		err = e;
		*what = "stopping the serving thread of";
	}
	/*
	 * d->dev and d->disk are still the thread's: left to the exit (in
	 * an ASan build, LeakSanitizer reports them - and waits for a
	 * frozen thread at exit, as it stops every thread)
	 */
	if (d->running)
		return err;
	chk_close(&d->stop_fd);
	if (d->dev) {
		/* VDUSE refuses to destroy it while its vdpa device is there */
		d->dev = vh_vduse_dev_unref(d->dev);
		snprintf(path, sizeof(path), "/dev/vduse/%s", d->name);
		e = d->added ? 0 : gone(path);
		if (e && !err) {
			err = e;
			*what = "destroying the VDUSE device";
		}
	}
	free(d->disk);
	d->disk = NULL;
	return err;
}

void check_vduse(struct vhc *v, struct chk_result *r)
{
	struct vdc d = { .v = v, .stop_fd = -1, .fd = -1 };
	const char *what;
	int err;

	snprintf(d.name, sizeof(d.name), "vhostctl-check-%d", (int)getpid());
	if (vdc_module(r, "vduse", "CONFIG_VDPA_USER", "/dev/vduse/control") !=
		    CHK_PASS ||
	    vdc_module(r, "virtio_vdpa", "CONFIG_VIRTIO_VDPA",
		       VDC_VIRTIO_VDPA) != CHK_PASS)
		return;
	if (vdc_start(&d, r) == CHK_PASS && vdc_add(&d, r) == CHK_PASS &&
	    vdc_probe(&d, r) == CHK_PASS && vdc_ram_disk(&d, r) == CHK_PASS) {
		unsigned int out = __atomic_load_n(&d.n_out, __ATOMIC_ACQUIRE),
			     in = __atomic_load_n(&d.n_in, __ATOMIC_ACQUIRE),
			     fl = __atomic_load_n(&d.n_flush, __ATOMIC_ACQUIRE),
			     id = __atomic_load_n(&d.n_id, __ATOMIC_ACQUIRE),
			     bad = __atomic_load_n(&d.n_bad, __ATOMIC_ACQUIRE);

		if (bad)
			chk_set(r, CHK_FAIL, "%u malformed requests", bad);
		else if (!in || !fl || !id)
			chk_set(r, CHK_FAIL,
				"requests missing: %u IN, %u FLUSH, %u GET_ID",
				in, fl, id);
		else
			chk_set(r, CHK_PASS,
				"%s (%s): 1 MiB RAM disk, O_DIRECT pattern and "
				"last sector read back, RAM disk compared "
				"(%u OUT, %u IN, %u FLUSH)",
				d.name, d.blk, out, in, fl);
	}
	err = vdc_serving(&d);
	if (err && r->outcome == CHK_PASS)
		chk_fail_err(r, "serving the device", err);
	err = vdc_teardown(&d, &what);
	if (err && r->outcome != CHK_FAIL)
		chk_set(r, CHK_FAIL, "%s %s: %s", what, d.name,
			strerror(-err));
	/* what stays, and why (see vdc_teardown) */
	if (d.left) {
		size_t l = strlen(r->detail);

		snprintf(r->detail + l, sizeof(r->detail) - l,
			 "; left: vdpa device %s%s%s%s, requests unanswered",
			 d.name, d.blk[0] ? " (" : "", d.blk,
			 d.blk[0] ? ")" : "");
	}
	if (d.running) {
		size_t l = strlen(r->detail);

		snprintf(r->detail + l, sizeof(r->detail) - l,
			 "; the serving thread does not stop");
	}
}
