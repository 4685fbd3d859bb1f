// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vh_daemon: a vhost-user back-end program framework.  The control thread
 * runs vh_vu_backend's message loop; worker threads poll the rings' kick
 * eventfds and call the device's handle_event.  See libvhost-daemon.h for
 * the threading rules.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>

#include "daemon-internal.h"
#include "vu-backend-internal.h"
#include "libvhost-vdpa.h"
#include "libvhost-vduse.h"
#include "libvhost-vu.h"
#include "libvhost-vring.h"

#define DM_RECONNECT_MS 100
#define DM_EVENTS 64

static void efd_signal(int fd)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is already non-zero: still signalled */
	if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return;
}

static void efd_drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0)
		return;
}

/* ------------------------------------------------------------------------ */
/* policy locks                                                             */
/* ------------------------------------------------------------------------ */
static void q_lock(struct vh_daemon *d, struct dm_queue *q)
{
	if (d->dev.lock == VH_DAEMON_LOCK_MUTEX)
		pthread_mutex_lock(&q->mutex);
	else if (d->dev.lock == VH_DAEMON_LOCK_RWLOCK)
		pthread_rwlock_wrlock(&q->rwlock);
}

static void q_unlock(struct vh_daemon *d, struct dm_queue *q)
{
	if (d->dev.lock == VH_DAEMON_LOCK_MUTEX)
		pthread_mutex_unlock(&q->mutex);
	else if (d->dev.lock == VH_DAEMON_LOCK_RWLOCK)
		pthread_rwlock_unlock(&q->rwlock);
}

static struct dm_queue *queue_of(struct vh_daemon *d, unsigned int idx)
{
	if (!d || idx >= d->dev.num_queues)
		return NULL;
	return &d->queues[idx];
}

VH_EXPORT int vh_daemon_vring_lock(struct vh_daemon *d, unsigned int idx)
{
	struct dm_queue *q = queue_of(d, idx);

	if (!q)
		return -EINVAL;
	q_lock(d, q);
	return 0;
}

VH_EXPORT int vh_daemon_vring_rdlock(struct vh_daemon *d, unsigned int idx)
{
	struct dm_queue *q = queue_of(d, idx);

	if (!q)
		return -EINVAL;
	if (d->dev.lock == VH_DAEMON_LOCK_RWLOCK)
		pthread_rwlock_rdlock(&q->rwlock);
	else
		q_lock(d, q);
	return 0;
}

VH_EXPORT int vh_daemon_vring_unlock(struct vh_daemon *d, unsigned int idx)
{
	struct dm_queue *q = queue_of(d, idx);

	if (!q)
		return -EINVAL;
	q_unlock(d, q);
	return 0;
}

VH_EXPORT struct vh_devq *vh_daemon_vring_get(struct vh_daemon *d,
					       unsigned int idx)
{
	struct dm_queue *q = queue_of(d, idx);

	return q ? __atomic_load_n(&q->vring, __ATOMIC_ACQUIRE) : NULL;
}

/* ------------------------------------------------------------------------ */
/* notifications                                                            */
/* ------------------------------------------------------------------------ */
VH_EXPORT int vh_daemon_notify(struct vh_daemon *d, struct vh_devq *vring)
{
	if (!d || !vring)
		return -EINVAL;
	return vh_devq_notify(vring);
}

VH_EXPORT int vh_daemon_push_and_notify(struct vh_daemon *d,
					struct vh_devq *vring, uint16_t id,
					uint32_t len)
{
	int r;

	if (!d || !vring)
		return -EINVAL;
	r = vh_devq_push(vring, id, len);
	if (r < 0)
		return r;
	return vh_devq_notify(vring);
}

VH_EXPORT int
vh_daemon_push_batch_and_notify(struct vh_daemon *d, struct vh_devq *vring,
				const struct vh_devq_used_elem *used,
				unsigned int n)
{
	int r;

	if (!d || !vring)
		return -EINVAL;
	if (!n)
		return 0;
	r = vh_devq_push_batch(vring, used, n);
	if (r < 0)
		return r;
	return vh_devq_notify(vring);
}

VH_EXPORT int vh_daemon_poll_queue(struct vh_daemon *d, unsigned int idx)
{
	struct dm_queue *q = queue_of(d, idx);
	struct dm_worker *w;

	if (!q)
		return -EINVAL;
	w = &d->workers[q->thread];
	__atomic_or_fetch(&w->pending[idx / 64], 1ull << (idx % 64),
			  __ATOMIC_RELEASE);
	efd_signal(w->wake_fd);
	return 0;
}

VH_EXPORT int vh_daemon_get_inflight(struct vh_daemon *d, unsigned int idx,
				     void **region, size_t *len)
{
	if (!d)
		return -EINVAL;
	if (d->vduse)
		return vh_vduse_dev_get_inflight(d->vduse, idx, region, len);
	return vh_vu_backend_get_inflight(d->be, idx, region, len);
}

