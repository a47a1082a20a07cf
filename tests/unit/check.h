/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Minimal assertions for the C unit tests. A failed check prints the file,
 * line and both values, and marks the test failed; the test keeps running
 * so one run shows every failure. main() returns check_exit_status().
 */
#ifndef IM_CHECK_H
#define IM_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_failures;

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
		check_failures++; \
	} \
} while (0)

#define CHECK_INT(actual, expected) do { \
	long long _a = (long long)(actual), _e = (long long)(expected); \
	if (_a != _e) { \
		fprintf(stderr, "%s:%d: %s is %lld, expected %lld\n", \
			__FILE__, __LINE__, #actual, _a, _e); \
		check_failures++; \
	} \
} while (0)

#define CHECK_STR(actual, expected) do { \
	const char *_a = (actual), *_e = (expected); \
	if (!_a || strcmp(_a, _e) != 0) { \
		fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", \
			__FILE__, __LINE__, #actual, _a ? _a : "(null)", _e); \
		check_failures++; \
	} \
} while (0)

#define RUN_TEST(fn) do { \
	int _before = check_failures; \
	fn(); \
	fprintf(stderr, "%s %s\n", check_failures == _before ? "ok  " : "FAIL", #fn); \
} while (0)

static inline int check_exit_status(void)
{
	return check_failures ? 1 : 0;
}

#endif
