/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vh_daemon - a vhost-user back-end program in a box: the vhost-user
 * protocol (vh_vu_backend) on a control thread, the rings on worker threads.
 *
 * Threads
 *   - the control thread (created by vh_daemon_start_*) runs the vhost-user
 *     message loop; every vh_daemon_ops callback except handle_event,
 *     thread_init/thread_fini and the watch_fd callbacks runs there;
 *   - num_threads worker threads, each an epoll loop over the kick eventfds
 *     of the queues mapped to it (queue_thread), the fds the device watches
 *     (vh_daemon_watch_fd) and the daemon's exit eventfd; handle_event runs
 *     there;
 *   - save_state/load_state run on a transfer thread of their own, on
 *     a local socket; a relay thread of the library moves the bytes to
 *     or from the front-end's pipe with a deadline (state_timeout_ms), so
 *     a front-end that stops reading or writing holds neither them nor
 *     the control thread nor vh_daemon_stop().
 *
 * Ring hand-over.  A ring is given to its worker after queue_started
 * returned 0 (control thread) and taken back before queue_stopped is called:
 * the control thread waits until the worker is out of handle_event for
 * that ring, removes the kick fd from the worker's epoll set, and only then
 * lets vh_vu_backend change the ring (SET_MEM_TABLE, GET_VRING_BASE,
 * SET_FEATURES, reset, disconnect).  So handle_event never races a control
 * path change, whatever the lock policy.  After a ring is handed over the
 * worker polls it once (handle_event is called) even without a kick:
 * buffers made available while it was stopped are never left behind.
 *
 * Lock policy (struct vh_daemon_device.lock) says who else may touch a ring
 * while the worker owns it:
 *   VH_DAEMON_LOCK_NONE   only the owning worker, from handle_event or a
 *                         watch_fd callback of the same thread;
 *   VH_DAEMON_LOCK_MUTEX  handle_event runs with the queue's mutex held;
 *                         any other thread (completion threads, another
 *                         worker) may use the ring between
 *                         vh_daemon_vring_lock() and vh_daemon_vring_unlock();
 *   VH_DAEMON_LOCK_RWLOCK handle_event runs with the queue's lock held for
 *                         writing; other threads take it for writing with
 *                         vh_daemon_vring_lock() to push or pop, or for
 *                         reading with vh_daemon_vring_rdlock() to look
 *                         (vh_devq_inflight(), avail counts, statistics).
 *   A thread other than the owner must check vh_daemon_vring_get() under
 *   the lock: it is NULL while the ring is not handed over.
 *
 * Event index: VIRTIO_RING_F_EVENT_IDX is offered unless the device sets
 * VH_DAEMON_F_NO_EVENT_IDX; vh_devq applies it once negotiated.  Use
 * vh_daemon_push_and_notify() / vh_daemon_push_batch_and_notify(): they
 * signal the call eventfd only when the driver asked for it (used_event,
 * else VRING_AVAIL_F_NO_INTERRUPT).
 *
 * Reconnection: after the front-end disconnects every ring is taken back
 * (queue_stopped), reset is called, and the daemon waits for the next
 * connection on the same listening socket (it is never unlinked and
 * re-created in between), or with vh_daemon_start_client() connects again.
 * With VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD (the device offers it in
 * protocol_features) the front-end keeps the inflight region across the
 * reconnection: queue_started may read it (vh_daemon_get_inflight()) and
 * resubmit what was in flight before the ring is polled.
 *
 * Programs: vh_daemon_run() starts the daemon on a socket path or fd (the
 * --socket-path / --fd of vhost-user.rst "Backend program conventions")
 * and returns after SIGTERM or SIGINT.
 */
#ifndef _LIBVHOST_DAEMON_H_
#define _LIBVHOST_DAEMON_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vh_ctx;
struct vh_devq;
struct vh_devq_used_elem;
struct vh_vu_backend;
struct vh_daemon;

