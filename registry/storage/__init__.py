"""Artifact bytes: the registry's DVC remote (:mod:`.remote`) and the local content cache
(:mod:`.cache`)."""
