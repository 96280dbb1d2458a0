/*
 * uriparse: a postgres+bin:// location and its options, normalized into
 * the libpq environment that pg_basebackup and pgmeta take.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "options.h"
#include "outcome.h"
#include "util.h"

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

static const char *const file_keys[3] = {
	"ssl_cert", "ssl_key", "ssl_root_cert"
};
static const char *const data_keys[3] = {
	"ssl_cert_data", "ssl_key_data", "ssl_root_cert_data"
};

static size_t
opt_index(const char *key)
{
	return (size_t)(option_find(key, strlen(key)) - option_table);
}

/* The value given for key, or NULL. */
static const char *
given(const struct options *o, const char *key)
{
	return o->val[opt_index(key)];
}

/* The value given for key, or its default (NULL: none). */
static const char *
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
static int
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
static int
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

static int
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

static void
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

static void
free_options(struct options *o)
{
	size_t i;

	for (i = 0; i < option_count; i++) {
		if (o->val[i] != NULL)
			explicit_bzero(o->val[i], strlen(o->val[i]));
		free(o->val[i]);
	}
}

#ifdef URIPARSE_FUZZ

int	LLVMFuzzerTestOneInput(const unsigned char *, size_t);

/*
 * The fuzzer's bytes: a location, then NUL-separated key=value options
 * (but the ones that name files: no file system here).
 */
int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct options o;
	struct conn c;
	char errbuf[512], *buf = xmalloc(size + 1), *p;
	size_t off;

	memcpy(buf, data, size);
	buf[size] = '\0';
	memset(&o, 0, sizeof(o));
	(void)set_value(&o, "location", 8, buf, errbuf, sizeof(errbuf));
	for (off = strlen(buf) + 1; off < size; off += strlen(p) + 1) {
		p = buf + off;
		if (strncmp(p, "ssl_cert=", 9) != 0 && strncmp(p, "ssl_key=",
		    8) != 0 && strncmp(p, "ssl_root_cert=", 14) != 0 &&
		    strncmp(p, "pg_bin_dir=", 11) != 0)
			(void)set_option(&o, p, errbuf, sizeof(errbuf));
	}
	(void)normalize(&o, &c, errbuf, sizeof(errbuf));
	free_conn(&c);
	free_options(&o);
	free(buf);
	return 0;
}

#else

static void
usage(void)
{
	status_usage("usage: uriparse -j [-i] [-F fd] [-J file] [location] "
	    "[key=value ...]\n"
	    "       uriparse [-aij] [-F fd] [-J file] [location] [key=value ...] "
	    "-- command [arg ...]\n");
}

static void
help(void)
{
	size_t i;

	printf("uriparse checks a postgres+bin location and its options "
	    "against the option\ntable, and runs a command with the libpq "
	    "environment they give.\n\n"
	    "Usage:\n"
	    "  uriparse [OPTION]... [postgres+bin://[user[:password]@]host"
	    "[:port]] [key=value]...\n"
	    "           [-- command [arg]...]\n\n"
	    "Options:\n"
	    "  -a             add the backup's options to the command's "
	    "arguments\n"
	    "  -i             also read key=value lines on stdin (for "
	    "secrets)\n"
	    "  -J FILE        also read the options as one JSON object from "
	    "FILE\n"
	    "  -j             print the options as JSON, password masked; "
	    "with a command,\n"
	    "                 give it that JSON on its stdin\n"
	    "  -F FD          write the outcome as one JSON line to FD\n"
	    "  --help         show this help, then exit\n"
	    "  --version      output version information, then exit\n\n"
	    "Keys:");
	for (i = 0; i < option_count; i++)
		printf(" %s", option_table[i].key);
	printf(".\n\nAfter --, command runs with the libpq environment set, "
	    "the password and\ninline keys in memfds "
	    "(PGPASSFILE=/proc/self/fd/N).\n");
	exit(0);
}

