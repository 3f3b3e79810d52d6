# The front door.  `make run` brings the stack up; `make test` runs every test on the real
# services; `make check` lints and type-checks.  Each target installs what it needs first.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-v1
GUEST   := .cache/guest
PYTEST_ARGS ?=

.PHONY: run stop test unit integration e2e check bench host guest clean

host:
	@bash scripts/ensure-host.sh

$(STAMP): pyproject.toml | host
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

guest: host
	@bash scripts/build-guest.sh $(GUEST)

run: host $(STAMP) guest
	@$(PY) -m devtools.run

stop: $(STAMP)
	@$(PY) -m devtools.run stop

test: host $(STAMP) guest
	$(PY) -m pytest tests/unit tests/integration tests/e2e $(PYTEST_ARGS)

unit: $(STAMP)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

integration: host $(STAMP)
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

e2e: host $(STAMP) guest
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

# Speed and memory live here, never in timed tests.
bench: host $(STAMP) guest
	$(PY) -m benchmarks.agent_latency
	$(PY) -m benchmarks.engine_latency
	$(PY) -m benchmarks.agent_scale

check: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .cache test-output
