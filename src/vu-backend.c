// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vhost-user back-end: the object, connection handling, the message table
 * and dispatch, and the requests about the device as a whole.  The rings
 * (their state machine and requests) are in vu-backend-vring.c; memory,
 * log and inflight messages in vu-backend-mem.c; the IOTLB in
 * vu-backend-iotlb.c; the back-end request channel in vu-backend-req.c.
 *
 * Policy for what the front-end sends ("the spec" is vhost-user.rst):
 *  - a message that breaks the wire rules (size, fds, version, unknown
 *    request) or carries a hostile value (index, ring size, address,
 *    region) closes the connection, after an error reply when the
 *    front-end asked for one;
 *  - a request whose protocol feature was not negotiated is refused: an
 *    error reply when REPLY_ACK is negotiated and NEED_REPLY set,
 *    otherwise the connection is closed;
 *  - a request the device turns down (its callback failed) gets an error
 *    reply when asked for one and the connection stays.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "iotlb-internal.h"
#include "libvhost-mem.h"
#include "libvhost-vring.h"
#include "vu-backend-internal.h"
#include "vu-trace.h"

/* Protocol features the library implements (given the device's callbacks). */
static uint64_t implemented_protocol(const struct vh_vu_device_ops *ops)
{
	uint64_t p = 0;

	p |= 1ull << VH_VU_PROTOCOL_F_MQ;
	p |= 1ull << VH_VU_PROTOCOL_F_LOG_SHMFD;
	p |= 1ull << VH_VU_PROTOCOL_F_REPLY_ACK;
	p |= 1ull << VH_VU_PROTOCOL_F_BACKEND_REQ;
	p |= 1ull << VH_VU_PROTOCOL_F_BACKEND_SEND_FD;
	p |= 1ull << VH_VU_PROTOCOL_F_HOST_NOTIFIER;
	p |= 1ull << VH_VU_PROTOCOL_F_INFLIGHT_SHMFD;
	p |= 1ull << VH_VU_PROTOCOL_F_RESET_DEVICE;
	p |= 1ull << VH_VU_PROTOCOL_F_INBAND_NOTIFICATIONS;
	p |= 1ull << VH_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS;
	p |= 1ull << VH_VU_PROTOCOL_F_STATUS;
	p |= 1ull << VH_VU_PROTOCOL_F_SHARED_OBJECT;
	if (ops->send_rarp)
		p |= 1ull << VH_VU_PROTOCOL_F_RARP;
	if (ops->net_set_mtu)
		p |= 1ull << VH_VU_PROTOCOL_F_NET_MTU;
	if (ops->get_config)
		p |= 1ull << VH_VU_PROTOCOL_F_CONFIG;
	if (ops->set_device_state_fd && ops->check_device_state)
		p |= 1ull << VH_VU_PROTOCOL_F_DEVICE_STATE;
	/*
	 * Never: CROSS_ENDIAN (vh_devq is little-endian only), CRYPTO_SESSION
	 * (no crypto device), PAGEFAULT (no postcopy: no userfaultfd
	 * handling), XEN_MMAP (no Xen mappings).
	 */
	return p;
}

/*
 * Virtio features vh_devq cannot serve: none (packed rings are served, and
 * offered when the device offers them; vh_devq refuses packed rings
 * through an IOTLB, should a front-end take both).
 */
#define VU_BE_FEATURES_NEVER 0ull

/*
 * ACCESS_PLATFORM (IOVAs through the IOTLB) when the device offers it:
 * only with BACKEND_REQ, the channel misses go on, and REPLY_ACK, which
 * front-ends require with it (vhost-user.rst "IOMMU support").
 */
static uint64_t offered_features(uint64_t features, uint64_t protocol)
{
	uint64_t need = (1ull << VH_VU_PROTOCOL_F_BACKEND_REQ) |
			(1ull << VH_VU_PROTOCOL_F_REPLY_ACK);

	features &= ~VU_BE_FEATURES_NEVER;
	if ((protocol & need) != need)
		features &= ~(1ull << VH_VU_VIRTIO_F_ACCESS_PLATFORM);
	return features | (1ull << VH_VU_F_PROTOCOL_FEATURES);
}


/* ------------------------------------------------------------------------ */
/* connection state                                                         */
/* ------------------------------------------------------------------------ */
static void conn_state_free(struct vh_vu_backend *be)
{
	unsigned int i;

	if (be->queues) {
		vu_be_quiesce_all(be);
		for (i = 0; i < be->dev.num_queues; i++) {
			vh_devq_unref(be->queues[i].vring);
			vh_close_peer_fd(be->queues[i].err_fd);
		}
		free(be->queues);
		be->queues = NULL;
	}
	vu_be_inflight_drop(be);
	vu_be_req_drop(be);
	vh_iotlb_flush(be->iotlb);
	vh_close_peer_fd(be->log_fd);
	be->log_fd = -1;
	be->mem = vh_mem_unref(be->mem);
	vu_be_req_features(be, 0, 0);
	be->features_set = false;
	be->state_set_failed = true; /* no transfer on this connection yet */
	be->status = 0;
}

