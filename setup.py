from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="visopt",
    version="0.1.0",
    description="See what a TensorFlow 2 / Keras 3 network has learned: activation maximization, "
                "saliency, progress animations",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["visopt", "visopt.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16",
        "numpy",
        "scipy",
        "opencv-python-headless",
        "imageio",
        "imageio-ffmpeg",
        "matplotlib",
        "tqdm",
        "threadpoolctl",
    ],
    extras_require={
        "test": ["pytest>=7", "tensorboard", "nbclient", "nbformat", "ipykernel"],
        "tensorboard": ["tensorboard"],
        "benchmark": ["tf-keras-vis==0.8.7", "psutil"],
    },
    entry_points={"console_scripts": ["visopt=visopt.cli:main", "visopt-demo=visopt.demo.__main__:main"]},
)
