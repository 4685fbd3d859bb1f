// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vhost-user front-end: device requests (config, status, log, inflight,
 * device state, shared objects, postcopy, crypto...), the back-end request
 * channel and raw sends for conformance testing.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "libvhost-private.h"
#include "vu-frontend-internal.h"
#include "vu-trace.h"

VH_EXPORT int vh_vu_frontend_get_config(struct vh_vu_frontend *fe,
					uint32_t offset, void *buf,
					uint32_t size)
{
	struct vh_vu_msg m, rep;
	int r;

	if (!fe || (!buf && size) || size > VH_VU_MAX_CONFIG_SIZE ||
	    offset > VH_VU_MAX_CONFIG_SIZE - size)
		return -EINVAL;
	vh_vu_msg_init(&m, VH_VU_GET_CONFIG, VH_VU_CONFIG_HDR_SIZE + size);
	m.payload.config.offset = offset;
	m.payload.config.size = size;
	r = vu_fe_call(fe, &m, &rep);
	if (r < 0)
		return r;
	/* "uses zero length of payload to indicate an error" */
	if (rep.hdr.size == 0)
		return -EIO;
	/* "back-end's payload size MUST match the front-end's request" */
	if (rep.payload.config.size != size ||
	    rep.payload.config.offset != offset)
		return vu_fe_bad_reply(fe, "GET_CONFIG",
				       "%u bytes at %u, asked %u at %u",
				       rep.payload.config.size,
				       rep.payload.config.offset, size, offset);
	if (size)
		memcpy(buf, rep.payload.config.region, size);
	return 0;
}

VH_EXPORT int vh_vu_frontend_set_config(struct vh_vu_frontend *fe,
					uint32_t offset, const void *buf,
					uint32_t size, uint32_t flags)
{
	struct vh_vu_msg m;

	if (!fe || (!buf && size) || size > VH_VU_MAX_CONFIG_SIZE ||
	    offset > VH_VU_MAX_CONFIG_SIZE - size)
		return -EINVAL;
	vh_vu_msg_init(&m, VH_VU_SET_CONFIG, VH_VU_CONFIG_HDR_SIZE + size);
	m.payload.config.offset = offset;
	m.payload.config.size = size;
	m.payload.config.flags = flags;
	if (size)
		memcpy(m.payload.config.region, buf, size);
	return vu_fe_call(fe, &m, NULL);
}

VH_EXPORT int vh_vu_frontend_set_status(struct vh_vu_frontend *fe,
					uint8_t status)
{
	return fe ? vu_fe_call_u64(fe, VH_VU_SET_STATUS, true, status) :
		    -EINVAL;
}

VH_EXPORT int vh_vu_frontend_get_status(struct vh_vu_frontend *fe,
					uint8_t *status)
{
	uint64_t v;
	int r;

	if (!fe)
		return -EINVAL;
	r = vu_fe_get_u64(fe, VH_VU_GET_STATUS, &v);
	if (r < 0)
		return r;
	/* the virtio device status is one byte */
	if (v > 0xff)
		return vu_fe_bad_reply(fe, "GET_STATUS", "status %#llx",
				       (unsigned long long)v);
	if (status)
		*status = (uint8_t)v;
	return 0;
}

VH_EXPORT int vh_vu_frontend_net_set_mtu(struct vh_vu_frontend *fe,
					 uint16_t mtu)
{
	return fe ? vu_fe_call_u64(fe, VH_VU_NET_SET_MTU, true, mtu) : -EINVAL;
}

VH_EXPORT int vh_vu_frontend_send_rarp(struct vh_vu_frontend *fe,
				       const uint8_t mac[6])
{
	struct vh_vu_msg m;

	if (!fe || !mac)
		return -EINVAL;
	/* "The first 6 bytes of the payload contain the mac address" */
	vh_vu_msg_init(&m, VH_VU_SEND_RARP, 8);
	memcpy(m.payload.raw, mac, 6);
	return vu_fe_call(fe, &m, NULL);
}

VH_EXPORT int vh_vu_frontend_iotlb_msg(struct vh_vu_frontend *fe,
				       const struct vh_vu_iotlb *msg)
{
	struct vh_vu_msg m, rep;
	int r;

	if (!fe || !msg)
		return -EINVAL;
	vh_vu_msg_init(&m, VH_VU_IOTLB_MSG, sizeof(*msg));
	m.payload.iotlb = *msg;
	r = vu_fe_call(fe, &m, &rep);
	if (r < 0)
		return r;
	return rep.payload.u64 == 0 ? 0 : -EIO;
}