/* ------------------------------------------------------------------------ */
/* workers                                                                  */
/* ------------------------------------------------------------------------ */
/* Take a worker's lock from another thread, ahead of the worker. */
static void worker_lock(struct dm_worker *w)
{
	__atomic_add_fetch(&w->waiters, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_lock(&w->lock);
	__atomic_sub_fetch(&w->waiters, 1, __ATOMIC_ACQ_REL);
}

/*
 * Between two handlers of one batch (w->lock held): a ring take-back that
 * waits in worker_lock() gets the lock now, not when the batch ends.  Each
 * handler may busy-poll its ring for a while after it runs empty, and one
 * batch may run every ring of the worker: the control thread (and the
 * front-end's GET_VRING_BASE, SET_MEM_TABLE, the shutdown) waited for all
 * their spins.  What a handler reads it reads again under the lock
 * (run_queue()), and a watch slot unwatched meanwhile stays dying, not
 * reused, until the batch ends.
 */
static void worker_let_waiters(struct dm_worker *w)
{
	if (vh_likely(!__atomic_load_n(&w->waiters, __ATOMIC_ACQUIRE)))
		return;
	pthread_mutex_unlock(&w->lock);
	while (__atomic_load_n(&w->waiters, __ATOMIC_ACQUIRE))
		sched_yield();
	pthread_mutex_lock(&w->lock);
}

static void run_queue(struct vh_daemon *d, struct dm_worker *w,
		      struct dm_queue *q)
{
	struct vh_devq *vr;
	int r;

	q_lock(d, q);
	vr = q->vring;
	if (vr) {
		r = d->ops.handle_event(d, d->userdata, q->idx, vr,
					w->thread_data);
		if (r < 0)
			vh_dbg(d->ctx, "queue %u: handle_event: %d\n", q->idx,
			       r);
		/* a ring the driver broke: the front-end's SET_VRING_ERR fd */
		if (d->be && vh_unlikely(vh_devq_is_broken(vr)))
			vu_be_ring_check_broken(d->be, q->idx);
	}
	q_unlock(d, q);
}

static void run_pending(struct vh_daemon *d, struct dm_worker *w)
{
	unsigned int word;
	uint64_t pend;

	efd_drain(w->wake_fd);
	for (word = 0; word < VH_ARRAY_SIZE(w->pending); word++) {
		pend = __atomic_exchange_n(&w->pending[word], 0,
					   __ATOMIC_ACQ_REL);
		while (pend) {
			unsigned int idx = word * 64 +
					   (unsigned int)__builtin_ctzll(pend);

			pend &= pend - 1;
			if (idx >= d->dev.num_queues)
				continue;
			worker_let_waiters(w);
			run_queue(d, w, &d->queues[idx]);
		}
	}
}

static void *worker_main(void *arg)
{
	struct dm_worker *w = arg;
	struct vh_daemon *d = w->d;
	struct epoll_event ev[DM_EVENTS];
	bool quit = false;
	int i, n;

	w->self = pthread_self();
	__atomic_store_n(&w->self_set, true, __ATOMIC_RELEASE);
	if (d->ops.thread_init)
		w->thread_data = d->ops.thread_init(d, d->userdata, w->t);
	while (!quit) {
		n = epoll_wait(w->epfd, ev, DM_EVENTS, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			vh_err(d->ctx, "worker %u: epoll_wait: %m\n", w->t);
			break;
		}
		/* a ring take-back is waiting: let it have the lock first */
		while (__atomic_load_n(&w->waiters, __ATOMIC_ACQUIRE))
			sched_yield();
		pthread_mutex_lock(&w->lock);
		for (i = 0; i < n; i++) {
			struct dm_src *src = ev[i].data.ptr;

			if (i)
				worker_let_waiters(w);
			switch (src->kind) {
			case DM_SRC_EXIT:
				quit = true;
				break;
			case DM_SRC_WAKE:
				run_pending(d, w);
				break;
			case DM_SRC_QUEUE:
				/*
				 * Edge-triggered kick eventfd: no read()
				 * needed, every write by the front-end is
				 * a new edge.
				 */
				run_queue(d, w, vh_container_of(src,
								struct dm_queue,
								src));
				break;
			case DM_SRC_WATCH: {
				struct dm_watch *wa = vh_container_of(
					src, struct dm_watch, src);

				if (wa->fd >= 0 && wa->cb)
					wa->cb(d, wa->opaque, wa->fd,
					       ev[i].events, w->thread_data);
				break;
			}
			}
		}
		/*
		 * the batch's events are handled: dying slots are free
		 * (ndying changes only under w->lock, which this holds)
		 */
		if (w->ndying) {
			unsigned int k;

			pthread_mutex_lock(&w->watch_lock);
			for (k = 0; k < DM_MAX_WATCHES; k++)
				w->watches[k].dying = false;
			w->ndying = 0;
			pthread_mutex_unlock(&w->watch_lock);
		}
		pthread_mutex_unlock(&w->lock);
	}
	if (d->ops.thread_fini)
		d->ops.thread_fini(d, d->userdata, w->t, w->thread_data);
	return NULL;
}

static int epoll_add_ptr(int epfd, int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev = { .events = events, .data.ptr = ptr };

	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

/* Is the calling thread worker w (see dm_worker.self)? */
static bool is_worker(const struct dm_worker *w)
{
	return __atomic_load_n(&w->self_set, __ATOMIC_ACQUIRE) &&
	       pthread_equal(pthread_self(), w->self);
}

/* Wait for worker w's thread to end; a new thread may get its id. */
static void worker_join(struct dm_worker *w)
{
	pthread_join(w->tid, NULL);
	w->running = false;
	__atomic_store_n(&w->self_set, false, __ATOMIC_RELEASE);
}

/*
 * Is the calling thread a worker of d other than w?  It must not wait for
 * w: w may be in a callback of its own, waiting for the caller (two
 * workers calling for each other would wait for ever).
 */
static bool on_other_worker(const struct vh_daemon *d,
			    const struct dm_worker *w)
{
	unsigned int i;

	for (i = 0; i < d->num_threads; i++)
		if (&d->workers[i] != w && is_worker(&d->workers[i]))
			return true;
	return false;
}

VH_EXPORT int vh_daemon_watch_fd(struct vh_daemon *d, unsigned int t, int fd,
				 uint32_t events, vh_daemon_fd_cb cb,
				 void *opaque)
{
	struct dm_worker *w;
	struct dm_watch *free_slot = NULL, *wa = NULL;
	struct epoll_event ev = { .events = events };
	unsigned int i;
	bool self;
	int r = 0;

	if (!d || t >= d->num_threads || fd < 0 || !cb)
		return -EINVAL;
	w = &d->workers[t];
	/* off the worker: cb and opaque change while it is in no callback */
	self = is_worker(w);
	if (!self && on_other_worker(d, w))
		return -EDEADLK;
	if (!self)
		worker_lock(w);
	pthread_mutex_lock(&w->watch_lock);
	for (i = 0; i < DM_MAX_WATCHES; i++) {
		if (w->watches[i].fd == fd) {
			wa = &w->watches[i];
			break;
		}
		if (w->watches[i].fd < 0 && !w->watches[i].dying && !free_slot)
			free_slot = &w->watches[i];
	}
	if (wa) {
		wa->cb = cb;
		wa->opaque = opaque;
		ev.data.ptr = &wa->src;
		if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
			r = -errno;
	} else if (!free_slot) {
		r = -ENOSPC;
	} else {
		free_slot->cb = cb;
		free_slot->opaque = opaque;
		ev.data.ptr = &free_slot->src;
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
			r = -errno;
		else
			__atomic_store_n(&free_slot->fd, fd, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&w->watch_lock);
	if (!self)
		pthread_mutex_unlock(&w->lock);
	return r;
}

VH_EXPORT int vh_daemon_unwatch_fd(struct vh_daemon *d, unsigned int t,
				   int fd)
{
	struct dm_worker *w;
	bool self;
	unsigned int i;
	int r = -ENOENT;

	if (!d || t >= d->num_threads || fd < 0)
		return -EINVAL;
	w = &d->workers[t];
	/* off the worker: wait until it is out of its callbacks */
	self = is_worker(w);
	if (!self && on_other_worker(d, w))
		return -EDEADLK;
	if (!self)
		worker_lock(w);
	pthread_mutex_lock(&w->watch_lock);
	for (i = 0; i < DM_MAX_WATCHES; i++) {
		if (w->watches[i].fd != fd)
			continue;
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL);
		w->watches[i].fd = -1;
		w->watches[i].cb = NULL;
		/* a running worker may have fetched an event of it */
		if (__atomic_load_n(&w->self_set, __ATOMIC_ACQUIRE)) {
			w->watches[i].dying = true;
			w->ndying++;
		}
		r = 0;
		break;
	}
	pthread_mutex_unlock(&w->watch_lock);
	if (!self) {
		pthread_mutex_unlock(&w->lock);
		/* its next batch ends soon and frees the slot */
		if (r == 0)
			efd_signal(w->wake_fd);
	}
	return r;
}

/* ------------------------------------------------------------------------ */
/* vh_vu_device_ops: control thread                                         */
/* ------------------------------------------------------------------------ */
static int dm_set_features(struct vh_vu_backend *be, void *data,
			   uint64_t features)
{
	struct vh_daemon *d = data;

	return d->ops.set_features ?
		       d->ops.set_features(d, d->userdata, features) :
		       0;
}

static int dm_get_config(struct vh_vu_backend *be, void *data, uint32_t offset,
			 void *buf, uint32_t size)
{
	struct vh_daemon *d = data;

	return d->ops.get_config(d, d->userdata, offset, buf, size);
}

static int dm_set_config(struct vh_vu_backend *be, void *data, uint32_t offset,
			 const void *buf, uint32_t size, uint32_t flags)
{
	struct vh_daemon *d = data;

	/* virtio config space is read-only unless the device says so */
	if (!d->ops.set_config)
		return -EPERM;
	return d->ops.set_config(d, d->userdata, offset, buf, size, flags);
}

static void dm_memory_updated(struct vh_vu_backend *be, void *data)
{
	struct vh_daemon *d = data;

	if (d->ops.memory_updated)
		d->ops.memory_updated(d, d->userdata);
}

static int dm_queue_started(struct vh_vu_backend *be, void *data,
			    unsigned int idx, struct vh_devq *vring)
{
	struct vh_daemon *d = data;
	struct dm_queue *q = queue_of(d, idx);
	struct dm_worker *w;
	int kick, r;

	if (!q)
		return -EINVAL;
	/*
	 * A ring without a kick fd (SET_VRING_KICK with NOFD: the back-end
	 * should poll it, and the daemon's workers sleep in epoll) would be
	 * looked at once and never again: refused, the ring stays stopped
	 */
	if (vh_devq_get_kick_fd(vring) < 0) {
		vh_err(d->ctx, "queue %u: no kick fd (polling is not offered)\n",
		       idx);
		return -EINVAL;
	}
	/* save_state/load_state run with every ring stopped */
	vh_daemon_xfer_end(d);
	if (d->ops.queue_started) {
		r = d->ops.queue_started(d, d->userdata, idx, vring);
		if (r < 0)
			return r;
	}
	w = &d->workers[q->thread];
	worker_lock(w);
	q_lock(d, q);
	kick = vh_devq_get_kick_fd(vring);
	if (kick >= 0) {
		r = epoll_add_ptr(w->epfd, kick, EPOLLIN | EPOLLET, &q->src);
		if (r < 0)
			vh_err(d->ctx, "queue %u: cannot poll kick fd: %d\n",
			       idx, r);
		else
			q->kick_fd = kick;
	}
	__atomic_store_n(&q->vring, vring, __ATOMIC_RELEASE);
	q_unlock(d, q);
	pthread_mutex_unlock(&w->lock);
	/* buffers may have come while it was stopped: poll once, lose none */
	vh_daemon_poll_queue(d, idx);
	return 0;
}

static void dm_queue_stopped(struct vh_vu_backend *be, void *data,
			     unsigned int idx, struct vh_devq *vring)
{
	struct vh_daemon *d = data;
	struct dm_queue *q = queue_of(d, idx);
	struct dm_worker *w;

	if (!q)
		return;
	w = &d->workers[q->thread];
	/* out of handle_event, and nobody else holds the ring */
	worker_lock(w);
	q_lock(d, q);
	if (q->kick_fd >= 0) {
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, q->kick_fd, NULL);
		q->kick_fd = -1;
	}
	__atomic_store_n(&q->vring, NULL, __ATOMIC_RELEASE);
	q_unlock(d, q);
	pthread_mutex_unlock(&w->lock);
	if (d->ops.queue_stopped)
		d->ops.queue_stopped(d, d->userdata, idx, vring);
}

static void dm_reset(struct vh_vu_backend *be, void *data)
{
	struct vh_daemon *d = data;

	vh_daemon_xfer_cancel(d);
	if (d->ops.reset)
		d->ops.reset(d, d->userdata);
}

static int dm_set_status(struct vh_vu_backend *be, void *data, uint8_t status)
{
	struct vh_daemon *d = data;

	return d->ops.set_status ? d->ops.set_status(d, d->userdata, status) :
				   0;
}

static int dm_net_set_mtu(struct vh_vu_backend *be, void *data, uint16_t mtu)
{
	struct vh_daemon *d = data;

	return d->ops.net_set_mtu(d, d->userdata, mtu);
}

static int dm_send_rarp(struct vh_vu_backend *be, void *data,
			const uint8_t mac[6])
{
	struct vh_daemon *d = data;

	return d->ops.send_rarp(d, d->userdata, mac);
}

/* ------------------------------------------------------------------------ */
/* object                                                                   */
/* ------------------------------------------------------------------------ */
static void workers_free(struct vh_daemon *d)
{
	unsigned int t;

	if (!d->workers)
		return;
	for (t = 0; t < d->num_threads; t++) {
		struct dm_worker *w = &d->workers[t];

		if (w->epfd >= 0)
			close(w->epfd);
		if (w->wake_fd >= 0)
			close(w->wake_fd);
		pthread_mutex_destroy(&w->lock);
		pthread_mutex_destroy(&w->watch_lock);
	}
	free(d->workers);
	d->workers = NULL;
}

static int workers_new(struct vh_daemon *d)
{
	unsigned int t, q, i;
	int r;

	d->workers = calloc(d->num_threads, sizeof(*d->workers));
	if (!d->workers)
		return -ENOMEM;
	for (t = 0; t < d->num_threads; t++) {
		struct dm_worker *w = &d->workers[t];

		w->d = d;
		w->t = t;
		w->epfd = -1;
		w->wake_fd = -1;
		w->wake_src.kind = DM_SRC_WAKE;
		pthread_mutex_init(&w->lock, NULL);
		pthread_mutex_init(&w->watch_lock, NULL);
		for (i = 0; i < DM_MAX_WATCHES; i++) {
			w->watches[i].src.kind = DM_SRC_WATCH;
			w->watches[i].fd = -1;
		}
	}
	for (q = 0; q < d->dev.num_queues; q++) {
		t = d->dev.queue_thread ? d->dev.queue_thread[q] :
					  q % d->num_threads;
		/* every queue belongs to exactly one existing thread */
		if (t >= d->num_threads) {
			vh_err(d->ctx, "queue %u: no thread %u\n", q, t);
			return -EINVAL;
		}
		d->queues[q].thread = t;
	}
	for (t = 0; t < d->num_threads; t++) {
		struct dm_worker *w = &d->workers[t];

		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (w->epfd < 0 || w->wake_fd < 0)
			return -errno;
		r = epoll_add_ptr(w->epfd, w->wake_fd, EPOLLIN, &w->wake_src);
		if (!r)
			r = epoll_add_ptr(w->epfd, d->exit_fd, EPOLLIN,
					  &d->exit_src);
		if (r < 0)
			return r;
	}
	return 0;
}

static void daemon_free(struct vh_daemon *d)
{
	unsigned int q;

	if (d->queues) {
		for (q = 0; q < d->dev.num_queues; q++) {
			pthread_mutex_destroy(&d->queues[q].mutex);
			pthread_rwlock_destroy(&d->queues[q].rwlock);
		}
	}
	workers_free(d);
	free(d->queues);
	free(d->vduse_state);
	if (d->exit_fd >= 0)
		close(d->exit_fd);
	if (d->done_fd >= 0)
		close(d->done_fd);
	if (d->drop_fd >= 0)
		close(d->drop_fd);
	if (d->xfer_wake_fd >= 0)
		close(d->xfer_wake_fd);
	free(d->client_path);
	vh_ctx_unref(d->ctx);
	free(d);
}

/* The layouts of the first release (HACKING, "Extensible structs"). */
#define DAEMON_DEVICE_SIZE_1 VH_SIZEOF_UNTIL(struct vh_daemon_device, flags)
#define DAEMON_OPS_SIZE_1 VH_SIZEOF_UNTIL(struct vh_daemon_ops, load_state)

VH_EXPORT int vh_daemon_new(struct vh_ctx *ctx,
			    const struct vh_daemon_device *dev,
			    const struct vh_daemon_ops *ops, void *userdata,
			    struct vh_daemon **out)
{
	struct vh_vu_device vdev = { .size = sizeof(vdev) };
	struct vh_vu_device_ops vops = {
		.size = sizeof(vops),
		.set_features = dm_set_features,
		.memory_updated = dm_memory_updated,
		.queue_started = dm_queue_started,
		.queue_stopped = dm_queue_stopped,
		.reset = dm_reset,
		.set_status = dm_set_status,
	};
	struct vh_daemon_device v;
	struct vh_daemon_ops o;
	struct vh_daemon *d;
	unsigned int q;
	int r;

	if (!ctx || !dev || !ops || !out)
		return -EINVAL;
	/* the application's layouts may be older or newer than ours */
	r = vh_copy_struct(&v, sizeof(v), DAEMON_DEVICE_SIZE_1, dev);
	if (r < 0)
		return r;
	r = vh_copy_struct(&o, sizeof(o), DAEMON_OPS_SIZE_1, ops);
	if (r < 0)
		return r;
	if (!o.handle_event)
		return -EINVAL;
	if (!v.num_queues || v.num_queues > VH_VU_MAX_QUEUES ||
	    v.num_threads > VH_DAEMON_MAX_THREADS ||
	    v.config_size > VH_VU_BACKEND_CONFIG_MAX ||
	    v.lock > VH_DAEMON_LOCK_RWLOCK)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->refcount = 1;
	d->ctx = vh_ctx_ref(ctx);
	d->dev = v;
	d->dev.queue_thread = NULL; /* read below, not kept */
	d->ops = o;
	d->userdata = userdata;
	d->num_threads = v.num_threads ? v.num_threads : 1;
	d->exit_fd = -1;
	d->done_fd = -1;
	d->drop_fd = -1;
	d->xfer_peer_fd = d->xfer_local_fd = d->xfer_app_fd = -1;
	d->xfer_wake_fd = -1;
	d->xfer_result = -EINVAL; /* no transfer yet */
	d->exit_src.kind = DM_SRC_EXIT;
	d->queues = calloc(v.num_queues, sizeof(*d->queues));
	if (!d->queues) {
		r = -ENOMEM;
		goto fail;
	}
	for (q = 0; q < v.num_queues; q++) {
		d->queues[q].src.kind = DM_SRC_QUEUE;
		d->queues[q].idx = q;
		d->queues[q].kick_fd = -1;
		pthread_mutex_init(&d->queues[q].mutex, NULL);
		pthread_rwlock_init(&d->queues[q].rwlock, NULL);
	}
	d->exit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	d->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	d->drop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	d->xfer_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->exit_fd < 0 || d->done_fd < 0 || d->drop_fd < 0 ||
	    d->xfer_wake_fd < 0) {
		r = -errno;
		goto fail;
	}
	/* the mapping is read while creating the workers, not kept */
	d->dev.queue_thread = v.queue_thread;
	r = workers_new(d);
	d->dev.queue_thread = NULL;
	if (r < 0)
		goto fail;

	vdev.features = v.features;
	if (!(v.flags & VH_DAEMON_F_NO_EVENT_IDX))
		vdev.features |= 1ull << VH_VU_VIRTIO_F_RING_EVENT_IDX;
	/* kicks are eventfds polled by the workers: no in-band ones */
	vdev.protocol_features =
		v.protocol_features &
		~(1ull << VH_VU_PROTOCOL_F_INBAND_NOTIFICATIONS);
	vdev.num_queues = v.num_queues;
	vdev.max_queue_size = v.max_queue_size;
	vdev.config_size = v.config_size;
	vdev.queue_num = v.queue_num;
	if (o.get_config) {
		vops.get_config = dm_get_config;
		vops.set_config = dm_set_config;
	}
	if (o.net_set_mtu)
		vops.net_set_mtu = dm_net_set_mtu;
	if (o.send_rarp)
		vops.send_rarp = dm_send_rarp;
	if (o.save_state || o.load_state) {
		vops.set_device_state_fd = vh_daemon_set_device_state_fd;
		vops.check_device_state = vh_daemon_check_device_state;
	}
	r = vh_vu_backend_new(ctx, &vdev, &vops, d, &d->be);
	if (r < 0)
		goto fail;
	/* no message is handled beside a device state transfer */
	if (o.save_state || o.load_state)
		vu_be_set_msg_hook(d->be, vh_daemon_xfer_end_hook);
	*out = d;
	return 0;
fail:
	daemon_free(d);
	return r;
}

