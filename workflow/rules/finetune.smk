# Fine-tuning the campaign model on the campaign's DFT forces (config finetune,
# docs/finetune.md): one campaign-level job, on the GPU partition through the SLURM profile;
# a killed job resumes from its last epoch. Materials screened again with the new model are
# "<id>+finetuned": their intake reads <id>'s relaxed structure, waits for this job and skips
# with its reason if it did not produce a model; every later stage is the usual one, with
# the fine-tuned model in params and, in relax, the cell kept (positions relaxed).
if FINETUNE_ON:

    rule finetune:
        input:
            results=[stage_path("dft_forces").format(mid=m) for m in sorted(FINETUNE_MATERIALS)],
            forcesets=[
                stage_path("dft_forces", "forces.h5").format(mid=m)
                for m in sorted(FINETUNE_MATERIALS)
            ],
            # AIMD frames with their DFT forces (finetune.aimd_frames)
            aimd=[
                stage_path("aimd", "trajectory.h5").format(mid=m, T=T)
                for m in sorted(FINETUNE_MATERIALS & AIMD_MATERIALS)
                for T in AIMD_TEMPERATURES
            ]
            if FINETUNE["aimd_frames"]
            else [],
            # DFT relaxation steps with their forces (finetune.relax_frames)
            relax=[
                stage_path("relax", "relax_path.h5").format(mid=m)
                for m in sorted(FINETUNE_MATERIALS)
            ]
            if FINETUNE["relax_frames"] and config["relax"]["engine"] != "mlp"
            else [],
        output:
            result=campaign_path("finetune/finetune.json"),
            model=FINETUNED_MODEL,
            arrays=campaign_path("finetune/finetune.h5"),
            figures=directory(campaign_path("finetune/figures")),
        log:
            campaign_path("finetune/finetune.log"),
        conda:
            BACKEND_ENV
        resources:
            gpu=config["slurm"]["md_gpus"],
            cpus_per_task=config["slurm"]["md_cpus"],
            mem_mb=config["slurm"]["md_mem_mb"],
            runtime=lambda wc, attempt: FINETUNE["runtime_min"] * attempt,
            slurm_partition=os.environ.get(
                "PHONION_GPU_PARTITION", os.environ.get("SBATCH_PARTITION", "")
            ),
        params:
            settings=lambda wc: stage_settings("finetune", config).to_json(),
        shell:
            '"$PHONION_BACKEND_PYTHON" -m phonion finetune --dft-forces {input.results:q}'
            " --dft-forceset {input.forcesets:q} --aimd-trajectories {input.aimd:q}"
            " --relax-paths {input.relax:q}"
            " --settings {params.settings:q}"
            ' --device "$PHONION_MD_DEVICE" --model-out {output.model:q} --arrays {output.arrays:q}'
            " --figures {output.figures:q} --out {output.result:q} > {log:q} 2>&1"

    # "<id>+finetuned" matches both intake rules: this one, which waits for the model, wins
    ruleorder: intake_finetuned > intake

    rule intake_finetuned:
        input:
            # the base model's relaxed structure: the cell the DFT snapshots were taken in
            structure=lambda wc: stage_path("relax", "POSCAR").format(
                mid=wc.mid.removesuffix(FINETUNED_SUFFIX)
            ),
            finetune=campaign_path("finetune/finetune.json"),
            base_relax=lambda wc: stage_path("relax").format(
                mid=wc.mid.removesuffix(FINETUNED_SUFFIX)
            ),
        output:
            **stage_outputs("intake"),
        log:
            stage_log("intake"),
        wildcard_constraints:
            mid=r"[A-Za-z0-9][A-Za-z0-9._+-]*\+finetuned",
        conda:
            WORKFLOW_ENV
        params:
            settings=stage_params("intake"),
        shell:
            '"$PHONION_PYTHON" -m phonion intake --id {wildcards.mid:q} --source {input.structure:q}'
            " --finetune {input.finetune:q} --base-relax {input.base_relax:q} --settings {params.settings:q} --out {output.result:q}"
            " > {log:q} 2>&1"