/*
 * A secret as a memfd of mode 0600, sealed, left open across exec: libpq
 * opens it as /proc/self/fd/N in each program that connects.  It has no
 * name in any file system and is gone with the last process that holds
 * it, however that process ends.
 */
#define SECRET_FD_MIN	10

static char *
secret_fd(const char *name, const char *text)
{
	char path[64];
	int fd, high;

	if ((fd = memfd_create(name, MFD_ALLOW_SEALING)) == -1)
		status_err(OUTCOME_USAGE, "memfd_create");
	/*
	 * Above 9: a shell's redirections (5<<EOF, 6<&0) name one digit,
	 * and must not land on it.
	 */
	if ((high = fcntl(fd, F_DUPFD, SECRET_FD_MIN)) == -1)
		status_err(OUTCOME_USAGE, "%s", name);
	close(fd);
	fd = high;
	if (fchmod(fd, 0600) == -1 ||
	    write_all(fd, text, strlen(text)) == -1 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
	    F_SEAL_WRITE | F_SEAL_SEAL) == -1)
		status_err(OUTCOME_USAGE, "%s", name);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return xstrdup(path);
}

/* pgpass escapes ':' and '\'. */
static char *
pgpass_line(const char *password)
{
	char *p = xmalloc(2 * strlen(password) + 16), *q;

	q = stpcpy(p, "*:*:*:*:");
	for (; *password != '\0'; password++) {
		if (*password == ':' || *password == '\\')
			*q++ = '\\';
		*q++ = *password;
	}
	strcpy(q, "\n");
	return p;
}

static void
set_env(const char *name, const char *value)
{
	if ((value != NULL ? setenv(name, value, 1) : unsetenv(name)) == -1)
		status_err(OUTCOME_USAGE, "%s", name);
}

/* The options, as plakar-pg options prints them: one JSON object. */
static char *
options_json(struct options *op, struct conn *c)
{
	json_t *o = json_object();
	char *s;
	size_t i;
	int j;

	json_object_set_new(o, "host", json_string(c->host));
	json_object_set_new(o, "port", json_integer(atoi(c->port)));
	json_object_set_new(o, "username",
	    c->user != NULL ? json_string(c->user) : json_null());
	json_object_set_new(o, "password",
	    c->password != NULL ? json_string("********") : json_null());
	for (j = 0; j < 3; j++)
		json_object_set_new(o, file_keys[j], c->ssl_file[j] != NULL ?
		    json_string(c->ssl_file[j]) : c->ssl_data[j] != NULL ?
		    json_string("(inline PEM)") : json_null());
	/* The rest as the table has them: numbers as numbers. */
	for (i = 0; i < option_count; i++) {
		const struct option_def *d = &option_table[i];
		const char *v = op->val[i] != NULL ? op->val[i] : d->def;

		if (json_object_get(o, d->key) != NULL ||
		    d->type == TYPE_LOCATION || d->type == TYPE_PEM)
			continue;
		if (v == NULL || (*v == '\0' && d->type == TYPE_TEXT))
			json_object_set_new(o, d->key, json_null());
		else if (d->type == TYPE_INT)
			json_object_set_new(o, d->key,
			    json_integer(option_number(d, v)));
		else
			json_object_set_new(o, d->key, json_string(v));
	}
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s == NULL)
		status_exit(OUTCOME_USAGE, NULL, "the options cannot be put in JSON");
	return s;
}

/*
 * The command's stdin: text, through a pipe that holds it whole (a
 * pipe, so that nothing is named anywhere).
 */
static void
stdin_from(const char *text)
{
	size_t n = strlen(text) + 1;
	int p[2];

	if (pipe(p) == -1)
		status_err(OUTCOME_USAGE, "pipe");
	if (n > 65536 && fcntl(p[1], F_SETPIPE_SZ, (int)n) < (int)n)
		status_exit(OUTCOME_USAGE, NULL, "the options are too long");
	if (write_all(p[1], text, n - 1) == -1 || write_all(p[1], "\n", 1) ==
	    -1)
		status_err(OUTCOME_USAGE, "pipe");
	close(p[1]);
	if (dup2(p[0], STDIN_FILENO) == -1)
		status_err(OUTCOME_USAGE, "pipe");
	close(p[0]);
}

