"""Structure descriptors of a relaxed crystal (seed 000 Fig. S10a and Table 2, seed 003
Table 1), computed with pymatgen where it has the quantity.

- ``mobile_cn``: mean coordination number of the mobile ion by pymatgen's ``CrystalNN``
  (Voronoi solid angles with electronegativity weighting; no fixed cutoff);
- ``number_density_per_A3`` and ``volume_per_atom_A3``;
- ``packing_fraction``: Σ (4/3)π r³ / V with the ionic radii (Shannon 1976, through
  pymatgen) of the oxidation states pymatgen guesses from the composition (atomic radii
  where no guess or radius exists; ``radii`` in the result says which);
- ``mean_electronegativity_pauling`` and ``mean_electron_count``: composition-weighted
  means of the Pauling electronegativity and the atomic number (``Composition``);
- ``mean_bond_length_A``: mean of all interatomic distances within 3.5 Å (each pair once),
  ``mobile_mean_bond_length_A`` the same from the mobile ion, and
  ``mobile_nearest_neighbour_A``;
- space group symbol and number (``SpacegroupAnalyzer``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

#: Cutoff of the mean bond lengths (Å).
BOND_CUTOFF_A = 3.5


def structure_descriptors(structure, mobile_ion: str = "Na", symprec: float = 0.01) -> dict:
    """Descriptors of a pymatgen ``Structure`` (units in the names)."""
    from pymatgen.analysis.local_env import CrystalNN
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    comp = structure.composition
    n, volume = len(structure), structure.volume
    mobile = [i for i, s in enumerate(structure) if s.specie.symbol == mobile_ion]
    ionic = structure.copy()
    try:
        ionic.add_oxidation_state_by_guess()
        radii = [float(s.specie.ionic_radius) for s in ionic]
        kind = "ionic (Shannon, guessed oxidation states)"
    except (ValueError, TypeError, AttributeError):
        ionic = structure
        radii = [float(s.specie.atomic_radius or math.nan) for s in structure]
        kind = "atomic (no oxidation-state guess)"
    cnn = CrystalNN()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # radius fallbacks inside CrystalNN
        cn = [cnn.get_cn(ionic, i) for i in mobile]
    centers, neighbors, _, dist = structure.get_neighbor_list(BOND_CUTOFF_A)
    pairs = centers < neighbors  # each pair once (periodic images of a pair count once each)
    from_mobile = np.isin(centers, mobile) & (dist > 1e-8)
    sga = SpacegroupAnalyzer(structure, symprec=symprec)
    desc = {
        "mobile_cn": float(np.mean(cn)) if cn else math.nan,
        "number_density_per_A3": n / volume,
        "volume_per_atom_A3": volume / n,
        "packing_fraction": float(sum(4.0 / 3.0 * math.pi * r**3 for r in radii) / volume),
        "mean_electronegativity_pauling": float(comp.average_electroneg),
        "mean_electron_count": float(sum(el.Z * x for el, x in
                                         comp.fractional_composition.items())),
        "mean_bond_length_A": float(dist[pairs].mean()) if pairs.any() else math.nan,
        "mobile_mean_bond_length_A": (float(dist[from_mobile].mean()) if from_mobile.any()
                                      else math.nan),
        "mobile_nearest_neighbour_A": (float(dist[from_mobile].min()) if from_mobile.any()
                                       else math.nan),
        "mobile_fraction": len(mobile) / n,
    }
    return {"descriptors": desc, "spacegroup": sga.get_space_group_symbol(),
            "spacegroup_number": int(sga.get_space_group_number()), "mobile_ion": mobile_ion,
            "radii": kind, "n_atoms": n, "formula": comp.reduced_formula}
