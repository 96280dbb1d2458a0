# plakar-pg: physical PostgreSQL backups as record frames, for Plakar.
#
#   make                 build the programs into bin/
#   make check           run the test suite (bats, a real PostgreSQL)
#   make check-asan      the same suite with ASan+UBSan builds
#   make check-matrix    a round trip with each server major, 13 to 18
#   make lint            mandoc -Tlint, shellcheck, what the tests need
#   make options         share/schema.json from share/options
#   make outcomes        plakar-pg(7)'s exit statuses from share/outcomes
#   make install-deps    the install step, as root (share/install.sh)
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

PKG_CFLAGS := $(shell pkg-config --cflags libarchive jansson libcrypto libisal libpq)
ARCHIVE_LIBS := $(shell pkg-config --libs libarchive)
JSON_LIBS := $(shell pkg-config --libs jansson)
CRYPTO_LIBS := $(shell pkg-config --libs libcrypto libisal)
PQ_LIBS := $(shell pkg-config --libs libpq)
H2_CFLAGS := $(shell pkg-config --cflags libnghttp2 libprotobuf-c)
H2_LIBS := $(shell pkg-config --libs libnghttp2 libprotobuf-c)

# The importer's protobuf code, generated from share/proto by protoc-c;
# google/protobuf/timestamp.proto comes from libprotobuf-dev.
GEN = build/gen
PROTO_INCLUDE = /usr/include
PROTO_C = $(GEN)/connectors.pb-c.c $(GEN)/importer.pb-c.c \
	$(GEN)/google/protobuf/timestamp.pb-c.c

ALL_CFLAGS = $(WARNFLAGS) -D_GNU_SOURCE -DVERSION='"$(VERSION)"' -I$(GEN) \
	$(PKG_CFLAGS) $(HARDEN) $(FORTIFY) $(CFLAGS) $(EXTRA_CFLAGS)
ALL_LDFLAGS = $(HARDEN_LD) $(LDFLAGS)

PROGS = tarsplit tarjoin uriparse pgmeta basetar pgprobe runpipe plakar-pg-importer
SCRIPTS = plakar-pg
MAN1 = man/plakar-pg.1 man/plakar-pg-importer.1 man/tarsplit.1 man/tarjoin.1 man/uriparse.1 man/pgmeta.1 man/basetar.1 man/pgprobe.1 man/runpipe.1
MAN5 = man/frames.5
MAN7 = man/plakar-pg.7
MANS = $(MAN1) $(MAN5) $(MAN7)

all: $(PROGS:%=$(OUT)/%) $(SCRIPTS:%=$(OUT)/%)

# The outcome table (share/outcomes) as C, as sh and as mdoc.
OUTCOMES = share/outcomes share/outcomes.awk
$(GEN)/outcomes.inc: $(OUTCOMES)
	@mkdir -p $(GEN)
	awk -v form=c -f share/outcomes.awk share/outcomes > $@.tmp && mv $@.tmp $@

$(GEN)/outcomes.sh: $(OUTCOMES)
	@mkdir -p $(GEN)
	awk -v form=sh -f share/outcomes.awk share/outcomes > $@.tmp && mv $@.tmp $@

# plakar-pg(7)'s EXIT STATUS table, rewritten in place; make lint fails
# when it is stale.
outcomes: $(OUTCOMES)
	@mkdir -p build
	awk -v form=mdoc -f share/outcomes.awk share/outcomes > build/outcomes.mdoc
	awk 'FNR == NR { t = t $$0 "\n"; next } \
	    /^\.\\" BEGIN outcomes/ { print; printf "%s", t; skip = 1; next } \
	    /^\.\\" END outcomes/ { skip = 0 } !skip' \
	    build/outcomes.mdoc man/plakar-pg.7 > build/plakar-pg.7.tmp
	mv build/plakar-pg.7.tmp man/plakar-pg.7

# The option table (share/options) as C, and as the JSON Schema that
# Plakar's package carries (share/schema.json, rewritten by make options;
# make lint fails when it is stale).
OPTIONS = share/options share/options.awk
$(GEN)/options.inc: $(OPTIONS)
	@mkdir -p $(GEN)
	awk -v form=c -f share/options.awk share/options > $@.tmp && mv $@.tmp $@

options: $(OPTIONS)
	awk -v form=schema -f share/options.awk share/options > share/schema.json.tmp
	mv share/schema.json.tmp share/schema.json

