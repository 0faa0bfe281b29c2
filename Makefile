# Testbed and tests. `make test` is THE test command (CI runs it via .ci/run).
SHELL := /bin/bash
PYTHON := .venv/bin/python

# $(call timed,LABEL,COMMAND): run COMMAND, print how long it took.
define timed
	@s=$$(date +%s%N); $(2); rc=$$?; e=$$(date +%s%N); \
	printf '[make] %-22s %6d ms\n' '$(1)' $$(( (e - s) / 1000000 )); exit $$rc
endef

.PHONY: testbed test fuzz demo clean-testbed

# The installed testbed: packages, venv, the loopback dockerd and the nginx
# image. Pebble is not started here: every test session, the demo and the
# benchmark start Pebbles of their own on free ports.
testbed:
	$(call timed,setup.sh,testbed/setup.sh)
	$(call timed,dockerd ready,testbed/dockerd.sh start >/dev/null)
	$(call timed,nginx image,testbed/nginx-image.sh)

# The static checks come first: a few seconds, and a lint or type error needs no testbed to be seen.
test: testbed lint
	$(call timed,pytest,$(PYTHON) -m pytest -q)

.PHONY: lint
lint:
	$(call timed,ruff,.venv/bin/ruff check src tests bench)
	$(call timed,mypy,.venv/bin/mypy)
	$(call timed,lint-imports,.venv/bin/lint-imports --no-logo)

# `make fuzz`: the fuzz pass with new random inputs (make test runs the same fixed set every time).
fuzz: testbed
	$(call timed,fuzz,SESAM_TLS_FUZZ_RANDOM=1 $(PYTHON) -m pytest -q tests/test_fuzz.py)

demo: testbed
	testbed/demo.sh

# Stops everything the testbed, the demo and the tests started (by pid files),
# removes the demo's container and its /etc/hosts line, unmounts what dockerd left.
clean-testbed:
	testbed/demo.sh clean
	testbed/pebble.sh stop-all
	testbed/knot.sh stop-all
	testbed/dockerd.sh stop

# ---- self-contained executable and container image (packaging/) ------------
# dist/sesam-tls is rebuilt only when a source is newer; the image only when
# the executable (or its recipe) changed. tests/test_dist.py runs `make dist image`.
DIST_SOURCES := $(shell find src -name '*.py') pyproject.toml \
	packaging/entry.py packaging/sesam-tls.spec packaging/build-exe.sh

.PHONY: dist dist-dir image

dist: dist/sesam-tls

dist/sesam-tls: $(DIST_SOURCES)
	$(call timed,pyinstaller one-file,packaging/build-exe.sh onefile)

dist-dir: dist/sesam-tls-dir/sesam-tls

dist/sesam-tls-dir/sesam-tls: $(DIST_SOURCES)
	$(call timed,pyinstaller one-folder,packaging/build-exe.sh onedir)

image: dist/sesam-tls
	$(call timed,image,packaging/image.sh)

# ---- benchmarks against certbot and lego (bench/, issue 7) -----------------
# `make bench`: installs the peers (lego from Debian, certbot and matplotlib
# from PyPI into bench/.venv-*), runs every measurement on a Pebble instance
# of its own (127.0.0.1:14200, HTTP-01 on 5202) and writes
# bench/results/REPORT.md and bench/results/bench.png (about 10 minutes; the
# DNS-01 row, on a knotd and a second Pebble of its own, about 4 more).
# `make bench-smoke`: one iteration of everything into bench/results-smoke/.
.PHONY: bench bench-smoke

bench: testbed
	$(call timed,bench peers,bench/setup-peers.sh)
	$(call timed,bench,$(PYTHON) bench/bench.py --out bench/results)

bench-smoke: testbed
	$(call timed,bench peers,bench/setup-peers.sh)
	$(call timed,bench smoke,$(PYTHON) bench/bench.py --smoke --out bench/results-smoke)
