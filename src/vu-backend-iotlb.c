// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vhost-user back-end: the IOTLB of a device behind a vIOMMU
 * (VIRTIO_F_ACCESS_PLATFORM, vhost-user.rst "IOMMU support").
 *
 * The front-end sends IOTLB_MSG updates (iova, size, its user address
 * uaddr, perm) and invalidations; the rings translate their IOVAs through
 * the IOTLB (vh_devq, devq.c) and report what is missing, which goes to
 * the front-end as a BACKEND_IOTLB_MSG miss.  An update makes every
 * handed ring look kicked, so a ring that missed pops again; a ring whose
 * miss is never answered just waits, the others go on.  A stop or a reset
 * empties the IOTLB (vu_be_iotlb_stop()), and so does a memory table
 * replaced or a region removed (vu_be_iotlb_mem_changed()).
 */
#include <errno.h>
#include <string.h>

#include "iotlb-internal.h"
#include "vu-backend-internal.h"

static void on_miss(struct vh_iotlb *tlb, void *data, uint64_t iova,
		    unsigned int perm)
{
	struct vh_vu_backend *be = data;

	if (vu_be_req_iotlb_miss(be, iova, (uint8_t)perm) < 0)
		vh_iotlb_miss_forget(tlb, iova);
}

int vu_be_iotlb_init(struct vh_vu_backend *be)
{
	int r = vh_iotlb_new(be->ctx, &be->iotlb);

	if (r < 0)
		return r;
	vh_iotlb_set_miss_fn(be->iotlb, on_miss, be);
	return 0;
}

/* Every entry and pending miss dropped, said with why. */
static void forget(struct vh_vu_backend *be, const char *why)
{
	unsigned int n = vh_iotlb_num_entries(be->iotlb);
	int r = vh_iotlb_flush(be->iotlb);

	if (r < 0)
		vh_err(be->ctx, "IOTLB: %u entries not dropped %s: %d\n", n,
		       why, r);
	else if (n)
		vh_dbg(be->ctx, "IOTLB: %u entries dropped %s\n", n, why);
}

/*
 * A ring stopped (GET_VRING_BASE) or the device was reset: forget every
 * translation, and the misses not answered.  The front-end stops passing
 * on the guest's unmaps once the device stops (QEMU's vhost_dev_stop()
 * unregisters its IOMMU notifier until the next start), so an entry from
 * before may name a page its IOVA no longer maps to when the rings start
 * again: after a driver reset or a reboot, or the firmware's pass-through
 * entries (IOVA = GPA) once the guest kernel turns translation on.  Rings
 * that run on miss and fetch again; popped elements keep their snapshot.
 */
void vu_be_iotlb_stop(struct vh_vu_backend *be)
{
	forget(be, "at the stop");
}

/*
 * The memory table was replaced, or lost a region.  An entry holds the
 * mapping its uaddr was resolved to through the table of its time, and
 * uaddr means what the current table says ("IOMMU support": the front-end's
 * user address): the front-end may have put other memory there, or none.
 * Forget every entry; the rings miss, and the front-end's answers are
 * resolved through the new table.  Popped elements keep their snapshot,
 * whose dirty-log addresses are the GPAs of their time (iotlb.c).  (A
 * region added leaves every mapping as it was: nothing to forget.)
 */
void vu_be_iotlb_mem_changed(struct vh_vu_backend *be)
{
	forget(be, "as guest memory changed");
}

static const char *type_name(uint8_t type)
{
	switch (type) {
	case VH_IOTLB_MISS:
		return "miss";
	case VH_IOTLB_UPDATE:
		return "update";
	case VH_IOTLB_INVALIDATE:
		return "invalidate";
	case VH_IOTLB_ACCESS_FAIL:
		return "access-fail";
	default:
		return "unknown";
	}
}

int vu_be_iotlb_msg(struct vh_vu_backend *be, struct vh_vu_msg *msg,
		    struct vh_vu_msg *reply)
{
	const struct vh_vu_iotlb *m = &msg->payload.iotlb;
	struct vh_mem_table *t;
	int r;

	vh_dbg(be->ctx, "IOTLB %s iova 0x%llx size 0x%llx uaddr 0x%llx perm %u\n",
	       type_name(m->type), (unsigned long long)m->iova,
	       (unsigned long long)m->size, (unsigned long long)m->uaddr,
	       m->perm);
	switch (m->type) {
	case VH_IOTLB_UPDATE:
		/*
		 * "An IOTLB message": perm RO/WO/RW, a range that does not
		 * wrap, a uaddr range inside the memory table (checked by
		 * vh_iotlb_update_uva()).
		 */
		t = vh_mem_table_get(be->mem);
		r = vh_iotlb_update_uva(be->iotlb, t, m->iova, m->size,
					m->uaddr, m->perm);
		vh_mem_table_put(t);
		if (r == 0)
			vu_be_rekick_all(be);
		break;
	case VH_IOTLB_INVALIDATE:
		/* rings pinning older snapshots move on at their next pop */
		r = vh_iotlb_invalidate(be->iotlb, m->iova, m->size);
		break;
	default:
		/* MISS and ACCESS_FAIL go the other way; others are unknown */
		vh_err(be->ctx, "IOTLB message of type %u (%s) refused\n",
		       m->type, type_name(m->type));
		r = -EINVAL;
		break;
	}
	if (r < 0)
		vh_warn(be->ctx, "IOTLB %s 0x%llx+0x%llx refused: %d\n",
			type_name(m->type), (unsigned long long)m->iova,
			(unsigned long long)m->size, r);
	/* a refused message gets a failure reply; the connection stays */
	vh_vu_msg_set_reply_u64(reply, r < 0 ? 1 : 0);
	return r < 0 ? VU_SOFT_FAIL : 0;
}
