# Two set-up commands for a fresh clone: `make demo` and `make test`.
# torch is installed first at a pinned version: a loose requirement on a machine without torch
# pulls a multi-GB CUDA build, and 2.13.0 resolves to a CPU build where one is available locally.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TORCH_VERSION ?= 2.13.0
DEMO_PROMPT ?= a red cube
DEMO_OUT ?= runs/demo

.PHONY: install test demo bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: install
	$(BIN)/python -m pytest

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

clean:
	rm -rf $(VENV) runs
