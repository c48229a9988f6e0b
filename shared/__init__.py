"""cartwise product package: event contract, domain logic, storage adapters, configuration.

Domain modules import nothing from ``google.*``; storage adapters live in ``shared.adapters``.
"""
