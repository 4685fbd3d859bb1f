/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vhost-user: protocol constants, wire payloads and the front-end.
 *
 * The protocol is QEMU's docs/interop/vhost-user.rst ("the spec" below).
 * Everything is in host byte order, as on the wire.  The payload structs
 * have fixed-size members and explicit padding so that sizeof() is the
 * size on the wire.
 */
#ifndef _LIBVHOST_VU_H_
#define _LIBVHOST_VU_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vh_ctx;
struct vh_mem;
struct vh_drvq;

/* ------------------------------------------------------------------------ */
/* header ("Message Specification")                                         */
/* ------------------------------------------------------------------------ */
#define VH_VU_HDR_SIZE 12u
#define VH_VU_VERSION 0x1u
#define VH_VU_FLAG_VERSION_MASK 0x3u
#define VH_VU_FLAG_REPLY (1u << 2)
#define VH_VU_FLAG_NEED_REPLY (1u << 3)

/* SCM_RIGHTS fds per message (SET_MEM_TABLE: one per region). */
#define VH_VU_MAX_FDS 8u
/* Regions in one SET_MEM_TABLE message. */
#define VH_VU_MAX_MEM_REGIONS 8u
/* Config space bytes in GET/SET_CONFIG. */
#define VH_VU_MAX_CONFIG_SIZE 256u
/*
 * Largest payload we accept.  The largest standard message is a config
 * access (12 + 256 bytes); crypto session descriptions (opaque to us) can
 * be about 1.1 KiB.
 */
#define VH_VU_PAYLOAD_MAX 4096u

/* SET_VRING_KICK/CALL/ERR payload: bits 0-7 index, bit 8 "no fd". */
#define VH_VU_VRING_IDX_MASK 0xffu
#define VH_VU_VRING_NOFD (1u << 8)
/* So at most 256 rings: the limit of vh_vu_backend and vh_daemon alike. */
#define VH_VU_MAX_QUEUES 256u

/* Virtio feature bit 30 announces GET/SET_PROTOCOL_FEATURES. */
#define VH_VU_F_PROTOCOL_FEATURES 30

/* Front-end -> back-end requests. */
enum vh_vu_request {
	VH_VU_GET_FEATURES = 1,
	VH_VU_SET_FEATURES = 2,
	VH_VU_SET_OWNER = 3,
	VH_VU_RESET_OWNER = 4,
	VH_VU_SET_MEM_TABLE = 5,
	VH_VU_SET_LOG_BASE = 6,
	VH_VU_SET_LOG_FD = 7,
	VH_VU_SET_VRING_NUM = 8,
	VH_VU_SET_VRING_ADDR = 9,
	VH_VU_SET_VRING_BASE = 10,
	VH_VU_GET_VRING_BASE = 11,
	VH_VU_SET_VRING_KICK = 12,
	VH_VU_SET_VRING_CALL = 13,
	VH_VU_SET_VRING_ERR = 14,
	VH_VU_GET_PROTOCOL_FEATURES = 15,
	VH_VU_SET_PROTOCOL_FEATURES = 16,
	VH_VU_GET_QUEUE_NUM = 17,
	VH_VU_SET_VRING_ENABLE = 18,
	VH_VU_SEND_RARP = 19,
	VH_VU_NET_SET_MTU = 20,
	VH_VU_SET_BACKEND_REQ_FD = 21,
	VH_VU_IOTLB_MSG = 22,
	VH_VU_SET_VRING_ENDIAN = 23,
	VH_VU_GET_CONFIG = 24,
	VH_VU_SET_CONFIG = 25,
	VH_VU_CREATE_CRYPTO_SESSION = 26,
	VH_VU_CLOSE_CRYPTO_SESSION = 27,
	VH_VU_POSTCOPY_ADVISE = 28,
	VH_VU_POSTCOPY_LISTEN = 29,
	VH_VU_POSTCOPY_END = 30,
	VH_VU_GET_INFLIGHT_FD = 31,
	VH_VU_SET_INFLIGHT_FD = 32,
	VH_VU_GPU_SET_SOCKET = 33,
	VH_VU_RESET_DEVICE = 34,
	VH_VU_VRING_KICK = 35,
	VH_VU_GET_MAX_MEM_SLOTS = 36,
	VH_VU_ADD_MEM_REG = 37,
	VH_VU_REM_MEM_REG = 38,
	VH_VU_SET_STATUS = 39,
	VH_VU_GET_STATUS = 40,
	VH_VU_GET_SHARED_OBJECT = 41,
	VH_VU_SET_DEVICE_STATE_FD = 42,
	VH_VU_CHECK_DEVICE_STATE = 43,
	VH_VU_REQUEST_MAX /* one past the last */
};

