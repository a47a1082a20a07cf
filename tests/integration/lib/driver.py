#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Run the unittest cases of one integration test module for tests/run.

Usage:
  driver.py list MODULE           print one JSON object per test case:
                                  {"id", "timeout", "slow"}
  driver.py run MODULE RESULTS [TEST_ID...]
                                  run the cases (all, or the ids given) and
                                  append one JSON line per outcome to RESULTS

MODULE is a module name under tests/integration (for example
"test_layer_rules"). Each case gets SIGALRM after its time limit (the
@timeout decorator of lib.case, 300 s by default), which raises inside the
test so its cleanups still run. tests/run also kills the whole module from
outside when it overruns the sum of its cases' limits, because a signal
cannot interrupt a test that waits for a FUSE reply that never comes.
"""

import json
import os
import signal
import sys
import time
import traceback
import unittest

INTEGRATION_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS_DIR = os.path.dirname(INTEGRATION_DIR)
DEFAULT_TIMEOUT = 300


class CaseTimeout(Exception):
    """Raised in the test when its time limit passes."""


def case_timeout(test):
    method = getattr(test, test._testMethodName, None)
    return getattr(method, "imgmount_timeout", DEFAULT_TIMEOUT)


def case_is_slow(test):
    method = getattr(test, test._testMethodName, None)
    return getattr(method, "imgmount_slow", False)


def iterate(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from iterate(item)
        else:
            yield item


def load(module_name):
    return unittest.defaultTestLoader.loadTestsFromName(module_name)


class RecordingResult(unittest.TestResult):
    """Write each outcome as a JSON line and enforce per-case time limits."""

    def __init__(self, stream):
        super().__init__()
        self.stream = stream
        self.started = {}
        self.failed_subtests = {}
        self.recorded = set()

    def _write(self, test_id, status, detail="", seconds=None):
        self.recorded.add(test_id)
        record = {"id": test_id, "status": status, "detail": detail}
        if seconds is not None:
            record["seconds"] = round(seconds, 2)
        self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()
        sys.stderr.write(f"{status.upper():5} {test_id}\n")
        sys.stderr.flush()

    def _elapsed(self, test):
        return time.monotonic() - self.started.get(test.id(), time.monotonic())

    def startTest(self, test):
        super().startTest(test)
        self.started[test.id()] = time.monotonic()
        limit = case_timeout(test)

        def expire(signum, frame):
            raise CaseTimeout(f"test exceeded its time limit of {limit} s")

        signal.signal(signal.SIGALRM, expire)
        signal.alarm(limit)
        sys.stderr.write(f"START {test.id()}\n")
        sys.stderr.flush()

    def stopTest(self, test):
        signal.alarm(0)
        # A case whose subtests failed gets no addSuccess or addFailure.
        if test.id() not in self.recorded and test.id() in self.failed_subtests:
            self._write(test.id(), "fail", self.failed_subtests.pop(test.id()),
                        self._elapsed(test))
        super().stopTest(test)

    def addSuccess(self, test):
        super().addSuccess(test)
        if test.id() in self.failed_subtests:
            self._write(test.id(), "fail", self.failed_subtests.pop(test.id()),
                        self._elapsed(test))
        else:
            self._write(test.id(), "pass", seconds=self._elapsed(test))

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._write(test.id(), "fail", self._format(err), self._elapsed(test))

    def addError(self, test, err):
        super().addError(test, err)
        # Errors in setUpClass or class cleanups arrive with a holder whose
        # id is "setUpClass (module.Class)"; tests/run matches it by class.
        status = "fail" if isinstance(test, unittest.TestCase) else "class-error"
        self._write(test.id(), status, self._format(err), self._elapsed(test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._write(test.id(), "skip", reason, self._elapsed(test))

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._write(test.id(), "pass", "expected failure", self._elapsed(test))

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._write(test.id(), "fail", "unexpected success", self._elapsed(test))

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            text = f"{subtest.id()}:\n{self._format(err)}"
            previous = self.failed_subtests.get(test.id(), "")
            self.failed_subtests[test.id()] = previous + text + "\n"

    @staticmethod
    def _format(err):
        kind, value, tb = err
        if kind is AssertionError or issubclass(kind, AssertionError):
            return "".join(traceback.format_exception(kind, value, tb, limit=-3))
        return "".join(traceback.format_exception(kind, value, tb))


def list_cases(module_name):
    for test in iterate(load(module_name)):
        print(json.dumps({"id": test.id(), "timeout": case_timeout(test),
                          "slow": case_is_slow(test)}))


def run_cases(module_name, results_path, selected):
    suite = unittest.TestSuite()
    for test in iterate(load(module_name)):
        if not selected or test.id() in selected:
            suite.addTest(test)
    with open(results_path, "a", encoding="utf-8") as stream:
        result = RecordingResult(stream)
        suite.run(result)
    return 0


def main(argv):
    sys.path[:0] = [INTEGRATION_DIR, TESTS_DIR]
    if len(argv) >= 2 and argv[0] == "list":
        list_cases(argv[1])
        return 0
    if len(argv) >= 3 and argv[0] == "run":
        return run_cases(argv[1], argv[2], set(argv[3:]))
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