static int conn_state_new(struct vh_vu_backend *be)
{
	unsigned int i;
	int r;

	r = vh_mem_new(be->ctx, &be->mem);
	if (r < 0)
		return r;
	be->queues = calloc(be->dev.num_queues, sizeof(*be->queues));
	if (!be->queues) {
		conn_state_free(be);
		return -ENOMEM;
	}
	for (i = 0; i < be->dev.num_queues; i++)
		be->queues[i].err_fd = -1;
	for (i = 0; i < be->dev.num_queues; i++) {
		r = vh_devq_new(be->ctx, be->mem, i, &be->queues[i].vring);
		if (r == 0)
			r = vh_devq_set_iotlb(be->queues[i].vring, be->iotlb);
		if (r < 0) {
			conn_state_free(be);
			return r;
		}
	}
	return 0;
}

static void listen_poll(struct vh_vu_backend *be, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN,
				  .data.u64 = VU_BE_TAG_LISTEN };

	if (be->listen_fd < 0)
		return;
	if (on)
		epoll_ctl(be->epfd, EPOLL_CTL_ADD, be->listen_fd, &ev);
	else
		epoll_ctl(be->epfd, EPOLL_CTL_DEL, be->listen_fd, NULL);
}

/* Arm the partial message's timer for deadline (ms), or disarm it (0). */
static void rx_timer_set(struct vh_vu_backend *be, int64_t deadline)
{
	struct itimerspec its = { 0 };

	if (!deadline && !be->rx_timer_armed)
		return;
	its.it_value.tv_sec = deadline / 1000;
	its.it_value.tv_nsec = deadline % 1000 * 1000000;
	/* a failure: the deadline is still checked at every dispatch */
	if (timerfd_settime(be->rx_timer, deadline ? TFD_TIMER_ABSTIME : 0,
			    &its, NULL) < 0) {
		vh_warn(be->ctx, "message timer: %m\n");
		return;
	}
	be->rx_timer_armed = deadline != 0;
}

static void conn_close(struct vh_vu_backend *be)
{
	if (be->conn_fd < 0)
		return;
	vh_vu_rx_reset(&be->rx);
	rx_timer_set(be, 0);
	/* The device goes back to its initial state before its rings go. */
	vu_be_quiesce_all(be);
	if (be->ops.reset)
		be->ops.reset(be, be->data);
	conn_state_free(be);
	epoll_ctl(be->epfd, EPOLL_CTL_DEL, be->conn_fd, NULL);
	close(be->conn_fd);
	be->conn_fd = -1;
	listen_poll(be, true);
	vh_info(be->ctx, "vhost-user connection closed\n");
}

/*
 * Start serving fd (a connected socket), owned from now on if this
 * succeeds; on failure it is still the caller's.
 */
static int conn_open(struct vh_vu_backend *be, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN,
				  .data.u64 = VU_BE_TAG_CONN };
	int fl, r;

	if (be->conn_fd >= 0)
		return -EBUSY;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	r = conn_state_new(be);
	if (r < 0)
		return r;
	if (epoll_ctl(be->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		r = -errno;
		conn_state_free(be);
		return r;
	}
	be->conn_fd = fd;
	/* One front-end at a time: later ones wait in the listen backlog. */
	listen_poll(be, false);
	vh_info(be->ctx, "vhost-user connection opened\n");
	return 0;
}

/* ------------------------------------------------------------------------ */
/* object                                                                   */
/* ------------------------------------------------------------------------ */
/* The layouts of the first release (HACKING, "Extensible structs"). */
#define VU_DEVICE_SIZE_1 VH_SIZEOF_UNTIL(struct vh_vu_device, queue_num)
#define VU_DEVICE_OPS_SIZE_1 \
	VH_SIZEOF_UNTIL(struct vh_vu_device_ops, gpu_set_socket)

VH_EXPORT int vh_vu_backend_new(struct vh_ctx *ctx,
				const struct vh_vu_device *dev,
				const struct vh_vu_device_ops *ops, void *data,
				struct vh_vu_backend **out)
{
	struct vh_vu_device_ops o = { .size = sizeof(o) };
	struct vh_vu_device v;
	struct vh_vu_backend *be;
	int r;

