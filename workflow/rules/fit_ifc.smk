rule fit_ifc:
    input:
        displace=material_path("displace", "displace.json"),
        forces=material_path("forces", "forces.json"),
        forceset=material_path("forces", "forces.h5"),
    output:
        **fit_ifc_outputs(),
    log:
        material_path("fit_ifc", "fit_ifc.log"),
    benchmark:
        material_path("fit_ifc", "benchmark.tsv")
    conda:
        "../../envs/phonion.yaml"
    params:
        python=sys.executable,
        pheasy=config["environments"]["pheasy"],
        settings=settings_json("phonons"),
        fc3=lambda wc, output: output.get("fc3", ""),
    shell:
        "{params.python} -m phonion fit-ifc --displace {input.displace:q}"
        " --forceset {input.forceset:q} --forces-result {input.forces:q}"
        " --settings {params.settings:q} --python={params.pheasy:q}"
        " --fc2 {output.fc2:q} --fc3={params.fc3:q} --out {output.result:q} > {log:q} 2>&1"
