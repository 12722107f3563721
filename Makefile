.DEFAULT_GOAL := help
GO ?= go

## help: list the targets
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)

## build: build the sluice binary into ./bin
build:
	$(GO) build -o bin/sluice ./cmd/sluice

## test: check formatting, vet, run every Go test under the race detector (with a throwaway PostgreSQL and Azurite, which the postgres and Azure Blob tests require), then batches against a real engine (Ollama with a tiny model; scripts/ollama.sh builds it once into ~/.cache/sluice, 4-7 minutes), then drive a built binary with the openai npm SDK (blob mode included, against Azurite)
test:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.library/*'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt -w these files:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	SLUICE_REQUIRE_POSTGRES=1 SLUICE_REQUIRE_AZURITE=1 bash scripts/postgres.sh bash scripts/azurite.sh $(GO) test -race -count=1 ./...
	SLUICE_REQUIRE_OLLAMA=1 bash scripts/ollama.sh $(GO) test -race -count=1 -run '^TestOllama$$' ./cmd/sluice
	SLUICE_REQUIRE_AZURITE=1 bash scripts/azurite.sh bash e2e/run.sh

## test/go: the Go tests alone, without the race detector (quicker; the Azure Blob tests skip without scripts/azurite.sh)
test/go:
	$(GO) test -count=1 ./...

## fuzz: run every fuzz target briefly (FUZZTIME each, default 5s) beyond its committed seeds
FUZZTIME ?= 5s
fuzz:
	bash .ci/fuzz $(FUZZTIME)

## bench: engine throughput against a plain HTTP client on the same simulator
bench:
	bash bench/throughput.sh

.PHONY: help build test test/go fuzz bench
