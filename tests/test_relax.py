"""Relax: converges to the potential's own minimum, and reports what it must not hide."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from phonion.potentials import RigidIonPotential
from phonion.relax import relax, verdict
from phonion.settings import RelaxSettings


def _energy_minimum_lattice() -> float:
    """Independent route: minimum of E(a) of rock-salt NaCl by a dense scan + parabola."""
    grid = np.linspace(5.6, 6.0, 81)
    energies = []
    for a in grid:
        atoms = bulk("NaCl", "rocksalt", a=a)
        atoms.calc = RigidIonPotential()
        energies.append(atoms.get_potential_energy())
    k = int(np.argmin(energies))
    c = np.polyfit(grid[k - 3:k + 4], energies[k - 3:k + 4], 2)
    return -c[1] / (2 * c[0])


def test_cell_relaxation_finds_the_energy_minimum():
    atoms = bulk("NaCl", "rocksalt", a=5.64)
    s = RelaxSettings(fmax_eV_A=1e-4, max_steps=300)
    res = relax(atoms, RigidIonPotential(), s, logfile=None)
    assert res.converged
    a_relaxed = (4 * res.atoms.get_volume()) ** (1 / 3)
    assert a_relaxed == pytest.approx(_energy_minimum_lattice(), abs=2e-3)
    assert res.spacegroup_initial == res.spacegroup_final == ("Fm-3m", 225)
    assert verdict(res, s) == ("ok", "")


def test_not_converged_is_failed():
    atoms = bulk("NaCl", "rocksalt", a=5.2)
    s = RelaxSettings(fmax_eV_A=1e-4, max_steps=2)
    res = relax(atoms, RigidIonPotential(), s, logfile=None)
    status, reason = verdict(res, s)
    assert not res.converged and status == "failed"
    assert "not converged in 2 steps" in reason


def test_symmetry_change_is_reported():
    # Na pushed off its site: the input is rhombohedral (R3m); relaxation restores Fm-3m.
    atoms = bulk("NaCl", "rocksalt", a=5.75)
    atoms.positions[0] += np.array([0.15, 0.15, 0.15])
    res = relax(atoms, RigidIonPotential(), RelaxSettings(fmax_eV_A=1e-3, symprec=1e-2),
                logfile=None)
    assert res.converged
    assert res.spacegroup_initial[1] != 225 and res.spacegroup_final[1] == 225
    status, reason = verdict(res, RelaxSettings(fmax_eV_A=1e-3, on_symmetry_change="fail"))
    assert status == "failed" and "space group changed" in reason
    status, _ = verdict(res, RelaxSettings(fmax_eV_A=1e-3, on_symmetry_change="warn"))
    assert status == "ok"


def test_fix_symmetry_keeps_space_group():
    atoms = bulk("NaCl", "rocksalt", a=5.5)
    res = relax(atoms, RigidIonPotential(),
                RelaxSettings(fmax_eV_A=1e-3, fix_symmetry=True), logfile=None)
    assert res.converged and res.spacegroup_final == ("Fm-3m", 225)
