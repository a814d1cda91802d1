"""Harmonic-phonon machinery shared by the phonon stages: phonopy objects of a supercell
choice, meshes, band paths, and the mode-level quantities of seed 000 (eqs. 5, 8, 9)
computed from eigenvectors.

Units: frequencies THz, masses amu, mean-square displacements Å², temperatures K.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms
from scipy.constants import atomic_mass as AMU_KG
from scipy.constants import hbar as HBAR_J_S
from scipy.constants import k as KB_J_K


def canonical_fractions(frac: np.ndarray, tol: float = 1e-8) -> np.ndarray:
    """Fractional coordinates wrapped into [0, 1) the same way whatever the rounding: a
    coordinate within ``tol`` below 1 becomes 0. Why: a site on a cell face (x = 0 ≡ 1)
    comes back from Cartesian positions as 0.9999999999999998 or 1e-16 depending on the last
    bit, and phonopy builds its supercell from the wrapped values, so the two cases give the
    same atoms in a different order (each such atom moves to the image one lattice vector
    away). A supercell rebuilt by a later stage must match, atom for atom, the one the forces
    were computed on: measured on SevenNet-MF-0-relaxed NaYS2, the mismatch made every fit
    explain only 80 % of the forces and the Na MSD 9 % off (issue 23)."""
    f = np.mod(np.asarray(frac, dtype=float), 1.0)
    f[f > 1.0 - tol] = 0.0
    return f


def to_phonopy(atoms: Atoms):
    """ASE → PhonopyAtoms, with :func:`canonical_fractions`."""
    from phonopy.structure.atoms import PhonopyAtoms

    return PhonopyAtoms(symbols=atoms.get_chemical_symbols(), cell=atoms.cell.array,
                        scaled_positions=canonical_fractions(
                            atoms.get_scaled_positions(wrap=False)))


def to_ase(patoms) -> Atoms:
    """PhonopyAtoms → ASE."""
    return Atoms(symbols=patoms.symbols, cell=patoms.cell,
                 scaled_positions=patoms.scaled_positions, pbc=True)


@dataclass
class SupercellChoice:
    """Supercell = diag(dim) × unit cell, unit cell = ``unit_matrix`` × primitive cell.

    pheasy only accepts a diagonal supercell of its input cell, so a general
    supercell matrix P of the primitive cell is factored as P = diag(dim) · M
    with M the "unit cell" handed to phonopy and pheasy. Matrices are integer, with rows
    the new lattice vectors in units of the old ones (lattice_new = M @ lattice_old).
    """

    unit_matrix: np.ndarray  # M (integer, rows in primitive lattice vectors)
    dim: np.ndarray  # (3,) integers

    @property
    def supercell_matrix(self) -> np.ndarray:
        return np.diag(self.dim) @ self.unit_matrix


def phonopy_for(primitive: Atoms, choice: SupercellChoice, fc2: np.ndarray | None = None,
                symmetry: bool = True):
    """Phonopy object whose unit cell is M·primitive, supercell diag(dim), primitive back;
    with force constants ``fc2`` (eV/Å², full supercell form) when given. ``symmetry=False``
    skips phonopy's symmetry search (≈ 0.3 s on a 128-atom supercell: the atomic
    permutations of every space-group operation) for the stages that use no phonopy
    symmetry: random displacements do not, and symfc and pheasy find their own."""
    from phonopy import Phonopy

    unit = to_phonopy(primitive)
    M = choice.unit_matrix
    if not np.array_equal(M, np.eye(3, dtype=int)):
        from phonopy.structure.cells import get_supercell

        # phonopy's matrices act on lattice vectors as columns (lattice_new = lattice_old @ S),
        # the transpose of this module's row convention (lattice_new = M @ lattice_old)
        unit = get_supercell(unit, M.T)
        # the same wrap for the intermediate cell (canonical_fractions: its sites on a face
        # otherwise land on either side with the last bit of the primitive's coordinates)
        unit.scaled_positions = canonical_fractions(unit.scaled_positions)
    ph = Phonopy(unit, supercell_matrix=np.diag(choice.dim),
                 primitive_matrix=np.linalg.inv(M).T, log_level=0, is_symmetry=symmetry)
    if fc2 is not None:
        ph.force_constants = fc2
    return ph


def phonopy_from_displace(displace_result: dict, fc2: np.ndarray | None = None,
                          symmetry: bool = False):
    """The Phonopy object of a ``displace`` stage result (its primitive cell and supercell
    choice), with force constants ``fc2`` when given. Without phonopy's symmetry search by
    default: the stages that build it (fits, full-grid meshes, seekpath band paths) use
    none; ``symmetry=True`` for phonopy's own finite displacements (:func:`phonopy_for`)."""
    from .formats import atoms_from_dict

    choice = SupercellChoice(np.array(displace_result["unit_matrix"]),
                             np.array(displace_result["dim"]))
    ph = phonopy_for(atoms_from_dict(displace_result["primitive"]), choice, fc2, symmetry)
    if "supercell" in displace_result:
        check_same_supercell(to_ase(ph.supercell), atoms_from_dict(displace_result["supercell"]))
    return ph


