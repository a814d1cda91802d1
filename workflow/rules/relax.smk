# with a DFT relax.engine, the materials screened again with the fine-tuned model
# ("<id>+finetuned") still relax with the MLP (the DFT relaxation is <id>'s, reused)
if config["relax"]["engine"] == "mlp" or FINETUNE_ON:

    rule relax:
        wildcard_constraints:
            mid=r"[A-Za-z0-9][A-Za-z0-9._+-]*"
            if config["relax"]["engine"] == "mlp"
            else r"[A-Za-z0-9][A-Za-z0-9._+-]*\+finetuned",
        input:
            intake=stage_path("intake"),
        output:
            **stage_outputs("relax"),
        log:
            stage_log("relax"),
        benchmark:
            stage_path("relax", "benchmark.tsv")
        conda:
            BACKEND_ENV
        resources:
            runtime=lambda wc, attempt: config["slurm"]["relax_runtime_min"] * attempt,
            mem_mb=lambda wc, attempt: config["slurm"]["relax_mem_mb"] * attempt,
        params:
            settings=stage_params("relax"),
        shell:
            '"$PHONION_BACKEND_PYTHON" -m phonion relax --intake {input.intake:q} --settings {params.settings:q}'
            ' --out {output.result:q} --poscar {output.poscar:q}'
            " > {log:q} 2>&1"

if config["relax"]["engine"] != "mlp":
    if FINETUNE_ON:

        ruleorder: relax > dft_relax

    # relax.engine vasp | cp2k: the same outputs from one DFT run (MPI resources: profile)
    rule dft_relax:
        input:
            intake=stage_path("intake"),
        output:
            **stage_outputs("relax"),
            # every step with its DFT forces: training data of the finetune stage
            path=stage_path("relax", "relax_path.h5"),
        log:
            stage_log("relax"),
        benchmark:
            stage_path("relax", "benchmark.tsv")
        conda:
            WORKFLOW_ENV
        params:
            settings=stage_params("dft_relax"),
            workdir=stage_path("relax", "run"),
        shell:
            '"$PHONION_PYTHON" -m phonion dft_relax --intake {input.intake:q} --settings {params.settings:q}'
            ' --workdir {params.workdir:q} --run-command="$PHONION_DFT_COMMAND" --gamma-command="$PHONION_DFT_GAMMA_COMMAND"'
            ' --timeout-min="$PHONION_DFT_TIMEOUT_MIN" --out {output.result:q} --poscar {output.poscar:q}'
            " --path {output.path:q} > {log:q} 2>&1"
