"""Parsers of VASP's outputs: the check of a run (complete, converged, or a one-line
reason), its forces and relaxed structure, a tolerant scan of vasprun.xml (truncated files
of killed runs included), INCAR, and XDATCAR frames into phonion's trajectory layout, one run or
the segments of a continued AIMD run (:mod:`phonion.dft.vasp` re-exports the verbs).

pymatgen is imported inside the functions: importing this module stays light.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputRejected
from .common import s_one_line, stitch, trajectory_record

#: Written by :func:`phonion.dft.vasp.continue_aimd` into a continuation segment: where it
#: starts.
SEGMENT_FILE = "phonion_segment.json"
#: Written with every input set: which input atom each POSCAR atom is.
ORDER_FILE = "phonion_order.json"


def _incar(directory: Path) -> dict:
    from pymatgen.io.vasp.inputs import Incar

    return dict(Incar.from_file(directory / "INCAR")) if (directory / "INCAR").is_file() else {}


@dataclass
class VasprunScan:
    """What a tolerant pass over a (possibly truncated) vasprun.xml finds."""

    complete: bool  # the closing tag was read
    error: str  # why the XML stops, '' when complete
    parameters: dict[str, Any]
    scf_steps: list[int]  # per complete ionic step
    energies_eV: list[float]  # e_fr_energy per complete ionic step
    #: ionic step index (0-based) → forces (eV/Å, POSCAR order), for the steps asked for
    forces_eV_A: dict[int, np.ndarray] = field(default_factory=dict)


def scan_vasprun(path: str | os.PathLike, forces_of: Collection[int] = ()) -> VasprunScan:
    """Count the complete ionic steps of a vasprun.xml (a run killed mid-way leaves a
    truncated one), their SCF iterations and free energies, and the run's NELM/NSW/IBRION,
    without building the whole tree (AIMD vasprun files reach gigabytes); the forces of the
    ionic steps in ``forces_of`` (0-based), so that memory grows with the frames kept, not
    with the run."""
    params: dict[str, Any] = {}
    nscf: list[int] = []
    energies: list[float] = []
    forces: dict[int, np.ndarray] = {}
    wanted = set(int(k) for k in forces_of)
    complete, error = False, ""
    depth_params = 0
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            for event, el in ET.iterparse(fh, events=("start", "end")):
                tag = el.tag
                if event == "start":
                    if tag == "parameters":
                        depth_params += 1
                    continue
                if depth_params and tag == "i" and el.get("name") in ("NELM", "NSW", "IBRION",
                                                                      "POTIM", "NBLOCK"):
                    params[el.get("name")] = float((el.text or "nan").split()[0])
                elif tag == "parameters":
                    depth_params -= 1
                elif tag == "calculation":
                    nscf.append(len(el.findall("scstep")))
                    e = el.find("energy/i[@name='e_fr_energy']")
                    energies.append(float(e.text) if e is not None else float("nan"))
                    f = el.find("varray[@name='forces']") if len(nscf) - 1 in wanted else None
                    if f is not None:
                        forces[len(nscf) - 1] = np.array(
                            [[float(x) for x in (v.text or "").split()] for v in f.findall("v")])
                    el.clear()
                elif tag == "modeling":
                    complete = True
    except ET.ParseError as exc:
        error = f"XML stops: {exc}"
    except (OSError, EOFError) as exc:
        error = s_one_line(exc)
    return VasprunScan(complete, error, params, nscf, energies, forces)


@dataclass
class Xdatcar:
    """The complete frames of an XDATCAR (a truncated last frame is left out)."""

    symbols: list[str]
    cells_A: np.ndarray  # frames × 3 × 3
    frac: np.ndarray  # frames × atoms × 3, wrapped as VASP writes them
    steps: np.ndarray  # ionic step of each frame ('configuration=' number)
    truncated: bool  # the file ends inside a frame


_CONFIG = re.compile(r"^\s*(Direct|Cartesian)\s+configuration\s*=\s*(\d+)", re.IGNORECASE)


def _header(lines: list[str], i: int, path) -> tuple[np.ndarray, list[str], int]:
    try:
        scale = float(lines[i + 1].split()[0])
        lat = np.array([[float(x) for x in lines[i + k].split()[:3]] for k in (2, 3, 4)])
        species = lines[i + 5].split()
        counts = [int(x) for x in lines[i + 6].split()]
    except (IndexError, ValueError):
        raise InputRejected(path, f"no VASP 5 XDATCAR header at line {i + 1}") from None
    if len(species) != len(counts):
        raise InputRejected(path, "species and counts lines of the header do not match")
    if scale < 0:  # a volume
        scale = (-scale / abs(np.linalg.det(lat))) ** (1 / 3)
    symbols = [sp for sp, c in zip(species, counts, strict=True) for _ in range(c)]
    return lat * scale, symbols, i + 7


def read_xdatcar(path: str | os.PathLike) -> Xdatcar:
    """Every complete frame of a VASP 5/6 XDATCAR (gzip is fine; variable-cell headers
    are read per frame). A frame cut by a killed job — missing lines or a last line
    without its newline — is not returned and ``truncated`` is set."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt") as fh:
            text = fh.read()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise InputRejected(path, f"unreadable XDATCAR ({s_one_line(exc)})") from None
    lines = text.split("\n")
    truncated = False
    if lines and lines[-1].strip():  # no final newline: the last line may be cut mid-number
        lines = lines[:-1]
        truncated = True
    while lines and not lines[-1].strip():
        lines.pop()
    cell, symbols, i = _header(lines, 0, path)
    n = len(symbols)
    cells, frames, steps = [], [], []
    while i < len(lines):
        m = _CONFIG.match(lines[i])
        if not m:
            if not lines[i].strip():
                i += 1
                continue
            cell, sym2, i = _header(lines, i, path)  # variable cell: a header per frame
            if sym2 != symbols:
                raise InputRejected(path, "the atoms change between frames")
            continue
        block = lines[i + 1:i + 1 + n]
        if len(block) < n:
            truncated = True
            break
        try:
            xyz = np.array([[float(x) for x in ln.split()[:3]] for ln in block])
        except ValueError:
            truncated = True
            break
        if xyz.shape != (n, 3):
            truncated = True
            break
        if m.group(1).lower() == "cartesian":
            xyz = np.linalg.solve(cell.T, xyz.T).T
        frames.append(xyz)
        cells.append(cell)
        steps.append(int(m.group(2)))
        i += 1 + n
    if not frames:
        raise InputRejected(path, "no complete frame")
    return Xdatcar(symbols, np.array(cells), np.array(frames), np.array(steps), truncated)