VH_EXPORT int vh_vu_frontend_set_log_base(struct vh_vu_frontend *fe, int fd,
					  uint64_t size, uint64_t offset)
{
	struct vh_vu_msg m, rep;

	if (!fe || fd < 0)
		return -EINVAL;
	vh_vu_msg_init(&m, VH_VU_SET_LOG_BASE, sizeof(struct vh_vu_log));
	m.payload.log.size = size;
	m.payload.log.offset = offset;
	m.fds[m.nfds++] = fd;
	/*
	 * The reply only says "done": its payload is not defined (QEMU's
	 * libvhost-user echoes the log size, DPDK sends none), so as QEMU
	 * does, only its id and flags count.
	 */
	return vu_fe_call(fe, &m, &rep);
}

VH_EXPORT int vh_vu_frontend_enable_log(struct vh_vu_frontend *fe,
					struct vh_mem *mem)
{
	struct vh_mem_region reg;
	uint64_t end = 0;
	int n, i, fd, r;
	size_t size;

	if (!fe || !mem)
		return -EINVAL;
	n = vh_mem_num_regions(mem);
	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		if (vh_mem_get_region(mem, i, &reg) == 0 &&
		    reg.gpa + reg.size > end)
			end = reg.gpa + reg.size;
	}
	size = vh_mem_log_size_for(end);
	if (!size)
		return -EINVAL;
	r = vh_mem_log_alloc(mem, size, &fd, NULL);
	if (r < 0)
		return r;
	return vh_vu_frontend_set_log_base(fe, fd, size, 0);
}

VH_EXPORT int vh_vu_frontend_set_log_fd(struct vh_vu_frontend *fe, int fd)
{
	return fe ? vu_fe_call_fd(fe, VH_VU_SET_LOG_FD, fd) : -EINVAL;
}

/*
 * GET_INFLIGHT_FD reply ("Inflight I/O tracking"): the area is for the
 * rings asked, and fd is shared memory (a memfd or file, S_ISREG) holding
 * mmap_size bytes at a page-aligned mmap_offset, so that mapping it cannot
 * fault past its end or map a device.
 */
static int check_inflight(struct vh_vu_frontend *fe,
			  const struct vh_vu_inflight *inf, int fd,
			  uint16_t num_queues, uint16_t queue_size)
{
	long page = sysconf(_SC_PAGESIZE);
	struct stat st;

	if (inf->num_queues != num_queues || inf->queue_size != queue_size)
		return vu_fe_bad_reply(fe, "GET_INFLIGHT_FD",
				       "%u queues of %u, asked %u of %u",
				       inf->num_queues, inf->queue_size,
				       num_queues, queue_size);
	if (fd < 0)
		return 0; /* mmap_size 0: the back-end keeps no area */
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return vu_fe_bad_reply(fe, "GET_INFLIGHT_FD",
				       "the fd is not shared memory (mode %#o)",
				       (unsigned int)(st.st_mode & S_IFMT));
	if (page <= 0 || inf->mmap_offset % (uint64_t)page)
		return vu_fe_bad_reply(fe, "GET_INFLIGHT_FD",
				       "mmap_offset %#llx not page aligned",
				       (unsigned long long)inf->mmap_offset);
	if (st.st_size < 0 || inf->mmap_offset > (uint64_t)st.st_size ||
	    inf->mmap_size > (uint64_t)st.st_size - inf->mmap_offset)
		return vu_fe_bad_reply(fe, "GET_INFLIGHT_FD",
				       "mmap_size %llu at offset %llu, the fd has %lld bytes",
				       (unsigned long long)inf->mmap_size,
				       (unsigned long long)inf->mmap_offset,
				       (long long)st.st_size);
	return 0;
}

