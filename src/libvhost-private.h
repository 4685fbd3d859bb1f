/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Hooks for vhostctl and the tests only: exported in the LIBVHOST_PRIVATE
 * version node, never installed, no compatibility promise (HACKING,
 * "Private symbols").  Applications must not use them.
 */
#ifndef _LIBVHOST_PRIVATE_H_
#define _LIBVHOST_PRIVATE_H_

#include "libvhost.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Conformance testing: send msg exactly as given (fds not consumed; no
 * gate, flag or size checks beyond what the wire can carry).  If reply is
 * not NULL, wait up to the timeout for the next message and return it
 * unchecked (its fds are the caller's).  -ETIMEDOUT if none came.
 */
int vh_vu_frontend_send_raw(struct vh_vu_frontend *fe,
			    const struct vh_vu_msg *msg,
			    struct vh_vu_msg *reply);

#ifdef __cplusplus
}
#endif

#endif
