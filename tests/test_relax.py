"""Relax: converges to the potential's own minimum, and reports what it must not hide."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from phonion.potentials import RigidIonPotential
from phonion.relax import relax, symmetry_verdict, verdict
from phonion.settings import RelaxSettings
from phonion.symmetry import symmetry_operations


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


def test_not_converged_names_the_unmet_criterion():
    """Rock salt compressed 8 %: every atom sits on an inversion centre, so the atomic
    forces vanish by symmetry and only the cell stress keeps the relaxation going; the
    reason must say so, with the stress in GPa and in the cell filter's eV/Å³."""
    atoms = bulk("NaCl", "rocksalt", a=5.2)
    s = RelaxSettings(fmax_eV_A=1e-4, max_steps=2)
    res = relax(atoms, RigidIonPotential(), s, logfile=None)
    status, reason = verdict(res, s)
    assert not res.converged and status == "failed"
    assert "not converged in 2 steps" in reason
    assert "atomic forces converged" in reason
    assert "cell stress" in reason and "GPa" in reason and "eV/Å³ = fmax·N/V" in reason
    assert "last energy change" in reason
    assert res.stress_row_max_eV_A3 > res.stress_threshold_eV_A3 == pytest.approx(
        1e-4 * 2 / res.atoms.get_volume())
    # forces unmet too: Na pushed off its site in a relaxed cell, one step allowed
    pushed = bulk("NaCl", "rocksalt", a=5.75)
    pushed.positions[0] += [0.2, 0.0, 0.0]
    res = relax(pushed, RigidIonPotential(), RelaxSettings(max_steps=1), logfile=None)
    assert "max atomic force" in verdict(res, RelaxSettings(max_steps=1))[1]


def test_a_stopped_relaxation_continues_where_it_stopped():
    atoms = bulk("NaCl", "rocksalt", a=5.2)
    s = RelaxSettings(fmax_eV_A=1e-4, max_steps=5)
    first = relax(atoms, RigidIonPotential(), s, logfile=None)
    more = RelaxSettings(fmax_eV_A=1e-4, max_steps=300)
    cont = relax(atoms, RigidIonPotential(), more, logfile=None, start=first.atoms,
                 steps_before=first.n_steps)
    fresh = relax(atoms, RigidIonPotential(), more, logfile=None)
    assert cont.converged and cont.n_steps_before == 5
    assert cont.volume_final_A3 == pytest.approx(fresh.volume_final_A3, rel=1e-4)
    assert cont.volume_initial_A3 == fresh.volume_initial_A3  # measured from the input


def test_a_more_symmetric_minimum_is_kept_and_recorded():
    # Na pushed off its site: the input is rhombohedral (R3m); relaxation restores Fm-3m,
    # a supergroup of R3m: the material goes on, with the change recorded
    atoms = bulk("NaCl", "rocksalt", a=5.75)
    atoms.positions[0] += np.array([0.15, 0.15, 0.15])
    res = relax(atoms, RigidIonPotential(), RelaxSettings(fmax_eV_A=1e-3, symprec=1e-2),
                logfile=None)
    assert res.converged and res.supergroup
    assert res.spacegroup_initial[1] == 160 and res.spacegroup_final[1] == 225
    status, reason = verdict(res, RelaxSettings(fmax_eV_A=1e-3, on_symmetry_change="fail"))
    assert status == "ok" and "R3m (160) -> Fm-3m (225)" in reason and "supergroup" in reason
    assert res.summary()["symmetry_change"] == "supergroup"


class _Pulled(RigidIonPotential):
    """The rigid-ion model plus a constant force of 0.5 eV/Å along x on atom 0 (and the
    opposite, spread, on the rest): its minimum has atom 0 off the inversion centre."""

    def calculate(self, *args, **kwargs):
        super().calculate(*args, **kwargs)
        extra = np.zeros((len(self.atoms), 3))
        extra[0, 0] = 0.5
        extra[1:, 0] = -0.5 / (len(self.atoms) - 1)
        self.results["forces"] = self.results["forces"] + extra