/* Back-end -> front-end requests (the back-end request channel). */
enum vh_vu_backend_request {
	VH_VU_BACKEND_IOTLB_MSG = 1,
	VH_VU_BACKEND_CONFIG_CHANGE_MSG = 2,
	VH_VU_BACKEND_VRING_HOST_NOTIFIER_MSG = 3,
	VH_VU_BACKEND_VRING_CALL = 4,
	VH_VU_BACKEND_VRING_ERR = 5,
	VH_VU_BACKEND_SHARED_OBJECT_ADD = 6,
	VH_VU_BACKEND_SHARED_OBJECT_REMOVE = 7,
	VH_VU_BACKEND_SHARED_OBJECT_LOOKUP = 8,
	VH_VU_BACKEND_REQUEST_MAX /* one past the last */
};

/* Protocol feature bits ("Protocol features"). */
enum vh_vu_protocol_feature {
	VH_VU_PROTOCOL_F_MQ = 0,
	VH_VU_PROTOCOL_F_LOG_SHMFD = 1,
	VH_VU_PROTOCOL_F_RARP = 2,
	VH_VU_PROTOCOL_F_REPLY_ACK = 3,
	VH_VU_PROTOCOL_F_NET_MTU = 4,
	VH_VU_PROTOCOL_F_BACKEND_REQ = 5,
	VH_VU_PROTOCOL_F_CROSS_ENDIAN = 6,
	VH_VU_PROTOCOL_F_CRYPTO_SESSION = 7,
	VH_VU_PROTOCOL_F_PAGEFAULT = 8,
	VH_VU_PROTOCOL_F_CONFIG = 9,
	VH_VU_PROTOCOL_F_BACKEND_SEND_FD = 10,
	VH_VU_PROTOCOL_F_HOST_NOTIFIER = 11,
	VH_VU_PROTOCOL_F_INFLIGHT_SHMFD = 12,
	VH_VU_PROTOCOL_F_RESET_DEVICE = 13,
	VH_VU_PROTOCOL_F_INBAND_NOTIFICATIONS = 14,
	VH_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS = 15,
	VH_VU_PROTOCOL_F_STATUS = 16,
	VH_VU_PROTOCOL_F_XEN_MMAP = 17,
	VH_VU_PROTOCOL_F_SHARED_OBJECT = 18,
	VH_VU_PROTOCOL_F_DEVICE_STATE = 19,
	VH_VU_PROTOCOL_F_MAX /* one past the last */
};

/* Virtio feature bits the protocol refers to. */
#define VH_VU_VIRTIO_F_NOTIFY_ON_EMPTY 24
#define VH_VU_VHOST_F_LOG_ALL 26
#define VH_VU_VIRTIO_F_RING_INDIRECT_DESC 28
#define VH_VU_VIRTIO_F_RING_EVENT_IDX 29
#define VH_VU_VIRTIO_F_VERSION_1 32
#define VH_VU_VIRTIO_F_ACCESS_PLATFORM 33
#define VH_VU_VIRTIO_F_RING_PACKED 34
#define VH_VU_VIRTIO_F_IN_ORDER 35
#define VH_VU_VIRTIO_F_RING_RESET 40

/*
 * SET_VRING_ADDR flags (VH_VRING_F_LOG), IOTLB message types (enum
 * vh_iotlb_type) and permissions (VH_ACCESS_*): libvhost.h, shared with
 * kernel vhost.
 */

/* GET/SET_CONFIG flags. */
#define VH_VU_CONFIG_F_WRITABLE 0
#define VH_VU_CONFIG_F_MIGRATION 1

/* SET_DEVICE_STATE_FD parameters ("Device state transfer parameters"). */
#define VH_VU_TRANSFER_SAVE 0
#define VH_VU_TRANSFER_LOAD 1
#define VH_VU_PHASE_STOPPED 0
/* SET_DEVICE_STATE_FD reply: bits 0-7 error, bit 8 "no fd returned". */
#define VH_VU_DEVICE_STATE_ERR_MASK 0xffu
#define VH_VU_DEVICE_STATE_NOFD (1u << 8)

