/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vh_vu_backend - the back-end side of the vhost-user protocol
 *
 * A vh_vu_backend serves one front-end connection at a time on a socket
 * the caller hands it: either a listening socket (or a path to listen on)
 * from which it accepts one connection after the other, or an already
 * connected socket.  It maps the front-end's memory, keeps the rings'
 * state and hands each ring to the device (struct vh_vu_device_ops) while
 * the ring is started and enabled.
 *
 * Event loop integration: vh_vu_backend_get_fd() is one pollable fd (an
 * epoll set holding the listening socket, the connection and, when the
 * device has a queue_kicked callback, every ring's kick eventfd).  When it
 * is readable call vh_vu_backend_dispatch(), which handles one event:
 * accepts a connection, handles one message or delivers one kick.  It
 * never waits for the front-end: a message that has arrived in part is
 * kept and -EAGAIN returned; its rest must come within 5 s of its first
 * byte, and at that deadline the fd is readable (a timer in the set) and
 * the dispatch closes the connection (-ETIMEDOUT).  It returns -ECONNRESET
 * once the front-end went away, after it has dropped every piece of
 * per-connection state (maps, fds, rings), so the next connection starts
 * fresh; other negative values are errors on the connection, which has
 * been closed as well.
 *
 * Ring model (vhost-user.rst, "Ring states"): a ring is stopped until
 * SET_VRING_KICK (or an in-band VRING_KICK) starts it, and stopped again by
 * GET_VRING_BASE; independently it is enabled by SET_VRING_ENABLE, or at
 * once when VHOST_USER_F_PROTOCOL_FEATURES is not negotiated.  The device
 * sees the ring (queue_started) only while it is started *and* enabled; a
 * started ring that is disabled is left untouched, which is free of side
 * effects.  Kicks are never lost: an eventfd keeps its count until read,
 * and an in-band kick on a ring that is not yet handed over is delivered
 * (queue_kicked) right after queue_started.
 *
 * The front-end's fds: SET_VRING_KICK, SET_VRING_CALL and SET_VRING_ERR
 * take an eventfd and nothing else, and make it non-blocking (the file is
 * shared with the front-end, which could otherwise hold a back-end thread
 * in a read or a write).  Any other fd there closes the connection.
 * SET_BACKEND_REQ_FD takes any fd (the checklist: no socket type beyond
 * what a message needs): a pipe carries requests without fds, and its
 * writes cannot raise SIGPIPE (EPIPE instead).  A pipe is opened again
 * (/proc/self/fd) for a non-blocking description of the back-end's own,
 * which the front-end's copy cannot make blocking; one that cannot be
 * (another user's pipe, a FIFO without a reader yet) is used as it is,
 * its flags left alone, through a pipe of the back-end's own with
 * splice(), which never waits whatever they say.  Any other fd that is
 * not a socket (a character device) is made non-blocking as it is, which
 * the front-end's copy can undo.
 *
 * Callbacks run in the thread that calls vh_vu_backend_dispatch().  Once
 * queue_stopped returns, the device must no longer touch that vh_devq
 * (its mappings may go away).  Rings are also taken back (queue_stopped,
 * then queue_started again) around every change the device must not race
 * with: memory table changes, SET_FEATURES, SET_VRING_NUM/ADDR/BASE/KICK/
 * CALL/ERR on a running ring.  A ring the device refuses to take
 * (queue_started fails) stays with the library, its kicks undelivered,
 * until a later message on it, or a memory or IOTLB update, tries again.  A
 * message on that ring gets an error reply; after a change no ring message
 * asked for (a memory table, an IOTLB update, SET_FEATURES), which acks
 * its own change, the ring is reported once on its error eventfd
 * (SET_VRING_ERR), as a ring the driver broke is.
 *
 * vIOMMU ("IOMMU support"): VIRTIO_F_ACCESS_PLATFORM is offered when the
 * device's features have it and its protocol features have BACKEND_REQ and
 * REPLY_ACK.  Negotiated, ring (SET_VRING_ADDR) and buffer addresses are
 * IOVAs: IOTLB_MSG updates (uaddr inside the memory table, perm RO/WO/RW,
 * no wrap, no conflicting overlap) and invalidations are validated and fed
 * to the library's IOTLB, which vh_devq translates through.  A ring is
 * handed to the device (queue_started) only once its own areas translate,
 * so the device can read its used index from the start.  A missing
 * translation makes vh_devq_pop() return -EAGAIN without consuming
 * anything (the ring is not broken) and is reported once per page as a
 * BACKEND_IOTLB_MSG miss; each update re-kicks every handed ring (its kick
 * eventfd, else queue_kicked), so the device just pops again.  A refused
 * IOTLB_MSG gets a failure reply; the connection stays.  The IOTLB is
 * flushed when the memory table is replaced or loses a region.  A popped
 * element keeps the translations it was popped under until it is pushed
 * (an invalidation never unmaps its buffers, and its writes are logged by
 * them); a queue's elements keep whole superseded IOTLB contents of at
 * most 16384 entries together, and an element popped past that keeps only
 * its own translations, so a front-end that changes the IOTLB between
 * pops costs memory in proportion to what is in flight, not to the table.
 *
 * Never offered, hence refused (an error reply when REPLY_ACK is
 * negotiated and a reply is asked for, otherwise the connection closes):
 *  - PROTOCOL_F_CROSS_ENDIAN (SET_VRING_ENDIAN): little-endian rings only;
 *  - PROTOCOL_F_PAGEFAULT (POSTCOPY_ADVISE/LISTEN/END): no postcopy;
 *  - PROTOCOL_F_CRYPTO_SESSION (CREATE/CLOSE_CRYPTO_SESSION): no crypto;
 *  - PROTOCOL_F_XEN_MMAP;
 *  - GPU_SET_SOCKET unless the device has gpu_set_socket.
 * Protocol features whose work is the device's are offered only when the
 * device has the callback: RARP (send_rarp), NET_MTU (net_set_mtu), CONFIG
 * (get_config), DEVICE_STATE (set_device_state_fd + check_device_state).
 */
#ifndef _LIBVHOST_VU_BACKEND_H_
#define _LIBVHOST_VU_BACKEND_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vh_ctx;
struct vh_devq;
struct vh_vu_backend;

/* Largest config space a GET/SET_CONFIG message may carry (vhost-user.rst). */
#define VH_VU_BACKEND_CONFIG_MAX 256

/* Directions and phases of SET_DEVICE_STATE_FD ("Device state transfer"). */
enum vh_vu_state_direction {
	VH_VU_STATE_SAVE = 0,
	VH_VU_STATE_LOAD = 1,
};

/*
 * What the device is.  features and protocol_features are what it offers;
 * the library adds VHOST_USER_F_PROTOCOL_FEATURES itself and masks the
 * protocol features down to those it implements and the device has the
 * callbacks for (a request whose feature is not offered is refused as the
 * spec says: an error reply when REPLY_ACK is negotiated, otherwise the
 * connection is closed).
 */
struct vh_vu_device {
	/* sizeof(this struct): see "Extensible structs" in libvhost.h */
	size_t size;
	uint64_t features;
	uint64_t protocol_features;
	/* number of virtqueues, 1..VH_VU_MAX_QUEUES */
	unsigned int num_queues;
	/* largest ring size accepted, 0 for VH_DEVQ_MAX_SIZE */
	unsigned int max_queue_size;
	/* GET_MAX_MEM_SLOTS answer, 0 for VH_MEM_MAX_REGIONS (509) */
	unsigned int max_mem_slots;
	/* config space size (<= VH_VU_BACKEND_CONFIG_MAX) for GET/SET_CONFIG */
	unsigned int config_size;
	/*
	 * GET_QUEUE_NUM answer, 0 for num_queues.  Front-ends read it as
	 * queue pairs for net devices (QEMU, DPDK): a net device with
	 * 2 * N rings answers N here.
	 */
	unsigned int queue_num;
};

/*
 * Device callbacks; every one is optional.  Like every callback of the
 * library each takes the object that calls it (the backend) first and the
 * application's pointer (data of vh_vu_backend_new()) second.  Those
 * returning int return 0 or -errno; a negative value is reported to the
 * front-end as a failure.
 */
struct vh_vu_device_ops {
	/* sizeof(this struct): see "Extensible structs" in libvhost.h */
	size_t size;
	/*
	 * SET_FEATURES: the negotiated virtio features, before any ring
	 * starts (or with every ring taken back).  A failure refuses them:
	 * an error reply, and the rings and vh_vu_backend_get_features()
	 * keep the features from before.
	 */
	int (*set_features)(struct vh_vu_backend *be, void *data,
			    uint64_t features);
	/* GET_CONFIG: fill buf[0..size) with config space from offset */
	int (*get_config)(struct vh_vu_backend *be, void *data, uint32_t offset,
			  void *buf, uint32_t size);
	/* SET_CONFIG: flags 0 = guest write, 1 = migration */
	int (*set_config)(struct vh_vu_backend *be, void *data, uint32_t offset,
			  const void *buf, uint32_t size, uint32_t flags);
	/* the memory table changed; every ring is taken back meanwhile */
	void (*memory_updated)(struct vh_vu_backend *be, void *data);
	/*
	 * ring idx is started and enabled: the device may use vring now.
	 * A failure leaves the ring with the library (not handed, no kick
	 * delivered, no queue_stopped): the message that would have handed
	 * it gets an error reply (SET_VRING_ENABLE and SET_VRING_KICK leave
	 * the ring disabled or stopped as it was), the connection stays, and
	 * the next message on that ring (or a memory or IOTLB update) tries
	 * again.
	 */
	int (*queue_started)(struct vh_vu_backend *be, void *data,
			     unsigned int idx, struct vh_devq *vring);
	/*
	 * ring idx is no longer handed over: stop using it before returning,
	 * and push what was popped (GET_VRING_BASE reports the popped count)
	 */
	void (*queue_stopped)(struct vh_vu_backend *be, void *data,
			      unsigned int idx, struct vh_devq *vring);
	/*
	 * The front-end kicked ring idx (eventfd or in-band).  When set, the
	 * library polls kick fds itself and reads them; when NULL the device
	 * polls vh_devq's kick fd on its own.
	 */
	void (*queue_kicked)(struct vh_vu_backend *be, void *data,
			     unsigned int idx, struct vh_devq *vring);
	/*
	 * RESET_DEVICE and disconnect: back to initial state (RESET_OWNER
	 * only disables the rings, as the spec recommends)
	 */
	void (*reset)(struct vh_vu_backend *be, void *data);
	/* SET_STATUS (virtio device status byte) */
	int (*set_status)(struct vh_vu_backend *be, void *data, uint8_t status);
	/* NET_SET_MTU (needs VHOST_USER_PROTOCOL_F_NET_MTU offered) */
	int (*net_set_mtu)(struct vh_vu_backend *be, void *data, uint16_t mtu);
	/* SEND_RARP with the guest's MAC (needs PROTOCOL_F_RARP) */
	int (*send_rarp)(struct vh_vu_backend *be, void *data,
			 const uint8_t mac[6]);
	/*
	 * SET_DEVICE_STATE_FD: the device takes ownership of fd (a pipe end
	 * to write the state into, or read it from), whatever it returns, and
	 * starts the transfer.
	 * It may set *reply_fd to a channel of its own (ownership passes to
	 * the library, which sends it to the front-end).
	 */
	int (*set_device_state_fd)(struct vh_vu_backend *be, void *data,
				   enum vh_vu_state_direction dir,
				   uint32_t phase, int fd, int *reply_fd);
	/* CHECK_DEVICE_STATE: 0 when the last transfer fully succeeded */
	int (*check_device_state)(struct vh_vu_backend *be, void *data);
	/* GET_SHARED_OBJECT: return a dma-buf fd for uuid in *fd */
	int (*get_shared_object)(struct vh_vu_backend *be, void *data,
				 const uint8_t uuid[16], int *fd);
	/* GPU_SET_SOCKET: the device takes ownership of fd, whatever it returns */
	int (*gpu_set_socket)(struct vh_vu_backend *be, void *data, int fd);
};

int vh_vu_backend_new(struct vh_ctx *ctx, const struct vh_vu_device *dev,
		      const struct vh_vu_device_ops *ops, void *data,
		      struct vh_vu_backend **out);
struct vh_vu_backend *vh_vu_backend_ref(struct vh_vu_backend *be);
struct vh_vu_backend *vh_vu_backend_unref(struct vh_vu_backend *be);

/*
 * Listen on a unix socket path.  A stale socket there (nobody listens:
 * connect() is refused) is replaced, without the path ever missing; a live
 * one (another back-end serving it) is not: -EADDRINUSE; nor anything that
 * is not a socket: -EEXIST.  When the backend is freed the path is
 * unlinked if it is still the socket this call created (not one another
 * back-end has put there since).
 */
int vh_vu_backend_listen(struct vh_vu_backend *be, const char *path);
/*
 * Serve an already connected socket.  The backend owns fd if this
 * succeeds; on failure it is still the caller's (so for the next call).
 */
int vh_vu_backend_adopt_fd(struct vh_vu_backend *be, int fd);
/*
 * Serve connections accepted from a listening socket (the same ownership).
 * It must be a listening AF_UNIX SOCK_STREAM socket: -ENOTSOCK,
 * -EAFNOSUPPORT (a TCP socket, say), -EPROTOTYPE, or -EINVAL if it does
 * not listen.  adopt_fd() checks a connected one the same way.
 */
int vh_vu_backend_adopt_listen_fd(struct vh_vu_backend *be, int fd);

/* One pollable fd for the whole backend (see above). */
int vh_vu_backend_get_fd(const struct vh_vu_backend *be);
/* Handle one event; 0, -EAGAIN (nothing ready), -ECONNRESET or -errno. */
int vh_vu_backend_dispatch(struct vh_vu_backend *be);
/* True while a front-end is connected. */
bool vh_vu_backend_connected(const struct vh_vu_backend *be);
/*
 * Drop the current connection (and all its state) if there is one.  Not
 * from a device callback.
 */
void vh_vu_backend_disconnect(struct vh_vu_backend *be);

/* Negotiated state of the current connection. */
uint64_t vh_vu_backend_get_features(const struct vh_vu_backend *be);
uint64_t vh_vu_backend_get_protocol_features(const struct vh_vu_backend *be);
/* Device status byte last set by SET_STATUS. */
uint8_t vh_vu_backend_get_status(const struct vh_vu_backend *be);
/* The vring of queue idx (owned by the backend), or NULL. */
struct vh_devq *vh_vu_backend_get_vring(struct vh_vu_backend *be,
					 unsigned int idx);

/*
 * The inflight region of queue idx ("Inflight I/O tracking", split layout:
 * a 16-byte QueueRegionSplit header then queue_size 16-byte DescStateSplit
 * entries) set up by GET_INFLIGHT_FD or SET_INFLIGHT_FD.  Keeping it
 * up to date is the device's job.  A region fresh from GET_INFLIGHT_FD is
 * all zero (version 0, an uninitialized buffer, not a page of it written
 * by the library): the device initializes a queue's part (version 1,
 * desc_num) when it first uses it, as one a front-end made itself; a
 * packed ring's part is vh_devq_set_inflight()'s.  -ENOENT without one,
 * -ERANGE past its queue count.
 */
int vh_vu_backend_get_inflight(struct vh_vu_backend *be, unsigned int idx,
			       void **region, size_t *len);

/*
 * Back-end -> front-end requests on the channel set by
 * SET_BACKEND_REQ_FD.  Each returns -ENOTCONN without that channel and
 * -EOPNOTSUPP when the gating protocol feature was not negotiated (an fd
 * needs BACKEND_SEND_FD and a socket as channel); when REPLY_ACK is
 * negotiated the request asks for a reply and waits for it (5 s at most),
 * returning -EIO when the front-end reports a failure and -EPROTO for a
 * malformed reply.  Any thread may call them (they are serialized), but a
 * request that waits for a reply must not be made from a device callback:
 * the front-end may itself be waiting for our answer to the message that
 * callback serves (the channel is a second socket, not a second thread).
 */
int vh_vu_backend_config_change(struct vh_vu_backend *be);
/* fd < 0 sends NOFD: the front-end drops the notifier of ring idx */
int vh_vu_backend_host_notifier(struct vh_vu_backend *be, unsigned int idx,
				int fd, uint64_t size, uint64_t offset);
/*
 * type 1 = miss, 4 = access failure; perm 1 = read, 2 = write (the
 * library reports vh_devq's misses itself, without asking for a reply)
 */
int vh_vu_backend_iotlb_msg(struct vh_vu_backend *be, uint64_t iova,
			    uint8_t perm, uint8_t type);
int vh_vu_backend_vring_call(struct vh_vu_backend *be, unsigned int idx);
int vh_vu_backend_vring_err(struct vh_vu_backend *be, unsigned int idx);
int vh_vu_backend_shared_object_add(struct vh_vu_backend *be,
				    const uint8_t uuid[16]);
int vh_vu_backend_shared_object_remove(struct vh_vu_backend *be,
				       const uint8_t uuid[16]);
/* On success *fd is the dma-buf fd the front-end returned (caller owns it) */
int vh_vu_backend_shared_object_lookup(struct vh_vu_backend *be,
				       const uint8_t uuid[16], int *fd);

/*
 * Signal the front-end that ring idx has used buffers (when the ring wants
 * it: event idx / NO_INTERRUPT): the call eventfd, or an in-band
 * VRING_CALL when INBAND_NOTIFICATIONS is negotiated and no call fd was
 * given (that one waits for the front-end's ack: not from a device
 * callback, see above).  For the thread that owns the handed ring, between
 * queue_started and queue_stopped.  1 notified, 0 not needed, or -errno.
 */
int vh_vu_backend_notify(struct vh_vu_backend *be, unsigned int idx);

/*
 * Tell the front-end that ring idx is broken: its SET_VRING_ERR eventfd,
 * else an in-band VRING_ERR (INBAND_NOTIFICATIONS).  With a queue_kicked
 * callback the library does this itself (eventfd only) when vh_devq marks
 * the ring broken during the callback.  For the thread that owns the
 * handed ring, between queue_started and queue_stopped (SET_VRING_ERR
 * takes the ring back before its fd goes).  1 signalled, or -errno.
 */
int vh_vu_backend_vring_error(struct vh_vu_backend *be, unsigned int idx);

#ifdef __cplusplus
}
#endif

#endif
