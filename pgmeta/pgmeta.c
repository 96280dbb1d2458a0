/*
 * pgmeta: the /manifest.json of a PostgreSQL cluster, from libpq.
 * Best-effort: a query that fails drops its field and says so on stderr;
 * only a cluster that cannot be reached at all is fatal.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "die.h"
#include "outcome.h"
#include "util.h"

struct meta {
	PGconn		*conn;		/* to the first database */
	const char	*conninfo;	/* -d */
	const char	*basebackup_version;	/* -b */
	int		 relations;	/* 0 with --no-relations */
	int		 warnings;
	int		 strict;	/* -s: a field left out is an error */
};

static void
usage(void)
{
	die_usage("usage: pgmeta [-BpRs] [-b version] [-d conninfo] "
	    "[-F fd] [-o file]\n");
}

static void
help(void)
{
	printf("pgmeta prints the metadata of a PostgreSQL cluster as the JSON "
	    "of a\nplakar-pg snapshot's /manifest.json.\n\n"
	    "Usage:\n"
	    "  pgmeta [OPTION]...\n\n"
	    "Options:\n"
	    "  -B, --basics             the basics only, the server not asked\n"
	    "  -b, --basebackup-version=TEXT\n"
	    "                           pg_basebackup_version: what made the "
	    "backup\n"
	    "  -d, --dbname=CONNSTR     database or connection string to "
	    "start from\n"
	    "                           (default: postgres)\n"
	    "  -o, --output=FILE        write to FILE, atomically, instead of "
	    "stdout\n"
	    "  -p, --pretty             indent the JSON\n"
	    "  -R, --no-relations       leave out the per-relation detail\n"
	    "  -F FD                    write the outcome as one JSON line to "
	    "FD\n"
	    "  -s, --strict             a field left out is an error (exit 2)\n"
	    "  --help                   show this help, then exit\n"
	    "  --version                output version information, then "
	    "exit\n\n"
	    "Connection: libpq's environment (PGHOST, PGPORT, PGUSER, ...), "
	    "as uriparse sets it.\n");
}

