/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Virtqueues (virtio 1.x, 2.7 "Split Virtqueues" and 2.8 "Packed
 * Virtqueues"), both sides, one API for both layouts: the layout follows
 * VIRTIO_F_RING_PACKED in the negotiated features, callers do not branch.
 *
 * vh_devq - device side: what a backend uses to consume a ring a driver
 * filled (vhost-user backends, tests).  Everything in the ring is hostile: a
 * malformed chain marks the ring broken (sticky), is logged through the ctx
 * and makes vh_devq_pop() return -EIO.  Memory outside the vh_mem regions is
 * never touched.
 *
 * vh_drvq - driver side: what a guest driver does, in userspace (selftests,
 * vhostctl checks, the vhost-user frontend).  The device is hostile too: a
 * used id we did not hand out or a length beyond the buffers is -EIO.
 *
 * Threading: one vh_devq (one vh_drvq) is used by one thread at a time; the
 * other end of the ring may be anywhere.  See libvhost-mem.h for how vrings
 * and concurrent guest memory changes interact.
 *
 * Packed rings: elem->id and the ids pushed are buffer ids (below the
 * queue size), elem->ndescs the ring descriptors the buffer occupies; the
 * ring "areas" are the descriptor ring and the driver and device event
 * suppression structures (vhost-user SET_VRING_ADDR desc/avail/used).
 */
#ifndef _LIBVHOST_VRING_H_
#define _LIBVHOST_VRING_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vh_ctx;
struct vh_mem;

/* 2.7: Queue Size is a power of 2, at most 32768. */
#define VH_DEVQ_MAX_SIZE 32768
/*
 * An indirect table holds at most max(num, VH_DEVQ_INDIRECT_MIN_CAP)
 * descriptors (Linux drivers may exceed small ring sizes with indirect).
 */
#define VH_DEVQ_INDIRECT_MIN_CAP 1024

/* ------------------------------------------------------------------------ */
/* device side                                                              */
/* ------------------------------------------------------------------------ */
struct vh_devq;

/*
 * One popped element.  The caller sets iov and iov_max; pop fills the rest.
 * iov[0 .. out_num) are the device-readable buffers, iov[out_num .. out_num +
 * in_num) the device-writable ones.  A descriptor may yield several iovecs
 * when its buffer spans adjacent regions.  The iovecs stay valid until the
 * element is pushed (see libvhost-mem.h).
 */
struct vh_devq_elem {
	uint16_t id;         /* head index, to pass to vh_devq_push() */
	uint16_t ndescs;     /* ring descriptors the chain occupies */
	unsigned int out_num, in_num;
	uint32_t out_len, in_len; /* total bytes of each kind */
	struct iovec *iov;   /* caller-provided */
	unsigned int iov_max;
};

/* Same layout as struct vring_used_elem (2.7.8). */
struct vh_devq_used_elem {
	uint32_t id;
	uint32_t len;
};

/* desc/avail/used are the peer's virtual addresses (vhost-user), else GPAs. */
#define VH_DEVQ_ADDR_UVA (1u << 0)
/* log used-ring writes at addr.log (VHOST_VRING_F_LOG) */
#define VH_DEVQ_ADDR_LOG (1u << 1)

struct vh_devq_addr {
	uint64_t desc, avail, used; /* ring areas */
	/*
	 * GPA of the used ring (packed: of the device area), for dirty
	 * logging; not used under the IOTLB (ACCESS_PLATFORM), where QEMU
	 * sends an IOVA: the rings are logged through their translations
	 */
	uint64_t log;
	unsigned int flags;         /* VH_DEVQ_ADDR_* */
};

int vh_devq_new(struct vh_ctx *ctx, struct vh_mem *mem, unsigned int index,
		 struct vh_devq **vr);
struct vh_devq *vh_devq_ref(struct vh_devq *vr);
struct vh_devq *vh_devq_unref(struct vh_devq *vr);

unsigned int vh_devq_get_index(const struct vh_devq *vr);

/*
 * Setup calls (set_num, set_addr, set_features, set_base, reset) belong to
 * the control path: they may not run concurrently with pop/push on the same
 * vring, and set_num/set_addr/reset forget elements still in flight.
 *
 * Queue size: a power of two, 1..VH_DEVQ_MAX_SIZE (packed rings, set the
 * features first: any size in that range), else -EINVAL.
 */
int vh_devq_set_num(struct vh_devq *vr, unsigned int num);
unsigned int vh_devq_get_num(const struct vh_devq *vr);

/*
 * Ring addresses.  Translated once the size is known (now, or at
 * vh_devq_set_num()), each area wholly inside one region and aligned (2.7:
 * desc 16, avail 2, used 4): -EFAULT / -EINVAL otherwise.  The used index is
 * (re)read from the ring when the areas are mapped.
 */
int vh_devq_set_addr(struct vh_devq *vr, const struct vh_devq_addr *a);

/*
 * Negotiated features.  Interpreted: VIRTIO_RING_F_EVENT_IDX,
 * VIRTIO_RING_F_INDIRECT_DESC, VIRTIO_F_NOTIFY_ON_EMPTY, VIRTIO_F_VERSION_1,
 * VHOST_F_LOG_ALL (log the guest buffers a push reports written) and
 * VIRTIO_F_RING_PACKED (the packed layout; switching layouts sets the ring
 * up anew: size and addresses are kept, in-flight elements and base are
 * not); other bits are ignored.  The features are taken even when the
 * kept addresses no longer map under them (another layout, event idx
 * areas past their region, ACCESS_PLATFORM switched): the ring is then
 * unmapped until vh_devq_set_addr(), and -EFAULT / -EINVAL / -EACCES
 * says so; -ENOMEM leaves the ring unmapped too.
 */
int vh_devq_set_features(struct vh_devq *vr, uint64_t features);

/*
 * Ring state (vhost-user GET/SET_VRING_BASE).  Split: the next avail index
 * to consume (last_avail_idx), 0..65535 (-EINVAL above).  Packed
 * (vhost-user.rst "vring descriptor indices for packed virtqueues"): bits
 * 0-14 the next available position, 15 its wrap counter, 16-30 the next
 * used position, 31 its wrap counter; an upper half of 0 means used =
 * avail (front-ends that send the avail half only).  A fresh packed ring is
 * 0x80008000.  -EINVAL for a position beyond a known queue size.
 */
int vh_devq_set_base(struct vh_devq *vr, uint32_t base);
int vh_devq_get_base(struct vh_devq *vr, uint32_t *base);

/* Eventfds: the vring takes ownership of fd; -1 closes and clears. */
int vh_devq_set_kick_fd(struct vh_devq *vr, int fd);
int vh_devq_set_call_fd(struct vh_devq *vr, int fd);
int vh_devq_set_err_fd(struct vh_devq *vr, int fd);
int vh_devq_get_kick_fd(const struct vh_devq *vr);
int vh_devq_get_call_fd(const struct vh_devq *vr);
/* Consume a pending kick (non-blocking read of the kick eventfd): 1 kicked, 0 not. */
int vh_devq_read_kick(struct vh_devq *vr);

/*
 * Pop the next available chain.  Returns 1 with *elem filled, 0 when the
 * ring is empty, -EIO if the ring is broken (logged once; sticky until
 * vh_devq_reset() or new vh_devq_set_num()/set_addr()), -ENOBUFS if
 * elem->iov_max is too small (the element stays in the ring), -EINVAL if the
 * size or addresses are not set.  Datapath calls: vr and elem must not be
 * NULL (vh_devq_push() likewise).
 *
 * With VIRTIO_RING_F_EVENT_IDX and notifications enabled, a pop that finds
 * the ring empty re-arms avail_event itself (and re-checks), so a simple
 * "pop until 0, then wait for a kick" loop never misses one; a busy device
 * uses vh_devq_disable_notification() / vh_devq_enable_notification().
 */
int vh_devq_pop(struct vh_devq *vr, struct vh_devq_elem *elem);
/*
 * Pop up to n chains into elems[0..n), each with its own iov/iov_max: the
 * same as calling vh_devq_pop() until it does not return 1, with the
 * per-call checks paid once per run of simple elements.  Returns the number
 * popped (0 when the ring is empty); an error after some elements were
 * popped returns their count, and the next call reports it.
 */
int vh_devq_pop_batch(struct vh_devq *vr, struct vh_devq_elem *elems,
		       unsigned int n);

/*
 * Inflight I/O resubmission (vhost-user.rst, "Inflight I/O tracking"): map
 * the chain at descriptor head, which an earlier instance of the device
 * popped but never pushed, as if popped now.  The avail index is not
 * touched (set it with vh_devq_set_base()).  1 with *elem filled, -EINVAL
 * if head is out of range or already popped, -EIO if the chain is
 * malformed (the ring is then broken), -ENOBUFS as vh_devq_pop(),
 * -EOPNOTSUPP on a packed ring (see vh_devq_set_inflight()).
 */
int vh_devq_pop_head(struct vh_devq *vr, uint16_t head,
		      struct vh_devq_elem *elem);
/*
 * Packed rings: inflight I/O tracking in the front-end's region of this
 * queue (vhost-user.rst, "Inflight I/O tracking", QueueRegionPacked; len
 * bytes, 8-byte aligned).  A packed chain can be overwritten by used
 * descriptors while in flight, so the ring itself records its descriptors
 * there: from now on every pop is recorded before it is returned, every
 * push follows the batch protocol.  Call it on a started ring before any
 * pop.  A region written by an earlier instance is recovered: a half-done
 * used batch is completed or rolled back, the chains still in flight are
 * queued for vh_devq_pop_inflight() in the order they were popped, and
 * the ring positions are taken from the region (the front-end cannot know
 * them after a device died, and drops the region at a device reset) unless
 * it is at a fresh ring's position with nothing to redo (as
 * GET_INFLIGHT_FD makes it).  Every value of the region is checked.
 * Returns the number of chains to resubmit (>= 0); -EINVAL for a region
 * that is too small or unaligned, of another version or size, or
 * inconsistent (loops, entries or ids out of range or taken twice);
 * -EBUSY if elements are in flight; -EOPNOTSUPP on a split ring (its
 * layout, QueueRegionSplit, only needs heads: the caller keeps it).
 * region NULL detaches (the ring also detaches when it is reset or
 * unmapped).
 */
int vh_devq_set_inflight(struct vh_devq *vr, void *region, size_t len);
/*
 * The next chain vh_devq_set_inflight() found in flight, mapped as if
 * popped now (its descriptors come from the region).  1 with *elem filled,
 * 0 when none is left, errors as vh_devq_pop().
 */
int vh_devq_pop_inflight(struct vh_devq *vr, struct vh_devq_elem *elem);
/*
 * The next used index the device writes (used->idx as last mapped/pushed);
 * packed: the next used position | its wrap counter << 15.
 */
int vh_devq_get_used_idx(const struct vh_devq *vr, uint16_t *idx);

/*
 * Return a popped chain with len bytes written to its writable buffers.
 * -EINVAL if id is not a popped, unpushed head; -EIO if the ring broke since
 * the pop (the element is released, nothing is written).  The used index is
 * published (release) before returning; with a dirty log, the used ring and
 * (VHOST_F_LOG_ALL) the first len writable bytes of the chain are marked.
 */
int vh_devq_push(struct vh_devq *vr, uint16_t id, uint32_t len);
/*
 * Push n elements at once, all or nothing (-EINVAL and nothing written if
 * an id is not in flight or named twice), with one used->idx update.
 */
int vh_devq_push_batch(struct vh_devq *vr,
			const struct vh_devq_used_elem *used, unsigned int n);

/* Popped but not yet pushed elements. */
unsigned int vh_devq_inflight(const struct vh_devq *vr);

/*
 * 1 if the driver wants an interrupt for what was pushed since the last
 * notification (event idx with signalled-used tracking, else
 * VRING_AVAIL_F_NO_INTERRUPT, and NOTIFY_ON_EMPTY), 0 otherwise.
 */
int vh_devq_need_notify(struct vh_devq *vr);
/* Write the call eventfd if vh_devq_need_notify(): 1 notified, 0 not. */
int vh_devq_notify(struct vh_devq *vr);

/*
 * Ask the driver for kicks again (clear VRING_USED_F_NO_NOTIFY / write
 * avail_event).  Returns 1 if buffers became available meanwhile: the caller
 * must pop again before sleeping.
 */
int vh_devq_enable_notification(struct vh_devq *vr);
int vh_devq_disable_notification(struct vh_devq *vr);

int vh_devq_is_broken(const struct vh_devq *vr);
/* Available chains not yet popped; -EIO if avail->idx is more than num ahead. */
int vh_devq_avail_count(struct vh_devq *vr, uint16_t *n);

/*
 * Mark guest memory written by the device dirty, when the dirty log is on
 * (VHOST_F_LOG_ALL negotiated and a log set on the vh_mem); 0 otherwise.
 */
int vh_devq_log_write(struct vh_devq *vr, uint64_t gpa, uint64_t len);

/*
 * Forget the ring: size, addresses, base, in-flight elements, broken state
 * and the pinned memory snapshot.  Eventfds and features stay.
 */
int vh_devq_reset(struct vh_devq *vr);

/* ------------------------------------------------------------------------ */
/* driver side                                                              */
/* ------------------------------------------------------------------------ */
struct vh_drvq;

/* A buffer as the device sees it (GPA, or IOVA for vDPA). */
struct vh_sg {
	uint64_t addr;
	uint32_t len;
};

/*
 * Bytes of guest memory for a ring of num entries, laid out from a 16-byte
 * aligned start (2.7 "Virtqueue Alignment"):
 *   desc   at 0:                      16 * num
 *   avail  at 16 * num:               flags, idx, ring[num], used_event
 *                                     (6 + 2 * num)
 *   used   at the next multiple of 4: flags, idx, ring[num], avail_event
 *                                     (6 + 8 * num)
 * 0 if num is not a valid queue size.
 */
size_t vh_drvq_ring_bytes(unsigned int num);

/*
 * Lay a ring of num entries out at ring_gpa (16-aligned, vh_drvq_ring_bytes()
 * wholly inside one region of mem) and zero it.
 */
int vh_drvq_new(struct vh_ctx *ctx, struct vh_mem *mem, unsigned int index,
	      unsigned int num, uint64_t ring_gpa, struct vh_drvq **vq);
struct vh_drvq *vh_drvq_ref(struct vh_drvq *vq);
struct vh_drvq *vh_drvq_unref(struct vh_drvq *vq);

/*
 * VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC and
 * VIRTIO_F_RING_PACKED matter; set before use.  VIRTIO_F_RING_PACKED lays a
 * packed ring out in the same memory (descriptor ring, then the driver and
 * the device event suppression structures, 4 bytes each: see
 * vh_drvq_get_addrs()) and zeroes it; switching layouts with buffers in
 * flight is -EBUSY.
 */
int vh_drvq_set_features(struct vh_drvq *vq, uint64_t features);
unsigned int vh_drvq_get_num(const struct vh_drvq *vq);
int vh_drvq_get_addrs(struct vh_drvq *vq, uint64_t *desc_gpa,
		      uint64_t *avail_gpa, uint64_t *used_gpa);
/* Our mappings of the areas (kernel vhost wants userspace addresses). */
int vh_drvq_get_host_addrs(struct vh_drvq *vq, void **desc, void **avail,
			 void **used);

/*
 * Expose out device-readable then in device-writable buffers as one direct
 * chain; token (not NULL) comes back from vh_drvq_get_used().  -ENOSPC if not
 * enough free descriptors, -EINVAL for no buffers, a NULL token or a
 * zero-length buffer.
 */
int vh_drvq_add(struct vh_drvq *vq, const struct vh_sg *sg, unsigned int out,
	      unsigned int in, void *token);
/*
 * Guest memory the vq carves indirect tables from: one slot of size / num
 * bytes (rounded down to 16) per descriptor.
 */
int vh_drvq_set_indirect_area(struct vh_drvq *vq, uint64_t gpa, size_t size);
/*
 * As vh_drvq_add() with one ring descriptor and an indirect table; -E2BIG
 * if the slot is too small.
 */
int vh_drvq_add_indirect(struct vh_drvq *vq, const struct vh_sg *sg,
		       unsigned int out, unsigned int in, void *token);

/*
 * Publish the avail index (release).  1 if buffers were added since the
 * last call and the device wants a kick (event idx, else
 * !VRING_USED_F_NO_NOTIFY), 0 otherwise.
 */
int vh_drvq_kick_prepare(struct vh_drvq *vq);
/* Eventfds, not owned: the caller keeps and closes them. */
int vh_drvq_set_kick_fd(struct vh_drvq *vq, int fd);
int vh_drvq_set_call_fd(struct vh_drvq *vq, int fd);
/* kick_prepare, then write the kick eventfd if wanted: 1 kicked, 0 not. */
int vh_drvq_kick(struct vh_drvq *vq);

/*
 * Take one used buffer: 1 with *token and *len (bytes the device wrote), 0
 * if none, -EIO if the device returned an id we did not give it or a length
 * beyond the chain's writable bytes (the vq is then broken).
 */
int vh_drvq_get_used(struct vh_drvq *vq, void **token, uint32_t *len);

/*
 * Ask for (enable) or suppress (disable) used-buffer notifications
 * (used_event, else VRING_AVAIL_F_NO_INTERRUPT).  enable returns 1 if used
 * entries are already pending, 0 if not, -EIO on a broken ring.
 */
int vh_drvq_enable_cb(struct vh_drvq *vq);
int vh_drvq_disable_cb(struct vh_drvq *vq);

/* Free descriptors. */
int vh_drvq_num_free(const struct vh_drvq *vq);
int vh_drvq_is_broken(const struct vh_drvq *vq);

#ifdef __cplusplus
}
#endif

#endif
