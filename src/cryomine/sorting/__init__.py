"""cryomine.sorting"""
