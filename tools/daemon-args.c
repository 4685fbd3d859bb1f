// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The command line every vhost-user daemon shares (daemon-args.h): parsed
 * and printed here, in the programs, never in libvhost.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon-args.h"
#include "guest-fault.h"
#include "parse-num.h"

void daemon_args_init(struct daemon_args *a)
{
	if (!a)
		return;
	memset(a, 0, sizeof(*a));
	a->fd = -1;
}

/* Command-line numbers (parse_dec()), or LISTEN_PID (base 10 as systemd's). */
static int parse_uint(const char *s, bool cmdline, unsigned long max,
		      unsigned long *v)
{
	unsigned long long x;
	int r = cmdline ? parse_dec(s, 0, max, &x) :
			  parse_unum(s, 10, 0, max, &x);

	if (r == 0)
		*v = (unsigned long)x;
	return r;
}

int daemon_args_parse(struct daemon_args *a, int opt,
				   const char *arg)
{
	struct sockaddr_un sa;
	unsigned long v;

	if (!a)
		return -EINVAL;
	switch (opt) {
	case DAEMON_OPT_SOCKET_PATH:
		if (!arg || !*arg || strlen(arg) >= sizeof(sa.sun_path)) {
			fprintf(stderr, "--socket-path: empty or too long\n");
			return -EINVAL;
		}
		a->socket_path = arg;
		return 1;
	case DAEMON_OPT_FD:
		if (parse_uint(arg, true, INT_MAX, &v) < 0 ||
		    fcntl((int)v, F_GETFD) < 0) {
			fprintf(stderr, "--fd: not an open fd (decimal): %s\n",
				arg ? arg : "");
			return -EINVAL;
		}
		a->fd = (int)v;
		/* the conventions pass it inherited: keep it from children */
		fcntl(a->fd, F_SETFD, FD_CLOEXEC);
		return 1;
	case DAEMON_OPT_PRINT_CAPS:
		a->print_capabilities = true;
		return 1;
	case DAEMON_OPT_CLIENT:
		a->client = true;
		return 1;
	case DAEMON_OPT_THREADS:
		if (parse_uint(arg, true, VH_DAEMON_MAX_THREADS, &v) < 0 || !v) {
			fprintf(stderr, "--threads: 1..%d (decimal)\n",
				VH_DAEMON_MAX_THREADS);
			return -EINVAL;
		}
		a->threads = (unsigned int)v;
		return 1;
	case DAEMON_OPT_VERBOSE:
		a->verbose = true;
		return 1;
	case DAEMON_OPT_VDUSE:
		/* one path component under /dev/vduse/, not the control node */
		if (!arg || !*arg || strlen(arg) >= 256 || strchr(arg, '/') ||
		    !strcmp(arg, ".") || !strcmp(arg, "..") ||
		    !strcmp(arg, "control")) {
			fprintf(stderr, "--vduse: a device name (no '/')\n");
			return -EINVAL;
		}
		a->vduse = arg;
		return 1;
	case DAEMON_OPT_VDPA_ADD:
		a->vdpa_add = true;
		return 1;
	case DAEMON_OPT_NO_PACKED:
		a->no_packed = true;
		return 1;
	case DAEMON_OPT_VDUSE_STATE:
		if (!*arg) {
			fprintf(stderr, "--vduse-state: a file name\n");
			return -EINVAL;
		}
		a->vduse_state = arg;
		return 1;
	default:
		return 0;
	}
}

/*
 * systemd socket activation, sd_listen_fds(3) semantics without
 * libsystemd: LISTEN_PID names the process the LISTEN_FDS sockets from
 * fd 3 on are for (a child inherits the variables, not the right to the
 * fds).  secure_getenv: a setuid program takes no fds from its caller.
 */
#define LISTEN_FDS_START 3

static bool listen_fds_for_us(void)
{
	const char *pid = secure_getenv("LISTEN_PID");
	unsigned long v;

	return pid && secure_getenv("LISTEN_FDS") &&
	       parse_uint(pid, false, INT_MAX, &v) == 0 && (pid_t)v == getpid();
}