static void __attribute__((format(printf, 2, 3)))
warn_field(struct meta *m, const char *fmt, ...)
{
	va_list ap;

	m->warnings++;
	fprintf(stderr, "pgmeta: warning: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* The first line of a libpq error message. */
static char *
first_line(const char *msg)
{
	static const char none[] = "unknown error";
	size_t n;
	char *s;

	if (msg == NULL || *msg == '\0')
		msg = none;
	n = strcspn(msg, "\n");
	s = xmalloc(n + 1);
	memcpy(s, msg, n);
	s[n] = '\0';
	return s;
}

/*
 * A copy with every byte sequence that is not UTF-8 replaced by U+FFFD:
 * a SQL_ASCII database hands out whatever bytes its names hold.
 */
static char *
utf8_sanitize(const char *in, size_t len, size_t *outlen)
{
	const unsigned char *s = (const unsigned char *)in;
	char *out = xmalloc(3 * len + 1), *o = out;
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n = 0, k;
		unsigned int cp;

		if (c < 0x80)
			n = 1;
		else if (c >= 0xc2 && c <= 0xdf)
			n = 2;
		else if (c >= 0xe0 && c <= 0xef)
			n = 3;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 4;
		if (n > 1 && i + n <= len) {
			cp = c & (0xff >> (n + 1));
			for (k = 1; k < n; k++) {
				if ((s[i + k] & 0xc0) != 0x80)
					break;
				cp = cp << 6 | (s[i + k] & 0x3f);
			}
			if (k < n || (n == 3 && cp < 0x800) ||
			    (n == 3 && cp >= 0xd800 && cp <= 0xdfff) ||
			    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
				n = 0;
		} else if (n > 1)
			n = 0;
		if (n == 0) {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
			continue;
		}
		memcpy(o, s + i, n);
		o += n;
		i += n;
	}
	*o = '\0';
	*outlen = (size_t)(o - out);
	return out;
}

/* A JSON document made by the server, made safe and parsed. */
static json_t *
parse_server_json(const char *text)
{
	size_t n;
	char *clean = utf8_sanitize(text, strlen(text), &n);
	json_t *j = json_loadb(clean, n, JSON_DECODE_ANY, NULL);

	free(clean);
	return j;
}

/*
 * Run a query whose single row holds one JSON value per column.  NULL on
 * failure, with a warning naming the field.
 */
static PGresult *
query(struct meta *m, PGconn *conn, const char *field, const char *sql)
{
	PGresult *res = PQexec(conn, sql);

	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		char *msg = first_line(PQresultErrorMessage(res));

		warn_field(m, "%s left out: %s", field, msg);
		free(msg);
		PQclear(res);
		return NULL;
	}
	return res;
}

static json_t *
query_json(struct meta *m, PGconn *conn, const char *field, const char *sql)
{
	PGresult *res = query(m, conn, field, sql);
	json_t *j;

	if (res == NULL)
		return NULL;
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
		PQclear(res);
		return json_array();
	}
	j = parse_server_json(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (j == NULL)
		warn_field(m, "%s left out: the server's JSON does not parse",
		    field);
	return j;
}

static void
set_if(json_t *o, const char *key, json_t *v)
{
	if (v != NULL)
		json_object_set_new(o, key, v);
}

static const char cluster_config_sql[] =
"SELECT s.name, s.setting FROM pg_settings s WHERE s.name IN "
"('data_directory', 'TimeZone', 'max_connections', 'wal_level', "
"'server_encoding', 'data_checksums', 'block_size', 'wal_block_size', "
"'shared_preload_libraries', 'archive_mode', 'archive_command') "
"UNION ALL SELECT 'lc_collate', datcollate FROM pg_database "
"WHERE datname = current_database() "
"UNION ALL SELECT 'lc_ctype', datctype FROM pg_database "
"WHERE datname = current_database()";

static json_t *
cluster_config(struct meta *m)
{
	static const struct {
		const char *key, *setting;
		char type;	/* s string, i integer, b boolean, a set? */
	} fields[] = {
		{ "data_directory", "data_directory", 's' },
		{ "timezone", "TimeZone", 's' },
		{ "max_connections", "max_connections", 'i' },
		{ "wal_level", "wal_level", 's' },
		{ "server_encoding", "server_encoding", 's' },
		{ "data_checksums", "data_checksums", 'b' },
		{ "block_size", "block_size", 'i' },
		{ "wal_block_size", "wal_block_size", 'i' },
		{ "shared_preload_libraries", "shared_preload_libraries", 's' },
		{ "lc_collate", "lc_collate", 's' },
		{ "lc_ctype", "lc_ctype", 's' },
		{ "archive_mode", "archive_mode", 's' },
		{ "archive_command_set", "archive_command", 'a' },
	};
	PGresult *res = query(m, m->conn, "cluster_config", cluster_config_sql);
	json_t *o;
	size_t i;
	int r;

	if (res == NULL)
		return NULL;
	o = json_object();
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *v = NULL;
		size_t n;
		char *clean;

		for (r = 0; r < PQntuples(res); r++)
			if (strcmp(PQgetvalue(res, r, 0), fields[i].setting) == 0)
				v = PQgetvalue(res, r, 1);
		if (v == NULL) {
			warn_field(m, "cluster_config.%s left out: not readable "
			    "by this role", fields[i].key);
			continue;
		}
		switch (fields[i].type) {
		case 'i':
			json_object_set_new(o, fields[i].key,
			    json_integer(strtoll(v, NULL, 10)));
			break;
		case 'b':
			json_object_set_new(o, fields[i].key,
			    json_boolean(strcmp(v, "on") == 0));
			break;
		case 'a':
			/* Whether there is one, never the command itself. */
			json_object_set_new(o, fields[i].key,
			    json_boolean(*v != '\0' && strcmp(v, "(disabled)")));
			break;
		default:
			clean = utf8_sanitize(v, strlen(v), &n);
			json_object_set_new(o, fields[i].key,
			    json_stringn(clean, n));
			free(clean);
		}
	}
	PQclear(res);
	return o;
}

