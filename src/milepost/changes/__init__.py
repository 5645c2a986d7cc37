"""Change orders (agreed changes of a running plan) and deadline extensions."""
