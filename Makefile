# Parley build and test entry points. `go test ./...` is the README's test
# command; the targets below add the race detector, the PostgreSQL backend,
# interop against real clients and servers, fuzzing and benchmarks.

GO        ?= go
PG_DSN    ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
FUZZTIME  ?= 30s

.PHONY: all build build-bench test race test-postgres lint interop bench bench-go bench-compare bench-cluster bench-hotpath bench-loginstorm bench-tsung fuzz clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=auto -o parley ./cmd/parley

test:
	$(GO) test ./...

race:
	$(GO) test -race ./...

# The storage conformance suite and everything else that honours
# PARLEY_TEST_POSTGRES, against the local PostgreSQL.
test-postgres:
	PARLEY_TEST_POSTGRES='$(PG_DSN)' $(GO) test ./internal/storage/...
	PARLEY_TEST_POSTGRES='$(PG_DSN)' $(GO) test -run TestCluster ./internal/server/

lint:
	test -z "$$(gofmt -l cmd internal)" || (gofmt -l cmd internal; exit 1)
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null 2>&1; then staticcheck ./...; \
	elif [ -x "$$HOME/go/bin/staticcheck" ]; then "$$HOME/go/bin/staticcheck" ./...; \
	else echo "staticcheck not installed: go install honnef.co/go/tools/cmd/staticcheck@latest"; fi

# Real clients nobody here wrote (slixmpp, go-sendxmpp) against the built
# binary. Installs missing Debian packages itself.
interop: build
	bash interop/all.sh

# Go micro-benchmarks, then the side-by-side load comparison against
# Prosody and ejabberd with our own generator (cmd/parley-bench;
# bench/README.md; knobs BENCH_STEP, BENCH_CHAT_RATES, ...). Table in
# bench/.work/compare/results.md, plots in bench/.work/compare/plots/.
# Both always run; the target fails at the end if either did.
bench:
	@rc=0; $(MAKE) --no-print-directory bench-go || rc=1; \
	$(MAKE) --no-print-directory bench-compare || rc=1; exit $$rc

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...

build-bench:
	CGO_ENABLED=0 $(GO) build -trimpath -o parley-bench ./cmd/parley-bench

bench-compare: build build-bench
	bash bench/compare.sh

# Login storms (issue 15): capacity on one core, then 1.5x that with the
# login gate at its default and off (bench/README.md, "Login storms").
bench-loginstorm: build build-bench
	bash bench/loginstorm.sh

# A three-node cluster (three nats-servers, a throwaway PostgreSQL
# database) against one node under the same parley-bench load, side by
# side; ratios in bench/.work/cluster/results.md (bench/README.md).
bench-cluster: build build-bench
	bash bench/cluster.sh

# The same three servers under tsung (a second opinion; bench/README.md).
bench-tsung: build
	bash bench/tsung.sh

# The hot path (issue 15) against a base commit, alternating runs, medians
# and ratios (bench/hotpath.sh; HOTPATH_BASE, COUNT, BENCHTIME).
bench-hotpath:
	bash bench/hotpath.sh

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecoder -fuzztime $(FUZZTIME) ./internal/xmpp/xml/
	$(GO) test -run '^$$' -fuzz FuzzRoundTrip -fuzztime $(FUZZTIME) ./internal/xmpp/xml/
	$(GO) test -run '^$$' -fuzz '^FuzzDifferential$$' -fuzztime $(FUZZTIME) ./internal/xmpp/xml/
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./internal/xmpp/jid/

clean:
	rm -f parley parley-bench
