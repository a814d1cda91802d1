"""Per-stage settings: one small dataclass per stage, holding only what that stage reads.

The workflow builds each stage's settings from the campaign config
(:func:`stage_settings`) and hands them to the job as one canonical JSON string
(:func:`phonion.settings_base.canonical_json`). Snakemake reruns a job when its params
change, so a stage's params must carry exactly the values that change its result: a
descriptor-only key reruns the descriptors, never the MLP forces upstream of them.
Execution details that do not change a result (the interpreter, the torch device) never
enter the settings.

Each field names where it comes from in the config (``section.key``; default: the
stage's ``SECTION`` and the field name). Per-material ``overrides`` replace values of
the sections ``relax``, ``phonons`` and ``md``. Defaults equal the schema defaults
(``workflow/schemas/config.schema.yaml``; a test keeps them equal), so stage functions
can be called from Python without a config.

The classes live by family (:mod:`.settings_base`: the base class and the MLP fields;
this module: structure and phonon stages and the registry :data:`SETTINGS`;
:mod:`.settings_md`, :mod:`.settings_dft`, :mod:`.settings_campaign`), all importable from
here. This module imports nothing heavy: the Snakefile imports it at parse time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from .settings_base import CalculatorSettings, Settings
from .settings_base import config_field as _from
from .settings_campaign import (
    CampaignClusteringSettings,
    CampaignFiguresSettings,
    CampaignModelSettings,
    CampaignStatisticsSettings,
    CampaignSummarySettings,
    CampaignTableSettings,
)
from .settings_dft import (
    AimdSettings,
    DftForcesSettings,
    DftRelaxSettings,
    DftValidationSettings,
    FinetuneSettings,
)
from .settings_md import (
    ArrheniusSettings,
    DiffusionSettings,
    DynamicsSettings,
    MDSettings,
)

#: Config sections whose values a per-material ``overrides`` entry may replace.
OVERRIDABLE = ("relax", "phonons", "md")


def _config_path(cls: type[Settings], f: dataclasses.Field) -> str:
    return f.metadata.get("config", f"{cls.SECTION}.{f.name}")


def _lookup(config: dict, path: str, mid: str | None) -> Any:
    section, *keys = path.split(".")
    node = config.get(section, {})
    if mid is not None and section in OVERRIDABLE:
        over = config.get("overrides", {}).get(mid, {}).get(section, {})
        for key in keys[:-1]:
            over = over.get(key, {}) if isinstance(over, dict) else {}
        if isinstance(over, dict) and keys and keys[-1] in over:
            return over[keys[-1]]
    if not keys:
        return node
    for key in keys:
        node = node[key]
    return node


def stage_settings(stage: str, config: dict, mid: str | None = None) -> Settings:
    """Settings of ``stage`` from a validated config (defaults filled), with the
    overrides of material ``mid`` applied; canonical."""
    cls = SETTINGS[stage]
    values = {}
    for f in fields(cls):
        if f.metadata.get("wildcard"):
            continue
        value = _lookup(config, _config_path(cls, f), mid)
        values[f.name] = tuple(value) if isinstance(value, list) else value
    return cls(**values).canonical()


def check_campaign(config: dict, material_ids) -> None:
    """What the schema cannot say: the mobile ion is an element, every ``overrides`` entry
    names a material of the campaign. Raises :class:`~phonion.errors.ConfigError`."""
    from ase.data import chemical_symbols

    from .errors import ConfigError

    ion = config["mobile_ion"]
    if ion not in chemical_symbols[1:]:
        raise ConfigError(f"mobile_ion '{ion}' is not a chemical element")
    unknown = sorted(set(config.get("overrides", {})) - set(material_ids))
    if unknown:
        raise ConfigError(
            f"overrides name {', '.join(unknown)}, which {'is' if len(unknown) == 1 else 'are'}"
            " not a material of this campaign (ids are file names without suffix or the id "
            "column of structures.table)")


# --- the stages -----------------------------------------------------------------------

@dataclass(frozen=True)
class IntakeSettings(Settings):
    """Triage limits of intake (config ``structures`` and ``mobile_ion``)."""

    SECTION: ClassVar[str] = "structures"
    mobile_ion: str = _from("mobile_ion", "Na")
    max_atoms: int = 64
    max_input_atoms: int = 1000
    max_volume_per_atom_A3: float = 150.0
    min_distance_A: float = 0.7
    symprec: float = 1e-3


@dataclass(frozen=True)
class RelaxSettings(CalculatorSettings):
    """MLP relaxation of positions and cell (config ``relax``)."""

    SECTION: ClassVar[str] = "relax"
    fmax_eV_A: float = 0.005
    max_steps: int = 500
    optimizer: str = "LBFGS"
    cell_filter: str = "frechet"
    two_stage: bool = False
    fix_symmetry: bool = True
    on_symmetry_change: str = "fail"
    symprec: float = 0.01


@dataclass(frozen=True)
class DisplaceSettings(Settings):
    """Supercell choice and random displacements (config ``phonons``)."""

    SECTION: ClassVar[str] = "phonons"
    amplitude_A: float = 0.01
    min_atoms: int = 80
    max_atoms: int = 400
    min_length_A: float = 0.0
    fc3: bool = False
    fc2_cutoff_A: float | None = None
    plus_minus: bool = True
    safety_factor: float = 2.0
    min_snapshots: int = 1
    adaptive: bool = _from("phonons.adaptive_snapshots.enabled", False)
    max_snapshots: int = _from("phonons.adaptive_snapshots.max_patterns", 40)
    seed: int = 0
    symprec: float = 1e-3
    min_design_conditioning: float = 1e-4
    #: auto | random | finite_displacement (displace.displace)
    displacement_scheme: str = "auto"

    @property
    def orders(self) -> tuple[int, ...]:
        return (2, 3) if self.fc3 else (2,)

    def canonical(self) -> DisplaceSettings:
        return self if self.adaptive else dataclasses.replace(self, max_snapshots=40)


@dataclass(frozen=True)
class ForcesSettings(CalculatorSettings):
    """MLP forces on the displaced supercells: the model, and with adaptive snapshots the
    rule that stops adding them (config ``phonons.adaptive_snapshots``)."""

    SECTION: ClassVar[str] = "phonons"
    adaptive: bool = _from("phonons.adaptive_snapshots.enabled", False)
    adaptive_batch: int = _from("phonons.adaptive_snapshots.batch", 1)
    adaptive_tolerance: float = _from("phonons.adaptive_snapshots.tolerance", 0.005)
    fc2_cutoff_A: float | None = None
    mobile_ion: str = _from("mobile_ion", "Na")
    temperature_K: float = _from("phonons.adaptive_snapshots.temperature_K", 800.0)

    def canonical(self) -> ForcesSettings:
        if self.adaptive:
            return self
        return dataclasses.replace(self, adaptive_batch=1, adaptive_tolerance=0.005,
                                   fc2_cutoff_A=None, mobile_ion="Na", temperature_K=800.0)


@dataclass(frozen=True)
class FitIfcSettings(Settings):
    """pheasy force-constant fit (config ``phonons``)."""

    SECTION: ClassVar[str] = "phonons"
    fit_method: str = "auto"  # auto | lasso | least_squares
    fc2_cutoff_A: float | None = None
    fc3: bool = False
    fc3_cutoff_A: float = 4.5
    alpha_min_log10: int = -12
    alpha_max_log10: int = -2
    lasso_alphas: int = 50
    rotational_sum_rules: str = "BHH"
    symprec: float = 1e-3
    min_design_conditioning: float = 1e-4

    def canonical(self) -> FitIfcSettings:
        return self if self.fc3 else dataclasses.replace(self, fc3_cutoff_A=4.5)


@dataclass(frozen=True)
class StabilitySettings(CalculatorSettings):
    """Dynamic-stability screen (config ``phonons``); the MLP takes the second look at an
    unstable verdict (:func:`phonion.stability.second_look`)."""

    SECTION: ClassVar[str] = "phonons"
    tolerance_THz: float = _from("phonons.stability_tolerance_THz", 0.1)
    mesh_length_A: float = _from("phonons.stability_mesh_length_A", 30.0)
    band_points: int = 51


@dataclass(frozen=True)
class CommitteeSettings(CalculatorSettings):
    """The committee's models (config ``stability_recheck``): the second model, further
    ones of its backend, and the disagreement that flags ``extrapolating``; shared by the
    re-check of the phonon screen and the committee on MD frames."""

    SECTION: ClassVar[str] = "stability_recheck"
    backend: str = _from("stability_recheck.backend", "sevenn")
    model: str = _from("stability_recheck.model", "7net-l3i5")
    dtype: str = _from("stability_recheck.dtype", "float64")
    modal: str = _from("stability_recheck.modal", "")
    #: more models of the same backend in the committee ("model" or "model:modal")
    further_models: tuple[str, ...] = _from("stability_recheck.further_models", ())
    #: relative force disagreement of two models above which the material is flagged
    #: ``extrapolating`` (calibrated against CP2K and VASP: docs/relax.md)
    extrapolating_above: float = _from("stability_recheck.extrapolating_above", 0.15)


@dataclass(frozen=True)
class StabilityRecheckSettings(CommitteeSettings):
    """The stability screen again with a second MLP on the same displaced supercells
    (config ``stability_recheck``): which instabilities depend on the model."""

    #: relax the cell with the second model before its verdict (a verdict near the
    #: tolerance depends on the cell as much as on the model: docs/relax.md)
    own_relaxation: bool = _from("stability_recheck.own_relaxation", True)
    tolerance_THz: float = _from("phonons.stability_tolerance_THz", 0.1)
    mesh_length_A: float = _from("phonons.stability_mesh_length_A", 30.0)
    band_points: int = _from("phonons.band_points", 51)
    mobile_ion: str = _from("mobile_ion", "Na")
    temperatures_K: tuple[float, ...] = _from("phonons.temperatures_K", (300.0, 800.0))
    # the second model's own relaxation follows the campaign's relax criteria
    relax_fmax_eV_A: float = _from("relax.fmax_eV_A", 0.005)
    relax_max_steps: int = _from("relax.max_steps", 500)
    relax_optimizer: str = _from("relax.optimizer", "LBFGS")
    relax_cell_filter: str = _from("relax.cell_filter", "frechet")
    relax_two_stage: bool = _from("relax.two_stage", False)
    relax_fix_symmetry: bool = _from("relax.fix_symmetry", True)
    relax_on_symmetry_change: str = _from("relax.on_symmetry_change", "fail")
    relax_symprec: float = _from("relax.symprec", 0.01)
    displace_symprec: float = _from("phonons.symprec", 1e-3)

    def canonical(self) -> StabilityRecheckSettings:
        if self.own_relaxation:
            return self
        return dataclasses.replace(  # without its own relaxation no relax key is read
            self, **{f.name: f.default for f in dataclasses.fields(self)
                     if f.name.startswith("relax_")})

    def relax_settings(self) -> RelaxSettings:
        """The campaign's relaxation criteria with the second model."""
        return RelaxSettings(backend=self.backend, model=self.model, dtype=self.dtype,
                             modal=self.modal, fmax_eV_A=self.relax_fmax_eV_A,
                             max_steps=self.relax_max_steps, optimizer=self.relax_optimizer,
                             cell_filter=self.relax_cell_filter,
                             two_stage=self.relax_two_stage, fix_symmetry=self.relax_fix_symmetry,
                             on_symmetry_change=self.relax_on_symmetry_change,
                             symprec=self.relax_symprec)


