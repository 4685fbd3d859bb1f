/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* placeholder until the virtqueue API lands */
#ifndef _LIBVHOST_VRING_H_
#define _LIBVHOST_VRING_H_
#endif
