"""The mobile ion's probability density from an MD run and the dimensionality of the paths
it percolates along (seed 000 §3.4, Fig. 4c/f/i/l: isosurfaces of the Na density from AIMD,
"3D diffusion" vs "1D diffusion").

:func:`probability_density` is the time-averaged density of pymatgen-analysis-diffusion's
``ProbabilityDensityAnalysis`` (Zhu et al., Chem. Mater. 27, 8318 (2015)): every ion in
every frame counted at its nearest grid point, ∫P dV = 1 (Å⁻³). Hand-written, vectorised:
pymatgen's loops over frames × ions in Python (minutes for a 40 000-frame run of 50 ions);
the test checks the two agree count for count on a real AIMD trajectory.

Which isosurface level: none has to be chosen. The density is turned into the free energy
of the ion, F(r) = −k_B T ln(P(r)/P_max) (Boltzmann inversion of the time average), and for
d = 1, 2, 3 the workflow reports the lowest free-energy level ΔF_d at which the region
F ≤ ΔF_d percolates through the periodic cell in d independent directions — the barrier of
d-dimensional transport as the MD saw it, the MD analogue of the 1D/2D/3D percolation
energies of bond-valence landscapes. ``dimensionality`` is the d of the whole region the
ions visited (every voxel with P > 0): the paths actually taken in the run. A direction no
ion crossed in the run has no ΔF (None), whatever its barrier: a longer run may show it.
Frames further apart than half a voxel are joined by straight segments for the percolation
(``density_substeps``), so that a hop between two frames still connects its two sites.

Percolation (:func:`periodic_dimensionality`): connected components of a boolean voxel
grid (face, edge and corner neighbours, scipy.ndimage.label), joined across the periodic
boundaries with the lattice offset of each join; a component that meets itself at offsets
spanning a rank-d lattice percolates in d dimensions (the rank determination of Larsen et
al., Phys. Rev. Materials 3, 034003 (2019), for bonded clusters, here on a grid).
Hand-written: no maintained library labels periodic grids with their image offsets.
"""

from __future__ import annotations

import numpy as np

KB_EV_K = 8.617333262e-5


def grid_shape(cell_A: np.ndarray, spacing_A: float) -> tuple[int, int, int]:
    """Grid points along each lattice vector: the lengths over ``spacing_A``, rounded up."""
    lengths = np.linalg.norm(np.asarray(cell_A, float), axis=1)
    return tuple(int(np.ceil(length / spacing_A - 1e-9)) for length in lengths)


def probability_density(frac_positions: np.ndarray, cell_A: np.ndarray,
                        shape: tuple[int, int, int], chunk: int = 200_000) -> np.ndarray:
    """Time-averaged density (Å⁻³, ∫P dV = 1) of positions given in fractional coordinates
    (frames × ions × 3, any image), on the grid of ``shape`` points along the lattice
    vectors (spacing 1/n in fractional coordinates): each position counted at the grid
    point nearest in Cartesian distance among the 8 around it (pymatgen's rule)."""
    cell = np.asarray(cell_A, float)
    n = np.asarray(shape)
    f = np.asarray(frac_positions, float).reshape(-1, 3)
    f = f - np.floor(f)
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
    counts = np.zeros(int(np.prod(n)), dtype=np.int64)
    for start in range(0, len(f), chunk):
        x = f[start:start + chunk] * n  # grid units
        base = np.floor(x).astype(int)
        cand = base[:, None, :] + corners[None]  # (points, 8, 3)
        d = ((cand - x[:, None, :]) / n) @ cell  # Cartesian offset to each corner
        best = cand[np.arange(len(x)), np.argmin((d**2).sum(axis=2), axis=1)] % n
        flat = np.ravel_multi_index(best.T, tuple(n))
        counts += np.bincount(flat, minlength=counts.size)
    volume = abs(np.linalg.det(cell))
    return (counts / len(f) / volume * counts.size).reshape(tuple(n))


def _component_rank(vectors: list[np.ndarray]) -> int:
    return int(np.linalg.matrix_rank(np.array(vectors))) if vectors else 0


