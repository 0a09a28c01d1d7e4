# Two entry points do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.sonomap-installed
# torch is pinned: these wheels lie on the build machines' disk; another pin downloads gigabytes.
TORCH_PIN := torch==2.14.1 torchvision==0.29.1
EXTRAS := train,export,dicom,wsi,igtl,dev

.PHONY: demo test install bench clean install-service

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PIN)
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	PATH=$(VENV)/bin:$$PATH bash configs/demo.sh outputs/demo

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/sonomap bench --help

clean:
	rm -rf outputs .pytest_cache
