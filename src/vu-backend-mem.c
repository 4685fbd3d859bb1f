// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vhost-user back-end: the front-end's memory (SET_MEM_TABLE, ADD/REM_MEM_REG),
 * the dirty log (SET_LOG_BASE) and the inflight region (GET/SET_INFLIGHT_FD).
 *
 * Every region, log and inflight area is checked before it is mapped: no
 * overflow of address + size, and the fd must really hold the bytes we map
 * (a mapping past the end of a file faults with SIGBUS on first access).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libvhost-mem.h"
#include "mem-internal.h"
#include "vu-backend-internal.h"

/* a + b without wrapping past 2^64 */
static bool add_overflows(uint64_t a, uint64_t b)
{
	return a + b < a;
}

/*
 * Does fd hold [offset, offset + size)?  Only regular files (memfd,
 * hugetlbfs, tmpfs) have a size to check; character devices (device
 * memory) are left to mmap(); any other fd (a block device, an anonymous
 * inode such as a KVM vcpu fd) would fault past its end: refused.
 */
static int fd_covers(struct vh_vu_backend *be, int fd, uint64_t offset,
		     uint64_t size)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
		vh_err(be->ctx, "fd is not a file or a character device\n");
		return -EINVAL;
	}
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < offset + size) {
		vh_err(be->ctx, "fd holds %llu bytes, %llu needed\n",
		       (unsigned long long)st.st_size,
		       (unsigned long long)(offset + size));
		return -EINVAL;
	}
	return 0;
}

/* "Memory region description": sizes and overflow (Rules: SET_MEM_TABLE). */
static int region_ok(struct vh_vu_backend *be, const struct vh_vu_mem_region *r,
		     int fd)
{
	if (r->size == 0 || add_overflows(r->guest_addr, r->size) ||
	    add_overflows(r->user_addr, r->size) ||
	    add_overflows(r->mmap_offset, r->size)) {
		vh_err(be->ctx,
		       "region gpa %#llx size %#llx uva %#llx off %#llx: bad\n",
		       (unsigned long long)r->guest_addr,
		       (unsigned long long)r->size,
		       (unsigned long long)r->user_addr,
		       (unsigned long long)r->mmap_offset);
		return -EINVAL;
	}
	return fd < 0 ? 0 : fd_covers(be, fd, r->mmap_offset, r->size);
}

/* The device hears of the new table while its rings are still stopped. */
static void memory_changed(struct vh_vu_backend *be)
{
	if (be->ops.memory_updated)
		be->ops.memory_updated(be, be->data);
	vu_be_resume_all(be);
}

/*
 * A dirty log must cover all guest memory: a page past its end would go
 * unlogged, and a migration lose it without a word.  QEMU grows the log
 * before a memory table that needs more, and shrinks it after
 * (vhost_commit()), while logging is on.  end: the end of the memory as it
 * will be; log_size: the log's bytes, 0 for the current log (none, or
 * logging off: nothing to cover).
 */
static int log_covers(struct vh_vu_backend *be, uint64_t end,
		      uint64_t log_size, const char *what)
{
	/*
	 * The current log counts only while logging is on: after a
	 * migration that ended without us (cancelled, failed), QEMU drops
	 * LOG_ALL and frees its log without a word, and grows no log for
	 * the memory it adds later
	 */
	if (!log_size && !(be->features & (1ull << VH_VU_VHOST_F_LOG_ALL)))
		return 0;
	if (!log_size) {
		struct vh_mem_table *t = vh_mem_table_get(be->mem);

		log_size = t->log ? t->log->size : UINT64_MAX;
		vh_mem_table_put(t);
	}
	if (log_size >= vh_mem_log_size_for(end))
		return 0;
	vh_err(be->ctx,
	       "%s: a dirty log of %llu bytes does not cover guest memory up to %#llx\n",
	       what, (unsigned long long)log_size, (unsigned long long)end);
	return -EINVAL;
}

