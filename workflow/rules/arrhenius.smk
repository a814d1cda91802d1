rule arrhenius:
    input:
        displace=material_path("displace", "displace.json"),
        diffusion=expand(
            material_path("md", "{T}K/diffusion.json"),
            T=config["md"]["temperatures_K"],
            allow_missing=True,
        ),
    output:
        result=material_path("arrhenius", "arrhenius.json"),
        figure=report(
            multiext(material_path("arrhenius", "arrhenius"), ".png", ".svg"),
            caption="../report/arrhenius.rst",
            category="Diffusion",
            subcategory="{mid}",
        ),
    log:
        material_path("arrhenius", "arrhenius.log"),
    conda:
        "../../envs/phonion.yaml"
    params:
        python=sys.executable,
        mobile=config["mobile_ion"],
        figure=lambda wc, output: output.figure[0][:-4],
    shell:
        "{params.python} -m phonion arrhenius --displace {input.displace:q}"
        " --diffusion-results {input.diffusion:q} --mobile-ion {params.mobile}"
        " --figure {params.figure:q} --out {output.result:q} > {log:q} 2>&1"
