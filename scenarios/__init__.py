"""The tutorial replayed: one module per method, each scenario named by its catalogue ID."""
