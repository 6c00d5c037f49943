#!/usr/bin/env python3
"""A strict checker for Prometheus' text exposition format (version 0.0.4),
for the tests of `pgkeep metrics`: what node_exporter's textfile collector
would choke on, and a little more (every family documented and typed).

usage: promcheck.py FILE   (exit 0 and a summary, or 1 and the problems)
"""
import math
import re
import sys

METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


class Bad(Exception):
    pass


def parse_value(text, what):
    if text in ("NaN", "+Inf", "-Inf", "Inf"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
        raise Bad("%s %r is not a float" % (what, text))
    return float(text)


def parse_label_value(s, i):
    """s[i] is the opening quote; returns (value, index after the closing quote)."""
    out = []
    i += 1
    while i < len(s):
        c = s[i]
        if c == "\\":
            if i + 1 >= len(s) or s[i + 1] not in '\\"n':
                raise Bad("bad escape in a label value")
            out.append({"\\": "\\", '"': '"', "n": "\n"}[s[i + 1]])
            i += 2
        elif c == '"':
            return "".join(out), i + 1
        elif c == "\n":
            raise Bad("newline inside a label value")
        else:
            out.append(c)
            i += 1
    raise Bad("unterminated label value")


def parse_sample(line):
    m = METRIC.match(line)
    if not m:
        raise Bad("no metric name")
    name, i, labels = m.group(0), m.end(), {}
    if i < len(line) and line[i] == "{":
        i += 1
        while True:
            if i < len(line) and line[i] == "}":
                i += 1
                break
            lm = LABEL.match(line, i)
            if not lm:
                raise Bad("bad label name at column %d" % (i + 1))
            lname = lm.group(0)
            if lname.startswith("__"):
                raise Bad("label name %s is reserved" % lname)
            if lname in labels:
                raise Bad("label %s twice" % lname)
            i = lm.end()
            if line[i:i + 2] != '="':
                raise Bad("label %s lacks =\"value\"" % lname)
            labels[lname], i = parse_label_value(line, i + 1)
            if i < len(line) and line[i] == ",":
                i += 1
            elif i < len(line) and line[i] == "}":
                continue
            else:
                raise Bad("expected , or } after label %s" % lname)
    rest = line[i:]
    if not rest.startswith(" "):
        raise Bad("no space before the value")
    parts = rest.split()
    if len(parts) not in (1, 2):
        raise Bad("expected a value and an optional timestamp")
    value = parse_value(parts[0], "value")
    if len(parts) == 2 and not re.fullmatch(r"-?\d+", parts[1]):
        raise Bad("timestamp %r is not an integer" % parts[1])
    return name, labels, value


def family_of(name, types):
    if name in types:
        return name
    for fam, t in types.items():
        for suf in SUFFIXES.get(t, ()):
            if name == fam + suf:
                return fam
    return name


def check(text):
    problems, types, helps, seen, done_families = [], {}, set(), set(), set()
    sampled = set()
    current, samples = None, 0
    if text and not text.endswith("\n"):
        problems.append("the last line does not end with a newline")
    for n, line in enumerate(text.split("\n")[:-1] if text.endswith("\n") else
                             text.split("\n"), 1):
        try:
            if not line.strip():
                continue
            if line.startswith("#"):
                parts = line.split(None, 3)
                if len(parts) >= 2 and parts[1] in ("HELP", "TYPE"):
                    if len(parts) < 3 or not METRIC.fullmatch(parts[2]):
                        raise Bad("%s without a valid metric name" % parts[1])
                    fam = parts[2]
                    if fam in sampled:
                        raise Bad("%s for %s after its samples" % (parts[1], fam))
                    if parts[1] == "HELP":
                        if fam in helps:
                            raise Bad("second HELP for %s" % fam)
                        helps.add(fam)
                        doc = parts[3] if len(parts) > 3 else ""
                        if re.search(r"\\[^\\n]", doc.replace("\\\\", "")):
                            raise Bad("bad escape in HELP of %s" % fam)
                    else:
                        if fam in types:
                            raise Bad("second TYPE for %s" % fam)
                        if len(parts) < 4 or parts[3] not in TYPES:
                            raise Bad("TYPE of %s is not one of %s" % (fam, sorted(TYPES)))
                        types[fam] = parts[3]
                continue
            name, labels, value = parse_sample(line)
            fam = family_of(name, types)
            if fam not in types:
                raise Bad("sample %s before (or without) its TYPE line" % name)
            if fam not in helps:
                raise Bad("sample %s without a HELP line" % name)
            if fam != current:
                if fam in done_families:
                    raise Bad("family %s is not contiguous" % fam)
                if current is not None:
                    done_families.add(current)
                current = fam
            if types[fam] == "counter" and value < 0:
                raise Bad("counter %s is negative" % name)
            if math.isnan(value) and types[fam] in ("counter",):
                raise Bad("counter %s is NaN" % name)
            key = (name, tuple(sorted(labels.items())))
            if key in seen:
                raise Bad("duplicate series %s%s" % (name, dict(labels)))
            seen.add(key)
            sampled.add(fam)
            samples += 1
        except Bad as e:
            problems.append("line %d: %s: %r" % (n, e, line))
    return problems, len(types), samples


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1], "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        print("not UTF-8")
        return 1
    problems, families, samples = check(text)
    if problems:
        for p in problems:
            print(p)
        return 1
    print("ok: %d families, %d samples" % (families, samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
