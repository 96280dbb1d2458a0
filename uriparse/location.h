#ifndef PLAKAR_PG_LOCATION_H
#define PLAKAR_PG_LOCATION_H

#include <stddef.h>

/*
 * A source's location and options, read as libpq reads a URI and checked
 * by the option table (plakar/options): uriparse's parser, apart from its
 * command line so that it is fuzzed through these entry points.  Each
 * returns 0, or -1 with errbuf; nothing here ends the process.
 */

#define SCHEME	"postgres+bin://"
#define MAXOPT	64

/* What the user gave, each value malloc'd or NULL, by option_table. */
struct options {
	char	*val[MAXOPT];
};

/* The normalized connection. */
struct conn {
	char	*host;
	char	*port;
	char	*user;		/* NULL: libpq's default */
	char	*password;	/* NULL: none given */
	char	*ssl_file[3];	/* cert, key, root cert: paths */
	char	*ssl_data[3];	/* or PEM text */
};

extern const char *const file_keys[3];
extern const char *const data_keys[3];

size_t		 opt_index(const char *);
const char	*given(const struct options *, const char *);
const char	*value_of(const struct options *, const char *);
int	set_value(struct options *, const char *, size_t, const char *, char *,
	    size_t);
/* key=value */
int	set_option(struct options *, const char *, char *, size_t);
/* The location parsed, the options checked together, into a conn. */
int	normalize(struct options *, struct conn *, char *, size_t);
void	free_conn(struct conn *);
void	free_options(struct options *);

#endif
