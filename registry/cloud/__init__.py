"""Google Cloud: credentials and Cloud Storage folders (:mod:`.gcloud`), Beam on Dataflow
(:mod:`.dataflow`), Vertex AI training jobs (:mod:`.vertex`) and a local Cloud Storage emulator
for tests (:mod:`.emulator`)."""
