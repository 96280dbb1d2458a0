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

#include "outcome.h"
#include "util.h"

#define SCHEME	"postgres+bin://"

enum opt {
	O_LOCATION,
	O_HOST,
	O_PORT,
	O_USERNAME,
	O_PASSWORD,
	O_PG_BIN_DIR,
	O_SSL_MODE,
	O_SSL_CERT,
	O_SSL_KEY,
	O_SSL_ROOT_CERT,
	O_SSL_CERT_DATA,
	O_SSL_KEY_DATA,
	O_SSL_ROOT_CERT_DATA,
	O_CONNECT_TIMEOUT,
	NOPT
};

static const char *const opt_names[NOPT] = {
	"location", "host", "port", "username", "password", "pg_bin_dir",
	"ssl_mode", "ssl_cert", "ssl_key", "ssl_root_cert", "ssl_cert_data",
	"ssl_key_data", "ssl_root_cert_data", "connect_timeout"
};

/* What the user gave, each value malloc'd or NULL. */
struct options {
	char	*val[NOPT];
};

/* The normalized result. */
struct conn {
	char	*host;
	char	*port;
	char	*user;		/* NULL: libpq's default */
	char	*password;	/* NULL: none given */
	char	*bin_dir;
	char	*ssl_mode;
	char	*ssl_file[3];	/* cert, key, root cert: paths */
	char	*ssl_data[3];	/* or PEM text */
	char	*connect_timeout;
};

static const char *const ssl_modes[] = {
	"disable", "allow", "prefer", "require", "verify-ca", "verify-full"
};

/* Percent-decode n bytes of s; what into errors names the part. */
static int
decode(const char *s, size_t n, char **out, const char *what, char *errbuf,
    size_t errlen)
{
	char *p = xmalloc(n + 1);
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		if (s[i] != '%') {
			p[k++] = s[i];
			continue;
		}
		if (i + 2 >= n || hex_decode(s + i + 1, 2,
		    (unsigned char *)p + k) == -1) {
			free(p);
			return seterr(errbuf, errlen, "location: bad percent-encoding "
			    "in the %s", what);
		}
		if (p[k] == '\0') {
			free(p);
			return seterr(errbuf, errlen, "location: %%00 in the %s",
			    what);
		}
		k++;
		i += 2;
	}
	p[k] = '\0';
	*out = p;
	return 0;
}

static int
check_port(const char *what, const char *s, char *errbuf, size_t errlen)
{
	long v = 0;
	size_t i, n = strlen(s);

	for (i = 0; i < n && i < 6; i++) {
		if (s[i] < '0' || s[i] > '9')
			break;
		v = v * 10 + (s[i] - '0');
	}
	if (n == 0 || i != n || v < 1 || v > 65535)
		return seterr(errbuf, errlen, "%s: not a port number from 1 to "
		    "65535", what);
	return 0;
}

/*
 * postgres+bin://[user[:password]@]host[:port][/]: fills host, port, user
 * and password of c with what the location names (NULL where it is
 * silent).
 */
static int
parse_location(const char *loc, struct conn *c, char *errbuf, size_t errlen)
{
	const char *auth, *end, *rest, *at, *hp, *colon, *hend;
	size_t n = strlen(SCHEME);

	if (strncasecmp(loc, SCHEME, n) != 0)
		return seterr(errbuf, errlen, "location: not a %s URI", SCHEME);
	auth = loc + n;
	end = auth + strcspn(auth, "/?#");
	/* A trailing '/' alone is allowed, nothing after it. */
	rest = *end == '/' ? end + 1 : end;
	if (*rest == '?')
		return seterr(errbuf, errlen, "location: a query string is not "
		    "allowed; give options as key=value");
	if (*rest == '#')
		return seterr(errbuf, errlen, "location: a fragment is not allowed");
	if (*end == '/' && *rest != '\0')
		return seterr(errbuf, errlen, "location: a subpath is not allowed: "
		    "pg_basebackup backs up the whole cluster");

	/* The last '@' ends the user info: a password may hold one. */
	at = NULL;
	for (hp = auth; hp < end; hp++)
		if (*hp == '@')
			at = hp;
	if (at != NULL) {
		const char *pc = memchr(auth, ':', (size_t)(at - auth));

		if (pc == NULL)
			pc = at;
		if (pc > auth && decode(auth, (size_t)(pc - auth), &c->user,
		    "user", errbuf, errlen) == -1)
			return -1;
		if (pc < at && decode(pc + 1, (size_t)(at - pc - 1),
		    &c->password, "password", errbuf, errlen) == -1)
			return -1;
		hp = at + 1;
	} else
		hp = auth;

	hend = end;
	if (*hp == '[') {
		const char *rb = memchr(hp, ']', (size_t)(end - hp));

		if (rb == NULL)
			return seterr(errbuf, errlen, "location: unclosed [ in the "
			    "host");
		c->host = xmalloc((size_t)(rb - hp));
		memcpy(c->host, hp + 1, (size_t)(rb - hp - 1));
		c->host[rb - hp - 1] = '\0';
		if (rb + 1 < end && rb[1] != ':')
			return seterr(errbuf, errlen, "location: junk after ]");
		colon = rb + 1 < end ? rb + 1 : NULL;
	} else {
		colon = memchr(hp, ':', (size_t)(end - hp));
		hend = colon != NULL ? colon : end;
		if (hend > hp && decode(hp, (size_t)(hend - hp), &c->host,
		    "host", errbuf, errlen) == -1)
			return -1;
	}
	if (colon != NULL) {
		c->port = xmalloc((size_t)(end - colon));
		memcpy(c->port, colon + 1, (size_t)(end - colon - 1));
		c->port[end - colon - 1] = '\0';
		if (check_port("location: port", c->port, errbuf, errlen) == -1)
			return -1;
	}
	return 0;
}

