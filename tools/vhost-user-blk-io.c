// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vhost-user-blk: virtio-blk requests (virtio 1.3, 5.2.6) against a file or
 * block device: parsing, the synchronous engine, and inflight I/O tracking
 * (vhost-user.rst, "Inflight I/O tracking": split virtqueues here, packed
 * ones in the ring, vh_devq_set_inflight()) so that a restarted daemon
 * runs again what the previous one left in flight.  Both
 * engines pop, complete and push through here; the uring engine
 * (vhost-user-blk-uring.c) only runs the I/O.
 *
 * Every request comes from the guest and is hostile: the header and the
 * status byte may sit anywhere in the chain (2.7.4 "Message Framing"), and
 * every length, sector and count is checked before any I/O.  A request we
 * cannot answer (no device-writable status byte) is returned with used
 * length 0 and not run.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libvhost.h"
#include "vhost-user-blk.h"

/* ---------------------------------------------------------------------- */
/* device                                                                 */
/* ---------------------------------------------------------------------- */

static bool pow2_in(uint32_t v, uint32_t lo, uint32_t hi)
{
	return v >= lo && v <= hi && !(v & (v - 1));
}

/* O_DIRECT alignment of file offsets (returned) and of memory (*mem). */
static uint32_t dio_align(int fd, uint32_t *mem)
{
	struct statx stx;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) &&
	    pow2_in(stx.stx_dio_offset_align, BLK_SECTOR, 65536)) {
		*mem = pow2_in(stx.stx_dio_mem_align, 1, 65536) ?
			       stx.stx_dio_mem_align :
			       stx.stx_dio_offset_align;
		return stx.stx_dio_offset_align;
	}
	*mem = 4096;
	return 4096;
}

int blk_dev_open(struct blk_dev *dev, const char *path)
{
	/*
	 * O_NONBLOCK until the type is known: opening a FIFO read-only
	 * would wait for a writer for ever (a device node's open may have
	 * effects of its own: O_NOCTTY at least)
	 */
	int flags = O_CLOEXEC | O_NONBLOCK | O_NOCTTY |
		    (dev->read_only ? O_RDONLY : O_RDWR);
	struct stat st;
	uint64_t size;
	int fd, err, fl;

	if (dev->direct)
		flags |= O_DIRECT;
	fd = open(path, flags);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		goto fail_errno;
	if (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode)) {
		err = -EINVAL;
		goto fail;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		goto fail_errno;
	dev->blk_size = BLK_SECTOR;
	dev->mem_align = BLK_SECTOR;
	dev->phys_exp = 0;
	dev->opt_io = 0;
	if (S_ISBLK(st.st_mode)) {
		unsigned int lbs = 0, pbs = 0, opt = 0;

		dev->is_bdev = true;
		if (ioctl(fd, BLKGETSIZE64, &size) < 0)
			goto fail_errno;
		if (ioctl(fd, BLKSSZGET, &lbs) == 0 && lbs >= BLK_SECTOR &&
		    lbs <= 65536 && !(lbs & (lbs - 1)))
			dev->blk_size = lbs;
		if (ioctl(fd, BLKPBSZGET, &pbs) == 0 && pbs > dev->blk_size &&
		    !(pbs & (pbs - 1)) && pbs <= (1u << 20))
			while ((dev->blk_size << dev->phys_exp) < pbs)
				dev->phys_exp++;
		if (ioctl(fd, BLKIOOPT, &opt) == 0 && opt)
			dev->opt_io = opt / dev->blk_size;
		if (dev->direct) {
			uint32_t mem, off = dio_align(fd, &mem);

			/* no STATX_DIOALIGN on a bdev: its logical block */
			dev->mem_align = off == 4096 && mem == 4096 ?
						 dev->blk_size :
						 mem;
		}
	} else {
		dev->is_bdev = false;
		size = (uint64_t)st.st_size;
		/*
		 * O_DIRECT: offsets and lengths must be aligned as the file
		 * system says; advertise that as the logical block size so
		 * the driver never sends what would fail (4096 if unknown).
		 */
		if (dev->direct)
			dev->blk_size = dio_align(fd, &dev->mem_align);
	}
	dev->fd = fd;
	/* 5.2.4: capacity in 512-byte sectors; a partial tail is not exposed */
	dev->capacity = size / BLK_SECTOR;
	return 0;

fail_errno:
	err = -errno;
fail:
	close(fd);
	return err;
}

void blk_dev_close(struct blk_dev *dev)
{
	if (dev->fd >= 0)
		close(dev->fd);
	dev->fd = -1;
}