/*
 * The libpq environment set, the secrets in memfds, the backup's options
 * added to the command's arguments, and the command run in our place:
 * nothing is printed, and no shell evaluates anything.
 */
static void
exec_with(struct options *o, struct conn *c, char *argv[], int add,
    const char *json)
{
	static const char *const pem_names[3] = {
		"client.crt", "client.key", "root.crt"
	};
	static const char *const env_names[3] = {
		"PGSSLCERT", "PGSSLKEY", "PGSSLROOTCERT"
	};
	char **args;
	size_t i, n, argc;
	int j;

	set_env("PGHOST", c->host);
	set_env("PGPORT", c->port);
	set_env("PGUSER", c->user);
	set_env("PGSSLMODE", value_of(o, "ssl_mode"));
	for (j = 0; j < 3; j++) {
		char *f = c->ssl_data[j] != NULL ?
		    secret_fd(pem_names[j], c->ssl_data[j]) : NULL;

		set_env(env_names[j], f != NULL ? f : c->ssl_file[j]);
		free(f);
	}
	set_env("PGCONNECT_TIMEOUT", value_of(o, "connect_timeout"));
	/* PGPASSWORD would win over the file, and show in /proc */
	set_env("PGPASSWORD", NULL);
	if (c->password != NULL) {
		char *line = pgpass_line(c->password), *f;

		f = secret_fd("pgpass", line);
		explicit_bzero(line, strlen(line));
		free(line);
		set_env("PGPASSFILE", f);
		free(f);
	}
	set_env("PLAKAR_PG_BIN_DIR", given(o, "pg_bin_dir"));

	/* the backup's options, each once, checked: key=value */
	for (argc = 0; argv[argc] != NULL; argc++)
		;
	args = xmalloc((argc + option_count + 1) * sizeof(*args));
	memcpy(args, argv, argc * sizeof(*args));
	for (i = 0, n = argc; i < option_count; i++) {
		const struct option_def *d = &option_table[i];
		const char *v = o->val[i] != NULL ? o->val[i] : d->def;
		size_t len;

		if (!add || d->program != PROG_PLAKAR_PG || v == NULL ||
		    *v == '\0')
			continue;
		len = strlen(d->key) + strlen(v) + 2;
		args[n] = xmalloc(len);
		snprintf(args[n++], len, "%s=%s", d->key, v);
	}
	args[n] = NULL;
	if (json != NULL)
		stdin_from(json);
	status_inherit();
	execvp(args[0], args);
	status_err(OUTCOME_USAGE, "%s", args[0]);
}

/* -i: key=value lines on stdin, so that no secret needs an argv. */
static void
read_stdin_options(struct options *o)
{
	char errbuf[512], *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int lineno = 0;

	while ((n = getline(&line, &cap, stdin)) != -1) {
		lineno++;
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if ((size_t)n != strlen(line))
			status_exit(OUTCOME_USAGE, NULL, "stdin: a NUL byte in an option");
		if (n == 0 || line[0] == '#')
			continue;
		/* Secrets come this way: a line that is not an option is
		 * named by its number, never shown. */
		if (strchr(line, '=') == NULL)
			status_exit(OUTCOME_USAGE, NULL, "stdin line %d: not key=value", lineno);
		if (set_option(o, line, errbuf, sizeof(errbuf)) == -1)
			status_exit(OUTCOME_USAGE, NULL, "%s", errbuf);
	}
	if (ferror(stdin))
		status_err(OUTCOME_USAGE, "stdin");
	if (line != NULL)
		explicit_bzero(line, cap);
	free(line);
}