VH_EXPORT int vh_vu_frontend_get_inflight_fd(struct vh_vu_frontend *fe,
					     uint16_t num_queues,
					     uint16_t queue_size,
					     struct vh_vu_inflight *inflight,
					     int *fd)
{
	struct vh_vu_msg m, rep;
	int r;

	if (!fe || !inflight || !fd)
		return -EINVAL;
	*fd = -1;
	vh_vu_msg_init(&m, VH_VU_GET_INFLIGHT_FD, sizeof(*inflight));
	m.payload.inflight.num_queues = num_queues;
	m.payload.inflight.queue_size = queue_size;
	r = vu_fe_call(fe, &m, &rep);
	if (r < 0)
		return r;
	/* the rule checked: an fd iff mmap_size is not 0 */
	r = check_inflight(fe, &rep.payload.inflight,
			   rep.nfds == 1 ? rep.fds[0] : -1, num_queues,
			   queue_size);
	if (r < 0) {
		vh_vu_msg_close_fds(&rep);
		return r;
	}
	*inflight = rep.payload.inflight;
	if (rep.nfds == 1)
		*fd = rep.fds[0];
	return 0;
}

VH_EXPORT int vh_vu_frontend_set_inflight_fd(struct vh_vu_frontend *fe,
					     const struct vh_vu_inflight *inf,
					     int fd)
{
	struct vh_vu_msg m;

	if (!fe || !inf || fd < 0)
		return -EINVAL;
	vh_vu_msg_init(&m, VH_VU_SET_INFLIGHT_FD, sizeof(*inf));
	m.payload.inflight = *inf;
	m.fds[m.nfds++] = fd;
	return vu_fe_call(fe, &m, NULL);
}

VH_EXPORT int vh_vu_frontend_set_device_state_fd(struct vh_vu_frontend *fe,
						 uint32_t direction,
						 uint32_t phase, int fd,
						 int *backend_fd)
{
	struct vh_vu_msg m, rep;
	uint64_t v;
	int r;

	if (!fe || fd < 0)
		return -EINVAL;
	if (backend_fd)
		*backend_fd = -1;
	vh_vu_msg_init(&m, VH_VU_SET_DEVICE_STATE_FD,
		       sizeof(struct vh_vu_device_state));
	m.payload.device_state.direction = direction;
	m.payload.device_state.phase = phase;
	m.fds[m.nfds++] = fd;
	r = vu_fe_call(fe, &m, &rep);
	if (r < 0)
		return r;
	/* the rule checked that an error never comes with an fd */
	v = rep.payload.u64;
	if (v & VH_VU_DEVICE_STATE_ERR_MASK)
		return -EIO;
	if (rep.nfds == 1) {
		/* save: we read what the back-end writes; load: we write */
		int wrong = direction == 0 ? O_WRONLY : O_RDONLY;
		struct stat st;
		int fl;

		/* "a pipe" ("Migrating back-end state"): a stream, no file */
		if (fstat(rep.fds[0], &st) < 0 ||
		    !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
			vh_vu_msg_close_fds(&rep);
			return vu_fe_bad_reply(fe, "SET_DEVICE_STATE_FD",
					       "the fd is not a pipe or socket");
		}
		fl = fcntl(rep.fds[0], F_GETFL);
		if (fl < 0 || (fl & O_ACCMODE) == wrong) {
			vh_vu_msg_close_fds(&rep);
			return vu_fe_bad_reply(fe, "SET_DEVICE_STATE_FD",
					       "the fd cannot be %s",
					       direction == 0 ? "read" :
								"written");
		}
		if (backend_fd)
			*backend_fd = rep.fds[0];
		else
			vh_close_peer_fd(rep.fds[0]);
	}
	return 0;
}

VH_EXPORT int vh_vu_frontend_check_device_state(struct vh_vu_frontend *fe)
{
	uint64_t v;
	int r;

	if (!fe)
		return -EINVAL;
	r = vu_fe_get_u64(fe, VH_VU_CHECK_DEVICE_STATE, &v);
	if (r < 0)
		return r;
	return v == 0 ? 0 : -EIO;
}

VH_EXPORT int vh_vu_frontend_get_shared_object(struct vh_vu_frontend *fe,
					       const uint8_t uuid[16], int *fd)
{
	struct vh_vu_msg m, rep;
	struct statfs sfs;
	int r;

	if (!fe || !uuid || !fd)
		return -EINVAL;
	*fd = -1;
	vh_vu_msg_init(&m, VH_VU_GET_SHARED_OBJECT,
		       sizeof(struct vh_vu_shared));
	memcpy(m.payload.shared.uuid, uuid, 16);
	r = vu_fe_call(fe, &m, &rep);
	if (r < 0)
		return r;
	/* "reply passing the fd when the operation is successful, or no fd" */
	if (rep.nfds != 1)
		return -ENOENT;
	/* the object is a dma-buf ("Shared objects") */
	if (fstatfs(rep.fds[0], &sfs) < 0 || sfs.f_type != DMA_BUF_MAGIC) {
		vh_close_peer_fd(rep.fds[0]);
		return vu_fe_bad_reply(fe, "GET_SHARED_OBJECT",
				       "the fd is not a dma-buf");
	}
	*fd = rep.fds[0];
	return 0;
}

