"""Sending numbers: the pool (pool.py) and the numbers the providers' accounts hold (accounts.py)."""
