"""How exactly an MLP's forces follow the crystal's symmetry operations, proper and improper.

For a structure's phonon supercell (phonion's choice, symmetrized cell) and a random
displacement u of 0.01 Å rms, the forces F(u) and F(g·u) for one operation g of every class
(det, trace) of the supercell's space group (spglib, 1e-3 Å): an equivariant model gives
F(g·u) = g·F(u). Prints the relative error ‖F(g·u) − g·F(u)‖/‖F(g·u)‖ per class.

    python bench/model_parity.py NaYS2 7net-0 7net-mf-0:PBE

All four SevenNet checkpoints that ship with sevenn 0.13 are built with ``is_parity: False``
(read from their config): they are exactly equivariant under rotations, not under
inversion and mirrors. Numbers in docs/phonons.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import spglib

from phonion.calculators import get_calculator
from phonion.displace import choose_supercell
from phonion.harmonic import phonopy_for, to_ase
from phonion.intake import read_structure
from phonion.symmetry import primitive, symmetrize

ROOT = Path(__file__).resolve().parents[1]


def main(name: str, models: list[str]) -> None:
    prim, _ = symmetrize(primitive(read_structure(ROOT / f"tests/data/structures/{name}.cif")))
    sc = to_ase(phonopy_for(prim, choose_supercell(prim), symmetry=False).supercell)
    frac, lat = sc.get_scaled_positions(), sc.cell.array
    ops = spglib.get_symmetry((lat, frac, sc.numbers), symprec=1e-3)
    classes: dict[tuple[int, int], int] = {}
    for k, rot in enumerate(ops["rotations"]):
        classes.setdefault((round(np.linalg.det(rot)), int(np.trace(rot))), k)
    u = np.random.default_rng(1).normal(size=(len(sc), 3)) * 0.01
    for model in models:
        mname, _, modal = model.partition(":")
        atoms = sc.copy()
        atoms.calc = get_calculator("sevenn", mname, "cpu", "float64", modal).calculator
        f0 = atoms.get_forces().copy()
        atoms.positions = sc.positions + u
        f = atoms.get_forces() - f0
        for (det, trace), k in sorted(classes.items()):
            rot, t = ops["rotations"][k], ops["translations"][k]
            cart = lat.T @ rot @ np.linalg.inv(lat.T)
            moved = (frac @ rot.T + t) % 1.0
            perm = [int(np.argmin(np.linalg.norm(((frac - m + 0.5) % 1 - 0.5) @ lat, axis=1)))
                    for m in moved]
            gu = np.zeros_like(u)
            gu[perm] = u @ cart.T
            atoms.positions = sc.positions + gu
            fg = atoms.get_forces() - f0
            pred = np.zeros_like(f)
            pred[perm] = f @ cart.T
            err = np.linalg.norm(fg - pred) / np.linalg.norm(fg)
            kind = "proper" if det == 1 else "improper"
            print(f"{name} {model}: {kind} (det {det}, trace {trace:+d}) relative force "
                  f"error {err:.1e}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
