/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vhost-user: protocol constants, wire payloads and the front-end.
 *
 * The protocol is QEMU's docs/interop/vhost-user.rst ("the spec" below).
 * Everything is in host byte order, as on the wire.  The payload structs
 * have fixed-size members and explicit padding so that sizeof() is the
 * size on the wire.
 */
#ifndef _LIBVHOST_USER_H_
#define _LIBVHOST_USER_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vh_ctx;
struct vh_mem;
struct vh_vq;

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

/* SET_VRING_ADDR flags: log used-ring writes (VHOST_VRING_F_LOG). */
#define VH_VU_VRING_F_LOG (1u << 0)

/* IOTLB message types and permissions ("An IOTLB message"). */
#define VH_VU_IOTLB_MISS 1
#define VH_VU_IOTLB_UPDATE 2
#define VH_VU_IOTLB_INVALIDATE 3
#define VH_VU_IOTLB_ACCESS_FAIL 4
#define VH_VU_ACCESS_RO 1
#define VH_VU_ACCESS_WO 2
#define VH_VU_ACCESS_RW 3

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

#ifdef __cplusplus
}
#endif

#endif
