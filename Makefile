# The two commands of the README: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PLUGINS := $(sort $(wildcard plugins/*/pyproject.toml))
STAMP := $(VENV)/.texkit-installed

.PHONY: demo test install lint docs docs-test clean bench wheels mutation mutation-fast

install: $(STAMP)

# torch first, from the CPU wheel pinned here (plain `torch` would pull a multi-GB CUDA build),
# then the core with its dev tools, the studio extra (gradio) and every plugin, all editable.
$(STAMP): pyproject.toml $(PLUGINS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,studio]' $(foreach p,$(PLUGINS),-e $(dir $(p)))
	touch $(STAMP)

demo: install
	$(VENV)/bin/texkit demo --out runs/demo

lint: install
	$(VENV)/bin/ruff check texkit texkit_entry plugins tests benchmarks

docs: install
	$(VENV)/bin/mkdocs build --strict --site-dir site

# The built site in headless Chromium (apt-get install chromium chromium-driver): every page loads
# without console errors, every image decodes, every formula is rendered, the search finds the
# reward pages. `make test` runs the same check (tests/test_docs_site_browser.py).
docs-test: docs
	$(PY) docs/scripts/check_site.py site --screenshots site-shots

test: install lint
	$(PY) -m pytest
	$(VENV)/bin/mkdocs build --strict --site-dir site

# The user's path: wheels of the core and every plugin, installed non-editable into a fresh venv
# (.ci/wheels.sh; CI runs it after `make test`).
wheels: install
	.ci/wheels.sh

# Mutation testing of the method's core (docs/contributing.md): Cosmic Ray's mutants (pinned in the
# dev extra), each run against the tests that execute it; writes benchmarks/results/mutation.json,
# fails below 90 %.
mutation: install
	nice -n 15 $(PY) benchmarks/mutation.py --fail-under 90

# The fast subset (CI): only the lines changed since the base commit (merge base with origin/main,
# else the last commit), within a time budget; it lists the survivors and does not fail the build
# (a sampled full run does not promise that every changed line is covered yet).
mutation-fast: install
	$(PY) benchmarks/mutation.py --changed --budget 200

bench: install
	$(PY) -m pytest benchmarks --benchmark-only

clean:
	rm -rf $(VENV) site site-shots runs .pytest_cache
