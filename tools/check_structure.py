#!/usr/bin/env python3
"""Structure rules of issue 22, checked on src/ (tests and generated WGSL aside):

- no source file over 800 lines;
- no function over 100 lines outside `#[cfg(test)]` modules (rustfmt puts a function's
  closing brace at its own indentation, which is how its end is found);
- imports only downwards: each top-level module has a floor (FLOORS below) and a `use
  crate::<m>` or `crate::<m>::` path may name only a module on a lower floor, or its own.

Prints every breach and exits 1 if there is one; `tests/structure.rs` runs it.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MAX_FILE, MAX_FN = 800, 100

# Lowest first: each floor imports only from floors below it (the graph is acyclic, and this
# is its order: persistence and plots sit above training, reports and the CLI on top).
FLOORS = [
    {"shapes", "fsio", "data"},
    {"optim", "model"},
    {"cpu", "gpu", "fold"},
    {"metric", "engine"},
    {"device", "train", "bench", "html"},
    {"checkpoint", "plot"},
    {"classify", "export"},
    {"gallery", "serve", "eval"},
    {"cli"},
    {"main", "lib"},
]

# gpu/'s own floors, lowest first (gpu/mod.rs says what each holds).
GPU_FLOORS = [{"uniform"}, {"pipeline", "autotune"}, {"tensor"}, {"context"}, {"timer", "ops"}]
GPU_USE = re.compile(r"crate::gpu::(\w+)")


def floor(module):
    for i, f in enumerate(FLOORS):
        if module in f:
            return i
    return None


def rust_files():
    for d, _, files in os.walk(os.path.join(ROOT, "src")):
        for f in sorted(files):
            if f.endswith(".rs"):
                yield os.path.join(d, f)


def top_module(path):
    rel = os.path.relpath(path, os.path.join(ROOT, "src"))
    head = rel.split(os.sep)[0]
    return head[:-3] if head.endswith(".rs") else head


FN = re.compile(r"^(\s*)(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")
USE = re.compile(r"crate::(\w+)")


def check(path, breaches):
    lines = open(path, encoding="utf-8").read().split("\n")
    rel = os.path.relpath(path, ROOT)
    if len(lines) - 1 > MAX_FILE:
        breaches.append(f"{rel}: {len(lines) - 1} lines (at most {MAX_FILE})")
    me = top_module(path)
    in_tests = None  # indentation of the `mod tests {` being skipped
    for i, line in enumerate(lines):
        if in_tests is not None:
            if line.startswith(in_tests + "}"):
                in_tests = None
            continue
        if line.strip() == "#[cfg(test)]" and i + 1 < len(lines) and "mod " in lines[i + 1]:
            in_tests = re.match(r"^\s*", lines[i + 1]).group(0)
            continue
        if not line.lstrip().startswith("//"):
            for m in USE.finditer(line):
                other = m.group(1)
                if other in ("Error", "Result") or other == me:
                    continue
                fo, fm = floor(other), floor(me)
                if fo is None or fm is None:
                    breaches.append(f"{rel}:{i + 1}: module {other if fo is None else me} has no floor")
                elif fo >= fm:
                    breaches.append(f"{rel}:{i + 1}: {me} (floor {fm}) imports {other} (floor {fo})")
        if me == "gpu" and not line.lstrip().startswith("//"):
            sub = os.path.relpath(path, os.path.join(ROOT, "src", "gpu")).split(os.sep)[0]
            sub = sub[:-3] if sub.endswith(".rs") else sub
            for m in GPU_USE.finditer(line):
                fo = next((k for k, f in enumerate(GPU_FLOORS) if m.group(1) in f), None)
                fm = next((k for k, f in enumerate(GPU_FLOORS) if sub in f), None)
                if fo is not None and fm is not None and fo >= fm and m.group(1) != sub:
                    breaches.append(f"{rel}:{i + 1}: gpu::{sub} imports gpu::{m.group(1)}")
        m = FN.match(line)
        if m and not line.rstrip().endswith(";"):
            indent, name = m.group(1), m.group(7)
            for j in range(i + 1, len(lines)):
                if lines[j] == indent + "}":
                    if j - i + 1 > MAX_FN:
                        breaches.append(f"{rel}:{i + 1}: fn {name} is {j - i + 1} lines (at most {MAX_FN})")
                    break


def main():
    breaches = []
    for p in rust_files():
        check(p, breaches)
    # Known debt, one "path: what" per line (line numbers dropped so edits do not churn it):
    # a breach not listed fails, and a listed one that is gone must be taken off the list.
    debt_path = os.path.join(ROOT, "tools", "structure_debt.txt")
    debt = set()
    if os.path.exists(debt_path):
        debt = {l.strip() for l in open(debt_path) if l.strip() and not l.startswith("#")}
    keys = {re.sub(r":\d+:", ":", b) for b in breaches}
    new = sorted(k for k in keys if k not in debt)
    gone = sorted(debt - keys)
    for b in new:
        print("breach:", b)
    for b in gone:
        print("fixed, take it off tools/structure_debt.txt:", b)
    print(f"structure: {len(keys)} known breaches left in tools/structure_debt.txt" if keys else
          "structure: no file over 800 lines, no function over 100, no upward import")
    if new or gone:
        sys.exit(1)


if __name__ == "__main__":
    main()
