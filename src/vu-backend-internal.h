/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vhost-user back-end: state shared by vu-backend*.c.  Private. */
#ifndef _VH_VU_BACKEND_INTERNAL_H_
#define _VH_VU_BACKEND_INTERNAL_H_

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "libvhost-internal.h"
#include "libvhost-vu-backend.h"
#include "vu-msg.h"

/* A request the device turned down: error reply, the connection stays. */
#define VU_SOFT_FAIL 1

/* epoll tags (epoll_data.u64) */
#define VU_BE_TAG_LISTEN 0u
#define VU_BE_TAG_CONN 1u
#define VU_BE_TAG_KICK 2u /* + queue index */
#define VU_BE_TAG_RX_TIMER UINT64_MAX /* a partial message's deadline */

/* Inflight region of a split queue ("Inflight I/O tracking"). */
#define VU_BE_INFLIGHT_ALIGN 64u

struct vu_be_queue {
	struct vh_devq *vring;
	unsigned int num; /* SET_VRING_NUM, 0 until set */
	bool addr_set; /* SET_VRING_ADDR accepted */
	bool addr_pending; /* addr stored, not translated yet (no memory) */
	struct vh_devq_addr addr;
	bool started; /* SET_VRING_KICK / VRING_KICK .. GET_VRING_BASE */
	bool enabled; /* SET_VRING_ENABLE (or no protocol features) */
	bool handed; /* the device has it (queue_started said 0) */
	bool kick_polled; /* its kick fd is in our epoll set */
	int err_fd; /* SET_VRING_ERR eventfd, -1 if none */
	bool err_reported; /* the ring broke and the front-end was told */
};

struct vh_vu_backend {
	int refcount;
	struct vh_ctx *ctx;
	struct vh_vu_device dev;
	struct vh_vu_device_ops ops;
	void *data;
	/* the library's own users (vh_daemon): before each message */
	void (*msg_hook)(void *data);

	int epfd;
	int listen_fd;
	char *listen_path; /* unlinked at unref if still our socket file */
	struct vh_vu_sock_id listen_id;
	int conn_fd;
	/*
	 * The message arriving on conn_fd: dispatch never waits for its
	 * rest, which must come by rx.started + VH_VU_MSG_TIMEOUT_MS; the
	 * timerfd (in the epoll set) wakes the caller then.
	 */
	struct vh_vu_rx rx;
	int rx_timer;
	bool rx_timer_armed;

	/* what we offer (masked to what is implemented) */
	uint64_t offered_features;
	uint64_t offered_protocol;

	/* ---- per connection ---- */
	/* set under req_lock (vu_be_req_features()): requests read them */
	uint64_t features; /* SET_FEATURES */
	uint64_t protocol_features; /* SET_PROTOCOL_FEATURES */
	bool features_set;
	/* the last SET_DEVICE_STATE_FD failed: CHECK_DEVICE_STATE says so */
	bool state_set_failed;
	uint8_t status;
	struct vh_mem *mem;
	struct vu_be_queue *queues;
	int log_fd; /* SET_LOG_FD eventfd */

	/* inflight region (GET/SET_INFLIGHT_FD) */
	int inflight_fd;
	void *inflight_base; /* whole mapping */
	uint64_t inflight_map_size; /* bytes mapped */
	uint64_t inflight_offset; /* region start in the mapping */
	uint64_t inflight_size; /* region bytes */
	uint16_t inflight_num_queues;
	uint16_t inflight_queue_size;
	uint64_t inflight_qbytes; /* per queue (split or packed layout) */

	/* back-end request channel; req_lock serializes its users */
	pthread_mutex_t req_lock;
	int req_fd;
	struct vh_peer_io req_io; /* how req_fd is used (a socket: fds) */

	/* VIRTIO_F_ACCESS_PLATFORM: IOVA translations (vu-backend-iotlb.c) */
	struct vh_iotlb *iotlb;
};

static inline bool vu_be_has_protocol(const struct vh_vu_backend *be,
				      unsigned int bit)
{
	return be->protocol_features & (1ull << bit);
}

/* vu-backend.c */
/*
 * One message as vh_vu_msg_recv() returns it from the connection (version
 * 1, at most VH_VU_PAYLOAD_MAX bytes, the rest of the payload zeroed):
 * checked against the rule table and dispatched, the reply sent on the
 * connection; every fd in msg is taken or closed.  < 0: the connection was
 * closed.  The socket path calls it; fuzz-vu-backend-msg feeds it directly.
 */
int vu_be_handle_msg(struct vh_vu_backend *be, struct vh_vu_msg *msg);

