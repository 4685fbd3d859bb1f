/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A daemon's SIGBUS handler for guest memory a front-end shrank under its
 * mapping (see guest-fault.c).  A helper of the programs in tools/, not
 * part of libvhost.
 */
#ifndef _GUEST_FAULT_H_
#define _GUEST_FAULT_H_

#include "libvhost.h"

/*
 * Install the handler for d (one daemon per process): until
 * guest_fault_unguard(), an access past the end of a guest memory file
 * reads zeros and drops d's front-end.  0 or -errno.
 */
int guest_fault_guard(struct vh_daemon *d);
/* The SIGBUS disposition from before guest_fault_guard(). */
void guest_fault_unguard(void);

#endif
