/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* placeholder until the guest-memory API lands */
#ifndef _LIBVHOST_MEM_H_
#define _LIBVHOST_MEM_H_
#endif
