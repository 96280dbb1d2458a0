/*
 * Small helpers shared by the plakar-pg programs.
 */
#ifndef PLAKAR_PG_UTIL_H
#define PLAKAR_PG_UTIL_H

#include <stddef.h>
#include <stdint.h>

#ifndef VERSION
#define VERSION "0.0.0"
#endif

/* Write all of buf to fd; -1 with errno set on failure. */
int	write_all(int, const void *, size_t);

/* n as 4 big-endian bytes at p. */
void	be32_put(unsigned char *, uint32_t);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void	hex_encode(const void *, size_t, char *);
/* Decode hex into out (len/2 bytes); -1 when not even-length hex. */
int	hex_decode(const char *, size_t, unsigned char *);

/*
 * A member or record name that is safe to create below a directory: not
 * empty, not absolute, no NUL, no ".." component.
 */
int	relpath_is_safe(const char *, size_t);

/* Whether the n bytes at p are all zero. */
int	is_zero(const void *, size_t);

/*
 * A copy of n bytes fit for one line of a terminal: control characters
 * (newlines and escapes among them) become '?'.  free() it.
 */
char	*one_line(const char *, size_t);

/* Format a message into errbuf and return -1, for error paths. */
int	seterr(char *, size_t, const char *, ...)
	    __attribute__((format(printf, 3, 4)));

/*
 * A growable byte buffer: bytes [off, len) of p are unread, cap are
 * allocated.  Zero-initialised is empty.
 */
struct buf {
	unsigned char	*p;
	size_t		 off;
	size_t		 len;
	size_t		 cap;
};

/* Room for n more bytes at p + len, moving or growing as needed. */
void	buf_reserve(struct buf *, size_t);
void	buf_append(struct buf *, const void *, size_t);
size_t	buf_avail(const struct buf *);
void	buf_free(struct buf *);

void	out_of_memory(const char *) __attribute__((noreturn));
void	*xmalloc(size_t);
void	*xrealloc(void *, size_t);
char	*xstrdup(const char *);

#endif
