"""fit_ifc: force constants by compressive sensing with pheasy (seed 000 eq. 3), or by
symmetry-adapted least squares with symfc where the system is determined.

The verb is :func:`fit_force_constants`; :func:`fit_method` picks the route. pheasy 0.0.2 is
a command-line
program that works on files in a directory; this module writes its inputs
(POSCAR of the unit cell, ``disp_matrix.pkl``, ``force_matrix.pkl``), runs its
four steps (cluster space, null space with the acoustic and — with
``rotational_sum_rules`` — rotational/Huang conditions, sensing matrix, LASSO
fit with cross-validated alpha) and reads back ``FORCE_CONSTANTS`` (full
supercell form) and, for 3rd order, ``fc3.hdf5`` (phono3py format).

pheasy 0.0.2 calls ``numpy.math.factorial``, removed in NumPy 2. It runs here
through a four-line shim (:data:`PHEASY_SHIM`) that restores ``numpy.math`` as
the standard-library ``math`` module before pheasy is imported; nothing else in
pheasy uses removed NumPy API, and the shim gives byte-identical force
constants to pheasy under NumPy 1.26 (docs/phonons.md). A separate interpreter
(e.g. a NumPy-1 environment) can be used instead through ``python``.

:func:`fit_symfc` is symfc least squares on the same displacements and forces: the
default fit where the fc2 system is determined, and the independent route of the tests.
"""

from __future__ import annotations

import pickle
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import PhonionError
from .settings import FitIfcSettings

#: Restores numpy.math (removed in NumPy 2) and runs pheasy's command line.
PHEASY_SHIM = (
    "import math, numpy\n"
    "if not hasattr(numpy, 'math'):\n"
    "    numpy.math = math\n"
    "from pheasy.run_pheasy import main\n"
    "main()\n"
)


#: A fit whose fc2 leaves more than this share of the force unexplained is no fit: the
#: anharmonic remainder of 0.03 Å displacements is a few per cent (docs/phonons.md).
MAX_RELATIVE_FORCE_ERROR = 0.3


class FitError(PhonionError):
    """pheasy failed; the message holds the end of its log."""


@dataclass
class FitResult:
    """Fitted force constants (eV/Å², eV/Å³) and the fit diagnostics pheasy reports."""

    fc2: np.ndarray  # (N, N, 3, 3) full supercell form, phonopy order
    fc3: np.ndarray | None
    diagnostics: dict = field(default_factory=dict)


def _grab(log: str, key: str) -> float | None:
    found = re.findall(rf"- {re.escape(key)}: ([-+0-9.eE]+)", log)
    return float(found[-1]) if found else None


def independent_equations(displacements_A: np.ndarray) -> int:
    """Force equations the snapshots give for fc2: 3N per snapshot, but a snapshot that is
    the inverse of another (a ± pair) adds none."""
    d = np.asarray(displacements_A).reshape(len(displacements_A), -1)
    kept: list[np.ndarray] = []
    for row in d:
        if not any(np.allclose(row, -k) for k in kept):
            kept.append(row)
    return len(kept) * d.shape[1]


def fit_method(s: FitIfcSettings, displacements_A: np.ndarray, n_free: int) -> str:
    """``lasso`` or ``least_squares`` for ``s.fit_method`` (``auto``: least squares with
    symfc when the fc2 system is determined — compressive sensing then gains nothing and
    costs 10–100× the time — and pheasy's LASSO when it is not, or when fc3 is wanted)."""
    if s.fit_method != "auto":
        return s.fit_method
    if s.fc3 or independent_equations(displacements_A) < n_free:
        return "lasso"
    return "least_squares"


def fit_force_constants(ph, displacements_A: np.ndarray, forces_eV_A: np.ndarray,
                        s: FitIfcSettings = FitIfcSettings(), python: str | None = None,
                        cv_folds: int = 5, workdir: str | Path | None = None,
                        log=sys.stdout, basis_cache: Path | None = None) -> FitResult:
    """fc2 (and fc3 with ``s.fc3``) on the supercell of ``ph`` (phonopy object whose
    supercell matrix is diagonal) from displacements (Å) and forces (eV/Å) with residual
    forces already subtracted; shapes (n_snapshots, N, 3). The method follows
    :func:`fit_method`: pheasy's LASSO (seed 000 eq. 3) or symfc least squares.
    ``python``: interpreter that runs pheasy (default this one, through the shim);
    ``basis_cache``: the symfc basis file of the ``displace`` stage (:func:`symfc_basis`)."""
    from .displace import free_parameters, symfc_basis
    from .harmonic import to_ase

    t0 = time.perf_counter()
    sym = symfc_basis(to_ase(ph.supercell), (2,), s.fc2_cutoff_A, s.symprec,  # fit reuses it
                      basis_cache)
    n_free = free_parameters(sym)[2]
    method = fit_method(s, displacements_A, n_free)
    if method == "least_squares":
        from .lsq import DesignError
        from .lsq import fit as lsq_fit

        try:
            result = lsq_fit(sym, displacements_A, forces_eV_A, s.min_design_conditioning,
                             cv_folds)
        except DesignError as exc:
            raise FitError(f"{exc}; rerun displace with the current phonion (it counts "
                           "patterns from the design) or use phonons.fit_method: lasso"
                           ) from exc
        _check_force_errors(result.relative_force_error, result.cv_relative_force_error,
                            len(displacements_A))
        diag = {"method": "symfc least squares", "orders": [2], "n_free_parameters": n_free,
                "fc2_cutoff_A": s.fc2_cutoff_A, "n_snapshots": len(displacements_A),
                "independent_equations": independent_equations(displacements_A),
                "rmse_eV_A": force_rmse(result.fc2, displacements_A, forces_eV_A),
                **result.summary(),
                "acoustic_sum_rule_residual_eV_A2": float(abs(result.fc2.sum(axis=1)).max()),
                "wall_time_s": time.perf_counter() - t0}
        return FitResult(result.fc2, None, diag)
    return _fit_pheasy(ph, displacements_A, forces_eV_A, s, python, cv_folds, workdir, log)