/* ------------------------------------------------------------------------ */
/* payloads                                                                 */
/* ------------------------------------------------------------------------ */
struct vh_vu_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
};

/* "A vring state description" (8 bytes) */
struct vh_vu_vring_state {
	uint32_t index;
	uint32_t num;
};

/* "A vring address description" (40 bytes); addresses are front-end VAs */
struct vh_vu_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc;
	uint64_t used;
	uint64_t avail;
	uint64_t log;
};

/* "Memory region description" (32 bytes) */
struct vh_vu_mem_region {
	uint64_t guest_addr;
	uint64_t size;
	uint64_t user_addr;
	uint64_t mmap_offset;
};

/* "Multiple Memory regions description" (8 + 32 * n bytes) */
struct vh_vu_mem_table {
	uint32_t nregions;
	uint32_t padding;
	struct vh_vu_mem_region regions[VH_VU_MAX_MEM_REGIONS];
};

/* "Single memory region description" (40 bytes): ADD/REM_MEM_REG */
struct vh_vu_mem_single {
	uint64_t padding;
	struct vh_vu_mem_region region;
};

/* "Log description" (16 bytes): SET_LOG_BASE */
struct vh_vu_log {
	uint64_t size;
	uint64_t offset;
};

/* "An IOTLB message" (32 bytes, struct vhost_iotlb_msg) */
struct vh_vu_iotlb {
	uint64_t iova;
	uint64_t size;
	uint64_t uaddr;
	uint8_t perm;
	uint8_t type;
	uint8_t reserved[6];
};

/* "Virtio device config space" (12 + size bytes) */
struct vh_vu_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t region[VH_VU_MAX_CONFIG_SIZE];
};
#define VH_VU_CONFIG_HDR_SIZE 12u

/* "Vring area description" (24 bytes): VRING_HOST_NOTIFIER_MSG */
struct vh_vu_vring_area {
	uint64_t u64; /* bits 0-7 index, bit 8 no fd */
	uint64_t size;
	uint64_t offset;
};

/* "Inflight description" (24 bytes) */
struct vh_vu_inflight {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
	uint32_t padding;
};

/* "VhostUserShared" (16 bytes) */
struct vh_vu_shared {
	uint8_t uuid[16];
};

/* "Device state transfer parameters" (8 bytes) */
struct vh_vu_device_state {
	uint32_t direction;
	uint32_t phase;
};

union vh_vu_payload {
	uint64_t u64;
	struct vh_vu_vring_state state;
	struct vh_vu_vring_addr addr;
	struct vh_vu_mem_table mem;
	struct vh_vu_mem_single mem_reg;
	struct vh_vu_log log;
	struct vh_vu_iotlb iotlb;
	struct vh_vu_config config;
	struct vh_vu_vring_area area;
	struct vh_vu_inflight inflight;
	struct vh_vu_shared shared;
	struct vh_vu_device_state device_state;
	uint8_t raw[VH_VU_PAYLOAD_MAX];
};

/*
 * One message as sent or received: header, hdr.size bytes of payload and
 * nfds file descriptors (owned by whoever holds the message).
 */
struct vh_vu_msg {
	struct vh_vu_hdr hdr;
	union vh_vu_payload payload;
	unsigned int nfds;
	int fds[VH_VU_MAX_FDS];
};

/* Request names for logs: "GET_FEATURES"; NULL if unknown. */
const char *vh_vu_request_name(uint32_t request);
const char *vh_vu_backend_request_name(uint32_t request);

/* ------------------------------------------------------------------------ */
/* front-end                                                                */
/* ------------------------------------------------------------------------ */
/*
 * vh_vu_frontend - the front-end side: drives one back-end over one
 * connection.  Requests are synchronous: a call sends its message and, when
 * the spec says the back-end answers (its own reply, or the REPLY_ACK u64
 * the library asks for on every request that allows it once REPLY_ACK is
 * negotiated), waits for the reply and checks it (request id, REPLY flag,
 * version, size, fds, and the values it carries: counts, sizes, fd types).
 * The timeout is one deadline per call, covering the send, the reply and
 * any back-end request served meanwhile: every socket is non-blocking, so
 * no back-end holds a call longer than that.  A wrong reply or a timeout
 * breaks the connection: later calls return -EPIPE.  A non-zero REPLY_ACK value v
 * comes back as -v when it is a plausible errno (1..4095), else -EIO.
 *
 * A request whose protocol feature (or virtio feature) is not negotiated
 * returns -EOPNOTSUPP without being sent.
 *
 * While waiting for a reply the front-end also serves the back-end request
 * channel (if set up), so a back-end that asks something of us in the
 * middle of a request does not deadlock.
 */
