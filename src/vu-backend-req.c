// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vhost-user back-end: requests to the front-end on the channel given by
 * SET_BACKEND_REQ_FD ("Back-end communication", "Back-end message types").
 *
 * The channel fd is whatever the front-end sent.  A socket gets sendmsg()
 * and recvmsg() (needed to pass fds); any other fd gets write() and read()
 * that never wait (vh_peer_io_write(), vh_peer_io_read()), and a request
 * that carries an fd is refused on it.
 *
 * These may be called from any thread (a device's worker): req_lock keeps
 * one request and its reply together and guards the fd against
 * SET_BACKEND_REQ_FD or a disconnect in the dispatch thread, and the
 * negotiated features a request is gated on against SET_FEATURES,
 * SET_PROTOCOL_FEATURES or a disconnect (vu_be_req_features()).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libvhost-vring.h"
#include "vu-backend-internal.h"
#include "vu-trace.h"

/*
 * How long one back-end request may take, sending it and receiving its
 * reply together (ms): a front-end that does not read the channel, or
 * answers a byte at a time, holds the caller (a device worker) no longer.
 */
#define VU_BE_REQ_TIMEOUT_MS 5000

/* Called with req_lock held, or before anyone else can see be. */
static void req_close(struct vh_vu_backend *be)
{
	if (be->req_fd >= 0)
		vh_peer_io_close(&be->req_io, be->req_fd);
	be->req_fd = -1;
}

static bool req_sock(const struct vh_vu_backend *be)
{
	return be->req_io.kind == VH_PEER_IO_SOCK;
}

int vu_be_req_set(struct vh_vu_backend *be, int fd)
{
	struct vh_peer_io io = { .pipe = { -1, -1 } };
	int r = 0;

	/*
	 * Outside req_lock: a request in progress may hold it for a while.
	 * The channel's I/O never waits, whatever the front-end does with
	 * its copy of fd (req_lock is held across a request's I/O, and the
	 * disconnect waits for it); the checklist lets it send any fd.
	 */
	if (fd >= 0) {
		r = vh_peer_io_open(be->ctx, &io, fd, "back-end channel");
		if (r < 0) {
			vh_err(be->ctx, "back-end channel: fd refused: %s\n",
			       strerror(-r));
			vh_close_peer_fd(fd);
		}
		fd = r;
	}
	pthread_mutex_lock(&be->req_lock);
	req_close(be);
	if (fd >= 0) {
		be->req_fd = fd;
		be->req_io = io;
	}
	pthread_mutex_unlock(&be->req_lock);
	return r < 0 ? r : 0;
}

void vu_be_req_features(struct vh_vu_backend *be, uint64_t features,
			uint64_t protocol_features)
{
	pthread_mutex_lock(&be->req_lock);
	be->features = features;
	be->protocol_features = protocol_features;
	pthread_mutex_unlock(&be->req_lock);
}

void vu_be_req_drop(struct vh_vu_backend *be)
{
	vu_be_req_set(be, -1);
}

/* Write/read exactly len bytes by deadline, on a channel not a socket. */
static int plain_io(struct vh_vu_backend *be, void *buf, size_t len, bool wr,
		    int64_t deadline)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n =
			wr ? vh_peer_io_write(&be->req_io, be->req_fd,
					      (char *)buf + done, len - done) :
			     vh_peer_io_read(&be->req_io, be->req_fd,
					     (char *)buf + done, len - done);
		int r;

		if (n == -EAGAIN) {
			r = vh_vu_wait_fd(be->req_fd, wr ? POLLOUT : POLLIN,
					  deadline);
			if (r < 0)
				return r;
			continue;
		}
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -ECONNRESET;
		done += (size_t)n;
	}
	return 0;
}

static int req_send(struct vh_vu_backend *be, const struct vh_vu_msg *msg,
		    int64_t deadline)
{
	int r;

	vh_vu_trace(be->ctx, "->", true, msg);
	if (req_sock(be))
		return vh_vu_msg_send_until(be->ctx, be->req_fd, msg, deadline);
	r = plain_io(be, (void *)&msg->hdr, sizeof(msg->hdr), true, deadline);
	if (r == 0 && msg->hdr.size)
		r = plain_io(be, (void *)&msg->payload, msg->hdr.size, true,
			     deadline);
	return r;
}

static int req_recv(struct vh_vu_backend *be, struct vh_vu_msg *msg,
		    int64_t deadline)
{
	int r;

	if (req_sock(be))
		return vh_vu_msg_recv_until(be->ctx, be->req_fd, msg, deadline);
	msg->nfds = 0;
	r = plain_io(be, &msg->hdr, sizeof(msg->hdr), false, deadline);
	if (r < 0)
		return r;
	if (msg->hdr.size > VH_VU_PAYLOAD_MAX)
		return -EPROTO;
	return plain_io(be, &msg->payload, msg->hdr.size, false, deadline);
}

