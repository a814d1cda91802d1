"""Phonon descriptors (seed 000 §2.5, §3.3–3.4) from harmonic force constants.

The verb is :func:`phonon_descriptors`. It returns scalars (JSON, units in the
key names) and per-mode arrays (HDF5). Definitions:

- mean-square displacement (MSD, eq. 5) of every atom and direction from
  phonopy's thermal displacements on a uniform q-mesh refined until the mean
  mobile-ion MSD at the highest temperature is within ``msd_tolerance`` of its
  converged (1/n-extrapolated) value (:func:`converge_mesh`; the MSD is dominated by
  the softest modes, so an unconverged mesh is a wrong number, not a detail);
- acoustic cutoff: the highest frequency of the three lowest branches along
  the band path (seed 000 §3.3);
- DOS moments of the mobile ion and of all atoms: centre (first moment, the
  analogue of eq. 7), width (standard deviation), skewness and excess
  kurtosis, computed exactly from the mode weights on the mesh (no smearing);
- per mode: mobile-ion MSD contribution (eq. 5 decomposed), participation
  ratio (eq. 8), mobile–host coupling factor (eq. 9; :mod:`phonion.harmonic`);
- low-frequency summaries below ``low_frequency_THz`` (default 1.5 THz, the
  range of strong coupling in seed 000 Fig. 5): share of the mobile-ion MSD,
  mean coupling and mean participation ratio.
"""

from __future__ import annotations

import numpy as np

from .errors import PhonionError
from .harmonic import (
    Modes,
    acoustic_cutoff,
    band_path,
    coupling_factor,
    frequencies_at,
    iter_mesh_modes,
    mesh_numbers,
    mode_msd,
    participation_ratio,
)
from .settings import PhononDescriptorsSettings


class MeshNotConverged(PhonionError):
    """The MSD did not converge within the allowed q-mesh lengths."""


def mesh_msd(ph, mesh, temperatures_K) -> np.ndarray:
    """⟨u_α²(j)⟩ (Å²), shape (nT, N, 3), on a full mesh (Γ acoustic excluded)."""
    total = 0.0
    for modes in iter_mesh_modes(ph, mesh):
        total = total + np.array([mode_msd(modes, T).sum(axis=(0, 1)) for T in temperatures_K])
    return np.asarray(total)


def _n_eff(mesh) -> float:
    """Linear mesh number (n₁n₂n₃)^⅓: the missing Γ-cell contribution scales as 1/n_eff."""
    return float(np.prod(mesh)) ** (1.0 / 3.0)


def extrapolate_msd(coarse: np.ndarray, fine: np.ndarray, mesh_coarse, mesh_fine) -> np.ndarray:
    """1/n Richardson extrapolation of MSDs from two meshes: (n₂M₂ − n₁M₁)/(n₂ − n₁)."""
    n1, n2 = _n_eff(mesh_coarse), _n_eff(mesh_fine)
    return (n2 * np.asarray(fine) - n1 * np.asarray(coarse)) / (n2 - n1)


def converge_mesh(ph, temperatures_K, mobile: np.ndarray, start_length_A: float = 20.0,
                  factor: float = 1.5, max_length_A: float = 200.0,
                  tolerance: float = 0.01) -> tuple[list[int], list[dict], list[np.ndarray]]:
    """Refine the q-mesh until the converged MSD is known within ``tolerance`` (relative).

    With the Γ cell left out (even Monkhorst–Pack meshes; acoustic modes diverge as 1/ω²
    there) the MSD converges slowly, like 1/n in the mesh number n = (n₁n₂n₃)^⅓: on NaCl a
    46³ mesh is still 0.6 % low. Two meshes give the Richardson extrapolation
    X = (n₂M₂ − n₁M₁)/(n₂ − n₁) (:func:`extrapolate_msd`), and the mesh is refined by
    ``factor`` in length until two successive extrapolations of the mobile-ion mean MSD at
    max(T) agree within ``tolerance`` (their drift is the error estimate). Stopping at the
    first small change between meshes instead accepted meshes several times ``tolerance`` off.

    Returns the finest mesh, the history (every mesh: value, change, extrapolation, drift)
    and the MSD tensors ⟨u_α²(j)⟩ (nT × N × 3, Å²) of every mesh, for the extrapolation of
    all sites, directions and temperatures from the last two.
    """
    history: list[dict] = []
    tensors: list[np.ndarray] = []
    length, last_mesh = start_length_A, None
    i_max = int(np.argmax(temperatures_K))
    while length <= max_length_A * (1 + 1e-9):
        mesh = mesh_numbers(ph, length)
        if mesh != last_mesh:
            tensor = mesh_msd(ph, mesh, temperatures_K)
            msd = float(tensor[i_max][mobile].mean())
            row = {"length_A": length, "mesh": mesh, "msd_mobile_mean_A2": msd,
                   "relative_change": None, "msd_mobile_mean_extrapolated_A2": None,
                   "extrapolation_drift": None}
            if history:
                prev = history[-1]
                x = float(extrapolate_msd(prev["msd_mobile_mean_A2"], msd, prev["mesh"], mesh))
                row.update(relative_change=abs(msd / prev["msd_mobile_mean_A2"] - 1),
                           msd_mobile_mean_extrapolated_A2=x)
                if prev["msd_mobile_mean_extrapolated_A2"] is not None:
                    row["extrapolation_drift"] = abs(
                        x / prev["msd_mobile_mean_extrapolated_A2"] - 1)
            history.append(row)
            tensors.append(tensor)
            if row["extrapolation_drift"] is not None and row["extrapolation_drift"] < tolerance:
                return mesh, history, tensors
            last_mesh = mesh
        length *= factor
    last = history[-1]
    raise MeshNotConverged(
        f"mobile-ion MSD not converged to {tolerance:.1%} up to a q-mesh of {last_mesh} "
        f"(extrapolation drift {last['extrapolation_drift'] or float('nan'):.1%}); raise "
        "phonons.mesh_max_length_A or check the stability screen")