/* The end of guest memory as it is. */
static uint64_t mem_end(struct vh_vu_backend *be)
{
	struct vh_mem_table *t = vh_mem_table_get(be->mem);
	uint64_t end = t->n ? t->r[t->n - 1].gpa + t->r[t->n - 1].size : 0;

	vh_mem_table_put(t);
	return end;
}

int vu_be_set_mem_table(struct vh_vu_backend *be, struct vh_vu_msg *msg)
{
	const struct vh_vu_mem_table *t = &msg->payload.mem;
	struct vh_mem_region regs[VH_VU_MAX_MEM_REGIONS];
	unsigned int i, n = t->nregions;
	uint64_t end = 0;
	int r;

	/* "region count equals fd count, at most the slot limit" */
	if (n > VH_VU_MAX_MEM_REGIONS || n != msg->nfds ||
	    n > be->dev.max_mem_slots) {
		vh_err(be->ctx, "SET_MEM_TABLE: %u regions, %u fds\n", n,
		       msg->nfds);
		return -EINVAL;
	}
	memset(regs, 0, sizeof(regs));
	for (i = 0; i < n; i++) {
		r = region_ok(be, &t->regions[i], msg->fds[i]);
		if (r < 0)
			return r;
		regs[i].gpa = t->regions[i].guest_addr;
		regs[i].size = t->regions[i].size;
		regs[i].user_addr = t->regions[i].user_addr;
		regs[i].fd_offset = t->regions[i].mmap_offset;
		regs[i].fd = msg->fds[i];
		if (regs[i].gpa + regs[i].size > end)
			end = regs[i].gpa + regs[i].size;
	}
	r = log_covers(be, end, 0, "SET_MEM_TABLE");
	if (r < 0)
		return r;

	/* Rings hold pointers into the old table: stop them around the swap. */
	vu_be_quiesce_all(be);
	r = vh_mem_set_table(be->mem, regs, n);
	if (r < 0) {
		vh_err(be->ctx, "SET_MEM_TABLE: cannot map: %d\n", r);
		vu_be_resume_all(be);
		return r;
	}
	/* the vh_mem owns the fds now */
	for (i = 0; i < n; i++)
		msg->fds[i] = -1;
	msg->nfds = 0;
	vu_be_iotlb_mem_changed(be);
	memory_changed(be);
	return 0;
}

/*
 * Is reg, backed by fd, exactly a region we already have: same addresses,
 * size and offset, in the same file?
 */
static bool region_present(struct vh_vu_backend *be,
			   const struct vh_vu_mem_region *reg, int fd)
{
	struct vh_mem_region cur;
	struct stat a, b;
	unsigned int i;

	if (fstat(fd, &a) < 0)
		return false;
	for (i = 0; vh_mem_get_region(be->mem, i, &cur) == 0; i++)
		if (cur.gpa == reg->guest_addr && cur.size == reg->size &&
		    cur.user_addr == reg->user_addr &&
		    cur.fd_offset == reg->mmap_offset &&
		    fstat(cur.fd, &b) == 0 && a.st_dev == b.st_dev &&
		    a.st_ino == b.st_ino)
			return true;
	return false;
}

