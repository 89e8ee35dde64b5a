"""Building datasets: loading TFDS builders from their folders (:mod:`.builders`), Beam options
(:mod:`.beam`), running a build into the prepared folder (:mod:`.prepare`), the byte-reproducible
serializer (:mod:`.reproducible`), editing ``dvc.yaml`` and ``params.yaml`` (:mod:`.dvcfiles`)
and scaffolding new dataset folders (:mod:`.scaffold`)."""
