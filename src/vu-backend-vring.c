// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vhost-user back-end: the rings.  Their state machine ("Ring states": a
 * ring is handed to the device while it is started, enabled and set up),
 * the kick fds in the back-end's epoll set, the error eventfd, and the
 * requests on one ring (SET_VRING_*, GET_VRING_BASE, VRING_KICK,
 * GET_QUEUE_NUM, RESET_OWNER).  See vu-backend.c for the policy on what
 * the front-end sends.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "iotlb-internal.h"
#include "libvhost-mem.h"
#include "libvhost-vring.h"
#include "vu-backend-internal.h"

/* ------------------------------------------------------------------------ */
/* kick fds in the epoll set                                                */
/* ------------------------------------------------------------------------ */
static void kick_poll_add(struct vh_vu_backend *be, unsigned int idx)
{
	struct vu_be_queue *q = &be->queues[idx];
	struct epoll_event ev = { .events = EPOLLIN };
	int fd = vh_devq_get_kick_fd(q->vring);

	if (!be->ops.queue_kicked || q->kick_polled || fd < 0)
		return;
	ev.data.u64 = VU_BE_TAG_KICK + idx;
	if (epoll_ctl(be->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		vh_err(be->ctx, "queue %u: cannot poll kick fd: %m\n", idx);
		return;
	}
	q->kick_polled = true;
}

static void kick_poll_del(struct vh_vu_backend *be, unsigned int idx)
{
	struct vu_be_queue *q = &be->queues[idx];

	if (!q->kick_polled)
		return;
	epoll_ctl(be->epfd, EPOLL_CTL_DEL, vh_devq_get_kick_fd(q->vring),
		  NULL);
	q->kick_polled = false;
}

/* Signal the error eventfd of ring idx (SET_VRING_ERR); 1 done, 0 no fd. */
static int err_signal(struct vh_vu_backend *be, unsigned int idx)
{
	int fd = be->queues[idx].err_fd;
	int r;

	if (fd < 0)
		return 0;
	r = vh_eventfd_signal(fd);
	return r < 0 ? r : 1;
}

/*
 * After the device ran on a ring: a ring vh_devq found malformed is
 * reported once on its error eventfd (the in-band VRING_ERR waits for a
 * reply, which the front-end may not give while it waits for us).
 */
void vu_be_ring_check_broken(struct vh_vu_backend *be, unsigned int idx)
{
	struct vu_be_queue *q = &be->queues[idx];

	if (!q->err_reported && vh_devq_is_broken(q->vring)) {
		q->err_reported = true;
		vh_warn(be->ctx, "queue %u: ring broken by the driver\n", idx);
		err_signal(be, idx);
	}
}

static void kicked(struct vh_vu_backend *be, unsigned int idx)
{
	be->ops.queue_kicked(be, be->data, idx, be->queues[idx].vring);
	vu_be_ring_check_broken(be, idx);
}


/* The kick fd of ring idx polled readable in the back-end's epoll set. */
int vu_be_kick_event(struct vh_vu_backend *be, unsigned int idx)
{
	if (!be->queues || idx >= be->dev.num_queues)
		return -EAGAIN;
	if (!be->queues[idx].handed) {
		kick_poll_del(be, idx);
		return 0;
	}
	vh_devq_read_kick(be->queues[idx].vring);
	kicked(be, idx);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* ring states ("Ring states")                                              */
/* ------------------------------------------------------------------------ */
/* Take a ring back from the device (before changing it, or to stop it). */
static void queue_take_back(struct vh_vu_backend *be, unsigned int idx)
{
	struct vu_be_queue *q = &be->queues[idx];

	if (!q->handed)
		return;
	kick_poll_del(be, idx);
	if (be->ops.queue_stopped)
		be->ops.queue_stopped(be, be->data, idx, q->vring);
	q->handed = false;
}

/*
 * Hand the ring to the device iff it is started, enabled and set up.
 * 0, or the device's -errno when it refused to take the ring: the ring is
 * then not handed (no kick polled or delivered) until a later message on
 * it, or a memory or IOTLB update, tries again (queue_resume() reports it).
 */
static int queue_update(struct vh_vu_backend *be, unsigned int idx)
{
	struct vu_be_queue *q = &be->queues[idx];
	bool want = q->started && q->enabled && q->num && q->addr_set;
	int r;

	if (!want) {
		queue_take_back(be, idx);
		return 0;
	}
	if (q->handed)
		return 0;
	/*
	 * Rings at IOVAs not translated yet: the device gets the ring once
	 * an IOTLB update maps them (vu_be_rekick_all()), so that it can
	 * read the used index from the start.
	 */
	r = vh_devq_iotlb_ready(q->vring);
	if (r == 0)
		return 0;
	/* mapped without the access the rings need: refused, as at a pop */
	if (r < 0)
		return r;
	if (be->ops.queue_started) {
		r = be->ops.queue_started(be, be->data, idx, q->vring);
		if (r < 0) {
			vh_warn(be->ctx,
				"queue %u: the device refused to start it: %d\n",
				idx, r);
			return r;
		}
	}
	/*
	 * Handed again unbroken (QEMU's restart: GET_VRING_BASE, then
	 * NUM/BASE/ADDR/KICK/ENABLE; or remapped): its next break is news
	 * to the front-end.  One still broken was reported already.
	 */
	if (!vh_devq_is_broken(q->vring))
		q->err_reported = false;
	q->handed = true;
	kick_poll_add(be, idx);
	/*
	 * Kicks may have come while it was stopped or disabled: never lose
	 * one.  Only when buffers wait, so that a ring starting empty does
	 * not make the device run (and maybe notify) for nothing; a buffer
	 * added after this check comes with its own kick.
	 */
	if (be->ops.queue_kicked) {
		uint16_t n = 0;

		if (vh_devq_avail_count(q->vring, &n) < 0 || n > 0)
			kicked(be, idx);
	}
	return 0;
}

/*
 * queue_update() after a request on ring idx: a ring the device refused
 * to take fails the request (an error reply, the connection stays).
 */
static int ring_update(struct vh_vu_backend *be, unsigned int idx)
{
	return queue_update(be, idx) < 0 ? VU_SOFT_FAIL : 0;
}

/*
 * queue_update() after a change no ring message asked for (a memory table,
 * an IOTLB update, SET_FEATURES): that message acks its own change, so a
 * ring the device refuses to take (back) is reported the only other way,
 * once, on its error eventfd, as a broken ring is.
 */
static void queue_resume(struct vh_vu_backend *be, unsigned int idx)
{
	struct vu_be_queue *q = &be->queues[idx];

	if (queue_update(be, idx) < 0 && !q->err_reported) {
		q->err_reported = true;
		err_signal(be, idx);
	}
}

void vu_be_rekick_all(struct vh_vu_backend *be)
{
	unsigned int i;

	for (i = 0; i < be->dev.num_queues; i++) {
		struct vu_be_queue *q = &be->queues[i];
		int fd = vh_devq_get_kick_fd(q->vring);
		int r;

		if (!q->handed) {
			queue_resume(be, i); /* maybe its rings map now */
			continue;
		}
		/* a kick through the eventfd reaches whoever polls it */
		if (fd >= 0) {
			r = vh_eventfd_signal(fd);
			if (r < 0)
				vh_warn(be->ctx, "queue %u: re-kick: %d\n", i,
					r);
		} else if (be->ops.queue_kicked) {
			kicked(be, i);
		}
	}
}

void vu_be_quiesce_all(struct vh_vu_backend *be)
{
	unsigned int i;

	for (i = 0; i < be->dev.num_queues; i++)
		queue_take_back(be, i);
}

/* After a memory change: translate ring addresses again, restart rings. */
void vu_be_resume_all(struct vh_vu_backend *be)
{
	unsigned int i;

	for (i = 0; i < be->dev.num_queues; i++) {
		struct vu_be_queue *q = &be->queues[i];

		if (q->addr_set || q->addr_pending) {
			int r = vh_devq_set_addr(q->vring, &q->addr);

			q->addr_set = r == 0;
			q->addr_pending = r < 0;
			if (r < 0 && vh_mem_num_regions(be->mem) > 0)
				vh_warn(be->ctx,
					"queue %u: ring no longer mapped\n", i);
		}
		queue_resume(be, i);
	}
}

/* Vring index of a state / addr payload, checked against the queue count. */
static int ring_index(struct vh_vu_backend *be, uint32_t index)
{
	/* "every vring index is below the number of queues" */
	if (index >= be->dev.num_queues) {
		vh_err(be->ctx, "vring index %u out of range (%u queues)\n",
		       index, be->dev.num_queues);
		return -ERANGE;
	}
	return (int)index;
}

/* Deprecated; the spec recommends disabling every ring. */
int vu_be_reset_owner(struct vh_vu_backend *be, struct vh_vu_msg *msg,
		      struct vh_vu_msg *reply)
{
	unsigned int i;

	for (i = 0; i < be->dev.num_queues; i++) {
		be->queues[i].enabled = false;
		queue_update(be, i);
	}
	return 0;
}

int vu_be_set_vring_num(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			struct vh_vu_msg *reply)
{
	int idx = ring_index(be, msg->payload.state.index);
	uint32_t num = msg->payload.state.num;
	struct vu_be_queue *q;
	int r;

	if (idx < 0)
		return idx;
	q = &be->queues[idx];
	if (num == 0) {
		/*
		 * DPDK's virtio-user sends 0 for the rings it does not use:
		 * the ring is left unconfigured, never handed to the device.
		 */
		queue_take_back(be, idx);
		q->num = 0;
		return 0;
	}
	/*
	 * 2.7: a power of two, at most 32768; 2.8 (packed): any size up to
	 * 32768 (and the device's maximum either way).  SET_FEATURES comes
	 * first ("Ring states").
	 */
	if ((!(be->features & (1ull << VH_VU_VIRTIO_F_RING_PACKED)) &&
	     !vh_is_pow2(num)) ||
	    num > be->dev.max_queue_size) {
		vh_err(be->ctx, "queue %d: bad ring size %u\n", idx, num);
		return -EINVAL;
	}
	queue_take_back(be, idx);
	r = vh_devq_set_num(q->vring, num);
	if (r == -ENOMEM) {
		queue_update(be, idx);
		return r;
	}
	q->num = num;
	if (r < 0) {
		/*
		 * The size is good (checked above); the addresses kept from
		 * before do not fit it, or the memory as it is now.  A
		 * front-end that restarts a ring sends NUM, BASE, then ADDR
		 * (QEMU): the ring waits for its new addresses.
		 */
		vh_dbg(be->ctx, "queue %d: old addresses unmapped at size %u: %d\n",
		       idx, num, r);
		q->addr_set = false;
		q->addr_pending = true;
	} else if (q->addr_pending && vh_mem_num_regions(be->mem) > 0) {
		/* pending addresses translated now, or still waiting */
		r = vh_devq_set_addr(q->vring, &q->addr);
		if (r == -ENOMEM) {
			queue_update(be, idx);
			return r;
		}
		q->addr_set = r == 0;
		q->addr_pending = r < 0;
	}
	return ring_update(be, idx);
}

int vu_be_set_vring_addr(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			 struct vh_vu_msg *reply)
{
	const struct vh_vu_vring_addr *a = &msg->payload.addr;
	int idx = ring_index(be, a->index);
	struct vu_be_queue *q;
	struct vh_devq_addr va;
	bool iova;
	int r;

	if (idx < 0)
		return idx;
	if (a->flags & ~VH_VRING_F_LOG) {
		vh_err(be->ctx, "queue %d: unknown vring flags %#x\n", idx,
		       a->flags);
		return -EINVAL;
	}
	q = &be->queues[idx];
	memset(&va, 0, sizeof(va));
	va.desc = a->desc;
	va.avail = a->avail;
	va.used = a->used;
	va.log = a->log;
	/*
	 * Ring addresses are the front-end's virtual addresses, or IOVAs
	 * with ACCESS_PLATFORM ("IOMMU support"): translated through the
	 * IOTLB, maybe only once an update answers a miss.
	 */
	iova = be->features & (1ull << VH_VU_VIRTIO_F_ACCESS_PLATFORM);
	va.flags = iova ? 0 : VH_DEVQ_ADDR_UVA;
	if (a->flags & VH_VRING_F_LOG)
		va.flags |= VH_DEVQ_ADDR_LOG;

	queue_take_back(be, idx);
	q->addr = va;
	if (!iova && vh_mem_num_regions(be->mem) == 0) {
		/* No memory yet: translate once SET_MEM_TABLE comes. */
		q->addr_set = false;
		q->addr_pending = true;
		return 0;
	}
	/* "ring addresses translate fully inside one mapped region" */
	r = vh_devq_set_addr(q->vring, &va);
	q->addr_set = r == 0;
	q->addr_pending = false;
	if (r < 0) {
		vh_err(be->ctx, "queue %d: ring addresses not mapped (%d)\n",
		       idx, r);
		return r;
	}
	return ring_update(be, idx);
}

int vu_be_set_vring_base(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			 struct vh_vu_msg *reply)
{
	int idx = ring_index(be, msg->payload.state.index);
	int r;

	if (idx < 0)
		return idx;
	/*
	 * split rings: a 16-bit index, bits 16-31 reserved; packed rings:
	 * positions and wrap counters in both halves (checked by vh_devq)
	 */
	if (!(be->features & (1ull << VH_VU_VIRTIO_F_RING_PACKED)) &&
	    msg->payload.state.num > 0xffff) {
		vh_err(be->ctx, "queue %d: bad base %u\n", idx,
		       msg->payload.state.num);
		return -EINVAL;
	}
	queue_take_back(be, idx);
	r = vh_devq_set_base(be->queues[idx].vring, msg->payload.state.num);
	if (r < 0) {
		queue_update(be, idx);
		return r;
	}
	return ring_update(be, idx);
}

int vu_be_get_vring_base(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			 struct vh_vu_msg *reply)
{
	int idx = ring_index(be, msg->payload.state.index);
	struct vu_be_queue *q;
	uint32_t base = 0;
	int r;

	if (idx < 0)
		return idx;
	q = &be->queues[idx];
	/* GET_VRING_BASE stops the ring */
	q->started = false;
	queue_take_back(be, idx);
	vu_be_iotlb_stop(be);
	/* what the device popped and never pushed is lost to the driver */
	if (vh_devq_inflight(q->vring))
		vh_warn(be->ctx, "queue %d stopped with %u buffers in flight\n",
			idx, vh_devq_inflight(q->vring));
	r = vh_devq_get_base(q->vring, &base);
	if (r < 0)
		return r;
	vh_vu_msg_init(reply, VH_VU_GET_VRING_BASE,
		       sizeof(reply->payload.state));
	reply->hdr.flags |= VH_VU_FLAG_REPLY;
	reply->payload.state.index = (uint32_t)idx;
	reply->payload.state.num = base;
	return 0;
}

/*
 * The kick, call and error fds are eventfds ("Communication"): we read,
 * poll and write them, and anything else could block us or raise SIGPIPE
 * (a pipe, a socket).  They are made non-blocking: the file is shared with
 * the front-end, which could otherwise drain a kick between our poll and
 * our read, or hold a counter at its maximum so that our write waits.
 */
static int check_event_fd(struct vh_vu_backend *be, int fd)
{
	int fl, r;

	r = vh_fd_check_anon(fd, "eventfd");
	if (r < 0) {
		vh_err(be->ctx, "vring fd %d: not an eventfd\n", fd);
		return r;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || (!(fl & O_NONBLOCK) &&
		       fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
		return -errno;
	return 0;
}

/*
 * KICK/CALL/ERR payload: index in bits 0-7, NOFD in bit 8, nothing else.
 * The ring's index, its fd in *fd (-1 with NOFD), taken from msg only once
 * all is checked (else msg's fds are closed with it), and the ring taken
 * back from the device, which may use the old fd on another thread.
 */
static int vring_file_take(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			   int *fd)
{
	uint64_t v = msg->payload.u64;
	int idx, r;

	*fd = -1;
	if (v & ~(uint64_t)(VH_VU_VRING_IDX_MASK | VH_VU_VRING_NOFD)) {
		vh_err(be->ctx, "vring file payload %#llx: reserved bits\n",
		       (unsigned long long)v);
		return -EINVAL;
	}
	idx = ring_index(be, (uint32_t)(v & VH_VU_VRING_IDX_MASK));
	if (idx < 0)
		return idx;
	if (!(v & VH_VU_VRING_NOFD)) {
		if (msg->nfds != 1)
			return -EBADMSG;
		r = check_event_fd(be, msg->fds[0]);
		if (r < 0)
			return r;
		*fd = msg->fds[0];
		msg->fds[0] = -1;
		msg->nfds = 0;
	}
	queue_take_back(be, idx);
	return idx;
}

int vu_be_set_vring_kick(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			 struct vh_vu_msg *reply)
{
	int fd, idx = vring_file_take(be, msg, &fd);
	struct vu_be_queue *q;
	bool was;
	int r;

	if (idx < 0)
		return idx;
	r = vh_devq_set_kick_fd(be->queues[idx].vring, fd);
	if (r < 0) {
		vh_close_peer_fd(fd);
		return r;
	}
	/*
	 * The ring starts here (with NOFD the device polls); a ring the
	 * device refuses does not (the new kick fd is kept).
	 */
	q = &be->queues[idx];
	was = q->started;
	q->started = true;
	if (queue_update(be, idx) < 0) {
		q->started = was;
		return VU_SOFT_FAIL;
	}
	return 0;
}

int vu_be_set_vring_call(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			 struct vh_vu_msg *reply)
{
	/* the device may be signalling from another thread: taken back */
	int fd, idx = vring_file_take(be, msg, &fd);
	int r;

	if (idx < 0)
		return idx;
	r = vh_devq_set_call_fd(be->queues[idx].vring, fd);
	if (r < 0) {
		vh_close_peer_fd(fd);
		queue_update(be, idx);
		return r;
	}
	return ring_update(be, idx);
}

int vu_be_set_vring_err(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			struct vh_vu_msg *reply)
{
	/*
	 * Kept here, not in the vring: the back-end signals it, and so may
	 * the device (vh_vu_backend_vring_error()) from the thread that owns
	 * the ring, taken back before the fd goes.
	 */
	int fd, idx = vring_file_take(be, msg, &fd);

	if (idx < 0)
		return idx;
	vh_close_peer_fd(be->queues[idx].err_fd);
	be->queues[idx].err_fd = fd;
	return ring_update(be, idx);
}

int vu_be_get_queue_num(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			struct vh_vu_msg *reply)
{
	vh_vu_msg_set_reply_u64(reply, be->dev.queue_num ? be->dev.queue_num :
							   be->dev.num_queues);
	return 0;
}

int vu_be_set_vring_enable(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			   struct vh_vu_msg *reply)
{
	int idx = ring_index(be, msg->payload.state.index);
	struct vu_be_queue *q;
	bool was;

	if (idx < 0)
		return idx;
	if (msg->payload.state.num > 1) {
		vh_err(be->ctx, "queue %d: SET_VRING_ENABLE %u\n", idx,
		       msg->payload.state.num);
		return -EINVAL;
	}
	/* a ring the device refuses stays as it was (QEMU waits for this) */
	q = &be->queues[idx];
	was = q->enabled;
	q->enabled = msg->payload.state.num == 1;
	if (queue_update(be, idx) < 0) {
		q->enabled = was;
		return VU_SOFT_FAIL;
	}
	return 0;
}

int vu_be_vring_kick(struct vh_vu_backend *be, struct vh_vu_msg *msg,
		     struct vh_vu_msg *reply)
{
	int idx = ring_index(be, msg->payload.state.index);
	struct vu_be_queue *q;

	if (idx < 0)
		return idx;
	q = &be->queues[idx];
	if (!q->started) {
		/* an in-band kick starts the ring too ("Ring states") */
		q->started = true;
		/* delivers the kick if handed */
		if (queue_update(be, idx) < 0) {
			q->started = false;
			return VU_SOFT_FAIL;
		}
		return 0;
	}
	if (q->handed && be->ops.queue_kicked)
		kicked(be, idx);
	/* not handed: queue_update() delivers a kick when it hands over */
	return 0;
}

VH_EXPORT int vh_vu_backend_vring_error(struct vh_vu_backend *be,
					unsigned int idx)
{
	int r;

	if (!be || !be->queues || idx >= be->dev.num_queues)
		return -EINVAL;
	r = err_signal(be, idx);
	if (r != 0)
		return r;
	r = vh_vu_backend_vring_err(be, idx);
	return r < 0 ? r : 1;
}
