# Two entry points do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.sonomap-installed
# torch is pinned: these wheels lie on the build machines' disk; another pin downloads gigabytes.
TORCH_PIN := torch==2.14.1 torchvision==0.29.1
EXTRAS := train,export,dicom,wsi,registration,igtl,metrics,pacs,dev

.PHONY: demo test lint install sysdeps bench clean install-service

# System tools the tests use (Xvfb for window tests, systemd-analyze for the unit files,
# Chromium + driver for the web-viewer test, openssl for the TLS test certificates, xdotool for window
# key presses, Orthanc + its DICOMweb plugin and dciodvfy for the PACS export test), as tool:package; a tool given
# as a path is a file that must exist (the plugin is a library, not a command). Installed when missing
# and we may (root + apt); there a failed install is an error (CI must not quietly skip those tests). Without root or apt: a warning, and those tests skip
# with a reason (they fail when CI=true).
SYSDEPS ?= Xvfb:xvfb systemd-analyze:systemd chromium:chromium chromedriver:chromium-driver openssl:openssl xdotool:xdotool \
  Orthanc:orthanc /usr/share/orthanc/plugins/libOrthancDicomWeb.so:orthanc-dicomweb dciodvfy:dicom3tools
sysdeps:
	@missing=""; for pair in $(SYSDEPS); do tool=$${pair%%:*}; pkg=$${pair#*:}; \
	  { command -v $$tool || test -e $$tool; } >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	  echo "warning: missing system packages:$$missing (not root or no apt); the tests that need them will skip" >&2; \
	  exit 0; fi; \
	echo "installing system packages:$$missing"; \
	(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) \
	  || { echo "error: could not install$$missing as root with apt-get" >&2; exit 1; }; \
	for pair in $(SYSDEPS); do tool=$${pair%%:*}; { command -v $$tool || test -e $$tool; } >/dev/null 2>&1 \
	  || { echo "error: $$tool still missing after installing$$missing" >&2; exit 1; }; done

# constraints.txt: the exact versions the tests and golden frames were checked with, so an upstream
# release cannot change what the overlay draws between two CI runs of the same commit.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PIN)
	$(PY) -m pip install -q -c constraints.txt -e '.[$(EXTRAS)]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	PATH=$(VENV)/bin:$$PATH bash configs/demo.sh outputs/demo

# Three test processes (pytest-xdist) on 2 cores: many tests wait on a child process, a socket or a
# timer, so two processes left the cores idle half the time (docs/testing.md). TEST_WORKERS=0: one.
TEST_WORKERS ?= 3
test: $(STAMP) sysdeps lint
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal

# ruff: lint and format check of the whole tree (configured in pyproject.toml).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(VENV)/bin/sonomap bench --help

# Install the cart service (as root): venv in /opt/sonomap, config in /etc/sonomap/config.yaml,
# systemd units. e.g. sudo make install-service SERVICE_FLAGS="--headless --jetson"
install-service:
	bash systemd/install.sh $(SERVICE_FLAGS)

clean:
	rm -rf outputs .pytest_cache
