"""Placing class averages back into tomogram-sized density and label maps (``cryomine place``).

See ``docs/averaging.md``.
"""

from cryomine.place._place import place_averages, place_run, resample_average, write_placement

__all__ = ["place_averages", "place_run", "resample_average", "write_placement"]
