#!/usr/bin/env python3
"""A stand-in for the VASP executable (the practice of atomate2's ``run_fake_vasp``).

Run in a VASP run directory (by :func:`phonion.dft.vasp.run` through custodian, or
directly), it

1. reads INCAR, KPOINTS, POSCAR and POTCAR.spec with pymatgen and asserts them against the
   expectations of a JSON spec (path in ``$FAKE_VASP_SPEC``, else ``fake_vasp.json`` in
   the working directory): every INCAR key listed must be there with that value (numbers to
   a relative 1e-9, strings case-insensitive), KPOINTS style and grid, POSCAR atom count,
   symbols, fractional positions and velocities, POTCAR symbols;
2. on any mismatch writes what differs to stderr and exits 2, writing no output (so a
   wrong input can never pass as a run);
3. otherwise puts real VASP outputs in place: ``outputs`` maps a file name here to a
   source file (``.gz`` sources are decompressed unless the name ends in ``.gz``), and
   ``xdatcar_frames`` writes an XDATCAR holding frames ``first``…``last`` (1-based,
   inclusive) of a real XDATCAR renumbered from 1 (the next segment of a real AIMD run),
   optionally cut inside frame ``cut_in_frame`` (a run killed by the wall time);
4. exits with ``exit_code`` (default 0), or with ``kill_job`` SIGKILLs the process that
   started it (the phonion job, as a SLURM time limit does) and then itself.

Spec keys: ``incar``, ``kpoints`` (``{"style": "Gamma", "kpts": [[1, 1, 1]]}``),
``poscar`` (``natoms``, ``symbols``, ``frac_positions``, ``velocities_A_fs``, ``atol``),
``potcar_symbols`` (from POTCAR.spec, else the TITEL lines of POTCAR), ``outputs``,
``xdatcar_frames``, ``exit_code``, ``kill_job``, and ``runs``: run-directory name → keys
that replace the top-level ones for that run (one spec drives every run of a workflow:
``ref``, ``000``, …, ``seg000``, …). Each run appends the INCAR it saw to
``fake_vasp_runs.json`` (a test can see what custodian changed).
"""

from __future__ import annotations

import gzip
import json
import math
import os
import shutil
import sys
from pathlib import Path


