"""The registry as a Git repository: Git itself (:mod:`.git`), the index of release and stage
tags (:mod:`.tags`), the content hash DVC records for an output in ``dvc.lock`` or a ``.dvc`` file
(:mod:`.lock`), and an opened registry (:mod:`.session`: settings, repository, tag index and
content cache together)."""
