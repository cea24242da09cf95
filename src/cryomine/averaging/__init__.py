"""cryomine.averaging"""
