/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vhost-user wire layer, shared by the front-end and the back-end: message
 * I/O with SCM_RIGHTS, the per-request rule table and the socket modes.
 * Private to libvhost.
 */
#ifndef _VH_VU_MSG_H_
#define _VH_VU_MSG_H_

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "libvhost-vu.h"

struct vh_ctx;

/* ------------------------------------------------------------------------ */
/* rule table                                                               */
/* ------------------------------------------------------------------------ */
enum vh_vu_size_kind {
	VH_VU_SIZE_EXACT, /* size == size_min */
	VH_VU_SIZE_RANGE, /* size_min <= size <= size_max */
	VH_VU_SIZE_CHECK, /* size_min <= size <= size_max, then check() */
};

enum vh_vu_fds_rule {
	VH_VU_FDS_NONE, /* no fd */
	VH_VU_FDS_ONE, /* exactly one */
	VH_VU_FDS_NOFD, /* one, or none when bit 8 of the leading u64 is set */
	VH_VU_FDS_REGIONS, /* one per mem table region (SET_MEM_TABLE) */
	VH_VU_FDS_OPTIONAL, /* 0 or 1 (REM_MEM_REG compat, some replies) */
};

enum vh_vu_reply_rule {
	VH_VU_REPLY_NONE, /* never answered */
	VH_VU_REPLY_ACK, /* answered with a u64 iff NEED_REPLY + REPLY_ACK */
	VH_VU_REPLY_ALWAYS, /* always answered with its own reply payload */
};

/* gate: no protocol feature needed */
#define VH_VU_GATE_NONE (-1)
/* gate: needs virtio feature bit 30 (GET/SET_PROTOCOL_FEATURES, ENABLE) */
#define VH_VU_GATE_F_PROTOCOL (-2)
/* gate: needs VIRTIO_F_ACCESS_PLATFORM (IOTLB_MSG) */
#define VH_VU_GATE_F_ACCESS_PLATFORM (-3)

struct vh_vu_size_rule {
	uint8_t kind; /* enum vh_vu_size_kind */
	uint8_t fds; /* enum vh_vu_fds_rule */
	uint16_t size_min;
	uint16_t size_max;
	/* VH_VU_SIZE_CHECK: 0 or -EBADMSG, after size and fds count checks */
	int (*check)(const struct vh_vu_msg *msg);
};

struct vh_vu_msg_rule {
	uint32_t request;
	const char *name;
	int gate; /* enum vh_vu_protocol_feature or VH_VU_GATE_* */
	uint8_t reply; /* enum vh_vu_reply_rule */
	struct vh_vu_size_rule req;
	struct vh_vu_size_rule rep; /* VH_VU_REPLY_ALWAYS only */
};

/*
 * The requests a front-end sends ("Front-end message types"), one row
 * each, the only place a request's rules and its back-end handler are
 * written:
 *
 *   X(name, gate, reply, request payload, reply payload, back-end handler)
 *
 * name      VH_VU_<name>;
 * gate      G_NONE, G_F30 (VH_VU_GATE_F_PROTOCOL), G_IOTLB
 *           (VH_VU_GATE_F_ACCESS_PLATFORM) or P(<protocol feature>);
 * reply     NONE, ACK or ALWAYS (VH_VU_REPLY_*);
 * payloads  SZ(n, fds): n bytes; RANGE(min, max, fds); CHK(min, max, fds,
 *           checker): the range, then checker(msg); NONE(): 0 bytes, no
 *           fd; U64(), STATE(): 8 bytes, no fd; NOREP: no reply payload;
 *           fds is a VH_VU_FDS_* rule (the shorthands take () so that no
 *           object-like macro in a row expands to commas: cppcheck's
 *           preprocessor miscounts X's arguments then);
 * handler   the function in vu-backend.c that serves it; NULL: the
 *           back-end never offers it and refuses it.
 *
 * vu-msg.c expands it into the rule table (vh_vu_fe_rules[]) that both
 * sides check messages with, vu-backend.c into its dispatch rows, each of
 * which points at its request's rule: a handler cannot exist without its
 * rule nor be filed under another request's.  Unused columns are never
 * expanded, so each file only needs the names of its own columns.
 */
