# SPDX-License-Identifier: Apache-2.0
"""The benchmark harness behind bench/run."""
