"""Structure and dynamics correlations of one trajectory (the optional MD analyses).

Verbs, each a definition from the seed papers:

- :func:`rdf` — pair correlation g(r) of species A–B (seed 002 eq. 1);
- :func:`van_hove_self` — self part G_s(r, Δt) of the van Hove function (seed 002 eq. 9);
- :func:`van_hove_distinct` — its distinct part G_d(r, Δt) (seed 002 eq. 8);
- :func:`find_polyanions` — rigid host units (PS₄, SbS₄, NbCl₆ …) from the first frame;
- :func:`reorientation` — reorientation autocorrelation C(t) of the centre→ligand unit
  vectors (seed 001 eq. 4);
- :func:`hop_events` — long-lived displacements h_i(t; a, Δt, t_a) (seed 001 eq. 5);
- :func:`hop_rotation_coupling` — mean Pearson coefficient between the angular
  displacements of the C–ion and C–A bonds (seed 001, Fig. 3d and its Methods);
- :func:`tetrahedral_angles` and :func:`angular_velocity` — ligand–ligand–ligand angles θ
  inside tetrahedral units and their rate (seed 002 eqs. 4 and 5);
- :func:`rotation_diffusion_category` — seed 001's categories of an MD run (Fig. 2a).

Inputs are the layout of :func:`phonion.md.read_trajectory` (unwrapped Cartesian positions
in Å, frames × atoms × 3) and the time between frames in ps. No Snakemake here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

from .errors import PhonionError
from .geometry import symbols_of
from .hops import (  # noqa: F401 - API (seed 001 eqs. 5-6)
    count_hops,
    hop_events,
    hop_rotation_coupling,
)
from .settings import DynamicsSettings
from .symmetry import inscribed_diameter_A
from .van_hove import _frames, _radial_grid, van_hove_distinct, van_hove_self  # noqa: F401


def rdfs(positions_A: np.ndarray, cell_A: np.ndarray, symbols: np.ndarray,
         pairs: list[tuple[str, str]], r_max_A: float = 8.0, bin_A: float = 0.05,
         max_frames: int = 200) -> tuple[np.ndarray, dict[tuple[str, str], np.ndarray]]:
    """Seed 002 eq. 1: g_AB(r) of several species pairs, averaged over up to
    ``max_frames`` evenly spaced frames (one neighbour list per frame for all pairs).

    Normalised to the ideal gas of B at the cell's density, so g → 1 at long range:
    g(r) = V/(N_A N_B) · n_AB(r)/(4πr² dr), with n_AB the number of A–B pairs (all periodic
    images, through ASE's neighbour list) in the shell [r, r + dr). For A = B each
    unordered pair counts twice and the normalisation uses N_A(N_A − 1). Returns bin centres
    (Å) and {pair: g}.
    """
    symbols = np.asarray(symbols)
    edges, r, shell = _radial_grid(r_max_A, bin_A)
    hist = {p: np.zeros(len(r)) for p in pairs}
    norm = {}
    for a, b in pairs:
        n_a, n_b = int((symbols == a).sum()), int((symbols == b).sum())
        if n_a == 0 or n_b == 0 or (a == b and n_a < 2):
            raise PhonionError(f"no {a}–{b} pairs in the trajectory")
        norm[a, b] = n_a * (n_b - 1) if a == b else n_a * n_b
    cell = np.asarray(cell_A, float)
    idx = _frames(len(positions_A), max_frames)
    width = inscribed_diameter_A(cell)
    if r_max_A <= width:
        # Vectorised over the A atoms, much faster than a full neighbour list. A vector
        # shorter than width/2 has every fractional coordinate in (−½, ½), so the wrapped
        # difference is the only image within r_max ≤ width/2; up to the full width, the 27
        # images next to it hold every pair.
        inv = np.linalg.inv(cell)
        shifts = [(x, y, z) for x in (-1, 0, 1) for y in (-1, 0, 1) for z in (-1, 0, 1)]
        images = np.array(shifts if r_max_A > width / 2 else [(0, 0, 0)], float) @ cell
        nbins = len(r)
        for f in idx:
            for a, b in pairs:
                pa, pb = positions_A[f, symbols == a], positions_A[f, symbols == b]
                diff = pb[None, :, :] - pa[:, None, :]
                diff -= np.rint(diff @ inv) @ cell
                d = np.linalg.norm(diff[:, :, None, :] + images, axis=-1).ravel()
                d = d[(d > 1e-8) & (d < edges[-1])]  # an atom is not its own neighbour
                hist[a, b] += np.bincount((d / bin_A).astype(int), minlength=nbins)[:nbins]
    else:  # cells smaller than r_max: ASE's neighbour list finds all images
        atoms = Atoms(numbers=np.ones(len(symbols)), cell=cell, pbc=True)
        for f in idx:
            atoms.positions = positions_A[f]
            i, j, d = neighbor_list("ijd", atoms, r_max_A)
            si, sj = symbols[i], symbols[j]
            for a, b in pairs:
                hist[a, b] += np.histogram(d[(si == a) & (sj == b)], edges)[0]
    volume = abs(np.linalg.det(cell_A))
    return r, {p: hist[p] / len(idx) * volume / (norm[p] * shell) for p in pairs}


def rdf(positions_A: np.ndarray, cell_A: np.ndarray, symbols: np.ndarray, a: str, b: str,
        r_max_A: float = 8.0, bin_A: float = 0.05, max_frames: int = 200
        ) -> tuple[np.ndarray, np.ndarray]:
    """g_AB(r) of one pair (:func:`rdfs`); returns bin centres (Å) and g."""
    r, g = rdfs(positions_A, cell_A, symbols, [(a, b)], r_max_A, bin_A, max_frames)
    return r, g[a, b]


def first_shell_radius(r_A: np.ndarray, g: np.ndarray) -> float:
    """Radius (Å) of the first minimum of g(r) after its first peak: the coordination shell.

    g is smoothed over 5 bins so one noisy bin does not end the shell early; where the
    minimum is a flat gap (g ≈ 0 between shells of a cold crystal) its middle is returned.
    """
    smooth = np.convolve(np.pad(g, 2, mode="edge"), np.ones(5) / 5, mode="valid")
    peak = int(np.argmax(smooth))
    rising = np.nonzero(np.diff(smooth[peak:]) > 0)[0]
    rising = rising[smooth[peak + rising] < 0.5 * smooth[peak]]  # past the peak's flank
    end = peak + (int(rising[0]) if len(rising) else len(g) - 1 - peak)
    low = smooth[peak:end + 1] <= smooth[end] + 0.02 * smooth[peak]
    flat = peak + np.nonzero(low)[0]
    return float(r_A[(flat[0] + end) // 2])


@dataclass
class Polyanions:
    """Host units found in the first frame: ``centres`` (units) and ``ligands``
    (units × n_ligands) atom indices, and ``shifts_A``, the lattice vectors that make each
    centre→ligand vector the minimum image (units × n_ligands × 3)."""

    centre: str
    ligand: str
    centres: np.ndarray
    ligands: np.ndarray
    shifts_A: np.ndarray

    @property
    def name(self) -> str:
        return f"{self.centre}{self.ligand}{self.ligands.shape[1]}"

    def vectors(self, positions_A: np.ndarray) -> np.ndarray:
        """Centre→ligand vectors (frames × units × n_ligands × 3, Å) from unwrapped
        positions; the first-frame image shift stays valid because both atoms are
        unwrapped continuously."""
        return (positions_A[:, self.ligands] + self.shifts_A
                - positions_A[:, self.centres][:, :, None, :])


def find_polyanions(positions_A: np.ndarray, cell_A: np.ndarray, symbols: np.ndarray,
                    mobile: str, tolerance: float = 1.25) -> list[Polyanions]:
    """Polyanion-like units of the host, from the first frame.

    A species X (not the mobile ion) is a centre when, for every X atom, all host atoms
    within ``tolerance`` × the shortest X–host distance belong to one other species Y and
    number at least three, the same number for every X: X is then the centre of XYₙ units
    (PS₄ in Na₃PS₄, SbS₄ in Na₃SbS₄, NbCl₆ in NaNbCl₆). Monatomic anions (Cl⁻ in NaCl, O²⁻
    in Na₂O) have no such shell of host atoms and give no unit. Hand-written: the field's
    libraries find coordination polyhedra but do not group them into rotating units.
    """
    symbols = np.asarray(symbols)
    host = np.nonzero(symbols != mobile)[0]
    atoms = Atoms(symbols=list(symbols[host]), positions=positions_A[0][host], cell=cell_A,
                  pbc=True)
    i, j, d, shift = neighbor_list("ijdS", atoms, 6.0)
    units = []
    for x in sorted(set(symbols[host])):
        xs = np.nonzero(symbols[host] == x)[0]
        rows, species = [], set()
        for c in xs:
            mine = i == c
            if not mine.any():
                break
            near = mine & (d <= tolerance * d[mine].min())
            species |= set(symbols[host][j[near]])
            rows.append((c, j[near], shift[near]))
        if len(rows) != len(xs) or len(species) != 1 or x in species:
            continue
        counts = {len(r[1]) for r in rows}
        if len(counts) != 1 or counts.pop() < 3:
            continue
        centres = host[[r[0] for r in rows]]
        ligands = np.array([host[r[1]] for r in rows])
        shifts = np.array([r[2] @ np.asarray(cell_A) for r in rows])
        # the ligand position minus the centre's must be the minimum image at frame 0
        units.append(Polyanions(x, species.pop(), centres, ligands, shifts))
    return units


def reorientation(vectors_A: np.ndarray) -> np.ndarray:
    """Seed 001 eq. 4: C(t) = ⟨u(t)·u(0)⟩ over time origins and all centre→ligand unit
    vectors u (input frames × … × 3); C(0) = 1."""
    from .correlations import _autocorrelation  # lazy: the Snakefile imports this module

    u = vectors_A / np.linalg.norm(vectors_A, axis=-1, keepdims=True)
    u = u.reshape(len(u), -1, 3)
    n = len(u)
    acf = _autocorrelation(u).sum(axis=2).mean(axis=1)
    return acf / (n - np.arange(n))


_TRIPLES = [(i, j, k) for i in range(4) for j in range(4) for k in range(4)
            if j < k and i not in (j, k)]  # vertex i, edges to j and k: 12 angles


def tetrahedral_angles(vectors_A: np.ndarray) -> np.ndarray:
    """Seed 002 eq. 4: θ = arccos(d_ij·d_ik/|d_ij||d_ik|) (degrees) for all 12 vertex
    angles of the faces of each tetrahedral unit, from the centre→ligand vectors (frames ×
    units × 4 × 3). A regular tetrahedron gives 60° everywhere."""
    if vectors_A.shape[-2] != 4:
        raise PhonionError("tetrahedral angles need units with 4 ligands")
    out = []
    for i, j, k in _TRIPLES:
        dij = vectors_A[..., j, :] - vectors_A[..., i, :]
        dik = vectors_A[..., k, :] - vectors_A[..., i, :]
        cos = (dij * dik).sum(-1) / (np.linalg.norm(dij, axis=-1) * np.linalg.norm(dik, axis=-1))
        out.append(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    return np.stack(out, axis=-1)  # frames × units × 12


def angular_velocity(theta_deg: np.ndarray, dt_ps: float, cutoff_cm1: float | None = 5.0
                     ) -> np.ndarray:
    """Seed 002 eq. 5: ω(t) = [θ(t + dt) − θ(t − dt)]/2dt (deg/ps) along axis 0.

    As in the paper, θ(t) is first low-pass filtered (Fourier filter with the threshold
    ``cutoff_cm1``, 5 cm⁻¹ = 0.15 THz) to keep the slow relaxational dynamics; ``None``
    skips the filter. ``dt_ps`` is the time between frames.
    """
    th = np.asarray(theta_deg, float)
    if cutoff_cm1 is not None:
        f = np.fft.rfftfreq(len(th), d=dt_ps)  # THz
        spec = np.fft.rfft(th - th.mean(axis=0), axis=0)
        spec[f > cutoff_cm1 * 0.0299792458] = 0.0  # cm⁻¹ → THz
        th = np.fft.irfft(spec, n=len(th), axis=0) + th.mean(axis=0)
    return (th[2:] - th[:-2]) / (2 * dt_ps)


def tmsd_A2(positions_A: np.ndarray) -> float:
    """Total mean square displacement (Å², summed over x, y, z, mean over the atoms and all
    time origins) at half the run, the longest lag averaged over as many origins as
    frames it spans."""
    x = np.asarray(positions_A, float)
    m = len(x) // 2
    return float(((x[m:] - x[:len(x) - m]) ** 2).sum(axis=2).mean()) if m else 0.0


def rotation_diffusion_category(positions_A: np.ndarray, symbols: np.ndarray, mobile: str,
                                units: list[Polyanions], scalars: dict,
                                s: DynamicsSettings) -> dict:
    """Seed 001 Fig. 2a: the category of one MD run from its polyanion rotation and the
    mobile ion's motion. A framework whose cations other than the mobile ion (the
    polyanion centres and any species that is no unit's ligand) move by a TMSD above
    ``s.melt_tmsd_A2`` (seed 001: 2 Å²) has melted and gets no category. Otherwise
    category 1 = rotation and diffusion, 2 = rotation without diffusion, 3 = no rotation,
    rotation meaning C(t) at half the run below ``s.rotation_threshold`` (0.9) for some
    unit, diffusion a mobile-ion TMSD above ``s.diffusion_tmsd_A2`` (5 Å²: hops of ≥ 2.2 Å).
    No polyanions: no category."""
    out: dict = {"mobile_tmsd_A2": tmsd_A2(positions_A[:, symbols == mobile]),
                 "category_thresholds": {"rotation_C": s.rotation_threshold,
                                         "diffusion_tmsd_A2": s.diffusion_tmsd_A2,
                                         "melt_tmsd_A2": s.melt_tmsd_A2}}
    if not units:
        out["rotation_diffusion_category"] = None
        return out
    ligands = {u.ligand for u in units}
    cations = sorted(set(symbols) - ligands - {mobile})
    host = np.isin(symbols, cations)
    out["framework_cation_tmsd_A2"] = tmsd_A2(positions_A[:, host]) if host.any() else 0.0
    c_min = min(scalars[f"reorientation_C_half_run_{u.name}"] for u in units)
    out["polyanion_C_half_run_min"] = c_min
    if out["framework_cation_tmsd_A2"] > s.melt_tmsd_A2:
        out["rotation_diffusion_category"] = None
        out["framework_melted"] = True
        return out
    out["framework_melted"] = False
    rotating = c_min < s.rotation_threshold
    diffusing = out["mobile_tmsd_A2"] > s.diffusion_tmsd_A2
    out["rotation_diffusion_category"] = 3 if not rotating else 1 if diffusing else 2
    return out


def analyze_dynamics(traj: dict, s: DynamicsSettings) -> tuple[dict, dict]:
    """The analyses switched on in ``s`` (config section ``dynamics``) for one
    trajectory → (scalars, arrays). Scalars are named with units; arrays go to HDF5."""
    mobile_symbol = s.mobile_ion
    settings = dataclasses.asdict(s)
    symbols = symbols_of(traj["numbers"])
    pos = np.asarray(traj["positions_A"], float)
    cell = np.asarray(traj["cell_A"], float)
    dt = float(traj["frame_dt_ps"])
    duration = dt * (len(pos) - 1)
    mobile = np.nonzero(symbols == mobile_symbol)[0]
    r_max = float(settings["r_max_A"])
    bin_a = float(settings["bin_A"])
    out: dict = {"mobile_ion": mobile_symbol, "analyses": s.analyses,
                 "rotation_threshold": s.rotation_threshold,
                 "duration_ps": duration, "frame_dt_ps": dt}
    arrays: dict = {}
    if settings.get("rdf"):
        species = sorted(set(symbols))
        pairs = ([(a, b) for i, a in enumerate(species) for b in species[i:]]
                 if settings.get("rdf_all_pairs")
                 else [(mobile_symbol, other) for other in species])
        r, gs = rdfs(pos, cell, symbols, pairs, r_max, bin_a, settings["max_frames"])
        arrays["rdf/r_A"] = r
        for (a, b), g in gs.items():
            arrays[f"rdf/{a}-{b}"] = g
            out[f"rdf_first_peak_{a}-{b}_A"] = float(r[np.argmax(g)])
    if settings.get("van_hove"):
        n_lags = int(settings["van_hove_lags"])
        lags = np.linspace(duration / 2 / n_lags, duration / 2, n_lags)
        lags = np.unique(np.maximum(np.rint(lags / dt), 1)) * dt
        r, gs = van_hove_self(pos[:, mobile], dt, lags, r_max, bin_a)
        arrays.update({"van_hove/r_A": r, "van_hove/lag_ps": lags, "van_hove/G_s_A-3": gs})
        # fraction of ions displaced beyond the hop distance after the longest lag
        shell = _radial_grid(r_max, bin_a)[2]
        beyond = r >= settings["hop_distance_A"]
        out["van_hove_fraction_beyond_hop_distance"] = float((gs[-1] * shell)[beyond].sum())
        out["van_hove_longest_lag_ps"] = float(lags[-1])
        r_d, gd, r_max_d = van_hove_distinct(pos[:, mobile], cell, dt, lags, r_max, bin_a,
                                             settings["max_frames"])
        arrays.update({"van_hove/r_distinct_A": r_d, "van_hove/G_d_A-3": gd})
        # other ions within 1 Å of where an ion was Δt earlier, against an uncorrelated
        # liquid of the same density (seed 002: > random = ions take over each other's sites)
        near = r_d < 1.0
        shell_d = _radial_grid(r_max_d, bin_a)[2]
        rho = (len(mobile) - 1) / abs(np.linalg.det(cell))  # the other ions: j ≠ i
        out["van_hove_distinct_within_1A"] = float((gd[:, near] * shell_d[near]).sum(axis=1)
                                                   .max())
        out["van_hove_distinct_within_1A_random"] = float(rho * 4.0 / 3.0 * np.pi)
        out["van_hove_distinct_r_max_A"] = r_max_d
    units = (find_polyanions(pos, cell, symbols, mobile_symbol)
             if settings.get("reorientation") or settings.get("tetrahedra") else [])
    out["polyanions"] = [u.name for u in units]
    if settings.get("reorientation"):
        h, _ = hop_events(pos[:, mobile], dt, settings["hop_distance_A"],
                          settings["hop_residence_ps"], settings["hop_window_ps"])
        out["long_lived_hops"] = count_hops(h)
        out["long_lived_hops_testable"] = duration > settings["hop_window_ps"]
        for u in units:
            vec = u.vectors(pos)
            c = reorientation(vec)
            arrays[f"reorientation/{u.name}"] = c
            arrays["reorientation/time_ps"] = np.arange(len(c)) * dt
            half = c[len(c) // 2]
            out[f"reorientation_C_half_run_{u.name}"] = float(half)
            out[f"rotating_{u.name}"] = bool(half < settings["rotation_threshold"])
            if f"rdf/{mobile_symbol}-{u.centre}" in arrays:  # g_AB = g_BA: computed above
                r, g = arrays["rdf/r_A"], arrays[f"rdf/{mobile_symbol}-{u.centre}"]
            else:
                r, g = rdf(pos, cell, symbols, u.centre, mobile_symbol, r_max, bin_a,
                           settings["max_frames"])
            shell_a = first_shell_radius(r, g)
            coup = hop_rotation_coupling(pos, cell, u, mobile, shell_a)
            out[f"hop_rotation_pearson_{u.name}"] = coup["mean_pearson"]
            out[f"hop_rotation_events_{u.name}"] = coup["n_events"]
            out[f"first_shell_{u.centre}-{mobile_symbol}_A"] = shell_a
        out.update(rotation_diffusion_category(pos, symbols, mobile_symbol, units, out, s))
    if settings.get("density"):
        from .density import density_analysis

        T = traj.get("target_temperature_K") or float(np.mean(traj["temperature_K"]))
        more, grids = density_analysis(traj, mobile_symbol, float(T),
                                       float(settings["density_spacing_A"]))
        out.update(more)
        arrays.update(grids)
    if settings.get("tetrahedra"):
        for u in units:
            if u.ligands.shape[1] != 4:
                continue
            theta = tetrahedral_angles(u.vectors(pos))
            omega = angular_velocity(theta, dt, settings["angle_filter_cm1"])
            hist, edges = np.histogram(theta, bins=np.arange(0.0, 180.5, 1.0), density=True)
            arrays[f"tetrahedra/{u.name}/rho_theta"] = hist
            arrays["tetrahedra/theta_deg"] = 0.5 * (edges[1:] + edges[:-1])
            w_edges = np.linspace(-abs(omega).max() - 1e-12, abs(omega).max() + 1e-12, 101)
            arrays[f"tetrahedra/{u.name}/rho_omega"] = np.histogram(
                omega, bins=w_edges, density=True)[0]
            arrays[f"tetrahedra/{u.name}/omega_deg_ps"] = 0.5 * (w_edges[1:] + w_edges[:-1])
            out[f"tetrahedral_angle_mean_{u.name}_deg"] = float(theta.mean())
            out[f"tetrahedral_angle_std_{u.name}_deg"] = float(theta.std())
            out[f"angular_velocity_std_{u.name}_deg_ps"] = float(omega.std())
    return out, arrays