struct vh_vu_frontend;

/* Default time a reply may take, ms. */
#define VH_VU_FRONTEND_TIMEOUT_MS 5000

int vh_vu_frontend_new(struct vh_ctx *ctx, struct vh_vu_frontend **fe);
struct vh_vu_frontend *vh_vu_frontend_ref(struct vh_vu_frontend *fe);
struct vh_vu_frontend *vh_vu_frontend_unref(struct vh_vu_frontend *fe);

/*
 * Connect to a back-end listening on path, retrying up to timeout_ms while
 * it is absent, refuses or has a full backlog (-ETIMEDOUT then).
 */
int vh_vu_frontend_connect(struct vh_vu_frontend *fe, const char *path,
			   int timeout_ms);
/*
 * Use an already connected AF_UNIX stream socket; owned on success (and
 * made O_NONBLOCK).
 */
int vh_vu_frontend_set_fd(struct vh_vu_frontend *fe, int fd);
/*
 * Accept one back-end that connects to us: listen on path, wait
 * timeout_ms (-ETIMEDOUT past it; < 0: no limit, the caller's choice).
 * A stale socket at path is replaced; a live one (something listens
 * there) is not: -EADDRINUSE; nor what is not a socket: -EEXIST.
 */
int vh_vu_frontend_accept(struct vh_vu_frontend *fe, const char *path,
			  int timeout_ms);
int vh_vu_frontend_get_fd(const struct vh_vu_frontend *fe);
/* Close the connection (and the back-end channel); negotiated state is reset. */
void vh_vu_frontend_disconnect(struct vh_vu_frontend *fe);
void vh_vu_frontend_set_timeout(struct vh_vu_frontend *fe, int timeout_ms);
/* Ask for REPLY_ACK on requests when negotiated (default true). */
void vh_vu_frontend_set_reply_ack(struct vh_vu_frontend *fe, bool on);

/* Features. */
int vh_vu_frontend_get_features(struct vh_vu_frontend *fe, uint64_t *features);
int vh_vu_frontend_set_features(struct vh_vu_frontend *fe, uint64_t features);
int vh_vu_frontend_get_protocol_features(struct vh_vu_frontend *fe,
					 uint64_t *features);
int vh_vu_frontend_set_protocol_features(struct vh_vu_frontend *fe,
					 uint64_t features);
/*
 * The usual opening: GET_FEATURES; if bit 30 is offered
 * GET_PROTOCOL_FEATURES and SET_PROTOCOL_FEATURES (offered & protocol);
 * SET_OWNER; SET_FEATURES (offered & features, plus bit 30 if offered).
 * The negotiated sets come back through the out pointers (may be NULL).
 * INBAND_NOTIFICATIONS is dropped unless BACKEND_REQ and REPLY_ACK are
 * negotiated with it (spec, "In-band notifications").
 */
int vh_vu_frontend_negotiate(struct vh_vu_frontend *fe, uint64_t features,
			     uint64_t protocol_features, uint64_t *features_out,
			     uint64_t *protocol_out);
/* What was negotiated (SET_FEATURES / SET_PROTOCOL_FEATURES sent). */
uint64_t vh_vu_frontend_features(const struct vh_vu_frontend *fe);
uint64_t vh_vu_frontend_protocol_features(const struct vh_vu_frontend *fe);
/* What the back-end offered (GET_FEATURES / GET_PROTOCOL_FEATURES). */
uint64_t vh_vu_frontend_offered_features(const struct vh_vu_frontend *fe);
uint64_t
vh_vu_frontend_offered_protocol_features(const struct vh_vu_frontend *fe);

