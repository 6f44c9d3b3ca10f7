#!/usr/bin/env python3
"""Trim a TLC counterexample: print, per state, the action taken and only
the variables that changed (the first state in full, briefly).

usage: python3 spec/trace.py tlc-output.txt [--vars v1,v2] [--all]
"""
import re
import sys


def parse(text):
    states = []
    cur = None
    for line in text.splitlines():
        m = re.match(r"^State (\d+): (.*)$", line)
        if m:
            cur = {"n": int(m.group(1)), "action": m.group(2), "lines": []}
            states.append(cur)
            continue
        if cur is None:
            continue
        if line.startswith("Error:") or line.startswith("Progress") or re.match(r"^\d+ states generated", line):
            cur = None
            continue
        if line.strip() == "" and cur["lines"] and not cur["lines"][-1].strip():
            continue
        cur["lines"].append(line)
    out = []
    for s in states:
        vs = {}
        name = None
        for line in s["lines"]:
            m = re.match(r"^/\\ (\w+) = (.*)$", line)
            if m:
                name = m.group(1)
                vs[name] = m.group(2)
            elif name and line.strip():
                vs[name] += " " + line.strip()
        for k in vs:
            vs[k] = re.sub(r"\s+", " ", vs[k]).strip()
        out.append((s["n"], s["action"], vs))
    return out


def action_name(a):
    m = re.match(r"<(\w+) line (\d+)", a)
    if m:
        return m.group(1)
    return a


def main():
    args = sys.argv[1:]
    only = None
    show_all = "--all" in args
    if "--vars" in args:
        only = set(args[args.index("--vars") + 1].split(","))
    text = open(args[0]).read()
    states = parse(text)
    prev = {}
    for n, action, vs in states:
        print(f"--- {n}: {action_name(action)}")
        for k in sorted(vs):
            if only and k not in only:
                continue
            if show_all or prev.get(k) != vs[k]:
                if n == 1 and not show_all and k not in ("role", "promised", "pend"):
                    continue
                print(f"    {k} = {vs[k]}")
        prev = vs
    m = re.search(r"^Error: (Invariant \w+ is violated\.|Action property \w+ is violated\.|.*violated.*)$", text, re.M)
    if m:
        print("==> " + m.group(1))


if __name__ == "__main__":
    main()