	if (!ctx || !dev || !out)
		return -EINVAL;
	/* the application's layout may be older or newer than ours */
	r = vh_copy_struct(&v, sizeof(v), VU_DEVICE_SIZE_1, dev);
	if (r < 0)
		return r;
	if (ops) {
		r = vh_copy_struct(&o, sizeof(o), VU_DEVICE_OPS_SIZE_1, ops);
		if (r < 0)
			return r;
	}
	/* the vring index is 8 bits wide in SET_VRING_KICK/CALL/ERR */
	if (v.num_queues < 1 || v.num_queues > VH_VU_MAX_QUEUES ||
	    (v.max_queue_size &&
	     (!vh_is_pow2(v.max_queue_size) ||
	      v.max_queue_size > VH_DEVQ_MAX_SIZE)) ||
	    v.max_mem_slots > VH_MEM_MAX_REGIONS ||
	    v.queue_num > v.num_queues ||
	    v.config_size > VH_VU_BACKEND_CONFIG_MAX)
		return -EINVAL;

	be = calloc(1, sizeof(*be));
	if (!be)
		return -ENOMEM;
	be->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (be->epfd < 0) {
		free(be);
		return -errno;
	}
	be->refcount = 1;
	be->ctx = vh_ctx_ref(ctx);
	be->dev = v;
	if (!be->dev.max_queue_size)
		be->dev.max_queue_size = VH_DEVQ_MAX_SIZE;
	if (!be->dev.max_mem_slots)
		be->dev.max_mem_slots = VH_MEM_MAX_REGIONS;
	be->ops = o;
	be->data = data;
	be->listen_fd = -1;
	be->conn_fd = -1;
	be->rx_timer = -1;
	be->log_fd = -1;
	be->inflight_fd = -1;
	be->req_fd = -1;
	be->state_set_failed = true;
	vh_vu_rx_init(&be->rx);
	pthread_mutex_init(&be->req_lock, NULL);
	be->offered_protocol = v.protocol_features &
			       implemented_protocol(&be->ops);
	be->offered_features = offered_features(v.features,
						be->offered_protocol);
	if (vu_be_iotlb_init(be) < 0) {
		vh_vu_backend_unref(be);
		return -ENOMEM;
	}
	be->rx_timer =
		timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (be->rx_timer < 0) {
		r = -errno;
		vh_vu_backend_unref(be);
		return r;
	}
	{
		struct epoll_event ev = { .events = EPOLLIN,
					  .data.u64 = VU_BE_TAG_RX_TIMER };

		if (epoll_ctl(be->epfd, EPOLL_CTL_ADD, be->rx_timer, &ev) < 0) {
			r = -errno;
			vh_vu_backend_unref(be);
			return r;
		}
	}
	*out = be;
	return 0;
}

VH_EXPORT struct vh_vu_backend *vh_vu_backend_ref(struct vh_vu_backend *be)
{
	if (!be)
		return NULL;
	__atomic_add_fetch(&be->refcount, 1, __ATOMIC_RELAXED);
	return be;
}

VH_EXPORT struct vh_vu_backend *vh_vu_backend_unref(struct vh_vu_backend *be)
{
	if (!be)
		return NULL;
	if (__atomic_sub_fetch(&be->refcount, 1, __ATOMIC_ACQ_REL) > 0)
		return be;
	conn_close(be);
	/*
	 * Our socket file only (another back-end may listen on that path
	 * now), before the socket closes: open, its inode is not reused.
	 */
	if (be->listen_path) {
		vh_vu_socket_unlink_id(be->ctx, be->listen_path,
				       &be->listen_id);
		free(be->listen_path);
	}
	if (be->listen_fd >= 0)
		close(be->listen_fd);
	if (be->rx_timer >= 0)
		close(be->rx_timer);
	close(be->epfd);
	vh_iotlb_unref(be->iotlb);
	pthread_mutex_destroy(&be->req_lock);
	vh_ctx_unref(be->ctx);
	free(be);
	return NULL;
}

VH_EXPORT int vh_vu_backend_adopt_listen_fd(struct vh_vu_backend *be, int fd)
{
	int fl;

	if (!be || fd < 0)
		return -EINVAL;
	if (be->listen_fd >= 0)
		return -EBUSY;
	fl = vh_vu_socket_adopt_listen(be->ctx, fd);
	if (fl < 0)
		return fl;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	be->listen_fd = fd;
	if (be->conn_fd < 0)
		listen_poll(be, true);
	return 0;
}

VH_EXPORT int vh_vu_backend_listen(struct vh_vu_backend *be, const char *path)
{
	struct vh_vu_sock_id id;
	char *copy;
	int fd, r;

	if (!be || !path)
		return -EINVAL;
	if (be->listen_fd >= 0)
		return -EBUSY;
	copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	fd = vh_vu_socket_listen_id(be->ctx, path, 4, true, &id);
	if (fd < 0) {
		free(copy);
		return fd;
	}
	r = vh_vu_backend_adopt_listen_fd(be, fd);
	if (r < 0) {
		vh_vu_socket_unlink_id(be->ctx, path, &id);
		close(fd);
		free(copy);
		return r;
	}
	be->listen_path = copy;
	be->listen_id = id;
	return 0;
}

