"""Symmetry-adapted least squares of fc2 with a checked solve.

symfc builds the normal equations XᵀX c = Xᵀy of its fc2 basis (X: the force equations of
the displacements in the symmetry-adapted basis, c: the free parameters) and solves them
with LAPACK's Cholesky ``posv`` *without looking at its status*: on a singular or nearly
singular XᵀX it returns numbers that are not a solution, and the fc2 built from them
explains 0–8 % of the forces or, worse, reproduces the forces while giving −20 to −60 THz
modes (issue 23: α-Li3N, Li3BiO4, Li4GeO4). This module keeps symfc's basis and its
normal-equation builder and replaces the solve:

* :func:`normal_equations` — XᵀX and Xᵀy of a set of snapshots (symfc's own builder);
* :func:`conditioning` — λmin/λmax of XᵀX (0 when it is singular): a property of the
  displacements alone, so ``displace`` can count patterns from it before any force is
  evaluated (:func:`phonion.displace.displace`);
* :func:`solve` — the parameters, refused (:class:`DesignError`) below a conditioning floor;
* :func:`fit` — fc2 with the refused-or-trusted solve and a cross-validated force error
  over held-out displacement patterns.

Why a global equation count is not enough: with one random pattern u the data fixes, at
every commensurate q of the supercell, only Φ(q)·u(q), one column of a Hermitian block per
irreducible representation. Where a one-dimensional representation occurs m ≥ 2 times
(high-symmetry q of high-symmetry cells) that is fewer numbers than the block has, however
many equations the supercell gives overall: α-Li3N (P6/mmm, 108-atom supercell) has 324
equations for 127 parameters from one ± pattern, yet XᵀX has rank 125.

Hand-written because symfc exposes no checked solve and no conditioning; the linear algebra
is SciPy's (Cholesky, Lanczos through ARPACK).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import PhonionError

#: Smallest accepted λmin/λmax of XᵀX. Fits validated against finite displacements had
#: 2.5e-4 (NASICON) to 8e-2 (rock salt); the failing ones 0 (singular) or 3e-5
#: (tetragonal Na3PS4, docs/phonons.md). Config ``phonons.min_design_conditioning``.
MIN_CONDITIONING = 1e-4


class DesignError(PhonionError):
    """The displacements do not determine fc2 (XᵀX singular or too ill-conditioned)."""


def pattern_groups(displacements_A: np.ndarray) -> list[list[int]]:
    """Snapshot indices grouped by displacement pattern: a snapshot that is the inverse of
    an earlier one (the −u of a ± pair) joins that one's group."""
    d = np.asarray(displacements_A).reshape(len(displacements_A), -1)
    groups: list[list[int]] = []
    firsts: list[np.ndarray] = []
    for i, row in enumerate(d):
        for g, first in zip(groups, firsts, strict=True):
            if np.allclose(row, -first):
                g.append(i)
                break
        else:
            groups.append([i])
            firsts.append(row)
    return groups


