"""Displace: phonon supercell and randomly displaced snapshots (seed 000 §2.3).

Verbs: :func:`choose_supercell` (near-isotropic, at least ``min_atoms`` atoms),
:func:`count_free_parameters` (symmetry-independent force constants, symfc),
:func:`n_snapshots` (snapshots from free parameters × safety factor) and
:func:`displace` (phonopy random displacements of fixed amplitude, or phonopy's finite
displacements where those cost fewer force evaluations).

Seed 000 uses a fixed 30 snapshots of 0.03 Å for every structure. Here the
count follows from the fit: each snapshot of an N-atom supercell gives 3N
force equations, so ``ceil(safety_factor × n_free / 3N)`` snapshots give
``safety_factor`` equations per unknown (docs/phonons.md compares the numbers).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build.supercells import eval_length_deviation, find_optimal_cell_shape

from .errors import ConfigError, StructureRejected
from .harmonic import SupercellChoice, phonopy_for, to_ase, to_phonopy
from .lsq import DesignError, conditioning, normal_equations
from .settings import DisplaceSettings
from .symmetry import inscribed_diameter_A


def _point_group_rotations(atoms: Atoms, symprec: float) -> np.ndarray:
    """Rotations of the space group in fractional coordinates of ``atoms.cell``."""
    import spglib

    data = spglib.get_symmetry((atoms.cell.array, atoms.get_scaled_positions(), atoms.numbers),
                               symprec=symprec)
    return np.unique(data["rotations"], axis=0)


def _keeps_symmetry(P: np.ndarray, rotations: np.ndarray) -> bool:
    """True when the supercell lattice P (rows, primitive coordinates) is invariant
    under every rotation W, i.e. P W^T P^-1 is an integer matrix."""
    Pinv = np.linalg.inv(P)
    return all(np.allclose(M, np.rint(M), atol=1e-6) for M in (P @ W.T @ Pinv for W in rotations))


def _conventional_matrix(atoms: Atoms, symprec: float) -> np.ndarray:
    """Integer M with conventional lattice = M @ primitive lattice (spglib, no idealisation)."""
    import spglib

    std = spglib.standardize_cell((atoms.cell.array, atoms.get_scaled_positions(), atoms.numbers),
                                  to_primitive=False, no_idealize=True, symprec=symprec)
    return np.rint(std[0] @ np.linalg.inv(atoms.cell.array)).astype(int)


def choose_supercell(atoms: Atoms, s: DisplaceSettings = DisplaceSettings()
                     ) -> SupercellChoice:
    """Near-isotropic supercell with ≥ ``min_atoms`` atoms that keeps the full point group.

    Candidates are diagonal multiples of the primitive and of the conventional
    cell and ASE's most cubic shapes (``find_optimal_cell_shape``) of the
    smallest allowed sizes. Only supercells whose lattice keeps every rotation
    of the crystal are kept (otherwise the force constants lose symmetry); of
    those within ``max_atoms`` and with every face-to-face distance ≥
    ``min_length_A``, the one minimising ``atoms × (1 + 2 × length deviation)``
    wins (ASE ``eval_length_deviation``: 0 for a cube).
    """
    min_atoms, max_atoms, min_length_A = s.min_atoms, s.max_atoms, s.min_length_A
    n_prim = len(atoms)
    n_min = max(1, math.ceil(min_atoms / n_prim))
    n_max = math.floor(max_atoms / n_prim)
    rotations = _point_group_rotations(atoms, s.symprec)
    conv = _conventional_matrix(atoms, s.symprec)
    eye = np.eye(3, dtype=int)
    candidates = [SupercellChoice(eye, np.array(d)) for d in
                  itertools.product(range(1, 9), repeat=3)]
    candidates += [SupercellChoice(conv, np.array(d)) for d in
                   itertools.product(range(1, 6), repeat=3)]
    for n in range(n_min, min(n_max, n_min + 3) + 1):
        # ±1 around ASE's rounded ideal matrix instead of its default ±2: 3^9 instead of 5^9
        # candidate matrices, 0.05 s instead of 1.2 s per material; on the 38 test
        # structures the same choice for 35, a more cubic one for 2, 4 % costlier for 1
        P = np.rint(find_optimal_cell_shape(atoms.cell, n, "sc", lower_limit=-1,
                                            upper_limit=1)).astype(int)
        candidates.append(SupercellChoice(P if np.linalg.det(P) > 0 else -P, np.ones(3, int)))
    best = None
    for cand in candidates:
        P = cand.supercell_matrix
        n = round(abs(np.linalg.det(P)))
        if not n_min <= n <= n_max:
            continue
        sc = P @ atoms.cell.array
        if inscribed_diameter_A(sc) < min_length_A - 1e-9 or not _keeps_symmetry(P, rotations):
            continue
        cost = n * n_prim * (1 + 2 * float(eval_length_deviation(sc, "sc")))
        if best is None or cost < best[0] - 1e-9:
            best = (cost, cand)
    if best is None:
        raise StructureRejected(
            f"no symmetry-preserving supercell with {min_atoms}..{max_atoms} atoms "
            f"(phonons.min_atoms/max_atoms) and face distances >= {min_length_A} Å")
    return best[1]


BASIS_FILE = "symfc_basis.pickle"  # beside displace.json; fit_ifc and the checks reuse it


def symfc_basis(supercell: Atoms, orders: tuple[int, ...] = (2,),
                cutoff_A: float | None = None, symprec: float = 1e-3,
                cache: Path | None = None):
    """symfc object with the symmetry-adapted basis of each order computed, the fc2 pair
    interactions limited to ``cutoff_A`` (Å) when given; a least-squares fit on the same
    supercell reuses it (:func:`phonion.fit_ifc.fit_symfc`) instead of building it again.
    ``symprec`` (Å) is phonion's symmetry tolerance: symfc's own default (1e-5) misses
    operations of a relaxed cell (tetragonal Na3PS4 after an MLP relaxation: 2 378
    parameters instead of 1 188) and its least-squares fit then explains almost none of
    the forces.

    ``cache``: a file that keeps the basis between processes (the ``displace`` stage writes
    it, ``fit_ifc`` and the re-checks read it). An entry is used only when it was built for
    the same supercell (to 1e-6), cutoff, tolerance, symfc version and at least these
    orders; otherwise, or when it is missing or unreadable, the basis is built and the file
    rewritten atomically. The build is what costs on high-symmetry cells (0.85 s for
    128-atom rock salt, 3 072 operations; 0.2 s for 108-atom R-3m NaYS2).
    Hand-written: symfc keeps no basis between processes."""
    import pickle
    from importlib import metadata

    from symfc import Symfc

    key = _basis_key(supercell, cutoff_A, symprec, metadata.version("symfc"))
    if cache is not None and cache.is_file():
        try:
            with open(cache, "rb") as fh:
                entry = pickle.load(fh)
            if entry["key"] == key and set(orders) <= set(entry["symfc"].basis_set):
                return entry["symfc"]
        except Exception:  # noqa: BLE001 - a damaged or foreign entry is rebuilt below
            pass
    sym = Symfc(to_phonopy(supercell), use_mkl=False, log_level=0,
                cutoff={2: cutoff_A} if cutoff_A else None, symprec=symprec)
    sym.compute_basis_set(orders=list(orders))
    if cache is not None:
        try:
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            with open(tmp, "wb") as fh:
                pickle.dump({"key": key, "symfc": sym}, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, cache)  # atomic: a reader sees the old or the new entry
        except OSError:
            pass
    return sym


def _basis_key(supercell: Atoms, cutoff_A: float | None, symprec: float,
               version: str) -> str:
    """What a symfc basis depends on: the supercell (species, cell and fractional positions
    to 1e-6), the fc2 cutoff (Å), the symmetry tolerance (Å) and the symfc version."""
    h = hashlib.sha256()
    h.update(np.asarray(supercell.numbers, dtype=np.int64).tobytes())
    for arr in (supercell.cell.array, supercell.get_scaled_positions(wrap=True)):
        h.update(np.round(np.asarray(arr, dtype=float), 6).tobytes())
    return f"{h.hexdigest()}|{cutoff_A}|{symprec}|{version}"


def free_parameters(sym) -> dict[int, int]:
    """Number of symmetry-independent force constants per order of a :func:`symfc_basis`."""
    return {o: int(b.basis_set.shape[1]) for o, b in sym.basis_set.items()}


def count_free_parameters(supercell: Atoms, orders: tuple[int, ...] = (2,),
                          cutoff_A: float | None = None, symprec: float = 1e-3
                          ) -> dict[int, int]:
    """Number of symmetry-independent force constants per order (symfc basis size) of
    :func:`symfc_basis` with the same arguments."""
    return free_parameters(symfc_basis(supercell, orders, cutoff_A, symprec))


def n_snapshots(n_free: dict[int, int], n_atoms_supercell: int, safety_factor: float = 1.5,
                min_snapshots: int = 1) -> int:
    """Displacement patterns so that independent force equations ≥ ``safety_factor`` × free
    parameters (each pattern of an N-atom supercell gives 3N; with ± pairs a pattern is two
    snapshots, u and −u, that give the same 3N equations of fc2)."""
    equations = 3 * n_atoms_supercell
    return max(min_snapshots, math.ceil(safety_factor * sum(n_free.values()) / equations))


@dataclass
class Displacements:
    """Supercell, snapshots and the numbers that decided them."""

    choice: SupercellChoice
    supercell: Atoms
    displacements_A: np.ndarray  # (n_snapshots, n_atoms, 3); ± pairs next to each other
    n_free: dict[int, int]
    amplitude_A: float
    seed: int
    plus_minus: bool = False
    n_patterns: int = 0  # patterns to evaluate; more are listed for adaptive forces
    design_conditioning: float | None = None  # λmin/λmax of the fc2 normal matrix
    n_patterns_counted: int = 0  # from the parameter count, before the conditioning check
    scheme: str = "random"  # random | finite_displacement (fewer force evaluations)
    n_random_evaluations: int | None = None  # what the random patterns would have cost

    def summary(self) -> dict:
        per = 2 if self.plus_minus else 1
        return {
            "supercell_matrix": self.choice.supercell_matrix.tolist(),
            "unit_matrix": self.choice.unit_matrix.tolist(),
            "dim": self.choice.dim.tolist(),
            "n_atoms_supercell": len(self.supercell),
            "supercell_min_length_A": inscribed_diameter_A(self.supercell.cell.array),
            "n_patterns": self.n_patterns,
            "n_patterns_from_parameter_count": self.n_patterns_counted,
            "n_snapshots": per * self.n_patterns,
            "n_snapshots_listed": len(self.displacements_A),
            "plus_minus": self.plus_minus,
            "n_free_parameters": {f"fc{k}": v for k, v in self.n_free.items()},
            "patterns_determined": round(sum(self.n_free.values())
                                         / (3 * len(self.supercell)), 3),
            "design_conditioning": self.design_conditioning,
            "displacement_scheme": self.scheme,
            "n_random_evaluations": self.n_random_evaluations,
            "amplitude_A": self.amplitude_A,
            "seed": self.seed,
        }


def _random_patterns(ph, count: int, s: DisplaceSettings, seed: int) -> np.ndarray:
    """``count`` phonopy random patterns of ``s.amplitude_A`` (Å) for ``seed``, with their
    inverses next to them when ``s.plus_minus``: (count × (2 or 1), N, 3)."""
    ph.generate_displacements(distance=s.amplitude_A, number_of_snapshots=count,
                              random_seed=seed, is_plusminus=s.plus_minus)
    disp = np.asarray(ph.dataset["displacements"], dtype=float)
    if s.plus_minus:  # phonopy lists u_1 .. u_n, -u_1 .. -u_n: pair them up
        disp = np.stack([disp[:count], disp[count:]], axis=1).reshape(-1, *disp.shape[1:])
    return disp


def _conditioned(basis, ph, disp: np.ndarray, n: int, s: DisplaceSettings
                 ) -> tuple[np.ndarray, int, float]:
    """The patterns, their number and the conditioning λmin/λmax of the fc2 normal matrix
    once it reaches ``s.min_design_conditioning``: patterns are added (one at a time, a
    twentieth more for bases over 4 000 parameters; listed ones first, then new ones from
    seeds ``seed + 1, seed + 2, …``) until it does. The matrix depends on the displacements
    only (:mod:`phonion.lsq`), so this costs no force evaluation; one ± pair counts once.
    Measured (docs/phonons.md): the design stays singular up to about twice the patterns
    the equation count asks for, then jumps to 1e-4…1e-2, so the first count that passes is
    the fewest patterns that determine fc2."""

    per = 2 if s.plus_minus else 1
    xtx = normal_equations(basis, disp[:per * n:per])[0]
    ratio = conditioning(xtx)
    cap = 3 * n + 6
    extra_seed = s.seed
    while ratio < s.min_design_conditioning and n < cap:
        step = 1 if xtx.shape[0] <= 4000 else max(1, n // 20)
        have = len(disp) // per
        if have < n + step:
            extra_seed += 1
            disp = np.concatenate([disp, _random_patterns(ph, n + step - have, s,
                                                          extra_seed)])
        xtx += normal_equations(basis, disp[per * n:per * (n + step):per])[0]
        n += step
        ratio = conditioning(xtx)
    if ratio < s.min_design_conditioning:
        raise DesignError(
            f"{n} random displacement patterns do not determine fc2 (λmin/λmax of the "
            f"least-squares normal matrix {ratio:.1e} < phonons.min_design_conditioning = "
            f"{s.min_design_conditioning:g}); a larger supercell (phonons.min_atoms) or "
            "phonons.fit_method: lasso may help")
    return disp, n, ratio


def finite_displacements(atoms: Atoms, choice: SupercellChoice, amplitude_A: float
                         ) -> np.ndarray:
    """phonopy's symmetry-reduced finite displacements of ``amplitude_A`` (Å) on the
    supercell of ``choice``, ± only where symmetry does not give the inverse
    (``is_plusminus="auto"``), as full snapshots (n, N, 3): one atom displaced in each."""
    ph = phonopy_for(atoms, choice, symmetry=True)
    ph.generate_displacements(distance=amplitude_A, is_plusminus="auto")
    plain = phonopy_for(atoms, choice, symmetry=False).supercell  # the one displace keeps
    if not (np.array_equal(ph.supercell.numbers, plain.numbers) and np.allclose(
            ph.supercell.scaled_positions, plain.scaled_positions, atol=1e-10)):
        raise RuntimeError("phonopy's supercell with symmetry differs from the one without")
    n_atoms = len(ph.supercell)
    out = np.zeros((len(ph.dataset["first_atoms"]), n_atoms, 3))
    for k, d in enumerate(ph.dataset["first_atoms"]):
        out[k, d["number"]] = d["displacement"]
    return out


def displace(atoms: Atoms, s: DisplaceSettings = DisplaceSettings(),
             basis_cache: Path | None = None) -> Displacements:
    """Supercell of the (relaxed primitive) cell and random displacement patterns.

    Every atom of every pattern is displaced by exactly ``amplitude_A`` in a random
    direction (phonopy ``generate_displacements(number_of_snapshots=…, distance=…)``, seed
    000). With ``plus_minus`` each pattern u is followed by −u: in the fit of fc2 the
    even-order (cubic) anharmonic forces of the pair cancel, which at 0.03 Å otherwise bias
    the Na MSD by 2–3 % and need many snapshots to average out (docs/phonons.md). The number
    of patterns follows from the free fc2 (and fc3) parameters (:func:`n_snapshots`) and is
    then raised until the least-squares design of fc2 is well conditioned
    (:func:`_conditioned`; the count of equations alone misses designs that are singular
    however overdetermined, :mod:`phonion.lsq`). With ``adaptive`` up to ``max_snapshots``
    patterns are listed and the forces stage evaluates them in batches until the MSD
    settles. When phonopy's symmetry-reduced finite displacements (:func:`
    finite_displacements`) need fewer force evaluations than the conditioned random patterns
    (low symmetry), they are the snapshots instead (``displacement_scheme``), fitted the same
    way. ``basis_cache``: where the symfc basis that counts the free parameters is kept for
    the fit (:func:`symfc_basis`).
    """
    choice = choose_supercell(atoms, s)
    ph = phonopy_for(atoms, choice, symmetry=False)  # random patterns use no symmetry
    supercell = to_ase(ph.supercell)
    basis = symfc_basis(supercell, s.orders, s.fc2_cutoff_A, s.symprec, basis_cache)
    n_free = free_parameters(basis)
    n = counted = n_snapshots(n_free, len(supercell), s.safety_factor, s.min_snapshots)
    listed = max(n, s.max_snapshots) if s.adaptive else n
    per = 2 if s.plus_minus else 1
    fd = fd_ratio = None
    if s.displacement_scheme != "random" and not (s.fc3 or s.adaptive):
        # On low symmetry random patterns determine fc2 only at about twice the equation
        # count (docs/phonons.md), which can cost more force evaluations than phonopy's
        # finite displacements; then those are the snapshots (the same least-squares fit
        # of the same model, so never more evaluations than the finite-displacement route).
        fd = finite_displacements(atoms, choice, s.amplitude_A)
        fd_ratio = conditioning(normal_equations(basis, fd)[0])
        if s.displacement_scheme == "finite_displacement":
            if fd_ratio < s.min_design_conditioning:
                raise DesignError(f"{len(fd)} finite displacements do not determine fc2 "
                                  f"(λmin/λmax {fd_ratio:.1e})")
            return Displacements(choice, supercell, fd, n_free, s.amplitude_A, s.seed, False,
                                 len(fd), fd_ratio, counted, "finite_displacement")
    elif s.displacement_scheme == "finite_displacement":
        raise ConfigError("phonons.displacement_scheme: finite_displacement fits fc2 alone: "
                          "not with phonons.fc3 or phonons.adaptive_snapshots")
    disp = _random_patterns(ph, listed, s, s.seed)
    ratio = None
    if not s.fc3:  # fc2 + fc3 go to pheasy's joint fit, which regularises
        try:
            disp, n, ratio = _conditioned(basis, ph, disp, n, s)
        except DesignError:
            if fd is None or fd_ratio < s.min_design_conditioning:
                raise
            # random patterns do not determine fc2 within their cap: finite displacements do
            return Displacements(choice, supercell, fd, n_free, s.amplitude_A, s.seed, False,
                                 len(fd), fd_ratio, counted, "finite_displacement")
    if fd is not None and fd_ratio >= s.min_design_conditioning and len(fd) < per * n:
        return Displacements(choice, supercell, fd, n_free, s.amplitude_A, s.seed, False,
                             len(fd), fd_ratio, counted, "finite_displacement", per * n)
    return Displacements(choice, supercell, disp, n_free, s.amplitude_A, s.seed,
                         s.plus_minus, n, ratio, counted, "random", per * n)