/*
 * A timestamptz as Go's encoding/json writes a time.Time in UTC (RFC 3339,
 * the fraction without its trailing zeros), NULL kept NULL.
 */
#define RFC3339(x) "(to_char((" x ") AT TIME ZONE 'UTC', " \
	"'YYYY-MM-DD\"T\"HH24:MI:SS') || rtrim(rtrim(to_char((" x ") " \
	"AT TIME ZONE 'UTC', '.US'), '0'), '.') || 'Z')"

static const char roles_sql[] =
"SELECT coalesce(json_agg(json_build_object("
"'name', r.rolname, 'superuser', r.rolsuper, "
"'replication', r.rolreplication, 'can_login', r.rolcanlogin, "
"'create_db', r.rolcreatedb, 'create_role', r.rolcreaterole, "
"'inherit', r.rolinherit, 'bypass_rls', r.rolbypassrls, "
"'connection_limit', r.rolconnlimit, "
"'valid_until', CASE WHEN r.rolvaliduntil IS NULL "
"OR r.rolvaliduntil = 'infinity' THEN NULL ELSE " RFC3339("r.rolvaliduntil")
" END, "
"'member_of', ARRAY(SELECT g.rolname FROM pg_auth_members a "
"JOIN pg_roles g ON g.oid = a.roleid WHERE a.member = r.oid "
"ORDER BY 1)) ORDER BY r.rolname), '[]') FROM pg_roles r";

static const char tablespaces_sql[] =
"SELECT coalesce(json_agg(json_build_object("
"'name', t.spcname, 'owner', pg_get_userbyid(t.spcowner), "
"'location', pg_tablespace_location(t.oid), "
"'options', coalesce(t.spcoptions, '{}')) ORDER BY t.spcname), '[]') "
"FROM pg_tablespace t";

static const char databases_sql[] =
"SELECT d.datname, d.datallowconn AND NOT d.datistemplate, "
"json_build_object('name', d.datname, "
"'owner', pg_get_userbyid(d.datdba), "
"'encoding', pg_encoding_to_char(d.encoding), "
"'collate', d.datcollate, 'ctype', d.datctype, "
"'allow_conn', d.datallowconn, 'is_template', d.datistemplate, "
"'default_tablespace', t.spcname, 'connection_limit', d.datconnlimit) "
"FROM pg_database d LEFT JOIN pg_tablespace t ON t.oid = d.dattablespace "
"ORDER BY d.datname";

static const char extensions_sql[] =
"SELECT coalesce(json_agg(json_build_object('name', e.extname, "
"'version', e.extversion, 'schema', n.nspname) ORDER BY e.extname), '[]') "
"FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace";

static const char schemas_sql[] =
"SELECT coalesce(json_agg(json_build_object('name', n.nspname, "
"'owner', pg_get_userbyid(n.nspowner)) ORDER BY n.nspname), '[]') "
"FROM pg_namespace n WHERE n.nspname !~ '^pg_' "
"AND n.nspname <> 'information_schema'";

/*
 * Every relation of a database in one query; columns, constraints and
 * indexes come from correlated subqueries, so the work is one round trip
 * whatever the number of relations.
 */