VH_EXPORT struct vh_daemon *vh_daemon_ref(struct vh_daemon *d)
{
	if (!d)
		return NULL;
	__atomic_add_fetch(&d->refcount, 1, __ATOMIC_RELAXED);
	return d;
}

VH_EXPORT struct vh_daemon *vh_daemon_unref(struct vh_daemon *d)
{
	if (!d)
		return NULL;
	if (__atomic_sub_fetch(&d->refcount, 1, __ATOMIC_ACQ_REL) > 0)
		return d;
	if (d->started && !d->joined) {
		vh_daemon_stop(d);
		vh_daemon_wait(d);
	}
	/* save_state/load_state may still use the back-end */
	vh_daemon_xfer_cancel(d);
	/* takes every ring back (workers are gone: the locks are free) */
	vh_vu_backend_unref(d->be);
	vh_vduse_dev_unref(d->vduse);
	daemon_free(d);
	return NULL;
}

VH_EXPORT void *vh_daemon_get_userdata(const struct vh_daemon *d)
{
	return d ? d->userdata : NULL;
}

VH_EXPORT struct vh_ctx *vh_daemon_get_ctx(const struct vh_daemon *d)
{
	return d ? d->ctx : NULL;
}

VH_EXPORT struct vh_vu_backend *vh_daemon_get_backend(struct vh_daemon *d)
{
	return d ? d->be : NULL;
}

