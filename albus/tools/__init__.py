"""Tools albus's own tests and deployment need, built from the registries (helm)."""
