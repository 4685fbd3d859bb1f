/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvhost - kernel vhost devices: the generic vhost control plane
 * (vh_kdev), vhost-net with a tap (vh_tap, vh_net_*), vhost-vsock
 * (vh_vsock_*) and the names of feature bits.
 *
 * Every call returns 0 (or a count) or a negative errno.  Arguments are
 * checked before the ioctl (the library's own refusals are documented per
 * call); whatever the kernel refuses comes back as the kernel's -errno.
 */
#ifndef _LIBVHOST_KERNEL_H_
#define _LIBVHOST_KERNEL_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vh_ctx;
struct vh_mem;
struct vh_drvq;

/* ------------------------------------------------------------------ */
/* Feature names                                                       */
/* ------------------------------------------------------------------ */

/* virtio device ids (virtio 1.3, 5 "Device Types") */
#define VH_VIRTIO_ID_NET 1
#define VH_VIRTIO_ID_BLOCK 2
#define VH_VIRTIO_ID_SCSI 8
#define VH_VIRTIO_ID_VSOCK 19

/*
 * Name of a virtio feature bit as the spec spells it without the
 * VIRTIO_*_F_ prefix ("MRG_RXBUF", "VERSION_1"), or NULL when unknown.
 * Bits 24..49 are device independent; 26 is vhost's LOG_ALL and 30
 * vhost-user's PROTOCOL_FEATURES.  device_id is a VH_VIRTIO_ID_* value.
 */
const char *vh_feature_name(unsigned int device_id, unsigned int bit);
/* VHOST_BACKEND_F_* bit names ("IOTLB_MSG_V2"), or NULL. */
const char *vh_backend_feature_name(unsigned int bit);
/* vhost-user protocol feature bit names ("REPLY_ACK"), or NULL. */
const char *vh_vu_protocol_feature_name(unsigned int bit);

/*
 * Render the set bits of a 64-bit feature word as names separated by one
 * space, unknown bits as "bit%u".  Returns, like snprintf, the length the
 * whole list needs (without the NUL); when that is >= len the list was cut
 * at a word boundary.  buf may be NULL only with len 0.
 */
int vh_features_format(unsigned int device_id, uint64_t features, char *buf,
		       size_t len);
int vh_backend_features_format(uint64_t features, char *buf, size_t len);
int vh_vu_protocol_features_format(uint64_t features, char *buf, size_t len);

/* ------------------------------------------------------------------ */
/* vh_kdev: one open kernel vhost device                               */
/* ------------------------------------------------------------------ */
struct vh_kdev;

enum vh_kdev_type {
	VH_KDEV_UNKNOWN = 0,
	VH_KDEV_NET,	/* /dev/vhost-net */
	VH_KDEV_VSOCK,	/* /dev/vhost-vsock */
	VH_KDEV_SCSI,	/* /dev/vhost-scsi */
	VH_KDEV_VDPA,	/* /dev/vhost-vdpa-N: open it by path */
};

/*
 * Open a vhost character device (O_RDWR|O_CLOEXEC|O_NONBLOCK; the fd is
 * readable when an IOTLB miss is pending).  The type is found from the
 * device node's name in sysfs (so a symlink works), else from the path;
 * an unrecognised node is refused with -ENODEV.
 */
int vh_kdev_open(struct vh_ctx *ctx, const char *path, struct vh_kdev **dev);
/* Open the well-known node of a type; VH_KDEV_VDPA needs a path: -EINVAL. */
int vh_kdev_open_type(struct vh_ctx *ctx, enum vh_kdev_type type,
		      struct vh_kdev **dev);