/* Worker threads; queues: VH_VU_MAX_QUEUES (libvhost-vu.h) */
#define VH_DAEMON_MAX_THREADS 64

enum vh_daemon_lock {
	VH_DAEMON_LOCK_NONE = 0,
	VH_DAEMON_LOCK_MUTEX = 1,
	VH_DAEMON_LOCK_RWLOCK = 2,
};

/* struct vh_daemon_device.flags */
/* do not offer VIRTIO_RING_F_EVENT_IDX */
#define VH_DAEMON_F_NO_EVENT_IDX (1u << 0)

struct vh_daemon_device {
	/* sizeof(this struct): see "Extensible structs" in libvhost.h */
	size_t size;
	/* "net", "blk", ...: the "type" of --print-capabilities */
	const char *type;
	/* virtio features offered (VERSION_1 etc.; EVENT_IDX is added) */
	uint64_t features;
	/*
	 * vhost-user protocol features offered; the library keeps those it
	 * implements and whose callbacks are set (CONFIG needs get_config,
	 * DEVICE_STATE save_state/load_state, RARP send_rarp, NET_MTU
	 * net_set_mtu).  INBAND_NOTIFICATIONS is never offered.
	 */
	uint64_t protocol_features;
	/* virtqueues, 1..VH_VU_MAX_QUEUES */
	unsigned int num_queues;
	/* largest ring size accepted, 0 for VH_DEVQ_MAX_SIZE */
	unsigned int max_queue_size;
	/* GET_QUEUE_NUM answer, 0 for num_queues (net: queue pairs) */
	unsigned int queue_num;
	/* config space bytes (<= VH_VU_BACKEND_CONFIG_MAX) */
	unsigned int config_size;
	/* worker threads, 1..VH_DAEMON_MAX_THREADS; 0 means 1 */
	unsigned int num_threads;
	/*
	 * queue_thread[q] (num_queues entries): the worker thread, below
	 * num_threads, that owns queue q.  NULL: queue q goes to thread
	 * q % num_threads.
	 */
	const uint8_t *queue_thread;
	enum vh_daemon_lock lock;
	unsigned int flags; /* VH_DAEMON_F_* */
	/*
	 * Device state transfer: the longest the front-end may leave its
	 * pipe without progress (reading what save_state wrote, writing
	 * what load_state reads), and the longest the transfer may go on
	 * once the front-end's next message (CHECK_DEVICE_STATE or any
	 * other) came, in ms; the transfer fails after it.  0 for
	 * VH_DAEMON_STATE_TIMEOUT_MS.
	 */
	unsigned int state_timeout_ms;
};

#define VH_DAEMON_STATE_TIMEOUT_MS 30000

/*
 * Device callbacks, all optional except handle_event.  Like every callback
 * of the library each takes the object that calls it (the daemon) first
 * and the application's pointer (userdata of vh_daemon_new()) second.
 * int callbacks return 0 or -errno.
 */
struct vh_daemon_ops {
	/* sizeof(this struct): see "Extensible structs" in libvhost.h */
	size_t size;
	/*
	 * Worker thread: queue idx was kicked, or was just handed over.
	 * Pop, process, push (vh_daemon_push_and_notify()).  Before
	 * returning with an empty ring, re-enable notifications and pop again
	 * if vh_devq_enable_notification() returns 1 (or simply drain the
	 * ring: the kick eventfd stays readable when a kick comes).
	 * thread_data is what thread_init returned.  Bound the work of one
	 * call (say a few thousand buffers, or a busy-poll budget) and ask
	 * for another with vh_daemon_poll_queue(): taking a ring back (memory
	 * changes, GET_VRING_BASE, disconnection) waits for the call to end
	 * (that call only: the worker's other rings wait).  A ring that
	 * vh_devq found broken by the driver during the call is reported to
	 * the front-end on its SET_VRING_ERR eventfd, once.
	 */
	int (*handle_event)(struct vh_daemon *d, void *data, unsigned int idx,
			    struct vh_devq *vring, void *thread_data);
	/* Worker thread t starting / ending; thread_init's result -> data */
	void *(*thread_init)(struct vh_daemon *d, void *data, unsigned int t);
	void (*thread_fini)(struct vh_daemon *d, void *data, unsigned int t,
			    void *thread_data);