/* The passed socket, checked to be what --fd serves as a listening one. */
static int take_activated_fd(void)
{
	const char *n = secure_getenv("LISTEN_FDS");
	const int fd = LISTEN_FDS_START;
	bool ours = listen_fds_for_us();
	/* our units pass exactly one ListenStream= socket */
	bool one = n && !strcmp(n, "1");
	int on = 0, type = 0;
	socklen_t len = sizeof(on);
	struct sockaddr_un sa = { 0 };

	if (ours && !one)
		fprintf(stderr, "LISTEN_FDS=%s: one socket expected\n",
			n ? n : "");
	/* taken or not, they must not reach a child (sd_listen_fds(3)) */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (!ours || !one)
		return -EINVAL;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) < 0) {
		int e = errno;

		fprintf(stderr, "fd %d: %s\n", fd, strerror(e));
		return -e;
	}
	if (!on) {
		fprintf(stderr, "fd %d: not a listening socket\n", fd);
		return -EINVAL;
	}
	len = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
	    type != SOCK_STREAM) {
		fprintf(stderr, "fd %d: not a SOCK_STREAM socket\n", fd);
		return -ESOCKTNOSUPPORT;
	}
	len = sizeof(sa);
	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0 ||
	    len < sizeof(sa.sun_family) || sa.sun_family != AF_UNIX) {
		fprintf(stderr, "fd %d: not an AF_UNIX socket\n", fd);
		return -EAFNOSUPPORT;
	}
	return fd;
}

int daemon_args_check(const struct daemon_args *a)
{
	if (!a)
		return -EINVAL;
	if (a->print_capabilities)
		return 0;
	if (a->vduse_state && !a->vduse) {
		fprintf(stderr, "--vduse-state needs --vduse\n");
		return -EINVAL;
	}
	if (a->vdpa_add && !a->vduse) {
		fprintf(stderr, "--vdpa-add needs --vduse\n");
		return -EINVAL;
	}
	if (a->vduse) {
		if (a->socket_path || a->fd >= 0 || a->client) {
			fprintf(stderr,
				"--vduse excludes --socket-path, --fd and --client\n");
			return -EINVAL;
		}
		return 0;
	}
	/* neither option: daemon_args_run() takes the activation socket */
	if (!a->socket_path && a->fd < 0 && !a->client && listen_fds_for_us())
		return 0;
	if (!a->socket_path == (a->fd < 0)) {
		fprintf(stderr, "exactly one of --socket-path and --fd\n");
		return -EINVAL;
	}
	if (a->client && !a->socket_path) {
		fprintf(stderr, "--client needs --socket-path\n");
		return -EINVAL;
	}
	return 0;
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

int daemon_print_capabilities(FILE *f, const char *type,
					   const char *const *features)
{
	unsigned int i;

	if (!f || !type)
		return -EINVAL;
	fputs("{\n  \"type\": ", f);
	json_string(f, type);
	fputs(",\n  \"features\": [", f);
	for (i = 0; features && features[i]; i++) {
		fputs(i ? ",\n    " : "\n    ", f);
		json_string(f, features[i]);
	}
	fputs(i ? "\n  ]\n}\n" : "]\n}\n", f);
	/* whether it all went out is the caller's (daemon_stdout_status()) */
	return 0;
}

int daemon_stdout_status(const char *prog)
{
	int err = fflush(stdout) == EOF ? errno : 0;

	if (!err && !ferror(stdout))
		return 0;
	fprintf(stderr, "%s: cannot write to standard output%s%s\n", prog,
		err ? ": " : "", err ? strerror(err) : "");
	return 1;
}

int daemon_args_run(struct vh_daemon *d, const struct daemon_args *a)
{
	int fd, r;

	if (!a)
		return -EINVAL;
	if (a->vduse_state) {
		r = vh_daemon_set_vduse_state(d, a->vduse_state);
		if (r < 0)
			return r;
	}
	if (a->vduse)
		return vh_daemon_run(d, a->vduse, -1, VH_DAEMON_RUN_VDUSE |
				     (a->vdpa_add ? VH_DAEMON_RUN_VDPA_ADD : 0));
	/* a front-end shrinking guest memory is dropped, not fatal */
	r = guest_fault_guard(d);
	if (r < 0)
		return r;
	if (!a->socket_path && a->fd < 0) {
		fd = take_activated_fd();
		r = fd < 0 ? fd : vh_daemon_run(d, NULL, fd, 0);
	} else {
		r = vh_daemon_run(d, a->fd >= 0 ? NULL : a->socket_path, a->fd,
				  a->client ? VH_DAEMON_RUN_CLIENT : 0);
	}
	guest_fault_unguard();
	return r;
}
