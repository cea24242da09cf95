"""Cutting subtomograms out of tomograms at particle positions."""

from cryomine.extract._subtomograms import ExtractedSubtomograms, extract_subtomograms

__all__ = ["ExtractedSubtomograms", "extract_subtomograms"]
