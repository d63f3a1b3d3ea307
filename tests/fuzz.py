"""Fuzzing xcontainers' input parsers and the X-LibOS's ELF loader.

Targets, and what each must do with any input:

  spec      xcontainers.spec.parse / load_bundle (config.json): a Spec, or a
            ConfigError whose message is one line naming what was wrong;
            never another exception (a traceback to the user).
  seccomp   xcontainers.seccomp.check_profile + export_bpf (linux.seccomp,
            compiled by libseccomp): a BPF program, or ConfigError/SetupError.
  profile   xcontainers.profile.from_annotations (org.xcontainers.libos.*):
            a Profile, or ConfigError.
  elf       the X-LibOS's loader (src/libos/loader.c), fed mutated ELF files
            and `#!` scripts inside a real container: each one is refused or
            its process ends (exit, signal, time limit); the container's
            driver, the host and a second container keep running, and only
            calls of the exokernel interface reach the host (the trace).
  image     xcontainers.archive.import_archive (docker-archive, OCI archive)
            of hostile layers: an image or an XcError of one line, and
            nothing written outside the store.

Inputs are generated with Hypothesis from seeds: the corpus in
tests/fuzz_corpus/<target>/ (configs, profiles, annotation sets, ELF
mutation recipes), mutated structurally (a value anywhere replaced by any
JSON value, keys dropped or added, types swapped) and byte by byte.  An
input that breaks a rule is minimised by Hypothesis and written to
tests/fuzz_corpus/<target>/found-<hash>.json, which every later run replays.

    python -m tests.fuzz --minutes 30                 every target, 30 minutes in all
    python -m tests.fuzz --minutes 5 --targets spec,seccomp
    make fuzz                                         the same as the first line

The bounded runs of CI are tests/test_fuzz.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import conftest  # noqa: E402,F401  (puts src/ on sys.path)

CORPUS = HERE / "fuzz_corpus"


class Finding(AssertionError):
    """An input that broke a target's rule."""


# --- the Python targets ------------------------------------------------------------------


def _one_line(e: BaseException, target: str, what: Any) -> None:
    msg = str(e)
    if not msg.strip() or "\n" in msg or len(msg) > 600 or ": " not in msg:
        raise Finding(f"{target}: unclear refusal {msg!r} for {_show(what)}")


def _show(x: Any) -> str:
    try:
        s = json.dumps(x)
    except (TypeError, ValueError, RecursionError):
        s = repr(x)
    return s if len(s) < 400 else s[:400] + "..."


_BUNDLE: str | None = None


def bundle_dir() -> str:
    """A bundle directory with an empty rootfs, for parse() to resolve root.path against."""
    global _BUNDLE
    if _BUNDLE is None:
        _BUNDLE = tempfile.mkdtemp(prefix="xc-fuzz-bundle-")
        os.mkdir(os.path.join(_BUNDLE, "rootfs"))
    return _BUNDLE


def check_spec(doc: Any) -> None:
    from xcontainers.errors import ConfigError
    from xcontainers.spec import parse

    try:
        parse(doc, bundle_dir())
    except ConfigError as e:
        _one_line(e, "spec", doc)
    except Exception as e:  # noqa: BLE001
        raise Finding(f"spec: {type(e).__name__}: {e} for {_show(doc)}") from e


def check_spec_bytes(data: bytes) -> None:
    from xcontainers.errors import ConfigError
    from xcontainers.spec import load_bundle

    with open(os.path.join(bundle_dir(), "config.json"), "wb") as f:
        f.write(data)
    try:
        load_bundle(bundle_dir())
    except ConfigError as e:
        _one_line(e, "spec", data[:200])
    except Exception as e:  # noqa: BLE001
        raise Finding(f"spec (bytes): {type(e).__name__}: {e} for {data[:200]!r}") from e


