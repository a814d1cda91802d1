checkpoint diffusion:
    input:
        md=material_path("md", "{T}K/md.json"),
        trajectory=material_path("md", "{T}K/trajectory.h5"),
        phonons=material_path("phonons", "phonons.json"),
    output:
        result=material_path("md", "{T}K/diffusion.json"),
        arrays=material_path("md", "{T}K/diffusion.h5"),
    log:
        material_path("md", "{T}K/diffusion.log"),
    conda:
        "../../envs/phonion.yaml"
    params:
        python=sys.executable,
        settings=settings_json("diffusion"),
        mobile=config["mobile_ion"],
    shell:
        "{params.python} -m phonion diffusion --md {input.md:q}"
        " --trajectory {input.trajectory:q} --phonons {input.phonons:q}"
        " --settings {params.settings:q} --mobile-ion {params.mobile}"
        " --arrays {output.arrays:q} --out {output.result:q} > {log:q} 2>&1"


rule diffusion_figures:
    input:
        result=material_path("md", "{T}K/diffusion.json"),
        arrays=material_path("md", "{T}K/diffusion.h5"),
    output:
        msd=report(
            multiext(material_path("md", "{T}K/msd"), ".png", ".svg"),
            caption="../report/msd.rst",
            category="Diffusion",
            subcategory="{mid}",
        ),
        vdos=report(
            multiext(material_path("md", "{T}K/vdos"), ".png", ".svg"),
            caption="../report/vdos.rst",
            category="Diffusion",
            subcategory="{mid}",
        ),
    log:
        material_path("md", "{T}K/figures.log"),
    conda:
        "../../envs/phonion.yaml"
    params:
        python=sys.executable,
        fig_msd=lambda wc, output: output.msd[0][:-4],
        fig_vdos=lambda wc, output: output.vdos[0][:-4],
    shell:
        "{params.python} -m phonion diffusion-figures --diffusion {input.result:q}"
        " --arrays {input.arrays:q} --fig-msd {params.fig_msd:q}"
        " --fig-vdos {params.fig_vdos:q} > {log:q} 2>&1"
