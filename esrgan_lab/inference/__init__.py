"""TODO inference"""
