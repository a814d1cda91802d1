rule aimd:
    input:
        displace=stage_path("displace"),
    output:
        **stage_outputs("aimd"),
    log:
        stage_log("aimd"),
    conda:
        WORKFLOW_ENV
    params:
        settings=stage_params("aimd"),
        workdir=stage_path("aimd", "runs"),
    shell:
        '"$PHONION_PYTHON" -m phonion aimd --displace {input.displace:q} --temperature-K {wildcards.T:q}'
        ' --settings {params.settings:q} --workdir {params.workdir:q} --run-command="$PHONION_DFT_COMMAND"'
        ' --gamma-command="$PHONION_DFT_GAMMA_COMMAND" --trajectory {output.trajectory:q}'
        " --out {output.result:q} >> {log:q} 2>&1"
