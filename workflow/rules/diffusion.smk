rule diffusion:
    input:
        md=stage_path("md"),
        trajectory=stage_path("md", "trajectory.h5"),
        stability=stage_path("stability"),
    output:
        **stage_outputs("diffusion"),
    log:
        stage_log("diffusion"),
    conda:
        WORKFLOW_ENV
    params:
        settings=stage_params("diffusion"),
    shell:
        '"$PHONION_PYTHON" -m phonion diffusion --md {input.md:q} --trajectory {input.trajectory:q}'
        " --stability {input.stability:q} --settings {params.settings:q}"
        " --arrays {output.arrays:q} --figures {output.figures:q} --out {output.result:q}"
        " > {log:q} 2>&1"
