# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
# The CPU wheel of torch; on GPU machines install your CUDA torch into .venv first and this
# step leaves it alone (a looser pin would pull several GB of CUDA packages).
TORCH_PIN ?= torch==2.13.0
DEMO_OUT ?= demo-out

.PHONY: demo test install ffmpeg espeak chromium axe nginx rtsp clean

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

# espeak-ng speaks the sentences the speech tests and bench/speech.py mux into their videos.
espeak:
	@command -v espeak-ng >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null; \
	  else echo "espeak-ng is missing: install it (e.g. sudo apt-get install espeak-ng)"; exit 1; fi; }

# The web page's browser tests drive Debian's chromium through chromedriver (Selenium); they
# skip, saying why, only where neither is installed nor installable.
chromium:
	@test -x /usr/bin/chromium && test -x /usr/bin/chromedriver || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
	      || echo "chromium could not be installed: the browser tests will skip"; \
	  else echo "chromium is missing (sudo apt-get install chromium chromium-driver): the browser tests will skip"; fi; }

# axe-core checks the page's accessibility in those tests: the npm package, pinned, in build/
# (axe-selenium-python's wheel for Python 3.11 bundles axe-core 3.1, from 2018).
AXE_CORE ?= 4.14.1
axe:
	@grep -qs '"version": "$(AXE_CORE)"' build/axe/node_modules/axe-core/package.json || { \
	  if command -v npm >/dev/null; then \
	    npm install --prefix build/axe --no-save --no-audit --no-fund --loglevel=error axe-core@$(AXE_CORE) >/dev/null \
	      || echo "axe-core could not be installed: the accessibility checks will skip"; \
	  else echo "npm is missing (e.g. sudo apt-get install npm): the accessibility checks will skip"; fi; }

# nginx serves test videos with range requests to the remote-source tests (each test starts its
# own, on a free loopback port); they skip, saying why, only where it is not installed.
nginx:
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null \
	      || echo "nginx could not be installed: the remote-source tests against it will skip"; \
	  else echo "nginx is missing (sudo apt-get install nginx-light): the remote-source tests against it will skip"; fi; }

# Debian's rtsp-server-perl is the RTSP server the live-stream reader's RTSP test publishes into
# (ffmpeg serves RTMP itself, with -listen); the test skips, saying why, where it is missing.
rtsp:
	@command -v rtsp-server-perl >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rtsp-server-perl >/dev/null \
	      || echo "rtsp-server-perl could not be installed: the RTSP stream test will skip"; \
	  else echo "rtsp-server-perl is missing (sudo apt-get install rtsp-server-perl): the RTSP stream test will skip"; fi; }

# Two pytest workers, a test file each at a time (its module fixtures built once): most of the
# suite waits on subprocesses, servers and Ray start-up, so two workers on two cores cut the
# wall time (see README, Two commands). TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: install ffmpeg espeak chromium axe nginx rtsp
	$(PY) -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

demo: install ffmpeg
	$(VENV)/bin/vidsift demo --out $(DEMO_OUT) $(if $(wildcard ../shared/data/bbb.mp4),--video ../shared/data/bbb.mp4,)

clean:
	rm -rf $(DEMO_OUT) .pytest_cache
