"""cryomine.structures"""