struct vh_kdev *vh_kdev_ref(struct vh_kdev *dev);
struct vh_kdev *vh_kdev_unref(struct vh_kdev *dev);
int vh_kdev_get_fd(const struct vh_kdev *dev);
enum vh_kdev_type vh_kdev_get_type(const struct vh_kdev *dev);
/* "vhost-net" ... for a type, NULL for an invalid one. */
const char *vh_kdev_type_name(enum vh_kdev_type type);
/* VH_VIRTIO_ID_* of the device (vDPA: asked from the kernel), 0 unknown. */
unsigned int vh_kdev_get_virtio_id(const struct vh_kdev *dev);
/*
 * Number of vrings the device has: net 2, vsock 2 (the event queue is not
 * the kernel's), vDPA as the kernel reports, scsi as found after
 * vh_kdev_set_owner() (it varies with the kernel; 128 before).  Vring
 * indexes at or above it are refused with -ENOBUFS, the kernel's errno.
 */
unsigned int vh_kdev_get_num_vrings(const struct vh_kdev *dev);

int vh_kdev_set_owner(struct vh_kdev *dev);
int vh_kdev_reset_owner(struct vh_kdev *dev);

int vh_kdev_get_features(struct vh_kdev *dev, uint64_t *features);
int vh_kdev_set_features(struct vh_kdev *dev, uint64_t features);
/*
 * Feature bits beyond 63 (VHOST_{GET,SET}_FEATURES_ARRAY, Linux 6.17).
 * Where the kernel lacks these ioctls the 64-bit calls are used instead:
 * get then zero-fills words 1.., set refuses a bit above 63 with
 * -EOPNOTSUPP.  nwords 1..16.
 */
int vh_kdev_get_features_array(struct vh_kdev *dev, uint64_t *words,
			       unsigned int nwords);
int vh_kdev_set_features_array(struct vh_kdev *dev, const uint64_t *words,
			       unsigned int nwords);
int vh_kdev_get_backend_features(struct vh_kdev *dev, uint64_t *features);
int vh_kdev_set_backend_features(struct vh_kdev *dev, uint64_t features);

/* One memory region: guest physical range -> address in this process. */
struct vh_kdev_mem_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uaddr;
};

/*
 * VHOST_SET_MEM_TABLE.  Regions must be non-empty, 4 KiB aligned
 * (<linux/vhost_types.h>), free of wrap-around and must not overlap in
 * guest physical space: -EINVAL otherwise.  The table is remembered to
 * check vring addresses against.
 */
int vh_kdev_set_mem_regions(struct vh_kdev *dev,
			    const struct vh_kdev_mem_region *regions,
			    unsigned int nregions);
/* The same from a vh_mem: one region per vh_mem region. */
int vh_kdev_set_mem_table(struct vh_kdev *dev, const struct vh_mem *mem);

/* Dirty log: the bitmap's address in this process, and the log eventfd. */
int vh_kdev_set_log_base(struct vh_kdev *dev, void *log);
int vh_kdev_set_log_fd(struct vh_kdev *dev, int fd);

/* Vring addresses in this process (or IOVAs under ACCESS_PLATFORM). */
struct vh_kdev_vring_addr {
	uint64_t desc;
	uint64_t avail;
	uint64_t used;
	/* guest physical address of the used ring, for the dirty log */
	uint64_t log;
	unsigned int flags; /* VH_VRING_F_LOG */
};

/* Ring size: a power of two, 1..32768 (virtio 1.3, 2.7): else -EINVAL. */
int vh_kdev_set_vring_num(struct vh_kdev *dev, unsigned int index,
			  unsigned int num);
/*
 * Alignment per virtio 1.3, 2.7 (desc 16, avail 2, used 4: -EINVAL).
 * Once both the ring size and a memory table are known (and
 * ACCESS_PLATFORM is not acked), every area must lie inside one memory
 * region: -EINVAL otherwise.
 */
int vh_kdev_set_vring_addr(struct vh_kdev *dev, unsigned int index,
			   const struct vh_kdev_vring_addr *addr);
int vh_kdev_set_vring_base(struct vh_kdev *dev, unsigned int index,
			   unsigned int base);
int vh_kdev_get_vring_base(struct vh_kdev *dev, unsigned int index,
			   unsigned int *base);