uint64_t blk_dev_features(const struct blk_dev *dev)
{
	uint64_t f = (1ull << 32) /* VIRTIO_F_VERSION_1 */ |
		     (1ull << 28) /* VIRTIO_RING_F_INDIRECT_DESC */ |
		     (1ull << 29) /* VIRTIO_RING_F_EVENT_IDX */ |
		     (1ull << 33) /* VIRTIO_F_ACCESS_PLATFORM (vIOMMU) */ |
		     (1ull << VIRTIO_BLK_F_SEG_MAX) |
		     (1ull << VIRTIO_BLK_F_BLK_SIZE) |
		     (1ull << VIRTIO_BLK_F_TOPOLOGY) |
		     (1ull << VIRTIO_BLK_F_FLUSH) | (1ull << VIRTIO_BLK_F_MQ);

	if (dev->read_only)
		f |= 1ull << VIRTIO_BLK_F_RO;
	else
		f |= (1ull << VIRTIO_BLK_F_DISCARD) |
		     (1ull << VIRTIO_BLK_F_WRITE_ZEROES) |
		     (1ull << VIRTIO_BLK_F_CONFIG_WCE);
	return f;
}

void blk_dev_config(const struct blk_dev *dev, struct virtio_blk_config *cfg)
{
	uint32_t align = dev->blk_size / BLK_SECTOR;

	memset(cfg, 0, sizeof(*cfg));
	cfg->capacity = htole64(dev->capacity);
	cfg->seg_max = htole32(dev->seg_max);
	cfg->blk_size = htole32(dev->blk_size);
	cfg->physical_block_exp = dev->phys_exp;
	cfg->min_io_size = htole16(1);
	cfg->opt_io_size = htole32(dev->opt_io);
	cfg->num_queues = htole16((uint16_t)dev->num_queues);
	cfg->max_discard_sectors = htole32(dev->max_dwz_sectors);
	cfg->max_discard_seg = htole32(BLK_DWZ_SEG_MAX);
	cfg->discard_sector_alignment = htole32(align);
	cfg->max_write_zeroes_sectors = htole32(dev->max_dwz_sectors);
	cfg->max_write_zeroes_seg = htole32(BLK_DWZ_SEG_MAX);
	cfg->write_zeroes_may_unmap = 1;
	/* 5.2.5: with FLUSH offered the cache starts in writeback mode */
	cfg->wce = 1;
}

/* ---------------------------------------------------------------------- */
/* iovec helpers                                                          */
/* ---------------------------------------------------------------------- */

/* Copy len bytes at byte offset off of iov to buf; bytes copied. */
size_t blk_iov_to_buf(const struct iovec *iov, unsigned int n, size_t off,
			 void *buf, size_t len)
{
	size_t done = 0;
	unsigned int i;

	for (i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len, c;

		if (off >= l) {
			off -= l;
			continue;
		}
		c = l - off < len - done ? l - off : len - done;
		memcpy((uint8_t *)buf + done, (uint8_t *)iov[i].iov_base + off,
		       c);
		done += c;
		off = 0;
	}
	return done;
}

size_t blk_buf_to_iov(const struct iovec *iov, unsigned int n, size_t off,
			 const void *buf, size_t len)
{
	size_t done = 0;
	unsigned int i;

	for (i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len, c;

		if (off >= l) {
			off -= l;
			continue;
		}
		c = l - off < len - done ? l - off : len - done;
		memcpy((uint8_t *)iov[i].iov_base + off,
		       (const uint8_t *)buf + done, c);
		done += c;
		off = 0;
	}
	return done;
}

/*
 * dst = the bytes [off, off + len) of iov; number of dst entries (with dst
 * NULL: only counted).
 */
static unsigned int iov_slice(const struct iovec *iov, unsigned int n,
			      size_t off, size_t len, struct iovec *dst)
{
	unsigned int i, k = 0;

	for (i = 0; i < n && len; i++) {
		size_t l = iov[i].iov_len, c;

		if (off >= l) {
			off -= l;
			continue;
		}
		c = l - off < len ? l - off : len;
		if (dst) {
			dst[k].iov_base = (uint8_t *)iov[i].iov_base + off;
			dst[k].iov_len = c;
		}
		k++;
		len -= c;
		off = 0;
	}
	return k;
}

/* ---------------------------------------------------------------------- */
/* synchronous I/O                                                        */
/* ---------------------------------------------------------------------- */

/*
 * Whole-buffer preadv/pwritev: retries short transfers, 0 or -errno.  It
 * moves through iov[] in place (a partly done entry is cut); *moved (may
 * be NULL) says whether anything was transferred, so iov[] was touched.
 */
static int rw_iov(int fd, bool write, struct iovec *iov, unsigned int n,
		  uint64_t offset, bool *moved)
{
	if (moved)
		*moved = false;
	while (n) {
		int cnt = n > IOV_MAX ? IOV_MAX : (int)n;
		ssize_t r;

		r = write ? pwritev(fd, iov, cnt, (off_t)offset) :
			    preadv(fd, iov, cnt, (off_t)offset);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO; /* the file shrank under us */
		if (moved)
			*moved = true;
		offset += (uint64_t)r;
		while (n && (size_t)r >= iov->iov_len) {
			r -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n && r) {
			iov->iov_base = (uint8_t *)iov->iov_base + r;
			iov->iov_len -= (size_t)r;
		}
	}
	return 0;
}

