rule structure_descriptors:
    input:
        relax=stage_path("relax"),
        poscar=stage_path("relax", "POSCAR"),
    output:
        **stage_outputs("structure_descriptors"),
    log:
        stage_log("structure_descriptors"),
    conda:
        WORKFLOW_ENV
    params:
        settings=stage_params("structure_descriptors"),
    shell:
        '"$PHONION_PYTHON" -m phonion structure_descriptors --relax {input.relax:q}'
        " --poscar {input.poscar:q} --settings {params.settings:q} --out {output.result:q}"
        " > {log:q} 2>&1"