/* eventfds; -1 unbinds.  A closed fd is refused with -EBADF. */
int vh_kdev_set_vring_kick(struct vh_kdev *dev, unsigned int index, int fd);
int vh_kdev_set_vring_call(struct vh_kdev *dev, unsigned int index, int fd);
int vh_kdev_set_vring_err(struct vh_kdev *dev, unsigned int index, int fd);
/* Legacy cross-endian rings (kernels built with VHOST_CROSS_ENDIAN_LEGACY). */
int vh_kdev_set_vring_endian(struct vh_kdev *dev, unsigned int index,
			     bool big_endian);
int vh_kdev_get_vring_endian(struct vh_kdev *dev, unsigned int index,
			     bool *big_endian);
int vh_kdev_set_vring_busyloop_timeout(struct vh_kdev *dev,
				       unsigned int index, unsigned int usec);
int vh_kdev_get_vring_busyloop_timeout(struct vh_kdev *dev,
				       unsigned int index, unsigned int *usec);

/* Worker threads (Linux 6.5+; older kernels' -ENOTTY is returned as is). */
int vh_kdev_new_worker(struct vh_kdev *dev, unsigned int *worker_id);
int vh_kdev_free_worker(struct vh_kdev *dev, unsigned int worker_id);
int vh_kdev_attach_vring_worker(struct vh_kdev *dev, unsigned int index,
				unsigned int worker_id);
int vh_kdev_get_vring_worker(struct vh_kdev *dev, unsigned int index,
			     unsigned int *worker_id);

/*
 * NUM, BASE (0: a freshly laid-out ring), ADDR (the vq's areas through our
 * own mapping), KICK and CALL for a ring laid out by the userspace driver
 * vh_drvq.  The memory table must already hold the ring.
 */
int vh_kdev_setup_vring(struct vh_kdev *dev, unsigned int index,
			struct vh_drvq *vq, int kick_fd, int call_fd);

/* IOTLB messages (<linux/vhost_types.h> struct vhost_iotlb_msg) */
struct vh_kdev_iotlb_msg {
	uint64_t iova;
	uint64_t size;
	uint64_t uaddr;
	uint32_t asid;	/* v2 messages only */
	uint8_t perm;	/* VH_ACCESS_* */
	uint8_t type;	/* enum vh_iotlb_type */
};

/*
 * Write one IOTLB message to the device: the v2 layout once the
 * IOTLB_MSG_V2 backend feature was set through this vh_kdev, else v1 (then
 * asid must be 0).  BATCH_BEGIN/END need the IOTLB_BATCH backend feature.
 */
int vh_kdev_iotlb_send(struct vh_kdev *dev,
		       const struct vh_kdev_iotlb_msg *msg);
/* Read one pending message (a MISS) without blocking: -EAGAIN when none. */
int vh_kdev_iotlb_recv(struct vh_kdev *dev, struct vh_kdev_iotlb_msg *msg);


/* ------------------------------------------------------------------ */
/* vhost-net and its tap                                               */
/* ------------------------------------------------------------------ */
struct vh_tap;

/*
 * Create a tap through /dev/net/tun (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR,
 * O_CLOEXEC | O_NONBLOCK).  name: NULL for a kernel-chosen "vhtap%d", else
 * a name (or pattern with %d) shorter than IFNAMSIZ.  The interface goes
 * away with the last reference.
 */
int vh_tap_new(struct vh_ctx *ctx, const char *name, struct vh_tap **tap);
/*
 * Wrap a tap fd or a bound SOCK_RAW AF_PACKET socket the caller opened (it
 * is duplicated with F_DUPFD_CLOEXEC; the caller keeps its own fd).
 * -ENOTTY for any other kind of fd, -ESOCKTNOSUPPORT for a packet socket
 * that is not SOCK_RAW, -EDESTADDRREQ for an unbound one, -EINVAL (logged)
 * for a tap without IFF_NO_PI (its frames carry a struct tun_pi; rtnetlink
 * tells, for an interface in the caller's network namespace: elsewhere
 * IFF_NO_PI is assumed unless TUNGETIFF shows it absent).  With a
 * packet socket, or a tap without IFF_VNET_HDR, vhost-net must add and
 * strip the virtio-net header itself: negotiate VHOST_NET_F_VIRTIO_NET_HDR
 * (bit 27); such a tap takes no offload.  An interface in another network
 * namespace than the caller's has no ifindex here (0): vh_tap_set_up() and
 * vh_tap_set_mtu() refuse it (-EINVAL) rather than change an interface of
 * the same name in the caller's.
 */
