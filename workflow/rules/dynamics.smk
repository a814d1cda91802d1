rule dynamics:
    input:
        md=stage_path("md"),
        trajectory=stage_path("md", "trajectory.h5"),
    output:
        **stage_outputs("dynamics"),
    log:
        stage_log("dynamics"),
    conda:
        WORKFLOW_ENV
    params:
        settings=stage_params("dynamics"),
    shell:
        '"$PHONION_PYTHON" -m phonion dynamics --md {input.md:q} --trajectory {input.trajectory:q}'
        " --settings {params.settings:q} --arrays {output.arrays:q}"
        " --figures {output.figures:q} --out {output.result:q}"
        + (" --density {output.density:q}" if config["dynamics"]["density"] else "")
        + " > {log:q} 2>&1"
