"""How many random snapshots does the force-constant fit need? Mobile-ion MSD error against
the number of snapshots, compared with phonopy finite displacements (issue 10).

For each structure: relax with the MLP (space group held), build phonion's supercell, then

- reference: phonopy finite displacements (0.01 Å, ± where symmetry needs it) of the same
  MLP on the same supercell → fc2 → Na MSD at 800 K on a converged mesh;
- random snapshots of 0.03 Å (seed 000's protocol, phonion's displace stage), forces on all of
  them, then fits on the first n snapshots for growing n: symfc least squares, and pheasy LASSO
  (phonion's fit_ifc) — the Na MSD of each fit on the reference's mesh and its error.

    python bench/snapshots.py sevenn 7net-0 NaCl NaNO3-nitratine Na2CO3-natrite ...

Structures are the demo set (config/demo/structures) or tests/data/structures. One JSON line
per structure goes to stdout; bench/snapshots.jsonl keeps the measured ones.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from jsonl import each_structure  # bench/ is on sys.path when run as a script

from phonion.calculators import get_calculator
from phonion.displace import choose_supercell, count_free_parameters
from phonion.fit_ifc import fit_force_constants, fit_symfc
from phonion.harmonic import phonopy_for, to_ase
from phonion.intake import read_structure, triage
from phonion.phonon_descriptors import converge_mesh, mesh_msd
from phonion.relax import relax
from phonion.settings import DisplaceSettings, FitIfcSettings, IntakeSettings, RelaxSettings
from phonion.stability import assess_stability

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = (ROOT / "config/demo/structures", ROOT / "tests/data/structures")
GRID = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64)


def _find(name: str) -> Path:
    return next(p for f in FOLDERS for p in [f / f"{name}.cif"] if p.exists())


def _forces(calc, supercell, positions_list) -> np.ndarray:
    atoms = supercell.copy()
    atoms.calc = calc
    out = []
    for pos in positions_list:
        atoms.positions = pos
        out.append(atoms.get_forces().copy())
    return np.array(out)


def study(name: str, calc, mobile: str = "Na", temperature_K: float = 800.0) -> dict:
    t0 = time.perf_counter()
    prim = triage(read_structure(_find(name)), IntakeSettings(max_atoms=64))
    res = relax(prim, calc, RelaxSettings(fmax_eV_A=0.002, max_steps=2000, fix_symmetry=True),
                logfile=None)
    prim = res.atoms
    choice = choose_supercell(prim, DisplaceSettings())
    out: dict = {"structure": name, "formula": prim.get_chemical_formula("metal"),
                 "spacegroup": res.spacegroup_final[0], "n_primitive": len(prim),
                 "relax_converged": res.converged}

    # reference: finite displacements of the same MLP on the same supercell
    fd = phonopy_for(prim, choice)
    fd.generate_displacements(distance=0.01, is_plusminus=True)  # central differences
    sc = to_ase(fd.supercell)
    t1 = time.perf_counter()
    fd.forces = _forces(calc, sc, [to_ase(s).positions for s in fd.supercells_with_displacements])
    fd.produce_force_constants()
    mob = np.array(fd.primitive.symbols) == mobile
    st, _ = assess_stability(fd)
    out.update(n_supercell=len(sc), n_fd=len(fd.supercells_with_displacements),
               fd_force_s=round(time.perf_counter() - t1, 1), stable=st["stable"],
               lowest_frequency_THz=st["lowest_frequency_THz"])
    if not st["stable"]:
        return out
    mesh, history, _ = converge_mesh(fd, [temperature_K], mob, tolerance=0.003)
    msd_ref = history[-1]["msd_mobile_mean_A2"]  # the fits are compared on the same mesh
    out.update(mesh=mesh, msd_ref_A2=msd_ref)

    # random snapshots (phonion's protocol): single snapshots, or ± pairs (each snapshot and
    # its inverse: the even-order anharmonic forces cancel in the fit of fc2); symfc least
    # squares with no cutoff and with 7 and 5 Å fc2 cutoffs, pheasy LASSO at a few counts
    n_free = count_free_parameters(sc)[2]
    patterns = n_free / (3 * len(sc))  # snapshots that make the fc2 system determined
    out.update(n_free_fc2=n_free, equations_per_snapshot=3 * len(sc),
               patterns_determined=round(patterns, 3), fits=[])
    n_max = min(40, int(np.ceil(3 * patterns)) + 1)
    base = sc.positions
    f0 = _forces(calc, sc, [base])[0]
    t1 = time.perf_counter()
    rd = phonopy_for(prim, choice)
    rd.generate_displacements(distance=0.03, number_of_snapshots=n_max, random_seed=0,
                              is_plusminus=True)
    disp = np.asarray(rd.dataset["displacements"])  # u_1 .. u_n, then -u_1 .. -u_n
    forces = _forces(calc, sc, [base + d for d in disp]) - f0
    out["rd_force_s"] = round(time.perf_counter() - t1, 1)
    plus, minus = np.arange(n_max), n_max + np.arange(n_max)
    free = {None: n_free, **{c: count_free_parameters(sc, cutoff_A=c)[2] for c in (7.0, 5.0)}}
    pheasy_at = {max(1, int(np.ceil(f * patterns))) for f in (0.5, 1.5)}
    for n in sorted({max(1, int(np.ceil(f * patterns))) for f in
                     (0.3, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0)} | {1, 2}):
        if n > n_max:
            continue
        for kind, idx in (("single", plus[:n]), ("pm", np.concatenate([plus[:n], minus[:n]]))):
            row = {"kind": kind, "patterns": n, "force_evaluations": len(idx) + 1}
            for cut, nf in free.items():
                if 3 * len(sc) * n < nf:  # least squares needs a determined system
                    continue
                fit = fit_symfc(rd, disp[idx], forces[idx], cutoff_A=cut)
                msd = _msd(prim, choice, fit, mesh, temperature_K, mobile)
                row[f"error_symfc_cut{cut or 0:g}"] = round(msd / msd_ref - 1, 5)
            if n in pheasy_at and kind == "pm" and n_free < 1500:
                t2 = time.perf_counter()
                fit = fit_force_constants(rd, disp[idx], forces[idx],
                                          FitIfcSettings(fit_method="lasso"), log=None)
                row["pheasy_s"] = round(time.perf_counter() - t2, 1)
                msd = _msd(prim, choice, fit.fc2, mesh, temperature_K, mobile)
                row["error_pheasy"] = round(msd / msd_ref - 1, 5)
            out["fits"].append(row)
            print(json.dumps({"structure": name, **row}), file=sys.stderr, flush=True)
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    return out


def _msd(prim, choice, fc2, mesh, temperature_K, mobile) -> float:
    ph = phonopy_for(prim, choice, fc2)
    mob = np.array(ph.primitive.symbols) == mobile
    return float(mesh_msd(ph, mesh, [temperature_K])[0][mob].mean())


if __name__ == "__main__":
    backend, model, *names = sys.argv[1:]
    calc = get_calculator(backend, model).calculator
    each_structure(names, lambda name: study(name, calc))
