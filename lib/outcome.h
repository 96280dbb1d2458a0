/*
 * The outcomes of the plakar-pg programs, one table for all of them
 * (lib/outcomes): each has its name, its exit status and its gRPC
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

#include <stdarg.h>

/*
 * -F fd: where the status line goes.  prog names the program in it and
 * on stderr.  0, or for a bad fd the usage failure reported and its exit
 * status.
 */
int	status_open(const char *prog, const char *fdarg);

/*
 * A lone --help (help() prints it) or --version ("prog (plakar-pg)
 * VERSION"), answered on stdout: 1, and the program ends with 0.
 */
int	status_answer(int, char *[], void (*help)(void));

/* The status descriptor kept open across exec, for a program run in our place. */
void	status_inherit(void);

/* The program did what was asked: {"status":"ok"} and nothing else. */
void	status_ok(void);

/*
 * "prog: message" on stderr, the status line with its SQLSTATE (NULL or
 * "" for none); the outcome's exit status, returned.  With errnum, its
 * strerror is added to the message.
 */
int	status_fail(enum outcome, const char *sqlstate, const char *, ...)
	    __attribute__((format(printf, 3, 4)));
int	status_vfail(enum outcome, const char *sqlstate, int errnum,
	    const char *, va_list) __attribute__((format(printf, 4, 0)));

/* The synopsis on stderr, the usage status line; the exit status, 1. */
int	status_usage(const char *);

/* The status line as it would be written, into buf; its length. */
size_t	status_format(char *, size_t, const char *prog, enum outcome,
	    const char *sqlstate, const char *message);

#endif
