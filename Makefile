# Two set-up commands for a fresh clone: `make demo` and `make test`.
# torch is installed first at a pinned version: a loose requirement on a machine without torch
# pulls a multi-GB CUDA build, and 2.13.0 resolves to a CPU build where one is available locally.
# `make test` also installs the Khronos glTF validator (npm, into .tools/) that the export tests
# run on every GLB; without npm it says so and those tests skip (in CI they fail instead).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TORCH_VERSION ?= 2.13.0
DEMO_PROMPT ?= a red cube
DEMO_OUT ?= runs/demo
GLTF_VALIDATOR_VERSION ?= 2.0.0-dev.3.10
VALIDATOR := .tools/node_modules/gltf-validator/package.json

.PHONY: install validator test demo bench screenshots clean gpu-check

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

$(VALIDATOR): Makefile
	@if command -v npm >/dev/null 2>&1; then \
		npm install --prefix .tools --save-exact --no-audit --no-fund --loglevel=error \
			"gltf-validator@$(GLTF_VALIDATOR_VERSION)" && touch $(VALIDATOR); \
	else \
		echo "npm not found: the glTF validator is not installed and its tests will skip"; \
	fi

validator: $(VALIDATOR)

# Test files run in parallel, one worker per CPU (pytest-xdist); a file's tests stay on one worker, so
# their module-scoped fixtures (a trained generator, a local Ray, a tiny run) are built once. The files go
# out longest first (tests/conftest.py orders them; --no-loadscope-reorder keeps that order).
# Where the time goes: add --cpu-report=FILE to the pytest command below (tests/cpu_report.py).
test: install validator
	$(BIN)/python -m pytest -n auto --dist loadfile --no-loadscope-reorder --durations=15

# The web UI's screenshots in docs/screenshots/, taken by its browser test (needs Debian's chromium).
screenshots: install
	SCREENSHOTS=1 $(BIN)/python -m pytest tests/test_ui_browser.py

demo: install
	rm -rf $(DEMO_OUT)
	$(BIN)/dreamer generate "$(DEMO_PROMPT)" --out $(DEMO_OUT) --formats obj,ply
	@echo "asset: $(DEMO_OUT)/model.glb  (turntable and eval.json beside it)"

bench: install
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/quality.py --config reference
	$(BIN)/python bench/prior_accuracy.py
	$(BIN)/python bench/demo.py
	$(BIN)/python bench/encodings.py --write

# The prepared GPU check (issue 21): CUDA-vs-CPU tests, then every paper preset timed with full-size
# random-weight priors (at most 8 min on one GPU; writes "GPU" in docs/benchmarks.md). No install step:
# a GPU machine has no network. `bench/gpu_check.sh --cpu` is the CPU form CI runs.
gpu-check:
	bench/gpu_check.sh

clean:
	rm -rf $(VENV) runs .tools