def test_a_loss_of_symmetry_follows_on_symmetry_change():
    """Relaxed freely (relax.fix_symmetry: false), a minimum off the symmetric positions is
    a loss of symmetry; with the default symmetry constraint the same forces leave the
    space group as it was, and the phonon screen judges the symmetric cell."""
    atoms = bulk("NaCl", "rocksalt", a=5.75, cubic=True)
    s = RelaxSettings(fmax_eV_A=1e-3, cell_filter="none", max_steps=500, fix_symmetry=False)
    res = relax(atoms, _Pulled(), s, logfile=None)
    assert res.converged and not res.supergroup
    assert res.spacegroup_final[1] < res.spacegroup_initial[1] == 225
    status, reason = verdict(res, s)
    assert status == "failed" and "symmetry lost" in reason and "on_symmetry_change" in reason
    status, reason = verdict(res, RelaxSettings(fmax_eV_A=1e-3, on_symmetry_change="warn"))
    assert status == "ok" and "accepted" in reason
    kept = relax(atoms, _Pulled(), RelaxSettings(fmax_eV_A=1e-3, cell_filter="none"),
                 logfile=None)
    assert RelaxSettings().fix_symmetry and kept.converged
    assert kept.spacegroup_final == ("Fm-3m", 225) and verdict(kept)[0] == "ok"


def test_fix_symmetry_keeps_space_group():
    atoms = bulk("NaCl", "rocksalt", a=5.5)
    res = relax(atoms, RigidIonPotential(),
                RelaxSettings(fmax_eV_A=1e-3, fix_symmetry=True), logfile=None)
    assert res.converged and res.spacegroup_final == ("Fm-3m", 225)


@pytest.mark.parametrize("optimizer", ["PreconLBFGS", "PreconFIRE"])
def test_preconditioned_optimizers_meet_the_cell_filters_stress_threshold(optimizer):
    """ASE's preconditioned optimizers stop when every stress component is below smax,
    which defaults to fmax read as eV/Å³ (0.8 GPa for 0.005): rock salt strained by 1 %
    then "converged" at once with its stress unrelaxed. relax gives them fmax·N/V."""
    atoms = bulk("NaCl", "rocksalt", a=5.64 * 1.01)
    s = RelaxSettings(optimizer=optimizer, fmax_eV_A=0.005, max_steps=300)
    res = relax(atoms, RigidIonPotential(), s, logfile=None)
    assert res.converged
    assert res.n_steps > 0
    assert res.stress_row_max_eV_A3 < np.sqrt(3) * res.stress_threshold_eV_A3


def test_fewer_operations_are_a_loss_even_when_the_old_ones_nearly_hold():
    """A real case where spglib and the per-operation check disagree near the tolerance:
    SevenNet-MF-0 moves tetragonal Na3PS4's atoms 0.005 Å off its 4-fold positions; spglib
    at 0.01 Å finds P2_12_12 (4 operations), every P-42_1c operation still maps the atoms
    within 0.01 Å. That is a loss of symmetry, not a supergroup; a true supergroup (the
    perfect cell against its own distorted input) still is one."""
    import json

    from phonion.formats import atoms_from_dict
    from phonion.symmetry import is_supergroup, keeps_operations, spacegroup

    from conftest import ROOT

    data = json.loads((ROOT / "tests/data/Na3PS4-tetragonal-relaxed-7net-mf-0.json").read_text())
    initial, final = atoms_from_dict(data["initial"]), atoms_from_dict(data["structure"])
    ops0 = symmetry_operations(initial, 0.01)
    assert spacegroup(initial, 0.01)[1] == 114 and spacegroup(final, 0.01)[1] == 18
    assert keeps_operations(final, ops0, 0.01)  # the check alone would call it a supergroup
    assert not is_supergroup(final, ops0, 0.01)
    assert symmetry_verdict(spacegroup(initial, 0.01), spacegroup(final, 0.01),
                            is_supergroup(final, ops0, 0.01))[0] == "failed"

    perfect = bulk("NaCl", "rocksalt", a=5.64)
    pushed = perfect.copy()
    pushed.positions[0] += 0.05
    assert is_supergroup(perfect, symmetry_operations(pushed, 0.01), 0.01)
