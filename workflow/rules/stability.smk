checkpoint stability:
    input:
        displace=material_path("displace", "displace.json"),
        fit=material_path("fit_ifc", "fit_ifc.json"),
        fc2=material_path("fit_ifc", "fc2.hdf5"),
    output:
        material_path("stability", "stability.json"),
    log:
        material_path("stability", "stability.log"),
    conda:
        "../../envs/phonion.yaml"
    params:
        python=sys.executable,
        settings=settings_json("phonons"),
    shell:
        "{params.python} -m phonion stability --displace {input.displace:q}"
        " --fit {input.fit:q} --fc2 {input.fc2:q} --settings {params.settings:q}"
        " --out {output:q} > {log:q} 2>&1"
