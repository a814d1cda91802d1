rule displace:
    input:
        material_path("relax", "relax.json"),
    output:
        material_path("displace", "displace.json"),
    log:
        material_path("displace", "displace.log"),
    conda:
        "../../envs/phonion.yaml"
    params:
        python=sys.executable,
        settings=settings_json("phonons"),
    shell:
        "{params.python} -m phonion displace --input {input:q} --settings {params.settings:q}"
        " --out {output:q} > {log:q} 2>&1"
