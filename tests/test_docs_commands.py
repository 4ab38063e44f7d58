"""Every `spotlake`, `dagster`, `dagster-webserver`, `dagster-daemon`, `make` and `python -m` command quoted in
README.md, docs/*.md and infra/README.md exists as written: a newcomer copies them.

Extraction rule (`quoted_commands`):
- Fenced blocks labelled as shell (```bash, sh, shell, console): each line (backslash continuations joined, a
  quote left open continued on the next lines, `$ ` prompts and trailing `# comments` removed) is split like a
  shell (`;`, `&&`, `||`, `|`, `(`, `)` end a command). A command starts at the first word of the line or after one of
  those operators, after any `NAME=value` assignments, when that word is one of the programs (a path to it too:
  `.venv/bin/spotlake`). A quoted argument that is itself such a command line counts too (`--command "dagster job
  launch ..."`), and so does a `spotlake`/`dagster...` command in a comment (`# a range: dagster job backfill ...`),
  from the program's name on. A program's name elsewhere (`--bucket spotlake`) is an argument, not a command.
- Inline code spans (`...`) outside fenced blocks, and within a line of the other blocks (a layout, output, js):
  the span, its whitespace collapsed, read with the same rule.
- Placeholders `<like this>` become one word; a command with `...` in it is abbreviated, so its options are
  checked but it is not parsed whole.

Checks (`problems`):
- `spotlake`: the subcommand exists, `spotlake <sub> --help` exits 0 (the CLI's own argparse parser, in this
  process), every option used appears in that help, and a command with options parses as written (required
  options, choices). After `spotlake dev --`, the options are `dagster dev`'s and are checked against its help.
- `dagster`, `dagster-webserver`, `dagster-daemon`: the installed command's subcommand path (each word checked
  against the `Commands:` of the `--help` above it), its `--help` exits 0, and every option used appears in it.
  One subprocess per distinct path.
- `make`: every target named is a target of the Makefile; every `NAME=value` names a variable it uses.
- `python -m MODULE` (also `python3`, `.venv/bin/python`): MODULE is importable from the repository.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "infra" / "README.md"]
PROGRAMS = ("spotlake", "dagster", "dagster-webserver", "dagster-daemon", "make", "python", "python3")
OPERATORS = {";", "&&", "||", "|", "&", "(", ")", "$("}
SHELL_BLOCKS = {"bash", "sh", "shell", "console", "zsh"}
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
PLACEHOLDER = re.compile(r"<[^<>\n]+>")
# in a comment, a command starts at a program's name standing as a word (not `make`: English uses it)
COMMENT_COMMAND = re.compile(r"(?<![\w./-])(?:\.venv/bin/)?(?:spotlake|dagster-webserver|dagster-daemon|dagster)\s")
FENCE = re.compile(r"^\s*```\s*([\w+-]*)")
SPAN = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Quoted:
    where: str  # file:line
    words: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.where}: {' '.join(self.words)}"


def _program(word: str) -> str | None:
    name = word.rsplit("/", 1)[-1]
    return name if name in PROGRAMS else None


def _split_comment(line: str) -> tuple[str, str]:
    """(code, comment) of a shell line: `#` starting a word outside quotes begins a comment."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i], line[i + 1 :]
    return line, ""


def _unclosed(code: str) -> bool:
    try:
        _words(code)
    except ValueError:
        return True
    return False


