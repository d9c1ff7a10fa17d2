#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""House-style checks run as a CTest (docs/testing.md, "tidy"; ../shared/style.md rules 3-5).

Checks every C++ source and header under the project's source folders:
  - the first line is the SPDX line; a .cpp has at most 1000 lines (rule 3: "1000 means
    split it"); headers hold `#pragma once`, no `using namespace` at namespace scope and no
    <caf/all.hpp>;
  - no line over 100 columns, no tab, no trailing whitespace;
  - function length in the product's code (not tests, whose cases read as scenarios): a
    function over 60 lines fails unless tests/tidy/long_functions.txt lists it, with the length
    it had when the check came; a listed one fails when it grows past that length. So nothing
    new creeps past 60 and nothing long grows, while the ones listed are shortened over time
    (and their lines lowered or removed: --report prints the list as it stands).

Usage: tidy.py ROOT [--report] | tidy.py --self-test. Exit status 0 when clean, 1 with one
line per problem (file:line: what).
"""
import os
import re
import sys

FOLDERS = ["actors", "protocol", "config", "cluster", "apps", "tests", "examples"]
# Where function length is checked.
PRODUCT = ("actors", "protocol", "config", "cluster", "apps", "examples")
LIMIT = 60
FILE_LIMIT = 1000
BASELINE = os.path.join("tests", "tidy", "long_functions.txt")
COLUMNS = 100
SPDX = "// SPDX-License-Identifier: Apache-2.0"
RAW = "\x01"

NOT_A_FUNCTION = re.compile(
    r"^\s*(namespace\b|struct\b|class\b|union\b|enum\b|extern\b|template\s*<[^>]*>\s*(struct|class)\b)"
    r"|=\s*\{?$|^\s*(if|for|while|switch|do|else|try|catch)\b")


def strip_code(text):
    """The text with comments, string and character literals blanked (newlines kept), so that
    braces inside them do not count."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            if not m:
                out.append(c)
                i += 1
                continue
            end = ")" + m.group(1) + '"'
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            # RAW marks the lines of a raw string (an embedded page, a script): their width is
            # the text's own.
            out.append("".join(ch if ch == "\n" else RAW for ch in text[i:j]))
            i = j
        elif c in "\"'":
            if c == "'" and i > 0 and text[i - 1].isalnum():
                out.append(c)  # a digit separator (1'000)
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(" " * (j - i))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def function_name(head):
    """The name a function definition's head declares: the identifier (with its qualifiers and
    operator, if any) before the parameter list's opening parenthesis."""
    head = re.sub(r"\s+", " ", head)
    depth = 0
    for i, ch in enumerate(head):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "(" and depth == 0:
            m = re.search(r"((?:[A-Za-z_~][\w]*::)*(?:operator\s*\S+?|~?[A-Za-z_]\w*))\s*$", head[:i])
            if m:
                return m.group(1).replace(" ", "")
            return "?"
    return "?"


def functions(code):
    """(first line, length in lines, name) of each function body defined at namespace or class
    scope: from the line of its opening brace to the line of its closing brace."""
    lines = code.split("\n")
    found = []
    stack = []  # per open brace: is it a function body?
    pending = ""  # the statement text since the last ; { or } at this level
    for no, line in enumerate(lines, 1):
        for ch in line:
            if ch == "{":
                head = pending.strip()
                in_function = any(entry[0] == "function" for entry in stack)
                is_function = (not in_function and head.endswith(")") or re.search(
                    r"\)\s*(const|noexcept|override|final|mutable|->[^;{}]*)*\s*$", head)) \
                    and "(" in head and not NOT_A_FUNCTION.search(head)
                kind = "function" if is_function and not in_function else "block"
                stack.append((kind, no, function_name(head) if kind == "function" else ""))
                pending = ""
            elif ch == "}":
                if stack:
                    kind, start, name = stack.pop()
                    if kind == "function":
                        found.append((start, no - start + 1, name))
                pending = ""
            elif ch == ";":
                pending = ""
            else:
                pending += ch
        pending += " "
    return found


def read_baseline(root):
    """{(file, name, ordinal): length} from the list of functions long when the check came."""
    listed = {}
    path = os.path.join(root, BASELINE)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    where, name, length = line.split()
                    file, _, ordinal = where.partition("#")
                    listed[(file, name, int(ordinal or 1))] = int(length)
    return listed


def check_file(path, rel, problems, report, listed):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lines = text.split("\n")
    if not lines or lines[0] != SPDX:
        problems.append(f"{rel}:1: the first line is not `{SPDX}`")
    header = path.endswith(".hpp")
    code = strip_code(text)
    if header:
        if "#pragma once" not in text:
            problems.append(f"{rel}:1: a header without #pragma once")
        if "<caf/all.hpp>" in code or '"caf/all.hpp"' in text:
            problems.append(f"{rel}:1: includes caf/all.hpp")
        for no, line in enumerate(code.split("\n"), 1):
            # Literal namespaces (std::chrono_literals) are the usual exception.
            if re.match(r"^using namespace\b", line) and not re.search(r"_literals\s*;", line):
                problems.append(f"{rel}:{no}: `using namespace` at a header's file scope")
    code_lines = code.split("\n")
    for no, line in enumerate(lines, 1):
        if len(line) > COLUMNS and RAW not in code_lines[no - 1]:
            problems.append(f"{rel}:{no}: {len(line)} columns (at most {COLUMNS})")
        if "\t" in line:
            problems.append(f"{rel}:{no}: a tab")
        if line != line.rstrip():
            problems.append(f"{rel}:{no}: trailing whitespace")
    if len(lines) > FILE_LIMIT and path.endswith(".cpp"):
        problems.append(f"{rel}:1: {len(lines)} lines: split it (a .cpp over {FILE_LIMIT})")
    if not rel.startswith(PRODUCT):
        return
    seen = {}
    for start, length, name in functions(code):
        seen[name] = seen.get(name, 0) + 1
        key = (rel, name, seen[name])
        if length <= LIMIT:
            continue
        where = rel + ("" if seen[name] == 1 else f"#{seen[name]}")
        report.append(f"{where} {name} {length}")
        allowed = listed.get(key)
        if allowed is None:
            problems.append(f"{rel}:{start}: {name}: {length} lines, over {LIMIT}: shorten it")
        elif length > allowed:
            problems.append(f"{rel}:{start}: {name}: {length} lines, grew past the {allowed} it "
                            f"had when {BASELINE} listed it: shorten it")


def self_test():
    """The parser on small cases (tidy.py --self-test, a CTest beside the check itself)."""
    body = "\n".join(f"    x += {i};" for i in range(70))
    src = (SPDX + "\n#include <x>\nnamespace a::b {\n"
           "struct s {\n    int f() const {\n        return 1;\n    }\n};\n"
           "template <class T>\nauto s::g(T t) -> int {\n" + body + "\n"
           "    auto l = [&] { if (x) { return '}'; } return '{'; };\n"
           "    const char* p = \"{{{\"; // }\n    return 0;\n}\n"
           "int h() {\n    auto raw = R\"x(\n} { )\" }\n)x\";\n    return 2;\n}\n"
           "bool operator==(const s&, const s&) {\n    return true;\n}\n"
           "const int table[] = {\n    1, 2,\n};\n} // namespace a::b\n")
    got = functions(strip_code(src))
    names = [(name, length) for _, length, name in got]
    want = [("f", 3), ("s::g", 75), ("h", 6), ("operator==", 3)]
    if names != want:
        print(f"self-test: functions {names}, wanted {want}")
        return 1
    if RAW not in strip_code(src).split("\n")[86]:
        print("self-test: a raw string's line is not marked")
        return 1
    print("tidy self-test: ok")
    return 0


def main():
    if "--self-test" in sys.argv:
        return self_test()
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    root = sys.argv[1]
    problems, report = [], []
    listed = read_baseline(root)
    for folder in FOLDERS:
        for base, dirs, files in os.walk(os.path.join(root, folder)):
            dirs.sort()
            for name in sorted(files):
                if name.endswith((".cpp", ".hpp")):
                    path = os.path.join(base, name)
                    check_file(path, os.path.relpath(path, root), problems, report, listed)
    if "--report" in sys.argv:
        print(f"# functions over {LIMIT} lines: {len(report)}")
        print("\n".join(report))
    for p in problems:
        print(p)
    print(f"tidy: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