def _run_params(directory: Path) -> dict:
    """POTIM, NBLOCK, TEBEG of a run: INCAR, else vasprun.xml's parameters."""
    incar = _incar(directory)
    out = {k: incar[k] for k in ("POTIM", "NBLOCK", "TEBEG") if k in incar}
    vr = directory / "vasprun.xml"
    if ("POTIM" not in out or "NBLOCK" not in out) and vr.is_file():
        scan = scan_vasprun(vr)
        for k in ("POTIM", "NBLOCK"):
            out.setdefault(k, scan.parameters.get(k))
    out.setdefault("NBLOCK", 1)
    return out


def _xdatcar_path(directory: Path) -> Path:
    for name in ("XDATCAR", "XDATCAR.gz"):
        if (directory / name).is_file():
            return directory / name
    raise InputRejected(directory, "no XDATCAR in the run directory")


def _segment(directory: Path) -> dict:
    p = directory / SEGMENT_FILE
    return json.loads(p.read_text()) if p.is_file() else {"first_step": 1}


def _trajectory(symbols, cell, frac, steps, potim_fs, nblock, temperature_K,
                energies=None, forces=None) -> dict:
    """XDATCAR frames as a trajectory: POTIM × NBLOCK between frames, velocities from the
    positions, the thermostat's target as each frame's temperature; the DFT forces of the
    frames when vasprun.xml holds them."""
    temps = None if temperature_K is None else np.full(len(frac), float(temperature_K))
    out = trajectory_record(symbols, cell, frac, steps, float(potim_fs), int(nblock),
                            temperature_K, temperatures_K=temps, energies_eV=energies)
    if forces is not None:
        out["forces_eV_A"] = np.asarray(forces, float)
    return out


