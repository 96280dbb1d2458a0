/*
 * tarsplit: the tar stream of pg_basebackup -Ft -D - on stdin, record
 * frames (frames(5)) on stdout, each member checked against the
 * backup_manifest that ends the stream.
 */
#include <sys/stat.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "bmverify.h"
#include "frame.h"
#include "outcome.h"
#include "util.h"

/*
 * The fuzz target (t/fuzz/tarsplit.c) runs main again and again: its
 * exits return to it, and what main holds stays where it can free it.
 */
#ifdef TARSPLIT_FUZZ
#include "../t/fuzz/tarsplit-exit.h"
#define FUZZ_STATIC static
#else
#define FUZZ_STATIC
#endif

#define EXIT_STREAM	OUTCOME_STREAM_BROKEN
#define EXIT_VERIFY	OUTCOME_MANIFEST_MISMATCH
#define READ_BLOCK	(1024 * 1024)
#define PIPE_SIZE	(1024 * 1024)

struct split {
	struct archive	*archive;
	struct bmv	*verifier;	/* NULL with -n */
	int		 list;		/* -t: headers only */
	uint64_t	 records;
	uint64_t	 bytes;
	uint64_t	 owed;		/* payload bytes announced, not yet sent */
	int		 root_mode;	/* -r: the /data record's mode, or -1 */
	int		 fresh_set;	/* -f given */
	int64_t		 fresh_since;	/* -f: files modified since are fresh */
};

/*
 * A data directory's own manifest.json would stand where the snapshot's
 * /manifest.json is once Plakar holds the data directory at its root.
 */
#define OWN_MANIFEST	"manifest.json"
#define OWN_MANIFEST_MAX (64 * 1024 * 1024)

/* stdin for libarchive, with the first read done before it starts. */
struct input {
	char		*buf;
	size_t		 primed;
};


static void usage(void) __attribute__((noreturn));

/* -r's argument: permission bits in octal. */
static int
parse_mode(const char *arg)
{
	char *end;
	long m = strtol(arg, &end, 8);

	if (*arg == '\0' || *end != '\0' || m < 0 || m > 07777)
		status_exit(OUTCOME_USAGE, NULL, "-r %s: not a mode in octal",
		    arg);
	return (int)m;
}

/* -f's argument: seconds since the epoch. */
static int64_t
parse_time(const char *arg)
{
	char *end;
	long long t;

	errno = 0;
	t = strtoll(arg, &end, 10);
	if (*arg == '\0' || *end != '\0' || errno != 0)
		status_exit(OUTCOME_USAGE, NULL, "-f %s: not a time in seconds "
		    "since the epoch", arg);
	return (int64_t)t;
}

static void
usage(void)
{
	status_usage("usage: tarsplit [-ntw] [-a algorithm] [-e file] "
	    "[-F fd] [-f time] [-m file] [-r mode]\n");
}

static void
help(void)
{
	printf("tarsplit turns the tar stream of pg_basebackup -Ft -D - into "
	    "record frames.\n\n"
	    "Usage:\n"
	    "  tarsplit [OPTION]... < base.tar > frames\n\n"
	    "Options:\n"
	    "  -a ALGORITHM   checksum to compute: CRC32C (default), SHA224, "
	    "SHA256,\n"
	    "                 SHA384 or SHA512, as pg_basebackup "
	    "--manifest-checksums\n"
	    "  -e FILE        write the end frame to FILE, not to stdout\n"
	    "  -F FD          write the outcome as one JSON line to FD\n"
	    "  -f TIME        mark files modified at TIME (seconds since the "
	    "epoch)\n"
	    "                 or later as fresh: no cache may reuse an earlier "
	    "copy\n"
	    "  -m FILE        send FILE first, as the record /manifest.json\n"
	    "  -r MODE        send a record /data, the data directory, with "
	    "this\n"
	    "                 (octal) mode, before the first member\n"
	    "  -n             do not verify the stream against "
	    "backup_manifest\n"
	    "  -t             list: print each record's header, no payload\n"
	    "  -w             the WAL must be in the stream (-X fetch)\n"
	    "  --help         show this help, then exit\n"
	    "  --version      output version information, then exit\n\n"
	    "Exit status: 0 success, 1 usage, 3 bad or broken stream, 5 the "
	    "stream\ndoes not match its backup_manifest (plakar-pg(7)).\n");
	exit(0);
}

static void
out(struct split *s, const void *p, size_t n)
{
	if (s->list)
		return;
	if (write_all(STDOUT_FILENO, p, n) == -1)
		status_err(EXIT_STREAM, "stdout");
	s->owed -= n;
}


