"""``python -m motiond run`` with a part of its per-picture work taken out (bench_idle_parts.py).

A measuring tool, never a way to run motiond: ``no-detection`` looks at no picture
(``PictureWatch.look`` answers None, as for a picture the rate cap skips); ``no-decode``
also decodes nothing (``PyAVSource._decode`` answers None: the sub stream is read only).

    python -m scripts.bench.idle_parts_child no-detection run -c motiond.yaml
"""

from __future__ import annotations

import runpy
import sys
from typing import Any

VARIANTS = ("whole", "no-detection", "no-decode")


def _no_look(_watch: Any, _frame: Any, _size: Any, *, clip_kept: bool = False) -> None:
    return None


def _no_decode(_source: Any, _packet: Any) -> None:
    return None


def main() -> None:
    variant, rest = sys.argv[1], sys.argv[2:]
    if variant not in VARIANTS:
        raise SystemExit(f"variant: one of {', '.join(VARIANTS)}")
    if variant in ("no-detection", "no-decode"):
        from motiond.detect.watch import PictureWatch  # noqa: PLC0415

        PictureWatch.look = _no_look  # type: ignore[assignment, method-assign]
    if variant == "no-decode":
        from motiond.capture.sources.pyav import PyAVSource  # noqa: PLC0415

        PyAVSource._decode = _no_decode  # type: ignore[assignment, method-assign]
    sys.argv = ["motiond", *rest]
    runpy.run_module("motiond", run_name="__main__")


if __name__ == "__main__":
    main()
