"""cryomine.picking"""