/* key=value into o; a key given twice or unknown is refused. */
static int
set_option(struct options *o, const char *arg, char *errbuf, size_t errlen)
{
	const char *eq = strchr(arg, '=');
	size_t klen;
	int i;

	if (eq == NULL)
		return seterr(errbuf, errlen, "not key=value: %.40s%s", arg,
		    strlen(arg) > 40 ? "..." : "");
	klen = (size_t)(eq - arg);
	for (i = 0; i < NOPT; i++)
		if (strlen(opt_names[i]) == klen &&
		    strncmp(arg, opt_names[i], klen) == 0)
			break;
	if (i == NOPT)
		return seterr(errbuf, errlen, "unknown option: %.*s", (int)klen,
		    arg);
	if (o->val[i] != NULL)
		return seterr(errbuf, errlen, "%s: given twice", opt_names[i]);
	o->val[i] = xstrdup(eq + 1);
	return 0;
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
readable_file(const char *what, const char *path, char *errbuf,
    size_t errlen)
{
	struct stat st;
	int fd;

	if ((fd = open(path, O_RDONLY)) == -1)
		return seterr(errbuf, errlen, "%s: %s: %s", what, path,
		    strerror(errno));
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return seterr(errbuf, errlen, "%s: %s: not a regular file", what,
		    path);
	}
	close(fd);
	return 0;
}