/* O_DIRECT from unaligned buffers: through the aligned bounce buffer. */
static int rw_bounce(struct blk_queue *q, bool write, const struct iovec *iov,
		     unsigned int n, uint64_t offset, size_t len)
{
	size_t done = 0;

	while (done < len) {
		size_t c = len - done < BLK_BOUNCE_SIZE ? len - done :
							  BLK_BOUNCE_SIZE;
		struct iovec b = { q->bounce, c };
		int r;

		if (write)
			blk_iov_to_buf(iov, n, done, q->bounce, c);
		r = rw_iov(q->dev->fd, write, &b, 1, offset + done, NULL);
		if (r < 0)
			return r;
		if (!write)
			blk_buf_to_iov(iov, n, done, q->bounce, c);
		done += c;
	}
	return 0;
}

static int zero_fill(struct blk_dev *dev, uint64_t off, uint64_t len)
{
	static const uint8_t zeros[65536] __attribute__((aligned(65536)));

	while (len) {
		size_t c = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		struct iovec v = { (void *)zeros, c };
		int r = rw_iov(dev->fd, true, &v, 1, off, NULL);

		if (r < 0)
			return r;
		off += c;
		len -= c;
	}
	return 0;
}

/* One DISCARD or WRITE_ZEROES range, already checked. */
static int dwz_range(struct blk_dev *dev, bool zeroes, bool unmap,
		     uint64_t off, uint64_t len)
{
	int r;

	if (dev->is_bdev) {
		uint64_t range[2] = { off, len };

		if (ioctl(dev->fd, zeroes ? BLKZEROOUT : BLKDISCARD, range) ==
		    0)
			return 0;
		r = -errno;
		/* discarding is a hint: a device without it loses nothing */
		if (!zeroes && (r == -EOPNOTSUPP || r == -ENOTTY))
			return 0;
		return zeroes ? zero_fill(dev, off, len) : r;
	}
	if (!zeroes || unmap) {
		/* a hole reads back as zeroes: good for both */
		if (fallocate(dev->fd,
			      FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)off, (off_t)len) == 0)
			return 0;
		if (!zeroes)
			return errno == EOPNOTSUPP ? 0 : -errno;
	}
	if (fallocate(dev->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) == 0)
		return 0;
	return zero_fill(dev, off, len);
}

/* A write succeeded: in writethrough mode it reaches the disk first. */
static uint8_t commit_write(struct blk_dev *dev)
{
	if (__atomic_load_n(&dev->writethrough, __ATOMIC_RELAXED) &&
	    fdatasync(dev->fd) < 0)
		return VIRTIO_BLK_S_IOERR;
	return VIRTIO_BLK_S_OK;
}

bool blk_direct_bounce(struct blk_dev *dev)
{
	if (__atomic_exchange_n(&dev->direct_bounce, true, __ATOMIC_RELAXED))
		return true;
	blk_log(dev, "warning",
		"O_DIRECT cannot use the driver's memory (EFAULT): every request goes through a bounce buffer\n");
	return true;
}

bool blk_req_direct_ok(const struct blk_dev *dev, const struct blk_req *r)
{
	unsigned int i;

	if (__atomic_load_n(&dev->direct_bounce, __ATOMIC_RELAXED))
		return false;
	/*
	 * O_DIRECT: every segment's address on the memory alignment and its
	 * length a multiple of the logical block (what the block layer
	 * checks), else EINVAL.
	 */
	for (i = 0; i < r->niov; i++)
		if ((uintptr_t)r->iov[i].iov_base % dev->mem_align ||
		    r->iov[i].iov_len % dev->blk_size)
			return false;
	return true;
}

void blk_req_run_sync(struct blk_queue *q, struct blk_req *r)
{
	struct blk_dev *dev = q->dev;
	bool write = r->op == BLK_OP_WRITE, moved = false;
	int e;

	switch (r->op) {
	case BLK_OP_READ:
	case BLK_OP_WRITE:
		if (dev->direct && !blk_req_direct_ok(dev, r))
			e = rw_bounce(q, write, r->iov, r->niov, r->offset,
				      r->len);
		else
			e = rw_iov(dev->fd, write, r->iov, r->niov, r->offset,
				   &moved);
		/*
		 * again through the bounce buffer only if nothing moved: a
		 * partly done transfer cut r->iov in place (as the uring
		 * engine, which bounces a request that did nothing)
		 */
		if (e == -EFAULT && !moved && dev->direct &&
		    blk_direct_bounce(dev))
			e = rw_bounce(q, write, r->iov, r->niov, r->offset,
				      r->len);
		if (e < 0) {
			r->status = VIRTIO_BLK_S_IOERR;
			break;
		}
		r->status = write ? commit_write(dev) : VIRTIO_BLK_S_OK;
		break;
	case BLK_OP_FLUSH:
		r->status = fdatasync(dev->fd) < 0 ? VIRTIO_BLK_S_IOERR :
						     VIRTIO_BLK_S_OK;
		break;
	case BLK_OP_DISCARD:
	case BLK_OP_ZEROES:
		if (dwz_range(dev, r->op == BLK_OP_ZEROES, r->unmap, r->offset,
			      r->len) < 0)
			r->status = VIRTIO_BLK_S_IOERR;
		else if (r->op == BLK_OP_ZEROES)
			r->status = commit_write(dev);
		else
			r->status = VIRTIO_BLK_S_OK;
		break;
	default:
		break;
	}
}

