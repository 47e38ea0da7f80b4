"""Running an evaluation: options, the store, model identities, the two stages, and the run record."""
