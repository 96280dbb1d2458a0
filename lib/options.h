/*
 * The options of a postgres+bin source, one table for every program
 * (plakar/options): each option's type and limits, and the one check of
 * a value against them.
 */
#ifndef PLAKAR_PG_OPTIONS_H
#define PLAKAR_PG_OPTIONS_H

#include <stddef.h>

enum option_program {
	PROG_URIPARSE,		/* the connection */
	PROG_PLAKAR_PG,		/* the backup, through basetar */
	PROG_PLAKAR_PG_IMPORTER	/* the plugin's own */
};

enum option_type {
	TYPE_LOCATION,	/* postgres+bin://..., parsed further by uriparse */
	TYPE_HOST,	/* one host name, address or socket directory */
	TYPE_INT,	/* decimal, lo to hi */
	TYPE_TEXT,	/* at most hi bytes */
	TYPE_SECRET,
	TYPE_FILE,	/* a readable regular file */
	TYPE_PEM,	/* PEM text */
	TYPE_BINDIR,	/* a directory with an executable pg_basebackup */
	TYPE_ENUM,	/* one of values */
	TYPE_RATE	/* kB/s lo to hi, or with k or M */
};

struct option_def {
	const char		*key;
	enum option_program	 program;
	enum option_type	 type;
	long long		 lo, hi;
	const char		*values;	/* TYPE_ENUM: space-separated */
	const char		*def;		/* NULL: none */
};

extern const struct option_def	option_table[];
extern const size_t		option_count;

/* The option of that key (len bytes of it), or NULL. */
const struct option_def	*option_find(const char *, size_t);

/*
 * value checked against the option's type and limits: 0, or -1 with
 * what is wrong in errbuf, the key not named (the caller names the key
 * or its flag).  No value may hold a control character, but PEM text
 * its line ends, nor bytes that are not UTF-8.
 */
int	option_check(const struct option_def *, const char *, char *, size_t);

/* A checked TYPE_INT or TYPE_RATE value (kB/s) as a number. */
long long	option_number(const struct option_def *, const char *);

#endif
