#!/usr/bin/env python3
"""What the tests ask for by name against what the install step provides.

    check-needs.py [--list]

Reads the shell of the test suites (t/**/*.bats, t/*.bash) and of the
demo, and takes the first word of every simple command, after the
wrappers that run another command (run, as_pg, runuser -u USER --,
timeout N, env, exec, ...).  Words that are shell builtins or keywords,
functions defined in those files, bats' own helpers, or programs of this
checkout are left out; every other word must be a `command` line of
dev/test-needs.  Every `command` line names what provides it: a
package of dev/debian-packages, or one of the install step's own
sources (essential, plakar, go, npm).  Every locale the tests name must be
a `locale` line.  Exit 1 with one line per problem.  --list prints the
commands found, one a line.
"""
import glob
import os
import re
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = sorted(glob.glob(os.path.join(TOP, "t", "**", "*.bats"), recursive=True)
               + glob.glob(os.path.join(TOP, "t", "**", "*.bash"), recursive=True)
               + [os.path.join(TOP, "dev", "demo.bash")])
OWN_SOURCES = {"essential", "plakar", "go", "npm"}

SHELL_WORDS = set("""
if then else elif fi for while until do done case esac in function return
local export declare readonly unset shift set trap wait cd pwd echo printf
read test true false exit eval source break continue command type alias
kill let printf getopts umask ulimit hash times exec builtin shopt pushd
popd dirs disown jobs fg bg mapfile readarray compgen complete caller
""".split())
BATS_WORDS = set("""
run load skip fail bats_require_minimum_version setup teardown setup_file
teardown_file setup_suite teardown_suite assert refute assert_equal
assert_output refute_output assert_line refute_line assert_success
assert_failure assert_not_equal assert_regex refute_regex
""".split())
# Words after which the next word is the command that runs.
WRAPPERS = {"run", "as_pg", "as_postgres", "exec", "env", "timeout",
            "nohup", "command", "setsid", "time", "!", "then", "do",
            "else", "elif", "if", "while", "until", "xargs", "sudo",
            "runuser", "faketime", "setpriv", "nice"}
SPLIT = re.compile(r"\|\||&&|[|;&(){}`]|\$\(")
HEREDOC = re.compile(r"<<-?\s*['\"]?([A-Za-z_]+)['\"]?")
NAME = re.compile(r"^[a-z][a-z0-9_.+-]*$")
LOCALE = re.compile(r"\b([a-z]{2}_[A-Z]{2}\.UTF-8)\b")


