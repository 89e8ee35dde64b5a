"""Google Cloud: credentials (:mod:`.credentials`), Cloud Storage errors and folders
(:mod:`.gcs`), Beam on Dataflow (:mod:`.dataflow`), Vertex AI training jobs (:mod:`.vertex`) and a
local Cloud Storage emulator for tests (:mod:`.emulator`)."""
