/*
 * The one tar codec of plakar-pg: a member's header read from, and
 * written to, 512-byte blocks, each field by its name.  basetar merges
 * the server's archives with it, tarsplit reads a base backup with it,
 * tarjoin writes one with it.  What it reads is what PostgreSQL's and
 * GNU tar's writers make: ustar with its prefix, octal or base-256
 * numbers, pax extended headers ('x') and GNU long names ('L', 'K');
 * anything else a member can be is refused by name.
 */
#ifndef PLAKAR_PG_TAR_H
#define PLAKAR_PG_TAR_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define TAR_BLOCK	512
/* The most an extended header ('x', 'L', 'K') may hold. */
#define TAR_EXTENDED_MAX (1024 * 1024)

/* Member types, as the typeflag byte says them. */
#define TAR_FILE	'0'
#define TAR_HARDLINK	'1'
#define TAR_SYMLINK	'2'
#define TAR_DIR		'5'
#define TAR_PAX		'x'		/* for the next member */
#define TAR_PAX_GLOBAL	'g'		/* for every member after */
#define TAR_GNU_NAME	'L'		/* the next member's name */
#define TAR_GNU_LINK	'K'		/* the next member's link target */

/* One header's fields, numbers decoded, names NUL-terminated. */
struct tar_header {
	char		 type;		/* as above; '\0' and '7' read as '0' */
	char		 name[256 + 2];	/* prefix "/" name */
	char		 link[101];
	unsigned int	 mode;
	uint64_t	 uid;
	uint64_t	 gid;
	uint64_t	 size;		/* of the data that follows */
	int64_t		 mtime;
	char		 uname[33];
	char		 gname[33];
};

/*
 * A member as a reader assembles it from its header and the extended
 * headers before it: name and link are the long ones where given.
 */
struct tar_member {
	struct tar_header h;
	char		*name;		/* malloc'd */
	char		*link;		/* malloc'd, or NULL */
	int		 sparse;	/* pax said GNU.sparse: refused by callers */
	/* what pax said of the numbers, by TAR_PAX_* bit */
	unsigned int	 pax;
	uint64_t	 pax_size;
	uint64_t	 pax_uid;
	uint64_t	 pax_gid;
	int64_t		 pax_mtime;
};

#define TAR_PAX_SIZE	0x1
#define TAR_PAX_UID	0x2
#define TAR_PAX_GID	0x4
#define TAR_PAX_MTIME	0x8

/*
 * A header block: 1 and its fields, 0 for an all-zero block (the end
 * of an archive), -1 and err for a block that is not a header (its
 * checksum, a number field, a name without an end).
 */
int	tar_header_read(const unsigned char *, struct tar_header *, char *,
	    size_t);

/*
 * The pax records of an 'x' header's data, applied to the member that
 * follows: path, linkpath, size, mtime, uid, gid; GNU.sparse.* marks it
 * sparse; other keys are left.  0, or -1 and err.
 */
int	tar_pax_apply(struct tar_member *, const char *, size_t, char *,
	    size_t);

/*
 * The member's own header: its fields, but for what the extended headers
 * before it said (name, link, numbers).
 */
void	tar_member_finish(struct tar_member *, const struct tar_header *);
void	tar_member_free(struct tar_member *);

/* The padding after n bytes of data, to the block. */
uint64_t tar_padding(uint64_t);

/*
 * A member's header blocks appended to out: a pax header first when the
 * name or link does not fit ustar, or a number is beyond what it holds
 * (name and link as given, h's own name and link fields ignored).
 */
void	tar_header_write(struct buf *, const struct tar_header *,
	    const char *name, const char *link);

/* One header block of h as it is, its checksum set (no pax). */
void	tar_header_block(unsigned char *, const struct tar_header *);

#endif