def _check_force_errors(relative: float, cv_relative: float | None, n_snapshots: int
                        ) -> None:
    """:class:`FitError` when the fc2 leaves more than :data:`MAX_RELATIVE_FORCE_ERROR`
    of the forces unexplained, on the fitted snapshots or on held-out patterns."""
    if relative > MAX_RELATIVE_FORCE_ERROR:
        raise FitError(
            f"the fc2 reproduces the forces of its {n_snapshots} snapshots to only "
            f"{1 - relative:.0%} (relative error {relative:.2f} > "
            f"{MAX_RELATIVE_FORCE_ERROR}): no harmonic model of these forces")
    if cv_relative is not None and cv_relative > MAX_RELATIVE_FORCE_ERROR:
        raise FitError(
            f"the fc2 predicts held-out displacement patterns to only {1 - cv_relative:.0%} "
            f"(cross-validated relative error {cv_relative:.2f} > "
            f"{MAX_RELATIVE_FORCE_ERROR}; {relative:.2f} on the fitted snapshots): the fit "
            "follows the noise of its snapshots; raise phonons.safety_factor")


def _fit_pheasy(ph, displacements_A, forces_eV_A, s: FitIfcSettings, python, cv_folds,
                workdir, log) -> FitResult:
    """pheasy's LASSO with cross-validated alpha, run as its command line in a work folder."""
    n_alpha = s.lasso_alphas
    fc3, fc3_cutoff_A = s.fc3, s.fc3_cutoff_A
    alpha_min_exp, alpha_max_exp = s.alpha_min_log10, s.alpha_max_log10
    rotational_sum_rules, symprec = s.rotational_sum_rules, s.symprec
    from phonopy.file_IO import parse_FORCE_CONSTANTS
    from phonopy.interface.vasp import write_vasp

    dim = np.diag(ph.supercell_matrix).astype(int)
    if not np.array_equal(np.diag(dim), ph.supercell_matrix):
        raise FitError("pheasy needs a diagonal supercell of the unit cell")
    n = len(displacements_A)
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="pheasy-")
        workdir = tmp.name
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    for stale in work.iterdir():  # pheasy silently reuses files it finds
        if stale.is_file():
            stale.unlink()
    write_vasp(str(work / "POSCAR"), ph.unitcell)
    with open(work / "disp_matrix.pkl", "wb") as fh:
        pickle.dump(np.asarray(displacements_A, dtype="double"), fh)
    with open(work / "force_matrix.pkl", "wb") as fh:
        pickle.dump(np.asarray(forces_eV_A, dtype="double"), fh)

    exe = [python or sys.executable, "-c", PHEASY_SHIM]
    cmd = [*exe, "--dim", *map(str, dim), "-w", "3" if fc3 else "2", "--symprec", str(symprec),
           "-s", "-c", "-d", "-f", "--disp_file", "-n", str(n), "--full_ifc", "--hdf5",
           "-l", "LASSO", "--alpha_min", str(alpha_min_exp), "--alpha_max", str(alpha_max_exp),
           "--nalpha", str(n_alpha), "--cv", str(cv_folds), "--tol", "1e-8", "--seed", "103"]
    if fc3:
        cmd += ["--c3", str(fc3_cutoff_A)]
    if s.fc2_cutoff_A:
        cmd += ["--c2", str(s.fc2_cutoff_A)]
    if rotational_sum_rules != "none":
        cmd += ["--rasr", rotational_sum_rules]
    # one call runs pheasy's four steps (cluster space, null space with the sum rules,
    # sensing matrix, fit); the results equal four separate calls
    t0 = time.perf_counter()
    with open(work / "pheasy.log", "w") as out:
        proc = subprocess.run(cmd, cwd=work, stdout=out, stderr=subprocess.STDOUT)
    if log:
        print(f"[fit_ifc] pheasy: {time.perf_counter() - t0:.1f} s", file=log, flush=True)
    if proc.returncode:
        tail = (work / "pheasy.log").read_text()[-1500:]
        raise FitError(f"pheasy failed ({proc.returncode}): {tail}")
    text = (work / "pheasy.log").read_text()
    fc2 = parse_FORCE_CONSTANTS(str(work / "FORCE_CONSTANTS"))
    fc3_arr = None
    if fc3:
        import h5py

        with h5py.File(work / "fc3.hdf5", "r") as h5:
            fc3_arr = h5["fc3"][()]
    alpha = _grab(text, "alpha_opt")
    diag = {
        "method": "pheasy LASSO",
        "orders": [2, 3] if fc3 else [2],
        "alpha": alpha,
        "alpha_search_log10": [alpha_min_exp, alpha_max_exp],
        "alpha_on_bound": bool(alpha is not None and (
            np.isclose(np.log10(alpha), alpha_min_exp, atol=1e-6)
            or np.isclose(np.log10(alpha), alpha_max_exp, atol=1e-6))),
        "rmse_eV_A": _grab(text, "RMSE"),
        "cv_rmse_eV_A": _grab(text, "RMSE_CV"),
        "relative_force_error": _grab(text, "Relative error"),
        "n_free_parameters": _grab(text, "Free IFC terms"),
        "n_nonzero_parameters": _grab(text, "Non-zero IFC terms"),
        "rotational_sum_rules": rotational_sum_rules,
        "fc2_cutoff_A": s.fc2_cutoff_A,
        "fc3_cutoff_A": fc3_cutoff_A if fc3 else None,
        "lasso_alphas": n_alpha,
        "n_snapshots": n,
        "wall_time_s": time.perf_counter() - t0,
    }
    diag["rmse_check_eV_A"] = force_rmse(fc2, displacements_A, forces_eV_A)
    relative = diag["rmse_check_eV_A"] / float(np.sqrt(np.mean(np.asarray(forces_eV_A) ** 2)))
    diag["relative_force_error"] = relative  # pheasy's own is the fc2+fc3 one
    _check_force_errors(relative, None, n)
    diag["acoustic_sum_rule_residual_eV_A2"] = float(abs(fc2.sum(axis=1)).max())
    if tmp is not None:
        tmp.cleanup()
    return FitResult(fc2, fc3_arr, diag)