int vh_tap_new_from_fd(struct vh_ctx *ctx, int fd, struct vh_tap **tap);
/*
 * A multi-queue tap (IFF_MULTI_QUEUE): queues fds, 1..256 (the kernel's
 * MAX_TAP_QUEUES), each opened on the same name with the flags of
 * vh_tap_new(); the kernel spreads the frames it sends out of the
 * interface over the attached queues by flow.  On failure every fd opened
 * is closed again (an interface we created goes away).
 */
int vh_tap_new_mq(struct vh_ctx *ctx, const char *name, unsigned int queues,
		  struct vh_tap **tap);
/*
 * Wrap n caller's fds (duplicated as by vh_tap_new_from_fd()), 1..256: one
 * fd of any kind vh_tap_new_from_fd() takes, or the queue fds of one
 * IFF_MULTI_QUEUE tap (-EINVAL for anything else, or one open file given
 * twice: one fd, or a dup() of it, as kcmp(2) tells where it can).
 */
int vh_tap_new_from_fds(struct vh_ctx *ctx, const int *fds, unsigned int n,
			struct vh_tap **tap);
struct vh_tap *vh_tap_ref(struct vh_tap *tap);
struct vh_tap *vh_tap_unref(struct vh_tap *tap);
/* Queue 0's fd. */
int vh_tap_get_fd(const struct vh_tap *tap);
/* Queues (fds) of the tap: 1 unless multi-queue; 0 for NULL. */
unsigned int vh_tap_get_queue_count(const struct vh_tap *tap);
/* fd of queue q, -EINVAL when q is out of range. */
int vh_tap_get_queue_fd(const struct vh_tap *tap, unsigned int q);
/*
 * Attach (true) or detach (false) queue q (TUNSETQUEUE): the kernel steers
 * no frames into a detached queue and drops those it held, but writes to
 * it still go out.  0 when the queue already is so; -EOPNOTSUPP unless the
 * tap is IFF_MULTI_QUEUE.  Calls for one queue must not run concurrently.
 */
int vh_tap_set_queue_enabled(struct vh_tap *tap, unsigned int q, bool enabled);
const char *vh_tap_get_name(const struct vh_tap *tap);
int vh_tap_get_ifindex(const struct vh_tap *tap);
bool vh_tap_is_packet_socket(const struct vh_tap *tap);

/* virtio-net header length for negotiated features: 12 or 10 bytes. */
unsigned int vh_net_hdr_len(uint64_t features);
/*
 * vnet header the fd adds/strips: 0, 10 or 12 (TUNSETVNETHDRSZ; a packet
 * socket supports 10 only on kernels before PACKET_VNET_HDR_SZ).  A tap
 * created with IFF_VNET_HDR takes 10 or 12 (0: -EINVAL), one without it
 * only 0 (10 or 12: -EINVAL; tun would take them and carry no header).
 * This, vh_tap_set_offload() and vh_tap_set_features() apply to every
 * queue.
 */
int vh_tap_set_vnet_hdr_len(struct vh_tap *tap, unsigned int len);
/*
 * TUNSETOFFLOAD with TUN_F_* flags (what the reader accepts); flags on a
 * packet socket or a tap without IFF_VNET_HDR: -EOPNOTSUPP.
 */
