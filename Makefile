# The README's test command. Needs PostgreSQL (KANADE_TEST_DATABASE_URL,
# default postgres://postgres@127.0.0.1:5432/test); NATS is embedded.
GO ?= go

.PHONY: test build vet lint bench
test: vet lint
	$(GO) test -count=1 ./...

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o kanade ./cmd/kanade

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

lint:
	$(GO) tool staticcheck ./...