/* vu-backend-vring.c: the rings' state machine */
/* Take every ring back from the device (before a change). */
void vu_be_quiesce_all(struct vh_vu_backend *be);
/* After a memory change: translate ring addresses again, restart rings. */
void vu_be_resume_all(struct vh_vu_backend *be);
/* Make every handed ring look kicked (after an IOTLB update). */
void vu_be_rekick_all(struct vh_vu_backend *be);
/* Ring idx's kick fd polled readable (epoll tag VU_BE_TAG_KICK + idx). */
int vu_be_kick_event(struct vh_vu_backend *be, unsigned int idx);
/*
 * After the device ran on handed ring idx (the thread that owns it): a
 * ring vh_devq found malformed is reported once on its error eventfd (the
 * in-band VRING_ERR waits for a reply, which the front-end may not give
 * while it waits for us).
 */
void vu_be_ring_check_broken(struct vh_vu_backend *be, unsigned int idx);
/*
 * vu-backend-vring.c: the ring requests, rows of the message table
 * (vu-msg.h): 0, VU_SOFT_FAIL or -errno (the connection closes)
 */
#define VU_BE_HANDLER(name)                                            \
	int name(struct vh_vu_backend *be, struct vh_vu_msg *msg,      \
		 struct vh_vu_msg *reply)
VU_BE_HANDLER(vu_be_reset_owner);
VU_BE_HANDLER(vu_be_set_vring_num);
VU_BE_HANDLER(vu_be_set_vring_addr);
VU_BE_HANDLER(vu_be_set_vring_base);
VU_BE_HANDLER(vu_be_get_vring_base);
VU_BE_HANDLER(vu_be_set_vring_kick);
VU_BE_HANDLER(vu_be_set_vring_call);
VU_BE_HANDLER(vu_be_set_vring_err);
VU_BE_HANDLER(vu_be_get_queue_num);
VU_BE_HANDLER(vu_be_set_vring_enable);
VU_BE_HANDLER(vu_be_vring_kick);
#undef VU_BE_HANDLER

/* vu-backend-mem.c: each returns 0 or -errno; fds taken from msg */
int vu_be_set_mem_table(struct vh_vu_backend *be, struct vh_vu_msg *msg);
int vu_be_add_mem_reg(struct vh_vu_backend *be, struct vh_vu_msg *msg);
int vu_be_rem_mem_reg(struct vh_vu_backend *be, struct vh_vu_msg *msg);
int vu_be_set_log_base(struct vh_vu_backend *be, struct vh_vu_msg *msg);
int vu_be_get_inflight_fd(struct vh_vu_backend *be, struct vh_vu_msg *msg,
			  struct vh_vu_msg *reply);
int vu_be_set_inflight_fd(struct vh_vu_backend *be, struct vh_vu_msg *msg);
void vu_be_inflight_drop(struct vh_vu_backend *be);
/* bytes of one queue's split inflight region, 0 if queue_size is invalid */
uint64_t vu_be_inflight_queue_bytes(unsigned int queue_size, bool packed);

/*
 * hook(data) runs on the dispatching thread after each front-end message
 * is read and before it is handled (vh_daemon ends a device state
 * transfer there).
 */
void vu_be_set_msg_hook(struct vh_vu_backend *be, void (*hook)(void *data));

/* vu-backend-req.c */
void vu_be_req_drop(struct vh_vu_backend *be);
/* fd taken; 0, or -errno: refused (closed), no channel */
int vu_be_req_set(struct vh_vu_backend *be, int fd);
/*
 * The dispatch thread sets the negotiated features through this (under
 * req_lock): a back-end request reads them from another thread.
 */
void vu_be_req_features(struct vh_vu_backend *be, uint64_t features,
			uint64_t protocol_features);
/* 0 once sent, -errno if the front-end could not be told */
int vu_be_req_iotlb_miss(struct vh_vu_backend *be, uint64_t iova,
			 uint8_t perm);

/* vu-backend-iotlb.c */
int vu_be_iotlb_init(struct vh_vu_backend *be);
/* The device stopped or was reset: forget every translation. */
void vu_be_iotlb_stop(struct vh_vu_backend *be);
/* SET_MEM_TABLE or REM_MEM_REG done: forget every translation. */
void vu_be_iotlb_mem_changed(struct vh_vu_backend *be);
/* IOTLB_MSG (request 22): 0 or VU_SOFT_FAIL, reply set */
int vu_be_iotlb_msg(struct vh_vu_backend *be, struct vh_vu_msg *msg,
		    struct vh_vu_msg *reply);

#endif