@dataclass(frozen=True)
class MdCommitteeSettings(CommitteeSettings):
    """The committee's models on frames of each MD run (``stability_recheck.md_frames``):
    the committee on MD configurations."""

    n_frames: int = _from("stability_recheck.md_frames", 10)


@dataclass(frozen=True)
class FdCheckSettings(CalculatorSettings):
    """Phonopy finite displacements with the same model on the same supercell, against the
    fit (config ``phonons.fd_check``; the screen and MSD settings of ``phonons``)."""

    SECTION: ClassVar[str] = "phonons"
    amplitude_A: float = _from("phonons.fd_check.amplitude_A", 0.01)
    msd_tolerance_relative: float = _from("phonons.fd_check.msd_tolerance", 0.02)
    mobile_ion: str = _from("mobile_ion", "Na")
    temperatures_K: tuple[float, ...] = (300.0, 800.0)
    tolerance_THz: float = _from("phonons.stability_tolerance_THz", 0.1)
    mesh_length_A: float = _from("phonons.stability_mesh_length_A", 30.0)
    band_points: int = 51


@dataclass(frozen=True)
class PhononDescriptorsSettings(Settings):
    """Harmonic descriptors (config ``phonons`` and ``mobile_ion``)."""

    SECTION: ClassVar[str] = "phonons"
    mobile_ion: str = _from("mobile_ion", "Na")
    temperatures_K: tuple[float, ...] = (300.0, 800.0)
    mesh_start_length_A: float = 20.0
    mesh_max_length_A: float = 200.0
    msd_tolerance: float = 0.01
    low_frequency_THz: float = 1.5
    band_points: int = 51