#define VH_VU_REQUESTS(X)                                                     \
	X(GET_FEATURES, G_NONE, ALWAYS, NONE(), U64(), h_get_features)        \
	X(SET_FEATURES, G_NONE, ACK, U64(), NOREP, h_set_features)            \
	X(SET_OWNER, G_NONE, ACK, NONE(), NOREP, h_set_owner)                 \
	X(RESET_OWNER, G_NONE, ACK, NONE(), NOREP, vu_be_reset_owner)         \
	X(SET_MEM_TABLE, G_NONE, ACK,                                         \
	  CHK(8, sizeof(struct vh_vu_mem_table), VH_VU_FDS_REGIONS,           \
	      check_mem_table),                                               \
	  NOREP, h_mem_table)                                                 \
	/* QEMU and DPDK answer SET_LOG_BASE with an empty or u64 payload */  \
	X(SET_LOG_BASE, P(LOG_SHMFD), ALWAYS,                                 \
	  SZ(sizeof(struct vh_vu_log), VH_VU_FDS_ONE),                        \
	  CHK(0, 8, VH_VU_FDS_NONE, check_empty_or_u64), h_set_log_base)      \
	X(SET_LOG_FD, P(LOG_SHMFD), ACK, SZ(0, VH_VU_FDS_ONE), NOREP,         \
	  h_set_log_fd)                                                       \
	X(SET_VRING_NUM, G_NONE, ACK, STATE(), NOREP, vu_be_set_vring_num)    \
	X(SET_VRING_ADDR, G_NONE, ACK,                                        \
	  SZ(sizeof(struct vh_vu_vring_addr), VH_VU_FDS_NONE), NOREP,         \
	  vu_be_set_vring_addr)                                               \
	X(SET_VRING_BASE, G_NONE, ACK, STATE(), NOREP, vu_be_set_vring_base)  \
	X(GET_VRING_BASE, G_NONE, ALWAYS, STATE(), STATE(),                   \
	  vu_be_get_vring_base)                                               \
	X(SET_VRING_KICK, G_NONE, ACK,                                        \
	  CHK(8, 8, VH_VU_FDS_NOFD, check_vring_file), NOREP,                 \
	  vu_be_set_vring_kick)                                               \
	X(SET_VRING_CALL, G_NONE, ACK,                                        \
	  CHK(8, 8, VH_VU_FDS_NOFD, check_vring_file), NOREP,                 \
	  vu_be_set_vring_call)                                               \
	X(SET_VRING_ERR, G_NONE, ACK,                                         \
	  CHK(8, 8, VH_VU_FDS_NOFD, check_vring_file), NOREP,                 \
	  vu_be_set_vring_err)                                                \
	X(GET_PROTOCOL_FEATURES, G_F30, ALWAYS, NONE(), U64(),                \
	  h_get_protocol_features)                                            \
	X(SET_PROTOCOL_FEATURES, G_F30, ACK, U64(), NOREP,                    \
	  h_set_protocol_features)                                            \
	X(GET_QUEUE_NUM, P(MQ), ALWAYS, NONE(), U64(), vu_be_get_queue_num)   \
	X(SET_VRING_ENABLE, G_F30, ACK, STATE(), NOREP,                       \
	  vu_be_set_vring_enable)                                             \
	X(SEND_RARP, P(RARP), ACK, U64(), NOREP, h_send_rarp)                 \
	X(NET_SET_MTU, P(NET_MTU), ACK, U64(), NOREP, h_net_set_mtu)          \
	X(SET_BACKEND_REQ_FD, P(BACKEND_REQ), ACK, SZ(0, VH_VU_FDS_ONE),      \
	  NOREP, h_set_backend_req_fd)                                        \
	X(IOTLB_MSG, G_IOTLB, ALWAYS,                                         \
	  SZ(sizeof(struct vh_vu_iotlb), VH_VU_FDS_NONE), U64(),              \
	  h_iotlb_msg)                                                        \
	X(SET_VRING_ENDIAN, P(CROSS_ENDIAN), ACK,                             \
	  CHK(8, 8, VH_VU_FDS_NONE, check_endian), NOREP, NULL)               \
	X(GET_CONFIG, P(CONFIG), ALWAYS,                                      \
	  CHK(VH_VU_CONFIG_HDR_SIZE, sizeof(struct vh_vu_config),             \
	      VH_VU_FDS_NONE, check_config),                                  \
	  CHK(0, sizeof(struct vh_vu_config), VH_VU_FDS_NONE,                 \
	      check_config_reply),                                            \
	  h_get_config)                                                       \
	X(SET_CONFIG, P(CONFIG), ACK,                                         \
	  CHK(VH_VU_CONFIG_HDR_SIZE, sizeof(struct vh_vu_config),             \
	      VH_VU_FDS_NONE, check_config),                                  \
	  NOREP, h_set_config)                                                \
	/* crypto session descriptions are opaque to us: a session id first */ \
	X(CREATE_CRYPTO_SESSION, P(CRYPTO_SESSION), ALWAYS,                   \
	  RANGE(8, VH_VU_PAYLOAD_MAX, VH_VU_FDS_NONE),                        \
	  RANGE(8, VH_VU_PAYLOAD_MAX, VH_VU_FDS_NONE), NULL)                  \
	X(CLOSE_CRYPTO_SESSION, P(CRYPTO_SESSION), ACK, U64(), NOREP, NULL)   \
	X(POSTCOPY_ADVISE, P(PAGEFAULT), ALWAYS, NONE(),                      \
	  CHK(0, 8, VH_VU_FDS_OPTIONAL, check_empty_or_u64), NULL)            \
	X(POSTCOPY_LISTEN, P(PAGEFAULT), ACK, NONE(), NOREP, NULL)            \
	X(POSTCOPY_END, P(PAGEFAULT), ALWAYS, NONE(), U64(), NULL)            \
	X(GET_INFLIGHT_FD, P(INFLIGHT_SHMFD), ALWAYS,                         \
	  SZ(sizeof(struct vh_vu_inflight), VH_VU_FDS_NONE),                  \
	  CHK(sizeof(struct vh_vu_inflight), sizeof(struct vh_vu_inflight),   \
	      VH_VU_FDS_OPTIONAL, check_inflight_reply),                      \
	  h_get_inflight_fd)                                                  \
	X(SET_INFLIGHT_FD, P(INFLIGHT_SHMFD), ACK,                            \
	  SZ(sizeof(struct vh_vu_inflight), VH_VU_FDS_ONE), NOREP,            \
	  h_set_inflight_fd)                                                  \
	/* no protocol feature: only a device with gpu_set_socket takes it */ \
	X(GPU_SET_SOCKET, G_NONE, ACK, SZ(0, VH_VU_FDS_ONE), NOREP,           \
	  h_gpu_set_socket)                                                   \
	X(RESET_DEVICE, P(RESET_DEVICE), ACK, NONE(), NOREP, h_reset_device)  \
	X(VRING_KICK, P(INBAND_NOTIFICATIONS), ACK,                           \
	  CHK(8, 8, VH_VU_FDS_NONE, check_state_num_zero), NOREP,             \
	  vu_be_vring_kick)                                                   \
	X(GET_MAX_MEM_SLOTS, P(CONFIGURE_MEM_SLOTS), ALWAYS, NONE(), U64(),   \
	  h_get_max_mem_slots)                                                \
	X(ADD_MEM_REG, P(CONFIGURE_MEM_SLOTS), ACK,                           \
	  SZ(sizeof(struct vh_vu_mem_single), VH_VU_FDS_ONE), NOREP,          \
	  h_add_mem_reg)                                                      \
	/* "If a file descriptor is passed, the back-end MUST close it" */    \
	X(REM_MEM_REG, P(CONFIGURE_MEM_SLOTS), ACK,                           \
	  SZ(sizeof(struct vh_vu_mem_single), VH_VU_FDS_OPTIONAL), NOREP,     \
	  h_rem_mem_reg)                                                      \
	X(SET_STATUS, P(STATUS), ACK, U64(), NOREP, h_set_status)             \
	X(GET_STATUS, P(STATUS), ALWAYS, NONE(), U64(), h_get_status)         \
	X(GET_SHARED_OBJECT, P(SHARED_OBJECT), ALWAYS,                        \
	  SZ(sizeof(struct vh_vu_shared), VH_VU_FDS_NONE),                    \
	  RANGE(0, sizeof(struct vh_vu_shared), VH_VU_FDS_OPTIONAL),          \
	  h_get_shared_object)                                                \
	X(SET_DEVICE_STATE_FD, P(DEVICE_STATE), ALWAYS,                       \
	  SZ(sizeof(struct vh_vu_device_state), VH_VU_FDS_ONE),               \
	  CHK(8, 8, VH_VU_FDS_NOFD, check_device_state_reply),                \
	  h_set_device_state_fd)                                              \
	X(CHECK_DEVICE_STATE, P(DEVICE_STATE), ALWAYS, NONE(), U64(),         \
	  h_check_device_state)