def periodic_dimensionality(mask: np.ndarray) -> int:
    """Largest number of independent lattice directions along which one connected region of
    ``mask`` (a periodic boolean grid; voxels sharing a face, an edge or a corner are
    connected) reaches its own periodic image: 0 for isolated pockets, 1 for channels, 2 for
    layers, 3 for a 3D network."""
    from itertools import product

    from scipy import ndimage

    mask = np.asarray(mask, bool)
    labels, n_labels = ndimage.label(mask, structure=np.ones((3, 3, 3), int))
    if n_labels == 0:
        return 0
    shape = np.array(mask.shape)
    parent = np.arange(n_labels + 1)
    offset = np.zeros((n_labels + 1, 3), dtype=int)  # image of a label relative to its parent
    cycles: dict[int, list[np.ndarray]] = {}

    def find(x: int) -> tuple[int, np.ndarray]:
        shift = np.zeros(3, dtype=int)
        root = x
        while parent[root] != root:
            shift += offset[root]
            root = parent[root]
        parent[x], offset[x] = root, shift  # path compression
        return root, shift

    index = np.indices(mask.shape)
    for d in product((-1, 0, 1), repeat=3):
        if d <= (0, 0, 0):  # each of the 13 neighbour directions once
            continue
        step = np.array(d)
        moved = index + step[:, None, None, None]
        image = np.floor_divide(moved, shape[:, None, None, None])  # which cell x + d is in
        crosses = image.any(axis=0) & mask
        if not crosses.any():
            continue
        there = tuple(np.mod(moved, shape[:, None, None, None])[:, crosses])
        keep = mask[there]
        a_lab = labels[crosses][keep]
        b_lab = labels[there][keep]
        shifts = image[:, crosses][:, keep].T
        for a, b, s in {(int(a), int(b), tuple(s)) for a, b, s in
                        zip(a_lab, b_lab, shifts, strict=True)}:
            # a in cell 0 touches b in cell s: position(b) = position(a) + s
            ra, sa = find(a)
            rb, sb = find(b)
            if ra == rb:
                cycle = sa + np.array(s) - sb
                if cycle.any():
                    cycles.setdefault(ra, []).append(cycle)
            else:
                parent[rb], offset[rb] = ra, sa + np.array(s) - sb
                cycles.setdefault(ra, []).extend(cycles.pop(rb, []))
    return max((_component_rank(v) for v in cycles.values()), default=0)


def percolation(density: np.ndarray, temperature_K: float) -> dict:
    """``dimensionality`` of the visited region (P > 0) and, for d = 1, 2, 3, the
    free-energy level ΔF_d (eV) above the density maximum at which the region
    F = −k_B T ln(P/P_max) ≤ ΔF_d first percolates in d directions (None when the visited
    region does not); bisection over the density levels (percolation only gains
    directions as the level drops)."""
    p = np.asarray(density, float)
    levels = np.unique(p[p > 0])[::-1]  # descending
    out: dict = {"dimensionality": periodic_dimensionality(p > 0)}
    for d in (1, 2, 3):
        key = f"percolation_barrier_{d}d_eV"
        if out["dimensionality"] < d:
            out[key] = None
            continue
        lo, hi = 0, len(levels) - 1  # levels[hi] percolates in d; find the first index that does
        while lo < hi:
            mid = (lo + hi) // 2
            if periodic_dimensionality(p >= levels[mid]) >= d:
                hi = mid
            else:
                lo = mid + 1
        out[key] = float(KB_EV_K * temperature_K * np.log(levels[0] / levels[lo]))
    return out


def density_analysis(traj: dict, mobile_ion: str, temperature_K: float, spacing_A: float
                     ) -> tuple[dict, dict]:
    """The mobile ion's density on a grid of ``spacing_A`` over the MD cell, its
    percolation (:func:`percolation`) and the grid for the volume file and the figure."""
    from .errors import PhonionError
    from .geometry import symbols_of

    symbols = symbols_of(traj["numbers"])
    mobile = symbols == mobile_ion
    if not mobile.any():
        raise PhonionError(f"no {mobile_ion} atoms in the trajectory: no density")
    cell = np.asarray(traj["cell_A"], float)
    pos = np.asarray(traj["positions_A"], float)[:, mobile]  # unwrapped
    shape = grid_shape(cell, spacing_A)
    rho = probability_density(pos @ np.linalg.inv(cell), cell, shape)
    # percolation needs the voxels an ion passed through between frames: with frames further
    # apart than half a voxel (AIMD written every 0.1 ps) the visited voxels do not touch,
    # so the positions between frames are filled in on straight lines for it
    step = float(np.linalg.norm(np.diff(pos, axis=0), axis=2).max()) if len(pos) > 1 else 0.0
    sub = int(min(max(np.ceil(step / (0.5 * spacing_A)), 1), 50))
    if sub > 1:
        w = np.arange(sub)[:, None, None, None] / sub
        path = (pos[:-1][None] * (1 - w) + pos[1:][None] * w).reshape(-1, *pos.shape[1:])
        rho_path = probability_density(np.concatenate([path, pos[-1:]]) @ np.linalg.inv(cell),
                                       cell, shape)
    else:
        rho_path = rho
    out = {"density_grid": list(shape), "density_spacing_A": spacing_A,
           "density_max_A-3": float(rho.max()), "density_substeps": sub,
           **{f"density_{k}": v for k, v in percolation(rho_path, temperature_K).items()}}
    return out, {"density/P_A-3": rho, "density/cell_A": cell}


def write_chgcar(path, traj: dict, density_A3: np.ndarray) -> None:
    """The density as a VASP CHGCAR (values × cell volume, VASP's convention) over the MD
    cell with its time-averaged atoms, atomically: VESTA draws the isosurfaces of seed 000
    Fig. 4 from it. pymatgen writes the format."""
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.vasp import Chgcar, Poscar

    from .formats import atomic_path
    from .geometry import symbols_of

    cell = np.asarray(traj["cell_A"], float)
    mean = np.asarray(traj["positions_A"], float).mean(axis=0)
    structure = Structure(Lattice(cell), list(symbols_of(traj["numbers"])), mean,
                          coords_are_cartesian=True)
    volume = abs(np.linalg.det(cell))
    with atomic_path(path) as tmp:
        Chgcar(Poscar(structure), {"total": np.asarray(density_A3) * volume}).write_file(tmp)
