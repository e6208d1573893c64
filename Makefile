# minikube-py developer commands. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

.PHONY: install
install: $(STAMP) ## Create .venv with minikube-py (editable) and the test tools

.PHONY: system
system: ## Install missing system packages (docker.io, etcd, busybox-static, ...)
	scripts/setup-system.sh

.PHONY: test
test: install system ## Set up what the tests need (Docker, images), run pytest, stop what was started
	scripts/run-tests.sh $(PYTEST_ARGS)

.PHONY: up
up: install system ## Set up everything, then run the whole cluster here (Ctrl-C stops it)
	scripts/docker-daemon.sh start
	scripts/images.sh
	$(VENV)/bin/minikube-py up $(UP_ARGS)

.PHONY: demo
demo: install system ## Tell the seed's story on a real etcd, step by step
	@started=0; if ! docker info >/dev/null 2>&1; then started=1; fi; \
	scripts/docker-daemon.sh start && scripts/images.sh && \
	{ scripts/demo.sh; status=$$?; if [ $$started = 1 ]; then scripts/docker-daemon.sh stop; fi; exit $$status; }

.PHONY: lint
lint: install ## ruff check, ruff format --check, mypy --strict
	$(VENV)/bin/ruff check minikube_py tests scripts bench
	$(VENV)/bin/ruff format --check minikube_py tests scripts bench
	$(VENV)/bin/mypy --strict minikube_py

.PHONY: fmt
fmt: install ## Format the code with ruff
	$(VENV)/bin/ruff check --fix minikube_py tests scripts bench
	$(VENV)/bin/ruff format minikube_py tests scripts bench

.PHONY: bench
bench: install system ## Print storage benchmark figures beside their ceilings
	scripts/run-bench.sh

.PHONY: clean
clean: ## Remove the venv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .run
