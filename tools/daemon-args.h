/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The command line every vhost-user daemon shares (vhost-user.rst "Backend
 * program conventions"): --socket-path, --fd, --print-capabilities, and
 * --client, --threads, --verbose.  A helper of the programs in tools/, not
 * part of libvhost.  Use with getopt_long():
 *
 *	static const struct option opts[] = {
 *		DAEMON_LONG_OPTIONS,
 *		{ "my-option", required_argument, NULL, 'm' },
 *		{ 0 }
 *	};
 *	...
 *	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
 *		r = daemon_args_parse(&args, c, optarg);
 *		if (r > 0)
 *			continue;     // one of ours
 *		if (r < 0)
 *			...           // bad value, message printed
 *		switch (c) { ... your options ... }
 *	}
 *	r = daemon_args_check(&args);  // exactly one of --socket-path/--fd
 *
 * Option values the common options use (avoid them as your short options):
 * 0x1000 and up.
 */
#ifndef _DAEMON_ARGS_H_
#define _DAEMON_ARGS_H_

#include <stdbool.h>
#include <stdio.h>

#include "libvhost.h"

enum {
	DAEMON_OPT_SOCKET_PATH = 0x1000,
	DAEMON_OPT_FD,
	DAEMON_OPT_PRINT_CAPS,
	DAEMON_OPT_CLIENT,
	DAEMON_OPT_THREADS,
	DAEMON_OPT_VERBOSE,
	DAEMON_OPT_VDUSE,
	DAEMON_OPT_VDPA_ADD,
	DAEMON_OPT_NO_PACKED,
	DAEMON_OPT_VDUSE_STATE,
};

#define DAEMON_LONG_OPTIONS                                                   \
	{ "socket-path", 1, NULL, DAEMON_OPT_SOCKET_PATH },                   \
	{ "fd", 1, NULL, DAEMON_OPT_FD },                                     \
	{ "print-capabilities", 0, NULL, DAEMON_OPT_PRINT_CAPS },             \
	{ "client", 0, NULL, DAEMON_OPT_CLIENT },                             \
	{ "threads", 1, NULL, DAEMON_OPT_THREADS },                           \
	{ "verbose", 0, NULL, DAEMON_OPT_VERBOSE }

/*
 * --vduse=NAME: serve as the VDUSE device NAME (vh_daemon_start_vduse())
 * instead of a vhost-user socket; only for daemons whose device supports
 * it (add this to the option table and DAEMON_VDUSE_HELP to the help).
 * --no-packed comes with it: the daemons that have a VDUSE device are
 * those that offer packed rings, on either transport.
 */
#define DAEMON_VDUSE_OPTION                                                   \
	{ "vduse", 1, NULL, DAEMON_OPT_VDUSE },                               \
	{ "vdpa-add", 0, NULL, DAEMON_OPT_VDPA_ADD },                         \
	{ "no-packed", 0, NULL, DAEMON_OPT_NO_PACKED },                       \
	{ "vduse-state", 1, NULL, DAEMON_OPT_VDUSE_STATE }
#define DAEMON_VDUSE_HELP                                                     \
	"  --vduse=NAME            be the VDUSE device /dev/vduse/NAME\n"     \
	"                          (then: vdpa dev add name NAME mgmtdev\n"   \
	"                          vduse) instead of a vhost-user back-end\n" \
	"  --vdpa-add              with --vduse: add the vdpa device NAME\n"  \
	"                          and delete it before stopping\n"           \
	"  --no-packed             offer split rings only (no\n"              \
	"                          VIRTIO_F_RING_PACKED), on either\n"        \
	"                          transport\n"
/* --vduse-state, for a daemon that keeps inflight state (vhost-user-blk) */
#define DAEMON_VDUSE_STATE_HELP                                               \
	"  --vduse-state=PATH      with --vduse: keep the device's state in\n" \
	"                          PATH (a tmpfs such as /run advised): a\n" \
	"                          daemon started again after a crash\n"    \
	"                          takes the device over\n"

/* Help text for the common options (one option per line, indented). */
#define DAEMON_OPTIONS_HELP                                                   \
	"  --socket-path=PATH      listen on (or with --client connect to)\n" \
	"                          the vhost-user socket PATH\n"              \
	"  --fd=FD                 serve the inherited socket FD\n"           \
	"                          (neither: the systemd-activated socket)\n" \
	"  --client                connect to PATH instead of listening\n"    \
	"  --threads=N             worker threads, 1..64 (default: one per\n" \
	"                          queue, or queue pair, up to 64)\n"        \
	"  --print-capabilities    print the capabilities (JSON) and exit\n"  \
	"  --verbose               log debugging messages\n"

struct daemon_args {
	const char *socket_path; /* NULL unless --socket-path */
	int fd;                  /* -1 unless --fd */
	bool client;
	bool print_capabilities;
	bool verbose;
	unsigned int threads;    /* 0 unless --threads */
	const char *vduse;       /* NULL unless --vduse */
	bool vdpa_add;           /* --vdpa-add */
	bool no_packed;          /* --no-packed: clear VIRTIO_F_RING_PACKED */
	const char *vduse_state; /* NULL unless --vduse-state */
};

void daemon_args_init(struct daemon_args *a);
/*
 * Handle one getopt_long() result: 1 if it was a common option, 0 if not
 * (yours), -EINVAL for a bad value (a message went to stderr).
 */
int daemon_args_parse(struct daemon_args *a, int opt, const char *arg);
/*
 * 0, or -EINVAL (message on stderr) unless exactly one of path / fd /
 * --vduse, or
 * neither while LISTEN_PID/LISTEN_FDS pass this process a socket (systemd
 * socket activation, see daemon_args_run()).
 */
int daemon_args_check(const struct daemon_args *a);
/*
 * Print {"type": "TYPE", "features": [ ... ]} (features: NULL-terminated,
 * may be NULL) as --print-capabilities wants; -EINVAL without f or type.
 * Write errors stay in f (daemon_stdout_status() for stdout).
 */
int daemon_print_capabilities(FILE *f, const char *type,
			      const char *const *features);
/*
 * After printing to stdout (--help, --print-capabilities): 0 if all of it was written, else 1
 * (the exit status) with a message naming prog on stderr (a full disk, a
 * closed pipe).
 */
int daemon_stdout_status(const char *prog);
/*
 * vh_daemon_run() as the arguments say.  With neither a path nor an fd it
 * serves the listening AF_UNIX stream socket systemd passes as fd 3
 * (sd_listen_fds(3): LISTEN_PID must be this process, LISTEN_FDS 1) as
 * --fd would, and unsets LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES.
 */
int daemon_args_run(struct vh_daemon *d, const struct daemon_args *a);

#endif
