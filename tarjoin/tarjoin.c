/*
 * tarjoin: record frames (frames(5)) on stdin back into a tar stream on
 * stdout, or with -C straight into a directory.  The inverse of tarsplit.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "die.h"
#include "frame.h"
#include "outcome.h"
#include "restore.h"
#include "stop.h"
#include "tar.h"
#include "util.h"

#define CHUNK		(1024 * 1024)
#define CONTROL		"global/pg_control"
#define CONTROL_PARTIAL	"global/pg_control.partial"

/*
 * Where the records go: a tar stream (lib/tar) on stdout, or with -C a
 * directory (restore.c), or with -t nowhere but their headers.
 */
struct join {
	FILE		*in;
	struct restore	*restore;	/* -C */
	struct buf	 tar;		/* without -C or -t: headers to write */
	uint64_t	 owed;		/* of the tar member's data, not yet out */
	const char	*dir;		/* -C */
	int		 list;		/* -t */
	int		 dirfd;
	int		 held_control;	/* pg_control is under its partial name */
	int		 root_mode;	/* of the /data record, or -1 */
	char		*buf;
};


static void
usage(void)
{
	die_usage("usage: tarjoin [-t | -C directory] [-F fd]\n");
}

static void
help(void)
{
	printf("tarjoin turns record frames back into a tar stream or a "
	    "directory.\n\n"
	    "Usage:\n"
	    "  tarjoin < frames > data.tar\n"
	    "  tarjoin -C DIRECTORY < frames\n"
	    "  tarjoin -t < frames\n\n"
	    "Options:\n"
	    "  -C DIRECTORY   write the /data/ records into DIRECTORY (created "
	    "0700,\n"
	    "                 or empty), global/pg_control last of all\n"
	    "  -F FD          write the outcome as one JSON line to FD\n"
	    "  -t             list the frame headers, one line each, payloads "
	    "skipped\n"
	    "  --help         show this help, then exit\n"
	    "  --version      output version information, then exit\n");
}

/*
 * The end of the run: a directory loses its pg_control, so that what
 * was written cannot be started; a tar stream stops inside the member
 * whose data was cut, or gets a damaged block where a header was due,
 * so that tar -x fails too.  (split.c's fail and bmverify's record a
 * failure and return; this one does not return.)
 */
static void __attribute__((noreturn, format(printf, 2, 3)))
die(struct join *j, const char *fmt, ...)
{
	enum outcome o = OUTCOME_DAMAGED;
	char buf[1024], *msg;
	va_list ap;

	/* A read a signal cut short is no damaged stream. */
	if (stop_signal) {
		o = OUTCOME_INTERRUPTED;
		snprintf(buf, sizeof(buf), "interrupted (signal %d)",
		    (int)stop_signal);
	} else {
		va_start(ap, fmt);
		vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
	}
	/* What a producer said, an error frame's message, is shown safe. */
	msg = one_line(buf, strlen(buf));
	if (j->dir != NULL) {
		if (j->held_control)
			(void)unlinkat(j->dirfd, CONTROL_PARTIAL, 0);
		status_exit(o, NULL, "%s; %s is incomplete and will not start",
		    msg, j->dir);
	} else if (j->list) {
		/* the headers listed so far are out first */
		(void)fflush(stdout);
		status_exit(o, NULL, "%s", msg);
	} else {
		char damaged[TAR_BLOCK];

		/*
		 * Inside a member's data, the stream ends there: tar -x finds
		 * it cut short (what follows would be read as data); between
		 * members, a block that is no header.
		 */
		memset(damaged, 0xff, sizeof(damaged));
		if (j->owed == 0)
			(void)write_all(STDOUT_FILENO, damaged,
			    sizeof(damaged));
		status_exit(o, NULL, "%s", msg);
	}
}

/* -t: a header as it came, once the parser took it or not. */
static void
list_header(struct join *j, const char *line)
{
	if (printf("%s\n", line) < 0)
		die(j, "stdout: %s", strerror(errno));
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
	j->restore = restore_new(j->dirfd);
}

