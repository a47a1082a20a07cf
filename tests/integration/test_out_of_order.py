# SPDX-License-Identifier: Apache-2.0
"""Layer order comes from the manifest, not from which TOC arrives first.

A proxy between imgmount and the registry delays every request for the lower
layer's blob by a few seconds. When the daemon fetches TOCs concurrently, the
upper layer's TOC (with the whiteout) therefore arrives first. The
merged tree must still apply the whiteout to the lower layer.
"""

import json
import unittest

from lib import oci
from lib.case import IntegrationCase
from lib.delayproxy import DelayProxy

DELAY_SECONDS = 3


class OutOfOrderTest(IntegrationCase):
    def test_late_lower_layer_still_whited_out(self):
        pushed = self.push_image("deleted-in-upper", "gzip")
        converted = self.convert_image(pushed)
        repo, digest = converted.split("/", 1)[1].split("@")
        status, _, body = self.registry.get(f"/v2/{repo}/manifests/{digest}",
                                            {"Accept": oci.MEDIA_MANIFEST})
        self.assertEqual(status, 200)
        lower, upper = [layer["digest"] for layer in json.loads(body)["layers"]]

        proxy = DelayProxy("127.0.0.1", self.registry.port,
                           {lower: DELAY_SECONDS}).start()
        self.addCleanup(proxy.stop)
        daemon = self.mount_image(f"{proxy.host}/{repo}@{digest}")
        root = daemon.mountpoint

        self.assertEqual(self.lstat(root, "/this-will-be-deleted"),
                         {"errno": "ENOENT"})
        self.assertEqual(self.listdir(root, "/"), ["stays"])
        self.assertEqual(self.read_text(root, "/stays"), "s")

        # The proxy really served both layers, the lower one delayed.
        paths = [path for _, kind, path in proxy.events if kind == "end"]
        self.assertTrue(any(lower in path for path in paths), paths)
        self.assertTrue(any(upper in path for path in paths), paths)


if __name__ == "__main__":
    unittest.main()