static int
normalize(struct options *o, struct conn *c, char *errbuf, size_t errlen)
{
	static const enum opt file_opt[3] = {
		O_SSL_CERT, O_SSL_KEY, O_SSL_ROOT_CERT
	};
	static const enum opt data_opt[3] = {
		O_SSL_CERT_DATA, O_SSL_KEY_DATA, O_SSL_ROOT_CERT_DATA
	};
	char **v = o->val;
	size_t i;
	int j;

	memset(c, 0, sizeof(*c));
	if (v[O_LOCATION] != NULL &&
	    parse_location(v[O_LOCATION], c, errbuf, errlen) == -1)
		return -1;
	/* Options override the location. */
	if (v[O_HOST] != NULL) {
		free(c->host);
		c->host = xstrdup(v[O_HOST]);
	}
	if (c->host == NULL || c->host[0] == '\0') {
		free(c->host);
		c->host = xstrdup("localhost");
	}
	if (v[O_PORT] != NULL) {
		if (check_port("port", v[O_PORT], errbuf, errlen) == -1)
			return -1;
		free(c->port);
		c->port = xstrdup(v[O_PORT]);
	}
	if (c->port == NULL)
		c->port = xstrdup("5432");
	if (v[O_USERNAME] != NULL) {
		free(c->user);
		c->user = v[O_USERNAME][0] != '\0' ?
		    xstrdup(v[O_USERNAME]) : NULL;
	}
	if (v[O_PASSWORD] != NULL) {
		free(c->password);
		c->password = xstrdup(v[O_PASSWORD]);
	}
	if (c->password != NULL && strchr(c->password, '\n') != NULL)
		return seterr(errbuf, errlen, "password: a newline cannot be "
		    "passed to libpq");

	c->ssl_mode = xstrdup(v[O_SSL_MODE] != NULL ? v[O_SSL_MODE] : "prefer");
	for (i = 0; i < sizeof(ssl_modes) / sizeof(ssl_modes[0]); i++)
		if (strcmp(c->ssl_mode, ssl_modes[i]) == 0)
			break;
	if (i == sizeof(ssl_modes) / sizeof(ssl_modes[0]))
		return seterr(errbuf, errlen, "ssl_mode: not one of disable, allow, "
		    "prefer, require, verify-ca, verify-full");

	for (j = 0; j < 3; j++) {
		const char *file = v[file_opt[j]], *data = v[data_opt[j]];

		if (file != NULL && data != NULL)
			return seterr(errbuf, errlen, "%s and %s: give one, not both",
			    opt_names[file_opt[j]], opt_names[data_opt[j]]);
		if (file != NULL) {
			if (readable_file(opt_names[file_opt[j]], file, errbuf,
			    errlen) == -1)
				return -1;
			c->ssl_file[j] = xstrdup(file);
		}
		if (data != NULL) {
			if (strstr(data, "-----BEGIN ") == NULL)
				return seterr(errbuf, errlen, "%s: not PEM text",
				    opt_names[data_opt[j]]);
			c->ssl_data[j] = unescape_pem(data);
		}
	}

	if (v[O_PG_BIN_DIR] != NULL && v[O_PG_BIN_DIR][0] != '\0') {
		size_t n = strlen(v[O_PG_BIN_DIR]) + sizeof("/pg_basebackup");
		char *p = xmalloc(n);

		snprintf(p, n, "%s/pg_basebackup", v[O_PG_BIN_DIR]);
		if (access(p, X_OK) == -1) {
			free(p);
			return seterr(errbuf, errlen, "pg_bin_dir: %s has no "
			    "executable pg_basebackup", v[O_PG_BIN_DIR]);
		}
		free(p);
		c->bin_dir = xstrdup(v[O_PG_BIN_DIR]);
	}

	c->connect_timeout = xstrdup(v[O_CONNECT_TIMEOUT] != NULL ?
	    v[O_CONNECT_TIMEOUT] : "10");
	if (strspn(c->connect_timeout, "0123456789") !=
	    strlen(c->connect_timeout) || c->connect_timeout[0] == '\0' ||
	    strlen(c->connect_timeout) > 6)
		return seterr(errbuf, errlen, "connect_timeout: not a number of "
		    "seconds");
	return 0;
}

static void
free_conn(struct conn *c)
{
	int j;

	free(c->host);
	free(c->port);
	free(c->user);
	free(c->password);
	free(c->bin_dir);
	free(c->ssl_mode);
	for (j = 0; j < 3; j++) {
		free(c->ssl_file[j]);
		free(c->ssl_data[j]);
	}
	free(c->connect_timeout);
}

static void
free_options(struct options *o)
{
	int i;

	for (i = 0; i < NOPT; i++)
		free(o->val[i]);
}

#ifdef URIPARSE_FUZZ

int	LLVMFuzzerTestOneInput(const unsigned char *, size_t);

/* The fuzzer's bytes: a location, then NUL-separated key=value options. */
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
	o.val[O_LOCATION] = xstrdup(buf);
	for (off = strlen(buf) + 1; off < size; off += strlen(p) + 1) {
		p = buf + off;
		if (strncmp(p, "location=", 9) != 0 && strncmp(p, "ssl_", 4) !=
		    0 && strncmp(p, "pg_bin_dir=", 11) != 0)
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
	status_usage("usage: uriparse -j [-i] [-F fd] [location] "
	    "[key=value ...]\n"
	    "       uriparse [-i] [-F fd] [location] [key=value ...] -- "
	    "command [arg ...]\n");
}

