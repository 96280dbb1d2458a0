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

#include "location.h"
#include "options.h"
#include "die.h"
#include "outcome.h"
#include "util.h"

static void
usage(void)
{
	die_usage("usage: uriparse -j [-i] [-F fd] [-J file] [location] "
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

	status_start("uriparse", NULL);
	if (status_answer(argc, argv, help))
		return 0;
	if (option_count > MAXOPT)
		status_exit(OUTCOME_USAGE, NULL, "more options than MAXOPT");
	/* "+": the command's own options are not ours */
	while ((ch = getopt(argc, argv, "+aF:iJ:j")) != -1) {
		switch (ch) {
		case 'a':
			add_args = 1;
			break;
		case 'F':
			status_start("uriparse", optarg);
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


