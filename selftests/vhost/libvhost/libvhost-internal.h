/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to libvhost: never installed. */
#ifndef _LIBVHOST_INTERNAL_H_
#define _LIBVHOST_INTERNAL_H_

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <syslog.h>
#include <sys/types.h>

#include "libvhost.h"

/* Only symbols marked VH_EXPORT (and listed in libvhost.sym) are public. */
#define VH_EXPORT __attribute__((visibility("default")))

#define vh_likely(x) __builtin_expect(!!(x), 1)
#define vh_unlikely(x) __builtin_expect(!!(x), 0)
#define VH_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define vh_container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Bytes up to the end of member m: the size of a struct as first released. */
#define VH_SIZEOF_UNTIL(type, m) (offsetof(type, m) + sizeof(((type *)0)->m))

/*
 * Copy an application-filled struct that starts with its size_t size
 * (HACKING, "Extensible structs"; as the kernel's copy_struct_from_user):
 * src's size below min_size (the first released layout) is -EINVAL; a size
 * above ours (dst_size) is accepted only if the tail we do not know is all
 * zero, else -E2BIG.  min(size, dst_size) bytes are copied, the rest of dst
 * is zeroed and dst's size becomes dst_size.
 */
static inline int vh_copy_struct(void *dst, size_t dst_size, size_t min_size,
				 const void *src)
{
	const unsigned char *tail = (const unsigned char *)src + dst_size;
	size_t size, i;

	memcpy(&size, src, sizeof(size));
	if (size < min_size || min_size < sizeof(size))
		return -EINVAL;
	for (i = 0; size > dst_size && i < size - dst_size; i++)
		if (tail[i])
			return -E2BIG;
	memset(dst, 0, dst_size);
	memcpy(dst, src, size < dst_size ? size : dst_size);
	memcpy(dst, &dst_size, sizeof(dst_size));
	return 0;
}

static inline bool vh_is_pow2(uint64_t n)
{
	return n && !(n & (n - 1));
}

/* Close an fd, keeping errno intact; used on error paths. */
void vh_close_keep_errno(int fd);

/*
 * Close an fd a peer handed us (SCM_RIGHTS).  An inet socket's SO_LINGER,
 * which its owner set, would make the last close() wait up to the linger
 * time for unsent data: lingering is turned off first.  (Not a socket:
 * setsockopt() fails at once.  A FUSE file's close still waits for its
 * server's FLUSH.)
 */
void vh_close_peer_fd(int fd);

/*
 * 0 if fd is an anonymous inode of that name ("eventfd" for
 * anon_inode:[eventfd]), -EBADF if it is anything else, -errno if fstat
 * fails.  Without /proc the file type alone says it is anonymous.
 */
int vh_fd_check_anon(int fd, const char *name);

/*
 * Signal an eventfd a peer holds a copy of (a call, kick or error fd):
 * 1 written, 0 not needed (its counter is full: a signal is pending
 * already), -errno.  O_NONBLOCK is a flag of the file the peer shares
 * and can clear: a write to a full counter would then wait until the
 * peer reads, for ever if it never does, holding whatever lock the
 * caller holds.  So the write is made only when poll() says it will not
 * wait.  A peer that fills the counter in the system call between the
 * two can still make it wait; a library has no signal of its own to
 * interrupt it with.
 */
int vh_eventfd_signal(int fd);
/*
 * Take what an eventfd a peer holds too has counted, never waiting:
 * 1 taken, 0 nothing there, -errno.  A read with RWF_NOWAIT returns
 * EAGAIN on an empty counter whatever O_NONBLOCK the peer left on the
 * shared file (eventfd reads honour it since Linux 5.12); before that,
 * poll() then read(), with the window between the two.
 */
int vh_eventfd_take(int fd);

/*
 * write() to an fd that may be a pipe (no MSG_NOSIGNAL): a pipe whose
 * reader went away raises SIGPIPE, whose default action ends the process.
 * It is blocked in this thread for the call, and one it raised is taken
 * back, so the caller sees EPIPE; the process's disposition and a SIGPIPE
 * already pending are left alone.
 */
ssize_t vh_write_nosigpipe(int fd, const void *buf, size_t len);