int vh_vu_frontend_set_owner(struct vh_vu_frontend *fe);
int vh_vu_frontend_reset_owner(struct vh_vu_frontend *fe);
/* RESET_DEVICE when negotiated, else RESET_OWNER. */
int vh_vu_frontend_reset_device(struct vh_vu_frontend *fe);
/*
 * GET_QUEUE_NUM: -EPROTO for 0 or more than 256 (the ring index is 8 bits);
 * GET_MAX_MEM_SLOTS: -EPROTO for 0 or more than 512 (QEMU's limit).
 */
int vh_vu_frontend_get_queue_num(struct vh_vu_frontend *fe, uint64_t *num);
int vh_vu_frontend_get_max_mem_slots(struct vh_vu_frontend *fe,
				     uint64_t *slots);

/*
 * Guest memory.  Regions are described with user_addr = our mapping of the
 * region and mmap_offset = its offset in the fd.
 * set_mem_table: SET_MEM_TABLE with every region of mem (at most 8).
 * add/rem_mem_reg: ADD_MEM_REG / REM_MEM_REG of one region.
 * share_mem: ADD_MEM_REG per region when CONFIGURE_MEM_SLOTS is negotiated
 * (-ENOSPC beyond GET_MAX_MEM_SLOTS), else SET_MEM_TABLE.  All or nothing:
 * the regions added before one the back-end refuses are removed again
 * (REM_MEM_REG), and the refusal is returned.
 */
int vh_vu_frontend_set_mem_table(struct vh_vu_frontend *fe, struct vh_mem *mem);
int vh_vu_frontend_add_mem_reg(struct vh_vu_frontend *fe, struct vh_mem *mem,
			       unsigned int idx);
int vh_vu_frontend_rem_mem_reg(struct vh_vu_frontend *fe, struct vh_mem *mem,
			       unsigned int idx);
int vh_vu_frontend_share_mem(struct vh_vu_frontend *fe, struct vh_mem *mem);

/* Vrings.  fd -1 sends the NOFD flag. */
int vh_vu_frontend_set_vring_num(struct vh_vu_frontend *fe, unsigned int idx,
				 unsigned int num);
int vh_vu_frontend_set_vring_addr(struct vh_vu_frontend *fe,
				  const struct vh_vu_vring_addr *addr);
int vh_vu_frontend_set_vring_base(struct vh_vu_frontend *fe, unsigned int idx,
				  uint32_t base);
/* Stops the ring; *base (may be NULL) is where the back-end stopped. */
int vh_vu_frontend_get_vring_base(struct vh_vu_frontend *fe, unsigned int idx,
				  uint32_t *base);
int vh_vu_frontend_set_vring_kick(struct vh_vu_frontend *fe, unsigned int idx,
				  int fd);
int vh_vu_frontend_set_vring_call(struct vh_vu_frontend *fe, unsigned int idx,
				  int fd);
int vh_vu_frontend_set_vring_err(struct vh_vu_frontend *fe, unsigned int idx,
				 int fd);
int vh_vu_frontend_set_vring_enable(struct vh_vu_frontend *fe, unsigned int idx,
				    bool enable);
int vh_vu_frontend_set_vring_endian(struct vh_vu_frontend *fe, unsigned int idx,
				    bool big_endian);
/* In-band kick (INBAND_NOTIFICATIONS). */
int vh_vu_frontend_vring_kick(struct vh_vu_frontend *fe, unsigned int idx);
/*
 * Hand a driver-side vq (built on the shared vh_mem) to the back-end as ring
 * idx: SET_VRING_NUM, SET_VRING_BASE 0, SET_VRING_ADDR (our mapping
 * addresses; with VHOST_F_LOG_ALL negotiated also VH_VRING_F_LOG and the
 * used ring's GPA as log address), SET_VRING_CALL, SET_VRING_KICK; then
 * SET_VRING_ENABLE 1 when bit 30 is negotiated.  kick_fd / call_fd stay the
 * caller's.
 */
int vh_vu_frontend_setup_vq(struct vh_vu_frontend *fe, unsigned int idx,
			    struct vh_drvq *vq, int kick_fd, int call_fd);

/* Config space: size bytes at offset (offset + size <= 256). */
int vh_vu_frontend_get_config(struct vh_vu_frontend *fe, uint32_t offset,
			      void *buf, uint32_t size);
int vh_vu_frontend_set_config(struct vh_vu_frontend *fe, uint32_t offset,
			      const void *buf, uint32_t size, uint32_t flags);