def check_seccomp(profile: Any) -> None:
    from xcontainers.errors import ConfigError, SetupError
    from xcontainers.seccomp import check_profile, export_bpf

    try:
        check_profile(profile)
    except ConfigError as e:
        _one_line(e, "seccomp", profile)
        return
    except Exception as e:  # noqa: BLE001
        raise Finding(f"seccomp check: {type(e).__name__}: {e} for {_show(profile)}") from e
    try:
        bpf = export_bpf(profile)
    except (ConfigError, SetupError) as e:
        _one_line(e, "seccomp", profile)
        return
    except Exception as e:  # noqa: BLE001
        raise Finding(f"seccomp compile: {type(e).__name__}: {e} for {_show(profile)}") from e
    if not bpf or len(bpf) % 8:
        raise Finding(f"seccomp: a program of {len(bpf)} bytes for {_show(profile)}")


def check_profile(annotations: Any) -> None:
    from xcontainers.errors import ConfigError
    from xcontainers.profile import from_annotations

    try:
        from_annotations(annotations)
    except ConfigError as e:
        _one_line(e, "profile", annotations)
    except Exception as e:  # noqa: BLE001
        raise Finding(f"profile: {type(e).__name__}: {e} for {_show(annotations)}") from e


# --- seeds and corpus ------------------------------------------------------------------------


def corpus(target: str) -> list[tuple[str, Any]]:
    """(name, input) of every corpus file of *target* (JSON; found-* files hold {"input": ...})."""
    out = []
    d = CORPUS / target
    for p in sorted(d.glob("*.json")) if d.is_dir() else []:
        doc = json.loads(p.read_text())
        out.append((p.name, doc["input"] if p.name.startswith("found-") else doc))
    return out


def seeds(target: str) -> list[Any]:
    found = [x for n, x in corpus(target) if not n.startswith("found-")]
    if target == "spec":
        from xcontainers.defaults import default_spec

        found.append(default_spec(["sh"], terminal=False))
    if target == "seccomp":
        p = Path("/usr/share/containers/seccomp.json")
        if p.exists():
            from xcontainers.benchharness.runtimes import oci_seccomp

            found.append(oci_seccomp(json.loads(p.read_text()), ["CAP_KILL"]))
    return found


def save_finding(target: str, value: Any, message: str) -> Path:
    data = json.dumps({"input": value, "message": message}, indent=1, sort_keys=True, default=repr)
    name = f"found-{hashlib.sha256(data.encode()).hexdigest()[:10]}.json"
    (CORPUS / target).mkdir(parents=True, exist_ok=True)
    path = CORPUS / target / name
    path.write_text(data + "\n")
    return path


# --- Hypothesis strategies -------------------------------------------------------------------

INTERESTING_STRINGS = ["", "/", ".", "..", "../..", "/proc/self/fd/3", "\x00", "a\x00b", "é", "\udcff"[:0] + "ø",
                       "x" * 5000, "-1", "0", "1e999", "NaN", "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_CMP_EQ",
                       "CAP_SYS_ADMIN", "RLIMIT_NOFILE", "user", "network", "mount", "c", "b", "a",
                       "org.xcontainers.libos", "getpid=forward", "openat=trace", "ptrace=refuse:EPERM",
                       "read=refuse:300", "x=y=z", ",", "=,=", "+", "on", "off", "stderr", "/dev/null"]
INTERESTING_INTS = [0, 1, -1, 2, 7, 8, 255, 256, 4095, 4096, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1, 2**32,
                    2**63 - 1, 2**63, 2**64 - 1, 2**64, -2**63, -2**64, 10**30]


def strategies() -> Any:
    from hypothesis import strategies as st

    text = st.one_of(st.sampled_from(INTERESTING_STRINGS), st.text(max_size=12))
    scalars = st.one_of(st.none(), st.booleans(), st.sampled_from(INTERESTING_INTS),
                        st.integers(min_value=-2**70, max_value=2**70), st.floats(allow_nan=True), text)
    values = st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=4),
                                                       st.dictionaries(text, c, max_size=4)), max_leaves=12)
    return st, text, values


def _paths(doc: Any, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, prefix + (i,))


def _get(doc: Any, path: tuple) -> Any:
    for k in path:
        doc = doc[k]
    return doc


