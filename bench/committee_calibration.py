"""How well does a committee's force disagreement predict the first model's force error
against DFT? The data behind ``stability_recheck.extrapolating_above`` (issue 26).

Configurations: real crystals (sources: config/demo/structures, tests/data/structures/
MANIFEST.tsv) as 2x2x2 supercells of the primitive cell at the experimental lattice,
every atom displaced by a Gaussian of standard deviation ``sigma`` per Cartesian component
(0.01 Å: the phonon snapshots; 0.1 and 0.25 Å: MD at a few hundred K and far beyond), and 0.1 Å
at 6 % compression (a strain the models were not fitted to). Forces from the first model
(SevenNet-0), the committee (SevenNet-l3i5, SevenNet-MF-0 PBE head, CHGNet 0.3.0) and real
CP2K (phonion's protocol at 300/50 Ry, PBE, GTH, DZVP-MOLOPT-SR). Each line of the output:
one configuration, its RMS DFT force, the first model's RMS error against DFT and the
committee's disagreements (RMS difference to the second model; RMS of the per-component
standard deviation over all models), in meV/Å.

Also real VASP: the 10 random-displacement NaCl snapshots of ``../shared/data/phonopy-NaCl-rd``
(PBE, 64 atoms, 0.03 Å), so the calibration is not CP2K's alone.

    OMP_NUM_THREADS=2 python bench/committee_calibration.py --workdir /tmp/committee \\
        --out bench/committee_calibration.jsonl
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import make_supercell

ROOT = Path(__file__).resolve().parents[1]
STRUCTURES = {"NaCl": ROOT / "config/demo/structures/NaCl.cif",
              "NaF": ROOT / "config/demo/structures/NaF.cif",
              "MgO": ROOT / "tests/data/structures/MgO-periclase.cif",
              "Li2O": ROOT / "tests/data/structures/Li2O.cif"}
FIRST = ("sevenn", "7net-0", "")
COMMITTEE = [("sevenn", "7net-l3i5", ""), ("sevenn", "7net-mf-0", "PBE"),
             ("chgnet", "0.3.0", "")]
SIGMAS_A = (0.01, 0.1, 0.25)  # at the experimental lattice; 0.1 also compressed


def primitive(path: Path) -> Atoms:
    from phonion.intake import read_structure, triage
    from phonion.settings import IntakeSettings

    atoms = read_structure(path)
    ion = next(s for s in ("Na", "Li", "Mg") if s in atoms.get_chemical_symbols())
    return triage(atoms, IntakeSettings(max_atoms=64, mobile_ion=ion))


def configurations(seed: int = 0) -> list[tuple[str, Atoms]]:
    rng = np.random.default_rng(seed)
    out = []
    for name, path in STRUCTURES.items():
        prim = primitive(path)
        for strain in (1.0, 0.98):  # 0.98 in length: 6 % in volume
            base = make_supercell(prim, 2 * np.eye(3))
            base.set_cell(base.cell * strain, scale_atoms=True)
            for sigma in SIGMAS_A if strain == 1.0 else (0.1,):
                a = base.copy()
                a.positions += rng.normal(0, sigma, a.positions.shape)
                tag = f"{name}_s{sigma:g}" + ("" if strain == 1.0 else "_compressed")
                out.append((tag, a))
    return out


def model_forces(configs: list[Atoms]) -> dict[str, list[np.ndarray]]:
    from phonion.calculators import get_calculator

    out = {}
    for backend, model, modal in [FIRST, *COMMITTEE]:
        calc = get_calculator(backend, model, modal=modal).calculator
        key = f"{backend}:{model}" + (f":{modal}" if modal else "")
        out[key] = []
        for atoms in configs:
            a = atoms.copy()
            a.calc = calc
            out[key].append(np.asarray(a.get_forces()))
    return out


def cp2k_forces(atoms: Atoms, directory: Path, command: str) -> np.ndarray:
    """CP2K forces (eV/Å) of ``atoms``; a finished run is reused only for the same request
    (engine, protocol, atoms: the DFT stage's own check)."""
    from phonion.dft import cp2k
    from phonion.dft.forces import REQUEST, request_hash, written_for

    protocol = cp2k.Cp2kSettings(cutoff_Ry=300, rel_cutoff_Ry=50)
    digest = request_hash("cp2k", protocol.to_json(), atoms)
    if not (written_for(directory, digest) and cp2k.check(directory)[0]):
        run = cp2k.Cp2kSettings(cutoff_Ry=300, rel_cutoff_Ry=50, command=command)
        cp2k.write_static(atoms, directory, run)
        cp2k.run(directory, run)
        (directory / REQUEST).write_text(json.dumps({"sha256": digest}) + "\n")
    return cp2k.read_forces(directory)[0]


def vasp_nacl() -> list[tuple[str, Atoms, np.ndarray]]:
    """The real VASP snapshots of phonopy's NaCl-rd example (forces in eV/Å)."""
    import phonopy

    folder = ROOT.parent / "shared/data/phonopy-NaCl-rd"
    ph = phonopy.load(folder / "phonopy_disp.yaml", force_sets_filename=folder / "FORCE_SETS",
                      produce_fc=False, log_level=0)
    sc = ph.supercell
    out = []
    for k, (u, f) in enumerate(zip(ph.displacements, ph.forces, strict=True)):
        a = Atoms(sc.symbols, positions=sc.positions + u, cell=sc.cell, pbc=True)
        out.append((f"NaCl_vasp_rd{k}", a, np.asarray(f)))
    return out


def row(tag: str, atoms: Atoms, dft: np.ndarray, forces: dict, k: int) -> dict:
    """One configuration: RMS DFT force, each model's RMS error against DFT, the first
    two models' RMS disagreement and the RMS committee spread, all in meV/Å."""
    from phonion.stability_recheck import force_disagreement

    symbols = np.array(atoms.get_chemical_symbols())

    def rms_diff(a: np.ndarray, b: np.ndarray) -> float:
        return force_disagreement(a[None], b[None], symbols)["force_disagreement_rms_meV_A"]

    keys = list(forces)
    first = forces[keys[0]][k]
    spread = np.stack([forces[m][k] for m in keys]).std(axis=0)
    return {"config": tag, "n_atoms": len(atoms),
            "dft_force_rms_meV_A": rms_diff(dft, np.zeros_like(dft)),
            "first_error_rms_meV_A": rms_diff(dft, first),
            "pair_disagreement_rms_meV_A": rms_diff(first, forces[keys[1]][k]),
            "committee_std_rms_meV_A": rms_diff(spread, np.zeros_like(spread)),
            "model_errors_rms_meV_A": {m: rms_diff(dft, forces[m][k]) for m in keys}}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--out", type=Path, default=ROOT / "bench/committee_calibration.jsonl")
    p.add_argument("--only", nargs="*", help="configuration tags to run (prefix match)")
    a = p.parse_args()
    command = shutil.which("cp2k.psmp") or shutil.which("cp2k")
    if command is None:
        sys.exit("no CP2K on PATH (Debian: apt-get install cp2k cp2k-data)")
    configs = [(t, c) for t, c in configurations()
               if not a.only or any(t.startswith(o) for o in a.only)]
    vasp = vasp_nacl()
    forces = model_forces([c for _, c in configs] + [c for _, c, _ in vasp])
    with a.out.open("a") as fh:
        for k, (tag, atoms, dft) in enumerate(
                [(t, c, None) for t, c in configs] + vasp):
            t0 = time.time()
            if dft is None:
                try:
                    dft = cp2k_forces(atoms, a.workdir / tag, command)
                except Exception as exc:  # a failed SCF is a line, not the end of the bench
                    print(f"{tag}: CP2K failed: {exc}", flush=True)
                    continue
            r = {**row(tag, atoms, dft, forces, k), "dft": "vasp" if "vasp" in tag else
                 "cp2k", "dft_wall_s": round(time.time() - t0, 1)}
            fh.write(json.dumps(r) + "\n")
            fh.flush()
            print(f"{tag}: DFT {r['dft_force_rms_meV_A']:.0f}, first-model error "
                  f"{r['first_error_rms_meV_A']:.0f}, pair {r['pair_disagreement_rms_meV_A']:.0f},"
                  f" committee std {r['committee_std_rms_meV_A']:.0f} meV/Å "
                  f"({r['dft_wall_s']} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