int vu_be_add_mem_reg(struct vh_vu_backend *be, struct vh_vu_msg *msg)
{
	const struct vh_vu_mem_region *reg = &msg->payload.mem_reg.region;
	uint64_t end;
	int r, n;

	r = region_ok(be, reg, msg->fds[0]);
	if (r < 0)
		return r;
	/*
	 * Older QEMU (7.2, Debian 12's) sends ADD_MEM_REG once per vhost
	 * device, so a multiqueue net front-end adds each region once per
	 * queue pair (newer QEMU sends it once per connection).
	 * The identical region again is a no-op (its fd is closed unused);
	 * any other overlap is refused by vh_mem_add_fd() below.
	 */
	if (region_present(be, reg, msg->fds[0])) {
		vh_dbg(be->ctx, "ADD_MEM_REG: gpa %#llx already mapped\n",
		       (unsigned long long)reg->guest_addr);
		return 0;
	}
	end = mem_end(be);
	if (reg->guest_addr + reg->size > end)
		end = reg->guest_addr + reg->size;
	r = log_covers(be, end, 0, "ADD_MEM_REG");
	if (r < 0)
		return r;
	n = vh_mem_num_regions(be->mem);
	if (n < 0 || (unsigned int)n >= be->dev.max_mem_slots) {
		vh_err(be->ctx, "ADD_MEM_REG: all %u slots in use\n",
		       be->dev.max_mem_slots);
		return -ENOSPC;
	}
	vu_be_quiesce_all(be);
	r = vh_mem_add_fd(be->mem, reg->guest_addr, reg->size, reg->user_addr,
			  msg->fds[0], reg->mmap_offset);
	if (r < 0) {
		vh_err(be->ctx, "ADD_MEM_REG: %d\n", r);
		vu_be_resume_all(be);
		return r;
	}
	msg->fds[0] = -1;
	msg->nfds = 0;
	memory_changed(be);
	return 0;
}

int vu_be_rem_mem_reg(struct vh_vu_backend *be, struct vh_vu_msg *msg)
{
	const struct vh_vu_mem_region *reg = &msg->payload.mem_reg.region;
	struct vh_mem_region cur;
	unsigned int i;
	int r;

	/* a stray fd is closed unused by the caller ("MUST close it") */
	r = region_ok(be, reg, -1);
	if (r < 0)
		return r;
	/* identified by guest address, user address and size */
	for (i = 0; vh_mem_get_region(be->mem, i, &cur) == 0; i++)
		if (cur.gpa == reg->guest_addr && cur.size == reg->size &&
		    cur.user_addr == reg->user_addr)
			break;
	if (vh_mem_get_region(be->mem, i, &cur) < 0) {
		vh_warn(be->ctx, "REM_MEM_REG: no region gpa %#llx\n",
			(unsigned long long)reg->guest_addr);
		return VU_SOFT_FAIL; /* turned down, the connection stays */
	}
	vu_be_quiesce_all(be);
	r = vh_mem_remove(be->mem, reg->guest_addr, reg->size);
	if (r == 0)
		vu_be_iotlb_mem_changed(be);
	memory_changed(be);
	return r;
}

/* Largest dirty log we map: covers 2^44 bytes (16 TiB) of guest memory. */
#define VU_BE_LOG_MAX (1ull << 29)

