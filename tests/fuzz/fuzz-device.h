/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The device both vhost-user back-end fuzz targets serve (fuzz-vu-backend
 * over a socket, fuzz-vu-backend-msg in memory): it pops what a kick
 * offers, reads and writes at most 64 bytes of each buffer, pushes it
 * back, and answers every device callback, so that the fuzzed front-end
 * reaches each message's device half.
 */
#ifndef _FUZZ_DEVICE_H_
#define _FUZZ_DEVICE_H_

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "libvhost.h"

#define NQ 4

static void pop_all(struct vh_devq *vr)
{
	struct iovec iov[64];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 64 };
	uint8_t sink[64];
	int n = 0;

	while (n++ < 256 && vh_devq_pop(vr, &e) == 1) {
		unsigned int i;
		uint32_t w = 0;

		for (i = 0; i < e.out_num; i++)
			if (iov[i].iov_len)
				memcpy(sink, iov[i].iov_base,
				       iov[i].iov_len < 64 ? iov[i].iov_len :
							     64);
		for (i = e.out_num; i < e.out_num + e.in_num; i++) {
			size_t k = iov[i].iov_len < 64 ? iov[i].iov_len : 64;

			memset(iov[i].iov_base, 0xa5, k);
			w += (uint32_t)k;
		}
		vh_devq_push(vr, e.id, w);
	}
}

static void kicked(struct vh_vu_backend *be, void *data, unsigned int idx,
		   struct vh_devq *vr)
{
	pop_all(vr);
	/*
	 * An in-band VRING_CALL waits (5 s) for an ack the fuzzed front-end
	 * never sends: signal the call fd directly then.
	 */
	if (vh_vu_backend_get_protocol_features(be) &
	    (1ull << VH_VU_PROTOCOL_F_INBAND_NOTIFICATIONS))
		vh_devq_notify(vr);
	else
		vh_vu_backend_notify(be, idx);
}

static int get_config(struct vh_vu_backend *be, void *data, uint32_t off,
		      void *buf, uint32_t size)
{
	memset(buf, 0x11, size);
	return 0;
}

static int set_config(struct vh_vu_backend *be, void *data, uint32_t off,
		      const void *buf, uint32_t size, uint32_t flags)
{
	return flags ? 0 : -EPERM;
}

static int mtu(struct vh_vu_backend *be, void *data, uint16_t m)
{
	return m > 9000 ? -EINVAL : 0;
}

static int rarp(struct vh_vu_backend *be, void *data, const uint8_t mac[6])
{
	return 0;
}

static int state_fd(struct vh_vu_backend *be, void *data,
		    enum vh_vu_state_direction dir, uint32_t phase, int fd,
		    int *reply_fd)
{
	close(fd);
	if (dir == VH_VU_STATE_SAVE) {
		/* a pipe's read end goes back, as a device saving its state */
		int p[2];

		if (pipe2(p, O_CLOEXEC) == 0) {
			close(p[1]);
			*reply_fd = p[0];
		}
		return 0;
	}
	return -EINVAL;
}

static int check_state(struct vh_vu_backend *be, void *data)
{
	return 0;
}

static int shared(struct vh_vu_backend *be, void *data, const uint8_t uuid[16],
		  int *fd)
{
	if (uuid[0] & 1)
		return -ENOENT;
	*fd = eventfd(0, EFD_CLOEXEC);
	return *fd < 0 ? -errno : 0;
}

static const struct vh_vu_device_ops ops = {
	.size = sizeof(ops),
	.get_config = get_config,
	.set_config = set_config,
	.queue_kicked = kicked,
	.net_set_mtu = mtu,
	.send_rarp = rarp,
	.set_device_state_fd = state_fd,
	.check_device_state = check_state,
	.get_shared_object = shared,
};

static const struct vh_vu_device dev = {
	.size = sizeof(dev),
	/* VERSION_1, EVENT_IDX, INDIRECT_DESC, LOG_ALL, ACCESS_PLATFORM */
	.features = (1ull << 32) | (1ull << 29) | (1ull << 28) | (1ull << 26) |
		    (1ull << 33),
	.protocol_features = 0xfffff,
	.num_queues = NQ,
	.max_queue_size = 1024,
	.max_mem_slots = 16,
	.config_size = 64,
};

#endif /* _FUZZ_DEVICE_H_ */
