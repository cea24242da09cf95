"""Particle picking in tomograms: template-free difference-of-Gaussians picking."""

from cryomine.picking._dog import DogPicks, dog_sigmas_px, pick_particles

__all__ = ["DogPicks", "dog_sigmas_px", "pick_particles"]
