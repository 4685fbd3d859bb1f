/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vh_daemon: private state.  Never installed. */
#ifndef _VH_DAEMON_INTERNAL_H_
#define _VH_DAEMON_INTERNAL_H_

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "libvhost-internal.h"
#include "libvhost-daemon.h"
#include "libvhost-vu-backend.h"

/* What an epoll_data.ptr of a worker points at. */
enum dm_src_kind {
	DM_SRC_EXIT,
	DM_SRC_WAKE,
	DM_SRC_QUEUE,
	DM_SRC_WATCH,
};

struct dm_src {
	enum dm_src_kind kind;
};

struct dm_queue {
	struct dm_src src;
	unsigned int idx;
	unsigned int thread;
	/* handed-over ring, NULL otherwise; written under worker lock + policy lock */
	struct vh_devq *vring;
	int kick_fd; /* registered in the worker's epoll set, or -1 */
	pthread_mutex_t mutex;   /* VH_DAEMON_LOCK_MUTEX */
	pthread_rwlock_t rwlock; /* VH_DAEMON_LOCK_RWLOCK */
};

/*
 * Watched device fds per worker: slots stay allocated (stale epoll events).
 * One per queue a worker may serve (a tap per queue pair, an io_uring per
 * queue, all on one thread with --threads=1).
 */
#define DM_MAX_WATCHES VH_VU_MAX_QUEUES

struct dm_watch {
	struct dm_src src;
	int fd; /* -1: free slot */
	/*
	 * Unwatched, and the worker may hold an event of the old fd from
	 * epoll_wait(): not taken again until its batch is done (the event
	 * would go to the new fd's callback)
	 */
	bool dying;
	vh_daemon_fd_cb cb;
	void *opaque;
};

struct dm_worker {
	struct vh_daemon *d;
	unsigned int t;
	pthread_t tid;
	bool running;
	/*
	 * The worker's own pthread_self(), stored by the worker before any
	 * callback and published by self_set: "am I the worker?" must not
	 * read tid, which pthread_create() may write after the worker ran
	 */
	pthread_t self;
	bool self_set;
	unsigned int ndying; /* slots dying (watch_lock) */
	int epfd;
	int wake_fd;
	struct dm_src wake_src;
	/* queues to poll once (bit = queue index), set by any thread */
	uint64_t pending[VH_VU_MAX_QUEUES / 64];
	/*
	 * Held while the worker runs a handler or callback (never while it
	 * sleeps; let go between two of a batch when a thread waits): the
	 * control thread takes it to take a ring back.
	 */
	pthread_mutex_t lock;
	/* threads waiting for lock: the worker lets them in first */
	int waiters;
	/* protects watches[] slot allocation */
	pthread_mutex_t watch_lock;
	struct dm_watch watches[DM_MAX_WATCHES];
	void *thread_data;
};

enum dm_mode {
	DM_MODE_NONE,
	DM_MODE_LISTEN,
	DM_MODE_FD,      /* one connected socket: end when it goes */
	DM_MODE_CLIENT,  /* connect, and connect again */
	DM_MODE_VDUSE,   /* a VDUSE device instead of vhost-user */
};

struct vh_daemon {
	int refcount;
	struct vh_ctx *ctx;
	struct vh_daemon_device dev;
	struct vh_daemon_ops ops;
	void *userdata;
	struct vh_vu_backend *be;
	struct vh_vduse_dev *vduse; /* DM_MODE_VDUSE */
	char *vduse_state;          /* vh_daemon_set_vduse_state() */

	unsigned int num_threads;
	struct dm_worker *workers;
	struct dm_queue *queues;

	int exit_fd; /* written once by vh_daemon_stop(); never read */
	struct dm_src exit_src;
	int done_fd; /* written when the control thread ends */
	int drop_fd; /* written by vh_daemon_drop(), read by control_main() */
	unsigned int drop_conn; /* which connection (connections) to drop */

	enum dm_mode mode;
	char *client_path;
	bool started, joined;
	pthread_t control;
	int result; /* why the control thread ended */
	unsigned int connections;

	/* device state transfer (daemon-state.c): control thread only */
	pthread_t xfer_app, xfer_relay;
	bool xfer_running;
	enum vh_vu_state_direction xfer_dir;
	unsigned int xfer_timeout_ms;
	int xfer_peer_fd;  /* the front-end's pipe: the relay's */
	struct vh_peer_io xfer_peer_io; /* how the relay uses it */
	int xfer_local_fd; /* the relay's end of the local socket */
	int xfer_app_fd;   /* the application's end */
	int xfer_app_result, xfer_relay_result;
	int xfer_result; /* of the last transfer, for CHECK_DEVICE_STATE */
	/* the relay's end (vh_vu_now_ms()), moved by the control thread */
	int64_t xfer_finish_by;
	int xfer_wake_fd; /* eventfd: xfer_finish_by moved */
};

/* daemon-state.c: struct vh_vu_device_ops callbacks, and the ends */
int vh_daemon_set_device_state_fd(struct vh_vu_backend *be, void *data,
				  enum vh_vu_state_direction dir,
				  uint32_t phase, int fd, int *reply_fd);
int vh_daemon_check_device_state(struct vh_vu_backend *be, void *data);
/*
 * The transfer in progress, if any, ends: within state_timeout_ms (end:
 * CHECK_DEVICE_STATE, a control message) or now (cancel: a reset, the
 * connection gone, the daemon stopping); both wait for its threads and
 * keep its result.
 */
void vh_daemon_xfer_end(struct vh_daemon *d);
void vh_daemon_xfer_cancel(struct vh_daemon *d);
/* vh_daemon_xfer_end() before each vhost-user message (vu_be_set_msg_hook) */
void vh_daemon_xfer_end_hook(void *data);

#endif