def mutate(draw: Callable, doc: Any, rounds: int) -> Any:
    """A copy of *doc* with *rounds* structural changes drawn from Hypothesis."""
    import copy

    st, text, values = strategies()
    doc = copy.deepcopy(doc)
    for _ in range(rounds):
        paths = list(_paths(doc))
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["replace", "replace", "delete", "add", "wrap", "empty"]))
        if not path:
            if op == "replace":
                doc = draw(values)
            continue
        parent, key = _get(doc, path[:-1]), path[-1]
        if op == "replace":
            parent[key] = draw(values)
        elif op == "delete":
            del parent[key]
        elif op == "add" and isinstance(parent[key], dict):
            parent[key][draw(text)] = draw(values)
        elif op == "add" and isinstance(parent[key], list):
            parent[key].append(draw(values))
        elif op == "wrap":
            parent[key] = [parent[key]] if draw(st.booleans()) else {"x": parent[key]}
        elif op == "empty":
            parent[key] = type(parent[key])() if isinstance(parent[key], (dict, list, str)) else None
    return doc


def hypothesis_tests(max_examples: int, seed: int | None = None) -> dict[str, Callable[[], None]]:
    """The Python targets as Hypothesis tests; each remembers its last input in LAST[target]."""
    from hypothesis import HealthCheck, given, settings, seed as hseed
    from hypothesis import strategies as st

    _, text, values = strategies()
    common = settings(max_examples=max_examples, deadline=None, database=None, derandomize=seed is None,
                      suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    out: dict[str, Callable[[], None]] = {}

    def wrap(fn: Callable) -> Callable:
        return hseed(seed)(fn) if seed is not None else fn

    spec_seeds = seeds("spec")

    @wrap
    @common
    @given(st.data())
    def spec_structured(data: Any) -> None:
        base = data.draw(st.sampled_from(spec_seeds))
        doc = mutate(data.draw, base, data.draw(st.integers(1, 6)))
        LAST["spec"] = doc
        check_spec(doc)

    @wrap
    @common
    @given(st.data())
    def spec_bytes(data: Any) -> None:
        base = json.dumps(data.draw(st.sampled_from(spec_seeds))).encode()
        b = bytearray(base)
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, max(0, len(b) - 1)))
            op = data.draw(st.sampled_from(["flip", "cut", "dup", "insert"]))
            if op == "flip" and b:
                b[i] ^= 1 << data.draw(st.integers(0, 7))
            elif op == "cut":
                del b[i:i + data.draw(st.integers(1, 40))]
            elif op == "dup":
                b[i:i] = b[i:i + data.draw(st.integers(1, 40))]
            else:
                b[i:i] = data.draw(st.sampled_from([b"[", b"{", b"]", b"}", b'"', b"\\", b"\x00", b"\xff",
                                                    b"1e999999", b"-0", b"[" * 3000, b"\"\\ud800\""]))
        LAST["spec-bytes"] = bytes(b)
        check_spec_bytes(bytes(b))

    seccomp_seeds = seeds("seccomp")

    @wrap
    @common
    @given(st.data())
    def seccomp(data: Any) -> None:
        base = data.draw(st.sampled_from(seccomp_seeds))
        prof = mutate(data.draw, base, data.draw(st.integers(1, 6)))
        LAST["seccomp"] = prof
        check_seccomp(prof)

    profile_seeds = seeds("profile")

    @wrap
    @common
    @given(st.data())
    def profile(data: Any) -> None:
        base = data.draw(st.sampled_from(profile_seeds))
        ann = mutate(data.draw, base, data.draw(st.integers(1, 4)))
        # annotations are a map of strings by the time they get here (spec.parse checks that)
        ann = {str(k): v if isinstance(v, str) else _show(v) for k, v in ann.items()} if isinstance(ann, dict) else {}
        LAST["profile"] = ann
        check_profile(ann)

    entry = st.tuples(st.sampled_from(ENTRY_NAMES), st.sampled_from(sorted(ENTRY_TYPES)),
                      st.sampled_from(LINK_TARGETS), st.sampled_from([0o644, 0o755, 0o4755, 0o6777, 0o1777, 0]),
                      st.integers(0, 64))

    @wrap
    @common
    @given(st.data())
    def image(data: Any) -> None:
        fmt = data.draw(st.sampled_from(["docker", "oci"]))
        entries = data.draw(st.lists(entry, min_size=1, max_size=8))
        layer = layer_tar(entries)
        edits = data.draw(st.integers(0, 2))
        cfg_edit = man_edit = None
        if edits:
            which = data.draw(st.sampled_from(["config", "manifest"]))
            f = (lambda d: mutate(data.draw, d, edits))
            cfg_edit, man_edit = (f, None) if which == "config" else (None, f)
        archive = bytearray(image_archive(fmt, layer, cfg_edit, man_edit))
        for _ in range(data.draw(st.integers(0, 2))):
            i = data.draw(st.integers(0, len(archive) - 1))
            if data.draw(st.booleans()):
                archive[i] ^= 1 << data.draw(st.integers(0, 7))
            else:
                del archive[i:]
                break
        LAST["image"] = {"format": fmt, "entries": entries, "archive": bytes(archive).hex()}
        check_image(bytes(archive))

    out["spec"] = spec_structured
    out["spec-bytes"] = spec_bytes
    out["seccomp"] = seccomp
    out["profile"] = profile
    if image_target() is not None:
        out["image"] = image
    return out