/* The rules of the front-end's requests, by id (see VH_VU_REQUESTS). */
extern const struct vh_vu_msg_rule vh_vu_fe_rules[VH_VU_REQUEST_MAX];

/*
 * The rule of a request: backend_to_frontend selects the back-end request
 * channel's table.  NULL for an unknown request.
 */
const struct vh_vu_msg_rule *vh_vu_msg_rule(bool backend_to_frontend,
					    uint32_t request);

/* "SET_MEM_TABLE" etc.; "UNKNOWN" rather than NULL, for logs. */
const char *vh_vu_msg_name(bool backend_to_frontend, uint32_t request);

/*
 * Check msg against rule (the request side, or with reply=true the reply
 * side of a REPLY_ALWAYS rule, or the u64 of a reply-ack): payload size,
 * fd count and the rule's checker.  0 or -EBADMSG; logs why.  Never closes
 * fds: on error the caller closes them all (vh_vu_msg_close_fds()).  With
 * VH_VU_FDS_OPTIONAL the caller closes an fd it does not use.
 */
int vh_vu_msg_check(struct vh_ctx *ctx, const struct vh_vu_msg_rule *rule,
		    const struct vh_vu_msg *msg, bool reply);

/*
 * Is the gate of rule open?  features: negotiated virtio features (bit 30
 * and ACCESS_PLATFORM looked at), protocol_features: negotiated protocol
 * features.
 */
