/*
 * The programs a plugin runs: each started with its input (secrets
 * included) on its stdin, never on its command line; its stdout and
 * stderr on non-blocking pipes; in a private TMPDIR that is emptied once
 * it has ended; in a process group of its own, stopped with all it
 * started when we stop, when it dies, or when we die.
 */
#ifndef PLAKAR_PG_CHILD_H
#define PLAKAR_PG_CHILD_H

#include <sys/types.h>

#include "util.h"

#define CHILD_LINE_MAX	512

struct child {
	pid_t		 pid;		/* 0 once reaped, or never started */
	pid_t		 pgid;		/* its process group, and its children's */
	int		 out;		/* -1 once closed */
	int		 err;
	int		 status;	/* exit status, 128 + signal; once reaped */
	int		 reaped;
	const char	*tmpdir;
	char		 lastline[CHILD_LINE_MAX];	/* of its stderr, not a warning */
	char		 part[CHILD_LINE_MAX];
	size_t		 partlen;
};

/*
 * A private directory under $TMPDIR (or /tmp) for what we run; NULL and
 * errbuf on failure.  Removed, with what is in it, by child_tmpdir_remove.
 */
char	*child_tmpdir_make(char *, size_t);
void	 child_tmpdir_remove(const char *);

/*
 * Start argv (found in PATH) with input on its stdin, TMPDIR set to
 * tmpdir, and neither Plakar's variables (PLAKAR_*) nor libpq's (PG*) in
 * its environment: what it connects to is what input says.  0, or -1
 * and errbuf.
 */
int	 child_spawn(struct child *, char *const [], const char *,
	    const char *, char *, size_t);

/* Its stderr, copied to ours, the last line kept.  1 read, 0 none, -1 EOF. */
int	 child_read_err(struct child *);
/* Its stdout into buf: bytes read, 0 at EOF, -1 nothing yet. */
ssize_t	 child_read_out(struct child *, void *, size_t);
/* Has it exited?  block: wait for it.  Its TMPDIR empties once all is closed. */
int	 child_reap(struct child *, int);
int	 child_failed(const struct child *);
/* SIGTERM, then SIGKILL if it lingers; its pipes closed, its TMPDIR emptied. */
void	 child_stop(struct child *);

/*
 * Run to the end: stdout into *out (NUL-terminated), stderr copied to
 * ours and its last line into lastline.  The exit status, 128 + signal,
 * or -1 and lastline if it could not start.
 */
int	 child_run(char *const [], const char *, const char *, struct buf *,
	    char *, size_t);

#endif
