"""Sending numbers: the pool (pool.py) and the numbers the Vonage account owns (vonage_account.py)."""