bool vh_vu_msg_gate_open(const struct vh_vu_msg_rule *rule, uint64_t features,
			 uint64_t protocol_features);

/* ------------------------------------------------------------------------ */
/* message I/O                                                              */
/* ------------------------------------------------------------------------ */

/* How long a message that has started may take to finish (ms). */
#define VH_VU_MSG_TIMEOUT_MS 5000

/*
 * Receive one message.  Returns 0 with msg filled (msg->fds are O_CLOEXEC
 * and owned by the caller), or:
 *  -EAGAIN       non-blocking socket and nothing pending (nothing consumed);
 *  -ECONNRESET   orderly EOF before the first byte;
 *  -EPROTO       bad header (version other than 1, size above
 *                VH_VU_PAYLOAD_MAX), EOF in the middle of a message, or
 *                more than VH_VU_MAX_FDS fds (MSG_CTRUNC) or ancillary data
 *                that is not SCM_RIGHTS: the stream cannot be trusted any
 *                more, the caller should close it;
 *  -ETIMEDOUT    a started message did not complete in VH_VU_MSG_TIMEOUT_MS;
 *  -errno        of recvmsg().
 * On error no fd is left open.  The request id and fds are not checked
 * against the rule table here: see vh_vu_msg_check().  On a blocking
 * socket the wait for the first byte is unbounded: a caller that must not
 * hang uses vh_vu_msg_recv_until().
 */
int vh_vu_msg_recv(struct vh_ctx *ctx, int sock, struct vh_vu_msg *msg);

/*
 * Receive one whole message by deadline (vh_vu_now_ms() based), whatever
 * the socket's mode (every read is MSG_DONTWAIT): as vh_vu_msg_recv(), but
 * -ETIMEDOUT when the message, or its first byte, is not there in time.
 */
int vh_vu_msg_recv_until(struct vh_ctx *ctx, int sock, struct vh_vu_msg *msg,
			 int64_t deadline);

/*
 * Send one message: the header, hdr.size payload bytes and msg->nfds fds
 * (not closed).  Handles partial writes and EINTR; MSG_NOSIGNAL (-EPIPE,
 * not SIGPIPE).  -EINVAL for more than VH_VU_MAX_FDS fds or a payload
 * above VH_VU_PAYLOAD_MAX, -ETIMEDOUT if the peer does not drain in
 * VH_VU_MSG_TIMEOUT_MS.
 */
int vh_vu_msg_send(struct vh_ctx *ctx, int sock, const struct vh_vu_msg *msg);

/*
 * Send one message, all of it by deadline: every write is MSG_DONTWAIT, so
 * a peer that never reads holds us no longer than that, even on a blocking
 * socket.  -ETIMEDOUT then (part of the message may be out: the stream is
 * unusable).
 */
int vh_vu_msg_send_until(struct vh_ctx *ctx, int sock,
			 const struct vh_vu_msg *msg, int64_t deadline);

/*
 * Incremental receive, for a caller that serves several sockets from one
 * poll loop and must not wait on a peer that sent half a message.
 */
struct vh_vu_rx {
	struct vh_vu_msg msg; /* what has arrived so far, fds included */
	uint32_t got; /* bytes of header + payload received */
	int64_t started; /* vh_vu_now_ms() at the first byte */
};

