# xcontainers: the two entry points are `make demo` and `make test`.
# Both set the machine up first (Debian packages, a venv, the native build).

VENV    ?= .venv
PY      := $(VENV)/bin/python
APT_PKGS := runc crun runsc busybox-static libseccomp-dev podman containerd skopeo file procps \
            umoci docker-registry apache2-utils openssl zstd \
            uidmap slirp4netns passt fuse-overlayfs \
            iproute2 nftables python3-venv gcc make \
            golang-go musl-tools nginx redis-server redis-tools sqlite3 curl python3 \
            libpython3.11-testsuite wrk memcached libmemcached-tools user-mode-linux trinity
STAMP   := $(VENV)/.setup-done

# /usr/local/bin/xc-runtime runs once per container operation, so it is the
# package's native entry point (src/xcontainers/xc-runtime, built by the
# package's build from src/native/runtime/), not pip's console script: it
# does the common commands itself and runs every other one as the old
# launcher did, `$(PY) -IS` (no user site, PYTHON* variables ignored, no
# site module) with the package's directory put on the path, then main()
# (docs/architecture.md, "The native path").  The console scripts in
# $(VENV)/bin stay as pip made them (pure Python).  /usr/local/bin/xc is
# xc's native entry point (src/xcontainers/xc, from src/native/xc/): it runs
# `xc run` of a stored image itself and every other command as
# `$(PY) -I` (PYTHON* variables ignored: a PYTHONDONTWRITEBYTECODE=1 in the
# caller's environment would make every command compile its modules anew;
# the venv's site-packages kept) with xc_cli's main().

.PHONY: setup demo test bench fuzz trinity clean

$(STAMP): pyproject.toml setup.py $(wildcard src/native/*.c src/native/runtime/*.[ch] src/native/xc/*.[ch] src/libos/*.[chS] src/libos/*.def src/libos/*.ld) scripts/setup-host scripts/setup-rootless
	./scripts/setup-host $(APT_PKGS)
	./scripts/setup-rootless
	test -x $(PY) || python3 -m venv $(VENV)
	XC_PYTHON='$(abspath $(PY))' $(PY) -m pip install -q --disable-pip-version-check -e '.[test,bench,abom,images]'
	ln -sfn '$(abspath src/xcontainers/xc-runtime)' /usr/local/bin/.xc-runtime.tmp
	mv -Tf /usr/local/bin/.xc-runtime.tmp /usr/local/bin/xc-runtime
	ln -sfn '$(abspath src/xcontainers/xc)' /usr/local/bin/.xc.tmp
	mv -Tf /usr/local/bin/.xc.tmp /usr/local/bin/xc
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/xc run --rm --stats busybox sh -c 'echo "hello from $$(hostname), pid $$$$, on the X-LibOS:"; grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status; ls / | wc -l; (sleep 0.1; echo "a child process") & wait'

# The suite runs on xc-runtime as it comes (the native path where it
# applies); the runtime's own tests then run again with every command on the
# Python runtime (XC_RUNTIME_NATIVE=0), so both paths stay the same.
RUNTIME_TESTS := tests/test_behaviour.py tests/test_lifecycle.py tests/test_clients.py tests/test_cgroups.py \
                 tests/test_cgroup2.py tests/test_libos.py tests/test_syscalls.py tests/test_native.py

test: setup
	$(PY) -m pytest -v -rs tests
	$(PY) -m pytest -v -rs --xc-path=python $(RUNTIME_TESTS)

bench: setup
	$(PY) bench/spawn.py

# The long runs of the fuzzers (tests/fuzz.py) and of trinity in a container
# (bench/trinity.py); CI runs bounded versions (tests/test_fuzz.py, test_trinity.py).
MINUTES ?= 30
fuzz: setup
	$(PY) -m tests.fuzz --minutes $(MINUTES)

SECONDS_TRINITY ?= 60
trinity: setup
	$(PY) bench/trinity.py --seconds $(SECONDS_TRINITY)

clean:
	rm -rf $(VENV) build src/*.egg-info src/xcontainers/*.so src/xcontainers/xc-runtime src/xcontainers/xc