LAST: dict[str, Any] = {}
TARGET_OF = {"spec": "spec", "spec-bytes": "spec", "seccomp": "seccomp", "profile": "profile", "image": "image"}


def replay(target: str) -> list[str]:
    """Run every corpus input of *target*; return the rules they break (none, once fixed)."""
    def image_recipe(r: dict[str, Any]) -> None:
        if "archive" in r:  # found by the fuzzer: the archive exactly as it failed
            check_image(bytes.fromhex(r["archive"]), known_ok=False)
        else:
            check_image(image_archive(r["format"], layer_tar([tuple(e) for e in r["entries"]])), known_ok=False)

    check = {"spec": check_spec, "seccomp": check_seccomp, "profile": check_profile, "image": image_recipe}[target]
    broken = []
    for name, value in corpus(target):
        try:
            if target == "spec" and isinstance(value, dict) and set(value) == {"bytes"}:
                check_spec_bytes(bytes.fromhex(value["bytes"]))
            else:
                check(value)
        except Finding as e:
            broken.append(f"{name}: {e}")
    return broken


# --- the ELF loader ----------------------------------------------------------------------------

# Addresses a mutated header may point at: the LibOS image, its gate, the ABOM table, the
# stack's top, non-canonical and kernel space, the vsyscall page.
ADDRESSES = [0x10000000, 0x1000c000, 0x10010000, 0x100000, 0x0, 0x1000, 0x7ffffffff000, 0x800000000000,
             0xffffffffff600000, 0xffff800000000000, 0x400000, 0x3ffffffffffff000]
EH = struct.Struct("<16sHHIQQQIHHHHHH")            # Elf64_Ehdr
PH = struct.Struct("<IIQQQQQQ")                     # Elf64_Phdr
EH_FIELDS = ("ident", "type", "machine", "version", "entry", "phoff", "shoff", "flags", "ehsize", "phentsize",
             "phnum", "shentsize", "shnum", "shstrndx")
EH_SIZES = (16, 2, 2, 4, 8, 8, 8, 4, 2, 2, 2, 2, 2, 2)
PH_FIELDS = ("type", "flags", "offset", "vaddr", "paddr", "filesz", "memsz", "align")
SEEDS = {  # name -> gcc flags for tests/guest/elf_seed.S
    "static": ["-static", "-no-pie"],
    "pie": ["-static-pie"],
    "interp": ["-pie", "-Wl,--dynamic-linker=/fuzz/seed-static"],
    "go": ["-static", "-no-pie", "-DGO_NOTE"],
}


def build_elf_seeds(out: Path) -> dict[str, bytes]:
    out.mkdir(parents=True, exist_ok=True)
    got = {}
    for name, flags in SEEDS.items():
        dest = out / f"seed-{name}"
        subprocess.run(["gcc", "-nostdlib", "-s", *flags, "-o", str(dest), str(HERE / "guest/elf_seed.S")],
                       check=True)
        got[name] = dest.read_bytes()
    return got


