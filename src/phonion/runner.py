"""The stage runner: the one skeleton every command goes through.

``run_stage`` reads the upstream stage results, writes ``skipped`` at once when one of
them is not ``ok`` (no model is loaded, nothing is computed), otherwise runs the stage's
body, turns every outcome into a status and a one-line reason, records provenance and
a size/hash record of every file the stage wrote, and writes the result atomically:

- the body returns the stage's data; it may set ``status``/``reason`` itself (e.g.
  ``failed`` for a dynamically unstable material);
- :class:`~phonion.errors.StructureRejected`, :class:`~phonion.errors.UnsupportedElements`
  → ``rejected``; :class:`~phonion.errors.DamagedFile` → ``error``, and the damaged file is
  removed so that the next run regenerates it; any other
  :class:`~phonion.errors.PhonionError` → ``failed``; any other exception → ``error``
  with the traceback in the stage log;
- declared outputs that the body did not write (a skipped stage, an exception) are
  written in a flagged form holding the status, so every stage always has all its outputs
  and the workflow needs no checkpoints; what a body wrote before returning a verdict
  stays (the band structure of an unstable material); a result never holds a non-finite
  number as ``ok``.

The job exits 0 whatever the material's fate (the fate is in the result); it exits
non-zero only when the result itself cannot be written (e.g. a full disk).
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import formats
from .errors import DamagedFile, PhonionError, StructureRejected, UnsupportedElements
from .provenance import provenance
from .settings import Settings


@dataclass
class Context:
    """What a stage body gets: the material, its upstream results and its settings.

    ``outputs`` maps output names to paths (files, or a folder for ``figures``);
    ``model`` is set by bodies that load an MLP (its description enters provenance).
    """

    mid: str
    stage: str
    settings: Settings | None
    upstream: dict[str, dict]
    outputs: dict[str, Path]
    model: dict = field(default_factory=dict)
    t0: float = field(default_factory=time.perf_counter)

    def log(self, message: str) -> None:
        print(f"[{self.stage}] {self.mid}: {message}", flush=True)


def classify(exc: BaseException) -> tuple[str, str]:
    """(status, reason) of an exception raised inside a stage."""
    if isinstance(exc, (StructureRejected, UnsupportedElements)):
        return "rejected", str(exc)
    if isinstance(exc, DamagedFile):
        Path(exc.path).unlink(missing_ok=True)
        return "error", f"{exc}; removed, the next run regenerates it"
    if isinstance(exc, PhonionError):
        return "failed", str(exc)
    traceback.print_exc()
    return "error", f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def _nonfinite(obj, key: str = "") -> str | None:
    """Key path of the first non-finite number in a JSON-like object, or None."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return key or "(value)"
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            found = _nonfinite(v, f"{key}.{k}" if key else str(k))
            if found:
                return found
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            found = _nonfinite(v, f"{key}[{i}]")
            if found:
                return found
    return None


