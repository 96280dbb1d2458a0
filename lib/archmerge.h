/*
 * The server's base backup archives, as BASE_BACKUP sends them, merged
 * into one tar: the data directory, each tablespace under pg_tblspc/OID/
 * (a directory where the server has a symlink), and backup_manifest last,
 * with the trailer only once the caller says the server finished well.
 */
#ifndef PLAKAR_PG_ARCHMERGE_H
#define PLAKAR_PG_ARCHMERGE_H

#include <stddef.h>
#include <stdint.h>

/* A row of BASE_BACKUP's tablespace list; oid NULL for the data directory. */
struct tablespace {
	char		*oid;
	char		*location;
	int64_t		 size;		/* kB, or -1 when not sent */
};

struct merge;

/* A merge writing to fd, of the archives of ts[0..n) in that order. */
struct merge	*merge_new(int fd, const struct tablespace *, size_t);
void		 merge_free(struct merge *);

/*
 * The next archive begins: legacy servers (up to 14) send one COPY per
 * archive, in the list's order; later ones say so in a CopyData 'n'.
 * All these return 0, or -1 with a one-line reason in err.
 */
int	merge_archive(struct merge *, char *, size_t);
/* Bytes of the current archive, or of the manifest once it began. */
int	merge_data(struct merge *, const unsigned char *, size_t, char *, size_t);
/* The manifest follows (legacy: its own COPY; later: a CopyData 'm'). */
int	merge_manifest(struct merge *, char *, size_t);
/*
 * One CopyData message of the single COPY of servers 15 and later:
 * 'n' new archive, 'd' data, 'p' progress, 'm' manifest.
 */
int	merge_copydata(struct merge *, const unsigned char *, size_t, char *,
	    size_t);
/* The server said the backup succeeded: the manifest member and trailer. */
int	merge_finish(struct merge *, char *, size_t);

/*
 * Whether the data directory's last file, global/pg_control, has begun:
 * what the server sends after it is the WAL (-X fetch), then the end.
 */
int	merge_past_control(const struct merge *);

/*
 * Whether the merge was refused for a directory under pg_tblspc that no
 * tablespace of the server's list accounts for: an in-place tablespace.
 */
int	merge_in_place(const struct merge *);

/* Bytes received so far, and the server's own count when it sends one. */
uint64_t merge_received(const struct merge *);

#endif
