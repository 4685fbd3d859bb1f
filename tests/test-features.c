// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Feature-bit names and their formatting; vh_kdev argument checks that need
 * no vhost device.
 */
#include <sys/stat.h>
#include <sys/wait.h>
#include <linux/vhost.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_vsock.h>

#include "libvhost.h"
#include "test-util.h"

static void test_names(void)
{
	/* device-independent bits are the same for every device */
	CHECK(strcmp(vh_feature_name(VH_VIRTIO_ID_NET, VIRTIO_F_VERSION_1),
		     "VERSION_1") == 0);
	CHECK(strcmp(vh_feature_name(VH_VIRTIO_ID_VSOCK, VIRTIO_F_VERSION_1),
		     "VERSION_1") == 0);
	CHECK(strcmp(vh_feature_name(0, VIRTIO_RING_F_EVENT_IDX),
		     "EVENT_IDX") == 0);
	CHECK(strcmp(vh_feature_name(0, VIRTIO_RING_F_INDIRECT_DESC),
		     "INDIRECT_DESC") == 0);
	CHECK(strcmp(vh_feature_name(0, VIRTIO_F_ACCESS_PLATFORM),
		     "ACCESS_PLATFORM") == 0);
	CHECK(strcmp(vh_feature_name(0, VIRTIO_F_RING_PACKED),
		     "RING_PACKED") == 0);
	CHECK(strcmp(vh_feature_name(0, VIRTIO_F_RING_RESET), "RING_RESET") ==
	      0);
	CHECK(strcmp(vh_feature_name(0, 41), "ADMIN_VQ") == 0);
	/* the vhost family's own bits */
	CHECK(strcmp(vh_feature_name(VH_VIRTIO_ID_NET, VHOST_F_LOG_ALL),
		     "LOG_ALL") == 0);
	CHECK(strcmp(vh_feature_name(VH_VIRTIO_ID_BLOCK, 30),
		     "PROTOCOL_FEATURES") == 0);
	CHECK(strcmp(vh_feature_name(0, VIRTIO_F_NOTIFY_ON_EMPTY),
		     "NOTIFY_ON_EMPTY") == 0);

	/* device-specific bits depend on the device */
	CHECK(strcmp(vh_feature_name(VH_VIRTIO_ID_NET, VIRTIO_NET_F_MRG_RXBUF),
		     "MRG_RXBUF") == 0);
	CHECK(strcmp(vh_feature_name(VH_VIRTIO_ID_NET, VIRTIO_NET_F_CSUM),
		     "CSUM") == 0);
	CHECK(strcmp(vh_feature_name(VH_VIRTIO_ID_NET, VIRTIO_NET_F_MQ),
		     "MQ") == 0);
	CHECK(strcmp(vh_feature_name(VH_VIRTIO_ID_NET,
				     VIRTIO_NET_F_SPEED_DUPLEX),
		     "SPEED_DUPLEX") == 0);
	CHECK(strcmp(vh_feature_name(VH_VIRTIO_ID_NET, 67),
		     "HOST_UDP_TUNNEL_GSO") == 0);
	CHECK(strcmp(vh_feature_name(VH_VIRTIO_ID_BLOCK, 9), "FLUSH") == 0);
	CHECK(strcmp(vh_feature_name(VH_VIRTIO_ID_BLOCK, 15), "MRG_RXBUF") !=
	      0);
	CHECK(strcmp(vh_feature_name(VH_VIRTIO_ID_SCSI, 1), "HOTPLUG") == 0);
	CHECK(strcmp(vh_feature_name(VH_VIRTIO_ID_VSOCK,
				     VIRTIO_VSOCK_F_SEQPACKET),
		     "SEQPACKET") == 0);

	/* unknown */
	CHECK(vh_feature_name(VH_VIRTIO_ID_NET, 4) == NULL);
	CHECK(vh_feature_name(VH_VIRTIO_ID_NET, 25) == NULL);
	CHECK(vh_feature_name(VH_VIRTIO_ID_NET, 45) == NULL);
	CHECK(vh_feature_name(VH_VIRTIO_ID_NET, 1000) == NULL);
	CHECK(vh_feature_name(12345, 0) == NULL);
	CHECK(vh_feature_name(VH_VIRTIO_ID_VSOCK, 3) == NULL);
}

