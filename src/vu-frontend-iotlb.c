// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vhost-user front-end with a (virtual) IOMMU: VIRTIO_F_ACCESS_PLATFORM
 * negotiated, ring and buffer addresses are IOVAs the back-end translates
 * through IOTLB_MSG updates (vhost-user.rst "IOMMU support").  The
 * application owns the IOMMU: it sends updates and invalidations with
 * these helpers and answers the back-end's misses (BACKEND_IOTLB_MSG, the
 * iotlb callback of struct vh_vu_frontend_ops) with updates.
 */
#include <errno.h>
#include <string.h>

#include "libvhost-internal.h"
#include "libvhost-vring.h"
#include "libvhost-vu.h"
#include "vu-frontend-internal.h"

static bool perm_ok(uint8_t perm)
{
	return perm >= VH_ACCESS_RO && perm <= VH_ACCESS_RW;
}

VH_EXPORT int vh_vu_frontend_iotlb_update(struct vh_vu_frontend *fe,
					  uint64_t iova, uint64_t size,
					  uint64_t uaddr, uint8_t perm)
{
	struct vh_vu_iotlb m = {
		.iova = iova,
		.size = size,
		.uaddr = uaddr,
		.perm = perm,
		.type = VH_IOTLB_UPDATE,
	};

	/* what a back-end would refuse anyway: say so without asking */
	if (!fe || !size || size - 1 > UINT64_MAX - iova ||
	    size - 1 > UINT64_MAX - uaddr || !perm_ok(perm))
		return -EINVAL;
	return vh_vu_frontend_iotlb_msg(fe, &m);
}

VH_EXPORT int vh_vu_frontend_iotlb_invalidate(struct vh_vu_frontend *fe,
					      uint64_t iova, uint64_t size)
{
	struct vh_vu_iotlb m = {
		.iova = iova,
		.size = size,
		.type = VH_IOTLB_INVALIDATE,
	};

	/* size 0: to the end of the address space (QEMU's whole range) */
	if (!fe || (size && size - 1 > UINT64_MAX - iova))
		return -EINVAL;
	return vh_vu_frontend_iotlb_msg(fe, &m);
}

static int setup_vq_iova(struct vh_vu_frontend *fe, unsigned int idx,
			 struct vh_drvq *vq, int kick_fd, int call_fd,
			 uint64_t desc_iova, uint64_t avail_iova,
			 uint64_t used_iova)
{
	uint64_t features = vh_vu_frontend_features(fe);
	struct vh_vu_vring_addr a;
	int r;

	r = vh_vu_frontend_set_vring_num(fe, idx, vh_drvq_get_num(vq));
	if (r < 0)
		return r;
	r = vh_vu_frontend_set_vring_base(fe, idx, vu_fe_fresh_base(fe));
	if (r < 0)
		return r;
	memset(&a, 0, sizeof(a));
	a.index = idx;
	a.desc = desc_iova;
	a.avail = avail_iova;
	a.used = used_iova;
	r = vu_fe_vring_log(fe, vq, &a);
	if (r < 0)
		return r;
	/*
	 * log_guest_addr as QEMU sends it under a vIOMMU: the used ring's
	 * address as the driver wrote it, an IOVA, which DPDK translates
	 * and our back-end and the kernel's vhost do without
	 */
	if (a.flags & VH_VRING_F_LOG)
		a.log = used_iova;
	r = vh_vu_frontend_set_vring_addr(fe, &a);
	if (r < 0)
		return r;
	r = vh_vu_frontend_set_vring_call(fe, idx, call_fd);
	if (r < 0)
		return r;
	r = vh_vu_frontend_set_vring_kick(fe, idx, kick_fd);
	if (r < 0)
		return r;
	if (features & (1ull << VH_VU_F_PROTOCOL_FEATURES))
		r = vh_vu_frontend_set_vring_enable(fe, idx, true);
	return r;
}

VH_EXPORT int vh_vu_frontend_setup_vq_iova(struct vh_vu_frontend *fe,
					   unsigned int idx,
					   struct vh_drvq *vq, int kick_fd,
					   int call_fd, uint64_t desc_iova,
					   uint64_t avail_iova,
					   uint64_t used_iova)
{
	int64_t outer;
	int r;

	if (!fe || !vq || idx > VH_VU_VRING_IDX_MASK)
		return -EINVAL;
	/* IOVAs in SET_VRING_ADDR mean nothing without the feature */
	if (!(vh_vu_frontend_features(fe) &
	      (1ull << VH_VU_VIRTIO_F_ACCESS_PLATFORM)))
		return -EOPNOTSUPP;
	outer = vu_fe_calls_begin(fe);
	r = setup_vq_iova(fe, idx, vq, kick_fd, call_fd, desc_iova,
			  avail_iova, used_iova);
	vu_fe_calls_end(fe, outer);
	return r;
}