def defined_functions(text):
    return set(re.findall(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(\)\s*\{?",
                          text, re.M))


ARITH = re.compile(r"\$\(\((?:[^()]|\([^()]*\))*\)\)")


VARIABLE = re.compile(r"\$\{[^}]*\}")


def code_of(text):
    """The commands of a shell text, one a line, quoted data blanked: a
    quoted word becomes "Q", a newline inside quotes a space.  What
    "$(...)" runs, quoted or not, is a line of its own; the command
    around it goes on.  Heredoc bodies, comments and $((...)) are
    dropped."""
    text = VARIABLE.sub("V", ARITH.sub("0", text))
    done = []               # finished lines of inner commands
    stack = []              # (outer buffer, its quote, its parens)
    out, quote, parens = [], None, 0
    i, n, heredoc = 0, len(text), None
    while i < n:
        c = text[i]
        if heredoc and (i == 0 or text[i - 1] == "\n"):
            j = text.find("\n", i)
            j = n if j == -1 else j
            if text[i:j].strip() == heredoc:
                heredoc = None
            i = j + 1
            out.append("\n")
            continue
        if quote is None or (quote == '"' and text.startswith("$(", i)):
            if text.startswith("$(", i):
                stack.append((out, quote, parens))
                out, quote, parens = [], None, 0
                i += 2
                continue
        if quote is None:
            if c == "#" and (i == 0 or text[i - 1] in " \t\n;"):
                j = text.find("\n", i)
                i = n if j == -1 else j
                continue
            m = HEREDOC.match(text, i)
            if m:
                heredoc = m.group(1)
                out.append(" ")
                i = m.end()
                continue
            if c == "\\" and i + 1 < n:
                out.append(" " if text[i + 1] == "\n" else text[i + 1])
                i += 2
                continue
            if c in "'\"":
                quote = c
                out.append("Q")
            elif c == "(":
                parens += 1
                out.append(c)
            elif c == ")" and parens == 0 and stack:
                done.append("".join(out))
                out, quote, parens = stack.pop()
                out.append("Q")
            else:
                if c == ")":
                    parens = max(parens - 1, 0)
                out.append(c)
            i += 1
            continue
        if c == quote:
            quote = None
        elif quote == '"' and c == "\\":
            i += 1
        elif c == "\n":
            out.append(" ")
        i += 1
    while stack:
        done.append("".join(out))
        out = stack.pop()[0]
    return "\n".join(["".join(out)] + done)


# An array assignment, NAME=(words), over lines; a case label, pattern).
ARRAY = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\+?=\([^()]*\)")
CASE_LABEL = re.compile(r"^\s*[^\s()|;]+(\s*\|\s*[^\s()|;]+)*\)")


def commands_of(text):
    """The first word of each simple command."""
    found = set()
    for line in ARRAY.sub("V", code_of(text)).splitlines():
        if line.lstrip().startswith("@test"):
            continue
        line = CASE_LABEL.sub(" ", line)
        for part in SPLIT.split(line):
            words = part.split()
            while words:
                w = words.pop(0)
                if "=" in w and not w.startswith("-") and NAME.match(w.split("=")[0].lower()):
                    continue                # VAR=value before a command
                if w in ("-0", "-1", "-2", "-127") or re.match(r"^-\d+$", w):
                    continue                # run -N
                if w.startswith("--separate") or w == "--keep-empty-lines":
                    continue
                if w in ("runuser", "sudo"):
                    # runuser -u USER -- CMD, sudo -u USER CMD
                    while words and words[0] != "--" and words[0].startswith("-"):
                        words.pop(0)
                        if words:
                            words.pop(0)
                    if words and words[0] == "--":
                        words.pop(0)
                    found.add(w)
                    continue
                if w == "timeout":
                    while words and re.match(r"^-|^\d", words[0]):
                        words.pop(0)
                    found.add(w)
                    continue
                if w in WRAPPERS:
                    if w not in SHELL_WORDS and w not in BATS_WORDS and w not in (
                            "as_pg", "as_postgres", "!", "then", "do", "else",
                            "elif", "if", "while", "until", "run", "exec",
                            "command"):
                        found.add(w)
                    continue
                found.add(w)
                break
    return found


def main():
    texts = {f: open(f, encoding="utf-8").read() for f in FILES}
    functions = set()
    for t in texts.values():
        functions |= defined_functions(t)
    # the programs of this checkout: the Makefile's PROGS and SCRIPTS,
    # and its test programs
    ours = {"importer_test", "grpc_echo"}
    for line in open(os.path.join(TOP, "Makefile")):
        if re.match(r"(PROGS|SCRIPTS) = ", line):
            ours |= set(line.split("=", 1)[1].split())
    words = set()
    for t in texts.values():
        words |= commands_of(t)
    words = {w for w in words if NAME.match(w)
             and w not in SHELL_WORDS and w not in BATS_WORDS
             and not w.startswith(("assert_", "refute_", "bats_"))
             and w not in functions and w not in ours}
    if "--list" in sys.argv[1:]:
        print("\n".join(sorted(words)))
        return 0

    packages = set(open(os.path.join(TOP, "dev", "debian-packages")).read().split())
    needs, locales, problems = {}, set(), []
    for n, line in enumerate(open(os.path.join(TOP, "dev", "test-needs")), 1):
        f = line.split("#")[0].split()
        if not f:
            continue
        if f[0] == "command" and len(f) == 3:
            needs[f[1]] = f[2]
            if f[2] not in packages and f[2] not in OWN_SOURCES:
                problems.append(f"dev/test-needs:{n}: {f[1]} is provided "
                                f"by {f[2]}, which dev/debian-packages "
                                "does not list")
        elif f[0] == "locale" and len(f) == 2:
            locales.add(f[1])
        else:
            problems.append(f"dev/test-needs:{n}: not 'command NAME "
                            "PROVIDER' or 'locale NAME'")
    for w in sorted(words - needs.keys()):
        problems.append(f"the tests run {w}, which dev/test-needs does "
                        "not list (nor so the install step)")
    for f, t in texts.items():
        for loc in sorted(set(LOCALE.findall(t)) - locales):
            problems.append(f"{os.path.relpath(f, TOP)} asks for the "
                            f"locale {loc}, which dev/test-needs does "
                            "not list")
    for p in problems:
        print("check-needs:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
