# plakar-pg: physical PostgreSQL backups as record frames, for Plakar.
#
#   make                 build the programs into bin/
#   make check           run the test suite (bats, a real PostgreSQL)
#   make check-asan      the same suite with ASan+UBSan builds
#   make check-matrix    a round trip with each server major, 13 to 18
#   make lint            mandoc -Tlint, shellcheck, what the tests need
#   make options         plakar/schema.json from plakar/options
#   make outcomes        plakar-pg(7)'s exit statuses from lib/outcomes
#   make install-deps    the install step, as root (dev/install.sh)
#   make bench           speed and memory, measured side by side
#   make package         the directory for plakar pkg create
#   make tools           Plakar at the pinned version, into build/tools
#   make install         PREFIX=/usr/local DESTDIR=

VERSION = 0.1.0

PREFIX = /usr/local
BINDIR = $(PREFIX)/bin
MANDIR = $(PREFIX)/share/man

CC = cc
CFLAGS = -O2 -g
WARNFLAGS = -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes
ifdef WERROR
WARNFLAGS += -Werror
endif
SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
# Hardening of every build.  _FORTIFY_SOURCE needs optimisation and
# clashes with ASan: the sanitizer build sets FORTIFY empty.
HARDEN = -fstack-protector-strong -fPIE
HARDEN_LD = -pie -Wl,-z,relro,-z,now
FORTIFY = -D_FORTIFY_SOURCE=2

# Where programs and objects go: bin/ and build/ normally; the sanitizer
# build has its own pair so that both can live side by side.
OUT = bin
OBJ = build/obj

PKG_CFLAGS := $(shell pkg-config --cflags jansson libcrypto libisal libpq)
JSON_LIBS := $(shell pkg-config --libs jansson)
CRYPTO_LIBS := $(shell pkg-config --libs libcrypto libisal)
PQ_LIBS := $(shell pkg-config --libs libpq)
H2_CFLAGS := $(shell pkg-config --cflags libnghttp2 libprotobuf-c)
H2_LIBS := $(shell pkg-config --libs libnghttp2 libprotobuf-c)

# The importer's protobuf code, generated from plakar/proto by protoc-c;
# google/protobuf/timestamp.proto comes from libprotobuf-dev.
GEN = build/gen
PROTO_INCLUDE = /usr/include
PROTO_C = $(GEN)/connectors.pb-c.c $(GEN)/importer.pb-c.c \
	$(GEN)/google/protobuf/timestamp.pb-c.c

ALL_CFLAGS = $(WARNFLAGS) -D_GNU_SOURCE -DVERSION='"$(VERSION)"' -I$(GEN) \
	$(PKG_CFLAGS) $(HARDEN) $(FORTIFY) $(CFLAGS) $(EXTRA_CFLAGS)
ALL_LDFLAGS = $(HARDEN_LD) $(LDFLAGS)

# One directory per program, named after its man page; the library
# (lib/) is what they share, and never ends the process.
PROGS = tarsplit tarjoin uriparse pgmeta basetar pgprobe runpipe pgrelocate \
	plakar-pg-importer
SCRIPTS = plakar-pg
MAN1 = man/plakar-pg.1 man/plakar-pg-importer.1 man/tarsplit.1 man/tarjoin.1 \
	man/uriparse.1 man/pgmeta.1 man/basetar.1 man/pgprobe.1 man/runpipe.1 \
	man/pgrelocate.1
MAN5 = man/frames.5
MAN7 = man/plakar-pg.7
MANS = $(MAN1) $(MAN5) $(MAN7)

LIB_MODULES = archmerge bmverify child frame grpcserver options outcome tar \
	pgconn pgdata stop util
