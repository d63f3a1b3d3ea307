# xcontainers: the two entry points are `make demo` and `make test`.
# Both set the machine up first (Debian packages, a venv, the native build).

VENV    ?= .venv
PY      := $(VENV)/bin/python
APT_PKGS := runc crun busybox-static libseccomp-dev podman containerd skopeo file procps \
            iproute2 python3-venv gcc make
STAMP   := $(VENV)/.setup-done

.PHONY: setup demo test bench clean

$(STAMP): pyproject.toml setup.py $(wildcard src/native/*.c)
	./scripts/setup-host $(APT_PKGS)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	ln -sf $(abspath $(VENV))/bin/xc-runtime /usr/local/bin/xc-runtime
	ln -sf $(abspath $(VENV))/bin/xc /usr/local/bin/xc
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/xc run --rm busybox sh -c 'echo "hello from $$(hostname), pid $$$$ in its own namespace"; id; ls /'

test: setup
	$(PY) -m pytest -v -rs tests

bench: setup
	$(PY) bench/spawn.py

clean:
	rm -rf $(VENV) build src/*.egg-info src/xcontainers/*.so
