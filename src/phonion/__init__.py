"""phonion: lattice-dynamics screening of solid ion conductors.

The package holds the science; the Snakemake workflow in ``workflow/`` only
calls it. One module per stage, each with a small set of verbs:

- :mod:`phonion.intake` — ``read_structure``, ``triage``
- :mod:`phonion.calculators` — ``get_calculator`` (MLP and analytic backends)
- :mod:`phonion.relax` — ``relax``
- :mod:`phonion.status` — ``collect_status``
"""

__version__ = "0.1.0"
