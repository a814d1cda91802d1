"""Which offline MLP reproduces DFT phonons of NaCl? (chooses the demo's default model)

On the real VASP (PBE) random-displacement set ../shared/data/phonopy-NaCl-rd (the seed-000
protocol: 10 snapshots of 0.03 A in a 64-atom supercell at the DFT lattice constant) each
MLP's forces replace the DFT forces, fc2 is fitted with pheasy exactly as the workflow does,
and the result is compared with the DFT fit on the same displacements and with phonopy's
finite-displacement DFT set. Usage: python bench/mlp_phonons_nacl.py [backend:model ...]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import phonopy
from ase import Atoms

from phonion.calculators import get_calculator
from phonion.fit_ifc import fit_force_constants
from phonion.harmonic import frequencies_at
from phonion.phonon_descriptors import mesh_msd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MESH = [14, 14, 14]


def observables(ph) -> dict:
    na = np.array(ph.primitive.symbols) == "Na"
    msd = mesh_msd(ph, MESH, [300.0, 800.0])
    return {
        "gamma_optical_THz": float(np.sort(frequencies_at(ph, [0, 0, 0]))[3:].mean()),
        "X_TA_THz": float(np.sort(frequencies_at(ph, [0.5, 0.0, 0.5]))[0]),
        "msd_Na_300K_A2": float(msd[0][na].mean()),
        "msd_Na_800K_A2": float(msd[1][na].mean()),
    }


def main(models: list[str]) -> None:
    rd = phonopy.load(DATA / "phonopy-NaCl-rd/phonopy_disp.yaml",
                      force_sets_filename=DATA / "phonopy-NaCl-rd/FORCE_SETS", is_nac=False,
                      produce_fc=False, log_level=0)
    fd = phonopy.load(DATA / "phonopy-NaCl-fd/phonopy_disp.yaml",
                      force_sets_filename=DATA / "phonopy-NaCl-fd/FORCE_SETS", is_nac=False,
                      log_level=0)
    disp = np.array(rd.dataset["displacements"])
    f_dft = np.array(rd.dataset["forces"])
    rows = {"DFT finite displacements (phonopy)": observables(fd)}
    fit = fit_force_constants(rd, disp, f_dft, log=None)
    ph = rd.replicate()
    ph.force_constants = fit.fc2
    rows["DFT random displacements (pheasy)"] = observables(ph)
    sc = rd.supercell
    for spec in models:
        backend, model = spec.split(":", 1)
        loaded = get_calculator(backend, model, "cpu", "float64")
        atoms = Atoms(sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions, pbc=True)
        atoms.calc = loaded.calculator
        f0 = atoms.get_forces().copy()
        t0 = time.perf_counter()
        forces = []
        for u in disp:
            atoms.positions = sc.positions + u
            forces.append(atoms.get_forces() - f0)
        wall = time.perf_counter() - t0
        forces = np.array(forces)
        fit = fit_force_constants(rd, disp, forces, log=None)
        ph = rd.replicate()
        ph.force_constants = fit.fc2
        obs = observables(ph)
        obs["force_rmse_vs_DFT_eV_A"] = float(np.sqrt(np.mean((forces - f_dft) ** 2)))
        obs["force_calls_per_s"] = len(disp) / wall
        rows[spec] = obs
    ref = rows["DFT random displacements (pheasy)"]
    for name, obs in rows.items():
        rel = {k: f"{100 * (obs[k] / ref[k] - 1):+.1f}%" for k in ref}
        print(f"{name:40s} " + "  ".join(f"{k}={v:.4g} ({rel.get(k, '')})"
                                          for k, v in obs.items()))
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:] or ["sevenn:7net-0", "chgnet:0.3.0"])
