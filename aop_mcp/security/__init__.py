"""Security: who is calling (tokens, roles), checked at every door."""