def _words(text: str) -> list[str]:
    lexer = shlex.shlex(PLACEHOLDER.sub("PLACEHOLDER", text), posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    lexer.commenters = ""
    return list(lexer)


def _commands(text: str, where: str) -> list[Quoted]:
    """The commands of one shell line (no comment in it)."""
    try:
        words = _words(text)
    except ValueError as exc:  # unbalanced quotes: only a problem if a command of ours is in it
        return [Quoted(where, ("UNPARSABLE", text, str(exc)))] if COMMENT_COMMAND.search(text + " ") else []
    found, start = [], True
    for i, word in enumerate(words):
        if word in OPERATORS:
            start = True
            continue
        if start and word == "$":
            continue
        if start and ASSIGNMENT.match(word):
            continue
        if start and _program(word):
            end = next((j for j in range(i, len(words)) if words[j] in OPERATORS), len(words))
            found.append(Quoted(where, (_program(word), *words[i + 1 : end])))
        elif " " in word.strip():  # a quoted argument holding a command line of its own
            found.extend(_commands(word, where))
        start = False
    return found


def _from_comment(comment: str, where: str) -> list[Quoted]:
    match = COMMENT_COMMAND.search(comment + " ")
    return _commands(comment[match.start() :], where) if match else []


def quoted_commands(text: str, name: str) -> list[Quoted]:
    """Every command of PROGRAMS quoted in one Markdown text (the rule in this module's docstring)."""
    found: list[Quoted] = []
    prose: list[tuple[int, str]] = []  # (line number, line) outside fenced blocks
    lines = text.splitlines()
    fence: str | None = None
    pending, pending_at = "", 0
    for number, line in enumerate(lines, 1):
        opened = FENCE.match(line)
        if fence is None:
            if opened:
                fence = opened.group(1).lower()
            else:
                prose.append((number, line))
            continue
        if opened:  # the closing fence
            if pending:  # a quote never closed
                found.extend(_commands(pending, f"{name}:{pending_at}"))
            fence, pending, pending_at = None, "", 0
            continue
        where = f"{name}:{number}"
        if fence not in SHELL_BLOCKS:
            for span in SPAN.findall(line):
                found.extend(_commands(" ".join(span.split()), where))
            continue
        if line.rstrip().endswith("\\"):
            pending, pending_at = pending + line.rstrip()[:-1] + " ", pending_at or number
            continue
        line, where = pending + line, f"{name}:{pending_at or number}"
        code, comment = _split_comment(line)
        if _unclosed(code):  # a quoted string goes on over the next lines, as in a shell
            pending, pending_at = line + "\n", pending_at or number
            continue
        pending, pending_at = "", 0
        found.extend(_commands(code, where))
        found.extend(_from_comment(comment, where))
    # inline spans may wrap across lines: search the prose as a whole, remembering where each span starts
    offsets, joined = [], ""
    for number, line in prose:
        offsets.append((len(joined), number))
        joined += line + "\n"
    for match in SPAN.finditer(joined):
        number = max(n for offset, n in offsets if offset <= match.start())
        found.extend(_commands(" ".join(match.group(1).split()), f"{name}:{number}"))
    return found


def documented_commands() -> list[Quoted]:
    return [cmd for path in DOCS for cmd in quoted_commands(path.read_text(), str(path.relative_to(ROOT)))]


# ---- the checks ----


def _options(words: tuple[str, ...] | list[str]) -> list[str]:
    """The options used: `--name` (a value after `=` dropped) and `-x`; a lone `-` or `--` is not one."""
    return [w.split("=", 1)[0] for w in words if re.fullmatch(r"--?[A-Za-z][\w-]*(=.*)?", w)]


def _missing_options(options: list[str], help_text: str) -> list[str]:
    return [o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", help_text)]


def _spotlake_help(argv: list[str]) -> tuple[int, str]:
    """Exit status and output of `spotlake ARGV` parsed by the CLI's parser (parsing only: no command runs)."""
    from spotlake_assets.cli import build_parser

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            build_parser().parse_args(argv)
        except SystemExit as exc:
            return int(exc.code or 0), out.getvalue() + err.getvalue()
    return 0, ""


@functools.cache
def _dagster_help(path: tuple[str, ...]) -> tuple[int, str]:
    """`<path> --help` of the installed Dagster commands (beside this interpreter, as .venv/bin has them)."""
    program = Path(sys.executable).parent / path[0]
    done = subprocess.run([str(program), *path[1:], "--help"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    return done.returncode, done.stdout + done.stderr


def _subcommands(help_text: str) -> set[str]:
    section = help_text.split("\nCommands:\n", 1)
    if len(section) < 2:
        return set()
    return {m.group(1) for m in re.finditer(r"^  (\S+)", section[1], re.MULTILINE)}


def _check_dagster(words: tuple[str, ...]) -> list[str]:
    path, rest = [words[0]], list(words[1:])
    while True:
        code, text = _dagster_help(tuple(path))
        if code != 0:
            last = text.strip().splitlines()[-1:] or [""]
            return [f"`{' '.join(path)} --help` exits {code}: {last[0]}"]
        commands = _subcommands(text)
        if not commands or not rest or rest[0].startswith("-"):
            break
        if rest[0] not in commands:
            return [f"`{' '.join(path)}` has no command {rest[0]!r} (it has {', '.join(sorted(commands))})"]
        path.append(rest.pop(0))
    return [f"`{' '.join(path)} --help` does not list {o}" for o in _missing_options(_options(rest), text)]


def _check_spotlake(words: tuple[str, ...]) -> list[str]:
    args = [w for w in words[1:] if w not in ("...", "…")]
    abbreviated = len(args) != len(words) - 1
    if not args or args[0].startswith("-"):
        code, text = _spotlake_help(["--help"])
        return [f"`spotlake --help` does not list {o}" for o in _missing_options(_options(args), text)]
    ours, passthrough = (args[: args.index("--")], args[args.index("--") + 1 :]) if "--" in args else (args, [])
    code, text = _spotlake_help([ours[0], "--help"])
    if code != 0:
        return [f"`spotlake {ours[0]} --help` exits {code}: {' '.join(text.split())}"]
    problems = [f"`spotlake {ours[0]} --help` does not list {o}" for o in _missing_options(_options(ours), text)]
    if not problems and not abbreviated and _options(ours):
        code, text = _spotlake_help(args)
        if code != 0:
            problems.append(f"does not parse: {' '.join(text.split())}")
    if ours[0] == "dev" and passthrough:  # `spotlake dev -- ARGS` hands ARGS to `dagster dev`
        problems += _check_dagster(("dagster", "dev", *passthrough))
    return problems


@functools.cache
def _makefile() -> tuple[frozenset[str], str]:
    text = (ROOT / "Makefile").read_text()
    targets = {t for line in re.findall(r"^([^\s#=:][^=:]*?)\s*:(?!=)", text, re.MULTILINE) for t in line.split()}
    return frozenset(targets), text


def _check_make(words: tuple[str, ...]) -> list[str]:
    targets, text = _makefile()
    problems = []
    for word in words[1:]:
        if word.startswith("-"):
            continue
        if ASSIGNMENT.match(word):
            name = word.split("=", 1)[0]
            if f"$({name})" not in text:
                problems.append(f"the Makefile uses no variable {name}")
        elif word not in targets:
            problems.append(f"the Makefile has no target {word!r}")
    return problems


def _check_python(words: tuple[str, ...]) -> list[str]:
    if "-m" not in words[:-1]:
        return []
    module = words[words.index("-m") + 1]
    return [] if importlib.util.find_spec(module) else [f"no module {module}"]


def problems(command: Quoted) -> list[str]:
    """What is wrong with one quoted command; empty when it exists as written."""
    program = command.words[0]
    if program == "UNPARSABLE":
        return [f"not a shell command line: {command.words[1]!r} ({command.words[2]})"]
    if program == "spotlake":
        return _check_spotlake(command.words)
    if program == "make":
        return _check_make(command.words)
    if program in ("python", "python3"):
        return _check_python(command.words)
    return _check_dagster(command.words)


# ---- the tests ----


def test_the_extraction_finds_the_commands_a_reader_would_copy() -> None:
    text = """
Run `make lock LOCK_ARGS=--upgrade` or `spotlake
history --instance-type D2s_v3 --start 2026-11-28 --end 2026-11-28`; `dagster.yaml` and `spotlake_assets/` are files.

```bash
SPOTLAKE_ENV=prod .venv/bin/spotlake import-legacy --bucket <legacy bucket> \\
  --end 2026-10-31-23:50 --partitions 4320   # once
aws s3api put-bucket-logging --bucket spotlake --bucket-logging-status '{
  "LoggingEnabled": {}}'
aws ecs execute-command --command "dagster job launch -j azure_collect_10min --tags '{\\"a\\": \\"b\\"}'"
# a range: dagster job backfill -j azure_collect_10min --from A --to B
cd build && make test   # builds .venv; make sure
```

```js
const run = "spotlake run-local"
```
"""
    found = [(q.where, q.words) for q in quoted_commands(text, "doc.md")]
    assert found == [
        ("doc.md:6", ("spotlake", "import-legacy", "--bucket", "PLACEHOLDER", "--end", "2026-10-31-23:50",
                      "--partitions", "4320")),
        ("doc.md:10", ("dagster", "job", "launch", "-j", "azure_collect_10min", "--tags", '{"a": "b"}')),
        ("doc.md:11", ("dagster", "job", "backfill", "-j", "azure_collect_10min", "--from", "A", "--to", "B")),
        ("doc.md:12", ("make", "test")),
        ("doc.md:2", ("make", "lock", "LOCK_ARGS=--upgrade")),
        ("doc.md:2", ("spotlake", "history", "--instance-type", "D2s_v3", "--start", "2026-11-28", "--end",
                      "2026-11-28")),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("words", "complaint"),
    [
        (("dagster", "asset", "backfill"), "`dagster asset` has no command 'backfill'"),
        (("dagster", "job", "backfill", "--no-such"), "`dagster job backfill --help` does not list --no-such"),
        (("dagster-daemon", "liveness-checks"), "`dagster-daemon` has no command 'liveness-checks'"),
        (("spotlake", "run-local", "--no-such-flag"), "`spotlake run-local --help` does not list --no-such-flag"),
        (("spotlake", "backfill"), "`spotlake backfill --help` exits 2"),
        (("spotlake", "run-local", "--scale", "huge"), "does not parse: "),
        (("spotlake", "history", "--region", "*"), "does not parse: "),  # --instance-type, --start, --end required
        (("spotlake", "dev", "--", "--no-such-flag"), "`dagster dev --help` does not list --no-such-flag"),
        (("make", "no-such-target"), "the Makefile has no target 'no-such-target'"),
        (("make", "lock", "NO_SUCH_VAR=1"), "the Makefile uses no variable NO_SUCH_VAR"),
        (("python", "-m", "benchmarks.no_such_bench"), "no module benchmarks.no_such_bench"),
    ],
)
def test_the_checker_refuses_commands_that_do_not_exist(words: tuple[str, ...], complaint: str) -> None:
    found = problems(Quoted("doc.md:1", words))
    assert any(p.startswith(complaint) for p in found), found


def test_every_quoted_command_exists_as_written() -> None:
    commands = documented_commands()
    # the extraction must keep finding what the docs quote, or this test would pass on nothing
    quoted = {" ".join(c.words[:3]) for c in commands}
    for expected in ("make run", "dagster job backfill", "spotlake run-local --end", "dagster-daemon liveness-check"):
        assert any(q.startswith(expected) for q in quoted), (expected, sorted(quoted))
    wrong = [f"{command}\n    {p}" for command in commands for p in problems(command)]
    assert not wrong, "quoted commands that do not exist as written:\n" + "\n".join(wrong)
