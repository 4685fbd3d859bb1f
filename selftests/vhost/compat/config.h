/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What configure puts in config.h for libvhost, for the selftests' own
 * build of the library copy in ../libvhost/ (see the Makefile's header).
 */
#ifndef _VH_COMPAT_CONFIG_H_
#define _VH_COMPAT_CONFIG_H_

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
/* vDPA management over netlink, through compat/libmnl/libmnl.h */
#define HAVE_LIBMNL 1
/* no HAVE_LIBNL: tap link state through SIOCSIFFLAGS/SIOCSIFMTU */
/* PACKAGE_VERSION comes from ../libvhost/VERSION (the Makefile) */

#endif
