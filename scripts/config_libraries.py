"""Would pydantic v2 or msgspec make motiond/config.py smaller and clearer, at what cost?

Measures, for the camera sections of the config (name, motion, record with overlay: the
numeric bounds, choices, units and cross-field checks that make up most of config.py), written
three ways: today's hand-written reader (motiond/config.py), pydantic v2 models and msgspec
Structs (scripts/config_prototypes/), each giving today's messages (``file: key.path: reason``):

- code: lines of code (no blank lines, comments or docstrings) for those sections, and for the
  machinery each needs (today's ``_Section`` reader; the prototypes' error translation);
- messages: each way's message for the same bad documents, side by side;
- start-up: CPU time (interpreter start included) and RSS of a fresh ``python -c 'import ...'``
  (median of runs), for the libraries alone, for each config module, and for the whole daemon
  for scale;
- validation: time to validate a four-camera document (median).

Needs the two libraries (they are not motiond dependencies)::

    .venv/bin/pip install pydantic msgspec
    .venv/bin/python -m scripts.config_libraries            # about a minute
"""

from __future__ import annotations

import argparse
import ast
import io
import statistics
import subprocess
import sys
import time
import tokenize
from collections.abc import Callable, Iterable
from pathlib import Path

from motiond.config import ConfigError, parse_config
from scripts.config_prototypes import with_msgspec, with_pydantic

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "motiond" / "config.py"
PROTOTYPES = REPO / "scripts" / "config_prototypes"

# The parts of motiond/config.py the prototypes replace.
TODAY_SECTIONS = ["MotionConfig", "OverlayConfig", "RecordConfig", "_read_motion", "_read_record"]
TODAY_SECTIONS += ["_read_camera", "CameraConfig"]
TODAY_MACHINERY = ["_KeyError", "_Section", "_type_name"]

BAD_DOCUMENTS = [
    "motion: {pixel_threshold: 300}",
    "motion: {pixel_threshold: abc}",
    "motion: {threshold: 2}",
    "motion: {blur: 4}",
    "motion: {lightswitch: 0.001}",
    "motion: {warmup: 2h}",
    "record: {preset: turbo}",
    "record: {crf: 55}",
    "record: {overlay: {name: yes please}}",
    "record: {pre_roll: 5 apples}",
    "record: {bogus: 1}",
    "record: {max_bytes: 3 apples}",
]
GOOD_DOCUMENT = "cameras:\n" + "".join(
    f"  - name: cam{i}\n    source: demo\n"
    "    motion: {pixel_threshold: 25, threshold: 0.004, warmup: 2s, blur: 7}\n"
    "    record: {preset: ultrafast, crf: 28, pre_roll: 1500ms, max_bytes: 20GB, "
    "overlay: {timestamp: true}}\n"
    for i in range(4)
)

IMPORTS = {
    "python + yaml (baseline)": "import yaml",
    "pydantic": "import yaml, pydantic",
    "msgspec": "import yaml, msgspec",
    "motiond.config (today)": "import motiond.config",
    "pydantic prototype": "import scripts.config_prototypes.with_pydantic",
    "msgspec prototype": "import scripts.config_prototypes.with_msgspec",
    "the daemon (motiond.daemon)": "import motiond.daemon",
}
# CPU time, not wall time: on a shared machine the wall clock mostly measures the neighbours.
# The interpreter's own start is included (getrusage counts from the process start).
MEASURE = """
import resource
{statement}
usage = resource.getrusage(resource.RUSAGE_SELF)
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
print(usage.ru_utime + usage.ru_stime, int(status["VmRSS"].split()[0]) / 1024)
"""


def code_lines(source: str) -> int:
    """Lines holding code: no blank lines, comments or docstrings."""
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                docstrings.update(range(body[0].lineno, (body[0].end_lineno or 0) + 1))
    lines = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT):
            continue
        if token.type in (tokenize.DEDENT, tokenize.ENDMARKER):
            continue
        lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - docstrings)


