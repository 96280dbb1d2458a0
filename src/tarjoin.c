/*
 * tarjoin: record frames (frames(5)) on stdin back into a tar stream on
 * stdout, or with -C straight into a directory.  The inverse of tarsplit.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "frame.h"
#include "outcome.h"
#include "util.h"

#define CHUNK		(1024 * 1024)
#define CONTROL		"global/pg_control"
#define CONTROL_PARTIAL	"global/pg_control.partial"

struct join {
	FILE		*in;
	struct archive	*archive;
	const char	*dir;		/* -C */
	int		 dirfd;
	int		 held_control;	/* pg_control is under its partial name */
	int		 root_mode;	/* of the /data record, or -1 */
	uint64_t	 records;
	uint64_t	 bytes;
	char		*buf;
};

static void
usage(void)
{
	status_usage("usage: tarjoin [-C directory] [-F fd]\n");
}

static void
help(void)
{
	printf("tarjoin turns record frames back into a tar stream or a "
	    "directory.\n\n"
	    "Usage:\n"
	    "  tarjoin < frames > data.tar\n"
	    "  tarjoin -C DIRECTORY < frames\n\n"
	    "Options:\n"
	    "  -C DIRECTORY   write the /data/ records into DIRECTORY (created "
	    "0700,\n"
	    "                 or empty), global/pg_control last of all\n"
	    "  -F FD          write the outcome as one JSON line to FD\n"
	    "  --help         show this help, then exit\n"
	    "  --version      output version information, then exit\n");
	exit(0);
}

/*
 * Stop.  A directory loses its pg_control, so that what was written
 * cannot be started; a tar stream gets a damaged block instead of its
 * end, so that tar -x fails too.
 */
static void __attribute__((noreturn, format(printf, 2, 3)))
fail(struct join *j, const char *fmt, ...)
{
	char buf[1024], *msg;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* What a producer said, an error frame's message, is shown safe. */
	msg = one_line(buf, strlen(buf));
	if (j->archive != NULL)
		archive_write_fail(j->archive);
	if (j->dir != NULL) {
		if (j->held_control)
			(void)unlinkat(j->dirfd, CONTROL_PARTIAL, 0);
		status_exit(OUTCOME_DAMAGED, NULL, "%s; %s is incomplete and "
		    "will not start", msg, j->dir);
	} else {
		char damaged[512];

		memset(damaged, 0xff, sizeof(damaged));
		(void)write_all(STDOUT_FILENO, damaged, sizeof(damaged));
		status_exit(OUTCOME_DAMAGED, NULL, "%s", msg);
	}
}

static void
check(struct join *j, int r)
{
	if (r < ARCHIVE_OK)
		fail(j, "%s", archive_error_string(j->archive));
}

static void
open_directory(struct join *j)
{
	struct dirent *d;
	DIR *dp;

	if (mkdir(j->dir, 0700) == -1 && errno != EEXIST)
		status_err(OUTCOME_USAGE, "%s", j->dir);
	if ((dp = opendir(j->dir)) == NULL)
		status_err(OUTCOME_USAGE, "%s", j->dir);
	while ((errno = 0, d = readdir(dp)) != NULL)
		if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0)
			status_exit(OUTCOME_USAGE, NULL, "%s: directory not empty",
			    j->dir);
	if (errno != 0)
		status_err(OUTCOME_USAGE, "%s", j->dir);
	closedir(dp);
	/* PostgreSQL refuses a data directory that others can read. */
	if (chmod(j->dir, 0700) == -1)
		status_err(OUTCOME_USAGE, "%s", j->dir);
	if ((j->dirfd = open(j->dir, O_RDONLY | O_DIRECTORY)) == -1 ||
	    fchdir(j->dirfd) == -1)
		status_err(OUTCOME_USAGE, "%s", j->dir);

	j->archive = archive_write_disk_new();
	archive_write_disk_set_options(j->archive, ARCHIVE_EXTRACT_TIME |
	    ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
	    ARCHIVE_EXTRACT_SECURE_SYMLINKS |
	    ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS);
}

static void
open_tar(struct join *j)
{
	j->archive = archive_write_new();
	if (archive_write_set_format_pax_restricted(j->archive) != ARCHIVE_OK ||
	    archive_write_open_fd(j->archive, STDOUT_FILENO) != ARCHIVE_OK)
		status_exit(OUTCOME_USAGE, NULL, "%s",
		    archive_error_string(j->archive));
}

/* Read or drop the n payload bytes that follow a file header. */
static void
payload(struct join *j, uint64_t n, int keep)
{
	while (n > 0) {
		size_t k = n < CHUNK ? (size_t)n : CHUNK;

		if (fread(j->buf, 1, k, j->in) != k)
			fail(j, ferror(j->in) ? "read error" :
			    "truncated stream: a file's payload is cut short");
		if (keep && archive_write_data(j->archive, j->buf, k) !=
		    (la_ssize_t)k)
			fail(j, "%s", archive_error_string(j->archive));
		n -= k;
	}
}

