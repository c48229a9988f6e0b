"""Storage and messaging adapters: one module per backend, clients injected."""