def _clear(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _flagged(name: str, path: Path, status: str, reason: str) -> None:
    """The declared output ``path`` of a stage that produced no data: a folder for
    ``figures``, a comment for POSCARs, an HDF5 file holding the status otherwise."""
    if name == "figures":
        path.mkdir(parents=True, exist_ok=True)
    elif path.suffix in (".h5", ".hdf5"):
        formats.write_arrays(path, {}, status)
    else:
        formats.write_poscar(path, None, f"{status}: {reason}")


def run_stage(stage: str, body: Callable[[Context], dict], out: str | os.PathLike,
              upstream: Mapping[str, str | os.PathLike] | None = None,
              settings: Settings | None = None,
              outputs: Mapping[str, str | os.PathLike | None] | None = None,
              mid: str | None = None, gate: str = "all") -> int:
    """Run one stage for one material and write its result to ``out``.

    ``upstream``: name → result file of the stages this one reads (the material id comes
    from them unless ``mid`` is given). ``gate``: ``"all"`` skips the stage when any
    upstream result is not ``ok``, ``"any"`` only when none is (e.g. Arrhenius over the
    temperatures that gave a D). ``outputs``: name → path of the stage's other outputs.
    """
    outputs = {k: Path(v) for k, v in (outputs or {}).items() if v}
    for path in outputs.values():
        _clear(path)
    ups: dict[str, dict] = {}
    damaged = ""
    for name, path in (upstream or {}).items():
        try:
            ups[name] = formats.read_result(path)
        except DamagedFile as exc:
            damaged = classify(exc)[1]
    if mid is None:
        mid = next(iter(ups.values()))["material_id"] if ups else "?"
    ctx = Context(mid, stage, settings, ups, outputs)
    not_ok = [u for u in ups.values() if u["status"] != "ok"]
    kept = False  # outputs the body wrote stand, whatever verdict it returned
    if damaged:
        res = formats.new_result(mid, stage, "error", damaged)
    elif not_ok and (gate == "all" or len(not_ok) == len(ups)):
        first = not_ok[0]  # a skipped upstream passes on the stage that stopped the chain
        why = (first["reason"] if first["status"] == "skipped"
               else f"{first['stage']}: {first['status']}")
        res = formats.new_result(mid, stage, "skipped", why)
    else:
        try:
            data = dict(body(ctx))
            status, reason = data.pop("status", "ok"), data.pop("reason", "")
            res = formats.new_result(mid, stage, status, reason, **data)
            kept = True
            bad = _nonfinite(res) if status == "ok" else None
            if bad:
                res = formats.new_result(mid, stage, "error", f"non-finite value of {bad}")
                kept = False
        except Exception as exc:  # noqa: BLE001 - every outcome becomes a status line
            status, reason = classify(exc)
            res = formats.new_result(mid, stage, status, reason)
    status = res["status"]
    for name, path in outputs.items():
        if not kept or not path.exists():
            _clear(path)
            _flagged(name, path, status, res["reason"])
    res["wall_time_s"] = round(time.perf_counter() - ctx.t0, 3)
    res["files"] = {p.name: formats.file_record(p) for p in outputs.values() if p.is_file()}
    if "figures" in outputs:
        res["figures"] = sorted(p.name for p in outputs["figures"].glob("*.png"))
    res["provenance"] = provenance(asdict(settings) if settings else {}, ctx.model)
    if _nonfinite(res):  # only non-ok results can still hold NaN (e.g. a diverged MD)
        res = _scrub(res)
    formats.write_result(out, res)
    ctx.log(f"{status}{': ' + res['reason'] if res['reason'] else ''} "
            f"({res['wall_time_s']:.1f} s)")
    return 0


def _scrub(obj):
    """Non-finite numbers → None (JSON null) in a non-ok result."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _scrub(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_scrub(v) for v in obj]
    return obj


def _child(conn, func, args) -> None:
    try:
        conn.send(("ok", func(*args)))
    except BaseException as exc:  # noqa: BLE001 - sent back to the parent as it is
        conn.send(("raised", exc))


def run_guarded(func: Callable, *args, timeout_s: float = 600.0, what: str = "it"):
    """``func(*args)`` in a child process (spawned: no state shared with this one), for code
    that hands user data to native libraries. Its result or exception comes back as usual; a
    child killed by a signal (a crash inside a C extension) or running past ``timeout_s``
    raises :class:`~phonion.errors.StructureRejected` naming ``what`` and the signal."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, func, args), daemon=True)
    proc.start()
    child.close()
    ready = parent.poll(timeout_s)  # also True when the child died: recv() then finds EOF
    try:
        message = parent.recv() if ready else None
    except EOFError:
        message = None
    proc.join(5 if ready else 0)
    if proc.is_alive():
        proc.kill()
        proc.join()
        if message is None:
            raise StructureRejected(f"{what} took longer than {timeout_s:g} s")
    if message is None:
        code = proc.exitcode
        how = f"signal {-code}" if code and code < 0 else f"exit code {code}"
        raise StructureRejected(f"{what} crashed a native library ({how})")
    kind, value = message
    if kind == "raised":
        raise value
    return value


def main_guard(func: Callable[[], int]) -> int:
    """Run a command; a result that cannot be written (full disk, read-only results) is
    the one failure that fails the job, with a one-line message."""
    try:
        return func()
    except OSError as exc:
        print(f"phonion: cannot write results: {exc}", file=sys.stderr, flush=True)
        return 1
