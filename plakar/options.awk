# The option table (plakar/options) as C or as JSON Schema:
#	awk -v form=c|schema -f plakar/options.awk plakar/options
BEGIN {
	FS = "\t"
	ntypes = split("location host int text secret file pem bindir enum rate", t, " ")
	for (i = 1; i <= ntypes; i++)
		known[t[i]] = 1
	if (form == "c")
		print "/* Generated from plakar/options by plakar/options.awk. */"
}

function fail(msg) {
	printf "plakar/options:%d: %s\n", NR, msg > "/dev/stderr"
	bad = 1
	exit 1
}

function json(s) {
	gsub(/\\/, "\\\\", s)
	gsub(/"/, "\\\"", s)
	return "\"" s "\""
}

function cstr(s) {
	return s == "-" ? "NULL" : json(s)
}

/^#/ || NF == 0 { next }
NF != 7 { fail("seven fields, tab-separated") }
{
	n = split($3, ty, " ")
	if (!(ty[1] in known))
		fail(ty[1] ": not a type")
	if ((ty[1] == "int" || ty[1] == "rate") && (n != 3 || ty[2] !~ /^[0-9]+$/ || ty[3] !~ /^[0-9]+$/))
		fail($3 ": LO HI")
	if (ty[1] == "text" && (n != 2 || ty[2] !~ /^[0-9]+$/))
		fail($3 ": text N")
	if (ty[1] == "enum" && n < 3)
		fail($3 ": two words at least")
	if ($2 != "uriparse" && $2 != "plakar-pg" && $2 != "plakar-pg-importer")
		fail($2 ": not a program that takes options")
	if ($1 in seen)
		fail($1 ": twice")
	seen[$1] = 1
	key[++rows] = $1
	prog[rows] = $2
	type[rows] = ty[1]
	lo[rows] = ty[1] == "text" ? 0 : (n >= 3 && ty[1] != "enum" ? ty[2] : 0)
	hi[rows] = ty[1] == "text" ? ty[2] : (n >= 3 && ty[1] != "enum" ? ty[3] : 0)
	vals[rows] = ""
	if (ty[1] == "enum")
		for (i = 2; i <= n; i++)
			vals[rows] = vals[rows] (i > 2 ? " " : "") ty[i]
	def[rows] = $4
	example[rows] = $5
	to[rows] = $6
	desc[rows] = $7
}

END {
	if (bad)
		exit 1
	if (form == "c") {
		for (r = 1; r <= rows; r++) {
			p = prog[r]
			gsub(/-/, "_", p)
			printf "OPTION(%s, PROG_%s, TYPE_%s, %sLL, %sLL, %s, %s)\n",
			    json(key[r]), toupper(p), toupper(type[r]), lo[r],
			    hi[r], vals[r] == "" ? "NULL" : json(vals[r]), cstr(def[r])
		}
		exit 0
	}
	print "{"
	print "  \"$schema\": \"https://json-schema.org/draft/2020-12/schema\","
	print "  \"title\": \"postgres+bin source options (plakar-pg)\","
	print "  \"description\": \"Generated from plakar/options (make options): each property says which program takes it (x-program), its constraints, default and an example; src/options.c checks every value by the same table.\","
	print "  \"type\": \"object\","
	print "  \"additionalProperties\": false,"
	print "  \"required\": ["
	print "    \"location\""
	print "  ],"
	print "  \"properties\": {"
	for (r = 1; r <= rows; r++) {
		printf "    %s: {\n", json(key[r])
		printf "      \"type\": \"string\",\n"
		if (type[r] == "location")
			printf "      \"pattern\": \"^[Pp][Oo][Ss][Tt][Gg][Rr][Ee][Ss]\\\\+[Bb][Ii][Nn]://\",\n"
		else if (type[r] == "int")
			printf "      \"pattern\": \"^(0|[1-9][0-9]{0,%d})$\",\n", length(hi[r]) - 1
		else if (type[r] == "rate")
			printf "      \"pattern\": \"^[1-9][0-9]{0,%d}[kM]?$\",\n", length(hi[r]) - 1
		else if (type[r] == "text")
			printf "      \"x-max-bytes\": %d,\n", hi[r]
		if (type[r] == "enum") {
			printf "      \"enum\": [\n"
			n = split(vals[r], v, " ")
			for (i = 1; i <= n; i++)
				printf "        %s%s\n", json(v[i]), i < n ? "," : ""
			printf "      ],\n"
		}
		if (def[r] != "-")
			printf "      \"default\": %s,\n", json(def[r])
		printf "      \"description\": %s,\n", json(desc[r])
		if (type[r] == "int" || type[r] == "rate") {
			printf "      \"x-minimum\": %s,\n", lo[r]
			printf "      \"x-maximum\": %s,\n", hi[r]
		}
		printf "      \"x-program\": %s,\n", json(prog[r])
		printf "      \"x-to\": %s,\n", json(to[r])
		printf "      \"examples\": [\n        %s\n      ]\n", json(example[r])
		printf "    }%s\n", r < rows ? "," : ""
	}
	print "  }"
	print "}"
}
