rule dynamics:
    input:
        md=material_path("md", "{T}K/md.json"),
        trajectory=material_path("md", "{T}K/trajectory.h5"),
    output:
        result=material_path("md", "{T}K/dynamics.json"),
        arrays=material_path("md", "{T}K/dynamics.h5"),
        figure=report(
            multiext(material_path("md", "{T}K/dynamics"), ".png", ".svg"),
            caption="../report/dynamics.rst",
            category="Diffusion",
            subcategory="{mid}",
        ),
    log:
        material_path("md", "{T}K/dynamics.log"),
    conda:
        "../../envs/phonion.yaml"
    params:
        python=sys.executable,
        settings=json.dumps(config["dynamics"], sort_keys=True),
        mobile=config["mobile_ion"],
        figure=lambda wc, output: output.figure[0][:-4],
    shell:
        "{params.python} -m phonion dynamics --md {input.md:q}"
        " --trajectory {input.trajectory:q} --settings {params.settings:q}"
        " --mobile-ion {params.mobile} --arrays {output.arrays:q}"
        " --figure {params.figure:q} --out {output.result:q} > {log:q} 2>&1"
