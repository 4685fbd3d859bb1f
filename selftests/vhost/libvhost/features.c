// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Names of virtio feature bits, vhost backend feature bits and vhost-user
 * protocol feature bits, for logs and for vhostctl.
 *
 * Names are the spec's without the VIRTIO_<DEV>_F_ prefix ("MRG_RXBUF",
 * "VERSION_1"), so that a feature list stays readable on one line.
 */
#include <stdio.h>
#include <string.h>

#include "libvhost-internal.h"
#include "libvhost-kernel.h"

struct bit_name {
	unsigned int bit;
	const char *name;
};

/*
 * Device-independent bits (virtio 1.3, 6 "Reserved Feature Bits") plus the
 * two the vhost family gives to bits the virtio spec leaves unused there:
 * VHOST_F_LOG_ALL (26) and VHOST_USER_F_PROTOCOL_FEATURES (30).
 */
static const struct bit_name transport_bits[] = {
	{ 24, "NOTIFY_ON_EMPTY" },
	{ 26, "LOG_ALL" },
	{ 27, "ANY_LAYOUT" },
	{ 28, "INDIRECT_DESC" },
	{ 29, "EVENT_IDX" },
	{ 30, "PROTOCOL_FEATURES" },
	{ 32, "VERSION_1" },
	{ 33, "ACCESS_PLATFORM" },
	{ 34, "RING_PACKED" },
	{ 35, "IN_ORDER" },
	{ 36, "ORDER_PLATFORM" },
	{ 37, "SR_IOV" },
	{ 38, "NOTIFICATION_DATA" },
	{ 39, "NOTIF_CONFIG_DATA" },
	{ 40, "RING_RESET" },
	{ 41, "ADMIN_VQ" },
};

/* virtio 1.3, 5.1.3 Network device feature bits */
static const struct bit_name net_bits[] = {
	{ 0, "CSUM" },
	{ 1, "GUEST_CSUM" },
	{ 2, "CTRL_GUEST_OFFLOADS" },
	{ 3, "MTU" },
	{ 5, "MAC" },
	{ 6, "GSO" },
	{ 7, "GUEST_TSO4" },
	{ 8, "GUEST_TSO6" },
	{ 9, "GUEST_ECN" },
	{ 10, "GUEST_UFO" },
	{ 11, "HOST_TSO4" },
	{ 12, "HOST_TSO6" },
	{ 13, "HOST_ECN" },
	{ 14, "HOST_UFO" },
	{ 15, "MRG_RXBUF" },
	{ 16, "STATUS" },
	{ 17, "CTRL_VQ" },
	{ 18, "CTRL_RX" },
	{ 19, "CTRL_VLAN" },
	{ 20, "CTRL_RX_EXTRA" },
	{ 21, "GUEST_ANNOUNCE" },
	{ 22, "MQ" },
	{ 23, "CTRL_MAC_ADDR" },
	{ 50, "DEVICE_STATS" },
	{ 52, "VQ_NOTF_COAL" },
	{ 53, "NOTF_COAL" },
	{ 54, "GUEST_USO4" },
	{ 55, "GUEST_USO6" },
	{ 56, "HOST_USO" },
	{ 57, "HASH_REPORT" },
	{ 59, "GUEST_HDRLEN" },
	{ 60, "RSS" },
	{ 61, "RSC_EXT" },
	{ 62, "STANDBY" },
	{ 63, "SPEED_DUPLEX" },
	{ 64, "RSS_CONTEXT" },
	{ 65, "GUEST_UDP_TUNNEL_GSO" },
	{ 66, "GUEST_UDP_TUNNEL_GSO_CSUM" },
	{ 67, "HOST_UDP_TUNNEL_GSO" },
	{ 68, "HOST_UDP_TUNNEL_GSO_CSUM" },
};

/* virtio 1.3, 5.2.3 Block device feature bits (legacy ones included) */
static const struct bit_name blk_bits[] = {
	{ 0, "BARRIER" },
	{ 1, "SIZE_MAX" },
	{ 2, "SEG_MAX" },
	{ 4, "GEOMETRY" },
	{ 5, "RO" },
	{ 6, "BLK_SIZE" },
	{ 7, "SCSI" },
	{ 9, "FLUSH" },
	{ 10, "TOPOLOGY" },
	{ 11, "CONFIG_WCE" },
	{ 12, "MQ" },
	{ 13, "DISCARD" },
	{ 14, "WRITE_ZEROES" },
	{ 15, "LIFETIME" },
	{ 16, "SECURE_ERASE" },
	{ 17, "ZONED" },
};

/* virtio 1.3, 5.6.3 SCSI host device feature bits */
static const struct bit_name scsi_bits[] = {
	{ 0, "INOUT" },
	{ 1, "HOTPLUG" },
	{ 2, "CHANGE" },
	{ 3, "T10_PI" },
};

/* virtio 1.3, 5.10.3 Socket device feature bits */
static const struct bit_name vsock_bits[] = {
	{ 0, "STREAM" },
	{ 1, "SEQPACKET" },
	{ 2, "NO_IMPLIED_STREAM" },
};

