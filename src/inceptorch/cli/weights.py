"""`inceptorch weights list|fetch|verify`: the public pretrained weights, their accuracy, cache and hashes."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError

if TYPE_CHECKING:  # the registry imports every model, and with them torch: not before a subcommand runs
    from ..weights.sets import WeightSet


def register(subparsers) -> None:
    p = subparsers.add_parser("weights", help="public pretrained weights: list them, fetch them, verify files")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = actions.add_parser("list", help="every weight set: source, published accuracy, preprocessing, cached or not")
    ls.add_argument("pattern", nargs="?", default="*", help="shell-style filter on MODEL.TAG, e.g. 'inception_v3*'")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run_list)
    get = actions.add_parser("fetch", help="download weight sets into the cache (once; hashes checked)")
    get.add_argument("names", nargs="*", metavar="NAME", help="MODEL.TAG, or MODEL for its default set")
    get.add_argument("--all", action="store_true", help="every weight set")
    get.add_argument("--json", action="store_true")
    get.set_defaults(func=run_fetch)
    check = actions.add_parser("verify", help="check cached weight sets, or files, against their published hashes")
    check.add_argument("names", nargs="*", metavar="NAME_OR_FILE",
                       help="MODEL.TAG, MODEL, or a weights file (default: every cached set)")
    check.add_argument("--json", action="store_true")
    check.set_defaults(func=run_verify)


def named_sets(names: list[str]) -> list[WeightSet]:
    from ..weights.sets import find_by_full_name, find_weight_set, weight_sets

    out = []
    for name in names:
        ws = find_by_full_name(name) or find_weight_set(name, "imagenet")
        if ws is None:
            known = ", ".join(w.name for w in weight_sets())
            raise UserError(f"no weight set {name!r}; known: {known}")
        out.append(ws)
    return out


def describe(ws: WeightSet) -> dict:
    """A weight set as plain data, with its local file if there is one."""
    from ..weights.cache import cached_path, download_url
    from ..weights.sets import weight_sets

    local = cached_path(ws)
    out = {"name": ws.name, "model": ws.model, "tag": ws.tag, "default": weight_sets(ws.model)[0] == ws,
           "source": ws.source, "origin": ws.origin, "license": ws.license, "download": download_url(ws),
           "url": ws.url or None, "hub_id": ws.hub_id or None, "file": ws.file_name,
           "sha256_prefix": ws.hash_prefix or None, "layout": ws.layout, "classes": ws.classes,
           "aliases": list(ws.aliases), "results": [dataclasses.asdict(r) for r in ws.results],
           "preprocessing": dataclasses.asdict(ws.preprocessing), "cached": str(local) if local else None}
    if ws.notes:
        out["notes"] = ws.notes
    return out


def run_list(args) -> int:
    import fnmatch

    from ..weights.sets import weight_sets

    rows = [describe(w) for w in weight_sets()
            if fnmatch.fnmatch(w.name, args.pattern) or fnmatch.fnmatch(w.model, args.pattern)]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="pretrained weights (top-1 / top-5: ImageNet-1k val as published; `--json` for protocols)")
    for col in ("weights", "source", "top-1", "top-5", "preprocessing", "cached"):
        table.add_column(col, justify="right" if col.startswith("top") else "left")
    for r in rows:
        pre, res = r["preprocessing"], r["results"][0]
        prep = (f"{pre['input_size']} px, crop {pre['crop_pct']:.3f}, {pre['interpolation']}, mean "
                f"{'0.5' if tuple(pre['mean']) == (0.5, 0.5, 0.5) else 'ImageNet'}"
                + (", transform_input" if pre["transform_input"] else ""))
        table.add_row(r["name"] + (" *" if r["default"] else ""), r["source"], f"{res['top1']:.3f}",
                      f"{res['top5']:.3f}", prep, "yes" if r["cached"] else "no")
    Console(width=160).print(table)
    print("* what pretrained=True / --pretrained imagenet loads for that model")
    return 0


def run_fetch(args) -> int:
    from ..weights.cache import fetch
    from ..weights.sets import weight_sets

    if args.all == bool(args.names):
        raise UserError("name the weight sets to fetch, or give --all")
    sets = weight_sets() if args.all else named_sets(args.names)
    done = []
    for ws in sets:
        done.append({"name": ws.name, "path": str(fetch(ws))})
        if not args.json:
            print(f"{ws.name}: {done[-1]['path']}")
    if args.json:
        print(json.dumps(done, indent=1))
    return 0


def run_verify(args) -> int:
    from ..weights.cache import cached_path
    from ..weights.sets import weight_sets

    results = []
    targets = args.names or [w.name for w in weight_sets() if cached_path(w) is not None]
    for target in targets:
        path = Path(target).expanduser()
        results.append(_verify_file(path) if path.is_file() else _verify_set(named_sets([target])[0]))
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        if not results:
            print("no weight set is cached (`inceptorch weights fetch NAME` downloads one)")
        for r in results:
            print(f"{r['status']:>10}  {r['name'] or '-'}  {r['path'] or ''}  {r['detail']}".rstrip())
    return 1 if any(r["status"] == "mismatch" for r in results) else 0


def _verify_set(ws: WeightSet) -> dict:
    from ..weights.cache import cached_path, verify

    path = cached_path(ws)
    if path is None:
        return {"name": ws.name, "path": None, "status": "missing", "sha256": None,
                "detail": "not cached (`inceptorch weights fetch` downloads it)"}
    check = verify(ws, path)
    return {"name": ws.name, "path": str(path), "status": check.status, "sha256": check.sha256, "detail": check.detail}


def _verify_file(path: Path) -> dict:
    """A file by path: against the hash its name (or hub-cache blob) carries, and which public file it is."""
    from ..weights.cache import file_sha256, hub_blob_hash
    from ..weights.sets import find_by_hash, hash_prefix_of

    sha = file_sha256(path)
    hit = find_by_hash(sha)
    name = hit[0].name if hit else None
    claimed = hash_prefix_of(path.name) or hub_blob_hash(path)
    if claimed and not sha.startswith(claimed):
        return {"name": name, "path": str(path), "status": "mismatch", "sha256": sha,
                "detail": f"SHA-256 {sha[:16]}... does not start with {claimed[:16]}, which its name carries"}
    if hit is None:
        detail = f"SHA-256 {sha[:16]}..." + (f" matches its name's {claimed[:16]}" if claimed else "") + \
                 ", not a published file that inceptorch knows"
        return {"name": None, "path": str(path), "status": "ok" if claimed else "unknown", "sha256": sha,
                "detail": detail}
    file = hit[1].url.rsplit("/", 1)[-1]
    return {"name": name, "path": str(path), "status": "ok", "sha256": sha,
            "detail": f"its SHA-256 starts with {hash_prefix_of(file)}: it is {file}"}
