rule stability_recheck:
    input:
        intake=stage_path("intake"),  # the structure the second model relaxes on its own
        displace=stage_path("displace"),
        stability=stage_path("stability"),
        forceset=stage_path("forces", "forces.h5"),  # the first model's: the committee
        fc2=stage_path("fit_ifc", "fc2.hdf5"),  # the first model's: the MSD ratio
    output:
        **stage_outputs("stability_recheck"),
    log:
        stage_log("stability_recheck"),
    conda:
        RECHECK_ENV
    params:
        settings=stage_params("stability_recheck"),
    shell:
        '"$PHONION_RECHECK_PYTHON" -m phonion stability_recheck --displace {input.displace:q}'
        ' --stability {input.stability:q} --forceset {input.forceset:q} --fc2 {input.fc2:q}'
        ' --intake {input.intake:q}'
        ' --settings {params.settings:q}'
        " --out {output.result:q} > {log:q} 2>&1"