def apply_recipe(seeds_: dict[str, bytes], recipe: dict[str, Any]) -> bytes:
    """A mutated file from a recipe: {"seed": name, "set": [[where, field, value]...], "flip": [[offset, bit]...],
    "cut": n, "interp": "path", "script": "#!..."} (where: "eh" or a program header index)."""
    if "script" in recipe:
        return recipe["script"].encode("utf-8", "surrogateescape")
    b = bytearray(seeds_[recipe["seed"]])
    eh = list(EH.unpack_from(b, 0))
    phoff = eh[5]
    if "interp" in recipe:  # before the header mutations, on the seed's own PT_INTERP
        for i in range(eh[10]):
            at = phoff + i * PH.size
            if PH.unpack_from(b, at)[0] == 3:  # PT_INTERP
                off, size = PH.unpack_from(b, at)[2], PH.unpack_from(b, at)[5]
                path = recipe["interp"].encode()[:max(size - 1, 0)]
                b[off:off + size] = path + b"\0" * (size - len(path))
    for where, fld, value in recipe.get("set", []):
        if where == "eh":
            i = EH_FIELDS.index(fld)
            if i == 0:
                continue
            eh[i] = value & ((1 << (8 * EH_SIZES[i])) - 1)
            EH.pack_into(b, 0, *eh)
        else:
            at = phoff + int(where) * PH.size
            if at + PH.size > len(b):
                continue
            ph = list(PH.unpack_from(b, at))
            i = PH_FIELDS.index(fld)
            ph[i] = value & ((1 << (32 if i < 2 else 64)) - 1)
            PH.pack_into(b, at, *ph)
    for off, bit in recipe.get("flip", []):
        if off < len(b):
            b[off] ^= 1 << (bit & 7)
    if "cut" in recipe:
        del b[recipe["cut"]:]
    return bytes(b)


def random_recipe(rng: random.Random, seeds_: dict[str, bytes]) -> dict[str, Any]:
    kind = rng.random()
    if kind < 0.06:
        return {"script": rng.choice([
            "#!/fuzz/seed-static\n", "#!/fuzz/seed-static " + "a" * rng.randrange(300) + "\n",
            "#!" + "/" * rng.randrange(300) + "\n", "#!\n", "#! \t\n", "#!/nonexistent\n", "#!/fuzz\n",
            "#!/proc/self/exe\n", "#!/fuzz/loop\n", "#!" + "x" * 255, "#!/fuzz/seed-static\0junk\n"])}
    seed = rng.choice(sorted(seeds_))
    eh = EH.unpack_from(seeds_[seed], 0)
    recipe: dict[str, Any] = {"seed": seed, "set": []}
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        if rng.random() < 0.35:
            fld = rng.choice(EH_FIELDS[1:])
            where = "eh"
            orig = eh[EH_FIELDS.index(fld)]
        else:
            where = str(rng.randrange(eh[10] + 1))
            fld = rng.choice(PH_FIELDS)
            orig = 0
        value = rng.choice([rng.choice(INTERESTING_INTS), rng.choice(ADDRESSES), orig + rng.choice([-1, 1, 4096]),
                            rng.getrandbits(64), rng.getrandbits(16), rng.choice([0, 1, 2, 3, 4, 6, 7, 0x6474e551])])
        recipe["set"].append([where, fld, int(value) & ((1 << 64) - 1)])
    if rng.random() < 0.25:
        recipe["flip"] = [[rng.randrange(min(512, len(seeds_[seed]))), rng.randrange(8)]
                          for _ in range(rng.randrange(1, 6))]
    if rng.random() < 0.08:
        recipe["cut"] = rng.randrange(len(seeds_[seed]))
    if seed == "interp" and rng.random() < 0.3:
        recipe["interp"] = rng.choice(["/fuzz/seed-interp", "/fuzz", "/proc/self/exe", "/nonexistent",
                                       "", "/fuzz/seed-pie", "/dev/zero", "/fuzz/loop"])
    return recipe