static void test_backend_and_protocol_names(void)
{
	static const char *const proto[] = {
		"MQ",		   "LOG_SHMFD",
		"RARP",		   "REPLY_ACK",
		"NET_MTU",	   "BACKEND_REQ",
		"CROSS_ENDIAN",	   "CRYPTO_SESSION",
		"PAGEFAULT",	   "CONFIG",
		"BACKEND_SEND_FD", "HOST_NOTIFIER",
		"INFLIGHT_SHMFD",  "RESET_DEVICE",
		"INBAND_NOTIFICATIONS", "CONFIGURE_MEM_SLOTS",
		"STATUS",	   "XEN_MMAP",
		"SHARED_OBJECT",   "DEVICE_STATE",
	};
	unsigned int i;

	for (i = 0; i < sizeof(proto) / sizeof(proto[0]); i++) {
		const char *n = vh_vu_protocol_feature_name(i);

		CHECK(n && strcmp(n, proto[i]) == 0);
	}
	CHECK(vh_vu_protocol_feature_name(20) == NULL);
	CHECK(vh_vu_protocol_feature_name(64) == NULL);

	CHECK(vh_backend_feature_name(0) == NULL);
	CHECK(strcmp(vh_backend_feature_name(VHOST_BACKEND_F_IOTLB_MSG_V2),
		     "IOTLB_MSG_V2") == 0);
	CHECK(strcmp(vh_backend_feature_name(VHOST_BACKEND_F_IOTLB_BATCH),
		     "IOTLB_BATCH") == 0);
	CHECK(strcmp(vh_backend_feature_name(VHOST_BACKEND_F_IOTLB_ASID),
		     "IOTLB_ASID") == 0);
	CHECK(strcmp(vh_backend_feature_name(VHOST_BACKEND_F_SUSPEND),
		     "SUSPEND") == 0);
	CHECK(strcmp(vh_backend_feature_name(5), "RESUME") == 0);
	CHECK(strcmp(vh_backend_feature_name(6), "ENABLE_AFTER_DRIVER_OK") ==
	      0);
	CHECK(strcmp(vh_backend_feature_name(7), "DESC_ASID") == 0);
	CHECK(vh_backend_feature_name(63) == NULL);
}

static void test_format(void)
{
	char buf[256];
	uint64_t f;
	int n;

	f = (1ULL << VIRTIO_NET_F_CSUM) | (1ULL << VIRTIO_NET_F_MRG_RXBUF) |
	    (1ULL << 4) | (1ULL << VIRTIO_F_VERSION_1) | (1ULL << 63);
	n = vh_features_format(VH_VIRTIO_ID_NET, f, buf, sizeof(buf));
	CHECK_EQ(n, (int)strlen("CSUM bit4 MRG_RXBUF VERSION_1 SPEED_DUPLEX"));
	CHECK(strcmp(buf, "CSUM bit4 MRG_RXBUF VERSION_1 SPEED_DUPLEX") == 0);

	/* unknown device: device bits by number, transport bits by name */
	n = vh_features_format(99, f, buf, sizeof(buf));
	CHECK(strcmp(buf, "bit0 bit4 bit15 VERSION_1 bit63") == 0);
	CHECK_EQ(n, (int)strlen(buf));

	/* nothing set: empty string */
	n = vh_features_format(VH_VIRTIO_ID_NET, 0, buf, sizeof(buf));
	CHECK_EQ(n, 0);
	CHECK_EQ(buf[0], '\0');

	/* measuring only, like snprintf(NULL, 0) */
	n = vh_features_format(VH_VIRTIO_ID_NET, f, NULL, 0);
	CHECK_EQ(n, (int)strlen("CSUM bit4 MRG_RXBUF VERSION_1 SPEED_DUPLEX"));
	CHECK_EQ(vh_features_format(VH_VIRTIO_ID_NET, f, NULL, 5), -EINVAL);

	/* truncation keeps whole words and a NUL; nothing written past len */
	memset(buf, 'x', sizeof(buf));
	n = vh_features_format(VH_VIRTIO_ID_NET, f, buf, 12);
	CHECK_EQ(n, (int)strlen("CSUM bit4 MRG_RXBUF VERSION_1 SPEED_DUPLEX"));
	CHECK(strcmp(buf, "CSUM bit4") == 0);
	CHECK_EQ(buf[12], 'x');
	/* exactly enough room */
	n = vh_features_format(VH_VIRTIO_ID_NET, 1ULL << VIRTIO_NET_F_CSUM,
			       buf, 5);
	CHECK_EQ(n, 4);
	CHECK(strcmp(buf, "CSUM") == 0);
	n = vh_features_format(VH_VIRTIO_ID_NET, 1ULL << VIRTIO_NET_F_CSUM,
			       buf, 4);
	CHECK_EQ(n, 4);
	CHECK_EQ(buf[0], '\0');

	n = vh_backend_features_format((1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2) |
					       (1ULL << 0),
				       buf, sizeof(buf));
	CHECK(strcmp(buf, "bit0 IOTLB_MSG_V2") == 0);
	CHECK_EQ(n, (int)strlen(buf));
	n = vh_vu_protocol_features_format((1ULL << 3) | (1ULL << 15), buf,
					   sizeof(buf));
	CHECK(strcmp(buf, "REPLY_ACK CONFIGURE_MEM_SLOTS") == 0);

	/* all 64 bits of an unknown device fit the documented bound */
	n = vh_features_format(99, ~0ULL, NULL, 0);
	CHECK(n > 0 && n < 64 * 27);
}