/*
 * Send request (payload of size bytes, fd or -1, not consumed) and wait for
 * the reply when one is due.  reply_fd (may be NULL) receives an fd of the
 * reply.  0, -ENOTCONN (no channel), -EOPNOTSUPP (gate closed), -EIO (the
 * front-end reported failure), -EPROTO (bad reply) or -errno.
 */
static int request_ack(struct vh_vu_backend *be, uint32_t request,
		       const void *payload, uint32_t size, int fd,
		       int *reply_fd, bool may_ack)
{
	const struct vh_vu_msg_rule *rule = vh_vu_msg_rule(true, request);
	int64_t deadline = vh_vu_now_ms() + VU_BE_REQ_TIMEOUT_MS;
	struct vh_vu_msg msg, rep;
	bool ack, want_reply;
	struct timespec ts;
	int r;

	if (reply_fd)
		*reply_fd = -1;
	if (!rule)
		return -EINVAL;

	/*
	 * The deadline is the whole call's, waiting behind another thread's
	 * request included; timing out here leaves the channel in step.
	 */
	ts.tv_sec = deadline / 1000;
	ts.tv_nsec = (deadline % 1000) * 1000000;
	r = -pthread_mutex_clocklock(&be->req_lock, CLOCK_MONOTONIC, &ts);
	if (r < 0) {
		vh_warn(be->ctx, "%s to the front-end: %s\n", rule->name,
			strerror(-r));
		return r;
	}
	/*
	 * The features under req_lock, as the dispatch thread sets them
	 * (vu_be_req_features()): one negotiation decides the gate and
	 * NEED_REPLY, and the reply awaited is the one asked for.
	 */
	if (!vh_vu_msg_gate_open(rule, be->features, be->protocol_features) ||
	    /* "BACKEND_SEND_FD": fds only when negotiated */
	    (fd >= 0 &&
	     !vu_be_has_protocol(be, VH_VU_PROTOCOL_F_BACKEND_SEND_FD))) {
		pthread_mutex_unlock(&be->req_lock);
		return -EOPNOTSUPP;
	}
	vh_vu_msg_init(&msg, request, size);
	if (size)
		memcpy(&msg.payload, payload, size);
	if (fd >= 0) {
		msg.fds[0] = fd;
		msg.nfds = 1;
	}
	ack = may_ack && vu_be_has_protocol(be, VH_VU_PROTOCOL_F_REPLY_ACK);
	if (ack)
		msg.hdr.flags |= VH_VU_FLAG_NEED_REPLY;
	want_reply = ack || rule->reply == VH_VU_REPLY_ALWAYS;

	if (be->req_fd < 0) {
		r = -ENOTCONN;
		goto out;
	}
	if (fd >= 0 && !req_sock(be)) {
		r = -EOPNOTSUPP;
		goto out;
	}
	r = req_send(be, &msg, deadline);
	if (r < 0)
		goto broken;
	if (!want_reply)
		goto out;
	r = req_recv(be, &rep, deadline);
	if (r < 0)
		goto broken;
	vh_vu_trace(be->ctx, "<-", true, &rep);
	if (rep.hdr.request != request || !(rep.hdr.flags & VH_VU_FLAG_REPLY) ||
	    vh_vu_msg_check(be->ctx, rule, &rep, true) < 0) {
		vh_err(be->ctx, "bad reply to %s\n", rule->name);
		vh_vu_msg_close_fds(&rep);
		r = -EPROTO;
		goto broken;
	}
	r = rep.payload.u64 ? -EIO : 0;
	if (r == 0 && rep.nfds && reply_fd) {
		*reply_fd = rep.fds[0];
		rep.fds[0] = -1;
	}
	vh_vu_msg_close_fds(&rep);
	goto out;
broken:
	/*
	 * Part of a request may be out, or a late reply may still come and
	 * be taken for the next request's: the stream is out of step, so
	 * the channel is dropped (later requests fail with -ENOTCONN at
	 * once instead of each waiting for its deadline).
	 */
	vh_err(be->ctx, "%s: dropping the back-end channel: %s\n", rule->name,
	       strerror(-r));
	req_close(be);
out:
	pthread_mutex_unlock(&be->req_lock);
	/* no channel (yet): the caller decides; an IOTLB miss asks again */
	if (r == -ENOTCONN)
		vh_dbg(be->ctx, "%s to the front-end: no back-end channel\n",
		       rule->name);
	else if (r < 0)
		vh_warn(be->ctx, "%s to the front-end: %d\n", rule->name, r);
	return r;
}

static int backend_request(struct vh_vu_backend *be, uint32_t request,
			   const void *payload, uint32_t size, int fd,
			   int *reply_fd)
{
	return request_ack(be, request, payload, size, fd, reply_fd, true);
}

/*
 * An IOTLB miss, from whatever thread's ring missed: no reply asked for
 * (a worker must not wait on the front-end, which may be waiting for us);
 * the answer is the IOTLB_MSG update.
 */
