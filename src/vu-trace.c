// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vhost-user protocol trace: one log line per control message, front-end
 * channel and back-end request channel, with its payload decoded.
 *
 * Compiled into every build (unlike vh_dbg()) and logged at LOG_DEBUG, so
 * an administrator gets it from a packaged binary with LIBVHOST_LOG=debug
 * or a daemon's --verbose.  Only control messages pass here, never the
 * datapath: the cost when the priority is lower is one compare.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "vu-msg.h"
#include "vu-trace.h"

struct buf {
	char *p;
	size_t size, len;
};

__attribute__((format(printf, 2, 3))) static void put(struct buf *b,
						      const char *fmt, ...);

static void put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->len >= b->size)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->size - b->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		b->len += (size_t)n;
	if (b->len >= b->size)
		b->len = b->size - 1;
}

static void put_region(struct buf *b, const struct vh_vu_mem_region *r)
{
	put(b, " {gpa 0x%" PRIx64 " size 0x%" PRIx64 " uva 0x%" PRIx64
	       " off 0x%" PRIx64 "}",
	    r->guest_addr, r->size, r->user_addr, r->mmap_offset);
}

/* Requests whose payload is a vring state (index, num). */
static bool is_state(uint32_t req)
{
	switch (req) {
	case VH_VU_SET_VRING_NUM:
	case VH_VU_SET_VRING_BASE:
	case VH_VU_GET_VRING_BASE:
	case VH_VU_SET_VRING_ENABLE:
	case VH_VU_SET_VRING_ENDIAN:
	case VH_VU_VRING_KICK:
		return true;
	default:
		return false;
	}
}

/* Front-end requests (and their replies) with a u64 vring file payload. */
static bool is_vring_file(uint32_t req)
{
	return req == VH_VU_SET_VRING_KICK || req == VH_VU_SET_VRING_CALL ||
	       req == VH_VU_SET_VRING_ERR;
}

/*
 * Decode what the payload holds, only as far as hdr.size covers it (a
 * hostile or short message is traced before it is checked).
 */
