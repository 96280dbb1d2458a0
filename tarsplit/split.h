#ifndef PLAKAR_PG_SPLIT_H
#define PLAKAR_PG_SPLIT_H

#include <sys/stat.h>

#include <stdint.h>

#include "outcome.h"

struct bmv;

/*
 * One run of tarsplit's core (split.c): a tar stream read from in, record
 * frames written to out.  The caller sets the first fields, then calls
 * split_open, split_begin, split_manifest (for -m), split_members and
 * split_end in turn, each 0 or -1, and split_close whatever happened.
 * On -1, failed and message say why; nothing of split.c ends the process.
 */
struct split {
	const char	*prog;		/* names notices on stderr */
	int		 in;
	int		 out;
	struct bmv	*verifier;	/* NULL: not checked; freed by split_close */
	int		 list;		/* headers only, on out */
	int		 root_mode;	/* the /data record's mode, or -1 */
	int		 fresh_set;
	int64_t		 fresh_since;	/* files modified since are fresh */

	enum outcome	 failed;
	char		 message[1024];

	int		 begun;	/* the begin frame is out: errors get a frame */
	char		*inbuf;		/* the input read, not yet taken */
	size_t		 inoff;
	size_t		 primed;	/* bytes at inoff */
	uint64_t	 consumed;	/* bytes of the input taken */
	uint64_t	 members;
	uint64_t	 records;
	uint64_t	 bytes;
	uint64_t	 owed;		/* payload bytes announced, not yet sent */
};

int	split_open(struct split *);
int	split_begin(struct split *);
/* The record /manifest.json, data as it is, its owner and time from st. */
int	split_manifest(struct split *, const void *, size_t,
	    const struct stat *);
int	split_members(struct split *);
/* The end frame, to fd (out, or -e's file). */
int	split_end(struct split *, int);
void	split_close(struct split *);

#endif