/* The tar stream's pending bytes out. */
static void
flush_tar(struct join *j)
{
	if (write_all(STDOUT_FILENO, j->tar.p, j->tar.len) == -1)
		die(j, "stdout: %s", strerror(errno));
	j->tar.len = 0;
}

/* Read or drop the n payload bytes that follow a file header. */
static void
payload(struct join *j, uint64_t n, int keep)
{
	char errbuf[512];

	while (n > 0) {
		size_t k = n < CHUNK ? (size_t)n : CHUNK;

		if (stop_signal || fread(j->buf, 1, k, j->in) != k)
			die(j, ferror(j->in) ? "read error" :
			    "truncated stream: a file's payload is cut short");
		if (keep && j->restore != NULL &&
		    restore_data(j->restore, j->buf, k, errbuf,
		    sizeof(errbuf)) == -1)
			die(j, "%s", errbuf);
		if (keep && j->restore == NULL) {
			if (write_all(STDOUT_FILENO, j->buf, k) == -1)
				die(j, "stdout: %s", strerror(errno));
			j->owed -= k;
		}
		n -= k;
	}
}

/* A record as a tar member: its header, its data, its padding. */
static void
tar_member(struct join *j, const struct frame *f, const char *name)
{
	static const unsigned char zero[TAR_BLOCK];
	struct tar_header h;
	const char *link = NULL;

	memset(&h, 0, sizeof(h));
	h.mode = f->mode & 07777;
	h.uid = (uint64_t)f->uid;
	h.gid = (uint64_t)f->gid;
	h.mtime = f->mtime;
	snprintf(h.uname, sizeof(h.uname), "%s", f->uname);
	snprintf(h.gname, sizeof(h.gname), "%s", f->gname);
	switch (f->type) {
	case FRAME_FILE:
		h.type = TAR_FILE;
		h.size = f->size;
		break;
	case FRAME_DIR:
		h.type = TAR_DIR;
		break;
	case FRAME_SYMLINK:
		h.type = TAR_SYMLINK;
		link = f->target;
		break;
	default:
		h.type = TAR_HARDLINK;
		link = f->target + 6;
		break;
	}
	tar_header_write(&j->tar, &h, name, link);
	flush_tar(j);
	j->owed = h.size;
	if (f->type == FRAME_FILE) {
		payload(j, f->size, 1);
		if (write_all(STDOUT_FILENO, zero,
		    (size_t)tar_padding(f->size)) == -1)
			die(j, "stdout: %s", strerror(errno));
	}
}

static void
write_record(struct join *j, const struct frame *f)
{
	char errbuf[512];
	const char *name;
	int keep;

	if (j->list) {
		if (f->type == FRAME_FILE)
			payload(j, f->size, 0);
		return;
	}
	/* The data directory's own record: its mode, for -C's directory. */
	if (f->type == FRAME_DIR && strcmp(f->path, "/data") == 0) {
		j->root_mode = (int)f->mode;
		return;
	}
	/* Only the data directory is restored; /manifest.json stays behind. */
	keep = f->pathlen > 6 && memcmp(f->path, "/data/", 6) == 0;
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
			die(j, "%s: not the one regular file pg_basebackup "
			    "sends", f->path);
		if (j->dir != NULL) {
			name = CONTROL_PARTIAL;
			j->held_control = 1;
		}
	}

	if (f->type == FRAME_HARDLINK && strncmp(f->target, "/data/", 6) != 0)
		die(j, "%s: hard link outside /data/", f->path);
	if (j->restore != NULL) {
		if (restore_begin(j->restore, f, name, errbuf,
		    sizeof(errbuf)) == -1)
			die(j, "%s", errbuf);
		if (f->type == FRAME_FILE)
			payload(j, f->size, 1);
		if (restore_end(j->restore, errbuf, sizeof(errbuf)) == -1)
			die(j, "%s", errbuf);
		return;
	}
	tar_member(j, f, name);
}

