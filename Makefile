GO        ?= go
BIN       := bin/spofwatch
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/spofwatch/spofwatch/internal/buildinfo.Version=$(VERSION)
ARGS      ?=
FUZZTIME  ?= 30s

.PHONY: build run test unit lint bench fuzz deps clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/spofwatch

run: build
	./$(BIN) $(ARGS)

deps:
	./scripts/install-deps.sh

# The whole suite: unit, fixture, fuzz-seed, real-peer and VM tests.
test: deps build
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...

unit:
	$(GO) test -short ./...

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) run golang.org/x/vuln/cmd/govulncheck@latest ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Runs every fuzz target for FUZZTIME each.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin dist
