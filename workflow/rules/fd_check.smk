rule fd_check:
    input:
        displace=stage_path("displace"),
        fit_ifc=stage_path("fit_ifc"),
        fc2=stage_path("fit_ifc", "fc2.hdf5"),
    output:
        **stage_outputs("fd_check"),
    log:
        stage_log("fd_check"),
    conda:
        BACKEND_ENV
    params:
        settings=stage_params("fd_check"),
    shell:
        '"$PHONION_BACKEND_PYTHON" -m phonion fd_check --displace {input.displace:q} --fit-ifc {input.fit_ifc:q}'
        " --fc2 {input.fc2:q} --fd-fc2 {output.fc2:q} --settings {params.settings:q}"
        " --out {output.result:q} > {log:q} 2>&1"