int vh_tap_set_offload(struct vh_tap *tap, unsigned int tun_flags);
/*
 * Configure the tap for negotiated virtio-net features: header length
 * (vh_net_hdr_len(); 0 with VHOST_NET_F_VIRTIO_NET_HDR, bit 27, which a
 * packet socket takes and a tap without IFF_VNET_HDR needs: -EINVAL for a
 * tap with it, or for one without it and without the bit) and the offloads
 * the guest accepts (GUEST_CSUM, GUEST_TSO4/6, GUEST_ECN, GUEST_UFO,
 * GUEST_USO4/6 -> TUN_F_*; none without IFF_VNET_HDR).
 */
int vh_tap_set_features(struct vh_tap *tap, uint64_t features);
/* Link state and MTU (libnl-route-3, else SIOCSIFFLAGS / SIOCSIFMTU). */
int vh_tap_set_up(struct vh_tap *tap, bool up);
int vh_tap_set_mtu(struct vh_tap *tap, unsigned int mtu);

/* VHOST_NET_SET_BACKEND: attach a tap/packet fd to a vring; -1 detaches. */
int vh_net_set_backend(struct vh_kdev *dev, unsigned int index, int fd);


/* ------------------------------------------------------------------ */
/* vhost-vsock and the virtio-vsock packet format                      */
/* ------------------------------------------------------------------ */

/* VHOST_VSOCK_SET_GUEST_CID: 3 .. 0xfffffffe (-EINVAL otherwise). */
int vh_vsock_set_guest_cid(struct vh_kdev *dev, uint64_t cid);
int vh_vsock_set_running(struct vh_kdev *dev, bool running);

/* vhost-vsock's vrings (the event queue is not the kernel's) */
#define VH_VSOCK_VQ_RX 0 /* host -> guest: guest posts writable buffers */
#define VH_VSOCK_VQ_TX 1 /* guest -> host */
#define VH_VSOCK_CID_HOST 2

/* virtio 1.3, 5.10.6: struct virtio_vsock_hdr, little endian on the wire */
#define VH_VSOCK_HDR_LEN 44

enum vh_vsock_type {
	VH_VSOCK_TYPE_STREAM = 1,
	VH_VSOCK_TYPE_SEQPACKET = 2,
};

enum vh_vsock_op {
	VH_VSOCK_OP_REQUEST = 1,
	VH_VSOCK_OP_RESPONSE = 2,
	VH_VSOCK_OP_RST = 3,
	VH_VSOCK_OP_SHUTDOWN = 4,
	VH_VSOCK_OP_RW = 5,
	VH_VSOCK_OP_CREDIT_UPDATE = 6,
	VH_VSOCK_OP_CREDIT_REQUEST = 7,
};

#define VH_VSOCK_SHUTDOWN_RCV 1u  /* SHUTDOWN flags */
#define VH_VSOCK_SHUTDOWN_SEND 2u
#define VH_VSOCK_SEQ_EOM 1u	  /* RW flags (SEQPACKET) */
#define VH_VSOCK_SEQ_EOR 2u

/* A header in host byte order. */
struct vh_vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len; /* payload bytes after the header */
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
};

/* Write the wire form (VH_VSOCK_HDR_LEN bytes); returns that length. */
int vh_vsock_hdr_pack(const struct vh_vsock_hdr *hdr, void *buf,
		      size_t len);
/*
 * Parse and check a packet of pkt_len bytes (header + payload): a known
 * type and op, a payload only on RW, the payload within pkt_len, the
 * reserved upper halves of the CIDs zero (virtio 1.3, 5.10.6).  Returns
 * VH_VSOCK_HDR_LEN, or -EPROTO / -EMSGSIZE.
 */
int vh_vsock_hdr_parse(struct vh_vsock_hdr *hdr, const void *pkt,
		       size_t pkt_len);

/*
 * vh_vsock_conn: the guest side of one connection - state and credit
 * accounting (virtio 1.3, 5.10.6.3), no I/O.  Calls that produce a packet
 * fill *out with a complete header (addresses, type, our buf_alloc and
 * fwd_cnt) for the caller to put on the TX queue, followed by the payload
 * for RW.
 */
struct vh_vsock_conn;

