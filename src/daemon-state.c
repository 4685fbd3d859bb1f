// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vh_daemon: device state transfer (vhost-user.rst "Migrating back-end
 * state", SET_DEVICE_STATE_FD / CHECK_DEVICE_STATE).
 *
 * The application's save_state/load_state never touch the front-end's fd.
 * They get one end of a local stream socket, blocking, on a transfer thread
 * of their own; a relay thread copies between the other end and the
 * front-end's fd, which it makes non-blocking and waits on with a deadline
 * (struct vh_daemon_device.state_timeout_ms without progress).  So a
 * front-end that stops reading or writing the pipe cannot hold the
 * application, nor the control thread that joins the transfer at
 * CHECK_DEVICE_STATE, nor vh_daemon_stop(): the relay gives up at the
 * deadline or when the daemon stops, and the application sees its reads
 * end (load) or its writes drained (save) instead of blocking for ever.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon-internal.h"
#include "vu-msg.h"

/* bytes the relay moves at a time */
#define XFER_CHUNK 32768

static void *xfer_app_main(void *arg)
{
	struct vh_daemon *d = arg;
	int r;

	if (d->xfer_dir == VH_VU_STATE_SAVE)
		r = d->ops.save_state(d, d->userdata, d->xfer_app_fd);
	else
		r = d->ops.load_state(d, d->userdata, d->xfer_app_fd);
	/* save: the relay sees the end of the state; load: it may stop */
	close(d->xfer_app_fd);
	d->xfer_app_fd = -1;
	d->xfer_app_result = r;
	return NULL;
}

/*
 * Wait for events on fd.  The front-end's fd (peer): until the progress
 * deadline, and not past vh_daemon_stop(); in a load, not past the
 * application's end either (it stopped reading: nothing to relay to).
 * The local end goes at the application's pace.  0 when fd is ready,
 * -ETIMEDOUT, -ECANCELED (stopping), -EPIPE (the application is done),
 * -errno.
 */