/* Make the restore durable, then give it the pg_control held back. */
static void
finish_directory(struct join *j)
{
	char errbuf[512];
	int gfd;

	if (restore_finish(j->restore, errbuf, sizeof(errbuf)) == -1)
		die(j, "%s", errbuf);
	if (j->root_mode >= 0 && fchmod(j->dirfd, (mode_t)j->root_mode) == -1)
		die(j, "%s: %s", j->dir, strerror(errno));
	if (syncfs(j->dirfd) == -1)
		die(j, "syncfs: %s", strerror(errno));
	if (!j->held_control)
		return;
	if (renameat(j->dirfd, CONTROL_PARTIAL, j->dirfd, CONTROL) == -1)
		die(j, "%s: %s", CONTROL, strerror(errno));
	if ((gfd = openat(j->dirfd, "global", O_RDONLY | O_DIRECTORY)) == -1 ||
	    fsync(gfd) == -1)
		die(j, "global: %s", strerror(errno));
	close(gfd);
}

int
main(int argc, char *argv[])
{
	char errbuf[512];
	struct frame_reader rd;
	enum frame_verdict v;
	char *line;
	struct frame f;
	struct join j;
	int ch, r;

	memset(&j, 0, sizeof(j));
	j.root_mode = -1;
	status_start("tarjoin", NULL);
	if (status_answer(argc, argv, help))
		return 0;
	while ((ch = getopt(argc, argv, "C:F:t")) != -1) {
		switch (ch) {
		case 'C':
			j.dir = optarg;
			break;
		case 't':
			j.list = 1;
			break;
		case 'F':
			status_start("tarjoin", optarg);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || (j.list && j.dir != NULL))
		usage();

	signal(SIGPIPE, SIG_DFL);
	/* INT, TERM and HUP end the run through die(), a read cut short */
	stop_signals_catch();
	j.in = stdin;
	j.buf = xmalloc(CHUNK);
	if (setvbuf(j.in, NULL, _IOFBF, CHUNK) != 0)
		status_err(OUTCOME_USAGE, "setvbuf");
	if (j.dir != NULL)
		open_directory(&j);

	/* frames(5)'s rules are frame_accept's; what to do with each is ours */
	memset(&rd, 0, sizeof(rd));
	do {
		if (stop_signal)
			die(&j, "interrupted");
		r = frame_read_line(j.in, &f, &line, errbuf, sizeof(errbuf));
		if (line != NULL && j.list)
			list_header(&j, line);
		free(line);
		if (r == 0)
			die(&j, rd.began ? "incomplete stream: it ends "
			    "without an end frame" : "empty input: no frames");
		if (r == -1 || stop_signal) {
			if (!rd.began)
				die(&j, "not a frame stream: %s", errbuf);
			die(&j, "bad frame after %ju records: %s",
			    (uintmax_t)rd.records, errbuf);
		}
		if ((v = frame_accept(&rd, &f, errbuf, sizeof(errbuf))) ==
		    FRAME_REFUSED)
			die(&j, "%s", errbuf);
		if (v == FRAME_RECORD)
			write_record(&j, &f);
		frame_free(&f);
	} while (v != FRAME_ENDED);
	if (frame_read(j.in, &f, errbuf, sizeof(errbuf)) != 0)
		die(&j, "data after the end frame");

	if (j.list && fflush(stdout) == EOF)
		die(&j, "stdout: %s", strerror(errno));
	if (j.dir != NULL) {
		finish_directory(&j);
		restore_free(j.restore);
	} else if (!j.list) {
		/* two zero blocks end a whole tar stream */
		unsigned char end[2 * TAR_BLOCK];

		memset(end, 0, sizeof(end));
		buf_append(&j.tar, end, sizeof(end));
		flush_tar(&j);
	}
	buf_free(&j.tar);
	free(j.buf);
	status_ok();
	return 0;
}
