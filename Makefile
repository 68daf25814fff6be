# cooperative_fusion: set-up, demo, tests, benchmarks on a fresh Debian machine.
# `make demo` and `make test` both create .venv (if missing) and install
# everything, apt packages included.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_PACKAGES := libusb-1.0-0 libgl1 libegl1 libgomp1 openssl iproute2 nftables ignition-tools libsdformat-dev
PYTEST_FLAGS ?=
DEMO_OUT ?= demo_output

.PHONY: all venv apt demo test bench clean

all: test

# Install the Debian libraries open3d needs, only when one is missing.
apt:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "[setup] installing apt packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO="sudo"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(STAMP): requirements.txt constraints.txt setup.py package.xml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip==24.3.1
	$(PY) -m pip install -q -r requirements.txt -c constraints.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@touch $(STAMP)

venv: apt $(STAMP)

demo: venv
	$(VENV)/bin/cooperative-fusion demo --out $(DEMO_OUT)

test: venv
	$(PY) -m pytest -p no:dash -p no:cacheprovider test $(PYTEST_FLAGS)

# Results go to build/benchmarks/results.md; BENCH_FLAGS=--update writes the tracked benchmarks/results.md.
BENCH_FLAGS ?=
bench: venv
	$(PY) benchmarks/run_all.py $(BENCH_FLAGS)

clean:
	rm -rf $(VENV) build *.egg-info demo_output .pytest_cache
