rule stability:
    input:
        displace=stage_path("displace"),
        fit_ifc=stage_path("fit_ifc"),
        fc2=stage_path("fit_ifc", "fc2.hdf5"),
    output:
        **stage_outputs("stability"),
    log:
        stage_log("stability"),
    conda:
        BACKEND_ENV
    params:
        settings=stage_params("stability"),
    shell:
        '"$PHONION_BACKEND_PYTHON" -m phonion stability --displace {input.displace:q} --fit-ifc {input.fit_ifc:q}'
        " --fc2 {input.fc2:q} --settings {params.settings:q} --figures {output.figures:q}"
        " --out {output.result:q} > {log:q} 2>&1"