/*
 * Stop, without an end frame.  At a frame boundary an error frame says
 * why; inside a payload we stop writing (frames(5)): the consumer finds
 * the payload cut short, and no padding turns a tiny input into a huge
 * output.
 */
static void __attribute__((noreturn, format(printf, 5, 6)))
fail(struct split *s, enum outcome status, const char *member, size_t memberlen,
    const char *fmt, ...)
{
	char msg[1024], *path = NULL, *shown;
	size_t pathlen = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (member != NULL) {
		pathlen = 6 + memberlen;
		path = xmalloc(pathlen + 1);
		memcpy(path, "/data/", 6);
		memcpy(path + 6, member, memberlen);
		path[pathlen] = '\0';
	}
	if (!s->list && s->owed == 0)
		(void)frame_write_error(STDOUT_FILENO, msg, path, pathlen);
	shown = one_line(msg, strlen(msg));
	free(path);
	status_exit(status, NULL, "%s", shown);
}

static void
emit_header(struct split *s, const struct frame *f)
{
	char *json;

	s->records++;
	if (!s->list) {
		if (frame_write_record(STDOUT_FILENO, f) == -1)
			status_err(EXIT_STREAM, "stdout");
		return;
	}
	if ((json = frame_record_json(f)) == NULL)
		status_err(EXIT_STREAM, "json");
	if (printf("%s\n", json) < 0)
		status_err(EXIT_STREAM, "stdout");
	free(json);
}

/* The most -m may hold: /manifest.json is a few kB. */
#define MANIFEST_MAX	(16 * 1024 * 1024)

/*
 * -m: a local file, or a pipe (/dev/fd/N), becomes the first record,
 * /manifest.json; read whole first, since a pipe has no size.
 */
static void
emit_manifest(struct split *s, const char *file)
{
	struct frame f;
	struct passwd *pw;
	struct group *gr;
	struct stat st;
	struct buf b = { 0 };
	ssize_t n;
	int fd;

	if ((fd = open(file, O_RDONLY)) == -1 || fstat(fd, &st) == -1)
		status_err(EXIT_STREAM, "%s", file);
	if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode))
		status_exit(EXIT_STREAM, NULL, "%s: not a regular file or a "
		    "pipe", file);
	for (;;) {
		buf_reserve(&b, 65536);
		n = read(fd, b.p + b.len, 65536);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			status_err(EXIT_STREAM, "%s", file);
		if (n == 0)
			break;
		b.len += (size_t)n;
		if (b.len > MANIFEST_MAX)
			status_exit(EXIT_STREAM, NULL, "%s: larger than %d "
			    "bytes", file, MANIFEST_MAX);
	}
	close(fd);
	memset(&f, 0, sizeof(f));
	f.type = FRAME_FILE;
	f.path = "/manifest.json";
	f.pathlen = strlen(f.path);
	f.size = (uint64_t)b.len;
	f.mode = st.st_mode & 07777;
	f.mtime = st.st_mtime;
	f.uid = st.st_uid;
	f.gid = st.st_gid;
	pw = getpwuid(st.st_uid);
	f.uname = pw != NULL ? pw->pw_name : "";
	gr = getgrgid(st.st_gid);
	f.gname = gr != NULL ? gr->gr_name : "";
	emit_header(s, &f);
	s->owed = f.size;
	s->bytes += f.size;
	if (b.len > 0)
		out(s, b.p, b.len);
	buf_free(&b);
}

static void
copy_data(struct split *s, const char *name, size_t namelen, uint64_t size)
{
	const void *buf;
	size_t len;
	la_int64_t offset;
	uint64_t done = 0;
	int r;

	while ((r = archive_read_data_block(s->archive, &buf, &len,
	    &offset)) == ARCHIVE_OK) {
		if (offset < 0 || (uint64_t)offset != done ||
		    (uint64_t)offset + len > size)
			fail(s, EXIT_STREAM, name, namelen,
			    "member data outside its size");
		out(s, buf, len);
		if (s->verifier != NULL)
			bmv_data(s->verifier, buf, len);
		done += len;
	}
	if (r != ARCHIVE_EOF)
		fail(s, EXIT_STREAM, name, namelen, "%s",
		    archive_error_string(s->archive));
	if (done != size)
		fail(s, EXIT_STREAM, name, namelen, "member cut short: %ju of "
		    "%ju bytes", (uintmax_t)done, (uintmax_t)size);
}

static enum bmv_type
bmv_type_of(enum frame_type t)
{
	switch (t) {
	case FRAME_DIR:
		return BMV_DIR;
	case FRAME_SYMLINK:
		return BMV_SYMLINK;
	case FRAME_HARDLINK:
		return BMV_HARDLINK;
	default:
		return BMV_FILE;
	}
}

