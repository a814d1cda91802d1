"""Phonons on real non-cubic sodium compounds: phonion's route (supercell choice, random ±
displacement patterns, force-constant fit) against an independent one (phonopy's own
supercell of the same matrix, finite displacements, phonopy's force constants) with the same
force field, on the same supercell. Structures from tests/data/structures (source in each
file's header); forces from a spring network on the published structure, whose force
constants are exact and short-ranged, so any difference is the machinery's."""

from __future__ import annotations

import numpy as np
import phonopy
import pytest

from phonion.displace import choose_supercell, displace
from phonion.fit_ifc import fit_force_constants
from phonion.harmonic import phonopy_for, to_ase, to_phonopy
from phonion.intake import read_structure, triage
from phonion.phonon_descriptors import mesh_msd
from phonion.settings import DisplaceSettings, FitIfcSettings, IntakeSettings

from conftest import STRUCTURES, SpringNetwork, forces_of

CASES = {  # structure → (crystal system, fc2 cutoff of the fit in Å: the spring network's
    #          4 Å keeps the fc2 exact; with all pairs the triclinic basis is 6087 wide)
    "NaYS2": ("trigonal, R-3m", None),
    "Na2O2-peroxide": ("hexagonal, P-62m", None),
    "Na2CO3-natrite": ("monoclinic, C2/m", None),
    "NaAlSi3O8-low-albite": ("triclinic, P-1", 4.5),
}


def _na_msd(ph, mesh=(8, 8, 8), T=800.0) -> float:
    na = np.array(ph.primitive.symbols) == "Na"
    return float(mesh_msd(ph, list(mesh), [T])[0][na].mean())


@pytest.mark.parametrize("name", CASES)
def test_phonons_of_a_non_cubic_compound_agree_with_an_independent_route(name):
    system, cutoff = CASES[name]
    prim = triage(read_structure(STRUCTURES / f"{name}.cif"), IntakeSettings(max_atoms=64))
    s = DisplaceSettings(fc2_cutoff_A=cutoff, safety_factor=3.0)
    d = displace(prim, s)
    P = d.choice.supercell_matrix  # NaYS2 and albite need a non-symmetric unit matrix
    springs = SpringNetwork(d.supercell, cutoff_A=min(cutoff or 4.0, 4.0))
    mine_ph = phonopy_for(prim, d.choice, symmetry=False)  # as fit_ifc runs it
    forces = forces_of(springs.calculator, d.supercell, d.displacements_A)
    fit = fit_force_constants(mine_ph, d.displacements_A, forces,
                              FitIfcSettings(fc2_cutoff_A=cutoff), log=None)
    mine_ph.force_constants = fit.fc2

    # independent: phonopy builds its own supercell from P (its column convention) and
    # takes finite displacements with the same force field
    ref = phonopy.Phonopy(to_phonopy(prim), supercell_matrix=P.T, log_level=0)
    ref.generate_displacements(distance=0.01, is_plusminus=True)
    ref_sc = to_ase(ref.supercell)
    assert len(ref_sc) == len(d.supercell)
    ref_springs = SpringNetwork(ref_sc, cutoff_A=min(cutoff or 4.0, 4.0))
    ref.forces = forces_of(ref_springs.calculator, ref_sc,
                           [to_ase(x).positions - ref_sc.positions
                            for x in ref.supercells_with_displacements])
    ref.produce_force_constants()

    for q in ([0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.1, 0.2, 0.3], [0.5, 0.5, 0.5]):
        a, b = mine_ph.get_frequencies(q), ref.get_frequencies(q)
        assert np.allclose(a, b, atol=0.02, rtol=0.005), (q, a - b)
    assert _na_msd(mine_ph) == pytest.approx(_na_msd(ref), rel=0.005)
    assert choose_supercell(prim, s).supercell_matrix.tolist() == P.tolist()
    if cutoff is None:  # the triclinic cell's 78 bands make this slow and add nothing
        _same_without_phonopy_symmetry(prim, d.choice, fit.fc2)


