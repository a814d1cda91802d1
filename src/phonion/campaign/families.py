"""Descriptor families: columns that measure one quantity in several ways.

The campaign table holds variants of one quantity — the mean and the maximum of the
mobile-ion MSD, the Voigt, Reuss and Hill bulk moduli, an MSD at 300 K and at 800 K. Their
mutual correlations are near 1 by construction and are not findings; a correlogram over all
of them is unreadable. :func:`family` maps a column to its quantity, so that the summary
groups such pairs and the figures draw one representative per quantity.
"""

from __future__ import annotations

import re

#: Name parts that select a variant (an average, a bound, a temperature, the index pair of
#: a Cauchy pressure, a polarisation), not a quantity.
_VARIANT = re.compile(r"_(mean|max|min|voigt|reuss|hill|longitudinal|transverse|\d+(\.\d+)?K"
                      r"|\d\d_\d\d)(?=_|$)")


#: Columns that are a function of another one (1/x), grouped with it.
_ALIASES = {"st_number_density_per_A3": "st_volume_per_atom_A3"}


#: Seed 003's MD-VDOS descriptors of one set of atoms (all, host, mobile) are functionals of
#: one spectrum at one temperature: E, F, S, C_V (F = E − TS) and the moments (mean
#: frequencies, Debye temperature) move together by construction.
_VDOS = re.compile(r"^an_(?:(?:e_vib|f_vib|s_vib|cv)_(all|host|mobile)_(?:meV|kB)_atom"
                   r"|(?:mean_frequency|mean_frequency_30meV)_(all|host|mobile)_THz"
                   r"|debye_temperature_(all|host|mobile)_K)$")


def family(name: str) -> str:
    """The quantity of a descriptor column: ``ph_msd_mobile_mean_300K_A2`` and
    ``ph_msd_mobile_max_800K_A2`` → ``ph_msd_mobile_A2``; ``el_bulk_modulus_voigt_GPa``,
    ``el_bulk_modulus_reuss_GPa`` and ``el_bulk_modulus_GPa`` (Hill) → ``el_bulk_modulus_GPa``;
    the number density → ``st_volume_per_atom_A3`` (its inverse); the MD-VDOS
    thermodynamics and frequency moments of one set of atoms → ``an_vdos_{set}``."""
    m = _VDOS.match(name)
    if m:
        return f"an_vdos_{next(g for g in m.groups() if g)}"
    return _ALIASES.get(name) or _VARIANT.sub("", name)


#: Quantities drawn first in the at-a-glance correlogram: the phonon descriptors of seed 000
#: (mobile-ion MSD, Fig. 2; acoustic cutoff, Fig. S11; mobile-ion PDOS centre, Fig. 3) and
#: the structure and elastic quantities it compares them with.
KEY_FAMILIES = (
    "ph_msd_mobile_A2", "ph_acoustic_cutoff_THz", "ph_pdos_mobile_centre_THz",
    "ph_pdos_mobile_width_THz", "ph_lowest_optical_gamma_THz",
    "ph_coupling_below_low_frequency", "ph_msd_share_below_low_frequency",
    "st_volume_per_atom_A3", "st_packing_fraction", "st_mobile_cn",
    "st_mobile_nearest_neighbour_A", "st_electronegativity_pauling",
    "el_bulk_modulus_GPa", "el_shear_modulus_GPa", "el_debye_temperature_K",
    "el_pugh_ratio",
)


def representatives(names: list[str], limit: int = 16) -> list[str]:
    """One column per family (the plain one, e.g. the Hill modulus, else the first of it in
    ``names``), the :data:`KEY_FAMILIES` first, at most ``limit`` columns, in ``names``
    order."""
    first: dict[str, str] = {}
    for n in names:
        if family(n) == n:
            first[n] = n
        else:
            first.setdefault(family(n), n)
    ranked = [first[f] for f in KEY_FAMILIES if f in first]
    ranked += [n for f, n in first.items() if f not in KEY_FAMILIES]
    keep = set(ranked[:limit])
    return [n for n in names if n in keep]
