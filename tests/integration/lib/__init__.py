# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the integration tests: registry, images, mounts, dumps."""
