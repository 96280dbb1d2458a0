/*
 * What a restored copy says of itself, read as PostgreSQL reads it or
 * refused: its PG_VERSION and its tablespace_map.  A snapshot is hostile
 * input to the restore host: nothing read here names a directory or a
 * program before it passed.  And -T OLD=NEW, pg_basebackup's way.
 */
#ifndef PLAKAR_PG_PGDATA_H
#define PLAKAR_PG_PGDATA_H

#include <stddef.h>

/* The longest path PostgreSQL keeps (MAXPGPATH), and the most tablespaces. */
#define PGDATA_PATH_MAX	1024
#define TSMAP_MAX	4096

struct tsmap_entry {
	char		 oid[11];	/* digits, 1 to 4294967295 */
	char		*path;		/* as the map names it, escapes undone */
};

struct tsmap {
	struct tsmap_entry *e;
	size_t		 n;
};

/*
 * PG_VERSION's contents: the major version, digits and one newline
 * ("16\n"), 10 to 99; 9.x and older are not backed up here.  0, or -1.
 */
int	pg_version_parse(const char *, size_t, int *, char *, size_t);

/*
 * tablespace_map by read_tablespace_map's rules: lines end at an
 * unescaped newline or return, empty lines are skipped, a backslash
 * makes the next byte literal, each line is an OID, one space and a
 * path (which may begin with spaces), and a last line without its end
 * is refused.  Beyond PostgreSQL: the OID is digits and in range, the
 * path absolute, no NUL, no OID or path given twice.  0, or -1.
 */
int	tsmap_parse(const char *, size_t, struct tsmap *, char *, size_t);
void	tsmap_free(struct tsmap *);

/*
 * -T OLD=NEW: the first '=' not after a backslash splits it, "\=" is an
 * '=' of either path; both absolute.  0 with malloc'd paths, or -1.
 */
int	tsmap_option(const char *, char **, char **, char *, size_t);

#endif