def alpha_warning(diag: dict) -> str:
    """'' unless the cross-validated alpha sits on a bound of its search range: then the
    fit is effectively least squares (lower bound) or over-regularised (upper bound)."""
    if not diag.get("alpha_on_bound"):
        return ""
    return (f"alpha = {diag['alpha']:.1e} sits on a search bound "
            f"(10^{diag['alpha_search_log10']}): the fit is effectively least squares "
            "(lower bound) or over-regularised (upper bound); widen "
            "phonons.alpha_min_log10/alpha_max_log10")


def fit_symfc(ph, displacements_A: np.ndarray, forces_eV_A: np.ndarray,
              cutoff_A: float | None = None, symprec: float = 1e-3, basis=None,
              min_conditioning: float | None = None) -> np.ndarray:
    """Symmetry-adapted least-squares fc2 (full supercell form, eV/Å²) in symfc's basis on
    the supercell of ``ph``, from displacements (Å) and forces (eV/Å), optionally with the
    pair interactions limited to ``cutoff_A``; the acoustic sum rule is part of the basis.
    The solve is checked (:mod:`phonion.lsq`): a design whose normal matrix is singular or
    below ``min_conditioning`` (default :data:`phonion.lsq.MIN_CONDITIONING`) raises
    :class:`phonion.lsq.DesignError` instead of returning symfc's unchecked numbers.
    ``basis``: a :func:`phonion.displace.symfc_basis` of the same supercell and settings."""
    from .displace import symfc_basis
    from .harmonic import to_ase
    from .lsq import MIN_CONDITIONING, fc2_from_parameters, normal_equations, solve

    sym = basis if basis is not None else symfc_basis(to_ase(ph.supercell), (2,), cutoff_A,
                                                      symprec)
    u = np.asarray(displacements_A, dtype="double")
    xtx, xty = normal_equations(sym, u, forces_eV_A)
    coefs, _ = solve(xtx, xty, MIN_CONDITIONING if min_conditioning is None
                     else min_conditioning)
    return fc2_from_parameters(sym, coefs, u.shape[1])


def force_rmse(fc2: np.ndarray, displacements_A: np.ndarray, forces_eV_A: np.ndarray) -> float:
    """RMSE (eV/Å) of harmonic forces F = −Φu against the given forces."""
    pred = -np.einsum("ijab,sjb->sia", fc2, displacements_A)
    return float(np.sqrt(np.mean((pred - forces_eV_A) ** 2)))