	/* Control thread, as in struct vh_vu_device_ops */
	int (*set_features)(struct vh_daemon *d, void *data, uint64_t features);
	int (*get_config)(struct vh_daemon *d, void *data, uint32_t offset,
			  void *buf, uint32_t size);
	int (*set_config)(struct vh_daemon *d, void *data, uint32_t offset,
			  const void *buf, uint32_t size, uint32_t flags);
	void (*memory_updated)(struct vh_daemon *d, void *data);
	/* before the worker sees the ring; < 0 refuses it */
	int (*queue_started)(struct vh_daemon *d, void *data, unsigned int idx,
			     struct vh_devq *vring);
	/* after the worker let go of the ring */
	void (*queue_stopped)(struct vh_daemon *d, void *data, unsigned int idx,
			      struct vh_devq *vring);
	/* RESET_DEVICE / RESET_OWNER / disconnect (every ring stopped) */
	void (*reset)(struct vh_daemon *d, void *data);
	int (*set_status)(struct vh_daemon *d, void *data, uint8_t status);
	int (*net_set_mtu)(struct vh_daemon *d, void *data, uint16_t mtu);
	int (*send_rarp)(struct vh_daemon *d, void *data, const uint8_t mac[6]);
	/*
	 * a front-end connected (accepted, adopted by vh_daemon_start_fd(),
	 * or connected to in client mode: before its first message) / went
	 * away (after reset)
	 */
	void (*connected)(struct vh_daemon *d, void *data);
	void (*disconnected)(struct vh_daemon *d, void *data);

	/*
	 * Device state transfer (PROTOCOL_F_DEVICE_STATE), on a transfer
	 * thread with every ring stopped (SET_DEVICE_STATE_FD is refused
	 * while a ring is started): write the whole state to fd / read it
	 * from fd until EOF, return 0 or -errno (what CHECK_DEVICE_STATE
	 * reports, unless the front-end's side failed first).  fd is a
	 * blocking local stream socket, not the front-end's pipe (which
	 * must be a pipe or a socket, and which the front-end cannot make
	 * blocking: a pipe is used as the back-end channel is, a socket
	 * with MSG_DONTWAIT): when the front-end stalls past
	 * state_timeout_ms, the connection ends or the daemon stops, reads
	 * see EOF (load) and writes are drained (save).  load_state only
	 * reads fd.  No control-thread callback runs during a transfer:
	 * the front-end's next message waits for its end (watch_fd callbacks
	 * on the workers go on).  The library closes fd afterwards.
	 */
	int (*save_state)(struct vh_daemon *d, void *data, int fd);
	int (*load_state)(struct vh_daemon *d, void *data, int fd);
};

int vh_daemon_new(struct vh_ctx *ctx, const struct vh_daemon_device *dev,
		  const struct vh_daemon_ops *ops, void *userdata,
		  struct vh_daemon **out);
struct vh_daemon *vh_daemon_ref(struct vh_daemon *d);
/* The last unref of a started daemon stops it and waits for it. */
struct vh_daemon *vh_daemon_unref(struct vh_daemon *d);
void *vh_daemon_get_userdata(const struct vh_daemon *d);
struct vh_ctx *vh_daemon_get_ctx(const struct vh_daemon *d);
/* The vhost-user protocol object (for back-end requests, inflight...). */
struct vh_vu_backend *vh_daemon_get_backend(struct vh_daemon *d);

