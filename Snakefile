# phonion: lattice-dynamics screening of solid ion conductors.
# Run: snakemake --cores 2 (local) or snakemake --profile profiles/slurm.


from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


wildcard_constraints:
    mid=r"[A-Za-z0-9][A-Za-z0-9._+-]*",
    T=r"[0-9]+",


include: "workflow/rules/intake.smk"
include: "workflow/rules/relax.smk"
include: "workflow/rules/structure_descriptors.smk"
include: "workflow/rules/elastic.smk"
include: "workflow/rules/displace.smk"
include: "workflow/rules/forces.smk"
include: "workflow/rules/fit_ifc.smk"
include: "workflow/rules/fd_check.smk"
include: "workflow/rules/stability.smk"
include: "workflow/rules/stability_recheck.smk"
include: "workflow/rules/md_committee.smk"
include: "workflow/rules/phonon_descriptors.smk"
include: "workflow/rules/md.smk"
include: "workflow/rules/diffusion.smk"
include: "workflow/rules/dynamics.smk"
include: "workflow/rules/arrhenius.smk"
include: "workflow/rules/dft_forces.smk"
include: "workflow/rules/dft_validation.smk"
include: "workflow/rules/mlp_benchmark.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/aimd.smk"
include: "workflow/rules/aimd_validation.smk"
include: "workflow/rules/campaign.smk"
include: "workflow/rules/campaign_analysis.smk"


rule all:
    default_target: True
    input:
        all_targets,