/*
 * -J: one JSON object of string values, as Plakar keeps a source's
 * options (plakar source show -json) and sends them to the plugin.
 */
static void
read_json_options(struct options *o, const char *path)
{
	json_error_t jerr;
	json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	const char *key;
	json_t *v;
	char errbuf[512];

	if (j == NULL || !json_is_object(j))
		status_exit(OUTCOME_USAGE, NULL, "%s: not a JSON object of "
		    "options", path);
	json_object_foreach(j, key, v) {
		if (!json_is_string(v))
			status_exit(OUTCOME_USAGE, NULL, "%.40s: not a string",
			    key);
		if (strlen(json_string_value(v)) != json_string_length(v))
			status_exit(OUTCOME_USAGE, NULL, "%.40s: a NUL byte",
			    key);
		if (set_value(o, key, strlen(key), json_string_value(v), errbuf,
		    sizeof(errbuf)) == -1)
			status_exit(OUTCOME_USAGE, NULL, "%s", errbuf);
		explicit_bzero((char *)json_string_value(v),
		    json_string_length(v));
	}
	json_decref(j);
}

/* scheme://, as RFC 3986 spells a scheme */
static int
looks_like_uri(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789+.-");

	return n > 0 && strncmp(s + n, "://", 3) == 0;
}

int
main(int argc, char *argv[])
{
	struct options o;
	struct conn c;
	char errbuf[512], *json;
	char **command = NULL;
	const char *json_file = NULL;
	int ch, i, print = 0, from_stdin = 0, add_args = 0;

	if (argc == 2 && strcmp(argv[1], "--help") == 0)
		help();
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("uriparse (plakar-pg) %s\n", VERSION);
		return 0;
	}
	status_open("uriparse", NULL);
	if (option_count > MAXOPT)
		status_exit(OUTCOME_USAGE, NULL, "more options than MAXOPT");
	/* "+": the command's own options are not ours */
	while ((ch = getopt(argc, argv, "+aF:iJ:j")) != -1) {
		switch (ch) {
		case 'a':
			add_args = 1;
			break;
		case 'F':
			status_open("uriparse", optarg);
			break;
		case 'i':
			from_stdin = 1;
			break;
		case 'J':
			json_file = optarg;
			break;
		case 'j':
			print = 1;
			break;
		default:
			usage();
		}
	}
	/* "--" right after our options: getopt took it */
	if (optind > 1 && strcmp(argv[optind - 1], "--") == 0)
		command = argv + optind, argc = optind;
	argc -= optind;
	argv += optind;

	for (i = 0; command == NULL && i < argc; i++)
		if (strcmp(argv[i], "--") == 0) {
			command = argv + i + 1;
			argv[i] = NULL;
			argc = i;
		}
	if ((command == NULL && !print) || (command != NULL &&
	    command[0] == NULL))
		usage();

	memset(&o, 0, sizeof(o));
	for (i = 0; i < argc; i++) {
		if (i == 0 && looks_like_uri(argv[i])) {
			if (set_value(&o, "location", 8, argv[i], errbuf,
			    sizeof(errbuf)) == -1)
				status_exit(OUTCOME_USAGE, NULL, "%s", errbuf);
		} else if (set_option(&o, argv[i], errbuf, sizeof(errbuf)) == -1)
			status_exit(OUTCOME_USAGE, NULL, "%s", errbuf);
	}
	if (json_file != NULL)
		read_json_options(&o, json_file);
	if (from_stdin)
		read_stdin_options(&o);
	if (normalize(&o, &c, errbuf, sizeof(errbuf)) == -1)
		status_exit(OUTCOME_USAGE, NULL, "%s", errbuf);
	json = print ? options_json(&o, &c) : NULL;
	if (command != NULL)
		exec_with(&o, &c, command, add_args, json);
	puts(json);
	free(json);
	free_conn(&c);
	free_options(&o);
	status_ok();
	return 0;
}

#endif
