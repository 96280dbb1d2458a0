/*
 * die: the programs' ways out (die.h), each a library report and exit().
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>

#include "die.h"

void
status_start(const char *prog, const char *fdarg)
{
	int e;

	if ((e = status_open(prog, fdarg)) != 0)
		exit(e);
}

void
status_exit(enum outcome o, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;
	int e;

	va_start(ap, fmt);
	e = status_vfail(o, sqlstate, 0, fmt, ap);
	va_end(ap);
	exit(e);
}

void
status_err(enum outcome o, const char *fmt, ...)
{
	int errnum = errno, e;
	va_list ap;

	va_start(ap, fmt);
	e = status_vfail(o, NULL, errnum, fmt, ap);
	va_end(ap);
	exit(e);
}

void
die_usage(const char *synopsis)
{
	exit(status_usage(synopsis));
}
