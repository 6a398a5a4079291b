# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
# The CPU wheel of torch; on GPU machines install your CUDA torch into .venv first and this
# step leaves it alone (a looser pin would pull several GB of CUDA packages).
TORCH_PIN ?= torch==2.13.0
DEMO_OUT ?= demo-out

.PHONY: demo test install ffmpeg clean

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q "$(TORCH_PIN)"
	$(PIP) install -q -e ".[test,bench]"
	@touch $@

install: $(STAMP)

ffmpeg:
	@command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; \
	  else echo "ffmpeg is missing: install it (e.g. sudo apt-get install ffmpeg)"; exit 1; fi; }

test: install ffmpeg
	$(PY) -m pytest

demo: install ffmpeg
	$(VENV)/bin/vidsift demo --out $(DEMO_OUT) $(if $(wildcard ../shared/data/bbb.mp4),--video ../shared/data/bbb.mp4,)

clean:
	rm -rf $(DEMO_OUT) .pytest_cache