# The wrapper is a shell script: built by copying, with its run bit, its
# version and the outcomes' exit statuses put in.
$(OUT)/%: src/%.sh $(GEN)/outcomes.sh Makefile
	@mkdir -p $(OUT)
	sed -e 's/@VERSION@/$(VERSION)/' -e '/^@OUTCOMES@$$/{r $(GEN)/outcomes.sh' -e 'd;}' $< > $@.tmp && \
	    chmod 755 $@.tmp && mv $@.tmp $@

$(OBJ)/%.o: src/%.c src/*.h $(GEN)/outcomes.inc $(GEN)/options.inc
	@mkdir -p $(OBJ)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(OUT)/tarsplit: $(OBJ)/tarsplit.o $(OBJ)/bmverify.o $(OBJ)/frame.o $(OBJ)/util.o $(OBJ)/outcome.o
	@mkdir -p $(OUT)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(ARCHIVE_LIBS) $(JSON_LIBS) $(CRYPTO_LIBS) $(ALL_LDFLAGS)

$(OUT)/tarjoin: $(OBJ)/tarjoin.o $(OBJ)/frame.o $(OBJ)/util.o $(OBJ)/outcome.o
	@mkdir -p $(OUT)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(ARCHIVE_LIBS) $(JSON_LIBS) $(ALL_LDFLAGS)

$(OUT)/uriparse: $(OBJ)/uriparse.o $(OBJ)/options.o $(OBJ)/util.o $(OBJ)/outcome.o
	@mkdir -p $(OUT)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(PQ_LIBS) $(JSON_LIBS) $(ALL_LDFLAGS)

$(OUT)/pgmeta: $(OBJ)/pgmeta.o $(OBJ)/util.o $(OBJ)/outcome.o
	@mkdir -p $(OUT)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(PQ_LIBS) $(JSON_LIBS) $(ALL_LDFLAGS)

$(OUT)/basetar: $(OBJ)/basetar.o $(OBJ)/archmerge.o $(OBJ)/pgconn.o $(OBJ)/options.o $(OBJ)/util.o $(OBJ)/outcome.o
	@mkdir -p $(OUT)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(PQ_LIBS) $(ALL_LDFLAGS)

$(OUT)/pgprobe: $(OBJ)/pgprobe.o $(OBJ)/pgconn.o $(OBJ)/util.o $(OBJ)/outcome.o
	@mkdir -p $(OUT)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(PQ_LIBS) $(ALL_LDFLAGS)

$(OUT)/runpipe: $(OBJ)/runpipe.o $(OBJ)/util.o $(OBJ)/outcome.o
	@mkdir -p $(OUT)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(ALL_LDFLAGS)

$(PROTO_C): share/proto/connectors.proto share/proto/importer.proto
	@mkdir -p $(GEN)
	protoc-c -Ishare/proto -I$(PROTO_INCLUDE) --c_out=$(GEN) \
	    connectors.proto importer.proto google/protobuf/timestamp.proto

# Generated code gets the compiler's defaults, not our warnings.
$(OBJ)/pb/%.o: $(GEN)/%.c $(PROTO_C)
	@mkdir -p $(@D)
	$(CC) $(HARDEN) $(FORTIFY) $(CFLAGS) $(EXTRA_CFLAGS) $(H2_CFLAGS) -I$(GEN) -c -o $@ $<

# The importer: its service needs the generated code, its transport nghttp2.
IMPORTER_OBJS = $(OBJ)/plakar-pg-importer.o $(OBJ)/importer.o \
	$(OBJ)/grpcserver.o $(OBJ)/child.o $(OBJ)/frame.o $(OBJ)/options.o \
	$(OBJ)/util.o $(OBJ)/outcome.o $(OBJ)/pb/connectors.pb-c.o $(OBJ)/pb/importer.pb-c.o \
	$(OBJ)/pb/google/protobuf/timestamp.pb-c.o

$(OBJ)/importer.o $(OBJ)/plakar-pg-importer.o $(OBJ)/grpcserver.o: $(PROTO_C)
$(OBJ)/importer.o $(OBJ)/plakar-pg-importer.o $(OBJ)/grpcserver.o: \
	ALL_CFLAGS += $(H2_CFLAGS) -I$(GEN)

$(OUT)/plakar-pg-importer: $(IMPORTER_OBJS)
	@mkdir -p $(OUT)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(H2_LIBS) $(JSON_LIBS) $(ALL_LDFLAGS)

# Test programs: the transport under a trivial service, and a gRPC client
# on Plakar's own stack (grpc-go and integration-grpc at Plakar's
# versions, pinned in t/grpcclient/go.mod).
GO = go
TESTPROGS = $(OUT)/grpc_echo $(OUT)/importer_test build/grpcclient

$(OBJ)/grpc_echo.o: t/grpc_echo.c src/*.h
	@mkdir -p $(OBJ)
	$(CC) $(ALL_CFLAGS) -Isrc -c -o $@ t/grpc_echo.c

$(OUT)/grpc_echo: $(OBJ)/grpc_echo.o $(OBJ)/grpcserver.o $(OBJ)/util.o $(OBJ)/outcome.o
	@mkdir -p $(OUT)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(H2_LIBS) $(ALL_LDFLAGS)

$(OBJ)/importer_test.o: t/importer_test.c src/*.h $(PROTO_C)
	@mkdir -p $(OBJ)
	$(CC) $(ALL_CFLAGS) $(H2_CFLAGS) -I$(GEN) -Isrc -c -o $@ t/importer_test.c

# The service without its transport: grpcserver.o is not linked.
$(OUT)/importer_test: $(OBJ)/importer_test.o $(OBJ)/importer.o \
    $(OBJ)/child.o $(OBJ)/frame.o $(OBJ)/options.o $(OBJ)/util.o \
    $(OBJ)/outcome.o $(OBJ)/pb/connectors.pb-c.o $(OBJ)/pb/importer.pb-c.o \
    $(OBJ)/pb/google/protobuf/timestamp.pb-c.o
	@mkdir -p $(OUT)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(H2_LIBS) $(JSON_LIBS) $(ALL_LDFLAGS)

build/grpcclient: t/grpcclient/*.go t/grpcclient/go.mod t/grpcclient/go.sum
	cd t/grpcclient && CGO_ENABLED=0 $(GO) build -o ../../$@ .

testprogs: $(TESTPROGS)

# libFuzzer on every parser of outside input: make fuzz FUZZ_SECONDS=60
# runs each target that long on its corpus (t/fuzz/seeds/TARGET), under
# ASan+UBSan, with memory limits so that runaway memory is a finding.
FUZZ_SECONDS = 30
FUZZERS = uriparse frame grpcserver basetar tarsplit
FUZZ_FLAGS = -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all $(PKG_CFLAGS) $(H2_CFLAGS) -Isrc -I$(GEN)
FUZZ_MAX_LEN_uriparse = 512
FUZZ_MAX_LEN_frame = 4096
FUZZ_MAX_LEN_grpcserver = 65536
# tarsplit's exits return to its target by longjmp: what a member held
# then is left behind, by design, so leaks are not looked for there.  Its
# inputs are large: its memory is held by a law of its own (the heap
# within 4 x input + 16 MiB), not by the process's RSS, which ASan's
# quarantine and libFuzzer's corpus fill.
FUZZ_MAX_LEN_tarsplit = 8388608

build/fuzz/uriparse: src/uriparse.c src/options.c src/util.c src/outcome.c \
    src/options.h src/util.h src/outcome.h $(GEN)/outcomes.inc \
    $(GEN)/options.inc
	@mkdir -p build/fuzz
	clang $(FUZZ_FLAGS) -DURIPARSE_FUZZ -o $@ src/uriparse.c src/options.c \
	    src/util.c src/outcome.c $(PQ_LIBS) $(JSON_LIBS)

build/fuzz/frame: t/fuzz/frame.c src/frame.c src/util.c src/frame.h src/util.h
	@mkdir -p build/fuzz
	clang $(FUZZ_FLAGS) -o $@ t/fuzz/frame.c src/frame.c src/util.c \
	    $(JSON_LIBS)

build/fuzz/grpcserver: t/fuzz/grpcserver.c src/grpcserver.c src/util.c \
    src/grpcserver.h src/util.h
	@mkdir -p build/fuzz
	clang $(FUZZ_FLAGS) -o $@ t/fuzz/grpcserver.c src/grpcserver.c \
	    src/util.c $(H2_LIBS)

build/fuzz/tarsplit: t/fuzz/tarsplit.c t/fuzz/tarsplit-exit.h src/tarsplit.c \
    src/bmverify.c src/frame.c src/util.c src/outcome.c src/bmverify.h \
    src/frame.h src/util.h src/outcome.h $(GEN)/outcomes.inc
	@mkdir -p build/fuzz
	clang $(FUZZ_FLAGS) -DTARSPLIT_FUZZ -o $@ t/fuzz/tarsplit.c \
	    src/tarsplit.c src/bmverify.c src/frame.c src/util.c src/outcome.c \
	    $(ARCHIVE_LIBS) $(JSON_LIBS) $(CRYPTO_LIBS)

build/fuzz/basetar: t/fuzz/basetar.c src/archmerge.c src/util.c \
    src/archmerge.h src/util.h
	@mkdir -p build/fuzz
	clang $(FUZZ_FLAGS) -o $@ t/fuzz/basetar.c src/archmerge.c src/util.c

fuzz: $(FUZZERS:%=build/fuzz/%)
	@s=0; for f in $(FUZZERS); do \
	    rm -rf build/fuzz/corpus-$$f; mkdir -p build/fuzz/corpus-$$f; \
	    cp t/fuzz/seeds/$$f/* build/fuzz/corpus-$$f/; \
	    rss=384; \
	    case $$f in uriparse) n=$(FUZZ_MAX_LEN_uriparse);; \
	        frame) n=$(FUZZ_MAX_LEN_frame);; \
	        tarsplit) n="$(FUZZ_MAX_LEN_tarsplit) -detect_leaks=0"; \
	            rss=1024; \
	            export ASAN_OPTIONS=detect_leaks=0:quarantine_size_mb=16;; \
	        *) n=$(FUZZ_MAX_LEN_grpcserver);; \
	    esac; \
	    build/fuzz/$$f -max_total_time=$(FUZZ_SECONDS) -max_len=$$n \
	        -rss_limit_mb=$$rss -malloc_limit_mb=128 -timeout=10 \
	        build/fuzz/corpus-$$f > build/fuzz/$$f.log 2>&1 || s=1; \
	    printf 'fuzz %s: ' $$f; \
	    grep -E '^(Done|==[0-9]+==ERROR|SUMMARY)' build/fuzz/$$f.log | \
	        tr '\n' ' '; echo; \
	done; exit $$s

# Everything the build and make check need, as root: Debian's packages,
# the locales, Plakar, the test client's modules.
install-deps:
	sh share/install.sh

# Plakar itself, at the version share/plakar/go.mod pins.
TOOLS = build/tools
tools:
	sh share/install-plakar.sh $(TOOLS)

check: all testprogs tools
	PLAKAR_PG_BIN=$(CURDIR)/$(OUT) bats t/

# The version matrix: servers of other majors from the npm registry
# (share/servers, pinned with integrity hashes), one round trip each.
SERVERS = build/servers
$(SERVERS)/.installed: share/servers/package.json share/servers/package-lock.json share/install-servers.sh
	sh share/install-servers.sh $(SERVERS)
	touch $@

servers: $(SERVERS)/.installed

check-matrix: all tools servers
	PLAKAR_PG_BIN=$(CURDIR)/$(OUT) PLAKAR_SERVERS=$(CURDIR)/$(SERVERS) bats t/matrix

# Parity with Plakar's Go importer: GO_IMPORTER, a binimporter built by
# hand (its module is not served by the Go module proxy here).
check-parity: all tools
	PLAKAR_PG_BIN=$(CURDIR)/$(OUT) GO_IMPORTER=$(GO_IMPORTER) bats t/parity

check-asan: tools
	$(MAKE) OUT=build/asan/bin OBJ=build/asan/obj EXTRA_CFLAGS='$(SANFLAGS)' \
	    FORTIFY= all testprogs
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	PLAKAR_PG_BIN=$(CURDIR)/build/asan/bin bats t/

lint:
	mandoc -Tlint -Wwarning $(MANS)
	@mkdir -p build
	awk -v form=mdoc -f share/outcomes.awk share/outcomes > build/outcomes.mdoc
	sed -n '/^\.\\" BEGIN outcomes/,/^\.\\" END outcomes/p' man/plakar-pg.7 | \
	    sed '1d;$$d' | diff -u build/outcomes.mdoc - || \
	    { echo "man/plakar-pg.7: its outcome table is stale: make outcomes"; exit 1; }
	awk -v form=schema -f share/options.awk share/options | \
	    diff -u share/schema.json - || \
	    { echo "share/schema.json is stale: make options"; exit 1; }
	shellcheck -s sh $(SCRIPTS:%=src/%.sh) share/*.sh
	shellcheck -s bash -x t/*.bash t/*/*.bash share/*.bash .ci/run
	sh share/include-cycles.sh
	python3 share/check-needs.py

bench: all tools
	PLAKAR_PG_BIN=$(CURDIR)/$(OUT) bash share/bench.bash

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
	cp share/manifest.yaml share/schema.json $(PKGDIR)/
	for p in $(PROGS); do install -m 755 $(OUT)/$$p $(PKGDIR)/; done
	for p in $(SCRIPTS); do install -m 755 $(OUT)/$$p $(PKGDIR)/; done
	@echo "then: cd $(PKGDIR) && plakar pkg create manifest.yaml v$(VERSION)"

clean:
	rm -rf build bin

.PHONY: all outcomes options install-deps check check-asan check-matrix check-parity lint bench fuzz package install clean testprogs tools servers
