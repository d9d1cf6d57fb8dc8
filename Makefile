# ohfp — Open Host Factory Plugin.
#   make build   bin/ohfpd and bin/ohfp, both static (BIN=DIR to build elsewhere)
#   make demo    build, run ohfpd on the simulated AWS region, drive one HF cycle
#   make test    vet, gofmt check, and every test under -race
#   make bench   the benchmark table (see README)
#   make package .deb and .rpm into dist/
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     ?= bin
export GOFLAGS ?= -buildvcs=false

.PHONY: all build demo test vet fmt-check bench package clean soak

all: build

build: $(BIN)/ohfpd $(BIN)/ohfp

# Both binaries are static and cgo-free: ohfpd runs on any glibc (RHEL 8's
# 2.28 included) or none. The trade-off: os/user reads /etc/passwd and
# /etc/group only, not NSS (LDAP, SSSD); see packaging/README-ops.md.
$(BIN)/ohfpd: FORCE
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./daemon

# The client HF runs once per call: static, no cgo, lean.
$(BIN)/ohfp: FORCE
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $@ ./client

FORCE:

# Its configuration, state and ohfpd's log stay in .demo/ afterwards.
demo: build
	$(GO) run ./internal/demo -bin $(BIN) -dir .demo

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The two packages that run the real binaries (soak's quick variants and
# e2e) take most of the time while waiting on processes, not the CPU: they
# start first, and -p 4 runs the other packages beside them.
test: vet fmt-check
	$(GO) test -race -count=1 -p 4 ./internal/soak ./internal/e2e ./...

# The benchmark table of README "Performance" (see internal/bench).
bench: build
	$(GO) run ./internal/bench -bin bin -out bench-results.json

# Crash, fault and load runs (internal/soak); CI runs them too, within a few minutes.
soak:
	OHFP_SOAK=1 $(GO) test -race -count=1 -timeout 20m ./internal/soak/
	OHFP_SOAK=1 $(GO) test -race -count=1 -timeout 10m -run 'TestFleetExpiry' ./internal/e2e/

# Packages (.deb and .rpm) with nfpm, a Go tool dependency in go.mod.
package: build
	OHFP_BIN=$(BIN) ./packaging/build.sh $(VERSION)

clean:
	rm -rf bin dist