def lines_of(path: Path, names: Iterable[str]) -> int:
    """Code lines of the named top-level classes and functions of ``path``."""
    source = path.read_text()
    wanted = set(names)
    total = 0
    for node in ast.parse(source).body:
        name = getattr(node, "name", None)
        if name in wanted:
            segment = ast.get_source_segment(source, node, padded=True) or ""
            decorators = "".join(
                f"@{ast.unparse(d)}\n" for d in getattr(node, "decorator_list", [])
            )
            total += code_lines(decorators + segment)
            wanted.discard(name)
    if wanted:
        raise SystemExit(f"{path}: not found: {sorted(wanted)}")
    return total


def prototype_lines(path: Path) -> tuple[int, int]:
    """(models, error translation) code lines of a prototype: split at its errors section."""
    lines = path.read_text().splitlines(keepends=True)
    split = next(i for i, line in enumerate(lines) if line.startswith("# -- errors in motiond"))
    return code_lines("".join(lines[:split])), code_lines("".join(lines[split:]))


def measure_imports(runs: int) -> dict[str, tuple[float, float]]:
    """Median CPU seconds and RSS MB of each import, each in a fresh interpreter."""
    results = {}
    for label, statement in IMPORTS.items():
        times, rss = [], []
        for _ in range(runs):
            output = subprocess.run(
                [sys.executable, "-c", MEASURE.format(statement=statement)],
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            times.append(float(output[0]))
            rss.append(float(output[1]))
        results[label] = (statistics.median(times), statistics.median(rss))
    return results


def median_time(function: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.process_time()
        function()
        samples.append(time.process_time() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="fresh interpreters per import")
    args = parser.parse_args()
    parsers: dict[str, Callable[[str, str], object]] = {
        "today": parse_config,
        "pydantic": with_pydantic.parse,
        "msgspec": with_msgspec.parse,
    }

    print("## Code: the camera sections (name, motion, record, overlay)\n")
    print("| | the sections | machinery for them | together |")
    print("|---|---|---|---|")
    today = lines_of(CONFIG, TODAY_SECTIONS)
    machinery = lines_of(CONFIG, TODAY_MACHINERY)
    print(f"| motiond/config.py today | {today} | {machinery} (`_Section`) | {today + machinery} |")
    for name in ("pydantic", "msgspec"):
        models, errors = prototype_lines(PROTOTYPES / f"with_{name}.py")
        print(f"| {name} | {models} | {errors} (error translation) | {models + errors} |")
    print(f"\nmotiond/config.py has {code_lines(CONFIG.read_text())} code lines in all.\n")

    print("## Messages for the same bad documents\n")
    print("| document | " + " | ".join(parsers) + " |")
    print("|---|" + "---|" * len(parsers))
    for document in BAD_DOCUMENTS:
        text = f"cameras: [{{name: cam, source: demo, {document}}}]"
        cells = []
        for parse in parsers.values():
            try:
                parse(text, "m.yaml")
                cells.append("accepted")
            except ConfigError as error:
                cells.append(str(error).removeprefix("m.yaml: cameras[0]."))
        print(f"| `{document}` | " + " | ".join(f"`{c}`" for c in cells) + " |")

    print(f"\n## Start-up: a fresh interpreter importing each (median of {args.runs})\n")
    print("| import | CPU ms | RSS MB after |")
    print("|---|---|---|")
    for label, (seconds, rss) in measure_imports(args.runs).items():
        print(f"| {label} | {seconds * 1000:.1f} | {rss:.1f} |")

    print("\n## Validating a four-camera document (median of 300)\n")
    print("| | CPU ms |")
    print("|---|---|")
    for name, parse in parsers.items():
        milliseconds = median_time(lambda p=parse: p(GOOD_DOCUMENT, "m.yaml"), 300) * 1000
        print(f"| {name} | {milliseconds:.2f} |")


if __name__ == "__main__":
    main()