/* -r: the data directory itself, owned and dated as its first member. */
static void
emit_root(struct split *s, const struct frame *first)
{
	struct frame f = *first;

	f.type = FRAME_DIR;
	f.path = "/data";
	f.pathlen = 5;
	f.target = NULL;
	f.targetlen = 0;
	f.size = 0;
	f.mode = (unsigned int)s->root_mode;
	emit_header(s, &f);
	s->root_mode = -1;
}

/* A member read whole into memory and checked, not sent. */
static void
read_member(struct split *s, const char *name, size_t namelen,
    uint64_t size, struct buf *b)
{
	const void *p;
	size_t len;
	la_int64_t offset;
	int r;

	while ((r = archive_read_data_block(s->archive, &p, &len,
	    &offset)) == ARCHIVE_OK) {
		if (offset < 0 || (uint64_t)offset != b->len ||
		    (uint64_t)offset + len > size)
			fail(s, EXIT_STREAM, name, namelen,
			    "member data outside its size");
		buf_append(b, p, len);
		if (s->verifier != NULL)
			bmv_data(s->verifier, p, len);
	}
	if (r != ARCHIVE_EOF || b->len != size)
		fail(s, EXIT_STREAM, name, namelen, "%s",
		    r != ARCHIVE_EOF ? archive_error_string(s->archive) :
		    "member cut short");
}

/*
 * The data directory's manifest.json: one that a restore of a snapshot
 * left (a /manifest.json of ours) is left out, with a notice; any other
 * fails the backup, since the snapshot's would hide it.
 */
static void
own_manifest(struct split *s, const struct frame *f, const char *member,
    size_t len)
{
	struct buf b = { 0 };
	json_t *j;
	int ours;

	if (f->size > OWN_MANIFEST_MAX)
		fail(s, EXIT_STREAM, member, len, "manifest.json: a file of "
		    "this name in the data directory would be hidden by the "
		    "snapshot's /manifest.json: move it away");
	if (s->verifier != NULL)
		bmv_begin(s->verifier, member, len, f->size, BMV_FILE);
	read_member(s, member, len, f->size, &b);
	j = json_loadb((const char *)b.p, b.len, 0, NULL);
	ours = json_is_object(j) &&
	    json_string_value(json_object_get(j, "connector")) != NULL &&
	    strcmp(json_string_value(json_object_get(j, "connector")),
	    "postgresql+bin") == 0 &&
	    json_string_value(json_object_get(j, "dump_format")) != NULL &&
	    strcmp(json_string_value(json_object_get(j, "dump_format")),
	    "basebackup") == 0;
	json_decref(j);
	buf_free(&b);
	if (!ours)
		fail(s, EXIT_STREAM, member, len, "manifest.json: a file of "
		    "this name in the data directory would be hidden by the "
		    "snapshot's /manifest.json: move it away");
	warnx("manifest.json: the /manifest.json of the snapshot this "
	    "cluster was restored from; left out of the backup");
}

