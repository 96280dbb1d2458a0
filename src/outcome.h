/*
 * The outcomes of the plakar-pg programs, one table for all of them
 * (share/outcomes): each has its name, its exit status and its gRPC
 * code.  A program says its outcome once, on stderr for a person and,
 * with -F fd, as one JSON line for its caller (plakar-pg(7)).
 */
#ifndef PLAKAR_PG_OUTCOME_H
#define PLAKAR_PG_OUTCOME_H

#include <stddef.h>

enum outcome {
#define OUTCOME(id, name, exit, grpc)	OUTCOME_##id,
#include "outcomes.inc"
#undef OUTCOME
	OUTCOME_COUNT
};

const char	*outcome_name(enum outcome);
int		 outcome_exit(enum outcome);
int		 outcome_grpc(enum outcome);
/* The outcome of that name, or -1. */
int		 outcome_by_name(const char *);

/*
 * -F fd: where the status line goes.  prog names the program in it and
 * on stderr.  A bad fd is a usage error.
 */
void	status_open(const char *prog, const char *fdarg);

/* The status descriptor kept open across exec, for a program run in our place. */
void	status_inherit(void);

/* The program did what was asked: {"status":"ok"} and nothing else. */
void	status_ok(void);

/*
 * "prog: message" on stderr, the status line with its SQLSTATE (NULL or
 * "" for none), and the outcome's exit status.
 */
void	status_exit(enum outcome, const char *sqlstate, const char *, ...)
	    __attribute__((format(printf, 3, 4), noreturn));
/* The same, ": strerror(errno)" added to the message. */
void	status_err(enum outcome, const char *, ...)
	    __attribute__((format(printf, 2, 3), noreturn));

/* The synopsis on stderr, the usage status line, exit 1. */
void	status_usage(const char *)
	    __attribute__((noreturn));

/* The status line as it would be written, into buf; its length. */
size_t	status_format(char *, size_t, const char *prog, enum outcome,
	    const char *sqlstate, const char *message);

#endif