/* ---------------------------------------------------------------------- */
/* requests                                                               */
/* ---------------------------------------------------------------------- */

/* Is [sector, sector + nsec) inside the disk?  (5.2.6.2: else IOERR) */
static bool in_range(const struct blk_dev *dev, uint64_t sector, uint64_t nsec)
{
	return sector <= dev->capacity && nsec <= dev->capacity - sector;
}

/* The data bytes [off, off + len) of the chain become r's iovecs. */
static int take_data(struct blk_req *r, const struct iovec *iov,
		     unsigned int n, size_t off, size_t len)
{
	unsigned int k = iov_slice(iov, n, off, len, NULL);

	if (k > BLK_REQ_IOV) {
		r->iov = calloc(k, sizeof(*r->iov));
		if (!r->iov) {
			r->iov = r->inl;
			return -ENOMEM;
		}
	}
	r->niov = iov_slice(iov, n, off, len, r->iov);
	return 0;
}

/* DISCARD / WRITE_ZEROES: the segment list checked whole (5.2.6). */
static void parse_dwz(struct blk_queue *q, struct blk_req *r, bool zeroes,
		      const struct vh_devq_elem *e)
{
	struct blk_dev *dev = q->dev;
	struct virtio_blk_discard_write_zeroes seg = { 0 };
	unsigned int bit = zeroes ? VIRTIO_BLK_F_WRITE_ZEROES :
				    VIRTIO_BLK_F_DISCARD;
	size_t data_len = e->out_len - sizeof(struct virtio_blk_outhdr);
	uint32_t flags, ns;
	uint64_t sec;

	if (!(dev->features & (1ull << bit))) {
		r->status = VIRTIO_BLK_S_UNSUPP;
		return;
	}
	if (dev->read_only || e->in_len != 1)
		return; /* IOERR */
	/* an array of 16-byte segments, at most max_*_seg of them */
	if (data_len == 0 || data_len % sizeof(seg) ||
	    data_len / sizeof(seg) > BLK_DWZ_SEG_MAX)
		return;
	blk_iov_to_buf(e->iov, e->out_num, sizeof(struct virtio_blk_outhdr),
		       &seg, sizeof(seg));
	sec = le64toh(seg.sector);
	ns = le32toh(seg.num_sectors);
	flags = le32toh(seg.flags);
	/* 5.2.6.2: unknown flags, and unmap on a discard, are UNSUPP */
	if ((flags & ~(uint32_t)VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) ||
	    (!zeroes && flags)) {
		r->status = VIRTIO_BLK_S_UNSUPP;
		return;
	}
	if (ns > dev->max_dwz_sectors || !in_range(dev, sec, ns))
		return;
	r->status = VIRTIO_BLK_S_OK;
	if (!ns)
		return;
	r->op = zeroes ? BLK_OP_ZEROES : BLK_OP_DISCARD;
	r->unmap = flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
	r->offset = sec * BLK_SECTOR;
	r->len = (uint64_t)ns * BLK_SECTOR;
}

/*
 * Check the popped chain and say what to run.  Requests answered without
 * I/O (GET_ID, every malformed one) leave with op BLK_OP_NONE.
 */
static void parse(struct blk_queue *q, const struct vh_devq_elem *e,
		  struct blk_req *r)
{
	struct blk_dev *dev = q->dev;
	const struct iovec *out = e->iov, *in = e->iov + e->out_num;
	struct virtio_blk_outhdr hdr = { 0 };
	size_t data_len;
	unsigned int i;
	uint64_t sector;
	uint32_t type;
	bool write;

	r->head = e->id;
	r->op = BLK_OP_NONE;
	r->status = VIRTIO_BLK_S_IOERR;
	r->unmap = false;
	r->stage = 0;
	r->status_ptr = NULL;
	r->in_len = e->in_len;
	r->offset = r->len = r->done = 0;
	r->reissued = false;
	r->niov = r->cur = 0;
	r->iov = r->inl;
	r->bounce = NULL;
	r->bounce_len = 0;
	r->bounce_size = 0;
	r->next = NULL;

	/* 5.2.6: the status is the last device-writable byte */
	for (i = e->in_num; i-- > 0;) {
		if (in[i].iov_len) {
			r->status_ptr =
				(uint8_t *)in[i].iov_base + in[i].iov_len - 1;
			break;
		}
	}
	if (!r->status_ptr) {
		/* the guest decides how often: say it a few times only */
		if (q->warned < 8 && ++q->warned)
			blk_log(dev, "warning",
				"queue %u: request %u without a status byte\n",
				q->idx, e->id);
		return;
	}
	if (e->out_len < sizeof(hdr))
		return;
	blk_iov_to_buf(out, e->out_num, 0, &hdr, sizeof(hdr));
	type = le32toh(hdr.type);
	sector = le64toh(hdr.sector);

