rule phonon_descriptors:
    input:
        displace=stage_path("displace"),
        stability=stage_path("stability"),
        fc2=stage_path("fit_ifc", "fc2.hdf5"),
    output:
        **stage_outputs("phonon_descriptors"),
    log:
        stage_log("phonon_descriptors"),
    benchmark:
        stage_path("phonon_descriptors", "benchmark.tsv")
    conda:
        WORKFLOW_ENV
    params:
        settings=stage_params("phonon_descriptors"),
    shell:
        '"$PHONION_PYTHON" -m phonion phonon_descriptors --displace {input.displace:q}'
        " --stability {input.stability:q} --fc2 {input.fc2:q} --settings {params.settings:q}"
        " --arrays {output.arrays:q} --figures {output.figures:q} --out {output.result:q}"
        " > {log:q} 2>&1"