VH_EXPORT int vh_vu_frontend_postcopy_advise(struct vh_vu_frontend *fe,
					     int *ufd)
{
	struct vh_vu_msg m, rep;
	int r;

	if (!fe)
		return -EINVAL;
	if (ufd)
		*ufd = -1;
	vh_vu_msg_init(&m, VH_VU_POSTCOPY_ADVISE, 0);
	r = vu_fe_call(fe, &m, &rep);
	if (r < 0)
		return r;
	/* POSTCOPY_ADVISE: "the back-end opens a userfaultfd" and sends it */
	if (rep.nfds == 1 && vh_fd_check_anon(rep.fds[0], "userfaultfd") < 0) {
		vh_close_peer_fd(rep.fds[0]);
		return vu_fe_bad_reply(fe, "POSTCOPY_ADVISE",
				       "the fd is not a userfaultfd");
	}
	if (rep.nfds == 1) {
		if (ufd)
			*ufd = rep.fds[0];
		else
			vh_close_peer_fd(rep.fds[0]);
	}
	return 0;
}

VH_EXPORT int vh_vu_frontend_postcopy_listen(struct vh_vu_frontend *fe)
{
	return fe ? vu_fe_call_u64(fe, VH_VU_POSTCOPY_LISTEN, false, 0) :
		    -EINVAL;
}

VH_EXPORT int vh_vu_frontend_postcopy_end(struct vh_vu_frontend *fe)
{
	uint64_t v;
	int r;

	if (!fe)
		return -EINVAL;
	r = vu_fe_get_u64(fe, VH_VU_POSTCOPY_END, &v);
	if (r < 0)
		return r;
	return v == 0 ? 0 : -EIO;
}

VH_EXPORT int vh_vu_frontend_gpu_set_socket(struct vh_vu_frontend *fe, int fd)
{
	return fe ? vu_fe_call_fd(fe, VH_VU_GPU_SET_SOCKET, fd) : -EINVAL;
}

VH_EXPORT int vh_vu_frontend_create_crypto_session(struct vh_vu_frontend *fe,
						   const void *req, size_t len,
						   void *reply,
						   size_t reply_max)
{
	struct vh_vu_msg m, rep;
	size_t n;
	int r;

	if (!fe || !req || len < 8 || len > VH_VU_PAYLOAD_MAX)
		return -EINVAL;
	vh_vu_msg_init(&m, VH_VU_CREATE_CRYPTO_SESSION, len);
	memcpy(m.payload.raw, req, len);
	r = vu_fe_call(fe, &m, &rep);
	if (r < 0)
		return r;
	n = rep.hdr.size < reply_max ? rep.hdr.size : reply_max;
	if (reply && n)
		memcpy(reply, rep.payload.raw, n);
	return (int)rep.hdr.size;
}

VH_EXPORT int vh_vu_frontend_close_crypto_session(struct vh_vu_frontend *fe,
						  uint64_t session_id)
{
	return fe ? vu_fe_call_u64(fe, VH_VU_CLOSE_CRYPTO_SESSION, true,
				   session_id) :
		    -EINVAL;
}

/* ------------------------------------------------------------------------ */
/* back-end request channel                                                 */
/* ------------------------------------------------------------------------ */
/* The layout of the first release (HACKING, "Extensible structs"). */
#define FE_OPS_SIZE_1 \
	VH_SIZEOF_UNTIL(struct vh_vu_frontend_ops, shared_object_lookup)

VH_EXPORT int vh_vu_frontend_set_ops(struct vh_vu_frontend *fe,
				     const struct vh_vu_frontend_ops *ops,
				     void *data)
{
	int r;

	if (!fe)
		return -EINVAL;
	if (!ops) {
		fe->ops = NULL;
		fe->ops_data = data;
		return 0;
	}
	r = vh_copy_struct(&fe->ops_copy, sizeof(fe->ops_copy), FE_OPS_SIZE_1,
			   ops);
	if (r < 0)
		return r;
	fe->ops = &fe->ops_copy;
	fe->ops_data = data;
	return 0;
}