VH_EXPORT int vh_vu_backend_adopt_fd(struct vh_vu_backend *be, int fd)
{
	int r;

	if (!be || fd < 0)
		return -EINVAL;
	r = vh_vu_socket_adopt(be->ctx, fd);
	if (r < 0)
		return r;
	return conn_open(be, fd);
}

VH_EXPORT int vh_vu_backend_get_fd(const struct vh_vu_backend *be)
{
	return be ? be->epfd : -EINVAL;
}

VH_EXPORT bool vh_vu_backend_connected(const struct vh_vu_backend *be)
{
	return be && be->conn_fd >= 0;
}

VH_EXPORT void vh_vu_backend_disconnect(struct vh_vu_backend *be)
{
	if (be)
		conn_close(be);
}

VH_EXPORT uint64_t vh_vu_backend_get_features(const struct vh_vu_backend *be)
{
	return be ? be->features : 0;
}

VH_EXPORT uint64_t
vh_vu_backend_get_protocol_features(const struct vh_vu_backend *be)
{
	return be ? be->protocol_features : 0;
}

VH_EXPORT struct vh_devq *vh_vu_backend_get_vring(struct vh_vu_backend *be,
						   unsigned int idx)
{
	if (!be || !be->queues || idx >= be->dev.num_queues)
		return NULL;
	return be->queues[idx].vring;
}

VH_EXPORT uint8_t vh_vu_backend_get_status(const struct vh_vu_backend *be)
{
	return be ? be->status : 0;
}

/* ------------------------------------------------------------------------ */
/* request handlers                                                         */
/* ------------------------------------------------------------------------ */

static int h_get_features(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			  struct vh_vu_msg *reply)
{
	vh_vu_msg_set_reply_u64(reply, be->offered_features);
	return 0;
}

static int h_set_features(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			  struct vh_vu_msg *reply)
{
	uint64_t f = msg->payload.u64;
	unsigned int i;
	int r;

	if (f & ~be->offered_features) {
		vh_err(be->ctx, "SET_FEATURES %#llx: not offered %#llx\n",
		       (unsigned long long)f,
		       (unsigned long long)(f & ~be->offered_features));
		return -EINVAL;
	}
	/* LOG_ALL may be switched on a running device: stop rings around it. */
	vu_be_quiesce_all(be);
	/*
	 * The device first: features it turns down must not reach the rings
	 * (a ring that went packed while the device and the front-end stay
	 * split) nor be->features; its rings go back to it unchanged.
	 */
	if (be->ops.set_features && be->ops.set_features(be, be->data, f) < 0) {
		vh_warn(be->ctx, "SET_FEATURES %#llx: refused by the device\n",
			(unsigned long long)f);
		vu_be_resume_all(be);
		return VU_SOFT_FAIL;
	}
	for (i = 0; i < be->dev.num_queues; i++) {
		struct vu_be_queue *q = &be->queues[i];

		r = vh_devq_set_features(q->vring, f);
		if (r == -ENOMEM)
			return r; /* the connection closes: no state to keep */
		/*
		 * the addresses kept do not map under the new features
		 * (another layout, event idx areas, ACCESS_PLATFORM): the
		 * ring waits for new ones, as a restart sends them
		 */
		if (r < 0 && q->addr_set) {
			q->addr_set = false;
			q->addr_pending = true;
		}
		/*
		 * a packed ring's size that split cannot have (2.7) is gone:
		 * the ring waits for a SET_VRING_NUM, not handed meanwhile
		 */
		if (q->num && !vh_devq_get_num(q->vring))
			q->num = 0;
	}
	vu_be_req_features(be, f, be->protocol_features);
	be->features_set = true;
	/* "Ring states": without protocol features, enable every ring. */
	if (!(f & (1ull << VH_VU_F_PROTOCOL_FEATURES)))
		for (i = 0; i < be->dev.num_queues; i++)
			be->queues[i].enabled = true;
	vu_be_resume_all(be);
	return 0;
}

static int h_get_protocol_features(struct vh_vu_backend *be,
				   struct vh_vu_msg *msg,
				   struct vh_vu_msg *reply)
{
	vh_vu_msg_set_reply_u64(reply, be->offered_protocol);
	return 0;
}

static int h_set_protocol_features(struct vh_vu_backend *be,
				   struct vh_vu_msg *msg,
				   struct vh_vu_msg *reply)
{
	uint64_t p = msg->payload.u64;
	uint64_t inband_needs = (1ull << VH_VU_PROTOCOL_F_BACKEND_REQ) |
				(1ull << VH_VU_PROTOCOL_F_REPLY_ACK);

