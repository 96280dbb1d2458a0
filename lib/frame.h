/*
 * Record frames, version 1: see frames(5).
 */
#ifndef PLAKAR_PG_FRAME_H
#define PLAKAR_PG_FRAME_H

#include <stdint.h>
#include <stdio.h>

#define FRAME_VERSION		1
#define FRAME_HEADER_MAX	(1024 * 1024)

enum frame_type {
	FRAME_BEGIN,
	FRAME_FILE,
	FRAME_DIR,
	FRAME_SYMLINK,
	FRAME_HARDLINK,
	FRAME_ERROR,
	FRAME_END
};

struct frame {
	enum frame_type	 type;
	/* begin */
	int		 version;
	const char	*producer;
	/* file, dir, symlink, hardlink: path and target are raw bytes */
	char		*path;
	size_t		 pathlen;
	int		 path_hex;	/* sent as path_hex: not UTF-8 */
	char		*target;
	size_t		 targetlen;
	int		 target_hex;	/* sent as target_hex: not UTF-8 */
	uint64_t	 size;
	unsigned int	 mode;
	int64_t		 mtime;
	int64_t		 uid;
	int64_t		 gid;
	int		 fresh;		/* file: may have changed during the backup */
	const char	*uname;
	const char	*gname;
	/* error */
	const char	*message;
	/* end */
	uint64_t	 records;
	uint64_t	 bytes;

	void		*owner;		/* owns the const char * fields */
};

/*
 * frames(5)'s acceptance rules, kept once for every reader of a stream
 * (tarjoin, the importer): a version 1 begin frame first and once,
 * records, then an end frame whose counts are the stream's, or an error
 * frame.  Each frame read goes through frame_accept, in order.
 */
struct frame_reader {
	int		 began;
	int		 ended;
	uint64_t	 records;
	uint64_t	 bytes;
};

enum frame_verdict {
	FRAME_REFUSED = -1,	/* the message says why; an error frame too */
	FRAME_BEGUN,		/* the begin frame: nothing to pass on */
	FRAME_RECORD,		/* a record to pass on, its payload after it */
	FRAME_ENDED		/* the end frame, counts matching */
};

int	 frame_is_record(enum frame_type);
const char *frame_type_name(enum frame_type);

/*
 * Writers: each emits one header line on fd; -1 with errno on a write
 * error.  A file record's payload is the caller's to write after it.
 */
int	 frame_write_begin(int, const char *);
int	 frame_write_record(int, const struct frame *);
int	 frame_write_error(int, const char *, const char *, size_t);
int	 frame_write_end(int, uint64_t, uint64_t);

/* The header line of a record, without its newline; free() it. */
char	*frame_record_json(const struct frame *);

/*
 * Read the next header from in.  1: a frame, checked against the spec;
 * 0: end of input before any byte of a header; -1: bad or truncated
 * input, described in errbuf.
 */
int	 frame_read(FILE *, struct frame *, char *, size_t);
int	 frame_read_line(FILE *, struct frame *, char **, char *, size_t);
/* The same for one header line in memory, without its newline. */
int	 frame_parse(const char *, size_t, struct frame *, char *, size_t);
void	 frame_free(struct frame *);

enum frame_verdict frame_accept(struct frame_reader *, const struct frame *,
	    char *, size_t);

#endif
