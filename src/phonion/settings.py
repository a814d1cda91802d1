"""Per-stage settings: one small dataclass per stage, holding only what that stage reads.

The workflow builds each stage's settings from the campaign config
(:func:`stage_settings`) and hands them to the job as one canonical JSON string
(:func:`canonical_json`). Snakemake reruns a job when its params change, so a stage's
params must carry exactly the values that change its result: a descriptor-only key
reruns the descriptors, never the MLP forces upstream of them. Execution details that
do not change a result (the interpreter, the torch device) never enter the settings.

Each field names where it comes from in the config (``section.key``; default: the
stage's ``SECTION`` and the field name). Per-material ``overrides`` replace values of
the sections ``relax``, ``phonons`` and ``md``. Defaults equal the schema defaults
(``workflow/schemas/config.schema.yaml``; a test keeps them equal), so stage functions
can be called from Python without a config.

This module imports nothing heavy: the Snakefile imports it at parse time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from .settings_base import Settings
from .settings_base import config_field as _from

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
class CalculatorSettings(Settings):
    """The MLP that a stage evaluates (config ``calculator``); the device is an execution
    detail, passed to the job separately, so moving MD to a GPU reruns nothing."""

    backend: str = _from("calculator.backend", "sevenn")
    model: str = _from("calculator.model", "7net-0")
    dtype: str = _from("calculator.dtype", "float64")
    modal: str = _from("calculator.modal", "")

    def calculator(self) -> dict:
        return {"backend": self.backend, "model": self.model, "dtype": self.dtype,
                "modal": self.modal}


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
class StabilityRecheckSettings(CalculatorSettings):
    """The stability screen again with a second MLP on the same displaced supercells
    (config ``stability_recheck``): which instabilities depend on the model."""

    SECTION: ClassVar[str] = "stability_recheck"
    backend: str = _from("stability_recheck.backend", "sevenn")
    model: str = _from("stability_recheck.model", "7net-l3i5")
    dtype: str = _from("stability_recheck.dtype", "float64")
    modal: str = _from("stability_recheck.modal", "")
    tolerance_THz: float = _from("phonons.stability_tolerance_THz", 0.1)
    mesh_length_A: float = _from("phonons.stability_mesh_length_A", 30.0)
    band_points: int = _from("phonons.band_points", 51)


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


@dataclass(frozen=True)
class MDSettings(CalculatorSettings):
    """NVT MD of one material at one temperature (config ``md``; the temperature is the
    job's wildcard, not a setting of the list ``md.temperatures_K``, so adding a
    temperature runs only that temperature's MD)."""

    SECTION: ClassVar[str] = "md"
    temperature_K: float = field(default=800.0, metadata={"wildcard": True})
    timestep_fs: float = 1.5
    equilibration_steps: int = 10_000
    production_steps: int = 40_000
    interval: int = 4
    thermostat: str = "langevin"  # langevin | bussi | nose_hoover_chain
    initial_state: str = "harmonic"  # harmonic (from fc2, when given) | maxwell_boltzmann
    friction_per_fs: float = 0.01  # Langevin
    tau_fs: float = 100.0  # Bussi / Nosé–Hoover damping time
    seed: int = 0
    max_force_eV_A: float = 50.0
    max_temperature_factor: float = 5.0
    min_distance_A: float = 0.5
    adaptive: bool = _from("md.adaptive.enabled", False)
    adaptive_target_rel_stderr: float = _from("md.adaptive.target_rel_stderr", 0.1)
    adaptive_chunk_steps: int = _from("md.adaptive.chunk_steps", 10_000)
    adaptive_max_production_steps: int = _from("md.adaptive.max_production_steps", 200_000)
    adaptive_min_duration_ps: float = _from("md.adaptive.min_duration_ps", 5.0)
    mobile_ion: str = _from("mobile_ion", "Na")  # the adaptive stopping rule's ion

    def canonical(self) -> MDSettings:
        s = self
        if s.thermostat != "langevin":
            s = dataclasses.replace(s, friction_per_fs=0.01)
        if s.thermostat == "langevin":
            s = dataclasses.replace(s, tau_fs=100.0)
        if not s.adaptive:
            s = dataclasses.replace(
                s, adaptive_target_rel_stderr=0.1, adaptive_chunk_steps=10_000,
                adaptive_max_production_steps=200_000, adaptive_min_duration_ps=5.0,
                mobile_ion="Na")
        return s

    def run_fingerprint(self) -> dict:
        """The settings that define a trajectory apart from its length (a longer run
        extends an existing trajectory instead of restarting it)."""
        d = dataclasses.asdict(self)
        for key in ("production_steps", "mobile_ion"):
            d.pop(key)
        for key in [k for k in d if k.startswith("adaptive")]:
            d.pop(key)
        return d


@dataclass(frozen=True)
class DiffusionSettings(Settings):
    """Diffusion analysis of a trajectory (config ``diffusion`` and ``mobile_ion``)."""

    SECTION: ClassVar[str] = "diffusion"
    mobile_ion: str = _from("mobile_ion", "Na")
    estimator: str = "blocks"  # or "seed000": through the origin, window, 1/t weights
    n_blocks: int = 5
    diffusive_slope: float = 0.5
    window: tuple[float, float] = (0.1, 0.5)  # seed000 estimator only
    weighting: str = "inverse_time"  # seed000 estimator only
    melt_d_threshold_A2_ps: float = 0.01
    melt_displacement_A: float = 4.0
    min_duration_ps: float = 5.0


@dataclass(frozen=True)
class DynamicsSettings(Settings):
    """Optional structure and dynamics analyses (config ``dynamics``)."""

    SECTION: ClassVar[str] = "dynamics"
    mobile_ion: str = _from("mobile_ion", "Na")
    rdf: bool = False
    van_hove: bool = False
    reorientation: bool = False
    tetrahedra: bool = False
    r_max_A: float = 8.0
    bin_A: float = 0.05
    max_frames: int = 200
    van_hove_lags: int = 8
    rotation_threshold: float = 0.9
    hop_distance_A: float = 3.8
    hop_residence_ps: float = 3.0
    hop_window_ps: float = 9.0
    angle_filter_cm1: float | None = 5.0

    ANALYSES: ClassVar[tuple[str, ...]] = ("rdf", "van_hove", "reorientation", "tetrahedra")

    @property
    def analyses(self) -> list[str]:
        return [a for a in self.ANALYSES if getattr(self, a)]


@dataclass(frozen=True)
class ArrheniusSettings(Settings):
    """Arrhenius fit and Nernst–Einstein conductivity (``mobile_ion``, its charge)."""

    SECTION: ClassVar[str] = "arrhenius"
    mobile_ion: str = _from("mobile_ion", "Na")
    charge: int | None = _from("mobile_ion_charge", None)


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


@dataclass(frozen=True)
class CampaignTableSettings(Settings):
    """The campaign table (config ``campaign``): whether runs flagged ``too_short`` or
    ``melted`` enter fits, and an external diffusion table to merge."""

    SECTION: ClassVar[str] = "campaign"
    include_flagged: bool = False
    external_d: str = ""


@dataclass(frozen=True)
class CampaignStatisticsSettings(Settings):
    """Correlations (config ``campaign``)."""

    SECTION: ClassVar[str] = "campaign"
    descriptors: tuple[str, ...] = ()
    n_bootstrap: int = 1000
    fdr_alpha: float = 0.05
    seed: int = 0


@dataclass(frozen=True)
class CampaignClusteringSettings(Settings):
    """PCA + k-means (config ``campaign``)."""

    SECTION: ClassVar[str] = "campaign"
    descriptors: tuple[str, ...] = ()
    k_range: tuple[int, int] = (2, 6)
    seed: int = 0


@dataclass(frozen=True)
class CampaignModelSettings(Settings):
    """ML model of diffusion (config ``campaign``)."""

    SECTION: ClassVar[str] = "campaign"
    descriptors: tuple[str, ...] = ()
    temperature_K: float | None = None
    model_min_materials: int = 12
    superionic_threshold_cm2_s: float = 1e-6
    cv_splits: int = 5
    n_estimators: int = 300
    seed: int = 0


@dataclass(frozen=True)
class CampaignFiguresSettings(Settings):
    """Campaign figures (config ``campaign``): only plotting keys."""

    SECTION: ClassVar[str] = "campaign"
    temperature_K: float | None = None
    colormap: str = "viridis"


@dataclass(frozen=True)
class CampaignSummarySettings(Settings):
    """``summary.md`` (config ``campaign``)."""

    SECTION: ClassVar[str] = "campaign"
    top_candidates: int = 10


@dataclass(frozen=True)
class DftForcesSettings(Settings):
    """DFT static forces on the displaced supercells of a validated material (config
    ``dft``): the engine and that engine's protocol (``dft.cp2k`` or ``dft.vasp``, every
    key a field of :class:`phonion.dft.cp2k.Cp2kSettings` / :class:`phonion.dft.vasp.
    VaspSettings`). The run command is an execution detail (environment variable
    ``PHONION_DFT_COMMAND``) and the other engine's section is not read: editing either
    reruns nothing."""

    SECTION: ClassVar[str] = "dft"
    engine: str = "cp2k"
    cp2k: dict = _from("dft.cp2k", {})
    vasp: dict = _from("dft.vasp", {})

    def canonical(self) -> DftForcesSettings:
        mine = {k: v for k, v in getattr(self, self.engine).items()
                if k not in ("command", "gamma_command")}
        other = "vasp" if self.engine == "cp2k" else "cp2k"
        return dataclasses.replace(self, **{self.engine: mine, other: {}})


@dataclass(frozen=True)
class DftRelaxSettings(DftForcesSettings):
    """Relaxation by a DFT engine (config ``relax.engine: vasp | cp2k``): that engine's
    protocol (``dft.<engine>``: its relax keys, e.g. ``dft.cp2k.relax_cell`` or
    ``dft.vasp.relax_isif``) and the space-group check of ``relax``. A campaign with the
    MLP relaxation never reads these, so adding the engine key reran nothing."""

    SECTION: ClassVar[str] = "relax"
    engine: str = _from("relax.engine", "mlp")
    on_symmetry_change: str = "fail"
    symprec: float = 0.01

    def canonical(self) -> DftRelaxSettings:
        if self.engine not in ("vasp", "cp2k"):  # the MLP relaxes: no protocol is read
            return dataclasses.replace(self, cp2k={}, vasp={})
        return super().canonical()


@dataclass(frozen=True)
class AimdSettings(DftForcesSettings):
    """NVT AIMD of a material at one temperature (config ``dft``: the engine's protocol, and
    ``dft.aimd.steps``); the temperature is the job's wildcard, so adding one runs only
    the new temperature."""

    steps: int = _from("dft.aimd.steps", 20000)
    temperature_K: float = field(default=800.0, metadata={"wildcard": True})


@dataclass(frozen=True)
class DftValidationSettings(Settings):
    """MLP against DFT on the same displaced supercells (config ``phonons``, ``mobile_ion``):
    both force sets through the same symfc least-squares fit, then the stability verdict
    and the mobile-ion MSD of each on the same q-mesh."""

    SECTION: ClassVar[str] = "phonons"
    mobile_ion: str = _from("mobile_ion", "Na")
    temperatures_K: tuple[float, ...] = (300.0, 800.0)
    mesh_length_A: float = _from("phonons.stability_mesh_length_A", 30.0)
    tolerance_THz: float = _from("phonons.stability_tolerance_THz", 0.1)
    band_points: int = 51
    fc2_cutoff_A: float | None = None
    #: with phonons.fc3 the displacements were made for fc3 too: compare fc3 as well
    fc3: bool = False
    fc3_cutoff_A: float = 4.5

    def canonical(self) -> DftValidationSettings:
        return self if self.fc3 else dataclasses.replace(self, fc3_cutoff_A=4.5)


#: stage name → its settings class (the stages that have settings).
SETTINGS: dict[str, type[Settings]] = {
    "intake": IntakeSettings,
    "relax": RelaxSettings,
    "displace": DisplaceSettings,
    "forces": ForcesSettings,
    "fit_ifc": FitIfcSettings,
    "stability": StabilitySettings,
    "stability_recheck": StabilityRecheckSettings,
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
}
