"""`xc image ...`, `xc images`, `xc pull` and `xc system prune`: thin
adapters over :mod:`imagestore`, :mod:`archive`, :mod:`registry` and
:mod:`imagerun`."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

__all__ = ["add_commands", "cmd_images"]


def _bundles() -> str:
    from .xc_cli import BUNDLES

    return BUNDLES


def _in_use(image_id: str) -> list[str]:
    from . import imagerun
    from .rootless import in_own_userns

    if not in_own_userns():  # rootless: the stale bundles went before (cmd_rm)
        imagerun.gc(_bundles())
    return imagerun.in_use(_bundles(), image_id)


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


def cmd_images(a: argparse.Namespace) -> int:
    from .image import BUILTIN, IMAGES_DIR
    from .imagestore import ImageStore

    recs = ImageStore().images()
    if getattr(a, "json", False):
        import json

        print(json.dumps(recs, indent=2))
        return 0
    print(f"{'NAME':<48} {'IMAGE ID':<14}{'LAYERS':>6}  {'SIZE':>9}  CREATED")
    for r in recs:
        for n in r.get("names") or ["<none>"]:
            print(f"{n:<48} {r['id'][:12]:<14}{len(r['layers']):>6}  {_size(r.get('size', 0)):>9}  "
                  f"{r.get('created', '')[:19]}")
    builtin = os.path.isdir(os.path.join(IMAGES_DIR, BUILTIN, "rootfs"))
    print(f"{BUILTIN + ' (built in)':<48} {'-':<14}{'-':>6}  {'-':>9}  "
          f"{'' if builtin else '(made on first use)'}")
    return 0


def cmd_import(a: argparse.Namespace) -> int:
    from .archive import import_archive
    from .imagestore import ImageStore, as_owner

    st = ImageStore()
    for rec in as_owner(st, import_archive, st, a.file, a.name):
        print(f"imported {rec['id'][:12]} ({len(rec['layers'])} layers)"
              + (": " + ", ".join(rec["names"]) if rec["names"] else ""))
        _run_template(rec)
    return 0


def _run_template(rec: dict[str, Any]) -> None:
    """The image's run template, for `xc run`'s native path (runtemplate.py)."""
    from . import runtemplate

    runtemplate.write_isolated(rec)


def cmd_rm(a: argparse.Namespace) -> int:
    from . import imagerun
    from .imagestore import ImageStore, as_owner

    st = ImageStore()
    if os.geteuid() != 0:  # before the store's user namespace, where _in_use leaves them be
        imagerun.gc(_bundles())
    for ref in a.refs:
        for line in as_owner(st, st.remove, ref, in_use=_in_use, force=a.force):
            print(line)
    return 0


def cmd_inspect(a: argparse.Namespace) -> int:
    import json

    from .imagestore import ImageStore

    st = ImageStore()
    rec = st.get(a.ref)
    print(json.dumps({**rec, "image_config": st.config(rec)}, indent=2))
    return 0


def cmd_pull(a: argparse.Namespace) -> int:
    from .imagestore import ImageStore, as_owner
    from .registry import pull

    st = ImageStore()
    rec = as_owner(st, pull, st, a.ref, insecure=a.insecure, creds=a.creds, cert_dir=a.cert_dir,
                   progress=None if a.quiet else sys.stderr)
    _run_template(rec)
    print(rec["id"])
    return 0


def cmd_prune(a: argparse.Namespace) -> int:
    from . import imagerun
    from .imagestore import ImageStore, as_owner

    for cid in imagerun.gc(_bundles()):
        print(f"removed stale container bundle {cid}")
    st = ImageStore()
    for line in as_owner(st, st.prune, in_use=lambda i: imagerun.in_use(_bundles(), i)):
        print(line)
    return 0


def add_commands(sub: Any) -> None:
    """Add `image`, `images`, `pull` and `system` to xc's subcommands."""
    im = sub.add_parser("image", help="manage images: import, ls, rm, inspect")
    isub = im.add_subparsers(dest="image_cmd", metavar="COMMAND", required=True)
    i = isub.add_parser("import", help="import a docker-archive or OCI archive (docker/podman save, skopeo)")
    i.add_argument("file", help="the archive (or an OCI layout directory)")
    i.add_argument("--name", help="the image's name (default: the names the archive records)")
    i.set_defaults(fn=cmd_import)
    ls = isub.add_parser("ls", help="list images")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(fn=cmd_images)
    rm = isub.add_parser("rm", help="remove an image name, or an image by id")
    rm.add_argument("-f", "--force", action="store_true", help="remove the image even if it has other names")
    rm.add_argument("refs", nargs="+", metavar="REF")
    rm.set_defaults(fn=cmd_rm)
    ins = isub.add_parser("inspect", help="an image's record and config as JSON")
    ins.add_argument("ref")
    ins.set_defaults(fn=cmd_inspect)
    images = sub.add_parser("images", help="list images (xc image ls)")
    images.add_argument("--json", action="store_true")
    images.set_defaults(fn=cmd_images)
    p = sub.add_parser("pull", help="pull an image from a registry (Docker Registry HTTP API v2)")
    p.add_argument("ref", help="e.g. localhost:5000/test/busybox:latest")
    p.add_argument("--insecure", action="store_true",
                   help="allow plain http and unverified TLS (always allowed for localhost)")
    p.add_argument("--creds", metavar="USER:PASSWORD", help="credentials for the registry")
    p.add_argument("--cert-dir", help="a directory of CA certificates (*.crt) to trust for this registry")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(fn=cmd_pull)
    sy = sub.add_parser("system", help="xc's own housekeeping")
    ssub = sy.add_subparsers(dest="system_cmd", metavar="COMMAND", required=True)
    pr = ssub.add_parser("prune", help="remove stale container mounts, unused layers, partial downloads")
    pr.set_defaults(fn=cmd_prune)
