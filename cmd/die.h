#ifndef PLAKAR_PG_DIE_H
#define PLAKAR_PG_DIE_H

/*
 * The programs' ways out, over the library's status channel (outcome.h):
 * the one place besides a main that ends the process.  The library
 * itself never does; what it reports, a program ends with here.
 */

#include "outcome.h"

/* status_open, ending the program on a bad -F. */
void	status_start(const char *prog, const char *fdarg);

/* status_fail, then the outcome's exit status. */
void	status_exit(enum outcome, const char *sqlstate, const char *, ...)
	    __attribute__((format(printf, 3, 4), noreturn));
/* The same, ": strerror(errno)" added to the message. */
void	status_err(enum outcome, const char *, ...)
	    __attribute__((format(printf, 2, 3), noreturn));
/* The synopsis on stderr, the usage status line, exit 1. */
void	die_usage(const char *) __attribute__((noreturn));

#endif