/*
 * I/O that never waits on an fd a peer sent and keeps a copy of (the
 * back-end channel, the device state pipe), for a caller that waits on fd
 * with poll() and a deadline.  O_NONBLOCK is a flag of the open file
 * description, which the peer shares through its copy and can clear
 * again: a read of an empty pipe, or a write to a full one, would then
 * wait in the kernel for ever.  So a socket is sent to and received from
 * with MSG_DONTWAIT (MSG_NOSIGNAL); a pipe or FIFO is opened again through
 * /proc/self/fd for a non-blocking description of our own, or, where that
 * fails (another user's pipe, a FIFO's write end without a reader, no
 * /proc), used as it is through a pipe of our own with splice(), which
 * never waits whatever the peer's flags; anything else (a character
 * device) is made non-blocking as it is, which its peer can undo.
 * Writes never raise SIGPIPE (EPIPE instead).  The zero struct is no
 * splice pipe (vh_peer_io_close() leaves nothing open).
 */
enum vh_peer_io_kind {
	VH_PEER_IO_PLAIN = 0, /* read(), write(): our own or no better */
	VH_PEER_IO_SOCK, /* recv(), send() with MSG_DONTWAIT */
	VH_PEER_IO_SPLICE, /* a pipe not ours to open: through pipe[] */
};

struct vh_peer_io {
	enum vh_peer_io_kind kind;
	int pipe[2]; /* VH_PEER_IO_SPLICE: ours (O_NONBLOCK) */
	size_t pending; /* bytes of the caller's next write in it */
};

/*
 * Set io up for fd, which it may replace: the fd to use (fd, or a new one
 * and fd closed), or -errno (fstat() or F_GETFL failing, an O_PATH handle
 * of a FIFO, no pipe of our own: fd left open, io holding nothing).
 * Taking the fallback is logged (info) naming what.
 */
int vh_peer_io_open(struct vh_ctx *ctx, struct vh_peer_io *io, int fd,
		    const char *what);
/* Close fd (if >= 0) and what io holds. */
void vh_peer_io_close(struct vh_peer_io *io, int fd);
/*
 * One step, never waiting: bytes of buf written to / read from fd (read:
 * 0 at EOF), or -errno; -EAGAIN: poll fd for POLLOUT / POLLIN and call
 * again.  After a write that took less than len (or -EAGAIN), the next
 * write must be of the rest of the same bytes (some may wait in io's
 * pipe); once a write failed otherwise, or is given up (a deadline), the
 * stream is out of step: close it.
 */
ssize_t vh_peer_io_write(struct vh_peer_io *io, int fd, const void *buf,
			 size_t len);
ssize_t vh_peer_io_read(struct vh_peer_io *io, int fd, void *buf, size_t len);

/* errno is the same after it: callers log, then return -errno */
__attribute__((format(printf, 6, 7))) void
vh_log(const struct vh_ctx *ctx, int priority, const char *file, int line,
       const char *fn, const char *format, ...);

/* The priority check is inline so a disabled message costs one compare. */
#define vh_log_cond(ctx, prio, ...)                                           \
	do {                                                                  \
		if (vh_unlikely(vh_ctx_get_log_priority(ctx) >= (prio)))      \
			vh_log(ctx, prio, __FILE__, __LINE__, __func__,       \
			       __VA_ARGS__);                                  \
	} while (0)

#ifdef ENABLE_DEBUG
#define vh_dbg(ctx, ...) vh_log_cond(ctx, LOG_DEBUG, __VA_ARGS__)
#else
#define vh_dbg(ctx, ...)                                                      \
	do {                                                                  \
		if (0)                                                        \
			vh_log(ctx, LOG_DEBUG, __FILE__, __LINE__, __func__,  \
			       __VA_ARGS__);                                  \
	} while (0)
#endif
#define vh_info(ctx, ...) vh_log_cond(ctx, LOG_INFO, __VA_ARGS__)
#define vh_notice(ctx, ...) vh_log_cond(ctx, LOG_NOTICE, __VA_ARGS__)
#define vh_warn(ctx, ...) vh_log_cond(ctx, LOG_WARNING, __VA_ARGS__)
#define vh_err(ctx, ...) vh_log_cond(ctx, LOG_ERR, __VA_ARGS__)

#endif
