/*
 * restore: records into a directory, relative to its descriptor
 * (restore.h).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "restore.h"
#include "util.h"

/* A directory made, its mode and time set once nothing more goes in it. */
struct made_dir {
	char		*name;
	unsigned int	 mode;
	int64_t		 mtime;
};

struct restore {
	int		 dirfd;
	int		 fd;		/* the file being written, or -1 */
	unsigned int	 mode;		/* its mode and time */
	int64_t		 mtime;
	char		*name;		/* its name, for messages */
	struct made_dir	*dirs;
	size_t		 ndirs;
	size_t		 capdirs;
};

struct restore *
restore_new(int dirfd)
{
	struct restore *r = xmalloc(sizeof(*r));

	memset(r, 0, sizeof(*r));
	r->dirfd = dirfd;
	r->fd = -1;
	return r;
}

void
restore_free(struct restore *r)
{
	size_t i;

	if (r == NULL)
		return;
	if (r->fd >= 0)
		close(r->fd);
	for (i = 0; i < r->ndirs; i++)
		free(r->dirs[i].name);
	free(r->dirs);
	free(r->name);
	free(r);
}

/*
 * The directory that holds name, opened by walking its components from
 * the top with nothing followed; a component not there yet is made
 * (0700), as a tar reader makes them.  *base: the last component.  The
 * descriptor, or -1 and err.
 */
static int
open_parent(struct restore *r, const char *name, const char **base,
    char *err, size_t errlen)
{
	char comp[256];
	const char *p = name, *slash;
	int fd, next;

	if ((fd = dup(r->dirfd)) == -1)
		return seterr(err, errlen, "dup: %s", strerror(errno));
	while ((slash = strchr(p, '/')) != NULL) {
		size_t n = (size_t)(slash - p);

		if (n == 0 || n >= sizeof(comp)) {
			close(fd);
			return seterr(err, errlen, "%s: a bad path", name);
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		if (next == -1 && errno == ENOENT) {
			if (mkdirat(fd, comp, 0700) == -1 && errno != EEXIST) {
				seterr(err, errlen, "%s: %s", name,
				    strerror(errno));
				close(fd);
				return -1;
			}
			next = openat(fd, comp, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
		}
		if (next == -1) {
			/* a link or a file where a directory was due */
			seterr(err, errlen, "%s: %.*s is not a directory of the "
			    "restore: %s", name, (int)(slash - name), name,
			    strerror(errno));
			close(fd);
			return -1;
		}
		close(fd);
		fd = next;
		p = slash + 1;
	}
	*base = p;
	return fd;
}

static void
remember_dir(struct restore *r, const char *name, unsigned int mode,
    int64_t mtime)
{
	if (r->ndirs == r->capdirs) {
		r->capdirs = r->capdirs ? 2 * r->capdirs : 64;
		r->dirs = xrealloc(r->dirs, r->capdirs * sizeof(*r->dirs));
	}
	r->dirs[r->ndirs].name = xstrdup(name);
	r->dirs[r->ndirs].mode = mode;
	r->dirs[r->ndirs].mtime = mtime;
	r->ndirs++;
}

static void
time_of(struct timespec ts[2], int64_t mtime)
{
	ts[0].tv_sec = (time_t)mtime;
	ts[0].tv_nsec = 0;
	ts[1] = ts[0];
}

int
restore_begin(struct restore *r, const struct frame *f, const char *name,
    char *err, size_t errlen)
{
	struct timespec ts[2];
	const char *base;
	struct stat st;
	int pfd, rc = 0;

	if ((pfd = open_parent(r, name, &base, err, errlen)) == -1)
		return -1;
	if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
		close(pfd);
		return seterr(err, errlen, "%s: a bad path", name);
	}
	switch (f->type) {
	case FRAME_DIR:
		if (mkdirat(pfd, base, 0700) == -1 && (errno != EEXIST ||
		    fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
		    !S_ISDIR(st.st_mode)))
			rc = seterr(err, errlen, "%s: %s", name,
			    strerror(errno == 0 ? EEXIST : errno));
		else
			remember_dir(r, name, f->mode, f->mtime);
		break;
	case FRAME_FILE:
		r->fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, 0600);
		if (r->fd == -1)
			rc = seterr(err, errlen, "%s: %s", name,
			    strerror(errno));
		r->mode = f->mode;
		r->mtime = f->mtime;
		free(r->name);
		r->name = xstrdup(name);
		break;
	case FRAME_SYMLINK:
		time_of(ts, f->mtime);
		if (symlinkat(f->target, pfd, base) == -1 ||
		    utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) == -1)
			rc = seterr(err, errlen, "%s: %s", name,
			    strerror(errno));
		break;
	case FRAME_HARDLINK: {
		const char *tbase;
		int tfd;

		/* its target, a record before it, within the directory */
		if (strncmp(f->target, "/data/", 6) != 0) {
			rc = seterr(err, errlen, "%s: hard link outside /data/",
			    name);
			break;
		}
		if ((tfd = open_parent(r, f->target + 6, &tbase, err,
		    errlen)) == -1) {
			rc = -1;
			break;
		}
		if (linkat(tfd, tbase, pfd, base, 0) == -1)
			rc = seterr(err, errlen, "%s: %s", name,
			    strerror(errno));
		close(tfd);
		break;
	}
	default:
		rc = seterr(err, errlen, "%s: not a record to restore", name);
	}
	close(pfd);
	return rc;
}

int
restore_data(struct restore *r, const void *p, size_t n, char *err,
    size_t errlen)
{
	if (r->fd < 0)
		return seterr(err, errlen, "data without a file");
	if (write_all(r->fd, p, n) == -1)
		return seterr(err, errlen, "%s: %s", r->name, strerror(errno));
	return 0;
}

int
restore_end(struct restore *r, char *err, size_t errlen)
{
	struct timespec ts[2];
	int rc = 0;

	if (r->fd < 0)
		return 0;
	time_of(ts, r->mtime);
	if (fchmod(r->fd, (mode_t)(r->mode & 07777)) == -1 ||
	    futimens(r->fd, ts) == -1)
		rc = seterr(err, errlen, "%s: %s", r->name, strerror(errno));
	if (close(r->fd) == -1 && rc == 0)
		rc = seterr(err, errlen, "%s: %s", r->name, strerror(errno));
	r->fd = -1;
	return rc;
}

int
restore_finish(struct restore *r, char *err, size_t errlen)
{
	struct timespec ts[2];
	const char *base;
	size_t i;
	int pfd, fd;

	/* children came after their parents: backwards, deepest first */
	for (i = r->ndirs; i-- > 0;) {
		const struct made_dir *d = &r->dirs[i];

		if ((pfd = open_parent(r, d->name, &base, err, errlen)) == -1)
			return -1;
		fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		close(pfd);
		time_of(ts, d->mtime);
		if (fd == -1 || fchmod(fd, (mode_t)(d->mode & 07777)) == -1 ||
		    futimens(fd, ts) == -1) {
			seterr(err, errlen, "%s: %s", d->name, strerror(errno));
			if (fd != -1)
				close(fd);
			return -1;
		}
		close(fd);
	}
	return 0;
}
