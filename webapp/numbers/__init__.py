"""Sending numbers: the pool (pool.py), the numbers the providers' accounts hold (accounts.py), and
administrators' requests for numbers that staff fulfil from the providers' offer (number_requests.py,
with matching.py: how a number on offer fits the preferences)."""
