"""TODO losses"""