	if (p & ~be->offered_protocol) {
		vh_err(be->ctx, "SET_PROTOCOL_FEATURES %#llx: not offered\n",
		       (unsigned long long)p);
		return -EINVAL;
	}
	/* "In-band notifications": without the other two, close. */
	if ((p & (1ull << VH_VU_PROTOCOL_F_INBAND_NOTIFICATIONS)) &&
	    (p & inband_needs) != inband_needs) {
		vh_err(be->ctx,
		       "INBAND_NOTIFICATIONS without BACKEND_REQ+REPLY_ACK\n");
		return -EINVAL;
	}
	vu_be_req_features(be, be->features, p);
	return 0;
}

static int h_set_owner(struct vh_vu_backend *be, struct vh_vu_msg *msg,
		       struct vh_vu_msg *reply)
{
	return 0;
}


static int h_set_log_fd(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			struct vh_vu_msg *reply)
{
	vh_close_peer_fd(be->log_fd);
	be->log_fd = msg->fds[0];
	msg->fds[0] = -1;
	msg->nfds = 0;
	return 0;
}


static int h_send_rarp(struct vh_vu_backend *be, struct vh_vu_msg *msg,
		       struct vh_vu_msg *reply)
{
	uint8_t mac[6];

	/* the first 6 bytes of the u64 payload are the guest's MAC */
	memcpy(mac, msg->payload.raw, sizeof(mac));
	return be->ops.send_rarp(be, be->data, mac) < 0 ? VU_SOFT_FAIL : 0;
}

static int h_net_set_mtu(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			 struct vh_vu_msg *reply)
{
	uint64_t mtu = msg->payload.u64;

	/* virtio-net 5.1.4: mtu is a le16; 68 is the IPv4 minimum */
	if (mtu < 68 || mtu > 65535)
		return VU_SOFT_FAIL;
	return be->ops.net_set_mtu(be, be->data, (uint16_t)mtu) < 0 ?
		       VU_SOFT_FAIL :
		       0;
}

static int h_set_backend_req_fd(struct vh_vu_backend *be, struct vh_vu_msg *msg,
				struct vh_vu_msg *reply)
{
	int r = vu_be_req_set(be, msg->fds[0]);

	msg->fds[0] = -1;
	msg->nfds = 0;
	/* an fd the channel cannot use: refused, no channel (it said why) */
	if (r < 0)
		return VU_SOFT_FAIL;
	/*
	 * Misses from before could not be reported (and were forgotten), or
	 * went out on a channel this one replaced, or that broke, before
	 * the front-end read them: forgotten too, so that rings waiting for
	 * a translation try again, and report now.
	 */
	vh_iotlb_miss_forget_all(be->iotlb);
	if (be->features & (1ull << VH_VU_VIRTIO_F_ACCESS_PLATFORM))
		vu_be_rekick_all(be);
	return 0;
}

static int h_get_config(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			struct vh_vu_msg *reply)
{
	const struct vh_vu_config *c = &msg->payload.config;
	uint32_t size = c->size;

	vh_vu_msg_init(reply, VH_VU_GET_CONFIG, 0);
	reply->hdr.flags |= VH_VU_FLAG_REPLY;
	/* "offset + size checked": a zero-length reply reports the error */
	if (size > VH_VU_MAX_CONFIG_SIZE ||
	    msg->hdr.size != VH_VU_CONFIG_HDR_SIZE + size ||
	    c->offset > be->dev.config_size ||
	    size > be->dev.config_size - c->offset) {
		vh_warn(be->ctx, "GET_CONFIG offset %u size %u: out of range\n",
			c->offset, size);
		return VU_SOFT_FAIL;
	}
	reply->payload.config.offset = c->offset;
	reply->payload.config.size = size;
	reply->payload.config.flags = c->flags;
	if (be->ops.get_config(be, be->data, c->offset,
			       reply->payload.config.region, size) < 0)
		return VU_SOFT_FAIL;
	reply->hdr.size = VH_VU_CONFIG_HDR_SIZE + size;
	return 0;
}

static int h_set_config(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			struct vh_vu_msg *reply)
{
	const struct vh_vu_config *c = &msg->payload.config;
	uint32_t size = c->size;

	if (size > VH_VU_MAX_CONFIG_SIZE ||
	    msg->hdr.size != VH_VU_CONFIG_HDR_SIZE + size) {
		vh_err(be->ctx, "SET_CONFIG: size %u in a %u byte message\n",
		       size, msg->hdr.size);
		return -EBADMSG;
	}
	if (c->flags > VH_VU_CONFIG_F_MIGRATION ||
	    c->offset > be->dev.config_size ||
	    size > be->dev.config_size - c->offset || !be->ops.set_config)
		return VU_SOFT_FAIL;
	return be->ops.set_config(be, be->data, c->offset, c->region, size,
				  c->flags) < 0 ?
		       VU_SOFT_FAIL :
		       0;
}

static int h_gpu_set_socket(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			    struct vh_vu_msg *reply)
{
	int fd = msg->fds[0];

	msg->fds[0] = -1;
	msg->nfds = 0;
	/* the device owns fd now, whatever it says */
	if (be->ops.gpu_set_socket(be, be->data, fd) < 0)
		return VU_SOFT_FAIL;
	return 0;
}

