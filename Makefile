# docker-worker: the two commands a newcomer needs are `make start` and `make test`.
SHELL := /bin/bash
NODE_BIN := $(shell ./scripts/node-env.sh)
export PATH := $(NODE_BIN):$(PATH)
NODE := $(NODE_BIN)/node
TESTS ?= test/**/*.test.ts

.PHONY: deps docker host-tools registry images setup start serve test test-unit typecheck bench clean

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

deps: node_modules/.installed

docker:
	./scripts/setup-docker.sh

registry: docker
	./scripts/setup-registry.sh

images: docker
	./scripts/build-test-images.sh

host-tools:
	./scripts/setup-host-tools.sh

setup: deps docker host-tools images

# Serve the embedded deployment, run the worker on it, submit the hello-world example.
start: setup
	./scripts/start.sh

# The embedded Taskcluster deployment alone.
serve: deps
	$(NODE) bin/worker serve --port 8080 --state .state/embedded

typecheck: deps
	npx tsc --noEmit

test: setup registry typecheck
	$(NODE) --test --test-concurrency=1 --test-timeout=300000 '$(TESTS)'

test-unit: deps
	$(NODE) --test test/unit/*.test.ts test/crypto/*.test.ts test/apparmor/*.test.ts test/log/secret-masker.test.ts

bench: setup
	$(NODE) bench/run.ts

clean:
	rm -rf node_modules .tools .state