def elf_batch(seeds_: dict[str, bytes], n: int, rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """The corpus's recipes, then *n* random ones."""
    batch = [(name.removesuffix(".json"), rec) for name, rec in corpus("elf")]
    batch += [(f"r{i:04d}", random_recipe(rng, seeds_)) for i in range(n)]
    return batch


def outcome_class(result: str) -> str:
    """refused (before or after the exec commits), ran, died, timeout."""
    if result.startswith("execve "):
        return "refused"
    if result == "exit 127":
        return "refused-by-loader"
    if result == "killed SIGALRM":
        return "timeout"
    if result.startswith("killed "):
        return "died"
    return "ran"


def run_elf_batch(rt: Any, batch: list[tuple[str, dict[str, Any]]], seeds_: dict[str, bytes], rootfs: Path,
                  guest: Path, work: Path, traced: bool, cut: str, seconds: int = 2) -> Any:
    """Execute every recipe's file in one container of runtime *rt*; return the attackkit.Outcome."""
    from attackkit import make_bundle, traced_run

    files: dict[str, bytes | Path] = {f"fuzz/seed-{k}": v for k, v in seeds_.items()}
    files["fuzz/loop"] = b"#!/fuzz/loop\n"
    bundle = make_bundle(work, rootfs, ["/attacks", "exec-each", "/fuzz/cases", str(seconds)], guest, {})
    (bundle.path / "rootfs/fuzz/cases").mkdir(parents=True)
    for name, data in files.items():
        (bundle.path / "rootfs" / name).write_bytes(data if isinstance(data, bytes) else data.read_bytes())
        os.chmod(bundle.path / "rootfs" / name, 0o755)
    for name, recipe in batch:
        p = bundle.path / "rootfs/fuzz/cases" / name
        p.write_bytes(apply_recipe(seeds_, recipe))
        os.chmod(p, 0o755)
    if traced:
        return traced_run(rt, bundle, cut=cut, timeout=60 + 3 * seconds * len(batch))
    r = rt.run(bundle, timeout=60 + 3 * seconds * len(batch))
    from attackkit import Outcome
    from hosttrace import ContainerCalls

    return Outcome(r.rc, r.out, r.err, ContainerCalls(0.0))


# --- the image importer ----------------------------------------------------------------------

# Layer entries: (name, type, link target, mode, size).  Names and targets that try to leave
# the layer's directory carry ESCAPE, which must never appear outside the store.
ESCAPE = "xcfuzzescape"
ENTRY_NAMES = ["bin", "bin/sh", "etc/passwd", "a", "a/b", "a/b/c", "./x", "x/../y", "../" + ESCAPE,
               "../../" + ESCAPE, "/" + ESCAPE, "/tmp/" + ESCAPE, "link", "link/" + ESCAPE, "dev/null",
               ".wh.a", "a/.wh..wh..opq", ".wh..wh.plnk", "a" * 300, "é/ü", "", ".", "..", "a//b", "hl"]
LINK_TARGETS = ["/", "/etc", "..", "../..", "/tmp", "bin/sh", "a", "hl", "link", "../" + ESCAPE,
                "/tmp/" + ESCAPE, "nonexistent", "a/b/c", ""]
ENTRY_TYPES = {"file": b"0", "dir": b"5", "symlink": b"2", "hardlink": b"1", "chr": b"3", "blk": b"4",
               "fifo": b"6"}


def layer_tar(entries: list[tuple[str, str, str, int, int]]) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, link, mode, size in entries:
            ti = tarfile.TarInfo(name)
            ti.type = ENTRY_TYPES[kind]
            ti.mode = mode
            ti.linkname = link
            ti.mtime = 1700000000
            if kind in ("chr", "blk"):
                ti.devmajor, ti.devminor = 1, 3
            data = b"x" * size if kind == "file" else b""
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data) if data else None)
    return buf.getvalue()


def _sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def image_archive(fmt: str, layer: bytes, config_edit: Any = None, manifest_edit: Any = None) -> bytes:
    """A one-layer docker-archive or OCI archive around *layer*, its digests right
    (after *config_edit*/*manifest_edit*, callables that change the parsed JSON)."""
    import io
    import tarfile

    config: Any = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                   "rootfs": {"type": "layers", "diff_ids": [_sha(layer)]}}
    if config_edit:
        config = config_edit(config)
    cfg = json.dumps(config).encode()
    files: dict[str, bytes] = {}
    if fmt == "docker":
        manifest: Any = [{"Config": hashlib.sha256(cfg).hexdigest() + ".json", "RepoTags": ["fuzz/x:1"],
                          "Layers": [hashlib.sha256(layer).hexdigest() + "/layer.tar"]}]
        if manifest_edit:
            manifest = manifest_edit(manifest)
        files = {"manifest.json": json.dumps(manifest).encode(),
                 hashlib.sha256(cfg).hexdigest() + ".json": cfg,
                 hashlib.sha256(layer).hexdigest() + "/layer.tar": layer}
    else:
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _sha(cfg),
                               "size": len(cfg)},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _sha(layer),
                                "size": len(layer)}]}
        if manifest_edit:
            manifest = manifest_edit(manifest)
        man = json.dumps(manifest).encode()
        index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                    "digest": _sha(man), "size": len(man),
                                                    "annotations": {"org.opencontainers.image.ref.name":
                                                                    "fuzz/x:1"}}]}
        files = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}', "index.json": json.dumps(index).encode(),
                 "blobs/sha256/" + _sha(man)[7:]: man, "blobs/sha256/" + _sha(cfg)[7:]: cfg,
                 "blobs/sha256/" + _sha(layer)[7:]: layer}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _tree(root: str) -> set[str]:
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            out.add(os.path.relpath(os.path.join(dirpath, n), root))
    return out


