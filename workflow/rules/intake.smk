rule intake:
    input:
        structure_file,
    output:
        material_path("intake", "intake.json"),
    log:
        material_path("intake", "intake.log"),
    conda:
        "../../envs/phonion.yaml"
    params:
        python=sys.executable,
        settings=lambda wc: json.dumps(
            {**config["structures"], "mobile_ion": config["mobile_ion"]},
            sort_keys=True,
        ),
    shell:
        "{params.python} -m phonion intake --id {wildcards.mid} --source {input:q}"
        " --settings {params.settings:q} --out {output:q} > {log:q} 2>&1"
