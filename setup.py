"""Packaging for sagc: the top-level folders are mapped under the single import name ``sagc``."""

from setuptools import setup

PACKAGES = {
    "sagc": "sagc",
    "sagc.weights": "sagc/weights",
    "sagc.core": "core",
    "sagc.ops": "ops",
    "sagc.models": "models",
    "sagc.stream": "stream",
    "sagc.stream.media": "stream/media",
    "sagc.stream.enhance": "stream/enhance",
    "sagc.stream.run": "stream/run",
    "sagc.stream.apps": "stream/apps",
    "sagc.train": "train",
    "sagc.eval": "eval",
    "sagc.cli": "cli",
}

setup(
    name="sagc",
    version="0.1.0",
    description="Real-time low-light enhancement with Semantic-Aware Gamma Correction",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=list(PACKAGES),
    package_dir=PACKAGES,
    package_data={"sagc.weights": ["*.pt", "*.md"], "sagc.eval": ["niqe_pris_params.npz", "NIQE_NOTICE.txt"]},
    install_requires=[
        "torch==2.14.1",
        "torchvision==0.29.1",
        "av>=14",
        "numpy>=1.24",
        "onnx>=1.16",
        "onnxruntime>=1.17",
        "opencv-python>=4.8",
        "pillow>=9",
        "tqdm>=4.60",
    ],
    extras_require={
        "test": [
            "pytest>=7",
            "scikit-image>=0.21",
            "pyyaml>=6",
            "tensorboard>=2.12",
            "lpips>=0.1.4",
            "scipy>=1.10",
            "matplotlib>=3.7",
            "selenium>=4.10",
            "onnx>=1.16",
            "onnxscript>=0.2",
            "onnxruntime>=1.17",
            "ray>=2.9",
        ],
        "train": ["pyyaml>=6", "tensorboard>=2.12", "scipy>=1.10"],
        "eval": ["lpips>=0.1.4", "scipy>=1.10", "matplotlib>=3.7"],
        "export": ["onnxscript>=0.2"],
        "ray": ["ray>=2.9"],
    },
    entry_points={"console_scripts": ["sagc=sagc.cli:run"]},
)