static const char relations_sql[] =
"SELECT coalesce(json_agg(r ORDER BY r.schema, r.name), '[]') FROM ("
"SELECT n.nspname AS schema, c.relname AS name, "
"pg_get_userbyid(c.relowner) AS owner, "
"c.relpersistence::text AS persistence, c.relkind::text AS kind, "
"ts.spcname AS tablespace, "
"c.reltuples::bigint AS row_estimate, "
"pg_stat_get_live_tuples(c.oid) AS live_row_estimate, "
"c.relnatts::int AS column_count, "
"EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid "
"AND k.contype = 'p') AS has_primary_key, "
"c.relhastriggers AS has_triggers, "
"c.relrowsecurity AS rls_enabled, "
"c.relforcerowsecurity AS rls_forced, "
"c.relispartition AS is_partition, "
"(SELECT pn.nspname || '.' || pc.relname FROM pg_inherits i "
"JOIN pg_class pc ON pc.oid = i.inhparent "
"JOIN pg_namespace pn ON pn.oid = pc.relnamespace "
"WHERE i.inhrelid = c.oid AND c.relispartition) AS partition_parent, "
"(SELECT CASE pt.partstrat WHEN 'h' THEN 'hash' WHEN 'l' THEN 'list' "
"WHEN 'r' THEN 'range' END FROM pg_partitioned_table pt "
"WHERE pt.partrelid = c.oid) AS partition_strategy, "
"coalesce(c.reloptions, '{}') AS storage_options, "
RFC3339("greatest(pg_stat_get_last_vacuum_time(c.oid), "
"pg_stat_get_last_autovacuum_time(c.oid))") " AS last_vacuum, "
RFC3339("greatest(pg_stat_get_last_analyze_time(c.oid), "
"pg_stat_get_last_autoanalyze_time(c.oid))") " AS last_analyze, "
"(SELECT coalesce(json_agg(json_build_object('position', a.attnum, "
"'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod), "
"'nullable', NOT a.attnotnull, "
"'default', pg_get_expr(ad.adbin, ad.adrelid)) ORDER BY a.attnum), '[]') "
"FROM pg_attribute a LEFT JOIN pg_attrdef ad "
"ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum "
"WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) "
"AS columns, "
"(SELECT coalesce(json_agg(json_build_object('name', k.conname, "
"'type', k.contype::text, "
"'columns', ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY "
"u(num, ord) JOIN pg_attribute a ON a.attrelid = k.conrelid "
"AND a.attnum = u.num ORDER BY u.ord)) ORDER BY k.conname), '[]') "
"FROM pg_constraint k WHERE k.conrelid = c.oid) AS constraints, "
"(SELECT coalesce(json_agg(json_build_object('name', ic.relname, "
"'method', am.amname, 'definition', pg_get_indexdef(x.indexrelid), "
"'is_unique', x.indisunique, 'is_primary', x.indisprimary, "
"'is_valid', x.indisvalid, 'is_partial', x.indpred IS NOT NULL, "
"'constraint_name', (SELECT k.conname FROM pg_constraint k "
"WHERE k.conindid = x.indexrelid AND k.conrelid = c.oid LIMIT 1)) "
"ORDER BY ic.relname), '[]') FROM pg_index x "
"JOIN pg_class ic ON ic.oid = x.indexrelid "
"JOIN pg_am am ON am.oid = ic.relam WHERE x.indrelid = c.oid) AS indexes "
"FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
"LEFT JOIN pg_tablespace ts ON ts.oid = c.reltablespace "
"WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') "
"AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema') r";

/*
 * A SQL_ASCII database is read as SQL_ASCII, its bytes as they are: the
 * server refuses to pass them off as UTF-8.
 */
static PGconn *
connect_db(const char *conninfo, const char *dbname, int utc, int sql_ascii)
{
	const char *keys[6], *vals[6];
	int i = 0;

	/* As pg_dumpall: start from "postgres" unless told otherwise. */
	if (conninfo != NULL || getenv("PGDATABASE") == NULL) {
		keys[i] = "dbname";
		vals[i++] = conninfo != NULL ? conninfo : "postgres";
	}
	/* With expand_dbname, a second dbname is a plain name. */
	if (dbname != NULL) {
		keys[i] = "dbname";
		vals[i++] = dbname;
	}
	/* Names and JSON come back as UTF-8; times in UTC where asked. */
	keys[i] = "client_encoding";
	vals[i++] = sql_ascii ? "SQL_ASCII" : "UTF8";
	keys[i] = "options";
	vals[i++] = utc ? "-c TimeZone=UTC -c statement_timeout=0" :
	    "-c statement_timeout=0";
	keys[i] = "fallback_application_name";
	vals[i++] = "pgmeta";
	keys[i] = NULL;
	vals[i] = NULL;
	return PQconnectdbParams(keys, vals, 1);
}

/*
 * Databases are read a few at a time, each on its own connection, their
 * queries sent at once in pipeline mode: the server works on several
 * while we parse one.  Each query has its own sync, so that one failing
 * leaves the others be.
 */
#define PARALLEL_DATABASES	4

