/*
 * location: a source's location and options, parsed and checked
 * (location.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

#include "location.h"
#include "options.h"
#include "util.h"

const char *const file_keys[3] = {
	"ssl_cert", "ssl_key", "ssl_root_cert"
};
const char *const data_keys[3] = {
	"ssl_cert_data", "ssl_key_data", "ssl_root_cert_data"
};

size_t
opt_index(const char *key)
{
	return (size_t)(option_find(key, strlen(key)) - option_table);
}

/* The value given for key, or NULL. */
const char *
given(const struct options *o, const char *key)
{
	return o->val[opt_index(key)];
}

/* The value given for key, or its default (NULL: none). */
const char *
value_of(const struct options *o, const char *key)
{
	const char *v = given(o, key);

	return v != NULL ? v : option_table[opt_index(key)].def;
}

/* What the location said, checked as the options of those names are. */
static int
check_location_part(const char *key, const char *v, char *errbuf,
    size_t errlen)
{
	char why[512];

	if (v != NULL && option_check(option_find(key, strlen(key)), v, why,
	    sizeof(why)) == -1)
		return seterr(errbuf, errlen, "location: %s: %s", key, why);
	return 0;
}

/*
 * The location after its scheme as a postgresql:// URI for libpq.  libpq
 * ends the user information at the first '@', a password may hold more: all
 * but the last are sent percent-encoded, as the old parser read them.
 */
static char *
libpq_uri(const char *rest, size_t *lenp)
{
	const char *last = strrchr(rest, '@'), *p;
	size_t len = strlen("postgresql://") + 1, o;
	char *uri;

	for (p = rest; *p != '\0'; p++)
		len += (*p == '@' && p != last) ? 3 : 1;
	uri = xmalloc(len);
	o = (size_t)snprintf(uri, len, "postgresql://");
	for (p = rest; *p != '\0'; p++) {
		if (*p == '@' && p != last) {
			memcpy(uri + o, "%40", 3);
			o += 3;
		} else
			uri[o++] = *p;
	}
	uri[o] = '\0';
	*lenp = len;
	return uri;
}

/*
 * postgres+bin://[user[:password]@]host[:port][/], parsed by libpq as
 * the postgresql:// URI it would be: fills host, port, user and
 * password of c (NULL where the location is silent).  What libpq would
 * take but a backup must not (a database, query parameters, a list of
 * hosts) is refused.
 */
static int
parse_location(const char *loc, struct conn *c, char *errbuf, size_t errlen)
{
	PQconninfoOption *opts, *opt;
	char *uri, *msg = NULL;
	size_t n = strlen(SCHEME), len;
	int rc = 0;

	if (strncasecmp(loc, SCHEME, n) != 0)
		return seterr(errbuf, errlen, "location: not a %s URI", SCHEME);
	/* libpq knows no fragment, and would take a query's settings */
	if (strchr(loc + n, '#') != NULL)
		return seterr(errbuf, errlen, "location: a fragment is not allowed");
	if (strchr(loc + n, '?') != NULL)
		return seterr(errbuf, errlen, "location: a query string is not "
		    "allowed; give options as key=value");
	uri = libpq_uri(loc + n, &len);
	opts = PQconninfoParse(uri, &msg);
	explicit_bzero(uri, len);
	free(uri);
	if (opts == NULL) {
		/* not libpq's reason: it may quote the password */
		rc = seterr(errbuf, errlen, "location: libpq cannot parse it "
		    "(an IPv6 address in brackets? percent-encoding?)");
		PQfreemem(msg);
		return rc;
	}
	for (opt = opts; opt->keyword != NULL && rc == 0; opt++) {
		const char *v = opt->val;

		if (v == NULL)
			continue;
		if ((strcmp(opt->keyword, "host") == 0 ||
		    strcmp(opt->keyword, "port") == 0) && strchr(v, ',') != NULL)
			rc = seterr(errbuf, errlen, "location: one host: a "
			    "backup comes from one server, not a list");
		else if (strcmp(opt->keyword, "host") == 0 && *v != '\0')
			c->host = xstrdup(v);
		else if (strcmp(opt->keyword, "port") == 0 && *v != '\0' &&
		    (rc = check_location_part("port", v, errbuf, errlen)) == 0)
			c->port = xstrdup(v);
		else if (strcmp(opt->keyword, "user") == 0)
			c->user = *v != '\0' ? xstrdup(v) : NULL;
		else if (strcmp(opt->keyword, "password") == 0)
			c->password = xstrdup(v);
		else if (strcmp(opt->keyword, "dbname") == 0 && *v != '\0')
			rc = seterr(errbuf, errlen, "location: a subpath is not "
			    "allowed: pg_basebackup backs up the whole cluster");
	}
	for (opt = opts; opt->keyword != NULL; opt++)
		if (opt->val != NULL)
			explicit_bzero(opt->val, strlen(opt->val));
	PQconninfoFree(opts);
	return rc;
}

