# SPDX-License-Identifier: Apache-2.0
"""Test images for the integration tests: tar writer, catalog, generator."""