def normal_equations(basis, displacements_A: np.ndarray,
                     forces_eV_A: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """XᵀX (n_free × n_free, Å²) and Xᵀy (eV·Å⁻¹·Å) of the fc2 basis of a
    :func:`phonion.displace.symfc_basis` for snapshots of shape (n, N, 3); zero forces
    when none are given (XᵀX depends on the displacements only)."""
    from symfc.solvers.solver_O2 import (
        prepare_normal_equation_O2,
        prepare_normal_equation_O2_for_large_basis,
    )

    b = basis.basis_set[2]
    u = np.asarray(displacements_A, dtype="double")
    n = len(u)
    d = u.reshape(n, -1)
    f = (np.zeros_like(d) if forces_eV_A is None
         else np.asarray(forces_eV_A, dtype="double").reshape(n, -1))
    N = u.shape[1]
    # symfc's two builders give the same matrices (checked to 1e-15); the "large basis"
    # one costs the same for any number of snapshots, the other grows with it
    if b.compact_compression_matrix.shape[1] * n / N > 2000:
        return prepare_normal_equation_O2_for_large_basis(d, f, b)
    return prepare_normal_equation_O2(d, f, b)


def conditioning(xtx: np.ndarray) -> float:
    """λmin/λmax of the symmetric positive semi-definite ``xtx``; 0 when its Cholesky
    factorisation fails (singular to working precision)."""
    import scipy.linalg as sl
    from scipy.sparse.linalg import LinearOperator, eigsh

    n = len(xtx)
    if n == 0:
        return 1.0
    try:
        factor = sl.cho_factor(xtx, lower=False, check_finite=False)
    except (sl.LinAlgError, ValueError):
        return 0.0
    if n <= 600:
        w = np.linalg.eigvalsh(xtx)
        return float(max(w[0], 0.0) / w[-1]) if w[-1] > 0 else 0.0
    lam_max = float(eigsh(xtx, k=1, which="LA", return_eigenvectors=False, tol=1e-4)[0])
    inverse = LinearOperator((n, n), matvec=lambda v: sl.cho_solve(factor, v),
                             dtype=float)
    inv_max = float(eigsh(inverse, k=1, which="LA", return_eigenvectors=False,
                          tol=1e-4)[0])
    if not np.isfinite(inv_max) or inv_max <= 0 or lam_max <= 0:
        return 0.0
    return float((1.0 / inv_max) / lam_max)


def solve(xtx: np.ndarray, xty: np.ndarray, min_conditioning: float = MIN_CONDITIONING,
          what: str = "the snapshots") -> tuple[np.ndarray, float]:
    """Parameters c of XᵀX c = Xᵀy and the conditioning λmin/λmax; :class:`DesignError`
    when it is below ``min_conditioning`` (the fc2 would carry the noise of the forces
    amplified along the poorly seen directions, or be no solution at all)."""
    import scipy.linalg as sl

    ratio = conditioning(xtx)
    if ratio < min_conditioning:
        state = ("singular (some force-constant combinations are not seen by any pattern)"
                 if ratio == 0.0 else f"ill-conditioned (λmin/λmax = {ratio:.1e})")
        raise DesignError(
            f"{what} do not determine fc2: the least-squares normal matrix of "
            f"{len(xtx)} free parameters is {state}, below "
            f"phonons.min_design_conditioning = {min_conditioning:g}")
    coefs = sl.cho_solve(sl.cho_factor(xtx, lower=False, check_finite=False), xty,
                         check_finite=False)
    return coefs, ratio


def fc2_from_parameters(basis, coefs: np.ndarray, n_atoms: int) -> np.ndarray:
    """Full supercell fc2 (N, N, 3, 3), eV/Å², from the free parameters of the basis."""
    b = basis.basis_set[2]
    compact = b.blocked_basis_set @ coefs
    return np.array((b.compression_matrix @ compact).reshape(n_atoms, n_atoms, 3, 3),
                    dtype="double", order="C")


def relative_force_error(fc2: np.ndarray, displacements_A: np.ndarray,
                         forces_eV_A: np.ndarray) -> float:
    """‖F − (−Φu)‖ / ‖F‖ over all snapshots, atoms and directions."""
    pred = -np.einsum("ijab,sjb->sia", fc2, np.asarray(displacements_A))
    f = np.asarray(forces_eV_A)
    return float(np.linalg.norm(pred - f) / max(np.linalg.norm(f), 1e-300))


@dataclass
class LsqFit:
    """A checked least-squares fc2 and what vouches for it."""

    fc2: np.ndarray
    conditioning: float
    relative_force_error: float
    cv_relative_force_error: float | None  # mean over the folds that could be held out
    cv_folds: int  # folds actually held out (0: every pattern is needed to determine fc2)
    n_patterns: int

    def summary(self) -> dict:
        return {"design_conditioning": self.conditioning,
                "relative_force_error": self.relative_force_error,
                "cv_relative_force_error": self.cv_relative_force_error,
                "cv_folds": self.cv_folds, "n_patterns": self.n_patterns}


def fit(basis, displacements_A: np.ndarray, forces_eV_A: np.ndarray,
        min_conditioning: float = MIN_CONDITIONING, folds: int = 5) -> LsqFit:
    """fc2 by least squares in the symfc basis, refused on a design below
    ``min_conditioning``, with a cross-validated relative force error: the displacement
    patterns (a ± pair is one pattern) are split into up to ``folds`` folds, each fitted
    without and predicted, where the others still determine fc2 at the same floor."""
    u = np.asarray(displacements_A, dtype="double")
    f = np.asarray(forces_eV_A, dtype="double")
    groups = pattern_groups(u)
    xtx, xty = normal_equations(basis, u, f)
    coefs, ratio = solve(xtx, xty, min_conditioning)
    fc2 = fc2_from_parameters(basis, coefs, u.shape[1])
    k = min(folds, len(groups))
    errors: list[float] = []
    if k >= 2:
        for j in range(k):
            held = [i for g in groups[j::k] for i in g]
            a_j, b_j = normal_equations(basis, u[held], f[held])
            try:
                c_j, _ = solve(xtx - a_j, xty - b_j, min_conditioning)
            except DesignError:
                continue
            fc_j = fc2_from_parameters(basis, c_j, u.shape[1])
            errors.append(relative_force_error(fc_j, u[held], f[held]))
    return LsqFit(fc2, ratio, relative_force_error(fc2, u, f),
                  float(np.mean(errors)) if errors else None, len(errors), len(groups))
