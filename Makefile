# The front door.  `make run` brings the stack up; `make test` runs every test on the real
# services; `make check` lints and type-checks.  Each target installs what it needs first.
# What QEMU and PostgreSQL must reach (the tiny guest, consoles, make run's database) lives in
# this checkout's state directory under /var/tmp (devtools/paths.py), so a clone in a private
# directory works.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-v1
PYTEST_ARGS ?=
# When this make started, so that `make run` can say how long bringing everything up took.
export HOTPLUG_MAKE_START := $(shell date +%s.%N)

.PHONY: run stop test torture unit integration e2e check bench host guest clean

host:
	@bash scripts/ensure-host.sh

$(STAMP): pyproject.toml | host
	@test -x $(PY) || { echo "make: creating the virtual environment $(VENV)"; python3 -m venv $(VENV); }
	@echo "make: installing the project and its Python dependencies into $(VENV) (about a minute the first time)"
	@$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

guest: host $(STAMP)
	@$(PY) -m devtools.guest

run: host $(STAMP) guest
	@$(PY) -m devtools.run

stop: $(STAMP)
	@$(PY) -m devtools.run stop

test: host $(STAMP) guest
	$(PY) -m pytest tests/unit tests/integration tests/e2e $(PYTEST_ARGS)

# The long fault and bad-input suites (kill -9 50 times each, >= 2,000 generated cases each),
# then docs/reliability.md's table from what they measured.  About a quarter of an hour.
torture: host $(STAMP) guest
	HOTPLUG_TORTURE=1 $(PY) -m pytest tests/e2e/test_faults.py tests/integration/test_api_fuzz.py tests/e2e/test_agent_fuzz.py $(PYTEST_ARGS)
	$(PY) -m devtools.reliability

unit: $(STAMP)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

integration: host $(STAMP)
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

e2e: host $(STAMP) guest
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

# Speed and memory live here, never in timed tests.
bench: host $(STAMP) guest
	$(PY) -m benchmarks

check: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Stops a run left in the background, then removes what this checkout made.
clean:
	@if [ -x $(PY) ]; then $(PY) -m devtools.run stop; $(PY) -m devtools.paths clean; fi
	rm -rf $(VENV) .cache .run test-output build
