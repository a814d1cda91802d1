rule diffusion:
    input:
        md=stage_path("md"),
        trajectory=stage_path("md", "trajectory.h5"),
        stability=stage_path("stability"),
        # the harmonic MSD of the same modes beside the MD's (seed 000 Fig. S9)
        displace=stage_path("displace"),
        fc2=stage_path("fit_ifc", "fc2.hdf5"),
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
        " --displace {input.displace:q} --fc2 {input.fc2:q}"
        " --arrays {output.arrays:q} --figures {output.figures:q} --out {output.result:q}"
        " > {log:q} 2>&1"
