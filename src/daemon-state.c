// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vh_daemon: device state transfer (vhost-user.rst "Migrating back-end
 * state", SET_DEVICE_STATE_FD / CHECK_DEVICE_STATE).
 *
 * The application's save_state/load_state never touch the front-end's fd.
 * They get one end of a local stream socket, blocking, on a transfer thread
 * of their own; a relay thread copies between the other end and the
 * front-end's pipe, which it never lets block (vh_peer_io_write(),
 * vh_peer_io_read()) and waits on with a deadline:
 * state_timeout_ms without progress, and once the transfer is to end (the
 * front-end's next message, CHECK_DEVICE_STATE or any other: none is
 * handled beside a transfer) state_timeout_ms in all.  A disconnection, a
 * reset or vh_daemon_stop() ends it at once.
 * So a front-end that stalls its pipe, or streams into it for ever, holds
 * neither the application nor the control thread: the application sees
 * its reads end (load) or its writes drained (save), never a block for
 * ever or a SIGPIPE.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon-internal.h"
#include "vu-msg.h"

/* bytes the relay moves at a time (on its own stack) */
#define XFER_CHUNK 32768

#define NO_DEADLINE INT64_MAX

static void *xfer_app_main(void *arg)
{
	struct vh_daemon *d = arg;
	int r;

	if (d->xfer_dir == VH_VU_STATE_SAVE)
		r = d->ops.save_state(d, d->userdata, d->xfer_app_fd);
	else
		r = d->ops.load_state(d, d->userdata, d->xfer_app_fd);
	/*
	 * Save: the relay sees the end of the state.  Load: it sees
	 * POLLHUP and stops.  Joined before the result is read.
	 */
	close(d->xfer_app_fd);
	d->xfer_app_fd = -1;
	d->xfer_app_result = r;
	return NULL;
}

static int64_t finish_by(const struct vh_daemon *d)
{
	return __atomic_load_n(&d->xfer_finish_by, __ATOMIC_ACQUIRE);
}

/*
 * Whether the relay must stop on the front-end's side: -ECANCELED when
 * the daemon stops, -ETIMEDOUT past the end the control thread set, else
 * 0.  Checked at every step, so a front-end that keeps the data coming
 * is cut off as surely as one that stalls.
 */
static int xfer_stopping(const struct vh_daemon *d)
{
	struct pollfd p = { .fd = d->exit_fd, .events = POLLIN };

	if (poll(&p, 1, 0) > 0)
		return -ECANCELED;
	if (vh_vu_now_ms() >= finish_by(d))
		return -ETIMEDOUT;
	return 0;
}

/*
 * Wait for events on fd.  The front-end's fd (peer) until the progress
 * deadline or the end the control thread set, whichever is first; in a
 * load, the local end until that end; in a save, the local end at the
 * application's pace.  A peer or load wait also ends when the daemon
 * stops, and in a load when the application closed its end (nothing to
 * relay to).  0 when fd is ready, -ETIMEDOUT, -ECANCELED, -EPIPE (the
 * application is done), -errno.
 */