enum vh_vsock_state {
	VH_VSOCK_CLOSED,
	VH_VSOCK_CONNECTING, /* REQUEST sent */
	VH_VSOCK_CONNECTED,
	VH_VSOCK_CLOSING, /* SHUTDOWN both ways sent, waiting for RST */
};

/* buf_alloc: the receive space we advertise (bytes, > 0). */
int vh_vsock_conn_new(struct vh_ctx *ctx, enum vh_vsock_type type,
		      uint64_t local_cid, uint32_t local_port,
		      uint64_t peer_cid, uint32_t peer_port,
		      uint32_t buf_alloc, struct vh_vsock_conn **conn);
struct vh_vsock_conn *vh_vsock_conn_ref(struct vh_vsock_conn *conn);
struct vh_vsock_conn *vh_vsock_conn_unref(struct vh_vsock_conn *conn);
enum vh_vsock_state vh_vsock_conn_get_state(const struct vh_vsock_conn *c);
/* Does this incoming packet belong to the connection? */
bool vh_vsock_conn_matches(const struct vh_vsock_conn *conn,
			   const struct vh_vsock_hdr *in);

/* REQUEST: CLOSED -> CONNECTING. */
int vh_vsock_conn_connect(struct vh_vsock_conn *conn,
			  struct vh_vsock_hdr *out);
/*
 * RW of up to len bytes: returns the bytes the peer's credit allows now
 * (0: wait for a CREDIT_UPDATE, or send a CREDIT_REQUEST), -ENOTCONN,
 * -EPIPE after our SHUTDOWN_SEND or the peer's SHUTDOWN_RCV.  flags: the
 * SEQPACKET EOM/EOR bits for this packet.
 */
int vh_vsock_conn_send(struct vh_vsock_conn *conn, uint32_t len,
		       uint32_t flags, struct vh_vsock_hdr *out);
/* Bytes the peer can take now: buf_alloc - (tx_cnt - fwd_cnt). */
uint32_t vh_vsock_conn_tx_credit(const struct vh_vsock_conn *conn);
/* SHUTDOWN with VH_VSOCK_SHUTDOWN_* bits. */
int vh_vsock_conn_shutdown(struct vh_vsock_conn *conn, unsigned int how,
			   struct vh_vsock_hdr *out);
/* RST: -> CLOSED. */
int vh_vsock_conn_reset(struct vh_vsock_conn *conn, struct vh_vsock_hdr *out);
int vh_vsock_conn_credit_update(struct vh_vsock_conn *conn,
				struct vh_vsock_hdr *out);
int vh_vsock_conn_credit_request(struct vh_vsock_conn *conn,
				 struct vh_vsock_hdr *out);
/*
 * The application consumed n received bytes: fwd_cnt advances.  Returns 1
 * when the peer should hear about it (a CREDIT_UPDATE is due: half our
 * buffer was freed since the last one we sent), else 0.
 */
int vh_vsock_conn_consumed(struct vh_vsock_conn *conn, uint32_t n);
/* Received bytes not yet consumed. */
uint32_t vh_vsock_conn_rx_pending(const struct vh_vsock_conn *conn);
/* VH_VSOCK_SHUTDOWN_* bits the peer has sent. */
unsigned int vh_vsock_conn_peer_shutdown(const struct vh_vsock_conn *conn);

/*
 * Feed one incoming packet (already parsed, matching the connection).
 * Returns 1 with *reply filled when a packet must be sent back (RESPONSE
 * to a REQUEST, CREDIT_UPDATE to a CREDIT_REQUEST, RST once the peer shut
 * down both ways), 0 when none, -EPROTO for what the state does not allow
 * or an RW beyond the credit we gave (the caller should then send RST),
 * -ECONNRESET when the peer reset the connection (state CLOSED).  The RW
 * payload is the caller's to deliver; it counts as received here.
 */
int vh_vsock_conn_input(struct vh_vsock_conn *conn,
			const struct vh_vsock_hdr *in,
			struct vh_vsock_hdr *reply);

#ifdef __cplusplus
}
#endif

#endif