def _energies_forces_of(directory: Path, steps: np.ndarray
                        ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Free energies (eV) and forces (eV/Å) of the ionic ``steps`` (1-based) from the run's
    vasprun.xml (VASP writes every ionic step there, the XDATCAR every NBLOCK-th); None for
    either when vasprun.xml does not cover every step."""
    vr = directory / "vasprun.xml"
    idx = np.asarray(steps, int) - 1
    if not vr.is_file() or len(idx) == 0:
        return None, None
    scan = scan_vasprun(vr, forces_of=idx.tolist())
    e = np.asarray(scan.energies_eV)
    energies = (e[idx] if idx.max() < len(e) and np.isfinite(e[idx]).all() else None)
    forces = (np.array([scan.forces_eV_A[k] for k in idx])
              if all(k in scan.forces_eV_A for k in idx.tolist()) else None)
    return energies, forces


def read_trajectory(directory: str | os.PathLike, frame_dt_ps: float | None = None,
                    temperature_K: float | None = None) -> dict:
    """The AIMD trajectory of a run directory (or an XDATCAR file) in the layout of
    :func:`phonion.formats.read_trajectory`: complete frames only, positions unwrapped with
    :func:`phonion.geometry.unwrap`, time between frames POTIM × NBLOCK from INCAR (or
    vasprun.xml; ``frame_dt_ps`` for a bare XDATCAR), velocities by central differences
    (XDATCAR holds none: meaningful well below 1/(2 frame_dt_ps)), free energies per frame
    from vasprun.xml when it covers every frame. NVT only: a cell that changes is refused."""
    p = Path(directory)
    xpath, d = (p, p.parent) if p.is_file() else (_xdatcar_path(p), p)
    x = read_xdatcar(xpath)
    if not np.allclose(x.cells_A, x.cells_A[0], atol=1e-6):
        raise InputRejected(xpath, "the cell changes between frames (NpT); phonion's "
                            "trajectories are NVT")
    params = _run_params(d) if d.is_dir() and (d / "INCAR").is_file() else {"NBLOCK": 1}
    if frame_dt_ps is not None:
        potim, nblock = frame_dt_ps * 1000.0, 1
    elif params.get("POTIM"):
        potim, nblock = float(params["POTIM"]), int(params.get("NBLOCK") or 1)
    else:
        raise InputRejected(xpath, "no INCAR/vasprun.xml with POTIM beside it: give "
                            "frame_dt_ps")
    temp = temperature_K if temperature_K is not None else params.get("TEBEG")
    energies, forces = (None, None) if p.is_file() else _energies_forces_of(d, x.steps)
    return _trajectory(x.symbols, x.cells_A[0], x.frac, x.steps, potim, nblock, temp,
                       energies, forces)


def concatenate_segments(directories: list[str | os.PathLike],
                         temperature_K: float | None = None) -> dict:
    """One trajectory from the segments of an AIMD run (in order): each segment's frames
    placed at their global steps (``first_step`` of :data:`SEGMENT_FILE`); frames of a
    segment at or after the next segment's first step are replaced by the next segment's
    (it recomputed them). Refused when a step is missing or the atoms differ."""
    segs = []
    for d in map(Path, directories):
        x = read_xdatcar(_xdatcar_path(d))
        first = int(_segment(d)["first_step"])
        segs.append((d, x, x.steps + first - 1, _run_params(d)))
    symbols = segs[0][1].symbols
    for d, x, *_ in segs:
        if x.symbols != symbols:
            raise InputRejected(d, "other atoms than the first segment")
    nblock = int(segs[0][3].get("NBLOCK") or 1)
    keep = stitch(directories, [g for _, _, g, _ in segs], nblock)
    frac = np.concatenate([x.frac[m] for (_, x, _, _), m in zip(segs, keep, strict=True)])
    steps = np.concatenate([g[m] for (_, _, g, _), m in zip(segs, keep, strict=True)])
    ef = [_energies_forces_of(d, x.steps[m]) for (d, x, _, _), m in zip(segs, keep, strict=True)]
    # unwrap across the seams too: the segments' wrapped coordinates continue each other
    potim = float(segs[0][3]["POTIM"])
    temp = temperature_K if temperature_K is not None else segs[0][3].get("TEBEG")
    e_all = np.concatenate([e for e, _ in ef]) if all(e is not None for e, _ in ef) else None
    f_all = np.concatenate([f for _, f in ef]) if all(f is not None for _, f in ef) else None
    out = _trajectory(symbols, segs[0][1].cells_A[0], frac, steps, potim, nblock, temp, e_all,
                      f_all)
    out["segments"] = [os.fspath(d) for d, *_ in segs]
    return out


def _gamma_only(directory: Path) -> bool:
    kp = directory / "KPOINTS"
    if not kp.is_file():
        return False
    from pymatgen.io.vasp.inputs import Kpoints

    k = Kpoints.from_file(kp)
    return (str(k.style).lower().endswith("gamma") and len(k.kpts) == 1
            and tuple(k.kpts[0]) == (1, 1, 1) and not any(k.kpts_shift))


