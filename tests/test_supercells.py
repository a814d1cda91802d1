"""Supercells of any lattice: the matrix convention between phonion (rows) and phonopy
(columns), checked on random non-symmetric integer matrices and triclinic cells."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from phonion.harmonic import SupercellChoice, phonopy_for, to_ase


def _random_cell(rng) -> Atoms:
    """A triclinic cell with three atoms of two species at generic positions."""
    cell = np.diag(rng.uniform(3.5, 6.0, 3)) + rng.uniform(-0.8, 0.8, (3, 3))
    frac = np.array([[0.0, 0.0, 0.0], rng.uniform(0.2, 0.8, 3), rng.uniform(0.2, 0.8, 3)])
    return Atoms("NaClCl", cell=cell, scaled_positions=frac, pbc=True)


def _random_matrix(rng) -> np.ndarray:
    while True:
        M = rng.integers(-2, 3, (3, 3))
        det = round(np.linalg.det(M))
        if 1 <= abs(det) <= 6 and not np.array_equal(M, M.T):
            return M if det > 0 else -M


@pytest.mark.parametrize("seed", range(20))
def test_non_symmetric_supercell_matrix_builds_the_right_supercell(seed):
    rng = np.random.default_rng(seed)
    prim = _random_cell(rng)
    M, dim = _random_matrix(rng), rng.integers(1, 3, 3)
    ph = phonopy_for(prim, SupercellChoice(M, dim))
    sc = to_ase(ph.supercell)
    n = round(np.linalg.det(M)) * int(np.prod(dim))
    assert len(sc) == n * len(prim)  # atom count
    assert np.allclose(sc.cell.array, np.diag(dim) @ M @ prim.cell.array)  # lattice (rows)
    # the primitive cell phonopy maps back to is the input cell, atom for atom
    assert np.allclose(ph.primitive.cell, prim.cell.array)
    assert list(ph.primitive.symbols) == prim.get_chemical_symbols()
    d = ph.primitive.scaled_positions - prim.get_scaled_positions()
    assert np.allclose(d - np.rint(d), 0.0, atol=1e-8)
    # every supercell atom is a lattice translate of its primitive atom
    frac = sc.positions @ np.linalg.inv(prim.cell.array)
    p_of_s = [ph.primitive.p2p_map[j] for j in ph.primitive.s2p_map]
    assert sorted(np.bincount(p_of_s)) == [n] * len(prim)  # n images of each atom
    d = frac - prim.get_scaled_positions()[p_of_s]
    assert np.allclose(d - np.rint(d), 0.0, atol=1e-8)