int vh_vu_frontend_set_status(struct vh_vu_frontend *fe, uint8_t status);
int vh_vu_frontend_get_status(struct vh_vu_frontend *fe, uint8_t *status);
int vh_vu_frontend_net_set_mtu(struct vh_vu_frontend *fe, uint16_t mtu);
int vh_vu_frontend_send_rarp(struct vh_vu_frontend *fe, const uint8_t mac[6]);
/* IOTLB_MSG: 0 when the back-end's u64 answer is 0. */
int vh_vu_frontend_iotlb_msg(struct vh_vu_frontend *fe,
			     const struct vh_vu_iotlb *msg);
/*
 * With VIRTIO_F_ACCESS_PLATFORM negotiated ("IOMMU support"): map
 * [iova, iova + size) to our user address uaddr (inside memory shared with
 * vh_vu_frontend_share_mem() or set_mem_table) with perm VH_ACCESS_RO/
 * WO/RW, or unmap it (size 0: to the end of the address space, from 0
 * everything, as QEMU's unmap of a whole range sends it).  -EIO when the
 * back-end refuses.  The back-end's
 * misses arrive as the iotlb callback (type VH_IOTLB_MISS, iova, perm):
 * answer them with an update.
 */
int vh_vu_frontend_iotlb_update(struct vh_vu_frontend *fe, uint64_t iova,
				uint64_t size, uint64_t uaddr, uint8_t perm);
int vh_vu_frontend_iotlb_invalidate(struct vh_vu_frontend *fe, uint64_t iova,
				    uint64_t size);
/*
 * As vh_vu_frontend_setup_vq() with the rings at IOVAs (ACCESS_PLATFORM
 * negotiated, else -EOPNOTSUPP); they need not be mapped yet.  Under
 * VHOST_F_LOG_ALL the log address is the used ring's IOVA, as QEMU sends it
 * under a vIOMMU.
 */
int vh_vu_frontend_setup_vq_iova(struct vh_vu_frontend *fe, unsigned int idx,
				 struct vh_drvq *vq, int kick_fd, int call_fd,
				 uint64_t desc_iova, uint64_t avail_iova,
				 uint64_t used_iova);

/*
 * Dirty log.  set_log_base: SET_LOG_BASE with fd (not consumed).
 * enable_log: allocate the log on mem (vh_mem_log_alloc(), covering every
 * region) and send it.
 */
int vh_vu_frontend_set_log_base(struct vh_vu_frontend *fe, int fd,
				uint64_t size, uint64_t offset);
int vh_vu_frontend_enable_log(struct vh_vu_frontend *fe, struct vh_mem *mem);
int vh_vu_frontend_set_log_fd(struct vh_vu_frontend *fe, int fd);

/*
 * Inflight I/O tracking; *fd (O_CLOEXEC, -1 if none) is the caller's.  The
 * reply is checked: same num_queues and queue_size as asked, the fd is a
 * regular file or memfd holding mmap_size bytes at a page-aligned
 * mmap_offset (-EPROTO otherwise).
 */
int vh_vu_frontend_get_inflight_fd(struct vh_vu_frontend *fe,
				   uint16_t num_queues, uint16_t queue_size,
				   struct vh_vu_inflight *inflight, int *fd);
int vh_vu_frontend_set_inflight_fd(struct vh_vu_frontend *fe,
				   const struct vh_vu_inflight *inflight,
				   int fd);

/*
 * Device state transfer: fd is our end of the channel (not consumed);
 * *backend_fd gets the back-end's channel if it returned one (a pipe or a
 * socket, else -EPROTO), else -1.
 */
int vh_vu_frontend_set_device_state_fd(struct vh_vu_frontend *fe,
				       uint32_t direction, uint32_t phase,
				       int fd, int *backend_fd);
int vh_vu_frontend_check_device_state(struct vh_vu_frontend *fe);
/*
 * The back-end's shared object uuid: *fd gets its dma-buf; -ENOENT if it
 * has none, -EPROTO for an fd that is not a dma-buf.
 */
int vh_vu_frontend_get_shared_object(struct vh_vu_frontend *fe,
				     const uint8_t uuid[16], int *fd);

/*
 * Postcopy: *ufd (may be NULL) gets the userfaultfd if one was passed
 * (-EPROTO for an fd of another kind).
 */