def _same_without_phonopy_symmetry(prim, choice, fc2):
    """The stability and descriptor stages run phonopy without its symmetry search (its
    meshes are full grids, its band path comes from seekpath): their results equal those of
    a phonopy object with symmetry."""
    from phonion.phonon_descriptors import phonon_descriptors
    from phonion.settings import PhononDescriptorsSettings, StabilitySettings
    from phonion.stability import assess_stability

    out = []
    for symmetry in (True, False):
        ph = phonopy_for(prim, choice, fc2, symmetry=symmetry)
        st, bands = assess_stability(ph, StabilitySettings())
        scalars, arrays = phonon_descriptors(ph, PhononDescriptorsSettings(temperatures_K=(800.0,)))
        out.append((st, bands, scalars, arrays))
    (st1, b1, sc1, a1), (st2, b2, sc2, a2) = out
    assert st1["lowest_frequency_THz"] == pytest.approx(st2["lowest_frequency_THz"], abs=1e-9)
    assert np.allclose(b1["path/frequencies_THz"], b2["path/frequencies_THz"], atol=1e-9)
    hot1, hot2 = sc1["by_temperature_K"]["800"], sc2["by_temperature_K"]["800"]
    assert hot1["msd_mobile_mean_A2"] == pytest.approx(hot2["msd_mobile_mean_A2"], rel=1e-9)
    assert sc1["mesh"] == sc2["mesh"]
    assert set(a1) == set(a2)
    for k in a1:
        x, y = np.asarray(a1[k]), np.asarray(a2[k])
        if x.dtype.kind in "SUO":  # labels
            assert np.array_equal(x, y), k
        else:
            assert np.allclose(x, y, atol=1e-9, equal_nan=True), k


def test_adaptive_snapshots_stop_when_the_msd_settles():
    """Adaptive mode (phonons.adaptive_snapshots) on hexagonal Na2O2 with the spring
    network: ± patterns are added one pair at a time, the MSD is undefined while the fit is
    under-determined, the loop stops at the first change below the tolerance, before the
    listed patterns run out, and the Na MSD then agrees with finite displacements."""
    from phonion.displace import count_free_parameters
    from phonion.fit_ifc import fit_symfc, independent_equations
    from phonion.forces import compute_forces_adaptive
    from phonion.lsq import DesignError

    prim = triage(read_structure(STRUCTURES / "Na2O2-peroxide.cif"),
                  IntakeSettings(max_atoms=64))
    d = displace(prim, DisplaceSettings(adaptive=True, max_snapshots=12, min_snapshots=1,
                                        safety_factor=0.5))
    springs = SpringNetwork(d.supercell)
    n_free = count_free_parameters(d.supercell, (2,))[2]
    ph = phonopy_for(prim, d.choice)

    def check(displacements, forces):  # as the forces stage's check (forces.msd_criterion)
        if independent_equations(displacements) < n_free:
            return None
        try:
            ph.force_constants = fit_symfc(ph, displacements, forces)
        except DesignError:  # enough equations, yet a singular design: not determined
            return None
        return _na_msd(ph)

    fs, history = compute_forces_adaptive(d.supercell, d.displacements_A, springs.calculator,
                                          start=2, batch=2, check=check, tolerance=0.005,
                                          log=None)
    assert history[0]["value"] is None  # one pattern cannot determine fc2 here
    assert history[-1]["relative_change"] < 0.005
    assert len(fs.displacements_A) == history[-1]["n_snapshots"] < len(d.displacements_A)
    assert [h["n_snapshots"] for h in history] == list(range(2, 2 * len(history) + 1, 2))

    ref = phonopy.Phonopy(to_phonopy(prim), supercell_matrix=d.choice.supercell_matrix.T,
                          log_level=0)
    ref.generate_displacements(distance=0.01, is_plusminus=True)
    ref_sc = to_ase(ref.supercell)
    ref.forces = forces_of(SpringNetwork(ref_sc).calculator, ref_sc,
                           [to_ase(x).positions - ref_sc.positions
                            for x in ref.supercells_with_displacements])
    ref.produce_force_constants()
    assert history[-1]["value"] == pytest.approx(_na_msd(ref), rel=0.01)


def test_a_relaxed_cell_is_symmetrized_before_the_symmetry_adapted_fit():
    """NaYS2 exactly as SevenNet-0 relaxed it (symmetric to ~1e-7 Å): symfc's least squares
    on that raw cell reproduced the forces of a spring network built on it to only 43 %;
    the displace stage symmetrizes first (phonion.symmetry.symmetrize), moving atoms by
    < 1e-5 Å, and the fit then reproduces them to better than 2 %."""
    import json

    from phonion.formats import atoms_from_dict
    from phonion.symmetry import symmetrize

    data = json.loads((STRUCTURES.parent / "NaYS2-relaxed-sevenn.json").read_text())
    relaxed = atoms_from_dict(data["structure"])
    prim, shift = symmetrize(relaxed, 1e-3)
    assert shift < 1e-5
    d = displace(prim, DisplaceSettings())
    ph = phonopy_for(prim, d.choice)
    forces = forces_of(SpringNetwork(d.supercell, cutoff_A=4.0).calculator, d.supercell,
                       d.displacements_A)
    fit = fit_force_constants(ph, d.displacements_A, forces, FitIfcSettings(), log=None)
    pred = -np.einsum("ijab,sjb->sia", fit.fc2, d.displacements_A)
    assert np.linalg.norm(pred - forces) / np.linalg.norm(forces) < 0.02