int vu_be_req_iotlb_miss(struct vh_vu_backend *be, uint64_t iova,
			 uint8_t perm)
{
	struct vh_vu_iotlb m = {
		.iova = iova,
		.perm = perm,
		.type = VH_IOTLB_MISS,
	};

	return request_ack(be, VH_VU_BACKEND_IOTLB_MSG, &m, sizeof(m), -1,
			   NULL, false);
}

VH_EXPORT int vh_vu_backend_config_change(struct vh_vu_backend *be)
{
	if (!be)
		return -EINVAL;
	return backend_request(be, VH_VU_BACKEND_CONFIG_CHANGE_MSG, NULL, 0, -1,
			       NULL);
}

VH_EXPORT int vh_vu_backend_host_notifier(struct vh_vu_backend *be,
					  unsigned int idx, int fd,
					  uint64_t size, uint64_t offset)
{
	struct vh_vu_vring_area a = { .u64 = idx,
				      .size = size,
				      .offset = offset };

	if (!be || idx >= be->dev.num_queues)
		return -EINVAL;
	if (fd < 0) {
		a.u64 |= VH_VU_VRING_NOFD;
		a.size = 0;
		a.offset = 0;
	}
	return backend_request(be, VH_VU_BACKEND_VRING_HOST_NOTIFIER_MSG, &a,
			       sizeof(a), fd, NULL);
}

VH_EXPORT int vh_vu_backend_iotlb_msg(struct vh_vu_backend *be, uint64_t iova,
				      uint8_t perm, uint8_t type)
{
	struct vh_vu_iotlb m = { .iova = iova, .perm = perm, .type = type };

	if (!be ||
	    (type != VH_IOTLB_MISS && type != VH_IOTLB_ACCESS_FAIL) ||
	    perm < VH_ACCESS_RO || perm > VH_ACCESS_RW)
		return -EINVAL;
	return backend_request(be, VH_VU_BACKEND_IOTLB_MSG, &m, sizeof(m), -1,
			       NULL);
}

static int vring_msg(struct vh_vu_backend *be, uint32_t request,
		     unsigned int idx)
{
	struct vh_vu_vring_state s = { .index = idx, .num = 0 };

	if (!be || idx >= be->dev.num_queues)
		return -EINVAL;
	return backend_request(be, request, &s, sizeof(s), -1, NULL);
}

VH_EXPORT int vh_vu_backend_vring_call(struct vh_vu_backend *be,
				       unsigned int idx)
{
	return vring_msg(be, VH_VU_BACKEND_VRING_CALL, idx);
}

VH_EXPORT int vh_vu_backend_vring_err(struct vh_vu_backend *be,
				      unsigned int idx)
{
	return vring_msg(be, VH_VU_BACKEND_VRING_ERR, idx);
}

static int shared_msg(struct vh_vu_backend *be, uint32_t request,
		      const uint8_t uuid[16], int *fd)
{
	struct vh_vu_shared s;

	if (!be || !uuid)
		return -EINVAL;
	memcpy(s.uuid, uuid, sizeof(s.uuid));
	return backend_request(be, request, &s, sizeof(s), -1, fd);
}

VH_EXPORT int vh_vu_backend_shared_object_add(struct vh_vu_backend *be,
					      const uint8_t uuid[16])
{
	return shared_msg(be, VH_VU_BACKEND_SHARED_OBJECT_ADD, uuid, NULL);
}

VH_EXPORT int vh_vu_backend_shared_object_remove(struct vh_vu_backend *be,
						 const uint8_t uuid[16])
{
	return shared_msg(be, VH_VU_BACKEND_SHARED_OBJECT_REMOVE, uuid, NULL);
}

VH_EXPORT int vh_vu_backend_shared_object_lookup(struct vh_vu_backend *be,
						 const uint8_t uuid[16],
						 int *fd)
{
	int r;

	if (!fd)
		return -EINVAL;
	r = shared_msg(be, VH_VU_BACKEND_SHARED_OBJECT_LOOKUP, uuid, fd);
	if (r == 0 && *fd < 0)
		r = -EPROTO;
	return r;
}

VH_EXPORT int vh_vu_backend_notify(struct vh_vu_backend *be, unsigned int idx)
{
	struct vh_devq *vr;
	int r;

	if (!be || !be->queues || idx >= be->dev.num_queues)
		return -EINVAL;
	vr = be->queues[idx].vring;
	if (vh_devq_get_call_fd(vr) >= 0 ||
	    !vu_be_has_protocol(be, VH_VU_PROTOCOL_F_INBAND_NOTIFICATIONS))
		return vh_devq_notify(vr);
	r = vh_devq_need_notify(vr);
	if (r <= 0)
		return r;
	r = vh_vu_backend_vring_call(be, idx);
	return r < 0 ? r : 1;
}
