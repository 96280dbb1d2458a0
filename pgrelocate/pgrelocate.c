/*
 * pgrelocate: the restore step.  A copy restored from a snapshot (plakar
 * restore -to, plakar-pg restore) has its tablespaces placed, is checked
 * against its backup_manifest and made safe to start; or, failing or
 * killed at any point, it cannot start.  The snapshot is hostile input:
 * nothing it holds picks a program or a path outside the copy and the
 * targets the command line names.  See pgrelocate(1).
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bmverify.h"
#include "die.h"
#include "pgdata.h"
#include "stop.h"
#include "util.h"

/* pg_control, set aside from the first change until the copy is good. */
#define CONTROL		"pg_control"
#define CONTROL_ASIDE	"pg_control.pgrelocate"
/*
 * What a run set out to do, written before its first change and removed
 * after its last: OID and target of each tablespace, NUL-terminated.  A
 * second run after a failure or a signal must be given the same targets.
 */
#define JOURNAL		"pgrelocate.journal"
/* -A: postgresql.auto.conf's size before the step appended to it. */
#define AUTOCONF_SIZE	"pgrelocate.autoconf"
/* The largest file of the copy read whole: backup_manifest excepted. */
#define SMALL_MAX	(1024 * 1024)
#define MANIFEST_MAX	((size_t)1 << 30)

/* A tablespace of the map and where it goes. */
struct target {
	const char	*oid;
	const char	*old;		/* as the map names it */
	char		*new;		/* absolute, from -T or -O */
	int		 fd;		/* the target, once open, or -1 */
	int		 existed;	/* an empty directory given, never chowned */
};

struct step {
	const char	*dir;		/* the copy, as given */
	char		*real;		/* its real path */
	int		 dirfd;
	uid_t		 uid;		/* the copy's owner */
	gid_t		 gid;
	int		 major;
	int		 plan;		/* -n: say, do nothing */
	int		 archive_off;	/* -A */
	int		 original;	/* -O */
	const char	*bindir;	/* -B */
	const char	*user;		/* -U */
	const char	*store;		/* -a: plakar's store */
	const char	*snapshot;	/* -s: restored first, by plakar */
	char		**maps_old;	/* -T */
	char		**maps_new;
	size_t		 nmaps;
	struct tsmap	 map;
	int		 has_map;
	struct target	*t;
	size_t		 nt;
	char		*verifier;	/* pg_verifybackup, trusted */
	char		*postgres;	/* postgres, trusted */
	int		 verifier_major;
	int		 resumed;	/* pg_control was aside already */
	char		*manifest;	/* backup_manifest, read once */
	size_t		 manifest_len;
};

static void
usage(void)
{
	die_usage("usage: pgrelocate [-AOn] [-a store -s snapshot] [-B bindir] "
	    "[-F fd] [-T old=new ...]\n                  [-U user] "
	    "directory\n");
}

static void
help(void)
{
	printf("usage: pgrelocate [-AOn] [-B bindir] [-F fd] [-T old=new ...] "
	    "[-U user] directory\n"
	    "A restored copy's tablespaces placed (-T, or -O where they were),\n"
	    "the copy checked against its backup_manifest, pg_control set aside\n"
	    "until it is good: it starts, or it cannot.  -n prints the plan,\n"
	    "-A turns archiving off in the copy, -B names PostgreSQL's programs.\n"
	    "See pgrelocate(1).\n");
}

/* Set once the copy was first changed: a failure then needs a second run. */
static int began;
/* A signal came: stop here, between two changes, saying so. */
static void
check_signal(void)
{
	if (!stop_signal)
		return;
	status_exit(OUTCOME_INTERRUPTED, NULL, "interrupted (signal %d)%s",
	    (int)stop_signal, began ? ": the copy cannot start as it is; run "
	    "pgrelocate again, with the same options, to finish" : "; nothing "
	    "was changed");
}

static void sys_fail(const char *, ...)
    __attribute__((noreturn, format(printf, 1, 2)));

/* A system call failed: before any change, nothing to undo; after, resume. */
static void
sys_fail(const char *fmt, ...)
{
	int errnum = errno, e;
	va_list ap;

	va_start(ap, fmt);
	e = status_vfail(began ? OUTCOME_RESUME_NEEDED : OUTCOME_USAGE, NULL,
	    errnum, fmt, ap);
	va_end(ap);
	if (began)
		fprintf(stderr, "pgrelocate: the copy cannot start as it is; "
		    "run pgrelocate again, with the same options, to "
		    "finish\n");
	exit(e);
}

static void refuse(const char *, ...)
    __attribute__((noreturn, format(printf, 1, 2)));

/* What the command line asks cannot be done: usage, or resume once begun. */
static void
refuse(const char *fmt, ...)
{
	va_list ap;
	int e;

	va_start(ap, fmt);
	e = status_vfail(began ? OUTCOME_RESUME_NEEDED : OUTCOME_USAGE, NULL,
	    0, fmt, ap);
	va_end(ap);
	exit(e);
}

/* A test stops the step at a named phase: PGRELOCATE_STOP_AT=phase. */
static void
phase(const char *name)
{
	const char *stop = getenv("PGRELOCATE_STOP_AT");

	if (getenv("PGRELOCATE_PHASES") != NULL)
		fprintf(stderr, "pgrelocate: phase %s\n", name);
	if (stop != NULL && strcmp(stop, name) == 0)
		raise(getenv("PGRELOCATE_STOP_TERM") != NULL ? SIGTERM :
		    SIGKILL);
	check_signal();
}

static void
hostile(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* What the snapshot holds is refused: the copy is left as it is. */
static void
hostile(const char *fmt, ...)
{
	va_list ap;
	int e;

	va_start(ap, fmt);
	e = status_vfail(OUTCOME_HOSTILE, NULL, 0, fmt, ap);
	va_end(ap);
	exit(e);
}

/* A small regular file of the copy, read whole, nothing followed. */
static char *
read_small(int dirfd, const char *name, size_t max, size_t *lenp, int *absent)
{
	struct buf b = { 0 };
	struct stat st;
	ssize_t n;
	int fd;

	*absent = 0;
	if ((fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
	    O_NONBLOCK)) == -1) {
		if (errno == ENOENT) {
			*absent = 1;
			return NULL;
		}
		hostile("%s: %s", name, errno == ELOOP ? "a symbolic link" :
		    strerror(errno));
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode))
		hostile("%s: not a regular file", name);
	if ((uint64_t)st.st_size > max)
		hostile("%s: larger than %zu bytes", name, max);
	for (;;) {
		buf_reserve(&b, 65536);
		if ((n = read(fd, b.p + b.len, 65536)) == -1 && errno == EINTR)
			continue;
		if (n == -1)
			sys_fail("%s", name);
		if (n == 0)
			break;
		b.len += (size_t)n;
		if (b.len > max)
			hostile("%s: larger than %zu bytes", name, max);
	}
	close(fd);
	buf_reserve(&b, 1);
	b.p[b.len] = '\0';
	*lenp = b.len;
	return (char *)b.p;
}

