#!/usr/bin/env python3
"""Check that the Grafana dashboard and the alert rules shipped in contrib/
ask only for metrics that `pgkeep metrics` really writes.

usage: promnames.py METRICS_FILE DASHBOARD_JSON RULES_YML [RULES_OUT]

Every `pgkeep_*` name in a dashboard query or a rule expression must have at
least one sample in METRICS_FILE (a live output, not only a HELP line), and
the dashboard must name at least one metric.  With RULES_OUT, the dashboard's
queries are also written there as recording rules, so that
`promtool check rules RULES_OUT` checks their PromQL syntax.
Exit 0 with a summary, or 1 naming each missing metric and where it is used.
"""
import json
import re
import sys

NAME = re.compile(r"\bpgkeep_[a-z0-9_]+\b")


def sampled(path):
    names = set()
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


def dashboard_exprs(path):
    with open(path) as f:
        dash = json.load(f)
    for panel in dash.get("panels", []):
        for t in panel.get("targets", []):
            yield "panel %r" % panel.get("title"), t["expr"]
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if q:
            yield "variable %r" % v.get("name"), q


def rule_exprs(path):
    # The rules file is YAML; its expressions are the `expr:` lines.
    with open(path) as f:
        for n, line in enumerate(f, 1):
            m = re.match(r"\s*expr:\s*(.+)$", line)
            if m:
                yield "%s:%d" % (path, n), m.group(1)


def main():
    if len(sys.argv) not in (4, 5):
        print(__doc__.strip().splitlines()[3], file=sys.stderr)
        return 2
    have = sampled(sys.argv[1])
    dash = list(dashboard_exprs(sys.argv[2]))
    used = dash + list(rule_exprs(sys.argv[3]))
    missing = []
    for where, expr in used:
        for name in NAME.findall(expr):
            if name not in have:
                missing.append("%s: %s has no sample in %s" % (where, name, sys.argv[1]))
    dash_names = {n for _, e in dash for n in NAME.findall(e)}
    if not dash_names:
        missing.append("%s: no query names a pgkeep metric" % sys.argv[2])
    if len(sys.argv) == 5:
        with open(sys.argv[4], "w") as out:
            out.write("groups:\n  - name: dashboard\n    rules:\n")
            for i, (_, expr) in enumerate(e for e in dash if "label_values" not in e[1]):
                out.write("      - record: dashboard_query_%d\n        expr: %s\n"
                          % (i, json.dumps(expr.replace("$instance", ".*"))))
    for m in missing:
        print(m)
    if missing:
        return 1
    print("%d expressions, %d metric names, all sampled" %
          (len(used), len({n for _, e in used for n in NAME.findall(e)})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