	switch (type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		write = type == VIRTIO_BLK_T_OUT;
		/* reads carry data device-writable, writes device-readable */
		if (write) {
			data_len = e->out_len - sizeof(hdr);
			if (e->in_len != 1)
				return;
		} else {
			data_len = e->in_len - 1;
			if (e->out_len != sizeof(hdr))
				return;
		}
		/* 5.2.6.2: RO devices fail writes, and do not write */
		if (write && dev->read_only)
			return;
		/* 5.2.6.1: data is a multiple of 512 bytes */
		if (data_len % BLK_SECTOR ||
		    !in_range(dev, sector, data_len / BLK_SECTOR) ||
		    (dev->direct && (data_len % dev->blk_size ||
				     (sector * BLK_SECTOR) % dev->blk_size)))
			return;
		r->status = VIRTIO_BLK_S_OK;
		if (!data_len)
			return;
		if ((write ? take_data(r, out, e->out_num, sizeof(hdr),
				       data_len) :
			     take_data(r, in, e->in_num, 0, data_len)) < 0) {
			r->status = VIRTIO_BLK_S_IOERR;
			return;
		}
		r->op = write ? BLK_OP_WRITE : BLK_OP_READ;
		r->offset = sector * BLK_SECTOR;
		r->len = data_len;
		return;
	case VIRTIO_BLK_T_FLUSH:
		r->op = BLK_OP_FLUSH;
		return;
	case VIRTIO_BLK_T_GET_ID: {
		/* 5.2.6: up to 20 bytes, NUL-padded, not NUL-terminated */
		size_t l = e->in_len - 1 < VIRTIO_BLK_ID_BYTES ?
				   e->in_len - 1 :
				   VIRTIO_BLK_ID_BYTES;

		blk_buf_to_iov(in, e->in_num, 0, dev->serial, l);
		r->status = VIRTIO_BLK_S_OK;
		return;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		parse_dwz(q, r, type == VIRTIO_BLK_T_WRITE_ZEROES, e);
		return;
	default:
		r->status = VIRTIO_BLK_S_UNSUPP;
		return;
	}
}

/* ---------------------------------------------------------------------- */
/* inflight region (vhost-user.rst, "Inflight I/O tracking", split)       */
/* ---------------------------------------------------------------------- */

struct inflight_desc {
	uint8_t inflight;
	uint8_t padding[5];
	uint16_t next;
	uint64_t counter;
};

struct inflight_queue {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t last_batch_head;
	uint16_t used_idx;
	struct inflight_desc desc[];
};

#define INFLIGHT_VERSION 1

/*
 * The region outlives us; a store must not be reordered across another.
 * Our death is what the front-end waits for, so compiler ordering plus a
 * fence for the used ring (which the driver reads concurrently) is all.
 */
#define inflight_barrier() __atomic_thread_fence(__ATOMIC_SEQ_CST)

static struct inflight_queue *iq_of(struct blk_queue *q)
{
	return (struct inflight_queue *)(void *)q->inflight;
}

int blk_queue_pop(struct blk_queue *q, struct blk_req **out)
{
	struct inflight_queue *iq = iq_of(q);
	struct vh_devq_elem e = { .iov = q->iov, .iov_max = BLK_IOV_MAX };
	struct blk_req *r;
	int ret;

	ret = vh_devq_pop(q->vring, &e);
	if (ret <= 0) {
		/* at each kick while it stays: logged a few times only */
		if (ret == -ENOBUFS && q->warned < 8 && ++q->warned)
			blk_log(q->dev, "error",
				"queue %u: request with more than %u buffers: queue stalled\n",
				q->idx, BLK_IOV_MAX);
		return ret;
	}
	/* vh_devq never hands out a head twice; the table is by head */
	if (e.id >= q->nreqs || q->reqs[e.id].active)
		return -EIO;
	r = &q->reqs[e.id];
	/* "Inflight I/O tracking": counter, then the flag, before any I/O */
	if (iq) {
		iq->desc[e.id].counter = ++q->counter;
		inflight_barrier();
		iq->desc[e.id].inflight = 1;
		inflight_barrier();
	}
	parse(q, &e, r);
	r->active = true;
	*out = r;
	return 1;
}

void blk_queue_complete(struct blk_queue *q, struct blk_req *r)
{
	uint32_t len = 0;

	/*
	 * The used length is every writable byte, as QEMU's virtio-blk
	 * pushes it: the status byte is the last of them (5.2.6), and the
	 * dirty log marks the first len written bytes.  Counting only the
	 * data written and the status (an error, a short GET_ID buffer)
	 * would leave the status byte out of the log: a migrated guest
	 * could then see a stale status.
	 */
	if (r->status_ptr) {
		*r->status_ptr = r->status;
		len = r->in_len;
	}
	if (r->iov != r->inl)
		free(r->iov);
	r->iov = r->inl;
	r->niov = 0;
	free(r->bounce);
	r->bounce = NULL;
	q->used[q->ndone].id = r->head;
	q->used[q->ndone].len = len;
	q->ndone++;
}

/*
 * Push the completed requests as one batch, the way "Inflight I/O
 * tracking" says for a batch: link them from last_batch_head through
 * desc[].next, publish the used entries, then clear their flags and
 * record the used index.  Killed in between, the next instance finds
 * used->idx ahead of used_idx and clears exactly that many from the list.
 */
int blk_queue_flush_done(struct blk_queue *q)
{
	struct inflight_queue *iq = iq_of(q);
	unsigned int i, n = q->ndone;
	uint16_t used;
	int r;

	if (!n)
		return 0;
	q->ndone = 0;
	if (iq) {
		for (i = 0; i < n; i++) {
			uint16_t h = (uint16_t)q->used[i].id;

			iq->desc[h].next = iq->last_batch_head;
			iq->last_batch_head = h;
		}
		inflight_barrier();
	}
	r = vh_devq_push_batch(q->vring, q->used, n);
	for (i = 0; i < n; i++)
		q->reqs[q->used[i].id].active = false;
	if (r < 0)
		return r;
	if (iq) {
		inflight_barrier();
		for (i = 0; i < n; i++)
			iq->desc[q->used[i].id].inflight = 0;
		if (vh_devq_get_used_idx(q->vring, &used) == 0)
			iq->used_idx = used;
		inflight_barrier();
	}
	q->served += n;
	vh_devq_notify(q->vring);
	return 0;
}

struct resub {
	uint64_t counter;
	uint16_t head;
};

static int resub_cmp(const void *a, const void *b)
{
	const struct resub *x = a, *y = b;

	if (x->counter != y->counter)
		return x->counter < y->counter ? -1 : 1;
	return (int)x->head - (int)y->head;
}

/* The used ring moved past the region: clear the last batch's flags. */
static void settle_last_batch(struct blk_queue *q, unsigned int num,
			      uint16_t used)
{
	struct inflight_queue *iq = iq_of(q);
	uint16_t n = (uint16_t)(used - iq->used_idx);
	uint16_t h = iq->last_batch_head;
	unsigned int i;

	/* a batch is never larger than the ring (the region is hostile) */
	if (n > num)
		n = 0;
	for (i = 0; i < n && h < num; i++) {
		iq->desc[h].inflight = 0;
		h = iq->desc[h].next;
	}
	iq->used_idx = used;
}

/*
 * Reconnect: settle the last batch, then run again every descriptor still
 * marked in flight, in the order the previous instance took them, one at
 * a time (synchronously, whatever the engine).
 */
static int inflight_resubmit(struct blk_queue *q)
{
	struct inflight_queue *iq = iq_of(q);
	unsigned int num = vh_devq_get_num(q->vring), i, cnt = 0;
	struct resub *list;
	uint16_t used;
	int r;

	r = vh_devq_get_used_idx(q->vring, &used);
	if (r < 0)
		return r;
	if (iq->used_idx != used)
		settle_last_batch(q, num, used);
	list = calloc(num, sizeof(*list));
	if (!list)
		return -ENOMEM;
	for (i = 0; i < num; i++) {
		uint8_t f = iq->desc[i].inflight;

		if (f == 0)
			continue;
		if (f != 1) {
			/* the front-end scribbled on it: not ours to run */
			iq->desc[i].inflight = 0;
			continue;
		}
		list[cnt].counter = iq->desc[i].counter;
		list[cnt].head = (uint16_t)i;
		cnt++;
	}
	/*
	 * The avail ring was consumed up to used + in flight (what libvhost-
	 * user and QEMU's back-ends do as well): new requests start there.
	 */
	r = vh_devq_set_base(q->vring, (uint16_t)(used + cnt));
	if (r < 0)
		goto out;
	if (cnt)
		blk_log(q->dev, "info",
			"queue %u: resubmitting %u inflight requests (used idx %u)\n",
			q->idx, cnt, used);
	qsort(list, cnt, sizeof(*list), resub_cmp);
	/*
	 * The counters only order what is in flight: number it 1..cnt, in
	 * its order, and go on from there.  A front-end's counter of
	 * 2^64 - 1 would otherwise make ours wrap, and a second crash would
	 * resubmit the newest first.  In ascending order a death part way
	 * keeps the order: the i-th smallest of distinct counters >= 1 (the
	 * ones we write) is at least i.  Duplicates or zeros come from a
	 * front-end that wrote the region: its order means nothing anyway.
	 */
	for (i = 0; i < cnt; i++) {
		iq->desc[list[i].head].counter = i + 1;
		inflight_barrier();
	}
	q->counter = cnt;
	if (cnt) {
		q->resub_heads = calloc(cnt, sizeof(*q->resub_heads));
		if (!q->resub_heads) {
			r = -ENOMEM;
			goto out;
		}
		for (i = 0; i < cnt; i++)
			q->resub_heads[i] = list[i].head;
		q->resub_n = cnt;
		q->resub_next = 0;
	}
	r = blk_queue_resubmit(q);
	if (r >= 0)
		r = (int)cnt;
out:
	free(list);
	return r;
}

static void resub_drop(struct blk_queue *q)
{
	free(q->resub_heads);
	q->resub_heads = NULL;
	q->resub_n = q->resub_next = 0;
	q->resub_packed = false;
}

/* The split heads still to run again, oldest first. */
static int resubmit_split(struct blk_queue *q)
{
	struct vh_devq_elem e = { .iov = q->iov, .iov_max = BLK_IOV_MAX };
	int r;

	while (q->resub_next < q->resub_n) {
		uint16_t head = q->resub_heads[q->resub_next];
		struct blk_req *req = &q->reqs[head];

		r = vh_devq_pop_head(q->vring, head, &e);
		if (r == -EAGAIN)
			return 1; /* an IOTLB miss: after the update */
		if (r < 0) {
			if (q->warned < 8 && ++q->warned)
				blk_log(q->dev, "error",
					"queue %u: inflight head %u: %s\n",
					q->idx, head, strerror(-r));
			return r;
		}
		q->resub_next++;
		parse(q, &e, req);
		req->active = true;
		blk_req_run_sync(q, req);
		blk_queue_complete(q, req);
		if (q->ndone == BLK_SYNC_BATCH) {
			r = blk_queue_flush_done(q);
			if (r < 0)
				return r;
		}
	}
	resub_drop(q);
	return 0;
}

/* The packed ring's chains still to run again (it keeps the queue). */
static int resubmit_packed(struct blk_queue *q)
{
	struct vh_devq_elem e = { .iov = q->iov, .iov_max = BLK_IOV_MAX };
	int r;

	while ((r = vh_devq_pop_inflight(q->vring, &e)) == 1) {
		struct blk_req *req;

		if (e.id >= q->nreqs || q->reqs[e.id].active)
			return -EIO;
		req = &q->reqs[e.id];
		parse(q, &e, req);
		req->active = true;
		blk_req_run_sync(q, req);
		blk_queue_complete(q, req);
		if (q->ndone == BLK_SYNC_BATCH) {
			r = blk_queue_flush_done(q);
			if (r < 0)
				return r;
		}
	}
	/*
	 * An IOTLB miss waits for the update (1).  A chain with more pieces
	 * than our iovecs: at the queue's start the start fails (as for a
	 * split head); in a resubmission an IOTLB miss put off, the queue
	 * stalls, as it does at a pop and as a split head does here, tried
	 * again at each kick, the chains after it kept, not dropped.
	 */
	q->resub_packed = r == -EAGAIN || r == -ENOBUFS;
	if (r < 0 && r != -EAGAIN) {
		if (q->warned < 8 && ++q->warned)
			blk_log(q->dev, "error",
				"queue %u: inflight request: %s%s\n", q->idx,
				strerror(-r),
				r == -ENOBUFS ? ": queue stalled" : "");
		return r;
	}
	return q->resub_packed ? 1 : 0;
}

int blk_queue_resubmit(struct blk_queue *q)
{
	int r = 0, f;

	if (q->resub_heads)
		r = resubmit_split(q);
	else if (q->resub_packed)
		r = resubmit_packed(q);
	/* what completed goes back now, pending or not */
	f = blk_queue_flush_done(q);
	return r < 0 ? r : f < 0 ? f : r;
}

/*
 * Packed rings: the ring keeps the region (vh_devq_set_inflight()) and
 * hands back the chains in flight in order; they run as split ones do.
 */
static int inflight_resubmit_packed(struct blk_queue *q, struct vh_devq *vr,
				    void *region, size_t len)
{
	int cnt, r;

	cnt = vh_devq_set_inflight(vr, region, len);
	if (cnt < 0) {
		blk_log(q->dev, "error",
			"queue %u: inflight area of the packed ring: %s\n",
			q->idx, strerror(-cnt));
		return cnt;
	}
	if (cnt)
		blk_log(q->dev, "info",
			"queue %u: resubmitting %d inflight requests\n", q->idx,
			cnt);
	q->resub_packed = cnt > 0;
	r = blk_queue_resubmit(q);
	return r < 0 ? r : cnt;
}

/* ---------------------------------------------------------------------- */
/* queues                                                                 */
/* ---------------------------------------------------------------------- */

int blk_queue_init(struct blk_queue *q, struct blk_dev *dev, unsigned int idx)
{
	memset(q, 0, sizeof(*q));
	q->dev = dev;
	q->idx = idx;
	q->engine = dev->engine;
	q->thread = idx % (dev->num_threads ? dev->num_threads : 1);
	q->iov = calloc(BLK_IOV_MAX, sizeof(*q->iov));
	if (!q->iov)
		goto nomem;
	if (dev->direct &&
	    posix_memalign(&q->bounce, 65536, BLK_BOUNCE_SIZE) != 0)
		goto nomem;
	return 0;
nomem:
	blk_queue_fini(q);
	return -ENOMEM;
}

void blk_queue_fini(struct blk_queue *q)
{
	if (q->uring)
		blk_uring_fini(q);
	free(q->iov);
	free(q->bounce);
	free(q->resub_heads);
	free(q->reqs);
	free(q->used);
	q->iov = NULL;
	q->bounce = NULL;
	q->reqs = NULL;
	q->used = NULL;
}

int blk_queue_start(struct blk_queue *q, struct vh_devq *vr, void *region,
		    size_t len)
{
	unsigned int num = vh_devq_get_num(vr);
	struct inflight_queue *iq = region;
	int r;

	q->vring = vr;
	q->inflight = NULL;
	q->counter = 0;
	q->ndone = 0;
	resub_drop(q);
	free(q->reqs);
	free(q->used);
	q->nreqs = num;
	q->reqs = calloc(num, sizeof(*q->reqs));
	q->used = calloc(num, sizeof(*q->used));
	if (!q->reqs || !q->used) {
		q->vring = NULL;
		return -ENOMEM;
	}
	if (region &&
	    len < sizeof(*iq) + (size_t)num * sizeof(iq->desc[0])) {
		blk_log(q->dev, "warning",
			"queue %u: inflight area too small for %u descriptors: not tracked\n",
			q->idx, num);
		region = NULL;
	}
	/* packed rings: the ring records and recovers (QueueRegionPacked) */
	if (region && (q->dev->features & (1ull << 34 /* RING_PACKED */))) {
		r = inflight_resubmit_packed(q, vr, region, len);
		if (r < 0)
			goto fail;
		region = NULL;
	}
	/* a zeroed region the front-end made itself: initialize it */
	if (region && iq->version == 0 && iq->desc_num == 0) {
		iq->version = INFLIGHT_VERSION;
		iq->desc_num = (uint16_t)num;
	}
	if (region &&
	    (iq->version != INFLIGHT_VERSION || iq->desc_num != num)) {
		blk_log(q->dev, "warning",
			"queue %u: inflight area version %u for %u descriptors, ring has %u: not tracked\n",
			q->idx, iq->version, iq->desc_num, num);
		region = NULL;
	}
	if (region) {
		q->inflight = region;
		r = inflight_resubmit(q);
		if (r < 0)
			goto fail;
	}
	if (q->engine == BLK_IO_URING) {
		r = blk_uring_start(q);
		if (r < 0)
			goto fail;
	}
	return 0;
fail:
	vh_devq_set_inflight(vr, NULL, 0);
	resub_drop(q);
	q->vring = NULL;
	q->inflight = NULL;
	return r;
}

/* The sync engine: pop a batch (marked in flight), run it, push it. */
static int sync_process(struct blk_queue *q)
{
	struct blk_req *batch[BLK_SYNC_BATCH];
	unsigned int n, i;
	int popped = 0, err = 0, r;
	bool empty = false;

	vh_devq_disable_notification(q->vring);
	while (!empty && !err) {
		if (popped >= BLK_CALL_MAX) {
			/* come back through the worker's loop (BLK_CALL_MAX) */
			vh_devq_enable_notification(q->vring);
			vh_daemon_poll_queue(q->dev->daemon, q->idx);
			break;
		}
		for (n = 0; n < BLK_SYNC_BATCH;) {
			r = blk_queue_pop(q, &batch[n]);
			if (r == 1) {
				n++;
				continue;
			}
			if (r == 0 &&
			    vh_devq_enable_notification(q->vring) == 1) {
				vh_devq_disable_notification(q->vring);
				continue;
			}
			if (r < 0) {
				vh_devq_enable_notification(q->vring);
				/* IOTLB miss: the update re-kicks the ring */
				if (r != -EAGAIN)
					err = r;
			}
			empty = true;
			break;
		}
		for (i = 0; i < n; i++) {
			blk_req_run_sync(q, batch[i]);
			blk_queue_complete(q, batch[i]);
		}
		popped += (int)n;
		r = blk_queue_flush_done(q);
		if (r < 0)
			return r;
	}
	return err ? err : popped;
}

int blk_queue_process(struct blk_queue *q)
{
	int r;

	if (!q->vring)
		return -EINVAL;
	/* a previous instance's requests first (waiting for the IOTLB) */
	if (q->resub_heads || q->resub_packed) {
		r = blk_queue_resubmit(q);
		if (r != 0)
			return r < 0 ? r : 0;
	}
	if (q->engine == BLK_IO_URING)
		return blk_uring_process(q);
	return sync_process(q);
}

void blk_queue_stop(struct blk_queue *q)
{
	/* the uring engine completes (and pushes) what is in flight first */
	if (q->engine == BLK_IO_URING && q->vring)
		blk_uring_stop(q);
	/* the region outlives the ring: stop writing to it */
	if (q->vring)
		vh_devq_set_inflight(q->vring, NULL, 0);
	resub_drop(q);
	q->vring = NULL;
	q->inflight = NULL;
}