static void decode(struct buf *b, bool backend_channel,
		   const struct vh_vu_msg *m)
{
	const union vh_vu_payload *p = &m->payload;
	uint32_t req = m->hdr.request, size = m->hdr.size, i, n;
	bool reply = m->hdr.flags & VH_VU_FLAG_REPLY;

	if (size == 0)
		return;
	if (backend_channel) {
		if (req == VH_VU_BACKEND_VRING_HOST_NOTIFIER_MSG &&
		    size >= sizeof(p->area))
			put(b, ": index %u%s size 0x%" PRIx64 " off 0x%" PRIx64,
			    (unsigned int)(p->area.u64 & 0xff),
			    p->area.u64 & 0x100 ? " nofd" : "", p->area.size,
			    p->area.offset);
		else if ((req == VH_VU_BACKEND_VRING_CALL ||
			  req == VH_VU_BACKEND_VRING_ERR) &&
			 size >= sizeof(p->state))
			put(b, ": index %u", p->state.index);
		else if (size == 8)
			put(b, ": 0x%" PRIx64, p->u64);
		return;
	}
	if (is_state(req) && size == sizeof(p->state)) {
		put(b, ": index %u num %u", p->state.index, p->state.num);
		return;
	}
	switch (req) {
	case VH_VU_SET_VRING_ADDR:
		if (size < sizeof(p->addr))
			break;
		put(b, ": index %u flags 0x%x desc 0x%" PRIx64 " used 0x%" PRIx64
		       " avail 0x%" PRIx64 " log 0x%" PRIx64,
		    p->addr.index, p->addr.flags, p->addr.desc, p->addr.used,
		    p->addr.avail, p->addr.log);
		return;
	case VH_VU_SET_MEM_TABLE:
		if (size < 8)
			break;
		n = p->mem.nregions;
		put(b, ": %u regions", n);
		for (i = 0; i < n && i < VH_VU_MAX_MEM_REGIONS &&
			    8 + 32 * (i + 1) <= size;
		     i++)
			put_region(b, &p->mem.regions[i]);
		return;
	case VH_VU_ADD_MEM_REG:
	case VH_VU_REM_MEM_REG:
		if (size < sizeof(p->mem_reg))
			break;
		put(b, ":");
		put_region(b, &p->mem_reg.region);
		return;
	case VH_VU_SET_LOG_BASE:
		if (size >= sizeof(p->log) && !reply) {
			put(b, ": size 0x%" PRIx64 " offset 0x%" PRIx64
			       " (covers %" PRIu64 " MiB of guest memory)",
			    p->log.size, p->log.offset,
			    p->log.size * 8 * 4096 >> 20);
			return;
		}
		break;
	case VH_VU_GET_CONFIG:
	case VH_VU_SET_CONFIG:
		if (size < VH_VU_CONFIG_HDR_SIZE)
			break;
		put(b, ": offset %u size %u flags 0x%x", p->config.offset,
		    p->config.size, p->config.flags);
		n = size - VH_VU_CONFIG_HDR_SIZE;
		if (n > p->config.size)
			n = p->config.size;
		if (n > 0) {
			put(b, " data");
			for (i = 0; i < n && i < 16; i++)
				put(b, " %02x", p->config.region[i]);
			if (n > 16)
				put(b, " ...");
		}
		return;
	case VH_VU_GET_INFLIGHT_FD:
	case VH_VU_SET_INFLIGHT_FD:
		if (size < sizeof(p->inflight))
			break;
		put(b, ": mmap size 0x%" PRIx64 " offset 0x%" PRIx64
		       " queues %u queue size %u",
		    p->inflight.mmap_size, p->inflight.mmap_offset,
		    p->inflight.num_queues, p->inflight.queue_size);
		return;
	case VH_VU_IOTLB_MSG:
		if (size < sizeof(p->iotlb))
			break;
		put(b, ": type %u iova 0x%" PRIx64 " size 0x%" PRIx64
		       " uaddr 0x%" PRIx64 " perm %u",
		    p->iotlb.type, p->iotlb.iova, p->iotlb.size,
		    p->iotlb.uaddr, p->iotlb.perm);
		return;
	case VH_VU_SET_DEVICE_STATE_FD:
		if (size >= sizeof(p->device_state) && !reply) {
			put(b, ": %s phase %u",
			    p->device_state.direction == VH_VU_TRANSFER_SAVE ?
				    "save" :
			    p->device_state.direction == VH_VU_TRANSFER_LOAD ?
				    "load" :
				    "direction ?",
			    p->device_state.phase);
			return;
		}
		break;
	case VH_VU_SEND_RARP:
		if (size < 6)
			break;
		put(b, ": mac %02x:%02x:%02x:%02x:%02x:%02x", p->raw[0],
		    p->raw[1], p->raw[2], p->raw[3], p->raw[4], p->raw[5]);
		return;
	default:
		break;
	}
	if (size == 8 && is_vring_file(req) && !reply) {
		put(b, ": index %u%s", (unsigned int)(p->u64 & 0xff),
		    p->u64 & 0x100 ? " nofd" : "");
		return;
	}
	if (size == 8) {
		/* features, protocol features, status, counts, acks */
		put(b, ": 0x%" PRIx64, p->u64);
		return;
	}
	put(b, ": %u bytes", size);
}

void vh_vu_trace_msg(struct vh_ctx *ctx, const char *dir, bool backend_channel,
		     const struct vh_vu_msg *msg)
{
	const struct vh_vu_msg_rule *rule =
		vh_vu_msg_rule(backend_channel, msg->hdr.request);
	/* vh_vu_msg_name() says "UNKNOWN": an unknown one gets its number */
	const char *name = rule ? rule->name : NULL;
	char line[1024];
	struct buf b = { line, sizeof(line), 0 };
	unsigned int i;

	put(&b, "%s %s%s%s", dir, name ? name : "request",
	    msg->hdr.flags & VH_VU_FLAG_REPLY ? " reply" : "",
	    msg->hdr.flags & VH_VU_FLAG_NEED_REPLY ? " (need reply)" : "");
	if (!name)
		put(&b, " %u", msg->hdr.request);
	decode(&b, backend_channel, msg);
	if (msg->nfds) {
		put(&b, " [fds");
		for (i = 0; i < msg->nfds && i < VH_VU_MAX_FDS; i++)
			put(&b, " %d", msg->fds[i]);
		put(&b, "]");
	}
	vh_log(ctx, LOG_DEBUG, __FILE__, __LINE__, "vhost-user", "%s\n", line);
}