static int h_reset_device(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			  struct vh_vu_msg *reply)
{
	unsigned int i;

	/* "disable all rings and reset all internal device state" */
	vu_be_quiesce_all(be);
	for (i = 0; i < be->dev.num_queues; i++) {
		struct vu_be_queue *q = &be->queues[i];

		vh_devq_reset(q->vring);
		q->err_reported = false;
		q->num = 0;
		q->addr_set = false;
		q->addr_pending = false;
		q->started = false;
		q->enabled = false;
	}
	vu_be_iotlb_stop(be);
	be->status = 0;
	if (be->ops.reset)
		be->ops.reset(be, be->data);
	return 0;
}


static int h_get_max_mem_slots(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			       struct vh_vu_msg *reply)
{
	vh_vu_msg_set_reply_u64(reply, be->dev.max_mem_slots);
	return 0;
}

static int h_set_status(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			struct vh_vu_msg *reply)
{
	uint64_t s = msg->payload.u64;

	if (s > 0xff) {
		vh_err(be->ctx, "SET_STATUS %#llx\n", (unsigned long long)s);
		return -EINVAL;
	}
	if (be->ops.set_status &&
	    be->ops.set_status(be, be->data, (uint8_t)s) < 0)
		return VU_SOFT_FAIL;
	be->status = (uint8_t)s;
	return 0;
}

static int h_get_status(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			struct vh_vu_msg *reply)
{
	vh_vu_msg_set_reply_u64(reply, be->status);
	return 0;
}

static int h_get_shared_object(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			       struct vh_vu_msg *reply)
{
	int fd = -1;

	/* Reply: u64 0 and the fd on success, non-zero and no fd otherwise. */
	if (!be->ops.get_shared_object ||
	    be->ops.get_shared_object(be, be->data, msg->payload.shared.uuid,
				      &fd) < 0 ||
	    fd < 0) {
		vh_vu_msg_set_reply_u64(reply, 1);
		return 0;
	}
	vh_vu_msg_set_reply_u64(reply, 0);
	reply->fds[0] = fd;
	reply->nfds = 1;
	return 0;
}

static int h_set_device_state_fd(struct vh_vu_backend *be,
				 struct vh_vu_msg *msg, struct vh_vu_msg *reply)
{
	const struct vh_vu_device_state *ds = &msg->payload.device_state;
	int fd = msg->fds[0], reply_fd = -1;
	uint64_t result;

	msg->fds[0] = -1;
	msg->nfds = 0;
	if (ds->direction > VH_VU_TRANSFER_LOAD ||
	    ds->phase != VH_VU_PHASE_STOPPED) {
		/* unknown direction or phase: an error, no fd back */
		vh_close_peer_fd(fd);
		be->state_set_failed = true;
		vh_vu_msg_set_reply_u64(reply, 1 | VH_VU_DEVICE_STATE_NOFD);
		return 0;
	}
	if (be->ops.set_device_state_fd(be, be->data, ds->direction, ds->phase,
					fd, &reply_fd) < 0) {
		/* "must not both indicate an error and return a fd" */
		if (reply_fd >= 0)
			close(reply_fd);
		be->state_set_failed = true;
		vh_vu_msg_set_reply_u64(reply, 1 | VH_VU_DEVICE_STATE_NOFD);
		return 0;
	}
	be->state_set_failed = false;
	result = reply_fd < 0 ? VH_VU_DEVICE_STATE_NOFD : 0;
	vh_vu_msg_set_reply_u64(reply, result);
	if (reply_fd >= 0) {
		/* sent, then closed by the caller once the reply is out */
		reply->fds[0] = reply_fd;
		reply->nfds = 1;
	}
	return 0;
}

static int h_check_device_state(struct vh_vu_backend *be, struct vh_vu_msg *msg,
				struct vh_vu_msg *reply)
{
	/* the device ends its transfer, if any, whatever we answer */
	int r = be->ops.check_device_state(be, be->data);

	/* a refused transfer, or none on this connection, did not succeed */
	vh_vu_msg_set_reply_u64(reply, be->state_set_failed || r < 0 ? 1 : 0);
	return 0;
}

/* (IOTLB entries are forgotten there, before the rings resume) */
static int h_mem_table(struct vh_vu_backend *be, struct vh_vu_msg *msg,
		       struct vh_vu_msg *reply)
{
	return vu_be_set_mem_table(be, msg);
}

static int h_add_mem_reg(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			 struct vh_vu_msg *reply)
{
	return vu_be_add_mem_reg(be, msg);
}

static int h_rem_mem_reg(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			 struct vh_vu_msg *reply)
{
	return vu_be_rem_mem_reg(be, msg);
}

static int h_iotlb_msg(struct vh_vu_backend *be, struct vh_vu_msg *msg,
		       struct vh_vu_msg *reply)
{
	return vu_be_iotlb_msg(be, msg, reply);
}