static const struct {
	const char *field;
	const char *sql;
} detail_queries[] = {
	{ "extensions", extensions_sql },
	{ "schemas", schemas_sql },
	{ "relations", relations_sql },
};

static size_t
detail_count(const struct meta *m)
{
	return m->relations ? 3 : 2;
}

static PGconn *
detail_start(struct meta *m, json_t *db, const char *rawname)
{
	const char *encoding = json_string_value(json_object_get(db,
	    "encoding"));
	const char *name = json_string_value(json_object_get(db, "name"));
	PGconn *conn;
	char *msg;
	size_t i;

	conn = connect_db(m->conninfo, rawname, 1, encoding != NULL &&
	    strcmp(encoding, "SQL_ASCII") == 0);
	if (PQstatus(conn) == CONNECTION_OK && PQenterPipelineMode(conn)) {
		for (i = 0; i < detail_count(m); i++)
			if (!PQsendQueryParams(conn, detail_queries[i].sql, 0,
			    NULL, NULL, NULL, NULL, 0) || !PQpipelineSync(conn))
				break;
		if (i == detail_count(m))
			return conn;
	}
	msg = first_line(PQerrorMessage(conn));
	warn_field(m, "databases[%s]: extensions, schemas and relations "
	    "left out: %s", name, msg);
	free(msg);
	PQfinish(conn);
	return NULL;
}

/* The result of the next query of the pipeline, up to its sync. */
static PGresult *
pipeline_result(PGconn *conn)
{
	PGresult *got = NULL, *r;
	int nulls = 0;

	for (;;) {
		if ((r = PQgetResult(conn)) == NULL) {
			if (++nulls > 1)
				break;	/* the connection is gone */
			continue;
		}
		nulls = 0;
		if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			break;
		}
		if (got == NULL)
			got = r;
		else
			PQclear(r);
	}
	return got;
}

static void
detail_finish(struct meta *m, json_t *db, PGconn *conn)
{
	const char *name = json_string_value(json_object_get(db, "name"));
	size_t i;

	for (i = 0; i < detail_count(m); i++) {
		PGresult *res = pipeline_result(conn);
		json_t *j = NULL;
		char *msg;

		if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK &&
		    PQntuples(res) == 1)
			j = parse_server_json(PQgetvalue(res, 0, 0));
		if (j != NULL)
			json_object_set_new(db, detail_queries[i].field, j);
		else {
			msg = first_line(res != NULL ?
			    PQresultErrorMessage(res) : PQerrorMessage(conn));
			warn_field(m, "databases[%s].%s left out: %s", name,
			    detail_queries[i].field, msg);
			free(msg);
		}
		PQclear(res);
	}
	PQfinish(conn);
}

static json_t *
databases(struct meta *m)
{
	PGresult *res = query(m, m->conn, "databases", databases_sql);
	json_t *list, *db, *batch[PARALLEL_DATABASES];
	PGconn *conns[PARALLEL_DATABASES];
	int r, n = 0, i;

	if (res == NULL)
		return NULL;
	list = json_array();
	for (r = 0; r <= PQntuples(res); r++) {
		if (r < PQntuples(res)) {
			if ((db = parse_server_json(PQgetvalue(res, r, 2))) ==
			    NULL)
				continue;
			json_array_append_new(list, db);
			/* The raw name, not the sanitized one, to connect. */
			if (strcmp(PQgetvalue(res, r, 1), "t") == 0 &&
			    (conns[n] = detail_start(m, db,
			    PQgetvalue(res, r, 0))) != NULL)
				batch[n++] = db;
		}
		if (n == PARALLEL_DATABASES || (r == PQntuples(res) && n > 0)) {
			for (i = 0; i < n; i++)
				detail_finish(m, batch[i], conns[i]);
			n = 0;
		}
	}
	PQclear(res);
	return list;
}

static json_t *
single_value(struct meta *m, const char *field, const char *sql, char type)
{
	PGresult *res = query(m, m->conn, field, sql);
	json_t *v = NULL;

	if (res == NULL)
		return NULL;
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
		const char *s = PQgetvalue(res, 0, 0);

		v = type == 'b' ? json_boolean(strcmp(s, "t") == 0) :
		    json_string(s);
	}
	PQclear(res);
	if (v == NULL)
		warn_field(m, "%s left out: no value", field);
	return v;
}

