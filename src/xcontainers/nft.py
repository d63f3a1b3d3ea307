"""The firewall rules of `xc`'s networks: one nftables table of our own.

Everything lives in ``table ip xcontainers`` (made on first use), in three
NAT base chains::

    nat_pre   prerouting, dstnat   published ports: packets that arrive for a
                                   local address and the port go to the
                                   container (DNAT)
    nat_out   output, -100         the same for connections the host itself
                                   opens, 127.0.0.1 included
    nat_post  postrouting, srcnat  per bridge: masquerade of the subnet going
                                   out elsewhere; of loopback sources sent to
                                   the bridge (a connection to 127.0.0.1:PORT
                                   DNATed to a container would otherwise carry
                                   a source address the container answers to
                                   itself); of DNATed connections from one
                                   container to another (hairpin)

Every rule carries a comment: ``xc:KEY`` for a container's published ports,
``xc-bridge:NAME`` for a bridge's masquerade.  Rules are removed by their
handles, found by that comment, in one transaction: exactly the rules of that
container or bridge, whatever else is in the table.  Callers hold the
network state's lock, so no two of us edit the table at once.

The table is driven with Debian's ``nft`` (``nft -f -`` to change,
``nft -j list`` to read).  A loopback DNAT needs ``route_localnet`` on the
bridge: the network code sets it (see docs/network.md).
"""

from __future__ import annotations

import os

from .ipam import NetworkError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterable

__all__ = ["TABLE", "ensure_table", "bridge_rules", "port_rules", "apply", "delete_tagged", "delete_rules",
           "tagged_rules", "delete_table", "table_exists"]

TABLE = "xcontainers"
NFT_CANDIDATES = ("/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft")

_TABLE_DECL = f"""table ip {TABLE} {{
    chain nat_pre {{ type nat hook prerouting priority dstnat; policy accept; }}
    chain nat_out {{ type nat hook output priority -100; policy accept; }}
    chain nat_post {{ type nat hook postrouting priority srcnat; policy accept; }}
}}
"""


def _nft() -> str:
    for p in NFT_CANDIDATES:
        if os.access(p, os.X_OK):
            return p
    raise NetworkError("nft is not installed (apt-get install nftables): bridge networks need it")


def _run(args: list[str], script: str | None = None) -> str:
    import subprocess

    p = subprocess.run([_nft(), *args], input=script, capture_output=True, text=True)
    if p.returncode != 0:
        msg = " ".join(line.strip() for line in p.stderr.splitlines() if line.strip().startswith("Error"))
        raise NetworkError(f"nft {' '.join(args)}: {msg or p.stderr.strip() or 'failed'}")
    return p.stdout


def ensure_table() -> str:
    """The declaration that makes the table and its chains if missing (to be
    prepended to a script: ``nft -f`` merges it with what exists)."""
    return _TABLE_DECL


def apply(script: str) -> None:
    """Run an nft script as one transaction."""
    _run(["-f", "-"], script)


def bridge_rules(bridge: str, subnet: str) -> str:
    tag = f'comment "xc-bridge:{bridge}"'
    return "".join(f"add rule ip {TABLE} nat_post {r} {tag}\n" for r in (
        f'ip saddr {subnet} oifname != "{bridge}" masquerade',
        f'oifname "{bridge}" ip saddr 127.0.0.0/8 masquerade',
        f'oifname "{bridge}" ip saddr {subnet} ct status dnat masquerade',
    ))


def port_rules(tag: str, ports: Iterable[dict[str, Any]], address: str) -> str:
    """DNAT rules publishing *ports* of the container at *address*."""
    out = []
    for p in ports:
        match = f"ip daddr {p['host_ip']}" if p.get("host_ip") else "fib daddr type local"
        rule = (f"{match} {p['proto']} dport {p['host_port']} dnat to {address}:{p['container_port']} "
                f'comment "{tag}"')
        out.append(f"add rule ip {TABLE} nat_pre {rule}\n")
        out.append(f"add rule ip {TABLE} nat_out {rule}\n")
    return "".join(out)


def table_exists() -> bool:
    import subprocess

    p = subprocess.run([_nft(), "list", "table", "ip", TABLE], capture_output=True, text=True)
    return p.returncode == 0


def _listing() -> list[dict[str, Any]]:
    import json

    try:
        out = _run(["-j", "list", "table", "ip", TABLE])
    except NetworkError as e:
        if "No such file or directory" in str(e):
            return []
        raise
    return [item["rule"] for item in json.loads(out).get("nftables", []) if "rule" in item]


def tagged_rules(prefix: str = "xc") -> dict[str, list[tuple[str, int]]]:
    """comment -> [(chain, handle)] of the table's rules whose comment starts with *prefix*."""
    out: dict[str, list[tuple[str, int]]] = {}
    for r in _listing():
        c = r.get("comment") or ""
        if c.startswith(prefix):
            out.setdefault(c, []).append((r["chain"], r["handle"]))
    return out


def delete_rules(rules: Iterable[tuple[str, int]]) -> str:
    """The script deleting *rules* ((chain, handle) pairs)."""
    return "".join(f"delete rule ip {TABLE} {chain} handle {h}\n" for chain, h in rules)


def delete_tagged(tags: Iterable[str]) -> int:
    """Delete every rule whose comment is one of *tags*; return how many."""
    want = set(tags)
    found = [r for tag, rules in tagged_rules().items() if tag in want for r in rules]
    if found:
        apply(delete_rules(found))
    return len(found)


def delete_table() -> None:
    """Remove the whole table (when no network of ours is left)."""
    if table_exists():
        apply(f"delete table ip {TABLE}\n")