# Tracebacks the fuzzer found in the importer, reported (docs/security.md, finding 12) and not
# fixed yet (src/xcontainers/archive.py and layer.py are the images work's): (exception type, the
# file its innermost frame is in).  They are tallied in KNOWN_SEEN rather than failing the run,
# so that the fuzzer keeps looking for what matters more (a write outside the store); the
# strict xfails in tests/test_fuzz.py turn into failures once they are fixed: then empty this.
KNOWN_IMAGE: set[tuple[str, str]] = set()
KNOWN_SEEN: dict[tuple[str, str], int] = {}


def _known(e: BaseException) -> tuple[str, str] | None:
    """(type, file) when *e* is one of KNOWN_IMAGE: raised with that file on its way up."""
    import traceback

    files = {os.path.basename(f.filename) for f in traceback.extract_tb(e.__traceback__)}
    for kind, file in KNOWN_IMAGE:
        if type(e).__name__ == kind and file in files:
            return (kind, file)
    return None


def check_image(archive: bytes, known_ok: bool = True) -> None:
    """Import *archive* into a fresh store: records, or an XcError of one line; and nothing
    outside the store (its parent directory, /tmp) gains an entry."""
    from xcontainers.archive import import_archive
    from xcontainers.errors import XcError
    from xcontainers.imagestore import ImageStore

    work = tempfile.mkdtemp(prefix="xc-fuzz-image-")
    try:
        outside = os.path.join(work, "outside")
        os.mkdir(outside)
        with open(os.path.join(outside, "keep"), "w") as f:
            f.write("keep")
        path = os.path.join(work, "in.tar")
        with open(path, "wb") as f:
            f.write(archive)
        before_tmp = {n for n in os.listdir("/tmp") if ESCAPE in n}
        store = ImageStore(os.path.join(work, "store"))
        try:
            import_archive(store, path)
        except XcError as e:
            _one_line(e, "image", archive[:200])
        except Exception as e:  # noqa: BLE001
            k = _known(e) if known_ok else None
            if k is None:
                raise Finding(f"image: {type(e).__name__}: {str(e)[:300]}") from e
            KNOWN_SEEN[k] = KNOWN_SEEN.get(k, 0) + 1
        escaped = ({n for n in os.listdir("/tmp") if ESCAPE in n} - before_tmp) | \
            {n for n in _tree(work) if ESCAPE in n and not n.startswith("store" + os.sep)} | \
            (_tree(outside) - {"keep"})
        if escaped:
            raise Finding(f"image: the import wrote outside its store: {sorted(escaped)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for n in os.listdir("/tmp"):
            if ESCAPE in n:
                p = os.path.join("/tmp", n)
                shutil.rmtree(p, ignore_errors=True) if os.path.isdir(p) and not os.path.islink(p) else \
                    os.unlink(p)


def image_target() -> Callable[[bytes], None] | None:
    """check_image, when the importer (xcontainers.archive, from the `images` branch) is there."""
    try:
        import xcontainers.archive  # noqa: F401
    except ImportError:
        return None
    return check_image


# --- the long run --------------------------------------------------------------------------------


def run_python_targets(names: list[str], deadline: float, log: Callable[[str], None]) -> int:
    """Run the Hypothesis targets in rounds until *deadline*; save every finding."""
    findings = 0
    rnd = 0
    while time.monotonic() < deadline:
        rnd += 1
        tests = hypothesis_tests(max_examples=500, seed=random.getrandbits(64))
        for name in names:
            if time.monotonic() >= deadline:
                break
            t0 = time.monotonic()
            try:
                tests[name]()
            except Finding as e:
                findings += 1
                path = save_finding(TARGET_OF[name], LAST.get(name) if name != "spec-bytes" else
                                    {"bytes": LAST[name].hex()}, str(e)[:2000])
                log(f"FINDING in {name}: {str(e)[:300]}\n  saved to {path}")
            log(f"round {rnd}: {name}: 500 inputs in {time.monotonic() - t0:.1f} s")
    return findings


def run_elf(deadline: float, log: Callable[[str], None], batch_size: int = 300) -> int:
    """Batches of mutated ELF files in xc containers (with the trace) until *deadline*."""
    import attackkit
    import hosttrace
    from conftest import XC_RUNTIME, RuntimeUnderTest, build_busybox_rootfs

    why = hosttrace.available()
    if why:
        log(f"elf: skipped ({why})")
        return 0
    interface = attackkit.interface()
    allowed = attackkit.allowed_on_host(interface)
    work = Path(tempfile.mkdtemp(prefix="xc-fuzz-elf-"))
    findings = 0
    try:
        rootfs = build_busybox_rootfs(work / "image")
        guest = attackkit.build_guest(work / "attacks")
        seeds_ = build_elf_seeds(work / "seeds")
        xc = RuntimeUnderTest("xc", XC_RUNTIME or "xc-runtime", str(work / "state"))
        rng = random.Random()
        rnd = 0
        while time.monotonic() < deadline:
            rnd += 1
            batch = elf_batch(seeds_, batch_size, rng)
            t0 = time.monotonic()
            out = run_elf_batch(xc, batch, seeds_, rootfs, guest, work / f"round{rnd}", traced=True, cut="seccomp")
            got = out.results.get("elf", {})
            classes: dict[str, int] = {}
            for r in got.values():
                classes[outcome_class(r)] = classes.get(outcome_class(r), 0) + 1
            off = out.calls.numbers() - allowed
            problems = []
            if "exec-each: done" not in out.out:
                problems.append("the driver did not finish")
            if off:
                problems.append("off the interface: " + hosttrace.names_of(off))
            if len(got) != len(batch):
                problems.append(f"{len(batch) - len(got)} cases without a result")
            for p in problems:
                findings += 1
                path = save_finding("elf", {"batch": dict(batch)}, p)
                log(f"FINDING in elf round {rnd}: {p}\n  batch saved to {path}")
            log(f"round {rnd}: elf: {len(got)} files in {time.monotonic() - t0:.1f} s: {classes}")
            shutil.rmtree(work / f"round{rnd}", ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return findings


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30, help="total time (default 30)")
    ap.add_argument("--targets", default="spec,seccomp,profile,image,elf",
                    help="comma-separated: spec, seccomp, profile, image, elf (default: all)")
    a = ap.parse_args(argv)
    targets = [t.strip() for t in a.targets.split(",") if t.strip()]
    unknown = set(targets) - {"spec", "seccomp", "profile", "elf", "image"}
    if unknown:
        ap.error(f"unknown target(s): {', '.join(sorted(unknown))}")
    if "image" in targets and image_target() is None:
        print("image: the importer (xcontainers.archive) is not in this tree", file=sys.stderr)
        targets.remove("image")
    start = time.monotonic()
    total = a.minutes * 60
    py = [n for n in ("spec", "spec-bytes", "seccomp", "profile", "image") if TARGET_OF[n] in targets]
    share = total / 2 if py and "elf" in targets else total

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - start:7.1f}s] {msg}", flush=True)

    findings = 0
    for t in ("spec", "seccomp", "profile", "image"):
        if t in targets:
            for b in replay(t):
                findings += 1
                log(f"corpus input still breaks the rule: {b[:300]}")
    if py:
        findings += run_python_targets(py, start + share, log)
    if "elf" in targets:
        findings += run_elf(start + total, log)
    if KNOWN_SEEN:
        log(f"known importer tracebacks met (finding 12): {KNOWN_SEEN}")
    log(f"done: {findings} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
