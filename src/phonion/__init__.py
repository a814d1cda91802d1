"""phonion: lattice-dynamics screening of solid ion conductors.

The package holds the science; the Snakemake workflow in ``workflow/`` only calls it,
one command per stage (``python -m phonion <stage>``, :mod:`phonion.cli`). A stage
has one name everywhere: rule, command, module, settings class and results folder.

Stages (module: verbs), in pipeline order:

- :mod:`phonion.intake` — ``discover``, ``read_structure``, ``triage``
- :mod:`phonion.relax` — ``relax``, ``verdict`` (MLPs from :mod:`phonion.calculators`)
- :mod:`phonion.displace` — ``choose_supercell``, ``displace``
- :mod:`phonion.forces` — ``compute_forces``
- :mod:`phonion.fit_ifc` — ``fit_force_constants`` (pheasy)
- :mod:`phonion.stability` — ``assess_stability``
- :mod:`phonion.phonon_descriptors` — ``phonon_descriptors``
- :mod:`phonion.md` — ``run_md``, ``run_adaptive``
- :mod:`phonion.diffusion` — ``msd``, ``diffusion_coefficient``, ``analyze_trajectory``
- :mod:`phonion.dynamics` — ``analyze_dynamics`` (optional analyses)
- :mod:`phonion.arrhenius` — ``arrhenius``, ``arrhenius_stage``

Beneath them: :mod:`phonion.settings` (one settings dataclass per stage),
:mod:`phonion.formats` (every file phonion reads or writes), :mod:`phonion.harmonic`
(phonopy objects, meshes, band paths, mode quantities), :mod:`phonion.runner` (the stage
runner), :mod:`phonion.status` (``campaign_status``), :mod:`phonion.errors`,
:mod:`phonion.provenance`, :mod:`phonion.plots`.
"""

__version__ = "0.1.0"