# --- structure descriptors and the campaign analysis (issue 13) -------------------------

@dataclass(frozen=True)
class StructureDescriptorsSettings(Settings):
    """Structure descriptors of the relaxed cell (``mobile_ion``; the relaxation's
    symmetry tolerance for the space group)."""

    SECTION: ClassVar[str] = "relax"
    mobile_ion: str = _from("mobile_ion", "Na")
    symprec: float = _from("relax.symprec", 0.01)


@dataclass(frozen=True)
class ElasticSettings(CalculatorSettings):
    """Strain–stress elastic constants with the MLP (config ``elastic``)."""

    SECTION: ClassVar[str] = "elastic"
    strains: tuple[float, ...] = (-0.01, -0.005, 0.005, 0.01)
    relax_ions: bool = True
    fmax_eV_A: float = 0.005
    max_steps: int = 200

    def canonical(self) -> ElasticSettings:
        return self if self.relax_ions else dataclasses.replace(self, fmax_eV_A=0.005,
                                                                max_steps=200)


#: stage name → its settings class (the stages that have settings).
SETTINGS: dict[str, type[Settings]] = {
    "intake": IntakeSettings,
    "relax": RelaxSettings,
    "displace": DisplaceSettings,
    "forces": ForcesSettings,
    "fit_ifc": FitIfcSettings,
    "stability": StabilitySettings,
    "stability_recheck": StabilityRecheckSettings,
    "md_committee": MdCommitteeSettings,
    "fd_check": FdCheckSettings,
    "phonon_descriptors": PhononDescriptorsSettings,
    "md": MDSettings,
    "diffusion": DiffusionSettings,
    "dynamics": DynamicsSettings,
    "arrhenius": ArrheniusSettings,
    "structure_descriptors": StructureDescriptorsSettings,
    "elastic": ElasticSettings,
    "campaign_table": CampaignTableSettings,
    "campaign_statistics": CampaignStatisticsSettings,
    "campaign_clustering": CampaignClusteringSettings,
    "campaign_model": CampaignModelSettings,
    "campaign_figures": CampaignFiguresSettings,
    "campaign_summary": CampaignSummarySettings,
    "dft_forces": DftForcesSettings,
    "dft_relax": DftRelaxSettings,
    "dft_validation": DftValidationSettings,
    "aimd": AimdSettings,
    "aimd_validation": DiffusionSettings,
    "finetune": FinetuneSettings,
}