static int xfer_wait(struct vh_daemon *d, int fd, short events, bool peer,
		     int64_t deadline)
{
	struct pollfd p[3] = {
		{ .fd = fd, .events = events },
		{ .fd = d->exit_fd, .events = POLLIN },
		/* POLLHUP once the application closed its end */
		{ .fd = d->xfer_local_fd, .events = 0 },
	};
	nfds_t n = !peer ? 1 : d->xfer_dir == VH_VU_STATE_LOAD ? 3 : 2;
	int r;

	for (;;) {
		int ms = -1;

		if (peer) {
			int64_t left = deadline - vh_vu_now_ms();

			if (left <= 0)
				return -ETIMEDOUT;
			ms = left > INT32_MAX ? INT32_MAX : (int)left;
		}
		r = poll(p, n, ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		/* an error or hang-up shows in the read or write that follows */
		if (p[0].revents)
			return 0;
		if (n > 1 && p[1].revents)
			return -ECANCELED;
		if (n > 2 && p[2].revents)
			return -EPIPE;
	}
}

/*
 * Write len bytes to fd (non-blocking).  peer: the front-end's fd, with a
 * deadline of the timeout after each bit of progress.
 */
static int xfer_write(struct vh_daemon *d, int fd, const char *buf,
		      size_t len, bool peer)
{
	int64_t deadline = vh_vu_now_ms() + d->xfer_timeout_ms;

	while (len) {
		ssize_t n = vh_write_nosigpipe(fd, buf, len);
		int r;

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			deadline = vh_vu_now_ms() + d->xfer_timeout_ms;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		r = xfer_wait(d, fd, POLLOUT, peer, deadline);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Read what is there (up to len): bytes read, 0 at EOF, -errno. */
static ssize_t xfer_read(struct vh_daemon *d, int fd, char *buf, size_t len,
			 bool peer)
{
	int64_t deadline = vh_vu_now_ms() + d->xfer_timeout_ms;

	for (;;) {
		ssize_t n = read(fd, buf, len);
		int r;

		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		r = xfer_wait(d, fd, POLLIN, peer, deadline);
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
		if (n < 0)
			return err ? err : (int)n;
		if (err)
			continue;
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
	for (;;) {
		ssize_t n = xfer_read(d, d->xfer_peer_fd, buf, size, true);
		int r;

		if (n == 0 || n == -EPIPE)
			return 0;
		if (n < 0) {
			vh_warn(d->ctx, "device state: front-end pipe: %s\n",
				strerror((int)-n));
			return (int)n;
		}
		r = xfer_write(d, d->xfer_local_fd, buf, (size_t)n, false);
		if (r == -EPIPE)
			return 0;
		if (r < 0)
			return r;
	}
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
	close(d->xfer_peer_fd);
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

void vh_daemon_xfer_join(struct vh_daemon *d)
{
	if (!d->xfer_running)
		return;
	pthread_join(d->xfer_relay, NULL);
	pthread_join(d->xfer_app, NULL);
	close(d->xfer_local_fd);
	d->xfer_local_fd = -1;
	/* the front-end's side first: its failure is why the state is bad */
	d->xfer_result = d->xfer_relay_result < 0 ? d->xfer_relay_result :
						    d->xfer_app_result;
	d->xfer_running = false;
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
	int sv[2], fl, r;

	(void)be;
	(void)reply_fd;
	vh_daemon_xfer_join(d);
	d->xfer_result = -EINVAL;
	/* vhost-user.rst: only the STOPPED phase (0) is defined */
	if (phase != 0 || (dir != VH_VU_STATE_SAVE && dir != VH_VU_STATE_LOAD) ||
	    !(dir == VH_VU_STATE_SAVE ? d->ops.save_state : d->ops.load_state)) {
		close(fd);
		return -EINVAL;
	}
	/*
	 * "Migrating back-end state": the transfer happens while the
	 * back-end is stopped; save_state/load_state are promised that no
	 * worker owns a ring.
	 */
	if (any_ring_started(d)) {
		vh_err(d->ctx, "device state: a ring is still started\n");
		close(fd);
		d->xfer_result = -EBUSY;
		return -EBUSY;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		r = -errno;
		vh_err(d->ctx, "device state: %s\n", strerror(-r));
		close(fd);
		d->xfer_result = r;
		return r;
	}
	/* the relay's end is polled; the application's blocks */
	fl = fcntl(sv[0], F_GETFL);
	if (fl < 0 || fcntl(sv[0], F_SETFL, fl | O_NONBLOCK) < 0) {
		r = -errno;
		goto fail;
	}
	d->xfer_dir = dir;
	d->xfer_peer_fd = fd;
	d->xfer_local_fd = sv[0];
	d->xfer_app_fd = sv[1];
	d->xfer_timeout_ms = d->dev.state_timeout_ms ?
				     d->dev.state_timeout_ms :
				     VH_DAEMON_STATE_TIMEOUT_MS;
	d->xfer_relay_result = 0;
	d->xfer_app_result = -EINPROGRESS;
	r = -pthread_create(&d->xfer_relay, NULL, xfer_relay_main, d);
	if (r < 0)
		goto fail;
	r = -pthread_create(&d->xfer_app, NULL, xfer_app_main, d);
	if (r < 0) {
		/* the relay sees the local end close (EOF, POLLHUP) and stops */
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
	close(sv[0]);
	close(sv[1]);
	close(fd);
	d->xfer_peer_fd = d->xfer_local_fd = d->xfer_app_fd = -1;
	d->xfer_result = r;
	return r;
}

int vh_daemon_check_device_state(struct vh_vu_backend *be, void *data)
{
	struct vh_daemon *d = data;

	(void)be;
	vh_daemon_xfer_join(d);
	return d->xfer_result;
}
