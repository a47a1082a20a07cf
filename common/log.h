/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging for every component: syslog levels, one line per message on
 * stderr (or syslog once the daemon has detached). The level is checked
 * before formatting, so debug traces on the read path cost one comparison.
 * Never pass a credential or token to these functions.
 */
#ifndef IM_LOG_H
#define IM_LOG_H

#include <stdarg.h>
#include <syslog.h>

enum im_log_level {
	IM_LOG_ERR = LOG_ERR,
	IM_LOG_WARNING = LOG_WARNING,
	IM_LOG_INFO = LOG_INFO,
	IM_LOG_DEBUG = LOG_DEBUG,
};

void im_log_set_level(int level);
int im_log_get_level(void);

/* Send messages to syslog(3) from now on, under the given identity. */
void im_log_use_syslog(const char *ident);

void im_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Log at error level with strerror(-error) appended, and return error
 * unchanged, so that a failure path reads `return im_log_errno(r, "...")`.
 * error must be a negative errno value.
 */
int im_log_errno(int error, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define im_err(...) im_log(IM_LOG_ERR, __VA_ARGS__)
#define im_warn(...) im_log(IM_LOG_WARNING, __VA_ARGS__)
#define im_info(...) im_log(IM_LOG_INFO, __VA_ARGS__)
#define im_debug(...) im_log(IM_LOG_DEBUG, __VA_ARGS__)

#endif
