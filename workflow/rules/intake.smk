rule intake:
    input:
        structure_file,
    output:
        material_path("intake", "intake.json"),
    params:
        settings=lambda wc: json.dumps(
            {**config["structures"], "mobile_ion": config["mobile_ion"]}, sort_keys=True
        ),
    log:
        material_path("intake", "intake.log"),
    shell:
        "{sys.executable} -m phonion intake --id {wildcards.mid} --source {input:q}"
        " --settings {params.settings:q} --out {output:q} > {log:q} 2>&1"
