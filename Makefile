# switchboard: the one entry point.  `make demo` and `make test` are all a
# newcomer needs (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup venv db demo run test lint bench clean distclean help

help:
	@echo "make demo   set everything up, replay recorded Asterisk traffic through the listener"
	@echo "            (HOLD=300: keep the wall board up 300 s afterwards)"
	@echo "make test   set everything up, run the whole test suite"
	@echo "make run    run the AMI listener against SB_AMI_NODES"
	@echo "make lint   ruff + mypy (strict)"
	@echo "make bench  AMI ingest, AGI session, figures-at-scale and (with an Asterisk) live-call benchmarks (each prints a JSON line last)"
	@echo "make setup  system packages, venv, local PostgreSQL, migrations (idempotent)"

$(STAMP): pyproject.toml setup.py switchboard/ami_listener/_fastframe.pyx
	./scripts/bootstrap
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(STAMP)

db: venv
	$(BIN)/switchboard db up
	$(BIN)/switchboard db migrate

setup: db

# make demo HOLD=300 keeps the wall board up for 300 s after the replay
demo: setup
	$(BIN)/switchboard demo $(if $(HOLD),--hold $(HOLD))

run: setup
	$(BIN)/switchboard ami-listener

test: venv
	./scripts/bootstrap --browser
	# the fast tier on two workers; then the live tier (one Asterisk, fixed ports)
	# in one process of its own, where a session lasts for the whole tier
	PYTHONASYNCIODEBUG=1 $(BIN)/pytest -q -n 2 --ignore=tests/live
	# (exit 5, no test collected: the whole tier skipped itself, saying why)
	PYTHONASYNCIODEBUG=1 $(BIN)/pytest -q -rs tests/live || [ $$? -eq 5 ]

lint: venv
	$(BIN)/ruff check switchboard tests bench
	$(BIN)/mypy
	$(BIN)/switchboard dialplan check

bench: venv
	$(BIN)/python bench/ami_ingest.py
	$(BIN)/python bench/agi_sessions.py
	$(BIN)/python bench/kpi_scale.py
	@if [ -n "$$SB_ASTERISK" ] || command -v asterisk >/dev/null; then \
		$(BIN)/python bench/live_calls.py; \
	else echo "bench/live_calls.py skipped: no Asterisk (set SB_ASTERISK)"; fi

clean:
	-$(BIN)/switchboard db down
	rm -rf .pytest_cache .mypy_cache .ruff_cache

distclean: clean
	rm -rf .local $(VENV)
