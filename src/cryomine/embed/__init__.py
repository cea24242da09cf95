"""Re-embedding: class averages placed back into tomogram-sized density and label maps.

See ``docs/averaging.md``.
"""

from cryomine.embed._embed import embed_averages, embed_run, resample_average, write_embedding

__all__ = ["embed_averages", "embed_run", "resample_average", "write_embedding"]