static void
write_record(struct join *j, const struct frame *f)
{
	struct archive_entry *e;
	const char *name;
	int keep;

	j->records++;
	/* The data directory's own record: its mode, for -C's directory. */
	if (f->type == FRAME_DIR && strcmp(f->path, "/data") == 0) {
		j->root_mode = (int)f->mode;
		return;
	}
	/* Only the data directory is restored; /manifest.json stays behind. */
	keep = f->pathlen > 6 && memcmp(f->path, "/data/", 6) == 0;
	if (f->type == FRAME_FILE)
		j->bytes += f->size;
	if (!keep) {
		if (f->type == FRAME_FILE)
			payload(j, f->size, 0);
		return;
	}
	name = f->path + 6;
	/*
	 * pg_control makes a directory startable: it appears only after the
	 * end frame, and only as the regular file pg_basebackup sends, never
	 * as a link to a file written before.
	 */
	if (strcmp(name, CONTROL) == 0 || strcmp(name, CONTROL_PARTIAL) == 0) {
		if (f->type != FRAME_FILE || j->held_control)
			fail(j, "%s: not the one regular file pg_basebackup "
			    "sends", f->path);
		if (j->dir != NULL) {
			name = CONTROL_PARTIAL;
			j->held_control = 1;
		}
	}

	if ((e = archive_entry_new()) == NULL)
		fail(j, "out of memory");
	archive_entry_set_pathname(e, name);
	archive_entry_set_perm(e, f->mode);
	archive_entry_set_mtime(e, f->mtime, 0);
	archive_entry_set_uid(e, f->uid);
	archive_entry_set_gid(e, f->gid);
	archive_entry_set_uname(e, f->uname);
	archive_entry_set_gname(e, f->gname);
	switch (f->type) {
	case FRAME_FILE:
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_size(e, (la_int64_t)f->size);
		break;
	case FRAME_DIR:
		archive_entry_set_filetype(e, AE_IFDIR);
		break;
	case FRAME_SYMLINK:
		archive_entry_set_filetype(e, AE_IFLNK);
		archive_entry_set_symlink(e, f->target);
		break;
	case FRAME_HARDLINK:
		if (strncmp(f->target, "/data/", 6) != 0)
			fail(j, "%s: hard link outside /data/", f->path);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_hardlink(e, f->target + 6);
		break;
	default:
		break;
	}
	check(j, archive_write_header(j->archive, e));
	if (f->type == FRAME_FILE)
		payload(j, f->size, 1);
	check(j, archive_write_finish_entry(j->archive));
	archive_entry_free(e);
}

/* Make the restore durable, then give it the pg_control held back. */
static void
finish_directory(struct join *j)
{
	int gfd;

	if (j->root_mode >= 0 && fchmod(j->dirfd, (mode_t)j->root_mode) == -1)
		fail(j, "%s: %s", j->dir, strerror(errno));
	if (syncfs(j->dirfd) == -1)
		fail(j, "syncfs: %s", strerror(errno));
	if (!j->held_control)
		return;
	if (renameat(j->dirfd, CONTROL_PARTIAL, j->dirfd, CONTROL) == -1)
		fail(j, "%s: %s", CONTROL, strerror(errno));
	if ((gfd = openat(j->dirfd, "global", O_RDONLY | O_DIRECTORY)) == -1 ||
	    fsync(gfd) == -1)
		fail(j, "global: %s", strerror(errno));
	close(gfd);
}

int
main(int argc, char *argv[])
{
	char errbuf[512];
	struct frame f;
	struct join j;
	int ch, r;

	if (argc == 2 && strcmp(argv[1], "--help") == 0)
		help();
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("tarjoin (plakar-pg) %s\n", VERSION);
		return 0;
	}
	memset(&j, 0, sizeof(j));
	j.root_mode = -1;
	status_open("tarjoin", NULL);
	while ((ch = getopt(argc, argv, "C:F:")) != -1) {
		switch (ch) {
		case 'C':
			j.dir = optarg;
			break;
		case 'F':
			status_open("tarjoin", optarg);
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	signal(SIGPIPE, SIG_DFL);
	j.in = stdin;
	j.buf = xmalloc(CHUNK);
	if (setvbuf(j.in, NULL, _IOFBF, CHUNK) != 0)
		status_err(OUTCOME_USAGE, "setvbuf");
	if (j.dir != NULL)
		open_directory(&j);
	else
		open_tar(&j);

	r = frame_read(j.in, &f, errbuf, sizeof(errbuf));
	if (r == 0)
		fail(&j, "empty input: no frames");
	if (r == -1 || f.type != FRAME_BEGIN)
		fail(&j, "not a frame stream: %s",
		    r == -1 ? errbuf : "it does not start with a begin frame");
	if (f.version != FRAME_VERSION)
		fail(&j, "frame version %d, this tarjoin reads version %d",
		    f.version, FRAME_VERSION);
	frame_free(&f);

	for (;;) {
		r = frame_read(j.in, &f, errbuf, sizeof(errbuf));
		if (r == 0)
			fail(&j, "incomplete stream: it ends without an end "
			    "frame");
		if (r == -1)
			fail(&j, "bad frame after %ju records: %s",
			    (uintmax_t)j.records, errbuf);
		if (f.type == FRAME_END)
			break;
		if (f.type == FRAME_ERROR)
			fail(&j, "the backup failed: %s", f.message);
		if (f.type == FRAME_BEGIN)
			fail(&j, "a second begin frame");
		write_record(&j, &f);
		frame_free(&f);
	}
	if (f.records != j.records || f.bytes != j.bytes)
		fail(&j, "end frame counts %ju records and %ju bytes, the "
		    "stream had %ju and %ju", (uintmax_t)f.records,
		    (uintmax_t)f.bytes, (uintmax_t)j.records,
		    (uintmax_t)j.bytes);
	frame_free(&f);
	if (frame_read(j.in, &f, errbuf, sizeof(errbuf)) != 0)
		fail(&j, "data after the end frame");

	check(&j, archive_write_close(j.archive));
	if (j.dir != NULL)
		finish_directory(&j);
	archive_write_free(j.archive);
	free(j.buf);
	status_ok();
	return 0;
}
