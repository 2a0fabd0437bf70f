# The two commands of the README: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PLUGINS := $(sort $(wildcard plugins/*/pyproject.toml))
STAMP := $(VENV)/.texkit-installed

.PHONY: demo test install lint docs docs-test clean bench wheels

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

bench: install
	$(PY) -m pytest benchmarks --benchmark-only

clean:
	rm -rf $(VENV) site site-shots runs .pytest_cache