/*
 * Start the threads serving:
 *  - listen: a unix socket at path (connections one after another);
 *    -EADDRINUSE if another process listens there (a stale socket is
 *    replaced), as vh_vu_backend_listen();
 *  - fd: a connected socket (the daemon ends when the front-end goes
 *    away) or a listening one (--fd of the conventions); ownership of fd
 *    passes unless the call fails before the daemon took it;
 *  - client: connect to a front-end listening at path (QEMU server=on),
 *    and connect again whenever it goes away, retrying every 100 ms.
 * -EBUSY if already started.
 */
int vh_daemon_start_listen(struct vh_daemon *d, const char *path);
int vh_daemon_start_fd(struct vh_daemon *d, int fd);
int vh_daemon_start_client(struct vh_daemon *d, const char *path);
/*
 * Serve the device through VDUSE instead (libvhost-vduse.h): create
 * /dev/vduse/NAME with the device's type ("blk" or "net"), features,
 * queues and config space (get_config at offset 0, config_size bytes,
 * read now: VDUSE config space is read-only), and hand the rings to the
 * workers at DRIVER_OK as vhost-user does.  The administrator then adds
 * the vdpa device (vdpa dev add name NAME mgmtdev vduse).  -EOPNOTSUPP
 * for another type; the errors of vh_vduse_dev_new().
 */
int vh_daemon_start_vduse(struct vh_daemon *d, const char *name);
/*
 * Ask every thread to end (writes the exit eventfd); safe from any thread
 * and from a signal handler.
 */
void vh_daemon_stop(struct vh_daemon *d);
/*
 * Drop the current vhost-user front-end, as if it had hung up (its rings
 * are stopped, the disconnected callback runs on the control thread): a
 * listening or client daemon then serves the next one, a --fd daemon
 * ends with -ECONNABORTED.  Nothing happens without a front-end, nor to
 * one that connects after the call (the drop names the connection of
 * the moment, from its start: one that has sent nothing yet too).  For a
 * front-end that broke the protocol in a way only the application sees,
 * such as guest memory truncated under its mapping (SIGBUS).  Safe from
 * any thread and from a signal handler (one write() on an eventfd).  0,
 * -EINVAL, or -EOPNOTSUPP for a VDUSE daemon (the kernel is its peer).
 * LIBVHOST_1.4.
 */
int vh_daemon_drop(struct vh_daemon *d);
/*
 * Join every thread; 0 after vh_daemon_stop() (or a --fd connection the
 * front-end closed), else the error that ended the daemon (for --fd, the
 * one that closed its connection).  When it returns, no callback of the
 * daemon runs any more.
 */
int vh_daemon_wait(struct vh_daemon *d);
/* A pollable fd that becomes readable when the daemon has ended. */
int vh_daemon_get_done_fd(const struct vh_daemon *d);

/* Negotiated virtio features of the current connection (0 if none). */
uint64_t vh_daemon_get_features(const struct vh_daemon *d);
/* Connections served so far (a counter for tests and logs). */
unsigned int vh_daemon_get_connections(const struct vh_daemon *d);

/*
 * The ring of queue idx while it is handed over, else NULL; only
 * meaningful from its worker or under vh_daemon_vring_lock().
 */
struct vh_devq *vh_daemon_vring_get(struct vh_daemon *d, unsigned int idx);
/* Policy locks (no-ops under VH_DAEMON_LOCK_NONE); -EINVAL bad idx. */
int vh_daemon_vring_lock(struct vh_daemon *d, unsigned int idx);
int vh_daemon_vring_rdlock(struct vh_daemon *d, unsigned int idx);
int vh_daemon_vring_unlock(struct vh_daemon *d, unsigned int idx);

/*
 * Push and signal the front-end only if it wants an interrupt (event
 * index).  Return 1 if signalled, 0 if not, -errno from the push.
 */
int vh_daemon_push_and_notify(struct vh_daemon *d, struct vh_devq *vring,
			      uint16_t id, uint32_t len);
int vh_daemon_push_batch_and_notify(struct vh_daemon *d,
				    struct vh_devq *vring,
				    const struct vh_devq_used_elem *used,
				    unsigned int n);