static int h_set_log_base(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			  struct vh_vu_msg *reply)
{
	int r = vu_be_set_log_base(be, msg);

	/* LOG_SHMFD: the front-end always waits for this u64 */
	if (r >= 0)
		vh_vu_msg_set_reply_u64(reply, r ? 1 : 0);
	return r;
}

static int h_get_inflight_fd(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			     struct vh_vu_msg *reply)
{
	return vu_be_get_inflight_fd(be, msg, reply);
}

static int h_set_inflight_fd(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			     struct vh_vu_msg *reply)
{
	return vu_be_set_inflight_fd(be, msg);
}

typedef int (*vu_handler)(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			  struct vh_vu_msg *reply);

/*
 * One row per request, from VH_VU_REQUESTS (vu-msg.h): the rule that
 * validates it (size, fds, gate, reply) and the handler that serves it.
 * A NULL handler: never offered, hence refused (SET_VRING_ENDIAN, crypto
 * sessions, POSTCOPY_*: see implemented_protocol()).  An id without a row
 * has neither.
 */
struct vu_be_row {
	const struct vh_vu_msg_rule *rule;
	vu_handler handler;
};

static const struct vu_be_row rows[VH_VU_REQUEST_MAX] = {
#define X(id, gate, reply, req, rep, h)                                       \
	[VH_VU_##id] = { &vh_vu_fe_rules[VH_VU_##id], h },
	VH_VU_REQUESTS(X)
#undef X
};

/* Is a request's protocol feature both offered and negotiated? */
static bool gate_open(struct vh_vu_backend *be,
		      const struct vh_vu_msg_rule *rule)
{
	/*
	 * We always offer bit 30, and the spec wants GET_PROTOCOL_FEATURES
	 * answered even before SET_FEATURES: treat it as negotiated here.
	 */
	uint64_t f = be->features | (1ull << VH_VU_F_PROTOCOL_FEATURES);

	if (rule->gate >= 0 && !(be->offered_protocol & (1ull << rule->gate)))
		return false;
	return vh_vu_msg_gate_open(rule, f, be->protocol_features);
}

static int send_reply(struct vh_vu_backend *be, struct vh_vu_msg *reply)
{
	int r;

	vh_vu_trace(be->ctx, "->", false, reply);
	r = vh_vu_msg_send(be->ctx, be->conn_fd, reply);

	if (r < 0)
		vh_err(be->ctx, "cannot send reply to %s: %d\n",
		       vh_vu_msg_name(false, reply->hdr.request), r);
	return r;
}

static int send_ack(struct vh_vu_backend *be, const struct vh_vu_msg *msg,
		    uint64_t value)
{
	struct vh_vu_msg ack;

	ack.hdr = msg->hdr;
	ack.nfds = 0;
	vh_vu_msg_set_reply_u64(&ack, value);
	return send_reply(be, &ack);
}

/* Handle one received message; < 0 means close the connection. */
static int handle_msg(struct vh_vu_backend *be, struct vh_vu_msg *msg)
{
	const struct vu_be_row *row;
	const struct vh_vu_msg_rule *rule;
	struct vh_vu_msg reply;
	bool need_reply = msg->hdr.flags & VH_VU_FLAG_NEED_REPLY;
	bool acked;
	vu_handler h;
	int r, i;

	vh_vu_trace(be->ctx, "<-", false, msg);
	row = msg->hdr.request < VH_ARRAY_SIZE(rows) ? &rows[msg->hdr.request] :
						       NULL;
	rule = row ? row->rule : NULL;
	h = row ? row->handler : NULL;
	/* GPU_SET_SOCKET has no protocol feature: only GPU devices take it */
	if (msg->hdr.request == VH_VU_GPU_SET_SOCKET && !be->ops.gpu_set_socket)
		h = NULL;
	if (!rule || !h || !gate_open(be, rule)) {
		/* unknown, or not offered / not negotiated: refuse */
		vh_warn(be->ctx, "refusing %s (%u)\n",
			vh_vu_msg_name(false, msg->hdr.request),
			msg->hdr.request);
		if (need_reply &&
		    vu_be_has_protocol(be, VH_VU_PROTOCOL_F_REPLY_ACK))
			return send_ack(be, msg, 1) < 0 ? -EPIPE : 0;
		return -EOPNOTSUPP;
	}
	/* payload size and fd count of this request type */
	if (vh_vu_msg_check(be->ctx, rule, msg, false) < 0) {
		if (need_reply &&
		    vu_be_has_protocol(be, VH_VU_PROTOCOL_F_REPLY_ACK))
			send_ack(be, msg, 1);
		return -EBADMSG;
	}

	memset(&reply.hdr, 0, sizeof(reply.hdr));
	reply.hdr.request = msg->hdr.request;
	reply.nfds = 0;
	/* the reply-ack decision uses the state before the request */
	acked = need_reply &&
		vu_be_has_protocol(be, VH_VU_PROTOCOL_F_REPLY_ACK);
	r = h(be, msg, &reply);
	if (r < 0) {
		if (acked)
			send_ack(be, msg, 1);
		return r;
	}
	if (rule->reply == VH_VU_REPLY_ALWAYS) {
		if (reply.hdr.flags == 0) {
			/* handler reported failure without a body */
			vh_vu_msg_set_reply_u64(&reply, 1);
		}
		i = send_reply(be, &reply);
		/* fds in a reply are ours to close once sent (not ours: inflight) */
		if (reply.nfds && msg->hdr.request != VH_VU_GET_INFLIGHT_FD)
			vh_vu_msg_close_fds(&reply);
		return i < 0 ? i : 0;
	}
	if (acked ||
	    (need_reply && vu_be_has_protocol(be, VH_VU_PROTOCOL_F_REPLY_ACK)))
		return send_ack(be, msg, r == VU_SOFT_FAIL ? 1 : 0) < 0 ?
			       -EPIPE :
			       0;
	return 0;
}

int vu_be_handle_msg(struct vh_vu_backend *be, struct vh_vu_msg *msg)
{
	int r;

	if (be->conn_fd < 0) {
		vh_vu_msg_close_fds(msg);
		return -ENOTCONN;
	}
	r = handle_msg(be, msg);
	/* fds nobody took (on a message that takes none, or on error) */
	vh_vu_msg_close_fds(msg);
	if (r < 0) {
		vh_err(be->ctx, "closing the connection after %s: %d\n",
		       vh_vu_msg_name(false, msg->hdr.request), r);
		conn_close(be);
	}
	return r;
}

/*
 * A message not all in yet: never wait for its rest here (the caller's
 * loop may serve more than us), but close the connection once it is late.
 */
static int rx_partial(struct vh_vu_backend *be)
{
	int64_t deadline;

	if (!be->rx.got)
		return -EAGAIN;
	deadline = be->rx.started + VH_VU_MSG_TIMEOUT_MS;
	if (vh_vu_now_ms() >= deadline) {
		vh_err(be->ctx,
		       "message stalled after %u bytes for %d ms, closing\n",
		       be->rx.got, VH_VU_MSG_TIMEOUT_MS);
		conn_close(be);
		return -ETIMEDOUT;
	}
	if (!be->rx_timer_armed)
		rx_timer_set(be, deadline);
	return -EAGAIN;
}

static int dispatch_conn(struct vh_vu_backend *be)
{
	struct vh_vu_msg msg;
	int r;

	/* only what is there (MSG_DONTWAIT) */
	r = vh_vu_rx_step(be->ctx, be->conn_fd, &be->rx, &msg);
	if (r == -EAGAIN)
		return rx_partial(be);
	rx_timer_set(be, 0);
	if (r < 0) {
		conn_close(be);
		return r;
	}
	if (be->msg_hook)
		be->msg_hook(be->data);
	return vu_be_handle_msg(be, &msg);
}

void vu_be_set_msg_hook(struct vh_vu_backend *be, void (*hook)(void *data))
{
	be->msg_hook = hook;
}

VH_EXPORT int vh_vu_backend_dispatch(struct vh_vu_backend *be)
{
	struct epoll_event ev;
	int n, fd, r;

	if (!be)
		return -EINVAL;
	n = epoll_wait(be->epfd, &ev, 1, 0);
	if (n < 0)
		return errno == EINTR ? -EAGAIN : -errno;
	if (n == 0)
		return -EAGAIN;
	vh_dbg(be->ctx, "event %llu\n", (unsigned long long)ev.data.u64);

	switch (ev.data.u64) {
	case VU_BE_TAG_LISTEN:
		if (be->conn_fd >= 0)
			return -EAGAIN;
		fd = vh_vu_socket_accept(be->ctx, be->listen_fd, true);
		if (fd < 0)
			return fd == -EINTR ? -EAGAIN : fd;
		r = conn_open(be, fd);
		if (r < 0)
			close(fd);
		return r;
	case VU_BE_TAG_CONN:
		if (be->conn_fd < 0)
			return -EAGAIN;
		return dispatch_conn(be);
	case VU_BE_TAG_RX_TIMER: {
		uint64_t ticks;

		/* fired (one shot): disarmed; a partial message is late */
		if (read(be->rx_timer, &ticks, sizeof(ticks)) < 0 &&
		    errno != EAGAIN)
			vh_warn(be->ctx, "message timer: %m\n");
		be->rx_timer_armed = false;
		if (be->conn_fd < 0)
			return -EAGAIN;
		return rx_partial(be);
	}
	default:
		return vu_be_kick_event(be, (unsigned int)(ev.data.u64 -
							  VU_BE_TAG_KICK));
	}
}