/* <linux/vhost_types.h> VHOST_BACKEND_F_* */
static const struct bit_name backend_bits[] = {
	{ 1, "IOTLB_MSG_V2" },
	{ 2, "IOTLB_BATCH" },
	{ 3, "IOTLB_ASID" },
	{ 4, "SUSPEND" },
	{ 5, "RESUME" },
	{ 6, "ENABLE_AFTER_DRIVER_OK" },
	{ 7, "DESC_ASID" },
	{ 8, "IOTLB_PERSIST" },
};

/* QEMU docs/interop/vhost-user.rst, "Protocol features" */
static const struct bit_name vu_protocol_bits[] = {
	{ 0, "MQ" },
	{ 1, "LOG_SHMFD" },
	{ 2, "RARP" },
	{ 3, "REPLY_ACK" },
	{ 4, "NET_MTU" },
	{ 5, "BACKEND_REQ" },
	{ 6, "CROSS_ENDIAN" },
	{ 7, "CRYPTO_SESSION" },
	{ 8, "PAGEFAULT" },
	{ 9, "CONFIG" },
	{ 10, "BACKEND_SEND_FD" },
	{ 11, "HOST_NOTIFIER" },
	{ 12, "INFLIGHT_SHMFD" },
	{ 13, "RESET_DEVICE" },
	{ 14, "INBAND_NOTIFICATIONS" },
	{ 15, "CONFIGURE_MEM_SLOTS" },
	{ 16, "STATUS" },
	{ 17, "XEN_MMAP" },
	{ 18, "SHARED_OBJECT" },
	{ 19, "DEVICE_STATE" },
};

static const char *lookup(const struct bit_name *t, size_t n,
			  unsigned int bit)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (t[i].bit == bit)
			return t[i].name;
	return NULL;
}

#define LOOKUP(table, bit) lookup(table, VH_ARRAY_SIZE(table), bit)

/* Device-specific bits are 0..23 and 50..127 (virtio 1.3, 2.2). */
static bool is_transport_bit(unsigned int bit)
{
	return bit >= 24 && bit <= 49;
}

VH_EXPORT const char *vh_feature_name(unsigned int device_id,
				      unsigned int bit)
{
	if (is_transport_bit(bit))
		return LOOKUP(transport_bits, bit);

	switch (device_id) {
	case VH_VIRTIO_ID_NET:
		return LOOKUP(net_bits, bit);
	case VH_VIRTIO_ID_BLOCK:
		return LOOKUP(blk_bits, bit);
	case VH_VIRTIO_ID_SCSI:
		return LOOKUP(scsi_bits, bit);
	case VH_VIRTIO_ID_VSOCK:
		return LOOKUP(vsock_bits, bit);
	default:
		return NULL;
	}
}

VH_EXPORT const char *vh_backend_feature_name(unsigned int bit)
{
	return LOOKUP(backend_bits, bit);
}

VH_EXPORT const char *vh_vu_protocol_feature_name(unsigned int bit)
{
	return LOOKUP(vu_protocol_bits, bit);
}

/*
 * The output: like snprintf, "used" counts what the whole list needs even
 * once buf is full; a list that does not fit is cut at a word boundary.
 */
struct out {
	char *buf;
	size_t len;
	size_t used;
	bool full;
};

static void append(struct out *o, const char *word, unsigned int bit)
{
	char tmp[16];
	size_t wlen, need;

	if (!word) {
		snprintf(tmp, sizeof(tmp), "bit%u", bit);
		word = tmp;
	}
	wlen = strlen(word);
	need = wlen + (o->used ? 1 : 0);
	if (!o->full && o->buf && o->used + need < o->len) {
		if (o->used)
			o->buf[o->used] = ' ';
		memcpy(o->buf + o->used + need - wlen, word, wlen + 1);
	} else {
		o->full = true;
	}
	o->used += need;
}

static int format_bits(int kind, unsigned int device_id, uint64_t features,
		       char *buf, size_t len)
{
	struct out o = { .buf = buf, .len = len };
	unsigned int bit;

	if (!buf && len)
		return -EINVAL;
	if (buf && len)
		buf[0] = '\0';
	for (bit = 0; bit < 64; bit++) {
		const char *name;

		if (!(features & (1ULL << bit)))
			continue;
		if (kind == 0)
			name = vh_feature_name(device_id, bit);
		else if (kind == 1)
			name = vh_backend_feature_name(bit);
		else
			name = vh_vu_protocol_feature_name(bit);
		append(&o, name, bit);
	}
	return (int)o.used; /* at most 64 * 26 characters */
}

VH_EXPORT int vh_features_format(unsigned int device_id, uint64_t features,
				 char *buf, size_t len)
{
	return format_bits(0, device_id, features, buf, len);
}

VH_EXPORT int vh_backend_features_format(uint64_t features, char *buf,
					 size_t len)
{
	return format_bits(1, 0, features, buf, len);
}

VH_EXPORT int vh_vu_protocol_features_format(uint64_t features, char *buf,
					     size_t len)
{
	return format_bits(2, 0, features, buf, len);
}
