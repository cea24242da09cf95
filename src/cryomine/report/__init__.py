"""cryomine.report"""
