rule relax:
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
        ' --device "$PHONION_DEVICE" --out {output.result:q} --poscar {output.poscar:q}'
        " > {log:q} 2>&1"