static void
help(void)
{
	printf("uriparse normalizes a postgres+bin location and its options "
	    "for libpq.\n\n"
	    "Usage:\n"
	    "  uriparse [OPTION]... [postgres+bin://[user[:password]@]host"
	    "[:port]] [key=value]...\n"
	    "           [-- command [arg]...]\n\n"
	    "Options:\n"
	    "  -i             also read key=value lines on stdin (for "
	    "secrets)\n"
	    "  -j             print the normalized options as JSON, password "
	    "masked\n"
	    "  -F FD          write the outcome as one JSON line to FD\n"
	    "  --help         show this help, then exit\n"
	    "  --version      output version information, then exit\n\n"
	    "Keys: location host port username password pg_bin_dir ssl_mode "
	    "ssl_cert\n"
	    "ssl_key ssl_root_cert ssl_cert_data ssl_key_data "
	    "ssl_root_cert_data\nconnect_timeout.\n\n"
	    "After --, command runs with the libpq environment set, the "
	    "password and\n"
	    "inline keys in memfds (PGPASSFILE=/proc/self/fd/N).\n");
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

/*
 * The libpq environment set, the secrets in memfds, and command run in
 * our place: nothing is printed, and no shell evaluates anything.
 */
static void
exec_with(struct conn *c, char *argv[])
{
	static const char *const pem_names[3] = {
		"client.crt", "client.key", "root.crt"
	};
	static const char *const env_names[3] = {
		"PGSSLCERT", "PGSSLKEY", "PGSSLROOTCERT"
	};
	int j;

	set_env("PGHOST", c->host);
	set_env("PGPORT", c->port);
	set_env("PGUSER", c->user);
	set_env("PGSSLMODE", c->ssl_mode);
	for (j = 0; j < 3; j++) {
		char *f = c->ssl_data[j] != NULL ?
		    secret_fd(pem_names[j], c->ssl_data[j]) : NULL;

		set_env(env_names[j], f != NULL ? f : c->ssl_file[j]);
		free(f);
	}
	set_env("PGCONNECT_TIMEOUT", c->connect_timeout);
	/* PGPASSWORD would win over the file, and show in /proc */
	if (c->password != NULL) {
		set_env("PGPASSWORD", NULL);
		char *line = pgpass_line(c->password), *f;

		f = secret_fd("pgpass", line);
		explicit_bzero(line, strlen(line));
		free(line);
		set_env("PGPASSFILE", f);
		free(f);
	}
	set_env("PLAKAR_PG_BIN_DIR", c->bin_dir);
	status_inherit();
	execvp(argv[0], argv);
	status_err(OUTCOME_USAGE, "%s", argv[0]);
}

static void
print_json(struct conn *c)
{
	json_t *o = json_object();
	char *s;

	json_object_set_new(o, "host", json_string(c->host));
	json_object_set_new(o, "port", json_integer(atoi(c->port)));
	json_object_set_new(o, "username",
	    c->user != NULL ? json_string(c->user) : json_null());
	json_object_set_new(o, "password",
	    c->password != NULL ? json_string("********") : json_null());
	json_object_set_new(o, "pg_bin_dir",
	    c->bin_dir != NULL ? json_string(c->bin_dir) : json_null());
	json_object_set_new(o, "ssl_mode", json_string(c->ssl_mode));
	json_object_set_new(o, "ssl_cert", c->ssl_file[0] != NULL ?
	    json_string(c->ssl_file[0]) : c->ssl_data[0] != NULL ?
	    json_string("(inline PEM)") : json_null());
	json_object_set_new(o, "ssl_key", c->ssl_file[1] != NULL ?
	    json_string(c->ssl_file[1]) : c->ssl_data[1] != NULL ?
	    json_string("(inline PEM)") : json_null());
	json_object_set_new(o, "ssl_root_cert", c->ssl_file[2] != NULL ?
	    json_string(c->ssl_file[2]) : c->ssl_data[2] != NULL ?
	    json_string("(inline PEM)") : json_null());
	json_object_set_new(o, "connect_timeout",
	    json_integer(atoi(c->connect_timeout)));
	s = json_dumps(o, JSON_COMPACT);
	if (s == NULL)
		status_exit(OUTCOME_USAGE, NULL, "a value is not valid UTF-8");
	puts(s);
	free(s);
	json_decref(o);
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
	char errbuf[512];
	char **command = NULL;
	int ch, i, json = 0, from_stdin = 0;

	if (argc == 2 && strcmp(argv[1], "--help") == 0)
		help();
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("uriparse (plakar-pg) %s\n", VERSION);
		return 0;
	}
	status_open("uriparse", NULL);
	/* "+": the command's own options are not ours */
	while ((ch = getopt(argc, argv, "+F:ij")) != -1) {
		switch (ch) {
		case 'F':
			status_open("uriparse", optarg);
			break;
		case 'i':
			from_stdin = 1;
			break;
		case 'j':
			json = 1;
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
	if ((command == NULL) == !json || (command != NULL &&
	    command[0] == NULL))
		usage();

	memset(&o, 0, sizeof(o));
	for (i = 0; i < argc; i++) {
		if (i == 0 && looks_like_uri(argv[i]))
			o.val[O_LOCATION] = xstrdup(argv[i]);
		else if (set_option(&o, argv[i], errbuf, sizeof(errbuf)) == -1)
			status_exit(OUTCOME_USAGE, NULL, "%s", errbuf);
	}
	if (from_stdin)
		read_stdin_options(&o);
	if (normalize(&o, &c, errbuf, sizeof(errbuf)) == -1)
		status_exit(OUTCOME_USAGE, NULL, "%s", errbuf);
	if (command != NULL)
		exec_with(&c, command);
	print_json(&c);
	free_conn(&c);
	free_options(&o);
	status_ok();
	return 0;
}

#endif