/*
 * The keys Plakar's Go importer leaves out when empty (its omitempty
 * fields, DESIGN.md section 5), so that a reader of its manifest reads
 * ours unchanged.
 */
static const char *const omit_empty[] = {
	"pg_basebackup_version", "basetar_version",
	"cluster_system_identifier", "data_directory", "timezone",
	"max_connections", "wal_level", "server_encoding", "block_size",
	"wal_block_size", "shared_preload_libraries", "lc_collate",
	"lc_ctype", "archive_mode", "member_of", "options",
	"default_tablespace", "extensions", "schemas", "relations",
	"tablespace", "partition_parent", "partition_strategy",
	"storage_options", "columns", "constraints", "indexes", "default",
	"constraint_name",
};

static int
is_empty(const json_t *v)
{
	return json_is_null(v) ||
	    (json_is_string(v) && json_string_length(v) == 0) ||
	    (json_is_array(v) && json_array_size(v) == 0) ||
	    (json_is_integer(v) && json_integer_value(v) == 0);
}

static void
prune_empty(json_t *v)
{
	const char *key;
	json_t *child;
	void *tmp;
	size_t i;

	if (json_is_array(v)) {
		json_array_foreach(v, i, child)
			prune_empty(child);
		return;
	}
	if (!json_is_object(v))
		return;
	json_object_foreach_safe(v, tmp, key, child) {
		for (i = 0; i < sizeof(omit_empty) / sizeof(omit_empty[0]); i++)
			if (strcmp(key, omit_empty[i]) == 0 && is_empty(child))
				break;
		if (i < sizeof(omit_empty) / sizeof(omit_empty[0]))
			json_object_del(v, key);
		else
			prune_empty(child);
	}
}

/*
 * What every /manifest.json holds, the server asked nothing: the basics
 * (-B), also when the server could not tell the rest.
 */
static json_t *
basics(const struct meta *m, const char *host, const char *port,
    const char *server_version, int server_version_num)
{
	json_t *o = json_object();
	char when[32];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_set_new(o, "version", json_integer(2));
	json_object_set_new(o, "created_at", json_string(when));
	json_object_set_new(o, "connector", json_string("postgresql+bin"));
	json_object_set_new(o, "host", json_string(host != NULL ? host : ""));
	json_object_set_new(o, "port", json_string(port != NULL ? port : ""));
	if (server_version_num > 0) {
		set_if(o, "server_version", server_version != NULL ?
		    json_string(server_version) : NULL);
		json_object_set_new(o, "server_version_num",
		    json_integer(server_version_num));
	}
	/*
	 * What produced the tar is the caller's to say (-b), under a key
	 * named after it: basetar_version, or pg_basebackup_version.
	 */
	if (m->basebackup_version != NULL && *m->basebackup_version != '\0')
		json_object_set_new(o,
		    strncmp(m->basebackup_version, "basetar ", 8) == 0 ?
		    "basetar_version" : "pg_basebackup_version",
		    json_string(m->basebackup_version));
	return o;
}

static json_t *
collect(struct meta *m)
{
	json_t *o = basics(m, PQhost(m->conn), PQport(m->conn),
	    PQparameterStatus(m->conn, "server_version"),
	    PQserverVersion(m->conn));
	set_if(o, "cluster_system_identifier", single_value(m,
	    "cluster_system_identifier",
	    "SELECT system_identifier::text FROM pg_control_system()", 's'));
	set_if(o, "in_recovery", single_value(m, "in_recovery",
	    "SELECT pg_is_in_recovery()", 'b'));
	json_object_set_new(o, "dump_format", json_string("basebackup"));
	set_if(o, "cluster_config", cluster_config(m));
	PQclear(PQexec(m->conn, "SET TimeZone = 'UTC'"));
	set_if(o, "roles", query_json(m, m->conn, "roles", roles_sql));
	set_if(o, "tablespaces", query_json(m, m->conn, "tablespaces",
	    tablespaces_sql));
	set_if(o, "databases", databases(m));
	prune_empty(o);
	return o;
}

