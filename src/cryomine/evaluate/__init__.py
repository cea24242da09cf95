"""cryomine.evaluate"""
