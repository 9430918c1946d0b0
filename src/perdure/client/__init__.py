"""Clients: create, watch and steer instances, from async or sync code."""
