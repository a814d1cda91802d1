rule md_committee:
    input:
        md=stage_path("md"),
        trajectory=stage_path("md", "trajectory.h5"),  # with the first model's forces
        recheck=stage_path("stability_recheck"),  # the disagreement on the snapshots
    output:
        **stage_outputs("md_committee"),
    log:
        stage_log("md_committee"),
    conda:
        RECHECK_ENV
    params:
        settings=stage_params("md_committee"),
    shell:
        '"$PHONION_RECHECK_PYTHON" -m phonion md_committee --md {input.md:q}'
        " --trajectory {input.trajectory:q} --recheck {input.recheck:q}"
        " --settings {params.settings:q} --out {output.result:q} > {log:q} 2>&1"