VH_EXPORT int vh_vu_frontend_set_backend_req_fd(struct vh_vu_frontend *fe)
{
	int sv[2], r;

	if (!fe)
		return -EINVAL;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/* our end only: the back-end's is its own business */
	r = fcntl(sv[0], F_GETFL);
	if (r < 0 || fcntl(sv[0], F_SETFL, r | O_NONBLOCK) < 0) {
		r = -errno;
		close(sv[0]);
		close(sv[1]);
		return r;
	}
	r = vu_fe_call_fd(fe, VH_VU_SET_BACKEND_REQ_FD, sv[1]);
	close(sv[1]);
	if (r < 0) {
		close(sv[0]);
		return r;
	}
	vu_fe_close_backend(fe);
	fe->backend_fd = sv[0];
	return 0;
}

VH_EXPORT int vh_vu_frontend_get_backend_fd(const struct vh_vu_frontend *fe)
{
	return fe ? fe->backend_fd : -EINVAL;
}

void vu_fe_close_backend(struct vh_vu_frontend *fe)
{
	if (fe->backend_fd >= 0)
		close(fe->backend_fd);
	fe->backend_fd = -1;
	fe->backend_gen++;
	vh_vu_rx_reset(&fe->backend_rx);
}

int vu_fe_backend_stalled(struct vh_vu_frontend *fe)
{
	const struct vh_vu_rx *rx = &fe->backend_rx;
	int64_t waited;

	if (fe->backend_fd < 0 || !rx->got)
		return 0;
	waited = vh_vu_now_ms() - rx->started;
	if (waited <= fe->timeout_ms)
		return 0;
	vh_err(fe->ctx,
	       "back-end request %u: %u bytes in %lld ms and no more, closing the channel\n",
	       rx->got >= VH_VU_HDR_SIZE ? rx->msg.hdr.request : 0, rx->got,
	       (long long)waited);
	vu_fe_close_backend(fe);
	return -ETIMEDOUT;
}

/* A ring index in a back-end request: one of the rings we set up. */
static int check_ring(struct vh_vu_frontend *fe, const char *request,
		      uint64_t idx)
{
	if (idx < fe->nrings)
		return 0;
	vh_err(fe->ctx, "%s: ring %llu, but %u rings are set up\n", request,
	       (unsigned long long)idx, fe->nrings);
	return -EINVAL;
}

/*
 * VRING_HOST_NOTIFIER_MSG ("the area to mmap"): size and offset page
 * aligned (QEMU maps one page at offset); a regular file must hold the
 * area; a character device (a VFIO BAR) cannot say its size; anything
 * else cannot be mapped at all.
 */
static int check_notifier(struct vh_vu_frontend *fe,
			  const struct vh_vu_vring_area *a, int fd)
{
	long page = sysconf(_SC_PAGESIZE);
	struct stat st;

	if (fd < 0)
		return 0;
	if (page <= 0 || !a->size || a->size % (uint64_t)page ||
	    a->offset % (uint64_t)page || a->offset + a->size < a->offset) {
		vh_err(fe->ctx,
		       "VRING_HOST_NOTIFIER_MSG: area of %#llx bytes at %#llx\n",
		       (unsigned long long)a->size,
		       (unsigned long long)a->offset);
		return -EINVAL;
	}
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISCHR(st.st_mode))
		return 0;
	if (!S_ISREG(st.st_mode)) {
		vh_err(fe->ctx,
		       "VRING_HOST_NOTIFIER_MSG: the fd cannot be mapped (mode %#o)\n",
		       (unsigned int)(st.st_mode & S_IFMT));
		return -EINVAL;
	}
	if (st.st_size < 0 || a->offset + a->size > (uint64_t)st.st_size) {
		vh_err(fe->ctx,
		       "VRING_HOST_NOTIFIER_MSG: area of %llu bytes at %llu, the fd has %lld\n",
		       (unsigned long long)a->size,
		       (unsigned long long)a->offset, (long long)st.st_size);
		return -EINVAL;
	}
	return 0;
}

