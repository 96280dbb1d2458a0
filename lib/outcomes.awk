# The outcome table (lib/outcomes) as C, as sh or as mdoc:
#	awk -v form=c|sh|mdoc -f lib/outcomes.awk lib/outcomes
BEGIN {
	FS = "\t"
	if (form == "c") {
		print "/* Generated from lib/outcomes by lib/outcomes.awk. */"
		# gRPC's status codes, by name
		split("OK CANCELLED UNKNOWN INVALID_ARGUMENT DEADLINE_EXCEEDED " \
		    "NOT_FOUND ALREADY_EXISTS PERMISSION_DENIED RESOURCE_EXHAUSTED " \
		    "FAILED_PRECONDITION ABORTED OUT_OF_RANGE UNIMPLEMENTED " \
		    "INTERNAL UNAVAILABLE DATA_LOSS UNAUTHENTICATED", names, " ")
		for (i in names)
			grpc[names[i]] = i - 1
	} else if (form == "sh") {
		print "# The exit status of each outcome (lib/outcomes)."
		print "outcome_exit() {"
		print "\tcase $1 in"
	} else if (form == "mdoc") {
		print ".\\\" Generated from lib/outcomes: make outcomes"
		print ".Bl -tag -width Ds"
	}
}
/^#/ || NF == 0 { next }
NF != 5 { printf "lib/outcomes:%d: five fields, tab-separated\n", NR > "/dev/stderr"; bad = 1; exit 1 }
{
	if (form == "c") {
		if (!($3 in grpc)) {
			printf "lib/outcomes:%d: %s: not a gRPC code\n", NR, $3 > "/dev/stderr"
			bad = 1
			exit 1
		}
		id = toupper($1)
		gsub(/-/, "_", id)
		printf "OUTCOME(%s, \"%s\", %d, %d)\n", id, $1, $2, grpc[$3]
	}
	else if (form == "sh") {
		# one case per exit status, its outcomes joined by |
		if ($2 in names_of)
			joined = names_of[$2] "|" $1
		else {
			order[++nexits] = $2
			joined = $1
		}
		names_of[$2] = joined
	}
	else if (form == "mdoc") {
		printf ".It Cm %s No \\(em exit %d , %s\n%s\n", $1, $2, $3, $5
		if ($4 != "-")
			printf "SQLSTATE %s.\n", $4
	}
}
END {
	if (bad)
		exit 1
	if (form == "sh") {
		for (i = 1; i <= nexits; i++)
			printf "\t%s) echo %d ;;\n", names_of[order[i]], order[i]
		print "\t*) echo 3 ;;"
		print "\tesac"
		print "}"
	} else if (form == "mdoc")
		print ".El"
}
