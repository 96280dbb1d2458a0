/*
 * The programs a plugin runs: each started with its input (secrets
 * included) on its stdin, never on its command line; its stdout, stderr
 * and status line (fd 3, see plakar-pg(7)) on non-blocking pipes; in a
 * process group of its own, stopped with all it started when we stop,
 * when it dies, or when we die.  The library's one _exit is here, in a
 * forked child whose exec failed.
 */
#ifndef PLAKAR_PG_CHILD_H
#define PLAKAR_PG_CHILD_H

#include <sys/types.h>

#include "util.h"

/* Where a child writes its status lines: argv gives it "-F" "3". */
#define CHILD_STATUS_FD	3
#define CHILD_STATUS_ARG "3"
#define CHILD_LINE_MAX	1024

struct child {
	pid_t		 pid;		/* 0 once reaped, or never started */
	pid_t		 pgid;		/* its process group, and its children's */
	int		 out;		/* -1 once closed */
	int		 err;
	int		 st;		/* its status lines */
	int		 status;	/* exit status, 128 + signal; once reaped */
	int		 reaped;
	int		 outcome;	/* of its first failure line, or -1 */
	char		 message[CHILD_LINE_MAX];	/* that line's */
	char		 part[CHILD_LINE_MAX];		/* a line being read */
	size_t		 partlen;
};

/*
 * Start argv (found in PATH) with input on its stdin, and neither
 * Plakar's variables (PLAKAR_*) nor libpq's (PG*) in its environment:
 * what it connects to is what input says.  0, or -1 and errbuf.
 */
int	 child_spawn(struct child *, char *const [], const char *, char *,
	    size_t);

/*
 * The three readers of a child's pipes say the same: above 0 something
 * was read, 0 nothing yet (it would block), -1 the pipe is at its end
 * and closed.
 */
/* Its stderr, copied to ours: 1 read, 0, -1. */
int	 child_read_err(struct child *);
/* Its status lines, the first failure kept: 1 read, 0, -1. */
int	 child_read_status(struct child *);
/* Its stdout into buf: the bytes read, 0, -1. */
ssize_t	 child_read_out(struct child *, void *, size_t);
/* Has it exited?  block: wait for it. */
int	 child_reap(struct child *, int);
int	 child_failed(const struct child *);
/* SIGTERM, then SIGKILL if it lingers; its pipes closed. */
void	 child_stop(struct child *);

/*
 * Run to the end: stdout into *out (NUL-terminated), stderr copied to
 * ours, its first failure line into c.  The exit status, 128 + signal,
 * or -1 and errbuf if it could not start.
 */
int	 child_run(struct child *, char *const [], const char *, struct buf *,
	    char *, size_t);

#endif