/* Run the callback for a checked back-end request; 0 or -errno. */
static int backend_handle(struct vh_vu_frontend *fe, struct vh_vu_msg *msg,
			  int *reply_fd)
{
	const struct vh_vu_frontend_ops *ops = fe->ops;
	void *data = fe->ops_data;
	const struct vh_vu_iotlb *io;
	unsigned int idx;
	int fd, r;

	switch (msg->hdr.request) {
	case VH_VU_BACKEND_IOTLB_MSG:
		io = &msg->payload.iotlb;
		/* "to notify of an IOTLB miss, or an IOTLB access failure" */
		if ((io->type != VH_IOTLB_MISS &&
		     io->type != VH_IOTLB_ACCESS_FAIL) ||
		    io->perm < VH_ACCESS_RO || io->perm > VH_ACCESS_RW) {
			vh_err(fe->ctx, "IOTLB_MSG: type %u, perm %u\n",
			       io->type, io->perm);
			return -EINVAL;
		}
		if (!ops || !ops->iotlb)
			return -EOPNOTSUPP;
		return ops->iotlb(fe, data, io);
	case VH_VU_BACKEND_CONFIG_CHANGE_MSG:
		if (!ops || !ops->config_change)
			return -EOPNOTSUPP;
		return ops->config_change(fe, data);
	case VH_VU_BACKEND_VRING_HOST_NOTIFIER_MSG:
		/* the rule checked: no bits beyond the index and NOFD */
		idx = msg->payload.area.u64 & VH_VU_VRING_IDX_MASK;
		fd = msg->nfds ? msg->fds[0] : -1;
		r = check_ring(fe, "VRING_HOST_NOTIFIER_MSG", idx);
		if (r == 0)
			r = check_notifier(fe, &msg->payload.area, fd);
		if (r < 0)
			return r; /* fd closed by the caller */
		if (!ops || !ops->host_notifier)
			return -EOPNOTSUPP;
		/* the callback owns fd from here on */
		msg->nfds = 0;
		return ops->host_notifier(fe, data, idx, fd,
					  msg->payload.area.size,
					  msg->payload.area.offset);
	case VH_VU_BACKEND_VRING_CALL:
		idx = msg->payload.state.index;
		r = check_ring(fe, "VRING_CALL", idx);
		if (r < 0)
			return r;
		if (!ops || !ops->vring_call)
			return -EOPNOTSUPP;
		return ops->vring_call(fe, data, idx);
	case VH_VU_BACKEND_VRING_ERR:
		idx = msg->payload.state.index;
		r = check_ring(fe, "VRING_ERR", idx);
		if (r < 0)
			return r;
		if (!ops || !ops->vring_err)
			return -EOPNOTSUPP;
		return ops->vring_err(fe, data, idx);
	case VH_VU_BACKEND_SHARED_OBJECT_ADD:
		if (!ops || !ops->shared_object_add)
			return -EOPNOTSUPP;
		return ops->shared_object_add(fe, data,
					      msg->payload.shared.uuid);
	case VH_VU_BACKEND_SHARED_OBJECT_REMOVE:
		if (!ops || !ops->shared_object_remove)
			return -EOPNOTSUPP;
		return ops->shared_object_remove(fe, data,
						 msg->payload.shared.uuid);
	case VH_VU_BACKEND_SHARED_OBJECT_LOOKUP:
		if (!ops || !ops->shared_object_lookup)
			return -EOPNOTSUPP;
		return ops->shared_object_lookup(
			fe, data, msg->payload.shared.uuid, reply_fd);
	default:
		return -EOPNOTSUPP;
	}
}

int vu_fe_dispatch_backend(struct vh_vu_frontend *fe, int64_t deadline)
{
	const uint64_t gen = fe->backend_gen;
	struct vh_vu_msg msg;
	int r;

	if (fe->backend_fd < 0)
		return -ENOTCONN;
	/* only what is there: half a request waits for its rest, not us */
	r = vh_vu_rx_step(fe->ctx, fe->backend_fd, &fe->backend_rx, &msg);
	if (r == -EAGAIN) {
		r = vu_fe_backend_stalled(fe);
		return r < 0 ? r : -EAGAIN;
	}
	if (r < 0) {
		vu_fe_close_backend(fe);
		return r;
	}
	vh_vu_trace(fe->ctx, "<-", true, &msg);
	r = vu_fe_backend_msg(fe, &msg);
	if (r < 0)
		vu_fe_close_backend(fe);
	/*
	 * a callback may have closed the channel, or the connection, or
	 * taken another one: the reply is not the new channel's
	 */
	if (r <= 0 || fe->backend_gen != gen) {
		vh_vu_msg_close_fds(&msg);
		return r < 0 ? r : 0;
	}
	vh_vu_trace(fe->ctx, "->", true, &msg);
	/* a back-end that never reads its replies holds us until deadline */
	r = vh_vu_msg_send_until(fe->ctx, fe->backend_fd, &msg, deadline);
	vh_vu_msg_close_fds(&msg);
	if (r < 0) {
		vh_err(fe->ctx, "%s: reply: %s, closing the channel\n",
		       vh_vu_msg_name(true, msg.hdr.request), strerror(-r));
		vu_fe_close_backend(fe);
		return r;
	}
	return 0;
}