/* key (klen bytes of it) = value into o, checked by the option table. */
int
set_value(struct options *o, const char *key, size_t klen, const char *value,
    char *errbuf, size_t errlen)
{
	const struct option_def *d = option_find(key, klen);
	char why[512];
	size_t i;

	if (d == NULL)
		return seterr(errbuf, errlen, "unknown option: %.*s",
		    (int)(klen > 40 ? 40 : klen), key);
	i = (size_t)(d - option_table);
	if (o->val[i] != NULL)
		return seterr(errbuf, errlen, "%s: given twice", d->key);
	if (option_check(d, value, why, sizeof(why)) == -1)
		return seterr(errbuf, errlen, "%s: %s", d->key, why);
	o->val[i] = xstrdup(value);
	return 0;
}

/* key=value */
int
set_option(struct options *o, const char *arg, char *errbuf, size_t errlen)
{
	const char *eq = strchr(arg, '=');

	if (eq == NULL)
		return seterr(errbuf, errlen, "not key=value: %.40s%s", arg,
		    strlen(arg) > 40 ? "..." : "");
	return set_value(o, arg, (size_t)(eq - arg), eq + 1, errbuf, errlen);
}

/* PEM text given on one line has its newlines written \n. */
static char *
unescape_pem(const char *s)
{
	char *p = xmalloc(strlen(s) + 2), *q = p;

	for (; *s != '\0'; s++) {
		if (s[0] == '\\' && s[1] == 'n') {
			*q++ = '\n';
			s++;
		} else
			*q++ = *s;
	}
	if (q == p || q[-1] != '\n')
		*q++ = '\n';
	*q = '\0';
	return p;
}

static int
normalize_ssl(struct options *o, struct conn *c, char *errbuf, size_t errlen)
{
	int j;

	for (j = 0; j < 3; j++) {
		const char *file = given(o, file_keys[j]);
		const char *data = given(o, data_keys[j]);

		if (file != NULL && data != NULL)
			return seterr(errbuf, errlen, "%s and %s: give one, not both",
			    file_keys[j], data_keys[j]);
		if (file != NULL)
			c->ssl_file[j] = xstrdup(file);
		if (data != NULL)
			c->ssl_data[j] = unescape_pem(data);
	}
	return 0;
}

int
normalize(struct options *o, struct conn *c, char *errbuf, size_t errlen)
{
	const char *v;

	memset(c, 0, sizeof(*c));
	if ((v = given(o, "location")) != NULL && (parse_location(v, c, errbuf,
	    errlen) == -1 ||
	    check_location_part("host", c->host, errbuf, errlen) == -1 ||
	    check_location_part("username", c->user, errbuf, errlen) == -1 ||
	    check_location_part("password", c->password, errbuf, errlen) == -1))
		return -1;
	if (normalize_ssl(o, c, errbuf, errlen) == -1)
		return -1;
	/* Options override the location. */
	if ((v = given(o, "host")) != NULL) {
		free(c->host);
		c->host = *v != '\0' ? xstrdup(v) : NULL;
	}
	if (c->host == NULL)
		c->host = xstrdup(value_of(o, "host"));
	if ((v = given(o, "port")) != NULL) {
		free(c->port);
		c->port = xstrdup(v);
	}
	if (c->port == NULL)
		c->port = xstrdup(value_of(o, "port"));
	if ((v = given(o, "username")) != NULL) {
		free(c->user);
		c->user = *v != '\0' ? xstrdup(v) : NULL;
	}
	if ((v = given(o, "password")) != NULL) {
		free(c->password);
		c->password = xstrdup(v);
	}
	return 0;
}

void
free_conn(struct conn *c)
{
	int j;

	free(c->host);
	free(c->port);
	free(c->user);
	if (c->password != NULL)
		explicit_bzero(c->password, strlen(c->password));
	free(c->password);
	for (j = 0; j < 3; j++) {
		free(c->ssl_file[j]);
		free(c->ssl_data[j]);
	}
}

void
free_options(struct options *o)
{
	size_t i;

	for (i = 0; i < option_count; i++) {
		if (o->val[i] != NULL)
			explicit_bzero(o->val[i], strlen(o->val[i]));
		free(o->val[i]);
	}
}

