rule arrhenius:
    input:
        diffusion=expand(stage_path("diffusion"), T=MD_TEMPERATURES, allow_missing=True),
    output:
        **stage_outputs("arrhenius"),
    log:
        stage_log("arrhenius"),
    conda:
        WORKFLOW_ENV
    params:
        settings=stage_params("arrhenius"),
    shell:
        '"$PHONION_PYTHON" -m phonion arrhenius --diffusion {input.diffusion:q} --settings {params.settings:q}'
        " --figures {output.figures:q} --out {output.result:q} > {log:q} 2>&1"