def check_same_supercell(rebuilt: Atoms, stored: Atoms, tol_A: float = 1e-5) -> None:
    """Raise when a supercell rebuilt from the primitive cell is not, atom for atom, the
    one the snapshots were made on (same cell, species and positions in the same order):
    force constants fitted across the two would pair forces with the wrong atoms."""
    from .errors import PhonionError

    same = (len(rebuilt) == len(stored)
            and np.allclose(rebuilt.cell.array, stored.cell.array, atol=tol_A)
            and list(rebuilt.numbers) == list(stored.numbers))
    if same:
        d = rebuilt.get_scaled_positions(wrap=False) - stored.get_scaled_positions(wrap=False)
        d -= np.rint(d)  # an atom at x = 0 and one at x = 1 of the *supercell* are the same
        same = float(np.abs(d @ stored.cell.array).max()) < tol_A
    if not same:
        raise PhonionError(
            "the supercell rebuilt from displace.json is not the one its snapshots were made "
            "on (atoms in another order): rerun the material from displace "
            "(snakemake --forcerun displace)")


@dataclass
class Modes:
    """Phonon modes on a set of q-points.

    ``frequencies_THz`` (nq, nb); ``eigenvectors`` (nq, 3N, nb) as phonopy returns
    them (column b is mode b, normalised); ``weights`` (nq,) sum to 1.
    """

    qpoints: np.ndarray
    weights: np.ndarray
    frequencies_THz: np.ndarray
    eigenvectors: np.ndarray
    masses_amu: np.ndarray


def mesh_modes(ph, mesh, gamma_center: bool = False) -> Modes:
    """Modes on a uniform mesh without symmetry reduction (all q-points, equal weights).

    ``mesh`` is three integers or a length (Å) that phonopy turns into a mesh.
    """
    ph.run_mesh(mesh, with_eigenvectors=True, is_mesh_symmetry=False,
                is_gamma_center=gamma_center)
    m = ph.mesh
    nq = len(m.qpoints)
    return Modes(m.qpoints, np.full(nq, 1.0 / nq), m.frequencies, m.eigenvectors,
                 ph.primitive.masses)


