#!/usr/bin/env python3
"""Fails on a module import cycle in any crate of the workspace, or on a source file longer
than the limit (not counting its `#[cfg(test)]` part).

Modules are the files under each crate's `src/` (`a.rs` and `a/mod.rs` are module `a`,
`a/b.rs` is `a::b`). An edge A -> B is a `crate::B` path in a file of A (top-level modules),
or a `super::B` path in a file of A where B is a sibling module (submodules of one folder).
Test code (from the first `#[cfg(test)]` on) and comments are not counted.

Usage: python3 scripts/check-structure.py [--limit 600]
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRATES = ["core", "monitor", "exporter", "bench", "tests", "examples"]


def code_of(path: Path) -> tuple[str, int]:
    """The file's text before its tests, without comments, and that part's line count."""
    lines = path.read_text().split("\n")
    for i, line in enumerate(lines):
        if line.strip() == "#[cfg(test)]":
            lines = lines[:i]
            break
    text = "\n".join(re.sub(r"//.*", "", line) for line in lines)
    return text, len(lines)


def module_name(src: Path, f: Path) -> tuple[str, ...]:
    parts = f.relative_to(src).with_suffix("").parts
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def edges_of(src: Path) -> dict[tuple[str, ...], set[tuple[str, ...]]]:
    files = sorted(src.rglob("*.rs"))
    modules = {module_name(src, f) for f in files}
    graph: dict[tuple[str, ...], set[tuple[str, ...]]] = {m: set() for m in modules}
    for f in files:
        me = module_name(src, f)
        text, _ = code_of(f)
        if me:
            for name in set(re.findall(r"\bcrate::(\w+)", text)):
                if (name,) in modules and (name,) != me[:1]:
                    graph[me[:1]].add((name,))
        if len(me) >= 1:
            parent = me[:-1]
            names = set(re.findall(r"\bsuper::(\w+)", text))
            for block in re.findall(r"\bsuper::\{([^}]*)\}", text):
                names |= set(re.findall(r"\w+", block))
            for name in names:
                sibling = parent + (name,)
                if sibling in modules and sibling != me:
                    graph.setdefault(me, set()).add(sibling)
    return graph


def cycles(graph) -> list[list[tuple[str, ...]]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    limit = 600
    if "--limit" in sys.argv:
        limit = int(sys.argv[sys.argv.index("--limit") + 1])
    failed = False
    for crate in CRATES:
        src = ROOT / crate / "src"
        if not src.is_dir():
            continue
        for comp in cycles(edges_of(src)):
            names = ", ".join("::".join(m) or "crate" for m in comp)
            print(f"{crate}: module import cycle: {names}")
            failed = True
        for f in sorted(src.rglob("*.rs")):
            _, n = code_of(f)
            if n > limit:
                print(f"{f.relative_to(ROOT)}: {n} lines before its tests (limit {limit})")
                failed = True
    if not failed:
        print("structure: no module import cycles, no file over the limit")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