static void
split_member(struct split *s, struct archive_entry *e)
{
	const char *member = archive_entry_pathname(e);
	const char *link = archive_entry_hardlink(e);
	char errbuf[512];
	struct frame f;
	size_t len;

	if (member == NULL)
		fail(s, EXIT_STREAM, NULL, 0, "member without a name");
	len = strlen(member);
	while (len > 1 && member[len - 1] == '/')
		len--;
	if (!relpath_is_safe(member, len)) {
		char *shown = one_line(member, len);

		fail(s, EXIT_STREAM, NULL, 0, "unsafe member name: %s", shown);
	}
	if (s->verifier != NULL && bmv_manifest_seen(s->verifier))
		fail(s, EXIT_STREAM, member, len, "member after backup_manifest");

	memset(&f, 0, sizeof(f));
	f.pathlen = 6 + len;
	f.path = xmalloc(f.pathlen + 1);
	memcpy(f.path, "/data/", 6);
	memcpy(f.path + 6, member, len);
	f.path[f.pathlen] = '\0';
	f.mode = archive_entry_perm(e) & 07777;
	f.mtime = archive_entry_mtime(e);
	f.uid = archive_entry_uid(e);
	f.gid = archive_entry_gid(e);
	f.uname = archive_entry_uname(e);
	f.gname = archive_entry_gname(e);

	if (link != NULL) {
		size_t linklen = strlen(link);

		if (!relpath_is_safe(link, linklen))
			fail(s, EXIT_STREAM, member, len,
			    "unsafe hard link target");
		f.type = FRAME_HARDLINK;
		f.targetlen = 6 + linklen;
		f.target = xmalloc(f.targetlen + 1);
		memcpy(f.target, "/data/", 6);
		memcpy(f.target + 6, link, linklen + 1);
	} else {
		switch (archive_entry_filetype(e)) {
		case AE_IFREG:
			f.type = FRAME_FILE;
			if (archive_entry_size(e) < 0)
				fail(s, EXIT_STREAM, member, len,
				    "member without a size");
			/* Holes would be ours to fill: pg_basebackup sends none. */
			if (archive_entry_sparse_count(e) > 0)
				fail(s, EXIT_STREAM, member, len, "a sparse "
				    "member: not a stream of pg_basebackup");
			f.size = (uint64_t)archive_entry_size(e);
			break;
		case AE_IFDIR:
			f.type = FRAME_DIR;
			break;
		case AE_IFLNK:
			f.type = FRAME_SYMLINK;
			f.target = xstrdup(archive_entry_symlink(e) != NULL ?
			    archive_entry_symlink(e) : "");
			f.targetlen = strlen(f.target);
			if (f.targetlen == 0)
				fail(s, EXIT_STREAM, member, len,
				    "symbolic link without a target");
			break;
		default:
			fail(s, EXIT_STREAM, member, len,
			    "unsupported member type (not a file, directory "
			    "or link)");
		}
	}

	if (s->root_mode >= 0)
		emit_root(s, &f);
	f.fresh = f.type == FRAME_FILE && s->fresh_set &&
	    f.mtime >= s->fresh_since;
	if (f.type != FRAME_DIR && len == strlen(OWN_MANIFEST) &&
	    memcmp(member, OWN_MANIFEST, len) == 0) {
		if (f.type != FRAME_FILE)
			fail(s, EXIT_STREAM, member, len, "manifest.json: a "
			    "link of this name in the data directory would be "
			    "hidden by the snapshot's /manifest.json: move it "
			    "away");
		own_manifest(s, &f, member, len);
	} else {
		emit_header(s, &f);
		if (s->verifier != NULL)
			bmv_begin(s->verifier, member, len, f.size,
			    bmv_type_of(f.type));
		if (f.type == FRAME_FILE) {
			s->owed = f.size;
			s->bytes += f.size;
			copy_data(s, member, len, f.size);
		}
	}
	if (s->verifier != NULL &&
	    bmv_end(s->verifier, errbuf, sizeof(errbuf)) == -1)
		fail(s, EXIT_VERIFY, member, len, "%s", errbuf);
	free(f.path);
	free(f.target);
}

static ssize_t
read_stdin(char *buf)
{
	ssize_t n;

	do
		n = read(STDIN_FILENO, buf, READ_BLOCK);
	while (n == -1 && errno == EINTR);
	return n;
}

static la_ssize_t
input_read(struct archive *a, void *data, const void **block)
{
	struct input *in = data;
	ssize_t n;

	*block = in->buf;
	if (in->primed > 0) {
		n = (ssize_t)in->primed;
		in->primed = 0;
		return n;
	}
	if ((n = read_stdin(in->buf)) == -1)
		archive_set_error(a, errno, "stdin: %s", strerror(errno));
	return n;
}

/* An empty stdin says so, rather than what libarchive makes of it. */
static void
open_input(struct split *s, struct input *in)
{
	ssize_t n;

	in->buf = xmalloc(READ_BLOCK);
	if ((n = read_stdin(in->buf)) == -1)
		status_err(EXIT_STREAM, "stdin");
	if (n == 0)
		status_exit(EXIT_STREAM, NULL, "empty input: no tar stream");
	in->primed = (size_t)n;
	if ((s->archive = archive_read_new()) == NULL)
		status_exit(EXIT_STREAM, NULL, "cannot set up libarchive");
	archive_read_support_format_tar(s->archive);
	if (archive_read_open(s->archive, in, NULL, input_read, NULL) !=
	    ARCHIVE_OK)
		status_exit(EXIT_STREAM, NULL, "not a tar stream: %s",
		    archive_error_string(s->archive));
}

static void
verify(struct split *s)
{
	char errbuf[1024], *bad;
	size_t badlen;

	if (bmv_check(s->verifier, errbuf, sizeof(errbuf), &bad, &badlen) == 0)
		return;
	fail(s, EXIT_VERIFY, bad, bad != NULL ? badlen : 0, "%s", errbuf);
}

#ifdef TARSPLIT_FUZZ
static struct split *fuzz_split;
static struct input *fuzz_input;

void	tarsplit_fuzz_cleanup(void);

