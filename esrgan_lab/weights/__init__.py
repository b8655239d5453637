"""TODO weights"""
