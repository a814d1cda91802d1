"""The analytic rigid-ion test potential against independent routes."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress

from phonion.errors import UnsupportedElements
from phonion.potentials import RigidIonPotential


@pytest.fixture
def rattled():
    atoms = bulk("NaCl", "rocksalt", a=5.7) * (2, 2, 1)
    atoms.rattle(0.05, seed=7)
    atoms.calc = RigidIonPotential()
    return atoms


def test_forces_are_minus_energy_gradient(rattled):
    numeric = calculate_numerical_forces(rattled, eps=1e-5)
    assert np.abs(rattled.get_forces() - numeric).max() < 1e-6


def test_stress_is_strain_derivative(rattled):
    numeric = calculate_numerical_stress(rattled, eps=1e-6)
    assert np.abs(rattled.get_stress() - numeric).max() < 1e-7


def test_madelung_limit():
    # Without damping and repulsion, the energy of rock salt NaCl per ion pair
    # tends to the Madelung energy -1.747565 e^2/(4 pi eps0 r0) as the cutoff grows.
    a = 5.64
    r0 = a / 2
    atoms = bulk("NaCl", "rocksalt", a=a)
    atoms.calc = RigidIonPotential(cutoff_A=40.0, alpha_per_A=0.12, b_eV=0.0)
    e_pair = atoms.get_potential_energy()
    assert e_pair == pytest.approx(-1.747565 * 14.399645 / r0, rel=2e-3)


def test_rock_salt_has_a_minimum_near_experiment():
    grid = np.linspace(5.0, 6.4, 57)
    energies = []
    for a in grid:
        atoms = bulk("NaCl", "rocksalt", a=a)
        atoms.calc = RigidIonPotential()
        energies.append(atoms.get_potential_energy())
    a_min = grid[int(np.argmin(energies))]
    assert 5.4 < a_min < 6.0  # experiment 5.64 A; a rigid-ion model without dispersion is larger


def test_unsupported_element_is_reported():
    atoms = bulk("Cu", "fcc", a=3.6)
    atoms.calc = RigidIonPotential()
    with pytest.raises(UnsupportedElements, match="Cu"):
        atoms.get_potential_energy()