/* Whether path is dir or below it (both real, absolute). */
static int
within(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (strcmp(dir, "/") == 0)
		return 1;
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' ||
	    path[n] == '/');
}

/*
 * A target's real place: realpath of its parent, which must exist, and
 * its last component, which must be neither "." nor "..".
 */
static char *
real_target(const char *path)
{
	char *copy = xstrdup(path), *slash, parent[PATH_MAX], *out;
	const char *base;
	size_t n;

	while ((n = strlen(copy)) > 1 && copy[n - 1] == '/')
		copy[n - 1] = '\0';
	slash = strrchr(copy, '/');
	base = slash + 1;
	*slash = '\0';
	if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		status_exit(OUTCOME_USAGE, NULL, "%s: not a directory name to "
		    "place a tablespace at", path);
	if (realpath(copy[0] != '\0' ? copy : "/", parent) == NULL)
		sys_fail("%s: its parent", path);
	out = xmalloc(strlen(parent) + strlen(base) + 2);
	sprintf(out, "%s%s%s", parent, strcmp(parent, "/") == 0 ? "" : "/",
	    base);
	free(copy);
	return out;
}

/* The major version a PostgreSQL program says it is, or -1. */
static int
major_of(const char *prog)
{
	char buf[256], *p;
	ssize_t n;
	int fds[2], status, major = -1;
	pid_t pid;

	if (pipe(fds) == -1)
		return -1;
	if ((pid = fork()) == -1) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		execl(prog, prog, "--version", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (n <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -1;
	buf[n] = '\0';
	/* "NAME (PostgreSQL) 16.4": a version string, not a message */
	if ((p = strstr(buf, "(PostgreSQL) ")) != NULL)
		major = atoi(p + 13);
	return major > 0 ? major : -1;
}

/*
 * A PostgreSQL program from a trusted place: -B, then the copy's major
 * under /usr/lib/postgresql, then PATH.  Refused if its real path is in
 * the copy or a target.  NULL if none is found.
 */
static char *
trusted_program(struct step *s, const char *name, int from_bindir_only)
{
	char cand[PATH_MAX], real[PATH_MAX], *path, *dir, *save = NULL;
	const char *env = getenv("PATH");
	size_t i;

	cand[0] = '\0';
	if (s->bindir != NULL) {
		snprintf(cand, sizeof(cand), "%s/%s", s->bindir, name);
		if (access(cand, X_OK) == -1) {
			if (from_bindir_only)
				status_exit(OUTCOME_USAGE, NULL, "%s: no %s "
				    "there", s->bindir, name);
			cand[0] = '\0';
		}
	}
	if (cand[0] == '\0') {
		snprintf(cand, sizeof(cand), "/usr/lib/postgresql/%d/bin/%s",
		    s->major, name);
		if (access(cand, X_OK) == -1) {
			cand[0] = '\0';
			path = xstrdup(env != NULL ? env : "/usr/bin:/bin");
			for (dir = strtok_r(path, ":", &save); dir != NULL;
			    dir = strtok_r(NULL, ":", &save)) {
				/* a relative PATH entry resolves in the cwd */
				if (dir[0] != '/')
					continue;
				snprintf(cand, sizeof(cand), "%s/%s", dir, name);
				if (access(cand, X_OK) == 0)
					break;
				cand[0] = '\0';
			}
			free(path);
		}
	}
	if (cand[0] == '\0' || realpath(cand, real) == NULL)
		return NULL;
	if (within(real, s->real))
		hostile("%s resolves to %s, inside the copy: it is not run",
		    cand, real);
	for (i = 0; i < s->nt; i++)
		if (s->t[i].new != NULL && within(real, s->t[i].new))
			hostile("%s resolves to %s, inside a target: it is not "
			    "run", cand, real);
	/* run by the name found: a wrapper (pg_wrapper) goes by its argv[0] */
	return xstrdup(cand);
}

/*
 * -s: the local form.  The directory must be absent or empty (so no
 * server runs on it); plakar restores the snapshot into it, then the
 * step runs.  A restore that fails leaves no pg_control under its name.
 */
static void
plakar_restore(struct step *s)
{
	char *argv[8], control[PATH_MAX], aside[PATH_MAX];
	struct dirent *d;
	DIR *dp;
	pid_t pid;
	int n = 0, status;

	if ((dp = opendir(s->dir)) != NULL) {
		while ((d = readdir(dp)) != NULL)
			if (strcmp(d->d_name, ".") != 0 &&
			    strcmp(d->d_name, "..") != 0)
				status_exit(OUTCOME_USAGE, NULL, "%s: not empty: "
				    "the local form restores into a new or empty "
				    "directory, where no server runs", s->dir);
		closedir(dp);
	} else if (errno != ENOENT)
		sys_fail("%s", s->dir);
	else if (mkdir(s->dir, 0700) == -1)
		sys_fail("%s", s->dir);
	argv[n++] = "plakar";
	if (s->store != NULL) {
		argv[n++] = "at";
		argv[n++] = (char *)s->store;
	}
	argv[n++] = "restore";
	argv[n++] = "-to";
	argv[n++] = (char *)s->dir;
	argv[n++] = (char *)s->snapshot;
	argv[n] = NULL;
	fprintf(stderr, "pgrelocate: plakar%s%s restore -to %s %s\n",
	    s->store != NULL ? " at " : "", s->store != NULL ? s->store : "",
	    s->dir, s->snapshot);
	if ((pid = fork()) == -1)
		sys_fail("fork");
	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			sys_fail("waitpid");
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return;
	snprintf(control, sizeof(control), "%s/global/" CONTROL, s->dir);
	snprintf(aside, sizeof(aside), "%s/global/" CONTROL ".failed", s->dir);
	(void)rename(control, aside);
	status_exit(OUTCOME_USAGE, NULL, "plakar restore of %s failed (%s "
	    "%d): %s cannot start", s->snapshot, WIFEXITED(status) ? "exit" :
	    "signal", WIFEXITED(status) ? WEXITSTATUS(status) :
	    WTERMSIG(status), s->dir);
}

/* -U: as root only; the copy's owner from then on is that user. */
static void
set_user(struct step *s)
{
	struct passwd *pw = getpwnam(s->user);

	if (geteuid() != 0)
		status_exit(OUTCOME_USAGE, NULL, "-U %s: only root gives a copy "
		    "away", s->user);
	if (pw == NULL || pw->pw_uid == 0)
		status_exit(OUTCOME_USAGE, NULL, "-U %s: not a user to run a "
		    "server as", s->user);
	s->uid = pw->pw_uid;
	s->gid = pw->pw_gid;
}

static void
open_copy(struct step *s)
{
	char real[PATH_MAX];
	struct stat st;

	if (realpath(s->dir, real) == NULL)
		sys_fail("%s", s->dir);
	s->real = xstrdup(real);
	if ((s->dirfd = open(s->real, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1 || fstat(s->dirfd, &st) == -1)
		sys_fail("%s", s->dir);
	s->uid = st.st_uid;
	s->gid = st.st_gid;
	if (fstatat(s->dirfd, "postmaster.pid", &st, AT_SYMLINK_NOFOLLOW) == 0)
		status_exit(OUTCOME_USAGE, NULL, "%s: postmaster.pid is there: "
		    "the copy has been started, or is running; relocate only a "
		    "copy just restored", s->dir);
}

/*
 * A directory's entries from their start: a descriptor of its own, since
 * a dup would share the offset where an earlier listing ended.
 */
static DIR *
entries(int fd)
{
	int own = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dp;

	if (own == -1 || (dp = fdopendir(own)) == NULL) {
		if (own != -1)
			close(own);
		return NULL;
	}
	return dp;
}

static int
exists(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/*
 * Whether backup_manifest lists a file of that name.  Only ever used to
 * refuse: a manifest that lies here makes the step do less, not more.
 */
static int
manifest_names(const struct step *s, const char *path)
{
	char key[PATH_MAX];

	snprintf(key, sizeof(key), "\"Path\": \"%s\"", path);
	return memmem(s->manifest, s->manifest_len, key, strlen(key)) != NULL;
}

/* The version backup_manifest says it is of: 1 when it says none. */
static int
manifest_version(const struct step *s)
{
	static const char key[] = "\"PostgreSQL-Backup-Manifest-Version\":";
	const char *p = strstr(s->manifest, key);

	return p != NULL ? atoi(p + sizeof(key) - 1) : 1;
}

/* PG_VERSION, tablespace_map, and where pg_control is. */
static void
read_copy(struct step *s)
{
	char err[256], *p;
	size_t len;
	int absent, gfd;

	p = read_small(s->dirfd, "PG_VERSION", 16, &len, &absent);
	if (!absent)
		s->manifest = read_small(s->dirfd, "backup_manifest",
		    MANIFEST_MAX, &s->manifest_len, &absent);
	if (absent)
		status_exit(OUTCOME_USAGE, NULL, "%s: not a restored backup (no "
		    "PG_VERSION or backup_manifest)", s->dir);
	if (pg_version_parse(p, len, &s->major, err, sizeof(err)) == -1)
		hostile("%s", err);
	free(p);
	if ((gfd = openat(s->dirfd, "global", O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1)
		hostile("global: %s", errno == ENOTDIR || errno == ELOOP ?
		    "not a directory" : strerror(errno));
	s->resumed = exists(gfd, CONTROL_ASIDE);
	if (s->resumed && exists(gfd, CONTROL))
		hostile("global: both pg_control and %s: a copy no run of "
		    "pgrelocate left", CONTROL_ASIDE);
	if (!s->resumed && !exists(gfd, CONTROL))
		status_exit(OUTCOME_USAGE, NULL, "%s: no global/pg_control: "
		    "not a restored backup, or one whose restore failed",
		    s->dir);
	close(gfd);
	p = read_small(s->dirfd, "tablespace_map", SMALL_MAX, &len, &absent);
	if (!absent) {
		if (tsmap_parse(p, len, &s->map, err, sizeof(err)) == -1)
			hostile("%s", err);
		s->has_map = 1;
		free(p);
	} else if (!s->resumed && manifest_names(s, "tablespace_map"))
		status_exit(OUTCOME_USAGE, NULL, "%s: already relocated "
		    "(tablespace_map is gone); nothing done", s->dir);
}

/* Each tablespace of the map, and where -T or -O puts it. */
static void
plan_targets(struct step *s)
{
	char *real;
	size_t i, k, used = 0;

	s->nt = s->map.n;
	s->t = xmalloc((s->nt + 1) * sizeof(*s->t));
	for (i = 0; i < s->nt; i++) {
		struct target *t = &s->t[i];

		t->oid = s->map.e[i].oid;
		t->old = s->map.e[i].path;
		t->new = NULL;
		t->fd = -1;
		for (k = 0; k < s->nmaps; k++)
			if (strcmp(s->maps_old[k], t->old) == 0) {
				t->new = xstrdup(s->maps_new[k]);
				used++;
			}
		if (t->new == NULL && s->original)
			t->new = xstrdup(t->old);
		if (t->new == NULL)
			status_exit(OUTCOME_USAGE, NULL, "tablespace %s (%s): no "
			    "-T %s=NEW for it (or -O to put it back there, if "
			    "that is absent)", t->oid, t->old, t->old);
		real = real_target(t->new);
		free(t->new);
		t->new = real;
	}
	if (used != s->nmaps)
		for (k = 0; k < s->nmaps; k++) {
			for (i = 0; i < s->nt; i++)
				if (strcmp(s->maps_old[k], s->t[i].old) == 0)
					break;
			if (i == s->nt)
				status_exit(OUTCOME_USAGE, NULL, "-T %s=%s: no "
				    "tablespace of the copy was at %s",
				    s->maps_old[k], s->maps_new[k],
				    s->maps_old[k]);
		}
	/* nothing of the copy, of another target or of the map's places */
	for (i = 0; i < s->nt; i++) {
		struct target *t = &s->t[i];

		if (within(t->new, s->real) || within(s->real, t->new))
			status_exit(OUTCOME_USAGE, NULL, "%s: inside the copy, or "
			    "holding it; a tablespace goes elsewhere", t->new);
		for (k = 0; k < s->nt; k++) {
			if (k != i && (within(t->new, s->t[k].new) ||
			    within(s->t[k].new, t->new)))
				status_exit(OUTCOME_USAGE, NULL, "%s: the target "
				    "of two tablespaces, or inside another's",
				    t->new);
			if (strcmp(t->new, s->t[k].old) != 0 &&
			    (within(t->new, s->t[k].old) ||
			    within(s->t[k].old, t->new)))
				status_exit(OUTCOME_USAGE, NULL, "%s: inside "
				    "the place of a tablespace of the map (%s), "
				    "or holding it", t->new, s->t[k].old);
		}
	}
}

/*
 * The state of a tablespace: 0 not moved (pg_tblspc/OID a directory),
 * 1 moved (a link to its target).  Anything else is refused.
 */
static int
tablespace_state(struct step *s, int tsfd, const struct target *t)
{
	char link[PATH_MAX];
	struct stat st;
	ssize_t n;

	if (fstatat(tsfd, t->oid, &st, AT_SYMLINK_NOFOLLOW) == -1)
		hostile("pg_tblspc/%s: missing: tablespace_map names it",
		    t->oid);
	if (S_ISDIR(st.st_mode))
		return 0;
	if (S_ISLNK(st.st_mode) && s->resumed &&
	    (n = readlinkat(tsfd, t->oid, link, sizeof(link) - 1)) > 0) {
		link[n] = '\0';
		if (strcmp(link, t->new) == 0)
			return 1;
	}
	hostile("pg_tblspc/%s: not the restored directory of tablespace %s",
	    t->oid, t->old);
}

/*
 * A directory by its real path, each component opened with nothing
 * followed: a link swapped in after the checks is refused, not taken.
 */
static int
open_real_dir(const char *path)
{
	char *copy = xstrdup(path), *comp, *save = NULL;
	int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC), next;

	for (comp = strtok_r(copy, "/", &save); fd != -1 && comp != NULL;
	    comp = strtok_r(NULL, "/", &save)) {
		next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		close(fd);
		fd = next;
	}
	free(copy);
	return fd;
}

/*
 * The target, opened: an absent one made (0700, the copy's owner) when
 * make says so, else -1; an existing one only if an empty directory that
 * is no link, or (resumed) the one a first run made and filled.
 */
static int
open_target(struct step *s, struct target *t, int make)
{
	char *parent = xstrdup(t->new), *base;
	struct stat st;
	struct dirent *d;
	DIR *dp;
	int pfd, fd, made = 0, empty = 1;

	base = strrchr(parent, '/');
	*base++ = '\0';
	if ((pfd = open_real_dir(parent)) == -1)
		refuse("%s: its parent changed since it was checked (a link, or "
		    "gone): %s", t->new, strerror(errno));
	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == -1) {
		if (errno != ENOENT)
			sys_fail("%s", t->new);
		if (!make) {
			close(pfd);
			free(parent);
			return -1;
		}
		if (mkdirat(pfd, base, 0700) == -1)
			sys_fail("%s", t->new);
		made = 1;
	} else if (!S_ISDIR(st.st_mode))
		refuse("%s: not a directory; a "
		    "tablespace goes to a new or empty one", t->new);
	if ((fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		sys_fail("%s", t->new);
	close(pfd);
	free(parent);
	if (made) {
		/* made by us, so ours to give to the copy's owner */
		if (geteuid() == 0 && fchown(fd, s->uid, s->gid) == -1)
			sys_fail("%s", t->new);
		return fd;
	}
	if (s->resumed)
		return fd;	/* a first run's, maybe half filled */
	if ((dp = entries(fd)) == NULL)
		sys_fail("%s", t->new);
	while ((d = readdir(dp)) != NULL)
		if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0)
			empty = 0;
	closedir(dp);
	if (!empty)
		refuse("%s: not an empty directory; a "
		    "tablespace goes to a new or empty one (the source's own "
		    "would be overwritten)", t->new);
	if (s->original)
		refuse("%s: exists: -O only makes a "
		    "tablespace's place where there is none, and never takes "
		    "an existing directory", t->new);
	return fd;
}

/*
 * Everything in the copy is a regular file or a directory, but for the
 * links pg_tblspc/OID a first run made; anything else is refused before
 * anything changes.  depth bounds a hostile tree.
 */
static void
scan(int fd, const char *path, int depth, int top_tblspc)
{
	struct dirent *d;
	struct stat st;
	DIR *dp;
	char *sub;
	int cfd;

	if (depth > 64)
		hostile("%s: deeper than 64 directories", path);
	if ((dp = entries(fd)) == NULL)
		sys_fail("%s", path);
	while ((errno = 0, d = readdir(dp)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		if (fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1)
			sys_fail("%s/%s", path, d->d_name);
		if (S_ISREG(st.st_mode))
			continue;
		if (S_ISLNK(st.st_mode) && top_tblspc)
			continue;	/* checked against the map */
		if (!S_ISDIR(st.st_mode))
			hostile("%s%s%s: a %s: a restored copy holds only files "
			    "and directories", path, *path ? "/" : "",
			    d->d_name, S_ISLNK(st.st_mode) ? "symbolic link" :
			    "device, FIFO or socket");
		sub = xmalloc(strlen(path) + strlen(d->d_name) + 2);
		sprintf(sub, "%s%s%s", path, *path ? "/" : "", d->d_name);
		if ((cfd = openat(fd, d->d_name, O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC)) == -1)
			sys_fail("%s", sub);
		scan(cfd, sub, depth + 1, strcmp(sub, "pg_tblspc") == 0);
		close(cfd);
		free(sub);
	}
	closedir(dp);
}

/* pg_tblspc holds the map's OIDs and nothing else. */
static void
check_tblspc(struct step *s, int tsfd)
{
	struct dirent *d;
	DIR *dp;
	size_t i;

	if ((dp = entries(tsfd)) == NULL)
		sys_fail("pg_tblspc");
	while ((d = readdir(dp)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		for (i = 0; i < s->nt; i++)
			if (strcmp(d->d_name, s->t[i].oid) == 0)
				break;
		if (i == s->nt)
			hostile("pg_tblspc/%s: not a tablespace of "
			    "tablespace_map", d->d_name);
	}
	closedir(dp);
	for (i = 0; i < s->nt; i++)
		(void)tablespace_state(s, tsfd, &s->t[i]);
}

static void
fsync_dir(int fd, const char *what)
{
	if (fsync(fd) == -1)
		sys_fail("fsync %s", what);
}

/* The journal's bytes for the targets of this run. */
static void
journal_of(const struct step *s, struct buf *b)
{
	size_t i;

	for (i = 0; i < s->nt; i++) {
		buf_append(b, s->t[i].oid, strlen(s->t[i].oid) + 1);
		buf_append(b, s->t[i].new, strlen(s->t[i].new) + 1);
		buf_append(b, s->t[i].existed ? "e" : "m", 2);
	}
}

/*
 * A second run: the journal the first one wrote must name the targets
 * this one was given, so that what it finds half moved is its own.
 */
static void
check_journal(struct step *s)
{
	char *j, *p, *end;
	size_t len, i;
	int gfd, absent;

	if ((gfd = openat(s->dirfd, "global", O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1)
		sys_fail("global");
	j = read_small(gfd, JOURNAL, SMALL_MAX, &len, &absent);
	close(gfd);
	if (absent)
		hostile("global/%s without global/%s: not a copy a run of "
		    "pgrelocate left", CONTROL_ASIDE, JOURNAL);
	/* OID, target, and whether it existed, for each: the same as ours */
	p = j;
	end = j + len;
	for (i = 0; i < s->nt; i++) {
		const char *oid = p, *path, *flag;

		path = memchr(p, '\0', (size_t)(end - p)) != NULL ?
		    p + strlen(p) + 1 : end;
		flag = path < end && memchr(path, '\0', (size_t)(end - path)) !=
		    NULL ? path + strlen(path) + 1 : end;
		if (flag >= end || memchr(flag, '\0', (size_t)(end - flag)) ==
		    NULL || strcmp(oid, s->t[i].oid) != 0 ||
		    strcmp(path, s->t[i].new) != 0)
			break;
		s->t[i].existed = strcmp(flag, "e") == 0;
		p = (char *)flag + strlen(flag) + 1;
	}
	if (i != s->nt || p != end)
		status_exit(OUTCOME_USAGE, NULL, "%s: a first run set out with "
		    "other targets: run it again with the same -T and -O", s->dir);
	free(j);
}

/*
 * The journal, then global/pg_control to its aside name, both durably:
 * from here the copy cannot start until the step's last phase.
 */
static void
set_aside(struct step *s)
{
	struct buf b = { 0 };
	int gfd, fd;

	if (s->resumed)
		return;
	if ((gfd = openat(s->dirfd, "global", O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1)
		sys_fail("global");
	journal_of(s, &b);
	(void)unlinkat(gfd, JOURNAL, 0);
	if ((fd = openat(gfd, JOURNAL, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0600)) == -1 ||
	    write_all(fd, b.p, b.len) == -1 || fsync(fd) == -1 ||
	    close(fd) == -1)
		sys_fail("global/%s", JOURNAL);
	buf_free(&b);
	fsync_dir(gfd, "global");
	if (renameat(gfd, CONTROL, gfd, CONTROL_ASIDE) == -1)
		sys_fail("global/%s", CONTROL);
	fsync_dir(gfd, "global");
	close(gfd);
	s->resumed = 1;
	began = 1;
}

static void copy_tree(int, int, const char *, const char *, int);

/* One regular file copied, its mode and time kept, synced. */
static void
copy_file(int sfd, int dfd, const char *name, const char *what)
{
	char buf[65536];
	struct timespec ts[2];
	struct stat st;
	ssize_t n;
	int in, out;

	if ((in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1 ||
	    fstat(in, &st) == -1)
		sys_fail("%s", what);
	(void)unlinkat(dfd, name, 0);	/* a copy a killed run left */
	if ((out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1)
		sys_fail("%s", what);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write_all(out, buf, (size_t)n) == -1)
			sys_fail("%s", what);
	if (n == -1)
		sys_fail("%s", what);
	ts[0] = st.st_atim;
	ts[1] = st.st_mtim;
	/* the copy's file as it was: owner, mode and time */
	if ((geteuid() == 0 && fchown(out, st.st_uid, st.st_gid) == -1) ||
	    fchmod(out, st.st_mode & 07777) == -1 || futimens(out, ts) == -1 ||
	    fsync(out) == -1 || close(out) == -1)
		sys_fail("%s", what);
	close(in);
}

/* A tree copied from sfd's name into dfd's, for a target on another file system. */
static void
copy_tree(int sfd, int dfd, const char *name, const char *what, int depth)
{
	struct dirent *d;
	struct stat st;
	DIR *dp;
	int in, out;
	char *sub;

	if (fstatat(sfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		sys_fail("%s", what);
	if (S_ISREG(st.st_mode)) {
		copy_file(sfd, dfd, name, what);
		return;
	}
	if (!S_ISDIR(st.st_mode) || depth > 64)
		hostile("%s: not a file or directory", what);
	if (mkdirat(dfd, name, 0700) == -1 && errno != EEXIST)
		sys_fail("%s", what);
	if ((in = openat(sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1 || (out = openat(dfd, name, O_RDONLY |
	    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		sys_fail("%s", what);
	if ((dp = entries(in)) == NULL)
		sys_fail("%s", what);
	while ((d = readdir(dp)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		sub = xmalloc(strlen(what) + strlen(d->d_name) + 2);
		sprintf(sub, "%s/%s", what, d->d_name);
		copy_tree(in, out, d->d_name, sub, depth + 1);
		free(sub);
	}
	closedir(dp);
	if ((geteuid() == 0 && fchown(out, st.st_uid, st.st_gid) == -1) ||
	    fchmod(out, st.st_mode & 07777) == -1 || fsync(out) == -1)
		sys_fail("%s", what);
	close(in);
	close(out);
}

/* A tree removed, nothing followed (the copy's own, already copied). */
static void
remove_tree(int fd, const char *name, int depth)
{
	struct dirent *d;
	DIR *dp;
	int sub;

	if (unlinkat(fd, name, 0) == 0 || (errno != EISDIR && errno != EPERM))
		return;
	if (depth > 64 || (sub = openat(fd, name, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1 || (dp = entries(sub)) == NULL)
		sys_fail("%s", name);
	close(sub);
	while ((d = readdir(dp)) != NULL)
		if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0)
			remove_tree(dirfd(dp), d->d_name, depth + 1);
	closedir(dp);
	if (unlinkat(fd, name, AT_REMOVEDIR) == -1)
		sys_fail("%s", name);
}

/*
 * A tablespace to its target: each entry renamed there (copied, then
 * removed, across file systems), pg_tblspc/OID made a link to it.
 */
static void
move_tablespace(struct step *s, int tsfd, struct target *t)
{
	struct dirent *d;
	DIR *dp;
	int src, tfd;
	char what[PATH_MAX];

	if (tablespace_state(s, tsfd, t) == 1)
		return;
	tfd = open_target(s, t, 1);
	if ((src = openat(tsfd, t->oid, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1 || (dp = entries(src)) == NULL)
		sys_fail("pg_tblspc/%s", t->oid);
	while ((d = readdir(dp)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		check_signal();
		snprintf(what, sizeof(what), "pg_tblspc/%s/%s", t->oid,
		    d->d_name);
		if (renameat(src, d->d_name, tfd, d->d_name) == 0)
			continue;
		if (errno != EXDEV)
			sys_fail("%s", what);
		copy_tree(src, tfd, d->d_name, what, 0);
		remove_tree(src, d->d_name, 0);
	}
	closedir(dp);
	fsync_dir(tfd, t->new);
	close(src);
	if (unlinkat(tsfd, t->oid, AT_REMOVEDIR) == -1 ||
	    symlinkat(t->new, tsfd, t->oid) == -1)
		sys_fail("pg_tblspc/%s", t->oid);
	if (geteuid() == 0 && fchownat(tsfd, t->oid, s->uid, s->gid,
	    AT_SYMLINK_NOFOLLOW) == -1)
		sys_fail("pg_tblspc/%s", t->oid);
	fsync_dir(tsfd, "pg_tblspc");
	fprintf(stderr, "pgrelocate: tablespace %s: %s\n", t->oid, t->new);
	close(tfd);
}

/* One file of the copy through the verifier, under name. */
static void
verify_file(struct bmv *v, int fd, const char *file, const char *name)
{
	char buf[65536];
	struct stat st;
	ssize_t n;
	int in;

	if ((in = openat(fd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1 ||
	    fstat(in, &st) == -1)
		sys_fail("%s", name);
	bmv_begin(v, name, strlen(name), (uint64_t)st.st_size, BMV_FILE);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		bmv_data(v, buf, (size_t)n);
	if (n == -1)
		sys_fail("%s", name);
	close(in);
}

static void
member_done(struct bmv *v)
{
	char err[512];

	if (bmv_end(v, err, sizeof(err)) == -1)
		status_exit(OUTCOME_VERIFY_FAILED, NULL, "%s", err);
}

/*
 * Every file and directory of the copy, the tablespaces' through their
 * targets, pg_control from its aside name: each checked against
 * backup_manifest, which comes last.
 */
static void
verify_tree(struct step *s, struct bmv *v, int fd, const char *path, int depth)
{
	struct dirent *d;
	struct stat st;
	DIR *dp;
	char *name;
	int sub;
	size_t i;

	if ((dp = entries(fd)) == NULL)
		sys_fail("%s", path);
	while ((d = readdir(dp)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		check_signal();
		name = xmalloc(strlen(path) + strlen(d->d_name) + 2);
		sprintf(name, "%s%s%s", path, *path ? "/" : "", d->d_name);
		/* ours, and the snapshot's own metadata */
		if (strcmp(name, "backup_manifest") == 0 ||
		    strcmp(name, "manifest.json") == 0 ||
		    strcmp(name, "postmaster.opts") == 0 ||
		    strcmp(name, "global/" JOURNAL) == 0 ||
		    strcmp(name, "global/" AUTOCONF_SIZE) == 0) {
			free(name);
			continue;
		}
		if (fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1)
			sys_fail("%s", name);
		if (strcmp(name, "global/" CONTROL_ASIDE) == 0) {
			verify_file(v, fd, d->d_name, "global/pg_control");
			member_done(v);
		} else if (S_ISREG(st.st_mode)) {
			verify_file(v, fd, d->d_name, name);
			member_done(v);
		} else {
			bmv_begin(v, name, strlen(name), 0, BMV_DIR);
			member_done(v);
			sub = -1;
			if (S_ISLNK(st.st_mode) && depth == 1 &&
			    strcmp(path, "pg_tblspc") == 0) {
				for (i = 0; i < s->nt; i++)
					if (strcmp(s->t[i].oid, d->d_name) == 0)
						sub = open(s->t[i].new, O_RDONLY |
						    O_DIRECTORY | O_NOFOLLOW |
						    O_CLOEXEC);
			} else if (S_ISDIR(st.st_mode))
				sub = openat(fd, d->d_name, O_RDONLY |
				    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub == -1)
				sys_fail("%s", name);
			verify_tree(s, v, sub, name, depth + 1);
			close(sub);
		}
		free(name);
	}
	closedir(dp);
}

/* The checksum algorithm backup_manifest uses, CRC32C if it says none. */
static enum ck_algo
manifest_algo(const char *m)
{
	const char *p = strstr(m, "\"Checksum-Algorithm\"");
	char name[16];
	enum ck_algo a = CK_CRC32C;

	if (p != NULL && sscanf(p, "\"Checksum-Algorithm\" : \"%15[A-Z0-9]\"",
	    name) != 1 && sscanf(p, "\"Checksum-Algorithm\": \"%15[A-Z0-9]\"",
	    name) != 1)
		return a;
	if (p != NULL)
		(void)ck_algo_parse(name, &a);
	return a;
}

/* A first run's -A line taken out: the file as the manifest knows it. */
static void
undo_archive_off(struct step *s)
{
	char *p;
	size_t len;
	long long size;
	int gfd, absent, fd;

	if ((gfd = openat(s->dirfd, "global", O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1)
		sys_fail("global");
	p = read_small(gfd, AUTOCONF_SIZE, 64, &len, &absent);
	if (absent) {
		close(gfd);
		return;
	}
	size = atoll(p);
	free(p);
	if ((fd = openat(s->dirfd, "postgresql.auto.conf", O_WRONLY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1 || size < 0 ||
	    ftruncate(fd, (off_t)size) == -1 || fsync(fd) == -1 ||
	    close(fd) == -1 || unlinkat(gfd, AUTOCONF_SIZE, 0) == -1)
		sys_fail("postgresql.auto.conf");
	close(gfd);
}

static void
verify_copy(struct step *s)
{
	struct bmv *v;
	char err[1024], *bad = NULL;
	size_t badlen;

	/* the manifest read at the start, the one the checks so far trusted */
	if ((v = bmv_new(manifest_algo(s->manifest))) == NULL)
		status_exit(OUTCOME_USAGE, NULL, "cannot set up checksums");
	bmv_restore(v);
	verify_tree(s, v, s->dirfd, "", 0);
	bmv_begin(v, "backup_manifest", 15, s->manifest_len, BMV_FILE);
	bmv_data(v, s->manifest, s->manifest_len);
	member_done(v);
	if (bmv_check(v, err, sizeof(err), &bad, &badlen) == -1)
		status_exit(OUTCOME_VERIFY_FAILED, NULL, "%s: the copy does not "
		    "match its backup_manifest: %s; it cannot start (global/"
		    CONTROL " is set aside)", s->dir, err);
	free(bad);
	bmv_free(v);
	fprintf(stderr, "pgrelocate: every file checked against "
	    "backup_manifest\n");
}

/*
 * A program run to its end: as the copy's owner when as_owner and we are
 * root (postgres refuses root), else as we are.
 */
static int
run(struct step *s, char *const argv[], int outfd, int as_owner)
{
	pid_t pid;
	int status;

	if ((pid = fork()) == -1)
		sys_fail("fork");
	if (pid == 0) {
		if (outfd >= 0 && dup2(outfd, STDOUT_FILENO) == -1)
			_exit(126);
		if (as_owner && geteuid() == 0 && (setgroups(0, NULL) == -1 ||
		    setgid(s->gid) == -1 || setuid(s->uid) == -1))
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) == -1) {
		if (errno != EINTR)
			sys_fail("waitpid");
		if (stop_signal)
			(void)kill(pid, SIGTERM);
	}
	check_signal();
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* pg_verifybackup of a trusted place, pg_control ignored (it is aside). */
static void
pg_verifybackup(struct step *s)
{
	char *argv[18];
	int n = 0;

	if (s->verifier == NULL) {
		fprintf(stderr, "pgrelocate: no pg_verifybackup found: the "
		    "check against backup_manifest above stands alone\n");
		return;
	}
	/* manifests of version 2 (PostgreSQL 17) are read from 17 on */
	if (s->verifier_major < 17 && manifest_version(s) >= 2) {
		fprintf(stderr, "pgrelocate: pg_verifybackup %d cannot read "
		    "this manifest (version 2): the check against "
		    "backup_manifest above stands alone\n", s->verifier_major);
		return;
	}
	argv[n++] = s->verifier;
	argv[n++] = "-q";
	/* pg_control is aside: checked above, in C, under its own name */
	argv[n++] = "-i";
	argv[n++] = "global/" CONTROL;
	argv[n++] = "-i";
	argv[n++] = "global/" CONTROL_ASIDE;
	argv[n++] = "-i";
	argv[n++] = "manifest.json";
	argv[n++] = "-i";
	argv[n++] = "postmaster.opts";
	argv[n++] = "-i";
	argv[n++] = "global/" JOURNAL;
	argv[n++] = "-i";
	argv[n++] = "global/" AUTOCONF_SIZE;
	if (s->verifier_major != s->major) {
		/* another major's verifier knows not this major's WAL */
		argv[n++] = "-n";
		fprintf(stderr, "pgrelocate: pg_verifybackup %d for a copy of "
		    "%d: files only (-n)\n", s->verifier_major, s->major);
	}
	argv[n++] = s->real;
	argv[n] = NULL;
	if (run(s, argv, STDERR_FILENO, 0) != 0)
		status_exit(OUTCOME_VERIFY_FAILED, NULL, "%s failed "
		    "pg_verifybackup: it cannot start (global/" CONTROL " is "
		    "set aside)", s->dir);
	fprintf(stderr, "pgrelocate: verified by pg_verifybackup %d%s\n",
	    s->verifier_major, s->verifier_major != s->major ?
	    " (files only)" : "");
}

/* archive_mode as the server would read it: postgres -C, as the owner. */
static void
archiving(struct step *s)
{
	char *argv[6], value[64], size[32];
	struct stat st_conf;
	int fds[2], fd, st, gfd, kfd;
	ssize_t n;

	if (s->postgres == NULL) {
		fprintf(stderr, "pgrelocate: warning: no postgres found to read "
		    "archive_mode with: check it before starting the copy\n");
		return;
	}
	argv[0] = s->postgres;
	argv[1] = "-C";
	argv[2] = "archive_mode";
	argv[3] = "-D";
	argv[4] = s->real;
	argv[5] = NULL;
	if (pipe(fds) == -1)
		sys_fail("pipe");
	st = run(s, argv, fds[1], 1);
	close(fds[1]);
	n = read(fds[0], value, sizeof(value) - 1);
	close(fds[0]);
	if (st != 0 || n <= 0)
		status_exit(OUTCOME_USAGE, NULL, "postgres -C archive_mode -D "
		    "%s failed (exit %d): the copy's settings cannot be read",
		    s->dir, st);
	value[n] = '\0';
	value[strcspn(value, "\n")] = '\0';
	if (strcmp(value, "off") == 0)
		return;
	if (!s->archive_off) {
		fprintf(stderr, "pgrelocate: warning: the copy archives WAL "
		    "(archive_mode = %s): started as it is, it would push its "
		    "WAL into the source's archive; set archive_mode = off or "
		    "another archive_command before starting it (-A does "
		    "it)\n", value);
		return;
	}
	/*
	 * The size it had is kept first: a run killed after the line went in
	 * is followed by one that takes it out again before checking the
	 * file against the manifest (undo_archive_off).
	 */
	if ((fd = openat(s->dirfd, "postgresql.auto.conf", O_WRONLY |
	    O_APPEND | O_NOFOLLOW | O_CLOEXEC)) == -1 || fstat(fd, &st_conf) ==
	    -1)
		sys_fail("postgresql.auto.conf");
	snprintf(size, sizeof(size), "%jd\n", (intmax_t)st_conf.st_size);
	if ((gfd = openat(s->dirfd, "global", O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1 ||
	    (kfd = openat(gfd, AUTOCONF_SIZE, O_WRONLY | O_CREAT | O_TRUNC |
	    O_NOFOLLOW | O_CLOEXEC, 0600)) == -1 ||
	    write_all(kfd, size, strlen(size)) == -1 || fsync(kfd) == -1 ||
	    close(kfd) == -1)
		sys_fail("global/%s", AUTOCONF_SIZE);
	fsync_dir(gfd, "global");
	close(gfd);
	if (write_all(fd, "archive_mode = 'off'\n", 21) == -1 ||
	    fsync(fd) == -1 || close(fd) == -1)
		sys_fail("postgresql.auto.conf");
	fprintf(stderr, "pgrelocate: archive_mode = 'off' set in the copy's "
	    "postgresql.auto.conf\n");
}

/* Everything below fd given to the owner, links not followed. */
static void
chown_tree(struct step *s, int fd, const char *path, int depth)
{
	struct dirent *d;
	struct stat st;
	DIR *dp;
	int sub;

	if (depth > 64 || (dp = entries(fd)) == NULL)
		sys_fail("%s", path);
	while ((d = readdir(dp)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		if (fchownat(fd, d->d_name, s->uid, s->gid,
		    AT_SYMLINK_NOFOLLOW) == -1 ||
		    fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1)
			sys_fail("%s/%s", path, d->d_name);
		if (!S_ISDIR(st.st_mode))
			continue;
		if ((sub = openat(fd, d->d_name, O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC)) == -1)
			sys_fail("%s/%s", path, d->d_name);
		chown_tree(s, sub, d->d_name, depth + 1);
		close(sub);
	}
	closedir(dp);
}

/*
 * -U: the copy and the targets the step made, theirs; the copy's root
 * 0700, or 0750 where it gave its group access.  A target given as an
 * empty directory keeps its owner: only what went into it is chowned.
 */
static void
give_to_user(struct step *s)
{
	struct stat st;
	size_t i;
	int fd;

	if (s->user == NULL)
		return;
	chown_tree(s, s->dirfd, s->dir, 0);
	if (fstat(s->dirfd, &st) == -1 ||
	    fchown(s->dirfd, s->uid, s->gid) == -1 ||
	    fchmod(s->dirfd, (st.st_mode & 0070) ? 0750 : 0700) == -1)
		sys_fail("%s", s->dir);
	for (i = 0; i < s->nt; i++) {
		if ((fd = open(s->t[i].new, O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC)) == -1)
			sys_fail("%s", s->t[i].new);
		chown_tree(s, fd, s->t[i].new, 0);
		if (!s->t[i].existed && (fchown(fd, s->uid, s->gid) == -1 ||
		    fchmod(fd, 0700) == -1))
			sys_fail("%s", s->t[i].new);
		close(fd);
	}
	fprintf(stderr, "pgrelocate: the copy is %s's\n", s->user);
}

/* tablespace_map gone, everything synced, then pg_control back. */
static void
finish(struct step *s)
{
	int gfd;

	if (unlinkat(s->dirfd, "tablespace_map", 0) == -1 && errno != ENOENT)
		sys_fail("tablespace_map");
	if (syncfs(s->dirfd) == -1)
		sys_fail("syncfs");
	fsync_dir(s->dirfd, s->dir);
	/*
	 * pg_control back first: a kill after it leaves a finished copy
	 * with a journal that no longer matters, never the reverse.
	 */
	if ((gfd = openat(s->dirfd, "global", O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1 ||
	    renameat(gfd, CONTROL_ASIDE, gfd, CONTROL) == -1)
		sys_fail("global/%s", CONTROL);
	fsync_dir(gfd, "global");
	if ((unlinkat(gfd, AUTOCONF_SIZE, 0) == -1 && errno != ENOENT) ||
	    unlinkat(gfd, JOURNAL, 0) == -1)
		sys_fail("global/%s", JOURNAL);
	fsync_dir(gfd, "global");
	close(gfd);
}

/* -n: every change the step would make, none made. */
static void
print_plan(struct step *s)
{
	size_t i;

	printf("set aside global/%s as global/%s\n", CONTROL, CONTROL_ASIDE);
	for (i = 0; i < s->nt; i++)
		printf("move pg_tblspc/%s to %s; link pg_tblspc/%s to it\n",
		    s->t[i].oid, s->t[i].new, s->t[i].oid);
	printf("check every file against backup_manifest\n");
	if (s->user != NULL)
		printf("give the copy and the targets made to %s\n", s->user);
	printf("run %s\n", s->verifier != NULL ? s->verifier :
	    "no pg_verifybackup (none found)");
	printf("read archive_mode with %s%s\n", s->postgres != NULL ?
	    s->postgres : "no postgres (none found)", s->archive_off ?
	    "; set it off in postgresql.auto.conf if on" : "");
	printf("remove tablespace_map; put global/%s back\n", CONTROL);
}

/* The exact command that starts the copy: its major's pg_ctl, as its owner. */
static void
start_command(const struct step *s)
{
	char *dir = s->postgres != NULL ? xstrdup(s->postgres) : NULL;
	struct passwd *pw = getpwuid(s->uid);

	fprintf(stderr, "pgrelocate: ready; start it with:\n  ");
	if (geteuid() == 0 && pw != NULL)
		fprintf(stderr, "runuser -u %s -- ", pw->pw_name);
	fprintf(stderr, "%s%spg_ctl -D %s -l %s.log start\n",
	    dir != NULL ? dirname(dir) : "", dir != NULL ? "/" : "", s->real,
	    s->real);
	free(dir);
}

int
main(int argc, char *argv[])
{
	struct step s;
	char err[256], *o, *n;
	size_t i;
	int ch, tsfd = -1;

	memset(&s, 0, sizeof(s));
	status_start("pgrelocate", NULL);
	if (status_answer(argc, argv, help))
		return 0;
	while ((ch = getopt(argc, argv, "AB:F:a:nOs:T:U:")) != -1) {
		switch (ch) {
		case 'A':
			s.archive_off = 1;
			break;
		case 'B':
			s.bindir = optarg;
			break;
		case 'F':
			status_start("pgrelocate", optarg);
			break;
		case 'n':
			s.plan = 1;
			break;
		case 'O':
			s.original = 1;
			break;
		case 'U':
			s.user = optarg;
			break;
		case 'a':
			s.store = optarg;
			break;
		case 's':
			s.snapshot = optarg;
			break;
		case 'T':
			if (tsmap_option(optarg, &o, &n, err,
			    sizeof(err)) == -1)
				status_exit(OUTCOME_USAGE, NULL, "%s", err);
			s.maps_old = xrealloc(s.maps_old, (s.nmaps + 1) *
			    sizeof(char *));
			s.maps_new = xrealloc(s.maps_new, (s.nmaps + 1) *
			    sizeof(char *));
			s.maps_old[s.nmaps] = o;
			s.maps_new[s.nmaps++] = n;
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 1)
		usage();
	s.dir = argv[optind];
	signal(SIGPIPE, SIG_IGN);
	/* INT, TERM and HUP: the step stops at its next check_signal */
	stop_signals_catch();
	if ((s.store != NULL && s.snapshot == NULL) ||
	    (s.snapshot != NULL && s.plan))
		usage();
	if ((s.store != NULL && s.store[0] == '-') || (s.snapshot != NULL &&
	    (s.snapshot[0] == '\0' || strspn(s.snapshot, "0123456789abcdef") !=
	    strlen(s.snapshot))))
		status_exit(OUTCOME_USAGE, NULL, "-a and -s: a store, and a "
		    "snapshot's id in hexadecimal");
	if (s.snapshot != NULL && !s.plan)
		plakar_restore(&s);

	open_copy(&s);
	if (s.user != NULL)
		set_user(&s);
	read_copy(&s);
	/* a copy a first run changed cannot start until this one ends */
	began = s.resumed;
	if (!s.has_map) {
		if (!s.resumed && s.nmaps > 0)
			status_exit(OUTCOME_USAGE, NULL, "%s: the copy has no "
			    "tablespaces, and -T names some", s.dir);
	}
	plan_targets(&s);
	s.verifier = trusted_program(&s, "pg_verifybackup", 0);
	s.postgres = trusted_program(&s, "postgres", 1);
	if (s.verifier != NULL && (s.verifier_major = major_of(s.verifier)) ==
	    -1)
		status_exit(OUTCOME_USAGE, NULL, "%s: not a pg_verifybackup",
		    s.verifier);
	if (s.postgres != NULL && major_of(s.postgres) != s.major)
		status_exit(OUTCOME_USAGE, NULL, "%s is not PostgreSQL %d's "
		    "postgres: use -B with the copy's major", s.postgres,
		    s.major);
	scan(s.dirfd, "", 0, 0);
	if ((tsfd = openat(s.dirfd, "pg_tblspc", O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1)
		hostile("pg_tblspc: %s", strerror(errno));
	check_tblspc(&s, tsfd);
	if (s.resumed)
		check_journal(&s);
	for (i = 0; i < s.nt; i++)
		if (tablespace_state(&s, tsfd, &s.t[i]) == 0 &&
		    (ch = open_target(&s, &s.t[i], 0)) != -1) {
			if (!s.resumed)
				s.t[i].existed = 1;
			close(ch);
		}
	if (s.plan) {
		print_plan(&s);
		status_ok();
		return 0;
	}
	phase("checked");

	set_aside(&s);
	phase("aside");
	for (i = 0; i < s.nt; i++)
		move_tablespace(&s, tsfd, &s.t[i]);
	phase("moved");
	undo_archive_off(&s);
	verify_copy(&s);
	pg_verifybackup(&s);
	phase("verified");
	give_to_user(&s);
	phase("owned");
	archiving(&s);
	phase("configured");
	finish(&s);
	phase("done");

	start_command(&s);
	status_ok();
	return 0;
}
