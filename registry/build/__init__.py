"""Building datasets: loading TFDS builders from their folders and running them with Beam
(:mod:`.prepare`), the byte-reproducible serializer (:mod:`.reproducible`), editing ``dvc.yaml``
and ``params.yaml`` (:mod:`.dvcfiles`) and scaffolding new dataset folders (:mod:`.scaffold`)."""