int vu_be_set_log_base(struct vh_vu_backend *be, struct vh_vu_msg *msg)
{
	const struct vh_vu_log *log = &msg->payload.log;
	int r;

	/* "same for ... the log": no overflow, bounded, inside the fd */
	if (log->size == 0 || log->size > VU_BE_LOG_MAX ||
	    add_overflows(log->offset, log->size)) {
		vh_err(be->ctx, "SET_LOG_BASE size %#llx offset %#llx\n",
		       (unsigned long long)log->size,
		       (unsigned long long)log->offset);
		return -EINVAL;
	}
	r = fd_covers(be, msg->fds[0], log->offset, log->size);
	if (r == 0)
		r = log_covers(be, mem_end(be), log->size, "SET_LOG_BASE");
	if (r < 0)
		return r;
	r = vh_mem_log_set(be->mem, msg->fds[0], log->size, log->offset);
	if (r < 0) {
		vh_err(be->ctx, "SET_LOG_BASE: cannot map the log: %d\n", r);
		return r;
	}
	msg->fds[0] = -1;
	msg->nfds = 0;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* inflight I/O tracking ("Inflight I/O tracking")                          */
/* ------------------------------------------------------------------------ */
/* QueueRegionSplit header: features u64, version, desc_num,
 * last_batch_head, used_idx (u16 each) */
#define VU_BE_INFLIGHT_HDR 16u
/* DescStateSplit: inflight u8, padding[5], next u16, counter u64 */
#define VU_BE_INFLIGHT_DESC 16u
/* QueueRegionPacked: 32-byte header, DescStatePacked: 32 bytes */
#define VU_BE_INFLIGHT_PK_HDR 32u
#define VU_BE_INFLIGHT_PK_DESC 32u

/*
 * Bytes per queue: the layout follows the ring layout negotiated before
 * GET_INFLIGHT_FD (QEMU sets the features first for this reason), and
 * version/desc_num sit at the same offsets in both.
 */
uint64_t vu_be_inflight_queue_bytes(unsigned int queue_size, bool packed)
{
	uint64_t n;

	if (!queue_size || queue_size > VH_DEVQ_MAX_SIZE ||
	    (!packed && (queue_size & (queue_size - 1))))
		return 0;
	if (packed)
		n = VU_BE_INFLIGHT_PK_HDR +
		    (uint64_t)VU_BE_INFLIGHT_PK_DESC * queue_size;
	else
		n = VU_BE_INFLIGHT_HDR +
		    (uint64_t)VU_BE_INFLIGHT_DESC * queue_size;
	return (n + VU_BE_INFLIGHT_ALIGN - 1) &
	       ~(uint64_t)(VU_BE_INFLIGHT_ALIGN - 1);
}

void vu_be_inflight_drop(struct vh_vu_backend *be)
{
	if (be->inflight_base)
		munmap(be->inflight_base, be->inflight_map_size);
	vh_close_peer_fd(be->inflight_fd);
	be->inflight_base = NULL;
	be->inflight_fd = -1;
	be->inflight_map_size = 0;
	be->inflight_offset = 0;
	be->inflight_size = 0;
	be->inflight_num_queues = 0;
	be->inflight_queue_size = 0;
	be->inflight_qbytes = 0;
}

static bool inflight_packed(const struct vh_vu_backend *be)
{
	return be->features & (1ull << VH_VU_VIRTIO_F_RING_PACKED);
}

/*
 * A ring keeps writing to the region while it runs: replacing (unmapping)
 * it under a started queue would leave the device writing to freed memory.
 */
static int inflight_busy(struct vh_vu_backend *be)
{
	unsigned int i;

	for (i = 0; be->queues && i < be->dev.num_queues; i++)
		if (be->queues[i].started) {
			vh_err(be->ctx, "inflight: queue %u is running\n", i);
			return -EBUSY;
		}
	return 0;
}

/* num_queues and queue_size from the front-end, checked against the device */
static int inflight_geometry(struct vh_vu_backend *be,
			     const struct vh_vu_inflight *in, uint64_t *size)
{
	uint64_t q = vu_be_inflight_queue_bytes(in->queue_size,
						inflight_packed(be));

	if (in->num_queues == 0 || in->num_queues > be->dev.num_queues ||
	    in->queue_size > be->dev.max_queue_size || q == 0) {
		vh_err(be->ctx, "inflight: %u queues of %u: out of range\n",
		       in->num_queues, in->queue_size);
		return -EINVAL;
	}
	*size = q * in->num_queues;
	return 0;
}

int vu_be_get_inflight_fd(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			  struct vh_vu_msg *reply)
{
	const struct vh_vu_inflight *in = &msg->payload.inflight;
	uint64_t size, q;
	uint8_t *base;
	int fd, r;

	r = inflight_geometry(be, in, &size);
	if (r == 0)
		r = inflight_busy(be);
	if (r < 0)
		return r;
	fd = memfd_create("vhost-user-inflight",
			  MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	/* the front-end keeps it across our restarts: size is fixed */
	fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		r = -errno;
		close(fd);
		return r;
	}
	/*
	 * Left as ftruncate made it, all zero: version 0, an "uninitialized
	 * buffer" that a queue initializes when it first uses it
	 * (vh_devq_set_inflight() for packed rings, the device for split
	 * ones).  Written here, every page would be ours (memory charged to
	 * us) for as long as the front-end keeps the fd, and a front-end
	 * asking again and again would hold any amount of it.
	 */
	q = vu_be_inflight_queue_bytes(in->queue_size, inflight_packed(be));
	/* a repeated GET_INFLIGHT_FD replaces the previous region: no leak */
	vu_be_inflight_drop(be);
	be->inflight_fd = fd;
	be->inflight_base = base;
	be->inflight_map_size = size;
	be->inflight_offset = 0;
	be->inflight_size = size;
	be->inflight_num_queues = in->num_queues;
	be->inflight_queue_size = in->queue_size;
	be->inflight_qbytes = q;

	vh_vu_msg_init(reply, VH_VU_GET_INFLIGHT_FD,
		       sizeof(reply->payload.inflight));
	reply->hdr.flags |= VH_VU_FLAG_REPLY;
	reply->payload.inflight.mmap_size = size;
	reply->payload.inflight.mmap_offset = 0;
	reply->payload.inflight.num_queues = in->num_queues;
	reply->payload.inflight.queue_size = in->queue_size;
	reply->fds[0] = fd; /* still ours: sent, not closed */
	reply->nfds = 1;
	return 0;
}

int vu_be_set_inflight_fd(struct vh_vu_backend *be, struct vh_vu_msg *msg)
{
	const struct vh_vu_inflight *in = &msg->payload.inflight;
	uint8_t *host;
	size_t map_len;
	uint64_t size;
	void *base;
	int r;

	r = inflight_geometry(be, in, &size);
	if (r == 0)
		r = inflight_busy(be);
	if (r < 0)
		return r;
	if (in->mmap_size != size || add_overflows(in->mmap_offset, size)) {
		vh_err(be->ctx, "SET_INFLIGHT_FD: size %#llx, %#llx expected\n",
		       (unsigned long long)in->mmap_size,
		       (unsigned long long)size);
		return -EINVAL;
	}
	/*
	 * The queues' regions are laid out VU_BE_INFLIGHT_ALIGN apart and
	 * hold 64-bit fields read and written atomically: their start must
	 * keep that alignment (QEMU and our front-end send 0).
	 */
	if (in->mmap_offset % VU_BE_INFLIGHT_ALIGN) {
		vh_err(be->ctx, "SET_INFLIGHT_FD: offset %#llx not %u-aligned\n",
		       (unsigned long long)in->mmap_offset,
		       VU_BE_INFLIGHT_ALIGN);
		return -EINVAL;
	}
	r = fd_covers(be, msg->fds[0], in->mmap_offset, size);
	if (r < 0)
		return r;
	/* whole (huge) pages, the length munmap() takes back */
	r = vh_mem_map_fd(be->ctx, msg->fds[0], in->mmap_offset, size, &base,
			  &map_len, &host);
	if (r < 0)
		return r;
	vu_be_inflight_drop(be);
	be->inflight_fd = msg->fds[0];
	msg->fds[0] = -1;
	msg->nfds = 0;
	be->inflight_base = base;
	be->inflight_map_size = map_len;
	be->inflight_offset = (uint64_t)(host - (uint8_t *)base);
	be->inflight_size = size;
	be->inflight_num_queues = in->num_queues;
	be->inflight_queue_size = in->queue_size;
	be->inflight_qbytes = size / in->num_queues;
	return 0;
}

VH_EXPORT int vh_vu_backend_get_inflight(struct vh_vu_backend *be,
					 unsigned int idx, void **region,
					 size_t *len)
{
	uint64_t q;

	if (!be || !region || !len)
		return -EINVAL;
	if (!be->inflight_base)
		return -ENOENT;
	if (idx >= be->inflight_num_queues)
		return -ERANGE;
	q = be->inflight_qbytes;
	*region = (uint8_t *)be->inflight_base + be->inflight_offset + idx * q;
	*len = q;
	return 0;
}