def supercell_msd(ph, temperatures_K, mobile: np.ndarray, classical: bool = True
                  ) -> np.ndarray:
    """Harmonic ⟨u_α²⟩ of the mobile ion (Å², per direction, mean over its atoms) from the
    modes of Phonopy's supercell alone — its commensurate q-points, Γ translations left
    out: exactly the modes an MD of that supercell holds, so that the MD's vibrational MSD
    can be compared without the long-wavelength modes a finite cell lacks (a converged
    mesh has them: on NaCl a 4×4×4 cell misses several %). ``classical``: k_B T/ω²
    occupations, as in a classical MD."""
    from phonopy.harmonic.dynmat_to_fc import get_commensurate_points

    from .harmonic import Modes

    smat = np.rint(np.linalg.inv(ph.primitive_matrix) @ ph.supercell_matrix).astype(int)
    q = np.asarray(get_commensurate_points(smat))
    res = ph.run_qpoints(q, with_eigenvectors=True)
    modes = Modes(q, np.full(len(q), 1.0 / len(q)), np.asarray(res.frequencies),
                  np.asarray(res.eigenvectors), ph.primitive.masses)
    mobile = np.asarray(mobile, bool)
    return np.array([mode_msd(modes, float(T), classical=classical).sum(axis=(0, 1))[mobile]
                     .mean() for T in temperatures_K])


def dos_moments(frequencies_THz: np.ndarray, weights: np.ndarray) -> dict:
    """Centre, width (std), skewness and excess kurtosis of a weighted frequency set."""
    keep = (frequencies_THz > 0) & (weights > 0)
    f, w = frequencies_THz[keep], weights[keep]
    w = w / w.sum()
    centre = float(np.sum(w * f))
    var = float(np.sum(w * (f - centre) ** 2))
    std = np.sqrt(var)
    return {
        "centre_THz": centre,
        "width_THz": std,
        "skewness": float(np.sum(w * (f - centre) ** 3) / std**3),
        "kurtosis_excess": float(np.sum(w * (f - centre) ** 4) / var**2 - 3.0),
    }


