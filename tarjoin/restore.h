#ifndef PLAKAR_PG_RESTORE_H
#define PLAKAR_PG_RESTORE_H

#include <stddef.h>

#include "frame.h"

/*
 * tarjoin -C's writer: records made into a directory through the
 * descriptor it was opened as, each path walked a component at a time
 * with nothing followed, so that no link a record made can take a later
 * one elsewhere.  Each call returns 0, or -1 and a one-line reason.
 */
struct restore;

struct restore	*restore_new(int dirfd);
/* A record below the directory (name relative to it): made, its data to come. */
int	restore_begin(struct restore *, const struct frame *, const char *name,
	    char *, size_t);
/* The current file's data. */
int	restore_data(struct restore *, const void *, size_t, char *, size_t);
/* The current record made whole: its mode and time. */
int	restore_end(struct restore *, char *, size_t);
/* Directories' modes and times, set last, deepest first. */
int	restore_finish(struct restore *, char *, size_t);
void	restore_free(struct restore *);

#endif
