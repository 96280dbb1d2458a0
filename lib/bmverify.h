/*
 * Checks the members of a pg_basebackup tar stream against the
 * backup_manifest that ends it, as they pass.
 */
#ifndef PLAKAR_PG_BMVERIFY_H
#define PLAKAR_PG_BMVERIFY_H

#include <stddef.h>
#include <stdint.h>

enum ck_algo {
	CK_NONE,
	CK_CRC32C,
	CK_SHA224,
	CK_SHA256,
	CK_SHA384,
	CK_SHA512
};

/* PostgreSQL's names (--manifest-checksums), any case; -1 if unknown. */
int	 ck_algo_parse(const char *, enum ck_algo *);
const char *ck_algo_name(enum ck_algo);

struct bmv;

struct bmv *bmv_new(enum ck_algo);
void	 bmv_free(struct bmv *);
/* The stream must hold its WAL (pg_basebackup -X fetch). */
void	 bmv_need_wal(struct bmv *);
/*
 * A restored copy, not a stream: its WAL is needed, and pg_wal may hold
 * nothing but the range's segments, their archive_status and timeline
 * history; standby.signal only if backup_label says the backup was taken
 * from a standby (the manifest never lists it).
 */
void	 bmv_restore(struct bmv *);

/* What a member is: every one is checked, whatever its type. */
enum bmv_type {
	BMV_FILE,
	BMV_DIR,
	BMV_SYMLINK,
	BMV_HARDLINK
};

/* One member: bmv_begin, its data in order with bmv_data, bmv_end. */
void	 bmv_begin(struct bmv *, const char *, size_t, uint64_t,
	    enum bmv_type);
void	 bmv_data(struct bmv *, const void *, size_t);
/* -1 when the member cannot be kept (message in errbuf). */
int	 bmv_end(struct bmv *, char *, size_t);

/* Non-zero once backup_manifest has passed: nothing may follow it. */
int	 bmv_manifest_seen(const struct bmv *);

/*
 * At the end of the stream: 0 when every check passed; -1 otherwise, with
 * a one-line reason in errbuf and, when a file is to blame, the first bad
 * file's name in *badpath (malloc'd, raw bytes, NUL-terminated).
 */
int	 bmv_check(struct bmv *, char *, size_t, char **, size_t *);

#endif