/* -o: a temporary file beside FILE, renamed over it once complete. */
static void
write_output(json_t *o, const char *file, size_t flags)
{
	char *tmp, *dircopy;
	size_t n;
	FILE *fp;
	int fd;

	if (file == NULL) {
		if (json_dumpf(o, stdout, flags) == -1 || fputc('\n', stdout) ==
		    EOF || fflush(stdout) == EOF)
			status_err(OUTCOME_USAGE, "stdout");
		return;
	}
	n = strlen(file) + sizeof(".XXXXXX");
	tmp = xmalloc(n);
	snprintf(tmp, n, "%s.XXXXXX", file);
	if ((fd = mkstemp(tmp)) == -1)
		status_err(OUTCOME_USAGE, "%s", tmp);
	if ((fp = fdopen(fd, "w")) == NULL ||
	    json_dumpf(o, fp, flags) == -1 || fputc('\n', fp) == EOF ||
	    fflush(fp) == EOF || fsync(fd) == -1 || fclose(fp) == EOF) {
		int e = errno;

		unlink(tmp);
		errno = e;
		status_err(OUTCOME_USAGE, "%s", tmp);
	}
	if (rename(tmp, file) == -1) {
		int e = errno;

		unlink(tmp);
		errno = e;
		status_err(OUTCOME_USAGE, "%s", file);
	}
	dircopy = xstrdup(file);
	if ((fd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY)) != -1) {
		(void)fsync(fd);
		close(fd);
	}
	free(dircopy);
	free(tmp);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "basebackup-version", required_argument, NULL, 'b' },
		{ "basics", no_argument, NULL, 'B' },
		{ "dbname", required_argument, NULL, 'd' },
		{ "output", required_argument, NULL, 'o' },
		{ "pretty", no_argument, NULL, 'p' },
		{ "no-relations", no_argument, NULL, 'R' },
		{ "strict", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct meta m;
	const char *output = NULL;
	size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
	json_t *o;
	char *msg;
	int ch, only_basics = 0;

	memset(&m, 0, sizeof(m));
	m.relations = 1;
	status_start("pgmeta", NULL);
	while ((ch = getopt_long(argc, argv, "BF:b:d:o:pRs", longopts, NULL)) != -1) {
		switch (ch) {
		case 'F':
			status_start("pgmeta", optarg);
			break;
		case 'B':
			only_basics = 1;
			break;
		case 'b':
			m.basebackup_version = optarg;
			break;
		case 'd':
			m.conninfo = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		case 'p':
			flags = JSON_INDENT(2) | JSON_PRESERVE_ORDER;
			break;
		case 'R':
			m.relations = 0;
			break;
		case 's':
			m.strict = 1;
			break;
		case 'h':
			help();
			return 0;
		case 'V':
			printf("pgmeta (plakar-pg) %s\n", VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc || (only_basics && m.conninfo != NULL))
		usage();
	if (only_basics) {
		/* the host and port libpq was given, as it was given them */
		o = basics(&m, getenv("PGHOST"), getenv("PGPORT"), NULL, 0);
		json_object_set_new(o, "dump_format", json_string("basebackup"));
		write_output(o, output, flags);
		json_decref(o);
		status_ok();
		return 0;
	}

	/* The server's own time zone first, for cluster_config. */
	m.conn = connect_db(m.conninfo, NULL, 0, 0);
	if (PQstatus(m.conn) != CONNECTION_OK) {
		msg = first_line(PQerrorMessage(m.conn));
		status_exit(OUTCOME_UNREACHABLE, NULL, "%s", msg);
	}
	o = collect(&m);
	PQfinish(m.conn);
	if (m.strict && m.warnings > 0)
		status_exit(OUTCOME_MANIFEST_INCOMPLETE, NULL, "%d warning%s: "
		    "the metadata is incomplete (--strict)", m.warnings,
		    m.warnings == 1 ? "" : "s");
	write_output(o, output, flags);
	json_decref(o);
	status_ok();
	return 0;
}