def _same(seen, want) -> bool:
    if isinstance(want, bool) or isinstance(seen, bool):
        return bool(seen) == bool(want) and type(seen) is type(want)
    if isinstance(want, (int, float)) and isinstance(seen, (int, float)):
        return math.isclose(float(seen), float(want), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(want, str) and isinstance(seen, str):
        return seen.strip().lower() == want.strip().lower()
    if isinstance(want, list) and isinstance(seen, list):
        return len(seen) == len(want) and all(_same(a, b) for a, b in zip(seen, want, strict=True))
    return seen == want


def check_inputs(spec: dict, here: Path) -> list[str]:
    """What differs from the spec (empty: the inputs are as expected)."""
    import numpy as np
    from pymatgen.io.vasp.inputs import Incar, Kpoints, Poscar

    errors = []
    incar = Incar.from_file(here / "INCAR")
    for key, want in spec.get("incar", {}).items():
        if want is None:
            if key in incar:
                errors.append(f"INCAR {key} = {incar[key]!r}, expected absent")
        elif key not in incar:
            errors.append(f"INCAR {key} missing, expected {want!r}")
        elif not _same(incar[key], want):
            errors.append(f"INCAR {key} = {incar[key]!r}, expected {want!r}")
    if "kpoints" in spec:
        k = Kpoints.from_file(here / "KPOINTS")
        want = spec["kpoints"]
        style = str(k.style).split(".")[-1]
        if "style" in want and style.lower() != want["style"].lower():
            errors.append(f"KPOINTS style {style}, expected {want['style']}")
        if "kpts" in want and [list(map(int, v)) for v in k.kpts] != want["kpts"]:
            errors.append(f"KPOINTS {k.kpts}, expected {want['kpts']}")
    if "poscar" in spec:
        want = spec["poscar"]
        p = Poscar.from_file(here / "POSCAR")
        st = p.structure
        atol = want.get("atol", 1e-8)
        if "natoms" in want and len(st) != want["natoms"]:
            errors.append(f"POSCAR has {len(st)} atoms, expected {want['natoms']}")
        if "symbols" in want and [s.specie.symbol for s in st] != want["symbols"]:
            errors.append("POSCAR atoms are not the expected ones in the expected order")
        if "frac_positions" in want:
            d = st.frac_coords - np.asarray(want["frac_positions"])
            d -= np.rint(d)
            if np.abs(d).max() > atol:
                errors.append(f"POSCAR positions differ by up to {np.abs(d).max():.3g}")
        if "velocities_A_fs" in want:
            if p.velocities is None:
                errors.append("POSCAR has no velocities")
            else:
                dv = np.abs(np.asarray(p.velocities) - np.asarray(want["velocities_A_fs"]))
                if dv.max() > want.get("vtol", 1e-7):
                    errors.append(f"POSCAR velocities differ by up to {dv.max():.3g} Å/fs")
    if "potcar_symbols" in spec:
        spec_file, potcar = here / "POTCAR.spec", here / "POTCAR"
        seen = None
        if spec_file.is_file():
            seen = spec_file.read_text().split()
        elif potcar.is_file():  # symbols of the real (or stand-in) POTCARs, in order
            seen = [line.split("=", 1)[1].split()[1] for line in
                    potcar.read_text().splitlines() if line.strip().startswith("TITEL")]
        if seen != spec["potcar_symbols"]:
            errors.append(f"POTCAR symbols {seen}, expected {spec['potcar_symbols']}")
    return errors


def write_xdatcar_frames(source: str, dest: Path, first: int, last: int,
                         cut_in_frame: int | None = None) -> None:
    """Frames ``first``…``last`` of a real (constant-cell) XDATCAR, renumbered from 1."""
    opener = gzip.open if source.endswith(".gz") else open
    with opener(source, "rt") as fh:
        lines = fh.read().split("\n")
    header = lines[:7]
    n = sum(int(c) for c in lines[6].split())
    out = list(header)
    for k, frame in enumerate(range(first, last + 1), start=1):
        start = 7 + (frame - 1) * (n + 1)
        block = lines[start + 1:start + 1 + n]
        if cut_in_frame is not None and k == cut_in_frame:
            out.append(f"Direct configuration= {k:6d}")
            out.extend(block[: n // 2])
            out.append(block[n // 2][: len(block[n // 2]) // 2])  # cut mid-line
            dest.write_text("\n".join(out))
            return
        out.append(f"Direct configuration= {k:6d}")
        out.extend(block)
    dest.write_text("\n".join(out) + "\n")


def main() -> int:
    here = Path.cwd()
    spec_path = Path(os.environ.get("FAKE_VASP_SPEC", here / "fake_vasp.json"))
    spec = json.loads(spec_path.read_text())
    spec = {**spec, **spec.get("runs", {}).get(here.name, {})}
    from pymatgen.io.vasp.inputs import Incar

    log = here / "fake_vasp_runs.json"
    runs = json.loads(log.read_text()) if log.is_file() else []
    runs.append(dict(Incar.from_file(here / "INCAR")))
    log.write_text(json.dumps(runs, default=str))
    errors = check_inputs(spec, here)
    if errors:
        print("fake VASP: inputs differ from the expected ones:", file=sys.stderr)
        for e in errors:
            print(f"  {e}", file=sys.stderr)
        return 2
    for name, source in spec.get("outputs", {}).items():
        if source.endswith(".gz") and not name.endswith(".gz"):
            with gzip.open(source, "rb") as src, open(here / name, "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            shutil.copyfile(source, here / name)
    if "xdatcar_frames" in spec:
        x = spec["xdatcar_frames"]
        write_xdatcar_frames(x["source"], here / "XDATCAR", x["first"], x["last"],
                             x.get("cut_in_frame"))
    if spec.get("kill_job"):
        import signal

        print(" fake VASP: the job's time limit is up", flush=True)
        os.kill(os.getppid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
    print(" running on fake VASP (tests/fake_vasp.py)\n reached required accuracy")
    return int(spec.get("exit_code", 0))


if __name__ == "__main__":
    sys.exit(main())