/* An empty receiver (no fds held). */
void vh_vu_rx_init(struct vh_vu_rx *rx);
/* Drop a partial message: close its fds, back to empty. */
void vh_vu_rx_reset(struct vh_vu_rx *rx);
/*
 * Read what is pending, never blocking (MSG_DONTWAIT) and never past the
 * current message.  0: a whole message is in *out (fds the caller's), rx
 * is empty again; -EAGAIN: not complete yet (rx->got says how far; 0 if
 * nothing came); other errors as vh_vu_msg_recv(), with rx reset.
 */
int vh_vu_rx_step(struct vh_ctx *ctx, int sock, struct vh_vu_rx *rx,
		  struct vh_vu_msg *out);

/* Close and forget every fd in msg. */
void vh_vu_msg_close_fds(struct vh_vu_msg *msg);

/* Start a message: zeroed, request, version 1 in flags, size. */
void vh_vu_msg_init(struct vh_vu_msg *msg, uint32_t request, uint32_t size);

/*
 * Turn a received request into its u64 reply in place (REPLY_ACK, or a u64
 * answer): keeps request, sets version + REPLY, size 8, no fds.
 */
void vh_vu_msg_set_reply_u64(struct vh_vu_msg *msg, uint64_t value);

/* CLOCK_MONOTONIC in ms, for the deadlines below. */
int64_t vh_vu_now_ms(void);
/*
 * poll() fd for events until deadline (vh_vu_now_ms() based), through EINTR:
 * 0 when ready (or hung up: the next read says how), -ETIMEDOUT, -EIO for
 * POLLNVAL, -errno.
 */
int vh_vu_wait_fd(int fd, short events, int64_t deadline);

/* ------------------------------------------------------------------------ */
/* sockets (vu-socket.c)                                                    */
/* ------------------------------------------------------------------------ */

/* The file a listening socket was bound to (lstat()'s st_dev, st_ino). */
struct vh_vu_sock_id {
	dev_t dev;
	ino_t ino;
};

/*
 * Listen on path.  A live socket there (one that accepts connect()) is
 * never replaced: -EADDRINUSE; nor anything that is not a socket: -EEXIST.
 * A stale socket (connect() refused) is: the new one is bound to a
 * temporary name in the same directory and rename()d over path, so that
 * path never goes missing for a peer that retries (where the temporary
 * name does not fit in sun_path, path itself is bound after the stale
 * socket is unlinked).  SOCK_CLOEXEC; non-blocking if nonblock.  *id (if
 * not NULL) gets the socket's file, for vh_vu_socket_unlink_id().  Returns
 * the fd or -errno (-ENAMETOOLONG if path does not fit in sun_path).
 */
int vh_vu_socket_listen_id(struct vh_ctx *ctx, const char *path, int backlog,
			   bool nonblock, struct vh_vu_sock_id *id);
int vh_vu_socket_listen(struct vh_ctx *ctx, const char *path, int backlog,
			bool nonblock);
/*
 * Unlink path only if it is still the socket file id names (not a socket
 * another listener put there since): 0, -ESTALE when it is not ours (left
 * alone), or -errno.  Call it before closing the listening socket, whose
 * file then cannot be freed and its inode number reused.
 */
int vh_vu_socket_unlink_id(struct vh_ctx *ctx, const char *path,
			   const struct vh_vu_sock_id *id);

/* accept4(SOCK_CLOEXEC [| SOCK_NONBLOCK]); the fd or -errno. */
int vh_vu_socket_accept(struct vh_ctx *ctx, int listen_fd, bool nonblock);

/*
 * Connect to path, retrying while the socket does not exist, refuses or
 * has a full backlog (ENOENT, ECONNREFUSED, EAGAIN) for up to timeout_ms
 * (0: one try).  Each attempt is non-blocking, so a listener that never
 * accepts holds us no longer than timeout_ms.  The socket returned is
 * SOCK_CLOEXEC and blocking (callers set O_NONBLOCK if they poll).  The fd
 * or -errno (-ETIMEDOUT after retries).
 */
int vh_vu_socket_connect(struct vh_ctx *ctx, const char *path, int timeout_ms);

/*
 * Take an already connected socket (the back-end "--fd" convention):
 * checks it is a connected AF_UNIX SOCK_STREAM socket and sets FD_CLOEXEC.
 * 0 or -errno (-ENOTSOCK, -EAFNOSUPPORT, -EPROTOTYPE, -ENOTCONN).
 */
int vh_vu_socket_adopt(struct vh_ctx *ctx, int fd);
/*
 * The same for a socket to accept connections from: an AF_UNIX
 * SOCK_STREAM socket that listens (-EINVAL if it does not).  Flags are
 * the caller's to set.
 */
int vh_vu_socket_adopt_listen(struct vh_ctx *ctx, int fd);

#endif