int vu_fe_backend_msg(struct vh_vu_frontend *fe, struct vh_vu_msg *msg)
{
	const struct vh_vu_msg_rule *rule;
	bool want_reply;
	int ret, reply_fd = -1;

	rule = vh_vu_msg_rule(true, msg->hdr.request);
	if (!rule || vh_vu_msg_check(fe->ctx, rule, msg, false) < 0 ||
	    (msg->hdr.flags & VH_VU_FLAG_REPLY)) {
		vh_err(fe->ctx,
		       "back-end request %u (%s): malformed, closing the channel\n",
		       msg->hdr.request, vh_vu_msg_name(true, msg->hdr.request));
		vh_vu_msg_close_fds(msg);
		return -EPROTO;
	}
	/* fds only with BACKEND_SEND_FD ("Back-end communication") */
	if (msg->nfds &&
	    !vu_fe_has_protocol(fe, VH_VU_PROTOCOL_F_BACKEND_SEND_FD)) {
		vh_err(fe->ctx, "%s: fd without BACKEND_SEND_FD\n", rule->name);
		vh_vu_msg_close_fds(msg);
		ret = -EPERM;
	} else if (!vh_vu_msg_gate_open(rule, fe->features,
					fe->protocol_features)) {
		vh_err(fe->ctx, "%s: not negotiated\n", rule->name);
		vh_vu_msg_close_fds(msg);
		ret = -EOPNOTSUPP;
	} else {
		bool was = fe->dispatching;

		fe->dispatching = true;
		ret = backend_handle(fe, msg, &reply_fd);
		fe->dispatching = was;
		vh_vu_msg_close_fds(msg);
	}

	want_reply = rule->reply == VH_VU_REPLY_ALWAYS ||
		     ((msg->hdr.flags & VH_VU_FLAG_NEED_REPLY) &&
		      vu_fe_has_protocol(fe, VH_VU_PROTOCOL_F_REPLY_ACK));
	if (!want_reply) {
		if (reply_fd >= 0)
			close(reply_fd);
		return 0;
	}
	/* zero on success, non-zero (here: the errno) on failure */
	vh_vu_msg_set_reply_u64(msg, ret < 0 ? (uint64_t)-ret : 0);
	if (rule->reply == VH_VU_REPLY_ALWAYS && ret == 0 && reply_fd >= 0) {
		msg->fds[msg->nfds++] = reply_fd;
		reply_fd = -1;
	} else if (rule->reply == VH_VU_REPLY_ALWAYS && ret == 0) {
		msg->payload.u64 = ENOENT; /* a lookup must come with an fd */
	}
	if (reply_fd >= 0)
		close(reply_fd);
	return 1;
}

VH_EXPORT int vh_vu_frontend_dispatch_backend(struct vh_vu_frontend *fe)
{
	if (!fe)
		return -EINVAL;
	/*
	 * from a callback of a back-end request: each level would take
	 * another from a back-end that floods the channel, the stack's depth
	 * its to choose (the header: no dispatch inside a callback)
	 */
	if (fe->dispatching)
		return -EBUSY;
	return vu_fe_dispatch_backend(fe, vu_fe_deadline(fe));
}

/* ------------------------------------------------------------------------ */
/* raw                                                                      */
/* ------------------------------------------------------------------------ */
VH_EXPORT int vh_vu_frontend_send_raw(struct vh_vu_frontend *fe,
				      const struct vh_vu_msg *msg,
				      struct vh_vu_msg *reply)
{
	int64_t deadline;
	int r;

	if (!fe || !msg)
		return -EINVAL;
	if (fe->sock < 0)
		return -ENOTCONN;
	deadline = vu_fe_deadline(fe);
	r = vh_vu_msg_send_until(fe->ctx, fe->sock, msg, deadline);
	if (r < 0 || !reply)
		return r;
	return vh_vu_msg_recv_until(fe->ctx, fe->sock, reply, deadline);
}