static int xfer_wait(struct vh_daemon *d, int fd, short events, bool peer,
		     int64_t progress)
{
	bool load = d->xfer_dir == VH_VU_STATE_LOAD;
	struct pollfd p[4] = {
		{ .fd = fd, .events = events },
		{ .fd = d->exit_fd, .events = POLLIN },
		/* the control thread moved the end */
		{ .fd = d->xfer_wake_fd, .events = POLLIN },
		/* POLLHUP once the application closed its end */
		{ .fd = d->xfer_local_fd, .events = 0 },
	};
	nfds_t n = peer && load ? 4 : peer || load ? 3 : 1;
	uint64_t v;
	int r;

	for (;;) {
		int64_t end = NO_DEADLINE, left;
		int ms = -1;

		if (n > 1) {
			end = finish_by(d);
			if (peer && progress < end)
				end = progress;
		}
		if (end != NO_DEADLINE) {
			left = end - vh_vu_now_ms();
			if (left <= 0)
				return -ETIMEDOUT;
			ms = left > INT32_MAX ? INT32_MAX : (int)left;
		}
		r = poll(p, n, ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (n > 1 && p[1].revents)
			return -ECANCELED;
		if (n > 3 && p[3].revents)
			return -EPIPE;
		/* an error or hang-up shows in the read or write that follows */
		if (p[0].revents)
			return 0;
		if (n > 2 && p[2].revents &&
		    read(d->xfer_wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			return -errno;
	}
}

/*
 * Write len bytes to fd (non-blocking).  peer: the front-end's fd, with a
 * deadline of the timeout after each bit of progress; else the local end,
 * our own socket, for which MSG_DONTWAIT is all it takes (local_io).
 */
static const struct vh_peer_io local_io = { .kind = VH_PEER_IO_SOCK };

static int xfer_write(struct vh_daemon *d, int fd, const char *buf,
		      size_t len, bool peer)
{
	struct vh_peer_io local = local_io;
	int64_t progress = vh_vu_now_ms() + d->xfer_timeout_ms;

	while (len) {
		ssize_t n = vh_peer_io_write(peer ? &d->xfer_peer_io : &local,
					     fd, buf, len);
		int r;

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			progress = vh_vu_now_ms() + d->xfer_timeout_ms;
			continue;
		}
		if (n < 0 && n != -EAGAIN)
			return (int)n;
		r = xfer_wait(d, fd, POLLOUT, peer, progress);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Read what is there (up to len): bytes read, 0 at EOF, -errno. */
static ssize_t xfer_read(struct vh_daemon *d, int fd, char *buf, size_t len,
			 bool peer)
{
	struct vh_peer_io local = local_io;
	int64_t progress = vh_vu_now_ms() + d->xfer_timeout_ms;

	for (;;) {
		ssize_t n = vh_peer_io_read(peer ? &d->xfer_peer_io : &local,
					    fd, buf, len);
		int r;

		if (n != -EAGAIN)
			return n;
		r = xfer_wait(d, fd, POLLIN, peer, progress);
		if (r < 0)
			return r;
	}
}

/*
 * save: the application writes to the local end, we write to the
 * front-end.  After a failure the rest of the state is read and dropped,
 * so the application's writes never block for ever (and never raise
 * SIGPIPE: its end stays connected until it is done).
 */
static int xfer_relay_save(struct vh_daemon *d, char *buf, size_t size)
{
	int err = 0;

	for (;;) {
		ssize_t n = xfer_read(d, d->xfer_local_fd, buf, size, false);
		int r;

		if (n == 0)
			return err;
		if (n < 0) {
			/* our own socket: nothing but memory runs short */
			if (n == -ENOMEM || n == -ENOBUFS) {
				poll(NULL, 0, 10);
				continue;
			}
			return err ? err : (int)n;
		}
		if (err)
			continue;
		r = xfer_stopping(d);
		if (!r)
			r = xfer_write(d, d->xfer_peer_fd, buf, (size_t)n, true);
		if (r < 0) {
			vh_warn(d->ctx,
				"device state: front-end pipe: %s; dropping the rest of the state\n",
				strerror(-r));
			err = r;
		}
	}
}

/*
 * load: we read from the front-end until EOF and write to the local end;
 * the caller then ends the application's reads (shutdown), at EOF as at a
 * failure.  An application that stops reading early is its own answer
 * (its result at CHECK_DEVICE_STATE).
 */
static int xfer_relay_load(struct vh_daemon *d, char *buf, size_t size)
{
	int r;

	for (;;) {
		ssize_t n;

		r = xfer_stopping(d);
		if (r < 0)
			goto fail;
		n = xfer_read(d, d->xfer_peer_fd, buf, size, true);
		if (n == 0 || n == -EPIPE)
			return 0;
		if (n < 0) {
			r = (int)n;
			goto fail;
		}
		r = xfer_write(d, d->xfer_local_fd, buf, (size_t)n, false);
		if (r == -EPIPE)
			return 0;
		if (r < 0)
			goto fail;
	}
fail:
	vh_warn(d->ctx, "device state: front-end pipe: %s\n", strerror(-r));
	return r;
}

static void *xfer_relay_main(void *arg)
{
	struct vh_daemon *d = arg;
	char buf[XFER_CHUNK];
	int r;

	if (d->xfer_dir == VH_VU_STATE_SAVE)
		r = xfer_relay_save(d, buf, sizeof(buf));
	else
		r = xfer_relay_load(d, buf, sizeof(buf));
	vh_peer_io_close(&d->xfer_peer_io, d->xfer_peer_fd);
	d->xfer_peer_fd = -1;
	/*
	 * load: the application reads EOF now.  The local end itself stays
	 * open until both threads are joined: the application never writes
	 * to a closed socket.
	 */
	shutdown(d->xfer_local_fd, SHUT_WR);
	d->xfer_relay_result = r;
	return NULL;
}

/*
 * Wait for the transfer in progress, if any, giving the relay until
 * `end` (ms, vh_vu_now_ms()) on the front-end's side; keep its result.
 */
static void xfer_join_by(struct vh_daemon *d, int64_t end)
{
	const uint64_t one = 1;

	if (!d->xfer_running)
		return;
	if (end < finish_by(d)) {
		__atomic_store_n(&d->xfer_finish_by, end, __ATOMIC_RELEASE);
		/* an eventfd at its maximum count is readable anyway */
		if (write(d->xfer_wake_fd, &one, sizeof(one)) < 0 &&
		    errno != EAGAIN)
			vh_warn(d->ctx, "device state: wake: %s\n",
				strerror(errno));
	}
	pthread_join(d->xfer_relay, NULL);
	pthread_join(d->xfer_app, NULL);
	close(d->xfer_local_fd);
	d->xfer_local_fd = -1;
	/* the front-end's side first: its failure is why the state is bad */
	d->xfer_result = d->xfer_relay_result < 0 ? d->xfer_relay_result :
						    d->xfer_app_result;
	d->xfer_running = false;
}

void vh_daemon_xfer_end(struct vh_daemon *d)
{
	if (d->xfer_running)
		xfer_join_by(d, vh_vu_now_ms() + d->xfer_timeout_ms);
}

void vh_daemon_xfer_end_hook(void *data)
{
	vh_daemon_xfer_end(data);
}

void vh_daemon_xfer_cancel(struct vh_daemon *d)
{
	xfer_join_by(d, vh_vu_now_ms());
}

/* true if a worker still owns a ring */
static bool any_ring_started(const struct vh_daemon *d)
{
	unsigned int q;

	for (q = 0; q < d->dev.num_queues; q++)
		if (d->queues[q].vring)
			return true;
	return false;
}

int vh_daemon_set_device_state_fd(struct vh_vu_backend *be, void *data,
				  enum vh_vu_state_direction dir,
				  uint32_t phase, int fd, int *reply_fd)
{
	struct vh_daemon *d = data;
	struct vh_peer_io io = { .pipe = { -1, -1 } };
	struct stat st;
	int sv[2] = { -1, -1 }, fl, r;

	(void)be;
	(void)reply_fd;
	vh_daemon_xfer_end(d);
	/* vhost-user.rst: only the STOPPED phase (0) is defined */
	if (phase != 0 || (dir != VH_VU_STATE_SAVE && dir != VH_VU_STATE_LOAD) ||
	    !(dir == VH_VU_STATE_SAVE ? d->ops.save_state : d->ops.load_state)) {
		r = -EINVAL;
		goto fail;
	}
	/*
	 * "Migrating back-end state": the transfer happens while the
	 * back-end is stopped; save_state/load_state are promised that no
	 * worker owns a ring.
	 */
	if (any_ring_started(d)) {
		vh_err(d->ctx, "device state: a ring is still started\n");
		r = -EBUSY;
		goto fail;
	}
	/*
	 * "a pipe": a FIFO or a socket, which honour O_NONBLOCK.  A regular
	 * file or a device may block in the kernel whatever poll() says (a
	 * FUSE file of the front-end's for ever); a signalfd would take our
	 * own signals.
	 */
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto fail;
	}
	if (!S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode)) {
		vh_err(d->ctx, "device state: fd is not a pipe or a socket\n");
		r = -EBADF;
		goto fail;
	}
	/*
	 * The front-end keeps its own copy of the end it sent, which shares
	 * the O_NONBLOCK of its open file description: made blocking again,
	 * a relay's read or write would wait in the kernel for ever, and
	 * vh_daemon_stop() with it.  vh_peer_io never waits whatever that
	 * flag says (MSG_DONTWAIT on a socket; a pipe of our own, opened
	 * again or relayed through a pipe of ours with splice()).
	 */
	r = vh_peer_io_open(d->ctx, &io, fd, "device state");
	if (r < 0)
		goto fail;
	fd = r;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		r = -errno;
		goto fail;
	}
	/* the relay's end is polled; the application's blocks */
	fl = fcntl(sv[0], F_GETFL);
	if (fl < 0 || fcntl(sv[0], F_SETFL, fl | O_NONBLOCK) < 0) {
		r = -errno;
		goto fail;
	}
	d->xfer_dir = dir;
	d->xfer_peer_fd = fd;
	d->xfer_peer_io = io;
	d->xfer_local_fd = sv[0];
	d->xfer_app_fd = sv[1];
	d->xfer_timeout_ms = d->dev.state_timeout_ms ?
				     d->dev.state_timeout_ms :
				     VH_DAEMON_STATE_TIMEOUT_MS;
	d->xfer_finish_by = NO_DEADLINE;
	d->xfer_relay_result = 0;
	d->xfer_app_result = -EINPROGRESS;
	r = -pthread_create(&d->xfer_relay, NULL, xfer_relay_main, d);
	if (r < 0) {
		d->xfer_peer_fd = d->xfer_local_fd = d->xfer_app_fd = -1;
		/* io is closed below */
		d->xfer_peer_io = (struct vh_peer_io){ .pipe = { -1, -1 } };
		goto fail;
	}
	r = -pthread_create(&d->xfer_app, NULL, xfer_app_main, d);
	if (r < 0) {
		/*
		 * The relay sees the local end close (save: EOF; load:
		 * POLLHUP) and stops, closing fd and io.
		 */
		close(sv[1]);
		d->xfer_app_fd = -1;
		pthread_join(d->xfer_relay, NULL);
		close(sv[0]);
		d->xfer_local_fd = -1;
		d->xfer_result = r;
		return r;
	}
	d->xfer_running = true;
	return 0;
fail:
	if (sv[0] >= 0) {
		close(sv[0]);
		close(sv[1]);
	}
	vh_peer_io_close(&io, fd);
	d->xfer_result = r;
	return r;
}

int vh_daemon_check_device_state(struct vh_vu_backend *be, void *data)
{
	struct vh_daemon *d = data;

	(void)be;
	vh_daemon_xfer_end(d);
	return d->xfer_result;
}