VH_EXPORT uint64_t vh_daemon_get_features(const struct vh_daemon *d)
{
	if (d && d->vduse)
		return vh_vduse_dev_get_features(d->vduse);
	return d && vh_vu_backend_connected(d->be) ?
		       vh_vu_backend_get_features(d->be) :
		       0;
}

VH_EXPORT unsigned int vh_daemon_get_connections(const struct vh_daemon *d)
{
	return d ? __atomic_load_n(&d->connections, __ATOMIC_ACQUIRE) : 0;
}

VH_EXPORT int vh_daemon_get_done_fd(const struct vh_daemon *d)
{
	return d ? d->done_fd : -EINVAL;
}

/* ------------------------------------------------------------------------ */
/* control thread                                                           */
/* ------------------------------------------------------------------------ */
static int client_connect(struct vh_daemon *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	/*
	 * Non-blocking: a front-end whose listen backlog is full would hold
	 * a blocking connect() (and vh_daemon_stop()) for ever; this one
	 * fails with EAGAIN and client_wait_connect() tries again.
	 */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	memcpy(sa.sun_path, d->client_path, strlen(d->client_path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = vh_vu_backend_adopt_fd(d->be, fd);
	if (r < 0)
		close(fd);
	return r;
}

/* Client mode: (re)connect, waiting DM_RECONNECT_MS between tries. */
static int client_wait_connect(struct vh_daemon *d)
{
	struct pollfd p = { .fd = d->exit_fd, .events = POLLIN };
	int r;

	for (;;) {
		r = client_connect(d);
		if (r == 0)
			return 0;
		vh_dbg(d->ctx, "connect %s: %d\n", d->client_path, r);
		if (poll(&p, 1, DM_RECONNECT_MS) > 0)
			return -ECANCELED;
	}
}

/* VDUSE mode: the kernel's requests and the rings' interrupts. */
static int vduse_loop(struct vh_daemon *d)
{
	struct pollfd p[2] = {
		{ .fd = vh_vduse_dev_get_fd(d->vduse), .events = POLLIN },
		{ .fd = d->exit_fd, .events = POLLIN },
	};
	int r;

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (p[1].revents)
			return 0;
		if (!p[0].revents)
			continue;
		do
			r = vh_vduse_dev_process(d->vduse);
		while (r > 0);
		if (r < 0) {
			vh_err(d->ctx, "vduse: %d: stopping\n", r);
			return r;
		}
	}
}

/*
 * The front-end of the moment is counted and announced once connected:
 * accepted by a dispatch, or adopted (--fd) or connected (client mode)
 * before any message, which vh_daemon_drop() must reach too.
 */
static void conn_seen(struct vh_daemon *d, bool *was_connected)
{
	if (*was_connected || !vh_vu_backend_connected(d->be))
		return;
	*was_connected = true;
	/* --fd counted its one connection in vh_daemon_start_fd() */
	if (d->mode != DM_MODE_FD)
		__atomic_add_fetch(&d->connections, 1, __ATOMIC_RELEASE);
	if (d->ops.connected)
		d->ops.connected(d, d->userdata);
}

static void *control_main(void *arg)
{
	struct vh_daemon *d = arg;
	struct pollfd p[3];
	bool was_connected = false, had_conn;
	int r = 0;

	if (d->mode == DM_MODE_VDUSE) {
		r = vduse_loop(d);
		goto out;
	}
	if (d->mode == DM_MODE_CLIENT) {
		r = client_wait_connect(d);
		if (r < 0)
			goto out;
	}
	p[0].fd = vh_vu_backend_get_fd(d->be);
	p[0].events = POLLIN;
	p[1].fd = d->exit_fd;
	p[1].events = POLLIN;
	p[2].fd = d->drop_fd;
	p[2].events = POLLIN;
	for (;;) {
		conn_seen(d, &was_connected);
		r = poll(p, 3, -1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (p[1].revents) {
			r = 0;
			break;
		}
		if (p[2].revents) {
			efd_drain(d->drop_fd);
			/*
			 * Asked while no front-end was connected, or for one
			 * that has gone since: nothing to drop
			 */
			if (!was_connected || !vh_vu_backend_connected(d->be) ||
			    __atomic_load_n(&d->drop_conn, __ATOMIC_ACQUIRE) !=
				    d->connections)
				continue;
			vh_warn(d->ctx, "front-end dropped (vh_daemon_drop())\n");
			vh_vu_backend_disconnect(d->be);
			r = -ECONNABORTED;
		} else if (p[0].revents) {
			r = vh_vu_backend_dispatch(d->be);
			conn_seen(d, &was_connected);
			if (r >= 0 || r == -EAGAIN)
				continue;
		} else {
			continue;
		}
		/* the connection is gone, its state dropped (rings stopped) */
		vh_daemon_xfer_cancel(d);
		if (r != -ECONNRESET && r != -ECONNABORTED)
			vh_warn(d->ctx, "connection closed on error: %d\n", r);
		if (was_connected && d->ops.disconnected)
			d->ops.disconnected(d, d->userdata);
		had_conn = was_connected;
		was_connected = false;
		/*
		 * --fd: the one connection ended the daemon; an error that
		 * closed it is the daemon's result, a hang-up is not
		 */
		if (d->mode == DM_MODE_FD) {
			if (r == -ECONNRESET)
				r = 0;
			break;
		}
		/*
		 * Listening, no connection came: accept() failed (EMFILE,
		 * ENFILE), and the listening fd stays readable: wait a while
		 * instead of spinning on it
		 */
		if (d->mode == DM_MODE_LISTEN && !had_conn)
			poll(&p[1], 1, DM_RECONNECT_MS);
		if (d->mode == DM_MODE_CLIENT) {
			r = client_wait_connect(d);
			if (r < 0) {
				r = r == -ECANCELED ? 0 : r;
				break;
			}
		}
	}
out:
	if (r == -ECANCELED)
		r = 0;
	d->result = r;
	/*
	 * A stop with a front-end connected: its rings go back and the
	 * application hears of it (queue_stopped, reset, disconnected) here,
	 * while the workers still run, so that no callback comes after
	 * vh_daemon_wait() returned
	 */
	vh_daemon_xfer_cancel(d);
	if (d->be && vh_vu_backend_connected(d->be)) {
		vh_vu_backend_disconnect(d->be);
		if (was_connected && d->ops.disconnected)
			d->ops.disconnected(d, d->userdata);
	}
	/* end the workers too, then tell vh_daemon_run() */
	efd_signal(d->exit_fd);
	vh_daemon_xfer_cancel(d);
	efd_signal(d->done_fd);
	return NULL;
}

static int daemon_start(struct vh_daemon *d)
{
	unsigned int t, started = 0;
	int r;

	for (t = 0; t < d->num_threads; t++) {
		struct dm_worker *w = &d->workers[t];

		r = pthread_create(&w->tid, NULL, worker_main, w);
		if (r)
			goto fail;
		w->running = true;
		started++;
	}
	r = pthread_create(&d->control, NULL, control_main, d);
	if (r)
		goto fail;
	d->started = true;
	return 0;
fail:
	efd_signal(d->exit_fd);
	for (t = 0; t < started; t++) {
		worker_join(&d->workers[t]);
	}
	return -r;
}

VH_EXPORT int vh_daemon_start_listen(struct vh_daemon *d, const char *path)
{
	int r;

	if (!d || !path)
		return -EINVAL;
	if (d->started)
		return -EBUSY;
	r = vh_vu_backend_listen(d->be, path);
	if (r < 0)
		return r;
	d->mode = DM_MODE_LISTEN;
	return daemon_start(d);
}

VH_EXPORT int vh_daemon_start_fd(struct vh_daemon *d, int fd)
{
	int listening = 0;
	socklen_t len = sizeof(listening);
	int r;

	if (!d || fd < 0)
		return -EINVAL;
	if (d->started)
		return -EBUSY;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0)
		return -errno;
	if (listening) {
		r = vh_vu_backend_adopt_listen_fd(d->be, fd);
		d->mode = DM_MODE_LISTEN;
	} else {
		r = vh_vu_backend_adopt_fd(d->be, fd);
		d->mode = DM_MODE_FD;
	}
	if (r < 0)
		return r;
	/* counted now: a vh_daemon_drop() right after this call names it */
	if (d->mode == DM_MODE_FD)
		__atomic_store_n(&d->connections, 1, __ATOMIC_RELEASE);
	r = daemon_start(d);
	if (r < 0)
		__atomic_store_n(&d->connections, 0, __ATOMIC_RELEASE);
	return r;
}

VH_EXPORT int vh_daemon_start_client(struct vh_daemon *d, const char *path)
{
	struct sockaddr_un sa;

	if (!d || !path)
		return -EINVAL;
	if (d->started)
		return -EBUSY;
	if (!*path || strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	free(d->client_path);
	d->client_path = strdup(path);
	if (!d->client_path)
		return -ENOMEM;
	d->mode = DM_MODE_CLIENT;
	return daemon_start(d);
}

/* ------------------------------------------------------------------------ */
/* VDUSE transport: vh_vduse_ops onto the same hand-over as vhost-user      */
/* ------------------------------------------------------------------------ */
static int dv_set_features(struct vh_vduse_dev *dev, void *data,
			   uint64_t features)
{
	return dm_set_features(NULL, data, features);
}

static int dv_set_status(struct vh_vduse_dev *dev, void *data,
			 uint8_t status)
{
	return dm_set_status(NULL, data, status);
}

static int dv_queue_started(struct vh_vduse_dev *dev, void *data,
			    unsigned int idx, struct vh_devq *vring)
{
	return dm_queue_started(NULL, data, idx, vring);
}

static void dv_queue_stopped(struct vh_vduse_dev *dev, void *data,
			     unsigned int idx, struct vh_devq *vring)
{
	dm_queue_stopped(NULL, data, idx, vring);
}

static void dv_reset(struct vh_vduse_dev *dev, void *data)
{
	dm_reset(NULL, data);
}

VH_EXPORT int vh_daemon_set_vduse_state(struct vh_daemon *d, const char *path)
{
	char *p = NULL;

	if (!d || (path && !*path))
		return -EINVAL;
	if (d->started)
		return -EBUSY;
	if (path) {
		p = strdup(path);
		if (!p)
			return -ENOMEM;
	}
	free(d->vduse_state);
	d->vduse_state = p;
	return 0;
}

VH_EXPORT int vh_daemon_start_vduse(struct vh_daemon *d, const char *name)
{
	static const struct vh_vduse_ops ops = {
		.size = sizeof(ops),
		.set_features = dv_set_features,
		.set_status = dv_set_status,
		.queue_started = dv_queue_started,
		.queue_stopped = dv_queue_stopped,
		.reset = dv_reset,
	};
	struct vh_vduse_config c = { .size = sizeof(c) };
	uint8_t config[VH_VU_BACKEND_CONFIG_MAX];
	int r;

	if (!d || !name)
		return -EINVAL;
	if (d->started)
		return -EBUSY;
	/* the device types VDUSE accepts (vduse_dev.c: allowed_device_id) */
	if (!d->dev.type)
		return -EOPNOTSUPP;
	if (!strcmp(d->dev.type, "blk"))
		c.device_id = VIRTIO_ID_BLOCK;
	else if (!strcmp(d->dev.type, "net"))
		c.device_id = VIRTIO_ID_NET;
	else
		return -EOPNOTSUPP;
	c.name = name;
	c.features = d->dev.features;
	if (!(d->dev.flags & VH_DAEMON_F_NO_EVENT_IDX))
		c.features |= 1ull << VH_VU_VIRTIO_F_RING_EVENT_IDX;
	/* VDUSE config space is read-only: no writeback cache toggle */
	if (c.device_id == VIRTIO_ID_BLOCK)
		c.features &= ~(1ull << VIRTIO_BLK_F_CONFIG_WCE);
	c.num_queues = d->dev.num_queues;
	c.max_queue_size = d->dev.max_queue_size;
	c.state_path = d->vduse_state;
	if (d->dev.config_size && d->ops.get_config) {
		r = d->ops.get_config(d, d->userdata, 0, config,
				      d->dev.config_size);
		if (r < 0)
			return r;
		c.config = config;
		c.config_size = d->dev.config_size;
	}
	r = vh_vduse_dev_new(d->ctx, &c, &ops, d, &d->vduse);
	if (r < 0)
		return r;
	d->mode = DM_MODE_VDUSE;
	r = daemon_start(d);
	if (r < 0)
		d->vduse = vh_vduse_dev_unref(d->vduse);
	return r;
}

VH_EXPORT void vh_daemon_stop(struct vh_daemon *d)
{
	/* async-signal-safe: one write(2) */
	if (d && d->exit_fd >= 0)
		efd_signal(d->exit_fd);
}

VH_EXPORT int vh_daemon_drop(struct vh_daemon *d)
{
	/* async-signal-safe: a read of fixed fields and a write() */
	if (!d || d->drop_fd < 0)
		return -EINVAL;
	if (d->mode == DM_MODE_VDUSE)
		return -EOPNOTSUPP;
	/* the connection of now, not one that may come before it is read */
	__atomic_store_n(&d->drop_conn,
			 __atomic_load_n(&d->connections, __ATOMIC_ACQUIRE),
			 __ATOMIC_RELEASE);
	efd_signal(d->drop_fd);
	return 0;
}

VH_EXPORT int vh_daemon_wait(struct vh_daemon *d)
{
	unsigned int t;

	if (!d)
		return -EINVAL;
	if (!d->started)
		return -EINVAL;
	if (d->joined)
		return d->result;
	pthread_join(d->control, NULL);
	for (t = 0; t < d->num_threads; t++) {
		if (!d->workers[t].running)
			continue;
		worker_join(&d->workers[t]);
	}
	d->joined = true;
	return d->result;
}

/* ------------------------------------------------------------------------ */
/* program conventions (vhost-user.rst "Backend program conventions")        */
/* ------------------------------------------------------------------------ */
/*
 * SIGTERM/SIGINT that came while they were blocked here (not by the
 * caller) asked for the stop that just happened: consume them, or
 * restoring the mask would deliver them (and kill the caller).
 */
static void drain_signals(const sigset_t *old)
{
	static const int sigs[] = { SIGTERM, SIGINT };
	const struct timespec zero = { 0, 0 };
	unsigned int i;
	sigset_t one;

	for (i = 0; i < VH_ARRAY_SIZE(sigs); i++) {
		if (sigismember(old, sigs[i]))
			continue;
		sigemptyset(&one);
		sigaddset(&one, sigs[i]);
		while (sigtimedwait(&one, NULL, &zero) == sigs[i])
			;
	}
}

/*
 * VH_DAEMON_RUN_VDPA_ADD: the vdpa device on top of the VDUSE device just
 * started.  The kernel refuses it (EINVAL) until every queue is set up,
 * which vh_daemon_start_vduse() has done before it returns.
 */
static int run_vdpa_add(struct vh_daemon *d, const char *name,
			struct vh_vdpa_mgmt **out)
{
	struct vh_vdpa_dev_new nd = { .size = sizeof(nd) };
	struct vh_vdpa_mgmt *mgmt;
	int r;

	r = vh_vdpa_mgmt_new(d->ctx, &mgmt);
	if (r < 0) {
		vh_err(d->ctx, "vdpa dev add %s: netlink: %d\n", name, r);
		return r;
	}
	nd.name = name;
	nd.mgmtdev = "vduse";
	r = vh_vdpa_mgmt_dev_add(mgmt, &nd);
	if (r < 0) {
		vh_err(d->ctx, "vdpa dev add %s: %d: %s\n", name, r,
		       vh_vdpa_mgmt_last_error(mgmt));
		vh_vdpa_mgmt_unref(mgmt);
		return r;
	}
	vh_info(d->ctx, "vdpa device %s added\n", name);
	*out = mgmt;
	return 0;
}

/*
 * Before the daemon stops: deleting the vdpa device resets the VDUSE
 * device, and the kernel waits for the daemon to answer that reset.
 */
static int run_vdpa_del(struct vh_daemon *d, const char *name,
			struct vh_vdpa_mgmt *mgmt)
{
	int r = vh_vdpa_mgmt_dev_del(mgmt, name);

	if (r < 0)
		vh_err(d->ctx, "vdpa dev del %s: %d: %s\n", name, r,
		       vh_vdpa_mgmt_last_error(mgmt));
	vh_vdpa_mgmt_unref(mgmt);
	return r;
}

VH_EXPORT int vh_daemon_run(struct vh_daemon *d, const char *path, int fd,
			    unsigned int flags)
{
	const unsigned int known = VH_DAEMON_RUN_CLIENT | VH_DAEMON_RUN_VDUSE |
				   VH_DAEMON_RUN_VDPA_ADD;
	struct vh_vdpa_mgmt *mgmt = NULL;
	struct pollfd p[2];
	sigset_t set, old;
	int sfd, r, err = 0;

	if (!d || !path == (fd < 0) || (flags & ~known) ||
	    (fd >= 0 && flags) ||
	    (flags & VH_DAEMON_RUN_CLIENT && flags & VH_DAEMON_RUN_VDUSE) ||
	    (flags & VH_DAEMON_RUN_VDPA_ADD && !(flags & VH_DAEMON_RUN_VDUSE)))
		return -EINVAL;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	/* blocked before the threads start, so they all inherit the mask */
	r = pthread_sigmask(SIG_BLOCK, &set, &old);
	if (r)
		return -r;
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		r = -errno;
		goto out_mask;
	}
	if (fd >= 0)
		r = vh_daemon_start_fd(d, fd);
	else if (flags & VH_DAEMON_RUN_CLIENT)
		r = vh_daemon_start_client(d, path);
	else if (flags & VH_DAEMON_RUN_VDUSE)
		r = vh_daemon_start_vduse(d, path);
	else
		r = vh_daemon_start_listen(d, path);
	if (r < 0)
		goto out_sfd;
	if (flags & VH_DAEMON_RUN_VDPA_ADD) {
		err = run_vdpa_add(d, path, &mgmt);
		if (err < 0) {
			vh_daemon_stop(d);
			goto out_wait;
		}
	}
	p[0].fd = sfd;
	p[0].events = POLLIN;
	p[1].fd = d->done_fd;
	p[1].events = POLLIN;
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			/* stop before waiting: the daemon would run on */
			err = -errno;
			vh_err(d->ctx, "poll: %d: stopping\n", err);
			break;
		}
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si))
				vh_info(d->ctx, "signal %u: stopping\n",
					si.ssi_signo);
			break;
		}
		if (p[1].revents)
			break;
	}
	if (mgmt) {
		r = run_vdpa_del(d, path, mgmt);
		if (!err)
			err = r;
	}
	vh_daemon_stop(d);
out_wait:
	r = vh_daemon_wait(d);
	if (r == 0)
		r = err;
out_sfd:
	close(sfd);
	drain_signals(&old);
out_mask:
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}