/* Signal if wanted (after plain vh_devq_push()es): 1, 0 or -errno. */
int vh_daemon_notify(struct vh_daemon *d, struct vh_devq *vring);

/*
 * Have queue idx's worker run handle_event once for it soon (after a
 * completion from another thread, or when the device has new input);
 * any thread.  0, or -EINVAL.
 */
int vh_daemon_poll_queue(struct vh_daemon *d, unsigned int idx);

/*
 * Watch a device fd in worker t's epoll loop (level-triggered): cb runs on
 * that worker with the ready events.  Calling it again for the same fd
 * changes events (0 pauses the watch, e.g. while there is no room to
 * receive into); from worker t itself or any thread but another worker
 * (worker t may be in a callback of its own, waiting for this one's: two
 * workers calling for each other would wait for ever), which gets
 * -EDEADLK, as vh_daemon_unwatch_fd() does.  The device keeps fd open
 * until vh_daemon_unwatch_fd() returned.  -ENOSPC past VH_VU_MAX_QUEUES
 * fds on one worker.
 */
typedef void (*vh_daemon_fd_cb)(struct vh_daemon *d, void *opaque, int fd,
				uint32_t revents, void *thread_data);
int vh_daemon_watch_fd(struct vh_daemon *d, unsigned int t, int fd,
		       uint32_t events, vh_daemon_fd_cb cb, void *opaque);
int vh_daemon_unwatch_fd(struct vh_daemon *d, unsigned int t, int fd);

/*
 * The inflight region of queue idx (see vh_vu_backend_get_inflight());
 * control thread (queue_started) or the queue's worker.
 */
int vh_daemon_get_inflight(struct vh_daemon *d, unsigned int idx,
			   void **region, size_t *len);

/*
 * Since LIBVHOST_1.3: the state file of vh_daemon_start_vduse()'s device
 * (vh_vduse_config.state_path): with it a daemon killed under a bound
 * device can be started again on the same name and file, and takes the
 * device over; the inflight regions of vh_daemon_get_inflight() live
 * there.  NULL: none (the default).  Before the daemon starts; -EBUSY
 * after.
 */
int vh_daemon_set_vduse_state(struct vh_daemon *d, const char *path);

/* Flags of vh_daemon_run() */
/* connect to path (vh_daemon_start_client()) instead of listening on it */
#define VH_DAEMON_RUN_CLIENT (1u << 0)
/* path is a VDUSE device name (vh_daemon_start_vduse()) */
#define VH_DAEMON_RUN_VDUSE (1u << 1)
/*
 * with VH_DAEMON_RUN_VDUSE: add the vdpa device named path (management
 * device "vduse") once the VDUSE device exists, and delete it before the
 * daemon stops (since LIBVHOST_1.3's library; older ones refuse the flag)
 */
#define VH_DAEMON_RUN_VDPA_ADD (1u << 2)

/*
 * Run d as a program's main loop: block SIGTERM and SIGINT in the calling
 * thread (before any daemon thread starts, so every thread inherits the
 * mask), start d on path (listening, with VH_DAEMON_RUN_CLIENT as a
 * client, with VH_DAEMON_RUN_VDUSE as the VDUSE device named path) or on
 * fd (exactly one of path and fd >= 0), read the signals from a signalfd
 * and turn them into vh_daemon_stop(), and wait until d
 * has ended.  Before returning the calling thread's signal mask is
 * restored, SIGTERM/SIGINT that arrived meanwhile and that the mask did
 * not block before are consumed (they asked for this stop).  0 after a
 * signal or the end of a --fd connection, else -errno (the daemon is then
 * stopped and waited for too).  Call it from the main thread before
 * creating other threads: it changes the process's signal disposition for
 * its duration.
 */
int vh_daemon_run(struct vh_daemon *d, const char *path, int fd,
		  unsigned int flags);

#ifdef __cplusplus
}
#endif

#endif
