GO        ?= go
BIN       := bin/spofwatch
VERSION   ?= $(shell cat VERSION 2>/dev/null || echo 0.0.0)
REVISION  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
BRANCH    ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
BUILD_DATE ?= $(shell date -u +%Y%m%d-%H:%M:%S)
LDFLAGS   := -s -w -X github.com/prometheus/common/version.Version=$(VERSION) -X github.com/prometheus/common/version.Revision=$(REVISION) -X github.com/prometheus/common/version.Branch=$(BRANCH) -X github.com/prometheus/common/version.BuildDate=$(BUILD_DATE)
ARGS      ?=
FUZZTIME  ?= 30s

.PHONY: build run test unit lint bench fuzz deps clean package package-test

build:
	CGO_ENABLED=0 $(GO) build -buildmode=pie -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/spofwatch

run: build
	./$(BIN) $(ARGS)

deps:
	./scripts/install-deps.sh

# The whole suite: unit, fixture, fuzz-seed, real-peer and VM tests, then
# the packages installed for real.
# Test artifacts (the redundancy map's screenshots) stay in
# build/test-output/_artifacts for a person to look at.
test: deps build
	$(GO) vet ./...
	mkdir -p build/test-output
	$(GO) test -count=1 -timeout 30m -artifacts -outputdir $(CURDIR)/build/test-output ./...
	$(MAKE) package-test

# .deb and .rpm in dist/ (nfpm pinned in go.mod).
package: build
	./scripts/package.sh

# Installs the packages into throwaway roots (needs root): packaging/README.md.
package-test: build
	./scripts/package-test.sh

unit:
	$(GO) test -short ./...

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	@# govulncheck needs its database: when it is unreachable (no route out
	@# from build machines), say so and skip this step rather than fail on
	@# a network error; findings still fail the target.
	@db="$${GOVULNDB:-https://vuln.go.dev}"; \
	if command -v curl >/dev/null && ! err=$$(curl -fsS --max-time 5 -o /dev/null "$$db/index/db.json" 2>&1); then \
	  echo "govulncheck: vulnerability database unreachable ($$db: $$err); skipped"; \
	else \
	  echo "$(GO) run golang.org/x/vuln/cmd/govulncheck@latest -db $$db ./..."; \
	  $(GO) run golang.org/x/vuln/cmd/govulncheck@latest -db "$$db" ./...; \
	fi

# go test benchmarks, then the side-by-side scripts (spofwatch beside its peers).
bench: deps build
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./bench/foundation -spofwatch $(BIN)

# Runs every fuzz target for FUZZTIME each.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin dist
