"""cryomine.geometry"""