/* What a run that returned early left. */
void
tarsplit_fuzz_cleanup(void)
{
	if (fuzz_split == NULL)
		return;
	if (fuzz_split->archive != NULL)
		archive_read_free(fuzz_split->archive);
	bmv_free(fuzz_split->verifier);
	free(fuzz_input->buf);
	fuzz_split->archive = NULL;
	fuzz_split->verifier = NULL;
	fuzz_input->buf = NULL;
}
#endif

int
main(int argc, char *argv[])
{
	FUZZ_STATIC struct split s;
	FUZZ_STATIC struct input in;
	struct archive_entry *e;
	enum ck_algo algo = CK_CRC32C;
	const char *manifest = NULL, *endfile = NULL;
	int ch, r, endfd = STDOUT_FILENO, verifying = 1, need_wal = 0;

	if (argc == 2 && strcmp(argv[1], "--help") == 0)
		help();
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("tarsplit (plakar-pg) %s\n", VERSION);
		return 0;
	}
	memset(&s, 0, sizeof(s));
	memset(&in, 0, sizeof(in));
#ifdef TARSPLIT_FUZZ
	fuzz_split = &s;
	fuzz_input = &in;
#endif
	s.root_mode = -1;
	status_open("tarsplit", NULL);
	while ((ch = getopt(argc, argv, "F:a:e:f:m:nr:tw")) != -1) {
		switch (ch) {
		case 'F':
			status_open("tarsplit", optarg);
			break;
		case 'a':
			if (ck_algo_parse(optarg, &algo) == -1)
				status_exit(OUTCOME_USAGE, NULL, "unknown checksum algorithm: %s", optarg);
			break;
		case 'e':
			endfile = optarg;
			break;
		case 'f':
			s.fresh_since = parse_time(optarg);
			s.fresh_set = 1;
			break;
		case 'm':
			manifest = optarg;
			break;
		case 'n':
			verifying = 0;
			break;
		case 'r':
			s.root_mode = parse_mode(optarg);
			break;
		case 't':
			s.list = 1;
			break;
		case 'w':
			need_wal = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	/*
	 * Larger pipes mean fewer wake-ups on each side: on a small VM the
	 * pipe, not tarsplit, is the cost.  Not a pipe, or not allowed: fine.
	 */
	(void)fcntl(STDIN_FILENO, F_SETPIPE_SZ, PIPE_SIZE);
	(void)fcntl(STDOUT_FILENO, F_SETPIPE_SZ, PIPE_SIZE);
	/* A reader that went away ends us quietly, as it would cat(1). */
	signal(SIGPIPE, SIG_DFL);
	if (verifying && (s.verifier = bmv_new(algo)) == NULL)
		status_exit(EXIT_STREAM, NULL, "cannot set up checksums");
	if (s.verifier != NULL && need_wal)
		bmv_need_wal(s.verifier);
	open_input(&s, &in);

	if (!s.list && frame_write_begin(STDOUT_FILENO,
	    "plakar-pg tarsplit " VERSION) == -1)
		status_err(EXIT_STREAM, "stdout");
	if (manifest != NULL)
		emit_manifest(&s, manifest);

	while ((r = archive_read_next_header(s.archive, &e)) != ARCHIVE_EOF) {
		if (r != ARCHIVE_OK)
			fail(&s, EXIT_STREAM, NULL, 0, "%s",
			    archive_error_string(s.archive));
		split_member(&s, e);
	}
	if (archive_file_count(s.archive) == 0)
		fail(&s, EXIT_STREAM, NULL, 0, "empty input: no tar member");
	/* Two zero blocks end a whole tar stream; a cut one lacks them. */
	if (archive_filter_bytes(s.archive, -1) <
	    archive_read_header_position(s.archive) + 1024)
		fail(&s, EXIT_STREAM, NULL, 0, "truncated tar stream: it ends "
		    "without its end-of-archive blocks");
	if (s.verifier != NULL)
		verify(&s);

	/*
	 * -e: the caller adds the end frame once it knows that the producer
	 * of the tar stream, too, ended well.
	 */
	if (endfile != NULL && (endfd = open(endfile,
	    O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
		status_err(EXIT_STREAM, "%s", endfile);
	if (!s.list && (frame_write_end(endfd, s.records, s.bytes) == -1 ||
	    (endfile != NULL && close(endfd) == -1)))
		status_err(EXIT_STREAM, "%s", endfile != NULL ? endfile : "stdout");
	archive_read_free(s.archive);
	bmv_free(s.verifier);
	free(in.buf);
	s.archive = NULL;
	s.verifier = NULL;
	in.buf = NULL;
	status_ok();
	return 0;
}