def iter_mesh_modes(ph, mesh, gamma_center: bool = False, max_values: int = 20_000_000):
    """Yield :class:`Modes` of a full uniform mesh in chunks of at most ``max_values``
    eigenvector entries (weights are 1/N_q of the whole mesh), so that large cells on
    fine meshes never hold all eigenvectors at once."""
    ph.run_mesh(mesh, with_eigenvectors=False, is_mesh_symmetry=False,
                is_gamma_center=gamma_center)
    q_all = np.array(ph.mesh.qpoints)
    nq = len(q_all)
    nb = 3 * len(ph.primitive)
    chunk = max(1, max_values // (nb * nb))
    for start in range(0, nq, chunk):
        q = q_all[start:start + chunk]
        res = ph.run_qpoints(q, with_eigenvectors=True)
        yield Modes(q, np.full(len(q), 1.0 / nq), np.asarray(res.frequencies),
                    np.asarray(res.eigenvectors), ph.primitive.masses)


def mesh_numbers(ph, mesh) -> list[int]:
    """Integer mesh for ``mesh`` (integers, or a length in Å as in phonopy), rounded up
    to even numbers: an even Monkhorst–Pack mesh avoids Γ, where acoustic modes
    diverge, and converges the MSD faster than a Γ-centred one (docs/phonons.md)."""
    from phonopy.phonon.grid import length2mesh

    if np.ndim(mesh) == 0:
        mesh = length2mesh(float(mesh), ph.primitive.cell)
    return [int(2 * np.ceil(int(x) / 2)) for x in mesh]


@dataclass
class BandPath:
    """Modes along the seekpath band path, split into segments for plotting."""

    distances: list[np.ndarray]
    labels: list[str]
    label_positions: list[float]
    modes: Modes

    def arrays(self) -> dict:
        """The path in the flat layout of the stage array files (``path/…``)."""
        return {
            "path/qpoints": self.modes.qpoints,
            "path/distances": np.concatenate(self.distances),
            "path/segment_lengths": np.array([len(d) for d in self.distances]),
            "path/frequencies_THz": self.modes.frequencies_THz,
            "path/label_positions": np.array(self.label_positions),
            "path/labels": np.array(self.labels, dtype="S"),
        }


def band_path(ph, npoints: int = 51) -> BandPath:
    """Frequencies and eigenvectors along the seekpath path of the primitive cell."""
    ph.auto_band_structure(npoints=npoints, with_eigenvectors=True, write_yaml=False,
                           plot=False)
    bands = ph.band_structure
    q = np.concatenate(bands.qpoints)
    distances = list(bands.distances)
    raw = list(bands.labels) if bands.labels is not None else []
    # phonopy lists one label per segment end, plus one more at every break of the path
    labels, positions, k = [raw[0] if raw else ""], [float(distances[0][0])], 1
    for i, dist in enumerate(distances):
        label = raw[k] if k < len(raw) else ""
        k += 1
        if not bands.path_connections[i] and i + 1 < len(distances):
            label = f"{label}|{raw[k] if k < len(raw) else ''}"
            k += 1
        labels.append(label)
        positions.append(float(dist[-1]))
    nq = len(q)
    modes = Modes(q, np.full(nq, 1.0 / nq), np.concatenate(bands.frequencies),
                  np.concatenate(bands.eigenvectors), ph.primitive.masses)
    return BandPath(distances, labels, positions, modes)


def acoustic_cutoff(path_modes: Modes) -> float:
    """Highest frequency (THz) of the three lowest branches along the band path (seed 000
    §3.3)."""
    return float(np.sort(path_modes.frequencies_THz, axis=1)[:, :3].max())


def frequencies_at(ph, q) -> np.ndarray:
    """Frequencies (THz) at one q-point in reduced coordinates of the primitive cell."""
    return np.asarray(ph.run_qpoints([q]).frequencies[0])


def gamma_acoustic_mask(modes: Modes) -> np.ndarray:
    """(nq, nb) mask of the three modes of smallest |f| at every Γ point of ``modes``."""
    mask = np.zeros(modes.frequencies_THz.shape, bool)
    at_gamma = np.all(np.abs(modes.qpoints - np.rint(modes.qpoints)) < 1e-8, axis=1)
    for i in np.flatnonzero(at_gamma):
        mask[i, np.argsort(np.abs(modes.frequencies_THz[i]))[:3]] = True
    return mask


def bose_einstein(freq_THz: np.ndarray, temperature_K: float) -> np.ndarray:
    """Phonon occupation n(ω, T) of seed 000 eq. 6."""
    x = HBAR_J_S * 2 * np.pi * freq_THz * 1e12 / (KB_J_K * temperature_K)
    return 1.0 / np.expm1(x)


def mode_msd(modes: Modes, temperature_K: float, freq_min_THz: float = 0.0,
             classical: bool = False) -> np.ndarray:
    """Per-mode, per-atom, per-direction contribution to the MSD, Å² (nq, nb, N, 3).

    Seed 000 eq. 5: ⟨u_α²(j)⟩ = ħ/(2 N_q m_j) Σ_{qν} ω⁻¹ (1 + 2n) |e_α(j; qν)|².
    Summing over q (with ``weights`` = 1/N_q) and modes gives phonopy's thermal
    displacements with ``exclude_gamma_acoustic=True``. Modes at or below
    ``freq_min_THz`` (imaginary) and the three acoustic modes at Γ contribute zero.
    ``classical``: the high-temperature limit ħ(1 + 2n)/2ω → k_B T/ω², what a classical MD
    of the same harmonic crystal samples.
    """
    f = modes.frequencies_THz
    nq, nb = f.shape
    natom = nb // 3
    valid = (f > freq_min_THz) & ~gamma_acoustic_mask(modes)
    fs = np.where(valid, f, 1.0)
    n = bose_einstein(fs, temperature_K)
    omega = 2 * np.pi * fs * 1e12
    amp = np.where(valid, (KB_J_K * temperature_K / omega**2) if classical
                   else HBAR_J_S * (1 + 2 * n) / (2 * omega), 0.0)  # J s² … per kg
    e2 = np.abs(modes.eigenvectors) ** 2  # (nq, 3N, nb)
    e2 = e2.transpose(0, 2, 1).reshape(nq, nb, natom, 3)
    m = modes.masses_amu[None, None, :, None] * AMU_KG
    msd_m2 = amp[:, :, None, None] * e2 / m * modes.weights[:, None, None, None]
    return msd_m2 * 1e20


def participation_ratio(modes: Modes) -> np.ndarray:
    """Seed 000 eq. 8: P⁻¹ = N Σ_i (Σ_α |e_iα|²)², for normalised eigenvectors; (nq, nb)."""
    nq, three_n, nb = modes.eigenvectors.shape
    natom = three_n // 3
    w = (np.abs(modes.eigenvectors) ** 2).reshape(nq, natom, 3, nb).sum(axis=2)  # (nq, N, nb)
    return 1.0 / (natom * np.sum(w**2, axis=1))


def coupling_factor(modes: Modes, mobile: np.ndarray) -> np.ndarray:
    """Seed 000 eq. 9: mobile-ion / host coupling of every mode, in [-1, 1]; (nq, nb).

    Choices the paper leaves open (docs/phonons.md): each sublattice is
    represented by the summed displacement pattern of its atoms,
    E_S,α = Σ_{j∈S} e_α(j)/√m_j, and the factor is the cosine
    Re(Σ_α E*_mobile,α E_host,α)/(|E_mobile| |E_host|). NaN when either
    sublattice has no net displacement in the mode.
    """
    nq, three_n, nb = modes.eigenvectors.shape
    natom = three_n // 3
    u = modes.eigenvectors.reshape(nq, natom, 3, nb) / np.sqrt(modes.masses_amu)[None, :, None,
                                                                                  None]
    e_mob = u[:, mobile].sum(axis=1)  # (nq, 3, nb)
    e_host = u[:, ~mobile].sum(axis=1)
    num = np.real(np.sum(np.conj(e_mob) * e_host, axis=1))
    den = np.linalg.norm(e_mob, axis=1) * np.linalg.norm(e_host, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = num / den
    tiny = den < 1e-8 * np.nanmax(den) if np.any(den > 0) else np.ones_like(den, bool)
    return np.where(tiny, np.nan, np.clip(c, -1.0, 1.0))
