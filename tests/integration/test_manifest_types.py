# SPDX-License-Identifier: Apache-2.0
"""Sources in Docker schema 2 form, and images behind an index.

`imgmount convert` reads Docker schema 2 manifests as well as OCI ones, and
`mount` narrows an OCI image index (or Docker manifest list) to the host's
platform or to --platform. The trees are compared with `umoci unpack` of
the same image pushed in OCI form.
"""

import json
import os
import urllib.request
import unittest

from lib import mount, oci, procs
from lib.case import IntegrationCase

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


class ManifestTypesTest(IntegrationCase):
    def put_manifest(self, repo, tag, media_type, body):
        request = urllib.request.Request(
            f"http://{self.registry.host}/v2/{repo}/manifests/{tag}",
            data=body, method="PUT", headers={"Content-Type": media_type})
        with urllib.request.urlopen(request, timeout=30) as response:
            self.assertEqual(response.status, 201)
            return response.headers["Docker-Content-Digest"]

    def test_docker_schema2_source_converts(self):
        pushed = self.push_image("union-replacements", "gzip")
        docker_ref = f"{self.registry.host}/{pushed.repo}:docker-v2s2"
        procs.run(["skopeo", "copy", "--quiet", "--format", "v2s2",
                   "--src-tls-verify=false", "--dest-tls-verify=false",
                   f"docker://{pushed.by_digest}", f"docker://{docker_ref}"], 600)
        status, headers, body = self.registry.get(
            f"/v2/{pushed.repo}/manifests/docker-v2s2", {"Accept": DOCKER_MANIFEST})
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["mediaType"], DOCKER_MANIFEST)

        digest = mount.convert(docker_ref,
                               f"{self.registry.host}/{pushed.repo}:docker-v2s2-zstdchunked")
        converted = f"{self.registry.host}/{pushed.repo}@{digest}"
        reference = self.dump(self.reference_rootfs(pushed.by_digest))
        daemon = self.mount_image(converted)
        self.assert_matches_reference(reference, self.dump(daemon.mountpoint))

    def test_index_narrowed_to_platform(self):
        pushed = self.push_image("union-replacements", "gzip")
        converted = self.convert_image(pushed)
        repo, digest = converted.split("/", 1)[1].split("@")
        status, _, body = self.registry.get(f"/v2/{repo}/manifests/{digest}",
                                            {"Accept": oci.MEDIA_MANIFEST})
        self.assertEqual(status, 200)
        descriptor = {"mediaType": oci.MEDIA_MANIFEST, "digest": digest,
                      "size": len(body)}
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                dict(descriptor, platform={"os": "linux", "architecture": "arm64",
                                           "variant": "v8"}),
                dict(descriptor, platform={"os": "linux", "architecture": "amd64"}),
            ],
        }
        self.put_manifest(repo, "multi", OCI_INDEX, json.dumps(index).encode())
        reference = self.dump(self.reference_rootfs(pushed.by_digest))

        tagged = f"{self.registry.host}/{repo}:multi"
        daemon = self.mount_image(tagged, extra_args=["--platform", "linux/amd64"])
        self.assert_matches_reference(reference, self.dump(daemon.mountpoint))
        daemon.stop()

        os.mkdir(self.path("mnt-missing"))
        missing = procs.run([mount.binary(), "mount", "-f", "--cache-dir",
                             self.path("cache-missing"), "--platform", "linux/s390x",
                             tagged, self.path("mnt-missing")], 120, check=False)
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn(b"linux/arm64/v8", missing.stderr)
        self.assertIn(b"linux/s390x", missing.stderr)


if __name__ == "__main__":
    unittest.main()
