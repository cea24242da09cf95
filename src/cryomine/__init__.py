"""cryomine: template-free structural pattern mining in cryo-electron tomography.

The package is organised by pipeline stage (see ``docs/conventions.md`` for axes and units):

``io``          MRC volumes, STAR particle tables, particle sets (Zarr stack + STAR), coords, copick
``geometry``    rotations (Haar sampling, RELION ZYZ Euler angles), volume transforms, masks
``structures``  the shipped structure library; atomic model or map -> density at a voxel size
``simulate``    imaging model (CTF, tilt series, back-projection) and data simulators with truth
``sorting``     DISCA (YOPO + Gaussian mixture with BIC) and the baselines
``evaluate``    clustering and picking metrics
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cryomine")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
