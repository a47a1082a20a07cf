/* SPDX-License-Identifier: Apache-2.0 */
#include "common/log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static atomic_int log_level = IM_LOG_INFO;
static atomic_bool log_to_syslog;

void im_log_set_level(int level)
{
	atomic_store(&log_level, level);
}

int im_log_get_level(void)
{
	return atomic_load(&log_level);
}

void im_log_use_syslog(const char *ident)
{
	openlog(ident, LOG_PID, LOG_DAEMON);
	atomic_store(&log_to_syslog, true);
}

static const char *level_name(int level)
{
	switch (level) {
	case IM_LOG_ERR:
		return "error";
	case IM_LOG_WARNING:
		return "warning";
	case IM_LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

__attribute__((format(printf, 3, 0)))
static void log_va(int level, const char *suffix, const char *fmt, va_list ap)
{
	char line[2048];
	int n;

	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		return;

	if (atomic_load(&log_to_syslog)) {
		syslog(level, "%s%s", line, suffix);
		return;
	}

	/* One fprintf per line so that lines from threads do not interleave. */
	fprintf(stderr, "imgmount: %s: %s%s\n", level_name(level), line, suffix);
}

void im_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (level > atomic_load(&log_level))
		return;

	va_start(ap, fmt);
	log_va(level, "", fmt, ap);
	va_end(ap);
}

int im_log_errno(int error, const char *fmt, ...)
{
	char suffix[128];
	va_list ap;

	if (IM_LOG_ERR > atomic_load(&log_level))
		return error;

	snprintf(suffix, sizeof(suffix), ": %s", strerror(-error));
	va_start(ap, fmt);
	log_va(IM_LOG_ERR, suffix, fmt, ap);
	va_end(ap);
	return error;
}
