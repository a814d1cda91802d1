rule aimd_validation:
    input:
        aimd=stage_path("aimd"),
        trajectory=stage_path("aimd", "trajectory.h5"),
        diffusion=stage_path("diffusion"),
        mlp_arrays=stage_path("diffusion", "diffusion.h5"),
        mlp_trajectory=stage_path("md", "trajectory.h5"),  # g(r) and van Hove of both
    output:
        **stage_outputs("aimd_validation"),
    log:
        stage_log("aimd_validation"),
    conda:
        WORKFLOW_ENV
    params:
        settings=stage_params("aimd_validation"),
    shell:
        '"$PHONION_PYTHON" -m phonion aimd_validation --aimd {input.aimd:q} --trajectory {input.trajectory:q}'
        " --mlp-diffusion {input.diffusion:q} --mlp-arrays {input.mlp_arrays:q} --settings {params.settings:q}"
        " --mlp-trajectory {input.mlp_trajectory:q}"
        " --arrays {output.arrays:q} --figures {output.figures:q} --out {output.result:q} > {log:q} 2>&1"
