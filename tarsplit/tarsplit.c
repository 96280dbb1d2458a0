/*
 * tarsplit: the tar stream of pg_basebackup -Ft -D - on stdin, record
 * frames (frames(5)) on stdout, each member checked against the
 * backup_manifest that ends the stream.  The work is split.c's; this is
 * its command line.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bmverify.h"
#include "die.h"
#include "split.h"
#include "util.h"

#define PIPE_SIZE	(1024 * 1024)
/* The most -m may hold: /manifest.json is a few kB. */
#define MANIFEST_MAX	(16 * 1024 * 1024)

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
	die_usage("usage: tarsplit [-ntw] [-a algorithm] [-e file] "
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
}

/*
 * -m: a local file, or a pipe (/dev/fd/N), becomes the first record,
 * /manifest.json; read whole first, since a pipe has no size.
 */
static void
read_manifest(const char *file, struct buf *b, struct stat *st)
{
	ssize_t n;
	int fd;

	if ((fd = open(file, O_RDONLY)) == -1 || fstat(fd, st) == -1)
		status_err(OUTCOME_STREAM_BROKEN, "%s", file);
	if (!S_ISREG(st->st_mode) && !S_ISFIFO(st->st_mode))
		status_exit(OUTCOME_STREAM_BROKEN, NULL, "%s: not a regular "
		    "file or a pipe", file);
	for (;;) {
		buf_reserve(b, 65536);
		n = read(fd, b->p + b->len, 65536);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			status_err(OUTCOME_STREAM_BROKEN, "%s", file);
		if (n == 0)
			break;
		b->len += (size_t)n;
		if (b->len > MANIFEST_MAX)
			status_exit(OUTCOME_STREAM_BROKEN, NULL, "%s: larger "
			    "than %d bytes", file, MANIFEST_MAX);
	}
	close(fd);
}

int
main(int argc, char *argv[])
{
	struct split s;
	struct buf manifest = { 0 };
	struct stat manifest_st;
	enum ck_algo algo = CK_CRC32C;
	const char *manifest_file = NULL, *endfile = NULL;
	int ch, endfd, verifying = 1, need_wal = 0;

	memset(&s, 0, sizeof(s));
	s.prog = "tarsplit";
	s.in = STDIN_FILENO;
	s.out = STDOUT_FILENO;
	s.root_mode = -1;
	status_start("tarsplit", NULL);
	if (status_answer(argc, argv, help))
		return 0;
	while ((ch = getopt(argc, argv, "F:a:e:f:m:nr:tw")) != -1) {
		switch (ch) {
		case 'F':
			status_start("tarsplit", optarg);
			break;
		case 'a':
			if (ck_algo_parse(optarg, &algo) == -1)
				status_exit(OUTCOME_USAGE, NULL, "unknown "
				    "checksum algorithm: %s", optarg);
			break;
		case 'e':
			endfile = optarg;
			break;
		case 'f':
			s.fresh_since = parse_time(optarg);
			s.fresh_set = 1;
			break;
		case 'm':
			manifest_file = optarg;
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
		status_exit(OUTCOME_STREAM_BROKEN, NULL, "cannot set up "
		    "checksums");
	if (s.verifier != NULL && need_wal)
		bmv_need_wal(s.verifier);
	if (manifest_file != NULL)
		read_manifest(manifest_file, &manifest, &manifest_st);

	/*
	 * -e: the caller adds the end frame once it knows that the producer
	 * of the tar stream, too, ended well.
	 */
	if (split_open(&s) == -1 || split_begin(&s) == -1 ||
	    (manifest_file != NULL && split_manifest(&s, manifest.p,
	    manifest.len, &manifest_st) == -1) || split_members(&s) == -1)
		status_exit(s.failed, NULL, "%s", s.message);
	endfd = STDOUT_FILENO;
	if (endfile != NULL && (endfd = open(endfile,
	    O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
		status_err(OUTCOME_STREAM_BROKEN, "%s", endfile);
	if (split_end(&s, endfd) == -1 || (endfile != NULL &&
	    close(endfd) == -1))
		status_exit(OUTCOME_STREAM_BROKEN, NULL, "%s: %s",
		    endfile != NULL ? endfile : "stdout", strerror(errno));
	split_close(&s);
	buf_free(&manifest);
	status_ok();
	return 0;
}