LIB = $(OBJ)/libplakarpg.a
# The programs' ways out (cmd/die.c): the library never ends the process.
DIE = $(OBJ)/cmd/die.o
HEADERS = lib/*.h cmd/*.h plakar-pg-importer/*.h tarsplit/*.h tarjoin/*.h uriparse/*.h $(GEN)/outcomes.inc $(GEN)/options.inc

all: $(PROGS:%=$(OUT)/%) $(SCRIPTS:%=$(OUT)/%)

# The outcome table (lib/outcomes) as C, as sh and as mdoc.
OUTCOMES = lib/outcomes lib/outcomes.awk
$(GEN)/outcomes.inc: $(OUTCOMES)
	@mkdir -p $(GEN)
	awk -v form=c -f lib/outcomes.awk lib/outcomes > $@.tmp && mv $@.tmp $@

$(GEN)/outcomes.sh: $(OUTCOMES)
	@mkdir -p $(GEN)
	awk -v form=sh -f lib/outcomes.awk lib/outcomes > $@.tmp && mv $@.tmp $@

# plakar-pg(7)'s EXIT STATUS table, rewritten in place; make lint fails
# when it is stale.
outcomes: $(OUTCOMES)
	@mkdir -p build
	awk -v form=mdoc -f lib/outcomes.awk lib/outcomes > build/outcomes.mdoc
	awk 'FNR == NR { t = t $$0 "\n"; next } \
	    /^\.\\" BEGIN outcomes/ { print; printf "%s", t; skip = 1; next } \
	    /^\.\\" END outcomes/ { skip = 0 } !skip' \
	    build/outcomes.mdoc man/plakar-pg.7 > build/plakar-pg.7.tmp
	mv build/plakar-pg.7.tmp man/plakar-pg.7

# The option table (plakar/options) as C, and as the JSON Schema that
# Plakar's package carries (plakar/schema.json, rewritten by make options;
# make lint fails when it is stale).
OPTIONS = plakar/options plakar/options.awk
$(GEN)/options.inc: $(OPTIONS)
	@mkdir -p $(GEN)
	awk -v form=c -f plakar/options.awk plakar/options > $@.tmp && mv $@.tmp $@

options: $(OPTIONS)
	awk -v form=schema -f plakar/options.awk plakar/options > plakar/schema.json.tmp
	mv plakar/schema.json.tmp plakar/schema.json

# The scripts: built by copying, with their run bit, the version, the
# outcomes' exit statuses and the status channel (plakar-pg/status.sh)
# put in.
SCRIPT_PARTS = $(GEN)/outcomes.sh plakar-pg/status.sh Makefile
$(OUT)/plakar-pg: plakar-pg/plakar-pg.sh $(SCRIPT_PARTS)
	@mkdir -p $(OUT)
	sed -e 's/@VERSION@/$(VERSION)/' \
	    -e '/^@OUTCOMES@$$/{r $(GEN)/outcomes.sh' -e 'd;}' \
	    -e '/^@STATUS@$$/{r plakar-pg/status.sh' -e 'd;}' $< > $@.tmp && \
	    chmod 755 $@.tmp && mv $@.tmp $@

# Every object, the library's and the programs', under $(OBJ) by its
# source's path.
$(OBJ)/%.o: %.c $(HEADERS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Ilib -Icmd -c -o $@ $<

$(LIB): $(LIB_MODULES:%=$(OBJ)/lib/%.o)
	rm -f $@
	ar rcs $@ $^

$(OUT)/tarsplit: $(OBJ)/tarsplit/tarsplit.o $(OBJ)/tarsplit/split.o $(DIE) $(LIB)
	@mkdir -p $(OUT)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(JSON_LIBS) $(CRYPTO_LIBS) $(ALL_LDFLAGS)

$(OUT)/tarjoin: $(OBJ)/tarjoin/tarjoin.o $(OBJ)/tarjoin/restore.o $(DIE) $(LIB)
	@mkdir -p $(OUT)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(JSON_LIBS) $(ALL_LDFLAGS)

$(OUT)/uriparse: $(OBJ)/uriparse/uriparse.o $(OBJ)/uriparse/location.o $(DIE) $(LIB)
	@mkdir -p $(OUT)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(PQ_LIBS) $(JSON_LIBS) $(ALL_LDFLAGS)

$(OUT)/pgmeta: $(OBJ)/pgmeta/pgmeta.o $(DIE) $(LIB)
	@mkdir -p $(OUT)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(PQ_LIBS) $(JSON_LIBS) $(ALL_LDFLAGS)

$(OUT)/basetar: $(OBJ)/basetar/basetar.o $(DIE) $(LIB)
	@mkdir -p $(OUT)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(PQ_LIBS) $(ALL_LDFLAGS)

$(OUT)/pgprobe: $(OBJ)/pgprobe/pgprobe.o $(DIE) $(LIB)
	@mkdir -p $(OUT)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(PQ_LIBS) $(ALL_LDFLAGS)

$(OUT)/pgrelocate: $(OBJ)/pgrelocate/pgrelocate.o $(DIE) $(LIB)
	@mkdir -p $(OUT)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(JSON_LIBS) $(CRYPTO_LIBS) $(ALL_LDFLAGS)

$(OUT)/runpipe: $(OBJ)/runpipe/runpipe.o $(DIE) $(LIB)
	@mkdir -p $(OUT)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(ALL_LDFLAGS)

$(PROTO_C): plakar/proto/connectors.proto plakar/proto/importer.proto
	@mkdir -p $(GEN)
	protoc-c -Iplakar/proto -I$(PROTO_INCLUDE) --c_out=$(GEN) \
	    connectors.proto importer.proto google/protobuf/timestamp.proto

# Generated code gets the compiler's defaults, not our warnings.
$(OBJ)/pb/%.o: $(GEN)/%.c $(PROTO_C)
	@mkdir -p $(@D)
	$(CC) $(HARDEN) $(FORTIFY) $(CFLAGS) $(EXTRA_CFLAGS) $(H2_CFLAGS) -I$(GEN) -c -o $@ $<

# The importer: its service needs the generated code, its transport nghttp2.
PB_OBJS = $(OBJ)/pb/connectors.pb-c.o $(OBJ)/pb/importer.pb-c.o \
	$(OBJ)/pb/google/protobuf/timestamp.pb-c.o
IMPORTER_OBJS = $(OBJ)/plakar-pg-importer/plakar-pg-importer.o \
	$(OBJ)/plakar-pg-importer/importer.o $(PB_OBJS)

$(OBJ)/plakar-pg-importer/importer.o $(OBJ)/plakar-pg-importer/plakar-pg-importer.o \
    $(OBJ)/lib/grpcserver.o $(OBJ)/t/unit/importer_test.o $(OBJ)/t/unit/grpc_echo.o: \
    $(PROTO_C)
$(OBJ)/plakar-pg-importer/importer.o $(OBJ)/plakar-pg-importer/plakar-pg-importer.o \
    $(OBJ)/lib/grpcserver.o $(OBJ)/t/unit/importer_test.o $(OBJ)/t/unit/grpc_echo.o: \
	ALL_CFLAGS += $(H2_CFLAGS) -I$(GEN) -Iplakar-pg-importer

$(OUT)/plakar-pg-importer: $(IMPORTER_OBJS) $(DIE) $(LIB)
	@mkdir -p $(OUT)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(H2_LIBS) $(JSON_LIBS) $(ALL_LDFLAGS)

# Test programs, built apart from the programs (TESTOUT): the transport
# under a trivial service, the service without its transport, and a gRPC
# client on Plakar's own stack (grpc-go and integration-grpc at Plakar's
# versions, pinned in t/helpers/grpcclient/go.mod).
GO = go
TESTOUT = build/test
TESTPROGS = $(TESTOUT)/lib_test $(TESTOUT)/grpc_echo $(TESTOUT)/importer_test \
	build/grpcclient

# The library alone: no cmd/die.o, so nothing of it can end the process.
$(TESTOUT)/lib_test: $(OBJ)/t/unit/lib_test.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(JSON_LIBS) $(ALL_LDFLAGS)

$(TESTOUT)/grpc_echo: $(OBJ)/t/unit/grpc_echo.o $(DIE) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(H2_LIBS) $(ALL_LDFLAGS)

# The service without its transport: grpcserver.o is not linked.
$(TESTOUT)/importer_test: $(OBJ)/t/unit/importer_test.o \
    $(OBJ)/plakar-pg-importer/importer.o $(PB_OBJS) $(DIE) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(H2_LIBS) $(JSON_LIBS) $(ALL_LDFLAGS)

build/grpcclient: t/helpers/grpcclient/*.go t/helpers/grpcclient/go.mod t/helpers/grpcclient/go.sum
	cd t/helpers/grpcclient && CGO_ENABLED=0 $(GO) build -o ../../../$@ .

testprogs: $(TESTPROGS)

# libFuzzer on every parser of outside input: make fuzz FUZZ_SECONDS=60
# runs each target that long on its corpus (dev/fuzz.sh).
FUZZ_SECONDS = 30
FUZZERS = uriparse frame grpcserver basetar tarsplit pgdata
FUZZ_FLAGS = -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all $(PKG_CFLAGS) $(H2_CFLAGS) -Ilib -I$(GEN)
# Each target links the code it fuzzes through that code's own entry
# points: the library's archive, built for the fuzzer (FUZZ_LIB).
FUZZ_OBJ = build/fuzz/obj
FUZZ_LIB = $(FUZZ_OBJ)/libplakarpg.a
$(FUZZ_OBJ)/%.o: %.c $(HEADERS)
	@mkdir -p $(@D)
	clang $(FUZZ_FLAGS) -Ilib -Icmd -Iuriparse -Itarsplit -c -o $@ $<

$(FUZZ_LIB): $(LIB_MODULES:%=$(FUZZ_OBJ)/lib/%.o)
	rm -f $@
	ar rcs $@ $^

build/fuzz/uriparse: $(FUZZ_OBJ)/t/fuzz/uriparse.o \
    $(FUZZ_OBJ)/uriparse/location.o $(FUZZ_LIB)
	clang $(FUZZ_FLAGS) -o $@ $^ $(PQ_LIBS) $(JSON_LIBS)

build/fuzz/frame: $(FUZZ_OBJ)/t/fuzz/frame.o $(FUZZ_LIB)
	clang $(FUZZ_FLAGS) -o $@ $^ $(JSON_LIBS)

build/fuzz/grpcserver: $(FUZZ_OBJ)/t/fuzz/grpcserver.o $(FUZZ_LIB)
	clang $(FUZZ_FLAGS) -o $@ $^ $(H2_LIBS)

build/fuzz/tarsplit: $(FUZZ_OBJ)/t/fuzz/tarsplit.o \
    $(FUZZ_OBJ)/tarsplit/split.o $(FUZZ_LIB)
	clang $(FUZZ_FLAGS) -o $@ $^ $(JSON_LIBS) $(CRYPTO_LIBS)

build/fuzz/pgdata: $(FUZZ_OBJ)/t/fuzz/pgdata.o $(FUZZ_LIB)
	clang $(FUZZ_FLAGS) -o $@ $^

build/fuzz/basetar: $(FUZZ_OBJ)/t/fuzz/basetar.o $(FUZZ_LIB)
	clang $(FUZZ_FLAGS) -o $@ $^

fuzz: $(FUZZERS:%=build/fuzz/%)
	sh dev/fuzz.sh $(FUZZ_SECONDS) $(FUZZERS)

# Everything the build and make check need, as root: Debian's packages,
# the locales, Plakar, the test client's modules.
install-deps:
	sh dev/install.sh

# Plakar itself, at the version dev/plakar/go.mod pins.
TOOLS = build/tools
tools:
	sh dev/install-plakar.sh $(TOOLS)

# The suites by level: the library's units, the programs' command lines,
# the system with a real server, and everything through the real Plakar.
SUITES = t/unit t/cli t/server t/plakar
BATS = bats --setup-suite-file t/helpers/setup_suite.bash

check: all testprogs tools
	PLAKAR_PG_BIN=$(CURDIR)/$(OUT) PLAKAR_PG_TESTBIN=$(CURDIR)/$(TESTOUT) \
	    $(BATS) $(SUITES)

# The version matrix: servers of other majors from the npm registry
# (dev/servers, pinned with integrity hashes), one round trip each.
SERVERS = build/servers
$(SERVERS)/.installed: dev/servers/package.json dev/servers/package-lock.json dev/install-servers.sh
	sh dev/install-servers.sh $(SERVERS)
	touch $@

servers: $(SERVERS)/.installed

check-matrix: all tools servers
	PLAKAR_PG_BIN=$(CURDIR)/$(OUT) PLAKAR_SERVERS=$(CURDIR)/$(SERVERS) bats t/matrix

# Parity with Plakar's Go importer: GO_IMPORTER, a binimporter built by
# hand (its module is not served by the Go module proxy here).
check-parity: all tools
	PLAKAR_PG_BIN=$(CURDIR)/$(OUT) GO_IMPORTER=$(GO_IMPORTER) bats t/parity

check-asan: tools
	$(MAKE) OUT=build/asan/bin OBJ=build/asan/obj TESTOUT=build/asan/test \
	    EXTRA_CFLAGS='$(SANFLAGS)' FORTIFY= all testprogs
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	PLAKAR_PG_BIN=$(CURDIR)/build/asan/bin \
	PLAKAR_PG_TESTBIN=$(CURDIR)/build/asan/test $(BATS) $(SUITES)

lint: $(OUT)/plakar-pg
	mandoc -Tlint -Wwarning $(MANS)
	@mkdir -p build
	awk -v form=mdoc -f lib/outcomes.awk lib/outcomes > build/outcomes.mdoc
	sed -n '/^\.\\" BEGIN outcomes/,/^\.\\" END outcomes/p' man/plakar-pg.7 | \
	    sed '1d;$$d' | diff -u build/outcomes.mdoc - || \
	    { echo "man/plakar-pg.7: its outcome table is stale: make outcomes"; exit 1; }
	awk -v form=schema -f plakar/options.awk plakar/options | \
	    diff -u plakar/schema.json - || \
	    { echo "plakar/schema.json is stale: make options"; exit 1; }
	shellcheck -s sh plakar-pg/*.sh dev/*.sh
	shellcheck -s bash -x t/*/*.bash dev/*.bash .ci/run
	@n=$$(wc -l < $(OUT)/plakar-pg); \
	    [ "$$n" -le 300 ] || { echo "$(OUT)/plakar-pg: $$n lines of shell as installed, 300 at most"; exit 1; }
	@! grep -nE '(^|[^_[:alnum:]])(exit|err|errx|verr|verrx)[[:space:]]*\(' lib/*.c || \
	    { echo "lib/: the library never ends the process: return, and let cmd/die.c end it"; exit 1; }
	sh dev/include-cycles.sh
	python3 dev/check-needs.py

bench: all tools
	PLAKAR_PG_BIN=$(CURDIR)/$(OUT) bash dev/bench.bash

install: all
	mkdir -p $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7
	for p in $(PROGS) $(SCRIPTS); do \
	    [ ! -f $(OUT)/$$p ] || install -m 755 $(OUT)/$$p $(DESTDIR)$(BINDIR)/; \
	done
	install -m 644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/
	install -m 644 $(MAN5) $(DESTDIR)$(MANDIR)/man5/
	install -m 644 $(MAN7) $(DESTDIR)$(MANDIR)/man7/

# The directory that plakar pkg create takes: the manifest, its validator,
# the importer and the programs it runs.
PKGDIR = build/package
package: all
	rm -rf $(PKGDIR)
	mkdir -p $(PKGDIR)
	cp plakar/manifest.yaml plakar/schema.json $(PKGDIR)/
	for p in $(PROGS); do install -m 755 $(OUT)/$$p $(PKGDIR)/; done
	for p in $(SCRIPTS); do install -m 755 $(OUT)/$$p $(PKGDIR)/; done
	@echo "then: cd $(PKGDIR) && plakar pkg create manifest.yaml v$(VERSION)"

clean:
	rm -rf build bin

.PHONY: all outcomes options install-deps check check-asan check-matrix check-parity lint bench fuzz package install clean testprogs tools servers