def _projection(modes: Modes, atoms: np.ndarray) -> np.ndarray:
    """Weight of each mode on a set of atoms, Σ_{j∈S,α} |e_jα|² × q-weight; (nq, nb)."""
    nq, three_n, nb = modes.eigenvectors.shape
    e2 = (np.abs(modes.eigenvectors) ** 2).reshape(nq, three_n // 3, 3, nb).sum(axis=2)
    return e2[:, atoms].sum(axis=1) * modes.weights[:, None]


def phonon_descriptors(ph, s: PhononDescriptorsSettings = PhononDescriptorsSettings()
                       ) -> tuple[dict, dict]:
    """Scalars (dict for JSON) and arrays (dict for HDF5) of the harmonic descriptors."""
    mobile_symbol, low_frequency_THz = s.mobile_ion, s.low_frequency_THz
    start_length_A, max_length_A, msd_tolerance = (s.mesh_start_length_A,
                                                   s.mesh_max_length_A, s.msd_tolerance)
    npoints = s.band_points
    temperatures_K = [float(t) for t in s.temperatures_K]
    symbols = np.array(ph.primitive.symbols)
    mobile = symbols == mobile_symbol
    mesh, history, tensors = converge_mesh(ph, temperatures_K, mobile, start_length_A,
                                           max_length_A=max_length_A, tolerance=msd_tolerance)
    # every MSD reported is the 1/n extrapolation of the last two meshes (sites, directions,
    # temperatures alike); the per-mode arrays are those of the finest mesh
    msd_converged = extrapolate_msd(tensors[-2], tensors[-1], history[-2]["mesh"], mesh)
    # per-mode quantities on the converged mesh, chunk by chunk (eigenvectors are large)
    per = {k: [] for k in ("q", "w", "f", "pr", "c", "mob")}
    per.update({f"msd{it}": [] for it in range(len(temperatures_K))})
    for chunk in iter_mesh_modes(ph, mesh):
        per["q"].append(chunk.qpoints)
        per["w"].append(chunk.weights)
        per["f"].append(chunk.frequencies_THz)
        per["pr"].append(participation_ratio(chunk))
        per["c"].append(coupling_factor(chunk, mobile))
        per["mob"].append(_projection(chunk, mobile) / chunk.weights[:, None])
        for it, T in enumerate(temperatures_K):
            m = mode_msd(chunk, T)
            per[f"msd{it}"].append(m[..., mobile, :].sum(axis=(2, 3)) / mobile.sum())
    cat = {k: np.concatenate(v) for k, v in per.items()}
    modes_f, weights = cat["f"], cat["w"]
    pr_mesh, c_mesh = cat["pr"], cat["c"]
    path = band_path(ph, npoints)
    pr_path, c_path = participation_ratio(path.modes), coupling_factor(path.modes, mobile)
    f = modes_f
    low = (f > 0) & (f < low_frequency_THz)
    w_mode = np.broadcast_to(weights[:, None], f.shape)

    ph.run_thermal_properties(temperatures=temperatures_K)
    thermo = ph.thermal_properties
    gamma = frequencies_at(ph, [0, 0, 0])

    scalars: dict = {
        "mobile_ion": mobile_symbol,
        "n_mobile_sites": int(mobile.sum()),
        "mesh": mesh,
        "mesh_convergence": history,
        "msd_mesh_error_estimate": history[-1]["extrapolation_drift"],
        "msd_mesh_extrapolation": "1/n Richardson from the meshes "
                                  f"{history[-2]['mesh']} and {mesh}",
        "acoustic_cutoff_THz": acoustic_cutoff(path.modes),
        "lowest_optical_gamma_THz": float(np.sort(gamma)[3]) if len(gamma) > 3 else None,
        "low_frequency_THz": low_frequency_THz,
        "coupling_mean_below_low_frequency": float(np.nansum(c_mesh[low] * w_mode[low])
                                                   / np.sum(w_mode[low] * ~np.isnan(c_mesh[low])))
        if low.any() else None,
        "participation_ratio_mean_below_low_frequency":
            float(np.sum(pr_mesh[low] * w_mode[low]) / np.sum(w_mode[low])) if low.any() else None,
    }
    mob_w = cat["mob"]  # mobile-ion share of each mode's eigenvector norm
    for name, share in (("mobile", mob_w), ("host", 1.0 - mob_w),
                        ("all", np.ones_like(mob_w))):
        if (name == "host" and mobile.all()) or (name == "mobile" and not mobile.any()):
            continue
        mom = dos_moments(f.ravel(), (share * w_mode).ravel())
        scalars.update({f"pdos_{name}_{k}": v for k, v in mom.items()})
    arrays: dict = {
        "mesh/qpoints": cat["q"], "mesh/weights": weights,
        "mesh/frequencies_THz": f, "mesh/participation_ratio": pr_mesh,
        "mesh/coupling_factor": c_mesh,
        "mesh/mobile_weight": mob_w,
        **path.arrays(),
        "path/participation_ratio": pr_path, "path/coupling_factor": c_path,
        "temperatures_K": np.array(temperatures_K),
    }
    by_t = {}
    for it, T in enumerate(temperatures_K):
        m = msd_converged[it]
        per_mode = cat[f"msd{it}"]  # (nq, nb)
        total_mode = per_mode.sum()
        path_mode = mode_msd(path.modes, T)[..., mobile, :].sum(axis=(2, 3)) / mobile.sum()
        arrays[f"mesh/msd_mobile_per_mode_A2_{T:g}K"] = per_mode
        arrays[f"path/msd_mobile_per_mode_A2_{T:g}K"] = path_mode / path.modes.weights[:, None]
        arrays[f"msd_A2_{T:g}K"] = m
        i_t = int(np.argmin(np.abs(np.asarray(thermo.temperatures) - T)))
        by_t[f"{T:g}"] = {
            "msd_mobile_mean_A2": float(m[mobile].mean()),
            "msd_mobile_max_A2": float(m[mobile].max()),
            "msd_mobile_x_A2": float(m[mobile, 0].mean()),
            "msd_mobile_y_A2": float(m[mobile, 1].mean()),
            "msd_mobile_z_A2": float(m[mobile, 2].mean()),
            "msd_mobile_sites_A2": m[mobile].mean(axis=1).tolist(),
            "msd_host_mean_A2": float(m[~mobile].mean()) if (~mobile).any() else None,
            "msd_host_max_A2": float(m[~mobile].max()) if (~mobile).any() else None,
            "msd_mobile_mean_mesh_A2": float(tensors[-1][it][mobile].mean()),
            "msd_mobile_mode_sum_A2": float(total_mode / 3),
            "msd_share_below_low_frequency": float(per_mode[low].sum() / total_mode),
            "free_energy_kJ_mol": float(thermo.free_energy[i_t]),
            "entropy_J_K_mol": float(thermo.entropy[i_t]),
            "heat_capacity_J_K_mol": float(thermo.heat_capacity[i_t]),
        }
    scalars["by_temperature_K"] = by_t
    return scalars, arrays