int vh_vu_frontend_postcopy_advise(struct vh_vu_frontend *fe, int *ufd);
int vh_vu_frontend_postcopy_listen(struct vh_vu_frontend *fe);
int vh_vu_frontend_postcopy_end(struct vh_vu_frontend *fe);
int vh_vu_frontend_gpu_set_socket(struct vh_vu_frontend *fe, int fd);
/*
 * Crypto sessions: the session description is opaque here (len bytes);
 * the reply (up to reply_max bytes) is copied to reply; returns its length.
 */
int vh_vu_frontend_create_crypto_session(struct vh_vu_frontend *fe,
					 const void *req, size_t len,
					 void *reply, size_t reply_max);
int vh_vu_frontend_close_crypto_session(struct vh_vu_frontend *fe,
					uint64_t session_id);

/*
 * The back-end request channel.  set_backend_req_fd creates a socketpair
 * and sends one end (SET_BACKEND_REQ_FD).  Poll get_backend_fd() for input
 * and call dispatch_backend(): it handles one request (validated against
 * the back-end table and the negotiated features), calls the matching
 * callback and replies (REPLY_ACK when asked, the lookup answer).  Returns
 * 0 when a request was handled, -EAGAIN if none was (wholly) pending: half
 * a request is kept and never waited for, -ECONNRESET when the back-end
 * closed the channel (then closed here too), -EPROTO for a malformed
 * request (channel closed), -ETIMEDOUT when a request stayed incomplete
 * longer than the timeout or the back-end did not read its reply within it
 * (channel closed).  A callback's negative return goes back to the
 * back-end as a non-zero reply; missing callbacks answer -EOPNOTSUPP.
 * Values are checked before a callback runs (-EINVAL back, no call): a
 * ring index must be below 1 + the highest index given to
 * vh_vu_frontend_set_vring_num(); a host notifier area must be page
 * aligned and inside its fd (a regular file; a character device cannot be
 * sized), an IOTLB message a MISS or ACCESS_FAIL.  Requests are also
 * served while a call waits for its reply; a callback may then make calls
 * of its own (an IOTLB miss answered with an update): each gets its own
 * reply, whichever order the back-end's answers come in (matched by
 * request; two of the same request in the order they were sent), and ends
 * by the waiting call's deadline.  A callback may also disconnect, or take
 * another connection: the call that waits then returns -ECONNRESET at
 * once, and the new connection is not touched.  dispatch_backend() from
 * a callback returns -EBUSY.  A call that sends several requests
 * (negotiate, share_mem, setup_vq, setup_vq_iova) ends by one deadline.
 */
struct vh_vu_frontend_ops {
	/* sizeof(this struct): see "Extensible structs" in libvhost.h */
	size_t size;
	int (*config_change)(struct vh_vu_frontend *fe, void *data);
	/* fd (-1 for "remove") is owned by the callback */
	int (*host_notifier)(struct vh_vu_frontend *fe, void *data,
			     unsigned int idx, int fd, uint64_t size,
			     uint64_t offset);
	int (*iotlb)(struct vh_vu_frontend *fe, void *data,
		     const struct vh_vu_iotlb *msg);
	int (*vring_call)(struct vh_vu_frontend *fe, void *data,
			  unsigned int idx);
	int (*vring_err)(struct vh_vu_frontend *fe, void *data,
			 unsigned int idx);
	int (*shared_object_add)(struct vh_vu_frontend *fe, void *data,
				 const uint8_t uuid[16]);
	int (*shared_object_remove)(struct vh_vu_frontend *fe, void *data,
				    const uint8_t uuid[16]);
	/* *fd is sent to the back-end and then closed here */
	int (*shared_object_lookup)(struct vh_vu_frontend *fe, void *data,
				    const uint8_t uuid[16], int *fd);
};
/*
 * Install (a copy of) ops, or remove them with NULL; 0, -EINVAL, or -E2BIG
 * for an ops->size larger than ours with non-zero members we do not know.
 */
int vh_vu_frontend_set_ops(struct vh_vu_frontend *fe,
			   const struct vh_vu_frontend_ops *ops, void *data);
int vh_vu_frontend_set_backend_req_fd(struct vh_vu_frontend *fe);
int vh_vu_frontend_get_backend_fd(const struct vh_vu_frontend *fe);
int vh_vu_frontend_dispatch_backend(struct vh_vu_frontend *fe);


#ifdef __cplusplus
}
#endif

#endif
