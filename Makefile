# docker-worker: the two commands a newcomer needs are `make start` and `make test`.
SHELL := /bin/bash
NODE_BIN := $(shell ./scripts/node-env.sh)
export PATH := $(NODE_BIN):$(PATH)
NODE := $(NODE_BIN)/node
# Every test but test/deploy/, which `make check-deploy` runs with the package it builds.
TESTS ?= test/!(deploy)/**/*.test.ts
# The worker's end-to-end tests, run against the real Taskcluster services too.
E2E_TESTS ?= test/worker/*.test.ts
REALTC_DIR ?= /var/cache/docker-worker/realtc
REALTC_CLAIM_TIMEOUT ?= 10
# Tests run against the embedded deployment only when no deployment is named in the environment.
NO_DEPLOYMENT := env -u TASKCLUSTER_ROOT_URL -u TASKCLUSTER_CLIENT_ID -u TASKCLUSTER_ACCESS_TOKEN
NODE_TEST := $(NODE) --test --test-concurrency=1 --test-timeout=300000

.PHONY: deps docker host-tools registry images realtc setup start serve test test-embedded test-realtc test-realtc-suite test-faults test-unit typecheck bench clean package check-deploy

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

deps: node_modules/.installed native/build/malloc-trim.node

# glibc's malloc_trim for the idle worker (lib/memory/allocator-trim.ts); the worker runs without it.
native/build/malloc-trim.node: native/malloc-trim.c node_modules/.installed
	./scripts/build-native.sh

docker:
	./scripts/setup-docker.sh

registry: docker
	./scripts/setup-registry.sh

images: docker
	./scripts/build-test-images.sh

host-tools:
	./scripts/setup-host-tools.sh

setup: deps docker host-tools images

# The real Taskcluster services (v106) on loopback, from ../shared/realtc.
realtc:
	REALTC_DIR=$(REALTC_DIR) REALTC_CLAIM_TIMEOUT=$(REALTC_CLAIM_TIMEOUT) ./scripts/setup-realtc.sh

# Serve the embedded deployment, run the worker on it, submit the hello-world example.
start: setup
	./scripts/start.sh

# The embedded Taskcluster deployment alone.
serve: deps
	$(NODE) bin/worker serve --port 8080 --state .state/embedded

typecheck: deps
	npx tsc --noEmit

# The deployment checks (package, units, scripts, packer, Vagrant; see check-deploy), every test
# against the embedded deployment (the differential tests compare it with the real services),
# then the worker's end-to-end tests against the real services.
test: setup registry typecheck realtc
	$(MAKE) --no-print-directory -k check-deploy test-embedded test-realtc-suite

test-embedded:
	$(NO_DEPLOYMENT) REALTC_CREDENTIALS=$(REALTC_DIR)-root.json TEST_CLAIM_TIMEOUT_SECONDS=$(REALTC_CLAIM_TIMEOUT) REQUIRE_REAL_DEPLOYMENT=1 \
	  $(NODE_TEST) '$(TESTS)'

# The worker's end-to-end tests against the real Taskcluster services (started here).
test-realtc: setup registry typecheck realtc
	$(MAKE) --no-print-directory test-realtc-suite

test-realtc-suite:
	set -a && . $(REALTC_DIR)/env/root-client.env && set +a && \
	  TEST_CLAIM_TIMEOUT_SECONDS=$(REALTC_CLAIM_TIMEOUT) $(NODE_TEST) $(E2E_TESTS)

# Faults injected on cue (proxy between worker and deployment, a full disk): prints a fault x outcome table.
test-faults: setup
	$(NO_DEPLOYMENT) $(NODE_TEST) test/faults/*.test.ts

test-unit: deps
	$(NODE) --test test/unit/*.test.ts test/crypto/*.test.ts test/apparmor/*.test.ts test/log/secret-masker.test.ts

# The release tarball dist/docker-worker-<version>-linux-<arch>.tar.gz (bundled Node.js 24).
package: deps
	./scripts/package.sh

# shellcheck, systemd-analyze verify, packer validate, vagrant validate, and test/deploy/ (the
# package runs a task; deploy/provision.sh installs it in a debootstrapped Debian container).
check-deploy: docker images
	$(NO_DEPLOYMENT) ./scripts/check-deploy.sh

bench: setup
	$(NODE) bench/run.ts

clean:
	rm -rf node_modules .tools .state dist
