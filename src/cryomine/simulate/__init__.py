"""cryomine.simulate"""