static void test_kdev_args(void)
{
	struct vh_ctx *ctx;
	struct vh_kdev *dev = NULL;
	char path[] = "/tmp/test-features-XXXXXX";
	char dir[] = "/tmp/test-features-dir-XXXXXX", link[64];
	int fd;

	CHECK_EQ(vh_ctx_new(&ctx), 0);
	CHECK_EQ(vh_kdev_open(ctx, NULL, &dev), -EINVAL);
	CHECK_EQ(vh_kdev_open_type(ctx, VH_KDEV_VDPA, &dev), -EINVAL);
	CHECK_EQ(vh_kdev_open_type(ctx, VH_KDEV_UNKNOWN, &dev), -EINVAL);
	CHECK_EQ(vh_kdev_open(ctx, "/nonexistent/vhost-net", &dev), -ENOENT);
	/* a regular file is not a vhost device */
	fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ(vh_kdev_open(ctx, path, &dev), -ENODEV);
	unlink(path);
	/* nor is a character device of another kind */
	CHECK_EQ(vh_kdev_open(ctx, "/dev/null", &dev), -ENODEV);
	CHECK(dev == NULL);
	/* whatever its name: a link vhost-net to it, a file named so */
	CHECK(mkdtemp(dir));
	snprintf(link, sizeof(link), "%s/vhost-net", dir);
	CHECK_EQ(symlink("/dev/null", link), 0);
	CHECK_EQ(vh_kdev_open(ctx, link, &dev), -ENODEV);
	unlink(link);
	fd = open(link, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ(vh_kdev_open(ctx, link, &dev), -ENODEV);
	CHECK(dev == NULL);
	unlink(link);
	/*
	 * Nothing is opened before the node is known for one: an open has
	 * effects of its own (a watchdog's arms it).  Here a FIFO's: a
	 * writer waiting for a reader is let go by one.
	 */
	snprintf(link, sizeof(link), "%s/vhost-net", dir);
	CHECK_EQ(mkfifo(link, 0600), 0);
	{
		pid_t pid = fork();
		int st;

		CHECK(pid >= 0);
		if (pid == 0)
			_exit(open(link, O_WRONLY | O_CLOEXEC) < 0);
		usleep(100 * 1000);
		CHECK_EQ(vh_kdev_open(ctx, link, &dev), -ENODEV);
		usleep(200 * 1000);
		/* the writer still waits: no reader came */
		CHECK_EQ(waitpid(pid, &st, WNOHANG), 0);
		fd = open(link, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		CHECK(fd >= 0);
		CHECK_EQ(waitpid(pid, &st, 0), pid);
		close(fd);
	}
	unlink(link);
	rmdir(dir);

	CHECK(strcmp(vh_kdev_type_name(VH_KDEV_NET), "vhost-net") == 0);
	CHECK(strcmp(vh_kdev_type_name(VH_KDEV_VSOCK), "vhost-vsock") == 0);
	CHECK(strcmp(vh_kdev_type_name(VH_KDEV_SCSI), "vhost-scsi") == 0);
	CHECK(strcmp(vh_kdev_type_name(VH_KDEV_VDPA), "vhost-vdpa") == 0);
	CHECK(vh_kdev_type_name(VH_KDEV_UNKNOWN) == NULL);
	CHECK(vh_kdev_type_name((enum vh_kdev_type)42) == NULL);

	/* NULL objects are refused, not dereferenced */
	CHECK(vh_kdev_ref(NULL) == NULL);
	CHECK(vh_kdev_unref(NULL) == NULL);
	CHECK_EQ(vh_kdev_get_fd(NULL), -EINVAL);
	CHECK_EQ(vh_kdev_set_owner(NULL), -EINVAL);
	CHECK_EQ(vh_kdev_set_vring_num(NULL, 0, 3), -EINVAL);
	CHECK_EQ(vh_kdev_set_vring_num(NULL, 0, 256), -EINVAL);
	vh_ctx_unref(ctx);
}

int main(void)
{
	test_names();
	test_backend_and_protocol_names();
	test_format();
	test_kdev_args();
	return 0;
}
