/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vhostctl internals: output layer and command table. */
#ifndef _VHOSTCTL_H_
#define _VHOSTCTL_H_

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "libvhost.h"

/* Exit codes (documented in vhostctl(8)). */
enum {
	VHC_EXIT_OK = 0,
	VHC_EXIT_FAIL = 1,   /* an operation or a check failed */
	VHC_EXIT_USAGE = 2,  /* bad command line */
	VHC_EXIT_PERM = 3,   /* needs root (or access to the device) */
	VHC_EXIT_ABSENT = 4, /* the device, module or socket is not there */
};

/*
 * Output: every command prints through these, so that -j gives JSON with
 * stable keys and the default gives text.  The pr_* calls write JSON members
 * in JSON mode and the text format otherwise (as iproute2's print_*()).
 */
struct vhc_out {
	FILE *f;
	bool json;
	bool pretty;
	int depth;
	bool need_comma[32];
};

struct vhc {
	struct vh_ctx *ctx;
	struct vhc_out out;
	int verbose;
	const char *prog;
};

void out_open_obj(struct vhc_out *o, const char *key);
void out_close_obj(struct vhc_out *o);
void out_open_arr(struct vhc_out *o, const char *key);
void out_close_arr(struct vhc_out *o);
/* JSON member (or array element when key is NULL) and/or text with fmt. */
void out_str(struct vhc_out *o, const char *key, const char *fmt,
	     const char *val);
void out_u64(struct vhc_out *o, const char *key, const char *fmt,
	     uint64_t val);
void out_hex(struct vhc_out *o, const char *key, const char *fmt,
	     uint64_t val);
void out_bool(struct vhc_out *o, const char *key, const char *fmt, bool val);
void out_null(struct vhc_out *o, const char *key);
/* Text-only output (nothing in JSON mode). */
__attribute__((format(printf, 2, 3))) void out_text(struct vhc_out *o,
						    const char *fmt, ...);
/* Feature word: JSON {"bits": "0x..", "names": [..]}, text "0x.. (names)". */
void out_features(struct vhc_out *o, const char *key, unsigned int device_id,
		  uint64_t features);
void out_backend_features(struct vhc_out *o, const char *key,
			  uint64_t features);
void out_protocol_features(struct vhc_out *o, const char *key,
			   uint64_t features);
void out_end(struct vhc_out *o);

__attribute__((format(printf, 2, 3))) void vhc_err(const struct vhc *v,
						   const char *fmt, ...);
/* Map a -errno to one of the exit codes above. */
int vhc_exit_for(int err);

struct vhc_cmd {
	const char *name;
	int (*fn)(struct vhc *v, int argc, char **argv);
	const char *help;
};

/* Dispatch argv[0] among cmds; prints usage on -h/--help/"help". */
int vhc_dispatch(struct vhc *v, const char *what, const struct vhc_cmd *cmds,
		 int argc, char **argv, void (*usage)(FILE *f));
bool vhc_is_help(const char *arg);
/* -h or --help among a command's arguments (before any "--"), anywhere */
bool vhc_wants_help(int argc, char **argv);

int cmd_status(struct vhc *v, int argc, char **argv);
int cmd_features(struct vhc *v, int argc, char **argv);
int cmd_check(struct vhc *v, int argc, char **argv);
int cmd_vdpa(struct vhc *v, int argc, char **argv);
int cmd_user(struct vhc *v, int argc, char **argv);
/* vhostctl features SOCKET */
int user_features(struct vhc *v, const char *path);
/*
 * Connect to the vhost-user back-end at path, told on stderr when it
 * fails: -ENOENT, -ENOTSOCK (another kind of file), -ECONNREFUSED (nobody
 * listens), -ETIMEDOUT or -errno.  vhc_user_exit_for() maps them.
 */
int vhc_user_connect(struct vhc *v, const char *path, int timeout_ms,
		     struct vh_vu_frontend **fe);
int vhc_user_exit_for(int err);
/* vhostctl user check */
int user_check(struct vhc *v, int argc, char **argv);

#endif
